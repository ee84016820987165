"""From a dataset to per-ticker strategy tables: the thin wiring of one run.

:func:`generate_strategies` plans the tasks (:mod:`rewts.llm.plan`), runs them through the
engine or the batch runner, applies the failure policy and builds and writes the tables
(:mod:`rewts.llm.tables`). Every decision of substance lives in its own module (prompts,
engine, limiter, cache, providers).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import logging
import time
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rewts.config import Config
from rewts.errors import LLMError
from rewts.llm.batch import BATCH_PRICE_FACTOR, BatchRunner
from rewts.llm.blind import prompt_version
from rewts.llm.cache import StrategyCache
from rewts.llm.engine import Engine, TaskResult
from rewts.llm.limiter import Limiter
from rewts.llm.monitor import RequestMonitor, RunStats
from rewts.llm.plan import (
    NewsPlan,
    PeriodPlan,
    build_tasks,
    engine_settings,
    load_news,
    make_limiter,
    request_settings,
    restrict_tasks,
)
from rewts.llm.providers import BANNER, Provider, make_provider
from rewts.llm.providers.base import is_cacheable
from rewts.llm.tables import (
    COLUMNS,
    load_strategies,
    period_row,
    strategy_table,
    write_strategies,
)

log = logging.getLogger(__name__)


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

    ``events`` receives every engine event (a display: ``rewts.ui.progress.make_display``,
    whose summary the caller prints from the result; this module never prints). ``provider``/``limiter`` replace the configured ones (a custom
    rate-limit policy, a test double). ``headlines`` (a :func:`rewts.data.load_headlines`
    table) replaces ``data.news_path``; ``skip_news_processing`` ignores both. Raises :class:`~rewts.errors.AuthenticationError`,
    :class:`~rewts.errors.LLMError` or :class:`~rewts.errors.QuotaExhaustedError`; in those
    cases no strategy table is written.
    """
    provider = provider if provider is not None else make_provider(cfg)
    if provider.local and provider.name == "heuristic" and events is None:
        log.warning(BANNER)  # a display announces it itself
    cache = StrategyCache(cfg.llm.cache_path) if is_cacheable(provider) else None
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

        async def main() -> tuple[dict[Hashable, TaskResult], float]:
            t0 = time.perf_counter()
            try:
                return await engine.run(tasks), time.perf_counter() - t0
            finally:
                await provider.aclose()

        results, wall = _run_coroutine(main())
    finally:
        if cache is not None:
            cache.close()

    settings_json = json.dumps(request_settings(cfg, provider), sort_keys=True)
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
            period_row(plan, results, result, cfg, provider, settings_json, plan.snapshot)
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
    return GenerationResult(strategies=strategies, summary=summary)


#: what callers imported from this module before the plan and the tables moved out
__all__ = [
    "COLUMNS",
    "GenerationResult",
    "GenerationSummary",
    "NewsPlan",
    "PeriodPlan",
    "build_tasks",
    "engine_settings",
    "generate_strategies",
    "load_news",
    "load_strategies",
    "make_limiter",
    "restrict_tasks",
    "strategy_table",
    "write_strategies",
]
