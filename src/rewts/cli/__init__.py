"""The ``rewts`` command line: one module per command, all sharing :mod:`rewts.cli.common`."""

from __future__ import annotations

from rewts.cli.app import app


def main() -> None:
    """Entry point of the ``rewts`` script."""
    app()


__all__ = ["app", "main"]
