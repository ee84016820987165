"""benchmarks/bench_ensemble.py keeps running (one small pass of each part)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ensemble.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_ensemble", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_qp_benchmark_prints_each_size(capsys):
    _bench().bench_qp(repeats=2)
    out = capsys.readouterr().out
    for k in ("5", "20", "100"):
        assert any(line.split()[:1] == [k] for line in out.splitlines())


def test_backtest_benchmark_runs_on_one_ticker(capsys, shared_data):
    _bench().bench_backtest(["AAPL"], shared_data, runs=1)
    out = capsys.readouterr().out
    from rewts.config.models import BacktestConfig

    n_agents = len(BacktestConfig().agents)  # every default agent, one run each
    assert "backtest:" in out and f"{n_agents} agent runs" in out
