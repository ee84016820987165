"""Reading a file the user named: a regular file of bounded size, or one clear error.

A data path can be a FIFO (opening it waits for a writer forever), a link to ``/dev/zero``
(reading it never ends), a folder, a symlink loop or a file we may not read. Every path that
reads a user's file goes through :func:`read_regular`, which opens without blocking, checks
what the descriptor really is (after symlinks) and reads at most ``limit`` bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

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


def _open_regular(
    path: Path, *, limit: int, error: type[RewtsError], what: str
) -> tuple[int, int]:
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
