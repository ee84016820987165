"""Progress of a training run, drawn from its events (:mod:`rewts.training.events`).

Two subscribers with one interface (``display(event)``, ``display.close()``):

* :class:`LiveTrainingDisplay`: a rich bar of episodes on a terminal, with agents done, time
  elapsed and left; notes print above it. It asks for episode ticks (``wants_episodes``).
* :class:`PlainTrainingDisplay`: for logs and pipes, the notes and one line per finished
  agent, ``[3/12] AAPL chunk 2 seed 0: 41.3s, train Sharpe 1.52``.

Both stop on :class:`~rewts.training.events.TrainingFinished`, so one display serves every
training run of a command (``rewts run`` may train, then backtest without training).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rewts.training.events import (
    EpisodesDone,
    JobFinished,
    TrainingFinished,
    TrainingNote,
    TrainingStarted,
)


def job_line(event: JobFinished, done: int, total: int) -> str:
    """The plain line of one finished agent."""
    if not event.ok:
        return f"[{done}/{total}] {event.ticker} {event.where} seed {event.seed}: failed, {event.error}"
    what = "skipped (unchanged)" if event.skipped else f"{event.seconds:.1f}s"
    return (
        f"[{done}/{total}] {event.ticker} {event.where} seed {event.seed}: "
        f"{what}, train Sharpe {event.final_sharpe:.2f}"
    )


class PlainTrainingDisplay:
    """Notes and one line per finished agent, on a stream (stderr by default)."""

    wants_episodes = False

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.done, self.total = 0, 0

    def _print(self, line: str) -> None:
        print(line, file=self._stream if self._stream is not None else sys.stderr, flush=True)

    def __call__(self, event: Any) -> None:
        if isinstance(event, TrainingStarted):
            self.done, self.total = 0, event.jobs
        elif isinstance(event, TrainingNote):
            self._print(event.text)
        elif isinstance(event, JobFinished):
            self.done += 1
            self._print(job_line(event, self.done, self.total))

    def close(self) -> None:
        return None


class LiveTrainingDisplay:
    """A rich bar of training episodes (rich's console unless one is given)."""

    wants_episodes = True

    def __init__(self, console: Console | None = None) -> None:
        self.console = console
        self.done, self.total = 0, 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, TrainingStarted):
            self._start(event)
            return
        progress, task = self._progress, self._task
        if progress is None or task is None:
            return
        if isinstance(event, TrainingNote):
            progress.console.print(event.text)
        elif isinstance(event, EpisodesDone):
            progress.advance(task, event.n)
        elif isinstance(event, JobFinished):
            self.done += 1
            if event.skipped:
                progress.advance(task, event.episodes)
            progress.update(task, jobs=f"{self.done}/{self.total} agents")
        elif isinstance(event, TrainingFinished):
            self.close()

    def _start(self, event: TrainingStarted) -> None:
        self.close()
        self.done, self.total = 0, event.jobs
        self._progress = Progress(
            TextColumn("[bold]train[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("episodes"),
            TextColumn("{task.fields[jobs]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task("train", total=event.episodes, jobs="")
        self._progress.start()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._task = None, None


def make_training_display(
    *, live: bool | None = None, stream: TextIO | None = None
) -> LiveTrainingDisplay | PlainTrainingDisplay:
    """A live bar on a terminal (stderr), plain lines otherwise."""
    if live is None:
        live = (stream if stream is not None else sys.stderr).isatty()
    return LiveTrainingDisplay() if live else PlainTrainingDisplay(stream)
