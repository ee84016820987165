"""Tables shaped like the paper's Tables VII (Sharpe) and VIII (max drawdown).

Rows are tickers plus a final "Mean" row, columns are agents, cells "mean ± std" over runs.
The Mean row averages the per-ticker means (as the paper does) and the per-ticker stds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from rewts.backtest.result import BacktestResult, agent_label
from rewts.metrics import HIGHER_IS_BETTER, aggregate_runs

#: the two metrics of the paper's tables, and their titles
PAPER_TABLES: dict[str, str] = {
    "sharpe": "Sharpe ratio (Table VII shape): mean ± std over runs",
    "max_drawdown": "Max drawdown (Table VIII shape): mean ± std over runs",
}


def print_wide(console: Console, renderable: Any) -> None:
    """Print a table; piped or redirected, at its natural width instead of 80 columns."""
    if console.is_terminal:
        console.print(renderable)
        return
    natural = console.measure(renderable, options=console.options.update(width=10_000)).maximum
    previous = console.width
    console.width = max(previous, natural)
    try:
        console.print(renderable)
    finally:
        console.width = previous


def summary_table(result: BacktestResult, metrics: list[str]) -> pd.DataFrame:
    """Mean, std and count of ``metrics`` per ticker and agent over runs."""
    table = result.metrics_table()
    return aggregate_runs(table, metrics=metrics)


def _cell(mean: float, std: float, n_runs: int) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if n_runs < 2 or not math.isfinite(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


def paper_table(result: BacktestResult, metric: str) -> pd.DataFrame:
    """Tickers × agents of "mean ± std" strings for one metric, with a final Mean row."""
    summary = summary_table(result, [metric])
    agents = result.agents()
    rows: dict[str, dict[str, str]] = {}
    means: dict[str, list[float]] = {a: [] for a in agents}
    stds: dict[str, list[float]] = {a: [] for a in agents}
    runs: dict[str, list[int]] = {a: [] for a in agents}
    for ticker in result.tickers():
        row = {}
        for agent in agents:
            hit = summary[(summary.ticker == ticker) & (summary.agent == agent)]
            if hit.empty:
                row[agent_label(agent)] = ""
                continue
            m, s, n = (
                float(hit[f"{metric}_mean"].iloc[0]),
                float(hit[f"{metric}_std"].iloc[0]),
                int(hit[f"{metric}_n"].iloc[0]),
            )
            row[agent_label(agent)] = _cell(m, s, n)
            means[agent].append(m)
            stds[agent].append(s)
            runs[agent].append(n)
        rows[ticker] = row
    mean_row = {}
    for agent in agents:
        vals = [v for v in means[agent] if math.isfinite(v)]
        if not vals:
            mean_row[agent_label(agent)] = ""
            continue
        finite_stds = [v for v in stds[agent] if math.isfinite(v)]
        mean_row[agent_label(agent)] = _cell(
            float(np.mean(vals)),
            float(np.mean(finite_stds)) if finite_stds else math.nan,
            min(runs[agent]),
        )
    rows["Mean"] = mean_row
    return pd.DataFrame.from_dict(rows, orient="index")


#: the columns of the generalization table: (diagnostic key, heading)
FIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("train_sharpe", "Sharpe train"),
    ("validation_sharpe", "Sharpe valid."),
    ("sharpe", "Sharpe test"),
    ("train_accuracy", "Acc. train"),
    ("validation_accuracy", "Acc. valid."),
    ("test_accuracy", "Acc. test"),
    # the share of test days whose position tau decided (backtest.agents.tau_decided)
    ("test_tau_decided", "Tau decided test"),
)


def generalization_table(result: BacktestResult, *, by_ticker: bool = True) -> pd.DataFrame:
    """Per learned agent (and ticker): greedy Sharpe and direction accuracy on its training
    days, its validation days and the test, mean over runs (the overfitting gap at a glance).

    Training and validation columns are empty for the ReWTS ensemble (its members trained on
    different chunks) and for agents trained without validation.
    """
    diag = pd.DataFrame(
        [{"ticker": t, "agent": a, "run": r, **d} for (t, a, r), d in result.diagnostics.items()]
    )
    table = result.metrics_table()
    if diag.empty or table.empty:
        return pd.DataFrame()
    merged = diag.merge(table[["ticker", "agent", "run", "sharpe"]], on=["ticker", "agent", "run"])
    keys = ["ticker", "agent"] if by_ticker else ["agent"]
    columns = [c for c, _ in FIT_COLUMNS if c in merged.columns]
    out = merged.groupby(keys, sort=False)[columns].mean().reset_index()
    order = {a: i for i, a in enumerate(result.agents())}
    out = out.sort_values(
        [*(["ticker"] if by_ticker else []), "agent"],
        key=lambda c: (
            c.map(order)
            if c.name == "agent"
            else c.map({t: i for i, t in enumerate(result.tickers())})
        ),
        kind="stable",
    )
    out["agent"] = out["agent"].map(agent_label)
    return out.rename(columns=dict(FIT_COLUMNS)).reset_index(drop=True)


GENERALIZATION_TITLE = (
    "Generalization: greedy policy on training, validation and test days (mean over tickers "
    "and runs)"
)


def generalization_rich(frame: pd.DataFrame) -> Table:
    """The generalization table (:func:`generalization_table`, or its records) for a terminal."""
    table = Table(title=GENERALIZATION_TITLE, title_justify="left")
    for col in frame.columns:
        table.add_column(
            col, justify="left" if col in ("agent", "ticker") else "right", no_wrap=True
        )
    for _, row in frame.iterrows():
        table.add_row(
            *[
                str(v)
                if isinstance(v, str)
                else ("n/a" if v is None or not math.isfinite(float(v)) else f"{float(v):.2f}")
                for v in row
            ]
        )
    return table


def print_generalization(result: BacktestResult, console: Console) -> None:
    """The generalization table for the terminal: one row per learned agent, mean over tickers
    and runs."""
    frame = generalization_table(result, by_ticker=False)
    if not frame.empty:
        print_wide(console, generalization_rich(frame))


def best_agents(result: BacktestResult, metric: str) -> dict[str, str]:
    """Per ticker, the label of the agent with the best mean (leak sanity excluded)."""
    summary = summary_table(result, [metric])
    summary = summary[summary.agent != "leak_sanity"]
    higher = HIGHER_IS_BETTER.get(metric, True)
    best = {}
    for ticker, group in summary.groupby("ticker", sort=False):
        col = group[f"{metric}_mean"]
        if col.notna().any():
            idx = col.idxmax() if higher else col.idxmin()
            best[str(ticker)] = agent_label(str(group.loc[idx, "agent"]))
    return best


#: compact column names for the terminal (the HTML and JSON keep the full names)
SHORT_LABELS: dict[str, str] = {
    "Buy & Hold": "B&H",
    "Global LLM+RL": "Global",
    "ReWTS ensemble": "ReWTS",
    "Placebo: tau constant": "Pl.const",
    "Placebo: tau shuffled": "Pl.shuffle",
    "Sanity: leaked return": "Leak",
}


def print_paper_tables(result: BacktestResult, console: Console) -> None:
    """The two paper-shaped tables and the paired test, for the terminal (stdout).

    Cells never wrap: when stdout is not a terminal (a pipe, a file) the table is printed at
    its natural width instead of being squeezed into 80 columns.
    """
    for metric, title in PAPER_TABLES.items():
        frame = paper_table(result, metric)
        best = best_agents(result, metric)
        table = Table(title=title, title_justify="left")
        table.add_column("Ticker", style="bold", no_wrap=True)
        for col in frame.columns:
            table.add_column(SHORT_LABELS.get(col, col), justify="right", no_wrap=True)
        last_ticker = frame.index[-2] if len(frame) > 1 else None
        for ticker, row in frame.iterrows():
            cells = []
            for col in frame.columns:
                text = str(row[col])
                cells.append(f"[bold green]{text}[/]" if best.get(str(ticker)) == col else text)
            table.add_row(str(ticker), *cells, end_section=ticker == last_ticker)
        print_wide(console, table)
    print_generalization(result, console)
    shown = [c for c in SHORT_LABELS if c in set(paper_table(result, "sharpe").columns)]
    if shown:
        console.print("columns: " + "; ".join(f"{SHORT_LABELS[c]} = {c}" for c in shown))
    for test in result.tests:
        console.print(test.describe())
    for note in result.notes:
        console.print(f"note: {note}")
