"""prepare_data end to end: source choice, frame shape, the store and its staleness rules."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rewts.data import Dataset, prepare, prepare_data, timeline_for
from rewts.data import store as store_mod
from rewts.data.features import STOCK_FEATURES
from rewts.errors import ConfigError, DataError

from .conftest import make_config, write_price_csv

EXPECTED_COLUMNS = [
    "open", "high", "low", "close", "adj_close", "volume", "return_1d", "return_5d",
    "sma_20", "sma_50", "sma_100", "sma_200", "sma_20_slope", "sma_50_slope", "sma_100_slope",
    "sma_200_slope", "rsi_14", "macd", "macd_signal", "macd_hist", "atr_14", "hv_20", "beta_60",
    "sp500_close", "sp500_slope", "vix_close", "vix_slope", "tnx_close", "tnx_slope",
]  # fmt: skip


def csv_config(tmp_path: Path, folder: Path, **data):
    return make_config(tmp_path, source="csv", csv_dir=str(folder), **data)


def check_frame_contract(ds: Dataset, warmup: int) -> None:
    for ticker, frame in ds.frames.items():
        assert list(frame.columns) == EXPECTED_COLUMNS, ticker
        assert frame.index.name == "date" and frame.index.tz is None
        assert frame.index.is_monotonic_increasing and frame.index.is_unique
        assert frame.dtypes.eq(np.float64).all()
        assert not frame.iloc[warmup:].isna().any().any()
    assert ds.feature_columns == tuple(EXPECTED_COLUMNS[6:])


def test_csv_dataset_shape_warmup_and_first_trading_day(tmp_path, csv_folder):
    cfg = csv_config(tmp_path, csv_folder)
    lines: list[str] = []
    ds = prepare_data(cfg, reporter=lines.append)
    assert ds.source == "csv" and lines[0].startswith("data: source csv")
    check_frame_contract(ds, cfg.data.warmup_days)
    for frame in ds.frames.values():
        # 60 warm-up rows from before start_date (the files start in 2014), then the range
        tl = timeline_for(frame, cfg)
        assert tl.periods[0].start == pd.Timestamp("2015-01-01")
        assert (frame.index < "2015-01-01").sum() == 60
        assert frame.index[-1] == pd.Timestamp("2016-12-30")
    assert ds.report.first_trading_day["AAA"].isoformat() == "2015-01-01"
    assert ds.path == (tmp_path / "processed").resolve()


def test_store_round_trip_and_reuse_without_recomputation(tmp_path, csv_folder, monkeypatch):
    cfg = csv_config(tmp_path, csv_folder)
    first = prepare_data(cfg)
    manifest = json.loads((tmp_path / "processed" / "manifest.json").read_text())
    assert manifest["content_hash"] == first.content_hash
    assert manifest["source"] == "csv" and manifest["symbols"]["tickers"] == ["AAA", "BBB"]
    assert manifest["feature_columns"] == list(first.feature_columns)
    for ticker, info in manifest["tickers"].items():
        frame = first.frames[ticker]
        assert info["rows"] == len(frame)
        assert info["first"] == frame.index[0].date().isoformat()
        assert info["last"] == frame.index[-1].date().isoformat()
    assert set(manifest["inputs"]["csv_files"]) == {
        "AAA.csv",
        "BBB.csv",
        "GSPC.csv",
        "VIX.csv",
        "TNX.csv",
    }

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although the inputs did not change")

    monkeypatch.setattr(prepare, "build_frames", boom)
    lines: list[str] = []
    again = prepare_data(cfg, reporter=lines.append)
    assert again.report.from_store and any("inputs unchanged" in line for line in lines)
    assert again.content_hash == first.content_hash
    assert again.feature_columns == first.feature_columns
    for ticker in first.frames:
        pd.testing.assert_frame_equal(again.frames[ticker], first.frames[ticker])
    with pytest.raises(AssertionError, match="recomputed"):
        prepare_data(cfg, refresh=True)


@pytest.mark.parametrize(
    "change",
    ["csv_content", "dates", "warmup", "tickers", "market_symbols"],
)
def test_changed_inputs_rebuild(tmp_path, csv_folder, change):
    cfg = csv_config(tmp_path, csv_folder)
    first = prepare_data(cfg)
    if change == "csv_content":
        path = csv_folder / "GSPC.csv"  # drop the last row of a market file
        path.write_text(path.read_text().rstrip("\n").rsplit("\n", 1)[0] + "\n")
    overrides = {
        "dates": {"start_date": "2015-02-01"},
        "warmup": {"warmup_days": 70},
        "tickers": {"tickers": ["AAA"]},
        "market_symbols": {"market_symbols": {"sp500": "GSPC"}},
    }.get(change, {})
    cfg2 = csv_config(tmp_path, csv_folder, **overrides)
    lines: list[str] = []
    second = prepare_data(cfg2, reporter=lines.append)
    assert not second.report.from_store
    assert any("inputs changed" in line for line in lines)
    assert second.content_hash != first.content_hash
    if change == "tickers":
        assert not (tmp_path / "processed" / "BBB.parquet").exists()


def test_synthetic_seed_changes_rebuild_and_same_seed_is_stable(tmp_path):
    cfg = make_config(tmp_path, source="synthetic", synthetic_seed=1)
    a = prepare_data(cfg)
    assert a.source == "synthetic"
    check_frame_contract(a, cfg.data.warmup_days)
    b = prepare_data(make_config(tmp_path / "other", source="synthetic", synthetic_seed=1))
    assert a.content_hash == b.content_hash  # stable across runs and folders
    loaded = prepare_data(make_config(tmp_path, source="synthetic", synthetic_seed=1))
    assert loaded.report.from_store
    for ticker, frame in a.frames.items():
        pd.testing.assert_frame_equal(loaded.frames[ticker], frame)  # also index dtype and freq
    c = prepare_data(make_config(tmp_path, source="synthetic", synthetic_seed=2))
    assert not c.report.from_store and c.content_hash != a.content_hash


def test_files_changed_on_disk_are_detected(tmp_path, csv_folder):
    cfg = csv_config(tmp_path, csv_folder)
    first = prepare_data(cfg)
    frame = first.frames["AAA"].copy()
    frame.iloc[-1, 3] *= 2
    frame.to_parquet(tmp_path / "processed" / "AAA.parquet")
    lines: list[str] = []
    again = prepare_data(cfg, reporter=lines.append)
    assert any("content hash mismatch" in line for line in lines)
    assert again.content_hash == first.content_hash  # rebuilt from the source


def test_no_look_ahead_end_to_end_through_the_csv_files(tmp_path, csv_folder):
    cfg = csv_config(tmp_path, csv_folder)
    before = prepare_data(cfg)
    cut = pd.Timestamp("2016-03-15")
    rng = np.random.default_rng(4)
    for path in csv_folder.glob("*.csv"):
        table = pd.read_csv(path, index_col="date", parse_dates=True)
        later = table.index > cut
        table.loc[later, ["open", "high", "low", "close", "adj_close"]] *= rng.uniform(
            0.5, 1.5, (int(later.sum()), 1)
        )
        write_price_csv(path, table)
    after = prepare_data(cfg)
    assert after.content_hash != before.content_hash
    for ticker in before.frames:
        pd.testing.assert_frame_equal(
            after.frames[ticker].loc[:cut], before.frames[ticker].loc[:cut]
        )


def test_missing_market_file_is_reported_and_its_columns_omitted(tmp_path, csv_folder):
    (csv_folder / "TNX.csv").unlink()
    (csv_folder / "GSPC.csv").unlink()
    lines: list[str] = []
    ds = prepare_data(csv_config(tmp_path, csv_folder), reporter=lines.append)
    assert set(ds.report.missing_market) == {"tnx", "sp500"}
    assert any("TNX.csv not found" in line for line in lines)
    for frame in ds.frames.values():
        assert not {"tnx_close", "tnx_slope", "sp500_close", "beta_60"} & set(frame.columns)
        assert {"vix_close", "vix_slope"} <= set(frame.columns)
    assert ds.feature_columns == (*STOCK_FEATURES, "vix_close", "vix_slope")


def test_too_little_history_says_what_to_change(tmp_path, csv_folder):
    cfg = csv_config(tmp_path, csv_folder, start_date="2016-12-01", warmup_days=800)
    with pytest.raises(DataError) as info:
        prepare_data(cfg)
    message = str(info.value)
    assert message.startswith("AAA: only ") and "warm-up needs at least 801" in message
    assert "data.start_date earlier" in message and "data.warmup_days" in message


def test_a_ticker_listed_late_starts_after_its_own_warmup(tmp_path, csv_folder):
    table = pd.read_csv(csv_folder / "BBB.csv", index_col="date", parse_dates=True)
    write_price_csv(csv_folder / "BBB.csv", table.loc["2015-06-01":])
    lines: list[str] = []
    ds = prepare_data(csv_config(tmp_path, csv_folder), reporter=lines.append)
    frame = ds.frames["BBB"]
    check_frame_contract(ds, 60)
    # features need 205 days (SMA 200 + 5-day slope): the first rows are cut so that the
    # row after the 60-day warm-up is the first complete one
    assert frame.index[60] == table.loc["2015-06-01":].index[204]
    assert any("BBB: history starts 2015-06-01" in line for line in lines)


def test_nan_after_the_warmup_names_ticker_and_date(tmp_path, csv_folder):
    table = pd.read_csv(csv_folder / "VIX.csv", index_col="date", parse_dates=True)
    hole = (table.index >= "2016-05-02") & (table.index <= "2016-05-20")
    write_price_csv(csv_folder / "VIX.csv", table.loc[~hole])
    with pytest.raises(DataError) as info:
        prepare_data(csv_config(tmp_path, csv_folder))
    message = str(info.value)
    # the last VIX row is 2016-04-29: carried up to 7 days (to 05-06), then missing
    assert message.startswith("AAA: vix_close, vix_slope missing on 2016-05-09")
    assert (
        "after the 60-day warm-up (VIX covers 2014-01-01..2016-12-30, and no vix value" in message
    )
    assert "remove vix from data.market_symbols" in message


def test_gaps_are_reported_in_the_result_and_not_filled(tmp_path, csv_folder):
    table = pd.read_csv(csv_folder / "BBB.csv", index_col="date", parse_dates=True)
    write_price_csv(csv_folder / "BBB.csv", table.drop(table.loc["2016-02-08":"2016-02-10"].index))
    lines: list[str] = []
    ds = prepare_data(csv_config(tmp_path, csv_folder), reporter=lines.append)
    (gap,) = ds.report.gaps
    assert (gap.ticker, gap.kind, gap.days, gap.start.isoformat()) == (
        "BBB",
        "missing",
        3,
        "2016-02-08",
    )
    assert pd.Timestamp("2016-02-09") not in ds.frames["BBB"].index
    assert any("gaps (not filled): BBB" in line for line in lines)
    manifest = json.loads((tmp_path / "processed" / "manifest.json").read_text())
    assert manifest["gaps"][0]["ticker"] == "BBB" and manifest["tickers"]["BBB"]["gaps"] == 1


def test_auto_source_falls_back_to_synthetic_quickly_and_says_why(tmp_path, monkeypatch):
    """The real probe, aimed at a loopback server that never speaks TLS (so the test does not
    depend on whether this machine is online)."""
    from rewts.data.sources import yahoo

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        monkeypatch.setattr(
            prepare,
            "yahoo_reachable",
            lambda timeout: yahoo.yahoo_reachable(timeout, host="127.0.0.1", port=port),
        )
        cfg = make_config(tmp_path, source="auto")
        lines: list[str] = []
        started = time.monotonic()
        ds = prepare_data(cfg, reporter=lines.append)
    assert time.monotonic() - started < 5.0  # the probe waits at most 1.5 s
    assert ds.source == "synthetic"
    assert "data.source = auto, no data.csv_dir, Yahoo Finance not reachable" in lines[0]


def test_auto_prefers_the_csv_folder_then_yahoo(tmp_path, csv_folder):
    cfg = make_config(tmp_path, source="auto", csv_dir=str(csv_folder))
    assert prepare.resolve_source(cfg.data)[0] == "csv"
    cfg = make_config(tmp_path, source="auto")
    assert prepare.resolve_source(cfg.data, probe=lambda t: (True, "ok"))[0] == "yahoo"
    assert prepare.resolve_source(cfg.data, probe=lambda t: (False, "down"))[0] == "synthetic"


def test_the_probe_needs_a_real_tls_answer_and_is_bounded_in_time():
    """A server that accepts the connection but never answers TLS is not "online"."""
    from rewts.data.sources.yahoo import yahoo_reachable

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        started = time.monotonic()
        ok, why = yahoo_reachable(0.3, host="127.0.0.1", port=port)
        assert not ok and "127.0.0.1" in why
        assert time.monotonic() - started < 1.5
    ok, why = yahoo_reachable(0.3, host="127.0.0.1", port=port)  # nothing listening now
    assert not ok


def test_csv_source_without_a_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--data-dir"):
        prepare_data(make_config(tmp_path, source="csv"))


def test_yahoo_source_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "yahoo_reachable", lambda timeout: (False, "no network"))
    with pytest.raises(DataError, match=r"Yahoo Finance is not reachable \(no network\); use"):
        prepare_data(make_config(tmp_path, source="yahoo"))


def test_content_hash_depends_on_values_dates_and_columns():
    idx = pd.DatetimeIndex(pd.bdate_range("2020-01-01", periods=3), name="date")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=idx)
    base = store_mod.content_hash({"X": frame})
    assert base == store_mod.content_hash({"X": frame.copy()})
    assert base != store_mod.content_hash({"X": frame * 1.0000001})
    assert base != store_mod.content_hash({"X": frame.rename(columns={"a": "b"})})
    assert base != store_mod.content_hash({"X": frame.set_axis(idx + pd.Timedelta(days=1))})
    assert base != store_mod.content_hash({"Y": frame})


def test_data_ending_before_end_date_is_reported(tmp_path, csv_folder):
    table = pd.read_csv(csv_folder / "BBB.csv", index_col="date", parse_dates=True)
    write_price_csv(csv_folder / "BBB.csv", table.loc[:"2016-10-31"])
    lines: list[str] = []
    ds = prepare_data(csv_config(tmp_path, csv_folder), reporter=lines.append)
    assert ds.frames["BBB"].index[-1] == pd.Timestamp("2016-10-31")
    assert any("BBB: data ends 2016-10-31, before data.end_date 2016-12-31" in x for x in lines)


def test_a_malformed_manifest_is_rebuilt_not_a_crash(tmp_path, csv_folder):
    cfg = csv_config(tmp_path, csv_folder)
    first = prepare_data(cfg)
    path = tmp_path / "processed" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["feature_columns"]
    path.write_text(json.dumps(manifest))
    lines: list[str] = []
    again = prepare_data(cfg, reporter=lines.append)
    assert any("manifest" in line and "malformed" in line for line in lines)
    assert again.content_hash == first.content_hash and not again.report.from_store


def test_an_unwritable_processed_dir_is_a_data_error(tmp_path, csv_folder):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = csv_config(tmp_path, csv_folder, processed_dir=str(blocker / "processed"))
    with pytest.raises(
        DataError, match=r"cannot write the processed dataset to .*data\.processed_dir"
    ):
        prepare_data(cfg)


def test_writing_the_store_removes_temporaries_of_killed_writers_only(tmp_path):
    import os
    import subprocess
    import sys

    from rewts.fileio import temporary_path

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    folder = tmp_path / "processed"
    folder.mkdir()
    # named as rewts.fileio.atomic_write names its temporaries
    orphan = temporary_path(folder / "AAA.parquet", int(dead.stdout))  # its writer has exited
    alive = temporary_path(folder / "BBB.parquet", os.getppid())  # a writer still running
    orphan.write_bytes(b"half a file")
    alive.write_bytes(b"being written")
    frame = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.bdate_range("2020-01-01", periods=2))
    store_mod.write_store(folder, {"AAA": frame}, {"tickers": {"AAA": {}}})
    assert not orphan.exists() and alive.exists()
    assert (folder / "AAA.parquet").exists()


def test_a_disk_full_store_write_leaves_no_unlisted_files(tmp_path, monkeypatch):
    """ENOSPC on the second ticker: the first ticker's new file is removed again (no manifest
    vouches for it, and it would only hold the space a smaller rerun needs)."""
    import errno

    import pandas as pd

    from rewts.data import store

    frames = {
        t: pd.DataFrame({"close": [1.0, 2.0]}, index=pd.date_range("2020-01-01", periods=2))
        for t in ("AAA", "BBB")
    }
    real = store._atomic_write_parquet

    def full_disk(path, frame):
        if path.name == "BBB.parquet":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, frame)

    monkeypatch.setattr(store, "_atomic_write_parquet", full_disk)
    with pytest.raises(OSError):
        store.write_store(tmp_path, frames, {"tickers": {"AAA": {}, "BBB": {}}})
    assert sorted(p.name for p in tmp_path.iterdir()) == []
