"""Rule-based agents and the LLM-signal variants the backtest needs: pure array functions.

* Buy & Hold: fully long on every test day.
* LLM-only: each period's LLM direction, ``sign(tau)``. A period with ``tau == 0`` (a neutral
  fallback after a failed call, or zero strength) is **flat**: it carries no information, and
  keeping the previous direction would invent a signal the LLM never gave.
* Placebo tau: ``constant`` replaces every period's tau with the mean tau of the periods
  that end before the test starts (no test-period information); ``shuffled`` permutes tau
  across all periods with a seeded generator (same values, wrong timing).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from rewts.data.timeline import Timeline
from rewts.errors import DataError

PlaceboKind = Literal["constant", "shuffled"]


def buy_and_hold(n_days: int) -> np.ndarray:
    return np.ones(n_days)


def check_strategies(strategies: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """The columns the backtest reads, or an error that names what is missing."""
    need = {"period", "tau"}
    missing = need - set(strategies.columns)
    if missing:
        raise DataError(
            f"strategies for {ticker} lack column(s) {sorted(missing)}; regenerate them with "
            "`rewts strategies`"
        )
    if strategies["period"].duplicated().any():
        dup = int(strategies.loc[strategies["period"].duplicated(), "period"].iloc[0])
        raise DataError(f"strategies for {ticker} have period {dup} twice")
    tau = strategies["tau"].to_numpy(dtype=float)
    if not np.isfinite(tau).all() or (np.abs(tau) > 1.0 + 1e-9).any():
        raise DataError(f"strategies for {ticker}: tau must be finite and within [-1, 1]")
    return strategies


def daily_tau(strategies: pd.DataFrame, timeline: Timeline) -> np.ndarray:
    """Tau on every calendar day: the value of the period containing the day (0 elsewhere).

    Periods without a strategy (skipped) count as 0 (no signal).
    """
    values = {
        int(p): float(t)
        for p, t in zip(strategies["period"], strategies["tau"], strict=True)
        if 0 <= int(p) < len(timeline.periods)
    }
    return timeline.daily_from_periods(values, fill=0.0)


def llm_only(tau: np.ndarray) -> np.ndarray:
    """Follow the LLM: long for tau > 0, short for tau < 0, flat for tau == 0."""
    return np.sign(np.asarray(tau, dtype=np.float64))


def placebo_strategies(
    strategies: pd.DataFrame,
    kind: PlaceboKind,
    *,
    timeline: Timeline,
    test_start: pd.Timestamp,
    seed: int,
) -> pd.DataFrame:
    """A copy of ``strategies`` whose tau carries no information about its period."""
    out = strategies.copy()
    tau = out["tau"].to_numpy(dtype=float)
    if kind == "constant":
        ends = np.array(
            [timeline.periods[int(p)].end for p in out["period"]], dtype="datetime64[ns]"
        )
        before = ends < np.datetime64(pd.Timestamp(test_start))
        value = float(tau[before].mean()) if before.any() else 0.0
        out["tau"] = value
    elif kind == "shuffled":
        out["tau"] = np.random.default_rng(seed).permutation(tau)
    else:
        raise DataError(f"unknown placebo {kind!r}: use 'constant' or 'shuffled'")
    if "direction" in out.columns:
        out["direction"] = (out["tau"] > 0).astype(int)
    out.attrs["placebo"] = kind
    return out
