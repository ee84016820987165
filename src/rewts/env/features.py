"""The observation matrix, computed once per ticker: row ``t`` is what the agent may know when it
decides for day ``t``, built from data rows ``<= t-1`` only.

Layout of a row: ``4 * window`` price/volume history values (daily log return of ``adj_close``,
high-low range over close, close position within the range, log volume; lag 1 first), then the
data layer's indicators, then the held position, then (with LLM guidance) ``tau``.

Normalization uses statistics of the TRAINING range only (``split.train_start..train_end``),
so the test period never shapes its own inputs. Price-scale indicators (SMAs, MACD, ATR) are
divided by the same day's close first, and the S&P 500 level becomes its daily change, so that
every column is comparable across years.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rewts.errors import DataError

#: |value| cap after normalization (the observation space's bound)
OBS_CLIP = 10.0
HISTORY_FEATURES: tuple[str, ...] = ("ret", "range", "closepos", "logvol")
_PRICE_SCALE = ("macd", "macd_signal", "macd_hist", "atr_14")
_LEVEL_TO_CHANGE = ("sp500_close",)


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


def build_env_data(
    ticker: str,
    frame: pd.DataFrame,
    feature_columns: tuple[str, ...] | list[str],
    *,
    window: int,
    train_range: tuple[int, int],
    tau: np.ndarray | None = None,
    price_column: str = "close",
) -> EnvData:
    """Precompute the observation matrix of one ticker.

    ``train_range`` is the inclusive row range whose statistics normalize every column; ``tau``
    (one value per row, the LLM feature of the period containing that day) is appended as the
    last column when given. Row ``t`` of the market part is built from rows ``<= t-1``.
    """
    required = {"open", "high", "low", "close", "adj_close", "volume", price_column}
    missing = sorted(required - set(frame.columns))
    if missing:
        raise DataError(f"{ticker}: the data frame lacks column(s) {', '.join(missing)}")
    columns = [c for c in feature_columns if c in frame.columns]
    n = len(frame)
    if n < window + 2:
        raise DataError(f"{ticker}: {n} rows, but the observation window needs {window + 2}")
    prices = frame[price_column].to_numpy(np.float64)
    if not np.isfinite(prices).all() or (prices <= 0).any():
        bad = int(np.argmax(~np.isfinite(prices) | (prices <= 0)))
        raise DataError(
            f"{ticker}: {price_column} on {frame.index[bad]} is {prices[bad]!r}; prices must be "
            "finite and positive"
        )
    lo, hi = train_range
    train = slice(lo, hi + 1)

    hist, hist_mean, hist_std = _normalize(_history_values(frame), train)
    # returns keep their sign and zero: scale only
    raw_ret = _history_values(frame)[:, 0]
    ret_std = float(np.nanstd(raw_ret[train])) or 1.0
    hist[:, 0] = np.clip(raw_ret / ret_std, -OBS_CLIP, OBS_CLIP)
    hist_mean[0], hist_std[0] = 0.0, ret_std
    # day d's window: days d, d-1, ..., d-window+1 (lag order), ordered feature-major
    padded = np.vstack([np.zeros((window - 1, hist.shape[1])), hist])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)[:, :, ::-1]
    history = windows.reshape(n, -1)

    if columns:
        raw = np.column_stack([_indicator_values(frame, c) for c in columns])
        indicators, ind_mean, ind_std = _normalize(raw, train)
    else:
        indicators, ind_mean, ind_std = np.zeros((n, 0)), np.zeros(0), np.zeros(0)

    day_features = np.hstack([history, indicators])
    # the decision for day t sees day t-1's features: shift down by one row
    market = np.zeros_like(day_features)
    market[1:] = day_features[:-1]

    names = [f"{f}_lag{k + 1}" for f in HISTORY_FEATURES for k in range(window)]
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
    stats = {
        "history_mean": hist_mean.tolist(),
        "history_std": hist_std.tolist(),
        "indicator_mean": ind_mean.tolist(),
        "indicator_std": ind_std.tolist(),
    }
    return EnvData(
        ticker=ticker,
        dates=pd.DatetimeIndex(frame.index),
        prices=prices,
        obs=obs,
        names=tuple(names),
        position_index=market.shape[1],
        tau_index=tau_index,
        first_valid=window,
        stats=stats,
    )
