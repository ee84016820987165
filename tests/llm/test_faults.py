"""Faults from the simulator through the real SDK: every task ends answered or explicitly
failed, no fallback is cached, the cache stays readable, a rerun completes only what is missing.
(The full fault matrix with bigger volumes belongs to the reliability suite.)"""

from __future__ import annotations

import io
import threading
import time

import pytest

from rewts.errors import QuotaExhaustedError
from rewts.llm import generate_strategies
from rewts.llm.cache import StrategyCache
from rewts.sim import SimConfig, SimServer
from rewts.ui.progress import PlainDisplay

from .helpers import fake_dataset
from .test_sim import _cfg

pytestmark = pytest.mark.slow
ONE = ("AAA",)


def _check_run(tmp_path, result, sim):
    df = result.strategies["AAA"]
    assert len(df) == 30 and df["status"].isin(["ok", "fallback"]).all()
    with StrategyCache(tmp_path / "cache.sqlite") as cache:
        assert cache.integrity_ok()
        cached = {e.key for e in cache.entries()}
    assert cached == set(df.loc[df["status"] == "ok", "cache_key"])  # fallbacks never cached
    before = sim.stats(log=False)["requests"]
    sim.update(error_rate=0.0, malformed_rate=0.0, truncated_rate=0.0, hang_rate=0.0, drop_rate=0.0)
    again = generate_strategies(
        _cfg(tmp_path, sim, tickers=ONE, timeout_s=1.0), fake_dataset(ONE, 350)
    )
    assert sim.stats(log=False)["requests"] - before == int((df["status"] != "ok").sum())
    assert (again.strategies["AAA"]["status"].isin(["ok", "cached"])).all()


@pytest.mark.parametrize(
    "fault",
    [
        {"error_rate": 0.3},
        {"malformed_rate": 0.1, "truncated_rate": 0.1},
        {"hang_rate": 0.1, "hang_s": 30.0},
        {"drop_rate": 0.1},
    ],
    ids=["5xx-30pc", "malformed-truncated", "hangs", "drops"],
)
def test_faults_end_answered_or_explicitly_failed(tmp_path, fault):
    with SimServer(SimConfig(latency_s=0.02, seed=3, **fault)) as sim:
        cfg = _cfg(tmp_path, sim, tickers=ONE, timeout_s=1.0)
        result = generate_strategies(cfg, fake_dataset(ONE, 350))
        assert result.summary.retries > 0
        _check_run(tmp_path, result, sim)


def test_server_dies_mid_run_and_comes_back(tmp_path):
    with SimServer(SimConfig(latency_s=0.05)) as sim:
        cfg = _cfg(tmp_path, sim, tickers=ONE, rps=20.0)

        def outage():
            deadline = time.monotonic() + 30
            while sim.stats(log=False)["by_status"].get("200", 0) < 8:  # mid-run
                assert time.monotonic() < deadline
                time.sleep(0.01)
            sim.stop()
            time.sleep(0.5)
            sim.start()

        t = threading.Thread(target=outage)
        t.start()
        result = generate_strategies(cfg, fake_dataset(ONE, 350))
        t.join()
        assert result.summary.retries > 0
        _check_run(tmp_path, result, sim)


def test_daily_quota_stops_cleanly_and_the_rerun_finishes(tmp_path):
    with SimServer(SimConfig(latency_s=0.01, rpd_limit=20)) as sim:
        cfg = _cfg(tmp_path, sim, tickers=ONE)
        with pytest.raises(QuotaExhaustedError, match="rerun the same command"):
            generate_strategies(cfg, fake_dataset(ONE, 350))
        assert not (tmp_path / "out").exists()
        with StrategyCache(cfg.llm.cache_path) as cache:
            assert len(cache) == 20
        sim.reset_day()
        before = sim.stats(log=False)["requests"]
        result = generate_strategies(cfg, fake_dataset(ONE, 350))
        assert sim.stats(log=False)["requests"] - before == 30 - 20
        assert result.summary.cache_hits == 20


def test_a_quota_stop_shows_the_true_count_and_what_was_left(tmp_path):
    """Issue #16: the progress read 30/30 (100 %) after a stop at 20 answers."""
    out = io.StringIO()
    with SimServer(SimConfig(latency_s=0.01, rpd_limit=20)) as sim:
        cfg = _cfg(tmp_path, sim, tickers=ONE)
        with pytest.raises(QuotaExhaustedError, match="20 of 30"):
            generate_strategies(cfg, fake_dataset(ONE, 350), events=PlainDisplay(out))
        refused = sim.stats(log=False)["requests"] - 20
    text = out.getvalue()
    assert "Progress: 20/30 (66.7%)" in text and "30/30" not in text
    assert (
        "Stopped (the daily quota is used up): 20/30 done, 10 not done "
        f"({10 - refused} never sent, {refused} sent but refused or unanswered)"
    ) in text


def test_client_side_daily_budget_is_remembered_across_runs(tmp_path):
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        cfg = _cfg(tmp_path, sim, tickers=ONE, rate_limits={"rpd": 10})
        with pytest.raises(QuotaExhaustedError, match="rpd"):
            generate_strategies(cfg, fake_dataset(ONE, 350))
        sent = sim.stats(log=False)["requests"]
        assert sent == 10
        with pytest.raises(QuotaExhaustedError):  # same day, new process state: nothing sent
            generate_strategies(cfg, fake_dataset(ONE, 350))
        assert sim.stats(log=False)["requests"] == sent


def test_two_runs_sharing_one_cache_at_once_lose_nothing(tmp_path):
    import concurrent.futures

    with SimServer(SimConfig(latency_s=0.05)) as sim:
        cfg_a = _cfg(tmp_path, sim, tickers=("AAA", "BBB"))
        cfg_b = cfg_a.model_copy(update={"tickers": ["BBB", "CCC"]})
        ds = fake_dataset(("AAA", "BBB", "CCC"), 350)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(generate_strategies, c, ds, write=False) for c in (cfg_a, cfg_b)]
            results = [r.result(60) for r in runs]
    assert all(r.summary.fallbacks == 0 for r in results)
    with StrategyCache(cfg_a.llm.cache_path) as cache:
        assert cache.integrity_ok()
        assert len(cache) == 90  # three tickers, BBB's 30 answers stored once
