"""The backtest against the real RL stage: same P&L as the environment, the leak feature is
aligned with what a decision earns, and a tiny end-to-end run with real training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rewts.backtest import backtest_all
from rewts.backtest.portfolio import evaluate
from rewts.backtest.rl_source import LEAK_COLUMN, leak_frame
from rewts.config.models import BacktestConfig, Config, TradingEnvConfig
from rewts.data.prepare import Dataset
from rewts.data.timeline import Timeline
from rewts.env import TradingEnv, action_targets, build_env_data
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("actions", ["long_short", "short_flat_long"])
@pytest.mark.parametrize("stop", [None, 0.1])
def test_backtest_pnl_equals_the_environment_for_the_same_actions(actions, stop):
    frame = synthetic_frame(300, seed=4)
    data = build_env_data("SYN", frame, SYNTHETIC_FEATURES, window=5, train_range=(0, 200))
    env_cfg = TradingEnvConfig(actions=actions, max_drawdown_limit=stop)
    lo, hi = 210, 290  # decisions on rows lo..hi; the env needs price hi+1 for the last reward
    env = TradingEnv(data, env_cfg, start=lo, end=hi + 1)
    rng = np.random.default_rng(0)
    n_actions = len(action_targets(actions))
    chosen = rng.integers(n_actions, size=hi - lo + 1)
    env.reset()
    equity, rewards = [], []
    for a in chosen:
        _, _, terminated, _, info = env.step(int(a))
        equity.append(info["equity"])
        rewards.append(info["return"])
        if terminated:
            break
    (run,) = evaluate(
        action_targets(actions)[chosen][None],
        data.prices[lo : hi + 1],
        pd.DatetimeIndex(data.dates[lo : hi + 1]),
        ticker="SYN",
        agents=["x"],
        runs=[0],
        seeds=[0],
        env=env_cfg,
        backtest=BacktestConfig(),
    )
    k = len(equity)
    np.testing.assert_allclose(run.equity[:k], equity, rtol=1e-12)
    # the env's step return: the book marked at the next close over the mark before the trade
    # (its own cost included); marks = equity after the trade + that trade's cost
    marks = run.equity[:k] + run.costs[:k]
    np.testing.assert_allclose(rewards[: k - 1], marks[1:] / marks[:-1] - 1, rtol=1e-9, atol=1e-12)


def test_the_leaked_feature_is_the_return_the_decision_earns():
    frame = synthetic_frame(300, seed=5)
    leaky = leak_frame(frame, "close")
    data = build_env_data(
        "SYN", leaky, (*SYNTHETIC_FEATURES, LEAK_COLUMN), window=5, train_range=(0, 200)
    )
    col = data.names.index(LEAK_COLUMN)
    rows = np.arange(data.first_valid, len(frame) - 2)
    close = frame["close"].to_numpy()
    earned = close[rows + 1] / close[rows] - 1  # decision at close t earns t -> t+1
    seen = data.obs[rows, col]
    assert np.corrcoef(seen, earned)[0, 1] > 0.9999
    # and nothing else in the observation is that informative (the leak is the only leak)
    others = [i for i in range(data.obs.shape[1]) if i not in (col, data.position_index)]
    corr = [
        abs(np.corrcoef(data.obs[rows, i], earned)[0, 1])
        for i in others
        if data.obs[rows, i].std() > 0
    ]
    assert max(corr) < 0.5


def _tiny_world(tmp_path, runs=1, agents=None):
    frames = {"AAA": synthetic_frame(420, seed=0, start="2012-01-02")}
    ds = Dataset(
        frames=frames,
        source="synthetic",
        content_hash="test",
        feature_columns=SYNTHETIC_FEATURES,
        path=None,
    )
    periods = Timeline(frames["AAA"].index, strategy_frequency=20, warmup=40).periods
    tau = np.random.default_rng(0).uniform(-1, 1, len(periods))
    strategies = {"AAA": pd.DataFrame({"period": [p.index for p in periods], "tau": tau})}
    backtest = {"runs": runs}
    if agents is not None:
        backtest["agents"] = agents
    cfg = Config(
        tickers=["AAA"],
        data={"warmup_days": 40},
        strategy_frequency=20,
        split={
            "train_start": "2012-01-01",
            "train_end": "2013-03-29",
            "test_start": "2013-04-01",
            "test_end": "2013-08-30",
        },
        rewts={
            "chunk_length": 100,
            "lookback_length": 30,
            "episodes_per_chunk": 8,
            "hidden_dims": [32, 32],
            "gamma": 0.0,
            "learning_rate": 1e-3,
            "batch_size": 32,
            "learning_starts": 64,
            "target_update_freq": 50,
            "epsilon_decay": 0.6,
            "epsilon_min": 0.02,
            "buffer_size": 5000,
            "checkpoint_dir": str(tmp_path / "ck"),
            "n_jobs": 1,
            "device": "cpu",
        },
        trading_env={"window": 5, "max_drawdown_limit": None},
        backtest=backtest,
    )
    return cfg, ds, strategies


@pytest.mark.slow
def test_end_to_end_with_real_training_then_a_rerun_trains_nothing(tmp_path):
    agents = ["buy_and_hold", "llm_only", "rl_only", "llm_rl", "rewts", "leak_sanity"]
    cfg, ds, strategies = _tiny_world(tmp_path, agents=agents)
    said: list[str] = []
    result = backtest_all(cfg, ds, strategies, name="tiny", say=said.append)
    assert any(s.startswith("training leak agents") for s in said)
    table = result.metrics_table().set_index("agent")
    assert set(table.index) == set(agents)
    # the sanity check: an agent that sees the return its decision earns must score high
    assert table.loc["leak_sanity", "sharpe"] > 3.0
    assert table.loc["leak_sanity", "sharpe"] > table.drop("leak_sanity").sharpe.max() + 1.0
    assert any(n.startswith("Sanity check passed") for n in result.notes)
    weights = result.ensemble_weights[("AAA", 0)]
    assert weights.shape[1] == 3 and np.allclose(weights.sum(axis=1), 1.0)
    assert result.training_curves  # per-chunk curves from the checkpoints
    checkpoints = sorted(
        p.relative_to(tmp_path / "ck") for p in (tmp_path / "ck").rglob("meta.json")
    )
    # every chunk + global for the LLM variant; only the global agent for the single agents
    # (backtest.single_agent: global, the papers' setting)
    assert [str(p.parent) for p in checkpoints] == [
        "AAA/chunk_0/llm_s0",
        "AAA/chunk_1/llm_s0",
        "AAA/chunk_2/llm_s0",
        "AAA/global/llm_s0",
        "AAA/global/rl_leak_s0",
        "AAA/global/rl_s0",
    ]
    # every learned agent reports its training, validation and test fit
    for agent in ("rl_only", "llm_rl", "leak_sanity"):
        fit = result.diagnostics[("AAA", agent, 0)]
        assert {"train_sharpe", "validation_sharpe", "test_accuracy"} <= set(fit)
    # a rerun loads the checkpoints: identical numbers, nothing trained
    mtimes = {p: (tmp_path / "ck" / p).stat().st_mtime_ns for p in checkpoints}
    again = backtest_all(cfg, ds, strategies, name="tiny")
    pd.testing.assert_frame_equal(result.metrics_table(), again.metrics_table())
    assert mtimes == {p: (tmp_path / "ck" / p).stat().st_mtime_ns for p in checkpoints}


def test_missing_checkpoints_without_training_is_a_clear_error(tmp_path):
    from rewts.errors import BacktestError

    cfg, ds, strategies = _tiny_world(tmp_path, agents=["buy_and_hold", "llm_rl"])
    cfg.backtest.train_missing = False
    with pytest.raises(BacktestError, match="train_missing: true"):
        backtest_all(cfg, ds, strategies)
