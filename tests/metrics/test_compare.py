from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rewts.errors import DataError
from rewts.metrics import aggregate_runs, paired_ttest


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for ticker in ["AAPL", "MSFT"]:
        for run in range(5):
            rl = rng.normal(0.5, 0.3)
            rows.append({"ticker": ticker, "agent": "rl", "run": run, "sharpe": rl, "mdd": 0.3})
            rows.append(
                {
                    "ticker": ticker,
                    "agent": "llm_rl",
                    "run": run,
                    "sharpe": rl + 0.2 + rng.normal(0, 0.05),
                    "mdd": 0.2,
                }
            )
    return pd.DataFrame(rows)


def test_aggregate_mean_std_over_runs():
    table = _table()
    agg = aggregate_runs(table, metrics=["sharpe", "mdd"])
    assert len(agg) == 4
    row = agg[(agg.ticker == "AAPL") & (agg.agent == "rl")].iloc[0]
    ref = table[(table.ticker == "AAPL") & (table.agent == "rl")]["sharpe"]
    assert row["sharpe_mean"] == pytest.approx(ref.mean())
    assert row["sharpe_std"] == pytest.approx(ref.std(ddof=1))
    assert row["runs"] == 5 and row["sharpe_n"] == 5


def test_aggregate_leaves_nan_runs_out_and_counts_them():
    table = _table()
    table.loc[0, "sharpe"] = np.nan
    agg = aggregate_runs(table, metrics=["sharpe"])
    first = agg.iloc[0]
    assert first["sharpe_n"] == 4 and first["runs"] == 5


def test_paired_ttest_matches_scipy_on_pairs():
    table = _table()
    res = paired_ttest(table, "llm_rl", "rl")
    a = table[table.agent == "llm_rl"].sort_values(["ticker", "run"])["sharpe"].to_numpy()
    b = table[table.agent == "rl"].sort_values(["ticker", "run"])["sharpe"].to_numpy()
    ref = stats.ttest_rel(a, b)
    assert res.n_pairs == 10
    assert res.t_statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue)
    assert res.p_value < 0.01 and res.a_wins == 10
    assert "significant" in res.describe()


def test_paired_ttest_with_one_pair_is_nan_and_missing_agent_is_an_error():
    table = _table()
    one = table[(table.run == 0) & (table.ticker == "AAPL")]
    res = paired_ttest(one, "llm_rl", "rl")
    assert res.n_pairs == 1 and np.isnan(res.p_value)
    with pytest.raises(DataError, match="both agents"):
        paired_ttest(table, "llm_rl", "nope")
