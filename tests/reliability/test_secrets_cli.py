"""A sentinel key through ``rewts strategies`` on every path, for the OpenAI-compatible and
the Gemini provider against the simulator: success, wrong key (401/400), 429s, 5xx, time-outs,
the daily quota and an unreachable server, all with ``--debug`` (DEBUG
logs of the SDKs and tracebacks on). Then everything written (cache with its -wal/-shm, strategy
tables, JSON summaries, processed data), everything printed and every log record is searched
for the key and for a recognizable piece of it. (``kill -9`` and Ctrl-C with a sentinel key:
tests/reliability/test_crash_strategies.py.)

The simulator is told the sentinel is the one valid key, so a successful run proves the key
really went over the wire (a test that never sent it could not fail).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewts.cli import app
from rewts.sim import SimConfig, SimServer

pytestmark = pytest.mark.slow

SENTINELS = {
    "openai": ("OPENAI_API_KEY", "sk-SENTINEL-rewts-7f3a91c0d2e4b6"),
    "gemini": ("GEMINI_API_KEY", "AIzaSENTINELrewts55e0c1b7a9d3f2"),
}
MODELS = {"openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}

#: name -> (simulator settings, extra CLI args, expected exit code)
PATHS = {
    "success": ({}, [], 0),
    "wrong-key": ({"api_key": "sk-some-other-key"}, [], 4),
    "429": ({"rpm_limit": 1, "window_s": 0.3, "retry_after": False}, [], 0),
    "5xx": ({"error_rate": 1.0}, [], 4),  # every request failed: exit 4, not a table of fallbacks
    "timeout": ({"hang_rate": 1.0, "hang_s": 5.0}, ["--set", "llm.timeout_s=0.2"], 4),
    "quota": ({"rpd_limit": 2}, [], 5),
}


def _args(provider: str, base_url: str, *extra: str) -> list[str]:
    return [
        "strategies",
        "--source", "synthetic",
        "--tickers", "AAA",
        "--provider", provider,
        "--model", MODELS[provider],
        "--base-url", base_url,
        "--rps", "50",
        "--no-progress",
        "--debug",
        "--json",
        "--json-summary", "summary.json",
        "--set", "data.start_date=2020-07-01",
        "--set", "llm.retry.initial_s=0.01",
        "--set", "llm.retry.max_s=0.02",
        "--set", "llm.retry.max_retries=1",
        *extra,
    ]  # fmt: skip


def _base_url(sim: SimServer, provider: str) -> str:
    return sim.openai_base_url if provider == "openai" else sim.gemini_base_url


def _written(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _assert_clean(blob: bytes, key: str) -> None:
    for piece in (key, key[:12], key[-10:]):
        assert piece.encode() not in blob, f"{piece!r} leaked"


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_sentinel_key_never_written_printed_or_logged(provider, tmp_path, monkeypatch, caplog):
    var, key = SENTINELS[provider]
    for other in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(var, key)
    caplog.set_level(logging.DEBUG)
    printed = []
    for name, (settings, extra, code) in PATHS.items():
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.chdir(folder)
        sim_settings = {"latency_s": 0.0, "api_key": key, **settings}
        with SimServer(SimConfig(**sim_settings)) as sim:
            result = CliRunner().invoke(app, _args(provider, _base_url(sim, provider), *extra))
            stats = sim.stats(log=False)
        assert result.exit_code == code, (name, result.output)
        if name == "success":
            assert stats["by_status"].get("200", 0) > 0  # the key was accepted: it was sent
            assert (folder / "summary.json").is_file()
        seen = {"429": stats["http_429"], "5xx": stats["http_5xx"]}
        seen["timeout"] = stats["faults"].get("hang", 0) + stats["faults"].get("client_gone", 0)
        assert seen.get(name, 1) > 0, (name, stats)  # the failure path really happened
        printed.append(result.output)
        if result.exception is not None:
            printed.append(repr(result.exception))
    # an unreachable server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    folder = tmp_path / "unreachable"
    folder.mkdir()
    monkeypatch.chdir(folder)
    base = dead + ("/v1" if provider == "openai" else "")
    result = CliRunner().invoke(app, _args(provider, base))
    assert result.exit_code == 4, result.output
    printed.append(result.output)
    monkeypatch.chdir(tmp_path)
    blob = _written(tmp_path) + "\n".join(printed).encode() + caplog.text.encode()
    assert len(caplog.records) > 50  # the SDKs' DEBUG logs were really on
    _assert_clean(blob, key)


def test_a_key_inside_the_base_url_is_never_stored_printed_or_logged(tmp_path, monkeypatch, caplog):
    """``--base-url http://user:KEY@host/v1``: the connection uses it; the cache's provider
    column, ``cache stats``, ``cache export``, the stage records, the summary and the DEBUG
    request logs show the URL without it."""
    key = "sk-URLSENTINEL-rewts-4c1d9e02ab"
    for other in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.delenv(other, raising=False)
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    printed = []
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        host = sim.openai_base_url.split("://", 1)[1]
        url = f"http://rewts:{key}@{host}"
        args = _args("openai", url)
        args[args.index("--provider") + 1] = "local"
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert sim.stats(log=False)["by_status"].get("200", 0) > 0
        printed.append(result.output)
    cache = ["--cache", "cache/strategies.sqlite"]
    for extra in (["stats"], ["export", "-o", "export.json"]):
        result = CliRunner().invoke(app, ["cache", *extra, *cache])
        assert result.exit_code == 0, result.output
        printed.append(result.output)
    assert "127.0.0.1" in printed[1]  # the provider column is there, without the key
    # a dead server with the key in the URL's query and user part: the error line is clean
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://rewts:{key}@127.0.0.1:{s.getsockname()[1]}/v1?api_key={key}"
    args = _args("openai", dead)
    args[args.index("--provider") + 1] = "local"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 4, result.output
    printed.append(result.output)
    blob = _written(tmp_path) + "\n".join(printed).encode() + caplog.text.encode()
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # request lines on
    _assert_clean(blob, key)
