"""What the two HTTP adapters (Gemini, OpenAI-compatible) share: the endpoint as it may be
stored or shown, the identity the cache keys on, and the API key kept out of every message."""

from __future__ import annotations

from typing import ClassVar

from rewts.redaction import url_without_secrets


class RemoteProvider:
    """The common part of an adapter for an API behind a URL and a key."""

    local = False
    #: the endpoint when ``base_url`` is None (the provider's own API), for the identity
    default_url: ClassVar[str]

    def __init__(
        self,
        *,
        name: str,
        model: str,
        base_url: str | None,
        api_key: str,
        structured: str,
        top_logprobs: int,
    ) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url
        #: json_schema (send the schema) or json_object (JSON, no schema: llm.structured_output)
        self.structured = structured
        self.top_logprobs = top_logprobs
        self._key = api_key

    def __repr__(self) -> str:  # never show the key
        return (
            f"{type(self).__name__}({self.name!r}, model={self.model!r}, "
            f"base_url={self.public_url!r})"
        )

    @property
    def public_url(self) -> str | None:
        """The base URL as it may be stored or shown (no user:password, no query)."""
        return url_without_secrets(self.base_url) if self.base_url else None

    @property
    def identity(self) -> str:
        """Cache key and provider column: the endpoint without any secret in its URL."""
        return f"{self.name}@{self.public_url or self.default_url}"

    def _redact(self, text: str) -> str:
        """``text`` with the API key replaced (an SDK may echo it in an error message)."""
        return text.replace(self._key, "***") if self._key else text
