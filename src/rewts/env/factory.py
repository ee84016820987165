"""From a config, a processed frame and the ticker's strategies to the environment's arrays.

This is where the per-period LLM signal becomes a per-day column: day ``t`` gets the tau of
the period containing ``t`` (whose strategy used data that ended before the period began), via
:meth:`rewts.data.timeline.Timeline.daily_from_periods`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rewts.env.features import EnvData, build_env_data
from rewts.errors import DataError

if TYPE_CHECKING:
    from rewts.config.models import Config
    from rewts.data.timeline import Timeline


def _timeline(frame: pd.DataFrame, cfg: Config) -> Timeline:
    from rewts.data.timeline import Timeline

    return Timeline(
        frame.index, strategy_frequency=cfg.strategy_frequency, warmup=cfg.data.warmup_days
    )


def daily_tau(strategy: pd.DataFrame, timeline: Timeline, *, clip: bool = True) -> np.ndarray:
    """One tau per trading day from one row per period (columns ``period`` and ``tau``): the
    tau of the period containing the day, 0 where no strategy is known (a skipped period).

    Rows whose tau is not a finite number, or whose period is outside the timeline, give no
    signal (0). ``clip`` bounds tau to [-1, 1], as the agents' observation needs; the backtest
    passes False: it has checked every tau already (``check_strategies``: finite, within
    [-1, 1]) and its LLM-only agent and tables use the values exactly as given.
    """
    missing = {"period", "tau"} - set(strategy.columns)
    if missing:
        raise DataError(f"strategies lack column(s) {', '.join(sorted(missing))}")
    tau = pd.to_numeric(strategy["tau"], errors="coerce").to_numpy(np.float64)
    periods = strategy["period"].to_numpy(np.int64)
    ok = np.isfinite(tau) & (periods >= 0) & (periods < len(timeline.periods))
    kept = np.clip(tau[ok], -1.0, 1.0) if clip else tau[ok]
    values = dict(zip(periods[ok].tolist(), kept.tolist(), strict=True))
    return timeline.daily_from_periods(values, fill=0.0)


def train_range(frame: pd.DataFrame, cfg: Config) -> tuple[int, int]:
    """Inclusive rows of ``split.train_start..train_end`` (the normalization statistics)."""
    return _timeline(frame, cfg).range_positions(cfg.split.train_start, cfg.split.train_end)


def extra_columns(cfg: Config, feature_columns: Sequence[str]) -> list[str]:
    """Columns a caller added to the dataset on purpose (not the data layer's indicators, e.g.
    the leak sanity check's): every feature set keeps them."""
    from rewts.data.features import feature_columns as data_layer_columns

    known = set(data_layer_columns(list(cfg.data.market_symbols)))
    return [c for c in feature_columns if c not in known]


def env_data_for(
    cfg: Config,
    ticker: str,
    frame: pd.DataFrame,
    feature_columns: tuple[str, ...] | list[str],
    strategy: pd.DataFrame | None = None,
    *,
    llm_guidance: bool = True,
) -> EnvData:
    """The observation arrays of one ticker under ``cfg`` (tau only with LLM guidance)."""
    timeline = _timeline(frame, cfg)
    tau = None
    if llm_guidance:
        if strategy is None:
            raise DataError(
                f"{ticker}: LLM guidance needs the ticker's strategies (run `rewts strategies`) "
                "or set rewts.llm_guidance: false (--no-llm)"
            )
        tau = daily_tau(strategy, timeline)
    return build_env_data(
        ticker,
        frame,
        feature_columns,
        window=cfg.trading_env.window,
        train_range=timeline.range_positions(cfg.split.train_start, cfg.split.train_end),
        tau=tau,
        price_column=cfg.trading_env.price_column,
        feature_set=cfg.trading_env.features,
        extra_columns=extra_columns(cfg, feature_columns),
    )
