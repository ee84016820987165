"""The news analyst: windows without look-ahead, the analyst -> strategist order through the
engine and the real openai SDK against the simulator, no news -> no call, skip_news_processing,
caching, anonymization, failures and the offline heuristic."""

from __future__ import annotations

import asyncio
import json
import re

import pandas as pd
import pytest

from rewts.config import Config
from rewts.data.timeline import Timeline
from rewts.errors import LLMError
from rewts.llm import generate_strategies
from rewts.llm.analyst import (
    NEUTRAL,
    NewsAnalysis,
    anonymizer,
    news_windows,
    window_headlines,
)
from rewts.llm.providers import make_provider
from rewts.llm.providers.base import Request, Response, ServerError
from rewts.sim import SimConfig, SimServer

from .helpers import ANSWER, FakeProvider, fake_dataset

ANALYSIS = json.dumps(
    {
        "factors": [{"description": "a recall", "sentiment": -1, "impact": 2}],
        "overall_sentiment": "bearish",
        "confidence": 0.7,
        "key_topics": ["recall"],
    }
)


def is_analyst(request: Request) -> bool:
    return request.messages[0]["content"].startswith("You are the News Analyst")


def answer_by_agent(request: Request) -> str:
    """The analyst's topics echo its last headline (a different analysis for other news)."""
    if not is_analyst(request):
        return ANSWER
    last = user_text(request).splitlines()[-2].split(": ", 1)[1]
    return json.dumps(json.loads(ANALYSIS) | {"key_topics": [last[:40]]})


def news_cfg(tmp_path, tickers=("AAA", "BBB"), **llm) -> Config:
    top = {k: llm.pop(k) for k in ("skip_news_processing",) if k in llm}
    return Config.model_validate(
        {
            "tickers": list(tickers),
            "parallel_workers": "auto",
            "max_requests_per_second": 1000.0,
            **top,
            "llm": {
                "cache_path": str(tmp_path / "cache.sqlite"),
                "output_dir": str(tmp_path / "out"),
                "retry": {"initial_s": 0.001, "max_s": 0.01, "max_retries": 1},
                **llm,
            },
        }
    )


def headlines_at(dates: pd.DatetimeIndex, rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    """Headlines dated on calendar positions: ``(position, ticker, text)``."""
    return pd.DataFrame(
        {
            "date": [dates[p] for p, _, _ in rows],
            "ticker": [t for _, t, _ in rows],
            "headline": [h for _, _, h in rows],
            "source": "test",
        }
    )


class Recorder:
    """Wraps a provider and records (kind, period label, start, end, request) of each call."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, str, float, float, Request]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @property
    def identity(self):
        return self.inner.identity

    async def generate(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        start = loop.time()
        response = await self.inner.generate(request)
        kind = "analyst" if is_analyst(request) else "strategist"
        self.calls.append((kind, user_text(request), start, loop.time(), request))
        return response

    async def aclose(self):
        await self.inner.aclose()


def user_text(request: Request) -> str:
    return request.messages[-1]["content"]


# ------------------------------------------------------------------------ windows


def test_windows_are_consecutive_end_at_inputs_end_and_partition_the_headlines():
    frame = fake_dataset(("AAA",)).frames["AAA"]
    tl = Timeline(frame.index, strategy_frequency=20, warmup=200)
    windows = news_windows(tl.dates, tl.periods, 20)
    assert [w.period for w in windows.values()] == [p.index for p in tl.periods]
    for period in tl.periods:
        w = windows[period.index]
        assert w.until == period.inputs_end < period.start
        if period.index:
            assert w.after == windows[period.index - 1].until
    assert windows[0].after == tl.dates[tl.periods[0].inputs_end_pos - 20]
    # one headline on every calendar day (weekends too): each lands in exactly one window,
    # always dated inside it and never after the period's inputs end
    days = pd.date_range(tl.dates[150], tl.dates[-1], freq="D")
    news = pd.DataFrame({"date": days, "ticker": "AAA", "headline": days.strftime("h%Y%m%d")})
    seen: list[str] = []
    for period in tl.periods:
        items, total = window_headlines(news, "AAA", windows[period.index], limit=10_000)
        assert total == len(items) > 0
        assert all(pd.Timestamp(d) <= period.inputs_end for d, _ in items)
        assert all(pd.Timestamp(d) > windows[period.index].after for d, _ in items)
        seen += [h for _, h in items]
    assert len(seen) == len(set(seen))
    first, last = windows[0].after, tl.periods[-1].inputs_end
    assert len(seen) == int(((days > first) & (days <= last)).sum())


def test_window_keeps_the_newest_headlines_and_drops_exact_duplicates():
    frame = fake_dataset(("AAA",)).frames["AAA"]
    tl = Timeline(frame.index, strategy_frequency=20, warmup=200)
    window = news_windows(tl.dates, tl.periods, 20)[1]
    rows = [(205 + i % 10, "AAA", f"item {i:02d}") for i in range(30)] + [(205, "AAA", "item 00")]
    items, total = window_headlines(headlines_at(tl.dates, rows), "AAA", window, limit=5)
    assert total == 30 and len(items) == 5
    assert [h for _, h in items] == ["item 18", "item 28", "item 09", "item 19", "item 29"]
    assert [d for d, _ in items] == [tl.dates[213].strftime("%Y-%m-%d")] * 2 + [
        tl.dates[214].strftime("%Y-%m-%d")
    ] * 3


def test_anonymizer_replaces_names_and_ticker_but_not_other_words():
    anon = anonymizer("META")
    text = "Facebook's FB shares; META up, $FB too; Meta Platforms vs Apple; FBI probe; metadata"
    out = anon(text)
    for name in ("Facebook", "Meta Platforms", " FB ", "META ", "$FB"):
        assert name not in out
    assert "Apple" in out and "FBI" in out and "metadata" in out
    assert out.startswith("the Company's STOCK shares; STOCK up, STOCK too; the Company vs")


def _objects(schema):
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _objects(value)


def test_the_analyst_schema_is_strict_mode_ready_and_agrees_with_the_model():
    import random

    from rewts.llm.analyst import ANALYST_JSON_SCHEMA
    from rewts.sim.schema import instance

    objects = list(_objects(ANALYST_JSON_SCHEMA))
    assert len(objects) == 2  # the answer and a factor
    for obj in objects:  # OpenAI strict mode: all properties required, nothing else allowed
        assert obj["additionalProperties"] is False
        assert set(obj["required"]) == set(obj["properties"])
    for seed in range(50):  # whatever the schema admits, the model accepts
        NewsAnalysis.model_validate(instance(ANALYST_JSON_SCHEMA, random.Random(seed)))
    with pytest.raises(ValueError):
        NewsAnalysis.model_validate(json.loads(ANALYSIS) | {"factors": [{}] * 4})


# ------------------------------------------------------------ through the SDK


def test_analysts_start_at_once_and_each_strategist_waits_for_its_analysis(tmp_path):
    ds = fake_dataset(("AAA", "BBB"))
    dates = ds.frames["AAA"].index
    # AAA has news for periods 0, 1, 3 (not 2, not 4); BBB for period 1 only
    news = headlines_at(
        dates,
        [
            (190, "AAA", "AAA wins a large contract"),
            (210, "AAA", "AAA recalls a product"),
            (215, "BBB", "BBB chief executive resigns"),
            (250, "AAA", "AAA beats earnings estimates"),
        ],
    )
    with SimServer(SimConfig(latency_s=0.2, answers_file=None)) as sim:
        cfg = news_cfg(tmp_path, provider="local", model="sim-model", base_url=sim.openai_base_url)
        provider = Recorder(make_provider(cfg))  # the real openai SDK client
        result = generate_strategies(cfg, ds, provider=provider, headlines=news, write=False)
        served = sim.stats(log=False)["requests"]
    calls = provider.calls
    analysts = [c for c in calls if c[0] == "analyst"]
    strategists = [c for c in calls if c[0] == "strategist"]
    assert len(analysts) == 4 and len(strategists) == 10 and served == 14
    # no headline -> no call: AAA periods 2 and 4, BBB all but 1
    aaa = result.strategies["AAA"].set_index("period")
    assert list(aaa["news_status"]) == ["ok", "ok", "none", "ok", "none"]
    assert list(aaa["news_count"]) == [1, 1, 0, 1, 0]
    assert aaa.loc[2, "analysis"] == NEUTRAL.model_dump_json()
    bbb = result.strategies["BBB"].set_index("period")
    assert list(bbb["news_status"]) == ["none", "ok", "none", "none", "none"]
    # analysts have no dependency: all four are sent in the first wave, before any answer
    first_end = min(c[3] for c in calls)
    assert max(a[2] for a in analysts) < first_end
    # each strategist with news starts after its analyst finished and shows its answer
    for ticker, frame in (("AAA", aaa), ("BBB", bbb)):
        for period, row in frame.iterrows():
            decided_on = row["inputs_end"].date().isoformat()
            (s,) = [
                c
                for c in strategists
                if f"Ticker: {ticker}\nData up to and including: {decided_on}\n" in c[1]
            ]
            if row["news_status"] == "none":
                assert '"status": "no headlines: neutral"' in s[1]
                continue
            (a,) = [
                c
                for c in analysts
                if f"Company: {ticker}\n" in c[1] and f"including {decided_on} (" in c[1]
            ]
            assert s[2] >= a[3], f"{ticker} period {period} started before its analysis"
            analysis = NewsAnalysis.model_validate_json(row["analysis"])
            assert f'"overall_sentiment": "{analysis.overall_sentiment}"' in s[1]
            assert row["analysis_key"] and row["analysis_key"] != row["cache_key"]
    # strategists without news (and no reflection) did not wait for anything either
    independent = [c for c in strategists if '"status": "no headlines: neutral"' in c[1]]
    assert len(independent) == 6 and max(c[2] for c in independent) < first_end


def test_json_mode_without_a_schema_gets_valid_analyses_from_the_simulator(tmp_path):
    ds = fake_dataset(("AAA",))
    news = headlines_at(ds.frames["AAA"].index, [(190, "AAA", "one"), (230, "AAA", "two")])
    with SimServer(SimConfig(latency_s=0.0, answers_file=None)) as sim:
        cfg = news_cfg(
            tmp_path,
            ("AAA",),
            provider="local",
            model="sim-model",
            base_url=sim.openai_base_url,
            structured_output="json_object",  # DeepSeek's mode: JSON, no schema
        )
        result = generate_strategies(cfg, ds, headlines=news, write=False)
    df = result.strategies["AAA"]
    assert list(df["news_status"]) == ["ok", "none", "ok", "none", "none"]
    assert (df["status"] == "ok").all()
    assert result.summary.analyses == 2 and result.summary.total == 7
    for text in df["analysis"]:
        NewsAnalysis.model_validate_json(text)


# ------------------------------------------------------------- fake provider


def test_skip_news_processing_and_no_news_path_make_no_analyst_call(tmp_path):
    ds = fake_dataset(("AAA",))
    news = headlines_at(ds.frames["AAA"].index, [(p, "AAA", f"item {p}") for p in range(180, 300)])
    for cfg in (
        news_cfg(tmp_path, ("AAA",), skip_news_processing=True),
        news_cfg(tmp_path / "b", ("AAA",)),
    ):
        provider = FakeProvider(text=answer_by_agent)
        given = news if cfg.skip_news_processing else None  # no data.news_path either
        df = generate_strategies(cfg, ds, provider=provider, headlines=given, write=False)
        df = df.strategies["AAA"]
        assert provider.calls == 5 and not any(is_analyst(r) for r in provider.requests)
        assert (df["news_status"] == "off").all() and (df["analysis"] == "").all()
        assert not any("News analyst" in user_text(r) for r in provider.requests)


def test_news_path_is_read_and_analyses_are_cached_by_their_headlines(tmp_path):
    ds = fake_dataset(("AAA",))
    dates = ds.frames["AAA"].index
    path = tmp_path / "news.csv"
    headlines_at(dates, [(190, "AAA", "first"), (230, "AAA", "second")]).to_csv(path, index=False)
    cfg = news_cfg(tmp_path, ("AAA",))
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"news_path": path})})
    provider = FakeProvider(text=answer_by_agent)
    first = generate_strategies(cfg, ds, provider=provider, write=False).strategies["AAA"]
    assert provider.calls == 7  # 2 analysts + 5 strategists
    assert list(first["news_status"]) == ["ok", "none", "ok", "none", "none"]
    again = FakeProvider(text=answer_by_agent)
    second = generate_strategies(cfg, ds, provider=again, write=False).strategies["AAA"]
    assert again.calls == 0
    assert list(second["news_status"]) == ["cached", "none", "cached", "none", "none"]
    assert list(second["analysis"]) == list(first["analysis"])
    # one headline changed: its analysis and the strategy it feeds are asked again (the
    # analysis differs, so the strategist's prompt does), nothing else
    headlines_at(dates, [(190, "AAA", "first"), (230, "AAA", "changed")]).to_csv(path, index=False)
    third = FakeProvider(text=answer_by_agent)
    generate_strategies(cfg, ds, provider=third, write=False)
    assert third.calls == 2
    assert "changed" in user_text(third.requests[0]) and is_analyst(third.requests[0])


def test_a_headlines_table_with_text_dates_works_and_a_bad_one_says_what_to_fix(tmp_path):
    from rewts.errors import DataError

    ds = fake_dataset(("AAA",))
    text = headlines_at(ds.frames["AAA"].index, [(210, "AAA", "AAA news")])
    text["date"] = text["date"].dt.strftime("%Y-%m-%d")
    provider = FakeProvider(text=answer_by_agent)
    df = generate_strategies(
        news_cfg(tmp_path, ("AAA",)), ds, provider=provider, headlines=text, write=False
    ).strategies["AAA"]
    assert list(df["news_count"]) == [0, 1, 0, 0, 0]
    with pytest.raises(DataError, match="YYYY-MM-DD"):
        generate_strategies(
            news_cfg(tmp_path, ("AAA",)),
            ds,
            provider=FakeProvider(),
            headlines=text.assign(date="soon"),
            write=False,
        )
    with pytest.raises(DataError, match="headline"):
        generate_strategies(
            news_cfg(tmp_path, ("AAA",)),
            ds,
            provider=FakeProvider(),
            headlines=text.drop(columns="headline"),
            write=False,
        )


def test_anonymized_prompts_name_neither_the_company_nor_the_ticker(tmp_path):
    ds = fake_dataset(("AAPL",))
    news = headlines_at(
        ds.frames["AAPL"].index,
        [(190, "AAPL", "Apple unveils new iPhone, AAPL rises"), (210, "AAPL", "APPLE Inc sued")],
    )
    provider = FakeProvider(text=answer_by_agent)
    cfg = news_cfg(tmp_path, ("AAPL",), anonymize=True)
    generate_strategies(cfg, ds, provider=provider, headlines=news, write=False)
    assert provider.calls == 7
    for request in provider.requests:
        text = user_text(request)
        assert "AAPL" not in text and "apple" not in text.lower()
    assert any(
        "the Company unveils new iPhone, STOCK rises" in user_text(r) for r in provider.requests
    )


def test_a_failed_analysis_leaves_the_strategy_standing_and_says_so(tmp_path):
    ds = fake_dataset(("AAA",))
    news = headlines_at(ds.frames["AAA"].index, [(210, "AAA", "AAA news")])

    def fail_analyst(n, request):
        if is_analyst(request):
            raise ServerError("boom", status=500)

    provider = FakeProvider(text=answer_by_agent, script=fail_analyst)
    cfg = news_cfg(tmp_path, ("AAA",))
    df = generate_strategies(cfg, ds, provider=provider, headlines=news, write=False)
    df = df.strategies["AAA"].set_index("period")
    assert df.loc[1, "news_status"] == "failed" and df.loc[1, "status"] == "ok"
    assert df.loc[1, "analysis"] == ""
    (prompt,) = [user_text(r) for r in provider.requests if "unavailable" in user_text(r)]
    assert "the news analyst failed" in prompt
    with pytest.raises(LLMError, match="on_failure"):
        generate_strategies(
            news_cfg(tmp_path / "e", ("AAA",), on_failure="error"),
            ds,
            provider=FakeProvider(text=answer_by_agent, script=fail_analyst),
            headlines=news,
            write=False,
        )


def test_heuristic_provider_runs_offline_and_labels_the_news_as_not_analyzed(tmp_path, workdir):
    ds = fake_dataset(("AAA",))
    news = headlines_at(ds.frames["AAA"].index, [(210, "AAA", "AAA news")])
    cfg = news_cfg(tmp_path, ("AAA",), provider="heuristic", reflection=True)
    result = generate_strategies(cfg, ds, headlines=news, write=False)
    df = result.strategies["AAA"]
    assert (df["news_status"] == "heuristic").all() and (df["status"] == "ok").all()
    assert result.summary.api_calls == 0
    assert list(df["memory"]) == ["none"] + ["previous"] * 4


def test_real_headlines_fall_in_their_windows_and_anonymize_without_leaks(shared_data):
    from rewts.data import load_headlines
    from rewts.llm.analyst import ENTITY_NAMES, analyst_system_message, render_analyst_messages

    news = load_headlines(shared_data / "headlines.csv")
    prices = pd.read_csv(shared_data / "AAPL.csv", parse_dates=["date"], index_col="date")
    tl = Timeline(prices.loc["2016-10-01":"2020-06-30"].index, strategy_frequency=20, warmup=60)
    windows = news_windows(tl.dates, tl.periods, 20)
    system = analyst_system_message("v1")
    first, last = windows[0].after, tl.periods[-1].inputs_end
    for ticker, names in ENTITY_NAMES.items():
        anon = anonymizer(ticker)
        leak = re.compile(
            rf"(?<![A-Za-z])(?:(?i:{'|'.join(n for n in names if not n.isupper())})"
            rf"|{'|'.join({ticker, *(n for n in names if n.isupper())})})(?![A-Za-z])"
        )
        shown = 0
        for period in tl.periods:
            window = windows[period.index]
            items, total = window_headlines(news, ticker, window, limit=10**6)
            assert all(window.after < pd.Timestamp(d) <= period.inputs_end for d, _ in items)
            shown += total
            if items:
                user = render_analyst_messages(
                    ticker, window, items, total, system=system, anonymize=anon
                )[1]["content"]
                assert not leak.search(user), (ticker, leak.search(user))
        mine = news[(news["ticker"] == ticker) & (news["date"] > first) & (news["date"] <= last)]
        assert shown == len(mine.drop_duplicates(["date", "headline"])) > 400
