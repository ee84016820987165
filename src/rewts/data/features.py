"""Technical and market-context features, vectorized (TA-Lib for the classic indicators).

The rule: every feature on row ``t`` uses data up to and including day ``t`` only. Consumers
that act on day ``t`` must therefore read row ``t-1`` (the timeline and the environment do).

Definitions (``close``/``high``/``low`` are the split-adjusted prices as charted; return-based
features use ``adj_close`` so that a dividend does not look like a price drop):

* ``return_1d``, ``return_5d``: ``adj_close[t] / adj_close[t-k] - 1`` for k = 1, 5 trading days
  (``return_5d`` is the weekly return).
* ``sma_N``: mean of the last N closes (TA-Lib ``SMA``), N in 20, 50, 100, 200.
* ``sma_N_slope``: the 5-day relative change of that average,
  ``sma_N[t] / sma_N[t-5] - 1`` (dimensionless, comparable across stocks and price levels).
* ``rsi_14``: Wilder's RSI (TA-Lib ``RSI``: averages seeded with a simple mean, then Wilder's
  smoothing ``avg[t] = (13 * avg[t-1] + x[t]) / 14``).
* ``macd``, ``macd_signal``, ``macd_hist``: EMA(12) - EMA(26) of close, its EMA(9), and their
  difference (TA-Lib ``MACD``; each EMA is seeded with the simple mean of its first window).
* ``atr_14``: Wilder-smoothed true range, ``TR = max(high - low, |high - close[t-1]|,
  |low - close[t-1]|)`` (TA-Lib ``ATR``).
* ``hv_20``: annualized standard deviation (ddof 1) of the last 20 daily log returns of
  ``adj_close``, times ``sqrt(252)``.
* ``beta_60``: ``cov(r_stock, r_sp500) / var(r_sp500)`` over the last 60 daily returns, both
  measured between the stock's own trading days (only when the ``sp500`` market symbol exists).
* ``<prefix>_close``: the market symbol's close on the stock's calendar; ``<prefix>_slope``:
  the 5-day relative change of its 20-day SMA, computed on the symbol's own calendar. A day on
  which the symbol has no row (a bond-market holiday for TNX) takes the symbol's latest
  earlier value: only past values, at most :data:`MARKET_MAX_STALE_DAYS` calendar days old,
  never a later one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import talib

from rewts.data.sources import PRICE_COLUMNS

SMA_WINDOWS: tuple[int, ...] = (20, 50, 100, 200)
SLOPE_DAYS = 5
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
ATR_PERIOD = 14
HV_WINDOW = 20
BETA_WINDOW = 60
MARKET_SMA = 20
TRADING_DAYS = 252
#: the market prefix that beta is measured against
BETA_PREFIX = "sp500"
#: a market value older than this (calendar days) is not carried forward: the row is NaN
MARKET_MAX_STALE_DAYS = 7
#: bump when a definition above changes, so stored datasets are rebuilt
FEATURES_VERSION = "1"

STOCK_FEATURES: tuple[str, ...] = (
    "return_1d",
    "return_5d",
    *(f"sma_{n}" for n in SMA_WINDOWS),
    *(f"sma_{n}_slope" for n in SMA_WINDOWS),
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "atr_14",
    "hv_20",
)


def feature_columns(market_prefixes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Model feature columns for the given available market prefixes, in frame order."""
    beta = ("beta_60",) if BETA_PREFIX in market_prefixes else ()
    market = tuple(col for p in market_prefixes for col in (f"{p}_close", f"{p}_slope"))
    return (*STOCK_FEATURES, *beta, *market)


def relative_change(values: pd.Series, days: int) -> pd.Series:
    """``x[t] / x[t - days] - 1``: uses rows ``t - days .. t`` only."""
    return values / values.shift(days) - 1.0


def historical_volatility(adj_close: pd.Series, window: int = HV_WINDOW) -> pd.Series:
    log_ret = np.log(adj_close).diff()
    return log_ret.rolling(window, min_periods=window).std(ddof=1) * np.sqrt(TRADING_DAYS)


def rolling_beta(
    stock_ret: pd.Series, market_ret: pd.Series, window: int = BETA_WINDOW
) -> pd.Series:
    cov = stock_ret.rolling(window, min_periods=window).cov(market_ret)
    var = market_ret.rolling(window, min_periods=window).var()
    return cov / var


def align_past(series: pd.Series, calendar: pd.DatetimeIndex) -> tuple[pd.Series, int]:
    """``series`` on ``calendar``: each day takes the latest value dated on or before it.

    Returns the aligned series and how many calendar days took an earlier day's value. Values
    older than :data:`MARKET_MAX_STALE_DAYS` become NaN (a stale level is not a feature).
    """
    src = series.dropna()
    if src.empty:
        return pd.Series(np.nan, index=calendar), 0
    pos = src.index.searchsorted(calendar, side="right") - 1
    found = pos >= 0
    safe = np.where(found, pos, 0)
    values = np.where(found, src.to_numpy(np.float64)[safe], np.nan)
    age = (calendar - src.index[safe]).days.to_numpy()
    values = np.where(found & (age <= MARKET_MAX_STALE_DAYS), values, np.nan)
    filled = int((found & (age > 0) & (age <= MARKET_MAX_STALE_DAYS)).sum())
    return pd.Series(values, index=calendar), filled


def stock_features(prices: pd.DataFrame) -> pd.DataFrame:
    """The per-stock features of one OHLCV table (same index)."""
    close = prices["close"].to_numpy(np.float64)
    high = prices["high"].to_numpy(np.float64)
    low = prices["low"].to_numpy(np.float64)
    adj = prices["adj_close"].astype(np.float64)
    out: dict[str, np.ndarray | pd.Series] = {
        "return_1d": relative_change(adj, 1),
        "return_5d": relative_change(adj, 5),
    }
    smas = {n: pd.Series(talib.SMA(close, timeperiod=n), index=prices.index) for n in SMA_WINDOWS}
    for n, sma in smas.items():
        out[f"sma_{n}"] = sma
    for n, sma in smas.items():
        out[f"sma_{n}_slope"] = relative_change(sma, SLOPE_DAYS)
    out["rsi_14"] = talib.RSI(close, timeperiod=RSI_PERIOD)
    macd, signal, hist = talib.MACD(
        close, fastperiod=MACD_FAST, slowperiod=MACD_SLOW, signalperiod=MACD_SIGNAL
    )
    out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, hist
    out["atr_14"] = talib.ATR(high, low, close, timeperiod=ATR_PERIOD)
    out["hv_20"] = historical_volatility(adj)
    return pd.DataFrame(
        {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}, index=prices.index
    )


def market_features(prefix: str, market: pd.DataFrame) -> pd.DataFrame:
    """``<prefix>_close`` and ``<prefix>_slope`` on the symbol's own calendar."""
    close = market["close"].astype(np.float64)
    sma = pd.Series(talib.SMA(close.to_numpy(), timeperiod=MARKET_SMA), index=market.index)
    return pd.DataFrame(
        {f"{prefix}_close": close, f"{prefix}_slope": relative_change(sma, SLOPE_DAYS)}
    )


def compute_features(
    prices: pd.DataFrame, market: Mapping[str, pd.DataFrame]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """OHLCV plus every feature column, and per market prefix the number of days that took
    an earlier day's value (see :func:`align_past`).

    ``market`` maps a prefix (``sp500``) to that symbol's OHLCV table; prefixes absent from it
    get no columns at all.
    """
    calendar = pd.DatetimeIndex(prices.index)
    frame = prices[list(PRICE_COLUMNS)].astype(np.float64)
    parts = [frame, stock_features(frame)]
    carried: dict[str, int] = {}
    aligned: dict[str, pd.Series] = {}
    for prefix, table in market.items():
        own = market_features(prefix, table)
        cols = {}
        for col in own.columns:
            cols[col], filled = align_past(own[col], calendar)
            if col.endswith("_close"):
                carried[prefix] = filled
        aligned[prefix] = cols[f"{prefix}_close"]
        parts.append(pd.DataFrame(cols, index=calendar))
    if BETA_PREFIX in aligned:
        beta = rolling_beta(
            relative_change(frame["adj_close"], 1), relative_change(aligned[BETA_PREFIX], 1)
        )
        parts.insert(2, beta.rename("beta_60").to_frame())
    result = pd.concat(parts, axis=1)
    ordered = [*PRICE_COLUMNS, *feature_columns(list(market))]
    return result[ordered], carried
