"""The displays: the seed's plain lines, RPM colours, the summary, and the live panel."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rewts.llm.generate import GenerationSummary
from rewts.llm.monitor import RequestMonitor, RunFinished, RunStarted, RunStats, TaskFinished
from rewts.ui.progress import (
    LiveDisplay,
    PlainDisplay,
    make_display,
    progress_line,
    rpm_level,
    rpm_line,
    summary_lines,
)


def test_progress_line_matches_the_seed_format():
    assert (
        progress_line(10, 88, 10 / 2.3) == "Progress: 10/88 (11.4%) | Rate: 2.3 strat/s | ETA: 34s"
    )
    assert progress_line(88, 88, 10.0).endswith("ETA: 0s")


@pytest.mark.parametrize(
    "pct, colour", [(0, "green"), (69.9, "green"), (70, "yellow"), (90, "yellow"), (90.1, "red")]
)
def test_rpm_colours(pct, colour):
    assert rpm_level(pct)[1] == colour


def test_rpm_line_as_the_seed():
    clock = [0.0]
    m = RequestMonitor(60.0, 1000.0, clock=lambda: clock[0])
    for i in range(234):
        m.record_request(i * 0.1)
    clock[0] = 30.0
    assert rpm_line(m) == "🟢 Current rate: 234 RPM (23.4% of 1000 limit)"
    clock[0] = 100.0  # the window slides
    assert rpm_line(m) == "🟢 Current rate: 0 RPM (0.0% of 1000 limit)"


def _run_events(display, n=40, clock=None):
    stats = RunStats(total=n)
    monitor = RequestMonitor(60.0, 100.0, clock=lambda: 0.0)
    display(RunStarted(n, 0, "fake", "m", False, "auto", 100.0, stats=stats, monitor=monitor))
    for i in range(n):
        monitor.record_request(0.0)
        stats.done += 1
        if clock is not None:
            clock[0] += 0.5
        display(TaskFinished(("t", i), "ok", 0.1, 1))
    display(RunFinished(stats, 1.0))


def test_plain_display_prints_every_ten_and_rpm_every_twenty():
    out = io.StringIO()
    clock = [0.0]
    display = PlainDisplay(out, clock=lambda: clock[0])
    _run_events(display, 40, clock)
    lines = out.getvalue().splitlines()
    progress = [line for line in lines if line.startswith("Progress:")]
    assert progress[0] == "Progress: 10/40 (25.0%) | Rate: 2.0 strat/s | ETA: 15s"
    assert len(progress) == 4
    rpm = [line for line in lines if "Current rate" in line]
    assert rpm == [
        "🟢 Current rate: 20 RPM (20.0% of 100 limit)",
        "🟢 Current rate: 40 RPM (40.0% of 100 limit)",
    ]


def test_summary_has_the_seed_lines_and_the_extras():
    s = GenerationSummary(
        total=88,
        generated=80,
        cache_hits=8,
        cache_misses=80,
        api_calls=85,
        retries=5,
        http_429=2,
        failures=1,
        fallbacks=1,
        wall_s=36.7,
        tokens_in=12345,
        tokens_out=3456,
        cost_usd=0.0123,
        provider="deepseek",
        model="deepseek-chat",
        current_rpm=234,
        limit_rpm=1000,
        api_calls_saved=8,
        avg_s_per_strategy=0.42,
    )
    text = "\n".join(summary_lines(s))
    for needle in (
        "Generated 88 strategies in 36.7s",
        "Cache hits: 8 (9.1%)",
        "Cache misses: 80 (90.9%)",
        "Errors (fallback used): 1",
        "API calls saved: 8",
        "Average time per strategy: 0.420s",
        "Retries: 5",
        "429s: 2",
        "12,345 in / 3,456 out",
        "$0.0123",
        "🟢 Current rate: 234 RPM (23.4% of 1000 limit)",
    ):
        assert needle in text


def test_live_display_draws_and_stops():
    buf = io.StringIO()
    display = LiveDisplay(Console(file=buf, force_terminal=True, width=100))
    _run_events(display, 12)
    display.close()
    assert "12/12" in buf.getvalue()
    assert isinstance(make_display(live=False, stream=io.StringIO()), PlainDisplay)


def test_plain_display_reports_429s():
    from rewts.llm.monitor import RequestRetried

    out = io.StringIO()
    PlainDisplay(out)(RequestRetried(("t", 1), "RateLimited", 1, 2.5, 429))
    PlainDisplay(out)(RequestRetried(("t", 1), "ServerError", 1, 2.5, 503))
    assert out.getvalue().count("Rate limit hit") == 1


def test_summary_counts_strategies_and_news_analyses_apart():
    s = GenerationSummary(total=100, analyses=12, wall_s=3.0, provider="gemini", model="m")
    text = "\n".join(summary_lines(s))
    assert "Generated 88 strategies and 12 news analyses in 3.0s" in text


def test_batch_jobs_are_shown_as_they_progress():
    from rewts.llm.batch import BatchCompleted, BatchPolled, BatchSubmitted

    out = io.StringIO()
    display = PlainDisplay(out)
    display(BatchSubmitted("batches/1", "gemini", 88, 1))
    display(BatchPolled("batches/1", "JOB_STATE_RUNNING", 61.0, 88, 40, 1))
    display(BatchCompleted("batches/1", "JOB_STATE_SUCCEEDED", 87, 1, 300.0))
    lines = out.getvalue().splitlines()
    assert lines == [
        "Batch job batches/1: 88 requests submitted (wave 1)",
        "Batch job batches/1: JOB_STATE_RUNNING after 61s, 40/88 done, 1 failed",
        "Batch job batches/1: JOB_STATE_SUCCEEDED, 87 answered, 1 failed, in 300s",
    ]
