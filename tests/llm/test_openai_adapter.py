"""The OpenAI-compatible adapter through the real SDK over loopback: request shape and the
translation of every error class into the provider taxonomy."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from rewts.llm.providers.base import (
    AuthFailed,
    BadRequest,
    InvalidOutput,
    NotFound,
    QuotaExhausted,
    RateLimited,
    Request,
    ServerError,
)
from rewts.llm.providers.openai_compat import OpenAICompatProvider
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA, answer_entropy, parse_strategy

from .mini_server import ANSWER, MiniServer, completion, ok_handler

KEY = "sk-SENTINEL-do-not-leak-1234567890"
REQ = Request(
    messages=({"role": "system", "content": "s"}, {"role": "user", "content": "u"}),
    model="m",
    temperature=0.0,
    seed=49,
    max_tokens=300,
    json_schema=("strategy", STRATEGY_JSON_SCHEMA),
    logprobs=True,
)


def _call(server, structured="json_schema"):
    async def main():
        p = OpenAICompatProvider(
            "local",
            model="m",
            base_url=server.base_url,
            api_key=KEY,
            env_var="MY_KEY",
            timeout_s=5.0,
            structured=structured,
        )
        try:
            return await p.generate(REQ)
        finally:
            await p.aclose()

    return asyncio.run(main())


def test_request_carries_schema_seed_logprobs_and_no_sdk_retries():
    with MiniServer(ok_handler) as server:
        response = _call(server)
    assert parse_strategy(response.text).direction == ANSWER["direction"]
    assert (response.tokens_in, response.tokens_out) == (120, 40)
    sent = server.requests[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["seed"] == 49 and sent["temperature"] == 0.0 and sent["max_tokens"] == 300
    assert sent["logprobs"] is True and sent["top_logprobs"] == 5
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert len(server.requests) == 1


def test_json_object_mode_for_providers_without_json_schema():
    with MiniServer(ok_handler) as server:
        _call(server, structured="json_object")
    assert server.requests[0]["response_format"] == {"type": "json_object"}


def test_logprobs_come_back_and_give_entropy():
    lp = {
        "content": [
            {"token": '{"direction": ', "logprob": 0.0, "top_logprobs": []},
            {
                "token": "0",
                "logprob": math.log(0.6),
                "top_logprobs": [
                    {"token": "0", "logprob": math.log(0.6)},
                    {"token": "1", "logprob": math.log(0.4)},
                ],
            },
        ]
    }

    def handler(body, headers):
        return 200, completion(json.dumps(ANSWER), logprobs=lp), {}

    with MiniServer(handler) as server:
        response = _call(server)
    h = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4)) / math.log(2)
    assert answer_entropy(response.logprobs) == pytest.approx(h)


@pytest.mark.parametrize(
    "status, body, headers, error, check",
    [
        (
            429,
            {"error": {"message": "slow down", "type": "rate_limit"}},
            {"retry-after-ms": "1500"},
            RateLimited,
            lambda e: e.retry_after == pytest.approx(1.5),
        ),
        (
            429,
            {"error": {"message": "slow down"}},
            {"retry-after": "7"},
            RateLimited,
            lambda e: e.retry_after == pytest.approx(7.0),
        ),
        (429, {"error": {"message": "slow"}}, {}, RateLimited, lambda e: e.retry_after is None),
        (
            429,
            {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}},
            {},
            QuotaExhausted,
            lambda e: True,
        ),
        (
            401,
            {"error": {"message": f"Incorrect API key provided: {KEY[:8]}...{KEY[-4:]}"}},
            {},
            AuthFailed,
            lambda e: e.env_var == "MY_KEY" and e.fatal,
        ),
        (403, {"error": {"message": "forbidden"}}, {}, AuthFailed, lambda e: e.fatal),
        (404, {"error": {"message": "no such model"}}, {}, NotFound, lambda e: e.model == "m"),
        (400, {"error": {"message": "bad param"}}, {}, BadRequest, lambda e: e.fatal),
        (402, {"error": {"message": "Insufficient Balance"}}, {}, QuotaExhausted, lambda e: True),
        (503, {"error": {"message": "overloaded"}}, {}, ServerError, lambda e: e.retryable),
        (
            200,
            completion('{"direction": 1, "confid', finish="length"),
            {},
            InvalidOutput,
            lambda e: "truncated" in str(e),
        ),
        (200, "{not json", {}, InvalidOutput, lambda e: e.retryable),
    ],
)
def test_errors_are_translated_and_never_contain_the_key(status, body, headers, error, check):
    def handler(b, h):
        return status, body, headers

    with MiniServer(handler) as server, pytest.raises(error) as info:
        _call(server)
    assert check(info.value)
    assert KEY not in str(info.value) and KEY[:8] not in str(info.value)
    assert len(server.requests) == 1  # the SDK's own retries are off


def test_connection_refused_is_retryable():
    from rewts.llm.providers.base import ConnectionFailed

    class Dead:
        base_url = "http://127.0.0.1:9/v1"

    with pytest.raises(ConnectionFailed) as info:
        _call(Dead())
    assert info.value.retryable
