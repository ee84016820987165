"""The engine in virtual time against a fake provider: concurrency, retries, aborts, DAGs."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from rewts.errors import AuthenticationError, LLMError, QuotaExhaustedError
from rewts.llm.cache import StrategyCache
from rewts.llm.engine import Engine, EngineSettings, Task
from rewts.llm.limiter import RateLimiter, Unlimited
from rewts.llm.monitor import EventLog, RequestRetried
from rewts.llm.providers.base import (
    AuthFailed,
    InvalidOutput,
    NotFound,
    QuotaExhausted,
    RateLimited,
    Request,
    ServerError,
)
from rewts.llm.retries import Backoff

from .helpers import FakeProvider
from .vtime import run_virtual


def _tasks(n, prefix="t"):
    return [
        Task(id=(prefix, i), request=Request(({"role": "user", "content": f"{prefix}{i}"},), "m"))
        for i in range(n)
    ]


def _engine(provider, limiter, **kw):
    settings = EngineSettings(**{"backoff": Backoff(0.5, 2.0, 4.0, 3), **kw})
    return Engine(provider, limiter, settings=settings, cache=kw.pop("cache", None))


def _run(engine, tasks):
    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        results = await engine.run(tasks)
        return results, loop.time() - t0

    return run_virtual(main())


@pytest.mark.parametrize(
    "rate, latency, n",
    [(100.0, 1.0, 500), (100.0, 8.0, 500), (1000 / 60, 40.0, 500)],
    ids=["rate-bound", "latency-bound", "seed-40s-at-1000rpm"],
)
def test_auto_concurrency_finishes_near_n_over_rate_plus_latency(rate, latency, n):
    provider = FakeProvider(latency)
    engine = _engine(provider, RateLimiter(rate), concurrency="auto", latency_prior_s=30.0)
    results, wall = _run(engine, _tasks(n))
    ideal = n / rate + latency
    assert all(r.status == "ok" for r in results.values())
    assert wall == pytest.approx(ideal, rel=0.25)
    # Little's law from the first second: the bound is rate * prior, not a handful of workers
    assert provider.max_in_flight >= min(n, rate * latency) * 0.9


def test_hundreds_in_flight_from_the_first_seconds_with_40s_calls_at_1000_rpm():
    provider = FakeProvider(40.0)
    engine = _engine(provider, RateLimiter(1000 / 60), concurrency="auto")
    assert engine.concurrency_limit >= 500  # before any latency was observed

    async def main():
        job = asyncio.ensure_future(engine.run(_tasks(800)))
        await asyncio.sleep(30.0)  # no answer has come back yet
        in_flight = provider.in_flight
        await job
        return in_flight

    assert run_virtual(main()) >= 480  # ~16.7/s * 30 s, all still in flight


@pytest.mark.parametrize("workers, latency", [(1, 0.5), (4, 2.0), (16, 1.0), (12, 4.0)])
def test_explicit_workers_give_min_of_rate_and_workers_over_latency(workers, latency):
    rate, n = 8.0, 120
    provider = FakeProvider(latency)
    engine = _engine(provider, RateLimiter(rate), concurrency=workers)
    _results, wall = _run(engine, _tasks(n))
    expected = min(rate, workers / latency)
    assert provider.max_in_flight <= workers
    assert (n / wall) == pytest.approx(expected, rel=0.10)


def test_retries_pass_the_limiter_and_recover():
    def script(n, request):
        if n % 3 == 0 and n < 30:
            raise ServerError("boom", status=503)
        if n == 1:
            raise RateLimited(retry_after=2.0)

    provider = FakeProvider(0.1, script)
    limiter = RateLimiter(20.0)
    log = EventLog()
    engine = _engine(provider, limiter)
    engine.subscribe(log)
    results, _ = _run(engine, _tasks(40))
    assert all(r.status == "ok" for r in results.values())
    assert engine.stats.retries == len(log.of(RequestRetried)) > 0
    assert engine.stats.api_calls == provider.calls == limiter.granted  # every retry acquired
    assert engine.stats.http_429 == 1 and limiter.pauses == 1


def test_retries_exhausted_mark_the_task_failed():
    def script(n, request):
        if request.messages[0]["content"] == "t3":
            raise InvalidOutput("truncated")

    provider = FakeProvider(0.0, script)
    engine = _engine(provider, RateLimiter(100.0))
    results, _ = _run(engine, _tasks(6))
    assert results[("t", 3)].status == "failed"
    assert results[("t", 3)].attempts == 4  # 1 + 3 retries
    assert "truncated" in results[("t", 3)].error
    assert engine.stats.failures == 1
    assert sum(r.status == "ok" for r in results.values()) == 5


@pytest.mark.parametrize(
    "error, exc, text",
    [
        (
            AuthFailed("no", env_var="DEEPSEEK_API_KEY", status=401),
            AuthenticationError,
            "set DEEPSEEK_API_KEY",
        ),
        (NotFound("no", model="gpt-9", status=404), LLMError, "gpt-9"),
    ],
)
def test_fatal_errors_abort_the_whole_run_at_once(error, exc, text):
    def script(n, request):
        if n >= 3:
            raise error

    provider = FakeProvider(0.5, script)
    engine = _engine(provider, RateLimiter(50.0))

    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(exc, match=text):
            await engine.run(_tasks(500))
        return loop.time() - t0

    wall = run_virtual(main())
    assert wall < 2.0  # not 500 tasks' worth of retries
    assert provider.calls < 60


def test_quota_exhausted_stops_cleanly_keeping_what_was_done(tmp_path):
    def script(n, request):
        if n >= 10:
            raise QuotaExhausted("daily quota exceeded", status=429)

    cache = StrategyCache(tmp_path / "c.sqlite")
    provider = FakeProvider(0.0, script)
    engine = Engine(provider, RateLimiter(1000.0), cache=cache)
    with pytest.raises(QuotaExhaustedError, match="rerun the same command"):
        asyncio.run(engine.run(_tasks(50)))
    assert len(cache) == 10
    assert provider.calls < 50
    cache.close()


def test_identical_requests_are_sent_once():
    provider = FakeProvider(1.0)
    engine = _engine(provider, RateLimiter(100.0))
    tasks = _tasks(5) + [Task(id=("dup", i), request=_tasks(5)[i].request) for i in range(5)]
    results, _ = _run(engine, tasks)
    assert provider.calls == 5
    assert results[("dup", 2)].strategy == results[("t", 2)].strategy


def test_dependencies_run_in_order_and_feed_the_request():
    provider = FakeProvider(1.0)
    engine = _engine(provider, RateLimiter(100.0))
    seen = {}

    def build(deps):
        seen.update(deps)
        prev = deps[("chain", 0)]
        return Request(({"role": "user", "content": f"after {prev.strategy.direction}"},), "m")

    tasks = [
        Task(id=("chain", 0), request=Request(({"role": "user", "content": "first"},), "m")),
        Task(id=("chain", 1), build=build, deps=(("chain", 0),)),
    ]
    results, wall = _run(engine, tasks)
    assert results[("chain", 1)].status == "ok"
    assert provider.requests[1].messages[0]["content"] == "after 1"
    assert wall == pytest.approx(2.0, abs=0.05)  # strictly one after the other
    with pytest.raises(ValueError, match="cycle"):
        _run(
            _engine(provider, RateLimiter(1.0)),
            [Task(id=1, build=build, deps=(2,)), Task(id=2, build=build, deps=(1,))],
        )


def test_engine_overhead_is_well_under_a_millisecond_per_request():
    """CPU time on the real loop (robust to a loaded machine): zero-latency provider, no
    limit, no cache; what is left is the engine's own work per request."""
    n = 3000
    provider = FakeProvider(0.0)
    engine = Engine(provider, Unlimited(), settings=EngineSettings(concurrency=256))
    tasks = _tasks(n)
    t0 = time.process_time()
    results = asyncio.run(engine.run(tasks))
    per_task = (time.process_time() - t0) / n
    assert len(results) == n
    assert per_task < 0.5e-3, f"{per_task * 1e3:.3f} ms per request"
    # nothing per task is left behind but the results
    assert engine._inflight_keys == {} and engine.stats.in_flight == 0


def test_an_analyst_strategist_graph_with_its_own_schema_and_cache(tmp_path):
    """Room for issue 4: an analyst task (own answer schema) feeding a strategist task."""
    from pydantic import BaseModel

    from .helpers import ANSWER

    class Signal(BaseModel):
        sentiment: int

    def text(request):
        return '{"sentiment": -1}' if request.messages[0]["content"] == "news" else ANSWER

    def build(deps):
        sig = deps["analyst"].strategy
        return Request(({"role": "user", "content": f"sentiment {sig.sentiment}"},), "m")

    def tasks():
        return [
            Task("analyst", Request(({"role": "user", "content": "news"},), "m"), schema=Signal),
            Task("strategist", build=build, deps=("analyst",)),
        ]

    cache = StrategyCache(tmp_path / "c.sqlite")
    provider = FakeProvider(0.0, text=text)
    results = asyncio.run(Engine(provider, Unlimited(), cache=cache).run(tasks()))
    assert results["analyst"].strategy == Signal(sentiment=-1)
    assert provider.requests[1].messages[0]["content"] == "sentiment -1"
    again = FakeProvider(0.0, text=text)
    results = asyncio.run(Engine(again, Unlimited(), cache=cache).run(tasks()))
    assert again.calls == 0 and results["strategist"].status == "cached"
    assert results["analyst"].strategy == Signal(sentiment=-1)
    cache.close()


def test_auto_concurrency_starts_from_the_prior_then_follows_observed_latency():
    provider = FakeProvider(1.0)
    engine = _engine(provider, RateLimiter(10.0), concurrency="auto", latency_prior_s=30.0)
    assert engine.concurrency_limit == math.ceil(10 * 30 * 1.25) + 1
    _run(engine, _tasks(60))
    assert engine.concurrency_limit == math.ceil(10 * 1.0 * 1.25) + 1  # EWMA of 1 s calls
