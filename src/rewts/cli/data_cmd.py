"""``rewts data``: load market data, compute features, store the processed dataset."""

from __future__ import annotations

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
    user_errors,
)
from rewts.errors import NotYetImplementedError


@app.command("data")
def data_command(
    tickers: TickersOpt = None,
    data_dir: DataDirOpt = None,
    source: SourceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Load prices (CSV folder, Yahoo Finance or synthetic), compute features, write Parquet."""
    args = common(config, sets, profile, debug, no_progress)
    with user_errors(args.debug):
        args.load(data_flags(tickers, data_dir, source, start, end))
        raise NotYetImplementedError("`rewts data` is not built yet")
