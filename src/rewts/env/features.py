"""The observation matrix, computed once per ticker: row ``t`` is what the agent may know when it
decides for day ``t``, built from data rows ``<= t-1`` only.

Three feature sets (``trading_env.features``), because the observation must be sized to the
data: a few hundred to a few thousand training decisions cannot fit 145 inputs without
memorizing them (docs/rl.md, "Inputs vs data").

* ``compact`` (default, 11 market inputs): log returns of ``adj_close`` over 1, 5, 20 and 60
  days, the 20-day volatility of daily returns, RSI 14, MACD histogram, SMA 50 and SMA 200
  against the close, the VIX level and the S&P 500 trend (those present in the data).
* ``full``: ``4 * window`` price/volume history values (daily log return of ``adj_close``,
  high-low range over close, close position within the range, log volume; lag 1 first), then
  every indicator of the data layer.
* ``tdqn``: Théate & Ernst's state, the ``4 * window`` history values without indicators.

Columns the caller adds to the frame on purpose (``extra_columns``, e.g. the leak sanity
check's) follow the market part in every set. Then the held position, then (with LLM
guidance) ``tau``.

Normalization uses statistics of the TRAINING range only (``split.train_start..train_end``),
so the test period never shapes its own inputs. Price-scale indicators (SMAs, MACD, ATR) are
divided by the same day's close first, and the S&P 500 level becomes its daily change, so that
every column is comparable across years.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from rewts.errors import DataError

#: |value| cap after normalization (the observation space's bound)
OBS_CLIP = 10.0
HISTORY_FEATURES: tuple[str, ...] = ("ret", "range", "closepos", "logvol")
_PRICE_SCALE = ("macd", "macd_signal", "macd_hist", "atr_14")
_LEVEL_TO_CHANGE = ("sp500_close",)
FeatureSet = Literal["compact", "full", "tdqn"]
FEATURE_SETS: tuple[str, ...] = ("compact", "full", "tdqn")
#: ``compact``: horizons (trading days) of the cumulative log returns, and the volatility window
COMPACT_HORIZONS: tuple[int, ...] = (1, 5, 20, 60)
COMPACT_VOL_WINDOW = 20
#: ``compact``: the data layer's indicators it keeps (when the frame has them)
COMPACT_INDICATORS: tuple[str, ...] = (
    "rsi_14",
    "macd_hist",
    "sma_50",
    "sma_200",
    "vix_close",
    "sp500_slope",
)


def _indicator_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = frame[column].to_numpy(np.float64)
    close = frame["close"].to_numpy(np.float64)
    is_sma_level = column.startswith("sma_") and not column.endswith("_slope")
    if is_sma_level:
        return values / close - 1.0
    if column in _PRICE_SCALE:
        return values / close
    if column in _LEVEL_TO_CHANGE:
        out = np.zeros_like(values)
        out[1:] = values[1:] / values[:-1] - 1.0
        return out
    return values


def _history_values(frame: pd.DataFrame) -> np.ndarray:
    """Per day (from that day's bar and the one before): the four history features."""
    adj = frame["adj_close"].to_numpy(np.float64)
    close = frame["close"].to_numpy(np.float64)
    high = frame["high"].to_numpy(np.float64)
    low = frame["low"].to_numpy(np.float64)
    volume = frame["volume"].to_numpy(np.float64)
    ret = np.zeros_like(adj)
    ret[1:] = np.log(adj[1:] / adj[:-1])
    span = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        closepos = np.where(span > 0, (close - low) / span, 0.5) * 2.0 - 1.0
    return np.column_stack([ret, span / close, closepos, np.log1p(np.maximum(volume, 0.0))])


def _compact_returns(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Per day (from rows up to that day): cumulative log returns over each horizon and the
    volatility of daily log returns; 0 where the history is too short."""
    log_price = np.log(frame["adj_close"].to_numpy(np.float64))
    n = len(log_price)
    columns, names = [], []
    for h in COMPACT_HORIZONS:
        ret = np.zeros(n)
        ret[h:] = log_price[h:] - log_price[:-h]
        columns.append(ret)
        names.append(f"ret_{h}d")
    daily = np.zeros(n)
    daily[1:] = np.diff(log_price)
    vol = pd.Series(daily).rolling(COMPACT_VOL_WINDOW).std(ddof=1).to_numpy()
    columns.append(np.nan_to_num(vol))
    names.append(f"vol_{COMPACT_VOL_WINDOW}d")
    return np.column_stack(columns), names


def _scale_only(values: np.ndarray, train: slice) -> tuple[np.ndarray, np.ndarray]:
    """Divide each column by its training-range standard deviation: returns keep sign and 0."""
    std = np.nanstd(values[train], axis=0) if values[train].size else np.ones(values.shape[1])
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    return np.clip(np.nan_to_num(values / std), -OBS_CLIP, OBS_CLIP), std


def _normalize(values: np.ndarray, train: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ref = values[train]
    mean = np.nanmean(ref, axis=0) if len(ref) else np.zeros(values.shape[1])
    std = np.nanstd(ref, axis=0) if len(ref) else np.ones(values.shape[1])
    mean = np.nan_to_num(mean)
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    out = np.clip(np.nan_to_num((values - mean) / std), -OBS_CLIP, OBS_CLIP)
    return out, mean, std


@dataclass(frozen=True)
class EnvData:
    """Everything an environment (or a backtest) needs for one ticker, as arrays.

    ``obs[t]`` is the observation for deciding day ``t`` with a zero position slot; callers put
    the held position at ``position_index``. Rows before ``first_valid`` lack a full window.
    """

    ticker: str
    dates: pd.DatetimeIndex
    #: traded price at each close (``trading_env.price_column``)
    prices: np.ndarray
    obs: np.ndarray
    names: tuple[str, ...]
    position_index: int
    #: index of the tau column, None without LLM guidance
    tau_index: int | None
    first_valid: int
    #: normalization statistics (training range) per market column
    stats: dict[str, list[float]] = field(default_factory=dict)
    #: ``trading_env.features`` that built ``obs``
    feature_set: str = "full"

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    def observations(self, position: float, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Observations of ``rows`` with ``position`` held (for vectorized inference)."""
        block = self.obs if rows is None else self.obs[rows]
        block = block.copy()
        block[:, self.position_index] = position
        return block

    def slice_hash(self, start: int, end: int, window: int) -> str:
        """Hash of what a chunk ``[start, end]`` can see (its rows, prices and the stats)."""
        digest = hashlib.sha256()
        lo = max(0, start - 1)
        digest.update(np.ascontiguousarray(self.obs[lo : end + 2]).tobytes())
        digest.update(np.ascontiguousarray(self.prices[lo : end + 2]).tobytes())
        digest.update(repr((self.names, window, start, end)).encode())
        return digest.hexdigest()


def _history_block(
    frame: pd.DataFrame, window: int, train: slice
) -> tuple[np.ndarray, list[str], dict[str, list[float]]]:
    """``full``/``tdqn``: each day's ``window`` lags of the four history features."""
    n = len(frame)
    hist, hist_mean, hist_std = _normalize(_history_values(frame), train)
    # returns keep their sign and zero: scale only
    raw_ret = _history_values(frame)[:, 0]
    ret_std = float(np.nanstd(raw_ret[train])) or 1.0
    hist[:, 0] = np.clip(raw_ret / ret_std, -OBS_CLIP, OBS_CLIP)
    hist_mean[0], hist_std[0] = 0.0, ret_std
    # day d's window: days d, d-1, ..., d-window+1 (lag order), ordered feature-major
    padded = np.vstack([np.zeros((window - 1, hist.shape[1])), hist])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)[:, :, ::-1]
    names = [f"{f}_lag{k + 1}" for f in HISTORY_FEATURES for k in range(window)]
    stats = {"history_mean": hist_mean.tolist(), "history_std": hist_std.tolist()}
    return windows.reshape(n, -1), names, stats


def _compact_block(
    frame: pd.DataFrame, train: slice
) -> tuple[np.ndarray, list[str], dict[str, list[float]]]:
    """``compact``: returns over several horizons (scaled, sign kept) and volatility (z-score)."""
    values, names = _compact_returns(frame)
    returns, ret_std = _scale_only(values[:, :-1], train)
    vol, vol_mean, vol_std = _normalize(values[:, -1:], train)
    stats = {
        "returns_std": ret_std.tolist(),
        "volatility_mean": vol_mean.tolist(),
        "volatility_std": vol_std.tolist(),
    }
    return np.hstack([returns, vol]), names, stats


def feature_set_columns(
    feature_set: str, feature_columns: Sequence[str], extra_columns: Sequence[str] = ()
) -> list[str]:
    """The frame columns a feature set reads after its price block (indicators, then extras)."""
    if feature_set not in FEATURE_SETS:
        raise DataError(
            f"unknown feature set {feature_set!r}: use one of {', '.join(FEATURE_SETS)}"
        )
    if feature_set == "full":
        return list(dict.fromkeys([*feature_columns, *extra_columns]))
    chosen = (
        [c for c in COMPACT_INDICATORS if c in feature_columns] if feature_set == "compact" else []
    )
    return list(dict.fromkeys([*chosen, *extra_columns]))


def build_env_data(
    ticker: str,
    frame: pd.DataFrame,
    feature_columns: tuple[str, ...] | list[str],
    *,
    window: int,
    train_range: tuple[int, int],
    tau: np.ndarray | None = None,
    price_column: str = "close",
    feature_set: str = "full",
    extra_columns: Sequence[str] = (),
) -> EnvData:
    """Precompute the observation matrix of one ticker.

    ``train_range`` is the inclusive row range whose statistics normalize every column; ``tau``
    (one value per row, the LLM feature of the period containing that day) is appended as the
    last column when given. Row ``t`` of the market part is built from rows ``<= t-1``.
    ``feature_set`` picks the inputs (module docstring); ``extra_columns`` are frame columns
    kept in every set.
    """
    required = {"open", "high", "low", "close", "adj_close", "volume", price_column}
    missing = sorted(required - set(frame.columns))
    if missing:
        raise DataError(f"{ticker}: the data frame lacks column(s) {', '.join(missing)}")
    selected = feature_set_columns(feature_set, feature_columns, extra_columns)
    columns = [c for c in selected if c in frame.columns]
    n = len(frame)
    history_days = window if feature_set != "compact" else max(COMPACT_HORIZONS)
    if n < history_days + 2:
        raise DataError(f"{ticker}: {n} rows, but the observation needs {history_days + 2}")
    prices = frame[price_column].to_numpy(np.float64)
    if not np.isfinite(prices).all() or (prices <= 0).any():
        bad = int(np.argmax(~np.isfinite(prices) | (prices <= 0)))
        raise DataError(
            f"{ticker}: {price_column} on {frame.index[bad]} is {prices[bad]!r}; prices must be "
            "finite and positive"
        )
    lo, hi = train_range
    train = slice(lo, hi + 1)

    if feature_set == "compact":
        history, names, stats = _compact_block(frame, train)
    else:
        history, names, stats = _history_block(frame, window, train)

    if columns:
        raw = np.column_stack([_indicator_values(frame, c) for c in columns])
        indicators, ind_mean, ind_std = _normalize(raw, train)
    else:
        indicators, ind_mean, ind_std = np.zeros((n, 0)), np.zeros(0), np.zeros(0)

    day_features = np.hstack([history, indicators])
    # the decision for day t sees day t-1's features: shift down by one row
    market = np.zeros_like(day_features)
    market[1:] = day_features[:-1]

    names += list(columns)
    parts = [market, np.zeros((n, 1))]
    names.append("position")
    tau_index = None
    if tau is not None:
        tau = np.asarray(tau, dtype=np.float64)
        if tau.shape != (n,):
            raise DataError(f"{ticker}: tau has shape {tau.shape}, expected ({n},) (one per day)")
        if not np.isfinite(tau).all() or (np.abs(tau) > 1).any():
            raise DataError(f"{ticker}: tau must be finite and within [-1, 1]")
        parts.append(tau[:, None])
        names.append("tau")
        tau_index = len(names) - 1
    obs = np.hstack(parts).astype(np.float32)
    stats |= {"indicator_mean": ind_mean.tolist(), "indicator_std": ind_std.tolist()}
    return EnvData(
        ticker=ticker,
        dates=pd.DatetimeIndex(frame.index),
        prices=prices,
        obs=obs,
        names=tuple(names),
        position_index=market.shape[1],
        tau_index=tau_index,
        first_valid=history_days,
        stats=stats,
        feature_set=feature_set,
    )
