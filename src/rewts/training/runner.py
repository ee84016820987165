"""``train_all``: every (ticker, chunk, seed) job of an experiment, in a process pool or Ray.

Per ticker the training range (``split.train_start..train_end``) is cut into chunks of
``rewts.chunk_length`` days (:meth:`Timeline.chunks`); each chunk gets one agent trained for
``rewts.episodes_per_chunk`` episodes, plus (``include_global``) one agent over the whole
range. Jobs whose checkpoint carries the same input hash are skipped, so a rerun is free and an
interrupted run resumes where it stopped. Workers are spawned (safe with torch and on every
OS), use one torch thread each, and the pool has ``min(jobs, n_jobs or CPU count)`` workers.
``executor: local`` runs in-process; ``executor: ray`` runs the jobs as Ray tasks
(:mod:`rewts.training.ray_executor`), with the same job function and the same events.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rewts.agents.ddqn import DQNSettings
from rewts.env.factory import _timeline, env_data_for
from rewts.errors import TrainingError
from rewts.training.checkpoints import write_manifests
from rewts.training.events import Emitter, Events, TrainingFinished, TrainingStarted
from rewts.training.jobs import (
    GLOBAL_CHUNK,
    JobResult,
    TrainJob,
    init_worker,
    is_done,
    population_blocker,
    population_key,
    run_job,
    run_population,
)

if TYPE_CHECKING:
    from rewts.config.models import Config, RayConfig
    from rewts.data import Dataset

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What a training run did, one :class:`JobResult` per job."""

    jobs: list[JobResult] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.__dict__ for r in self.jobs])

    def summary(self) -> pd.DataFrame:
        """Per ticker: chunks trained and skipped, training time, mean final train Sharpe."""
        df = self.frame()
        if df.empty:
            return pd.DataFrame(columns=["ticker", "trained", "skipped", "seconds", "sharpe"])
        chunks = df[df["chunk"] != GLOBAL_CHUNK]
        out = df.groupby("ticker", sort=False).agg(
            trained=("skipped", lambda s: int((~s).sum())),
            skipped=("skipped", "sum"),
            seconds=("seconds", "sum"),
        )
        out["sharpe"] = chunks.groupby("ticker", sort=False)["final_sharpe"].mean()
        glob = df[df["chunk"] == GLOBAL_CHUNK].groupby("ticker", sort=False)["final_sharpe"]
        out["global_sharpe"] = glob.mean()
        return out.reset_index()


#: fewest training days left to an agent once its validation days are set aside, and fewest
#: validation days worth holding out
MIN_TRAINING_DAYS = 60
MIN_VALIDATION_DAYS = 20


def validation_split(
    ticker: str, chunk: int, start: int, end: int, last_row: int, validation_days: int
) -> tuple[int, int, int, int]:
    """(train start, train end, validation start, validation end) rows of one agent.

    The global agent holds out the last ``validation_days`` days of the training range (at most
    a quarter of it). A chunk agent validates on the days right after its chunk (at most a
    quarter chunk, at least 20 days), which still lie inside the training range; the last
    chunk has none after it and holds out its own tail instead. Validation never reaches past
    ``last_row`` (the training range's end): the test period is never used to choose anything.
    Returns (-1, -1) for validation when ``validation_days`` is 0 or when the agent's range is
    too short to hold days out (it then keeps its last episode).
    """
    if end - start < 2:
        raise TrainingError(
            f"{ticker} chunk {chunk}: only {end - start + 1} days; lower rewts.chunk_length or "
            "extend the training range"
        )
    length = end - start + 1
    if validation_days <= 0:
        return start, end, -1, -1
    if chunk == GLOBAL_CHUNK:
        n = min(validation_days, length // 4)
    else:
        n = min(validation_days, max(MIN_VALIDATION_DAYS, length // 4))
        if end + n <= last_row:
            return start, end, end + 1, end + n
    if n < MIN_VALIDATION_DAYS or length - n < MIN_TRAINING_DAYS:
        return start, end, -1, -1
    return start, end - n, end - n + 1, end


def build_jobs(
    cfg: Config,
    dataset: Dataset,
    strategies: dict[str, pd.DataFrame] | None,
    *,
    include_global: bool = True,
    seeds: Sequence[int] | None = None,
    tag: str = "",
) -> list[TrainJob]:
    """Every job of the experiment, chunks before the global agent, tickers in config order."""
    llm = cfg.rewts.llm_guidance
    if llm and strategies is None:
        raise TrainingError(
            "rewts.llm_guidance is on but no strategies were given: generate them "
            "(`rewts strategies`) or train the RL-only baseline with --no-llm"
        )
    seeds = list(seeds) if seeds is not None else [cfg.seed]
    settings = DQNSettings.from_config(cfg.rewts).to_dict()
    env_cfg = cfg.trading_env.model_dump(mode="json")
    jobs: list[TrainJob] = []
    for ticker in cfg.tickers:
        if ticker not in dataset.frames:
            raise TrainingError(
                f"{ticker} is not in the dataset (have: {', '.join(dataset.frames)})"
            )
        strategy = None
        if llm:
            assert strategies is not None
            if ticker not in strategies:
                raise TrainingError(f"no strategies for {ticker}: run `rewts strategies` first")
            strategy = strategies[ticker]
        frame = dataset.frames[ticker]
        data = env_data_for(cfg, ticker, frame, dataset.feature_columns, strategy, llm_guidance=llm)
        chunks = _timeline(frame, cfg).chunks(
            cfg.split.train_start, cfg.split.train_end, cfg.rewts.chunk_length
        )
        spans = [(c.index, max(c.start_pos, data.first_valid), c.end_pos) for c in chunks]
        if include_global:
            spans.append((GLOBAL_CHUNK, spans[0][1], spans[-1][2]))
        last_row = spans[-1][2]
        for chunk, span_start, span_end in spans:
            start, end, val_start, val_end = validation_split(
                ticker, chunk, span_start, span_end, last_row, cfg.rewts.validation_days
            )
            for seed in seeds:
                jobs.append(
                    TrainJob(
                        ticker=ticker,
                        chunk=chunk,
                        start=start,
                        end=end,
                        seed=int(seed),
                        llm_guidance=llm,
                        episodes=cfg.rewts.episodes_per_chunk,
                        data=data,
                        env_cfg=env_cfg,
                        settings=settings,
                        device=cfg.rewts.device,
                        random_start=cfg.rewts.random_start,
                        out_dir=str(cfg.rewts.checkpoint_dir),
                        tag=tag,
                        val_start=val_start,
                        val_end=val_end,
                        extra={
                            "dataset_hash": dataset.content_hash,
                            "preset": cfg.rewts.preset,
                            "config": cfg.model_dump(
                                mode="json", include={"rewts", "trading_env", "split", "seed"}
                            ),
                        },
                    )
                )
    return jobs


def pool_size(cfg: Config, n_jobs: int) -> int:
    """Workers for ``n_jobs`` pending jobs: 1 (in-process) with ``executor: local``; under
    ``executor: ray`` the tasks the cluster runs at once (its CPUs / CPUs per task)."""
    if cfg.executor == "local":
        return 1
    if cfg.executor == "ray":
        from rewts.training.ray_executor import parallelism

        return max(1, min(n_jobs, parallelism(cfg.ray)))
    wanted = cfg.rewts.n_jobs
    cpus = os.cpu_count() or 1
    limit = cpus if wanted == "auto" else int(wanted)
    return max(1, min(n_jobs, limit))


def plan_units(jobs: Sequence[TrainJob], population_size: int) -> list[list[int]]:
    """Indices of ``jobs`` grouped into populations of at most ``population_size`` agents that
    share a :func:`population_key` (jobs a population cannot train stay alone)."""
    groups: dict[str, list[int]] = {}
    units: list[list[int]] = []
    for i, job in enumerate(jobs):
        if population_size <= 1 or population_blocker(job):
            units.append([i])
        else:
            groups.setdefault(population_key(job), []).append(i)
    for members in groups.values():
        units += [members[j : j + population_size] for j in range(0, len(members), population_size)]
    return sorted(units, key=lambda unit: unit[0])


def execute_jobs(
    cfg: Config, jobs: list[TrainJob], *, events: Events = None
) -> tuple[list[JobResult], int]:
    """Run ``jobs`` on the executor ``cfg.executor`` names, as populations of up to
    ``rewts.population_size`` agents; (results, parallel workers)."""
    pending = [j for j in jobs if is_done(j) is None]
    if not pending:  # nothing to train: do not start a pool or connect to Ray
        return run_jobs(jobs, 1, events=events), 1
    size = cfg.rewts.population_size
    workers = pool_size(cfg, len(plan_units(pending, size)))
    ray_cfg = cfg.ray if cfg.executor == "ray" else None
    results = run_jobs(jobs, workers, events=events, ray_cfg=ray_cfg, population_size=size)
    return results, workers


def run_jobs(
    jobs: list[TrainJob],
    workers: int,
    *,
    events: Events = None,
    ray_cfg: RayConfig | None = None,
    population_size: int = 1,
) -> list[JobResult]:
    """Run jobs in-process (``workers == 1``), in a spawned process pool, or as Ray tasks
    (``ray_cfg`` given; see :mod:`rewts.training.ray_executor`), grouped into populations of
    up to ``population_size`` agents (:func:`plan_units`). ``events`` receive the run's
    :mod:`~rewts.training.events` as jobs finish."""
    emit = Emitter(events)
    t0 = time.perf_counter()
    results: dict[int, JobResult] = {}
    finished = [is_done(job, report=True) is not None for job in jobs]
    executor = "ray" if ray_cfg is not None else ("process" if workers > 1 else "local")
    emit(
        TrainingStarted(
            jobs=len(jobs),
            pending=finished.count(False),
            episodes=sum(j.episodes for j in jobs),
            workers=workers,
            executor=executor,
        )
    )
    ok = False
    try:
        for line in data_size_lines(
            [j for j, done in zip(jobs, finished, strict=True) if not done]
        ):
            emit.note(line)
        for i, job in enumerate(jobs):
            if finished[i]:
                results[i] = run_job(job)  # reads the stored metrics, trains nothing
                emit.job(results[i], job)
        _run_pending(jobs, workers, emit, results, ray_cfg, population_size)
        ok = True
    finally:
        trained = sum(not r.skipped for r in results.values())
        emit(
            TrainingFinished(
                jobs=len(results),
                trained=trained,
                skipped=len(results) - trained,
                wall_s=time.perf_counter() - t0,
                ok=ok,
            )
        )
    return [results[i] for i in range(len(jobs))]


def _run_pending(
    jobs: list[TrainJob],
    workers: int,
    emit: Emitter,
    results: dict[int, JobResult],
    ray_cfg: RayConfig | None,
    population_size: int,
) -> None:
    """Train the jobs not in ``results`` yet, as populations, on the chosen executor."""
    pending = [i for i in range(len(jobs)) if i not in results]
    units = [
        [pending[i] for i in unit]
        for unit in plan_units([jobs[i] for i in pending], population_size)
    ]
    if units and max(len(u) for u in units) > 1:
        emit.note(
            f"{len(pending)} agents in {len(units)} populations (up to {population_size} "
            "agents trained as one batched computation)"
        )
    if ray_cfg is not None and units:
        from rewts.training.ray_executor import run_ray

        run_ray(units, jobs, ray_cfg, emit, results)
    elif workers <= 1 or len(units) <= 1:
        for unit in units:
            members = [jobs[i] for i in unit]
            try:
                trained = run_population(members, _Ticks(emit))
            except Exception as exc:
                emit.failed(members, exc)
                raise
            for i, result in zip(unit, trained, strict=True):
                results[i] = result
                emit.job(result, jobs[i])
    else:
        _run_pool(units, jobs, workers, emit, results)


def data_size_lines(jobs: Sequence[TrainJob]) -> list[str]:
    """Per agent shape to train: training decisions against observation inputs.

    Fewer than ~20 decisions per input is where a daily-bar agent memorizes instead of
    learning (docs/rl.md), so the ratio is shown before any training starts.
    """
    seen: dict[tuple[str, int, int, int], TrainJob] = {}
    for job in jobs:
        seen.setdefault((job.ticker, job.chunk, job.decisions, job.data.obs_dim), job)
    lines = []
    for (ticker, chunk, decisions, inputs), job in seen.items():
        where = "global" if chunk == GLOBAL_CHUNK else f"chunk {chunk}"
        per = decisions / max(1, inputs)
        warn = " (few: expect memorization)" if per < 20 else ""
        val = f", {job.val_end - job.val_start + 1} validation days" if job.has_validation else ""
        lines.append(
            f"{ticker} {where} {'llm' if job.llm_guidance else 'rl'}{'/' + job.tag if job.tag else ''}: "
            f"{decisions:,} training decisions for {inputs} inputs ({per:.0f} per input){warn}{val}"
        )
    return lines


class _Ticks:
    """An in-process stand-in for the episode queue."""

    def __init__(self, emit: Emitter) -> None:
        self.emit = emit

    def put(self, _item: Any) -> None:
        self.emit.episode()


def _run_pool(
    units: list[list[int]],
    jobs: list[TrainJob],
    workers: int,
    emit: Emitter,
    results: dict[int, JobResult],
) -> None:
    ctx = mp.get_context("spawn")
    manager = ctx.Manager() if emit.wants_episodes else None
    ticks = manager.Queue() if manager is not None else None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker)
    try:
        futures: dict[Future, list[int]] = {
            pool.submit(run_population, [jobs[i] for i in unit], ticks): unit for unit in units
        }
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(ticks, emit)
            for fut in done:
                try:
                    finished = fut.result()
                except BrokenProcessPool:
                    raise TrainingError(
                        "a training worker process died (killed, or out of memory); the agents "
                        "that finished are checkpointed: rerun to train the rest"
                    ) from None
                except Exception as exc:
                    emit.failed([jobs[i] for i in futures[fut]], exc)
                    raise
                for i, result in zip(futures[fut], finished, strict=True):
                    results[i] = result
                    emit.job(result, jobs[i])
        _drain(ticks, emit)
        pool.shutdown(wait=True)
    except BaseException as exc:
        # Ctrl-C or a failed job: drop queued jobs instead of running them all first; what
        # finished is checkpointed and the next run resumes from there
        pool.shutdown(wait=False, cancel_futures=True)
        if isinstance(exc, KeyboardInterrupt):
            _stop_workers(pool)
        raise
    finally:
        if manager is not None:
            manager.shutdown()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the workers' running jobs too. Ctrl-C reaches them through the terminal's process
    group, SIGTERM (a scheduler, ``kill``) only the parent: without this they would finish
    their job, write its checkpoint after the parent is gone, then wait forever. A job cut
    short leaves no checkpoint under a final name (temporary file, then rename)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def _drain(ticks: Any, emit: Emitter) -> None:
    if ticks is None:
        return
    while True:
        try:
            ticks.get_nowait()
        except (queue.Empty, EOFError, OSError):
            return
        emit.episode()


def train_all(
    cfg: Config,
    dataset: Dataset,
    strategies: dict[str, pd.DataFrame] | None,
    *,
    events: Events = None,
    include_global: bool = True,
    seeds: Sequence[int] | None = None,
    tag: str = "",
) -> TrainingResult:
    """Train every chunk agent (and the global one) of every ticker; skip unchanged ones.

    ``cfg.rewts.llm_guidance`` selects LLM+RL (tau in the observation; ``strategies`` needed)
    or RL-only. ``seeds`` defaults to ``[cfg.seed]``. ``tag`` names a variant (for example a
    placebo with shuffled tau) so that its checkpoints do not replace the real ones.
    ``events`` receive the run's :mod:`~rewts.training.events` (``rewts.ui.training``
    renders them); None trains silently.
    """
    t0 = time.perf_counter()
    jobs = build_jobs(cfg, dataset, strategies, include_global=include_global, seeds=seeds, tag=tag)
    results, workers = execute_jobs(cfg, jobs, events=events)
    write_manifests(Path(cfg.rewts.checkpoint_dir), [Path(r.path) for r in results])
    return TrainingResult(jobs=results, seconds=time.perf_counter() - t0, workers=workers)
