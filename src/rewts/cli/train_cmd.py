"""``rewts train``: Train one Double DQN agent per ticker and chunk, in parallel, checkpointed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rewts.cli.app import app
from rewts.cli.common import out_console
from rewts.cli.options import COMMON, DATA, LLM, OWN, CommandArgs, EpisodesOpt, optional, options
from rewts.errors import TrainingError

if TYPE_CHECKING:
    from rewts.pipeline import Context
    from rewts.training import TrainingResult

NoLLMOpt = Annotated[
    bool,
    typer.Option("--no-llm", help="Train the RL-only baseline (no strategies, no tau)."),
]
JobsOpt = Annotated[
    int | None,
    optional("--jobs", min=1, help="Training processes (rewts.n_jobs; default: CPU count)."),
]


@app.command("train")
@options(DATA, LLM, OWN, COMMON)
def train_command(
    args: CommandArgs,
    no_llm: NoLLMOpt = False,
    episodes: EpisodesOpt = None,
    jobs: JobsOpt = None,
) -> None:
    """Train one Double DQN agent per ticker and chunk, in parallel, checkpointed."""
    cfg = args.load(
        {
            "rewts.llm_guidance": False if no_llm else None,
            "rewts.episodes_per_chunk": episodes,
            "rewts.n_jobs": jobs,
        }
    )
    from rewts import pipeline
    from rewts.training import train_all
    from rewts.ui.training import make_training_display

    ctx = pipeline.Context(cfg, say=args.say)
    pipeline.run_stages(ctx, (pipeline.DATA,))
    assert ctx.dataset is not None  # the data stage always hands its dataset on
    if cfg.rewts.llm_guidance:
        _strategies(ctx, args.show_progress)
    # the one variant asked for (rewts.llm_guidance), not the backtest's agents: no train
    # record, so `rewts run` reuses these checkpoints agent by agent and trains the rest
    result = train_all(
        cfg,
        ctx.dataset,
        ctx.tables,
        events=make_training_display(live=args.show_progress),
        include_global=cfg.rewts.train_global,
    )
    _print_summary(result, cfg.rewts.checkpoint_dir, cfg.executor)


def _strategies(ctx: Context, progress: bool) -> None:
    """The strategies stage, whatever the backtest's agents need (reused when fresh; cache
    hits cost nothing); a clear error if it is unavailable."""
    try:
        from rewts import pipeline
        from rewts.llm.providers import resolve_provider_name
        from rewts.ui.progress import make_display

        display = None
        if progress and resolve_provider_name(ctx.cfg) != "import":  # a display for generation
            display = ctx.events = make_display(live=progress)
        try:
            pipeline.STRATEGIES.ensure(ctx, required=True)
        finally:
            if display is not None:
                display.close()
        if display is not None and ctx.generated is not None:
            display.summary(ctx.generated.summary)
    except ImportError as exc:
        raise TrainingError(
            f"the strategy stage is not available ({exc}); train the RL-only baseline with --no-llm"
        ) from exc


def _print_summary(result: TrainingResult, checkpoint_dir: Path, executor: str) -> None:
    from rich.table import Table

    where = {
        "ray": f"Ray, {result.workers} tasks at once",
        "local": "in this process",
    }.get(executor, f"{result.workers} processes")
    table = Table(title=f"training ({where}, {result.seconds:.1f} s)")
    for col in ("ticker", "trained", "skipped", "time (s)", "train Sharpe", "global Sharpe"):
        table.add_column(col, justify="left" if col == "ticker" else "right")
    for row in result.summary().itertuples(index=False):
        table.add_row(
            row.ticker,
            str(int(row.trained)),
            str(int(row.skipped)),
            f"{row.seconds:.1f}",
            f"{row.sharpe:.2f}",
            "-" if row.global_sharpe != row.global_sharpe else f"{row.global_sharpe:.2f}",
        )
    out_console.print(table)
    out_console.print(f"checkpoints in {checkpoint_dir}", highlight=False)
