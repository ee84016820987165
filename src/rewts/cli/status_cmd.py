"""``rewts status``: What exists for a config (data, strategies, checkpoints, results), and
whether each is fresh or stale. Reads only; never runs a stage."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from rewts.cli.app import app
from rewts.cli.common import out_console
from rewts.cli.options import COMMON, DATA, LLM, RESULTS, TRAINING, CommandArgs, options


@app.command("status")
@options(DATA, LLM, TRAINING, RESULTS, COMMON)
def status_command(args: CommandArgs) -> None:
    """Show what exists for a config and whether `rewts run` would reuse it.

    Takes the same flags as `rewts run`, so `rewts status --profile quick` describes what
    `rewts run --profile quick` would do: each stage fresh (skipped), stale (rerun, with the
    reason) or missing.
    """
    cfg = args.load()
    from rewts.pipeline import default_run_dir, pipeline_status
    from rewts.ui.run_summary import print_status

    run_dir: Path = args.out if args.out is not None else default_run_dir(cfg, args.profile)
    states = pipeline_status(cfg, run_dir, html=not args.no_html)
    if args.json_out:
        payload = {"run_dir": str(run_dir), "stages": [asdict(s) for s in states]}
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        print_status(states, out_console)
