"""The plan of a generation run: every LLM task (news analyses, strategies, reflection chains)
with the prompt it sends, the rate limiter and the engine settings, all from the config.

Nothing here sends a request: :func:`build_tasks` returns the task graph the engine (or the
batch runner) runs, and one :class:`PeriodPlan` per strategy period that
:mod:`rewts.llm.tables` turns into a table row once the answers are in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rewts.config import Config
from rewts.data.timeline import StrategyPeriod
from rewts.errors import DataError
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
from rewts.llm.blind import blind_scrubber, blind_snapshot, prompt_version
from rewts.llm.cache import StrategyCache
from rewts.llm.engine import EngineSettings, Task, TaskResult
from rewts.llm.limiter import (
    Limiter,
    RateLimiter,
    Unlimited,
    default_burst,
    today_in,
)
from rewts.llm.memory import memory_section, period_outcome
from rewts.llm.prompts import render_messages, snapshot_inputs, system_message
from rewts.llm.providers import Provider
from rewts.llm.providers.base import Request, quota_tz
from rewts.llm.retries import Backoff
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA

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


def request_settings(cfg: Config, provider: Provider) -> dict[str, Any]:
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
            answer = answer_of(results.get(plan.previous))
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
    prompt: dict[str, Any] = {
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
            chained_to = previous if llm.reflection else None
            prev_id = (ticker, chained_to.index) if chained_to is not None else None
            plan = PeriodPlan(ticker, period, news, snapshot(frame, period), prev_id)
            plans[(ticker, m)] = plan
            build = _StrategistPrompt(
                plan,
                chained_to,
                period_outcome(frame, chained_to, period) if chained_to is not None else None,
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
    stack: list[Hashable] = [(t, m) for t, ms in periods.items() for m in ms if (t, m) in by_id]
    keep: set[Hashable] = set()
    while stack:
        task_id = stack.pop()
        if task_id in keep:
            continue
        keep.add(task_id)
        stack.extend(d for d in by_id[task_id].deps if d not in keep)
    return [t for t in tasks if t.id in keep], {k: p for k, p in plans.items() if k in keep}


def answer_of(result: TaskResult | None) -> Any:
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
    answer = answer_of(results.get(news.task_id))
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
