"""A sentinel key through success and failure paths never lands in anything written."""

from __future__ import annotations

import json
import logging

import pytest

from rewts.config import Config
from rewts.errors import AuthenticationError, LLMError
from rewts.llm import generate_strategies

from .helpers import fake_dataset
from .mini_server import MiniServer, ok_handler

SENTINEL = "sk-SENTINEL-4f1d9c2e7b"


def _cfg(tmp_path, base_url, on_failure="neutral"):
    return Config.model_validate(
        {
            "tickers": ["AAA"],
            "max_requests_per_second": 1000.0,
            "llm": {
                "provider": "local",
                "model": "m",
                "base_url": base_url,
                "api_key_env": "REWTS_TEST_KEY",
                "cache_path": str(tmp_path / "c.sqlite"),
                "output_dir": str(tmp_path / "out"),
                "on_failure": on_failure,
                "retry": {"initial_s": 0.001, "max_s": 0.01, "max_retries": 1},
            },
        }
    )


def _everything_written(tmp_path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_sentinel_key_never_written_anywhere(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("REWTS_TEST_KEY", SENTINEL)
    caplog.set_level(logging.DEBUG)
    messages = []
    with MiniServer(ok_handler) as ok:
        result = generate_strategies(_cfg(tmp_path, ok.base_url), fake_dataset(("AAA",)))
        assert ok.headers[0]["Authorization"] == f"Bearer {SENTINEL}"  # it was used
    (tmp_path / "summary.json").write_text(json.dumps(result.summary.to_dict()))

    def failing(status):
        def handler(body, headers):
            return status, {"error": {"message": f"bad key {SENTINEL[:10]}...{SENTINEL[-4:]}"}}, {}

        return handler

    for status in (500, 429):
        # every request fails: the run stops naming the reason (never the key)
        with MiniServer(failing(status)) as srv, pytest.raises(LLMError) as failed:
            generate_strategies(_cfg(tmp_path / str(status), srv.base_url), fake_dataset(("AAA",)))
        messages.append(str(failed.value))
    with MiniServer(failing(401)) as srv, pytest.raises(AuthenticationError) as info:
        generate_strategies(_cfg(tmp_path / "401", srv.base_url), fake_dataset(("AAA",)))
    messages.append(str(info.value))
    assert "REWTS_TEST_KEY" in messages[-1]
    blob = _everything_written(tmp_path) + caplog.text.encode() + "".join(messages).encode()
    assert SENTINEL.encode() not in blob
    assert SENTINEL[:10].encode() not in blob
