"""What both wire formats share: the parsed request and the "answer with this error" signal."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A generation request, whichever format it came in."""

    model: str
    #: what the answer is a deterministic function of (messages / contents + system)
    content: Any
    #: all prompt text, for the token estimate
    prompt: str
    #: a JSON schema (Gemini's dialect already mapped) or None
    schema: dict[str, Any] | None
    #: JSON requested without a schema (OpenAI json_object)
    json_mode: bool
    logprobs: bool
    top_logprobs: int
    max_tokens: int | None


class WireError(Exception):
    """Raised while parsing: answer with ``response`` (a 4xx in the format's own shape)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


#: placeholder for a pre-encoded JSON fragment; as a JSON string value it cannot occur in
#: answer text (whose quotes are escaped)
RAW_MARKER = "__rewts_sim_raw_json__"


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None, raw: str | None = None
) -> web.Response:
    """``body`` as JSON; ``raw`` (already-encoded JSON) replaces the :data:`RAW_MARKER` value."""
    text = json.dumps(body, ensure_ascii=False)
    if raw is not None:
        text = text.replace(f'"{RAW_MARKER}"', raw, 1)
    return web.Response(
        body=text.encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def bad_gateway_html() -> web.Response:
    """A 502 as load balancers send it: HTML, not JSON (clients must cope with that too)."""
    html = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"
    return web.Response(text=html, status=502, content_type="text/html")


def duration(seconds: float) -> str:
    """Go-style duration as in OpenAI's x-ratelimit-reset-* headers: 1m30s, 1.5s, 250ms."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    minutes, secs = divmod(seconds, 60)
    if minutes >= 1:
        return f"{int(minutes)}m{secs:.0f}s"
    return f"{secs:.3g}s"


def proto_duration(seconds: float) -> str:
    """A google.protobuf.Duration in JSON ("53s", "0.25s"), as in RetryInfo.retryDelay."""
    text = f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".")
    return f"{text or '0'}s"


def ceil_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def mask_key(key: str | None) -> str:
    """How the real APIs echo a rejected key: a prefix and the last four characters at most."""
    if not key:
        return ""
    if len(key) < 12:
        return "*" * len(key)
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"
