"""The simulator's aiohttp application: one request flow for both wire formats, plus control.

Flow of a generation request: auth -> parse -> model check -> server-side limits (429) ->
fault draw (drop, hang, 5xx, malformed, truncated, garbage body) -> latency
(``asyncio.sleep``: never blocks the loop) -> answer. Answers are a pure function of the
request's content; fault and latency draws come from one seeded ``random.Random`` in arrival
order. 429/401/404 answers are immediate, as on the real APIs.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from functools import partial
from types import ModuleType
from typing import Any

from aiohttp import web

from rewts.errors import ConfigError
from rewts.sim import gemini_wire, openai_wire
from rewts.sim.answers import (
    Answer,
    TokenLogprobs,
    answer_text,
    build_answer,
    count_tokens,
    delivered,
    request_rng,
    strategy_pool,
)
from rewts.sim.config import SimConfig
from rewts.sim.gemini_batch import GeminiBatches
from rewts.sim.limits import RateWindows
from rewts.sim.openai_batch import OpenAIBatches
from rewts.sim.stats import SimStats
from rewts.sim.wire import ParsedRequest, WireError, json_response

_SERVER_ERRORS = (500, 502, 503)


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
        self.gemini_batches = GeminiBatches()
        self.openai_batches = OpenAIBatches()
        #: set while SimServer.stop() tears the application down (cancelled handlers say why)
        self.stopping = False

    def update(self, **changes: Any) -> SimConfig:
        new = self.config.replace(**changes)
        if new.seed != self.config.seed:
            self.rng = random.Random(new.seed)
        if new.log_limit != self.config.log_limit:
            self.stats.set_log_limit(new.log_limit)
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

    def batch_answer(self, req: ParsedRequest) -> tuple[Answer, TokenLogprobs | None, int]:
        """A batch item's answer, its logprobs and prompt tokens: the answer and fault draw of a
        live request, without latency, limits or connection faults."""
        cfg = self.config
        answer, rng = self.answer(cfg, req)
        answer, logprobs = delivered(
            answer, rng, self.draw_fault(cfg), req.logprobs, req.top_logprobs
        )
        return answer, logprobs, count_tokens(req.prompt)

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
                    else gemini_wire.rate_limited(verdict, req.model, cfg.retry_after, cfg.window_s)
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
            answer, logprobs = delivered(answer, rng, fault, req.logprobs, req.top_logprobs)
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
            # the client closed the connection first, or the server is being stopped
            fault = fault or ("server_stopped" if self.stopping else "client_gone")
            raise
        finally:
            # also runs when the client disconnects (the handler is cancelled): status None
            self.stats.finish(entry, status, fault=fault, tokens_in=tokens[0], tokens_out=tokens[1])


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
        return await state.gemini_batches.handle(state, request, version, rest)
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
