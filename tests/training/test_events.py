"""Training tells its subscribers what happens (issue #14): events, never prints; the ui
renders them as the old built-in display did."""

from __future__ import annotations

import io

from rewts.config.models import Config
from rewts.training import train_all
from rewts.training.events import (
    EpisodesDone,
    JobFinished,
    TrainingFinished,
    TrainingNote,
    TrainingStarted,
)
from rewts.ui.training import LiveTrainingDisplay, PlainTrainingDisplay


class _Recorder:
    def __init__(self, wants_episodes: bool = False) -> None:
        self.wants_episodes = wants_episodes
        self.events: list[object] = []

    def __call__(self, event: object) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def _local(cfg: Config) -> Config:
    return cfg.model_copy(update={"executor": "local"})


def test_a_run_starts_reports_every_agent_and_finishes(cfg, dataset, strategies, capsys) -> None:
    log, ticks = _Recorder(), _Recorder(wants_episodes=True)
    result = train_all(_local(cfg), dataset, strategies, events=[log, ticks])
    n = len(result.jobs)
    (started,) = log.of(TrainingStarted)
    assert (started.jobs, started.pending, started.executor) == (n, n, "local")
    assert started.episodes == n * cfg.rewts.episodes_per_chunk
    assert log.events[0] is started and isinstance(log.events[-1], TrainingFinished)
    finished = log.of(JobFinished)
    assert len(finished) == n and all(e.ok and not e.skipped for e in finished)
    assert {e.variant for e in finished} == {"llm"}
    assert log.of(TrainingNote)  # the data size of each agent, before training
    assert sum(e.n for e in ticks.of(EpisodesDone)) == started.episodes
    end = log.of(TrainingFinished)[0]
    assert (end.jobs, end.trained, end.skipped, end.ok) == (n, n, 0, True)
    assert capsys.readouterr().err == ""  # training itself prints nothing

    again = _Recorder()
    train_all(_local(cfg), dataset, strategies, events=again)
    assert all(e.skipped for e in again.of(JobFinished))
    assert not again.of(EpisodesDone)  # ticks are collected only when a subscriber asks
    assert again.of(TrainingFinished)[0].skipped == n


def test_no_events_is_silent(cfg, dataset, strategies, capsys) -> None:
    train_all(_local(cfg), dataset, strategies)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def _job(chunk: int, skipped: bool = False) -> JobFinished:
    return JobFinished("AAA", "llm", chunk, 0, 2, 1.25, skipped, 0.5)


def test_the_plain_display_prints_the_old_lines() -> None:
    out = io.StringIO()
    display = PlainTrainingDisplay(out)
    display(TrainingStarted(jobs=2, pending=1, episodes=4, workers=1, executor="local"))
    display(TrainingNote("AAA chunk 0 llm: 100 training decisions"))
    display(EpisodesDone(1))
    display(_job(0, skipped=True))
    display(_job(-1))
    display(TrainingFinished(jobs=2, trained=1, skipped=1, wall_s=1.0))
    assert out.getvalue().splitlines() == [
        "AAA chunk 0 llm: 100 training decisions",
        "[1/2] AAA chunk 0 seed 0: skipped (unchanged), train Sharpe 0.50",
        "[2/2] AAA global seed 0: 1.2s, train Sharpe 0.50",
    ]


def test_the_live_display_counts_episodes_and_skipped_agents() -> None:
    from rich.console import Console

    display = LiveTrainingDisplay(Console(file=io.StringIO(), force_terminal=True))
    assert display.wants_episodes
    display(TrainingStarted(jobs=2, pending=1, episodes=4, workers=1, executor="local"))
    progress = display._progress
    assert progress is not None
    display(_job(0, skipped=True))  # a skipped agent's episodes count as done
    display(EpisodesDone(2))
    display(_job(1))
    task = progress.tasks[0]
    assert (task.completed, task.total, task.fields["jobs"]) == (4, 4, "2/2 agents")
    display(TrainingFinished(jobs=2, trained=1, skipped=1, wall_s=1.0))
    assert display._progress is None
