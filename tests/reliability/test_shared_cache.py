"""One cache file shared by concurrent runs: the daily request budget (``llm.rate_limits.rpd``)
it stores must hold for all of them together."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from pathlib import Path

import pytest

from llm.helpers import fake_dataset
from rewts.errors import QuotaExhaustedError
from rewts.llm import generate_strategies
from rewts.llm.cache import StrategyCache
from rewts.sim import SimConfig, SimServer

from .faultkit import DAYS, integrity, sim_cfg


def _take(path: str, n: int) -> int:
    with StrategyCache(path) as cache:
        return sum(cache.take_daily_request("2026-11-29", "sim", 25) for _ in range(n))


def test_take_daily_request_never_exceeds_the_limit_across_processes(tmp_path):
    db = str(tmp_path / "c.sqlite")
    StrategyCache(db).close()
    ctx = multiprocessing.get_context("fork")  # the children only touch SQLite
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as pool:
        taken = list(pool.map(_take, [db] * 4, [15] * 4))
    assert sum(taken) == 25  # 60 asked for, exactly the budget granted
    with StrategyCache(db) as cache:
        assert cache.daily_requests("2026-11-29", "sim") == 25
        assert not cache.take_daily_request("2026-11-29", "sim", 25)
        assert cache.take_daily_request("2026-11-30", "sim", 25)  # a new day
    assert integrity(Path(db)) == "ok"


def test_two_runs_sharing_a_cache_stay_within_one_daily_budget(tmp_path):
    with SimServer(SimConfig(latency_s=0.05)) as sim:
        a = sim_cfg(tmp_path, sim, tickers=("AAA",), rate_limits={"rpd": 10})
        b = a.model_copy(update={"tickers": ["BBB"]})
        ds = fake_dataset(("AAA", "BBB"), DAYS)

        def run(cfg):
            with pytest.raises(QuotaExhaustedError):
                generate_strategies(cfg, ds, write=False)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(run, [a, b]))
        assert sim.stats(log=False)["requests"] <= 10
