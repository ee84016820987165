"""Progress of a strategy run, drawn from the engine's events (the engine never prints).

Two subscribers with one interface (``display(event)``, ``display.summary(s)``,
``display.close()``):

* :class:`LiveDisplay`: a rich live panel on a terminal: bar, done/total, %, strategies/s, ETA,
  hits/misses/retries/failures, requests in flight and tasks queued, and the current requests
  per minute coloured as the seed did (green below 70 %, yellow 70-90 %, red above 90 % of the
  limit);
* :class:`PlainDisplay`: without a TTY (or ``--no-progress``) the seed's lines,
  ``Progress: 10/88 (11.4%) | Rate: 2.3 strat/s | ETA: 34s`` every 10 strategies and the RPM
  line every 20.

"Done" counts tasks that ended (answered, cached or failed). A run that stops early (the daily
quota, a fatal error, Ctrl-C) ends on one ``Stopped ...`` line with the true count and how many
tasks were left undone, never on a bar at 100 %. "In flight" is requests sent and not yet
answered (what the server sees); "queued" is tasks waiting to send, shown apart.

Clock and stream are injectable, so tests check the exact text.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO, TypeVar

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from rewts.llm.monitor import (
    RequestMonitor,
    RequestRetried,
    RunFinished,
    RunStarted,
    RunStats,
    TaskFinished,
)

HEURISTIC_BANNER = (
    "provider: heuristic — a rule-based strategist, NOT an LLM (set an API key for one)"
)


def rpm_level(percent: float) -> tuple[str, str]:
    """(emoji, rich colour) for a share of the limit: < 70 green, 70-90 yellow, > 90 red."""
    if percent > 90.0:
        return "🔴", "red"
    if percent >= 70.0:
        return "🟡", "yellow"
    return "🟢", "green"


def rpm_line(monitor: RequestMonitor | None, now: float | None = None) -> str | None:
    """The seed's ``🟢 Current rate: 234 RPM (23.4% of 1000 limit)``; None without a limit."""
    if monitor is None or not monitor.limit_rpm:
        return None
    rpm = monitor.current_rpm(now)
    pct = 100.0 * rpm / monitor.limit_rpm
    emoji, _ = rpm_level(pct)
    return f"{emoji} Current rate: {rpm:.0f} RPM ({pct:.1f}% of {monitor.limit_rpm:.0f} limit)"


def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def progress_line(done: int, total: int, elapsed: float) -> str:
    """``Progress: 10/88 (11.4%) | Rate: 2.3 strat/s | ETA: 34s``."""
    pct = 100.0 * done / total if total else 100.0
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    if done >= total:
        eta = 0.0
    return (
        f"Progress: {done}/{total} ({pct:.1f}%) | Rate: {rate:.1f} strat/s | ETA: {_fmt_eta(eta)}"
    )


_STOP_REASONS = {
    "quota": "the daily quota is used up",
    "fatal": "an error",
    "interrupted": "interrupted",
}


def stop_line(stats: Any, reason: str) -> str | None:
    """The last line of a run that stopped before every task ended; None for a finished run.

    The split into never sent and sent-but-unanswered is given for a quota stop only: after a
    fatal error or Ctrl-C the requests cut off in flight leave no result to count.
    """
    left = stats.total - stats.done
    if reason == "done" or left <= 0:
        return None
    why = _STOP_REASONS.get(reason, reason)
    split = ""
    if reason == "quota":
        sent = min(getattr(stats, "stopped_after_sending", 0), left)
        split = f" ({left - sent} never sent, {sent} sent but refused or unanswered)"
    return (
        f"Stopped ({why}): {stats.done}/{stats.total} done, {left} not done{split}; "
        "everything answered is cached; a rerun sends only the rest"
    )


def summary_lines(s: Any) -> list[str]:
    """The seed's end-of-run summary plus retries, 429s, tokens and cost."""
    total = max(1, s.total)
    lines = [
        f"✓ Generated {s.total - getattr(s, 'analyses', 0)} strategies"
        + (f" and {s.analyses} news analyses" if getattr(s, "analyses", 0) else "")
        + f" in {s.wall_s:.1f}s ({s.provider}, {s.model})",
        f"  Cache hits: {s.cache_hits} ({100.0 * s.cache_hits / total:.1f}%)",
        f"  Cache misses: {s.cache_misses} ({100.0 * s.cache_misses / total:.1f}%)",
        f"  Errors (fallback used): {s.failures} ({s.fallbacks} fallbacks, {s.skipped} skipped)",
        f"  API calls saved: {s.api_calls_saved}",
        f"  Average time per strategy: {s.avg_s_per_strategy:.3f}s",
        f"  API calls: {s.api_calls} | Retries: {s.retries} | 429s: {s.http_429}",
        f"  Max in flight: {s.max_in_flight} (sent, not yet answered)"
        f" | Max queued: {getattr(s, 'max_queued', 0)} (waiting for the rate limiter or a retry)",
        f"  Tokens: {s.tokens_in:,} in / {s.tokens_out:,} out | Estimated cost: ${s.cost_usd:.4f}",
    ]
    if s.limit_rpm:
        pct = 100.0 * s.current_rpm / s.limit_rpm
        emoji, _ = rpm_level(pct)
        lines.append(
            f"{emoji} Current rate: {s.current_rpm:.0f} RPM ({pct:.1f}% of {s.limit_rpm:.0f} limit)"
        )
    return lines


class PlainDisplay:
    """The seed's plain lines, for logs and pipes."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        every: int = 10,
        rpm_every: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.rpm_every = rpm_every
        self.clock = clock
        self.total = 0
        self.done = 0
        self.started = clock()
        self.monitor: RequestMonitor | None = None

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def __call__(self, event: Any) -> None:
        if isinstance(event, TaskFinished):
            if event.status == "stopped":  # left undone by a stop: not progress
                return
            self.done += 1
            if self.done % self.every == 0 or self.done == self.total:
                self._print(progress_line(self.done, self.total, self.clock() - self.started))
            if self.done % self.rpm_every == 0 and (line := rpm_line(self.monitor)):
                self._print(line)
        elif isinstance(event, RequestRetried) and event.error == "RateLimited":
            self._print(
                f"⚠️  Rate limit hit (HTTP 429): retry {event.attempt} in {event.delay_s:.1f}s "
                "(every request waits for the server's Retry-After)"
            )
        elif isinstance(event, RunStarted):
            self.total, self.done, self.started = event.total, 0, self.clock()
            self.monitor = event.monitor
            for line in _header(event):
                self._print(line)
        elif isinstance(event, RunFinished):
            if (line := stop_line(event.stats, event.reason)) is not None:
                if self.done % self.every:  # the true count, if not just printed
                    self._print(progress_line(self.done, self.total, self.clock() - self.started))
                self._print(line)
        elif (line := batch_line(event)) is not None:
            self._print(line)

    def summary(self, s: Any) -> None:
        self._print("")
        for line in summary_lines(s):
            self._print(line)

    def close(self) -> None:
        return None


def batch_line(event: Any) -> str | None:
    """One line for a batch-mode event (``llm.batch``), None for any other event."""
    from rewts.llm.monitor import BatchCompleted, BatchPolled, BatchResumed, BatchSubmitted

    if isinstance(event, BatchSubmitted):
        return f"Batch job {event.job}: {event.requests} requests submitted (wave {event.wave})"
    if isinstance(event, BatchResumed):
        return (
            f"Batch job {event.job}: {event.requests} requests from an interrupted run, "
            "collected instead of submitted again"
        )
    if isinstance(event, BatchPolled):
        done = f", {event.done}/{event.total} done" if event.done is not None else ""
        failed = f", {event.failed} failed" if event.failed else ""
        return f"Batch job {event.job}: {event.state} after {event.elapsed_s:.0f}s{done}{failed}"
    if isinstance(event, BatchCompleted):
        return (
            f"Batch job {event.job}: {event.state}, {event.succeeded} answered, "
            f"{event.failed} failed, in {event.wall_s:.0f}s"
        )
    return None


def _header(event: RunStarted) -> list[str]:
    lines = []
    if event.local and event.provider == "heuristic":
        lines.append(f"!!! {HEURISTIC_BANNER} !!!")
    limit = f", limit {event.limit_rpm:.0f} RPM" if event.limit_rpm else ""
    lines.append(
        f"Strategies: {event.total} tasks, {event.cached} cached | {event.provider} "
        f"({event.model}) | workers: {event.concurrency}{limit}"
    )
    return lines


class _View:
    """What the live panel draws, recomputed from the live counters at each refresh."""

    def __init__(self, display: LiveDisplay) -> None:
        self.d = display

    def __rich__(self) -> Group:
        d = self.d
        stats: RunStats = d.stats or RunStats()
        total = max(stats.total, 1)
        elapsed = d.clock() - d.started
        bar = ProgressBar(total=total, completed=stats.done, width=40)
        head = Text(progress_line(stats.done, stats.total, elapsed))
        counters = Text(
            f"hits {stats.cache_hits} | misses {stats.cache_misses} | retries {stats.retries} | "
            f"429s {stats.http_429} | failures {stats.failures} | in flight {stats.in_flight} | "
            f"queued {stats.queued}",
            style="dim",
        )
        parts: list[Any] = [bar, head, counters]
        if d.monitor is not None and d.monitor.limit_rpm:
            rpm = d.monitor.current_rpm()
            pct = 100.0 * rpm / d.monitor.limit_rpm
            _, colour = rpm_level(pct)
            parts.append(
                Text(f"{rpm:.0f} RPM ({pct:.1f}% of {d.monitor.limit_rpm:.0f})", style=colour)
            )
        return Group(*parts)


class LiveDisplay:
    """A rich live panel on a terminal (stderr)."""

    def __init__(
        self, console: Console | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.console = console or Console(stderr=True)
        self.clock = clock
        self.started = clock()
        self.stats: RunStats | None = None
        self.monitor: RequestMonitor | None = None
        self._live: Live | None = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, RunStarted):
            self.stats, self.monitor, self.started = event.stats, event.monitor, self.clock()
            for line in _header(event):
                style = "bold red" if line.startswith("!!!") else None
                self.console.print(line, style=style, highlight=False)
            self._live = Live(_View(self), console=self.console, refresh_per_second=4)
            self._live.start()
        elif isinstance(event, RunFinished):
            self.close()  # the last frame keeps the true count: stopped tasks are not done
            if (stop := stop_line(event.stats, event.reason)) is not None:
                self.console.print(stop, style="yellow", highlight=False, markup=False)
        elif (batch := batch_line(event)) is not None:
            self.console.print(batch, highlight=False, markup=False)  # above the live panel

    def summary(self, s: Any) -> None:
        for line in summary_lines(s):
            self.console.print(line, highlight=False)

    def close(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None


def make_display(*, live: bool | None = None, stream: TextIO | None = None) -> Any:
    """A live panel on a terminal, the seed's plain lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    if live is None:
        live = stream.isatty()
    return LiveDisplay(Console(file=stream)) if live else PlainDisplay(stream)


class _Summarized(Protocol):
    @property
    def summary(self) -> Any: ...


R = TypeVar("R", bound=_Summarized)


def shown(run: Callable[[Any], R], *, live: bool | None = None) -> R:
    """``run(display)`` with a strategy display (:func:`make_display`) as its ``events``: the
    display is closed however the run ends, and a finished run's summary is printed after.

    ``run`` is ``lambda events: generate_strategies(cfg, dataset, events=events)`` (or the
    pipeline's ``ensure_strategies``); the generation itself never prints.
    """
    display = make_display(live=live)
    try:
        result = run(display)
    finally:
        display.close()
    display.summary(result.summary)
    return result
