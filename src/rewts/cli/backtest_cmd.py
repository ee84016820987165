"""``rewts backtest``: Backtest the ReWTS ensemble and the baselines on the held-out period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from rewts.cli.app import app
from rewts.cli.common import check_out_folder, out_console, split_list
from rewts.cli.options import (
    COMMON,
    DATA,
    LLM,
    OWN,
    TRAINING,
    YES,
    CommandArgs,
    NoHtmlOpt,
    optional,
    options,
)

#: what a backtest writes into its --out folder (an earlier run's files are replaced silently)
RESULT_FILES = ("*.csv", "*.json", "*.html", "*.png", "*.svg")

OutOpt = Annotated[
    Path | None,
    optional(
        "--out",
        help="Folder of this run's results (default: backtest.output_dir/<date-time-tickers>).",
    ),
]
AgentsOpt = Annotated[
    str | None,
    optional(
        "--agents",
        help=(
            "Comma-separated agents (backtest.agents): buy_and_hold, llm_only, rl_only, llm_rl, "
            "rewts, global_llm_rl, placebo_const, placebo_shuffled, leak_sanity."
        ),
    ),
]
EpisodesOpt = Annotated[
    int | None,
    optional(
        "--episodes",
        min=1,
        help="Episodes per chunk when agents must be trained (rewts.episodes_per_chunk).",
    ),
]


@app.command("backtest")
@options(DATA, LLM, TRAINING.only("runs"), OWN, TRAINING.only("jobs"), COMMON, YES)
def backtest_command(
    args: CommandArgs,
    out: OutOpt = None,
    agents: AgentsOpt = None,
    episodes: EpisodesOpt = None,
    no_html: NoHtmlOpt = False,
) -> None:
    """Backtest the ReWTS ensemble and the baselines on the held-out period.

    Runs the earlier stages when their outputs are missing (data, strategies, training of the
    agents the backtest needs), then writes metrics.csv, metrics.json and report.html.
    """
    cfg = args.load({"backtest.agents": split_list(agents), "rewts.episodes_per_chunk": episodes})
    from rewts import pipeline
    from rewts.backtest.runner import default_run_name
    from rewts.report import print_paper_tables
    from rewts.ui.progress import make_display

    if out is not None:  # checked before the work, not after the whole backtest
        check_out_folder(out, cfg, stage_key="backtest.output_dir", ours=RESULT_FILES, yes=args.yes)
    folder = out if out is not None else Path(cfg.backtest.output_dir) / default_run_name(cfg)
    display = make_display(live=True) if args.show_progress else None
    ctx = pipeline.Context(
        cfg,
        folder,
        html=not no_html,
        train_events=args.training_display(),
        events=display,
        say=args.say,
    )
    try:
        # the stages before are reused when fresh, as `rewts run` reuses them
        pipeline.run_stages(ctx, (pipeline.DATA, pipeline.STRATEGIES, pipeline.TRAIN))
    finally:
        if display is not None:
            display.close()
    # this command always backtests (into a new folder unless --out names one)
    pipeline.BACKTEST.ensure(ctx, force=True)
    pipeline.REPORT.ensure(ctx, force=True)
    assert ctx.result is not None
    print_paper_tables(ctx.result, out_console)
    out_console.print(f"results in {folder}", highlight=False)
    if not no_html:
        out_console.print(f"report: {folder / 'report.html'}", highlight=False)
