"""A tiny two-ticker experiment on synthetic frames (seconds, not minutes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rewts.config.models import Config
from rewts.data.prepare import Dataset
from rewts.data.timeline import Timeline
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame

TICKERS = ("AAA", "BBB")


@pytest.fixture
def dataset() -> Dataset:
    frames = {t: synthetic_frame(420, seed=i, start="2012-01-02") for i, t in enumerate(TICKERS)}
    return Dataset(
        frames=frames,
        source="synthetic",
        content_hash="test",
        feature_columns=SYNTHETIC_FEATURES,
        path=None,
    )


@pytest.fixture
def strategies(dataset: Dataset) -> dict[str, pd.DataFrame]:
    out = {}
    for i, (ticker, frame) in enumerate(dataset.frames.items()):
        periods = Timeline(frame.index, strategy_frequency=20, warmup=40).periods
        rng = np.random.default_rng(i)
        out[ticker] = pd.DataFrame(
            {"period": [p.index for p in periods], "tau": rng.uniform(-1, 1, len(periods))}
        )
    return out


@pytest.fixture
def cfg(tmp_path) -> Config:
    return Config(
        tickers=list(TICKERS),
        data={"warmup_days": 40},
        strategy_frequency=20,
        split={
            "train_start": "2012-01-01",
            "train_end": "2013-03-29",
            "test_start": "2013-04-01",
            "test_end": "2013-08-30",
        },
        rewts={
            "chunk_length": 100,
            "episodes_per_chunk": 2,
            "hidden_dims": [8],
            "batch_size": 16,
            "learning_starts": 20,
            "train_freq": 4,
            "buffer_size": 1000,
            "checkpoint_dir": str(tmp_path / "ck"),
            "n_jobs": 1,
            "device": "cpu",
        },
        trading_env={"window": 5, "max_drawdown_limit": None},
    )
