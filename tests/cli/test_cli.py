from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rewts.cli import app

runner = CliRunner()
COMMANDS = [
    "data", "strategies", "train", "backtest", "run", "status", "cache", "sim", "calibrate",
    "signal",
]  # fmt: skip


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


@pytest.mark.parametrize(
    ("ic", "message"),
    [("0,1.5", "within [0, 1]"), ("0.1,x", "comma-separated numbers")],
)
def test_calibrate_rejects_a_bad_information_coefficient(workdir, ic, message):
    result = runner.invoke(app, ["calibrate", "--ic", ic])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_calibrate_runs_end_to_end_and_labels_its_files(workdir):
    out = workdir / "cal"
    result = runner.invoke(
        app,
        [
            "calibrate", "--source", "synthetic", "--tickers", "AAPL", "--ic", "0,1",
            "--seeds", "2", "--episodes", "1", "--agents", "llm_only,llm_rl,rl_only",
            "--out", str(out), "--no-progress",
            "--set", "rewts.hidden_dims=[8]", "--set", "rewts.learning_starts=16",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "CALIBRATION" in result.output and "realized IC" in result.output
    for name in ("calibration_runs.csv", "calibration_summary.csv", "calibration_tests.csv"):
        assert (out / name).stat().st_size > 0
    assert "not an LLM" in (out / "README.txt").read_text()
    # the calibration's agents never land where the real agents live
    assert (workdir / "checkpoints" / "calibration").is_dir()
    assert not (workdir / "checkpoints" / "AAPL").exists()


def test_calibrate_passes_draw_per_seed_on_and_says_so_in_its_files(workdir, monkeypatch):
    import pandas as pd

    from rewts.backtest import calibration

    seen = {}

    def fake_run(cfg, dataset, **kwargs):
        seen.update(kwargs)
        runs = pd.DataFrame(
            {"ticker": ["AAPL"] * 2, "ic": [0.5] * 2, "agent": ["llm_only"] * 2, "seed": [0, 1]}
        ).assign(sharpe=[0.1, 0.2])
        realized = pd.DataFrame({"ticker": ["AAPL"], "ic": [0.5], "realized_ic_test": [0.4]})
        return calibration.CalibrationResult(runs, realized, pd.DataFrame())

    monkeypatch.setattr(calibration, "run_calibration", fake_run)
    out = workdir / "cal"
    args = ["calibrate", "--source", "synthetic", "--tickers", "AAPL", "--ic", "0.5"]
    result = runner.invoke(app, [*args, "--draw-per-seed", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert seen["draw_per_seed"] is True
    assert "--draw-per-seed" in (out / "README.txt").read_text()
