"""The sanity gate on real data at the default settings: the agent fed the next day's return
must use it out of sample (one ticker, the default budget: about half a minute)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rewts.backtest import backtest_all
from rewts.config.loader import load_config
from rewts.data import prepare_data


@pytest.mark.slow
def test_the_leak_agent_calls_the_decisive_test_days_on_real_data(shared_data: Path, workdir):
    torch.set_num_threads(1)
    cfg = load_config(
        sets=[
            "tickers=[AAPL]",
            f"data.csv_dir={shared_data}",
            "data.source=csv",
            "backtest.runs=1",
            "backtest.agents=[buy_and_hold,leak_sanity]",
            "executor=local",
        ]
    )
    result = backtest_all(cfg, prepare_data(cfg), None, name="leak")
    fit = result.diagnostics[("AAPL", "leak_sanity", 0)]
    # 2018-2019, never seen in training or validation
    assert fit["test_decisive_accuracy"] >= 0.95, fit
    assert fit["test_accuracy"] >= 0.9, fit  # all days: an oracle with costs calls 94.8 %
    assert fit["train_accuracy"] - fit["test_accuracy"] < 0.05, fit  # no memorization gap
    table = result.metrics_table().set_index("agent")
    assert table.loc["leak_sanity", "sharpe"] >= cfg.backtest.sanity_min_sharpe
    assert any(n.startswith("Sanity check passed") for n in result.notes), result.notes
