"""A small generic JSON-schema -> instance generator, and Gemini's schema dialect mapped to it.

Why our own: the simulator must answer *any* schema a caller sends with a valid instance,
deterministically from a seeded ``random.Random``; the constructs that structured-output APIs
accept are a small subset (object, array, enum, numbers with bounds, strings, $ref, anyOf), so a
hundred lines cover them without a dependency.
"""

from __future__ import annotations

import math
import random
from typing import Any

_WORDS = [
    "momentum",
    "trend",
    "volatility",
    "support",
    "resistance",
    "earnings",
    "margin",
    "growth",
    "sentiment",
    "volume",
    "breakout",
    "reversal",
    "yield",
    "inflation",
    "rates",
    "guidance",
    "demand",
    "supply",
    "valuation",
    "risk",
    "liquidity",
    "signal",
    "moving",
    "average",
    "drawdown",
    "recovery",
    "sector",
    "market",
    "outlook",
    "strength",
    "weakness",
]
_LONG_TEXT_HINTS = ("explanation", "rationale", "reason", "summary", "description", "analysis")
_DEPTH_LIMIT = 12


def gemini_to_json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-subset ``responseSchema`` (``type: OBJECT``, ``nullable``) as JSON schema."""
    if isinstance(schema, list):
        return [gemini_to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for raw_key, value in schema.items():
        # protobuf JSON takes both spellings and google-genai sends snake_case (min_items, any_of)
        key = _camel(raw_key)
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: gemini_to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf"):
            out[key] = gemini_to_json_schema(value)
        elif key in (
            "minItems",
            "maxItems",
            "minLength",
            "maxLength",
            "minProperties",
            "maxProperties",
        ):
            out[key] = int(value)  # proto int64 fields arrive as strings
        elif key in ("minimum", "maximum"):
            out[key] = float(value)
        else:
            out[key] = value
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def instance(schema: Any, rng: random.Random, *, root: Any = None, hint: str = "") -> Any:
    """A value valid against ``schema``, drawn from ``rng`` (same rng state -> same value)."""
    return _gen(schema, rng, root if root is not None else schema, hint, 0)


def _resolve(schema: dict[str, Any], root: Any) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = (
            node.get(part.replace("~1", "/").replace("~0", "~"), {})
            if isinstance(node, dict)
            else {}
        )
    merged = dict(node) if isinstance(node, dict) else {}
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    return merged


def _gen(schema: Any, rng: random.Random, root: Any, hint: str, depth: int) -> Any:
    if schema is True or not isinstance(schema, dict):
        return _string({}, rng, hint)
    schema = _resolve(schema, root)
    if depth > _DEPTH_LIMIT:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            concrete = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _gen(rng.choice(concrete or options), rng, root, hint, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged.update(_resolve(part, root))
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        return _gen(merged, rng, root, hint, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        concrete = [k for k in kind if k != "null"]
        kind = concrete[0] if concrete else "null"
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return _object(schema, rng, root, depth)
    if kind == "array":
        return _array(schema, rng, root, hint, depth)
    if kind == "integer":
        return _integer(schema, rng)
    if kind == "number":
        return _number(schema, rng)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, rng, hint)


def _object(schema: dict[str, Any], rng: random.Random, root: Any, depth: int) -> dict[str, Any]:
    props = schema.get("properties") or {}
    order = schema.get("propertyOrdering")
    names = [n for n in order if n in props] if isinstance(order, list) else []
    names += [n for n in props if n not in names]
    # every property, not just the required ones: OpenAI strict mode requires all of them
    return {name: _gen(props[name], rng, root, name, depth + 1) for name in names}


def _array(
    schema: dict[str, Any], rng: random.Random, root: Any, hint: str, depth: int
) -> list[Any]:
    hi_given = schema.get("maxItems")
    lo = int(schema.get("minItems", 1 if hi_given is None else min(1, int(hi_given))))
    hi = int(hi_given) if hi_given is not None else max(lo, 4)
    hi = max(lo, min(hi, lo + 6))
    items = schema.get("items", {"type": "string"})
    return [_gen(items, rng, root, hint, depth + 1) for _ in range(rng.randint(lo, hi))]


def _bounds(
    schema: dict[str, Any], default_lo: float, default_hi: float
) -> tuple[float, float, bool, bool]:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    lo_open = hi_open = False
    if isinstance(xlo, int | float) and not isinstance(xlo, bool) and (lo is None or xlo >= lo):
        lo, lo_open = xlo, True
    if isinstance(xhi, int | float) and not isinstance(xhi, bool) and (hi is None or xhi <= hi):
        hi, hi_open = xhi, True
    if lo is None and hi is None:
        lo, hi = default_lo, default_hi
    elif lo is None:
        lo = hi - (default_hi - default_lo)
    elif hi is None:
        hi = lo + (default_hi - default_lo)
    return float(lo), float(hi), lo_open, hi_open


def _integer(schema: dict[str, Any], rng: random.Random) -> int:
    lo, hi, lo_open, hi_open = _bounds(schema, 0, 100)
    ilo, ihi = math.ceil(lo), math.floor(hi)
    ilo += 1 if lo_open and ilo == lo else 0
    ihi -= 1 if hi_open and ihi == hi else 0
    return rng.randint(ilo, max(ilo, ihi))


def _number(schema: dict[str, Any], rng: random.Random) -> float:
    lo, hi, lo_open, hi_open = _bounds(schema, 0.0, 100.0)
    value = round(rng.uniform(lo, hi), 2)
    # rounding may step outside a bound: pull back inside
    if value < lo or (lo_open and value <= lo):
        value = lo if not lo_open else lo + (hi - lo) / 2
    if value > hi or (hi_open and value >= hi):
        value = hi if not hi_open else lo + (hi - lo) / 2
    return value


def _string(schema: dict[str, Any], rng: random.Random, hint: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return f"20{rng.randint(10, 24):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "date-time":
        return f"20{rng.randint(10, 24):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z"
    long_text = any(h in hint.lower() for h in _LONG_TEXT_HINTS)
    n_words = rng.randint(14, 30) if long_text else rng.randint(1, 3)
    words = [rng.choice(_WORDS) for _ in range(n_words)]
    text = (" ".join(words).capitalize() + ".") if long_text else "_".join(words)
    lo = int(schema.get("minLength", 0))
    hi = schema.get("maxLength")
    while len(text) < lo:
        text += " " + rng.choice(_WORDS)
    if hi is not None:
        text = text[: int(hi)]
    return text
