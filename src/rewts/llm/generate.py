"""From a dataset to per-ticker strategy tables: tasks, the engine run, failure policy, output.

This module wires the pieces for one run; every decision of substance lives in its own module
(prompts, engine, limiter, cache, providers). Output is one Parquet file per ticker with
provenance columns (never pickle), written to a temporary file and renamed, user-only.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rewts.config import Config
from rewts.data.timeline import StrategyPeriod
from rewts.errors import DataError, LLMError, StorageError
from rewts.fileio import atomic_write
from rewts.llm.analyst import (
    ANALYST_JSON_SCHEMA,
    NEUTRAL,
    NewsAnalysis,
    NewsWindow,
    analyst_system_message,
    anonymizer,
    news_signal,
    news_windows,
    render_analyst_messages,
    window_headlines,
)
from rewts.llm.batch import BATCH_PRICE_FACTOR, BatchRunner
from rewts.llm.blind import blind_scrubber, blind_snapshot, prompt_version
from rewts.llm.cache import StrategyCache
from rewts.llm.engine import Engine, EngineSettings, Task, TaskResult
from rewts.llm.limiter import (
    Limiter,
    RateLimiter,
    Unlimited,
    default_burst,
    today_in,
)
from rewts.llm.memory import memory_section, period_outcome
from rewts.llm.monitor import RequestMonitor, RunStats
from rewts.llm.prompts import render_messages, snapshot_inputs, system_message
from rewts.llm.providers import BANNER, Provider, make_provider
from rewts.llm.providers.base import Request, is_cacheable, quota_tz
from rewts.llm.providers.heuristic import heuristic_strategy
from rewts.llm.retries import Backoff
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA, strength, tau

log = logging.getLogger(__name__)

#: columns of every per-ticker strategy table, in order
COLUMNS = [
    "ticker",
    "period",
    "start",
    "end",
    "inputs_end",
    "direction",
    "confidence",
    "entropy",
    "strength",
    "tau",
    "explanation",
    "key_features",
    "status",
    "fallback",
    "provider",
    "model",
    "prompt_version",
    "settings",
    "cache_key",
    "tokens_in",
    "tokens_out",
    "latency_s",
    "news_status",
    "news_count",
    "analysis",
    "analysis_key",
    "memory",
]


@dataclass
class GenerationSummary:
    """The end-of-run figures (the seed's summary plus retries, 429s, tokens and cost)."""

    #: LLM tasks of the run (strategies plus news analyses)
    total: int = 0
    #: of which news analyses (the analyst's calls; 0 without news)
    analyses: int = 0
    generated: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    api_calls: int = 0
    retries: int = 0
    http_429: int = 0
    failures: int = 0
    fallbacks: int = 0
    skipped: int = 0
    wall_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    provider: str = ""
    model: str = ""
    concurrency: str = ""
    #: most requests sent and not yet answered at once (what the server saw)
    max_in_flight: int = 0
    #: most tasks waiting to send at once (for the rate limiter or a retry's back-off)
    max_queued: int = 0
    current_rpm: float = 0.0
    limit_rpm: float | None = None
    api_calls_saved: int = 0
    avg_s_per_strategy: float = 0.0
    output_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GenerationResult:
    """Per-ticker strategy tables (one row per period) and the run's summary."""

    strategies: dict[str, pd.DataFrame]
    summary: GenerationSummary = field(default_factory=GenerationSummary)


# ------------------------------------------------------------------- building


def _frames(cfg: Config, dataset: Any) -> dict[str, pd.DataFrame]:
    frames = dataset.frames
    missing = [t for t in cfg.tickers if t not in frames]
    if missing:
        raise DataError(
            f"no processed data for {', '.join(missing)} (have: {', '.join(sorted(frames))}); "
            "run `rewts data` for these tickers or remove them from `tickers`"
        )
    return {t: frames[t] for t in cfg.tickers}


def _timeline(frame: pd.DataFrame, cfg: Config) -> Any:
    from rewts.data import timeline_for

    return timeline_for(frame, cfg)


def _request_settings(cfg: Config, provider: Provider) -> dict[str, Any]:
    return {
        "temperature": cfg.llm.temperature,
        "seed": cfg.llm.seed,
        "max_tokens": cfg.llm.max_output_tokens,
        "logprobs": bool(cfg.llm.logprobs and not provider.local),
        "structured_output": cfg.llm.structured_output,
    }


# --------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class NewsPlan:
    """The news input of one strategist call.

    ``status``: ``off`` (no news: ``skip_news_processing`` or no ``data.news_path``),
    ``heuristic`` (the rule-based provider cannot read headlines: no analyst, labelled so),
    ``none`` (no headlines in the window: :data:`~rewts.llm.analyst.NEUTRAL`, no API call) or
    ``analyst`` (the analyst task ``task_id`` runs first).
    """

    status: str
    window: NewsWindow | None = None
    count: int = 0
    task_id: Hashable | None = None


@dataclass(frozen=True, slots=True)
class PeriodPlan:
    """What one strategist task stands for, for its output row."""

    ticker: str
    period: StrategyPeriod
    news: NewsPlan
    #: the strategist's inputs (also what a heuristic fallback decides from)
    snapshot: Mapping[str, Any] = field(default_factory=dict)
    #: the previous period's task id when ``llm.reflection`` chains this one to it
    previous: Hashable | None = None


def load_news(cfg: Config, headlines: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """The headlines a run uses: ``headlines`` if given, else ``data.news_path``, else None;
    None whenever ``skip_news_processing`` is set (then nothing is read at all)."""
    if cfg.skip_news_processing:
        return None
    if headlines is None:
        if cfg.data.news_path is None:
            return None
        from rewts.data import load_headlines

        return load_headlines(cfg.data.news_path)
    missing = [c for c in ("date", "ticker", "headline") if c not in headlines.columns]
    if missing:
        raise DataError(
            f"headlines table is missing column(s) {', '.join(missing)}; load it with "
            "rewts.data.load_headlines or pass a table with date, ticker and headline"
        )
    dates = headlines["date"]
    if not pd.api.types.is_datetime64_dtype(dates):  # also rejects tz-aware: dates are days
        try:
            dates = pd.to_datetime(dates, format="ISO8601")
        except (ValueError, TypeError):
            raise DataError(
                "headlines table: the date column must hold YYYY-MM-DD dates (or load the file "
                "with rewts.data.load_headlines, which names the bad row)"
            ) from None
        if dates.dt.tz is not None:
            raise DataError("headlines table: dates must be calendar days without a time zone")
        headlines = headlines.assign(date=dates.dt.normalize())
    return headlines


@dataclass(frozen=True, slots=True)
class _Requests:
    """The run-wide generation settings: messages in, a :class:`Request` out."""

    model: str
    temperature: float
    seed: int | None
    max_tokens: int
    logprobs: bool

    def __call__(self, messages: Any, json_schema: Any, context: Any = None) -> Request:
        return Request(
            messages=messages,
            model=self.model,
            temperature=self.temperature,
            seed=self.seed,
            max_tokens=self.max_tokens,
            json_schema=json_schema,
            logprobs=self.logprobs,
            context=context,
        )


@dataclass(frozen=True, slots=True)
class _StrategistPrompt:
    """Builds one strategist request, from its dependencies' results (a ``Task.build``)."""

    plan: PeriodPlan
    #: the previous period and its realized return (reflection), else None
    prev: StrategyPeriod | None
    outcome: float | None
    system: str
    prompt_version: str
    schema: Any
    requests: _Requests
    anonymize: Callable[[str], str] | None
    blind: bool = False

    def __call__(self, results: Mapping[Hashable, TaskResult]) -> Request:
        plan = self.plan
        memory = None
        if plan.previous is not None and self.prev is not None:
            answer = _answer(results.get(plan.previous))
            memory = memory_section(self.prev, answer, self.outcome, blind=self.blind)
        messages = render_messages(
            plan.ticker,
            plan.period,
            dict(plan.snapshot),
            prompt_version=self.prompt_version,
            system=self.system,
            news=_news_for_prompt(plan.news, results, blind=self.blind),
            memory=memory,
            anonymize=self.anonymize,
            blind=self.blind,
        )
        return self.requests(messages, self.schema, plan.snapshot)


def build_tasks(
    cfg: Config,
    dataset: Any,
    provider: Provider,
    headlines: pd.DataFrame | None = None,
) -> tuple[list[Task], dict[Hashable, PeriodPlan]]:
    """Every task of the run, in one place: analysts ``("news", ticker, m)`` and strategists
    ``(ticker, m)``, with the plan of each strategist task (keyed by its id) for its row.

    Analysts depend on nothing (they start at once); a strategist depends on its period's
    analyst and, with ``llm.reflection``, on its ticker's previous strategist, and builds its
    request from their results once they are done. A strategist with no dependency carries
    its request up front (one batched cache lookup for all of them). Every task's priority is
    its period index: among ready tasks, earlier periods (a chain's next link) go first.
    """
    llm = cfg.llm
    structured = llm.structured_output != "off"
    requests = _Requests(
        provider.model,
        llm.temperature,
        llm.seed,
        llm.max_output_tokens,
        bool(llm.logprobs and not provider.local),
    )
    news_on = headlines is not None and not cfg.skip_news_processing
    # the rule-based provider is not a language model: it cannot read headlines
    analyst_runs = news_on and provider.name != "heuristic"
    blind = llm.blind
    analyst_system = analyst_system_message(llm.prompt_version, blind=blind) if analyst_runs else ""
    prompt = {
        "system": system_message(llm.prompt_version, blind=blind),
        "prompt_version": llm.prompt_version,
        "schema": ("strategy", STRATEGY_JSON_SCHEMA) if structured else None,
        "requests": requests,
        "blind": blind,
    }
    tasks: list[Task] = []
    plans: dict[Hashable, PeriodPlan] = {}
    for ticker, frame in _frames(cfg, dataset).items():
        timeline = _timeline(frame, cfg)
        # blind: every name of the universe, dates and prices go; anonymize: this stock's names
        if blind:
            anon: Callable[[str], str] | None = blind_scrubber(ticker, cfg.tickers)
        else:
            anon = anonymizer(ticker) if llm.anonymize else None
        snapshot = blind_snapshot if blind else snapshot_inputs
        windows = news_windows(timeline.dates, timeline.periods, cfg.strategy_frequency)
        previous: StrategyPeriod | None = None
        for period in timeline.periods:
            m = period.index
            window = windows[m]
            # ---- news: an analyst task, a neutral signal, or nothing
            if not news_on:
                news = NewsPlan("off")
            elif not analyst_runs:
                news = NewsPlan("heuristic", window)
            else:
                items, total = window_headlines(headlines, ticker, window)
                news = NewsPlan("none", window)
                if items:
                    news = NewsPlan("analyst", window, len(items), ("news", ticker, m))
                    messages = render_analyst_messages(
                        ticker,
                        window,
                        items,
                        total,
                        system=analyst_system,
                        anonymize=anon,
                        blind=blind,
                    )
                    schema = ("news_analysis", ANALYST_JSON_SCHEMA) if structured else None
                    tasks.append(
                        Task(
                            id=news.task_id,
                            request=requests(messages, schema),
                            meta={"ticker": ticker, "period": m, "agent": "analyst"},
                            schema=NewsAnalysis,
                            priority=m,
                        )
                    )
            # ---- memory: chained to the previous period's task
            chained = llm.reflection and previous is not None
            prev_id = (ticker, previous.index) if chained else None
            plan = PeriodPlan(ticker, period, news, snapshot(frame, period), prev_id)
            plans[(ticker, m)] = plan
            build = _StrategistPrompt(
                plan,
                previous if chained else None,
                period_outcome(frame, previous, period) if chained else None,
                anonymize=anon,
                **prompt,
            )
            deps = tuple(d for d in (news.task_id, prev_id) if d is not None)
            meta = {"ticker": ticker, "period": m}
            if deps:
                task = Task(
                    (ticker, m),
                    build=build,
                    deps=deps,
                    meta=meta,
                    priority=m,
                    tolerate_failed_deps=True,
                )
            else:
                task = Task((ticker, m), request=build({}), meta=meta, priority=m)
            tasks.append(task)
            previous = period
    return tasks, plans


def restrict_tasks(
    tasks: list[Task],
    plans: dict[Hashable, PeriodPlan],
    periods: Mapping[str, Collection[int]],
) -> tuple[list[Task], dict[Hashable, PeriodPlan]]:
    """Only the strategist tasks of ``periods`` (ticker -> period indices) and everything they
    depend on (their news analysis; with reflection, the earlier links of the chain)."""
    by_id = {task.id: task for task in tasks}
    stack = [(t, m) for t, ms in periods.items() for m in ms if (t, m) in by_id]
    keep: set[Hashable] = set()
    while stack:
        task_id = stack.pop()
        if task_id in keep:
            continue
        keep.add(task_id)
        stack.extend(d for d in by_id[task_id].deps if d not in keep)
    return [t for t in tasks if t.id in keep], {k: p for k, p in plans.items() if k in keep}


def _answer(result: TaskResult | None) -> Any:
    """The validated answer of a finished task, or None when it failed."""
    if result is None or result.status not in ("ok", "cached"):
        return None
    return result.strategy


def _news_for_prompt(
    news: NewsPlan, results: Mapping[Hashable, TaskResult], *, blind: bool = False
) -> dict[str, Any] | None:
    if news.status in ("off", "heuristic") or news.window is None:
        return None
    if news.status == "none":
        return news_signal(news.window, 0, NEUTRAL, "none", blind=blind)
    answer = _answer(results.get(news.task_id))
    return news_signal(news.window, news.count, answer, "analyzed", blind=blind)


def make_limiter(cfg: Config, provider: Provider, cache: StrategyCache | None) -> Limiter:
    """The strictest of ``max_requests_per_second`` and ``rate_limits.rpm``, plus tpm and rpd."""
    if provider.local:
        return Unlimited()
    limits = cfg.llm.rate_limits
    rate = cfg.max_requests_per_second
    if limits.rpm:
        rate = min(rate, limits.rpm / 60.0)
    scope = getattr(provider, "identity", provider.name)
    # the provider's own quota day (Gemini's resets at midnight Pacific, the others' at UTC)
    today = functools.partial(today_in, quota_tz(provider))
    daily_used, take = 0, None
    if limits.rpd is not None and cache is not None:
        rpd = limits.rpd
        daily_used = cache.daily_requests(today(), scope)

        def take(day: str) -> bool:
            # check and count in one statement: runs sharing the cache share one budget
            return cache.take_daily_request(day, scope, rpd)

    limiter = RateLimiter(
        rate,
        burst=limits.burst if limits.burst is not None else default_burst(rate),
        tpm=limits.tpm,
        rpd=limits.rpd,
        daily_used=daily_used,
        take_daily=take,
        today=today,
    )
    return limiter


def engine_settings(cfg: Config, limiter: Limiter) -> EngineSettings:
    retry = cfg.llm.retry
    return EngineSettings(
        concurrency=cfg.parallel_workers,
        prompt_version=prompt_version(cfg.llm.prompt_version, cfg.llm.blind),
        backoff=Backoff(retry.initial_s, retry.multiplier, retry.max_s, retry.max_retries),
        # the SDK's own timeout fires first; this one only guards providers without one
        timeout_s=cfg.llm.timeout_s * 1.25 + 1.0,
        latency_prior_s=cfg.llm.latency_prior_s,
        max_concurrency=cfg.llm.max_concurrency,
        fallback_rate=getattr(limiter, "configured_rate", cfg.max_requests_per_second),
        jitter_seed=cfg.seed,
    )


# ------------------------------------------------------------------------ rows


def _news_columns(plan: PeriodPlan, results: Mapping[Hashable, TaskResult]) -> dict[str, Any]:
    """Provenance of the news input: status, headline count, the analysis and its cache key."""
    news = plan.news
    out: dict[str, Any] = {
        "news_status": news.status,
        "news_count": news.count,
        "analysis": "",
        "analysis_key": None,
    }
    if news.status == "none":
        out["analysis"] = NEUTRAL.model_dump_json()
    elif news.status == "analyst":
        result = results[news.task_id]
        out["news_status"] = result.status
        out["analysis_key"] = result.key
        if result.status in ("ok", "cached") and result.strategy is not None:
            out["analysis"] = result.strategy.model_dump_json()
    return out


def _memory_column(plan: PeriodPlan, cfg: Config, results: Mapping[Hashable, TaskResult]) -> str:
    if not cfg.llm.reflection:
        return "off"
    if plan.previous is None:
        return "none"
    return "previous" if _answer(results.get(plan.previous)) is not None else "unavailable"


def _row(
    plan: PeriodPlan,
    results: Mapping[Hashable, TaskResult],
    result: TaskResult,
    cfg: Config,
    provider: Provider,
    settings_json: str,
    context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One output row; a failed task becomes what ``llm.on_failure`` says (never cached)."""
    period = plan.period
    base = {
        "ticker": plan.ticker,
        "period": period.index,
        "start": period.start,
        "end": period.end,
        "inputs_end": period.inputs_end,
        "provider": provider.name,
        "model": provider.model,
        "prompt_version": prompt_version(cfg.llm.prompt_version, cfg.llm.blind),
        "settings": settings_json,
        "cache_key": result.key,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "latency_s": result.latency_s,
        **_news_columns(plan, results),
        "memory": _memory_column(plan, cfg, results),
    }
    if result.status in ("ok", "cached") and result.strategy is not None:
        s = result.strategy
        st = strength(s.confidence, result.entropy)
        return base | {
            "direction": s.direction,
            "confidence": s.confidence,
            "entropy": result.entropy,
            "strength": st,
            "tau": tau(s.direction, st),
            "explanation": s.explanation,
            "key_features": json.dumps([f.model_dump() for f in s.key_features]),
            "status": result.status,
            "fallback": False,
        }
    policy = cfg.llm.on_failure
    why = result.error or result.status
    if policy == "heuristic":
        rules = heuristic_strategy(context or {})
        st = strength(rules["confidence"], None)
        return base | {
            "direction": rules["direction"],
            "confidence": rules["confidence"],
            "entropy": None,
            "strength": st,
            "tau": tau(rules["direction"], st),
            "explanation": f"fallback (LLM call failed: {why}); {rules['explanation']}",
            "key_features": json.dumps(rules["key_features"]),
            "status": "fallback",
            "fallback": True,
            "provider": "heuristic",
            "model": "rules-v1",
        }
    neutral = policy == "neutral"
    return base | {
        "direction": None,
        "confidence": None,
        "entropy": None,
        "strength": 0.0 if neutral else math.nan,
        "tau": 0.0 if neutral else math.nan,
        "explanation": f"{'fallback: neutral' if neutral else 'skipped'} (LLM call failed: {why})",
        "key_features": "[]",
        "status": "fallback" if neutral else "skipped",
        "fallback": neutral,
    }


def strategy_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of :data:`COLUMNS` as a table with the stored dtypes (the importer's too)."""
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["direction"] = df["direction"].astype("Int64")
    for col in ("confidence", "entropy", "strength", "tau", "latency_s"):
        df[col] = df[col].astype("float64")
    df["fallback"] = df["fallback"].astype(bool)
    for col in ("period", "tokens_in", "tokens_out", "news_count"):
        df[col] = df[col].astype("int64")
    return df


def _report_failures(
    failed: list[TaskResult],
    plans: Mapping[Hashable, Any],
    results: Mapping[Hashable, TaskResult],
    cfg: Config,
) -> None:
    """Name the most frequent failure reason; stop (exit 4) when no strategy was answered.

    A table made only of fallbacks is not a result: a run where every request failed (a
    malformed answer every time, a server that always errs) must not look like success.
    """
    reasons = collections.Counter(str(r.error or r.status) for r in failed)
    reason, count = reasons.most_common(1)[0]
    answered = sum(results[t].status in ("ok", "cached") for t in plans)
    if plans and answered == 0:
        raise LLMError(
            f"every one of the {len(plans)} strategy requests failed after "
            f"{cfg.llm.retry.max_retries} retries; most frequent reason ({count}x): {reason}; "
            "check llm.model, llm.base_url and the server; no strategies were written"
        )
    log.warning(
        "%d LLM call(s) failed after %d retries (most frequent reason, %dx: %s); they are "
        "not cached and the table shows them as llm.on_failure = %s says: rerun to ask again",
        len(failed),
        cfg.llm.retry.max_retries,
        count,
        reason,
        cfg.llm.on_failure,
    )


def write_strategies(
    strategies: Mapping[str, pd.DataFrame], out_dir: Path, *, json_too: bool = False
) -> None:
    try:
        out_dir.mkdir(parents=True, mode=0o700, exist_ok=True)  # user-only, like its files
        for ticker, df in strategies.items():
            # user-only (atomic_write's default mode)
            atomic_write(
                out_dir / f"{ticker}.parquet", lambda p, df=df: df.to_parquet(p, index=False)
            )
            if json_too:
                atomic_write(
                    out_dir / f"{ticker}.json",
                    lambda p, df=df: df.to_json(p, orient="records", date_format="iso", indent=1),
                )
    except OSError as exc:
        # every answer is already committed to the cache: a rerun writes the tables without
        # sending a request again
        raise StorageError(
            f"llm.output_dir = {out_dir}: cannot write the strategy tables "
            f"({exc.strerror or exc}); every answer is kept in the cache: fix that and rerun "
            "(nothing is asked again)"
        ) from exc


def load_strategies(cfg: Config) -> dict[str, pd.DataFrame] | None:
    """The stored per-ticker tables from ``llm.output_dir``; None if any ticker is missing."""
    out = Path(cfg.llm.output_dir)
    paths = {t: out / f"{t}.parquet" for t in cfg.tickers}
    if not all(p.is_file() for p in paths.values()):
        return None
    return {t: pd.read_parquet(p) for t, p in paths.items()}


# ------------------------------------------------------------------------- run


def _run_coroutine(coro: Any) -> Any:
    """``asyncio.run``, or in a worker thread when this thread already runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _summary(
    stats: RunStats,
    wall: float,
    cfg: Config,
    provider: Provider,
    monitor: RequestMonitor,
    fallbacks: int,
    skipped: int,
) -> GenerationSummary:
    price = cfg.llm.prices.get(provider.model)
    cost = 0.0
    if price is not None:
        cost = (
            stats.tokens_in / 1e6 * price.input_per_m + stats.tokens_out / 1e6 * price.output_per_m
        )
        if cfg.llm.batch and not provider.local:
            cost *= BATCH_PRICE_FACTOR
    return GenerationSummary(
        total=stats.total,
        generated=stats.generated,
        cache_hits=stats.cache_hits,
        cache_misses=stats.cache_misses,
        api_calls=0 if provider.local else stats.api_calls,
        retries=stats.retries,
        http_429=stats.http_429,
        failures=stats.failures,
        fallbacks=fallbacks,
        skipped=skipped,
        wall_s=wall,
        tokens_in=stats.tokens_in,
        tokens_out=stats.tokens_out,
        cost_usd=round(cost, 6),
        provider=provider.name,
        model=provider.model,
        concurrency=str(cfg.parallel_workers),
        max_in_flight=stats.max_in_flight,
        max_queued=stats.max_queued,
        current_rpm=monitor.current_rpm(),
        limit_rpm=monitor.limit_rpm,
        api_calls_saved=stats.cache_hits,
        avg_s_per_strategy=wall / stats.total if stats.total else 0.0,
        output_dir=str(cfg.llm.output_dir),
    )


def generate_strategies(
    cfg: Config,
    dataset: Any,
    *,
    progress: bool = False,
    events: Callable[[Any], None] | None = None,
    provider: Provider | None = None,
    limiter: Limiter | None = None,
    write: bool = True,
    write_json: bool = False,
    headlines: pd.DataFrame | None = None,
    periods: Mapping[str, Collection[int]] | None = None,
) -> GenerationResult:
    """Generate (or load from the cache) one strategy per ticker and period.

    ``periods`` (ticker -> period indices) asks for those periods only, plus what they depend
    on (``rewts signal`` generating the current period); their tables hold just those rows.

    ``progress=True`` shows a live display on stderr (plain lines without a TTY); ``events``
    receives every engine event. ``provider``/``limiter`` replace the configured ones (a custom
    rate-limit policy, a test double). ``headlines`` (a :func:`rewts.data.load_headlines`
    table) replaces ``data.news_path``; ``skip_news_processing`` ignores both. Raises :class:`~rewts.errors.AuthenticationError`,
    :class:`~rewts.errors.LLMError` or :class:`~rewts.errors.QuotaExhaustedError`; in those
    cases no strategy table is written.
    """
    provider = provider if provider is not None else make_provider(cfg)
    if provider.local and provider.name == "heuristic" and events is None and not progress:
        log.warning(BANNER)  # a display announces it itself
    cache = StrategyCache(cfg.llm.cache_path) if is_cacheable(provider) else None
    display = None
    try:
        limiter = limiter if limiter is not None else make_limiter(cfg, provider, cache)
        headlines = load_news(cfg, headlines)
        tasks, plans = build_tasks(cfg, dataset, provider, headlines)
        if periods is not None:
            tasks, plans = restrict_tasks(tasks, plans, periods)
        monitor = RequestMonitor(limit_rpm=getattr(limiter, "limit_rpm", None))
        engine: Engine | BatchRunner
        if cfg.llm.batch and not provider.local:
            # all cache misses as provider batch jobs (one per dependency wave), at batch prices
            engine = BatchRunner(
                provider,
                cache=cache,
                prompt_version=prompt_version(cfg.llm.prompt_version, cfg.llm.blind),
                poll_s=cfg.llm.batch_poll_s,
                max_wait_s=cfg.llm.batch_max_wait_s,
            )
        else:
            engine = Engine(
                provider,
                limiter,
                cache=cache,
                settings=engine_settings(cfg, limiter),
                monitor=monitor,
            )
        if events is not None:
            engine.subscribe(events)
        if progress:
            from rewts.ui.progress import make_display

            display = make_display()
            engine.subscribe(display)

        async def main() -> tuple[dict[Hashable, TaskResult], float]:
            t0 = time.perf_counter()
            try:
                return await engine.run(tasks), time.perf_counter() - t0
            finally:
                await provider.aclose()

        results, wall = _run_coroutine(main())
    finally:
        if display is not None:
            display.close()
        if cache is not None:
            cache.close()

    settings_json = json.dumps(_request_settings(cfg, provider), sort_keys=True)
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in cfg.tickers}
    failed: list[TaskResult] = []
    for task_id, plan in plans.items():
        result = results[task_id]
        if result.status not in ("ok", "cached"):
            failed.append(result)
        news_id = plan.news.task_id
        if news_id is not None and results[news_id].status not in ("ok", "cached"):
            failed.append(results[news_id])
        rows[plan.ticker].append(
            _row(plan, results, result, cfg, provider, settings_json, plan.snapshot)
        )
    if failed:
        _report_failures(failed, plans, results, cfg)
    if failed and cfg.llm.on_failure == "error":
        raise LLMError(
            f"{len(failed)} of {len(tasks)} LLM calls failed after "
            f"{cfg.llm.retry.max_retries} retries (first: {failed[0].id}: {failed[0].error}); "
            "everything answered is cached: rerun to retry only the failed ones, or set "
            "llm.on_failure (--on-failure) to neutral, heuristic or skip"
        )
    strategies = {t: strategy_table(r) for t, r in rows.items()}
    fallbacks = sum(int(df["fallback"].sum()) for df in strategies.values())
    skipped = sum(int((df["status"] == "skipped").sum()) for df in strategies.values())
    summary = _summary(engine.stats, wall, cfg, provider, monitor, fallbacks, skipped)
    summary.analyses = len(tasks) - len(plans)
    if write:
        write_strategies(strategies, Path(cfg.llm.output_dir), json_too=write_json)
    if display is not None:
        display.summary(summary)
    return GenerationResult(strategies=strategies, summary=summary)
