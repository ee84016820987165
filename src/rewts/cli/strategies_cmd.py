"""``rewts strategies``: Generate an LLM strategy for every ticker and period, in parallel, cached;
``rewts strategies import FILE`` brings in strategies made elsewhere, ``rewts strategies export
FILE`` writes the stored ones in the format ``import`` reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rewts.cli.app import app
from rewts.cli.common import check_out_file, check_out_folder, out_console
from rewts.cli.options import (
    COMMON,
    CONFIG,
    DATA,
    ENV_FILE,
    LLM,
    OWN,
    YES,
    CommandArgs,
    optional,
    options,
)
from rewts.config import Config
from rewts.errors import ConfigError
from rewts.pipeline.records import RECORD_FILE

strategies_app = typer.Typer(
    name="strategies",
    invoke_without_command=True,
    help="Generate an LLM strategy for every ticker and period, in parallel, cached "
    "(or import / export strategies made elsewhere).",
)
app.add_typer(strategies_app)

OutOpt = Annotated[
    Path | None,
    optional("--out", help="Folder for the per-ticker strategy files (llm.output_dir)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Write JSON next to the Parquet files.")]
JsonSummaryOpt = Annotated[
    Path | None,
    optional("--json-summary", help="Write the run summary as JSON to this path."),
]


@strategies_app.callback()
@options(DATA, LLM, OWN, COMMON, YES)
def strategies_command(
    args: CommandArgs,
    ctx: typer.Context,
    out: OutOpt = None,
    json_files: JsonOpt = False,
    json_summary: JsonSummaryOpt = None,
) -> None:
    """Generate an LLM strategy for every ticker and period, in parallel, cached.

    `rewts strategies import FILE` reads strategies made elsewhere instead; `rewts strategies
    export FILE` writes the stored ones in the format import reads.
    """
    if ctx.invoked_subcommand is not None:
        given = [k for k, v in ctx.params.items() if v not in (None, False) and v != ()]
        if given:
            raise ConfigError(
                f"put the options after `strategies {ctx.invoked_subcommand}` "
                f"(given before it: {', '.join('--' + g.replace('_', '-') for g in given)})"
            )
        return
    cfg = args.load({"llm.output_dir": str(out) if out is not None else None})
    if out is not None:
        check_out_folder(
            out,
            cfg,
            stage_key="llm.output_dir",
            ours=("*.parquet", "*.json", RECORD_FILE),
            yes=args.yes,
        )

    from rewts import pipeline
    from rewts.llm.providers import make_provider, resolve_provider_name
    from rewts.ui.progress import make_display

    if resolve_provider_name(cfg) == "import":
        _import(cfg, Path(cfg.llm.import_path or ""))
        return
    # a missing key or unknown provider stops here, before any data work
    run = pipeline.Context(cfg, provider=make_provider(cfg), json_copies=json_files)
    pipeline.run_stages(run, (pipeline.DATA,))
    display = run.events = make_display(live=args.show_progress)
    try:
        # generated every time (cache hits cost nothing), whether the agents read it or not;
        # the stage writes the record `rewts run` writes: `rewts status` sees the tables fresh
        pipeline.STRATEGIES.ensure(run, force=True, required=True)
    finally:
        display.close()
    result = run.generated
    assert result is not None  # the stage was built, not reused
    display.summary(result.summary)
    if json_summary is not None:
        from rewts.fileio import write_text_atomic

        text = json.dumps(result.summary.to_dict(), indent=2) + "\n"
        json_summary.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(json_summary, text)  # user-only
    out_console.print(f"strategies written to {cfg.llm.output_dir}", highlight=False)


def _import(cfg: Config, path: Path) -> None:
    """The strategies stage from a file: check every row, then write tables and record."""
    from rewts import pipeline
    from rewts.pipeline import records

    run = pipeline.Context(cfg)
    pipeline.run_stages(run, (pipeline.DATA,))
    folder = Path(cfg.llm.output_dir)
    # every row is checked before anything is written or the stage's record is replaced
    pipeline.STRATEGIES.ensure(run, force=True, required=True)
    assert run.tables is not None
    for ticker, table in run.tables.items():
        given = int((table["status"] == "imported").sum())
        absent = len(table) - given
        line = f"{ticker}: {given} of {len(table)} periods imported"
        if absent:
            line += f", {absent} not in the file (tau 0 there: no signal)"
        out_console.print(line, highlight=False)
    digest = records.file_hash(path) or ""
    out_console.print(
        f"strategies imported from {path} (SHA-256 {digest[:12]}...) into {folder}; later "
        f"stages use them with --provider import --set llm.import_path={path} (or "
        "llm.provider: import and llm.import_path in the config)",
        highlight=False,
    )


@strategies_app.command("import")
@options(OWN, DATA, CONFIG, ENV_FILE, YES)
def import_command(
    args: CommandArgs,
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSON file (docs/strategy-import.md).")
    ],
    out: OutOpt = None,
) -> None:
    """Import strategies made elsewhere (CSV, Parquet or JSON): ticker, date, and tau or
    direction + confidence per row.

    Every row is checked first (one error line naming the file and the row; nothing is
    written then). The tables land where `rewts strategies` writes them, with provider
    import and the file's SHA-256 as provenance; train, backtest, run and status use them
    when the config says llm.provider: import and llm.import_path: FILE.
    """
    cfg = args.load(
        {
            "llm.provider": "import",
            "llm.import_path": str(file),
            "llm.output_dir": str(out) if out is not None else None,
        }
    )
    if out is not None:
        check_out_folder(
            out, cfg, stage_key="llm.output_dir", ours=("*.parquet", RECORD_FILE), yes=args.yes
        )
    _import(cfg, file)


ExportOpt = Annotated[
    Path, typer.Argument(help="A .csv, .parquet or .json file to write.", show_default=False)
]


@strategies_app.command("export")
@options(OWN, DATA, CONFIG, ENV_FILE, YES)
def export_command(args: CommandArgs, file: ExportOpt, out: OutOpt = None) -> None:
    """Write the stored strategy tables (llm.output_dir) as one file that `rewts strategies
    import` reads back: one row per ticker and period."""
    # the data flags are accepted (and validated) so a command line can be reused as is
    cfg = args.load({"llm.output_dir": str(out) if out is not None else None})
    from rewts.llm.importer import export_strategies

    if file.suffix.lower() not in (".csv", ".parquet", ".json"):
        raise ConfigError(f"{file}: use a .csv, .parquet or .json file name")
    check_out_file(file, str(file), yes=args.yes)
    count = export_strategies(cfg, file)
    out_console.print(
        f"exported {count} strategies ({', '.join(cfg.tickers)}) to {file}", highlight=False
    )
