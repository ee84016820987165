"""Metrics: cross-checked against empyrical-reloaded on real and synthetic series, and by hand."""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest

from rewts import metrics as m
from rewts.errors import DataError

REL = 1e-6
TICKERS = ["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"]


def _real_returns(shared_data, ticker: str) -> np.ndarray:
    frame = pd.read_csv(shared_data / f"{ticker}.csv", parse_dates=["date"], index_col="date")
    close = frame["adj_close"].loc["2017-12-29":"2019-12-31"]
    return close.pct_change().dropna().to_numpy()


def _synthetic() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.normal(0.0005, 0.02, 503)
    long_short = np.sign(rng.normal(size=503)) * base - 0.0015 * (rng.random(503) < 0.1)
    crash = base.copy()
    crash[100:140] = -0.03
    return {"gaussian": base, "long_short": long_short, "crash": crash}


def _check_against_empyrical(r: np.ndarray, rf_annual: float) -> None:
    rf_d = m.daily_risk_free(rf_annual)
    assert m.cumulative_return(r) == pytest.approx(empyrical.cum_returns_final(r), rel=REL)
    assert m.annual_return(r) == pytest.approx(empyrical.annual_return(r), rel=REL)
    assert m.annual_volatility(r) == pytest.approx(empyrical.annual_volatility(r), rel=REL)
    assert m.sharpe_ratio(r, rf_annual) == pytest.approx(
        empyrical.sharpe_ratio(r, risk_free=rf_d), rel=REL
    )
    assert m.sortino_ratio(r, rf_annual) == pytest.approx(
        empyrical.sortino_ratio(r, required_return=rf_d), rel=REL
    )
    assert m.downside_risk(r, rf_annual) == pytest.approx(
        empyrical.downside_risk(r, required_return=rf_d), rel=REL
    )
    assert m.max_drawdown(r) == pytest.approx(-empyrical.max_drawdown(r), rel=REL)
    assert m.calmar_ratio(r) == pytest.approx(empyrical.calmar_ratio(r), rel=REL)
    summary = m.summarize(r, np.ones_like(r), risk_free_rate=rf_annual)
    assert summary["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, risk_free=rf_d), rel=REL)


@pytest.mark.parametrize("ticker", TICKERS)
@pytest.mark.parametrize("rf", [0.0, 0.02])
def test_real_series_match_empyrical(shared_data, ticker, rf):
    r = _real_returns(shared_data, ticker)
    assert len(r) == 503  # the 2018-2019 test years: 503 trading days, each with a return
    _check_against_empyrical(r, rf)
    # a short position on the same stock (a different shape of drawdown)
    _check_against_empyrical(-r, rf)


@pytest.mark.parametrize("name", ["gaussian", "long_short", "crash"])
def test_synthetic_series_match_empyrical(name):
    _check_against_empyrical(_synthetic()[name], 0.03)


def test_hand_computed_tiny_case():
    r = np.array([0.10, -0.20, 0.05, 0.10])
    equity = np.array([1.1, 0.88, 0.924, 1.0164])
    np.testing.assert_allclose(m.equity_curve(r), equity)
    assert m.cumulative_return(r) == pytest.approx(0.0164)
    mean, std = r.mean(), r.std(ddof=1)  # 0.0125, sample std
    assert std == pytest.approx(np.sqrt(((r - 0.0125) ** 2).sum() / 3))
    assert m.sharpe_ratio(r, periods_per_year=252) == pytest.approx(np.sqrt(252) * mean / std)
    # peak 1.1 after day 0, trough 0.88 on day 1: a 20 % drawdown, under water days 1..3
    assert m.max_drawdown(r) == pytest.approx(0.2)
    assert m.max_drawdown_duration(r) == 3
    np.testing.assert_allclose(m.drawdown_series(r), [0.0, -0.2, 0.924 / 1.1 - 1, 1.0164 / 1.1 - 1])
    # downside: only the -0.20 day falls short; RMS over all 4 days
    assert m.downside_risk(r, periods_per_year=1) == pytest.approx(np.sqrt(0.04 / 4))
    assert m.annual_return(r, periods_per_year=4) == pytest.approx(0.0164)


def test_drawdown_from_first_day_counts_the_initial_capital_as_peak():
    r = np.array([-0.5, 0.5, 0.5])
    # 1 -> 0.5 -> 0.75 -> 1.125: the start (1.0) is the first peak
    assert m.max_drawdown(r) == pytest.approx(0.5)
    assert m.max_drawdown_duration(r) == 2


def test_drawdown_duration_picks_the_longest_run_and_counts_unrecovered():
    r = np.array([0.1, -0.1, 0.2, -0.01, 0.0, -0.01, 0.0, 0.0])
    # under water: day 1 (recovered day 2), then days 3..7 never recovered
    assert m.max_drawdown_duration(r) == 5
    assert m.max_drawdown_duration(np.full(5, 0.01)) == 0
    assert m.max_drawdown(np.full(5, 0.01)) == 0.0
    assert np.isnan(m.calmar_ratio(np.full(5, 0.01)))


def test_position_metrics_by_hand():
    r = np.array([0.01, -0.02, 0.0, 0.03, 0.01, -0.01])
    pos = np.array([1.0, 1.0, 0.0, -1.0, -1.0, 1.0])
    # from flat: enter (1), hold, exit (1), short (1), hold, flip (2) -> 5 over 6 days
    assert m.turnover(pos, periods_per_year=6) == pytest.approx(5.0)
    assert m.n_trades(pos) == 4
    assert m.exposure(pos) == pytest.approx(5 / 6)
    # days in the market: 0,1,3,4,5 -> positive on 0,3,4 -> 3/5
    assert m.hit_rate(r, pos) == pytest.approx(0.6)
    assert m.hit_rate(r) == pytest.approx(3 / 5)  # non-zero-return days
    assert np.isnan(m.hit_rate(r, np.zeros(6)))


def test_summarize_has_every_metric_and_one_convention():
    r = _synthetic()["long_short"]
    pos = np.sign(np.random.default_rng(1).normal(size=r.size))
    out = m.summarize(r, pos, risk_free_rate=0.01, periods_per_year=252)
    assert list(out) == list(m.METRIC_NAMES)
    assert out["n_days"] == r.size
    assert out["sharpe"] == pytest.approx(m.sharpe_ratio(r, 0.01))
    assert 0 <= out["hit_rate"] <= 1 and out["exposure"] == pytest.approx(1.0)
    no_pos = m.summarize(r)
    assert np.isnan(no_pos["turnover"]) and np.isnan(no_pos["exposure"])


def test_traded_fractions_replace_position_changes_for_trades_and_turnover():
    r = np.array([0.01, 0.02, -0.01, 0.0])
    exposure = np.array([0.95, 0.96, 0.97, 0.96])  # a drifting long weight: one trade
    traded = np.array([0.95, 0.0, 0.0, 0.0])
    out = m.summarize(r, exposure, traded=traded, periods_per_year=4)
    assert out["n_trades"] == 1
    assert out["turnover"] == pytest.approx(0.95)
    assert m.summarize(r, exposure)["n_trades"] == 4  # exposure drift is not a trade


def test_constant_series_gives_nan_ratios_not_inf():
    out = m.summarize(np.zeros(10), np.zeros(10))
    assert np.isnan(out["sharpe"]) and np.isnan(out["sortino"]) and np.isnan(out["calmar"])
    assert out["max_drawdown"] == 0.0 and out["n_trades"] == 0


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.array([0.1, np.nan, 0.0]), "non-finite"),
        (np.array([0.1, -1.5, 0.0]), "below -100 %"),
        (np.ones((3, 2)) * 0.01, "one-dimensional"),
        (np.array([0.01]), "at least 2"),
    ],
)
def test_bad_input_names_the_problem(bad, match):
    with pytest.raises(DataError, match=match):
        m.summarize(bad)


def test_positions_must_align():
    with pytest.raises(DataError, match="one value per return"):
        m.summarize(np.zeros(5), np.zeros(4))


def test_risk_free_is_annual_and_geometric():
    assert m.daily_risk_free(0.0) == 0.0
    assert (1 + m.daily_risk_free(0.05)) ** 252 == pytest.approx(1.05)
