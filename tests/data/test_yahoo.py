"""Yahoo Finance adapter, with yfinance replaced (no network here): layout and error mapping."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import yfinance

from rewts.data import prepare, prepare_data
from rewts.data.sources.yahoo import load_yahoo, normalize_yahoo_table, yahoo_symbol
from rewts.errors import DataError

from .conftest import make_config


def yahoo_table(start="2014-01-01", end="2016-12-31", multi=None, tz=None) -> pd.DataFrame:
    index = pd.bdate_range(start, end, name="Date", tz=tz)
    rng = np.random.default_rng(len(index))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(index))))
    table = pd.DataFrame(
        {
            "Adj Close": close * 0.98,
            "Close": close,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Open": close,
            "Volume": np.full(len(index), 1e6),
        },
        index=index,
    )
    if multi:
        table.columns = pd.MultiIndex.from_product(
            [table.columns, [multi]], names=["Price", "Ticker"]
        )
    return table


def test_symbols_get_yahoos_caret_for_indices():
    assert yahoo_symbol("GSPC") == "^GSPC" and yahoo_symbol("^VIX") == "^VIX"
    assert yahoo_symbol("AAPL") == "AAPL"


def test_multiindex_and_timezones_are_normalized():
    table = normalize_yahoo_table(yahoo_table(multi="AAPL", tz="America/New_York"), "test")
    assert list(table.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert table.index.tz is None and table.index.name == "date"
    assert table.index[0] == pd.Timestamp("2014-01-01")


def test_all_empty_holiday_rows_are_dropped_but_a_missing_price_is_an_error():
    table = yahoo_table()
    table.iloc[3] = np.nan
    assert len(normalize_yahoo_table(table, "test")) == len(table) - 1
    table.iloc[5, 1] = np.nan
    with pytest.raises(DataError, match="test: a price on 2014-01-08 is missing or not positive"):
        normalize_yahoo_table(table, "test")


def test_download_errors_become_data_errors(monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("boom")

    monkeypatch.setattr(yfinance, "download", broken)
    with pytest.raises(
        DataError, match=r"Yahoo Finance AAPL \(2015-01-01..2015-12-31\): download failed: boom"
    ):
        load_yahoo(["AAPL"], {}, start=dt.date(2015, 1, 1), end=dt.date(2015, 12, 31))


def test_empty_answer_for_a_ticker_is_an_error_for_a_market_symbol_a_report(monkeypatch):
    def fake(symbol, **kwargs):
        return pd.DataFrame() if symbol in ("NOPE", "^VIX") else yahoo_table()

    monkeypatch.setattr(yfinance, "download", fake)
    with pytest.raises(DataError, match=r"Yahoo Finance NOPE .*no rows returned"):
        load_yahoo(["NOPE"], {}, start=dt.date(2015, 1, 1), end=dt.date(2015, 12, 31))
    raw = load_yahoo(
        ["AAPL"],
        {"sp500": "GSPC", "vix": "VIX"},
        start=dt.date(2015, 1, 1),
        end=dt.date(2015, 12, 31),
    )
    assert set(raw.market) == {"sp500"} and "^VIX" in raw.missing_market["vix"]


def test_prepare_with_yahoo_when_reachable(tmp_path, monkeypatch):
    calls: list[tuple[str, str, str]] = []

    def fake(symbol, start, end, **kwargs):
        calls.append((symbol, start, end))
        return yahoo_table()

    monkeypatch.setattr(yfinance, "download", fake)
    monkeypatch.setattr(prepare, "yahoo_reachable", lambda timeout: (True, "reachable"))
    ds = prepare_data(make_config(tmp_path, source="auto", market_symbols={"sp500": "GSPC"}))
    assert ds.source == "yahoo"
    assert [c[0] for c in calls] == ["AAA", "BBB", "^GSPC"]
    # history before start_date for the warm-up, and an inclusive end date
    assert calls[0][1] < "2014-06-01" and calls[0][2] == "2017-01-01"
    assert ds.frames["AAA"].index[60] == pd.Timestamp("2015-01-01")
