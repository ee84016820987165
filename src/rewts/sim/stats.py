"""What the simulator saw: counts by status and fault, concurrency, tokens, a per-request log.

Tests read it to verify client-side behaviour (a limiter kept under the server's limit, a
retry went out, how many requests were in flight at once). Mutated from the server's loop,
read from any thread: one lock, held for a few dictionary updates only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any


class SimStats:
    """Counters plus a bounded per-request log (monotonic arrival time, status, model, format)."""

    def __init__(self, log_limit: int) -> None:
        self._lock = threading.Lock()
        self._log_limit = log_limit
        self.reset()

    def set_log_limit(self, log_limit: int) -> None:
        with self._lock:
            self._log_limit = log_limit
            self._log = deque(self._log, maxlen=log_limit or None)

    def reset(self) -> None:
        with self._lock:
            self._next_id = 0
            self.requests = 0
            self.by_status: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.in_flight = 0
            self.max_in_flight = 0
            self.tokens_in = 0
            self.tokens_out = 0
            self._log: deque[dict[str, Any]] = deque(maxlen=self._log_limit or None)
            self._started = time.monotonic()

    def arrive(self, fmt: str, path: str) -> dict[str, Any]:
        """Count an arriving request; the returned entry is completed by :meth:`finish`."""
        with self._lock:
            self._next_id += 1
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            entry: dict[str, Any] = {
                "id": self._next_id,
                "t": time.monotonic(),
                "t_end": None,
                "format": fmt,
                "path": path,
                "model": None,
                "status": None,
                "fault": None,
            }
            if self._log_limit:
                self._log.append(entry)
            return entry

    def finish(
        self,
        entry: dict[str, Any],
        status: int | None,
        *,
        fault: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
    ) -> None:
        """Close an entry: ``status`` None means no HTTP answer (dropped, hung, client gone)."""
        with self._lock:
            if entry["t_end"] is not None:
                return
            entry["t_end"] = time.monotonic()
            entry["status"] = status
            entry["fault"] = fault
            self.in_flight -= 1
            if status is not None:
                self.by_status[str(status)] += 1
            if fault:
                self.faults[fault] += 1
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out

    def add_tokens(self, tokens_in: int, tokens_out: int) -> None:
        with self._lock:
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out

    def snapshot(self, *, log: bool = True) -> dict[str, Any]:
        """A JSON-ready copy (the same dict ``GET /stats`` returns)."""
        with self._lock:
            out: dict[str, Any] = {
                "requests": self.requests,
                "by_status": dict(self.by_status),
                "http_429": self.by_status.get("429", 0),
                "http_5xx": sum(n for s, n in self.by_status.items() if s.startswith("5")),
                "faults": dict(self.faults),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out,
                "uptime_s": time.monotonic() - self._started,
            }
            if log:
                out["log"] = [dict(e) for e in self._log]
            return out
