"""Reading a file the user named, and writing files so that no reader ever sees half of one.

Reading: a data path can be a FIFO (opening it waits for a writer forever), a link to
``/dev/zero`` (reading it never ends), a folder, a symlink loop or a file we may not read. Every
path that reads a user's file goes through :func:`read_regular`, which opens without blocking,
checks what the descriptor really is (after symlinks) and reads at most ``limit`` bytes.

Writing: every file rewts writes goes through :func:`atomic_write` (or its text, bytes and JSON
forms): the content goes to a temporary file beside the target, named
``.<name>.<pid>.<random>.tmp``, which then replaces the target with ``os.replace``. A writer
killed mid-write leaves only such a temporary; :func:`remove_orphan_temporaries` deletes those
whose process is gone. The temporary is user-only (0600) unless ``mode`` asks for more (the
umask still applies), so a file with paid answers or prompts is never readable by others, not
even while it is written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewts.errors import DataError, RewtsError

#: default bound for market data, headlines and other inputs (the real files are ~1 MB)
MAX_INPUT_BYTES = 512 * 1024 * 1024
#: configs and .env files are a few kB
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _describe(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (check the file's owner and mode)"
    if exc.errno == errno.ENOENT:
        return "file not found"
    return exc.strerror or type(exc).__name__


def _open_regular(path: Path, *, limit: int, error: type[RewtsError], what: str) -> tuple[int, int]:
    """An open descriptor on ``path`` and its size, after checking it is a regular file."""
    label = f"{what}{path}" if what else str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{label}: cannot be read: {_describe(exc)}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{label}: is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or special file"
            raise error(f"{label}: not a regular file ({kind}); point it at a file")
        if info.st_size > limit:
            raise error(
                f"{label}: {info.st_size:,} bytes, more than the {limit:,} this input may have"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def read_regular(
    path: Path | str,
    *,
    limit: int = MAX_INPUT_BYTES,
    error: type[RewtsError] = DataError,
    what: str = "",
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, else ``error`` naming the path.

    ``what`` prefixes the path in messages (``"data.news_path = "``).
    """
    path = Path(path)
    fd, _ = _open_regular(path, limit=limit, error=error, what=what)
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            data = fh.read(limit + 1)  # a file that grows while read stays bounded too
    except OSError as exc:
        raise error(f"{what}{path}: cannot be read: {_describe(exc)}") from None
    if len(data) > limit:
        raise error(f"{what}{path}: more than the {limit:,} bytes this input may have")
    return data


def sha256_regular(
    path: Path | str,
    *,
    limit: int = MAX_INPUT_BYTES,
    error: type[RewtsError] = DataError,
    what: str = "",
) -> str:
    """SHA-256 of a regular file, read in blocks (same checks as :func:`read_regular`)."""
    path = Path(path)
    fd, _ = _open_regular(path, limit=limit, error=error, what=what)
    digest = hashlib.sha256()
    seen = 0
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                seen += len(block)
                if seen > limit:
                    raise error(f"{what}{path}: more than the {limit:,} bytes this input may have")
                digest.update(block)
    except OSError as exc:
        raise error(f"{what}{path}: cannot be read: {_describe(exc)}") from None
    return digest.hexdigest()


def decode_utf8(data: bytes, path: Path | str, error: type[RewtsError] = DataError) -> str:
    """``data`` as UTF-8 text; a bad byte is ``error`` naming the file, line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"{path}, line {line}, column {column}: byte 0x{data[exc.start]:02x} is not UTF-8 "
            "(save the file as UTF-8)"
        ) from None


# ----------------------------------------------------------------------------- atomic writes

#: every temporary ends so; the pid before the random part tells whether its writer still runs
TEMP_SUFFIX = ".tmp"
#: the default mode of a written file: user-only, whatever the umask
PRIVATE = 0o600


def temporary_path(path: Path, pid: int | None = None) -> Path:
    """The temporary beside ``path`` that a writer with ``pid`` uses: ``.<name>.<pid>.<random>.tmp``.

    The random part keeps two threads of one process apart; the pid lets
    :func:`remove_orphan_temporaries` tell a killed writer's file from a running one's.
    """
    pid = os.getpid() if pid is None else pid
    return path.with_name(f".{path.name}.{pid}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _writer_pid(name: str) -> int | None:
    """The pid in a temporary's name, or None when ``name`` is not one of ours."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return None
    parts = name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 8:
        return None
    return int(parts[1])


def atomic_write(path: Path | str, write: Callable[[Path], object], *, mode: int = PRIVATE) -> None:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary, which then
    replaces ``path``.

    The temporary is created (exclusively) with ``mode`` before ``write`` opens it, so the file
    never exists with looser permissions; ``mode=0o666`` lets the umask decide, as a plain
    ``open`` would. On any error the temporary is removed and the old ``path`` stays.
    """
    path = Path(path)
    tmp = temporary_path(path)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), mode)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path | str, data: bytes, *, mode: int = PRIVATE) -> None:
    """:func:`atomic_write` of ``data``."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data), mode=mode)


def write_text_atomic(path: Path | str, text: str, *, mode: int = PRIVATE) -> None:
    """:func:`atomic_write` of ``text`` as UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def write_json_atomic(path: Path | str, data: Any, *, mode: int = PRIVATE) -> None:
    """:func:`atomic_write` of ``data`` as indented JSON with sorted keys (dates and other
    objects as ``str``)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str), mode=mode)


def remove_orphan_temporaries(folder: Path | str) -> None:
    """Delete the temporaries in ``folder`` left by writers that were killed (their pid is
    gone); a running writer's, this process's and files not named like ours stay."""
    for tmp in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        pid = _writer_pid(tmp.name)
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass  # alive, someone else's
