"""Gemini Batch Mode for :class:`~rewts.llm.providers.gemini.GeminiProvider` (its ``batch()``).

Inlined requests built by the adapter itself (same contents and config as an ordinary call),
errors translated by the adapter's own ``translate``; :mod:`rewts.llm.batch` runs the jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewts.llm.providers.base import InvalidOutput, ItemOutcome, JobStatus, Request, item_error
from rewts.llm.providers.gemini import GeminiProvider, parse_response


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

    def __init__(self, provider: GeminiProvider) -> None:
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

    async def collect(self, job: str) -> dict[str, ItemOutcome]:
        got = await self._get(job)
        order = self._order.get(job, [])
        inlined = (got.dest.inlined_responses if got.dest is not None else None) or []
        out: dict[str, ItemOutcome] = {}
        for i, item in enumerate(inlined):
            meta = item.metadata or {}
            custom_id = meta.get("key") or (order[i] if i < len(order) else None)
            if custom_id is None:
                continue
            if item.error is not None:
                out[custom_id] = item_error(
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


__all__ = ["GeminiBatch"]
