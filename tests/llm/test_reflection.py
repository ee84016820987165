"""Reflection chains (llm.reflection): period m's prompt carries period m-1's strategy and its
realized outcome; nothing dated after period m's inputs end ever reaches a prompt of period m
or earlier; chains of different tickers run concurrently; a failed link is shown as such."""

from __future__ import annotations

import hashlib
import json
import re

import pandas as pd

from rewts.data.timeline import Timeline
from rewts.llm import generate_strategies
from rewts.llm.providers import make_provider
from rewts.llm.providers.base import Request, ServerError
from rewts.sim import SimConfig, SimServer

from .helpers import FakeProvider, fake_dataset
from .test_analyst import Recorder, answer_by_agent, headlines_at, is_analyst, news_cfg, user_text

SENTINEL_PRICE = 987654.321
SENTINEL_TEXT = "SENTINEL-FROM-THE-FUTURE"
_DECIDED = re.compile(r"(?:Data up to and including: |up to and including )(\d{4}-\d{2}-\d{2})")


def chained_answer(request: Request) -> str:
    """A strategist answer that is a function of the whole prompt (memory changes it)."""
    if is_analyst(request):
        return answer_by_agent(request)
    digest = hashlib.sha256(user_text(request).encode()).hexdigest()
    return json.dumps(
        {
            "direction": int(digest[0], 16) % 2,
            "confidence": 1.0 + int(digest[1], 16) / 7.5,
            "explanation": f"answer {digest[:12]}",
            "key_features": [],
        }
    )


def decided_on(request: Request) -> str:
    """The date a prompt's data ends (strategist) or its headline window ends (analyst)."""
    return _DECIDED.search(user_text(request)).group(1)


def test_each_prompt_carries_the_previous_strategy_and_its_realized_outcome(tmp_path):
    ds = fake_dataset(("AAA", "BBB"))
    with SimServer(SimConfig(latency_s=0.1, answers_file=None)) as sim:
        cfg = news_cfg(
            tmp_path,
            provider="local",
            model="sim-model",
            base_url=sim.openai_base_url,
            reflection=True,
        )
        provider = Recorder(make_provider(cfg))  # the real openai SDK client
        result = generate_strategies(cfg, ds, provider=provider, write=False)
    by_date = {decided_on(c[4]): c for c in provider.calls if "Ticker: AAA" in c[1]}
    for ticker in ("AAA", "BBB"):
        df = result.strategies[ticker]
        frame = ds.frames[ticker]
        tl = Timeline(frame.index, strategy_frequency=20, warmup=200)
        assert list(df["memory"]) == ["none"] + ["previous"] * 4
        calls = {decided_on(c[4]): c for c in provider.calls if f"Ticker: {ticker}\n" in c[1]}
        for m, period in enumerate(tl.periods):
            _, prompt, start, _, _ = calls[period.inputs_end.date().isoformat()]
            if m == 0:
                assert "previous strategy" not in prompt
                continue
            prev = df.iloc[m - 1]
            memory = json.loads(prompt.split("how it turned out (JSON): ", 1)[1].splitlines()[0])
            assert memory["direction"] == ("LONG" if prev["direction"] == 1 else "SHORT")
            assert memory["confidence"] == prev["confidence"]
            assert memory["explanation"] == prev["explanation"]
            # the return of the period it guided: close of its last day over the close of the
            # day before it started (both on or before this period's inputs_end)
            prior = tl.periods[m - 1]
            assert prior.end == period.inputs_end
            realized = frame["close"].iloc[prior.end_pos] / frame["close"].iloc[prior.start_pos - 1]
            assert memory["stock_return"] == float(f"{realized - 1:.6g}")
            sign = 1 if prev["direction"] == 1 else -1
            assert memory["position_return"] == float(f"{sign * (realized - 1):.6g}")
            assert memory["period"] == f"{prior.start.date()}..{prior.end.date()}"
            # a chain: period m was sent only after period m-1 was answered
            _, _, _, prev_end, _ = calls[prior.inputs_end.date().isoformat()]
            assert start >= prev_end
    # chains of different tickers ran side by side: AAA's period 1 overlaps BBB's
    aaa = by_date[
        Timeline(ds.frames["AAA"].index, strategy_frequency=20, warmup=200)
        .periods[1]
        .inputs_end.date()
        .isoformat()
    ]
    bbb = [
        c
        for c in provider.calls
        if "Ticker: BBB" in c[1] and decided_on(c[4]) == decided_on(aaa[4])
    ]
    assert bbb and bbb[0][2] < aaa[3] and aaa[2] < bbb[0][3]


def _future_poisoned(ds, news: pd.DataFrame, cut_pos: int):
    """Copies where every row from ``cut_pos`` on and every headline dated then is a sentinel."""
    frames = {}
    for ticker, frame in ds.frames.items():
        poisoned = frame.copy()
        poisoned.iloc[cut_pos:] = SENTINEL_PRICE
        frames[ticker] = poisoned
    dates = ds.frames["AAA"].index
    future = headlines_at(
        dates, [(p, t, f"{SENTINEL_TEXT} {p}") for p in range(cut_pos, len(dates)) for t in frames]
    )
    return type(ds)(frames), pd.concat([news[news["date"] < dates[cut_pos]], future])


def test_nothing_after_inputs_end_ever_reaches_a_prompt_of_that_period_or_earlier(tmp_path):
    ds = fake_dataset(("AAA", "BBB"))
    dates = ds.frames["AAA"].index
    tl = Timeline(dates, strategy_frequency=20, warmup=200)
    news = headlines_at(
        dates,
        [(p, t, f"{t} item on day {p}") for p in range(175, 300, 3) for t in ("AAA", "BBB")],
    )
    m = 2  # the period whose start is the cut: its inputs end the day before
    cut = tl.periods[m].start_pos

    def prompts(dataset, headlines, tag):
        provider = FakeProvider(text=chained_answer)
        cfg = news_cfg(tmp_path / tag, reflection=True)
        result = generate_strategies(
            cfg, dataset, provider=provider, headlines=headlines, write=False
        )
        return provider.requests, result

    clean, clean_result = prompts(ds, news, "clean")
    poisoned_ds, poisoned_news = _future_poisoned(ds, news, cut)
    dirty, dirty_result = prompts(poisoned_ds, poisoned_news, "dirty")
    assert len(clean) == len(dirty) == 20  # 5 analysts + 5 strategists per ticker
    limit = tl.periods[m].inputs_end.date().isoformat()

    def upto(requests):
        return sorted(
            (r.messages[0]["content"][:30], user_text(r))
            for r in requests
            if decided_on(r) <= limit
        )

    early_clean, early_dirty = upto(clean), upto(dirty)
    assert len(early_clean) == 2 * 2 * (m + 1)
    assert early_clean == early_dirty  # byte-identical: the future changed nothing up to m
    for _, text in early_dirty:
        assert SENTINEL_TEXT not in text and "987654" not in text
    # ... and the test can fail: the sentinel does reach the first prompts allowed to see it
    later = [user_text(r) for r in dirty if decided_on(r) > limit]
    assert any(SENTINEL_TEXT in t for t in later) and any("987654" in t for t in later)
    for ticker in ("AAA", "BBB"):
        a = clean_result.strategies[ticker].iloc[: m + 1].drop(columns="latency_s")
        b = dirty_result.strategies[ticker].iloc[: m + 1].drop(columns="latency_s")
        pd.testing.assert_frame_equal(a, b)


def test_a_failed_link_is_shown_as_unavailable_and_the_chain_is_redone_next_run(tmp_path):
    ds = fake_dataset(("AAA",))
    tl = Timeline(ds.frames["AAA"].index, strategy_frequency=20, warmup=200)
    bad_day = tl.periods[2].inputs_end.date().isoformat()

    def fail_period_2(n, request):
        if f"Data up to and including: {bad_day}" in user_text(request):
            raise ServerError("boom", status=500)

    cfg = news_cfg(tmp_path, ("AAA",), reflection=True)
    provider = FakeProvider(text=chained_answer, script=fail_period_2)
    df = generate_strategies(cfg, ds, provider=provider, write=False).strategies["AAA"]
    assert list(df["status"]) == ["ok", "ok", "fallback", "ok", "ok"]
    assert list(df["memory"]) == ["none", "previous", "previous", "unavailable", "previous"]
    (third,) = [user_text(r) for r in provider.requests if "unavailable" in user_text(r)]
    assert "the previous strategy call failed" in third and "explanation" not in third
    # the failed link is retried; every prompt after it changes, so they are asked again,
    # while the periods before it come from the cache (keys hold the previous strategy)
    again = FakeProvider(text=chained_answer)
    redo = generate_strategies(cfg, ds, provider=again, write=False).strategies["AAA"]
    assert list(redo["status"]) == ["cached", "cached", "ok", "ok", "ok"]
    assert again.calls == 3
    assert list(redo["memory"]) == ["none"] + ["previous"] * 4
    assert redo["cache_key"].iloc[3] != df["cache_key"].iloc[3]
    third = FakeProvider(text=chained_answer)
    generate_strategies(cfg, ds, provider=third, write=False)
    assert third.calls == 0


def test_reflection_off_runs_every_period_at_once_and_on_one_chain_per_ticker(tmp_path):
    ds = fake_dataset(("AAA", "BBB", "CCC"))
    # latencies far above the limiter's spacing of the first wave (1 ms at 1000 req/s)
    off = FakeProvider(latency=0.2, text=chained_answer)
    df = generate_strategies(
        news_cfg(tmp_path / "off", ("AAA", "BBB", "CCC")), ds, provider=off, write=False
    )
    assert off.max_in_flight == 15
    assert (df.strategies["AAA"]["memory"] == "off").all()
    assert not any("previous strategy" in user_text(r) for r in off.requests)
    on = FakeProvider(latency=0.1, text=chained_answer)
    cfg = news_cfg(tmp_path / "on", ("AAA", "BBB", "CCC"), reflection=True)
    generate_strategies(cfg, ds, provider=on, write=False)
    assert on.max_in_flight == 3  # one request per chain at a time, all chains at once
    # within a chain, periods went out in order
    for ticker in ("AAA", "BBB", "CCC"):
        days = [decided_on(r) for r in on.requests if f"Ticker: {ticker}\n" in user_text(r)]
        assert days == sorted(days) and len(days) == 5


def test_asking_for_one_period_sends_only_it_and_its_chain(tmp_path):
    """``periods=`` (rewts signal's current period): that task and what it depends on."""
    ds = fake_dataset(("AAA", "BBB"))
    alone = FakeProvider(latency=0.0, text=chained_answer)
    cfg = news_cfg(tmp_path / "alone", ("AAA", "BBB"))
    one = generate_strategies(cfg, ds, provider=alone, write=False, periods={"AAA": [3]})
    assert len(alone.requests) == 1 and one.strategies["AAA"]["period"].tolist() == [3]
    assert one.strategies["BBB"].empty
    chained = FakeProvider(latency=0.0, text=chained_answer)
    cfg = news_cfg(tmp_path / "chain", ("AAA", "BBB"), reflection=True)
    chain = generate_strategies(cfg, ds, provider=chained, write=False, periods={"AAA": [3]})
    # with reflection, period 3's prompt needs periods 0..2 first
    assert chain.strategies["AAA"]["period"].tolist() == [0, 1, 2, 3]
    assert len(chained.requests) == 4
