"""`rewts strategies` and `rewts cache` through the CLI."""

from __future__ import annotations

import json
import time

import pandas as pd
from typer.testing import CliRunner

from rewts.cli import app
from rewts.llm.cache import StrategyCache

runner = CliRunner()


def test_strategies_in_an_empty_folder_with_the_heuristic(workdir, shared_data):
    args = [
        "strategies",
        "--data-dir",
        str(shared_data),
        "--tickers",
        "AAPL",
        "--provider",
        "heuristic",
        "--no-progress",
        "--out",
        "strat",
        "--json",
        "--json-summary",
        "s.json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "NOT an LLM" in result.output
    assert "Progress:" in result.output and "Cache hits" in result.output
    df = pd.read_parquet(workdir / "strat" / "AAPL.parquet")
    assert len(df) > 50 and (df["provider"] == "heuristic").all()
    assert (workdir / "strat" / "AAPL.json").is_file()
    summary = json.loads((workdir / "s.json").read_text())
    assert summary["total"] == len(df) and summary["api_calls"] == 0


def test_missing_key_exits_at_once_naming_the_variable(workdir, shared_data):
    t0 = time.monotonic()
    result = runner.invoke(
        app,
        [
            "strategies",
            "--data-dir",
            str(shared_data),
            "--tickers",
            "AAPL",
            "--provider",
            "deepseek",
            "--no-progress",
        ],
    )
    assert result.exit_code == 4
    assert "set DEEPSEEK_API_KEY" in result.output and "Traceback" not in result.output
    assert time.monotonic() - t0 < 5
    assert not (workdir / "data" / "strategies").exists()


def test_cache_commands(workdir):
    path = workdir / "c.sqlite"
    with StrategyCache(path) as cache:
        for i, pv in enumerate(["v0", "v1", "v1"]):
            cache.put(
                f"k{i}",
                provider="p",
                model="m",
                prompt_version=pv,
                settings={},
                messages=[{"role": "user", "content": str(i)}],
                response_text="{}",
                strategy_json="{}",
            )
    r = runner.invoke(app, ["cache", "stats", "--cache", str(path)])
    assert r.exit_code == 0 and '"entries": 3' in r.output
    r = runner.invoke(app, ["cache", "export", "--cache", str(path), "-o", "x.parquet"])
    assert r.exit_code == 0 and len(pd.read_parquet(workdir / "x.parquet")) == 3
    r = runner.invoke(app, ["cache", "export", "--cache", str(path), "-o", "x.json"])
    assert r.exit_code == 0 and len(json.loads((workdir / "x.json").read_text())) == 3
    r = runner.invoke(
        app, ["cache", "prune", "--cache", str(path), "--prompt-version", "v0", "--yes"]
    )
    assert r.exit_code == 0 and "removed 1" in r.output
    r = runner.invoke(app, ["cache", "prune", "--cache", str(path)])
    assert r.exit_code == 2 and "--older-than" in r.output
    r = runner.invoke(app, ["cache", "clear", "--cache", str(path), "--yes"])
    assert r.exit_code == 0 and "removed 2" in r.output
    r = runner.invoke(app, ["cache", "nope", "--cache", str(path)])
    assert r.exit_code == 2
