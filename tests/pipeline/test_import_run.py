"""Imported strategies through the whole pipeline: a round trip reproduces the original run's
metrics exactly, and a changed file retrains only the agents whose days it changed.

The tiny run of ``test_run`` (one synthetic ticker, two chunks of one episode, a 16-unit
network, in-process): a few CPU-seconds per run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from rewts.cli import app

from .test_run import STAGES, TINY, statuses

runner = CliRunner()
#: the data flags of TINY (what `rewts strategies import/export` take)
DATA = [
    *TINY[: TINY.index("--runs")],
    "--set", "data.start_date=2016-01-01", "--set", "data.end_date=2018-12-31",
]  # fmt: skip


def run(folder: Path, *extra: str) -> dict:
    os.chdir(folder)
    result = runner.invoke(app, ["run", *TINY, "--no-html", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def metrics(folder: Path) -> list[dict]:
    return json.loads((folder / "results" / "default" / "metrics.json").read_text())["metrics"]


def imported(path: Path) -> list[str]:
    return ["--provider", "import", "--set", f"llm.import_path={path}"]


def test_export_then_import_in_a_fresh_folder_gives_the_same_metrics(workdir):
    original, fresh, again = workdir / "original", workdir / "fresh", workdir / "again"
    for folder in (original, fresh, again):
        folder.mkdir()
    first = run(original)
    assert first["strategies"]["provider"] == "heuristic"
    table = pd.read_parquet(original / "data" / "strategies" / "AAPL.parquet")

    # `rewts strategies export`, then `import` in a folder that has nothing yet
    exported = workdir / "exported.csv"
    result = runner.invoke(app, ["strategies", "export", str(exported), *DATA])
    assert result.exit_code == 0, result.output
    assert f"exported {len(table)} strategies (AAPL)" in result.output
    os.chdir(fresh)
    result = runner.invoke(app, ["strategies", "import", str(exported), *DATA])
    assert result.exit_code == 0, result.output
    assert f"AAPL: {len(table)} of {len(table)} periods imported" in result.output
    second = run(fresh, *imported(exported))
    # the import command did the strategies stage: `run` reuses it, generates nothing
    assert statuses(second)["strategies"] == "skipped"
    assert second["strategies"]["provider"] == "import"
    assert second["strategies"]["api_calls"] == 0
    assert any("imported from" in note for note in second["notes"])
    mine = pd.read_parquet(fresh / "data" / "strategies" / "AAPL.parquet")
    assert (mine["tau"].to_numpy() == table["tau"].to_numpy()).all()
    assert metrics(fresh) == metrics(original)

    # the Parquet the stage writes is an import file too; `run` imports it by itself
    third = run(again, *imported(original / "data" / "strategies" / "AAPL.parquet"))
    assert statuses(third)["strategies"] == "done"
    assert metrics(again) == metrics(original)
    status = runner.invoke(
        app, ["status", *TINY, *imported(original / "data" / "strategies" / "AAPL.parquet")]
    )
    assert status.exit_code == 0 and "stale" not in status.stdout


def flip(table: pd.DataFrame, rows) -> None:
    """Reverse the strategies of ``rows`` (tau and direction agree, or the import refuses)."""
    table.loc[rows, "tau"] = -table.loc[rows, "tau"]
    table.loc[rows, "direction"] = 1 - table.loc[rows, "direction"]


def test_a_changed_file_retrains_only_what_it_changes(workdir):
    first = run(workdir)
    source = workdir / "data" / "strategies" / "AAPL.parquet"
    path = workdir / "mine.parquet"
    pd.read_parquet(source).to_parquet(path)
    second = run(workdir, *imported(path))
    # same decisions as the heuristic's: nothing downstream of the strategies reruns
    assert statuses(second) == {"data": "skipped", "strategies": "done"} | dict.fromkeys(
        STAGES[2:], "skipped"
    ) | {"report": "not needed"}
    assert second["training"]["trained"] == 0

    table = pd.read_parquet(path)
    # a period of the test year: no agent trained on it, only the backtest reruns
    summer = table.index[table["start"] >= pd.Timestamp("2018-06-01")][0]
    assert table.loc[summer, "tau"] != 0
    flip(table, table.index == summer)
    table.to_parquet(path)
    third = run(workdir, *imported(path))
    assert statuses(third)["strategies"] == "done" and statuses(third)["train"] == "done"
    assert third["training"]["trained"] == 0
    assert statuses(third)["backtest"] == "done"

    # a period late in 2017: the last chunk and the global agent saw it (RL-only reads no tau,
    # the first chunk's days end before it): 2 of the 4 agents retrain
    late = table["start"].between(pd.Timestamp("2017-11-01"), pd.Timestamp("2017-12-15"))
    assert late.sum() >= 1
    flip(table, late.to_numpy())
    table.to_parquet(path)
    fourth = run(workdir, *imported(path))
    assert fourth["training"]["trained"] == 2 and fourth["training"]["agents"] == 4
    assert first["training"]["agents"] == 4
