"""One training job = one agent on one (ticker, chunk, seed, variant); runs in any process.

A job is a plain picklable record (the arrays it needs travel with it), so the same function
runs in-process and in a spawned worker. Its output folder holds ``model.pt``, ``curves.csv``
and ``meta.json``; ``meta.json`` is written last, atomically, and is the "done" marker: a job
whose ``meta.json`` carries the same input hash is skipped on the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewts.agents.ddqn import DDQNAgent, DQNSettings, resolve_device
from rewts.config.models import TradingEnvConfig
from rewts.env.features import EnvData
from rewts.env.trading import TradingEnv
from rewts.fileio import sha256_regular

log = logging.getLogger(__name__)

#: bump when training semantics change, so old checkpoints are retrained
TRAINING_VERSION = "2"
GLOBAL_CHUNK = -1
META_FILE, MODEL_FILE, CURVES_FILE = "meta.json", "model.pt", "curves.csv"


def job_seed(seed: int, ticker: str, chunk: int) -> int:
    """A distinct, reproducible seed per (master seed, ticker, chunk)."""
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(ticker.encode()), chunk + 1]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def variant_name(llm_guidance: bool, seed: int, tag: str = "") -> str:
    """Folder of one variant inside a chunk folder: ``llm_s0``, ``rl_s3``, ``llm_shuffled_s0``."""
    kind = "llm" if llm_guidance else "rl"
    return f"{kind}_{tag}_s{seed}" if tag else f"{kind}_s{seed}"


def chunk_folder(root: Path, ticker: str, chunk: int) -> Path:
    return Path(root) / ticker / ("global" if chunk == GLOBAL_CHUNK else f"chunk_{chunk}")


@dataclass(frozen=True)
class TrainJob:
    ticker: str
    chunk: int
    start: int
    end: int
    seed: int
    llm_guidance: bool
    episodes: int
    data: EnvData
    env_cfg: dict[str, Any]
    settings: dict[str, Any]
    device: str
    random_start: bool
    out_dir: str
    tag: str = ""
    #: anything else worth recording (config dump, dataset hash)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.ticker}/{'global' if self.chunk == GLOBAL_CHUNK else self.chunk}"

    def tau_hash(self) -> str | None:
        if self.data.tau_index is None:
            return None
        tau = self.data.obs[self.start : self.end + 1, self.data.tau_index]
        return hashlib.sha256(np.ascontiguousarray(tau).tobytes()).hexdigest()

    def input_hash(self) -> str:
        """Everything that shapes the trained weights: data slice (with tau), rules, settings."""
        spec = {
            "version": TRAINING_VERSION,
            "ticker": self.ticker,
            "chunk": [self.chunk, self.start, self.end],
            "seed": self.seed,
            "llm": self.llm_guidance,
            "episodes": self.episodes,
            "env": self.env_cfg,
            "settings": self.settings,
            "random_start": self.random_start,
            "data": self.data.slice_hash(self.start, self.end, 0),
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class JobResult:
    ticker: str
    chunk: int
    seed: int
    llm_guidance: bool
    path: str
    skipped: bool
    seconds: float
    final_sharpe: float
    final_return: float
    episodes: int


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def job_folder(job: TrainJob) -> Path:
    return chunk_folder(Path(job.out_dir), job.ticker, job.chunk) / variant_name(
        job.llm_guidance, job.seed, job.tag
    )


def model_problem(folder: Path, meta: dict[str, Any]) -> str | None:
    """Why ``folder``'s ``model.pt`` cannot be used (None when it can).

    ``meta.json`` records the weights file's SHA-256; a file that no longer matches (cut off,
    overwritten, bit rot) must be retrained, not skipped as finished. Checkpoints from before
    the hash was recorded are checked by loading them.
    """
    path = folder / MODEL_FILE
    expected = meta.get("model_sha256")
    try:
        if expected is not None:
            return None if sha256_regular(path) == expected else "does not match its meta.json (corrupt or replaced)"
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, a folder, a truncated or foreign file
        return f"cannot be read ({type(exc).__name__})"
    return None if isinstance(payload, dict) and "online" in payload else "is not a checkpoint"


def is_done(
    job: TrainJob, input_hash: str | None = None, *, report: bool = False
) -> dict[str, Any] | None:
    """The stored metadata when this exact job already finished, else None.

    ``report``: log a checkpoint found unreadable (it is retrained), naming its path.
    """
    folder = job_folder(job)
    meta = read_meta(folder)
    if meta is None or not (folder / MODEL_FILE).is_file():
        return None
    if meta.get("input_hash") != (input_hash or job.input_hash()):
        return None
    problem = model_problem(folder, meta)
    if problem is not None:
        if report:
            log.warning("%s %s: retraining it", folder / MODEL_FILE, problem)
        return None
    return meta


def init_worker() -> None:
    """Process-pool initializer: one intra-op thread per worker (the pool is the parallelism)."""
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def run_job(job: TrainJob, progress: Any = None) -> JobResult:
    """Train (or skip) one job; ``progress`` (a queue) receives ``(key, episode)`` ticks."""
    t0 = time.perf_counter()
    input_hash = job.input_hash()
    folder = job_folder(job)
    done = is_done(job, input_hash)
    if done is not None:
        metrics = done.get("metrics", {})
        return JobResult(
            job.ticker, job.chunk, job.seed, job.llm_guidance, str(folder), True,
            time.perf_counter() - t0, float(metrics.get("final_sharpe", float("nan"))),
            float(metrics.get("final_return", float("nan"))), int(metrics.get("episodes", 0)),
        )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env_cfg = TradingEnvConfig(**job.env_cfg)
        env = TradingEnv(
            job.data, env_cfg, start=job.start, end=job.end, random_start=job.random_start
        )
        settings = DQNSettings.from_dict(job.settings)
        agent = DDQNAgent(
            job.data.obs_dim,
            env.action_space.n,
            settings,
            seed=job_seed(job.seed, job.ticker, job.chunk),
            device=resolve_device(job.device),
        )

        def tick(row: dict[str, float]) -> None:
            if progress is not None:
                progress.put((job.key, int(row["episode"])))

        curves = agent.learn(env, job.episodes, on_episode=tick)
        greedy = agent.evaluate(env, job.start)
    finally:
        torch.set_num_threads(threads)
    folder.mkdir(parents=True, exist_ok=True)
    last = curves.iloc[-1]
    seconds = time.perf_counter() - t0
    metrics = {
        # the trained greedy policy over the whole chunk (not the last, exploring episode)
        "final_sharpe": greedy["sharpe"],
        "final_return": greedy["log_return"],
        "greedy_final_equity": greedy["final_equity"],
        "last_episode_sharpe": float(last["sharpe"]),
        "last_episode_return": float(last["return"]),
        "final_equity": float(last["final_equity"]),
        "best_sharpe": float(curves["sharpe"].max()),
        "episodes": len(curves),
        "steps": int(agent.steps),
        "updates": int(agent.updates),
        "seconds": seconds,
    }
    dates = job.data.dates
    meta = {
        "ticker": job.ticker,
        "chunk": job.chunk,
        "start": dates[job.start].date().isoformat(),
        "end": dates[job.end].date().isoformat(),
        "start_row": job.start,
        "end_row": job.end,
        "seed": job.seed,
        "llm_guidance": job.llm_guidance,
        "tag": job.tag,
        "input_hash": input_hash,
        "data_hash": job.data.slice_hash(job.start, job.end, 0),
        "tau_hash": job.tau_hash(),
        "obs_names": list(job.data.names),
        "position_index": job.data.position_index,
        "tau_index": job.data.tau_index,
        "normalization": job.data.stats,
        "actions": env_cfg.actions,
        "trading_env": job.env_cfg,
        "settings": job.settings,
        "metrics": metrics,
        **job.extra,
    }
    # a retrain replaces a finished folder: withdraw its "done" marker first, so a crash
    # between the files below never leaves old metadata vouching for new weights
    (folder / META_FILE).unlink(missing_ok=True)
    agent.save(folder / MODEL_FILE, {k: meta[k] for k in ("ticker", "chunk", "start", "end")})
    meta["model_sha256"] = sha256_regular(folder / MODEL_FILE)  # is_done checks it
    tmp_curves = folder / f".{CURVES_FILE}.tmp"
    curves.to_csv(tmp_curves, index=False)
    os.replace(tmp_curves, folder / CURVES_FILE)
    write_json_atomic(folder / META_FILE, meta)
    return JobResult(
        job.ticker, job.chunk, job.seed, job.llm_guidance, str(folder), False, seconds,
        metrics["final_sharpe"], metrics["final_return"], metrics["episodes"],
    )  # fmt: skip
