"""What the progress displays count (issue #16): after a stop, only finished tasks are done and
the rest is named; "in flight" is requests sent and not yet answered, apart from the tasks
queued for the rate limiter. The engine runs in virtual time against a fake provider, so the
counts are exact and nothing depends on the machine's speed."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console

from rewts.errors import QuotaExhaustedError
from rewts.llm.engine import Engine, EngineSettings, Task
from rewts.llm.generate import GenerationSummary
from rewts.llm.limiter import RateLimiter
from rewts.llm.providers.base import QuotaExhausted, Request
from rewts.llm.retries import Backoff
from rewts.ui.progress import LiveDisplay, PlainDisplay, summary_lines

from .helpers import FakeProvider
from .vtime import run_virtual

TOTAL, ANSWERED = 114, 30


def _tasks(n: int) -> list[Task]:
    return [
        Task(id=("t", i), request=Request(({"role": "user", "content": f"t{i}"},), "m"))
        for i in range(n)
    ]


def _quota_after(n_ok: int):
    def script(n: int, request: Request) -> None:
        if n >= n_ok:
            raise QuotaExhausted("daily quota exceeded", status=429)

    return script


def _engine(provider: FakeProvider, rate: float) -> Engine:
    # auto concurrency with a 30 s latency prior: every task starts at once and most of them
    # wait for the limiter, as in the run the issue describes
    settings = EngineSettings(concurrency="auto", backoff=Backoff(0.5, 2.0, 4.0, 3))
    return Engine(provider, RateLimiter(rate), settings=settings)


def _run_to_quota(engine: Engine) -> None:
    async def main() -> None:
        with pytest.raises(QuotaExhaustedError, match=f"{ANSWERED} of {TOTAL}"):
            await engine.run(_tasks(TOTAL))

    run_virtual(main())


def test_after_a_quota_stop_the_plain_display_shows_the_true_done_count():
    provider = FakeProvider(1.0, _quota_after(ANSWERED))
    engine = _engine(provider, rate=10.0)
    out = io.StringIO()
    engine.subscribe(PlainDisplay(out, clock=lambda: 0.0))
    _run_to_quota(engine)
    text = out.getvalue()
    progress = [line for line in text.splitlines() if line.startswith("Progress:")]
    assert progress[-1].startswith(f"Progress: {ANSWERED}/{TOTAL} (26.3%)")
    assert f"{TOTAL}/{TOTAL}" not in text and "100.0%" not in text
    assert engine.stats.done == ANSWERED
    left = TOTAL - ANSWERED
    stop = [line for line in text.splitlines() if line.startswith("Stopped")]
    assert len(stop) == 1
    assert f"{ANSWERED}/{TOTAL} done" in stop[0] and f"{left} not done" in stop[0]
    # of those, the ones that got the quota's 429 were sent; the rest never were
    sent = provider.calls - ANSWERED
    assert f"({left - sent} never sent, {sent} sent but refused or unanswered)" in stop[0]


def test_after_a_quota_stop_the_live_panel_stays_at_the_true_done_count():
    engine = _engine(FakeProvider(1.0, _quota_after(ANSWERED)), rate=10.0)
    buf = io.StringIO()
    display = LiveDisplay(Console(file=buf, force_terminal=True, color_system=None, width=140))
    engine.subscribe(display)
    _run_to_quota(engine)
    display.close()
    text = buf.getvalue()
    assert f"Progress: {ANSWERED}/{TOTAL} (26.3%)" in text
    assert f"{TOTAL}/{TOTAL}" not in text
    assert f"{ANSWERED}/{TOTAL} done, {TOTAL - ANSWERED} not done" in text


def test_in_flight_is_requests_sent_and_unanswered_queued_is_waiting_for_the_limiter():
    rate, latency, n = 5.0, 2.0, 200
    provider = FakeProvider(latency)
    engine = _engine(provider, rate=rate)
    samples: list[tuple[int, int, int]] = []

    async def main() -> None:
        job = asyncio.ensure_future(engine.run(_tasks(n)))
        # sample between events (the limiter grants on multiples of 0.2 s)
        await asyncio.sleep(0.1037)
        for _ in range(25):
            await asyncio.sleep(1.0)
            samples.append((engine.stats.in_flight, provider.in_flight, engine.stats.queued))
        await job

    run_virtual(main())
    assert all(ours == theirs for ours, theirs, _ in samples), samples
    # Little's law: rate x latency (+ the burst), not the hundreds of tasks started at once
    assert max(s[0] for s in samples) <= rate * latency + 2
    assert engine.stats.max_in_flight == provider.max_in_flight <= rate * latency + 2
    # auto concurrency starts rate x prior x 1.25 + burst = 189 tasks at once: all but the
    # first wait for a permit, shown as queued
    assert engine.stats.max_queued == 188
    assert max(s[2] for s in samples) >= 150
    assert engine.stats.in_flight == engine.stats.queued == 0  # nothing left behind


def test_the_live_panel_shows_in_flight_and_queued_apart():
    engine = _engine(FakeProvider(2.0), rate=5.0)
    buf = io.StringIO()
    display = LiveDisplay(Console(file=buf, force_terminal=True, color_system=None, width=140))
    engine.subscribe(display)
    frames: list[str] = []

    async def main() -> None:
        job = asyncio.ensure_future(engine.run(_tasks(100)))
        await asyncio.sleep(3.1037)
        render = Console(file=io.StringIO(), width=140, color_system=None)
        with render.capture() as cap:
            render.print(display._live.renderable)  # what the panel draws now
        frames.append(cap.get())
        await job

    run_virtual(main())
    display.close()
    # at 3.1 s: 16 permits granted (burst 1 + 5/s), the first 6 answered after 2 s
    assert "in flight 10 | queued 84" in frames[0]


def test_the_summary_names_max_in_flight_and_max_queued():
    s = GenerationSummary(total=88, max_in_flight=16, max_queued=250, provider="p", model="m")
    text = "\n".join(summary_lines(s))
    assert "Max in flight: 16 (sent, not yet answered) | Max queued: 250 (waiting for" in text
