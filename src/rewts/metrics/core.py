"""Performance metrics of one daily-return series: pure, vectorized, one convention for all.

The convention (also in docs/backtest.md), chosen so that every agent and baseline is scored
the same way and so that the numbers match empyrical-reloaded where both define a metric:

* ``returns`` are **simple daily returns of portfolio value**, ``r_t = V_t / V_{t-1} - 1``,
  one per trading day of the test range. The first test day is **included**: its return is
  measured from the initial capital held at the close before the test starts. No leading
  "warm-up" zeros are added and none are dropped; days spent in cash count (as zero returns).
* Averages over time are arithmetic means; dispersion is the **sample** standard deviation
  (``ddof=1``). Annualization uses ``periods_per_year`` (252).
* ``risk_free_rate`` is an **annual** rate, turned into a per-day rate geometrically:
  ``(1 + rf) ** (1 / periods_per_year) - 1``; Sharpe and Sortino use excess returns over it.
* ``max_drawdown`` is reported as a **positive fraction** (0.31 = a 31 % fall from the peak),
  measured on the equity curve that starts at 1 before the first day, as in the paper's
  Table VIII.
* ``positions`` are the signed exposure held over each day as a fraction of portfolio value
  (+1 all-in long, -1 all-in short, 0 flat). The position before the first day is 0 (the test
  starts in cash), so entering the market on day one counts as a trade.
* A ratio whose denominator is zero (constant returns, no drawdown, never in the market) is
  NaN: undefined, never a made-up 0 or infinity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rewts.errors import DataError

ArrayLike = npt.ArrayLike

#: the metrics :func:`summarize` returns, in table order
METRIC_NAMES: tuple[str, ...] = (
    "cumulative_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration",
    "calmar",
    "hit_rate",
    "turnover",
    "n_trades",
    "exposure",
    "n_days",
)

#: metrics where a larger value is better (the report uses this to colour and rank)
HIGHER_IS_BETTER: dict[str, bool] = {
    "cumulative_return": True,
    "annual_return": True,
    "annual_volatility": False,
    "sharpe": True,
    "sortino": True,
    "max_drawdown": False,
    "max_drawdown_duration": False,
    "calmar": True,
    "hit_rate": True,
}


def as_returns(returns: ArrayLike, *, name: str = "returns") -> np.ndarray:
    """Validate a daily-return series: 1-D, finite, every value above -100 %."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(
            f"{name} has {int(bad.sum())} non-finite value(s), first at position "
            f"{int(np.argmax(bad))}; fill or drop them before computing metrics"
        )
    if (arr < -1.0).any():
        pos = int(np.argmax(arr < -1.0))
        raise DataError(
            f"{name}[{pos}] = {arr[pos]:.4f}: a simple return below -100 % is impossible "
            "(log returns passed by mistake?)"
        )
    return arr


def daily_risk_free(risk_free_rate: float, periods_per_year: int = 252) -> float:
    """Per-period rate equivalent to an annual ``risk_free_rate`` (geometric)."""
    return float((1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0)


def equity_curve(returns: ArrayLike, initial: float = 1.0) -> np.ndarray:
    """Portfolio value after each day, starting from ``initial`` before the first day."""
    return initial * np.cumprod(1.0 + as_returns(returns))


def cumulative_return(returns: ArrayLike) -> float:
    r = as_returns(returns)
    return float(np.prod(1.0 + r) - 1.0) if r.size else float("nan")


def annual_return(returns: ArrayLike, periods_per_year: int = 252) -> float:
    """Compound annual growth rate over ``len(returns) / periods_per_year`` years."""
    r = as_returns(returns)
    if r.size == 0:
        return float("nan")
    growth = np.prod(1.0 + r)
    return float(growth ** (periods_per_year / r.size) - 1.0)


def annual_volatility(returns: ArrayLike, periods_per_year: int = 252) -> float:
    r = as_returns(returns)
    if r.size < 2:
        return float("nan")
    return float(np.std(r, ddof=1) * np.sqrt(periods_per_year))


def _excess_returns(
    returns: ArrayLike, risk_free_rate: float, periods_per_year: int
) -> np.ndarray | None:
    """The returns above the daily risk-free rate; None for fewer than two (no ratio then)."""
    r = as_returns(returns)
    if r.size < 2:
        return None
    return r - daily_risk_free(risk_free_rate, periods_per_year)


def sharpe_ratio(
    returns: ArrayLike, risk_free_rate: float = 0.0, periods_per_year: int = 252
) -> float:
    """``sqrt(P) * mean(r - rf_d) / std(r - rf_d, ddof=1)``; NaN for a constant series."""
    excess = _excess_returns(returns, risk_free_rate, periods_per_year)
    if excess is None:
        return float("nan")
    std = np.std(excess, ddof=1)
    if std == 0.0 or not np.isfinite(std):
        return float("nan")
    return float(np.mean(excess) / std * np.sqrt(periods_per_year))


def downside_risk(
    returns: ArrayLike, risk_free_rate: float = 0.0, periods_per_year: int = 252
) -> float:
    """Annualized root-mean-square of the shortfalls below the risk-free rate (all days count)."""
    r = as_returns(returns)
    if r.size == 0:
        return float("nan")
    shortfall = np.minimum(r - daily_risk_free(risk_free_rate, periods_per_year), 0.0)
    return float(np.sqrt(np.mean(shortfall**2)) * np.sqrt(periods_per_year))


def sortino_ratio(
    returns: ArrayLike, risk_free_rate: float = 0.0, periods_per_year: int = 252
) -> float:
    """Annualized mean excess return over :func:`downside_risk`; NaN with no down day."""
    excess = _excess_returns(returns, risk_free_rate, periods_per_year)
    risk = downside_risk(returns, risk_free_rate, periods_per_year)
    if excess is None or risk == 0.0:
        return float("nan")
    return float(np.mean(excess) * periods_per_year / risk)


def drawdown_series(returns: ArrayLike) -> np.ndarray:
    """Fall from the running peak after each day, as a fraction <= 0 (peak includes the start)."""
    equity = equity_curve(returns)
    peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    return equity / peak - 1.0


def max_drawdown(returns: ArrayLike) -> float:
    """Largest fall from a running peak, as a positive fraction (0 if equity never fell)."""
    r = as_returns(returns)
    if r.size == 0:
        return float("nan")
    return float(-drawdown_series(r).min())


def max_drawdown_duration(returns: ArrayLike) -> int:
    """Longest run of consecutive days spent below a previous peak (unrecovered runs count).

    A day is "under water" when its equity is strictly below the running peak; the duration
    is the number of such consecutive trading days, so a fall on day 3 recovered on day 7
    lasts 4 days (days 3, 4, 5, 6).
    """
    under = drawdown_series(returns) < 0.0
    if not under.any():
        return 0
    # lengths of runs of True, vectorized: positions where runs start and end
    padded = np.concatenate(([False], under, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def calmar_ratio(returns: ArrayLike, periods_per_year: int = 252) -> float:
    """Annual return over max drawdown; NaN when there was no drawdown."""
    mdd = max_drawdown(returns)
    if not mdd > 0.0:
        return float("nan")
    return annual_return(returns, periods_per_year) / mdd


def as_positions(positions: ArrayLike, n: int) -> np.ndarray:
    """Validate a per-day series (exposure, traded value) of length ``n``."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape != (n,):
        raise DataError(f"positions must have one value per return ({n}), got shape {pos.shape}")
    if not np.isfinite(pos).all():
        raise DataError("positions contain non-finite values")
    return pos


def position_changes(positions: ArrayLike) -> np.ndarray:
    """Absolute change of exposure on each day, starting from flat before the first day."""
    pos = np.asarray(positions, dtype=np.float64)
    return np.abs(np.diff(pos, prepend=0.0))


def hit_rate(returns: ArrayLike, positions: ArrayLike | None = None) -> float:
    """Share of days in the market that made money (``positions`` None: days with r != 0)."""
    r = as_returns(returns)
    active = r != 0.0 if positions is None else as_positions(positions, r.size) != 0.0
    if not active.any():
        return float("nan")
    return float(np.mean(r[active] > 0.0))


def turnover(positions: ArrayLike, periods_per_year: int = 252) -> float:
    """Annualized traded exposure: ``P * mean(|pos_t - pos_{t-1}|)`` (a flip long->short is 2)."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.size == 0:
        return float("nan")
    return float(position_changes(pos).mean() * periods_per_year)


def n_trades(positions: ArrayLike, *, tol: float = 1e-12) -> int:
    """Number of days on which the exposure changed (entering on day one counts)."""
    return int((position_changes(positions) > tol).sum())


def exposure(positions: ArrayLike) -> float:
    """Mean absolute exposure: 1.0 means fully invested (long or short) every day."""
    pos = np.asarray(positions, dtype=np.float64)
    return float(np.abs(pos).mean()) if pos.size else float("nan")


def summarize(
    returns: ArrayLike,
    positions: ArrayLike | None = None,
    *,
    traded: ArrayLike | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: int = 252,
) -> dict[str, Any]:
    """Every metric of :data:`METRIC_NAMES` for one agent's test run, under the one convention.

    ``positions`` (signed exposure held over each day) enables hit rate on days in the
    market, turnover, number of trades and exposure; without it those are NaN (hit rate falls
    back to days with a non-zero return). ``traded`` (the value traded each day as a fraction
    of portfolio value, from the accounting's actual trades) replaces the position changes for
    turnover and the trade count: with a drifting position weight, the changes of exposure
    are not trades.
    """
    r = as_returns(returns)
    if r.size < 2:
        raise DataError(f"at least 2 daily returns are needed for metrics, got {r.size}")
    pos = None if positions is None else as_positions(positions, r.size)
    nan = float("nan")
    if traded is not None:
        flow = np.abs(as_positions(traded, r.size))
        trade_turnover = float(flow.mean() * periods_per_year)
        trade_count = int((flow > 1e-12).sum())
    elif pos is not None:
        trade_turnover, trade_count = turnover(pos, periods_per_year), n_trades(pos)
    else:
        trade_turnover, trade_count = nan, nan
    return {
        "cumulative_return": cumulative_return(r),
        "annual_return": annual_return(r, periods_per_year),
        "annual_volatility": annual_volatility(r, periods_per_year),
        "sharpe": sharpe_ratio(r, risk_free_rate, periods_per_year),
        "sortino": sortino_ratio(r, risk_free_rate, periods_per_year),
        "max_drawdown": max_drawdown(r),
        "max_drawdown_duration": max_drawdown_duration(r),
        "calmar": calmar_ratio(r, periods_per_year),
        "hit_rate": hit_rate(r, pos),
        "turnover": trade_turnover,
        "n_trades": trade_count,
        "exposure": nan if pos is None else exposure(pos),
        "n_days": int(r.size),
    }
