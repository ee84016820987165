"""Batch mode (``llm.batch: true``): every cache miss in one provider batch job, at batch prices.

Gemini Batch Mode and OpenAI's Batch API answer within 24 h for about half the price of the
same calls made one by one. :class:`BatchRunner` is a drop-in for the engine
(``run(tasks) -> {id: TaskResult}``, ``stats``, ``subscribe``) so the generator can use either:

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

A job may take hours, so a run may be interrupted (Ctrl-C, a crash): submitted jobs are noted
in a small :class:`JobStore` next to the cache, left running, and collected by the next run
instead of being submitted (and paid for) again. Without a cache nothing could collect them
later, so an interrupted job is cancelled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rewts.errors import AuthenticationError, ConfigError, LLMError, QuotaExhaustedError
from rewts.fileio import write_text_atomic
from rewts.llm.cache import StrategyCache
from rewts.llm.engine import (
    Engine,
    EngineSettings,
    Task,
    TaskResult,
    cache_settings,
    check_graph,
    result_from_cache,
)
from rewts.llm.limiter import Unlimited
from rewts.llm.monitor import RunFinished, RunStarted, RunStats, TaskFinished
from rewts.llm.providers.base import (
    AuthFailed,
    BadRequest,
    ConnectionFailed,
    InvalidOutput,
    NotFound,
    Provider,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Request,
    Response,
    ServerError,
    Timeout,
    is_cacheable,
)
from rewts.llm.schemas import Strategy, answer_entropy, parse_answer, parse_strategy

log = logging.getLogger(__name__)

#: batch prices as a share of ordinary ones (Gemini Batch Mode and OpenAI's Batch API: 50 %)
BATCH_PRICE_FACTOR = 0.5
#: attempts at submitting one job when the submission itself meets a transient error
SUBMIT_ATTEMPTS = 4
#: consecutive failed polls (network, 5xx) before the run gives up on a job
POLL_FAILURES = 10


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class BatchSubmitted:
    job: str
    provider: str
    requests: int
    wave: int


@dataclass(frozen=True, slots=True)
class BatchResumed:
    """A job an earlier, interrupted run submitted, collected now instead of submitting again."""

    job: str
    provider: str
    requests: int
    wave: int


@dataclass(frozen=True, slots=True)
class BatchPolled:
    job: str
    state: str
    elapsed_s: float
    total: int
    #: finished / failed so far where the provider says (OpenAI does; Gemini only at the end)
    done: int | None = None
    failed: int | None = None


@dataclass(frozen=True, slots=True)
class BatchCompleted:
    job: str
    state: str
    succeeded: int
    failed: int
    wall_s: float


# --------------------------------------------------------------------------- backends


@dataclass(frozen=True, slots=True)
class JobStatus:
    state: str
    terminal: bool
    done: int | None = None
    failed: int | None = None
    #: why the whole job failed (state failed/expired), when the provider said
    error: str | None = None


Outcome = Response | ProviderError


class BatchBackend(Protocol):
    """One provider's batch API: submit requests under ids, poll, collect, cancel."""

    async def submit(self, items: Sequence[tuple[str, Request]], display_name: str) -> str: ...

    async def poll(self, job: str) -> JobStatus: ...

    async def collect(self, job: str) -> dict[str, Outcome]: ...

    async def cancel(self, job: str) -> None: ...


class GeminiBatch:
    """Gemini Batch Mode with inlined requests (``client.aio.batches``)."""

    TERMINAL = frozenset(
        {
            "JOB_STATE_SUCCEEDED",
            "JOB_STATE_FAILED",
            "JOB_STATE_CANCELLED",
            "JOB_STATE_EXPIRED",
            "JOB_STATE_PARTIALLY_SUCCEEDED",
        }
    )

    #: inlined requests are limited to 20 MB per job (Gemini's documentation); kept below it
    max_bytes = 15_000_000
    max_items = None

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self._order: dict[str, list[str]] = {}

    async def submit(self, items: Sequence[tuple[str, Request]], display_name: str) -> str:
        from google.genai import types

        p = self.provider
        models = {r.model for _, r in items}
        if len(models) != 1:
            raise ValueError("one Gemini batch job serves one model")
        src = []
        for custom_id, request in items:
            _, contents = p.contents(request)
            src.append(
                types.InlinedRequest(
                    contents=contents, config=p.config(request), metadata={"key": custom_id}
                )
            )
        try:
            job = await p.client.aio.batches.create(
                model=models.pop(), src=src, config={"display_name": display_name}
            )
        except Exception as exc:
            raise p.translate(exc) from None
        self._order[job.name] = [cid for cid, _ in items]
        return job.name

    async def _get(self, job: str) -> Any:
        try:
            return await self.provider.client.aio.batches.get(name=job)
        except Exception as exc:
            raise self.provider.translate(exc) from None

    async def poll(self, job: str) -> JobStatus:
        got = await self._get(job)
        state = getattr(got.state, "value", str(got.state))
        stats = got.completion_stats
        error = getattr(got.error, "message", None) if got.error is not None else None
        return JobStatus(
            state,
            state in self.TERMINAL,
            done=getattr(stats, "successful_count", None) if stats else None,
            failed=getattr(stats, "failed_count", None) if stats else None,
            error=error,
        )

    async def collect(self, job: str) -> dict[str, Outcome]:
        from rewts.llm.providers.gemini import parse_response

        got = await self._get(job)
        order = self._order.get(job, [])
        inlined = (got.dest.inlined_responses if got.dest is not None else None) or []
        out: dict[str, Outcome] = {}
        for i, item in enumerate(inlined):
            meta = item.metadata or {}
            custom_id = meta.get("key") or (order[i] if i < len(order) else None)
            if custom_id is None:
                continue
            if item.error is not None:
                out[custom_id] = _item_error(
                    getattr(item.error, "code", None), getattr(item.error, "message", None)
                )
            elif item.response is None:
                out[custom_id] = InvalidOutput("the batch item has neither response nor error")
            else:
                try:
                    out[custom_id] = parse_response(item.response)
                except InvalidOutput as exc:
                    out[custom_id] = exc
        return out

    async def cancel(self, job: str) -> None:
        await self.provider.client.aio.batches.cancel(name=job)


class OpenAIBatch:
    """OpenAI's Batch API: a JSONL file of chat completions, ``/v1/batches``, output files."""

    ENDPOINT = "/v1/chat/completions"
    TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
    #: OpenAI's limits per batch input file: 50,000 requests, 200 MB
    max_items = 50_000
    max_bytes = 190_000_000

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        # the adapter's own client and request body: one source of truth for what is sent
        self.client = provider.client

    def _translate(self, exc: BaseException) -> ProviderError:
        return _openai_error(exc, getattr(self.provider, "env_var", None))

    async def submit(self, items: Sequence[tuple[str, Request]], display_name: str) -> str:
        lines = [
            json.dumps(
                {
                    "custom_id": custom_id,
                    "method": "POST",
                    "url": self.ENDPOINT,
                    "body": self.provider.request_body(request),
                },
                ensure_ascii=False,
            )
            for custom_id, request in items
        ]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            upload = await self.client.files.create(
                file=(f"{display_name}.jsonl", data), purpose="batch"
            )
            batch = await self.client.batches.create(
                input_file_id=upload.id,
                endpoint=self.ENDPOINT,
                completion_window="24h",
                metadata={"rewts": display_name},
            )
        except Exception as exc:
            raise self._translate(exc) from None
        return batch.id

    async def _get(self, job: str) -> Any:
        try:
            return await self.client.batches.retrieve(job)
        except Exception as exc:
            raise self._translate(exc) from None

    async def poll(self, job: str) -> JobStatus:
        b = await self._get(job)
        counts = b.request_counts
        error = None
        if b.errors is not None and getattr(b.errors, "data", None):
            first = b.errors.data[0]
            error = f"{getattr(first, 'code', '')}: {getattr(first, 'message', '')}"
        return JobStatus(
            b.status,
            b.status in self.TERMINAL,
            done=counts.completed if counts else None,
            failed=counts.failed if counts else None,
            error=error,
        )

    async def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        try:
            text = (await self.client.files.content(file_id)).text
        except Exception as exc:
            raise self._translate(exc) from None
        out = []
        for line in text.splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    log.warning("batch output: a line that is not JSON was skipped")
        return out

    async def collect(self, job: str) -> dict[str, Outcome]:
        from rewts.llm.providers.openai_compat import parse_completion

        b = await self._get(job)
        out: dict[str, Outcome] = {}
        for item in await self._lines(b.output_file_id) + await self._lines(b.error_file_id):
            custom_id = item.get("custom_id")
            if not isinstance(custom_id, str):
                continue
            response = item.get("response") or {}
            status = response.get("status_code")
            body = response.get("body")
            if status == 200 and body is not None:
                try:
                    out[custom_id] = parse_completion(json.dumps(body))
                except InvalidOutput as exc:
                    out[custom_id] = exc
                continue
            err = item.get("error") or (body.get("error") if isinstance(body, dict) else None)
            message = err.get("message") if isinstance(err, dict) else None
            out[custom_id] = _item_error(status, message)
        return out

    async def cancel(self, job: str) -> None:
        await self.client.batches.cancel(job)


def batch_backend(provider: Provider) -> BatchBackend:
    """The batch API of ``provider``, or a ConfigError saying it has none."""
    from rewts.llm.providers.gemini import GeminiProvider
    from rewts.llm.providers.openai_compat import OpenAICompatProvider

    if isinstance(provider, GeminiProvider):
        return GeminiBatch(provider)
    if isinstance(provider, OpenAICompatProvider):
        if provider.name == "deepseek":
            raise ConfigError(
                "llm.batch: DeepSeek has no batch API; set llm.batch to false (DeepSeek's "
                "off-peak discount applies to ordinary calls)"
            )
        return OpenAIBatch(provider)
    raise ConfigError(
        f"llm.batch: provider {provider.name} has no batch API (gemini, openai and "
        "OpenAI-compatible servers with /v1/batches do); set llm.batch to false"
    )


# ----------------------------------------------------------------------- error helpers


def _item_error(code: Any, message: Any) -> ProviderError:
    """One batch item's error (HTTP-like code and message) as a taxonomy error."""
    text = str(message or "no message")[:300]
    try:
        status = int(code) if code is not None else None
    except (TypeError, ValueError):
        status = None
    if status == 429:
        return RateLimited(f"batch item: {text}")
    if status is not None and status >= 500:
        return ServerError(f"batch item: HTTP {status}: {text}", status=status)
    if status in (401, 403):
        return AuthFailed(f"batch item: {text}", status=status)
    if status == 404:
        return NotFound(f"batch item: {text}", status=404)
    if status is not None and status >= 400:
        return BadRequest(f"batch item: HTTP {status}: {text}", status=status)
    return ServerError(f"batch item: {text}")


def _openai_error(exc: BaseException, env_var: str | None) -> ProviderError:
    import openai

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return Timeout("the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ConnectionFailed(f"connection failed: {type(exc.__cause__ or exc).__name__}")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthFailed("key rejected", env_var=env_var, status=exc.status_code)
    if isinstance(exc, openai.RateLimitError):
        text = f"{getattr(exc, 'code', '')} {exc.body}".lower()
        if "insufficient_quota" in text or "billing" in text:
            return QuotaExhausted("openai: quota exhausted (HTTP 429)", status=429)
        return RateLimited("HTTP 429")
    if isinstance(exc, openai.NotFoundError):
        return NotFound("not found (HTTP 404): the model, or this endpoint has no batch API")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ServerError(f"HTTP {exc.status_code}", status=exc.status_code)
        return BadRequest(str(exc.message)[:300], status=exc.status_code)
    return ServerError(type(exc).__name__)


def _user_error(exc: ProviderError, provider: Provider) -> Exception:
    """A fatal error met while submitting, in the rewts error tree (naming what to fix)."""
    name = provider.name
    if isinstance(exc, AuthFailed):
        var = exc.env_var or getattr(provider, "env_var", None) or "the API key variable"
        return AuthenticationError(
            f"{name} rejected the API key (HTTP {exc.status or 401}): set {var} to a valid key "
            "(or llm.api_key_env to the variable that holds it); no batch job was submitted"
        )
    if isinstance(exc, NotFound):
        return LLMError(
            f"{name}: {exc} — check llm.model (--model), or set llm.batch to false if this "
            "endpoint has no batch API"
        )
    return LLMError(f"{name} refused the batch job: {exc} — check llm.model and the settings")


class _NotFinished(ProviderError):
    """A job that ran past ``max_wait_s`` and was cancelled: its items are not resubmitted."""


def _is_logprobs_refusal(exc: ProviderError) -> bool:
    text = str(exc).lower()
    return isinstance(exc, BadRequest) and "logprob" in text and "not" in text


# --------------------------------------------------------------------------- job store


class JobStore:
    """Jobs submitted and not yet collected: a small JSON file next to the cache (0600).

    A batch job may take hours; whoever interrupts the run (Ctrl-C, a closed laptop, a crash)
    must not pay for it twice. The next run with the same cache finds the job here and
    collects it instead of submitting the same requests again. Entries name the job, the
    endpoint, the model and the cache keys it answers: never a key or a prompt.
    """

    #: entries older than this are dropped (both providers expire jobs within 48 h)
    MAX_AGE_S = 72 * 3600.0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(data, list):
            return []
        now = time.time()
        fields = {"job", "provider", "keys", "submitted"}
        return [
            e
            for e in data
            if isinstance(e, dict)
            and fields <= e.keys()
            and isinstance(e["submitted"], int | float)
            and now - float(e["submitted"]) < self.MAX_AGE_S
        ]

    def _write(self, entries: list[dict[str, Any]]) -> None:
        write_text_atomic(self.path, json.dumps(entries))  # user-only, like the cache

    def add(self, job: str, provider: str, model: str, keys: Sequence[str]) -> None:
        entry = {
            "job": job,
            "provider": provider,
            "model": model,
            "keys": list(keys),
            "submitted": time.time(),
        }
        self._write([e for e in self.load() if e["job"] != job] + [entry])

    def remove(self, job: str) -> None:
        entries = self.load()
        kept = [e for e in entries if e["job"] != job]
        if len(kept) != len(entries):
            self._write(kept)


def store_for(cache: StrategyCache | None) -> JobStore | None:
    """The job store next to ``cache`` (None without a cache: nothing could be resumed)."""
    return None if cache is None else JobStore(f"{cache.path}.batches.json")


# ------------------------------------------------------------------------------ runner


class BatchRunner:
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
        self.provider = provider
        self.backend = backend if backend is not None else batch_backend(provider)
        self.cache = cache if cache is not None and is_cacheable(provider) else None
        #: jobs not yet collected (resumed by the next run); None without a cache
        self.store = store if store is not None else store_for(self.cache)
        self.prompt_version = prompt_version
        self.poll_s = poll_s
        self.max_wait_s = max_wait_s
        self.retries = retries
        self.parse = parse
        self.stats = RunStats()
        self._subscribers = [events] if events is not None else []
        # the engine computes the cache key: batch and non-batch runs share every entry
        self._keys = Engine(
            provider, Unlimited(), settings=EngineSettings(prompt_version=prompt_version)
        )
        self._provider_id = getattr(provider, "identity", provider.name)
        self._io: concurrent.futures.ThreadPoolExecutor | None = None
        self._wave = 0

    def subscribe(self, callback: Callable[[Any], None]) -> None:
        self._subscribers.append(callback)

    def key_for(self, request: Request) -> str:
        return self._keys.key_for(request)

    def _emit(self, event: Any) -> None:
        for callback in self._subscribers:
            callback(event)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._io is not None
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    # -------------------------------------------------------------------------- run

    async def run(self, tasks: Sequence[Task]) -> dict[Hashable, TaskResult]:
        """Every task answered (from the cache or a batch job), failed, or stopped."""
        loop = asyncio.get_running_loop()
        by_id = check_graph(tasks)
        stats = self.stats
        stats.total = len(tasks)
        stats.started_at = loop.time()
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
            raise _user_error(exc, self.provider) from None
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
            resumed = await self._resumable(pending) if attempts == 1 else []
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
            outcomes: dict[str, Outcome] = {}
            for job in running:
                outcomes.update(job.result())
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
        outcome: Outcome,
        attempts: int,
        results: dict[Hashable, TaskResult],
    ) -> ProviderError | None:
        """Validate and cache one answer (every task that asked it); the error otherwise."""
        if isinstance(outcome, ProviderError):
            if _is_logprobs_refusal(outcome):
                getattr(self.provider, "no_logprobs", set()).add(request.model)
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
        first = tasks[0]
        if self.cache is not None:
            cache = self.cache
            kwargs = dict(
                provider=self._provider_id,
                model=request.model,
                prompt_version=self.prompt_version,
                settings=cache_settings(request),
                messages=request.messages,
                response_text=outcome.text,
                strategy_json=answer.model_dump_json(),
                entropy=entropy,
                tokens_in=outcome.tokens_in,
                tokens_out=outcome.tokens_out,
                latency_s=None,
                ticker=first.meta.get("ticker"),
                period=first.meta.get("period"),
            )
            await self._in_thread(lambda: cache.put(key, **kwargs))
        for i, task in enumerate(tasks):
            self._finish(
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
                ),
                results,
            )
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

    async def _job(self, items: list[tuple[str, Request]]) -> dict[str, Outcome]:
        name = f"rewts-{uuid.uuid4().hex[:12]}"
        job = await self._submit(items, name)
        self.stats.api_calls += len(items)
        keys = [key for key, _ in items]
        if self.store is not None:
            await self._in_thread(self.store.add, job, self._provider_id, items[0][1].model, keys)
        self._emit(BatchSubmitted(job, self.provider.name, len(items), self._wave))
        return await self._await_job(job, keys)

    async def _await_job(self, job: str, keys: list[str]) -> dict[str, Outcome]:
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

    async def _resumable(self, pending: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
        """Jobs of earlier runs (same endpoint) still holding some of ``pending``'s keys."""
        if self.store is None:
            return []
        found = []
        for entry in await self._in_thread(self.store.load):
            if entry["provider"] != self._provider_id:
                continue
            keys = [k for k in entry["keys"] if k in pending]
            if keys:
                found.append((entry["job"], keys))
        return found

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
    "GeminiBatch",
    "JobStore",
    "OpenAIBatch",
    "batch_backend",
]
