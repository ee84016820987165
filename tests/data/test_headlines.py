"""Headlines from CSV, JSON, JSON lines and Parquet, with errors naming file and row."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rewts.data import load_headlines
from rewts.errors import DataError

CSV = """date,ticker,headline,source,source_ticker,published_at
2020-06-10,aapl,Apple does a thing,benzinga,AAPL,2020-06-10 11:33:00-04:00
2017-02-08,META,Facebook doubles leave,reuters,FB,
2017-02-08,AAPL,Federal Circuit punts,reuters,AAPL,
"""


def test_csv_is_loaded_sorted_and_normalized(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(CSV)
    table = load_headlines(path)
    assert list(table.columns) == ["date", "ticker", "headline", "source", "published_at"]
    assert table["ticker"].tolist() == ["AAPL", "META", "AAPL"]
    assert table["date"].tolist() == [pd.Timestamp("2017-02-08")] * 2 + [pd.Timestamp("2020-06-10")]
    assert table["published_at"].isna().tolist() == [True, True, False]
    assert table["published_at"].iloc[2] == pd.Timestamp("2020-06-10 15:33", tz="UTC")


def test_json_jsonl_and_parquet_give_the_same_rows(tmp_path):
    records = [
        {"date": "2019-01-02", "ticker": "MSFT", "headline": "a", "source": "reuters"},
        {"date": "2019-01-03", "ticker": "TSLA", "headline": "b", "source": "benzinga"},
    ]
    (tmp_path / "h.json").write_text(json.dumps(records))
    (tmp_path / "h.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    pd.DataFrame(records).to_parquet(tmp_path / "h.parquet")
    tables = [load_headlines(tmp_path / f"h.{ext}") for ext in ("json", "jsonl", "parquet")]
    for table in tables:
        pd.testing.assert_frame_equal(table, tables[0])
    assert "published_at" not in tables[0].columns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CSV.replace("2017-02-08,META", "08/02/2017,META"), "h.csv, line 3: unparsable date"),
        (CSV.replace("Federal Circuit punts", " "), "h.csv, line 4: empty headline"),
        (CSV.replace(",aapl,", ",,"), "h.csv, line 2: empty ticker"),
        (CSV.replace("11:33:00-04:00", "at noon"), "h.csv, line 2: unparsable published_at"),
        (CSV.replace("headline,", "title,", 1), "h.csv: missing column(s) headline"),
    ],
)
def test_bad_csv_rows_are_named(tmp_path, text, expected):
    path = tmp_path / "h.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_headlines(path)


def test_bad_json_record_is_named(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(
        json.dumps(
            [
                {"date": "2019-01-02", "ticker": "MSFT", "headline": "a", "source": "x"},
                {"date": "yesterday", "ticker": "MSFT", "headline": "b", "source": "x"},
            ]
        )
    )
    with pytest.raises(DataError, match=r"h.json, record 2: unparsable date"):
        load_headlines(path)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="headlines file not found"):
        load_headlines(tmp_path / "nope.csv")
    (tmp_path / "h.txt").write_text("x")
    with pytest.raises(DataError, match=r"unsupported headlines file type '\.txt'"):
        load_headlines(tmp_path / "h.txt")


def test_the_shared_headlines_load(shared_data):
    table = load_headlines(shared_data / "headlines.csv")
    assert len(table) == 9490
    assert set(table["ticker"]) == {"AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"}
    assert table["date"].is_monotonic_increasing


def test_bad_json_line_is_named(tmp_path):
    path = tmp_path / "h.jsonl"
    good = '{"date": "2019-01-02", "ticker": "MSFT", "headline": "a", "source": "x"}'
    path.write_text(f"{good}\n{{broken\n")
    with pytest.raises(DataError, match=r"h.jsonl, line 2: not a JSON object"):
        load_headlines(path)
