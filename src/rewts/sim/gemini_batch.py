"""Gemini Batch Mode on the simulator: ``models/{model}:batchGenerateContent`` and ``batches/*``.

Wire shapes are in :mod:`rewts.sim.gemini_wire` (checked against google-genai's
``batches.create/get``); here is the job's life: PENDING for the first third of
``batch_delay_s``, RUNNING, then SUCCEEDED with one inlined response per request, in order,
each carrying its request's ``metadata``. Only inlined requests are supported (not files).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from rewts.sim import gemini_wire
from rewts.sim.wire import ParsedRequest, WireError, json_response

if TYPE_CHECKING:
    from rewts.sim.app import SimState


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class BatchJob:
    """A Gemini batch: PENDING for a third of the delay, then RUNNING, then SUCCEEDED."""

    name: str
    model: str
    display_name: str
    items: list[tuple[ParsedRequest | dict[str, Any], Any]]
    delay_s: float
    created: float = field(default_factory=time.monotonic)
    create_time: str = field(default_factory=_now_rfc3339)
    update_time: str = field(default_factory=_now_rfc3339)
    end_time: str | None = None
    cancelled: bool = False
    results: list[dict[str, Any]] | None = None

    def state(self, now: float) -> str:
        if self.cancelled:
            return "BATCH_STATE_CANCELLED"
        age = now - self.created
        if age >= self.delay_s:
            return "BATCH_STATE_SUCCEEDED"
        return "BATCH_STATE_RUNNING" if age >= self.delay_s / 3 else "BATCH_STATE_PENDING"


class GeminiBatches:
    """The batch jobs of one simulator (they survive a stop/start, like the rest of the state)."""

    def __init__(self) -> None:
        self.jobs: dict[str, BatchJob] = {}

    def _results(self, state: SimState, job: BatchJob) -> list[dict[str, Any]]:
        results = []
        t_in = t_out = 0
        for req, metadata in job.items:
            if isinstance(req, dict):  # an item that did not parse: its error, like the real API
                item: dict[str, Any] = {"error": req}
            else:
                answer, logprobs, prompt_tokens = state.batch_answer(req)
                t_in, t_out = t_in + prompt_tokens, t_out + len(answer.tokens)
                item = {"response": gemini_wire.response_body(req, answer, logprobs, prompt_tokens)}
            if metadata is not None:
                item["metadata"] = metadata
            results.append(item)
        state.stats.add_tokens(t_in, t_out)  # a batch's tokens count when it completes
        return results

    def _operation(self, state: SimState, job: BatchJob) -> dict[str, Any]:
        status = job.state(time.monotonic())
        if status == "BATCH_STATE_SUCCEEDED" and job.results is None:
            job.results = self._results(state, job)
            job.end_time = job.update_time = _now_rfc3339()
        return gemini_wire.batch_operation(
            name=job.name,
            model=job.model,
            display_name=job.display_name,
            state=status,
            create_time=job.create_time,
            update_time=job.update_time,
            end_time=job.end_time,
            n_requests=len(job.items),
            results=job.results if status == "BATCH_STATE_SUCCEEDED" else None,
        )

    async def handle(
        self, state: SimState, request: web.Request, version: str, rest: str
    ) -> web.Response:
        """``rest`` is the path after /{version}/ (models/M:batchGenerateContent, batches...)."""
        entry = state.stats.arrive("gemini-batch", request.path)
        status: int | None = None
        try:
            resp = await self._handle(state, request, version, rest, entry)
            status = resp.status
            return resp
        finally:
            state.stats.finish(entry, status)

    async def _handle(
        self, state: SimState, request: web.Request, version: str, rest: str, entry: dict[str, Any]
    ) -> web.Response:
        cfg = state.config
        key = gemini_wire.api_key(request)
        if cfg.api_key is not None and key != cfg.api_key:
            return gemini_wire.auth_error(key)
        if rest.endswith(":batchGenerateContent") and request.method == "POST":
            model = rest[len("models/") : -len(":batchGenerateContent")]
            entry["model"] = model
            if cfg.models is not None and model not in cfg.models:
                return gemini_wire.model_not_found(model, version, "batchGenerateContent")
            try:
                body = await request.json()
            except ValueError:
                body = None
            try:
                display, raw_items = gemini_wire.batch_requests(body)
            except WireError as exc:
                return exc.response
            items: list[tuple[ParsedRequest | dict[str, Any], Any]] = []
            for raw, metadata in raw_items:
                try:
                    items.append((gemini_wire.parse(raw, model), metadata))
                except WireError as exc:
                    items.append((json.loads(exc.response.body)["error"], metadata))  # type: ignore[arg-type]
            job = BatchJob(
                f"batches/sim{uuid.uuid4().hex[:16]}", model, display, items, cfg.batch_delay_s
            )
            self.jobs[job.name] = job
            return json_response(self._operation(state, job))
        if rest == "batches" and request.method == "GET":
            return json_response(
                {"operations": [self._operation(state, j) for j in self.jobs.values()]}
            )
        name, _, action = rest.partition(":")
        job = self.jobs.get(name)
        if job is None:
            return gemini_wire.not_found(name)
        if action == "cancel" and request.method == "POST":
            if job.state(time.monotonic()) != "BATCH_STATE_SUCCEEDED":
                job.cancelled = True
                job.end_time = job.update_time = _now_rfc3339()
            return json_response({})
        if not action and request.method == "DELETE":
            del self.jobs[name]
            return json_response({})
        if not action and request.method == "GET":
            return json_response(self._operation(state, job))
        return gemini_wire.not_found(rest)
