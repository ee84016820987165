"""The model's training cutoff: documented defaults, the configured value, the warning's
cases, and metrics either side of the cutoff."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from rewts.backtest.result import AgentRun, BacktestResult
from rewts.config import Config
from rewts.llm.cutoff import KNOWN_CUTOFFS, cutoff_warning, resolve_cutoff
from rewts.memorization import cutoff_split
from rewts.metrics import sharpe_ratio

D = dt.date


def test_defaults_for_the_preset_models_say_where_they_come_from():
    flash = resolve_cutoff(None, "gemini", "gemini-2.5-flash")
    assert flash.date == D(2025, 1, 31) and flash.kind == "published knowledge cutoff"
    assert "ai.google.dev" in flash.source
    assert resolve_cutoff(None, "gemini", "models/gemini-2.5-flash-lite").date == D(2025, 1, 31)
    assert resolve_cutoff(None, "openai", "gpt-4o-mini").date == D(2023, 10, 31)
    deepseek = resolve_cutoff(None, "deepseek", "deepseek-chat")
    assert (
        deepseek.kind == "release date (upper bound)" and "no knowledge cutoff" in deepseek.source
    )
    for cutoff in KNOWN_CUTOFFS.values():
        assert cutoff.date is not None and cutoff.source.count("http") >= 1
    # the configured value wins; the heuristic has none; an unknown model says what to set
    assert resolve_cutoff(D(2019, 6, 30), "gemini", "gemini-2.5-flash").kind == "configured"
    assert resolve_cutoff(None, "heuristic", "rules-v1").date is None
    unknown = resolve_cutoff(None, "local", "llama3.1")
    assert unknown.kind == "unknown" and "llm.model_cutoff" in unknown.source


def test_the_warning_says_what_the_test_period_means_for_the_model():
    flash = resolve_cutoff(None, "gemini", "gemini-2.5-flash")
    paper = (D(2018, 1, 2), D(2019, 12, 31))
    before = cutoff_warning(flash, "gemini-2.5-flash", *paper)
    assert before is not None and "may have seen these years" in before
    assert "2025-01-31" in before and "2018-01-02 .. 2019-12-31" in before
    spans = cutoff_warning(resolve_cutoff(D(2019, 1, 1), "x", "m"), "m", *paper)
    assert spans is not None and "spans" in spans and "before and after" in spans
    assert cutoff_warning(resolve_cutoff(D(2017, 6, 30), "x", "m"), "m", *paper) is None
    assert cutoff_warning(resolve_cutoff(None, "heuristic", None), "rules-v1", *paper) is None
    unknown = cutoff_warning(resolve_cutoff(None, "local", "llama"), "llama", *paper)
    assert unknown is not None and "unknown" in unknown


def test_a_malformed_cutoff_names_the_key():
    with pytest.raises(ValidationError, match="model_cutoff"):
        Config.model_validate({"llm": {"model_cutoff": "last spring"}})
    cfg = Config.model_validate({"llm": {"model_cutoff": "2025-01-31"}})
    assert cfg.llm.model_cutoff == D(2025, 1, 31)


def _run(agent: str, returns: np.ndarray, dates: pd.DatetimeIndex, run: int = 0) -> AgentRun:
    equity = np.cumprod(1 + returns)
    zeros = np.zeros_like(returns)
    return AgentRun("AAA", agent, run, run, dates, returns, np.ones_like(returns), equity, zeros,
                    zeros, {})  # fmt: skip


def test_metrics_before_and_after_the_cutoff_are_each_sides_own():
    dates = pd.bdate_range("2019-01-01", periods=120)
    rng = np.random.default_rng(0)
    good = rng.normal(0.004, 0.01, 120)
    good[60:] = rng.normal(-0.002, 0.01, 60)  # the edge ends at the cutoff
    result = BacktestResult("t", {}, runs=[_run("llm_only", good, dates)])
    cutoff = dates[59].date()
    split = cutoff_split(result, cutoff).set_index("side")
    assert split.loc["before", "n_days"] == 60 and split.loc["after", "n_days"] == 60
    assert split.loc["before", "sharpe"] == pytest.approx(sharpe_ratio(good[:60]))
    assert split.loc["after", "sharpe"] == pytest.approx(sharpe_ratio(good[60:]))
    assert split.loc["before", "sharpe"] > 0 > split.loc["after", "sharpe"]
    # a cutoff outside the test period: nothing to split
    assert cutoff_split(result, D(2018, 1, 1)).empty
    assert cutoff_split(result, D(2030, 1, 1)).empty
