"""What Gemini's error bodies say: a 429's kind (per-minute rate, per-day quota, a spend
cap) and wait, an invalid key. Gemini sends no Retry-After header: the wait is
``google.rpc.RetryInfo.retryDelay`` in the body, and only ``QuotaFailure.violations[].quotaId``
tells a per-minute limit from a per-day quota (which resets at midnight Pacific time)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rewts.llm.providers.base import ProviderError, QuotaExhausted, RateLimited

#: daily quotas reset at midnight in this zone (Gemini's documentation)
QUOTA_TZ = "America/Los_Angeles"
#: a spend-based limit or prepaid credit; not "billing": every quota 429's message says "check
#: your plan and billing details"
_SPEND = re.compile(r"spend|prepa(y|id)", re.IGNORECASE)
_PER_DAY = re.compile(r"per ?_?day|daily", re.IGNORECASE)


def error_details(exc: Any) -> list[Mapping[str, Any]]:
    """The ``google.rpc`` details of an SDK error (a list of typed dicts), [] if none."""
    body = getattr(exc, "details", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        details = err.get("details") if isinstance(err, Mapping) else None
        if isinstance(details, list):
            return [d for d in details if isinstance(d, Mapping)]
    return []


def _detail(details: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    for d in details:
        if str(d.get("@type", "")).endswith(f".{kind}"):
            return d
    return None


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration as JSON ("53s", "0.250s") in seconds; None if unreadable."""
    if isinstance(value, int | float):
        return max(0.0, float(value))
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(0.0, float(value[:-1]))
        except ValueError:
            return None
    return None


def quota_ids(details: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every ``quotaId`` (else ``quotaMetric``) of the QuotaFailure detail."""
    failure = _detail(details, "QuotaFailure") or {}
    out = []
    for v in failure.get("violations") or ():
        if isinstance(v, Mapping):
            out.append(str(v.get("quotaId") or v.get("quotaMetric") or ""))
    return [q for q in out if q]


def until_pacific_midnight(now: dt.datetime | None = None) -> dt.timedelta | None:
    """Time left until the daily quotas reset (midnight Pacific), None without a tz database."""
    try:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(QUOTA_TZ)
    except Exception:  # no tz database on this machine: say "midnight Pacific" without a count
        return None
    local = (now or dt.datetime.now(dt.UTC)).astimezone(tz)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return midnight - local


def _in_words(delta: dt.timedelta | None) -> str:
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    return f", in about {minutes // 60} h {minutes % 60:02d} min"


def classify_429(message: str, details: Sequence[Mapping[str, Any]], model: str) -> ProviderError:
    """A RESOURCE_EXHAUSTED answer as a taxonomy error: per-minute wait, or a stop."""
    ids = quota_ids(details)
    retry = _detail(details, "RetryInfo")
    delay = parse_duration(retry.get("retryDelay")) if retry else None
    text = " ".join(ids) if ids else message
    if _PER_DAY.search(text):
        which = ids[0] if ids else "a per-day quota"
        return QuotaExhausted(
            f"gemini: the daily quota of {model} is used up ({which}); it resets at midnight "
            f"Pacific time{_in_words(until_pacific_midnight())}: rerun then",
            status=429,
        )
    if _SPEND.search(text):
        return QuotaExhausted(
            f"gemini: a spend limit was reached for {model} (HTTP 429: "
            f"{ids[0] if ids else 'spend-based limit'}); paid tiers cap spend over a rolling "
            "10-minute window, and a project spend cap or prepaid credit stops all calls: rerun "
            "in about 10 minutes, or raise the cap / add credit in AI Studio",
            status=429,
        )
    kind = "tokens per minute" if any("token" in q.lower() for q in ids) else "requests per minute"
    return RateLimited(
        f"gemini: {kind} limit ({ids[0]})" if ids else "gemini: HTTP 429",
        retry_after=delay,
    )


def is_key_invalid(details: Sequence[Mapping[str, Any]], message: str) -> bool:
    info = _detail(details, "ErrorInfo") or {}
    return info.get("reason") == "API_KEY_INVALID" or "API key not valid" in message


# ------------------------------------------------------------------------------ provider
