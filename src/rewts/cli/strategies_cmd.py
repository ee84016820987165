"""``rewts strategies``: Generate an LLM strategy for every ticker and period, in parallel, cached."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

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
    llm_flags,
    out_console,
    user_errors,
)
from rewts.stages import RECORD_FILE

OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Folder for the per-ticker strategy files (llm.output_dir).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Write JSON next to the Parquet files.")]
JsonSummaryOpt = Annotated[
    Path | None,
    typer.Option(
        "--json-summary", help="Write the run summary as JSON to this path.", show_default=False
    ),
]


@app.command("strategies")
def strategies_command(
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
    out: OutOpt = None,
    on_failure: OnFailureOpt = None,
    no_news: NoNewsOpt = False,
    json_files: JsonOpt = False,
    json_summary: JsonSummaryOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
    no_progress: NoProgressOpt = False,
    env_file: EnvFileOpt = None,
    yes: YesOpt = False,
) -> None:
    """Generate an LLM strategy for every ticker and period, in parallel, cached."""
    args = common(config, sets, profile, debug, no_progress, env_file=env_file)
    with user_errors(args.debug):
        flags = data_flags(tickers, data_dir, source, start, end) | llm_flags(
            provider, model, base_url, workers, rps, rpm, cache, on_failure, no_news
        )
        flags["llm.output_dir"] = str(out) if out is not None else None
        cfg = args.load(flags)
        if out is not None:
            check_out_folder(
                out,
                cfg,
                stage_key="llm.output_dir",
                ours=("*.parquet", "*.json", RECORD_FILE),
                yes=yes,
            )

        from rewts import stages
        from rewts.llm import generate_strategies
        from rewts.llm.providers import make_provider, resolve_provider_name
        from rewts.pipeline import ensure_data, record_strategies, strategies_inputs_now
        from rewts.ui.progress import make_display

        # a missing key or unknown provider stops here, before any data work
        llm = make_provider(cfg)
        dataset = ensure_data(cfg)
        display = make_display(live=args.show_progress)
        folder = Path(cfg.llm.output_dir)
        stages.drop_records(folder, ["strategies"])
        t0 = time.perf_counter()
        try:
            result = generate_strategies(
                cfg, dataset, events=display, provider=llm, write_json=json_files
            )
        finally:
            display.close()
        # the same stage record `rewts run` writes: `rewts status` sees these tables as fresh
        record_strategies(
            cfg,
            strategies_inputs_now(cfg, dataset),
            result.strategies,
            result,
            resolve_provider_name(cfg),
            time.perf_counter() - t0,
        )
        display.summary(result.summary)
        if json_summary is not None:
            from rewts.llm.generate import write_private

            text = json.dumps(result.summary.to_dict(), indent=2) + "\n"
            json_summary.parent.mkdir(parents=True, exist_ok=True)
            write_private(json_summary, lambda p: p.write_text(text))
        out_console.print(f"strategies written to {cfg.llm.output_dir}", highlight=False)
