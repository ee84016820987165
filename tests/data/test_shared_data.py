"""The real data in ../shared/data: loaded whole, and processed for two tickers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rewts.data import prepare_data, timeline_for
from rewts.data.sources.csv_folder import read_price_csv

from .conftest import make_config

TICKERS = ["AAPL", "META"]


@pytest.fixture(scope="module")
def shared_manifest(shared_data):
    manifest = json.loads((shared_data / "manifest.json").read_text())
    return {entry["file"]: entry for entry in manifest["files"]}


@pytest.mark.parametrize("name", [*TICKERS, "GSPC", "VIX", "TNX"])
def test_every_row_of_the_file_is_loaded(shared_data, shared_manifest, name):
    table, warnings = read_price_csv(shared_data / f"{name}.csv")
    entry = shared_manifest[f"{name}.csv"]
    assert len(table) == entry["rows"]
    assert table.index[0].date().isoformat() == entry["first_date"]
    assert table.index[-1].date().isoformat() == entry["last_date"]
    assert warnings == []


def test_processed_aapl_and_meta_match_the_files_and_the_manifest(shared_data, tmp_path):
    cfg = make_config(
        tmp_path,
        tickers=TICKERS,
        source="csv",
        csv_dir=str(shared_data),
        start_date="2012-01-01",
        end_date="2020-12-31",
        warmup_days=200,
    )
    ds = prepare_data(cfg)
    manifest = json.loads((tmp_path / "processed" / "manifest.json").read_text())
    assert manifest["source"] == "csv" and list(manifest["tickers"]) == TICKERS
    assert manifest["content_hash"] == ds.content_hash
    assert ds.report.gaps == ()  # the README: no missing trading day
    for ticker in TICKERS:
        frame, info = ds.frames[ticker], manifest["tickers"][ticker]
        assert (info["rows"], info["first"], info["last"]) == (
            len(frame),
            frame.index[0].date().isoformat(),
            frame.index[-1].date().isoformat(),
        )
        raw = pd.read_csv(shared_data / f"{ticker}.csv", index_col="date", parse_dates=True)
        # every row of the file in the frame's range is there, nothing added
        assert frame.index.equals(raw.loc[frame.index[0] : "2020-12-31"].index)
        pd.testing.assert_series_equal(
            frame["close"],
            raw["close"].loc[frame.index],
            check_names=False,
            check_index_type=False,
            check_freq=False,
        )
    # AAPL: 2,265 trading days in 2012-2020 (the README), after 200 warm-up days from 2011
    aapl = ds.frames["AAPL"]
    assert len(aapl) == 2265 + 200 and aapl.index[200] == pd.Timestamp("2012-01-03")
    assert timeline_for(aapl, cfg).periods[0].start == pd.Timestamp("2012-01-03")
    assert aapl.loc["2012-01-03", "sp500_close"] == pytest.approx(1277.06, abs=0.01)
    # META listed 2012-05-18: its first trading day comes after its own warm-up and the
    # 205 days the SMA-200 slope needs
    meta_raw = read_price_csv(shared_data / "META.csv")[0]
    assert ds.report.first_trading_day["META"] == meta_raw.index[204].date()
    assert info["first_trading_day"] == meta_raw.index[204].date().isoformat()
