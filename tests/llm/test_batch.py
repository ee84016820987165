"""Batch mode through the real SDKs against the simulator: submit, poll, collect, validate,
cache — for Gemini Batch Mode and OpenAI's Batch API — plus waves, failures and stops."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rewts.errors import AuthenticationError, ConfigError, QuotaExhaustedError
from rewts.llm.batch import (
    BatchCompleted,
    BatchPolled,
    BatchResumed,
    BatchRunner,
    BatchSubmitted,
    JobStatus,
    JobStore,
    batch_backend,
)
from rewts.llm.cache import StrategyCache
from rewts.llm.engine import Engine, EngineSettings, Task
from rewts.llm.limiter import Unlimited
from rewts.llm.monitor import EventLog, TaskFinished
from rewts.llm.providers.base import QuotaExhausted, Request, Response
from rewts.llm.providers.gemini import GeminiProvider
from rewts.llm.providers.heuristic import HeuristicProvider
from rewts.llm.providers.openai_compat import OpenAICompatProvider
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA
from rewts.sim import SimConfig, SimServer

KEY = "test-SENTINEL-key-1234567890"
SYSTEM = {"role": "system", "content": "You are a strategist. Answer in JSON."}


def _request(model: str, text: str, **kw: Any) -> Request:
    return Request(
        messages=(SYSTEM, {"role": "user", "content": text}),
        model=model,
        seed=49,
        max_tokens=kw.pop("max_tokens", 400),
        json_schema=("strategy", STRATEGY_JSON_SCHEMA),
        logprobs=kw.pop("logprobs", True),
        **kw,
    )


def _tasks(model: str, n: int = 4, *, broken: bool = False) -> list[Task]:
    tasks = [
        Task(
            id=("AAA", i),
            request=_request(model, f"Decide for AAA, period {i}."),
            meta={"ticker": "AAA", "period": i},
        )
        for i in range(n)
    ]
    if broken:  # an answer cut at 3 tokens: truncated, invalid every time
        tasks.append(
            Task(
                id=("AAA", n),
                request=_request(model, "Decide for AAA, period cut.", max_tokens=3),
                meta={"ticker": "AAA", "period": n},
            )
        )
    return tasks


def _gemini(sim: SimServer, **kw: Any) -> GeminiProvider:
    return GeminiProvider(api_key=kw.pop("key", KEY), base_url=sim.gemini_base_url, **kw)


def _openai(sim: SimServer, key: str = KEY) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        "local",
        model="gpt-4o-mini",
        base_url=sim.openai_base_url,
        api_key=key,
        env_var="REWTS_TEST_KEY",
        timeout_s=5.0,
    )


def _run(provider, tasks, cache=None, **kw):
    log = EventLog()

    async def main():
        try:
            runner = BatchRunner(provider, cache=cache, poll_s=0.05, events=log, **kw)
            return await runner.run(tasks), runner
        finally:
            await provider.aclose()

    results, runner = asyncio.run(main())
    return results, runner, log


def _sent(sim: SimServer, fmt: str) -> int:
    return sum(e["format"] == fmt for e in sim.stats()["log"])


@pytest.mark.parametrize("kind", ["gemini", "openai"])
def test_submit_poll_collect_cache_and_a_failed_item(tmp_path, kind):
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.3)) as sim:
        make = _gemini if kind == "gemini" else _openai
        model = "gemini-2.5-flash" if kind == "gemini" else "gpt-4o-mini"
        tasks = _tasks(model, broken=True)
        with StrategyCache(tmp_path / "c.sqlite") as cache:
            results, runner, log = _run(make(sim), tasks, cache)
            stored = {e.key: e for e in cache.entries()}
        single = "gemini" if kind == "gemini" else "openai"
        assert _sent(sim, single) == 0  # everything went through the batch API
    ok = [r for r in results.values() if r.status == "ok"]
    assert len(ok) == 4
    for r in ok:
        assert r.strategy.direction in (0, 1) and r.response_text and r.tokens_out > 0
        assert r.entropy is not None  # the batch answers carry log-probabilities too
    broken = results[("AAA", 4)]
    assert broken.status == "failed" and "truncated" in broken.error
    assert broken.attempts == 2  # resubmitted once, then reported
    # successes cached with provenance; the failure is not
    assert set(stored) == {r.key for r in ok}
    entry = stored[results[("AAA", 1)].key]
    assert (entry.ticker, entry.period, entry.model) == ("AAA", 1, model)
    assert json.loads(entry.messages)[1]["content"] == "Decide for AAA, period 1."
    # progress: submitted, polled through the states, completed; two jobs (the retry)
    assert len(log.of(BatchSubmitted)) == 2 and log.of(BatchSubmitted)[0].requests == 5
    states = [e.state for e in log.of(BatchPolled)]
    assert len(set(states)) >= 2 and states[-1] in ("JOB_STATE_SUCCEEDED", "completed")
    first = log.of(BatchCompleted)[0]
    assert (first.succeeded, first.failed) == (4, 1)
    assert len(log.of(TaskFinished)) == 5
    assert runner.stats.generated == 4 and runner.stats.failures == 1


def test_a_later_run_with_or_without_batch_hits_the_same_entries(tmp_path):
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.15)) as sim:
        tasks = _tasks("gemini-2.5-flash", n=3)
        with StrategyCache(tmp_path / "c.sqlite") as cache:
            first, _, _ = _run(_gemini(sim), tasks, cache)

            async def engine_run():
                p = _gemini(sim)
                try:
                    engine = Engine(p, Unlimited(), cache=cache, settings=EngineSettings())
                    return await engine.run(tasks)
                finally:
                    await p.aclose()

            again = asyncio.run(engine_run())
            rerun, _, log = _run(_gemini(sim), tasks, cache)
        assert _sent(sim, "gemini") == 0 and _sent(sim, "gemini-batch") > 0
    assert all(r.status == "cached" for r in again.values())
    assert all(r.status == "cached" for r in rerun.values()) and not log.of(BatchSubmitted)
    for task_id, r in first.items():
        assert again[task_id].key == r.key
        assert again[task_id].strategy == r.strategy and again[task_id].entropy == r.entropy


def test_dependencies_run_in_waves_one_job_per_level(tmp_path):
    model = "gemini-2.5-flash"

    def build(results):
        (prev,) = results.values()
        return _request(model, f"Previous strategy: {prev.strategy.direction}. Decide again.")

    tasks = [
        Task(id="p0", request=_request(model, "Decide for period 0.")),
        Task(id="p1", build=build, deps=("p0",)),
        Task(id="other", request=_request(model, "Decide for another ticker.")),
    ]
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.1)) as sim:
        results, _, log = _run(_gemini(sim), tasks)
    waves = [(e.wave, e.requests) for e in log.of(BatchSubmitted)]
    assert waves == [(1, 2), (2, 1)]
    assert all(r.status == "ok" for r in results.values())


def test_wrong_key_aborts_at_submit_naming_the_variable(monkeypatch):
    with (
        SimServer(SimConfig(latency_s=0.0, api_key="right-key-123456")) as sim,
        pytest.raises(AuthenticationError) as info,
    ):
        _run(_openai(sim, key="wrong-key-654321"), _tasks("gpt-4o-mini", 2))
    assert "REWTS_TEST_KEY" in str(info.value) and "wrong-key" not in str(info.value)


def test_a_job_past_max_wait_is_cancelled_and_its_items_fail(tmp_path):
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=60.0)) as sim:
        results, _, log = _run(_gemini(sim), _tasks("gemini-2.5-flash", 2), max_wait_s=0.2)
        jobs = list(sim._state.gemini_batches.jobs.values())  # the simulator's own record
    assert all(r.status == "failed" and "max_wait" in r.error for r in results.values())
    assert len(log.of(BatchSubmitted)) == 1  # not resubmitted
    assert len(jobs) == 1 and jobs[0].cancelled  # nothing left running to be paid for


class _QuotaAfterFirstJob:
    """A backend whose first job answers and whose second submission meets the daily quota."""

    def __init__(self) -> None:
        self.jobs: dict[str, list[str]] = {}

    async def submit(self, items, display_name):
        if self.jobs:
            raise QuotaExhausted("gemini: the daily quota is used up; it resets at midnight")
        self.jobs[display_name] = [k for k, _ in items]
        return display_name

    async def poll(self, job):
        return JobStatus("JOB_STATE_SUCCEEDED", True)

    async def collect(self, job):
        answer = {"direction": 1, "confidence": 2.0, "explanation": "x", "key_features": []}
        return {k: Response(text=json.dumps(answer), tokens_in=5) for k in self.jobs[job]}

    async def cancel(self, job):
        pass


def test_quota_at_submit_stops_cleanly_keeping_what_was_answered(tmp_path):
    model = "gemini-2.5-flash"
    tasks = [
        Task(id="a", request=_request(model, "a")),
        Task(id="b", build=lambda r: _request(model, "b"), deps=("a",)),
    ]
    provider = HeuristicProvider()
    provider.local = False  # as a remote provider would be (cacheable)
    with StrategyCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(QuotaExhaustedError, match="1 of 2 answers"):
            asyncio.run(
                BatchRunner(provider, cache=cache, backend=_QuotaAfterFirstJob(), poll_s=0).run(
                    tasks
                )
            )
        assert len(cache) == 1


def test_providers_without_a_batch_api_are_refused_clearly():
    deepseek = OpenAICompatProvider(
        "deepseek", model="deepseek-chat", base_url=None, api_key="k", env_var=None, timeout_s=1
    )
    with pytest.raises(ConfigError, match="DeepSeek has no batch API"):
        batch_backend(deepseek)
    with pytest.raises(ConfigError, match="heuristic has no batch API"):
        batch_backend(HeuristicProvider())
    asyncio.run(deepseek.aclose())


def test_batch_runner_without_a_cache(tmp_path):
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.05)) as sim:
        provider = _openai(sim)

        async def main():
            try:
                runner = BatchRunner(provider, cache=None, poll_s=0.05)
                return await runner.run(_tasks("gpt-4o-mini", 2))
            finally:
                await provider.aclose()

        results = asyncio.run(main())
    assert [r.status for r in results.values()] == ["ok", "ok"]


def test_drop_in_for_the_engine_in_the_generator_with_reflection_chains(
    tmp_path, workdir, monkeypatch
):
    """The generator's own task graph (reflection: each period depends on the previous one)
    through BatchRunner: one job per period, every answer ok; a rerun without batch mode then
    answers everything from the cache."""
    import rewts.llm.generate as gen
    from rewts.config import Config

    from .helpers import fake_dataset

    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.05)) as sim:
        llm = {
            "provider": "gemini",
            "base_url": sim.gemini_base_url,
            "reflection": True,
            "batch": True,
            "batch_poll_s": 0.05,
            "cache_path": str(tmp_path / "cache.sqlite"),
            "output_dir": str(tmp_path / "out"),
        }
        cfg = Config.model_validate({"tickers": ["AAA", "BBB"], "llm": llm})
        log = EventLog()
        first = gen.generate_strategies(cfg, fake_dataset(n=300), write=False, events=log)
        llm["batch"] = False
        again = gen.generate_strategies(
            Config.model_validate({"tickers": ["AAA", "BBB"], "llm": llm}),
            fake_dataset(n=300),
            write=False,
        )
        single_calls = _sent(sim, "gemini")
    assert [(e.wave, e.requests) for e in log.of(BatchSubmitted)] == [(w, 2) for w in range(1, 6)]
    assert all((df["status"] == "ok").all() for df in first.strategies.values())
    assert again.summary.cache_hits == 10 and single_calls == 0


class _Answering(_QuotaAfterFirstJob):
    """Answers every job; at most ``max_items`` requests per job, like a provider's limit."""

    max_items = 2

    async def submit(self, items, display_name):
        self.jobs[display_name] = [k for k, _ in items]
        return display_name


def test_a_wave_larger_than_the_job_limit_is_split_into_jobs_run_side_by_side():
    backend = _Answering()
    provider = HeuristicProvider()
    provider.local = False
    log = EventLog()
    tasks = [Task(id=i, request=_request("m", f"task {i}")) for i in range(5)]
    results = asyncio.run(BatchRunner(provider, backend=backend, poll_s=0, events=log).run(tasks))
    assert sorted(len(keys) for keys in backend.jobs.values()) == [1, 2, 2]
    assert [e.wave for e in log.of(BatchSubmitted)] == [1, 1, 1]
    assert all(r.status == "ok" for r in results.values())


def test_an_interrupted_run_leaves_its_job_running_and_the_rerun_collects_it(tmp_path):
    tasks = _tasks("gemini-2.5-flash", 3)
    with (
        SimServer(SimConfig(latency_s=0.0, batch_delay_s=1.0)) as sim,
        StrategyCache(tmp_path / "c.sqlite") as cache,
    ):
        store = JobStore(f"{cache.path}.batches.json")

        async def interrupted():
            p = _gemini(sim)
            try:
                await asyncio.wait_for(BatchRunner(p, cache=cache, poll_s=0.05).run(tasks), 0.4)
            finally:
                await p.aclose()

        with pytest.raises(TimeoutError):  # Ctrl-C, a closed laptop...
            asyncio.run(interrupted())
        (pending,) = store.load()
        assert len(pending["keys"]) == 3 and KEY not in json.dumps(pending)
        assert store.path.stat().st_mode & 0o077 == 0  # user-only, like the cache
        results, _, log = _run(_gemini(sim), tasks, cache)
        jobs = list(sim._state.gemini_batches.jobs.values())
        assert store.load() == []  # collected: forgotten
    assert len(jobs) == 1 and not jobs[0].cancelled  # paid once, answered once
    assert not log.of(BatchSubmitted) and [e.job for e in log.of(BatchResumed)] == [jobs[0].name]
    assert all(r.status == "ok" for r in results.values())


def test_news_analyses_and_strategies_in_waves_through_the_generator(
    tmp_path, workdir, monkeypatch
):
    """Analyst -> strategist dependencies: each analysis goes in an earlier job than the
    strategy that reads it, and both kinds of answer are validated by their own schema."""
    import pandas as pd

    import rewts.llm.generate as gen
    from rewts.config import Config

    from .helpers import fake_dataset

    ds = fake_dataset(("AAA",))
    dates = ds.frames["AAA"].index
    news = pd.DataFrame(
        {
            "date": [dates[190], dates[230]],
            "ticker": ["AAA", "AAA"],
            "headline": ["AAA beats estimates", "AAA recalls a product"],
            "source": "test",
        }
    )
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.05)) as sim:
        llm = {
            "provider": "gemini",
            "base_url": sim.gemini_base_url,
            "batch": True,
            "batch_poll_s": 0.05,
            "cache_path": str(tmp_path / "cache.sqlite"),
            "output_dir": str(tmp_path / "out"),
        }
        cfg = Config.model_validate({"tickers": ["AAA"], "llm": llm})
        log = EventLog()
        result = gen.generate_strategies(cfg, ds, headlines=news, write=False, events=log)
    df = result.strategies["AAA"]
    assert (df["status"] == "ok").all() and list(df["news_status"]).count("ok") == 2
    assert result.summary.analyses == 2
    # wave 1: the 2 analyses and the 3 strategies without news; wave 2: the 2 that read one
    assert [(e.wave, e.requests) for e in log.of(BatchSubmitted)] == [(1, 5), (2, 2)]
