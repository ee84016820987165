"""The backtest engine with fake agents: every agent side by side, ensemble plumbing, tests."""

from __future__ import annotations

import numpy as np
import pytest

from rewts.backtest.engine import OUTCOME_LAG, long_outcomes, run_backtest
from rewts.env.evaluation import greedy_targets
from rewts.errors import BacktestError

from . import fakes


@pytest.fixture(scope="module")
def world():
    cfg = fakes.small_config()
    data = fakes.dataset(cfg)
    return cfg, data, fakes.strategies(cfg, data)


@pytest.fixture(scope="module")
def result(world):
    cfg, data, strat = world
    return run_backtest(cfg, data, strat, fakes.FakeSource(data), name="fake")


def test_every_agent_runs_on_every_ticker_with_runs_per_seed(result, world):
    cfg = world[0]
    table = result.metrics_table()
    counts = table.groupby(["ticker", "agent"]).size()
    for ticker in cfg.tickers:
        assert counts[(ticker, "buy_and_hold")] == 1 and counts[(ticker, "llm_only")] == 1
        for agent in (
            "rl_only",
            "llm_rl",
            "rewts",
            "global_llm_rl",
            "placebo_const",
            "placebo_shuffled",
            "leak_sanity",
        ):
            assert counts[(ticker, agent)] == cfg.backtest.runs
    assert set(table[table.agent == "llm_rl"].seed) == {cfg.seed, cfg.seed + 1}


def test_test_period_is_the_configured_split(result, world):
    cfg = world[0]
    run = result.runs[0]
    assert run.dates[0] >= np.datetime64(cfg.split.test_start)
    assert run.dates[-1] <= np.datetime64(cfg.split.test_end)
    assert run.dates[0] == result.prices[run.ticker].index[0]


def test_leak_sanity_scores_near_perfectly_and_is_reported(result):
    table = result.metrics_table()
    leak = table[table.agent == "leak_sanity"]
    assert (leak.sharpe > 5).all()
    assert (leak.hit_rate > 0.85).all()  # only flips with costs on tiny moves lose
    assert any(n.startswith("Sanity check passed") for n in result.notes)


def test_ensemble_gives_the_weight_to_the_model_right_on_the_lookback(result):
    w = result.ensemble_weights[("AAA", 0)]
    assert list(w.columns) == ["chunk 0", "chunk 1", "chunk 2"]
    assert w["chunk 2"].min() > 0.9
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    reb = result.rebalances[("AAA", 0)]
    assert len(reb) == len(w) and (reb.status == "solved").all()
    # the window of the decision on day t ends at row t - OUTCOME_LAG (returns up to t-1)
    assert (reb.window_end == reb.row - OUTCOME_LAG).all()
    # following the oracle chunk, the ensemble is nearly as good as the leak agent
    table = result.metrics_table()
    assert table[table.agent == "rewts"].sharpe.min() > 3


def test_paired_tests_and_report_context(result):
    pairs = {(t.a, t.b) for t in result.tests}
    assert ("llm_rl", "rl_only") in pairs and ("rewts", "global_llm_rl") in pairs
    t = next(t for t in result.tests if t.a == "llm_rl" and t.b == "rl_only")
    assert t.n_pairs == 4  # 2 tickers x 2 runs
    assert set(result.llm_signals) == {"AAA", "BBB"}
    assert {"start", "end", "tau", "direction"} <= set(result.llm_signals["AAA"].columns)
    assert ("AAA", "chunk 1") in result.training_curves


def test_single_agent_uses_the_last_chunk_or_the_global_one(world):
    cfg, data, strat = world
    src = fakes.FakeSource(data)
    run_backtest(cfg.model_copy(update={"tickers": ["AAA"]}), data, strat, src)
    single = {c[1:4] for c in src.calls if c[1] == "no_tau"}
    assert {lbl for (_, _, lbl) in single} == {"chunk 2"}
    cfg2 = fakes.small_config(single_agent="global")
    src2 = fakes.FakeSource(data)
    run_backtest(cfg2.model_copy(update={"tickers": ["AAA"]}), data, strat, src2)
    assert {c[3] for c in src2.calls if c[1] == "no_tau"} == {"global"}


def test_missing_global_agent_is_a_clear_error(world):
    cfg, data, strat = world
    src = fakes.FakeSource(data, missing_global=True)
    with pytest.raises(BacktestError, match="global agent"):
        run_backtest(cfg, data, strat, src)


def test_without_agents_or_strategies_the_rule_agents_still_run(world):
    cfg, data, _ = world
    result = run_backtest(cfg, data, None, None)
    assert set(result.metrics_table().agent) == {"buy_and_hold"}
    assert any("skipped" in n for n in result.notes)


def test_without_strategies_the_agents_that_never_read_tau_still_run(world):
    """RL-only and the leak sanity check do not read the LLM signal (needs_strategies agrees),
    so a run without strategies keeps them and skips only the tau readers."""
    cfg, data, _ = world
    cfg = cfg.model_copy(
        update={
            "backtest": cfg.backtest.model_copy(
                update={"agents": ["rl_only", "leak_sanity", "llm_rl"]}
            )
        }
    )
    result = run_backtest(cfg, data, None, fakes.FakeSource(data))
    assert set(result.metrics_table().agent) == {"rl_only", "leak_sanity"}
    assert any("skipped llm_rl" in n for n in result.notes)


def test_greedy_targets_walk_the_held_position():
    # holding short (-1) or flat (0) -> long; holding long -> short
    q = np.zeros((4, 3, 2))
    q[:, 0] = [0, 1]
    q[:, 1] = [0, 1]
    q[:, 2] = [1, 0]
    t = greedy_targets(q, np.array([-1.0, 0.0, 1.0]), np.array([-1.0, 1.0]))
    assert t.tolist() == [1, -1, 1, -1]


def test_long_outcomes_are_next_close_returns():
    p = np.array([10.0, 11.0, 9.9])
    np.testing.assert_allclose(long_outcomes(p), [0.1, -0.1, 0.0])


def test_ensemble_weights_ignore_prices_from_the_decision_day_on(world):
    """Change the close of every day from t on: the weights in force on day t must not move;
    change it from day t-1 on and they do (the window ends the day before, not earlier)."""
    _, data, strat = world
    cfg = fakes.small_config(agents=["rewts"], runs=1)
    cfg = cfg.model_copy(update={"tickers": ["AAA"]})
    cfg.rewts.lookback_length = 3  # a short window: every day's outcome moves the weights
    source = fakes.FakeSource(data, n_chunks=4, oracle_chunk=None)  # Q-values stay fixed

    def weights(from_day_offset: int, t: int):
        frames = {k: v.copy() for k, v in data.frames.items()}
        if from_day_offset is not None:
            frame = frames["AAA"]
            day = base.index[t + from_day_offset]
            column = cfg.trading_env.price_column  # the series the book is marked at
            close = frame[column].to_numpy()
            k = int(np.searchsorted(frame.index, day))
            # every daily return from that day on changes sign
            flipped = 1.0 - (close[k:] / close[k - 1 : -1] - 1.0)
            close = np.concatenate([close[:k], close[k - 1] * np.cumprod(flipped)])
            frame[column] = close
        res = run_backtest(cfg, type(data)(frames=frames), strat, source)
        return res.ensemble_weights[("AAA", 0)]

    base = weights(None, 0)
    moved_earlier = 0
    for t in (10, 25, 40, 70):
        same = weights(0, t)
        np.testing.assert_array_equal(base.iloc[: t + 1].to_numpy(), same.iloc[: t + 1].to_numpy())
        earlier = weights(-1, t)
        np.testing.assert_array_equal(base.iloc[:t].to_numpy(), earlier.iloc[:t].to_numpy())
        moved_earlier += not np.allclose(base.iloc[t].to_numpy(), earlier.iloc[t].to_numpy())
    assert moved_earlier >= 3  # day t-1's close does reach the weights of day t (ties aside)


@pytest.mark.parametrize(("signal", "solver"), [("q_value", "clarabel"), ("position", "osqp")])
def test_ensemble_options_run_end_to_end(world, signal, solver):
    _, data, strat = world
    cfg = fakes.small_config(agents=["rewts"], runs=1, qp_solver=solver, rebalance_every=5)
    cfg.rewts.ensemble_signal = signal
    cfg = cfg.model_copy(update={"tickers": ["AAA"]})
    result = run_backtest(cfg, data, strat, fakes.FakeSource(data))
    w = result.ensemble_weights[("AAA", 0)]
    assert w["chunk 2"].mean() > 0.8  # the oracle chunk wins under either scale and solver
    reb = result.rebalances[("AAA", 0)]
    assert len(reb) == -(-len(w) // 5) and (reb.status == "solved").all()
    assert reb.warm_started.iloc[1:].all() == (solver == "osqp")


def test_no_secret_reaches_the_result_files(world, tmp_path):
    from rewts.report import write_report

    _, data, strat = world
    cfg = fakes.small_config(agents=["buy_and_hold"], runs=1)
    cfg.llm.openai_api_key = "sk-very-secret-123"
    result = run_backtest(cfg, data, strat, None)
    files = write_report(result, tmp_path)
    for path in tmp_path.iterdir():
        assert "sk-very-secret-123" not in path.read_text(), path.name
    assert files.metrics_json.is_file()


@pytest.mark.parametrize(
    ("mode", "verdict"),
    [
        ("oracle", "Sanity check passed"),
        ("overfit", "does not generalize"),
        ("broken", "did not learn the leak well even in-sample"),
    ],
)
def test_sanity_check_tells_broken_from_overfit(world, mode, verdict):
    _, data, strat = world
    cfg = fakes.small_config(agents=["leak_sanity"], runs=1)
    result = run_backtest(cfg, data, strat, fakes.FakeSource(data, leak_mode=mode))
    assert any(verdict in n for n in result.notes), result.notes
    diag = result.diagnostics[("AAA", "leak_sanity", 0)]
    assert diag["train_accuracy"] == pytest.approx(1.0 if mode != "broken" else 0.5, abs=0.1)
    assert diag["test_accuracy"] == pytest.approx(1.0 if mode == "oracle" else 0.5, abs=0.15)


def test_the_sanity_gate_fails_on_accuracy_alone(world):
    """A leak agent whose Sharpe clears the bar but whose test direction accuracy does not is
    flagged: the Sharpe gate alone passed agents that called 60 % of the days."""
    _, data, strat = world
    cfg = fakes.small_config(agents=["leak_sanity"], runs=1, sanity_min_sharpe=-100.0)
    result = run_backtest(cfg, data, strat, fakes.FakeSource(data, leak_mode="overfit"))
    failed = [n for n in result.notes if n.startswith("Sanity check failed")]
    assert failed and "accuracy" in failed[0]
    diag = result.diagnostics[("AAA", "leak_sanity", 0)]
    assert diag["test_decisive_accuracy"] < 0.95
    # the oracle passes both: 100 % of the days whose move beats a switch's cost
    ok = run_backtest(cfg, data, strat, fakes.FakeSource(data, leak_mode="oracle"))
    assert any(n.startswith("Sanity check passed") for n in ok.notes), ok.notes
    assert ok.diagnostics[("AAA", "leak_sanity", 0)]["test_decisive_accuracy"] == 1.0


def test_buy_and_hold_is_the_stocks_total_return_with_one_entry_cost(world):
    _, data, strat = world
    cfg = fakes.small_config(agents=["buy_and_hold"], runs=1)
    cfg.trading_env.max_position = 0.5  # the agents' limit does not shrink Buy & Hold
    cfg.trading_env.price_column = "close"
    frames = {t: f.copy() for t, f in data.frames.items()}
    for f in frames.values():  # dividends: the total return grows faster than the close
        f["adj_close"] = f["close"] * 1.0002 ** np.arange(len(f))
    result = run_backtest(cfg, type(data)(frames=frames), strat, None)
    run = result.find("AAA", "buy_and_hold")
    frame = frames["AAA"]
    total = frame["adj_close"].loc[run.dates].to_numpy()
    cost = cfg.trading_env.transaction_cost
    expected = cfg.trading_env.initial_balance / (1 + cost) * total / total[0]
    np.testing.assert_allclose(run.equity, expected, rtol=1e-12)
    assert run.costs[0] > 0 and (run.costs[1:] == 0).all()
