"""One training job = one agent on one (ticker, chunk, seed, variant); runs in any process.

A job is a plain picklable record (the arrays it needs travel with it), so the same function
runs in-process and in a spawned worker. Its output folder holds ``model.pt``, ``curves.csv``
and ``meta.json``; ``meta.json`` is written last, atomically, and is the "done" marker: a job
whose ``meta.json`` carries the same input hash is skipped on the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rewts.agents.ddqn import DDQNAgent, DQNSettings, resolve_device
from rewts.agents.population import Population, population_supported
from rewts.config.models import TradingEnvConfig
from rewts.env.accounting import Rules
from rewts.env.evaluation import PolicyScore, score_policy
from rewts.env.features import EnvData
from rewts.env.trading import TradingEnv, reward_scale
from rewts.fileio import atomic_write, sha256_regular, write_json_atomic

log = logging.getLogger(__name__)

#: bump when training semantics change, so old checkpoints are retrained
TRAINING_VERSION = "3"
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
    #: inclusive rows of the validation days that pick the episode to keep (-1: none)
    val_start: int = -1
    val_end: int = -1
    #: anything else worth recording (config dump, dataset hash)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_validation(self) -> bool:
        return 0 <= self.val_start < self.val_end

    @property
    def decisions(self) -> int:
        """Decisions per pass over the training days (compare with the observation's inputs)."""
        return self.end - self.start

    @property
    def key(self) -> str:
        return f"{self.ticker}/{'global' if self.chunk == GLOBAL_CHUNK else self.chunk}"

    def _seen_rows(self) -> tuple[int, int]:
        """First and last row the job reads (training and validation days)."""
        if not self.has_validation:
            return self.start, self.end
        return min(self.start, self.val_start), max(self.end, self.val_end)

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
            "validation": [self.val_start, self.val_end],
            "data": self.data.slice_hash(*self._seen_rows(), 0),
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
            return (
                None
                if sha256_regular(path) == expected
                else "does not match its meta.json (corrupt or replaced)"
            )
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


def _skipped(job: TrainJob, done: dict[str, Any], seconds: float) -> JobResult:
    metrics = done.get("metrics", {})
    return JobResult(
        job.ticker, job.chunk, job.seed, job.llm_guidance, str(job_folder(job)), True, seconds,
        float(metrics.get("final_sharpe", float("nan"))),
        float(metrics.get("final_return", float("nan"))), int(metrics.get("episodes", 0)),
    )  # fmt: skip


def training_env_config(job: TrainJob) -> TradingEnvConfig:
    """The job's rules as training sees them: no drawdown stop unless asked for."""
    env_cfg = TradingEnvConfig(**job.env_cfg)
    if not env_cfg.drawdown_stop_in_training:
        env_cfg = env_cfg.model_copy(update={"max_drawdown_limit": None})
    return env_cfg


def job_reward_scale(job: TrainJob, env_cfg: TradingEnvConfig) -> float:
    """The volatility of the job's own training days (1 with ``reward_scale: none``)."""
    if env_cfg.reward_scale != "volatility":
        return 1.0
    return reward_scale(job.data.prices, job.start, job.end)


@dataclass
class _Trained:
    """What training produced for one job, before it is written."""

    agent: DDQNAgent
    curves: pd.DataFrame
    scale: float
    in_sample: PolicyScore
    held_out: PolicyScore | None
    population: int = 1


def _validation_rows(job: TrainJob) -> np.ndarray | None:
    return np.arange(job.val_start, job.val_end + 1) if job.has_validation else None


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Train with one intra-op thread (parallelism comes from processes), then restore."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_job(job: TrainJob, progress: Any = None) -> JobResult:
    """Train (or skip) one job; ``progress`` (a queue) receives ``(key, episode)`` ticks."""
    t0 = time.perf_counter()
    input_hash = job.input_hash()
    done = is_done(job, input_hash)
    if done is not None:
        return _skipped(job, done, time.perf_counter() - t0)
    with _one_torch_thread():
        env_cfg = training_env_config(job)
        scale = job_reward_scale(job, env_cfg)
        env = TradingEnv(
            job.data,
            env_cfg,
            start=job.start,
            end=job.end,
            random_start=job.random_start,
            reward_scale=scale,
        )
        settings = DQNSettings.from_dict(job.settings)
        agent = DDQNAgent(
            job.data.obs_dim,
            env.action_space.n,
            settings,
            seed=job_seed(job.seed, job.ticker, job.chunk),
            device=resolve_device(job.device),
            tau_index=job.data.tau_index,
        )
        rules = Rules.from_config(env_cfg)

        def score(rows: np.ndarray) -> PolicyScore:
            return score_policy(
                lambda p, r: agent.greedy_q(job.data.observations(p, r)),
                job.data.prices,
                rows,
                env.targets,
                rules,
            )

        val_rows = _validation_rows(job)

        def validate(_agent: DDQNAgent) -> float:
            assert val_rows is not None
            return score(val_rows).sharpe

        def tick(row: dict[str, float]) -> None:
            if progress is not None:
                progress.put((job.key, int(row["episode"])))

        curves = agent.learn(
            env, job.episodes, on_episode=tick, validate=validate if val_rows is not None else None
        )
        trained = _Trained(
            agent,
            curves,
            scale,
            score(np.arange(job.start, job.end + 1)),
            score(val_rows) if val_rows is not None else None,
        )
    return _write_job(job, trained, input_hash, time.perf_counter() - t0)


def population_key(job: TrainJob) -> str:
    """Jobs with the same key can train as one population: same prices, rows, validation days,
    observation width and tau column (the tau head's input; the leak agent has LLM+RL's
    width but no tau), episodes, settings, rules and device (seeds and variants may differ)."""
    spec = [
        job.ticker, job.chunk, job.start, job.end, job.val_start, job.val_end, job.data.obs_dim,
        job.data.tau_index, job.episodes, job.settings, job.env_cfg, job.device,
        job.random_start, job.out_dir,
    ]  # fmt: skip
    return json.dumps(spec, sort_keys=True, default=str)


def population_blocker(job: TrainJob) -> str:
    """Why this job cannot join a population (empty when it can)."""
    return population_supported(
        DQNSettings.from_dict(job.settings), training_env_config(job), job.random_start
    )


def build_population(jobs: list[TrainJob], device: str | None = None) -> Population:
    """One untrained :class:`Population` of jobs sharing a :func:`population_key`, set up as
    training sets it up (the lead job's rules, reward scale and settings)."""
    lead = jobs[0]
    env_cfg = training_env_config(lead)
    return Population(
        [j.data for j in jobs],
        [job_seed(j.seed, j.ticker, j.chunk) for j in jobs],
        DQNSettings.from_dict(lead.settings),
        env_cfg,
        start=lead.start,
        end=lead.end,
        reward_scale=job_reward_scale(lead, env_cfg),
        device=device or lead.device,
    )


def run_population(jobs: list[TrainJob], progress: Any = None) -> list[JobResult]:
    """Train (or skip) jobs of one :func:`population_key` together; one result per job.

    A job whose checkpoint matches its inputs is skipped; the rest train as one
    :class:`~rewts.agents.population.Population` (one job alone, or one a population cannot
    train, runs through :func:`run_job`), and each is written to its own folder as if trained
    alone.
    """
    t0 = time.perf_counter()
    hashes = [job.input_hash() for job in jobs]
    results: dict[int, JobResult] = {}
    pending = []
    for i, (job, input_hash) in enumerate(zip(jobs, hashes, strict=True)):
        done = is_done(job, input_hash)
        if done is not None:
            results[i] = _skipped(job, done, time.perf_counter() - t0)
        else:
            pending.append(i)
    if len(pending) == 1 or (pending and population_blocker(jobs[pending[0]])):
        for i in pending:
            results[i] = run_job(jobs[i], progress)
        return [results[i] for i in range(len(jobs))]
    if not pending:
        return [results[i] for i in range(len(jobs))]
    members = [jobs[i] for i in pending]
    lead = members[0]
    with _one_torch_thread():
        population = build_population(members)
        scale = population.reward_scale

        def tick(episode: int) -> None:
            if progress is not None:
                for j in members:
                    progress.put((j.key, episode))

        val_rows = _validation_rows(lead)
        curves = population.learn(lead.episodes, validation_rows=val_rows, on_episode=tick)
        train_rows = np.arange(lead.start, lead.end + 1)
        trained = [
            _Trained(
                population.member(k),
                curves[k],
                scale,
                population.score(k, train_rows),
                population.score(k, val_rows) if val_rows is not None else None,
                population=len(members),
            )
            for k in range(len(members))
        ]
    seconds = (time.perf_counter() - t0) / len(members)
    for i, item in zip(pending, trained, strict=True):
        results[i] = _write_job(jobs[i], item, hashes[i], seconds)
    return [results[i] for i in range(len(jobs))]


def _write_job(job: TrainJob, trained: _Trained, input_hash: str, seconds: float) -> JobResult:
    """Write one trained job's model, curves and (last, the "done" marker) metadata."""
    folder = job_folder(job)
    agent, curves, scale = trained.agent, trained.curves, trained.scale
    in_sample, held_out = trained.in_sample, trained.held_out
    env_cfg = training_env_config(job)
    folder.mkdir(parents=True, exist_ok=True)
    last = curves.iloc[-1]
    metrics = {
        # the kept greedy policy over its training days (not the last, exploring episode)
        "final_sharpe": in_sample.sharpe,
        "final_return": in_sample.log_return,
        "train_sharpe": in_sample.sharpe,
        "train_accuracy": in_sample.accuracy,
        "validation_sharpe": held_out.sharpe if held_out else float("nan"),
        "validation_accuracy": held_out.accuracy if held_out else float("nan"),
        "selected_episode": int(agent.selected_episode),
        "reward_scale": scale,
        "decisions": job.decisions,
        "inputs": int(job.data.obs_dim),
        "population": trained.population,
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
        "validation_start": dates[job.val_start].date().isoformat() if job.has_validation else None,
        "validation_end": dates[job.val_end].date().isoformat() if job.has_validation else None,
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
    atomic_write(folder / CURVES_FILE, lambda tmp: curves.to_csv(tmp, index=False), mode=0o666)
    write_json_atomic(folder / META_FILE, meta)
    return JobResult(
        job.ticker, job.chunk, job.seed, job.llm_guidance, str(folder), False, seconds,
        metrics["final_sharpe"], metrics["final_return"], metrics["episodes"],
    )  # fmt: skip
