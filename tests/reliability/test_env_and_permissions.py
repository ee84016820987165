"""API keys from a ``.env`` file the user points to, secrets redacted from what the CLI prints,
and user-only permissions on the cache and the strategy outputs."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rewts.cli import app
from rewts.cli.common import ENV_FILE_VAR, common, load_env_file, user_errors
from rewts.errors import ConfigError, LLMError
from rewts.sim import SimConfig, SimServer

KEY = "sk-ENVFILE-SENTINEL-0b5d2e9a71"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _strategies(sim: SimServer, *extra: str) -> list[str]:
    return [
        "strategies",
        "--source", "synthetic",
        "--tickers", "AAA",
        "--provider", "openai",
        "--model", "gpt-4o-mini",
        "--base-url", sim.openai_base_url,
        "--rps", "100",
        "--no-progress",
        "--set", "data.start_date=2020-07-01",
        *extra,
    ]  # fmt: skip


@pytest.fixture(autouse=True)
def _restore_environ():
    """load_env_file writes os.environ directly (as it must): put it back after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def env_file(workdir: Path) -> Path:
    path = workdir / "keys.env"
    path.write_text(f"# keys\nOPENAI_API_KEY={KEY}\nexport OTHER_SETTING='x y'\n")
    path.chmod(0o600)
    return path


def test_key_from_the_env_file_named_by_rewts_env_file(workdir, env_file, monkeypatch):
    monkeypatch.setenv(ENV_FILE_VAR, str(env_file))
    with SimServer(SimConfig(latency_s=0.0, api_key=KEY)) as sim:  # only this key works
        result = CliRunner().invoke(app, _strategies(sim))
        assert result.exit_code == 0, result.output
        assert sim.stats(log=False)["by_status"].get("200", 0) > 0
    assert "readable by other users" not in result.output
    assert KEY not in result.output


def test_the_environment_wins_over_the_file(workdir, env_file, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-shell-123")
    added = load_env_file(env_file)
    assert os.environ["OPENAI_API_KEY"] == "sk-from-the-shell-123"
    assert "OPENAI_API_KEY" not in added and added["OTHER_SETTING"] == "x y"


def test_env_file_through_common_args(workdir, env_file, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv(ENV_FILE_VAR, raising=False)
    cfg = common(None, ["llm.provider=openai"], None, False, True, env_file=env_file).load()
    assert cfg.llm.provider == "openai" and os.environ["OPENAI_API_KEY"] == KEY


def test_a_missing_env_file_is_a_config_error_naming_the_variable(workdir, monkeypatch):
    monkeypatch.setenv(ENV_FILE_VAR, str(workdir / "nope.env"))
    result = CliRunner().invoke(app, ["data", "--no-progress"])
    assert result.exit_code == ConfigError.exit_code
    assert f"{ENV_FILE_VAR} = " in result.output and "file not found" in result.output


def test_an_env_file_others_can_read_gets_a_warning(workdir, env_file, monkeypatch, caplog):
    env_file.chmod(0o644)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with caplog.at_level(logging.WARNING):
        load_env_file(env_file)
    assert "chmod 600" in caplog.text and KEY not in caplog.text


def test_an_error_message_that_echoes_a_key_is_redacted(monkeypatch, capsys):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", KEY)
    with pytest.raises(typer.Exit), user_errors(debug=False):
        raise LLMError(f"the server said: invalid key {KEY}")
    err = capsys.readouterr().err
    assert "invalid key ***" in err and KEY not in err


def test_the_debug_traceback_is_redacted_too(monkeypatch, capsys):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", KEY)
    with pytest.raises(typer.Exit), user_errors(debug=True):
        raise LLMError(f"the server said: invalid key {KEY}")
    err = capsys.readouterr().err
    assert "Traceback" in err and "LLMError" in err and err.count("invalid key ***") == 2
    assert KEY not in err


def test_log_records_are_redacted_and_the_handler_goes_away(monkeypatch, capsys):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", KEY)
    root = logging.getLogger()
    handlers = list(root.handlers)
    with user_errors(debug=True):
        logging.getLogger("some.sdk").debug("headers: Authorization: Bearer %s", KEY)
    assert root.handlers == handlers  # a second command in this process starts clean
    err = capsys.readouterr().err
    assert "Bearer ***" in err and KEY not in err


def test_markup_like_text_in_an_error_is_printed_as_is(capsys):
    with pytest.raises(typer.Exit), user_errors(debug=False):
        raise ConfigError("tickers = [AAPL] and [bold]x[/bold]")
    assert "tickers = [AAPL] and [bold]x[/bold]" in capsys.readouterr().err


# ------------------------------------------------------------------ permissions


@pytest.fixture
def strategies_run(workdir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        result = CliRunner().invoke(
            app, _strategies(sim, "--json", "--json-summary", "out/summary.json")
        )
    assert result.exit_code == 0, result.output
    return workdir


def test_cache_file_wal_shm_and_its_folder_are_user_only(strategies_run):
    cache = strategies_run / "cache"
    assert _mode(cache) == 0o700
    files = [p for p in cache.iterdir() if p.name.startswith("strategies.sqlite")]
    assert files and all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}


def test_strategy_tables_are_user_only(strategies_run):
    out = strategies_run / "data" / "strategies"
    files = list(out.iterdir())
    assert {p.suffix for p in files} == {".parquet", ".json"}
    assert all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}


def test_json_summary_is_user_only(strategies_run):
    assert _mode(strategies_run / "out" / "summary.json") == 0o600


def test_strategy_folder_is_user_only(strategies_run):
    assert _mode(strategies_run / "data" / "strategies") == 0o700


def test_a_key_written_in_the_config_file_goes_nowhere_else(workdir, monkeypatch, caplog):
    """The seed's ``llm.openai_api_key`` in the YAML: sent (the simulator accepts only it),
    never copied into the cache, the tables, the summary, the output or the DEBUG logs."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    with SimServer(SimConfig(latency_s=0.0, api_key=KEY)) as sim:
        (workdir / "cfg.yaml").write_text(
            "tickers: [AAA]\n"
            "data: {source: synthetic, start_date: 2020-07-01}\n"
            f"llm: {{provider: openai, model: gpt-4o-mini, base_url: '{sim.openai_base_url}', "
            f"openai_api_key: {KEY}}}\n"
        )
        result = CliRunner().invoke(
            app,
            ["strategies", "--config", "cfg.yaml", "--no-progress", "--debug", "--json",
             "--json-summary", "s.json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert sim.stats(log=False)["by_status"].get("200", 0) > 0
    written = b"".join(
        p.read_bytes() for p in workdir.rglob("*") if p.is_file() and p.name != "cfg.yaml"
    )
    blob = written + result.output.encode() + caplog.text.encode()
    assert KEY.encode() not in blob and KEY[:12].encode() not in blob
