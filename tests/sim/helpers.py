"""Clients for the simulator built exactly as the provider adapters build them."""

from __future__ import annotations

from typing import Any

import openai
from google import genai
from google.genai import types

from rewts.sim import SimServer

STRATEGY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["direction", "confidence", "explanation", "key_features"],
    "properties": {
        "direction": {"type": "integer", "enum": [0, 1]},
        "confidence": {"type": "number", "minimum": 1.0, "maximum": 3.0},
        "explanation": {"type": "string"},
        "key_features": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["feature", "impact", "weight"],
                "properties": {
                    "feature": {"type": "string"},
                    "impact": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                    "weight": {"type": "number", "minimum": 0.0, "maximum": 1.0},
                },
            },
        },
    },
}


def openai_client(
    sim: SimServer, key: str = "sk-test-key-0000", timeout: float = 10.0
) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=sim.openai_base_url, api_key=key, max_retries=0, timeout=timeout
    )


def gemini_client(
    sim: SimServer, key: str = "gm-test-key-0000", timeout_s: float = 10.0
) -> genai.Client:
    # HttpRetryOptions(attempts=1), not None: with retry_options=None google-genai's aiohttp
    # transport silently retries a dropped/refused connection once after sleeping 1-10 s,
    # behind the engine's back (verified against the simulator: two requests arrive)
    return genai.Client(
        api_key=key,
        http_options=types.HttpOptions(
            base_url=sim.gemini_base_url,
            timeout=int(timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )


def chat_kwargs(content: str = "Decide for AAPL.", **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a strategist."},
            {"role": "user", "content": content},
        ],
        **extra,
    }


def json_schema_format(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": "strategy", "strict": True, "schema": schema or STRATEGY_SCHEMA},
    }
