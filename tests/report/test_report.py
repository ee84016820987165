"""The report is produced, parses as HTML, embeds non-empty images, and shows the tables."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from rewts.backtest.result import AgentRun, BacktestResult
from rewts.metrics import PairedTest, summarize
from rewts.report import paper_table, print_paper_tables, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_result(tickers=("AAPL", "MSFT"), runs=2, n=60) -> BacktestResult:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2018-01-02", periods=n)
    result = BacktestResult(name="test-run", config={"split": {"test_start": "2018-01-02"}})
    for ticker in tickers:
        price = pd.Series(100 * np.cumprod(1 + rng.normal(0, 0.01, n)), index=dates)
        result.prices[ticker] = price
        result.llm_signals[ticker] = pd.DataFrame(
            {
                "period": [0, 1, 2],
                "start": dates[[0, 20, 40]],
                "end": dates[[19, 39, n - 1]],
                "direction": [1, 0, 1],
                "tau": [0.6, -0.3, 0.0],
            }
        )
        for agent in ("buy_and_hold", "llm_rl", "rl_only", "rewts", "leak_sanity"):
            for run in range(1 if agent == "buy_and_hold" else runs):
                pos = np.sign(rng.normal(size=n))
                r = pos * rng.normal(0.001, 0.01, n)
                result.runs.append(
                    AgentRun(
                        ticker=ticker,
                        agent=agent,
                        run=run,
                        seed=run,
                        dates=dates,
                        returns=r,
                        positions=pos,
                        equity=10_000 * np.cumprod(1 + r),
                        trades=np.diff(pos, prepend=0),
                        costs=np.zeros(n),
                        metrics=summarize(r, pos),
                    )
                )
        w = rng.dirichlet(np.ones(3), size=n)
        result.ensemble_weights[(ticker, 0)] = pd.DataFrame(
            w, index=dates, columns=["chunk 0", "chunk 1", "chunk 2"]
        )
        result.rebalances[(ticker, 0)] = pd.DataFrame(
            {
                "date": dates,
                "status": ["solved"] * (n - 1) + ["fallback"],
                "reason": [""] * (n - 1) + ["clarabel found no solution"],
                "solve_seconds": np.full(n, 1e-3),
            }
        )
        result.training_curves[(ticker, "chunk 0")] = pd.DataFrame(
            {"episode_return": rng.normal(size=10).cumsum()},
            index=pd.RangeIndex(10, name="episode"),
        )
    result.tests.append(PairedTest("sharpe", "llm_rl", "rl_only", 4, 0.5, 0.3, 0.2, 1.5, 0.2, 3))
    result.notes.append("sanity check: the leak agent scored Sharpe 9.9 (ok)")
    return result


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def test_report_files_are_written_and_html_parses_with_non_empty_images(tmp_path):
    result = _fake_result()
    files = write_report(result, tmp_path / "results" / "test-run")
    for path in (files.metrics_csv, files.summary_csv, files.metrics_json, files.daily_csv):
        assert path.is_file() and path.stat().st_size > 0
    weights = pd.read_csv(files.weights_csv, parse_dates=["date"])
    assert {"date", "ticker", "run", "chunk 0", "chunk 2"} <= set(weights.columns)
    assert len(weights) == 2 * 60
    assert (pd.read_csv(files.rebalances_csv).status == "fallback").sum() == 2
    metrics = pd.read_csv(files.metrics_csv)
    assert len(metrics) == 2 * (1 + 4 * 2)
    assert {"ticker", "agent", "run", "sharpe", "max_drawdown"} <= set(metrics.columns)
    payload = json.loads(files.metrics_json.read_text())
    assert payload["run"] == "test-run" and payload["tests"][0]["a"] == "llm_rl"
    assert "Mean" in payload["paper_tables"]["sharpe"]

    parser = _Collector()
    parser.feed(files.html.read_text())
    parser.close()
    assert parser.tags.count("html") == 1 and "table" in parser.tags
    # per ticker: equity, drawdown, price/trades/signal, weights, training; plus the overview
    assert len(parser.imgs) == 1 + 5 * 2
    for src in parser.imgs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(PNG_MAGIC) and len(png) > 2_000
    text = " ".join(parser.text)
    assert "Sharpe" in text and "Conventions" in text and "uniform fallbacks: 1" in text
    assert "sanity check" in text


def test_report_without_ensemble_or_training_curves_skips_those_figures(tmp_path):
    result = _fake_result(tickers=("AAPL",), runs=1)
    result.ensemble_weights.clear()
    result.rebalances.clear()
    result.training_curves.clear()
    files = write_report(result, tmp_path)
    parser = _Collector()
    parser.feed(files.html.read_text())
    assert len(parser.imgs) == 1 + 3


def test_paper_table_cells_are_mean_pm_std_over_runs():
    result = _fake_result()
    table = paper_table(result, "sharpe")
    assert list(table.index) == ["AAPL", "MSFT", "Mean"]
    assert "LLM+RL" in table.columns and "Buy & Hold" in table.columns
    runs = [r.metrics["sharpe"] for r in result.runs if r.ticker == "AAPL" and r.agent == "llm_rl"]
    assert table.loc["AAPL", "LLM+RL"] == f"{np.mean(runs):.2f} ± {np.std(runs, ddof=1):.2f}"
    # one run: no ± part
    bh = next(r for r in result.runs if r.ticker == "AAPL" and r.agent == "buy_and_hold")
    assert table.loc["AAPL", "Buy & Hold"] == f"{bh.metrics['sharpe']:.2f}"


def test_terminal_tables_print(capsys):
    console = Console(width=200, force_terminal=False)
    print_paper_tables(_fake_result(), console)
    out = capsys.readouterr().out
    assert "Table VII" in out and "Table VIII" in out and "LLM+RL" in out and "Mean" in out
    assert "llm_rl vs rl_only" in out


def test_json_has_no_nan(tmp_path):
    result = _fake_result(tickers=("AAPL",), runs=1)
    flat = np.zeros(60)
    result.runs[0].metrics = summarize(flat, flat)  # NaN Sharpe
    files = write_report(result, tmp_path, html=False)
    assert files.html is None
    text = files.metrics_json.read_text()
    assert "NaN" not in text
    json.loads(text)


@pytest.mark.parametrize("agent", ["rewts", "nope"])
def test_agent_lookup(agent):
    result = _fake_result(tickers=("AAPL",), runs=1)
    assert (result.find("AAPL", agent) is not None) == (agent == "rewts")


def test_piped_terminal_tables_keep_every_cell_whole(capsys):
    result = _fake_result()
    console = Console(width=60, force_terminal=False)
    print_paper_tables(result, console)
    out = capsys.readouterr().out
    assert "…" not in out
    runs = [r.metrics["sharpe"] for r in result.runs if r.ticker == "MSFT" and r.agent == "rewts"]
    assert f"{np.mean(runs):.2f} ± {np.std(runs, ddof=1):.2f}" in out
    assert console.width == 60
