"""generate_strategies end to end with the heuristic and a fake API provider (no network)."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest

from rewts.config import Config
from rewts.errors import AuthenticationError, LLMError
from rewts.llm import COLUMNS, generate_strategies, load_strategies
from rewts.llm.cache import StrategyCache
from rewts.llm.limiter import RateLimiter
from rewts.llm.providers import make_provider
from rewts.llm.providers.base import AuthFailed, ServerError
from rewts.llm.providers.heuristic import heuristic_strategy

from .helpers import FakeProvider, fake_dataset


def _cfg(tmp_path, **llm):
    return Config.model_validate(
        {
            "tickers": ["AAA", "BBB"],
            "parallel_workers": "auto",
            "max_requests_per_second": 1000.0,
            "llm": {
                "cache_path": str(tmp_path / "cache.sqlite"),
                "output_dir": str(tmp_path / "out"),
                "retry": {"initial_s": 0.001, "max_s": 0.01, "max_retries": 2},
                **llm,
            },
        }
    )


def test_heuristic_run_writes_one_row_per_period_with_provenance(tmp_path, workdir):
    cfg = _cfg(tmp_path, provider="heuristic")
    ds = fake_dataset()
    result = generate_strategies(cfg, ds)
    df = result.strategies["AAA"]
    assert list(df.columns) == COLUMNS
    assert len(df) == 5  # 300 days, 200 warm-up, periods of 20
    assert (df["provider"] == "heuristic").all() and (df["status"] == "ok").all()
    assert df["direction"].isin([0, 1]).all() and df["tau"].abs().le(1).all()
    assert (df["inputs_end"] < df["start"]).all()  # inputs end before the period starts
    assert "not an LLM" in df["explanation"].iloc[0]
    loaded = load_strategies(cfg)
    pd.testing.assert_frame_equal(loaded["AAA"], df)
    mode = stat.S_IMODE(os.stat(tmp_path / "out" / "AAA.parquet").st_mode)
    assert mode == 0o600
    assert result.summary.api_calls == 0
    # deterministic
    again = generate_strategies(cfg, ds, write=False).strategies["AAA"]
    timing = ["latency_s"]
    pd.testing.assert_frame_equal(again.drop(columns=timing), df.drop(columns=timing))


def test_heuristic_reads_the_snapshot_it_is_given():
    bull = {
        "close": 110,
        "sma_50": 100,
        "sma_200": 90,
        "sma_50_slope": 0.01,
        "rsi_14": 65,
        "macd_hist": 0.5,
        "return_20d": 0.05,
        "sp500_slope": 0.01,
        "hv_20": 0.2,
    }
    bear = {k: (-v if k.endswith(("slope", "hist", "20d")) else v) for k, v in bull.items()}
    bear.update(close=80, sma_50=90, sma_200=100, rsi_14=30)
    assert heuristic_strategy(bull)["direction"] == 1
    assert heuristic_strategy(bear)["direction"] == 0
    assert heuristic_strategy(bull)["confidence"] > 2.0


class CountingLimiter:
    """A user's own policy (the seed's AdaptiveRateLimiter idea) wrapping the shipped one."""

    def __init__(self):
        self.inner = RateLimiter(1000.0)
        self.acquired = 0
        self.feedbacks = 0

    async def acquire(self, tokens_estimate=0):
        self.acquired += 1
        return await self.inner.acquire(tokens_estimate)

    def feedback(self, permit, outcome):
        self.feedbacks += 1
        self.inner.feedback(permit, outcome)


def test_a_rerun_makes_zero_requests_and_hits_cost_no_rate_budget(tmp_path):
    cfg = _cfg(tmp_path)
    ds = fake_dataset()
    first, limiter = FakeProvider(0.0), CountingLimiter()
    r1 = generate_strategies(cfg, ds, provider=first, limiter=limiter)
    assert first.calls == 10 and r1.summary.generated == 10
    assert limiter.acquired == limiter.feedbacks == 10  # a custom policy sees every request
    second, limiter = FakeProvider(0.0), CountingLimiter()
    r2 = generate_strategies(cfg, ds, provider=second, limiter=limiter)
    assert second.calls == 0 and limiter.acquired == 0
    s = r2.summary.to_dict()
    assert s["cache_hits"] == 10 and s["api_calls"] == 0 and s["cache_misses"] == 0
    assert (r2.strategies["AAA"]["status"] == "cached").all()
    cols = ["direction", "confidence", "tau", "cache_key"]
    pd.testing.assert_frame_equal(r1.strategies["AAA"][cols], r2.strategies["AAA"][cols])


@pytest.mark.parametrize("policy", ["neutral", "heuristic", "skip"])
def test_fallbacks_are_marked_counted_never_cached_and_retried_next_run(tmp_path, policy):
    cfg = _cfg(tmp_path, on_failure=policy)
    ds = fake_dataset()

    def script(n, request):
        if "AAA" in request.messages[1]["content"] and "2015-10" in request.messages[1]["content"]:
            raise ServerError("down", status=503)

    r1 = generate_strategies(cfg, ds, provider=FakeProvider(0.0, script))
    df = r1.strategies["AAA"]
    bad = df[df["status"] != "ok"]
    assert len(bad) >= 1
    assert r1.summary.failures == len(bad)
    if policy == "neutral":
        assert (bad["status"] == "fallback").all() and (bad["tau"] == 0).all()
        assert bad["direction"].isna().all() and bad["fallback"].all()
        assert r1.summary.fallbacks == len(bad)
    elif policy == "heuristic":
        assert (bad["provider"] == "heuristic").all() and bad["fallback"].all()
    else:
        assert (bad["status"] == "skipped").all() and bad["tau"].isna().all()
    with StrategyCache(cfg.llm.cache_path) as cache:
        assert len(cache) == 10 - len(bad)  # the failures are not in the cache
        assert not (set(bad["cache_key"]) & {e.key for e in cache.entries()})
    healthy = FakeProvider(0.0)
    r2 = generate_strategies(cfg, ds, provider=healthy)
    assert healthy.calls == len(bad)  # only the failed ones are asked again
    assert (r2.strategies["AAA"]["fallback"] == False).all()  # noqa: E712


def test_on_failure_error_raises_after_caching_the_rest(tmp_path):
    cfg = _cfg(tmp_path, on_failure="error")

    def script(n, request):
        if "2015-10" in request.messages[1]["content"]:
            raise ServerError("down", status=503)

    with pytest.raises(LLMError, match="on_failure"):
        generate_strategies(cfg, fake_dataset(), provider=FakeProvider(0.0, script))
    assert not (tmp_path / "out").exists()
    with StrategyCache(cfg.llm.cache_path) as cache:
        assert len(cache) > 0


def test_wrong_key_aborts_and_writes_nothing(tmp_path):
    cfg = _cfg(tmp_path)

    def script(n, request):
        raise AuthFailed("no", env_var="DEEPSEEK_API_KEY", status=401)

    provider = FakeProvider(0.0, script)
    with pytest.raises(AuthenticationError, match="DEEPSEEK_API_KEY"):
        generate_strategies(cfg, fake_dataset(), provider=provider)
    assert not (tmp_path / "out").exists()


def test_missing_key_names_the_variable(tmp_path, workdir):
    cfg = _cfg(tmp_path, provider="deepseek")
    with pytest.raises(AuthenticationError, match="set DEEPSEEK_API_KEY"):
        make_provider(cfg)


def test_auto_without_any_key_is_the_heuristic(tmp_path, workdir):
    assert make_provider(_cfg(tmp_path)).name == "heuristic"


def test_summary_keys(tmp_path):
    cfg = _cfg(tmp_path)
    s = generate_strategies(cfg, fake_dataset(), provider=FakeProvider(0.0)).summary.to_dict()
    for key in (
        "total",
        "generated",
        "cache_hits",
        "cache_misses",
        "api_calls",
        "retries",
        "http_429",
        "failures",
        "fallbacks",
        "wall_s",
        "tokens_in",
        "tokens_out",
        "cost_usd",
    ):
        assert key in s
    assert s["tokens_in"] == 1000 and s["total"] == 10
    json.dumps(s)


@pytest.mark.parametrize(
    "rps, rpm, expected", [(8.0, 60.0, 1.0), (8.0, 1200.0, 8.0), (8.0, None, 8.0)]
)
def test_the_strictest_rate_limit_applies(tmp_path, rps, rpm, expected):
    from rewts.llm.generate import make_limiter

    cfg = _cfg(tmp_path)
    cfg.max_requests_per_second = rps
    cfg.llm.rate_limits.rpm = rpm
    assert make_limiter(cfg, FakeProvider(), None).configured_rate == pytest.approx(expected)


@pytest.mark.parametrize("name, exhausted", [("gemini", True), ("fake", False)])
def test_the_daily_budget_counts_the_providers_own_day(tmp_path, monkeypatch, name, exhausted):
    """Gemini's daily quota resets at midnight Pacific, the others' at UTC: with the two
    calendars on different dates, only the provider's own day's usage counts."""
    import asyncio

    import rewts.llm.generate as gen
    import rewts.llm.plan as plan
    from rewts.llm.limiter import DailyLimitReached
    from rewts.llm.providers.gemini import GeminiProvider

    days = {GeminiProvider.quota_tz: "2026-01-01", "UTC": "2026-01-02"}
    monkeypatch.setattr(plan, "today_in", days.__getitem__)  # make_limiter lives in llm.plan
    cfg = _cfg(tmp_path)
    cfg.llm.rate_limits.rpd = 5
    provider = FakeProvider()
    provider.name = name
    if name == "gemini":
        provider.quota_tz = GeminiProvider.quota_tz  # the attribute the real adapter carries
    with StrategyCache(cfg.llm.cache_path) as cache:
        cache.add_daily_requests("2026-01-01", provider.identity, 5)  # a spent Pacific day
        limiter = gen.make_limiter(cfg, provider, cache)
        if exhausted:
            with pytest.raises(DailyLimitReached):
                asyncio.run(limiter.acquire())
        else:
            asyncio.run(limiter.acquire())


def test_each_provider_names_its_quota_day_zone():
    """The quota day is a provider attribute: Gemini's is Pacific, everyone else's UTC."""
    from rewts.llm.limiter import today_in, utc_today
    from rewts.llm.providers.base import quota_tz
    from rewts.llm.providers.gemini import GeminiProvider
    from rewts.llm.providers.heuristic import HeuristicProvider

    assert quota_tz(GeminiProvider(api_key="k")) == "America/Los_Angeles"
    assert quota_tz(HeuristicProvider()) == quota_tz(FakeProvider()) == "UTC"
    assert today_in("UTC") == utc_today()


def test_auto_picks_the_first_provider_with_a_key(tmp_path, workdir, monkeypatch):
    from rewts.llm.providers import resolve_provider_name

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert resolve_provider_name(_cfg(tmp_path)) == "openai"
    monkeypatch.setenv("DEEPSEEK_API_KEY", "k")
    assert resolve_provider_name(_cfg(tmp_path)) == "deepseek"
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert resolve_provider_name(_cfg(tmp_path)) == "gemini"
    assert resolve_provider_name(_cfg(tmp_path, base_url="http://127.0.0.1:1/v1")) == "local"


def test_progress_true_prints_the_plain_lines_without_a_tty(tmp_path, capsys):
    from rewts.ui.progress import shown

    cfg = _cfg(tmp_path)
    shown(
        lambda events: generate_strategies(
            cfg, fake_dataset(), provider=FakeProvider(0.0), events=events
        )
    )
    err = capsys.readouterr().err
    assert "Progress: 10/10 (100.0%)" in err and "Cache misses: 10 (100.0%)" in err


def test_an_unreachable_base_url_is_one_clear_error_not_a_table_of_fallbacks(tmp_path):
    cfg = _cfg(tmp_path, provider="local", model="m", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(LLMError, match=r"cannot reach http://127\.0\.0\.1:9/v1.*llm\.base_url"):
        generate_strategies(cfg, fake_dataset())
    assert not (tmp_path / "out").exists()


def test_the_unreachable_error_drops_credentials_carried_in_the_url(tmp_path):
    url = "http://user:s3cr3t-pw@127.0.0.1:9/v1?key=s3cr3t-key"
    cfg = _cfg(tmp_path, provider="local", model="m", base_url=url)
    with pytest.raises(LLMError) as info:
        generate_strategies(cfg, fake_dataset())
    assert "http://127.0.0.1:9/v1" in str(info.value) and "s3cr3t" not in str(info.value)


def test_connection_errors_after_a_success_are_ordinary_failures(tmp_path):
    from rewts.llm.providers.base import ConnectionFailed

    def script(n, request):
        if n >= 3:
            raise ConnectionFailed("reset")

    result = generate_strategies(_cfg(tmp_path), fake_dataset(), provider=FakeProvider(0.0, script))
    assert result.summary.generated == 3 and result.summary.fallbacks == 7
