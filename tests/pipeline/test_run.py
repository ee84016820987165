"""`rewts run` and `rewts status` end to end, in empty folders, with tiny settings.

One ticker of synthetic prices, two chunks of one episode each and a 16-unit network, trained
in-process (``executor=local``): the whole pipeline in a few CPU-seconds. Stage outcomes are
read from ``--json``; "nothing was redone" is also checked on the files themselves (mtimes).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewts.cli import app

runner = CliRunner()

BASE = [
    "--tickers", "AAPL",
    "--source", "synthetic",
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
]  # fmt: skip
TINY = [*BASE, "--agents", "buy_and_hold,llm_only,rl_only,llm_rl,rewts"]
#: one learned agent (the last chunk's LLM+RL): one training job, for tests that run many times
SMALL = ["--agents", "buy_and_hold,llm_rl"]
STAGES = ["data", "strategies", "train", "backtest", "report"]


def run(*extra: str) -> dict:
    result = runner.invoke(app, ["run", *TINY, "--json", *extra])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    summary["log"] = result.stderr
    return summary


def statuses(summary: dict) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in summary["stages"]}


def status(*extra: str) -> dict[str, dict]:
    result = runner.invoke(app, ["status", *TINY, "--json", *extra])
    assert result.exit_code == 0, result.output
    return {s["stage"]: s for s in json.loads(result.stdout)["stages"]}


def mtimes(folder: Path, pattern: str) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.glob(pattern))}


def test_status_of_an_empty_folder(workdir):
    states = status()
    assert [states[s]["state"] for s in STAGES] == ["missing"] * 5
    result = runner.invoke(app, ["status", *TINY])
    assert result.exit_code == 0 and "would run: data, strategies" in result.stdout


def test_run_skips_unchanged_stages_and_resumes(workdir):
    first = run()
    assert statuses(first) == dict.fromkeys(STAGES, "done")
    out = workdir / "results" / "default"
    for name in ("report.html", "metrics.json", "metrics.csv"):
        assert (out / name).stat().st_size > 0
    assert Path(first["report"]).resolve() == out / "report.html"
    assert set(first["paper_tables"]) == {"sharpe", "max_drawdown", "generalization"}
    # the learned agents' training, validation and test fit reach the summary
    fit = {row["agent"]: row for row in first["paper_tables"]["generalization"]}
    assert "Sharpe train" in fit["RL-only"] and "Acc. test" in fit["RL-only"]
    # how much LLM+RL acts on tau is measured; RL-only reads no tau, so it has none
    assert 0.0 <= fit["LLM+RL"]["Tau decided test"] <= 1.0
    assert fit["RL-only"].get("Tau decided test") is None
    assert set(first["paper_tables"]["sharpe"]) == {"AAPL", "Mean"}
    assert "NOT an LLM" in first["log"]
    assert first["strategies"]["provider"] == "heuristic" and first["strategies"]["api_calls"] == 0
    assert first["training"]["trained"] == first["training"]["agents"] == 4  # 2 chunks, global, RL
    assert all(s["state"] == "fresh" for s in status().values())

    # a second run skips every stage and rewrites nothing
    before = mtimes(workdir, "**/*.*")
    t0 = time.perf_counter()
    second = run()
    assert statuses(second) == dict.fromkeys(STAGES, "skipped")
    assert time.perf_counter() - t0 < 30  # seconds even on a loaded CI machine (no training)
    assert second["training"]["trained"] == 0 and second["strategies"]["generated"] == 0
    assert second["paper_tables"] == first["paper_tables"]
    assert mtimes(workdir, "**/*.*") == before

    # the data rebuilt from its source come out identical: nothing after them reruns
    refreshed = run("--refresh")
    assert statuses(refreshed) == {"data": "done"} | dict.fromkeys(STAGES[1:], "skipped")

    # the results are deleted: only the backtest and the report run again
    shutil.rmtree(out)
    third = run()
    assert statuses(third) == {
        "data": "skipped",
        "strategies": "skipped",
        "train": "skipped",
        "backtest": "done",
        "report": "done",
    }
    assert third["paper_tables"] == first["paper_tables"]  # same agents, same seeds

    # training was interrupted after all but one agent: only that one is trained again
    meta = next((workdir / "checkpoints" / "AAPL").glob("chunk_1/llm_s0/meta.json"))
    meta.unlink()
    fourth = run()
    assert statuses(fourth)["train"] == "done"
    assert fourth["training"]["trained"] == 1 and fourth["training"]["reused"] == 3
    assert status()["train"]["state"] == "fresh"

    # only report.html is gone: the report needs the backtest's in-memory results
    (out / "report.html").unlink()
    assert status()["report"]["state"] == "stale"
    fifth = run()
    assert statuses(fifth)["train"] == "skipped"
    assert statuses(fifth)["backtest"] == statuses(fifth)["report"] == "done"


def test_a_run_interrupted_before_the_backtest_resumes_there(workdir, monkeypatch):
    import rewts.backtest

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(rewts.backtest, "backtest_all", interrupted)
        result = runner.invoke(app, ["run", *TINY, *SMALL])
    assert result.exit_code == 130 and "rerun to resume" in result.output
    states = status(*SMALL)
    assert [states[s]["state"] for s in STAGES] == ["fresh"] * 3 + ["missing"] * 2
    summary = run(*SMALL)
    assert statuses(summary) == dict(zip(STAGES, ["skipped"] * 3 + ["done"] * 2, strict=True))


def test_a_config_change_invalidates_exactly_the_stages_downstream(workdir):
    run(*SMALL)
    # a metrics setting: only the backtest (and its report)
    states = status(*SMALL, "--set", "backtest.risk_free_rate=0.01")
    assert [states[s]["state"] for s in STAGES] == ["fresh"] * 3 + ["stale"] * 2
    assert "backtest.risk_free_rate" in states["backtest"]["why"]
    summary = run(*SMALL, "--set", "backtest.risk_free_rate=0.01")
    assert statuses(summary) == dict(zip(STAGES, ["skipped"] * 3 + ["done"] * 2, strict=True))

    # a training setting: train, backtest, report
    states = status(*SMALL, "--set", "backtest.risk_free_rate=0.01", "--episodes", "2")
    assert states["train"]["why"] == "changed: rewts.episodes_per_chunk"
    summary = run(*SMALL, "--set", "backtest.risk_free_rate=0.01", "--episodes", "2")
    assert statuses(summary) == dict(zip(STAGES, ["skipped"] * 2 + ["done"] * 3, strict=True))

    # the strategy period: strategies and everything after them, not the data
    summary = run(
        *SMALL,
        "--set",
        "backtest.risk_free_rate=0.01",
        "--episodes",
        "2",
        "--set",
        "strategy_frequency=10",
    )
    assert statuses(summary) == dict(zip(STAGES, ["skipped"] + ["done"] * 4, strict=True))

    # the data: everything
    summary = run(
        *SMALL,
        "--set", "backtest.risk_free_rate=0.01", "--episodes", "2", "--set", "strategy_frequency=10",
        "--set", "data.synthetic_seed=8",
    )  # fmt: skip
    assert statuses(summary) == dict.fromkeys(STAGES, "done")


def test_regenerated_identical_strategies_retrain_nothing(workdir):
    run(*SMALL)
    (workdir / "data" / "strategies" / "rewts-stage.json").unlink()
    summary = run(*SMALL)
    # strategies were generated again, but their decisions are identical: training is reused
    assert statuses(summary)["strategies"] == "done"
    assert statuses(summary)["train"] == "skipped"


def test_offline_first_run_announces_every_choice(workdir, monkeypatch):
    import rewts.data.prepare as prepare

    monkeypatch.setattr(prepare, "yahoo_reachable", lambda timeout_s=1.5: (False, "offline"))
    result = runner.invoke(
        app,
        [
            "run",
            *[a for a in BASE if a not in ("--source", "synthetic")],
            "--agents",
            "buy_and_hold,llm_only",
            "--profile",
            "quick",
            "--tickers",
            "AAPL",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "source synthetic" in result.stderr and "Yahoo Finance not reachable" in result.stderr
    assert "NOT an LLM" in result.stderr
    assert "Table VII" in result.stdout and "report: results/quick/report.html" in result.stdout
    assert "[3/5] train" in result.stderr and "not needed" in result.stderr


def test_csv_folder_run(workdir, shared_data):
    result = runner.invoke(
        app,
        [
            "run", "--data-dir", str(shared_data), "--tickers", "AAPL,MSFT",
            "--agents", "buy_and_hold,llm_only", "--no-progress", "--out", "res",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "data: source csv" in result.stderr
    assert (workdir / "res" / "report.html").is_file()
    payload = json.loads((workdir / "res" / "metrics.json").read_text())
    assert {m["ticker"] for m in payload["metrics"]} == {"AAPL", "MSFT"}


def test_python_dash_m_rewts():
    result = subprocess.run(
        [sys.executable, "-m", "rewts", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "status" in result.stdout


@pytest.mark.parametrize("command", ["run", "status"])
def test_bad_profile_is_one_clear_line(command, workdir):
    result = runner.invoke(app, [command, "--profile", "nope"])
    assert result.exit_code == 2
    assert "unknown profile 'nope'" in result.output and "quick" in result.output


def test_run_against_the_simulator_uses_the_generator_path(workdir, monkeypatch):
    from rewts.sim import SimConfig, SimServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    news = workdir / "news.csv"
    news.write_text(
        "date,ticker,headline,source\n"
        "2017-03-01,AAPL,Apple unveils a new phone,test\n"
        "2017-06-01,AAPL,Apple shares slide on weak guidance,test\n"
    )
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        args = [
            *BASE, "--agents", "buy_and_hold,llm_only", "--provider", "openai",
            "--base-url", sim.openai_base_url, "--rps", "1000", "--json",
            "--set", f"data.news_path={news}",
        ]  # fmt: skip
        first = runner.invoke(app, ["run", *args])
        assert first.exit_code == 0, first.output
        s1 = json.loads(first.stdout)["strategies"]
        assert s1["provider"] == "openai" and s1["llm"] is True
        assert s1["api_calls"] == s1["generated"] == s1["total"] > 0 and s1["cost_usd"] > 0
        assert s1["analyses"] > 0 and s1["news"].startswith("analyst on")
        # the tables' record gone: regenerated from the strategy cache, no API call
        (workdir / "data" / "strategies" / "rewts-stage.json").unlink()
        second = runner.invoke(app, ["run", *args])
        assert second.exit_code == 0, second.output
        s2 = json.loads(second.stdout)
        assert s2["strategies"]["cache_hits"] == s1["total"] and s2["strategies"]["api_calls"] == 0
        assert {s["stage"]: s["status"] for s in s2["stages"]}["backtest"] == "skipped"
        # a new headline changes the analyst's input: the strategies are asked again
        with news.open("a") as fh:
            fh.write("2017-09-01,AAPL,Apple beats estimates,test\n")
        third = runner.invoke(app, ["status", *args])
        assert json.loads(third.stdout)["stages"][1]["state"] == "stale"
    assert "sk-test-not-a-real-key" not in first.output + second.output


def test_failed_periods_are_asked_again_on_the_next_run(workdir, monkeypatch):
    from rewts.sim import SimConfig, SimServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    # half the requests fail (a run where all fail stops with exit 4 instead)
    with SimServer(SimConfig(latency_s=0.0, error_rate=0.5, seed=3)) as sim:
        args = [
            *BASE, "--agents", "buy_and_hold,llm_only", "--provider", "openai",
            "--base-url", sim.openai_base_url, "--rps", "1000", "--on-failure", "neutral",
            "--set", "llm.retry.max_retries=0",
        ]  # fmt: skip
        first = runner.invoke(app, ["run", *args, "--json"])
        assert first.exit_code == 0, first.output
        assert json.loads(first.stdout)["strategies"]["fallbacks"] > 0
        later = runner.invoke(app, ["status", *args, "--json"])
        strategies = json.loads(later.stdout)["stages"][1]
        assert strategies["state"] == "stale" and "failed period(s) to retry" in strategies["why"]


def test_kill_9_during_training_then_rerun_equals_an_uninterrupted_run(workdir):
    """A real SIGKILL of the `rewts run` process once the training stage has begun; the rerun
    skips data and strategies, finishes the rest and ends with an uninterrupted run's metrics."""
    import os
    import signal

    args = [sys.executable, "-m", "rewts", "run", *TINY]
    killed = workdir / "killed"
    killed.mkdir()
    proc = subprocess.Popen(args, cwd=killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = killed / "data" / "strategies" / "rewts-stage.json"
    deadline = time.monotonic() + 120
    while not record.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert not (killed / "results").exists()  # killed before the backtest

    rerun = subprocess.run(
        [*args, "--json"], cwd=killed, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    states = statuses(json.loads(rerun.stdout))
    assert states["data"] == states["strategies"] == "skipped"
    assert states["backtest"] == states["report"] == "done"

    clean = workdir / "clean"
    clean.mkdir()
    subprocess.run(args, cwd=clean, capture_output=True, timeout=300, check=True)
    table = Path("results") / "default" / "metrics.csv"
    assert (killed / table).read_text() == (clean / table).read_text()
