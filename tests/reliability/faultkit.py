"""Shared checks of the reliability suite: a run against the simulator either answered or
explicitly failed every task, cached only real answers, and a rerun completes only the rest."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from rewts.config import Config
from rewts.llm import generate_strategies
from rewts.llm.cache import StrategyCache
from rewts.sim import SimServer

#: 350 synthetic days, a 200-day warm-up and periods of 5 days: 30 strategies per ticker
DAYS, PERIODS = 350, 30
#: faults whose 200 answers carry no valid strategy
INVALID_200 = ("malformed", "truncated", "garbage")
FAULTS_OFF = {
    "error_rate": 0.0,
    "malformed_rate": 0.0,
    "truncated_rate": 0.0,
    "garbage_rate": 0.0,
    "hang_rate": 0.0,
    "drop_rate": 0.0,
    "rpm_limit": None,
    "rpd_limit": None,
}


def sim_cfg(
    tmp_path: Path,
    sim: SimServer,
    *,
    tickers=("AAA",),
    rps=100.0,
    provider: str = "local",
    **llm: Any,
) -> Config:
    """A config aimed at the simulator with quick retries (the shape of tests/llm's).

    ``provider="gemini"`` talks to the simulator's Gemini API through google-genai (the key
    must be in GEMINI_API_KEY); otherwise the OpenAI-compatible ``local`` preset.
    """
    retry = {"initial_s": 0.05, "multiplier": 2.0, "max_s": 0.5, "max_retries": 3}
    retry.update(llm.pop("retry", {}))
    gemini = provider == "gemini"
    return Config.model_validate(
        {
            "tickers": list(tickers),
            "strategy_frequency": 5,
            "max_requests_per_second": rps,
            "llm": {
                "provider": provider,
                "model": "gemini-2.5-flash" if gemini else "deepseek-chat",
                "base_url": sim.gemini_base_url if gemini else sim.openai_base_url,
                "logprobs": False,
                "timeout_s": 1.0,
                "cache_path": str(tmp_path / "cache.sqlite"),
                "output_dir": str(tmp_path / "out"),
                "retry": retry,
                **llm,
            },
        }
    )


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` on a fresh connection (not the cache's own code path)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def cached_keys(db: Path) -> set[str]:
    with StrategyCache(db) as cache:
        return {e.key for e in cache.entries()}


def valid_answers(stats: dict[str, Any]) -> int:
    """200s the simulator sent that carry a valid strategy."""
    bad = sum(stats["faults"].get(f, 0) for f in INVALID_200)
    return stats["by_status"].get("200", 0) - bad


def check_every_task_accounted(result: Any, tickers, periods: int = PERIODS) -> pd.DataFrame:
    """Every (ticker, period) has exactly one row, answered or explicitly failed."""
    frames = []
    for ticker in tickers:
        df = result.strategies[ticker]
        assert list(df["period"]) == list(range(periods)), f"{ticker}: missing or extra periods"
        ok = df["status"].isin(["ok", "cached"])
        failed = df["status"].isin(["fallback", "skipped"])
        assert (ok | failed).all(), df["status"].value_counts()
        assert df.loc[ok, "direction"].notna().all()
        # a failure says so in the row itself, with the reason
        assert df.loc[failed, "explanation"].str.contains("LLM call failed").all()
        assert df.loc[failed, "fallback"].eq(df.loc[failed, "status"] == "fallback").all()
        frames.append(df)
    all_rows = pd.concat(frames, ignore_index=True)
    s = result.summary
    n_failed = int((~all_rows["status"].isin(["ok", "cached"])).sum())
    assert s.fallbacks + s.skipped == n_failed
    assert s.total == len(all_rows)
    return all_rows


def check_cache_holds_only_answers(db: Path, rows: pd.DataFrame) -> None:
    assert integrity(db) == "ok"
    answered = set(rows.loc[rows["status"].isin(["ok", "cached"]), "cache_key"])
    assert cached_keys(db) == answered  # no fallback cached, no answer lost


def check_rerun_completes_only_the_missing(
    tmp_path: Path, sim: SimServer, cfg: Config, dataset: Any, rows: pd.DataFrame
) -> Any:
    """Faults off, same command: exactly the failed tasks are sent, the rest come from the
    cache unchanged."""
    missing = int((~rows["status"].isin(["ok", "cached"])).sum())
    sim.update(**FAULTS_OFF)
    sim.reset_day()
    before = sim.stats(log=False)["requests"]
    again = generate_strategies(cfg, dataset)
    assert sim.stats(log=False)["requests"] - before == missing
    assert again.summary.cache_hits == len(rows) - missing
    cols = ["ticker", "period", "direction", "confidence", "cache_key"]
    new = pd.concat([again.strategies[t] for t in cfg.tickers], ignore_index=True)
    assert new["status"].isin(["ok", "cached"]).all()
    kept = rows["status"].isin(["ok", "cached"])
    pd.testing.assert_frame_equal(
        new.loc[kept, cols].reset_index(drop=True), rows.loc[kept, cols].reset_index(drop=True)
    )
    assert integrity(Path(cfg.llm.cache_path)) == "ok"
    return again
