"""What ``rewts run`` and ``rewts status`` show: the stage overview, the one-screen summary,
and the status table. Rendering only; the facts come from :mod:`rewts.pipeline`.

Stage lines go to stderr as the stages start and end (a live table would fight the training
and strategy displays for the terminal); the summary and tables go to stdout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rewts.pipeline import STAGES, RunSummary, StageOutcome, StageState
from rewts.report.tables import SHORT_LABELS, generalization_rich, print_wide

_STYLE = {
    "done": "green",
    "skipped": "cyan",
    "running": "yellow",
    "not needed": "dim",
    "fresh": "green",
    "stale": "yellow",
    "missing": "red",
}
_TITLES = {
    "sharpe": "Sharpe ratio (Table VII), mean ± std over runs",
    "max_drawdown": "Max drawdown (Table VIII), mean ± std over runs",
}


def _position(stage: str) -> str:
    return f"[{STAGES.index(stage) + 1}/{len(STAGES)}]" if stage in STAGES else "[-]"


class StageLines:
    """``on_stage`` callback: one line per stage start and outcome, on ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, outcome: StageOutcome) -> None:
        status = outcome.status
        text = escape(f"{status}{f' ({outcome.why})' if outcome.why else ''}")
        took = f" in {outcome.seconds:.1f} s" if status == "done" else ""
        self.console.print(
            f"{_position(outcome.stage)} {outcome.stage:<10} [{_STYLE.get(status, '')}]{text}[/]"
            f"{took}",
            highlight=False,
        )


def _stage_table(outcomes: Sequence[StageOutcome]) -> Table:
    table = Table(title="stages", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("stage", style="bold")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("why / what")
    for o in outcomes:
        what = o.why or ""
        if o.stage == "data" and o.details:
            what = f"{o.details.get('source')}, {len(o.details.get('tickers', []))} tickers"
            what += f"; {o.why}" if o.why else ""
        table.add_row(
            o.stage,
            f"[{_STYLE.get(o.status, '')}]{o.status}[/]",
            f"{o.seconds:.1f} s" if o.status == "done" else "-",
            escape(what),
        )
    return table


def strategies_line(s: Mapping[str, Any] | None) -> str:
    """Strategies generated and cached, API calls and cost, in one line."""
    if s is None:
        return "strategies: not needed"
    who = f"{s.get('provider')} ({s.get('model')})"
    if not s.get("llm", True):
        who = "heuristic rules (NOT an LLM: set an API key or --provider for one)"
    if s.get("reused"):
        how = f"reused from the last run: {s.get('reused')}"
    elif s.get("provider") == "import":
        how = f"imported from {s.get('import_path')}"
    else:
        how = f"{s.get('generated', 0)} generated, {s.get('cache_hits', 0)} from the cache"
    fallbacks = f", {s.get('fallbacks')} fallback(s)" if s.get("fallbacks") else ""
    total, analyses = int(s.get("total") or 0), int(s.get("analyses") or 0)
    what = f"{total - analyses} strategies"
    if analyses:
        what += f" + {analyses} news analyses"
    news = f" | news: {s['news']}" if s.get("news") else ""
    return (
        f"strategies: {what} ({how}{fallbacks}) | {who} | API calls "
        f"{s.get('api_calls', 0)} | cost ${float(s.get('cost_usd') or 0.0):.4f}{news}"
    )


def training_line(t: Mapping[str, Any] | None) -> str:
    if t is None:
        return "training: not needed"
    if not t.get("trained") and t.get("earlier_train_seconds") is not None:
        return (
            f"training: {t.get('agents', 0)} agents, all reused (training them took "
            f"{float(t.get('earlier_train_seconds') or 0.0):.1f} s summed over agents)"
        )
    return (
        f"training: {t.get('agents', 0)} agents, {t.get('trained', 0)} trained this run "
        f"({float(t.get('train_seconds') or 0.0):.1f} s summed over agents), "
        f"{t.get('reused', 0)} reused from earlier runs"
    )


def paper_table(metric: str, table: Mapping[str, Mapping[str, str]]) -> Table:
    """A ``metrics.json`` paper table (ticker -> agent label -> cell) for the terminal."""
    out = Table(title=_TITLES.get(metric, metric), title_justify="left")
    agents: list[str] = []
    for row in table.values():
        agents.extend(a for a in row if a not in agents)
    out.add_column("Ticker", style="bold", no_wrap=True)
    for agent in agents:
        out.add_column(SHORT_LABELS.get(agent, agent), justify="right", no_wrap=True)
    for i, (ticker, row) in enumerate(table.items()):
        out.add_row(ticker, *(row.get(a, "") for a in agents), end_section=i == len(table) - 2)
    return out


def _first_sentence(note: str, limit: int = 240) -> str:
    head = note.split(": ", 1)[0] if note.startswith("Sanity") else note.split(". ", 1)[0]
    head = head.rstrip(".")
    return head if len(head) <= limit else head[: limit - 1] + "…"


def _line(console: Console, text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def print_run_summary(summary: RunSummary, console: Console) -> None:
    """The one-screen summary: stages, strategies, training, the paper tables, the report."""
    print_wide(console, _stage_table(summary.stages))
    _line(console, strategies_line(summary.strategies))
    _line(console, training_line(summary.training))
    for metric in ("sharpe", "max_drawdown"):
        table = summary.paper_tables.get(metric)
        if table:
            print_wide(console, paper_table(metric, table))
    fit = summary.paper_tables.get("generalization")
    if fit:
        print_wide(console, generalization_rich(pd.DataFrame(fit)))
    for note in summary.notes:
        _line(console, f"note: {_first_sentence(note)} (details in the report)")
    _line(console, f"done in {summary.wall_s:.1f} s; results in {summary.run_dir}")
    if summary.report is not None:
        _line(console, f"report: {summary.report}")


def print_status(states: Sequence[StageState], console: Console) -> None:
    """``rewts status``: one row per stage (state, why, where, when)."""
    table = Table(title="rewts status", title_justify="left")
    for col in ("stage", "state", "why", "where", "finished"):
        table.add_column(col, no_wrap=col in ("stage", "state"))
    for s in states:
        table.add_row(
            s.stage,
            f"[{_STYLE.get(s.state, '')}]{s.state}[/]",
            escape(s.why),
            escape(s.where),
            s.finished[:16].replace("T", " "),
        )
    print_wide(console, table)
    pending = [s.stage for s in states if s.state in ("stale", "missing")]
    if pending:
        _line(console, f"`rewts run` would run: {', '.join(pending)}")
    else:
        _line(console, "`rewts run` would skip every stage")
