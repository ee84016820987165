"""The run summary and status rendering, on a captured console."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from rewts.pipeline import RunSummary, StageOutcome, StageState
from rewts.ui.run_summary import StageLines, print_run_summary, print_status


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=100, color_system=None), buf


def test_stage_lines_print_reasons_literally():
    console, buf = _console()
    lines = StageLines(console)
    lines(StageOutcome("train", "running", "changed: rewts.hidden_dims [64]"))
    lines(StageOutcome("train", "done", "changed: rewts.hidden_dims [64]", seconds=2.5))
    text = buf.getvalue()
    assert "[3/5] train      running (changed: rewts.hidden_dims [64])" in text
    assert "done (changed: rewts.hidden_dims [64]) in 2.5 s" in text


def test_summary_fits_one_screen_and_names_the_report():
    stages = [
        StageOutcome("data", "skipped", "inputs unchanged", details={"source": "csv", "tickers": ["AAPL"]}),
        StageOutcome("strategies", "skipped", "inputs unchanged"),
        StageOutcome("train", "skipped", "inputs unchanged"),
        StageOutcome("backtest", "done", "changed: backtest.rebalance_every", 3.0),
        StageOutcome("report", "done", "backtest output changed", 1.0),
    ]  # fmt: skip
    summary = RunSummary(
        run_dir=Path("results/quick"),
        stages=stages,
        wall_s=5.0,
        strategies={"provider": "heuristic", "total": 40, "reused": 40, "llm": False},
        training={"agents": 4, "trained": 0, "reused": 4, "earlier_train_seconds": 12.0},
        report=Path("results/quick/report.html"),
        paper_tables={
            "sharpe": {
                "AAPL": {"Buy & Hold": "1.11", "ReWTS ensemble": "0.76"},
                "Mean": {"Buy & Hold": "1.11", "ReWTS ensemble": "0.76"},
            },
        },
        notes=["The strategies come from the heuristic. More detail follows here."],
    )
    console, buf = _console()
    print_run_summary(summary, console)
    text = buf.getvalue()
    assert len(text.splitlines()) <= 30
    assert "40 strategies (reused from the last run: 40)" in text and "NOT an LLM" in text
    assert "4 agents, all reused (training them took 12.0 s" in text
    assert "Table VII" in text and "ReWTS" in text and "0.76" in text
    assert "note: The strategies come from the heuristic (details in the report)" in text
    assert "report: results/quick/report.html" in text


def test_status_says_what_a_run_would_do():
    console, buf = _console()
    print_status(
        [
            StageState("data", "fresh", "inputs unchanged"),
            StageState("strategies", "stale", "changed: strategy_frequency"),
            StageState("train", "missing", "not built yet"),
        ],
        console,
    )
    text = buf.getvalue()
    assert "changed: strategy_frequency" in text
    assert "`rewts run` would run: strategies, train" in text
