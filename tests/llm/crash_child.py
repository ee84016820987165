"""Child process for the kill -9 test: a slow fake provider filling the cache."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import FakeProvider, fake_dataset

from rewts.config import Config
from rewts.llm import generate_strategies

if __name__ == "__main__":
    tmp = Path(sys.argv[1])
    cfg = Config.model_validate(
        {
            "tickers": ["AAA", "BBB", "CCC"],
            "parallel_workers": 4,
            "max_requests_per_second": 1000.0,
            "strategy_frequency": 5,
            "llm": {"cache_path": str(tmp / "cache.sqlite"), "output_dir": str(tmp / "out")},
        }
    )
    generate_strategies(
        cfg, fake_dataset(("AAA", "BBB", "CCC"), n=400), provider=FakeProvider(0.05)
    )
