"""What every command shares: building the config, the ``.env`` file, and error handling.

Every command accepts ``--config``, ``--set``, ``--profile``, ``--debug`` and ``--no-progress``
after its name, plus the flags of the stages before it (defined in :mod:`rewts.cli.options`);
those flags are turned into config overrides here, so a flag and ``--set`` go through the
same validation.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from rewts.config import Config, load_config
from rewts.errors import ConfigError, RewtsError, StorageError
from rewts.fileio import MAX_CONFIG_BYTES, decode_utf8, read_regular
from rewts.redaction import install_log_redaction, redact_urls

#: stderr console for messages, errors and progress; stdout stays for tables and data
err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)

#: the environment variable naming a .env file (what ``--env-file`` sets per command)
ENV_FILE_VAR = "REWTS_ENV_FILE"


def split_list(value: str | None) -> list[str] | None:
    """Comma-separated command-line list to a Python list (None stays None)."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    node = tree
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return tree


@dataclass
class CommonArgs:
    """The options every command takes, gathered once."""

    config: Path | None = None
    sets: list[str] = field(default_factory=list)
    profile: str | None = None
    debug: bool = False
    no_progress: bool = False
    env_file: Path | None = None

    def load(self, flags: dict[str, Any] | None = None) -> Config:
        """Build the validated config; ``flags`` maps dotted keys to values (None = not given).

        The ``.env`` file (``--env-file`` or ``$REWTS_ENV_FILE``) is read first, so its
        variables serve both ``${VAR}`` in the YAML and the providers' key lookup.
        """
        load_env_file(self.env_file)
        overrides = [
            _nested(key, value) for key, value in (flags or {}).items() if value is not None
        ]
        return load_config(self.config, profile=self.profile, overrides=overrides, sets=self.sets)

    @property
    def show_progress(self) -> bool:
        return not self.no_progress and sys.stderr.isatty()

    def training_display(self) -> Any:
        """What renders training's events: a live bar on a terminal, a line per agent in a
        log, nothing (None) with ``--no-progress``."""
        if self.no_progress:
            return None
        from rewts.ui.training import make_training_display

        return make_training_display(live=self.show_progress)

    def say(self, line: str) -> None:
        """A progress line on stderr (none with ``--no-progress``)."""
        if not self.no_progress:
            say(line)


def say(line: str) -> None:
    """One line for the user on stderr, printed literally (no markup, no wrapping)."""
    err_console.print(line, highlight=False, markup=False, soft_wrap=True)


def common(
    config: Path | None,
    sets: list[str] | None,
    profile: str | None,
    debug: bool,
    no_progress: bool,
    env_file: Path | None = None,
) -> CommonArgs:
    return CommonArgs(
        config=config,
        sets=list(sets or []),
        profile=profile,
        debug=debug,
        no_progress=no_progress,
        env_file=env_file,
    )


def load_env_file(path: Path | str | None = None) -> dict[str, str]:
    """Put the variables of a ``.env`` file into ``os.environ``; returns those it set.

    ``path`` None means ``$REWTS_ENV_FILE`` (nothing when unset). Variables already in the
    environment win (an explicit ``export`` beats a file). The values are never printed: a
    parse problem names the file and line only. A file others can read gets a warning, since it
    usually holds API keys.
    """
    origin = "--env-file"
    if path is None:
        path = os.environ.get(ENV_FILE_VAR) or None
        origin = ENV_FILE_VAR
    if path is None:
        return {}
    from dotenv import dotenv_values

    path = Path(path).expanduser()
    if not os.path.lexists(path):
        raise ConfigError(
            f"{origin} = {str(path)!r}: file not found (a .env file of KEY=value lines)"
        )
    data = read_regular(path, limit=MAX_CONFIG_BYTES, error=ConfigError, what=f"{origin} = ")
    text = decode_utf8(data, path, ConfigError)
    mode = path.stat().st_mode & 0o077
    if mode:
        logging.getLogger("rewts").warning(
            "%s is readable by other users (mode %o); it holds API keys: chmod 600 %s",
            path,
            path.stat().st_mode & 0o777,
            path,
        )
    added: dict[str, str] = {}
    for key, value in dotenv_values(stream=io.StringIO(text)).items():
        if value is None or key in os.environ:
            continue
        os.environ[key] = value
        added[key] = value
    return added


#: OS errors the user fixes outside rewts (space, quota, a read-only disk): one line, exit 8
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}

#: variables whose values must never reach a log line or an error message
_SECRET_VARS = re.compile(r"(API_KEY|_TOKEN|_SECRET|PASSWORD)$")


def secret_values() -> list[str]:
    """The values of the key-like variables now set (long enough to be real secrets)."""
    return sorted(
        (v for k, v in os.environ.items() if _SECRET_VARS.search(k) and len(v) >= 8),
        key=len,
        reverse=True,
    )


def redact(text: str) -> str:
    """``text`` with every key-like environment value replaced by ``***`` and every URL
    without user:password and query (defence in depth: no provider is meant to echo a key,
    but a third-party message might)."""
    text = redact_urls(text)
    for value in secret_values():
        if value in text:
            text = text.replace(value, "***")
    return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Logs to whatever ``sys.stderr`` is at the time of the record (a test runner or a
    notebook swaps it), with secrets redacted."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def confirm_destructive(what: str, *, yes: bool) -> None:
    """Go on only when the user agreed to ``what`` (a sentence: "delete 12 entries from X").

    ``--yes`` agrees up front; on a terminal the user is asked (default: no); anywhere else
    (a script, a pipe) the command stops with the flag to add, so a typo never deletes or
    overwrites paid-for results unattended.
    """
    if yes:
        return
    if sys.stdin is not None and sys.stdin.isatty():
        if typer.confirm(f"{what}?", default=False, err=True):
            return
        err_console.print("aborted: nothing was changed")
        raise typer.Exit(code=1)
    raise ConfigError(f"this would {what}: rerun with --yes to confirm")


def check_out_file(path: Path, label: str, *, yes: bool) -> None:
    """Before any work: ``path`` is a file we may write (not a folder nor a special file),
    never overwritten without the user's agreement; ``label`` names it in the message."""
    if path.is_dir():
        raise ConfigError(f"{label}: is a folder; give a file name inside it")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise ConfigError(f"{label}: not a regular file")
        confirm_destructive(f"overwrite {path}", yes=yes)


def check_out_folder(
    folder: Path, cfg: Config, *, stage_key: str, ours: tuple[str, ...], yes: bool
) -> None:
    """Before any work: ``--out`` must be a folder (or not exist yet), not another stage's
    folder, and not a folder of someone else's files unless ``--yes``.

    ``ours`` are glob patterns of the files this stage writes there; a folder holding only
    those (an earlier run's) is reused without asking.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: is a file, not a folder; give a folder path")
    where = folder.expanduser().resolve()
    for key, other in cfg.stage_folders().items():
        if key != stage_key and other.expanduser().resolve() == where:
            raise ConfigError(
                f"--out {folder}: that is {key}, another stage's folder; its files would be "
                "overwritten: pick another folder"
            )
    if not folder.is_dir():
        return
    foreign = [
        p.name
        for p in folder.iterdir()
        if not p.name.startswith(".") and not any(p.match(pattern) for pattern in ours)
    ]
    if foreign:
        shown = ", ".join(sorted(foreign)[:3]) + (" ..." if len(foreign) > 3 else "")
        confirm_destructive(f"write into {folder}, which holds other files ({shown})", yes=yes)


def data_flags(
    tickers: str | None,
    data_dir: Path | None,
    source: str | None,
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """Config overrides from the data-stage flags."""
    flags: dict[str, Any] = {
        "tickers": split_list(tickers),
        "data.csv_dir": str(data_dir) if data_dir is not None else None,
        "data.source": source,
        "data.start_date": start,
        "data.end_date": end,
    }
    if data_dir is not None and source is None:
        flags["data.source"] = "csv"
    return flags


def llm_flags(
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    workers: str | None = None,
    rps: float | None = None,
    rpm: float | None = None,
    cache: Path | None = None,
    on_failure: str | None = None,
    no_news: bool = False,
) -> dict[str, Any]:
    """Config overrides from the strategy-stage flags."""
    parsed_workers: Any = workers
    if workers is not None and workers.strip().isdigit():
        parsed_workers = int(workers)
    return {
        "llm.provider": provider,
        "llm.model": model,
        "llm.base_url": base_url,
        "parallel_workers": parsed_workers,
        "max_requests_per_second": rps,
        "llm.rate_limits.rpm": rpm,
        "llm.cache_path": str(cache) if cache is not None else None,
        "llm.on_failure": on_failure,
        "skip_news_processing": True if no_news else None,
    }


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be: every stage already stops
    cleanly on that (the process pool's workers are stopped, finished work is kept)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def _sigterm_like_ctrl_c() -> Any:
    """Install the SIGTERM handler for one command; returns the previous one (None when this
    is not the main thread, where Python cannot install handlers)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        return None


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def _error_exit(message: str, code: int, debug: bool) -> typer.Exit:
    """Print a user error as one line (the traceback first with ``--debug``), secrets
    redacted; returns the exit to raise."""
    if debug:
        # rendered first, then redacted: the traceback repeats the message
        with err_console.capture() as captured:
            err_console.print_exception()
        sys.stderr.write(redact(captured.get()))
    err_console.print(
        f"[bold red]error:[/] {escape(redact(message))}",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )
    return typer.Exit(code=code)


@contextlib.contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn a :class:`RewtsError` into one clear line and its exit code.

    With ``--debug`` (or ``REWTS_DEBUG=1``) the traceback is shown as well. Errors that are not
    ``RewtsError`` are bugs and always keep their traceback.
    """
    debug = debug or os.environ.get("REWTS_DEBUG") == "1"
    install_log_redaction()
    previous_sigterm = _sigterm_like_ctrl_c()
    # everything a command creates is the user's alone (prompts, paid answers, results):
    # one umask instead of a mode at each of the many places that write files and folders
    previous_umask = os.umask(0o077)
    root = logging.getLogger()
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = logging.DEBUG if debug else logging.WARNING
    handler.setLevel(level)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    except RewtsError as exc:
        raise _error_exit(str(exc), exc.exit_code, debug) from None
    except OSError as exc:
        if exc.errno not in _STORAGE_ERRNOS:
            raise  # anything else is a bug: keep its traceback
        where = f"{exc.filename}: " if exc.filename else ""
        message = (
            f"{where}{exc.strerror or exc}; everything finished before it is kept "
            "(outputs are written to a temporary file, then renamed): fix that and rerun"
        )
        raise _error_exit(message, StorageError.exit_code, debug) from None
    except Terminated:
        err_console.print(
            "[yellow]terminated[/] (SIGTERM): everything finished so far is kept; rerun to resume."
        )
        raise typer.Exit(code=143) from None
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted[/]: everything finished so far is kept; rerun to resume."
        )
        raise typer.Exit(code=130) from None
    finally:
        os.umask(previous_umask)
        _restore_sigterm(previous_sigterm)
        # one command's handler, removed after it: a second command in the same process
        # (tests, notebooks) does not log to the first one's closed stream
        root.removeHandler(handler)
        root.setLevel(old_level)
