"""``rewts data``: load market data, compute features, store the processed dataset."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rewts.cli.app import app
from rewts.cli.common import (
    ConfigOpt,
    DataDirOpt,
    DebugOpt,
    EndOpt,
    NoProgressOpt,
    ProfileOpt,
    SetOpt,
    SourceOpt,
    StartOpt,
    TickersOpt,
    common,
    data_flags,
    err_console,
    out_console,
    user_errors,
)

RefreshOpt = Annotated[
    bool, typer.Option("--refresh", help="Rebuild even when the stored dataset is up to date.")
]


def _say(line: str) -> None:
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("data")
def data_command(
    tickers: TickersOpt = None,
    data_dir: DataDirOpt = None,
    source: SourceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    refresh: RefreshOpt = False,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Load prices (CSV folder, Yahoo Finance or synthetic), compute features, write Parquet."""
    args = common(config, sets, profile, debug, no_progress)
    with user_errors(args.debug):
        cfg = args.load(data_flags(tickers, data_dir, source, start, end))
        from rewts.data import prepare_data  # imported here: keeps `rewts --help` fast

        dataset = prepare_data(cfg, refresh=refresh, reporter=_say)
        where = f" in {dataset.path}" if dataset.path else ""
        state = "loaded (unchanged)" if dataset.report.from_store else "built"
        table = Table(title=f"processed dataset{where}: {state}", title_justify="left")
        for name, justify in (
            ("ticker", "left"),
            ("source", "left"),
            ("first", "left"),
            ("last", "left"),
            ("rows", "right"),
            ("gaps", "right"),
            ("features", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for ticker, frame in dataset.frames.items():
            table.add_row(
                ticker,
                dataset.source,
                str(frame.index[0].date()),
                str(frame.index[-1].date()),
                str(len(frame)),
                str(len(dataset.report.gaps_for(ticker))),
                str(len(dataset.feature_columns)),
            )
        out_console.print(table)
        out_console.print(
            f"content hash {dataset.content_hash[:16]}; warm-up {cfg.data.warmup_days} rows; "
            f"features: {', '.join(dataset.feature_columns)}",
            soft_wrap=True,
            markup=False,
        )
