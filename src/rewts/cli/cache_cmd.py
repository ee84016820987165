"""``rewts cache``: inspect and maintain the strategy cache."""

from __future__ import annotations

import typer

from rewts.cli.app import app
from rewts.cli.common import (
    CacheOpt,
    ConfigOpt,
    DebugOpt,
    ProfileOpt,
    SetOpt,
    common,
    llm_flags,
    user_errors,
)
from rewts.errors import NotYetImplementedError


@app.command("cache")
def cache_command(
    action: str = typer.Argument("stats", help="stats, clear, export or prune."),
    cache: CacheOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show statistics of the strategy cache, or clear, export or prune it."""
    args = common(config, sets, profile, debug, True)
    with user_errors(args.debug):
        args.load(llm_flags(cache=cache))
        raise NotYetImplementedError("`rewts cache` is not built yet")
