"""The Gemini adapter through the real google-genai SDK: against the simulator (``rewts.sim``)
for answers, log-probabilities and the 429 cycle, and against a scripted loopback server for
exact request shapes and the rarer answers (no log-probabilities, spend cap, 402)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from rewts.config import Config
from rewts.errors import AuthenticationError, QuotaExhaustedError
from rewts.llm import generate_strategies
from rewts.llm.cache import StrategyCache
from rewts.llm.providers import make_provider
from rewts.llm.providers.base import (
    AuthFailed,
    ConnectionFailed,
    NotFound,
    QuotaExhausted,
    RateLimited,
    Request,
    ServerError,
    Timeout,
)
from rewts.llm.providers.gemini import (
    GeminiProvider,
    classify_429,
    make_gemini_provider,
    resolve_key,
    thinking_settings,
)
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA, parse_strategy
from rewts.sim import SimConfig, SimServer

from .helpers import fake_dataset

KEY = "gm-SENTINEL-do-not-leak-1234567890"
MODEL = "gemini-2.5-flash"
REQ = Request(
    messages=(
        {"role": "system", "content": "You are a strategist."},
        {"role": "user", "content": "Decide for AAPL."},
    ),
    model=MODEL,
    temperature=0.0,
    seed=49,
    max_tokens=300,
    json_schema=("strategy", STRATEGY_JSON_SCHEMA),
    logprobs=True,
)
ANSWER = {
    "direction": 1,
    "confidence": 2.0,
    "explanation": "scripted",
    "key_features": [{"feature": "rsi_14", "impact": "positive", "weight": 0.5}],
}


def _provider(base_url: str, **kw: Any) -> GeminiProvider:
    return GeminiProvider(api_key=KEY, base_url=base_url, timeout_s=kw.pop("timeout_s", 5.0), **kw)


def _call(base_url: str, request: Request = REQ, **kw: Any):
    async def main():
        p = _provider(base_url, **kw)
        try:
            return await p.generate(request), p
        finally:
            await p.aclose()

    return asyncio.run(main())


def _raises(base_url: str, **kw: Any) -> BaseException:
    try:
        _call(base_url, **kw)
    except BaseException as exc:
        return exc
    raise AssertionError("no error raised")


# ------------------------------------------------------------------ a scripted server


class Scripted:
    """A loopback Gemini endpoint that answers what ``handler(body) -> (status, json)`` says."""

    def __init__(self, handler: Callable[[dict], tuple[int, Any]]) -> None:
        self.handler = handler
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        status, payload = self.handler(body)
        return web.json_response(payload, status=status)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{version}/models/{rest}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    def __enter__(self) -> Scripted:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def answer_body(text: str, *, logprobs: dict | None = None, finish: str = "STOP") -> dict:
    cand: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "finishReason": finish,
    }
    if logprobs is not None:
        cand["logprobsResult"] = logprobs
    return {
        "candidates": [cand],
        "usageMetadata": {
            "promptTokenCount": 120,
            "candidatesTokenCount": 40,
            "thoughtsTokenCount": 7,
            "totalTokenCount": 167,
        },
    }


def error_body(code: int, status: str, message: str, details: list | None = None) -> dict:
    return {"error": {"code": code, "status": status, "message": message, "details": details or []}}


def quota_429(quota_id: str, delay: str | None = "7s") -> dict:
    details: list[dict] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": "m", "quotaId": quota_id}],
        }
    ]
    if delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    return error_body(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", details)


# --------------------------------------------------------------------------- shapes


def test_request_shape_system_first_schema_thinking_off_logprobs_and_key_header():
    with Scripted(lambda body: (200, answer_body(json.dumps(ANSWER)))) as server:
        response, _ = _call(server.base_url)
    assert parse_strategy(response.text).direction == 1
    # thinking tokens are billed as output: counted
    assert (response.tokens_in, response.tokens_out) == (120, 47)
    body = server.bodies[0]
    assert body["systemInstruction"]["parts"][0]["text"] == "You are a strategist."
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Decide for AAPL."}]}]
    gen = body["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert gen["responseJsonSchema"] == STRATEGY_JSON_SCHEMA
    # google-genai 3.x sends this one in snake_case; proto JSON accepts both spellings
    assert gen["thinkingConfig"] in ({"thinkingBudget": 0}, {"thinking_budget": 0})
    assert gen["seed"] == 49 and gen["temperature"] == 0.0 and gen["maxOutputTokens"] == 300
    assert gen["responseLogprobs"] is True and gen["logprobs"] == 5
    assert server.headers[0]["x-goog-api-key"] == KEY
    assert len(server.bodies) == 1  # no SDK retry


def test_json_object_mode_sends_json_without_the_schema():
    with Scripted(lambda body: (200, answer_body(json.dumps(ANSWER)))) as server:
        _call(server.base_url, structured="json_object")
    gen = server.bodies[0]["generationConfig"]
    assert gen["responseMimeType"] == "application/json" and "responseJsonSchema" not in gen


def test_logprobs_mapped_token_by_token():
    lp = {
        "chosenCandidates": [
            {"token": '{"direction": ', "logProbability": -0.01},
            {"token": "1", "logProbability": -0.4},
        ],
        "topCandidates": [
            {"candidates": [{"token": '{"direction": ', "logProbability": -0.01}]},
            {
                "candidates": [
                    {"token": "1", "logProbability": -0.4},
                    {"token": "0", "logProbability": -1.1},
                ]
            },
        ],
    }
    with Scripted(lambda body: (200, answer_body(json.dumps(ANSWER), logprobs=lp))) as server:
        response, _ = _call(server.base_url)
    assert [(t.token, t.logprob) for t in response.logprobs] == [
        ('{"direction": ', -0.01),
        ("1", -0.4),
    ]
    assert response.logprobs[1].top == (("1", -0.4), ("0", -1.1))


def test_model_without_logprobs_is_asked_again_without_them_once(caplog):
    def handler(body):
        if body["generationConfig"].get("responseLogprobs"):
            return 400, error_body(
                400, "INVALID_ARGUMENT", f"Logprobs is not enabled for models/{MODEL}"
            )
        return 200, answer_body(json.dumps(ANSWER))

    with Scripted(handler) as server:

        async def main():
            p = _provider(server.base_url)
            try:
                return [await p.generate(REQ) for _ in range(3)]
            finally:
                await p.aclose()

        responses = asyncio.run(main())
    assert all(r.logprobs is None for r in responses)  # C = 1 downstream
    # one refused request, then the model is remembered: 4 requests for 3 answers
    assert [bool(b["generationConfig"].get("responseLogprobs")) for b in server.bodies] == [
        True,
        False,
        False,
        False,
    ]
    assert sum("log-probabilities" in r.message for r in caplog.records) == 1


def test_truncated_and_blocked_answers_are_invalid_output():
    from rewts.llm.providers.base import InvalidOutput

    with Scripted(
        lambda body: (200, answer_body('{"direction": 1, "conf', finish="MAX_TOKENS"))
    ) as s:
        exc = _raises(s.base_url)
    assert isinstance(exc, InvalidOutput) and "truncated" in str(exc)
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}}
    with Scripted(lambda body: (200, blocked)) as s:
        exc = _raises(s.base_url)
    assert isinstance(exc, InvalidOutput) and "SAFETY" in str(exc)


# ------------------------------------------------------------------------- 429 kinds


def test_429_kinds_from_quota_ids():
    rpm = classify_429(
        "", quota_429("GenerateRequestsPerMinutePerProjectPerModel")["error"]["details"], MODEL
    )
    assert isinstance(rpm, RateLimited) and rpm.retry_after == 7.0
    tpm = classify_429(
        "",
        quota_429("GenerateContentInputTokensPerModelPerMinute", "0.5s")["error"]["details"],
        MODEL,
    )
    assert isinstance(tpm, RateLimited) and tpm.retry_after == 0.5 and "tokens" in str(tpm)
    # the daily quota also carries a short RetryInfo: the quotaId wins
    rpd = classify_429(
        "",
        quota_429("GenerateRequestsPerDayPerProjectPerModel-FreeTier")["error"]["details"],
        MODEL,
    )
    assert isinstance(rpd, QuotaExhausted) and "midnight Pacific" in str(rpd)
    spend = classify_429("", quota_429("SpendBasedLimitPerProject10Min")["error"]["details"], MODEL)
    assert isinstance(spend, QuotaExhausted) and "10 minutes" in str(spend)
    bare = classify_429("Resource has been exhausted", [], MODEL)
    assert isinstance(bare, RateLimited) and bare.retry_after is None
    # every quota 429 says "check your plan and billing details": not a spend cap by itself
    plain = classify_429(
        "You exceeded your current quota, please check your plan and billing", [], MODEL
    )
    assert isinstance(plain, RateLimited)


def test_error_classes_through_the_sdk():
    cases = [
        (quota_429("SpendBasedLimitPerProject10Min", None), QuotaExhausted),
        (error_body(402, "FAILED_PRECONDITION", "prepay balance depleted"), QuotaExhausted),
        (error_body(404, "NOT_FOUND", "models/x is not found"), NotFound),
        (error_body(503, "UNAVAILABLE", "The model is overloaded."), ServerError),
        (error_body(403, "PERMISSION_DENIED", f"key {KEY} denied"), AuthFailed),
    ]
    for body, kind in cases:
        with Scripted(lambda _b, body=body: (body["error"]["code"], body)) as s:
            exc = _raises(s.base_url)
        assert isinstance(exc, kind), (body, exc)
        assert KEY not in str(exc)


def test_timeout_and_refused_connection():
    with SimServer(SimConfig(latency_s=0.0, hang_rate=1.0, hang_s=5.0)) as sim:
        t0 = time.monotonic()
        exc = _raises(sim.gemini_base_url, timeout_s=0.3)
        waited = time.monotonic() - t0
        port = sim.port
    assert isinstance(exc, Timeout) and waited < 3.0
    exc = _raises(f"http://127.0.0.1:{port}")  # the server is gone
    assert isinstance(exc, ConnectionFailed)


# ------------------------------------------------------------- against the simulator


def test_simulator_json_answer_logprobs_and_usage():
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        response, _ = _call(sim.gemini_base_url)
    parse_strategy(response.text)
    assert "".join(t.token for t in response.logprobs) == response.text
    assert all(len(t.top) == 5 for t in response.logprobs)
    assert response.tokens_in > 0 and response.tokens_out == len(response.logprobs)


def _cfg(tmp_path, sim, **llm) -> Config:
    return Config.model_validate(
        {
            "tickers": ["AAA", "BBB"],
            "strategy_frequency": 20,
            "parallel_workers": "auto",
            "max_requests_per_second": 1000.0,
            "llm": {
                "provider": "gemini",
                "base_url": sim.gemini_base_url,
                "logprobs": False,
                "cache_path": str(tmp_path / "cache.sqlite"),
                "output_dir": str(tmp_path / "out"),
                "retry": {"initial_s": 0.05, "multiplier": 2.0, "max_s": 0.2, "max_retries": 4},
                **llm,
            },
        }
    )


def test_per_minute_429_waits_the_retry_delay_then_completes(tmp_path, workdir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    window = 2.0  # long enough that the first 10 requests always fall in one window
    with SimServer(SimConfig(latency_s=0.0, rpm_limit=6, window_s=window)) as sim:
        result = generate_strategies(_cfg(tmp_path, sim), fake_dataset(n=300), write=False)
        log = sim.stats()["log"]
    tables = result.strategies.values()
    assert all((df["status"] == "ok").all() for df in tables)  # 10 answers, no fallback
    assert result.summary.http_429 >= 1
    # all 10 tasks go at once: 6 admitted, 4 refused with RetryInfo "wait until the oldest
    # request leaves the window"; the limiter then holds every task back for that long, so
    # nothing at all is sent during the wait (retrying on the engine's own 0.05-0.2 s backoff
    # would have sent a dozen more 429s meanwhile)
    first_ok = next(e["t"] for e in log if e["status"] == 200)
    burst, later = log[:10], log[10:]
    assert sum(e["status"] == 429 for e in burst) == 4
    assert later and all(e["t"] >= first_ok + window - 0.05 for e in later)
    assert sum(e["status"] == 429 for e in later) <= 3


def test_per_day_quota_stops_cleanly_and_a_rerun_resumes(tmp_path, workdir, monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    with SimServer(SimConfig(latency_s=0.0, rpd_limit=4)) as sim:
        cfg = _cfg(tmp_path, sim)
        with pytest.raises(QuotaExhaustedError) as info:
            generate_strategies(cfg, fake_dataset(n=300))
        message = str(info.value)
        assert "midnight Pacific" in message and "rerun" in message
        assert KEY not in message
        with StrategyCache(cfg.llm.cache_path) as cache:
            assert len(cache) == 4  # what was answered is kept
        assert not (tmp_path / "out").exists()
        sim.reset_day()  # midnight Pacific: a new day's quota (of 6, exactly what is missing)
        sim.update(rpd_limit=6)
        sent = sim.stats(log=False)["requests"]
        result = generate_strategies(cfg, fake_dataset(n=300))
        resumed = sim.stats(log=False)["requests"] - sent
    assert resumed == 6  # only the missing ones
    assert result.summary.cache_hits == 4
    assert all(df["status"].isin(["ok", "cached"]).all() for df in result.strategies.values())


def test_wrong_key_exits_fast_naming_the_variable(tmp_path, workdir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "gm-wrong-key-987654")
    with SimServer(SimConfig(latency_s=0.05, api_key="gm-right-key-123456")) as sim:
        t0 = time.monotonic()
        with pytest.raises(AuthenticationError) as info:
            generate_strategies(_cfg(tmp_path, sim), fake_dataset(n=300))
        elapsed = time.monotonic() - t0
        requests = sim.stats(log=False)["requests"]
    assert "GEMINI_API_KEY" in str(info.value) and "gm-wrong-key" not in str(info.value)
    assert elapsed < 5 and requests <= 10


def test_missing_key_fails_before_any_call_naming_both_variables(workdir):
    cfg = Config.model_validate({"llm": {"provider": "gemini"}})
    with pytest.raises(AuthenticationError) as info:
        make_provider(cfg)
    assert "GEMINI_API_KEY or GOOGLE_API_KEY" in str(info.value)


def test_key_sources_and_defaults(workdir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "gm-a")
    monkeypatch.setenv("GOOGLE_API_KEY", "gm-b")
    cfg = Config.model_validate({"llm": {"provider": "gemini"}})
    assert resolve_key(cfg) == ("gm-b", "GOOGLE_API_KEY")  # the SDK's precedence
    monkeypatch.delenv("GOOGLE_API_KEY")
    assert resolve_key(cfg) == ("gm-a", "GEMINI_API_KEY")
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("MY_GEMINI", KEY)
    cfg = Config.model_validate({"llm": {"provider": "gemini", "api_key_env": "MY_GEMINI"}})
    p = make_gemini_provider(cfg)
    assert p.model == "gemini-2.5-flash" and p.env_var == "MY_GEMINI"
    assert KEY not in repr(p)
    asyncio.run(p.aclose())
    cfg = Config.model_validate({"llm": {"provider": "gemini", "gemini_api_key": KEY}})
    p = make_gemini_provider(cfg)
    assert p.env_var == "llm.gemini_api_key"
    asyncio.run(p.aclose())


# ------------------------------------------------------------------ settings and presets


def test_thinking_settings_per_model_family():
    assert thinking_settings("gemini-2.5-flash", 0) == {"thinking_budget": 0}
    assert thinking_settings("models/gemini-2.5-flash-lite", 0) == {"thinking_budget": 0}
    assert thinking_settings("gemini-2.5-pro", 0) == {"thinking_budget": 128}  # cannot turn off
    assert thinking_settings("gemini-2.5-pro", -1) == {"thinking_budget": -1}
    assert thinking_settings("gemini-3-flash-preview", 0) == {"thinking_level": "low"}
    assert thinking_settings("gemini-2.0-flash", 0) is None  # no thinking: nothing sent
    assert thinking_settings("gemini-2.5-flash", None) is None


def test_tier_preset_fills_only_what_is_not_set():
    from rewts.errors import ConfigError  # noqa: F401 - the loader's wrapper of these errors

    free = Config.model_validate({"llm": {"rate_limits": {"preset": "gemini-free"}}})
    assert (free.llm.rate_limits.rpm, free.llm.rate_limits.rpd) == (5, 20)
    paid = Config.model_validate(
        {
            "llm": {
                "model": "gemini-2.5-flash-lite",
                "rate_limits": {"preset": "gemini-tier1", "rpm": 50},
            }
        }
    )
    assert paid.llm.rate_limits.rpm == 50 and paid.llm.rate_limits.tpm == 4_000_000
    assert paid.llm.rate_limits.rpd is None  # unlimited on that tier
    with pytest.raises(ValueError, match="no numbers for model"):
        Config.model_validate(
            {"llm": {"model": "gemini-1.0-pro", "rate_limits": {"preset": "gemini-tier1"}}}
        )
    with pytest.raises(ValueError, match="describes Gemini"):
        Config.model_validate(
            {"llm": {"provider": "openai", "rate_limits": {"preset": "gemini-free"}}}
        )


@pytest.mark.parametrize(
    "fault, kind",
    [
        ({"garbage_rate": 1.0}, "InvalidOutput"),  # a 200 whose body is cut off
        ({"error_rate": 1.0}, "ServerError"),  # 500/502 (HTML)/503
        ({"drop_rate": 1.0}, "ConnectionFailed"),
    ],
)
def test_simulator_faults_map_to_retryable_errors(fault, kind):
    with SimServer(SimConfig(latency_s=0.0, **fault)) as sim:
        exc = _raises(sim.gemini_base_url)
    assert type(exc).__name__ == kind and exc.retryable


def test_key_never_in_logs_cache_or_output_even_at_debug(tmp_path, workdir, monkeypatch, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with SimServer(SimConfig(latency_s=0.0, rpd_limit=3)) as sim:
        cfg = _cfg(tmp_path / "run", sim, logprobs=True)
        with pytest.raises(QuotaExhaustedError) as info:
            generate_strategies(cfg, fake_dataset(n=300))
        sim.update(rpd_limit=None)
        generate_strategies(cfg, fake_dataset(n=300))
    written = b"".join(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert written and KEY.encode() not in written
    assert caplog.records  # the SDK and rewts did log at debug level
    assert KEY not in caplog.text and KEY not in str(info.value)


def test_cli_daily_quota_exits_5_saying_when_to_rerun_and_the_rerun_finishes(
    workdir, shared_data, monkeypatch
):
    from typer.testing import CliRunner

    from rewts.cli import app

    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with SimServer(SimConfig(latency_s=0.0, rpd_limit=5)) as sim:
        args = [
            "strategies",
            "--data-dir",
            str(shared_data),
            "--tickers",
            "AAPL",
            "--provider",
            "gemini",
            "--base-url",
            sim.gemini_base_url,
            "--set",
            "llm.logprobs=false",
            "--rps",
            "1000",
            "--no-progress",
        ]
        stopped = CliRunner().invoke(app, args)
        sim.reset_day()
        sim.update(rpd_limit=None)
        resumed = CliRunner().invoke(app, args)
    assert stopped.exit_code == 5, stopped.output
    assert "midnight Pacific" in stopped.output and "Traceback" not in stopped.output
    assert KEY not in stopped.output
    assert resumed.exit_code == 0, resumed.output
    assert (workdir / "data" / "strategies" / "AAPL.parquet").is_file()
