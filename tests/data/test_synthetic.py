"""The synthetic generator: seeded, consistent OHLC, realistic volatility, distinct tickers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from rewts.data.sources.synthetic import TRANSITIONS, SyntheticMarket, generate, regime_path

MARKET = {"sp500": "GSPC", "vix": "VIX", "tnx": "TNX"}
START, END = dt.date(2012, 1, 1), dt.date(2020, 12, 31)


def make(tickers=("AAA", "BBB"), seed=7):
    return generate(list(tickers), MARKET, seed=seed, start=START, end=END)


def test_same_seed_same_data_and_tickers_independent_of_each_other():
    a, b = make(), make()
    for name in ("AAA", "BBB"):
        pd.testing.assert_frame_equal(a.tickers[name], b.tickers[name])
    for prefix in MARKET:
        pd.testing.assert_frame_equal(a.market[prefix], b.market[prefix])
    # a ticker's series does not depend on which other tickers were asked for
    alone = make(tickers=("BBB",))
    pd.testing.assert_frame_equal(alone.tickers["BBB"], a.tickers["BBB"])


def test_different_tickers_and_seeds_give_different_series():
    a = make()
    assert not np.allclose(a.tickers["AAA"]["close"], a.tickers["BBB"]["close"])
    other = make(seed=8)
    assert not np.allclose(other.tickers["AAA"]["close"], a.tickers["AAA"]["close"])


def test_ohlc_consistent_positive_and_on_business_days():
    raw = make()
    for table in [*raw.tickers.values(), *raw.market.values()]:
        assert (table[["open", "high", "low", "close", "adj_close"]] > 0).all().all()
        assert (table["low"] <= np.minimum(table["open"], table["close"])).all()
        assert (table["high"] >= np.maximum(table["open"], table["close"])).all()
        assert (table["volume"] >= 0).all()
        assert table.index.day_of_week.max() <= 4 and table.index.is_unique
        assert table.index.equals(pd.DatetimeIndex(pd.bdate_range(START, END)))


def test_volatility_and_correlations_are_realistic():
    raw = make(tickers=("AAA", "BBB", "CCC", "DDD"))
    index_ret = np.log(raw.market["sp500"]["close"]).diff().dropna()
    assert 0.10 < index_ret.std() * np.sqrt(252) < 0.30
    for table in raw.tickers.values():
        ret = np.log(table["close"]).diff().dropna()
        assert 0.15 < ret.std() * np.sqrt(252) < 0.60
        assert 0.2 < np.corrcoef(ret, index_ret)[0, 1] < 0.9
    vix = raw.market["vix"]["close"]
    assert vix.min() > 8 and vix.max() < 100
    assert np.corrcoef(np.log(vix).diff().dropna(), index_ret)[0, 1] < -0.5
    tnx = raw.market["tnx"]["close"]
    assert tnx.min() > 0.2 and tnx.max() < 10


def test_regimes_follow_the_markov_chain():
    assert np.allclose(TRANSITIONS.sum(axis=1), 1.0)
    states = regime_path(np.random.default_rng(0), 200_000)
    assert set(np.unique(states)) == {0, 1, 2}
    stays = [(states[1:][states[:-1] == k] == k).mean() for k in range(3)]
    np.testing.assert_allclose(stays, np.diag(TRANSITIONS), atol=0.01)
    market = SyntheticMarket(7, START, END)
    assert len(market.regimes) == len(market.dates)
