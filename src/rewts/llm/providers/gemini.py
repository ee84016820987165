"""Google's Gemini API through the official ``google-genai`` SDK (its async client).

Choices, each for a reason:

* the SDK's own retries are off (``HttpRetryOptions(attempts=1)``: with ``None`` its aiohttp
  transport silently retries a dropped connection once): the engine owns every retry, so each
  one passes the rate limiter;
* the shared part of the prompt (the system message, identical for every task) goes first, as
  ``system_instruction``: Gemini's implicit prompt caching matches on a common prefix;
* the thinking budget is 0 for these short JSON answers where the model allows it (latency and
  cost; thinking tokens are billed as output and count against ``max_output_tokens``);
* the answer's *text* is returned and validated by the caller, never the SDK's ``.parsed``
  (which hides validation errors);
* Gemini's 429 carries no Retry-After header: the wait is ``google.rpc.RetryInfo.retryDelay``
  in the body, and only ``QuotaFailure.violations[].quotaId`` tells a per-minute limit (wait)
  from a per-day quota (stop; it resets at midnight Pacific time). A per-day 429 carries a
  short RetryInfo too, so the quotaId wins over the delay;
* a spend-based 429 (paid tiers: a cap on spend over a rolling 10-minute window, or a project
  spend cap) and a 402 (prepaid credit used up) are budgets, not rates: retrying within
  seconds cannot succeed, so they stop the run cleanly like a daily quota (everything answered
  is cached; rerun later, or raise the cap);
* log-probabilities (``responseLogprobs`` + ``logprobs`` top-k) are asked for when requested;
  a model that answers "Logprobs is not enabled/supported" (most 2.5 models on the Gemini
  Developer API, at the time of writing) is remembered and asked again without them, once,
  with a warning: its strategies get ``C = 1`` (no entropy), as the paper's fallback says.

The key is sent as a header by the SDK and never appears in a message: error texts from the
server are redacted before they are repeated.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from rewts.config import Config
from rewts.errors import AuthenticationError
from rewts.llm.providers.base import (
    AuthFailed,
    BadRequest,
    BatchBackend,
    ConnectionFailed,
    InvalidOutput,
    NotFound,
    ProviderError,
    QuotaExhausted,
    Request,
    Response,
    ServerError,
    Timeout,
    TokenLogprob,
)
from rewts.llm.providers.gemini_errors import (
    QUOTA_TZ,
    classify_429,
    error_details,
    is_key_invalid,
)
from rewts.llm.providers.remote import RemoteProvider

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
#: the variables the key may be in (the SDK's own two), as named in messages
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
#: the order they are read in: GOOGLE_API_KEY wins when both are set, as in the SDK (which
#: logs "Both ... are set. Using GOOGLE_API_KEY." either way, so any other order would lie)
_KEY_ORDER = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
#: alternatives returned per position when log-probabilities are on (the API allows 1-20)
TOP_LOGPROBS = 5

_LOGPROBS_UNSUPPORTED = re.compile(r"logprobs? (is|are) not (enabled|supported)", re.IGNORECASE)


# ----------------------------------------------------------------------- key and thinking


def resolve_key(cfg: Config) -> tuple[str, str]:
    """(key, where it came from) from the environment or the config; a clear error if none.

    ``llm.api_key_env`` names one variable to use instead of GEMINI_API_KEY/GOOGLE_API_KEY.
    """
    variables = (cfg.llm.api_key_env,) if cfg.llm.api_key_env else KEY_VARS
    for var in (cfg.llm.api_key_env,) if cfg.llm.api_key_env else _KEY_ORDER:
        value = os.environ.get(var)
        if value:
            return value, var
    secret = cfg.llm.gemini_api_key
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value(), "llm.gemini_api_key"
    raise AuthenticationError(
        f"no API key for provider gemini: set {' or '.join(variables)} "
        "(or llm.gemini_api_key in the config), choose another variable with "
        "llm.api_key_env, or use --provider heuristic (offline, not an LLM)"
    )


def thinking_settings(model: str, budget: int | None) -> dict[str, Any] | None:
    """The ``thinking_config`` for ``model`` given the configured budget, or None to send none.

    Gemini 2.5 Flash/Flash-Lite accept 0 (off); 2.5 Pro cannot turn thinking off (its minimum is
    128, used instead of 0); Gemini 3 models take a level (0 -> ``low``); older models have no
    thinking and reject the setting. ``budget`` None leaves the model's default; -1 is dynamic.
    """
    if budget is None:
        return None
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith("gemini-2.5-pro"):
        return {"thinking_budget": budget if budget < 0 else max(128, budget)}
    if name.startswith("gemini-2.5"):
        return {"thinking_budget": budget}
    if name.startswith("gemini-3"):
        return {"thinking_level": "low" if 0 <= budget <= 1024 else "high"}
    return None


class GeminiProvider(RemoteProvider):
    """``generateContent`` with a JSON schema, thinking off, optional log-probabilities."""

    default_url = DEFAULT_BASE_URL
    #: the daily quotas reset at midnight Pacific: ``rpd`` counts this day
    quota_tz = QUOTA_TZ

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        api_key: str,
        key_source: str = "GEMINI_API_KEY",
        base_url: str | None = None,
        timeout_s: float = 60.0,
        thinking_budget: int | None = 0,
        top_logprobs: int = TOP_LOGPROBS,
        structured: str = "json_schema",
    ) -> None:
        from google import genai
        from google.genai import types

        super().__init__(
            name="gemini",
            model=model,
            base_url=base_url,
            api_key=api_key,
            structured="json_schema" if structured == "auto" else structured,
            top_logprobs=top_logprobs,
        )
        self.key_source = key_source
        self.thinking_budget = thinking_budget
        #: models that refused log-probabilities in this run (asked again without them)
        self.no_logprobs: set[str] = set()
        self._types = types
        self.client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url,
                timeout=int(timeout_s * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    @property
    def env_var(self) -> str:
        """What to fix when the key is rejected: the variable it came from (or the config key)."""
        return self.key_source

    # -------------------------------------------------------------- request building

    def contents(self, request: Request) -> tuple[str | None, list[dict[str, Any]]]:
        """(system instruction, contents): system messages first (the shared prefix)."""
        system = [m["content"] for m in request.messages if m.get("role") == "system"]
        contents = [
            {
                "role": "model" if m.get("role") == "assistant" else "user",
                "parts": [{"text": m.get("content", "")}],
            }
            for m in request.messages
            if m.get("role") != "system"
        ]
        return ("\n\n".join(system) if system else None), contents

    def config(self, request: Request, *, logprobs: bool | None = None) -> Any:
        """The ``GenerateContentConfig`` for a request (also what a batch item carries)."""
        types = self._types
        system, _ = self.contents(request)
        want_logprobs = request.logprobs if logprobs is None else logprobs
        kwargs: dict[str, Any] = {
            "temperature": request.temperature,
            "max_output_tokens": request.max_tokens,
        }
        if system is not None:
            kwargs["system_instruction"] = system
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.json_schema is not None and self.structured != "off":
            kwargs["response_mime_type"] = "application/json"
            if self.structured == "json_schema":
                kwargs["response_json_schema"] = dict(request.json_schema[1])
        thinking = thinking_settings(request.model, self.thinking_budget)
        if thinking is not None:
            kwargs["thinking_config"] = types.ThinkingConfig(**thinking)
        if want_logprobs and request.model not in self.no_logprobs:
            kwargs["response_logprobs"] = True
            kwargs["logprobs"] = self.top_logprobs
        return types.GenerateContentConfig(**kwargs)

    # ------------------------------------------------------------------------- call

    async def generate(self, request: Request) -> Response:
        _, contents = self.contents(request)
        try:
            response = await self._send(request, contents, self.config(request))
        except BadRequest as exc:
            if not (request.logprobs and _LOGPROBS_UNSUPPORTED.search(str(exc))):
                raise
            if request.model not in self.no_logprobs:
                self.no_logprobs.add(request.model)
                log.warning(
                    "gemini: %s does not return log-probabilities; its strategies get no "
                    "entropy (C = 1). Set llm.logprobs: false to stop asking.",
                    request.model,
                )
            response = await self._send(request, contents, self.config(request, logprobs=False))
        return parse_response(response)

    async def _send(self, request: Request, contents: list[dict[str, Any]], config: Any) -> Any:
        try:
            return await self.client.aio.models.generate_content(
                model=request.model, contents=contents, config=config
            )
        except Exception as exc:
            raise self.translate(exc, request.model) from None

    def translate(self, exc: BaseException, model: str | None = None) -> ProviderError:
        """Any exception of the SDK or its transport as a taxonomy error (key redacted)."""
        from google.genai import errors

        model = model or self.model
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, errors.APIError):
            code = int(exc.code or 0)
            message = self._redact(str(exc.message or exc.status or ""))
            details = error_details(exc)
            if code == 429:
                return classify_429(message, details, model)
            if code in (401, 403) or (code == 400 and is_key_invalid(details, message)):
                return AuthFailed("key rejected", env_var=self.env_var, status=code)
            if code == 402:
                return QuotaExhausted(
                    "gemini: prepaid credit used up (HTTP 402): add credit in AI Studio, then "
                    "rerun",
                    status=402,
                )
            if code == 404:
                return NotFound("model not found", model=model, status=404)
            if code >= 500 or code in (408, 409, 499):
                return ServerError(f"HTTP {code} {exc.status or ''}".strip(), status=code)
            return BadRequest(message[:300] or f"HTTP {code}", status=code)
        if isinstance(exc, TimeoutError):
            return Timeout("the request timed out (llm.timeout_s)")
        if _is_connection_error(exc):
            return ConnectionFailed(f"connection failed: {type(exc).__name__}")
        if isinstance(exc, ValueError):  # a malformed body (JSON or pydantic) the SDK rejected
            return InvalidOutput(f"malformed response ({type(exc).__name__})")
        return ServerError(f"{type(exc).__name__}")

    def batch(self) -> BatchBackend:
        """Gemini Batch Mode (``llm.batch``), through this adapter's requests and errors."""
        from rewts.llm.providers.gemini_batch import GeminiBatch

        return GeminiBatch(self)

    async def aclose(self) -> None:
        await self.client.aio.aclose()


def _is_connection_error(exc: BaseException) -> bool:
    """aiohttp (the SDK's async transport when installed) or httpx connection failures."""
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return True
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        pass
    try:
        import httpx

        if isinstance(exc, httpx.TransportError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, ConnectionError)


# ---------------------------------------------------------------------------- responses


def _field(obj: Any, *names: str) -> Any:
    """A field of an SDK object or of the same thing as a plain dict (batch items may be)."""
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def parse_response(response: Any) -> Response:
    """A ``GenerateContentResponse`` to a :class:`Response`; an unusable one is InvalidOutput."""
    candidates = _field(response, "candidates") or []
    if not candidates:
        feedback = _field(response, "prompt_feedback", "promptFeedback")
        reason = _field(feedback, "block_reason", "blockReason") if feedback else None
        raise InvalidOutput(f"no answer (prompt blocked: {reason})" if reason else "no answer")
    cand = candidates[0]
    finish = _field(cand, "finish_reason", "finishReason")
    finish = getattr(finish, "value", finish)
    content = _field(cand, "content")
    parts = (_field(content, "parts") or []) if content is not None else []
    text = "".join(
        _field(p, "text") or "" for p in parts if not _field(p, "thought")
    )  # thought summaries are not the answer
    if finish == "MAX_TOKENS":
        raise InvalidOutput("the answer was truncated (finishReason=MAX_TOKENS)")
    if not text:
        raise InvalidOutput(f"the answer is empty (finishReason={finish})")
    if finish not in (None, "STOP", "FINISH_REASON_UNSPECIFIED"):
        raise InvalidOutput(f"the answer was stopped (finishReason={finish})")
    usage = _field(response, "usage_metadata", "usageMetadata")
    tokens_in = int(_field(usage, "prompt_token_count", "promptTokenCount") or 0) if usage else 0
    # thinking tokens are billed as output: count them, or the cost estimate is low
    tokens_out = (
        int(_field(usage, "candidates_token_count", "candidatesTokenCount") or 0)
        + int(_field(usage, "thoughts_token_count", "thoughtsTokenCount") or 0)
        if usage
        else 0
    )
    return Response(
        text=text,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        logprobs=_logprobs(_field(cand, "logprobs_result", "logprobsResult")),
        finish_reason=str(finish) if finish is not None else None,
    )


def _logprobs(result: Any) -> list[TokenLogprob] | None:
    """``logprobsResult`` (chosen token per position, top-k alternatives) as TokenLogprobs."""
    if result is None:
        return None
    chosen = _field(result, "chosen_candidates", "chosenCandidates") or []
    tops = _field(result, "top_candidates", "topCandidates") or []
    if not chosen:
        return None
    try:
        out = []
        for i, c in enumerate(chosen):
            alternatives = _field(tops[i], "candidates") or [] if i < len(tops) else []
            out.append(
                TokenLogprob(
                    str(_field(c, "token") or ""),
                    float(_field(c, "log_probability", "logProbability")),
                    tuple(
                        (
                            str(_field(a, "token") or ""),
                            float(_field(a, "log_probability", "logProbability")),
                        )
                        for a in alternatives
                    ),
                )
            )
    except (TypeError, ValueError):
        return None  # unusable log-probabilities: C = 1, as without them
    return out


# ------------------------------------------------------------------------------ factory


def make_gemini_provider(cfg: Config) -> GeminiProvider:
    """The Gemini adapter from the config; a missing key stops here, naming the variables."""
    key, source = resolve_key(cfg)
    return GeminiProvider(
        model=cfg.llm.model or DEFAULT_MODEL,
        api_key=key,
        key_source=source,
        base_url=cfg.llm.base_url,
        timeout_s=cfg.llm.timeout_s,
        thinking_budget=cfg.llm.thinking_budget,
        structured=cfg.llm.structured_output,
    )


__all__ = [
    "DEFAULT_MODEL",
    "GeminiProvider",
    "classify_429",
    "make_gemini_provider",
    "parse_response",
    "resolve_key",
    "thinking_settings",
]
