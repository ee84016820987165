"""``kill -9`` (and Ctrl-C) of ``rewts strategies`` at seeded random points, then a rerun: the
result equals an uninterrupted run's (same cache entries, same strategies), the cache passes
``PRAGMA integrity_check`` after every interruption, the API key (a sentinel) is nowhere in what
the killed processes left or printed, and two processes sharing one cache lose nothing.

Reflection is on, so each period's prompt carries the previous period's answer: a rerun after
a crash must rebuild exactly the chain the uninterrupted run built, from the cache.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rewts.cli import app
from rewts.sim import SimConfig, SimServer

from .faultkit import integrity

pytestmark = pytest.mark.slow

TICKERS = "AAA,BBB"
KEY = "sk-SENTINEL-crash-3c9e0f7a2b"
#: what must be equal between runs (status, latency and tokens describe the run, not the result)
SAME = [
    "ticker",
    "period",
    "start",
    "end",
    "inputs_end",
    "direction",
    "confidence",
    "strength",
    "tau",
    "explanation",
    "key_features",
    "cache_key",
    "memory",
]


def _args(sim: SimServer, tickers: str = TICKERS) -> list[str]:
    return [
        "strategies",
        "--source",
        "synthetic",
        "--tickers",
        tickers,
        "--provider",
        "openai",
        "--base-url",
        sim.openai_base_url,
        "--model",
        "gpt-4o-mini",
        "--rps",
        "60",
        "--no-progress",
        "--set",
        "data.start_date=2019-01-01",
        "--set",
        "llm.reflection=true",
        "--set",
        "llm.logprobs=false",
    ]


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["OPENAI_API_KEY"] = KEY
    return subprocess.Popen(
        [sys.executable, "-c", "from rewts.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ctrl_c_default,
    )


def _ctrl_c_default() -> None:
    """In the child, before exec: SIGINT back to its default. A process started in the
    background by a non-interactive shell (``pytest ... &``, nohup) ignores SIGINT, its
    children inherit that, and Python then never raises KeyboardInterrupt: the Ctrl-C below
    would be lost and the run would finish with exit 0."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _entries(db: Path) -> dict[str, str]:
    """key -> strategy JSON, read with plain sqlite3 (not the cache's own code)."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT key, strategy_json FROM strategies"))
    finally:
        conn.close()


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return len(_entries(db))
    except Exception:  # the schema may not exist yet in the first instant
        return 0


def _outputs(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        t: pd.read_parquet(folder / "data" / "strategies" / f"{t}.parquet")[SAME]
        for t in TICKERS.split(",")
    }


def _reference(tmp_path: Path, sim: SimServer, monkeypatch) -> Path:
    ref = tmp_path / "ref"
    ref.mkdir()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.chdir(ref)
    result = CliRunner().invoke(app, _args(sim))
    monkeypatch.chdir(tmp_path)
    assert result.exit_code == 0, result.output
    return ref


def test_interrupted_at_random_points_then_rerun_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    rng = random.Random(20261129)
    printed = b""
    with SimServer(SimConfig(latency_s=0.03, api_key=KEY)) as sim:
        ref = _reference(tmp_path, sim, monkeypatch)
        ref_db = ref / "cache" / "strategies.sqlite"
        total = _count(ref_db)
        assert total > 40

        work = tmp_path / "crash"
        work.mkdir()
        db = work / "cache" / "strategies.sqlite"
        # kill -9 at a random moment of start-up (imports, data stage, first requests); Ctrl-C
        # and kill -9 after a random number of new answers: always mid-run, never at the end
        plan = [
            ("time", rng.uniform(0.2, 2.0), signal.SIGKILL),
            ("answers", rng.randint(3, 12), signal.SIGINT),
            ("answers", rng.randint(3, 12), signal.SIGKILL),
        ]
        for how, amount, sig in plan:
            before = _count(db)
            proc = _spawn(_args(sim), work)
            deadline = time.monotonic() + 60
            if how == "time":
                time.sleep(amount)
            else:
                while _count(db) < before + amount and proc.poll() is None:
                    assert time.monotonic() < deadline, "no progress before the kill"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.03))
            assert proc.poll() is None, f"finished before the kill: {proc.communicate()[0]}"
            os.kill(proc.pid, sig)
            out, _ = proc.communicate(timeout=30)
            printed += out.encode()
            if sig == signal.SIGINT:
                assert proc.returncode == 130, out
                assert "everything finished so far is kept; rerun to resume" in out
                assert "Traceback" not in out
            if db.exists():
                assert integrity(db) == "ok"
            assert _count(db) < total
            assert not (work / "data" / "strategies").exists()  # no half output

        assert _count(db) > 0
        survived = _count(db)
        sent_before = sim.stats(log=False)["requests"]
        final = _spawn(_args(sim), work)
        out, _ = final.communicate(timeout=120)
        assert final.returncode == 0, out
        printed += out.encode()
        # the rerun sent only what was missing
        assert sim.stats(log=False)["requests"] - sent_before == total - survived

    assert integrity(db) == "ok"
    assert _entries(db) == _entries(ref_db)
    got, want = _outputs(work), _outputs(ref)
    for ticker in want:
        pd.testing.assert_frame_equal(got[ticker], want[ticker])
    written = b"".join(p.read_bytes() for p in work.rglob("*") if p.is_file())
    for piece in (KEY, KEY[:12], KEY[-10:]):
        assert piece.encode() not in written + printed


def test_two_processes_sharing_one_cache_at_once_lose_nothing(tmp_path):
    """Two ``rewts strategies`` processes, overlapping tickers, one cache file, at once."""
    shared = tmp_path / "shared.sqlite"
    with SimServer(SimConfig(latency_s=0.02)) as sim:
        procs = []
        for name, tickers in (("a", "AAA,BBB"), ("b", "BBB,CCC")):
            folder = tmp_path / name
            folder.mkdir()
            args = [*_args(sim, tickers), "--cache", str(shared)]
            procs.append((folder, tickers, _spawn(args, folder)))
        for _, _, proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out
        sent = sim.stats(log=False)["requests"]
    assert integrity(shared) == "ok"
    entries = _entries(shared)
    keys = set()
    for folder, tickers, _ in procs:
        for t in tickers.split(","):
            df = pd.read_parquet(folder / "data" / "strategies" / f"{t}.parquet")
            assert df["status"].isin(["ok", "cached"]).all()
            keys |= set(df["cache_key"])
    assert keys == set(entries)  # every answer of both runs is in the one file
    # BBB may be sent by both (they start together) but nothing is lost or duplicated
    assert (
        len(entries)
        <= sent
        <= len(entries)
        + len(pd.read_parquet(tmp_path / "a" / "data" / "strategies" / "BBB.parquet"))
    )
