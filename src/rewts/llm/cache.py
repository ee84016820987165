"""The strategy cache: SQLite in WAL mode, exact keys, one short transaction per answer.

Why SQLite: it is crash-safe (a committed answer survives ``kill -9``), shared safely by threads
and processes (each writer its own connection, ``busy_timeout`` instead of failing on a lock),
and queryable for ``rewts cache stats|export|prune``; a JSON file rewritten on every insert is
none of these. The key is a SHA-256 of everything that determines the answer (see
:func:`cache_key`), so two periods with different inputs can never share an entry.

The file is created with user-only permissions (0600) and never holds an API key: only the
request messages, the raw answer, the parsed strategy and usage figures.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rewts.errors import ConfigError, RewtsError, StorageError

_F = TypeVar("_F", bound=Callable[..., Any])

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS strategies (
    key            TEXT PRIMARY KEY,
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    ticker         TEXT,
    period         INTEGER,
    settings       TEXT NOT NULL,
    messages       TEXT NOT NULL,
    response_text  TEXT NOT NULL,
    strategy_json  TEXT NOT NULL,
    entropy        REAL,
    tokens_in      INTEGER NOT NULL DEFAULT 0,
    tokens_out     INTEGER NOT NULL DEFAULT 0,
    latency_s      REAL,
    created_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS strategies_prompt ON strategies(prompt_version);
CREATE INDEX IF NOT EXISTS strategies_created ON strategies(created_at);
CREATE TABLE IF NOT EXISTS daily_usage (
    day      TEXT NOT NULL,
    scope    TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, scope)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def cache_key(
    provider: str,
    model: str,
    prompt_version: str,
    messages: Sequence[Mapping[str, str]],
    settings: Mapping[str, Any],
) -> str:
    """SHA-256 of everything that determines an answer; exact, never rounded."""
    payload = json.dumps(
        {
            "provider": provider,
            "model": model,
            "prompt_version": prompt_version,
            "messages": [dict(m) for m in messages],
            "settings": dict(settings),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached answer."""

    key: str
    provider: str
    model: str
    prompt_version: str
    ticker: str | None
    period: int | None
    settings: str
    messages: str
    response_text: str
    strategy_json: str
    entropy: float | None
    tokens_in: int
    tokens_out: int
    latency_s: float | None
    created_at: str


_COLUMNS = [f for f in CacheEntry.__dataclass_fields__]


def _sqlite_errors(method: _F) -> _F:
    """Turn SQLite's errors into one line naming the cache file and what to do.

    Garbage pages, a foreign table or a full disk show up at query time, not when the file is
    opened, so every public method goes through this.
    """

    @functools.wraps(method)
    def wrapper(self: StrategyCache, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except RewtsError:
            raise
        except sqlite3.Error as exc:
            raise self.user_error(exc) from exc

    return wrapper  # type: ignore[return-value]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class StrategyCache:
    """Thread- and process-safe SQLite cache. Each thread gets its own connection."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._create_file()
        conn = self._conn()

        def create_schema() -> None:
            self._check_columns(conn)  # before the schema's indexes touch a foreign table
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )

        try:
            self._while_locked(create_schema)
            self._check_schema(conn)
        except RewtsError:
            self.close()
            raise
        except sqlite3.Error as exc:
            self.close()
            raise self.user_error(exc) from exc

    def user_error(self, exc: sqlite3.Error) -> RewtsError:
        """The rewts error for a SQLite failure on this file (never a traceback)."""
        text = str(exc)
        if "full" in text:  # SQLITE_FULL: "database or disk is full"
            return StorageError(
                f"llm.cache_path = {self.path}: the disk is full ({text}); the cache is intact "
                "(every answer committed so far is kept): free space and rerun to resume"
            )
        if "locked" in text or "busy" in text:
            return StorageError(
                f"llm.cache_path = {self.path}: locked by another process for over "
                f"{self.busy_timeout_s:g} s ({text}); wait for it or use another --cache"
            )
        return ConfigError(
            f"llm.cache_path = {self.path}: not a usable SQLite cache ({text}); "
            "move or delete the file (it is only a cache: a rerun asks again for what "
            "it held) or point --cache elsewhere"
        )

    def _check_columns(self, conn: sqlite3.Connection) -> None:
        """Refuse a file whose ``strategies`` table is someone else's (it is left untouched)."""
        columns = [row[1] for row in conn.execute("PRAGMA table_info(strategies)")]
        if columns and columns != _COLUMNS:
            raise ConfigError(
                f"llm.cache_path = {self.path}: its 'strategies' table is not a rewts cache "
                f"(columns: {', '.join(columns)}); point --cache at another file"
            )

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Warn when a newer rewts wrote this cache (this one may misread it)."""
        row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row else SCHEMA_VERSION
        except ValueError:
            version = SCHEMA_VERSION + 1
        if version > SCHEMA_VERSION:
            logging.getLogger(__name__).warning(
                "%s was written by a newer rewts (cache schema %s; this version knows %s): "
                "it is used as schema %s, which may misread it; upgrade rewts or use another "
                "--cache",
                self.path,
                row[0] if row else "?",
                SCHEMA_VERSION,
                SCHEMA_VERSION,
            )

    def _while_locked(self, step: Callable[[], Any]) -> Any:
        """Run ``step``, retrying while another connection holds a lock SQLite will not wait
        for (switching to WAL, creating the schema: two processes opening a new cache at once)."""
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.005
        while True:
            try:
                return step()
            except sqlite3.OperationalError as exc:
                locked = "locked" in str(exc) or "busy" in str(exc)
                if not locked or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _create_file(self) -> None:
        try:
            mode = self.path.stat().st_mode if self.path.exists() else stat.S_IFREG
            if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
                # /dev/null or a FIFO: SQLite would misbehave and leave a -journal file beside
                # it (a folder fails to open below, with its own message)
                raise ConfigError(
                    f"llm.cache_path = {self.path}: not a regular file; point --cache at a "
                    "file (created if missing)"
                )
            if not self.path.parent.exists():
                # a folder rewts makes for the cache is the user's alone (0700); an existing
                # folder is left as the user set it up
                self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            # create with 0600 before SQLite opens it; its -wal/-shm files inherit the mode
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        except OSError as exc:
            raise ConfigError(
                f"llm.cache_path = {self.path}: cannot create the cache file ({exc.strerror})"
            ) from None

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
                self._while_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                # WAL + NORMAL: a commit survives a killed process (not a power cut), fast
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise self.user_error(exc) from None
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> StrategyCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ entries

    @_sqlite_errors
    def get(self, key: str) -> CacheEntry | None:
        row = (
            self._conn()
            .execute(f"SELECT {', '.join(_COLUMNS)} FROM strategies WHERE key = ?", (key,))
            .fetchone()
        )
        return CacheEntry(*row) if row else None

    @_sqlite_errors
    def get_many(self, keys: Iterable[str]) -> dict[str, CacheEntry]:
        """Entries for the keys present (one query per 500 keys)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, CacheEntry] = {}
        conn = self._conn()
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for row in conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM strategies WHERE key IN ({marks})", part
            ):
                found[row[0]] = CacheEntry(*row)
        return found

    @_sqlite_errors
    def put(
        self,
        key: str,
        *,
        provider: str,
        model: str,
        prompt_version: str,
        settings: Mapping[str, Any],
        messages: Sequence[Mapping[str, str]],
        response_text: str,
        strategy_json: str,
        entropy: float | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        latency_s: float | None = None,
        ticker: str | None = None,
        period: int | None = None,
    ) -> None:
        """Store one answer in its own short transaction (committed before returning)."""
        conn = self._conn()
        conn.execute(
            "INSERT OR REPLACE INTO strategies VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                key,
                provider,
                model,
                prompt_version,
                ticker,
                period,
                json.dumps(dict(settings), sort_keys=True),
                json.dumps([dict(m) for m in messages], ensure_ascii=False),
                response_text,
                strategy_json,
                entropy,
                int(tokens_in),
                int(tokens_out),
                latency_s,
                _now(),
            ),
        )

    @_sqlite_errors
    def entries(self) -> list[CacheEntry]:
        rows = self._conn().execute(
            f"SELECT {', '.join(_COLUMNS)} FROM strategies ORDER BY created_at, key"
        )
        return [CacheEntry(*row) for row in rows]

    @_sqlite_errors
    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM strategies").fetchone()[0])

    @_sqlite_errors
    def stats(self) -> dict[str, Any]:
        conn = self._conn()
        total, tin, tout, first, last = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(tokens_in),0), COALESCE(SUM(tokens_out),0), "
            "MIN(created_at), MAX(created_at) FROM strategies"
        ).fetchone()
        by = conn.execute(
            "SELECT provider, model, prompt_version, COUNT(*) FROM strategies "
            "GROUP BY provider, model, prompt_version ORDER BY 4 DESC"
        ).fetchall()
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return {
            "path": str(self.path),
            "entries": int(total),
            "tokens_in": int(tin),
            "tokens_out": int(tout),
            "oldest": first,
            "newest": last,
            "size_bytes": size,
            "by_model": [
                {"provider": p, "model": m, "prompt_version": v, "entries": n} for p, m, v, n in by
            ],
        }

    @_sqlite_errors
    def clear(self) -> int:
        conn = self._conn()
        n = len(self)
        conn.execute("DELETE FROM strategies")
        conn.execute("VACUUM")
        return n

    @staticmethod
    def _prune_filter(
        older_than: dt.timedelta | None, prompt_version: str | None
    ) -> tuple[str, list[str]]:
        """The WHERE clause of a prune and its parameters."""
        if older_than is None and prompt_version is None:
            raise ConfigError("cache prune needs --older-than DAYS and/or --prompt-version V")
        where, params = [], []
        if older_than is not None:
            if older_than <= dt.timedelta(0):
                # a negative age puts the cutoff in the future: every entry would match
                raise ConfigError(
                    f"--older-than {older_than.total_seconds() / 86400:g}: must be a positive "
                    "number of days"
                )
            cutoff = (dt.datetime.now(dt.UTC) - older_than).isoformat(timespec="milliseconds")
            where.append("created_at < ?")
            params.append(cutoff)
        if prompt_version is not None:
            where.append("prompt_version = ?")
            params.append(prompt_version)
        return " AND ".join(where), params

    @_sqlite_errors
    def prune(
        self,
        *,
        older_than: dt.timedelta | None = None,
        prompt_version: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete entries older than ``older_than`` and/or of one ``prompt_version``; returns
        how many (``dry_run``: only count them, deleting nothing)."""
        where, params = self._prune_filter(older_than, prompt_version)
        if dry_run:
            row = self._conn().execute(f"SELECT COUNT(*) FROM strategies WHERE {where}", params)
            return int(row.fetchone()[0])
        cur = self._conn().execute(f"DELETE FROM strategies WHERE {where}", params)
        return int(cur.rowcount)

    @_sqlite_errors
    def integrity_ok(self) -> bool:
        return self._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # ------------------------------------------------------------- daily usage

    @_sqlite_errors
    def daily_requests(self, day: str, scope: str) -> int:
        row = (
            self._conn()
            .execute("SELECT requests FROM daily_usage WHERE day = ? AND scope = ?", (day, scope))
            .fetchone()
        )
        return int(row[0]) if row else 0

    @_sqlite_errors
    def take_daily_request(self, day: str, scope: str, limit: int) -> bool:
        """Count one request of ``day`` against ``limit`` if one is left; False when not.

        Check and increment are one statement, so processes (and threads) sharing this file
        can never together send more than ``limit`` in a day; reading the count once at start
        and adding to it later lets two concurrent runs each spend the whole budget.
        """
        conn = self._conn()
        conn.execute(
            "INSERT OR IGNORE INTO daily_usage(day, scope, requests) VALUES (?, ?, 0)",
            (day, scope),
        )
        cur = conn.execute(
            "UPDATE daily_usage SET requests = requests + 1 "
            "WHERE day = ? AND scope = ? AND requests < ?",
            (day, scope, int(limit)),
        )
        return cur.rowcount == 1

    @_sqlite_errors
    def add_daily_requests(self, day: str, scope: str, n: int = 1) -> None:
        self._conn().execute(
            "INSERT INTO daily_usage(day, scope, requests) VALUES (?, ?, ?) "
            "ON CONFLICT(day, scope) DO UPDATE SET requests = requests + excluded.requests",
            (day, scope, n),
        )
