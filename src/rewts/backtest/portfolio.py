"""From target positions to P&L and metrics, through the environment's own accounting.

Every agent, rule-based or learned, is turned into a sequence of targets in ``[-1, 1]`` (row
``t`` = the target decided for test day ``t`` from data up to day ``t-1``, executed at the
close of day ``t``) and handed to :func:`rewts.env.accounting.simulate`, the function the
training environment steps through. So P&L is computed one way only: same costs, same
margin rule, same drawdown stop as in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rewts.backtest.result import AgentRun
from rewts.config.models import BacktestConfig, TradingEnvConfig
from rewts.env.accounting import PortfolioPath, simulate
from rewts.errors import DataError
from rewts.metrics import summarize


def held_exposure(path: PortfolioPath, close: np.ndarray) -> np.ndarray:
    """Signed weight held *over* each day: the weight after the previous close's trade.

    A trade at close ``t`` first earns on day ``t+1``, so day ``t``'s return belongs to the
    book as it stood after close ``t-1`` (flat before the first day).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        after = np.where(path.equity > 0, path.positions * close / path.equity, 0.0)
    return np.concatenate([np.zeros((*after.shape[:-1], 1)), after[..., :-1]], axis=-1)


def traded_fraction(path: PortfolioPath, close: np.ndarray) -> np.ndarray:
    """Value traded at each close as a fraction of the value marked there before trading."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(path.marks > 0, np.abs(path.trades) * close / path.marks, 0.0)


def evaluate(
    targets: np.ndarray,
    close: np.ndarray,
    dates: pd.DatetimeIndex,
    *,
    ticker: str,
    agents: Sequence[str],
    runs: Sequence[int],
    seeds: Sequence[int],
    env: TradingEnvConfig,
    backtest: BacktestConfig,
) -> list[AgentRun]:
    """Simulate ``targets`` (``(k, T)``, one row per agent run) in one batched call."""
    targets = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    k, n = targets.shape
    if not (len(agents) == len(runs) == len(seeds) == k):
        raise DataError(
            f"{k} target rows but {len(agents)} agents, {len(runs)} runs, {len(seeds)} seeds"
        )
    if len(dates) != n:
        raise DataError(f"{n} target days but {len(dates)} dates")
    close = np.asarray(close, dtype=np.float64)
    path = simulate(close, targets, env)
    held = held_exposure(path, close)
    flow = traded_fraction(path, close)
    out = []
    for i in range(k):
        metrics = summarize(
            path.returns[i],
            held[i],
            traded=flow[i],
            risk_free_rate=backtest.risk_free_rate,
            periods_per_year=backtest.periods_per_year,
        )
        out.append(
            AgentRun(
                ticker=ticker,
                agent=agents[i],
                run=int(runs[i]),
                seed=int(seeds[i]),
                dates=dates,
                returns=path.returns[i],
                positions=held[i],
                equity=path.equity[i],
                trades=path.trades[i],
                costs=path.costs[i],
                metrics=metrics,
                stopped=dates[int(np.argmin(path.alive[i]))] if not path.alive[i].all() else None,
            )
        )
    return out
