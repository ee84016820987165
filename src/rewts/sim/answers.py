"""What the simulator answers: deterministic text, pseudo-tokens, log-probabilities, usage.

Everything here is a pure function of a request's *content* (seed, model, messages, schema):
the same request always gets the same answer, so crash-safety tests can compare runs. Fault
draws and latency are not here: they depend on arrival order and live in the server.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rewts.sim.schema import instance

#: the strategist's answer fields (rewts.llm.schemas.Strategy); a schema with all of them may be
#: answered with a real DeepSeek strategy from the shared data
STRATEGIST_FIELDS = frozenset({"direction", "confidence", "explanation", "key_features"})
_STRATEGIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "direction": {"type": "integer", "enum": [0, 1]},
        "confidence": {"type": "number", "minimum": 1.0, "maximum": 3.0},
        "explanation": {"type": "string"},
        "key_features": {
            "type": "array",
            "minItems": 1,
            "maxItems": 6,
            "items": {
                "type": "object",
                "properties": {
                    "feature": {"type": "string"},
                    "impact": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                    "weight": {"type": "number", "minimum": 0.0, "maximum": 1.0},
                },
            },
        },
    },
}
#: the news analyst's answer (rewts.llm.analyst.NewsAnalysis), for JSON mode without a schema
ANALYST_FIELDS = ("factors", "overall_sentiment", "key_topics")
_ANALYST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "factors": {
            "type": "array",
            "minItems": 0,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "sentiment": {"type": "integer", "enum": [-1, 0, 1]},
                    "impact": {"type": "integer", "enum": [1, 2, 3]},
                },
            },
        },
        "overall_sentiment": {"type": "string", "enum": ["bullish", "neutral", "bearish"]},
        "confidence": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        "key_topics": {"type": "array", "maxItems": 5, "items": {"type": "string"}},
    },
}
#: per token: (token, logprob, top alternatives incl. itself)
TokenLogprobs = list[tuple[str, float, list[tuple[str, float]]]]
_TOKEN_RE = re.compile(r" ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+")
_ALTERNATIVES = (" the", " a", ",", ".", " and", '"', " of", " to", "1", "0", " is", ":")


@dataclass(frozen=True, slots=True)
class Answer:
    """One generated answer: its text, pseudo-tokens and how generation ended."""

    text: str
    tokens: tuple[str, ...]
    #: "stop" or "length" (cut at max_tokens, or an injected truncation)
    finish: str


def request_rng(seed: int, model: str, content: Any) -> random.Random:
    """A ``random.Random`` seeded from a hash of (seed, model, the full request content)."""
    blob = json.dumps([seed, model, content], sort_keys=True, ensure_ascii=False, default=str)
    return random.Random(int.from_bytes(hashlib.sha256(blob.encode()).digest()[:16], "big"))


def count_tokens(text: str) -> int:
    """The prompt-side token estimate both formats report: about four characters a token."""
    return max(1, math.ceil(len(text) / 4))


def tokenize(text: str) -> tuple[str, ...]:
    """Pseudo-tokens whose concatenation is exactly ``text`` (words with their leading space)."""
    tokens = tuple(_TOKEN_RE.findall(text))
    assert "".join(tokens) == text, "tokenizer must cover the text"
    return tokens


@lru_cache(maxsize=4)
def _load_pool(path: str) -> tuple[dict[str, Any], ...]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    pool = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or item.get("direction") not in (0, 1):
            continue
        feats = item.get("key_features", item.get("features_used")) or []
        pool.append(
            {
                "direction": int(item["direction"]),
                "confidence": float(item.get("confidence", 2.0)),
                "explanation": str(item.get("explanation", "")),
                "key_features": [f for f in feats if isinstance(f, dict)],
            }
        )
    return tuple(p for p in pool if p["explanation"])


@lru_cache(maxsize=1)
def default_answers_file() -> Path:
    """The workspace's real DeepSeek answers (repo/../shared/data/llm), if this is a checkout."""
    return (
        Path(__file__).resolve().parents[3].parent
        / "shared"
        / "data"
        / "llm"
        / "deepseek_strategies.json"
    )


def strategy_pool(answers_file: str | None) -> tuple[dict[str, Any], ...]:
    """Real strategist answers to draw from, or () when there are none (never required)."""
    if answers_file is None:
        return ()
    path = default_answers_file() if answers_file == "auto" else Path(answers_file)
    return _load_pool(str(path)) if path.is_file() else ()


def _fits(value: Any, schema: Any) -> bool:
    """A light check that a pool value respects the requested schema's basic constraints."""
    if not isinstance(schema, dict):
        return True
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return False
    if kind == "number" and not isinstance(value, int | float):
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
    if kind == "string":
        if not isinstance(value, str):
            return False
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 10**9):
            return False
    if kind == "array":
        if not isinstance(value, list) or len(value) < schema.get("minItems", 0):
            return False
        return all(_fits(v, schema.get("items")) for v in value)
    if kind == "object":
        if not isinstance(value, dict):
            return False
        props = schema.get("properties") or {}
        if not set(schema.get("required", ())) <= set(value):
            return False
        return set(value) <= set(props) and all(_fits(v, props.get(k)) for k, v in value.items())
    return True


def _resolved(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with one level of $ref resolved (pydantic puts nested models in $defs)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _strategist(
    schema: dict[str, Any], rng: random.Random, pool: tuple[dict[str, Any], ...]
) -> Any:
    """A generated instance with the fields a real pooled answer can fill overlaid on it."""
    value = instance(schema, rng)
    if not pool or not isinstance(value, dict):
        return value
    real = rng.choice(pool)
    props = schema.get("properties") or {}
    for name in STRATEGIST_FIELDS:
        sub = _resolved(props.get(name, {}), schema)
        candidate = real[name]
        if name == "key_features" and isinstance(sub, dict):
            items = _resolved(sub.get("items", {}), schema)
            sub = {**sub, "items": items}
            candidate = candidate[: int(sub.get("maxItems", len(candidate)))]
        if _fits(candidate, sub):
            value[name] = candidate
    return value


def looks_like_strategist(schema: Any) -> bool:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return isinstance(props, dict) and set(props) >= STRATEGIST_FIELDS


def answer_text(
    schema: dict[str, Any] | None,
    json_mode: bool,
    prompt: str,
    rng: random.Random,
    pool: tuple[dict[str, Any], ...],
) -> str:
    """The answer's text: an instance of ``schema``, a JSON object, or a short sentence."""
    if schema is not None:
        value = (
            _strategist(schema, rng, pool)
            if looks_like_strategist(schema)
            else instance(schema, rng)
        )
        return json.dumps(value, ensure_ascii=False)
    if json_mode:
        # JSON mode without a schema (DeepSeek): answer the strategist's fields when asked for them
        if all(f in prompt for f in ("direction", "confidence")):
            return json.dumps(_strategist(_STRATEGIST_SCHEMA, rng, pool), ensure_ascii=False)
        # the news analyst (its prompt names these fields; a strategist prompt matched above)
        if all(f in prompt for f in ANALYST_FIELDS):
            return json.dumps(instance(_ANALYST_SCHEMA, rng), ensure_ascii=False)
        return json.dumps({"answer": instance({"type": "string"}, rng, hint="summary")})
    return instance({"type": "string"}, rng, hint="explanation")


def build_answer(text: str, max_tokens: int | None) -> Answer:
    """Tokenize ``text``; beyond ``max_tokens`` it is cut and ends with "length", like the APIs."""
    tokens = tokenize(text)
    if max_tokens is not None and 0 < max_tokens < len(tokens):
        tokens = tokens[:max_tokens]
        return Answer("".join(tokens), tokens, "length")
    return Answer(text, tokens, "stop")


def malformed(answer: Answer, rng: random.Random) -> Answer:
    """The same length of text, but not JSON (an unescaped quote and a stray brace)."""
    cut = max(1, len(answer.text) // 2)
    text = answer.text[:cut] + '"} oops {' + answer.text[cut:] + " ```"
    return Answer(text, tokenize(text), "stop")


def truncated(answer: Answer, rng: random.Random) -> Answer:
    """The answer cut off part-way (finish "length"): invalid JSON, as with a too-small max_tokens."""
    keep = max(1, int(len(answer.tokens) * rng.uniform(0.3, 0.8)))
    keep = min(keep, max(1, len(answer.tokens) - 1))
    tokens = answer.tokens[:keep]
    return Answer("".join(tokens), tokens, "length")


def delivered(
    answer: Answer, rng: random.Random, fault: str | None, logprobs: bool, top_k: int
) -> tuple[Answer, TokenLogprobs | None]:
    """The answer as ``fault`` leaves it (invalid JSON, or cut off) and its token logprobs when
    the request asked for them: one rule for live requests and both batch APIs."""
    if fault == "malformed":
        answer = malformed(answer, rng)
    elif fault == "truncated":
        answer = truncated(answer, rng)
    return answer, token_logprobs(answer.tokens, top_k, rng) if logprobs else None


def token_logprobs(tokens: tuple[str, ...], top_k: int, rng: random.Random) -> TokenLogprobs:
    """Per token: (token, logprob, top alternatives incl. itself), a proper sub-distribution.

    The chosen token is the most likely one; the alternatives share part of the remaining
    probability mass, so the top-k probabilities never sum above 1. Cheap on purpose (a few
    random draws a token): a long answer with top-5 must not cost the server milliseconds.
    """
    out = []
    rand = rng.random
    n_alt = len(_ALTERNATIVES)
    k = min(max(0, top_k - 1), n_alt - 1)
    log = math.log
    for token in tokens:
        # most tokens are near-certain, some are genuinely uncertain (numbers, direction words)
        u = rand()
        p = 1.0 - u**6 * 0.6 if u < 0.8 else 0.35 + (u - 0.8) * 2.75
        lp = log(p)
        top: list[tuple[str, float]] = [(token, lp)]
        if k:
            rest = 1.0 - p
            start = int(rand() * n_alt)
            for j in range(k + 1):
                alt = _ALTERNATIVES[(start + j) % n_alt]
                if alt == token or len(top) > k:
                    continue
                rest *= 0.5
                top.append((alt, log(max(rest, 1e-12))))
        out.append((token, lp, top))
    return out


@lru_cache(maxsize=8192)
def token_json(token: str) -> str:
    """A token as a JSON string literal (cached: answers reuse a small vocabulary)."""
    return json.dumps(token, ensure_ascii=False)


@lru_cache(maxsize=8192)
def token_bytes_json(token: str) -> str:
    """The token's UTF-8 bytes as a JSON array, as OpenAI's ``bytes`` field carries them."""
    return "[" + ",".join(str(b) for b in token.encode("utf-8")) + "]"
