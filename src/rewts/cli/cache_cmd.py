"""``rewts cache``: inspect and maintain the strategy cache."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

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
    out_console,
    user_errors,
)
from rewts.errors import ConfigError

OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="export: a .json or .parquet file.", show_default=False),
]
OlderThanOpt = Annotated[
    float | None,
    typer.Option(
        "--older-than", help="prune: entries older than this many days.", show_default=False
    ),
]
PromptVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--prompt-version", help="prune: entries of this prompt version.", show_default=False
    ),
]


@app.command("cache")
def cache_command(
    action: str = typer.Argument("stats", help="stats, clear, export or prune."),
    cache: CacheOpt = None,
    output: OutputOpt = None,
    older_than: OlderThanOpt = None,
    prompt_version: PromptVersionOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show statistics of the strategy cache, or clear, export or prune it."""
    args = common(config, sets, profile, debug, True)
    with user_errors(args.debug):
        cfg = args.load(llm_flags(cache=cache))
        from rewts.llm.cache import StrategyCache

        path = Path(cfg.llm.cache_path)
        if action not in ("stats", "clear", "export", "prune"):
            raise ConfigError(f"cache action {action!r}: use stats, clear, export or prune")
        if action != "export" and not path.exists():
            out_console.print(f"no cache at {path} (0 entries)")
            return
        with StrategyCache(path) as store:
            if action == "stats":
                out_console.print_json(json.dumps(store.stats()))
            elif action == "clear":
                out_console.print(f"removed {store.clear()} entries from {path}")
            elif action == "prune":
                days = dt.timedelta(days=older_than) if older_than is not None else None
                n = store.prune(older_than=days, prompt_version=prompt_version)
                out_console.print(f"removed {n} entries from {path}")
            else:
                _export(store, output)


def _export(store, output: Path | None) -> None:
    import pandas as pd

    if output is None:
        raise ConfigError("cache export needs --output FILE.json or FILE.parquet")
    rows = [{f: getattr(e, f) for f in e.__dataclass_fields__} for e in store.entries()]
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(output, index=False)
    elif output.suffix == ".json":
        output.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        raise ConfigError(f"--output {output}: use a .json or .parquet file name")
    out_console.print(f"exported {len(rows)} entries to {output}")
