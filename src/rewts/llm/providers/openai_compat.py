"""Any OpenAI-compatible chat-completions endpoint through the official ``openai`` SDK.

Presets: ``deepseek`` (https://api.deepseek.com, ``DEEPSEEK_API_KEY``, ``deepseek-chat``),
``openai`` (``OPENAI_API_KEY``, ``gpt-4o-mini``) and ``local`` (a vLLM/Ollama/``rewts sim``
server at ``llm.base_url``; a key is optional). The SDK's own retries are off
(``max_retries=0``): the engine owns retries, so every one of them passes the rate limiter.
SDK exceptions are translated here into the provider taxonomy; the key never appears in a
message (the servers echo a masked key in 401 answers, so those bodies are not repeated).
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import openai

from rewts.config import Config
from rewts.errors import AuthenticationError, ConfigError
from rewts.llm.providers.base import (
    AuthFailed,
    BadRequest,
    BatchBackend,
    ConnectionFailed,
    InvalidOutput,
    NotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Request,
    Response,
    ServerError,
    Timeout,
    TokenLogprob,
)
from rewts.llm.providers.remote import RemoteProvider

StructuredOutput = Literal["json_schema", "json_object", "off"]


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str | None
    env_var: str | None
    model: str | None
    config_key: str | None
    structured: StructuredOutput


PRESETS: dict[str, Preset] = {
    # DeepSeek's API has JSON mode but no json_schema response format
    "deepseek": Preset(
        "https://api.deepseek.com",
        "DEEPSEEK_API_KEY",
        "deepseek-chat",
        "deepseek_api_key",
        "json_object",
    ),
    "openai": Preset(None, "OPENAI_API_KEY", "gpt-4o-mini", "openai_api_key", "json_schema"),
    "local": Preset(None, None, None, None, "json_schema"),
}


def resolve_key(cfg: Config, preset: Preset, name: str) -> tuple[str | None, str | None]:
    """(key, variable name) from the environment, else the config; None when optional."""
    var = cfg.llm.api_key_env or preset.env_var
    if var and os.environ.get(var):
        return os.environ[var], var
    secret = getattr(cfg.llm, preset.config_key, None) if preset.config_key else None
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value(), var
    if preset.env_var is None and cfg.llm.api_key_env is None:
        return None, None  # a local server usually needs no key
    raise AuthenticationError(
        f"no API key for provider {name}: set {var}"
        + (f" (or llm.{preset.config_key} in the config)" if preset.config_key else "")
        + ", choose another variable with llm.api_key_env, or use --provider heuristic "
        "(offline, not an LLM)"
    )


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    headers = exc.response.headers if exc.response is not None else {}
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def _is_quota(exc: openai.APIStatusError) -> bool:
    code = str(getattr(exc, "code", "") or "")
    body = exc.body if isinstance(exc.body, dict) else {}
    text = f"{code} {body}".lower()
    return "insufficient_quota" in text or "per day" in text or "daily" in text


class OpenAICompatProvider(RemoteProvider):
    """Chat completions with structured output and (optionally) log-probabilities."""

    default_url = "https://api.openai.com/v1"

    def __init__(
        self,
        name: str,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        env_var: str | None,
        timeout_s: float,
        structured: StructuredOutput = "json_schema",
        top_logprobs: int = 5,
    ) -> None:
        super().__init__(
            name=name,
            model=model,
            base_url=base_url,
            api_key=api_key or "not-needed",
            structured=structured,
            top_logprobs=top_logprobs,
        )
        self.env_var = env_var
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key=self._key, max_retries=0, timeout=timeout_s
        )

    def request_body(self, request: Request) -> dict[str, Any]:
        """The chat-completions arguments for ``request`` (the Batch API sends the same body)."""
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.json_schema is not None and self.structured == "json_schema":
            name, schema = request.json_schema
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": dict(schema)},
            }
        elif request.json_schema is not None and self.structured == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        if request.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = self.top_logprobs
        return kwargs

    async def generate(self, request: Request) -> Response:
        try:
            # the raw body, decoded here: the SDK's typed models cost ~15 ms of CPU per answer
            # with log-probabilities (measured), all of it on the event loop
            raw = await self.client.chat.completions.with_raw_response.create(
                **self.request_body(request)
            )
            body = raw.content
        except (openai.APIError, ValueError) as exc:  # ValueError: a body the SDK could not decode
            raise self.translate(exc, request.model) from None
        return parse_completion(body)

    def translate(self, exc: BaseException, model: str | None = None) -> ProviderError:
        """Any exception of the SDK or its transport as a taxonomy error (key redacted).

        The one mapping for this adapter: ordinary calls and its batch back-end use it."""
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            return Timeout("the request timed out (llm.timeout_s)")
        if isinstance(exc, openai.APIConnectionError):
            return ConnectionFailed(f"connection failed: {type(exc.__cause__ or exc).__name__}")
        if isinstance(exc, openai.RateLimitError):
            if _is_quota(exc):
                return QuotaExhausted(f"{self.name}: quota exhausted (HTTP 429)", status=429)
            return RateLimited("HTTP 429", retry_after=_retry_after(exc))
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return AuthFailed("key rejected", env_var=self.env_var, status=exc.status_code)
        if isinstance(exc, openai.NotFoundError):
            return NotFound("model not found", model=model or self.model, status=404)
        if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
            return BadRequest(self._redact(str(exc.message))[:300], status=exc.status_code)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 402:  # DeepSeek: insufficient balance
                return QuotaExhausted(f"{self.name}: insufficient balance (HTTP 402)", status=402)
            if status >= 500 or status in (408, 409):
                return ServerError(f"HTTP {status}", status=status)
            return BadRequest(self._redact(str(exc.message))[:300], status=status)
        if isinstance(exc, openai.APIResponseValidationError):
            return InvalidOutput("the response did not match the API's format")
        if isinstance(exc, ValueError):
            return InvalidOutput(f"malformed response ({type(exc).__name__})")
        return ServerError(f"{type(exc).__name__}")

    def batch(self) -> BatchBackend:
        """OpenAI's Batch API (``llm.batch``), through this adapter's requests and errors."""
        if self.name == "deepseek":
            raise ConfigError(
                "llm.batch: DeepSeek has no batch API; set llm.batch to false (DeepSeek's "
                "off-peak discount applies to ordinary calls)"
            )
        from rewts.llm.providers.openai_batch import OpenAIBatch

        return OpenAIBatch(self)

    async def aclose(self) -> None:
        await self.client.close()


def parse_completion(body: bytes | str) -> Response:
    """A chat-completion body (wire JSON) to a :class:`Response`; anything odd is InvalidOutput."""
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        finish = choice.get("finish_reason")
        text = (choice.get("message") or {}).get("content")
        usage = data.get("usage") or {}
        content = (choice.get("logprobs") or {}).get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise InvalidOutput("malformed response body (not a chat completion)") from None
    if finish == "length":
        raise InvalidOutput("the answer was truncated (finish_reason=length)")
    if not text or not isinstance(text, str):
        raise InvalidOutput("the answer is empty")
    logprobs = None
    if content:
        try:
            logprobs = [
                TokenLogprob(
                    t["token"],
                    float(t["logprob"]),
                    tuple((a["token"], float(a["logprob"])) for a in (t.get("top_logprobs") or ())),
                )
                for t in content
            ]
        except (KeyError, TypeError, ValueError):
            logprobs = None  # unusable log-probabilities: C = 1, as without them
    return Response.from_chat_completion(text, finish, usage, logprobs)


def make_openai_provider(cfg: Config, name: str) -> OpenAICompatProvider:
    """Build the adapter for preset ``name`` (deepseek, openai, local) from the config."""
    preset = PRESETS[name]
    base_url = cfg.llm.base_url or preset.base_url
    model = cfg.llm.model or preset.model
    if name == "local" and not base_url:
        raise ConfigError(
            "llm.provider = local needs llm.base_url (--base-url), e.g. http://127.0.0.1:8000/v1"
        )
    if not model:
        raise ConfigError(f"llm.provider = {name} needs llm.model (--model)")
    key, var = resolve_key(cfg, preset, name)
    structured = cfg.llm.structured_output
    return OpenAICompatProvider(
        name,
        model=model,
        base_url=base_url,
        api_key=key,
        env_var=var,
        timeout_s=cfg.llm.timeout_s,
        structured=preset.structured if structured == "auto" else structured,
    )
