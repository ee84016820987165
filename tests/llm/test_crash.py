"""kill -9 in the middle of a run loses nothing answered; the rerun sends only the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rewts.config import Config
from rewts.llm import generate_strategies
from rewts.llm.cache import StrategyCache

from .helpers import FakeProvider, fake_dataset

CHILD = Path(__file__).with_name("crash_child.py")


def test_sigkill_mid_run_then_rerun_sends_only_the_missing(tmp_path):
    total = 3 * 40  # 400 days, 200 warm-up, periods of 5
    proc = subprocess.Popen([sys.executable, str(CHILD), str(tmp_path)])
    db = tmp_path / "cache.sqlite"
    deadline = time.monotonic() + 60
    cached = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if db.exists():
            with StrategyCache(db) as c:
                cached = len(c)
            if cached >= 20:
                break
    assert proc.poll() is None, "the child finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with StrategyCache(db) as cache:
        assert cache.integrity_ok()
        survived = len(cache)
    assert 20 <= survived < total
    cfg = Config.model_validate(
        {
            "tickers": ["AAA", "BBB", "CCC"],
            "max_requests_per_second": 1000.0,
            "strategy_frequency": 5,
            "llm": {"cache_path": str(db), "output_dir": str(tmp_path / "out")},
        }
    )
    provider = FakeProvider(0.0)
    result = generate_strategies(cfg, fake_dataset(("AAA", "BBB", "CCC"), n=400), provider=provider)
    assert provider.calls == total - survived
    assert result.summary.cache_hits == survived
    assert all((df["status"].isin(["ok", "cached"])).all() for df in result.strategies.values())
