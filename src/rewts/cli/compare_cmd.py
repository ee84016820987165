"""``rewts compare``: named vs blind prompts on the same periods, backtested side by side."""

from __future__ import annotations

import json
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
    common,
    data_flags,
    err_console,
    llm_flags,
    out_console,
    user_errors,
)
from rewts.cli.run_cmd import EpisodesOpt, JobsOpt, JsonOpt, NoHtmlOpt, RunsOpt, stage_flags

CompareOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Folder of the comparison (default: backtest.output_dir/<profile or 'default'>"
        "-compare); each side's results go to named/ and blind/ inside it.",
        show_default=False,
    ),
]


@app.command("compare")
def compare_command(
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
    episodes: EpisodesOpt = None,
    jobs: JobsOpt = None,
    out: CompareOutOpt = None,
    no_html: NoHtmlOpt = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
    no_progress: NoProgressOpt = False,
    env_file: EnvFileOpt = None,
) -> None:
    """Named vs blind prompts: a memorization check.

    Generates the strategies of the same periods twice, with named prompts and with blind ones
    (llm.blind: no stock name, date or price level), backtests Buy & Hold, LLM-only and LLM+RL
    on each side (`rewts run` twice, each skipping what is unchanged) and tests per ticker,
    period by period, whether the named side's edge vanishes blind. Writes memorization.csv,
    memorization.json and report.html ("Memorization check").
    """
    args = common(config, sets, profile, debug, no_progress, env_file=env_file)
    with user_errors(args.debug):
        cfg = args.load(
            data_flags(tickers, data_dir, source, start, end)
            | llm_flags(provider, model, base_url, workers, rps, rpm, cache, on_failure, no_news)
            | stage_flags(runs, None, episodes, jobs)
        )
        from rewts.memorization import run_compare
        from rewts.report.tables import print_wide
        from rewts.ui.run_summary import StageLines

        out_dir = (
            out
            if out is not None
            else Path(cfg.backtest.output_dir) / (f"{profile or 'default'}-compare")
        )

        def say(line: str) -> None:
            err_console.print(line, highlight=False, markup=False, soft_wrap=True)

        from rewts.ui.training import make_training_display

        train_events = None if args.no_progress else make_training_display(live=args.show_progress)
        result = run_compare(
            cfg,
            out_dir,
            html=not no_html,
            train_events=train_events,
            say=say,
            on_stage=StageLines(err_console),
        )
        if json_out:
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
