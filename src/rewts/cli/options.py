"""The command-line options every stage command shares, each defined once, and the
:func:`options` decorator that gives a command the groups it takes.

A command lists its own options as parameters and names the shared groups
(``@options(DATA, LLM, OWN, COMMON)``); it receives one :class:`CommandArgs` with the common
options and the groups' config overrides, and runs inside :func:`~rewts.cli.common.user_errors`
(one error line and its exit code), so no command repeats the option blocks or the error
handling. Flag names and help texts are the ones the commands always had.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from rewts.cli.common import CommonArgs, data_flags, llm_flags, split_list, user_errors
from rewts.config import Config


def optional(*decls: str, help: str, **kwargs: Any) -> Any:
    """A flag whose default is None, "not given: the config (or the command) decides", so its
    help shows no default."""
    return typer.Option(*decls, help=help, show_default=False, **kwargs)


ConfigOpt = Annotated[
    Path | None,
    optional(
        "--config",
        "-c",
        help="YAML config (default: configs/hybrid/rewts_llm_rl.yaml if present, else the packaged defaults).",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    optional("--set", help="Override any config key: --set rewts.gamma=0.99 (repeatable)."),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", help="Apply a named profile from the config (e.g. quick)."),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for user errors too.")]
NoProgressOpt = Annotated[
    bool, typer.Option("--no-progress", help="Plain log lines instead of a live progress display.")
]
EnvFileOpt = Annotated[
    Path | None,
    optional(
        "--env-file",
        help="A .env file with API keys (KEY=value lines); variables already set win. "
        "Default: $REWTS_ENV_FILE when set.",
    ),
]


# Flags of the data stage, accepted by every stage after it.
TickersOpt = Annotated[
    str | None, optional("--tickers", help="Comma-separated tickers, e.g. AAPL,MSFT.")
]
DataDirOpt = Annotated[
    Path | None, optional("--data-dir", help="Folder of SYMBOL.csv files (sets data.csv_dir).")
]
SourceOpt = Annotated[
    str | None, optional("--source", help="Data source: auto, csv, yahoo or synthetic.")
]
StartOpt = Annotated[str | None, optional("--start", help="First date (data.start_date).")]
EndOpt = Annotated[str | None, optional("--end", help="Last date (data.end_date).")]

# Flags of the strategy stage, accepted by every stage after it.
ProviderOpt = Annotated[
    str | None,
    optional(
        "--provider",
        help="LLM provider: auto, heuristic, openai, deepseek, gemini, local, or import "
        "(strategies from llm.import_path).",
    ),
]
ModelOpt = Annotated[str | None, optional("--model", help="Model name (llm.model).")]
BaseUrlOpt = Annotated[
    str | None, optional("--base-url", help="API base URL (a simulator or a local server).")
]
WorkersOpt = Annotated[
    str | None, optional("--workers", help="Concurrent requests: a number or auto.")
]
RpsOpt = Annotated[float | None, optional("--rps", help="Max requests per second.")]
RpmOpt = Annotated[float | None, optional("--rpm", help="Max requests per minute.")]
CacheOpt = Annotated[Path | None, optional("--cache", help="Strategy cache (SQLite) path.")]
OnFailureOpt = Annotated[
    str | None, optional("--on-failure", help="neutral, heuristic, skip or error.")
]
NoNewsOpt = Annotated[
    bool, typer.Option("--no-news", help="Skip the news analyst (skip_news_processing).")
]

YesOpt = Annotated[
    bool,
    typer.Option(
        "--yes", "-y", help="Confirm a destructive action (delete or overwrite) without asking."
    ),
]

# Flags of the training and backtest stages (`rewts run`, `status`, `signal`, `compare`).
RunsOpt = Annotated[
    int | None, optional("--runs", min=1, help="Seeds per learned agent (backtest.runs).")
]
AgentsOpt = Annotated[
    str | None,
    optional("--agents", help="Comma-separated agents to backtest (backtest.agents)."),
]
EpisodesOpt = Annotated[
    int | None,
    optional("--episodes", min=1, help="Episodes per chunk (rewts.episodes_per_chunk)."),
]
JobsOpt = Annotated[
    int | None, optional("--jobs", min=1, help="Training processes (rewts.n_jobs).")
]
NoHtmlOpt = Annotated[bool, typer.Option("--no-html", help="Write the CSV/JSON files only.")]
RunJsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print the run summary as JSON on stdout instead of tables."),
]
RunOutOpt = Annotated[
    Path | None,
    optional(
        "--out",
        help="Results folder of this run (default: backtest.output_dir/<profile or 'default'>).",
    ),
]


def stage_flags(
    runs: int | None = None,
    agents: str | None = None,
    episodes: int | None = None,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Config overrides from the training and backtest flags."""
    return {
        "backtest.runs": runs,
        "backtest.agents": split_list(agents),
        "rewts.episodes_per_chunk": episodes,
        "rewts.n_jobs": jobs,
    }


# ----------------------------------------------------------------------------- groups


def _opt(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


@dataclass(frozen=True)
class Group:
    """Options that travel together. ``to_flags`` turns their values into config overrides
    (dotted key -> value, None = not given); without it they are :class:`CommandArgs`
    fields."""

    params: tuple[inspect.Parameter, ...]
    to_flags: Callable[..., dict[str, Any]] | None = None

    def only(self, *names: str) -> Group:
        """The group with just these options (a command that takes part of it)."""
        return Group(tuple(p for p in self.params if p.name in names), self.to_flags)

    def apply(self, args: CommandArgs, values: dict[str, Any]) -> None:
        if self.to_flags is not None:
            # None is "not given": a part of a group must not unset what another part gave
            flags = self.to_flags(**values)
            args.flags.update({k: v for k, v in flags.items() if v is not None})
            return
        for name, value in values.items():
            setattr(args, name, list(value or []) if name == "sets" else value)


#: where the command's own parameters go among the groups (first when not named)
OWN = Group(())
#: --config, --set, --profile, --debug: every command
CONFIG = Group(
    (
        _opt("config", ConfigOpt),
        _opt("sets", SetOpt),
        _opt("profile", ProfileOpt),
        _opt("debug", DebugOpt, False),
    )
)
NO_PROGRESS = Group((_opt("no_progress", NoProgressOpt, False),))
ENV_FILE = Group((_opt("env_file", EnvFileOpt),))
YES = Group((_opt("yes", YesOpt, False),))
#: what the stage commands end with
COMMON = Group(CONFIG.params + NO_PROGRESS.params + ENV_FILE.params)
#: the data stage's flags, taken by every stage after it
DATA = Group(
    (
        _opt("tickers", TickersOpt),
        _opt("data_dir", DataDirOpt),
        _opt("source", SourceOpt),
        _opt("start", StartOpt),
        _opt("end", EndOpt),
    ),
    data_flags,
)
#: the strategy stage's flags, taken by every stage after it
LLM = Group(
    (
        _opt("provider", ProviderOpt),
        _opt("model", ModelOpt),
        _opt("base_url", BaseUrlOpt),
        _opt("workers", WorkersOpt),
        _opt("rps", RpsOpt),
        _opt("rpm", RpmOpt),
        _opt("cache", CacheOpt),
        _opt("on_failure", OnFailureOpt),
        _opt("no_news", NoNewsOpt, False),
    ),
    llm_flags,
)
#: where `rewts run`, `status` and `compare` put their results and how they print them
RESULTS = Group(
    (
        _opt("out", RunOutOpt),
        _opt("no_html", NoHtmlOpt, False),
        _opt("json_out", RunJsonOpt, False),
    )
)
#: the training and backtest flags of `rewts run`
TRAINING = Group(
    (
        _opt("runs", RunsOpt),
        _opt("agents", AgentsOpt),
        _opt("episodes", EpisodesOpt),
        _opt("jobs", JobsOpt),
    ),
    stage_flags,
)


@dataclass
class CommandArgs(CommonArgs):
    """The common options of a command and the config overrides its stage flags make."""

    #: not a flag of this command: no progress display (an import, a cache command)
    no_progress: bool = True
    yes: bool = False
    #: the :data:`RESULTS` options
    out: Path | None = None
    no_html: bool = False
    json_out: bool = False
    flags: dict[str, Any] = field(default_factory=dict)

    def load(self, flags: dict[str, Any] | None = None) -> Config:
        """The validated config from the stage flags plus the command's own ``flags``."""
        return super().load(self.flags | (flags or {}))


def options(*groups: Group) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the options of ``groups`` (its own parameters where :data:`OWN` is,
    else first). The command takes a :class:`CommandArgs` first and runs inside
    :func:`user_errors`."""
    parts = groups if OWN in groups else (OWN, *groups)
    shared = [g for g in parts if g is not OWN]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
        params = [p for g in parts for p in (own if g is OWN else g.params)]

        def run(**kwargs: Any) -> None:
            args = CommandArgs()
            for group in shared:
                group.apply(args, {p.name: kwargs.pop(p.name) for p in group.params})
            with user_errors(args.debug):
                command(args, **kwargs)

        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
        )
        run.__annotations__ = {p.name: p.annotation for p in params}
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(run, attr, getattr(command, attr))
        return run

    return decorate
