"""Blind prompts (llm.blind): every prompt of a real-data run, as the simulator received it on
each provider path (OpenAI-compatible, Gemini, and both batch APIs, with reflection chains and
the news analyst), names no stock of the universe and no year, date or month; on the batch
paths every other field of the uploaded jobs is scanned too, ids excepted; the named prompts
of the same runs do carry those strings (so the scan can fail); the blind snapshot keeps every
signal in relative form; blind and named answers never share a cache entry."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rewts.config import Config
from rewts.data.timeline import Timeline
from rewts.llm import generate_strategies
from rewts.llm.analyst import ENTITY_NAMES, window_headlines
from rewts.llm.blind import (
    BLIND_EQUIVALENTS,
    blind_scrubber,
    blind_snapshot,
    days_before,
    scrub_time,
)
from rewts.llm.prompts import snapshot_inputs
from rewts.sim import SimConfig, SimServer
from rewts.sim.app import SimState
from rewts.sim.gemini_batch import GeminiBatches
from rewts.sim.openai_batch import OpenAIBatches

from .helpers import ANSWER, FakeProvider, fake_dataset

KEY = "test-SENTINEL-key-blind-0001"
UNIVERSE = ("AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA")

# The scan, written independently of the scrubber's rules: what the issue forbids.
_TICKERS = sorted(
    {*UNIVERSE, *(n for names in ENTITY_NAMES.values() for n in names if n.isupper())},
    key=len,
    reverse=True,
)
_WORDS = sorted(
    {n for names in ENTITY_NAMES.values() for n in names if not n.isupper()}, key=len, reverse=True
)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_ABBR = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
LEAKS: dict[str, re.Pattern[str]] = {
    "ticker": re.compile(rf"(?<![A-Za-z])(?:{'|'.join(_TICKERS)})(?![A-Za-z])"),
    # a name anywhere at the start of a word, any case (Apple, AppleCare, apple)
    "name": re.compile(
        rf"(?i)(?<![a-z])(?:{'|'.join(w for w in _WORDS if len(w) >= 5)})"
        rf"|(?<![a-z])(?:{'|'.join(w for w in _WORDS if len(w) < 5)})(?![a-z])"
    ),
    "year": re.compile(r"(?<![\d.])(?:19|20)\d\d(?!\d)"),
    "short year": re.compile(r"(?i)(?:\b(?:FY|CY|Q[1-4]|[1-4]Q|[12]H)\s?['’]?\d\d\b|['’]\d\d\b)"),
    "date": re.compile(r"\d{4}-\d\d-\d\d|(?<![\d/.\-])\d{1,2}/\d{1,2}(?![\d/])"),
    "month": re.compile(
        rf"(?<![A-Za-z])(?:{_MONTHS}|{_MONTHS.upper()}|{_ABBR}|{_ABBR.upper()})(?![A-Za-z])"
        rf"|(?i:(?<![a-z])(?:january|february|april|june|july|august|september|october|"
        rf"november|december)(?![a-z]))"
    ),
    # a price level as a snapshot field
    "level field": re.compile(
        r'"(?:close|sma_\d+|macd|macd_signal|macd_hist|atr_14|sp500_close|vix_close|'
        r'tnx_close)":'
    ),
}


def leaks(text: str) -> dict[str, list[str]]:
    return {k: p.findall(text) for k, p in LEAKS.items() if p.search(text)}


# ----------------------------------------------------------------- real-data run


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    """The six stocks over the paper's first test year, 2018, with news and reflection.
    (Every headline of ../shared/data goes through the scrubber in the test below it.)"""
    from rewts.data import prepare_data

    root = tmp_path_factory.mktemp("blind")
    data = {
        "csv_dir": str(shared_data),
        "source": "csv",
        "start_date": "2018-01-01",
        "end_date": "2018-12-31",
        "processed_dir": str(root / "processed"),
        "news_path": str(shared_data / "headlines.csv"),
    }
    cfg = Config.model_validate({"tickers": list(UNIVERSE), "data": data})
    return prepare_data(cfg), data


#: fields of a batch job that must be opaque ids (the cache key, a random job name, a file id)
#: and are left out of the scan: a hex id may hold "2019" by chance
_OPAQUE_FIELDS = {"custom_id", "key", "displayName", "display_name", "input_file_id", "rewts"}
_OPAQUE = re.compile(r"(?:rewts-)?[0-9a-f]{12,64}(?:\.jsonl)?|file-sim[0-9a-f]+")


class Received:
    """Every prompt the simulator answered (its parsed text: system + user), on any path, and
    on the batch paths every job as uploaded (the OpenAI JSONL file and its batch request, the
    Gemini ``batchGenerateContent`` body): whatever reaches the provider, not only the prompt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prompts: list[str] = []
        #: (what, parsed JSON) of each batch upload
        self.uploads: list[tuple[str, object]] = []
        self._lock = threading.Lock()
        original = SimState.answer

        def answer(state, cfg, req):
            with self._lock:
                self.prompts.append(req.prompt)
            return original(state, cfg, req)

        monkeypatch.setattr(SimState, "answer", answer)
        upload, create, handle = OpenAIBatches.upload, OpenAIBatches.create, GeminiBatches.handle

        async def openai_upload(batches, request):
            before = set(batches.files)
            resp = await upload(batches, request)
            for file_id in set(batches.files) - before:
                stored = batches.files[file_id]
                lines = stored.data.decode("utf-8").splitlines()
                self.uploads.append(("openai file name", {"display_name": stored.filename}))
                self.uploads += [("openai jsonl line", json.loads(ln)) for ln in lines if ln]
            return resp

        async def openai_create(batches, state, request):
            self.uploads.append(("openai batch", await request.json()))  # aiohttp keeps the body
            return await create(batches, state, request)

        async def gemini_handle(batches, state, request, version, rest):
            if rest.endswith(":batchGenerateContent") and request.method == "POST":
                self.uploads.append(("gemini batch", await request.json()))
            return await handle(batches, state, request, version, rest)

        monkeypatch.setattr(OpenAIBatches, "upload", openai_upload)
        monkeypatch.setattr(OpenAIBatches, "create", openai_create)
        monkeypatch.setattr(GeminiBatches, "handle", gemini_handle)

    def upload_texts(self) -> list[str]:
        """Every key, string and number of every batch upload, ids checked opaque and left out."""
        texts: list[str] = []

        def walk(value: object, field: str | None) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    texts.append(str(k))
                    walk(v, str(k))
            elif isinstance(value, list):
                for v in value:
                    walk(v, field)
            elif field in _OPAQUE_FIELDS and isinstance(value, str):
                assert _OPAQUE.fullmatch(value), (field, value)
            elif value is not None:
                texts.append(str(value))

        for _, upload in self.uploads:
            walk(upload, None)
        return texts


def _cfg(root: Path, data: dict, llm: dict) -> Config:
    return Config.model_validate(
        {
            "tickers": list(UNIVERSE),
            "data": data,
            "parallel_workers": "auto",
            "max_requests_per_second": 1000.0,
            "llm": {
                "reflection": True,
                # what is scanned is the prompt; parsing per-token log-probabilities in the
                # SDKs would take most of this file's time
                "logprobs": False,
                "latency_prior_s": 0.05,
                "batch_poll_s": 0.5,
                "cache_path": str(root / "cache.sqlite"),
                "output_dir": str(root / "out"),
                "retry": {"initial_s": 0.01, "max_s": 0.05, "max_retries": 2},
                **llm,
            },
        }
    )


PATHS = {
    "openai-compatible": lambda sim: {
        "provider": "local",
        "model": "sim-model",
        "base_url": sim.openai_base_url,
    },
    "gemini": lambda sim: {"provider": "gemini", "base_url": sim.gemini_base_url},
    # one batch job per dependency wave: with reflection each period's strategists wait for
    # the previous period's answers, so a chain of 12 periods is 12+ jobs (the simulator
    # answers at once, so they take well under a second each)
    "openai batch": lambda sim: {
        "provider": "local",
        "model": "sim-model",
        "base_url": sim.openai_base_url,
        "batch": True,
    },
    "gemini batch": lambda sim: {
        "provider": "gemini",
        "base_url": sim.gemini_base_url,
        "batch": True,
    },
}


@pytest.mark.parametrize("path", list(PATHS))
def test_no_prompt_of_a_blind_real_data_run_names_a_stock_or_a_time(
    real, path, tmp_path, workdir, monkeypatch
):
    dataset, data = real
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    received = Received(monkeypatch)
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.0)) as sim:
        cfg = _cfg(tmp_path, data, {"blind": True, **PATHS[path](sim)})
        result = generate_strategies(cfg, dataset, write=False)
    tables = result.strategies
    rows = sum(len(df) for df in tables.values())
    # the whole run went through the wire: every strategist and every analyst, chained
    assert len(received.prompts) == result.summary.total == rows + result.summary.analyses
    assert result.summary.analyses > 50 and rows > 50
    for df in tables.values():
        assert (df["status"] == "ok").all() and (df["prompt_version"] == "v1-blind").all()
        if cfg.llm.reflection:
            assert list(df["memory"]) == ["none"] + ["previous"] * (len(df) - 1)
    analysts = [p for p in received.prompts if p.startswith("You are the News Analyst")]
    assert len(analysts) == result.summary.analyses
    assert sum("days before:" in p for p in analysts) > 50  # headlines dated relatively
    assert cfg.llm.reflection
    assert sum('"stock_return"' in p for p in received.prompts) >= rows - len(tables)
    found = {i: leaks(p) for i, p in enumerate(received.prompts) if leaks(p)}
    assert not found, next(iter(found.items()))
    if cfg.llm.batch:
        # each prompt went out once, in a job; nothing else in the jobs names a stock or a time
        lines = [u for what, u in received.uploads if what == "openai jsonl line"]
        inlined = [
            r
            for what, u in received.uploads
            if what == "gemini batch"
            for r in u["batch"]["inputConfig"]["requests"]["requests"]
        ]
        assert len(lines) + len(inlined) == len(received.prompts)
        uploaded = {t: leaks(t) for t in received.upload_texts() if leaks(t)}
        assert not uploaded, next(iter(uploaded.items()))


def _kinds(texts: list[str]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for text in texts:
        for kind in leaks(text):
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


ALL_KINDS = {"ticker", "name", "year", "date", "month", "level field"}


@pytest.mark.parametrize("path", list(PATHS))
def test_the_named_prompts_of_the_same_run_carry_what_the_scan_looks_for(
    real, path, tmp_path, workdir, monkeypatch
):
    """The scan above can fail: on the named prompts of the same run, on the same provider
    path (on a batch path: in the uploaded jobs as well), it finds every kind."""
    dataset, data = real
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    received = Received(monkeypatch)
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.0)) as sim:
        cfg = _cfg(tmp_path, data, PATHS[path](sim))
        result = generate_strategies(cfg, dataset, write=False)
    assert len(received.prompts) == result.summary.total
    kinds = _kinds(received.prompts)
    assert set(kinds) >= ALL_KINDS, kinds
    strategists = len(received.prompts) - sum(
        p.startswith("You are the News Analyst") for p in received.prompts
    )
    # every strategist prompt names its ticker, its date and its price levels
    for kind in ("ticker", "year", "date", "level field"):
        assert kinds[kind] >= strategists > 50, kind
    assert kinds["name"] > 10 and kinds["month"] > 10
    if cfg.llm.batch:
        assert set(_kinds(received.upload_texts())) >= ALL_KINDS


def test_every_real_headline_reaches_a_blind_analyst_prompt_without_a_name_or_a_time(
    shared_data,
):
    """All 9,490 headlines of ../shared/data, each in its window, through the blind prompt."""
    from rewts.data import load_headlines
    from rewts.llm.analyst import analyst_system_message, news_windows, render_analyst_messages

    news = load_headlines(shared_data / "headlines.csv")
    prices = pd.read_csv(shared_data / "AAPL.csv", parse_dates=["date"], index_col="date")
    tl = Timeline(prices.loc["2016-10-01":"2020-06-30"].index, strategy_frequency=20, warmup=60)
    windows = news_windows(tl.dates, tl.periods, 20)
    system = analyst_system_message("v1", blind=True)
    shown = 0
    for ticker in UNIVERSE:
        scrub = blind_scrubber(ticker, [ticker])  # the other five are scrubbed all the same
        for period in tl.periods:
            window = windows[period.index]
            items, total = window_headlines(news, ticker, window, limit=10**6)
            shown += total
            if items:
                system_msg, user = render_analyst_messages(
                    ticker, window, items, total, system=system, anonymize=scrub, blind=True
                )
                assert not leaks(system_msg["content"] + user["content"]), (
                    ticker,
                    leaks(user["content"]),
                )
    assert shown == len(news.drop_duplicates(["date", "ticker", "headline"]))


# --------------------------------------------------------------------- snapshot


def test_the_blind_snapshot_keeps_every_signal_in_relative_form_from_past_rows_only():
    frame = fake_dataset(("AAA",), n=420).frames["AAA"]
    tl = Timeline(frame.index, strategy_frequency=20, warmup=300)
    period = tl.periods[-1]
    named, blind = snapshot_inputs(frame, period), blind_snapshot(frame, period)
    for key, value in named.items():
        for equivalent in BLIND_EQUIVALENTS.get(key, (key,)):
            assert equivalent in blind, (key, equivalent)
            assert (blind[equivalent] is None) == (value is None), key
    assert not set(BLIND_EQUIVALENTS) & set(blind)  # no level is left
    past = frame.iloc[: period.inputs_end_pos + 1]
    last = past.iloc[-1]
    assert blind["close_vs_sma_50"] == pytest.approx(last["close"] / last["sma_50"] - 1, 1e-5)
    assert blind["atr_14_over_close"] == pytest.approx(last["atr_14"] / last["close"], 1e-5)
    vix = past["vix_close"].to_numpy()[-252:]
    assert blind["vix_z_252"] == pytest.approx((vix[-1] - vix.mean()) / vix.std(ddof=1), 1e-5)
    assert blind["tnx_change_20d"] == pytest.approx(
        past["tnx_close"].iloc[-1] - past["tnx_close"].iloc[-21], 1e-5
    )
    # rows after inputs_end do not matter: planted garbage changes nothing
    planted = frame.copy()
    planted.iloc[period.inputs_end_pos + 1 :, :] = 1e9
    assert blind_snapshot(planted, period) == blind
    # the level is gone: the same stock at ten times the price gives the same snapshot
    scaled = frame.copy()
    price_cols = [
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        *(f"sma_{n}" for n in (20, 50, 100, 200)),
    ]
    price_cols += ["macd", "macd_signal", "macd_hist", "atr_14"]
    scaled[price_cols] *= 10.0
    scaled["sp500_close"] *= 3.0
    ten = blind_snapshot(scaled, period)
    assert {k: v for k, v in ten.items()} == pytest.approx(blind, rel=1e-5)
    assert snapshot_inputs(scaled, period) != named


def test_the_scrubber_removes_universe_names_people_dates_and_prices_but_keeps_words():
    scrub = blind_scrubber("AAPL", ["AAPL", "MSFT"])
    out = scrub(
        "Apple and $AAPL beat Amazon, Alphabet's Google and FB in May 2018 (Q1'19, FY19); "
        "Zuckerberg: iPhones may sell at $246.93 on 7/24; a $38 billion deal on 2019-03-29"
    )
    assert out == (
        "the Company and STOCK beat another company, another company's another company and "
        "OTHER in [month] [year] (Q1[year], FY[year]); [name]: [name] may sell at $[price] on "
        "[date]; a $38 billion deal on [date]"
    )
    # numbers of a snapshot are not years; ordinary words that look like months stay
    assert scrub_time('{"beta_60": 1.2019, "x": 0.020183} the march may go on') == (
        '{"beta_60": 1.2019, "x": 0.020183} the march may go on'
    )
    assert days_before(pd.Timestamp("2018-03-26"), pd.Timestamp("2018-03-29")) == "3 days before"
    with pytest.raises(ValueError, match="look-ahead"):
        days_before(pd.Timestamp("2018-03-30"), pd.Timestamp("2018-03-29"))


# ------------------------------------------------------------ cache and memory


def _answer_naming_a_time(request) -> str:
    """A model that recalls: its explanation names the company and the year."""
    if request.messages[0]["content"].startswith("You are the News Analyst"):
        return json.dumps(
            {
                "factors": [{"description": "Apple in March 2018", "sentiment": 1, "impact": 2}],
                "overall_sentiment": "bullish",
                "confidence": 0.5,
                "key_topics": ["AAPL 2018"],
            }
        )
    return json.dumps(json.loads(ANSWER) | {"explanation": "Apple rallied after 2018-03-29."})


def test_blind_and_named_never_share_cache_entries_and_model_text_is_scrubbed(tmp_path):
    ds = fake_dataset(("AAPL",))
    dates = ds.frames["AAPL"].index
    news = pd.DataFrame(
        {"date": [dates[210]], "ticker": ["AAPL"], "headline": ["Apple sues Samsung"]}
    )
    base = {
        "tickers": ["AAPL"],
        "llm": {
            "reflection": True,
            "cache_path": str(tmp_path / "c.sqlite"),
            "output_dir": str(tmp_path / "o"),
        },
    }
    named_cfg = Config.model_validate(base)
    blind_cfg = Config.model_validate(base | {"llm": base["llm"] | {"blind": True}})
    first = FakeProvider(text=_answer_naming_a_time)
    named = generate_strategies(named_cfg, ds, provider=first, headlines=news, write=False)
    blind_provider = FakeProvider(text=_answer_naming_a_time)
    blind = generate_strategies(blind_cfg, ds, provider=blind_provider, headlines=news, write=False)
    # a blind run after a named one asks for everything again: no entry is shared
    assert blind.summary.cache_hits == 0 and blind_provider.calls == first.calls == 6
    a, b = named.strategies["AAPL"], blind.strategies["AAPL"]
    assert not set(a["cache_key"]) & set(b["cache_key"])
    assert set(a["prompt_version"]) == {"v1"} and set(b["prompt_version"]) == {"v1-blind"}
    # the named chain carries the model's recall; the blind chain does not
    named_users = [r.messages[-1]["content"] for r in first.requests]
    blind_users = [r.messages[-1]["content"] for r in blind_provider.requests]
    assert any("Apple rallied after 2018-03-29" in u for u in named_users)
    assert any("the Company rallied after [date]" in u for u in blind_users)
    assert any("the Company in [month] [year]" in u for u in blind_users)
    assert not any(leaks(u) for u in blind_users)
    # rerun: each mode is served from its own entries
    again = FakeProvider(text=_answer_naming_a_time)
    generate_strategies(blind_cfg, ds, provider=again, headlines=news, write=False)
    assert again.calls == 0


def test_a_malformed_blind_key_names_it():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="blind"):
        Config.model_validate({"llm": {"blind": "sometimes"}})


def test_the_heuristic_decides_from_a_blind_snapshot(tmp_path, workdir):
    ds = fake_dataset(("AAA",))
    cfg = Config.model_validate(
        {
            "tickers": ["AAA"],
            "llm": {"provider": "heuristic", "blind": True, "output_dir": str(tmp_path / "o")},
        }
    )
    df = generate_strategies(cfg, ds, write=False).strategies["AAA"]
    assert (df["status"] == "ok").all() and df["direction"].notna().all()
    assert np.isfinite(df["tau"]).all()
