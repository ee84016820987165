"""What the engine reports while it runs: events, counters and the requests-per-minute window.

The engine (and the batch runner, :mod:`rewts.llm.batch`) never prints. It updates one :class:`RunStats` and emits small event objects to
subscribers (``events=callable``); a display (``rewts.ui``) renders them, a test records them.
Memory stays bounded: counters, and a deque of the last 60 s of send times.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from typing import Any


class RequestMonitor:
    """Requests sent in a sliding window (the seed's 60 s), as a share of the limit."""

    def __init__(
        self,
        window_s: float = 60.0,
        limit_rpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.limit_rpm = limit_rpm
        self._clock = clock
        self._times: collections.deque[float] = collections.deque()

    def record_request(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        edge = now - self.window_s
        times = self._times
        while times and times[0] < edge:
            times.popleft()

    def current_rpm(self, now: float | None = None) -> float:
        """Requests in the last window, scaled to a minute."""
        now = self._clock() if now is None else now
        self._trim(now)
        return len(self._times) * 60.0 / self.window_s

    def percent_of_limit(self, now: float | None = None) -> float:
        if not self.limit_rpm:
            return 0.0
        return 100.0 * self.current_rpm(now) / self.limit_rpm


@dataclass(slots=True)
class RunStats:
    """Counters of one run (read by displays and turned into the summary).

    ``done`` counts tasks that ended (answered, cached or failed), never tasks a stop left
    undone: after a quota stop the display must say 30/114, not 114/114. ``in_flight`` is
    requests sent and not yet answered (what the server sees); ``queued`` is tasks started
    but waiting to send (for a rate-limit permit or a retry's back-off), which with auto
    concurrency can be hundreds while a dozen are in flight.
    """

    total: int = 0
    done: int = 0
    #: tasks a stop left without an answer although their request had been sent (refused by
    #: the quota, or waiting to retry); the other undone tasks (``total - done``) never were
    stopped_after_sending: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    deduplicated: int = 0
    api_calls: int = 0
    generated: int = 0
    retries: int = 0
    http_429: int = 0
    failures: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    queued: int = 0
    max_queued: int = 0
    concurrency_limit: int = 0
    started_at: float = 0.0
    latency_sum_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class RunStarted:
    total: int
    cached: int
    provider: str
    model: str
    local: bool
    concurrency: str
    limit_rpm: float | None
    #: live objects a display may poll (the engine keeps updating them)
    stats: RunStats | None = None
    monitor: RequestMonitor | None = None


@dataclass(frozen=True, slots=True)
class TaskFinished:
    task_id: Hashable
    status: str  # ok | cached | failed | stopped
    latency_s: float | None = None
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RequestRetried:
    task_id: Hashable
    error: str  # the error class: RateLimited, ServerError, Timeout, ...
    attempt: int
    delay_s: float
    status: int | None = None


@dataclass(frozen=True, slots=True)
class RunFinished:
    stats: RunStats
    wall_s: float
    reason: str = "done"  # done | fatal | quota | interrupted


# batch mode (rewts.llm.batch): one provider job per wave of tasks


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


@dataclass
class EventLog:
    """A subscriber that keeps every event (tests)."""

    events: list[Any] = field(default_factory=list)

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
