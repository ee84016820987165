"""Memorization control end to end, offline: the cutoff warning at the top of a run's
report, metrics either side of the cutoff, and `rewts compare` (named vs blind) through the
simulator on real data at a tiny training budget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rewts.backtest.result import AgentRun, BacktestResult
from rewts.cli import app
from rewts.memorization import compare_named_blind
from rewts.sim import SimConfig, SimServer

runner = CliRunner()
KEY = "test-SENTINEL-key-memorization"

#: one real stock, one test year, a 16-unit network and one episode: seconds of training
TINY = [
    "--tickers", "AAPL",
    "--runs", "1",
    "--episodes", "1",
    "--no-progress",
    "--set", "executor=local",
    "--set", "data.start_date=2016-01-01",
    "--set", "data.end_date=2018-12-31",
    "--set", "split.train_start=2016-01-01",
    "--set", "split.train_end=2017-12-31",
    "--set", "split.test_start=2018-01-02",
    "--set", "split.test_end=2018-12-31",
    "--set", "rewts.chunk_length=250",
    "--set", "rewts.lookback_length=50",
    "--set", "rewts.hidden_dims=[16]",
    "--set", "rewts.batch_size=16",
    "--set", "rewts.learning_starts=10",
    "--set", "rewts.buffer_size=1000",
    "--set", "trading_env.max_drawdown_limit=null",
    "--set", "llm.logprobs=false",
    "--set", "llm.retry.initial_s=0.01",
]  # fmt: skip


def _text(report: Path) -> str:
    """The report's visible text, in order (no images, no styles)."""
    page = re.sub(r"<style>.*?</style>|<img[^>]*>", "", report.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_a_run_with_a_model_cut_off_after_2019_warns_at_the_top_of_its_report(
    shared_data, workdir, monkeypatch
):
    """Gemini 2.5 Flash (cutoff January 2025, its default) through the simulator."""
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        args = ["run", *TINY, "--data-dir", str(shared_data), "--provider", "gemini",
                "--base-url", sim.gemini_base_url, "--agents", "buy_and_hold,llm_only", "--json"]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        text = _text(Path(summary["report"]))
        payload = json.loads(Path(summary["metrics_json"]).read_text())
        # the data extends past a cutoff set inside the test period: before/after metrics
        result = runner.invoke(app, [*args, "--set", "llm.model_cutoff=2018-06-29"])
        assert result.exit_code == 0, result.output
        spans = json.loads(Path(json.loads(result.stdout)["metrics_json"]).read_text())
        spans_text = _text(Path(json.loads(result.stdout)["report"]))
    model = payload["memorization"]
    assert model["model"] == "gemini-2.5-flash" and model["cutoff"]["date"] == "2025-01-31"
    assert model["cutoff"]["kind"] == "published knowledge cutoff"
    assert "may have seen these years" in model["warning"] and model["warning"] in payload["notes"]
    # at the top: right after the title, before "How this was run"
    top = text.index("Backtest report")
    assert top < text.index("Memorization warning") < text.index("How this was run")
    assert "model training cutoff 2025-01-31 (published knowledge cutoff" in text
    assert "Before and after the model's training cutoff" not in text
    split = pd.DataFrame(spans["memorization"]["split"])
    assert set(split["side"]) == {"before", "after"} and set(split["agent"]) == {
        "buy_and_hold",
        "llm_only",
    }
    # every test day once, on one side of the cutoff
    days = {m["agent"]: m["n_days"] for m in spans["metrics"]}
    assert split.groupby("agent")["n_days"].sum().to_dict() == days
    before = split[split["side"] == "before"]["n_days"].iloc[0]
    prices = pd.read_csv(shared_data / "AAPL.csv", parse_dates=["date"])
    assert before == prices["date"].between("2018-01-02", "2018-06-29").sum()
    assert np.isfinite(split["sharpe"]).all()
    assert "spans the training cutoff" in spans_text
    assert "Before and after the model's training cutoff" in spans_text


def test_rewts_backtest_names_the_cutoff_too(shared_data, workdir):
    args = ["backtest", *TINY, "--data-dir", str(shared_data), "--provider", "heuristic",
            "--agents", "buy_and_hold,llm_only", "--out", "bt",
            "--set", "llm.model_cutoff=2025-01-31"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    model = json.loads(Path("bt/metrics.json").read_text())["memorization"]
    assert model["provider"] == "heuristic" and model["cutoff"]["kind"] == "configured"
    text = _text(Path("bt/report.html"))
    assert text.index("Memorization warning") < text.index("How this was run")


def test_compare_runs_named_and_blind_offline_and_writes_the_memorization_check(
    shared_data, workdir
):
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        args = ["compare", *TINY, "--data-dir", str(shared_data), "--provider", "local",
                "--base-url", sim.openai_base_url, "--model", "sim", "--json",
                "--set", "llm.model_cutoff=2024-06-01"]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        served = sim.stats(log=False)["requests"]
        out = Path(json.loads(result.stdout)["out_dir"])
        # a rerun skips every stage of both sides and asks the simulator nothing
        again = runner.invoke(app, args)
        assert again.exit_code == 0, again.output
        assert sim.stats(log=False)["requests"] == served
    table = pd.read_csv(out / "memorization.csv")
    assert list(table["agent"]) == ["llm_only", "llm_rl"] and set(table["ticker"]) == {"AAPL"}
    assert (table["periods"] >= 12).all() and table["verdict"].notna().all()
    assert json.loads(again.stdout)["comparison"] == json.loads(result.stdout)["comparison"]
    named = pd.read_parquet(out / "work" / "strategies" / "named" / "AAPL.parquet")
    blind = pd.read_parquet(out / "work" / "strategies" / "blind" / "AAPL.parquet")
    assert set(named["prompt_version"]) == {"v1"} and set(blind["prompt_version"]) == {"v1-blind"}
    assert list(named["period"]) == list(blind["period"])  # the same periods on both sides
    assert not set(named["cache_key"]) & set(blind["cache_key"])
    assert served == len(named) + len(blind)
    for side in ("named", "blind"):
        metrics = pd.read_csv(out / side / "metrics.csv")
        assert set(metrics["agent"]) == {"buy_and_hold", "llm_only", "llm_rl"}
    text = _text(out / "report.html")
    assert text.index("Memorization warning") < text.index("Memorization check")
    assert "AAPL · LLM-only" in text and "AAPL · LLM+RL" in text


def _runs(agent: str, returns: np.ndarray, dates: pd.DatetimeIndex) -> AgentRun:
    from rewts.metrics import summarize

    zeros = np.zeros_like(returns)
    ones = np.ones_like(returns)
    return AgentRun("AAA", agent, 0, 0, dates, returns, ones, np.cumprod(1 + returns), zeros,
                    zeros, summarize(returns, ones))  # fmt: skip


def test_a_named_edge_that_vanishes_blind_is_called_likely_memorization():
    dates = pd.bdate_range("2018-01-02", periods=240)
    rng = np.random.default_rng(1)
    market = rng.normal(0.0, 0.01, 240)
    recalled = np.abs(market) + 0.001  # named: always on the right side, as if it knew
    signals = {
        "AAA": pd.DataFrame(
            {"start": dates[::20], "end": dates[19::20], "direction": 1, "tau": 1.0}
        )
    }

    def result(llm: np.ndarray) -> BacktestResult:
        return BacktestResult(
            "t",
            {},
            runs=[_runs("buy_and_hold", market, dates), _runs("llm_only", llm, dates)],
            llm_signals=signals,
        )

    table = compare_named_blind(result(recalled), result(market), agents=["llm_only"])
    (row,) = table.to_dict(orient="records")
    assert row["periods"] == 12 and row["p"] < 0.05 and row["mean_diff"] > 0
    assert row["verdict"].startswith("likely memorization")
    # the same signal on both sides: no sign of it
    (same,) = compare_named_blind(result(market), result(market), ["llm_only"]).to_dict("records")
    assert same["verdict"] == "no sign of memorization"
    with pytest.raises(AssertionError):
        assert same["verdict"].startswith("likely")
