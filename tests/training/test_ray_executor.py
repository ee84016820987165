"""executor: ray gives the process pool's results for the same seeds, on a local Ray instance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewts.config.models import Config
from rewts.training import load_chunk_agents, train_all

ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[ray]")')


@pytest.fixture(scope="module")
def local_ray():
    """One local instance for the module (starting Ray costs seconds); always shut down."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _with(cfg: Config, tmp_path, name: str, executor: str, **ray_keys) -> Config:
    rewts = cfg.rewts.model_copy(update={"checkpoint_dir": tmp_path / name, "n_jobs": 2})
    return cfg.model_copy(
        update={
            "tickers": ["AAA"],
            "executor": executor,
            "rewts": rewts,
            "ray": cfg.ray.model_copy(update=ray_keys),
        }
    )


def _state(cfg: Config) -> list[tuple[int, list[np.ndarray], dict]]:
    agents = load_chunk_agents(cfg, "AAA")
    out = []
    for a in agents:
        weights = [p.detach().numpy().copy() for p in a.agent.online.parameters()]
        metrics = {k: v for k, v in a.metadata["metrics"].items() if k != "seconds"}
        out.append((a.chunk, weights, metrics))
    return out


@pytest.mark.slow
def test_ray_and_process_executors_train_identical_agents(
    local_ray, cfg, dataset, strategies, tmp_path
) -> None:
    process = _with(cfg, tmp_path, "process", "process")
    on_ray = _with(cfg, tmp_path, "ray", "ray", num_cpus_per_task=1)
    first = train_all(process, dataset, strategies, seeds=[0, 1], include_global=False)
    second = train_all(on_ray, dataset, strategies, seeds=[0, 1], include_global=False)
    assert first.workers == 2 and second.workers == 2  # the cluster's 2 CPUs / 1 per task
    assert [(r.chunk, r.seed) for r in first.jobs] == [(r.chunk, r.seed) for r in second.jobs]
    assert not any(r.skipped for r in second.jobs)
    for seed in (0, 1):
        a = _state(process.model_copy(update={"seed": seed}))
        b = _state(on_ray.model_copy(update={"seed": seed}))
        assert [c for c, _, _ in a] == [c for c, _, _ in b] == [0, 1, 2]
        for (_, wa, ma), (_, wb, mb) in zip(a, b, strict=True):
            assert ma == mb
            for x, y in zip(wa, wb, strict=True):
                np.testing.assert_array_equal(x, y)
    # different seeds must give different agents, or the equality above proves nothing
    w0 = _state(process)[0][1][0]
    w1 = _state(process.model_copy(update={"seed": 1}))[0][1][0]
    assert not np.array_equal(w0, w1)
    # a rerun on Ray trains nothing: the checkpoints' input hashes match
    rerun = train_all(on_ray, dataset, strategies, seeds=[0, 1], include_global=False)
    assert all(r.skipped for r in rerun.jobs)


def test_ray_tasks_write_to_the_shared_path_and_the_driver_collects(
    local_ray, cfg, dataset, strategies, tmp_path
) -> None:
    shared = tmp_path / "shared"
    on_ray = _with(cfg, tmp_path, "collected", "ray", shared_path=shared, num_cpus_per_task=0.5)
    result = train_all(on_ray, dataset, strategies, include_global=False)
    assert result.workers == 3  # 3 jobs, 2 CPUs / 0.5 per task = 4 slots
    for r in result.jobs:
        assert str(r.path).startswith(str(tmp_path / "collected"))
    agents = load_chunk_agents(on_ray, "AAA")
    assert [a.chunk for a in agents] == [0, 1, 2]
    written = sorted(p.parent.parent.name for p in shared.rglob("meta.json"))
    assert written == ["chunk_0", "chunk_1", "chunk_2"]
    meta = json.loads((agents[0].path / "meta.json").read_text())
    shared_meta = json.loads((shared / "AAA" / "chunk_0" / "llm_s0" / "meta.json").read_text())
    assert meta == shared_meta


class _CountingDisplay:
    """Stands in for the terminal display: counts the episode ticks the tasks send."""

    wants_episodes = True

    def __init__(self) -> None:
        self.episodes = 0
        self.jobs = 0

    def __call__(self, event) -> None:
        from rewts.training.events import EpisodesDone, JobFinished

        if isinstance(event, EpisodesDone):
            self.episodes += event.n
        elif isinstance(event, JobFinished):
            self.jobs += 1


def test_ray_tasks_report_every_episode_to_the_driver_display(
    local_ray, cfg, dataset, strategies, tmp_path
) -> None:
    from rewts.training import build_jobs
    from rewts.training.events import Emitter
    from rewts.training.ray_executor import run_ray
    from rewts.training.runner import plan_units

    on_ray = _with(cfg, tmp_path, "ticks", "ray")
    jobs = build_jobs(on_ray, dataset, strategies, include_global=False, seeds=[0, 1])
    display, results = _CountingDisplay(), {}
    units = plan_units(jobs, on_ray.rewts.population_size)
    assert max(len(u) for u in units) == 2  # the two seeds of a chunk: one population task
    run_ray(units, jobs, on_ray.ray, Emitter(display), results)
    assert sorted(results) == list(range(len(jobs))) and display.jobs == len(jobs)
    assert display.episodes == sum(j.episodes for j in jobs) == 2 * 3 * 2
