"""The engine's bookkeeping: which tasks of the graph are ready, a token estimate for the
limiter, and the result a task gets from an identical request sent once for both."""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
from collections.abc import Hashable, Mapping

from rewts.llm.providers.base import Request
from rewts.llm.tasks import Status, Task, TaskResult


class ReadyQueue:
    """The scheduler's task bookkeeping: tasks whose dependencies are all done, by (priority,
    arrival), lower priority first and FIFO among equals; the others wait on a count of
    unfinished dependencies and join when it reaches zero."""

    def __init__(self, by_id: Mapping[Hashable, Task], results: Mapping[Hashable, TaskResult]):
        self._by_id = by_id
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()
        self._waiting_on: dict[Hashable, int] = {}
        self._dependents: dict[Hashable, list[Hashable]] = collections.defaultdict(list)
        for task in by_id.values():
            if task.id in results:
                continue
            missing = [d for d in task.deps if d not in results]
            for dep in missing:
                self._dependents[dep].append(task.id)
            if missing:
                self._waiting_on[task.id] = len(missing)
            else:
                self._push(task.id)

    def _push(self, task_id: Hashable) -> None:
        heapq.heappush(self._heap, (self._by_id[task_id].priority, next(self._order), task_id))

    def __bool__(self) -> bool:
        return bool(self._heap)

    def pop(self) -> Task:
        """The next task to start."""
        return self._by_id[heapq.heappop(self._heap)[2]]

    def release(self, task_id: Hashable) -> None:
        """``task_id`` finished: its dependents that waited only on it become ready."""
        for child in self._dependents.pop(task_id, ()):
            self._waiting_on[child] -= 1
            if self._waiting_on[child] == 0:
                del self._waiting_on[child]
                self._push(child)


def estimate_tokens(request: Request) -> int:
    """A cheap upper-ish estimate (4 characters per token) plus the output allowance."""
    chars = sum(len(m.get("content", "")) for m in request.messages)
    return chars // 4 + request.max_tokens


def shared_copy(result: TaskResult, task_id: Hashable, status: Status) -> TaskResult:
    """``result`` as the answer of ``task_id``, another task with the same request (sent
    once): its own id and ``status``; a failure is copied without the answer's fields."""
    if result.status != "ok" and result.status != "cached":
        return TaskResult(task_id, result.status, key=result.key, error=result.error)
    return dataclasses.replace(result, id=task_id, status=status, attempts=0)  # it sent nothing
