"""The strategist's answer, how it is parsed, and what a stored strategy carries.

The provider's *text* is parsed here, never trusted: the SDKs' own ``.parsed`` helpers hide
validation errors, and an invalid or truncated answer must become a retryable failure.
Signal strength follows the paper: ``str = (confidence / 3) * C`` with
``C = eps + (1 - eps) * (1 - H)``, ``H`` the normalized entropy of the answer's tokens, and
``C = 1`` when the provider gave no log-probabilities.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rewts.llm.providers.base import InvalidOutput, TokenLogprob

#: the paper's floor on the certainty factor C
EPS = 0.01


class KeyFeature(BaseModel):
    """One input that drove the decision."""

    model_config = ConfigDict(extra="forbid")

    feature: str = Field(min_length=1, max_length=80)
    impact: Literal["positive", "negative", "neutral"]
    weight: float = Field(ge=0.0, le=1.0)


class Strategy(BaseModel):
    """The strategist's answer: direction (1 LONG, 0 SHORT), Likert confidence 1-3, rationale."""

    model_config = ConfigDict(extra="forbid")

    direction: Literal[0, 1]
    confidence: float = Field(ge=1.0, le=3.0)
    explanation: str = Field(min_length=1, max_length=4000)
    key_features: list[KeyFeature] = Field(default_factory=list, max_length=12)


def strict_object(properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON-schema object as OpenAI's strict mode wants it: every property required, no extra
    keys (``required`` is read off ``properties``, so the two cannot drift apart)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


#: JSON schema sent with the request (OpenAI ``response_format`` strict mode: every property
#: required, no extra keys). Written by hand, because strict mode accepts only a subset.
STRATEGY_JSON_SCHEMA: dict[str, Any] = strict_object(
    {
        "direction": {"type": "integer", "enum": [0, 1], "description": "1 = LONG, 0 = SHORT"},
        "confidence": {
            "type": "number",
            "minimum": 1.0,
            "maximum": 3.0,
            "description": "1 = low, 2 = medium, 3 = high",
        },
        "explanation": {"type": "string"},
        "key_features": {
            "type": "array",
            "items": strict_object(
                {
                    "feature": {"type": "string"},
                    "impact": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                    "weight": {"type": "number", "minimum": 0.0, "maximum": 1.0},
                }
            ),
        },
    }
)

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_answer(text: str | None, schema: type[BaseModel]) -> Any:
    """Validate an answer against any pydantic ``schema`` (the analyst's, later)."""
    return _validate(_load_json(text), schema)


def _validate(data: Any, schema: type[BaseModel]) -> Any:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise InvalidOutput(f"answer does not match the schema: {where}: {first['msg']}") from None


def _load_json(text: str | None) -> Any:
    if not text or not text.strip():
        raise InvalidOutput("empty answer")
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"answer is not valid JSON ({exc.msg} at char {exc.pos})") from None


def parse_strategy(text: str | None) -> Strategy:
    """Validate a provider's answer text; anything unusable raises :class:`InvalidOutput`.

    A Markdown code fence around the JSON is tolerated (some models add one in JSON mode);
    nothing else is repaired, so a truncated answer is a retry, not a guess.
    """
    data = _load_json(text)
    if isinstance(data, dict) and isinstance(data.get("direction"), bool):
        raise InvalidOutput("direction must be 0 or 1, not a boolean")
    return _validate(data, Strategy)


# ---------------------------------------------------------------------------- entropy


def _token_entropy(top: Sequence[tuple[str, float]]) -> float | None:
    """Normalized entropy (0..1) of one position's top-k alternatives, renormalized over k."""
    if len(top) < 2:
        return None
    logps = [lp for _, lp in top]
    peak = max(logps)
    weights = [math.exp(lp - peak) for lp in logps]
    total = sum(weights)
    probs = [w / total for w in weights]
    h = -sum(p * math.log(p) for p in probs if p > 0.0)
    return h / math.log(len(probs))


_ANSWER_VALUE = re.compile(r'"(direction|confidence)"\s*:\s*(-?[0-9.]+)')


def answer_entropy(logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """Normalized entropy H of the answer's decision tokens, or None without log-probabilities.

    The decision lives in the values of ``direction`` and ``confidence``; the JSON scaffolding
    around them is near-certain and would dilute H towards 0, and the explanation's wording is
    uncertain in ways that say nothing about the decision. So H is the mean normalized entropy
    (top-k renormalized, divided by ``ln k``) of the tokens that overlap those two values; when
    they cannot be located, of every token that came with alternatives. See docs/llm-method.md.
    """
    if not logprobs:
        return None
    starts, pos = [], 0
    for tok in logprobs:
        starts.append(pos)
        pos += len(tok.token)
    text = "".join(tok.token for tok in logprobs)
    spans = [m.span(2) for m in _ANSWER_VALUE.finditer(text)]
    chosen = [
        tok
        for tok, start in zip(logprobs, starts, strict=True)
        if any(start < hi and start + len(tok.token) > lo for lo, hi in spans)
    ]
    values = [h for tok in (chosen or logprobs) if (h := _token_entropy(tok.top)) is not None]
    if not values:
        return None
    return min(1.0, max(0.0, sum(values) / len(values)))


def strength(confidence: float, entropy: float | None, eps: float = EPS) -> float:
    """The paper's signal strength: ``(confidence / 3) * (eps + (1 - eps) * (1 - H))``."""
    certainty = 1.0 if entropy is None else eps + (1.0 - eps) * (1.0 - entropy)
    return (confidence / 3.0) * certainty


def tau(direction: int, strength_value: float) -> float:
    """The RL feature: +strength for LONG (1), -strength for SHORT (0)."""
    return (1.0 if direction == 1 else -1.0) * strength_value
