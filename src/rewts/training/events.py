"""What a training run tells its subscribers: small frozen dataclasses, as the LLM engine's
events (:mod:`rewts.llm.monitor`). Training never prints; ``rewts.ui.training`` renders these.

A subscriber is any callable; ``events=`` takes one, a list of them, or None (silent). Episode
ticks cross process (or Ray) boundaries through a queue, which costs a manager process: they
are collected only when a subscriber sets ``wants_episodes = True`` (a live bar does, a log
does not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rewts.training.jobs import GLOBAL_CHUNK, JobResult, TrainJob

Subscriber = Callable[[Any], None]
#: what ``events=`` accepts: one subscriber, several, or None (silent)
Events = Subscriber | Sequence[Subscriber] | None


@dataclass(frozen=True)
class TrainingStarted:
    """A run begins: jobs in all (finished ones included), how many still train, episodes of
    every job (what a bar counts to), parallel workers and the executor."""

    jobs: int
    pending: int
    episodes: int
    workers: int
    executor: str


@dataclass(frozen=True)
class TrainingNote:
    """A line worth showing before training: the data size per agent, the populations."""

    text: str


@dataclass(frozen=True)
class EpisodesDone:
    """``n`` training episodes ended (sent only when a subscriber wants episodes)."""

    n: int


@dataclass(frozen=True)
class JobFinished:
    """One agent ended: trained (``seconds`` of work), skipped (its checkpoint was current) or
    failed (``ok`` False, ``error`` says why)."""

    ticker: str
    variant: str
    chunk: int
    seed: int
    episodes: int
    seconds: float
    skipped: bool
    final_sharpe: float
    ok: bool = True
    error: str | None = None

    @property
    def where(self) -> str:
        return "global" if self.chunk == GLOBAL_CHUNK else f"chunk {self.chunk}"


@dataclass(frozen=True)
class TrainingFinished:
    """The run ended: jobs finished, of which trained and skipped, wall time, and ``ok``
    False when it stopped on an error or an interrupt."""

    jobs: int
    trained: int
    skipped: int
    wall_s: float
    ok: bool = True


def variant_label(llm_guidance: bool, tag: str) -> str:
    """The checkpoint variant a job trains, as its folder names it (``llm``, ``rl/leak``)."""
    return ("llm" if llm_guidance else "rl") + (f"/{tag}" if tag else "")


def subscribers(events: Events) -> list[Subscriber]:
    """``events=`` as a list (None: none)."""
    if events is None:
        return []
    if callable(events):
        return [events]
    return list(events)


class Emitter:
    """Sends training events to the subscribers; what the executors call as jobs end."""

    def __init__(self, events: Events) -> None:
        self.subscribers = subscribers(events)
        #: collect episode ticks from the workers (a queue) only when someone draws them
        self.wants_episodes = any(getattr(s, "wants_episodes", False) for s in self.subscribers)

    def __call__(self, event: Any) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    def note(self, text: str) -> None:
        self(TrainingNote(text))

    def episode(self, n: int = 1) -> None:
        if self.wants_episodes and n:
            self(EpisodesDone(n))

    def job(self, result: JobResult, job: TrainJob) -> None:
        self(_finished(job, result.seconds, result.skipped, result.final_sharpe))

    def failed(self, jobs: Iterable[TrainJob], error: BaseException) -> None:
        """The jobs of a population that raised (the error is raised on after this)."""
        why = f"{type(error).__name__}: {error}"
        for job in jobs:
            self(_finished(job, 0.0, False, float("nan"), error=why))


def _finished(
    job: TrainJob, seconds: float, skipped: bool, sharpe: float, error: str | None = None
) -> JobFinished:
    return JobFinished(
        ticker=job.ticker,
        variant=variant_label(job.llm_guidance, job.tag),
        chunk=job.chunk,
        seed=job.seed,
        episodes=job.episodes,
        seconds=seconds,
        skipped=skipped,
        final_sharpe=sharpe,
        ok=error is None,
        error=error,
    )
