"""Chunked ReWTS training: one Double DQN per (ticker, chunk), in parallel, checkpointed.

Public API::

    train_all(cfg, dataset, strategies, *, events=None, include_global=True, seeds=None,
              tag="") -> TrainingResult
    load_chunk_agents(cfg, ticker, *, llm_guidance=True, seed=None, tag="") -> list[LoadedAgent]
    load_global_agent(cfg, ticker, *, llm_guidance=True, seed=None, tag="") -> LoadedAgent
    load_curves(loaded_agent) -> DataFrame
    events: TrainingStarted, TrainingNote, EpisodesDone, JobFinished, TrainingFinished
    execute_jobs(cfg, jobs, *, events=None) -> (list[JobResult], workers)  # cfg.executor
"""

from rewts.training.checkpoints import (
    LoadedAgent,
    load_chunk_agents,
    load_curves,
    load_global_agent,
)
from rewts.training.events import (
    EpisodesDone,
    JobFinished,
    TrainingFinished,
    TrainingNote,
    TrainingStarted,
)
from rewts.training.jobs import GLOBAL_CHUNK, JobResult, TrainJob, run_job
from rewts.training.runner import TrainingResult, build_jobs, execute_jobs, run_jobs, train_all

__all__ = [
    "GLOBAL_CHUNK",
    "EpisodesDone",
    "JobFinished",
    "JobResult",
    "LoadedAgent",
    "TrainJob",
    "TrainingFinished",
    "TrainingNote",
    "TrainingResult",
    "TrainingStarted",
    "build_jobs",
    "execute_jobs",
    "load_chunk_agents",
    "load_curves",
    "load_global_agent",
    "run_job",
    "run_jobs",
    "train_all",
]
