"""``rewts run``: Run the whole pipeline: data, strategies, train, backtest, report."""

from __future__ import annotations

import json
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
AgentsOpt = Annotated[
    str | None,
    typer.Option(
        "--agents",
        help="Comma-separated agents to backtest (backtest.agents).",
        show_default=False,
    ),
]
EpisodesOpt = Annotated[
    int | None,
    typer.Option(
        "--episodes",
        min=1,
        help="Episodes per chunk (rewts.episodes_per_chunk).",
        show_default=False,
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option("--jobs", min=1, help="Training processes (rewts.n_jobs).", show_default=False),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Results folder of this run (default: backtest.output_dir/<profile or 'default'>).",
        show_default=False,
    ),
]
NoHtmlOpt = Annotated[bool, typer.Option("--no-html", help="Write the CSV/JSON files only.")]
RefreshOpt = Annotated[
    bool,
    typer.Option(
        "--refresh",
        help="Rebuild the dataset from its source even when it is up to date (later stages "
        "rerun only if it came out different).",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print the run summary as JSON on stdout instead of tables."),
]


def stage_flags(
    runs: int | None, agents: str | None, episodes: int | None, jobs: int | None
) -> dict[str, Any]:
    """Config overrides from the training and backtest flags."""
    return {
        "backtest.runs": runs,
        "backtest.agents": split_list(agents),
        "rewts.episodes_per_chunk": episodes,
        "rewts.n_jobs": jobs,
    }


@app.command("run")
def run_command(
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
    agents: AgentsOpt = None,
    episodes: EpisodesOpt = None,
    jobs: JobsOpt = None,
    out: OutOpt = None,
    no_html: NoHtmlOpt = False,
    refresh: RefreshOpt = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
    no_progress: NoProgressOpt = False,
    env_file: EnvFileOpt = None,
) -> None:
    """Run the whole pipeline: data, strategies, train, backtest, report.

    Each stage is skipped when its inputs are unchanged since the last run (the config keys
    that matter to it and the outputs of the stages before it), so a second run takes seconds
    and an interrupted one resumes. Offline and without API keys it uses the CSV folder
    (--data-dir) or synthetic prices and the heuristic strategist (announced: not an LLM).
    """
    args = common(config, sets, profile, debug, no_progress, env_file=env_file)
    with user_errors(args.debug):
        cfg = args.load(
            data_flags(tickers, data_dir, source, start, end)
            | llm_flags(provider, model, base_url, workers, rps, rpm, cache, on_failure, no_news)
            | stage_flags(runs, agents, episodes, jobs)
        )
        from rewts.pipeline import default_run_dir, run_pipeline
        from rewts.ui.progress import make_display
        from rewts.ui.run_summary import StageLines, print_run_summary
        from rewts.ui.training import make_training_display

        run_dir = out if out is not None else default_run_dir(cfg, profile)

        def say(line: str) -> None:
            err_console.print(line, highlight=False, markup=False, soft_wrap=True)

        display = make_display(live=args.show_progress) if not args.no_progress else None
        # training: a live bar on a terminal, a line per agent in a log, nothing with --no-progress
        train_events = None if args.no_progress else make_training_display(live=args.show_progress)
        err_console.print(
            f"rewts run: profile {profile or 'default (the paper)'}, {len(cfg.tickers)} "
            f"ticker(s), results in {run_dir}",
            highlight=False,
        )
        try:
            summary = run_pipeline(
                cfg,
                run_dir=run_dir,
                html=not no_html,
                train_events=train_events,
                # --no-progress: no strategy display (the pipeline announces a heuristic)
                events=display,
                say=say,
                on_stage=StageLines(err_console),
                refresh_data=refresh,
            )
        finally:
            if display is not None:
                display.close()
        if json_out:
            typer.echo(json.dumps(summary.to_dict(), indent=2, default=str))
        else:
            print_run_summary(summary, out_console)
