"""``rewts data``: load market data, compute features, store the processed dataset."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rewts.cli.app import app
from rewts.cli.common import out_console, say
from rewts.cli.options import CONFIG, DATA, NO_PROGRESS, OWN, CommandArgs, options

RefreshOpt = Annotated[
    bool, typer.Option("--refresh", help="Rebuild even when the stored dataset is up to date.")
]


@app.command("data")
@options(DATA, OWN, CONFIG, NO_PROGRESS)
def data_command(args: CommandArgs, refresh: RefreshOpt = False) -> None:
    """Load prices (CSV folder, Yahoo Finance or synthetic), compute features, write Parquet."""
    cfg = args.load()
    from rewts import pipeline  # imported here: keeps `rewts --help` fast

    ctx = pipeline.Context(cfg, say=say, refresh_data=refresh)
    pipeline.DATA.ensure(ctx)
    dataset = ctx.dataset
    assert dataset is not None  # the data stage always hands its dataset on
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
