"""``rewts compare``: named vs blind prompts on the same periods, backtested side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rewts.cli.app import app
from rewts.cli.common import err_console, out_console, say
from rewts.cli.options import (
    COMMON,
    DATA,
    LLM,
    OWN,
    RESULTS,
    TRAINING,
    CommandArgs,
    optional,
    options,
)

CompareOutOpt = Annotated[
    Path | None,
    optional(
        "--out",
        help="Folder of the comparison (default: backtest.output_dir/<profile or 'default'>"
        "-compare); each side's results go to named/ and blind/ inside it.",
    ),
]


@app.command("compare")
@options(
    DATA,
    LLM,
    TRAINING.only("runs", "episodes", "jobs"),
    OWN,
    RESULTS.only("no_html", "json_out"),
    COMMON,
)
def compare_command(args: CommandArgs, out: CompareOutOpt = None) -> None:
    """Named vs blind prompts: a memorization check.

    Generates the strategies of the same periods twice, with named prompts and with blind ones
    (llm.blind: no stock name, date or price level), backtests Buy & Hold, LLM-only and LLM+RL
    on each side (`rewts run` twice, each skipping what is unchanged) and tests per ticker,
    period by period, whether the named side's edge vanishes blind. Writes memorization.csv,
    memorization.json and report.html ("Memorization check").
    """
    cfg = args.load()
    from rewts.memorization import run_compare
    from rewts.report.tables import print_wide
    from rewts.ui.run_summary import StageLines

    out_dir = (
        out
        if out is not None
        else Path(cfg.backtest.output_dir) / (f"{args.profile or 'default'}-compare")
    )
    result = run_compare(
        cfg,
        out_dir,
        html=not args.no_html,
        train_events=args.training_display(),
        say=say,
        on_stage=StageLines(err_console),
    )
    if args.json_out:
        records = json.loads(result.table.to_json(orient="records"))
        typer.echo(json.dumps({"out_dir": str(out_dir), "comparison": records}, indent=2))
        return
    from rich.table import Table

    table = Table(title="Memorization check: named vs blind prompts")
    for col in ("ticker", "agent", "Sharpe named", "Sharpe blind", "B&H", "p", "verdict"):
        table.add_column(col)
    for row in result.table.itertuples(index=False):
        table.add_row(
            row.ticker,
            row.agent,
            f"{row.sharpe_named:.2f}",
            f"{row.sharpe_blind:.2f}",
            "" if row.sharpe_buy_and_hold is None else f"{row.sharpe_buy_and_hold:.2f}",
            f"{row.p:.3g}",
            row.verdict,
        )
    print_wide(out_console, table)
    out_console.print(f"results: {out_dir}", highlight=False)
    if result.report is not None:
        out_console.print(f"report:  {result.report}", highlight=False)
