"""``executor: ray``: training jobs as Ray tasks, on this machine or on an existing cluster.

Each pending (ticker, chunk, seed, variant) job becomes one task that reserves
``ray.num_cpus_per_task`` CPUs and ``ray.num_gpus_per_task`` GPUs (fractional values share a
GPU). A ticker's arrays go to the object store once and every task of that ticker reads them
from there, instead of each task pickling its own copy. The task runs the same
:func:`~rewts.training.jobs.run_job` as the process pool, so the same seeds give the same
weights. Tasks write their checkpoint to ``ray.shared_path`` when it is set (a folder every node
mounts) and the driver copies each finished folder into ``rewts.checkpoint_dir``; without it they
write to the checkpoint folder directly (one machine, or a checkpoint folder on shared storage).
The driver sends the run's events (:mod:`rewts.training.events`) as tasks finish; episode
ticks come back through a Ray queue when a subscriber wants them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewts.errors import ConfigError
from rewts.training.jobs import (
    META_FILE,
    JobResult,
    TrainJob,
    init_worker,
    job_folder,
    run_population,
)

if TYPE_CHECKING:
    from rewts.config.models import RayConfig
    from rewts.training.events import Emitter

log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            'executor: ray needs the ray package: pip install -e ".[ray]" '
            "(or choose executor: process)"
        ) from None
    return ray


def ensure_ray(ray_cfg: RayConfig) -> Any:
    """Connect to ``ray.address`` or start a local instance, unless Ray is already up."""
    ray = _ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if ray_cfg.address:
            kwargs["address"] = ray_cfg.address
        else:
            kwargs["num_cpus"] = ray_cfg.num_cpus or os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise ConfigError(
                f"ray.address = {ray_cfg.address!r}: cannot connect ({exc}); check the address "
                "or set it to null to start a local Ray instance"
            ) from None
    return ray


def parallelism(ray_cfg: RayConfig) -> int:
    """How many tasks the cluster runs at once, by its CPUs and the CPUs each task reserves."""
    ray = ensure_ray(ray_cfg)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(cpus // ray_cfg.num_cpus_per_task))


def _task(jobs: list[TrainJob], progress: Any, *datas: Any) -> list[JobResult]:
    """The body of one Ray task: the process pool's population function, each job's data from
    the object store (top-level arguments, so Ray resolves them)."""
    with contextlib.suppress(RuntimeError):  # a reused worker: interop threads are set once
        init_worker()
    full = [dataclasses.replace(job, data=data) for job, data in zip(jobs, datas, strict=True)]
    return run_population(full, progress)


def _for_ray(job: TrainJob, ray_cfg: RayConfig) -> TrainJob:
    """The job as a task sees it: absolute output folder (workers do not share the driver's
    working directory), on the shared path when there is one; CPU unless GPUs are reserved."""
    out = Path(ray_cfg.shared_path) if ray_cfg.shared_path else Path(job.out_dir)
    device = job.device
    if ray_cfg.num_gpus_per_task == 0 and device == "auto":
        device = "cpu"  # no GPU reserved: do not use one behind Ray's back
    return dataclasses.replace(job, out_dir=str(out.resolve()), device=device)


def _collect(result: JobResult, job: TrainJob, ray_cfg: RayConfig) -> JobResult:
    """Copy a finished checkpoint from the shared path into the driver's checkpoint folder."""
    if not ray_cfg.shared_path:
        return result
    target = job_folder(job).resolve()
    source = Path(result.path)
    if source.resolve() == target:
        return result
    target.mkdir(parents=True, exist_ok=True)
    # meta.json is the "done" marker: copy it last, so an interrupted copy is retrained
    (target / META_FILE).unlink(missing_ok=True)
    for item in sorted(source.iterdir(), key=lambda p: p.name == META_FILE):
        if item.is_file() and not item.name.startswith("."):
            shutil.copy2(item, target / item.name)
    return dataclasses.replace(result, path=str(target))


def run_ray(
    units: list[list[int]],
    jobs: list[TrainJob],
    ray_cfg: RayConfig,
    emit: Emitter,
    results: dict[int, JobResult],
) -> None:
    """Run each unit (a population of job indices) as one Ray task; fill ``results`` and send
    each job's event as its task finishes."""
    ray = ensure_ray(ray_cfg)
    remote = ray.remote(_task).options(
        num_cpus=ray_cfg.num_cpus_per_task,
        num_gpus=ray_cfg.num_gpus_per_task,
        max_retries=0,  # a failed job is a bug or bad input: report it, do not rerun it
    )
    ticks = None
    if emit.wants_episodes:
        from ray.util.queue import Queue

        ticks = Queue()
    data_refs: dict[int, Any] = {}
    refs: dict[Any, list[int]] = {}
    try:
        for unit in units:
            for i in unit:
                key = id(jobs[i].data)
                if key not in data_refs:
                    data_refs[key] = ray.put(jobs[i].data)
            task_jobs = [dataclasses.replace(_for_ray(jobs[i], ray_cfg), data=None) for i in unit]
            datas = [data_refs[id(jobs[i].data)] for i in unit]
            refs[remote.remote(task_jobs, ticks, *datas)] = unit
        remaining = list(refs)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0.2)
            _drain(ticks, emit)
            for ref in done:
                try:
                    finished = ray.get(ref)
                except Exception as exc:
                    emit.failed([jobs[i] for i in refs[ref]], exc)
                    raise
                for i, result in zip(refs[ref], finished, strict=True):
                    results[i] = _collect(result, jobs[i], ray_cfg)
                    emit.job(results[i], jobs[i])
        _drain(ticks, emit)
    except BaseException:
        # Ctrl-C or a failed job: cancel what has not finished; finished jobs are checkpointed
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if ticks is not None:
            ticks.shutdown()


def _drain(ticks: Any, emit: Emitter) -> None:
    if ticks is None:
        return
    n = ticks.qsize()
    if n:
        ticks.get_nowait_batch(n)
        emit.episode(n)
