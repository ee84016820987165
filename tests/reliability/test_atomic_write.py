"""The one atomic-write helper: whole file or old file, user-only by default, and a clean-up
that removes exactly the temporaries of writers that were killed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rewts import fileio
from rewts.fileio import (
    atomic_write,
    remove_orphan_temporaries,
    temporary_path,
    write_json_atomic,
    write_text_atomic,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_files_are_user_only_by_default_and_follow_the_umask_when_asked(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "private.txt", "x")
        write_text_atomic(tmp_path / "shared.txt", "x", mode=0o666)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private.txt") == 0o600
    assert _mode(tmp_path / "shared.txt") == 0o644


def test_the_temporary_is_user_only_before_the_writer_opens_it(tmp_path):
    seen: list[int] = []
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", lambda tmp: seen.append(_mode(tmp)))
    finally:
        os.umask(old)
    assert seen == [0o600]


def test_json_is_indented_with_sorted_keys(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"b": 1, "a": Path("x")})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": "x",\n  "b": 1\n}'


def test_threads_writing_one_file_never_share_a_temporary(tmp_path):
    target = tmp_path / "shared.txt"
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for _ in range(20):
                write_text_atomic(target, str(i) * 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    text = target.read_text()
    assert len(text) == 1000 and len(set(text)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.txt"]


def test_the_clean_up_removes_killed_writers_temporaries_only(tmp_path):
    orphan = temporary_path(tmp_path / "a.parquet", pid=_dead_pid())
    alive = temporary_path(tmp_path / "b.parquet", pid=os.getppid())
    mine = temporary_path(tmp_path / "c.parquet")
    foreign = tmp_path / ".notes.12345.tmp"  # not our name style: left alone
    for path in (orphan, alive, mine, foreign):
        path.write_bytes(b"half a file")
    remove_orphan_temporaries(tmp_path)
    assert not orphan.exists()
    assert alive.exists() and mine.exists() and foreign.exists()


def test_the_temporary_name_carries_the_pid_the_clean_up_reads(tmp_path):
    tmp = temporary_path(tmp_path / "manifest.json", pid=4321)
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(".manifest.json.4321.") and tmp.name.endswith(".tmp")
    assert fileio._writer_pid(tmp.name) == 4321
    assert fileio._writer_pid("manifest.json") is None
