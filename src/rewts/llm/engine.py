"""The asyncio engine: a dependency graph of LLM tasks, bounded in flight, limited, retried, cached.

One request's life: wait for a concurrency slot, ``limiter.acquire``, send, parse the text,
``limiter.feedback``, commit the answer to the cache (before the task counts as done, so a
``kill -9`` loses nothing answered), or back off with full jitter and go round again, through
the limiter. Errors arrive already translated into the provider taxonomy:

* retryable (429, 5xx, timeouts, connection errors, invalid output): retried up to
  ``max_retries`` times, then the task *fails* (the caller applies its failure policy);
* fatal (400/401/403/404): the whole run aborts at once with a :mod:`rewts.errors` error that
  names what to fix; nothing else is started;
* quota exhausted (the provider's daily quota, or ``rpd``): nothing new is sent, requests
  already in flight finish and are cached, then :class:`QuotaExhaustedError` says how to resume.

Concurrency is either a fixed ``N`` (the seed's ``parallel_workers``) or ``auto``: Little's law,
``in_flight = rate * latency``, with the latency starting from a prior (so that 40 s calls at
1000 RPM keep hundreds in flight from the first second) and then following an EWMA of what is
observed. Tasks may depend on others (a DAG): a task starts as soon as its dependencies are done,
its request built from their results. Identical requests (same cache key) are sent once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import random
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rewts.errors import LLMError, QuotaExhaustedError
from rewts.llm.cache import StrategyCache
from rewts.llm.limiter import Limiter, Outcome
from rewts.llm.monitor import (
    RequestMonitor,
    RequestRetried,
    RunFinished,
    RunStarted,
    TaskFinished,
)
from rewts.llm.providers.base import (
    ConnectionFailed,
    InvalidOutput,
    Provider,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Request,
    Response,
    Timeout,
    concurrency_cap,
    is_cacheable,
)
from rewts.llm.retries import Backoff
from rewts.llm.scheduling import ReadyQueue, estimate_tokens, shared_copy
from rewts.llm.schemas import Strategy, answer_entropy, parse_answer, parse_strategy
from rewts.llm.tasks import (
    Task,
    TaskResult,
    TaskRunner,
    result_from_cache,
    store_answer,
    user_error,
)
from rewts.redaction import url_without_secrets


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """How the engine runs (built from the config by the generator)."""

    concurrency: int | Literal["auto"] = "auto"
    prompt_version: str = "v1"
    backoff: Backoff = field(default_factory=Backoff)
    #: the engine's own deadline per call (the SDK has its own ``timeout_s`` too)
    timeout_s: float = 60.0
    #: latency assumed before any is observed (auto concurrency)
    latency_prior_s: float = 30.0
    #: ceiling of auto concurrency
    max_concurrency: int = 1000
    #: rate used by auto concurrency when the limiter does not expose one (requests/s)
    fallback_rate: float = 8.0
    jitter_seed: int | None = 0


class _Unreachable(ProviderError):
    """Internal: every attempt of a task failed to connect and no request ever succeeded."""

    fatal = True


class Engine(TaskRunner):
    """Runs tasks against one provider. Create one per run."""

    def __init__(
        self,
        provider: Provider,
        limiter: Limiter,
        *,
        cache: StrategyCache | None = None,
        settings: EngineSettings | None = None,
        events: Callable[[Any], None] | None = None,
        monitor: RequestMonitor | None = None,
        parse: Callable[[str], Strategy] = parse_strategy,
    ) -> None:
        self.settings = settings or EngineSettings()
        super().__init__(provider, self.settings.prompt_version, events)
        self.limiter = limiter
        self.cache = cache
        self.monitor = monitor or RequestMonitor(limit_rpm=getattr(limiter, "limit_rpm", None))
        self.parse = parse
        self._rng = random.Random(self.settings.jitter_seed)
        self._latency_ewma: float | None = None
        self._fatal: BaseException | None = None
        self._quota: QuotaExhausted | None = None
        #: connection failures in a row (any task) before the server ever answered
        self._refused_in_a_row = 0
        self._inflight_keys: dict[str, asyncio.Future[TaskResult]] = {}
        self._answered: dict[str, TaskResult] = {}
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ public

    @property
    def concurrency_limit(self) -> int:
        """The current bound on requests in flight."""
        fixed = self.settings.concurrency
        cap = concurrency_cap(self.provider)
        if fixed != "auto":
            return int(fixed) if cap is None else min(int(fixed), cap)
        if cap is not None:
            return cap
        if getattr(self.provider, "local", False):
            return 64
        rate = getattr(self.limiter, "rate", None) or self.settings.fallback_rate
        latency = self._latency_ewma or self.settings.latency_prior_s
        burst = getattr(self.limiter, "burst", 1)
        # 25 % headroom over Little's law so latency jitter never starves the limiter
        wanted = math.ceil(rate * latency * 1.25) + burst
        return max(1, min(self.settings.max_concurrency, wanted))

    async def run(self, tasks: Sequence[Task]) -> dict[Hashable, TaskResult]:
        """Run every task; returns results by task id, or raises a :mod:`rewts.errors` error."""
        loop = asyncio.get_running_loop()
        by_id = self._begin(tasks, loop.time())
        stats = self.stats
        use_cache = self.cache is not None and is_cacheable(self.provider)
        self._writer = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rewts-cache")
            if use_cache
            else None
        )
        results: dict[Hashable, TaskResult] = {}
        try:
            # 1. cache lookups for every request known up front, in one query
            keys = {t.id: self.key_for(t.request) for t in tasks if t.request is not None}
            hits = {}
            if use_cache and keys and self.cache is not None:
                hits = await loop.run_in_executor(self._writer, self.cache.get_many, keys.values())
            cached_now = 0
            for task_id, key in keys.items():
                entry = hits.get(key)
                if entry is not None:
                    results[task_id] = result_from_cache(by_id[task_id], key, entry)
                    cached_now += 1
            self._emit(
                RunStarted(
                    total=len(tasks),
                    cached=cached_now,
                    provider=self.provider.name,
                    model=self.provider.model,
                    local=bool(getattr(self.provider, "local", False)),
                    concurrency=str(self.settings.concurrency),
                    limit_rpm=getattr(self.limiter, "limit_rpm", None),
                    stats=stats,
                    monitor=self.monitor,
                )
            )
            for task_id in list(results):
                self._finish_bookkeeping(results[task_id])
            await self._schedule(by_id, results)
        finally:
            if self._writer is not None:
                # let pending commits land (an abort does not drop answers already received)
                self._writer.shutdown(wait=True)
            wall = loop.time() - stats.started_at
            reason = "fatal" if self._fatal else "quota" if self._quota else "done"
            if reason == "done" and stats.done < stats.total:
                reason = "interrupted"  # cancelled (Ctrl-C) before every task ended
            self._emit(RunFinished(stats=stats, wall_s=wall, reason=reason))
        if self._fatal is not None:
            raise self._user_error(self._fatal) from None
        if self._quota is not None:
            done = sum(r.status in ("ok", "cached") for r in results.values())
            raise QuotaExhaustedError(
                f"{self._quota} — stopped cleanly: {done} of {len(tasks)} strategies are done "
                "and cached; rerun the same command after the quota resets (or raise "
                "llm.rate_limits.rpd / use another key) to generate only the missing ones"
            )
        return results

    # -------------------------------------------------------------- scheduling

    async def _schedule(
        self, by_id: dict[Hashable, Task], results: dict[Hashable, TaskResult]
    ) -> None:
        ready = ReadyQueue(by_id, results)
        remaining = len(by_id) - len(results)
        if remaining == 0:
            return
        running: set[asyncio.Task[TaskResult]] = set()
        all_done = asyncio.get_running_loop().create_future()

        def on_done(fut: asyncio.Task[TaskResult]) -> None:
            nonlocal remaining
            running.discard(fut)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None:
                if self._fatal is None:
                    self._fatal = exc
                abort()
                return
            result = fut.result()
            results[result.id] = result
            remaining -= 1
            self._finish_bookkeeping(result)
            ready.release(result.id)
            if self._fatal is not None:
                return
            spawn()
            if remaining == 0 and not all_done.done():
                all_done.set_result(None)

        def abort() -> None:
            for t in list(running):
                t.cancel()
            if not all_done.done():
                all_done.set_result(None)

        def spawn() -> None:
            limit = self.concurrency_limit
            self.stats.concurrency_limit = limit
            while ready and len(running) < limit:
                task = ready.pop()
                worker = asyncio.ensure_future(self._run_one(task, results))
                running.add(worker)
                worker.add_done_callback(on_done)
            if not running and not ready and remaining > 0 and not all_done.done():
                # only tasks whose dependencies can no longer finish are left
                all_done.set_result(None)

        spawn()
        try:
            await all_done
        finally:
            if running:
                for t in list(running):
                    t.cancel()
                await asyncio.gather(*running, return_exceptions=True)
        # tasks never reached (a stop, or a failed dependency): say so explicitly
        for task_id in by_id:
            if task_id not in results:
                results[task_id] = TaskResult(task_id, "stopped", error="not run")

    def _finish_bookkeeping(self, result: TaskResult) -> None:
        stats = self.stats
        if result.status == "stopped":
            # left undone by a stop: not progress (the display shows 30/114, not 114/114)
            if result.attempts:
                stats.stopped_after_sending += 1
        else:
            stats.done += 1
        if result.status == "cached":
            stats.cache_hits += 1
        elif result.status == "failed":
            stats.failures += 1
        self._emit(
            TaskFinished(result.id, result.status, result.latency_s, result.attempts, result.error)
        )

    # ----------------------------------------------------------------- one task

    async def _run_one(self, task: Task, results: Mapping[Hashable, TaskResult]) -> TaskResult:
        if self._quota is not None:
            return TaskResult(task.id, "stopped", error="quota exhausted")
        if task.request is not None:
            request = task.request
        elif task.build is not None:
            dep_failed = [d for d in task.deps if results[d].status not in ("ok", "cached")]
            if dep_failed and not task.tolerate_failed_deps:
                return TaskResult(task.id, "failed", error=f"dependency failed: {dep_failed[0]}")
            request = task.build({d: results[d] for d in task.deps})
        else:
            raise ValueError(f"task {task.id!r} has neither a request nor a build function")
        key = self.key_for(request)
        # identical request already answered or in flight: send it once
        done = self._answered.get(key)
        if done is not None:
            self.stats.deduplicated += 1
            return shared_copy(done, task.id, "cached")
        shared = self._inflight_keys.get(key)
        if shared is not None:
            self.stats.deduplicated += 1
            return shared_copy(await asyncio.shield(shared), task.id, "cached")
        if task.request is None and self.cache is not None and self._writer is not None:
            entry = await asyncio.get_running_loop().run_in_executor(
                self._writer, self.cache.get, key
            )
            if entry is not None:
                return result_from_cache(task, key, entry)
        future: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
        self._inflight_keys[key] = future
        try:
            result = await self._call(task, request, key)
            if result.status == "ok":
                self._answered[key] = result
            future.set_result(result)
            return result
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: followers re-raise it, nobody else must
            raise
        finally:
            del self._inflight_keys[key]

    async def _call(self, task: Task, request: Request, key: str) -> TaskResult:
        loop = asyncio.get_running_loop()
        stats = self.stats
        backoff = self.settings.backoff
        self.stats.cache_misses += 1
        estimate = estimate_tokens(request)
        last_error = "no attempt"
        attempt = 0
        while True:
            if self._quota is not None:
                return TaskResult(task.id, "stopped", key=key, attempts=attempt, error="quota")
            try:
                with self._queued():
                    permit = await self.limiter.acquire(estimate)
            except QuotaExhausted as exc:
                self._stop_for_quota(exc)
                return TaskResult(task.id, "stopped", key=key, attempts=attempt, error=str(exc))
            if self._quota is not None:  # stopped while we queued: send nothing more
                return TaskResult(task.id, "stopped", key=key, attempts=attempt, error="quota")
            attempt += 1
            stats.api_calls += 1
            sent = loop.time()
            self.monitor.record_request(sent)
            try:
                stats.in_flight += 1
                if stats.in_flight > stats.max_in_flight:
                    stats.max_in_flight = stats.in_flight
                try:
                    async with asyncio.timeout(self.settings.timeout_s):
                        response = await self.provider.generate(request)
                except TimeoutError:
                    raise Timeout(f"no answer within {self.settings.timeout_s:g} s") from None
                finally:
                    stats.in_flight -= 1
                latency = loop.time() - sent
                stats.tokens_in += response.tokens_in
                stats.tokens_out += response.tokens_out
                self._observe_latency(latency)
                try:
                    strategy = (
                        self.parse(response.text)
                        if task.schema is None
                        else parse_answer(response.text, task.schema)
                    )
                finally:
                    self.limiter.feedback(
                        permit,
                        Outcome("ok", tokens_used=response.tokens_in + response.tokens_out),
                    )
            except ProviderError as exc:
                if isinstance(exc, RateLimited):
                    stats.http_429 += 1
                    self.limiter.feedback(
                        permit, Outcome("rate_limited", retry_after=exc.retry_after)
                    )
                elif not isinstance(exc, InvalidOutput):
                    self.limiter.feedback(permit, Outcome("error"))
                if exc.fatal:
                    raise
                if isinstance(exc, QuotaExhausted):
                    self._stop_for_quota(exc)
                    return TaskResult(task.id, "stopped", key=key, attempts=attempt, error=str(exc))
                last_error = f"{type(exc).__name__}: {exc}"
                refused = isinstance(exc, ConnectionFailed) and stats.generated == 0
                self._refused_in_a_row = self._refused_in_a_row + 1 if refused else 0
                # the FIFO limiter queues a task's retries behind every other task's first
                # attempt, so waiting for one task to exhaust its retries would take
                # tasks x attempts / rate; as many failures in a row from different tasks
                # (twice one task's attempts), with no answer ever, say the same thing now
                if refused and self._refused_in_a_row >= 2 * (backoff.max_retries + 1):
                    raise _Unreachable(str(exc)) from None
                if attempt > backoff.max_retries:
                    if refused:
                        # never reached the server at all: a wrong URL, not a bad moment
                        raise _Unreachable(str(exc)) from None
                    return TaskResult(
                        task.id, "failed", key=key, attempts=attempt, error=last_error
                    )
                delay = backoff.delay(attempt - 1, self._rng)
                stats.retries += 1
                self._emit(RequestRetried(task.id, type(exc).__name__, attempt, delay, exc.status))
                with self._queued():
                    await asyncio.sleep(delay)
                continue
            stats.generated += 1
            self._refused_in_a_row = 0
            stats.latency_sum_s += latency
            result = TaskResult(
                task.id,
                "ok",
                key=key,
                strategy=strategy,
                entropy=answer_entropy(response.logprobs),
                response_text=response.text,
                tokens_in=response.tokens_in,
                tokens_out=response.tokens_out,
                latency_s=latency,
                attempts=attempt,
            )
            await self._store(task, request, key, result)
            return result

    async def _store(self, task: Task, request: Request, key: str, result: TaskResult) -> None:
        """Commit the answer before the task counts as done (kill -9 loses nothing answered)."""
        if self.cache is None or self._writer is None or result.strategy is None:
            return
        cache, prompt_version = self.cache, self.settings.prompt_version
        await asyncio.get_running_loop().run_in_executor(
            self._writer,
            lambda: store_answer(
                cache, key, self._provider_id, prompt_version, task, request, result
            ),
        )

    # ----------------------------------------------------------------- helpers

    def _observe_latency(self, latency: float) -> None:
        prev = self._latency_ewma
        self._latency_ewma = latency if prev is None else 0.8 * prev + 0.2 * latency

    @contextlib.contextmanager
    def _queued(self) -> Iterator[None]:
        """Count a task as queued while it waits to send (a permit, a retry's back-off):
        apart from requests in flight, which are what the server sees."""
        stats = self.stats
        stats.queued += 1
        if stats.queued > stats.max_queued:
            stats.max_queued = stats.queued
        try:
            yield
        finally:
            stats.queued -= 1

    def _stop_for_quota(self, exc: QuotaExhausted) -> None:
        if self._quota is None:
            self._quota = exc

    def _user_error(self, exc: BaseException) -> BaseException:
        """Translate a fatal provider error into the rewts error tree (naming what to fix)."""
        if isinstance(exc, _Unreachable):
            where = url_without_secrets(
                getattr(self.provider, "base_url", None) or self._provider_id
            )
            return LLMError(
                f"{self.provider.name}: cannot reach {where} ({exc}); every attempt failed to "
                "connect: check llm.base_url (--base-url), that the server is running, and the "
                "network; no strategies were written"
            )
        return user_error(exc, self.provider, "no strategies were written")


__all__ = ["Engine", "EngineSettings", "Response", "Task", "TaskResult"]
