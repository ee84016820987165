"""Tasks, their results, and what every way of running them shares.

The engine (one call at a time, :mod:`rewts.llm.engine`) and the batch runner (one provider job
per wave, :mod:`rewts.llm.batch`) run the same :class:`Task` graph. They share, from here, the
cache key of a request (so a batch run and an ordinary run hit the same cache entries), the way
an answer is committed to the cache, and the translation of a fatal provider error into the
rewts error tree, so the two can never drift apart; :class:`TaskRunner` holds what they share
as objects (the subscribers of their events, the run's counters, the key function).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from rewts.errors import AuthenticationError, LLMError
from rewts.llm.cache import StrategyCache, cache_key
from rewts.llm.monitor import RunStats
from rewts.llm.providers.base import AuthFailed, BadRequest, NotFound, Provider, Request
from rewts.llm.schemas import Strategy

Status = Literal["ok", "cached", "failed", "stopped"]


@dataclass(slots=True)
class Task:
    """One LLM call to make. Either ``request`` is given, or ``build`` makes it from the
    results of ``deps`` once they are done. ``meta`` (ticker, period) is stored with the answer."""

    id: Hashable
    request: Request | None = None
    build: Callable[[Mapping[Hashable, TaskResult]], Request] | None = None
    deps: tuple[Hashable, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: the answer's model (default: the strategist's :class:`Strategy`); an analyst task
    #: brings its own, used to validate the text and to reload it from the cache
    schema: type[BaseModel] | None = None
    #: build even when a dependency failed (``build`` then sees its failed result): a
    #: reflection chain goes on past one failed period, telling the next prompt so
    tolerate_failed_deps: bool = False
    #: lower starts first among ready tasks (ties: in order). The generator uses the period
    #: index, so a chain's next link overtakes the analyses of later periods queued before it
    priority: float = 0.0


@dataclass(slots=True)
class TaskResult:
    """What became of a task (``strategy`` is None unless status is ok or cached)."""

    id: Hashable
    status: Status
    key: str | None = None
    #: the validated answer (a :class:`Strategy` unless the task brought its own schema)
    strategy: Any = None
    entropy: float | None = None
    response_text: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float | None = None
    attempts: int = 0
    error: str | None = None


# ------------------------------------------------------------------- functions


def cache_settings(request: Request) -> dict[str, Any]:
    """The settings stored with an answer and hashed into its key (batch mode shares them)."""
    settings = request.settings()
    if request.json_schema is not None:
        name, schema = request.json_schema
        settings["schema"] = [name, json.dumps(schema, sort_keys=True)]
    return settings


def request_key(provider_id: str, prompt_version: str, request: Request) -> str:
    """The cache key of ``request`` at the endpoint ``provider_id`` (a provider's identity)."""
    return cache_key(
        provider_id, request.model, prompt_version, request.messages, cache_settings(request)
    )


def store_answer(
    cache: StrategyCache,
    key: str,
    provider_id: str,
    prompt_version: str,
    task: Task,
    request: Request,
    result: TaskResult,
) -> None:
    """Commit one validated answer with its full provenance (blocking: run it in a thread)."""
    assert result.strategy is not None
    cache.put(
        key,
        provider=provider_id,
        model=request.model,
        prompt_version=prompt_version,
        settings=cache_settings(request),
        messages=request.messages,
        response_text=result.response_text or "",
        strategy_json=result.strategy.model_dump_json(),
        entropy=result.entropy,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        latency_s=result.latency_s,
        ticker=task.meta.get("ticker"),
        period=task.meta.get("period"),
    )


def result_from_cache(task: Task, key: str, entry: Any) -> TaskResult:
    """A cache entry as the task's result (validated again by the task's schema)."""
    schema = task.schema or Strategy
    return TaskResult(
        task.id,
        "cached",
        key=key,
        strategy=schema.model_validate_json(entry.strategy_json),
        entropy=entry.entropy,
        response_text=entry.response_text,
        tokens_in=entry.tokens_in,
        tokens_out=entry.tokens_out,
        latency_s=entry.latency_s,
    )


def check_graph(tasks: Sequence[Task]) -> dict[Hashable, Task]:
    """Unique ids, known dependencies, no cycles (Kahn's algorithm)."""
    by_id: dict[Hashable, Task] = {}
    for task in tasks:
        if task.id in by_id:
            raise ValueError(f"duplicate task id {task.id!r}")
        if task.request is None and task.build is None:
            raise ValueError(f"task {task.id!r} has neither a request nor a build function")
        by_id[task.id] = task
    indegree = {t.id: 0 for t in tasks}
    children: dict[Hashable, list[Hashable]] = collections.defaultdict(list)
    for task in tasks:
        for dep in task.deps:
            if dep not in by_id:
                raise ValueError(f"task {task.id!r} depends on unknown task {dep!r}")
            indegree[task.id] += 1
            children[dep].append(task.id)
    queue = collections.deque(i for i, d in indegree.items() if d == 0)
    seen = 0
    while queue:
        node = queue.popleft()
        seen += 1
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    if seen != len(tasks):
        raise ValueError("task dependencies form a cycle")
    return by_id


def user_error(
    exc: BaseException, provider: Provider, consequence: str, *, batch: bool = False
) -> BaseException:
    """A fatal provider error in the rewts error tree, naming what to fix and ending with
    ``consequence`` (what was not done); ``exc`` itself when no translation applies.

    ``batch``: the error met a batch job (a 404 may then mean the endpoint has no batch API)."""
    name, model = provider.name, provider.model
    if isinstance(exc, AuthFailed):
        var = exc.env_var or getattr(provider, "env_var", None) or "the API key variable"
        return AuthenticationError(
            f"{name} rejected the API key (HTTP {exc.status or 401}): set {var} to a valid "
            f"key (or llm.api_key_env to the variable that holds it); {consequence}"
        )
    if isinstance(exc, NotFound):
        if batch:
            return LLMError(
                f"{name}: {exc} — check llm.model (--model), or set llm.batch to false if this "
                "endpoint has no batch API"
            )
        return LLMError(
            f"{name}: model {exc.model or model!r} not found (HTTP {exc.status or 404}): set "
            f"llm.model (--model) to a model this endpoint serves; {consequence}"
        )
    if isinstance(exc, BadRequest) and not batch:
        return LLMError(
            f"{name} rejected the request (HTTP {exc.status or 400}): {exc} — check llm.model "
            "and the generation settings (llm.temperature, llm.max_output_tokens, "
            f"llm.logprobs); {consequence}"
        )
    if batch:
        return LLMError(f"{name} refused the batch job: {exc} — check llm.model and the settings")
    return exc


class TaskRunner:
    """What the engine and the batch runner share as objects: the provider, the subscribers
    of their events, the run's counters and the cache key of a request."""

    def __init__(
        self, provider: Provider, prompt_version: str, events: Callable[[Any], None] | None
    ) -> None:
        self.provider = provider
        self.stats = RunStats()
        self._prompt_version = prompt_version
        self._subscribers = [events] if events is not None else []
        #: the provider's endpoint (no secret) in every cache key
        self._provider_id: str = getattr(provider, "identity", provider.name)

    def subscribe(self, callback: Callable[[Any], None]) -> None:
        self._subscribers.append(callback)

    def key_for(self, request: Request) -> str:
        # one key for both runners: batch and non-batch runs share every cache entry
        return request_key(self._provider_id, self._prompt_version, request)

    def _emit(self, event: Any) -> None:
        for callback in self._subscribers:
            callback(event)

    def _begin(self, tasks: Sequence[Task], now: float) -> dict[Hashable, Task]:
        """Check the task graph and start the counters; the tasks by id."""
        by_id = check_graph(tasks)
        self.stats.total = len(tasks)
        self.stats.started_at = now
        return by_id


__all__ = [
    "Status",
    "Task",
    "TaskResult",
    "TaskRunner",
    "cache_settings",
    "check_graph",
    "request_key",
    "result_from_cache",
    "store_answer",
    "user_error",
]
