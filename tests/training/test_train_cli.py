"""`rewts train` end to end on the real data (RL-only: no strategies needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewts.cli.app import app

runner = CliRunner()


@pytest.mark.slow
def test_train_cli_trains_then_skips(shared_data: Path, workdir: Path) -> None:
    args = [
        "train",
        "--data-dir", str(shared_data),
        "--tickers", "AAPL",
        "--no-llm",
        "--episodes", "1",
        "--jobs", "1",
        "--set", "rewts.hidden_dims=[8]",
        "--set", "rewts.train_global=false",
        "--set", "rewts.learning_starts=200",
        "--set", "rewts.train_freq=8",
        "--no-progress",
    ]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "AAPL" in first.output and "train Sharpe" in first.output
    chunk_dirs = sorted(p.name for p in (workdir / "checkpoints" / "AAPL").iterdir() if p.is_dir())
    # 2012-2017 = 1509 trading days (the warm-up lies in 2010-2011): 3 x 400 + 309
    assert chunk_dirs == ["chunk_0", "chunk_1", "chunk_2", "chunk_3"]
    assert (workdir / "checkpoints" / "AAPL" / "chunk_0" / "rl_s0" / "model.pt").is_file()
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert re.search(r"AAPL\s*│\s*0\s*│\s*4\s*│", second.stdout), second.stdout


def test_train_cli_bad_flag_value_is_a_clear_error(workdir: Path) -> None:
    result = runner.invoke(app, ["train", "--no-llm", "--episodes", "0"])
    assert result.exit_code != 0
    assert "episodes" in result.output
