"""The schema -> instance generator and the answer helpers (pure functions)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from rewts.llm.schemas import STRATEGY_JSON_SCHEMA, Strategy
from rewts.sim.answers import answer_text, build_answer, strategy_pool, tokenize, truncated
from rewts.sim.schema import gemini_to_json_schema, instance


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=3, max_length=5)
    level: int = Field(ge=-2, le=2)


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(pattern="^(a|b)$", json_schema_extra={"enum": ["a", "b"]})
    ratio: float = Field(gt=0.0, lt=1.0)
    items: list[Inner] = Field(min_length=2, max_length=3)
    maybe: Inner | None = None
    flag: bool


@given(st.integers(0, 2**32))
@settings(max_examples=60, deadline=None)
def test_pydantic_schemas_with_refs_and_bounds_are_answered_validly(seed: int) -> None:
    value = instance(Outer.model_json_schema(), random.Random(seed))
    Outer.model_validate(value)


@given(st.integers(0, 2**32))
@settings(max_examples=60, deadline=None)
def test_strategy_schema_is_answered_validly_with_or_without_real_answers(seed: int) -> None:
    for pool_file in (None, "auto"):
        text = answer_text(
            STRATEGY_JSON_SCHEMA, False, "p", random.Random(seed), strategy_pool(pool_file)
        )
        Strategy.model_validate_json(text)
        Strategy.model_validate_json(
            answer_text(Strategy.model_json_schema(), False, "p", random.Random(seed), ())
        )


def test_same_rng_same_instance() -> None:
    schema = Outer.model_json_schema()
    assert instance(schema, random.Random(5)) == instance(schema, random.Random(5))
    assert instance(schema, random.Random(5)) != instance(schema, random.Random(6))


def test_gemini_dialect_is_mapped() -> None:
    schema = gemini_to_json_schema(
        {
            "type": "OBJECT",
            "properties": {
                "n": {"type": "INTEGER", "minimum": "1", "maximum": 1},
                "xs": {
                    "type": "ARRAY",
                    "items": {"type": "STRING"},
                    "min_items": "2",
                    "max_items": "2",
                },
                "o": {"type": "STRING", "nullable": True, "enum": ["z"]},
                "u": {"any_of": [{"type": "NUMBER", "minimum": 5, "maximum": 5}]},
            },
            "property_ordering": ["xs", "n", "o", "u"],
        }
    )
    value = instance(schema, random.Random(0))
    assert list(value) == ["xs", "n", "o", "u"]
    assert value["n"] == 1 and len(value["xs"]) == 2 and value["o"] == "z" and value["u"] == 5.0


def test_real_answers_are_used_when_present_and_never_required(tmp_path) -> None:
    path = tmp_path / "answers.json"
    real = {
        "direction": 0,
        "confidence": 2.6,
        "explanation": "Real rationale.",
        "features_used": [{"feature": "RSI", "impact": "negative", "weight": 0.5}],
    }
    path.write_text(json.dumps([real]))
    text = answer_text(STRATEGY_JSON_SCHEMA, False, "p", random.Random(0), strategy_pool(str(path)))
    assert json.loads(text) == {
        "direction": 0,
        "confidence": 2.6,
        "explanation": "Real rationale.",
        "key_features": [{"feature": "RSI", "impact": "negative", "weight": 0.5}],
    }
    assert strategy_pool(str(tmp_path / "absent.json")) == ()


def test_json_mode_without_schema_answers_the_strategist_when_asked() -> None:
    text = answer_text(
        None, True, 'Answer JSON with "direction" and "confidence".', random.Random(1), ()
    )
    Strategy.model_validate_json(text)
    assert set(json.loads(answer_text(None, True, "Say hi.", random.Random(1), ()))) == {"answer"}


@given(st.text(max_size=200))
def test_tokens_always_spell_the_text(text: str) -> None:
    assert "".join(tokenize(text)) == text


def test_truncation_cuts_and_marks_length() -> None:
    answer = build_answer(json.dumps({"a": "b " * 40}), None)
    cut = truncated(answer, random.Random(0))
    assert (
        cut.finish == "length"
        and answer.text.startswith(cut.text)
        and len(cut.text) < len(answer.text)
    )
    limited = build_answer(answer.text, 4)
    assert limited.finish == "length" and len(limited.tokens) == 4


def _schemas(depth: int = 2):
    """Random schemas of the structured-output subset (objects, arrays, enums, bounds, $ref)."""
    names = st.text("abcdefgh", min_size=1, max_size=6)

    def numeric(kind):
        keys = st.sets(
            st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])
        )

        def build(lo, span, chosen):
            values = {
                "minimum": lo,
                "maximum": lo + span,
                "exclusiveMinimum": lo - 1,
                "exclusiveMaximum": lo + span + 1,
            }
            if kind == "number":  # tight open intervals too (always satisfiable)
                values["exclusiveMinimum"], values["exclusiveMaximum"] = lo - 0.5, lo + span + 0.5
            return {"type": kind, **{k: values[k] for k in chosen}}

        return st.builds(build, st.integers(-50, 50), st.integers(0, 20), keys)

    def array(items, lo, extra, chosen):
        limits = {"minItems": lo, "maxItems": lo + extra}
        return {"type": "array", "items": items, **{k: limits[k] for k in chosen}}

    leaf = st.one_of(
        numeric("integer"),
        numeric("number"),
        st.builds(
            lambda lo, extra: {"type": "string", "minLength": lo, "maxLength": lo + extra},
            st.integers(0, 5),
            st.integers(0, 30),
        ),
        st.just({"type": "boolean"}),
        st.lists(st.one_of(st.integers(), names), min_size=1, max_size=4, unique=True).map(
            lambda e: {"enum": e}
        ),
        st.just({"type": ["string", "null"]}),
    )
    if depth == 0:
        return leaf
    inner = _schemas(depth - 1)
    return st.one_of(
        leaf,
        st.builds(
            lambda items, lo, extra: {
                "type": "array",
                "items": items,
                "minItems": lo,
                "maxItems": lo + extra,
            },
            inner,
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        st.builds(
            lambda props: {
                "type": "object",
                "properties": props,
                "required": sorted(props),
                "additionalProperties": False,
            },
            st.dictionaries(names, inner, max_size=4),
        ),
        st.builds(lambda opts: {"anyOf": opts}, st.lists(inner, min_size=1, max_size=3)),
    )


@given(_schemas(), st.integers(0, 2**16))
@example({"type": "array", "items": {"type": "integer"}, "maxItems": 0}, 0)
@example({"type": "integer", "exclusiveMinimum": 5, "maximum": 6}, 0)
@example({"type": "number", "exclusiveMinimum": 4.5, "exclusiveMaximum": 5.0}, 0)
@settings(max_examples=300, deadline=None)
def test_random_schemas_get_valid_instances(schema, seed) -> None:
    jsonschema = pytest.importorskip("jsonschema")  # installed with the dev extra (via ray)
    wrapped = {"$defs": {"x": schema}, "type": "object", "properties": {"v": {"$ref": "#/$defs/x"}}}
    jsonschema.validate(instance(wrapped, random.Random(seed)), wrapped)
    jsonschema.validate(instance(schema, random.Random(seed)), schema)
