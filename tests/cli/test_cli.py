from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rewts.cli import app

runner = CliRunner()
COMMANDS = ["data", "strategies", "train", "backtest", "run", "status", "cache", "sim"]


def test_root_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--config" in result.output
    assert "--debug" in result.output


@pytest.mark.parametrize("command", ["data", "strategies", "train", "backtest", "run", "status"])
def test_bad_set_is_one_clear_line_without_traceback(command, workdir):
    result = runner.invoke(app, [command, "--set", "rewts.gama=0.9"])
    assert result.exit_code == 2
    assert "rewts.gama: unknown key" in result.output
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(workdir):
    result = runner.invoke(app, ["train", "--set", "rewts.gama=0.9", "--debug"])
    assert result.exit_code == 2
    assert "Traceback" in result.output


@pytest.mark.parametrize("command", ["train", "backtest", "run"])
def test_later_stages_accept_earlier_stage_flags(command, workdir):
    result = runner.invoke(app, [command, "--tickers", "AAPL", "--provider", "nope"])
    assert result.exit_code == 2
    assert "llm.provider = 'nope'" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert "rewts" in result.output


@pytest.mark.parametrize("command", ["strategies", "train", "backtest", "run"])
def test_stage_commands_take_the_data_dates_and_an_env_file(command, workdir):
    dates = runner.invoke(app, [command, "--start", "2019-01-01", "--end", "2018-01-01"])
    assert dates.exit_code == 2 and "end_date (2018-01-01) must be after" in dates.output
    env = runner.invoke(app, [command, "--env-file", "nope.env"])
    assert env.exit_code == 2 and "--env-file = 'nope.env': file not found" in env.output
