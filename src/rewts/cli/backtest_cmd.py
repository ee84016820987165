"""``rewts backtest``: Backtest the ReWTS ensemble and the baselines on the held-out period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewts.cli.app import app
from rewts.cli.common import (
    BaseUrlOpt,
    CacheOpt,
    ConfigOpt,
    DataDirOpt,
    DebugOpt,
    EndOpt,
    EnvFileOpt,
    ModelOpt,
    NoNewsOpt,
    NoProgressOpt,
    OnFailureOpt,
    ProfileOpt,
    ProviderOpt,
    RpmOpt,
    RpsOpt,
    SetOpt,
    SourceOpt,
    StartOpt,
    TickersOpt,
    WorkersOpt,
    YesOpt,
    check_out_folder,
    common,
    data_flags,
    err_console,
    llm_flags,
    out_console,
    split_list,
    user_errors,
)

RunsOpt = Annotated[
    int | None,
    typer.Option(
        "--runs", min=1, help="Seeds per learned agent (backtest.runs).", show_default=False
    ),
]
#: what a backtest writes into its --out folder (an earlier run's files are replaced silently)
RESULT_FILES = ("*.csv", "*.json", "*.html", "*.png", "*.svg")

OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Folder of this run's results (default: backtest.output_dir/<date-time-tickers>).",
        show_default=False,
    ),
]
AgentsOpt = Annotated[
    str | None,
    typer.Option(
        "--agents",
        help=(
            "Comma-separated agents (backtest.agents): buy_and_hold, llm_only, rl_only, llm_rl, "
            "rewts, global_llm_rl, placebo_const, placebo_shuffled, leak_sanity."
        ),
        show_default=False,
    ),
]
EpisodesOpt = Annotated[
    int | None,
    typer.Option(
        "--episodes",
        min=1,
        help="Episodes per chunk when agents must be trained (rewts.episodes_per_chunk).",
        show_default=False,
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option("--jobs", min=1, help="Training processes (rewts.n_jobs).", show_default=False),
]
NoHtmlOpt = Annotated[bool, typer.Option("--no-html", help="Write the CSV/JSON files only.")]


def _strategies(
    cfg: Any, dataset: Any, progress: bool, notes: list[str], model: dict[str, Any]
) -> Any:
    from rewts.llm.providers import resolve_provider_name
    from rewts.pipeline import ensure_strategies
    from rewts.ui.progress import shown

    if progress and resolve_provider_name(cfg) != "import":  # a display for generation
        generated = shown(lambda events: ensure_strategies(cfg, dataset, events=events))
    else:
        generated = ensure_strategies(cfg, dataset)
    summary = getattr(generated, "summary", None)
    if summary is not None:  # for the report's model and training-cutoff lines
        model.update(provider=summary.provider, model=summary.model)
    if summary is not None and getattr(summary, "provider", "") == "heuristic":
        notes.append(
            "The strategies come from the offline heuristic strategist (rules on technical "
            "indicators), not from a language model: 'LLM' agents here test the plumbing, not "
            "an LLM's judgment."
        )
    if summary is not None and getattr(summary, "fallbacks", 0):
        notes.append(
            f"{summary.fallbacks} strategy period(s) used the failure fallback "
            f"(llm.on_failure = {cfg.llm.on_failure})."
        )
    return generated.strategies


@app.command("backtest")
def backtest_command(
    tickers: TickersOpt = None,
    data_dir: DataDirOpt = None,
    source: SourceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    workers: WorkersOpt = None,
    rps: RpsOpt = None,
    rpm: RpmOpt = None,
    cache: CacheOpt = None,
    on_failure: OnFailureOpt = None,
    no_news: NoNewsOpt = False,
    runs: RunsOpt = None,
    out: OutOpt = None,
    agents: AgentsOpt = None,
    episodes: EpisodesOpt = None,
    jobs: JobsOpt = None,
    no_html: NoHtmlOpt = False,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
    no_progress: NoProgressOpt = False,
    env_file: EnvFileOpt = None,
    yes: YesOpt = False,
) -> None:
    """Backtest the ReWTS ensemble and the baselines on the held-out period.

    Runs the earlier stages when their outputs are missing (data, strategies, training of the
    agents the backtest needs), then writes metrics.csv, metrics.json and report.html.
    """
    args = common(config, sets, profile, debug, no_progress, env_file=env_file)
    with user_errors(args.debug):
        cfg = args.load(
            data_flags(tickers, data_dir, source, start, end)
            | llm_flags(provider, model, base_url, workers, rps, rpm, cache, on_failure, no_news)
            | {
                "backtest.runs": runs,
                "backtest.agents": split_list(agents),
                "rewts.episodes_per_chunk": episodes,
                "rewts.n_jobs": jobs,
            }
        )
        from rewts.backtest import backtest_all, needs_strategies
        from rewts.backtest.runner import default_run_name
        from rewts.pipeline import ensure_data, model_info, with_cutoff_split
        from rewts.report import print_paper_tables, write_report

        def say(message: str) -> None:
            if not args.no_progress:
                err_console.print(message, highlight=False, markup=False)

        if out is not None:  # checked before the work, not after the whole backtest
            check_out_folder(out, cfg, stage_key="backtest.output_dir", ours=RESULT_FILES, yes=yes)
        dataset = ensure_data(cfg)
        notes: list[str] = []
        strategies = None
        used: dict[str, Any] = {}
        if needs_strategies(cfg):
            strategies = _strategies(cfg, dataset, args.show_progress, notes, used)
        model = model_info(cfg, used) if used else None
        if model is not None and model["warning"]:
            notes.insert(0, model["warning"])
        name = out.name if out is not None else default_run_name(cfg)
        from rewts.ui.training import make_training_display

        train_events = None if args.no_progress else make_training_display(live=args.show_progress)
        result = backtest_all(cfg, dataset, strategies, name=name, events=train_events, say=say)
        result.notes[:0] = notes
        if model is not None:
            result.memorization = with_cutoff_split(model, result)
        folder = out if out is not None else Path(cfg.backtest.output_dir) / name
        files = write_report(result, folder, html=not no_html)
        print_paper_tables(result, out_console)
        out_console.print(f"results in {files.directory}", highlight=False)
        if files.html is not None:
            out_console.print(f"report: {files.html}", highlight=False)
