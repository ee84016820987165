"""SIGTERM on ``rewts train`` with a process pool behaves like Ctrl-C: the pool's workers stop
with the parent (none is left to write a checkpoint later or idle forever), finished chunks are
kept, and the command ends with one clear line and exit 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

ARGS = [
    "train",
    "--source", "synthetic",
    "--tickers", "AAA,BBB",
    "--no-llm",
    "--episodes", "30",
    "--jobs", "2",
    "--no-progress",
    "--set", "executor=process",
    "--set", "rewts.hidden_dims=8",
    "--set", "rewts.chunk_length=100",
    "--set", "rewts.learning_starts=50",
    "--set", "rewts.train_freq=4",
    "--set", "rewts.buffer_size=2000",
    "--set", "trading_env.window=5",
    "--set", "data.start_date=2015-01-01",
    "--set", "split.train_start=2015-01-01",
    "--set", "split.train_end=2016-06-30",
    "--set", "split.test_start=2016-07-01",
    "--set", "split.test_end=2016-12-31",
]  # fmt: skip


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc; no psutil needed)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _metas(root: Path) -> list[Path]:
    return sorted(root.glob("checkpoints/*/*/rl_s0/meta.json"))


def test_sigterm_stops_the_pool_keeps_finished_chunks_and_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from rewts.cli import main; main()", *ARGS],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        # the pool is at work: one chunk finished, two workers alive
        while not _metas(tmp_path) or len(workers) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert len(_metas(tmp_path)) < 10, "training finished before the signal"
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        # no orphan: every worker is gone, so none writes a checkpoint later
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [p for p in workers if _alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in workers:  # never leave a stray process behind, pass or fail
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not orphans, f"workers left running after SIGTERM: {orphans}"
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "terminated (SIGTERM): everything finished so far is kept" in stderr
    kept = _metas(tmp_path)
    assert kept, "finished chunks were lost"
    for meta in kept:  # every kept checkpoint loads
        torch.load(meta.parent / "model.pt", map_location="cpu", weights_only=True)
