"""Batch mode (``llm.batch: true``): every cache miss in one provider batch job, at batch prices.

Gemini Batch Mode and OpenAI's Batch API answer within 24 h for about half the price of the
same calls made one by one. :class:`BatchRunner` is a drop-in for the engine
(``run(tasks) -> {id: TaskResult}``, ``stats``, ``subscribe``) so the generator can use either.
Each adapter with a batch API offers it as ``provider.batch()`` (``providers/gemini_batch.py``,
``providers/openai_batch.py``); the cache key, the storing of answers and the translation of
fatal errors are the engine's own (:mod:`rewts.llm.tasks`), and the events join the engine's
(:mod:`rewts.llm.monitor`). A run:

1. cache lookups first (the engine's own cache key, so a later run without batch mode hits the
   same entries, and the other way round); identical requests are sent once;
2. one job per wave of cache misses (inlined requests for Gemini, a JSONL file for OpenAI),
   polled every ``poll_s`` seconds with :class:`BatchPolled` events;
3. each answer is validated exactly as the engine does (``parse_strategy``, or the task's own
   schema) and cached with full provenance before it counts as done; an item that failed or
   did not validate is resubmitted in one more job (``retries``), then reported ``failed`` —
   never cached, never replaced by a guess.

Dependencies (reflection chains, analyst -> strategist) cannot go in one job: a task's prompt
is built from its dependencies' answers. Tasks therefore run in *waves*, one job per
dependency level: with reflection a ticker of M periods takes M consecutive jobs (each up to
the provider's turnaround), which is why batch mode suits ``reflection: false`` best.

A per-day quota or spend cap met while submitting stops cleanly with
:class:`~rewts.errors.QuotaExhaustedError` (everything answered so far is cached); a rejected
key, an unknown model or a refused request abort with the same messages as the engine. If the
job does not finish within ``max_wait_s`` it is cancelled and its items are reported failed.

An interrupted run leaves its jobs running for the next one (:mod:`rewts.llm.batch_jobs`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import uuid
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from rewts.errors import LLMError, QuotaExhaustedError
from rewts.llm.batch_jobs import JobStore, batch_backend, store_for
from rewts.llm.cache import StrategyCache
from rewts.llm.monitor import (
    BatchCompleted,
    BatchPolled,
    BatchResumed,
    BatchSubmitted,
    RunFinished,
    RunStarted,
    TaskFinished,
)
from rewts.llm.providers.base import (
    BadRequest,
    BatchBackend,
    InvalidOutput,
    ItemOutcome,
    JobStatus,
    Provider,
    ProviderError,
    QuotaExhausted,
    Request,
    Response,
    ServerError,
    is_cacheable,
)
from rewts.llm.schemas import Strategy, answer_entropy, parse_answer, parse_strategy
from rewts.llm.tasks import (
    Task,
    TaskResult,
    TaskRunner,
    result_from_cache,
    store_answer,
    user_error,
)

log = logging.getLogger(__name__)

#: batch prices as a share of ordinary ones (Gemini Batch Mode and OpenAI's Batch API: 50 %)
BATCH_PRICE_FACTOR = 0.5
#: attempts at submitting one job when the submission itself meets a transient error
SUBMIT_ATTEMPTS = 4
#: consecutive failed polls (network, 5xx) before the run gives up on a job
POLL_FAILURES = 10


# ----------------------------------------------------------------------- error helpers


class _NotFinished(ProviderError):
    """A job that ran past ``max_wait_s`` and was cancelled: its items are not resubmitted."""


def _is_logprobs_refusal(exc: ProviderError) -> bool:
    text = str(exc).lower()
    return isinstance(exc, BadRequest) and "logprob" in text and "not" in text


# ------------------------------------------------------------------------------ runner


class BatchRunner(TaskRunner):
    """Runs tasks through a provider's batch API; the engine's interface and result objects."""

    def __init__(
        self,
        provider: Provider,
        *,
        cache: StrategyCache | None = None,
        prompt_version: str = "v1",
        poll_s: float = 30.0,
        max_wait_s: float = 48 * 3600.0,
        retries: int = 1,
        events: Callable[[Any], None] | None = None,
        backend: BatchBackend | None = None,
        parse: Callable[[str], Strategy] = parse_strategy,
        store: JobStore | None = None,
    ) -> None:
        super().__init__(provider, prompt_version, events)
        self.backend = backend if backend is not None else batch_backend(provider)
        self.cache = cache if cache is not None and is_cacheable(provider) else None
        #: jobs not yet collected (resumed by the next run); None without a cache
        self.store = store if store is not None else store_for(self.cache)
        self.poll_s = poll_s
        self.max_wait_s = max_wait_s
        self.retries = retries
        self.parse = parse
        self._io: concurrent.futures.ThreadPoolExecutor | None = None
        self._wave = 0

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._io is not None
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    # -------------------------------------------------------------------------- run

    async def run(self, tasks: Sequence[Task]) -> dict[Hashable, TaskResult]:
        """Every task answered (from the cache or a batch job), failed, or stopped."""
        loop = asyncio.get_running_loop()
        by_id = self._begin(tasks, loop.time())
        stats = self.stats
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rewts-batch")
        results: dict[Hashable, TaskResult] = {}
        reason = "done"
        self._emit(
            RunStarted(
                total=len(tasks),
                cached=0,
                provider=self.provider.name,
                model=self.provider.model,
                local=False,
                concurrency="batch",
                limit_rpm=None,
                stats=stats,
            )
        )
        try:
            while len(results) < len(by_id):
                wave = [
                    t
                    for t in by_id.values()
                    if t.id not in results and all(d in results for d in t.deps)
                ]
                await self._run_wave(wave, results)
        except QuotaExhausted as exc:
            reason = "quota"
            for task_id in by_id:
                results.setdefault(task_id, TaskResult(task_id, "stopped", error="quota"))
            done = sum(r.status in ("ok", "cached") for r in results.values())
            raise QuotaExhaustedError(
                f"{exc} — stopped cleanly: {done} of {len(tasks)} answers are done and cached; "
                "rerun the same command later to submit only the missing ones"
            ) from None
        except ProviderError as exc:
            reason = "fatal"
            raise user_error(exc, self.provider, "no batch job was submitted", batch=True) from None
        except BaseException:  # LLMError (lost contact), cancellation: the run did not finish
            reason = "fatal"
            raise
        finally:
            self._io.shutdown(wait=True)
            self._emit(
                RunFinished(stats=stats, wall_s=loop.time() - stats.started_at, reason=reason)
            )
        return results

    def _finish(self, result: TaskResult, results: dict[Hashable, TaskResult]) -> None:
        results[result.id] = result
        self.stats.done += 1
        if result.status == "cached":
            self.stats.cache_hits += 1
        elif result.status == "failed":
            self.stats.failures += 1
        self._emit(
            TaskFinished(result.id, result.status, result.latency_s, result.attempts, result.error)
        )

    async def _run_wave(self, wave: list[Task], results: dict[Hashable, TaskResult]) -> None:
        self._wave += 1
        requests: dict[Hashable, tuple[Request, str]] = {}
        for task in wave:
            failed = [d for d in task.deps if results[d].status not in ("ok", "cached")]
            if failed and not getattr(task, "tolerate_failed_deps", False):
                self._finish(
                    TaskResult(task.id, "failed", error=f"dependency failed: {failed[0]}"), results
                )
                continue
            if task.request is not None:
                request = task.request
            else:
                assert task.build is not None
                request = task.build({d: results[d] for d in task.deps})
            requests[task.id] = (request, self.key_for(request))
        # 1. the cache
        hits = {}
        if self.cache is not None and requests:
            hits = await self._in_thread(self.cache.get_many, [k for _, k in requests.values()])
        misses: dict[str, tuple[Request, list[Task]]] = {}
        by_id = {t.id: t for t in wave}
        for task_id, (request, key) in requests.items():
            entry = hits.get(key)
            if entry is not None:
                self._finish(result_from_cache(by_id[task_id], key, entry), results)
            else:
                misses.setdefault(key, (request, []))[1].append(by_id[task_id])
        self.stats.cache_misses += len(misses)
        self.stats.deduplicated += sum(len(ts) - 1 for _, ts in misses.values())
        # 2. batch jobs, one per model, then up to ``retries`` more for what failed
        pending = dict(misses)
        last_error: dict[str, str] = {}
        attempts = 0
        while pending and attempts <= self.retries:
            attempts += 1
            # jobs an interrupted earlier run left running are collected, not paid twice
            resumed: list[tuple[str, list[str]]] = []
            if attempts == 1 and self.store is not None:
                resumed = await self._in_thread(self.store.resumable, self._provider_id, pending)
            taken = {k for _, keys in resumed for k in keys}
            by_model: dict[str, list[tuple[str, Request]]] = {}
            for key, (request, _) in pending.items():
                if key not in taken:
                    by_model.setdefault(request.model, []).append((key, request))
            chunks = [c for items in by_model.values() for c in self._split(items)]
            for job, keys in resumed:
                self._emit(BatchResumed(job, self.provider.name, len(keys), self._wave))
            # several jobs (models, size limits) run side by side; a fatal error in one
            # stops waiting for the others (they keep running and a rerun collects them)
            try:
                async with asyncio.TaskGroup() as group:
                    running = [group.create_task(self._job(c)) for c in chunks] + [
                        group.create_task(self._await_job(job, keys)) for job, keys in resumed
                    ]
            except BaseExceptionGroup as errors:
                raise errors.exceptions[0] from None  # the first failure, as a plain error
            outcomes: dict[str, ItemOutcome] = {}
            for finished in running:
                outcomes.update(finished.result())
            retry: dict[str, tuple[Request, list[Task]]] = {}
            for key, (request, tasks) in pending.items():
                outcome = outcomes.get(key) or ServerError("no answer in the batch output")
                error = await self._settle(key, request, tasks, outcome, attempts, results)
                if error is None:
                    continue
                last_error[key] = f"{type(error).__name__}: {error}"
                if error.retryable or _is_logprobs_refusal(error):
                    retry[key] = (request, tasks)
                else:
                    self._fail(tasks, key, last_error[key], attempts, results)
            pending = retry
        for key, (_, tasks) in pending.items():
            self._fail(tasks, key, last_error.get(key, "no answer"), attempts, results)

    def _fail(
        self,
        tasks: list[Task],
        key: str,
        error: str,
        attempts: int,
        results: dict[Hashable, TaskResult],
    ) -> None:
        for task in tasks:
            self._finish(
                TaskResult(task.id, "failed", key=key, attempts=attempts, error=error), results
            )

    async def _settle(
        self,
        key: str,
        request: Request,
        tasks: list[Task],
        outcome: ItemOutcome,
        attempts: int,
        results: dict[Hashable, TaskResult],
    ) -> ProviderError | None:
        """Validate and cache one answer (every task that asked it); the error otherwise."""
        if isinstance(outcome, ProviderError):
            if _is_logprobs_refusal(outcome):
                no_logprobs: set[str] = getattr(self.provider, "no_logprobs", set())
                no_logprobs.add(request.model)
            return outcome
        schema = tasks[0].schema
        try:
            answer = (
                self.parse(outcome.text) if schema is None else parse_answer(outcome.text, schema)
            )
        except InvalidOutput as exc:
            return exc
        self.stats.generated += 1
        self.stats.tokens_in += outcome.tokens_in
        self.stats.tokens_out += outcome.tokens_out
        entropy = answer_entropy(outcome.logprobs)
        answered = [
            TaskResult(
                task.id,
                "ok" if i == 0 else "cached",
                key=key,
                strategy=answer,
                entropy=entropy,
                response_text=outcome.text,
                tokens_in=outcome.tokens_in if i == 0 else 0,
                tokens_out=outcome.tokens_out if i == 0 else 0,
                attempts=attempts,
            )
            for i, task in enumerate(tasks)
        ]
        if self.cache is not None:  # committed before any task counts as done, as the engine
            cache, first, pid, version = (
                self.cache,
                tasks[0],
                self._provider_id,
                self._prompt_version,
            )
            await self._in_thread(
                lambda: store_answer(cache, key, pid, version, first, request, answered[0])
            )
        for result in answered:
            self._finish(result, results)
        return None

    def _split(self, items: list[tuple[str, Request]]) -> list[list[tuple[str, Request]]]:
        """Chunks within the backend's limits on requests and bytes per job."""
        max_items = getattr(self.backend, "max_items", None) or len(items) or 1
        max_bytes = getattr(self.backend, "max_bytes", None)
        chunks: list[list[tuple[str, Request]]] = [[]]
        size = 0
        for item in items:
            # the prompt text dominates a request's size; 2 KB covers config and schema
            n = sum(len(m.get("content", "").encode()) for m in item[1].messages) + 2048
            full = len(chunks[-1]) >= max_items or (max_bytes and size + n > max_bytes)
            if chunks[-1] and full:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += n
        return [c for c in chunks if c]

    # -------------------------------------------------------------------------- one job

    async def _submit(self, items: list[tuple[str, Request]], name: str) -> str:
        delay = 2.0
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                return await self.backend.submit(items, name)
            except ProviderError as exc:
                no_logprobs = getattr(self.provider, "no_logprobs", None)
                model = items[0][1].model
                if (
                    _is_logprobs_refusal(exc)
                    and no_logprobs is not None
                    and model not in no_logprobs
                ):
                    # the model returns no log-probabilities: ask again without (C = 1)
                    log.warning("%s refuses log-probabilities; batch resubmitted without", model)
                    no_logprobs.add(model)
                    continue
                if not exc.retryable or attempt == SUBMIT_ATTEMPTS:
                    if exc.retryable:
                        raise LLMError(
                            f"{self.provider.name}: could not submit the batch job after "
                            f"{attempt} attempts ({type(exc).__name__}: {exc}); nothing was "
                            "lost: rerun later"
                        ) from None
                    raise
                wait = getattr(exc, "retry_after", None) or delay
                log.warning("batch submit failed (%s); retrying in %.0f s", exc, wait)
                await asyncio.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")

    async def _job(self, items: list[tuple[str, Request]]) -> dict[str, ItemOutcome]:
        name = f"rewts-{uuid.uuid4().hex[:12]}"
        job = await self._submit(items, name)
        self.stats.api_calls += len(items)
        keys = [key for key, _ in items]
        if self.store is not None:
            await self._in_thread(self.store.add, job, self._provider_id, items[0][1].model, keys)
        self._emit(BatchSubmitted(job, self.provider.name, len(items), self._wave))
        return await self._await_job(job, keys)

    async def _await_job(self, job: str, keys: list[str]) -> dict[str, ItemOutcome]:
        """Poll ``job`` to its end and collect it (a job of this run or of an earlier one)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        failures = 0
        last_state = ""
        try:
            while True:
                try:
                    status = await self.backend.poll(job)
                    failures = 0
                except ProviderError as exc:
                    if exc.fatal or isinstance(exc, QuotaExhausted):
                        raise
                    failures += 1
                    if failures >= POLL_FAILURES:
                        raise LLMError(
                            f"{self.provider.name}: lost contact with batch job {job} "
                            f"({exc}); it keeps running: rerun later to collect it (answers "
                            "already cached are kept)"
                        ) from None
                    await asyncio.sleep(self.poll_s)
                    continue
                elapsed = loop.time() - started
                if status.state != last_state:
                    log.info("batch job %s: %s after %.0f s", job, status.state, elapsed)
                    last_state = status.state
                self._emit(
                    BatchPolled(job, status.state, elapsed, len(keys), status.done, status.failed)
                )
                if status.terminal:
                    break
                if elapsed > self.max_wait_s:
                    await self._cancel(job)
                    await self._forget(job)
                    why = (
                        f"batch job {job} did not finish within llm.batch_max_wait_s = "
                        f"{self.max_wait_s:g} s and was cancelled; rerun to submit again"
                    )
                    return {key: _NotFinished(why) for key in keys}
                await asyncio.sleep(self.poll_s)
        except asyncio.CancelledError:
            if self.store is None:  # nobody could collect it later: do not pay for it
                await asyncio.shield(self._cancel(job))
            else:
                log.warning(
                    "batch job %s keeps running at %s; rerun the same command to collect it",
                    job,
                    self.provider.name,
                )
            raise
        outcomes = await self.backend.collect(job)
        if not outcomes and status.error:
            outcomes = {
                key: ServerError(f"batch job {status.state}: {status.error}") for key in keys
            }
        await self._forget(job)
        ok = sum(isinstance(o, Response) for o in outcomes.values())
        self._emit(BatchCompleted(job, status.state, ok, len(keys) - ok, loop.time() - started))
        return outcomes

    async def _forget(self, job: str) -> None:
        if self.store is not None:
            await self._in_thread(self.store.remove, job)

    async def _cancel(self, job: str) -> None:
        try:
            await self.backend.cancel(job)
        except Exception as exc:  # best effort: the job may already be finished
            log.warning("could not cancel batch job %s: %s", job, type(exc).__name__)


__all__ = [
    "BATCH_PRICE_FACTOR",
    "BatchCompleted",
    "BatchPolled",
    "BatchResumed",
    "BatchRunner",
    "BatchSubmitted",
    "JobStatus",
    "JobStore",
    "batch_backend",
]
