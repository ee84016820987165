"""A training worker that dies (killed, out of memory) is one clear error, not a traceback;
the agents that finished stay checkpointed and a rerun trains only the rest."""

from __future__ import annotations

import os
import signal

import pytest

from rewts.config.models import Config
from rewts.errors import TrainingError
from rewts.training import build_jobs, runner, train_all


def _die_once(jobs, progress=None):  # runs in the worker: the first population kills it
    from rewts.training.jobs import run_population

    if jobs[0].chunk == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return run_population(jobs, progress)


def test_a_dead_worker_is_one_clear_error_and_a_rerun_resumes(
    cfg: Config, dataset, strategies, monkeypatch
) -> None:
    cfg = cfg.model_copy(update={"rewts": cfg.rewts.model_copy(update={"n_jobs": 2})})
    monkeypatch.setattr(runner, "run_population", _die_once)
    with pytest.raises(TrainingError, match="worker process died"):
        train_all(cfg, dataset, strategies)
    monkeypatch.undo()
    second = train_all(cfg, dataset, strategies)
    assert len(second.jobs) == len(build_jobs(cfg, dataset, strategies))
    assert any(not r.skipped for r in second.jobs)
