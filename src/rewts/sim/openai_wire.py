"""The OpenAI chat-completions wire format: request parsing, answers, errors, rate-limit headers.

Shapes follow what the official ``openai`` SDK (3.x) sends and parses: ``POST
/v1/chat/completions`` with ``Authorization: Bearer``; errors as ``{"error": {"message",
"type", "param", "code"}}`` (the SDK lifts ``code``/``type`` onto its exception); 429s with
``retry-after`` / ``retry-after-ms`` and the ``x-ratelimit-*`` headers.
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import lru_cache
from typing import Any

from aiohttp import web

from rewts.sim.answers import Answer, token_bytes_json, token_json
from rewts.sim.limits import Verdict
from rewts.sim.wire import (
    RAW_MARKER,
    ParsedRequest,
    WireError,
    bad_gateway_html,
    ceil_seconds,
    duration,
    json_response,
    mask_key,
)

FORMAT = "openai"


def _error(
    status: int,
    message: str,
    type_: str,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_response(body, status, headers)


def api_key(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def parse(body: Any) -> ParsedRequest:
    """The request's parts, or a 400 in OpenAI's shape naming the bad parameter."""
    if not isinstance(body, dict):
        raise WireError(
            _error(
                400,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                None,
            )
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError(
            _error(
                400, "you must provide a model parameter", "invalid_request_error", None, "model"
            )
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError(
            _error(
                400,
                "'messages' must be a non-empty array",
                "invalid_request_error",
                None,
                "messages",
            )
        )
    if body.get("stream"):
        raise WireError(
            _error(
                400,
                "the rewts simulator does not stream; send stream=false",
                "invalid_request_error",
                None,
                "stream",
            )
        )
    logprobs = bool(body.get("logprobs"))
    top = body.get("top_logprobs")
    if top is not None and not logprobs:
        raise WireError(
            _error(
                400,
                "logprobs must be true when top_logprobs is set",
                "invalid_request_error",
                None,
                "top_logprobs",
            )
        )
    if top is not None and (not isinstance(top, int) or not 0 <= top <= 20):
        raise WireError(
            _error(
                400,
                "top_logprobs must be an integer between 0 and 20",
                "invalid_request_error",
                "integer_below_min_value",
                "top_logprobs",
            )
        )
    schema = None
    json_mode = False
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise WireError(
                    _error(
                        400,
                        "Missing required parameter: 'response_format.json_schema.schema'.",
                        "invalid_request_error",
                        "missing_required_parameter",
                        "response_format.json_schema",
                    )
                )
        elif fmt.get("type") == "json_object":
            json_mode = True
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    prompt = "\n".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
    return ParsedRequest(
        model=model,
        content=messages,
        prompt=prompt,
        schema=schema,
        json_mode=json_mode,
        logprobs=logprobs,
        top_logprobs=int(top or 0),
        max_tokens=int(max_tokens) if isinstance(max_tokens, int) else None,
    )


def auth_error(key: str | None) -> web.Response:
    if not key:
        return _error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
        )
    return _error(
        401,
        f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


def model_not_found(model: str) -> web.Response:
    return _error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )


def rate_limited(
    v: Verdict, model: str, retry_after: bool, headers: dict[str, str]
) -> web.Response:
    """A 429 like OpenAI's: per-minute limits say when to retry, the daily quota does not."""
    headers = dict(headers)
    if v.kind == "rpd":
        msg = (
            f"You exceeded your current quota, please check your plan and billing details "
            f"(requests per day (RPD): Limit {v.limit}, Used {v.used}, Requested {v.requested})."
        )
        return _error(429, msg, "insufficient_quota", "insufficient_quota", headers=headers)
    unit = "requests per min (RPM)" if v.kind == "rpm" else "tokens per min (TPM)"
    msg = (
        f"Rate limit reached for {model} in organization org-rewts-sim on {unit}: Limit "
        f"{v.limit}, Used {v.used}, Requested {v.requested}."
    )
    if retry_after and v.retry_s is not None:
        msg += f" Please try again in {v.retry_s:.3g}s."
        headers["retry-after"] = str(ceil_seconds(v.retry_s))
        headers["retry-after-ms"] = str(max(1, round(v.retry_s * 1000)))
    msg += " Visit https://platform.openai.com/account/rate-limits to learn more."
    return _error(
        429,
        msg,
        "requests" if v.kind == "rpm" else "tokens",
        "rate_limit_exceeded",
        headers=headers,
    )


def server_error(status: int) -> web.Response:
    if status == 502:
        return bad_gateway_html()
    if status == 503:
        return _error(
            503, "The engine is currently overloaded, please try again later.", "server_error", None
        )
    return _error(
        status,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    )


def ratelimit_headers(
    rpm: int | None,
    tpm: int | None,
    used_req: int,
    used_tok: int,
    reset_req: float,
    reset_tok: float,
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if rpm is not None:
        headers["x-ratelimit-limit-requests"] = str(rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, rpm - used_req))
        headers["x-ratelimit-reset-requests"] = duration(reset_req)
    if tpm is not None:
        headers["x-ratelimit-limit-tokens"] = str(tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, tpm - used_tok))
        headers["x-ratelimit-reset-tokens"] = duration(reset_tok)
    return headers


@lru_cache(maxsize=8192)
def _entry_parts(token: str) -> tuple[str, str]:
    """The constant JSON around one logprob entry's value, per token (cached)."""
    return f'{{"token":{token_json(token)},"logprob":', f',"bytes":{token_bytes_json(token)}'


def logprobs_json(logprobs: list[tuple[str, float, list[tuple[str, float]]]]) -> str:
    """``choices[0].logprobs`` encoded by hand: json.dumps of ~1000 small dicts costs ms."""
    parts = []
    for tok, val, top in logprobs:
        alts = []
        for t, v in top:
            pre, suf = _entry_parts(t)
            alts.append(f"{pre}{v!r}{suf}}}")
        pre, suf = _entry_parts(tok)
        parts.append(f'{pre}{val!r}{suf},"top_logprobs":[{",".join(alts)}]}}')
    return '{"content":[' + ",".join(parts) + '],"refusal":null}'


def completion_json(
    req: ParsedRequest,
    answer: Answer,
    logprobs: list[tuple[str, float, list[tuple[str, float]]]] | None,
    prompt_tokens: int,
    rid: str,
) -> str:
    """A ``chat.completion`` object as JSON text (also a batch output line's body)."""
    lp = None if logprobs is None else RAW_MARKER
    completion_tokens = len(answer.tokens)
    body = {
        "id": f"chatcmpl-sim{rid}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": lp,
                "finish_reason": answer.finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_rewts_sim",
    }
    text = json.dumps(body, ensure_ascii=False)
    if logprobs is not None:
        text = text.replace(f'"{RAW_MARKER}"', logprobs_json(logprobs), 1)
    return text


def request_id(req: ParsedRequest, answer: Answer) -> str:
    return hashlib.sha256(f"{req.model}{answer.text}{time.monotonic_ns()}".encode()).hexdigest()[
        :24
    ]


def success(
    req: ParsedRequest,
    answer: Answer,
    logprobs: list[tuple[str, float, list[tuple[str, float]]]] | None,
    prompt_tokens: int,
    headers: dict[str, str],
) -> web.Response:
    rid = request_id(req, answer)
    return web.Response(
        text=completion_json(req, answer, logprobs, prompt_tokens, rid),
        content_type="application/json",
        headers={**headers, "x-request-id": f"req_{rid}"},
    )
