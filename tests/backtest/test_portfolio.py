"""Backtest P&L goes through the environment's accounting, and the baselines are what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rewts.backtest.baselines import buy_and_hold, llm_only, placebo_strategies
from rewts.backtest.portfolio import evaluate
from rewts.config.models import BacktestConfig, TradingEnvConfig
from rewts.data.timeline import Timeline
from rewts.env.accounting import Rules, trade_step
from rewts.env.factory import daily_tau


def _prices(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return 100 * np.cumprod(1 + rng.normal(0.0005, 0.02, n))


def _step_loop(close, targets, rules):
    """The accounting stepped one day at a time, as the environment does."""
    cash, shares, held, peak, alive = rules.initial_balance, 0.0, 0.0, rules.initial_balance, True
    equity = []
    for price, target in zip(close, targets, strict=True):
        s = trade_step(cash, shares, held, peak, alive, float(price), float(target), rules)
        cash, shares, held, peak, alive = s.cash, s.shares, s.target, s.peak, s.alive
        equity.append(s.equity)
    return np.array(equity)


@pytest.mark.parametrize("stop", [None, 0.15])
def test_backtest_pnl_equals_the_stepwise_accounting(stop):
    close = _prices()
    rng = np.random.default_rng(1)
    targets = rng.choice([-1.0, 0.0, 1.0], size=(3, close.size))
    env = TradingEnvConfig(max_drawdown_limit=stop)
    dates = pd.bdate_range("2018-01-02", periods=close.size)
    runs = evaluate(
        targets,
        close,
        dates,
        ticker="T",
        agents=["a", "b", "c"],
        runs=[0, 0, 0],
        seeds=[0, 0, 0],
        env=env,
        backtest=BacktestConfig(),
    )
    rules = Rules.from_config(env)
    for run, target in zip(runs, targets, strict=True):
        equity = _step_loop(close, target, rules)
        np.testing.assert_allclose(run.equity, equity, rtol=1e-12)
        prev = np.concatenate([[rules.initial_balance], equity[:-1]])
        np.testing.assert_allclose(run.returns, equity / prev - 1, rtol=1e-10, atol=1e-15)


def test_buy_and_hold_without_costs_tracks_the_stock():
    close = _prices()
    env = TradingEnvConfig(transaction_cost=0.0, max_position=1.0, max_drawdown_limit=None)
    dates = pd.bdate_range("2018-01-02", periods=close.size)
    (run,) = evaluate(
        buy_and_hold(close.size)[None],
        close,
        dates,
        ticker="T",
        agents=["buy_and_hold"],
        runs=[0],
        seeds=[0],
        env=env,
        backtest=BacktestConfig(),
    )
    # bought at the first close: day 0 earns nothing, then exactly the stock's returns
    assert run.returns[0] == pytest.approx(0.0)
    np.testing.assert_allclose(run.returns[1:], close[1:] / close[:-1] - 1, rtol=1e-9)
    assert run.metrics["n_trades"] == 1
    assert run.positions[0] == 0.0 and run.positions[1:] == pytest.approx(1.0)
    assert run.metrics["exposure"] == pytest.approx((close.size - 1) / close.size)


def test_costs_are_charged_on_the_trade_day():
    close = np.full(10, 50.0)
    targets = np.array([[1, 1, 1, -1, -1, -1, 0, 0, 0, 0]], dtype=float)
    env = TradingEnvConfig(transaction_cost=0.001, max_position=1.0, max_drawdown_limit=None)
    (run,) = evaluate(
        targets,
        close,
        pd.bdate_range("2018-01-02", periods=10),
        ticker="T",
        agents=["x"],
        runs=[0],
        seeds=[0],
        env=env,
        backtest=BacktestConfig(),
    )
    traded_days = np.flatnonzero(run.costs > 0)
    assert traded_days.tolist() == [0, 3, 6]
    np.testing.assert_allclose(run.returns[[1, 2, 4, 5, 7, 8, 9]], 0.0, atol=1e-14)
    assert run.metrics["n_trades"] == 3


def _timeline(n=300):
    return Timeline(pd.bdate_range("2017-01-02", periods=n), strategy_frequency=20, warmup=40)


def _strategies(tl):
    tau = np.tile([0.5, -0.3, 0.0, 0.9], len(tl.periods))[: len(tl.periods)]
    return pd.DataFrame(
        {"period": range(len(tl.periods)), "tau": tau, "direction": (tau > 0).astype(int)}
    )


def test_llm_only_follows_each_period_and_is_flat_on_zero_tau():
    tl = _timeline()
    strat = _strategies(tl)
    tau = daily_tau(strat, tl)
    assert (tau[: tl.warmup] == 0).all()
    for p in tl.periods:
        assert (tau[p.start_pos : p.end_pos + 1] == strat.tau[p.index]).all()
    pos = llm_only(tau)
    assert set(np.unique(pos)) == {-1.0, 0.0, 1.0}
    assert (pos[tau == 0] == 0).all()


def test_placebos_keep_values_but_drop_information():
    tl = _timeline()
    strat = _strategies(tl)
    test_start = tl.dates[200]
    const = placebo_strategies(strat, "constant", timeline=tl, test_start=test_start, seed=0)
    before = [p.index for p in tl.periods if p.end < test_start]
    assert const.tau.nunique() == 1
    assert const.tau.iloc[0] == pytest.approx(strat.tau[before].mean())
    shuf = placebo_strategies(strat, "shuffled", timeline=tl, test_start=test_start, seed=0)
    assert sorted(shuf.tau) == sorted(strat.tau) and not (shuf.tau == strat.tau).all()
    again = placebo_strategies(strat, "shuffled", timeline=tl, test_start=test_start, seed=0)
    assert (again.tau == shuf.tau).all()  # seeded


def test_the_drawdown_stop_is_recorded_and_noted():
    close = np.concatenate([np.full(5, 100.0), np.linspace(100, 70, 20), np.full(10, 70.0)])
    env = TradingEnvConfig(max_drawdown_limit=0.15)
    dates = pd.bdate_range("2018-01-02", periods=close.size)
    (run,) = evaluate(
        buy_and_hold(close.size)[None],
        close,
        dates,
        ticker="T",
        agents=["buy_and_hold"],
        runs=[0],
        seeds=[0],
        env=env,
        backtest=BacktestConfig(),
    )
    assert run.stopped is not None
    k = dates.get_loc(run.stopped)
    assert close[k] / close[0] < 0.87  # about 15 % below the peak (95 % invested)
    assert (run.positions[k + 1 :] == 0).all() and run.metrics["max_drawdown"] < 0.2
