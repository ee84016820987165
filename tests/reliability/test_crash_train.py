"""``kill -9`` of ``rewts train`` at seeded random points, then a rerun: every checkpoint
file loads (written to a temporary name and renamed, never half-written), finished chunks are
not retrained, and the final checkpoints equal an uninterrupted run's, weight for weight."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rewts.cli import app

pytestmark = pytest.mark.slow

ARGS = [
    "train",
    "--source", "synthetic",
    "--tickers", "AAA",
    "--no-llm",
    "--episodes", "4",
    "--jobs", "1",
    "--no-progress",
    "--set", "executor=local",
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
JOBS = 5  # four chunks of 100 days in 2015-01..2016-06, and the global agent
#: meta.json fields that describe the run (when, how long), not the result
#: (model_sha256 too: torch.save writes a random serialization id, so equal weights hash apart)
RUN_FIELDS = {
    "created_at",
    "duration_s",
    "wall_s",
    "finished_at",
    "started_at",
    "host",
    "model_sha256",
}


def _metas(root: Path) -> list[Path]:
    return sorted(root.glob("checkpoints/AAA/*/rl_s0/meta.json"))


def _snapshot(root: Path) -> dict[str, object]:
    """Everything a later stage reads: weights, counters, metadata, the manifest."""
    out: dict[str, object] = {}
    for meta in _metas(root):
        folder = meta.parent
        rel = str(folder.relative_to(root))
        payload = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
        out[rel + "/weights"] = {k: v.numpy().tobytes() for k, v in payload["online"].items()}
        out[rel + "/counters"] = payload["counters"]
        data = json.loads(meta.read_text())
        data["metrics"] = {k: v for k, v in data.get("metrics", {}).items() if k != "seconds"}
        out[rel + "/meta"] = {k: v for k, v in data.items() if k not in RUN_FIELDS}
        out[rel + "/curves"] = (folder / "curves.csv").read_text()
    manifest = root / "checkpoints" / "AAA" / "rl_s0.manifest.json"
    out["manifest"] = json.loads(manifest.read_text())
    return out


def _all_files_load(root: Path) -> None:
    """No half-written file under a final name (temporary names start with a dot)."""
    for path in (root / "checkpoints").rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            assert path.read_text().endswith("\n")


def test_sigkill_during_training_then_rerun_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    rng = random.Random(7)
    ref = tmp_path / "ref"
    ref.mkdir()
    monkeypatch.chdir(ref)
    result = CliRunner().invoke(app, ARGS)
    assert result.exit_code == 0, result.output
    assert len(_metas(ref)) == JOBS
    monkeypatch.chdir(tmp_path)

    work = tmp_path / "crash"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    # one kill at a random moment of start-up or the first chunk, one after a random number
    # of finished chunks (plus a random moment of the next one)
    plan = [("time", rng.uniform(1.0, 4.0)), ("chunks", rng.randint(1, 3))]
    for how, amount in plan:
        before = len(_metas(work))
        proc = subprocess.Popen(
            [sys.executable, "-c", "from rewts.cli import main; main()", *ARGS],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        if how == "time":
            time.sleep(amount)
        else:
            while len(_metas(work)) < min(before + amount, JOBS - 1) and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.05))
        assert proc.poll() is None, "training finished before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _all_files_load(work)
        assert not (work / "checkpoints" / "AAA" / "rl_s0.manifest.json").exists()

    done = len(_metas(work))
    assert 0 < done < JOBS
    finished = {
        path: (path.stat().st_mtime_ns, path.read_bytes())
        for meta in _metas(work)
        for path in (meta, meta.parent / "model.pt")
    }
    monkeypatch.chdir(work)
    final = CliRunner().invoke(app, ARGS)
    assert final.exit_code == 0, final.output
    # finished chunks were not retrained: their files were not even rewritten
    for path, (mtime, data) in finished.items():
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data, path
    assert len(_metas(work)) == JOBS
    _all_files_load(work)
    assert _snapshot(work) == _snapshot(ref)


def test_a_retrain_killed_after_saving_weights_leaves_no_stale_metadata_vouching_for_them(
    tmp_path, monkeypatch
):
    import numpy as np

    from rewts.config.models import Config
    from rewts.data.prepare import Dataset
    from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame
    from rewts.errors import TrainingError
    from rewts.training import jobs, load_chunk_agents, train_all

    frame = synthetic_frame(420, seed=0, start="2012-01-02")
    ds = Dataset(
        frames={"AAA": frame},
        source="synthetic",
        content_hash="t",
        feature_columns=SYNTHETIC_FEATURES,
        path=None,
    )
    cfg_a = Config(
        tickers=["AAA"],
        data={"warmup_days": 40},
        executor="local",
        split={
            "train_start": "2012-01-01",
            "train_end": "2013-03-29",
            "test_start": "2013-04-01",
            "test_end": "2013-08-30",
        },
        rewts={
            "chunk_length": 100,
            "episodes_per_chunk": 1,
            "hidden_dims": [8],
            "batch_size": 16,
            "learning_starts": 20,
            "buffer_size": 500,
            "checkpoint_dir": str(tmp_path / "ck"),
            "n_jobs": 1,
            "device": "cpu",
            "llm_guidance": False,
        },
        trading_env={"window": 5, "max_drawdown_limit": None},
    )

    def weights(cfg):
        agent = load_chunk_agents(cfg, "AAA", llm_guidance=False)[0]
        return [p.detach().numpy().copy() for p in agent.agent.online.parameters()]

    train_all(cfg_a, ds, None, include_global=False)
    before = weights(cfg_a)
    cfg_b = cfg_a.model_copy(
        update={"rewts": cfg_a.rewts.model_copy(update={"episodes_per_chunk": 2})}
    )

    def killed(*args, **kwargs):
        raise RuntimeError("killed after the weights were written")

    monkeypatch.setattr(jobs, "write_json_atomic", killed)
    with pytest.raises(RuntimeError, match="killed"):
        train_all(cfg_b, ds, None, include_global=False)
    monkeypatch.undo()
    # config A again: either the loader refuses the changed folder, or it loads A's weights
    try:
        after = weights(cfg_a)
    except TrainingError:
        return
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
