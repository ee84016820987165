"""``rewts train``: Train one Double DQN agent per ticker and chunk, in parallel, checkpointed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rewts.cli.app import app
from rewts.cli.common import out_console
from rewts.cli.options import COMMON, DATA, LLM, OWN, CommandArgs, EpisodesOpt, optional, options
from rewts.errors import TrainingError

if TYPE_CHECKING:
    from rewts.config import Config
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
    from rewts.pipeline import ensure_data
    from rewts.training import train_all
    from rewts.ui.training import make_training_display

    dataset = ensure_data(cfg)
    strategies = None
    if cfg.rewts.llm_guidance:
        strategies = _strategies(cfg, dataset, args.show_progress)
    result = train_all(
        cfg,
        dataset,
        strategies,
        events=make_training_display(live=args.show_progress),
        include_global=cfg.rewts.train_global,
    )
    _print_summary(result, cfg.rewts.checkpoint_dir, cfg.executor)


def _strategies(cfg: Config, dataset: Any, progress: bool) -> Any:
    """The strategies stage's output (cache hits cost nothing); a clear error if unavailable."""
    try:
        from rewts.llm.providers import resolve_provider_name
        from rewts.pipeline import ensure_strategies
        from rewts.ui.progress import shown

        if progress and resolve_provider_name(cfg) != "import":  # a display for generation
            return shown(lambda events: ensure_strategies(cfg, dataset, events=events)).strategies
        return ensure_strategies(cfg, dataset).strategies
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
