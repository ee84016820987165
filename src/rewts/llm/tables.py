"""The per-ticker strategy tables: one row per strategy period from its plan and answers, the
column order (:data:`COLUMNS`), and reading and writing the tables under ``llm.output_dir``.

Output is one Parquet file per ticker with provenance columns (never pickle), written through
:func:`rewts.fileio.atomic_write`, user-only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from rewts.config import Config
from rewts.errors import StorageError
from rewts.fileio import atomic_write
from rewts.llm.analyst import NEUTRAL
from rewts.llm.blind import prompt_version
from rewts.llm.engine import TaskResult
from rewts.llm.plan import PeriodPlan, answer_of
from rewts.llm.providers import Provider
from rewts.llm.providers.heuristic import heuristic_strategy
from rewts.llm.schemas import strength, tau

#: a strategy's own columns, the same in a stored table and an exported one: where its period
#: and its inputs end, the answer, and the signal derived from it
STRATEGY_COLUMNS = [
    "end",
    "inputs_end",
    "direction",
    "confidence",
    "entropy",
    "strength",
    "tau",
    "explanation",
    "key_features",
]
#: columns of every per-ticker strategy table, in order
COLUMNS = [
    "ticker",
    "period",
    "start",
    *STRATEGY_COLUMNS,
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
    return "previous" if answer_of(results.get(plan.previous)) is not None else "unavailable"


def period_row(
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


def write_strategies(
    strategies: Mapping[str, pd.DataFrame], out_dir: Path, *, json_too: bool = False
) -> None:
    try:
        out_dir.mkdir(parents=True, mode=0o700, exist_ok=True)  # user-only, like its files
        for ticker, df in strategies.items():
            # user-only (atomic_write's default mode)
            atomic_write(out_dir / f"{ticker}.parquet", partial(df.to_parquet, index=False))
            if json_too:
                to_json = partial(df.to_json, orient="records", date_format="iso", indent=1)
                atomic_write(out_dir / f"{ticker}.json", to_json)
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
