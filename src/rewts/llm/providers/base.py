"""The provider interface and its small error taxonomy.

The engine talks to every API through :class:`Provider`. Each adapter translates its SDK's
exceptions into the :class:`ProviderError` classes below at the boundary, so the engine's
retry policy is written once: ``retryable`` errors go back through the limiter after a
backoff, ``fatal`` ones abort the run, :class:`QuotaExhausted` stops it cleanly.

An adapter whose API has a batch mode also offers ``batch() -> BatchBackend`` (the contract
is at the end of this module); :mod:`rewts.llm.batch` runs tasks through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token, its log-probability and the top alternatives (token, logprob)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    """What one call asks for. ``context`` is never sent: it carries the structured inputs
    (the snapshot) for offline providers and is excluded from the cache key."""

    messages: tuple[Mapping[str, str], ...]
    model: str
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int = 512
    #: (name, JSON schema) for structured output; None asks for free text
    json_schema: tuple[str, Mapping[str, Any]] | None = None
    logprobs: bool = False
    context: Mapping[str, Any] | None = field(default=None, compare=False)

    def settings(self) -> dict[str, Any]:
        """Generation settings that change the answer (part of the cache key and provenance)."""
        return {
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "logprobs": self.logprobs,
        }


@dataclass(slots=True)
class Response:
    """A provider's answer: the raw text (parsed by the caller), usage and log-probabilities."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None

    @classmethod
    def from_chat_completion(
        cls,
        text: str,
        finish_reason: str | None,
        usage: Mapping[str, Any],
        logprobs: list[TokenLogprob] | None = None,
    ) -> Response:
        """An answer in the OpenAI chat-completion format (llama.cpp answers in it too): the
        token counts come from its ``usage`` block, 0 where missing."""
        return cls(
            text=text,
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
            logprobs=logprobs,
            finish_reason=finish_reason,
        )


@runtime_checkable
class Provider(Protocol):
    """An LLM API (or an offline stand-in) behind one async call.

    ``local`` providers (the heuristic, an in-process model) have no rate limit: the engine
    bypasses the limiter for them. Two optional attributes refine that: ``cacheable`` (default
    ``not local``; an in-process LLM is slow and deterministic, so it sets True) and
    ``max_concurrency`` (default None; an in-process model is bounded by the machine's cores,
    not by a rate limit). ``identity`` names the endpoint for cache keys (provider, base URL).
    ``quota_tz`` (default "UTC") is the IANA zone whose midnight resets the provider's daily
    quotas, so ``rpd`` counts the provider's own day.
    """

    name: str
    model: str
    local: bool

    @property
    def identity(self) -> str: ...

    async def generate(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...


def is_cacheable(provider: Provider) -> bool:
    """Whether answers go through the cache (everything but the heuristic by default)."""
    return bool(getattr(provider, "cacheable", not provider.local))


def quota_tz(provider: Provider) -> str:
    """The zone whose midnight resets the provider's daily quotas (UTC unless it says)."""
    return str(getattr(provider, "quota_tz", "UTC"))


def concurrency_cap(provider: Provider) -> int | None:
    """The provider's own bound on requests in flight (cores of an in-process model), if any."""
    cap = getattr(provider, "max_concurrency", None)
    return int(cap) if cap else None


# ----------------------------------------------------------------------- errors


class ProviderError(Exception):
    """Base of the taxonomy. ``status`` is the HTTP status where there was one."""

    retryable: bool = False
    fatal: bool = False

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message or type(self).__name__)
        self.status = status


class RateLimited(ProviderError):
    """429 (per-minute limits); ``retry_after`` seconds when the server said how long."""

    retryable = True

    def __init__(
        self, message: str = "", *, retry_after: float | None = None, status: int | None = 429
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class QuotaExhausted(ProviderError):
    """The daily (or billing) quota is used up: stop cleanly, resume later."""


class ServerError(ProviderError):
    """5xx or another transient server-side failure."""

    retryable = True


class Timeout(ProviderError):
    """The client-side timeout fired."""

    retryable = True


class ConnectionFailed(ProviderError):
    """Refused, reset or dropped connection."""

    retryable = True


class InvalidOutput(ProviderError):
    """The answer is not valid JSON in the requested schema, or was truncated."""

    retryable = True


class AuthFailed(ProviderError):
    """401/403: the key is missing or rejected. ``env_var`` names what to fix."""

    fatal = True

    def __init__(self, message: str = "", *, env_var: str | None = None, status: int | None = None):
        super().__init__(message, status=status)
        self.env_var = env_var


class NotFound(ProviderError):
    """404: usually the model name."""

    fatal = True

    def __init__(self, message: str = "", *, model: str | None = None, status: int | None = 404):
        super().__init__(message, status=status)
        self.model = model


class BadRequest(ProviderError):
    """400/422: the request itself is wrong (a setting the model does not support)."""

    fatal = True


# ------------------------------------------------------------------------ batch contract


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One poll of a batch job."""

    state: str
    terminal: bool
    done: int | None = None
    failed: int | None = None
    #: why the whole job failed (state failed/expired), when the provider said
    error: str | None = None


#: one batch item's result: the answer, or the error it met
ItemOutcome = Response | ProviderError


class BatchBackend(Protocol):
    """One provider's batch API: submit requests under ids, poll, collect, cancel.

    Optional attributes ``max_items`` and ``max_bytes`` bound one job (the runner splits
    larger waves). Errors are raised as :class:`ProviderError` (the adapter's own mapping)."""

    async def submit(self, items: Sequence[tuple[str, Request]], display_name: str) -> str: ...

    async def poll(self, job: str) -> JobStatus: ...

    async def collect(self, job: str) -> dict[str, ItemOutcome]: ...

    async def cancel(self, job: str) -> None: ...


def item_error(code: Any, message: Any) -> ProviderError:
    """One batch item's error (HTTP-like code and message) as a taxonomy error."""
    text = str(message or "no message")[:300]
    try:
        status = int(code) if code is not None else None
    except (TypeError, ValueError):
        status = None
    if status == 429:
        return RateLimited(f"batch item: {text}")
    if status is not None and status >= 500:
        return ServerError(f"batch item: HTTP {status}: {text}", status=status)
    if status in (401, 403):
        return AuthFailed(f"batch item: {text}", status=status)
    if status == 404:
        return NotFound(f"batch item: {text}", status=404)
    if status is not None and status >= 400:
        return BadRequest(f"batch item: HTTP {status}: {text}", status=status)
    return ServerError(f"batch item: {text}")
