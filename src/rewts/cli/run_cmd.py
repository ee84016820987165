"""``rewts run``: Run the whole pipeline: data, strategies, train, backtest, report."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rewts.cli.app import app
from rewts.cli.common import err_console, out_console, say
from rewts.cli.options import COMMON, DATA, LLM, OWN, RESULTS, TRAINING, CommandArgs, options

RefreshOpt = Annotated[
    bool,
    typer.Option(
        "--refresh",
        help="Rebuild the dataset from its source even when it is up to date (later stages "
        "rerun only if it came out different).",
    ),
]


@app.command("run")
@options(DATA, LLM, TRAINING, RESULTS.only("out", "no_html"), OWN, RESULTS.only("json_out"), COMMON)
def run_command(args: CommandArgs, refresh: RefreshOpt = False) -> None:
    """Run the whole pipeline: data, strategies, train, backtest, report.

    Each stage is skipped when its inputs are unchanged since the last run (the config keys
    that matter to it and the outputs of the stages before it), so a second run takes seconds
    and an interrupted one resumes. Offline and without API keys it uses the CSV folder
    (--data-dir) or synthetic prices and the heuristic strategist (announced: not an LLM).
    """
    cfg = args.load()
    from rewts.pipeline import default_run_dir, run_pipeline
    from rewts.ui.progress import make_display
    from rewts.ui.run_summary import StageLines, print_run_summary

    run_dir = args.out if args.out is not None else default_run_dir(cfg, args.profile)
    display = make_display(live=args.show_progress) if not args.no_progress else None
    err_console.print(
        f"rewts run: profile {args.profile or 'default (the paper)'}, {len(cfg.tickers)} "
        f"ticker(s), results in {run_dir}",
        highlight=False,
    )
    try:
        summary = run_pipeline(
            cfg,
            run_dir=run_dir,
            html=not args.no_html,
            train_events=args.training_display(),
            # --no-progress: no strategy display (the pipeline announces a heuristic)
            events=display,
            say=say,
            on_stage=StageLines(err_console),
            refresh_data=refresh,
        )
    finally:
        if display is not None:
            display.close()
    if args.json_out:
        typer.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        print_run_summary(summary, out_console)
