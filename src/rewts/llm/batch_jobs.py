"""Where batch mode finds a provider's batch API, and the store of jobs an interrupted run
left running.

A job may take hours, so a run may be interrupted (Ctrl-C, a crash): submitted jobs are noted
in a small :class:`JobStore` next to the cache, left running, and collected by the next run
instead of being submitted (and paid for) again. Without a cache nothing could collect them
later, so an interrupted job is cancelled.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Container, Sequence
from pathlib import Path
from typing import Any

from rewts.errors import ConfigError
from rewts.fileio import write_text_atomic
from rewts.llm.cache import StrategyCache
from rewts.llm.providers.base import BatchBackend, Provider

# --------------------------------------------------------------------------- backends


def batch_backend(provider: Provider) -> BatchBackend:
    """The batch API of ``provider`` (its ``batch()`` capability), or a ConfigError saying it
    has none."""
    make = getattr(provider, "batch", None)
    if make is None:
        raise ConfigError(
            f"llm.batch: provider {provider.name} has no batch API (gemini, openai and "
            "OpenAI-compatible servers with /v1/batches do); set llm.batch to false"
        )
    backend: BatchBackend = make()
    return backend


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

    def resumable(self, provider: str, pending: Container[str]) -> list[tuple[str, list[str]]]:
        """Jobs of earlier runs at ``provider`` (the endpoint) still holding some of the
        ``pending`` cache keys, each with those keys."""
        found = []
        for entry in self.load():
            if entry["provider"] != provider:
                continue
            keys = [k for k in entry["keys"] if k in pending]
            if keys:
                found.append((entry["job"], keys))
        return found

    def remove(self, job: str) -> None:
        entries = self.load()
        kept = [e for e in entries if e["job"] != job]
        if len(kept) != len(entries):
            self._write(kept)


def store_for(cache: StrategyCache | None) -> JobStore | None:
    """The job store next to ``cache`` (None without a cache: nothing could be resumed)."""
    return None if cache is None else JobStore(f"{cache.path}.batches.json")
