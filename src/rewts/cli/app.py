"""The typer application; each command lives in its own module and registers itself here."""

from __future__ import annotations

import typer

from rewts import __version__

app = typer.Typer(
    name="rewts",
    help=(
        "LLM-guided RL trading research: data -> strategies (LLM) -> train (chunked DDQN) "
        "-> backtest (ReWTS ensemble vs baselines)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rewts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """rewts: every command takes --config, --set, --profile, --debug and --no-progress."""


# Importing the command modules registers them on ``app``.
from rewts.cli import (  # noqa: E402,F401
    backtest_cmd,
    cache_cmd,
    calibrate_cmd,
    compare_cmd,
    data_cmd,
    run_cmd,
    signal_cmd,
    sim_cmd,
    status_cmd,
    strategies_cmd,
    train_cmd,
)
