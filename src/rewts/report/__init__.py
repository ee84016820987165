"""Rendering a backtest's results: files under ``results/<run>/``, the terminal tables, HTML.

No computation happens here beyond formatting: the numbers come from
:class:`rewts.backtest.result.BacktestResult`, whose metrics come from :mod:`rewts.metrics`.

Public API::

    write_report(result, out_dir, *, html=True) -> ReportFiles
    print_paper_tables(result, console)
    paper_table(result, metric) -> pd.DataFrame
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rewts.backtest.result import BacktestResult
from rewts.fileio import atomic_write, write_text_atomic
from rewts.metrics import METRIC_NAMES
from rewts.report.html import CONVENTIONS, render_html
from rewts.report.tables import (
    generalization_table,
    paper_table,
    print_paper_tables,
    summary_table,
)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where the report's files were written."""

    directory: Path
    metrics_csv: Path
    summary_csv: Path
    metrics_json: Path
    daily_csv: Path
    #: ReWTS weights in force each test day (ticker, run, date, one column per chunk)
    weights_csv: Path
    #: one row per QP re-fit (status, fallback reason, objective, solve time, window)
    rebalances_csv: Path
    html: Path | None


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars plain numbers, dates ISO strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


#: report files are ordinary results: the umask decides their mode (the CLI's is 077)
_MODE = 0o666


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False), mode=_MODE)


def _write_frames(frames: list[pd.DataFrame], path: Path) -> None:
    """The frames one below the other, or an empty file when there are none."""
    if frames:
        _write_csv(path, pd.concat(frames, ignore_index=True))
    else:
        write_text_atomic(path, "", mode=_MODE)


def write_report(result: BacktestResult, out_dir: Path, *, html: bool = True) -> ReportFiles:
    """Write ``metrics.csv`` (one row per ticker, agent, run), ``summary.csv`` (mean/std),
    ``metrics.json`` (both, the paired tests, notes and conventions), ``daily.csv`` (every
    agent's daily equity, return and position), ``ensemble_weights.csv`` and
    ``rebalances.csv`` (the ReWTS weights over time and each re-fit), and ``report.html``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = result.metrics_table()
    metrics = [m for m in METRIC_NAMES if m in table.columns]
    summary = summary_table(result, metrics) if not table.empty else pd.DataFrame()
    files = ReportFiles(
        directory=out_dir,
        metrics_csv=out_dir / "metrics.csv",
        summary_csv=out_dir / "summary.csv",
        metrics_json=out_dir / "metrics.json",
        daily_csv=out_dir / "daily.csv",
        weights_csv=out_dir / "ensemble_weights.csv",
        rebalances_csv=out_dir / "rebalances.csv",
        html=out_dir / "report.html" if html else None,
    )
    _write_csv(files.metrics_csv, table)
    _write_csv(files.summary_csv, summary)
    daily = [
        r.frame().assign(ticker=r.ticker, agent=r.agent, run=r.run).reset_index()
        for r in result.runs
    ]
    _write_frames(daily, files.daily_csv)
    weights = [
        w.rename_axis("date").reset_index().assign(ticker=t, run=r)
        for (t, r), w in result.ensemble_weights.items()
    ]
    _write_frames(weights, files.weights_csv)
    rebalances = [reb.assign(ticker=t, run=r) for (t, r), reb in result.rebalances.items()]
    _write_frames(rebalances, files.rebalances_csv)
    payload = {
        "run": result.name,
        "conventions": CONVENTIONS,
        "metrics": table.to_dict(orient="records"),
        "summary": summary.to_dict(orient="records"),
        "paper_tables": {
            m: paper_table(result, m).to_dict(orient="index")
            for m in ("sharpe", "max_drawdown")
            if not table.empty
        },
        "generalization": generalization_table(result, by_ticker=False).to_dict(orient="records"),
        "tests": [t.to_dict() for t in result.tests],
        "diagnostics": [
            {"ticker": t, "agent": a, "run": r, **d} for (t, a, r), d in result.diagnostics.items()
        ],
        "notes": result.notes,
        "memorization": result.memorization,
        "wall_seconds": result.wall_seconds,
        "config": result.config,
    }
    write_text_atomic(
        files.metrics_json,
        json.dumps(_clean(payload), indent=2, allow_nan=False, default=str),
        mode=_MODE,
    )
    if files.html is not None:
        write_text_atomic(files.html, render_html(result), mode=_MODE)
    return files


__all__ = ["ReportFiles", "paper_table", "print_paper_tables", "render_html", "write_report"]
