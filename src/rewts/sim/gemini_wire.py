"""Gemini's ``generateContent`` and Batch Mode wire format, as google-genai (3.x) speaks it.

Checked against the SDK itself (requests captured from ``client.aio.models.generate_content``
and ``client.aio.batches.create/get``): ``POST /{version}/models/{model}:generateContent`` with
``x-goog-api-key``; ``generationConfig.responseSchema`` (OpenAPI subset, upper-case types) or
``responseJsonSchema``; ``responseLogprobs`` + ``logprobs`` (top-k). Errors are
``{"error": {"code", "message", "status", "details": [...]}}``; a 429 carries
``google.rpc.QuotaFailure`` (whose ``quotaId`` tells per-minute requests, per-minute input
tokens and per-day requests apart) and ``google.rpc.RetryInfo.retryDelay`` — never a
Retry-After header (a per-day 429 carries a short RetryInfo as well). Batch jobs are
long-running operations named ``batches/{id}`` whose ``metadata`` is the
``GenerateContentBatch`` (state ``BATCH_STATE_*``, which the SDK maps to ``JOB_STATE_*``) and
whose output is ``metadata.output.inlinedResponses.inlinedResponses``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from rewts.sim.answers import Answer, token_json
from rewts.sim.limits import Verdict
from rewts.sim.schema import gemini_to_json_schema
from rewts.sim.wire import (
    RAW_MARKER,
    ParsedRequest,
    WireError,
    bad_gateway_html,
    json_response,
    proto_duration,
)

FORMAT = "gemini"
_RATE_DOC = "https://ai.google.dev/gemini-api/docs/rate-limits"
#: (quotaMetric, quotaId) per limit kind, as the free tier reports them
QUOTAS: dict[str, tuple[str, str]] = {
    "rpm": (
        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    ),
    "tpm": (
        "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
    ),
    "rpd": (
        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
    ),
}
_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_BATCH_OUTPUT_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
)


def error_body(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


def _error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> web.Response:
    return json_response(error_body(code, status, message, details), code)


def invalid(message: str) -> WireError:
    return WireError(_error(400, "INVALID_ARGUMENT", message))


def api_key(request: web.Request) -> str | None:
    return request.headers.get("x-goog-api-key") or request.query.get("key")


def _texts(content: Any) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [
        p["text"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]


def parse(body: Any, model: str) -> ParsedRequest:
    """A ``GenerateContentRequest`` body, or a 400 INVALID_ARGUMENT saying what is wrong."""
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified\n")
    system = body.get("systemInstruction") or body.get("system_instruction")
    gen = body.get("generationConfig") or {}
    if not isinstance(gen, dict):
        raise invalid("Invalid value at 'generation_config'")
    raw_schema, json_schema = gen.get("responseSchema"), gen.get("responseJsonSchema")
    if raw_schema is not None and json_schema is not None:
        raise invalid("responseSchema and responseJsonSchema cannot both be set.")
    schema = gemini_to_json_schema(raw_schema) if raw_schema is not None else json_schema
    mime = gen.get("responseMimeType", "text/plain")
    if schema is not None and mime not in ("application/json", "text/x.enum"):
        raise invalid(
            "* GenerateContentRequest.generation_config.response_mime_type: When using "
            "response_schema, response_mime_type must be application/json.\n"
        )
    logprobs = bool(gen.get("responseLogprobs"))
    top = gen.get("logprobs")
    if top is not None and not (isinstance(top, int) and 0 <= top <= 20):
        raise invalid("logprobs must be an integer in [0, 20].")
    max_tokens = gen.get("maxOutputTokens")
    texts = _texts(system) + [t for c in contents for t in _texts(c)]
    return ParsedRequest(
        model=model,
        content={"system": system, "contents": contents},
        prompt="\n".join(texts),
        schema=schema if isinstance(schema, dict) else None,
        json_mode=mime == "application/json" and schema is None,
        logprobs=logprobs,
        top_logprobs=int(top or 0),
        max_tokens=int(max_tokens) if isinstance(max_tokens, int) else None,
    )


def auth_error(key: str | None) -> web.Response:
    """No key: 403 PERMISSION_DENIED; a wrong key: 400 API_KEY_INVALID (what the real API does)."""
    if not key:
        return _error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
        )
    msg = "API key not valid. Please pass a valid API key."
    return _error(
        400,
        "INVALID_ARGUMENT",
        msg,
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": msg,
            },
        ],
    )


def model_not_found(model: str, version: str, method: str = "generateContent") -> web.Response:
    return _error(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their "
        "supported methods.",
    )


def not_found(what: str) -> web.Response:
    return _error(404, "NOT_FOUND", f"Requested entity was not found. ({what})")


def rate_limited(v: Verdict, model: str, retry_after: bool, window_s: float = 60.0) -> web.Response:
    """RESOURCE_EXHAUSTED with QuotaFailure (which quota) and RetryInfo (how long to wait).

    Like the real API, a per-day 429 carries a short RetryInfo too (observed: "47s" on a
    GenerateRequestsPerDay violation), which is misleading: only the quotaId says the day's
    quota is gone, so a client must read it rather than trust the delay.
    """
    metric, quota_id = QUOTAS[v.kind]
    retry_s = v.retry_s if v.kind != "rpd" else 0.75 * min(window_s, 60.0)
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        f"information on this error, head to: {_RATE_DOC}. To monitor your current usage, head "
        f"to: https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: {metric}, "
        f"limit: {v.limit}, model: {model}"
    )
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": metric,
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": str(v.limit),
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": _RATE_DOC}],
        },
    ]
    if retry_after and retry_s is not None:
        message += f"\nPlease retry in {retry_s:.2f}s."
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": proto_duration(retry_s),
            }
        )
    return _error(429, "RESOURCE_EXHAUSTED", message, details)


def server_error(status: int) -> web.Response:
    if status == 502:
        return bad_gateway_html()
    if status == 503:
        return _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    return _error(
        status,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    )


def logprobs_json(logprobs: list[tuple[str, float, list[tuple[str, float]]]], top_k: int) -> str:
    """``candidates[0].logprobsResult`` encoded by hand (json.dumps of it costs milliseconds)."""
    total = sum(lp for _, lp, _ in logprobs)
    chosen = ",".join(
        f'{{"token":{token_json(t)},"logProbability":{lp!r}}}' for t, lp, _ in logprobs
    )
    out = f'{{"chosenCandidates":[{chosen}],"logProbabilitySum":{total!r}'
    if top_k > 0:
        tops = ",".join(
            '{"candidates":['
            + ",".join(f'{{"token":{token_json(t)},"logProbability":{v!r}}}' for t, v in top)
            + "]}"
            for _, _, top in logprobs
        )
        out += f',"topCandidates":[{tops}]'
    return out + "}"


def response_body(
    req: ParsedRequest,
    answer: Answer,
    logprobs: list[tuple[str, float, list[tuple[str, float]]]] | None,
    prompt_tokens: int,
    *,
    raw_logprobs: bool = False,
) -> dict[str, Any]:
    """A ``GenerateContentResponse`` (also what each inlined batch response holds).

    With ``raw_logprobs`` the ``logprobsResult`` is the :data:`RAW_MARKER`, to be spliced in
    as :func:`logprobs_json` by :func:`json_response`.
    """
    candidate: dict[str, Any] = {
        "content": {"parts": [{"text": answer.text}], "role": "model"},
        "finishReason": "MAX_TOKENS" if answer.finish == "length" else "STOP",
        "index": 0,
    }
    if logprobs is not None:
        candidate["avgLogprobs"] = sum(lp for _, lp, _ in logprobs) / max(1, len(logprobs))
        candidate["logprobsResult"] = (
            RAW_MARKER if raw_logprobs else json.loads(logprobs_json(logprobs, req.top_logprobs))
        )
    out_tokens = len(answer.tokens)
    rid = hashlib.sha256(f"{req.model}{answer.text}".encode()).hexdigest()[:22]
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt_tokens + out_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        },
        "modelVersion": req.model,
        "responseId": rid,
    }


def success(
    req: ParsedRequest,
    answer: Answer,
    logprobs: list[tuple[str, float, list[tuple[str, float]]]] | None,
    prompt_tokens: int,
) -> web.Response:
    body = response_body(req, answer, logprobs, prompt_tokens, raw_logprobs=True)
    raw = None if logprobs is None else logprobs_json(logprobs, req.top_logprobs)
    return json_response(body, raw=raw)


def batch_requests(body: Any) -> tuple[str, list[tuple[Any, Any]]]:
    """(display name, [(request body, metadata)]) of a ``batchGenerateContent`` call."""
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, dict):
        raise invalid("* BatchGenerateContentRequest.batch: batch is not specified\n")
    config = batch.get("inputConfig") or {}
    if "fileName" in config or "file_name" in config:
        raise invalid(
            "the rewts simulator accepts inlined requests only (inputConfig.requests), "
            "not an uploaded file"
        )
    items = ((config.get("requests") or {}).get("requests")) if isinstance(config, dict) else None
    if not isinstance(items, list) or not items:
        raise invalid("* BatchGenerateContentRequest.batch.input_config: requests is empty\n")
    return str(batch.get("displayName", "")), [
        (
            item.get("request") if isinstance(item, dict) else None,
            item.get("metadata") if isinstance(item, dict) else None,
        )
        for item in items
    ]


def batch_operation(
    *,
    name: str,
    model: str,
    display_name: str,
    state: str,
    create_time: str,
    update_time: str,
    end_time: str | None,
    n_requests: int,
    results: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The long-running operation a batch create/get answers with."""
    done = state in (
        "BATCH_STATE_SUCCEEDED",
        "BATCH_STATE_FAILED",
        "BATCH_STATE_CANCELLED",
        "BATCH_STATE_EXPIRED",
    )
    ok = sum(1 for r in results or [] if "response" in r)
    stats = {"requestCount": str(n_requests)}
    if results is None:
        stats["pendingRequestCount"] = str(n_requests)
    else:
        stats["successfulRequestCount"] = str(ok)
        stats["failedRequestCount"] = str(len(results) - ok)
    meta: dict[str, Any] = {
        "@type": _BATCH_TYPE,
        "model": f"models/{model}",
        "displayName": display_name,
        "createTime": create_time,
        "updateTime": update_time,
        "batchStats": stats,
        "state": state,
        "name": name,
    }
    op: dict[str, Any] = {"name": name, "metadata": meta}
    if end_time:
        meta["endTime"] = end_time
    if results is not None:
        output = {"inlinedResponses": {"inlinedResponses": results}}
        meta["output"] = output
        op["response"] = {"@type": _BATCH_OUTPUT_TYPE, **output}
    if done:
        op["done"] = True
    return op
