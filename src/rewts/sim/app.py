"""The simulator's aiohttp application: one request flow for both wire formats, plus control.

Flow of a generation request: auth -> parse -> model check -> server-side limits (429) ->
fault draw (drop, hang, 5xx, malformed, truncated) -> latency (``asyncio.sleep``: never blocks
the loop) -> answer. Answers are a pure function of the request's content; fault and latency
draws come from one seeded ``random.Random`` in arrival order.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import ModuleType
from typing import Any

from aiohttp import web

from rewts.errors import ConfigError
from rewts.sim import gemini_wire, openai_wire
from rewts.sim.answers import (
    Answer,
    answer_text,
    build_answer,
    count_tokens,
    malformed,
    request_rng,
    strategy_pool,
    token_logprobs,
    truncated,
)
from rewts.sim.config import SimConfig
from rewts.sim.limits import RateWindows
from rewts.sim.openai_batch import OpenAIBatches
from rewts.sim.stats import SimStats
from rewts.sim.wire import ParsedRequest, WireError, json_response

_SERVER_ERRORS = (500, 502, 503)


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


class SimState:
    """Everything that outlives one aiohttp application: config, stats, limits, batches.

    ``SimServer.stop()``/``start()`` rebuild the application around the same state, so quotas,
    counters and batch jobs survive a simulated server restart as they would on a real API.
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stats = SimStats(config.log_limit)
        self.windows = RateWindows()
        self.rng = random.Random(config.seed)
        self.batches: dict[str, BatchJob] = {}
        self.openai_batches = OpenAIBatches()

    def update(self, **changes: Any) -> SimConfig:
        new = self.config.replace(**changes)
        if new.seed != self.config.seed:
            self.rng = random.Random(new.seed)
        self.config = new
        return new

    def reset_day(self) -> None:
        self.windows.day_count = 0

    # -- draws (arrival order) ---------------------------------------------------------------

    def draw_fault(self, cfg: SimConfig) -> str | None:
        u = self.rng.random()
        for name in ("drop", "hang", "error", "malformed", "truncated", "garbage"):
            rate = getattr(cfg, f"{name}_rate")
            if u < rate:
                return name
            u -= rate
        return None

    def _latency(self, cfg: SimConfig) -> float:
        if cfg.latency_s <= 0:
            return 0.0
        if cfg.latency_dist == "lognormal" and cfg.latency_sigma > 0:
            mu = math.log(cfg.latency_s) - cfg.latency_sigma**2 / 2
            return self.rng.lognormvariate(mu, cfg.latency_sigma)
        return cfg.latency_s

    # -- the generation flow -----------------------------------------------------------------

    def answer(self, cfg: SimConfig, req: ParsedRequest) -> tuple[Answer, random.Random]:
        rng = request_rng(cfg.seed, req.model, req.content)
        text = answer_text(
            req.schema, req.json_mode, req.prompt, rng, strategy_pool(cfg.answers_file)
        )
        return build_answer(text, req.max_tokens), rng

    async def generate(
        self, request: web.Request, wire: ModuleType, version: str, model: str | None
    ) -> web.StreamResponse:
        entry = self.stats.arrive(wire.FORMAT, request.path)
        cfg = self.config
        status: int | None = None
        fault: str | None = None
        tokens = (0, 0)
        try:
            key = wire.api_key(request)
            if cfg.api_key is not None and key != cfg.api_key:
                resp = wire.auth_error(key)
                status = resp.status
                return resp
            try:
                body = await request.json()
            except ValueError:
                body = None
            try:
                req = wire.parse(body) if wire is openai_wire else wire.parse(body, model)
            except WireError as exc:
                status = exc.response.status
                return exc.response
            entry["model"] = req.model
            if cfg.models is not None and req.model not in cfg.models:
                resp = (
                    openai_wire.model_not_found(req.model)
                    if wire is openai_wire
                    else gemini_wire.model_not_found(req.model, version)
                )
                status = resp.status
                return resp
            answer, rng = self.answer(cfg, req)
            prompt_tokens = count_tokens(req.prompt)
            # OpenAI counts prompt + completion against TPM; Gemini's TPM quota is input tokens
            limit_tokens = (
                prompt_tokens + len(answer.tokens) if wire is openai_wire else prompt_tokens
            )
            now = time.monotonic()
            verdict = self.windows.admit(
                now,
                limit_tokens,
                window_s=cfg.window_s,
                rpm=cfg.rpm_limit,
                tpm=cfg.tpm_limit,
                rpd=cfg.rpd_limit,
            )
            headers: dict[str, str] = {}
            if wire is openai_wire:
                used_req, used_tok = self.windows.used(now, cfg.window_s)
                reset_req, reset_tok = self.windows.reset_after(now, cfg.window_s)
                headers = openai_wire.ratelimit_headers(
                    cfg.rpm_limit, cfg.tpm_limit, used_req, used_tok, reset_req, reset_tok
                )
            if verdict is not None:
                fault = f"limit_{verdict.kind}"
                resp = (
                    openai_wire.rate_limited(verdict, req.model, cfg.retry_after, headers)
                    if wire is openai_wire
                    else gemini_wire.rate_limited(verdict, req.model, cfg.retry_after)
                )
                status = 429
                return resp
            fault = self.draw_fault(cfg)
            latency = self._latency(cfg)
            if fault == "hang":
                await asyncio.sleep(cfg.hang_s)  # cancelled when the client gives up
                return _drop(request)
            await asyncio.sleep(latency)
            if fault == "drop":
                return _drop(request)
            if fault == "error":
                status = self.rng.choice(_SERVER_ERRORS)
                return wire.server_error(status)
            if fault == "malformed":
                answer = malformed(answer, rng)
            elif fault == "truncated":
                answer = truncated(answer, rng)
            logprobs = (
                token_logprobs(answer.tokens, req.top_logprobs, rng) if req.logprobs else None
            )
            tokens = (prompt_tokens, len(answer.tokens))
            status = 200
            if wire is openai_wire:
                resp = openai_wire.success(req, answer, logprobs, prompt_tokens, headers)
            else:
                resp = gemini_wire.success(req, answer, logprobs, prompt_tokens)
            if fault == "garbage":
                resp = _cut_body(resp)
            return resp
        except asyncio.CancelledError:
            fault = fault or "client_gone"  # the client closed the connection first
            raise
        finally:
            # also runs when the client disconnects (the handler is cancelled): status None
            self.stats.finish(entry, status, fault=fault, tokens_in=tokens[0], tokens_out=tokens[1])

    # -- Gemini batch mode -------------------------------------------------------------------

    def _batch_results(self, job: BatchJob) -> list[dict[str, Any]]:
        cfg = self.config
        results = []
        t_in = t_out = 0
        for req, metadata in job.items:
            if isinstance(req, dict):  # an item that did not parse: its error, like the real API
                item: dict[str, Any] = {"error": req}
            else:
                answer, rng = self.answer(cfg, req)
                fault = self.draw_fault(cfg)
                if fault == "malformed":
                    answer = malformed(answer, rng)
                elif fault == "truncated":
                    answer = truncated(answer, rng)
                logprobs = (
                    token_logprobs(answer.tokens, req.top_logprobs, rng) if req.logprobs else None
                )
                prompt_tokens = count_tokens(req.prompt)
                t_in, t_out = t_in + prompt_tokens, t_out + len(answer.tokens)
                item = {"response": gemini_wire.response_body(req, answer, logprobs, prompt_tokens)}
            if metadata is not None:
                item["metadata"] = metadata
            results.append(item)
        self.stats.add_tokens(t_in, t_out)  # a batch's tokens count when it completes
        return results

    def _operation(self, job: BatchJob) -> dict[str, Any]:
        state = job.state(time.monotonic())
        if state == "BATCH_STATE_SUCCEEDED" and job.results is None:
            job.results = self._batch_results(job)
            job.end_time = job.update_time = _now_rfc3339()
        return gemini_wire.batch_operation(
            name=job.name,
            model=job.model,
            display_name=job.display_name,
            state=state,
            create_time=job.create_time,
            update_time=job.update_time,
            end_time=job.end_time,
            n_requests=len(job.items),
            results=job.results if state == "BATCH_STATE_SUCCEEDED" else None,
        )

    async def batch(self, request: web.Request, version: str, rest: str) -> web.StreamResponse:
        entry = self.stats.arrive("gemini-batch", request.path)
        status: int | None = None
        try:
            resp = await self._batch(request, version, rest, entry)
            status = resp.status
            return resp
        finally:
            self.stats.finish(entry, status)

    async def _batch(
        self, request: web.Request, version: str, rest: str, entry: dict[str, Any]
    ) -> web.Response:
        cfg = self.config
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
            self.batches[job.name] = job
            return json_response(self._operation(job))
        if rest == "batches" and request.method == "GET":
            return json_response(
                {"operations": [self._operation(j) for j in self.batches.values()]}
            )
        name, _, action = rest.partition(":")
        job = self.batches.get(name)
        if job is None:
            return gemini_wire.not_found(name)
        if action == "cancel" and request.method == "POST":
            if job.state(time.monotonic()) != "BATCH_STATE_SUCCEEDED":
                job.cancelled = True
                job.end_time = job.update_time = _now_rfc3339()
            return json_response({})
        if not action and request.method == "DELETE":
            del self.batches[name]
            return json_response({})
        if not action and request.method == "GET":
            return json_response(self._operation(job))
        return gemini_wire.not_found(rest)


def _cut_body(resp: web.Response) -> web.Response:
    """The same 200 with its body cut in half: what a broken proxy or connection delivers."""
    body = resp.body if isinstance(resp.body, bytes) else b""
    return web.Response(
        body=body[: max(1, len(body) // 2)], status=200, content_type="application/json"
    )


def _drop(request: web.Request) -> web.Response:
    """Close the connection without answering (aiohttp then fails to write and gives up)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)


async def _openai(state: SimState, request: web.Request) -> web.StreamResponse:
    return await state.generate(request, openai_wire, "v1", None)


async def _openai_batch(state: SimState, request: web.Request, rest: str) -> web.StreamResponse:
    entry = state.stats.arrive("openai-batch", request.path)
    status: int | None = None
    try:
        key = openai_wire.api_key(request)
        if state.config.api_key is not None and key != state.config.api_key:
            resp = openai_wire.auth_error(key)
        else:
            resp = await state.openai_batches.dispatch(state, request, rest)
        status = resp.status
        return resp
    finally:
        state.stats.finish(entry, status)


async def _gemini(state: SimState, request: web.Request) -> web.StreamResponse:
    version = request.match_info["version"]
    rest = request.match_info["rest"]
    # /v1/files and /v1/batches are OpenAI's Batch API when the caller speaks OpenAI (Bearer)
    if (
        version == "v1"
        and rest.split("/", 1)[0] in ("files", "batches")
        and "x-goog-api-key" not in request.headers
        and request.headers.get("Authorization", "").lower().startswith("bearer ")
    ):
        return await _openai_batch(state, request, rest)
    if (
        rest.startswith("models/")
        and rest.endswith(":generateContent")
        and request.method == "POST"
    ):
        model = rest[len("models/") : -len(":generateContent")]
        return await state.generate(request, gemini_wire, version, model)
    if rest.startswith("batches") or rest.endswith(":batchGenerateContent"):
        return await state.batch(request, version, rest)
    return gemini_wire.not_found(f"{request.method} /{version}/{rest}")


async def _stats(state: SimState, request: web.Request) -> web.Response:
    return json_response(state.stats.snapshot(log=request.query.get("log", "1") != "0"))


async def _control(state: SimState, request: web.Request) -> web.Response:
    """POST a JSON object of settings to change; ``reset_stats``/``reset_day``: true reset those."""
    try:
        changes = await request.json()
    except ValueError:
        changes = None
    if not isinstance(changes, dict):
        return json_response({"error": "POST a JSON object of simulator settings"}, 400)
    if changes.pop("reset_stats", False):
        state.stats.reset()
    if changes.pop("reset_day", False):
        state.reset_day()
    try:
        config = state.update(**changes)
    except (ConfigError, TypeError) as exc:
        return json_response({"error": str(exc)}, 400)
    return json_response(config.public())


def build_app(state: SimState) -> web.Application:
    """A fresh application around ``state`` (rebuilt on every start)."""
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", partial(_openai, state))
    app.router.add_get("/stats", partial(_stats, state))
    app.router.add_post("/control", partial(_control, state))
    app.router.add_route("*", r"/{version:v1[a-z0-9]*}/{rest:.+}", partial(_gemini, state))
    return app
