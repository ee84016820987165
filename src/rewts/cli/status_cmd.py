"""``rewts status``: What exists for a config (data, strategies, checkpoints, results), and
whether each is fresh or stale. Reads only; never runs a stage."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

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
    llm_flags,
    out_console,
    user_errors,
)
from rewts.cli.run_cmd import (
    AgentsOpt,
    EpisodesOpt,
    JobsOpt,
    JsonOpt,
    NoHtmlOpt,
    OutOpt,
    RunsOpt,
    stage_flags,
)


@app.command("status")
def status_command(
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
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
    no_progress: NoProgressOpt = False,
    env_file: EnvFileOpt = None,
) -> None:
    """Show what exists for a config and whether `rewts run` would reuse it.

    Takes the same flags as `rewts run`, so `rewts status --profile quick` describes what
    `rewts run --profile quick` would do: each stage fresh (skipped), stale (rerun, with the
    reason) or missing.
    """
    args = common(config, sets, profile, debug, no_progress, env_file=env_file)
    with user_errors(args.debug):
        cfg = args.load(
            data_flags(tickers, data_dir, source, start, end)
            | llm_flags(provider, model, base_url, workers, rps, rpm, cache, on_failure, no_news)
            | stage_flags(runs, agents, episodes, jobs)
        )
        from rewts.pipeline import default_run_dir, pipeline_status
        from rewts.ui.run_summary import print_status

        run_dir: Path = out if out is not None else default_run_dir(cfg, profile)
        states = pipeline_status(cfg, run_dir, html=not no_html)
        if json_out:
            payload = {"run_dir": str(run_dir), "stages": [asdict(s) for s in states]}
            typer.echo(json.dumps(payload, indent=2, default=str))
        else:
            print_status(states, out_console)
