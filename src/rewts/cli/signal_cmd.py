"""``rewts signal``: each ticker's strategy of the current period and every trained agent's
position for the next trading day, from the data up to the as-of day only."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from rewts.cli.app import app
from rewts.cli.common import out_console
from rewts.cli.options import COMMON, DATA, LLM, TRAINING, CommandArgs, optional, options
from rewts.errors import ConfigError

if TYPE_CHECKING:
    from rewts.signal import TickerSignal

AsofOpt = Annotated[
    str | None,
    optional(
        "--asof",
        help="The day the signal is given on (YYYY-MM-DD; a holiday or weekend means the "
        "trading day before; default: the data's last day); nothing after it is read. Must "
        "lie after the training range.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the signal as JSON.")]


def _asof(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"--asof {value!r}: not a date (expected YYYY-MM-DD)") from None


def _position(value: float) -> str:
    return {1.0: "LONG", -1.0: "SHORT", 0.0: "FLAT"}.get(float(value), f"{value:+.2f}")


@app.command("signal")
@options(DATA, LLM, TRAINING.only("runs", "agents", "episodes"), COMMON)
def signal_command(args: CommandArgs, asof: AsofOpt = None, json_out: JsonOpt = False) -> None:
    """Each ticker's strategy of the current period and every trained agent's position for
    the next trading day (and the ReWTS ensemble's weights), from data up to --asof only.

    Takes the flags of `rewts run`: the agents must be the ones this config and data train
    (else it refuses, naming the agent). Writes nothing but the strategy cache, and only when
    the current period's strategy had to be generated.
    """
    day = _asof(asof)
    cfg = args.load()
    from rewts import pipeline
    from rewts.signal import compute_signal

    # a read-only pass: the tables come from the stage's store when it is fresh, else they
    # are generated (cache hits cost nothing) and handed on without being stored; no display
    # (the signal's output names the strategist: no log warning in the way)
    ctx = pipeline.Context(cfg, read_only=True, events=lambda _event: None)
    pipeline.run_stages(ctx, (pipeline.DATA, pipeline.STRATEGIES))
    report = compute_signal(cfg, ctx.dataset, ctx.tables, asof=day, events=lambda _event: None)
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    for ticker in report.tickers:
        _print_ticker(ticker)


def _print_ticker(t: TickerSignal) -> None:
    estimated = "" if t.next_day_in_data else f" (after the data: {t.next_day_from})"
    out_console.print(
        f"[bold]{t.ticker}[/]: data up to {t.asof}; positions for {t.next_day}{estimated}",
        highlight=False,
    )
    s = t.strategy
    if s is not None:
        direction = s.get("direction") or "none"
        out_console.print(
            f"  strategy of period {s.get('period')} (from {s.get('start')}, inputs to "
            f"{s.get('inputs_end')}): {direction}, tau {float(s.get('tau') or 0.0):+.3f}, "
            f"{s.get('provider')} ({s.get('model')}"
            f"{': rules, NOT an LLM' if s.get('provider') == 'heuristic' else ''}), "
            f"{s.get('source')}",
            highlight=False,
        )
        if s.get("explanation"):
            out_console.print(f"  {escape(str(s['explanation']))}", highlight=False)
    table = Table(show_header=True, header_style="bold")
    for column in ("agent", "run", f"held on {t.next_day}", "new target at its close"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    for a in t.agents:
        table.add_row(a.label, str(a.run + 1), _position(a.held), _position(a.position))
    out_console.print(table)
    for e in t.ensemble:
        weights = ", ".join(f"{k} {v:.2f}" for k, v in e.weights.items())
        out_console.print(f"  ReWTS weights (run {e.run + 1}): {weights}", highlight=False)
    out_console.print(
        f"  held: decided the day before; new target: the decision for {t.next_day} from the "
        f"data up to {t.asof}, traded at its close (as the backtest does)",
        highlight=False,
    )
    for agent, why in t.skipped.items():
        out_console.print(f"  no signal for {agent}: {why}", highlight=False)
