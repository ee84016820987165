"""CSV folder: both header styles, and every bad input names the file and the line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rewts.data.gaps import find_gaps
from rewts.data.sources.csv_folder import plan_csv_folder, read_price_csv
from rewts.errors import DataError

GOOD = """date,open,high,low,close,adj_close,volume
2020-01-02,10,11,9,10.5,10.4,1000
2020-01-03,10.5,11.5,10,11,10.9,1200
2020-01-06,11,12,10.5,11.5,11.4,900
2020-01-07,11.5,12,11,11.8,11.7,950
"""


def write(tmp_path: Path, text: str, name: str = "AAA.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_reads_the_shared_format(tmp_path):
    table, warnings = read_price_csv(write(tmp_path, GOOD))
    assert list(table.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert table.index.name == "date" and table.index.is_monotonic_increasing
    assert table["adj_close"].iloc[1] == 10.9 and table["volume"].iloc[2] == 900
    assert table.dtypes.unique().tolist() == [np.dtype("float64")]
    assert warnings == []


def test_reads_the_yahoo_format(tmp_path):
    yahoo = GOOD.replace(
        "date,open,high,low,close,adj_close,volume", "Date,Open,High,Low,Close,Adj Close,Volume"
    )
    table, _ = read_price_csv(write(tmp_path, yahoo))
    shared, _ = read_price_csv(write(tmp_path, GOOD, "BBB.csv"))
    assert table.equals(shared)


def test_missing_adj_close_falls_back_to_close_with_a_warning(tmp_path):
    text = "\n".join(
        ",".join(p for i, p in enumerate(line.split(",")) if i != 5) for line in GOOD.splitlines()
    )
    table, warnings = read_price_csv(write(tmp_path, text + "\n"))
    assert (table["adj_close"] == table["close"]).all()
    assert "no adj_close column" in warnings[0]


def error_of(path: Path) -> str:
    with pytest.raises(DataError) as info:
        read_price_csv(path)
    return str(info.value)


def test_missing_column_names_file_line_and_column(tmp_path):
    text = GOOD.replace(
        "date,open,high,low,close,adj_close,volume",
        "date,open,high,low,close_price,adj_close,volume",
    )
    message = error_of(write(tmp_path, text))
    assert "AAA.csv, line 1: missing column close " in message
    assert "header has: date, open, high, low, close_price" in message


@pytest.mark.parametrize(
    ("line", "row", "expected"),
    [
        (3, "2020-13-03,10.5,11.5,10,11,10.9,1200", "line 3: unparsable date '2020-13-03'"),
        (4, "06/01/2020,11,12,10.5,11.5,11.4,900", "line 4: unparsable date '06/01/2020'"),
        (2, ",10,11,9,10.5,10.4,1000", "line 2: date is empty"),
        (5, "2020-01-07,11.5,12,11,0,11.7,950", "line 5: close is '0': prices must be positive"),
        (3, "2020-01-03,-10.5,11.5,10,11,10.9,1200", "line 3: open is '-10.5': prices must be"),
        (4, "2020-01-06,11,12,10.5,,11.4,900", "line 4: close is empty: prices must be"),
        (4, "2020-01-06,11,12,NaN,11.5,11.4,900", "line 4: low is 'NaN': prices must be"),
        (2, "2020-01-02,10,11,9,10.5,null,1000", "line 2: adj_close is 'null'"),
        (5, "2020-01-07,11.5,12,11,11.8,11.7,-5", "line 5: volume is '-5': volume must be"),
        (4, "2020-01-03,11,12,10.5,11.5,11.4,900", "lines 3 and 4: duplicate date 2020-01-03"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, line, row, expected):
    path = write(tmp_path, replace_line(GOOD, line, row))
    message = error_of(path)
    assert str(path) in message
    assert expected in message


def test_the_first_bad_line_is_named_and_the_rest_counted(tmp_path):
    text = replace_line(
        replace_line(GOOD, 5, "2020-01-07,1,1,1,-1,1,1"), 3, "2020-01-03,1,1,1,0,1,1"
    )
    message = error_of(write(tmp_path, text))
    assert "line 3: close is '0'" in message and "(and 1 more row)" in message


def test_a_blank_line_inside_the_data_is_an_error_with_its_line(tmp_path):
    lines = GOOD.splitlines()
    text = "\n".join([*lines[:3], "", *lines[3:]]) + "\n\n\n"  # trailing blanks are fine
    assert "line 4: date is empty" in error_of(write(tmp_path, text))


def test_empty_and_header_only_files(tmp_path):
    assert "line 1: the file is empty" in error_of(write(tmp_path, ""))
    assert "no data rows" in error_of(write(tmp_path, GOOD.splitlines()[0] + "\n"))


def test_unsorted_rows_are_sorted_and_reported(tmp_path):
    lines = GOOD.splitlines()
    table, warnings = read_price_csv(write(tmp_path, "\n".join([lines[0], *lines[:0:-1]])))
    assert table.index.is_monotonic_increasing
    assert any("sorted ascending" in w for w in warnings)


def test_inconsistent_ohlc_is_reported_not_changed(tmp_path):
    table, warnings = read_price_csv(
        write(tmp_path, replace_line(GOOD, 3, "2020-01-03,10.5,11.5,10.8,10.6,10.5,1200"))
    )
    assert table["low"].iloc[1] == 10.8
    assert any("first at line 3" in w for w in warnings)


def test_missing_ticker_file_lists_what_exists(tmp_path):
    write(tmp_path, GOOD, "AAA.csv")
    write(tmp_path, GOOD, "GSPC.csv")
    with pytest.raises(DataError) as info:
        plan_csv_folder(tmp_path, ["AAA", "ZZZ"], {"sp500": "GSPC"})
    message = str(info.value)
    assert str(tmp_path / "ZZZ.csv") in message
    assert "the folder has: AAA.csv, GSPC.csv" in message


def test_missing_market_file_is_reported_not_an_error(tmp_path):
    write(tmp_path, GOOD, "AAA.csv")
    write(tmp_path, GOOD, "GSPC.csv")
    plan = plan_csv_folder(tmp_path, ["AAA"], {"sp500": "^GSPC", "vix": "VIX"})
    assert set(plan.market_files) == {"sp500"}  # ^GSPC lives in GSPC.csv
    assert "VIX.csv not found" in plan.missing_market["vix"]


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=re.escape("folder not found")):
        plan_csv_folder(tmp_path / "nope", ["AAA"], {})


def test_gaps_are_found_against_the_other_tickers_and_long_breaks():
    days = __import__("pandas").bdate_range("2020-01-01", "2020-03-31")
    full = days
    holey = days.delete([10, 11, 12, 30])  # 3 missing days, then 1
    alone = days[(days < "2020-02-03") | (days > "2020-02-14")]
    gaps = find_gaps({"AAA": full, "BBB": holey})
    assert [(g.ticker, g.start.isoformat(), g.days, g.kind) for g in gaps] == [
        ("BBB", days[10].date().isoformat(), 3, "missing"),
        ("BBB", days[30].date().isoformat(), 1, "missing"),
    ]
    # with one ticker only, the two-week hole is still found (a break of 10 weekdays)
    (gap,) = find_gaps({"CCC": alone})
    assert (gap.kind, gap.days, gap.start.isoformat(), gap.end.isoformat()) == (
        "break",
        10,
        "2020-02-03",
        "2020-02-14",
    )
    # a later listing is not a gap
    assert find_gaps({"AAA": full, "NEW": days[20:]}) == []


def test_a_single_ticker_is_checked_against_the_market_calendar():
    import pandas as pd

    days = pd.bdate_range("2020-01-01", "2020-03-31")
    (gap,) = find_gaps({"AAA": days.delete([5])}, market=days)
    assert (gap.ticker, gap.kind, gap.days, gap.start) == ("AAA", "missing", 1, days[5].date())


def test_a_price_spike_like_1e308_is_kept_but_announced(tmp_path, shared_data):
    """A typo that is still a positive number passes the checks; it must not pass silently."""
    import pandas as pd

    from rewts.data.sources.csv_folder import read_price_csv

    df = pd.read_csv(shared_data / "AAPL.csv")
    df.loc[300, ["high", "close"]] = 1e308
    df.to_csv(tmp_path / "AAPL.csv", index=False)
    table, warnings = read_price_csv(tmp_path / "AAPL.csv")
    assert table["close"].max() == 1e308
    assert any("line 302" in w and "1e+308" in w for w in warnings), warnings
    assert read_price_csv(shared_data / "AAPL.csv")[1] == []  # the real data: no false alarm
