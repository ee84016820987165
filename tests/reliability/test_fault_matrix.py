"""The fault matrix, completing tests/llm/test_faults.py (which has 30 % 5xx, malformed and
truncated JSON, hangs, drops, a server restart and the daily quota, one fault at a time).

Added here: 429 bursts with and without Retry-After, cut-off bodies, the daily quota hit at run
time through the simulator's control endpoint, every fault at once with reflection chains and
a server that dies twice, and the explicit-failure policies. Each run is checked the same way
(tests/reliability/faultkit.py): every task answered or explicitly failed, no fallback cached,
every valid answer the server sent is in the cache, ``PRAGMA integrity_check`` is ok, and the
rerun sends exactly the missing requests and changes nothing already answered.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llm.helpers import FakeProvider, fake_dataset  # tests/llm (rootdir on sys.path)
from llm.vtime import run_virtual
from rewts.errors import LLMError, QuotaExhaustedError
from rewts.llm import generate_strategies
from rewts.llm.engine import Engine, EngineSettings, Task
from rewts.llm.limiter import RateLimiter
from rewts.llm.providers.base import ConnectionFailed, Request
from rewts.llm.retries import Backoff
from rewts.sim import SimConfig, SimServer

from .faultkit import (
    DAYS,
    FAULTS_OFF,
    cached_keys,
    check_cache_holds_only_answers,
    check_every_task_accounted,
    check_rerun_completes_only_the_missing,
    integrity,
    sim_cfg,
    valid_answers,
)

pytestmark = pytest.mark.slow


def _wait_for_answers(sim: SimServer, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sim.stats(log=False)["by_status"].get("200", 0) < n:
        assert time.monotonic() < deadline, "the run never reached the fault point"
        time.sleep(0.005)


@pytest.mark.parametrize(
    ("provider", "sim_settings", "expect"),
    [
        ("local", {"rpm_limit": 4, "window_s": 0.2, "retry_after": True}, "http_429"),
        ("local", {"rpm_limit": 4, "window_s": 0.2, "retry_after": False}, "http_429"),
        ("local", {"garbage_rate": 0.15}, "garbage"),
        ("gemini", {"rpm_limit": 4, "window_s": 0.2, "retry_after": True}, "http_429"),
        ("gemini", {"rpm_limit": 4, "window_s": 0.2, "retry_after": False}, "http_429"),
        ("gemini", {"error_rate": 0.3, "drop_rate": 0.05}, "error"),
    ],
    ids=[
        "429-burst-retry-after",
        "429-burst-no-retry-after",
        "cut-off-body",
        "gemini-429-retryinfo",
        "gemini-429-no-retryinfo",
        "gemini-5xx-drops",
    ],
)
def test_fault_ends_answered_or_explicitly_failed_and_reruns_only_the_rest(
    tmp_path, monkeypatch, provider, sim_settings, expect
):
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test-key-0000")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    tickers = ("AAA",)
    ds = fake_dataset(tickers, DAYS)
    with SimServer(SimConfig(latency_s=0.01, seed=5, **sim_settings)) as sim:
        cfg = sim_cfg(tmp_path, sim, tickers=tickers, provider=provider)
        result = generate_strategies(cfg, ds)
        stats = sim.stats(log=False)
        if expect == "http_429":
            assert stats["http_429"] > 0 and result.summary.http_429 == stats["http_429"]
        else:
            assert stats["faults"].get(expect, 0) > 0
        assert result.summary.retries > 0
        rows = check_every_task_accounted(result, tickers)
        check_cache_holds_only_answers(cfg.llm.cache_path, rows)
        answered = rows.loc[rows["status"].isin(["ok", "cached"]), "cache_key"]
        assert len(set(answered)) == valid_answers(stats)  # every valid answer sent was kept
        check_rerun_completes_only_the_missing(tmp_path, sim, cfg, ds, rows)


@pytest.mark.parametrize("provider", ["local", "gemini"])
def test_daily_quota_set_at_run_time_stops_cleanly_keeping_every_answer(
    tmp_path, monkeypatch, provider
):
    """The quota drops to what was already used while the run is going (via /control); for
    Gemini the 429 names a per-day quotaId, which must stop the run, not be retried."""
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test-key-0000")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    ds = fake_dataset(("AAA", "BBB"), DAYS)
    with SimServer(SimConfig(latency_s=0.02)) as sim:
        cfg = sim_cfg(tmp_path, sim, tickers=("AAA", "BBB"), rps=50.0, provider=provider)

        def exhaust() -> None:
            _wait_for_answers(sim, 10)
            sim.update(rpd_limit=sim.stats(log=False)["requests"])

        t = threading.Thread(target=exhaust)
        t.start()
        with pytest.raises(QuotaExhaustedError, match="rerun the same command"):
            generate_strategies(cfg, ds)
        t.join()
        assert not (tmp_path / "out").exists()  # no half table to train on
        stats = sim.stats(log=False)
        with_answer = valid_answers(stats)
        assert 10 <= with_answer < 60
        assert integrity(cfg.llm.cache_path) == "ok"
        assert len(cached_keys(cfg.llm.cache_path)) == with_answer  # in-flight answers kept
        sim.update(rpd_limit=None)
        before = stats["requests"]
        again = generate_strategies(cfg, ds)
        assert sim.stats(log=False)["requests"] - before == 60 - with_answer
        assert again.summary.cache_hits == with_answer
        check_every_task_accounted(again, ("AAA", "BBB"))


@pytest.mark.parametrize("provider", ["local", "gemini"])
def test_every_fault_at_once_with_reflection_chains_and_a_server_that_dies_twice(
    tmp_path, monkeypatch, provider
):
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test-key-0000")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    tickers = ("AAA", "BBB", "CCC")
    ds = fake_dataset(tickers, DAYS)
    faults = dict(
        error_rate=0.08,
        malformed_rate=0.04,
        truncated_rate=0.04,
        garbage_rate=0.04,
        hang_rate=0.03,
        drop_rate=0.04,
        hang_s=30.0,
    )
    with SimServer(SimConfig(latency_s=0.01, seed=11, **faults)) as sim:
        cfg = sim_cfg(
            tmp_path, sim, tickers=tickers, reflection=True, timeout_s=0.5, provider=provider
        )

        def outages() -> None:
            for answered in (15, 45):
                _wait_for_answers(sim, answered)
                sim.stop()
                time.sleep(0.3)
                sim.start()

        t = threading.Thread(target=outages)
        t.start()
        result = generate_strategies(cfg, ds)
        t.join()
        rows = check_every_task_accounted(result, tickers)
        check_cache_holds_only_answers(cfg.llm.cache_path, rows)
        seen = sim.stats(log=False)["faults"]
        kinds = ("error", "malformed", "truncated", "garbage", "hang", "drop")
        assert sum(seen.get(k, 0) > 0 for k in kinds) >= 4, seen  # a real mix was injected
        assert not rows["status"].isin(["ok", "cached"]).all(), "no fault reached a task"
        # a failed period leaves its successor without memory, and says so
        first_bad, after_bad = {}, 0
        for ticker in tickers:
            df = result.strategies[ticker]
            bad = df.index[~df["status"].isin(["ok", "cached"])]
            nxt = [i + 1 for i in bad if i + 1 < len(df)]
            assert (df.loc[nxt, "memory"] == "unavailable").all()
            if len(bad):
                first_bad[ticker] = int(bad[0])
                after_bad += len(df) - int(bad[0])
        # the rerun sends the failed periods and, at most, the rest of their chains (a new
        # answer changes every later prompt's memory); all that came before is untouched
        sim.update(**FAULTS_OFF)
        before = sim.stats(log=False)["requests"]
        again = generate_strategies(cfg, ds)
        sent = sim.stats(log=False)["requests"] - before
        n_failed = int((~rows["status"].isin(["ok", "cached"])).sum())
        assert n_failed <= sent <= after_bad
        for ticker in tickers:
            new, old = again.strategies[ticker], result.strategies[ticker]
            assert new["status"].isin(["ok", "cached"]).all()
            assert (new["memory"] != "unavailable").all()
            head = slice(0, first_bad.get(ticker, len(old)) - 1)
            assert (new.loc[head, "cache_key"] == old.loc[head, "cache_key"]).all()
            assert (new.loc[head, "status"] == "cached").all()
        assert integrity(cfg.llm.cache_path) == "ok"


@pytest.mark.parametrize("policy", ["skip", "heuristic", "error"])
def test_failure_policies_are_explicit_and_never_cached(tmp_path, policy):
    ds = fake_dataset(("AAA",), DAYS)
    with SimServer(SimConfig(latency_s=0.0, seed=2, error_rate=0.5)) as sim:
        cfg = sim_cfg(tmp_path, sim, on_failure=policy, retry={"max_retries": 0})
        if policy == "error":
            with pytest.raises(LLMError, match=r"LLM calls failed.*rerun to retry only"):
                generate_strategies(cfg, ds)
            assert not (tmp_path / "out").exists()
            assert integrity(cfg.llm.cache_path) == "ok"
            assert len(cached_keys(cfg.llm.cache_path)) == valid_answers(sim.stats(log=False))
            return
        result = generate_strategies(cfg, ds)
        rows = check_every_task_accounted(result, ("AAA",))
        failed = rows[~rows["status"].isin(["ok", "cached"])]
        assert len(failed) > 3
        if policy == "skip":
            assert (failed["status"] == "skipped").all() and failed["tau"].isna().all()
        else:
            assert (failed["provider"] == "heuristic").all() and failed["fallback"].all()
        check_cache_holds_only_answers(cfg.llm.cache_path, rows)
        check_rerun_completes_only_the_missing(tmp_path, sim, cfg, ds, rows)


def test_unreachable_server_is_reported_after_one_tasks_retries_not_all_of_them():
    def refuse(n, request):
        raise ConnectionFailed("connection failed: ConnectError")

    provider = FakeProvider(0.0, script=refuse)
    tasks = [
        Task(id=i, request=Request(({"role": "user", "content": f"p{i}"},), "m"))
        for i in range(500)
    ]
    settings = EngineSettings(backoff=Backoff(0.01, 2.0, 0.05, 3), concurrency="auto")
    engine = Engine(provider, RateLimiter(8.0), settings=settings)

    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(LLMError, match="cannot reach"):
            await engine.run(tasks)
        return loop.time() - t0

    elapsed = run_virtual(main())
    # one task's 4 attempts at 8 req/s plus its backoff: well under 10 s; not 500 x 4 / 8
    assert provider.calls <= 4 * 8 and elapsed < 10.0, (provider.calls, elapsed)
