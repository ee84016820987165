"""The public API of rewts.llm, pinned (other stages code against exactly this)."""

from __future__ import annotations

import inspect

import pytest

import rewts.llm as llm
from rewts.errors import ConfigError


def test_public_names():
    assert set(llm.__all__) == {
        "COLUMNS",
        "GenerationResult",
        "GenerationSummary",
        "Limiter",
        "Outcome",
        "Permit",
        "RateLimiter",
        "generate_strategies",
        "load_strategies",
    }


def test_signatures():
    sig = inspect.signature(llm.generate_strategies)
    assert list(sig.parameters)[:2] == ["cfg", "dataset"]
    for name in ("events", "provider", "limiter", "write", "write_json"):
        assert sig.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(llm.load_strategies).parameters) == ["cfg"]
    summary = llm.GenerationSummary().to_dict()
    for key in (
        "total",
        "generated",
        "cache_hits",
        "cache_misses",
        "api_calls",
        "retries",
        "http_429",
        "failures",
        "fallbacks",
        "wall_s",
        "tokens_in",
        "tokens_out",
        "cost_usd",
    ):
        assert key in summary


def test_unknown_prompt_version_is_a_config_error():
    from rewts.llm.prompts import system_message

    with pytest.raises(ConfigError, match=r"llm\.prompt_version"):
        system_message("v9")
