"""Rule-based agents and the LLM-signal variants the backtest needs: pure array functions.

* Buy & Hold: fully long on every test day.
* LLM-only: each period's LLM direction, ``sign(tau)``. A period with ``tau == 0`` (a neutral
  fallback after a failed call, or zero strength) is **flat**: it carries no information, and
  keeping the previous direction would invent a signal the LLM never gave.
* Placebo tau (:func:`rewts.training.variants.placebo_strategies`, which trains on it too):
  ``constant`` replaces every period's tau with the mean tau of the periods that end before
  the test starts; ``shuffled`` permutes tau across all periods with a seeded generator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rewts.errors import DataError
from rewts.training.variants import PlaceboKind, placebo_strategies

__all__ = [
    "PlaceboKind",
    "buy_and_hold",
    "check_strategies",
    "llm_only",
    "placebo_strategies",
]


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


def llm_only(tau: np.ndarray) -> np.ndarray:
    """Follow the LLM: long for tau > 0, short for tau < 0, flat for tau == 0."""
    return np.sign(np.asarray(tau, dtype=np.float64))
