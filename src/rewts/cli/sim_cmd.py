"""``rewts sim``: a local LLM-API simulator for tests, benchmarks and demos."""

from __future__ import annotations

from rewts.cli.app import app
from rewts.cli.common import ConfigOpt, DebugOpt, ProfileOpt, SetOpt, common, user_errors
from rewts.errors import NotYetImplementedError


@app.command("sim")
def sim_command(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Serve a simulated LLM API (OpenAI chat-completions wire format) on loopback."""
    args = common(config, sets, profile, debug, True)
    with user_errors(args.debug):
        raise NotYetImplementedError("`rewts sim` is not built yet")
