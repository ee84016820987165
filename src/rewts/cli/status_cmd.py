"""``rewts status``: What exists for a config (data, strategies, checkpoints, results), and
whether each is fresh or stale. Reads only; never runs a stage."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from rewts.cli.app import app
from rewts.cli.common import out_console
from rewts.cli.options import (
    COMMON,
    DATA,
    LLM,
    OWN,
    TRAINING,
    CommandArgs,
    NoHtmlOpt,
    RunJsonOpt,
    RunOutOpt,
    options,
)


@app.command("status")
@options(DATA, LLM, TRAINING, OWN, COMMON)
def status_command(
    args: CommandArgs,
    out: RunOutOpt = None,
    no_html: NoHtmlOpt = False,
    json_out: RunJsonOpt = False,
) -> None:
    """Show what exists for a config and whether `rewts run` would reuse it.

    Takes the same flags as `rewts run`, so `rewts status --profile quick` describes what
    `rewts run --profile quick` would do: each stage fresh (skipped), stale (rerun, with the
    reason) or missing.
    """
    cfg = args.load()
    from rewts.pipeline import default_run_dir, pipeline_status
    from rewts.ui.run_summary import print_status

    run_dir: Path = out if out is not None else default_run_dir(cfg, args.profile)
    states = pipeline_status(cfg, run_dir, html=not no_html)
    if json_out:
        payload = {"run_dir": str(run_dir), "stages": [asdict(s) for s in states]}
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        print_status(states, out_console)
