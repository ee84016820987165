"""``rewts cache``: inspect and maintain the strategy cache."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rewts.cli.app import app
from rewts.cli.common import check_out_file, confirm_destructive, llm_flags, out_console
from rewts.cli.options import CONFIG, YES, CacheOpt, CommandArgs, optional, options
from rewts.errors import ConfigError, StorageError
from rewts.fileio import atomic_write, write_text_atomic

if TYPE_CHECKING:
    from rewts.llm.cache import StrategyCache

OutputOpt = Annotated[
    Path | None,
    optional("--output", "-o", help="export: a .json or .parquet file."),
]
OlderThanOpt = Annotated[
    float | None,
    optional("--older-than", help="prune: entries older than this many days."),
]
PromptVersionOpt = Annotated[
    str | None,
    optional("--prompt-version", help="prune: entries of this prompt version."),
]


@app.command("cache")
@options(CONFIG, YES)
def cache_command(
    args: CommandArgs,
    action: str = typer.Argument("stats", help="stats, clear, export or prune."),
    cache: CacheOpt = None,
    output: OutputOpt = None,
    older_than: OlderThanOpt = None,
    prompt_version: PromptVersionOpt = None,
) -> None:
    """Show statistics of the strategy cache, or clear, export or prune it.

    clear and prune delete paid-for answers and export may overwrite a file: each asks first
    on a terminal and needs --yes anywhere else.
    """
    cfg = args.load(llm_flags(cache=cache))
    from rewts.llm.cache import StrategyCache

    path = Path(cfg.llm.cache_path)
    if action not in ("stats", "clear", "export", "prune"):
        raise ConfigError(f"cache action {action!r}: use stats, clear, export or prune")
    days = _older_than(older_than)
    if action == "export":
        _check_export_target(output, yes=args.yes)
    if action != "export" and not path.exists():
        out_console.print(f"no cache at {path} (0 entries)")
        return
    with StrategyCache(path) as store:
        if action == "stats":
            out_console.print_json(json.dumps(store.stats()))
        elif action == "clear":
            n = len(store)
            if n:
                confirm_destructive(f"delete all {n} entries from {path}", yes=args.yes)
            out_console.print(f"removed {store.clear()} entries from {path}")
        elif action == "prune":
            n = store.prune(older_than=days, prompt_version=prompt_version, dry_run=True)
            if n:
                confirm_destructive(f"delete {n} of {len(store)} entries from {path}", yes=args.yes)
            n = store.prune(older_than=days, prompt_version=prompt_version)
            out_console.print(f"removed {n} entries from {path}")
        else:
            assert output is not None
            _export(store, output)


#: the largest --older-than accepted (about 270 years; beyond it nothing could match)
MAX_DAYS = 100_000


def _older_than(days: float | None) -> dt.timedelta | None:
    """``--older-than`` as a timedelta: a positive, finite number of days, or an error.

    A negative value would put the cutoff in the future and delete every entry.
    """
    if days is None:
        return None
    if not (math.isfinite(days) and 0 < days <= MAX_DAYS):
        raise ConfigError(
            f"--older-than {days:g}: must be a number of days greater than 0 and at most "
            f"{MAX_DAYS:,}"
        )
    return dt.timedelta(days=days)


def _check_export_target(output: Path | None, *, yes: bool) -> None:
    """Before reading the cache: a file name we may write (not a folder, no silent overwrite)."""
    if output is None:
        raise ConfigError("cache export needs --output FILE.json or FILE.parquet")
    if output.suffix not in (".json", ".parquet"):
        raise ConfigError(f"--output {output}: use a .json or .parquet file name")
    check_out_file(output, f"--output {output}", yes=yes)


def _export(store: StrategyCache, output: Path) -> None:
    """Write the entries user-only (0600, temporary file then rename): they hold the paid
    answers and every prompt."""
    import pandas as pd

    rows = [{f: getattr(e, f) for f in e.__dataclass_fields__} for e in store.entries()]
    try:
        output.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if output.suffix == ".parquet":
            atomic_write(output, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))
        else:
            write_text_atomic(output, json.dumps(rows, indent=1, ensure_ascii=False))
    except OSError as exc:
        raise StorageError(f"--output {output}: cannot write it ({exc.strerror})") from None
    out_console.print(f"exported {len(rows)} entries to {output}")
