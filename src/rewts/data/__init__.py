"""The data layer: market prices from a CSV folder, Yahoo Finance or a seeded generator;
vectorized features; a processed Parquet store with a manifest; dated headlines; and the one
time-alignment module (:mod:`rewts.data.timeline`).

Public API (other stages code against exactly these names)::

    prepare_data(cfg, *, refresh=False, reporter=None) -> Dataset
    timeline_for(frame, cfg) -> Timeline
    load_headlines(path) -> pd.DataFrame
    Dataset, DataReport, Gap, Timeline, StrategyPeriod, Chunk

Feature on row ``t`` = computed from data up to and including day ``t``; whoever acts on day
``t`` reads row ``t-1``.
"""

from __future__ import annotations

import pandas as pd

from rewts.config import Config
from rewts.data.gaps import Gap
from rewts.data.headlines import load_headlines
from rewts.data.prepare import DataReport, Dataset, prepare_data
from rewts.data.timeline import Chunk, StrategyPeriod, Timeline


def timeline_for(frame: pd.DataFrame, cfg: Config) -> Timeline:
    """The timeline of one processed frame: its dates, ``strategy_frequency`` and warm-up."""
    return Timeline(
        frame.index, strategy_frequency=cfg.strategy_frequency, warmup=cfg.data.warmup_days
    )


__all__ = [
    "Chunk",
    "DataReport",
    "Dataset",
    "Gap",
    "StrategyPeriod",
    "Timeline",
    "load_headlines",
    "prepare_data",
    "timeline_for",
]
