"""OpenAI's Batch API for :class:`~rewts.llm.providers.openai_compat.OpenAICompatProvider`
(its ``batch()``).

The JSONL lines carry the adapter's own request body, answers are parsed by its own
``parse_completion`` and errors translated by its own ``translate``; :mod:`rewts.llm.batch`
runs the jobs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from rewts.llm.providers.base import (
    InvalidOutput,
    ItemOutcome,
    JobStatus,
    ProviderError,
    Request,
    item_error,
)
from rewts.llm.providers.openai_compat import OpenAICompatProvider, parse_completion

log = logging.getLogger(__name__)


class OpenAIBatch:
    """OpenAI's Batch API: a JSONL file of chat completions, ``/v1/batches``, output files."""

    ENDPOINT = "/v1/chat/completions"
    TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
    #: OpenAI's limits per batch input file: 50,000 requests, 200 MB
    max_items = 50_000
    max_bytes = 190_000_000

    def __init__(self, provider: OpenAICompatProvider) -> None:
        self.provider = provider
        # the adapter's own client and request body: one source of truth for what is sent
        self.client = provider.client

    def _translate(self, exc: BaseException) -> ProviderError:
        # the adapter's own mapping: key redaction, 402, retry-after as for ordinary calls
        return self.provider.translate(exc)

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

    async def collect(self, job: str) -> dict[str, ItemOutcome]:
        b = await self._get(job)
        out: dict[str, ItemOutcome] = {}
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
            out[custom_id] = item_error(status, message)
        return out

    async def cancel(self, job: str) -> None:
        await self.client.batches.cancel(job)


__all__ = ["OpenAIBatch"]
