"""Seeded synthetic market data, so that every stage runs offline on a fresh machine.

The model, in one paragraph: a hidden market regime (bull, bear, high volatility) follows a
Markov chain; the index is a geometric Brownian motion whose drift and volatility depend on
the regime; each stock is ``beta * index return + idiosyncratic noise`` (its own beta, drift
and volatility, drawn from the ticker's seed); a VIX-like series follows a mean-reverting log
process around a regime level and moves against the index; a 10-year-yield-like series is a
slow mean-reverting log process (in percent, like Yahoo's ``^TNX``). OHLC are consistent
(``low <= min(open, close)``, ``high >= max(open, close)``) and the calendar is business days
(Monday-Friday, no holidays).

Determinism: the market depends only on the seed and the date range; a stock depends on the
seed, the date range and its ticker (not on which other tickers are requested). Seeds are
derived with SHA-256, never Python's salted ``hash()``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from rewts.data.sources import PRICE_COLUMNS, RawPrices

TRADING_DAYS = 252
#: regimes: bull, bear, high volatility
REGIMES = ("bull", "bear", "high_vol")
#: annual drift and volatility of the index in each regime
INDEX_MU = np.array([0.16, -0.22, -0.05])
INDEX_SIGMA = np.array([0.12, 0.24, 0.42])
#: daily transition probabilities (rows: from; expected stays ~200, ~70, ~40 days)
TRANSITIONS = np.array(
    [
        [0.995, 0.003, 0.002],
        [0.010, 0.9857, 0.0043],
        [0.012, 0.013, 0.975],
    ]
)
#: multiplier of a stock's idiosyncratic volatility in each regime
IDIO_SCALE = np.array([1.0, 1.3, 1.8])
#: VIX-like level around which the series mean-reverts in each regime
VIX_LEVEL = np.array([14.0, 24.0, 38.0])

_INDEX_KINDS = {"GSPC", "SPX", "SPY", "DJI", "IXIC", "NDX", "RUT"}
_VOL_KINDS = {"VIX", "VXN", "VIX3M"}
_YIELD_KINDS = {"TNX", "TYX", "FVX", "IRX"}


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def business_days(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.bdate_range(start, end), name="date").as_unit("ns")


def regime_path(rng: np.random.Generator, n: int) -> np.ndarray:
    """Markov-chain regimes for ``n`` days; loops over regime spells, not over days."""
    states = np.empty(n, dtype=np.int64)
    state, pos = 0, 0
    while pos < n:
        stay = TRANSITIONS[state, state]
        length = int(rng.geometric(1.0 - stay))
        states[pos : pos + length] = state
        pos += length
        leave = TRANSITIONS[state].copy()
        leave[state] = 0.0
        state = int(rng.choice(len(REGIMES), p=leave / leave.sum()))
    return states


def _ohlcv(
    rng: np.random.Generator, close: np.ndarray, daily_sigma: np.ndarray, volume: np.ndarray
) -> pd.DataFrame:
    """Open/high/low around a close path, consistent by construction."""
    n = len(close)
    prev = np.r_[close[0], close[:-1]]
    open_ = prev * np.exp(rng.normal(0.0, 0.25, n) * daily_sigma)
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0.0, 0.5, n)) * daily_sigma)
    low = bottom * np.exp(-np.abs(rng.normal(0.0, 0.5, n)) * daily_sigma)
    return pd.DataFrame(
        {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": close,
            "volume": volume,
        },
        columns=list(PRICE_COLUMNS),
    )


class SyntheticMarket:
    """The shared market of one seed and date range: regimes, index, VIX- and yield-like series."""

    def __init__(self, seed: int, start: dt.date, end: dt.date) -> None:
        self.seed = seed
        self.dates = business_days(start, end)
        n = len(self.dates)
        rng = np.random.default_rng(_seed(seed, "market"))
        self.regimes = regime_path(rng, n)
        self.index_sigma_d = INDEX_SIGMA[self.regimes] / np.sqrt(TRADING_DAYS)
        drift = (INDEX_MU[self.regimes] - 0.5 * INDEX_SIGMA[self.regimes] ** 2) / TRADING_DAYS
        self.index_shock = rng.standard_normal(n)
        self.index_log_ret = drift + self.index_sigma_d * self.index_shock
        self.index_log_ret[0] = 0.0
        self._rng = rng

    def _frame(self, table: pd.DataFrame) -> pd.DataFrame:
        table.index = self.dates
        return table

    def index(self, level0: float = 1400.0) -> pd.DataFrame:
        rng = np.random.default_rng(_seed(self.seed, "index-ohlc"))
        close = level0 * np.exp(np.cumsum(self.index_log_ret))
        volume = np.round(
            3e9 * np.exp(rng.normal(0, 0.2, len(close)) + 3 * np.abs(self.index_log_ret))
        )
        return self._frame(_ohlcv(rng, close, self.index_sigma_d, volume))

    def vix(self) -> pd.DataFrame:
        """Mean-reverting log level around the regime's level, pushed up when the index falls."""
        rng = np.random.default_rng(_seed(self.seed, "vix"))
        n = len(self.dates)
        level = np.log(VIX_LEVEL[self.regimes])
        # the regime level moves in over a couple of weeks rather than jumping
        smooth = lfilter([0.1], [1.0, -0.9], level - level[0]) + level[0]
        shocks = -0.9 * self.index_shock * 0.06 + rng.normal(0.0, 0.03, n)
        deviation = lfilter([1.0], [1.0, -0.94], shocks)
        close = np.exp(smooth + deviation)
        sigma = np.full(n, 0.05)
        return self._frame(_ohlcv(rng, close, sigma, np.zeros(n)))

    def treasury_yield(self, level0: float = 2.0) -> pd.DataFrame:
        """A slow mean-reverting log yield in percent (around ``level0``)."""
        rng = np.random.default_rng(_seed(self.seed, "yield"))
        n = len(self.dates)
        deviation = lfilter([1.0], [1.0, -0.998], rng.normal(0.0, 0.012, n))
        close = level0 * np.exp(deviation)
        return self._frame(_ohlcv(rng, close, np.full(n, 0.008), np.zeros(n)))

    def stock(self, ticker: str) -> pd.DataFrame:
        """``beta * index log return + drift + idiosyncratic noise`` with the ticker's own draws."""
        rng = np.random.default_rng(_seed(self.seed, "stock", ticker.upper()))
        n = len(self.dates)
        beta = rng.uniform(0.8, 1.5)
        alpha = rng.uniform(-0.02, 0.12) / TRADING_DAYS
        idio = rng.uniform(0.18, 0.35) / np.sqrt(TRADING_DAYS) * IDIO_SCALE[self.regimes]
        log_ret = beta * self.index_log_ret + alpha - 0.5 * idio**2 + idio * rng.standard_normal(n)
        log_ret[0] = 0.0
        close = rng.uniform(20.0, 300.0) * np.exp(np.cumsum(log_ret))
        sigma_d = np.sqrt((beta * self.index_sigma_d) ** 2 + idio**2)
        base = rng.uniform(5e6, 8e7)
        volume = np.round(base * np.exp(rng.normal(0, 0.25, n) + 0.3 * np.abs(log_ret) / sigma_d))
        return self._frame(_ohlcv(rng, close, sigma_d, volume))

    def symbol(self, symbol: str) -> pd.DataFrame:
        """A market-context symbol, by kind: index-like, VIX-like, yield-like, else stock-like."""
        name = symbol.lstrip("^").upper()
        if name in _INDEX_KINDS:
            return self.index()
        if name in _VOL_KINDS:
            return self.vix()
        if name in _YIELD_KINDS:
            return self.treasury_yield()
        return self.stock(name)


def generate(
    tickers: Sequence[str],
    market_symbols: Mapping[str, str],
    *,
    seed: int,
    start: dt.date,
    end: dt.date,
) -> RawPrices:
    """Synthetic OHLCV for ``tickers`` and the market symbols on business days ``start..end``."""
    market = SyntheticMarket(seed, start, end)
    return RawPrices(
        source="synthetic",
        tickers={t: market.stock(t) for t in tickers},
        market={prefix: market.symbol(sym) for prefix, sym in market_symbols.items()},
    )
