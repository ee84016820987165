"""The stage commands walk the pipeline's Stage objects: what `rewts data`, `strategies`, `train`
and `signal` build is what `rewts run` and `rewts status` then find (the settings of
``test_run``: one synthetic ticker, two chunks of one episode)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rewts.cli import app
from rewts.pipeline.records import RECORD_FILE

from .test_run import BASE, SMALL, mtimes, status, statuses

runner = CliRunner()
#: BASE as flags every stage command takes (config keys: `data` has no --runs or --episodes)
assert BASE[4:8] == ["--runs", "1", "--episodes", "1"]
STAGE_FLAGS = [
    *BASE[:4],
    *BASE[8:],
    "--set", "backtest.runs=1",
    "--set", "rewts.episodes_per_chunk=1",
]  # fmt: skip
AGENTS = SMALL[1]


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_each_stage_command_leaves_what_run_and_status_reuse(workdir: Path) -> None:
    invoke("data", *STAGE_FLAGS)
    states = status(*SMALL)
    assert states["data"]["state"] == "fresh" and states["strategies"]["state"] == "missing"
    invoke("strategies", *STAGE_FLAGS)
    states = status(*SMALL)
    assert states["strategies"]["state"] == "fresh", states["strategies"]
    invoke("train", *STAGE_FLAGS, "--set", f"backtest.agents=[{AGENTS}]")
    train = status(*SMALL)["train"]
    assert train["state"] == "missing" and "not recorded yet" in train["why"], train
    result = runner.invoke(app, ["run", *STAGE_FLAGS, *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert statuses(summary)["data"] == statuses(summary)["strategies"] == "skipped"
    # `rewts train` trained the one variant asked for: the run's train stage finds every
    # agent it needs already trained and trains none
    assert summary["training"]["trained"] == 0 and summary["training"]["reused"] >= 1


def test_strategies_are_made_when_asked_even_if_no_agent_reads_them(workdir: Path) -> None:
    out = invoke("strategies", *STAGE_FLAGS, "--set", "backtest.agents=[buy_and_hold,rl_only]")
    folder = workdir / "data" / "strategies"
    assert (folder / "AAPL.parquet").is_file() and (folder / RECORD_FILE).is_file()
    assert "strategies written to" in out
    # `rewts run` with agents that read them does not make them again
    assert status(*SMALL)["strategies"]["state"] == "fresh"


def test_signal_stores_no_tables_and_no_record(workdir: Path) -> None:
    folder = workdir / "data" / "strategies"
    result = runner.invoke(app, ["run", *STAGE_FLAGS, *SMALL, "--no-html"])
    assert result.exit_code == 0, result.output
    record = (folder / RECORD_FILE).read_bytes()
    (folder / RECORD_FILE).unlink()  # stale now: the signal must make the tables itself
    before = mtimes(folder, "*")
    signal = json.loads(invoke("signal", *STAGE_FLAGS, *SMALL, "--json"))
    assert signal["tickers"][0]["strategy"]["provider"] == "heuristic"
    assert mtimes(folder, "*") == before and not (folder / RECORD_FILE).exists()
    (folder / RECORD_FILE).write_bytes(record)
    assert status(*SMALL)["strategies"]["state"] == "fresh"
