"""OpenAI's Batch API on the simulator: ``/v1/files`` (JSONL in and out) and ``/v1/batches``.

Shapes as the ``openai`` SDK (3.x) sends and parses them (captured from ``files.create``,
``batches.create/retrieve/cancel`` and ``files.content``): the input file is a multipart upload
of JSONL lines ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``; a
batch is ``validating`` for the first third of ``batch_delay_s``, then ``in_progress``, then
``completed`` with an ``output_file_id`` whose lines are ``{"id", "custom_id", "response":
{"status_code", "request_id", "body"}, "error": null}`` (lines that did not parse go to the
``error_file_id`` with their 400).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from rewts.sim import openai_wire
from rewts.sim.wire import WireError, json_response

if TYPE_CHECKING:
    from rewts.sim.app import SimState

_ENDPOINT = "/v1/chat/completions"


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class OpenAIBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: Any
    delay_s: float
    n_lines: int
    created: float = field(default_factory=time.monotonic)
    created_at: int = field(default_factory=lambda: int(time.time()))
    cancelled_at: int | None = None
    completed_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: tuple[int, int] = (0, 0)  # (completed, failed)

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        age = now - self.created
        if age >= self.delay_s:
            return "completed"
        return "in_progress" if age >= self.delay_s / 3 else "validating"


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    }
    return json_response(body, status)


class OpenAIBatches:
    """Files and batch jobs of one simulator (they survive a stop/start, like the state)."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, OpenAIBatch] = {}

    # -- files -----------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or not hasattr(upload, "file"):
            return _error(400, "Missing required parameter: 'file'.", "file")
        if not isinstance(purpose, str):
            return _error(400, "Missing required parameter: 'purpose'.", "purpose")
        stored = StoredFile(
            f"file-sim{uuid.uuid4().hex[:20]}", upload.filename, purpose, upload.file.read()
        )
        self.files[stored.id] = stored
        return json_response(stored.public())

    def file(self, file_id: str, content: bool) -> web.Response:
        stored = self.files.get(file_id)
        if stored is None:
            return _error(404, f"No such File object: {file_id}", "id")
        if content:
            return web.Response(body=stored.data, content_type="application/octet-stream")
        return json_response(stored.public())

    def delete_file(self, file_id: str) -> web.Response:
        if self.files.pop(file_id, None) is None:
            return _error(404, f"No such File object: {file_id}", "id")
        return json_response({"id": file_id, "object": "file", "deleted": True})

    # -- batches ---------------------------------------------------------------------------

    async def create(self, state: SimState, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "We could not parse the JSON body of your request.")
        file_id = body.get("input_file_id")
        if body.get("endpoint") != _ENDPOINT:
            return _error(400, f"the rewts simulator batches only {_ENDPOINT}", "endpoint")
        stored = self.files.get(file_id) if isinstance(file_id, str) else None
        if stored is None:
            return _error(404, f"No such File object: {file_id}", "input_file_id")
        lines = [ln for ln in stored.data.decode("utf-8", "replace").splitlines() if ln.strip()]
        batch = OpenAIBatch(
            id=f"batch_sim{uuid.uuid4().hex[:20]}",
            input_file_id=stored.id,
            endpoint=_ENDPOINT,
            completion_window=str(body.get("completion_window", "24h")),
            metadata=body.get("metadata"),
            delay_s=state.config.batch_delay_s,
            n_lines=len(lines),
        )
        self.batches[batch.id] = batch
        return json_response(self._public(state, batch))

    def get(self, state: SimState, batch_id: str) -> web.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return _error(404, f"No such Batch object: {batch_id}", "batch_id")
        return json_response(self._public(state, batch))

    def cancel(self, state: SimState, batch_id: str) -> web.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return _error(404, f"No such Batch object: {batch_id}", "batch_id")
        if batch.status(time.monotonic()) != "completed":
            batch.cancelled_at = int(time.time())
        return json_response(self._public(state, batch))

    def _run(self, state: SimState, batch: OpenAIBatch) -> None:
        """Answer every line (once, when the batch is first seen completed)."""
        out, err = [], []
        t_in = t_out = 0
        for n, line in enumerate(
            self.files[batch.input_file_id].data.decode("utf-8", "replace").splitlines()
        ):
            if not line.strip():
                continue
            rid = f"batch_req_sim{uuid.uuid4().hex[:16]}"
            try:
                item = json.loads(line)
            except ValueError:
                item = {}
            custom_id = (
                item.get("custom_id", f"line-{n}") if isinstance(item, dict) else f"line-{n}"
            )
            head = f'{{"id":{json.dumps(rid)},"custom_id":{json.dumps(custom_id)},"response":'
            try:
                req = openai_wire.parse(item.get("body") if isinstance(item, dict) else None)
            except WireError as exc:
                body = exc.response.body.decode()  # type: ignore[union-attr]
                err.append(
                    f'{head}{{"status_code":400,"request_id":"{rid}","body":{body}}},"error":null}}'
                )
                continue
            answer, logprobs, prompt_tokens = state.batch_answer(req)
            t_in, t_out = t_in + prompt_tokens, t_out + len(answer.tokens)
            text = openai_wire.completion_json(req, answer, logprobs, prompt_tokens, rid[-24:])
            out.append(
                f'{head}{{"status_code":200,"request_id":"{rid}","body":{text}}},"error":null}}'
            )
        state.stats.add_tokens(t_in, t_out)
        for lines, attr, suffix in (
            (out, "output_file_id", "output"),
            (err, "error_file_id", "errors"),
        ):
            if lines:
                stored = StoredFile(
                    f"file-sim{uuid.uuid4().hex[:20]}",
                    f"{batch.id}_{suffix}.jsonl",
                    "batch_output",
                    ("\n".join(lines) + "\n").encode(),
                )
                self.files[stored.id] = stored
                setattr(batch, attr, stored.id)
        batch.counts = (len(out), len(err))
        batch.completed_at = int(time.time())

    def _public(self, state: SimState, batch: OpenAIBatch) -> dict[str, Any]:
        status = batch.status(time.monotonic())
        if status == "completed" and batch.completed_at is None:
            self._run(state, batch)
        done = status == "completed"
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "model": None,
            "errors": None,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": status,
            "output_file_id": batch.output_file_id if done else None,
            "error_file_id": batch.error_file_id if done else None,
            "created_at": batch.created_at,
            "in_progress_at": batch.created_at if status != "validating" else None,
            "expires_at": batch.created_at + 86400,
            "finalizing_at": batch.completed_at if done else None,
            "completed_at": batch.completed_at if done else None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": batch.cancelled_at,
            "cancelled_at": batch.cancelled_at,
            "request_counts": {
                "total": batch.n_lines,
                "completed": batch.counts[0] if done else 0,
                "failed": batch.counts[1] if done else 0,
            },
            "metadata": batch.metadata,
        }

    # -- routing ---------------------------------------------------------------------------

    async def dispatch(self, state: SimState, request: web.Request, rest: str) -> web.Response:
        """``rest`` is the path after /v1/ (files..., batches...)."""
        parts = rest.split("/")
        method = request.method
        if parts == ["files"] and method == "POST":
            return await self.upload(request)
        if parts[0] == "files" and len(parts) == 2:
            if method == "GET":
                return self.file(parts[1], content=False)
            if method == "DELETE":
                return self.delete_file(parts[1])
        if parts[0] == "files" and len(parts) == 3 and parts[2] == "content" and method == "GET":
            return self.file(parts[1], content=True)
        if parts == ["batches"] and method == "POST":
            return await self.create(state, request)
        if parts == ["batches"] and method == "GET":
            data = [self._public(state, b) for b in self.batches.values()]
            return json_response(
                {
                    "object": "list",
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )
        if parts[0] == "batches" and len(parts) == 2 and method == "GET":
            return self.get(state, parts[1])
        if parts[0] == "batches" and len(parts) == 3 and parts[2] == "cancel" and method == "POST":
            return self.cancel(state, parts[1])
        return _error(404, f"Invalid URL ({method} /v1/{rest})")
