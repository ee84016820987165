"""`rewts backtest` from an empty folder: earlier stages run, files and tables come out."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rewts.cli import app

runner = CliRunner()


def test_backtest_command_on_real_data_with_rule_agents(workdir, shared_data):
    out = workdir / "res" / "my-run"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--data-dir",
            str(shared_data),
            "--provider",
            "heuristic",
            "--tickers",
            "AAPL,MSFT",
            "--agents",
            "buy_and_hold,llm_only",
            "--runs",
            "3",
            "--out",
            str(out),
            "--no-progress",
            "--set",
            "trading_env.max_drawdown_limit=null",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Table VII" in result.output and "Table VIII" in result.output
    assert "heuristic strategist" in result.output
    for name in ("metrics.csv", "summary.csv", "metrics.json", "daily.csv", "report.html"):
        assert (out / name).stat().st_size > 0
    payload = json.loads((out / "metrics.json").read_text())
    assert payload["run"] == "my-run" and payload["config"]["backtest"]["runs"] == 3
    bh = [m for m in payload["metrics"] if m["agent"] == "buy_and_hold"]
    assert {m["ticker"] for m in bh} == {"AAPL", "MSFT"}
    # 2018-01-02..2019-12-31: 503 trading days; AAPL buy & hold at 95 % had a positive Sharpe
    assert all(m["n_days"] == 503 for m in bh)
    assert next(m for m in bh if m["ticker"] == "AAPL")["sharpe"] > 0.5


def test_unknown_agent_is_one_clear_line(workdir):
    result = runner.invoke(app, ["backtest", "--agents", "buy_and_hold,oracle"])
    assert result.exit_code == 2
    assert "backtest.agents" in result.output and "Traceback" not in result.output
