"""Dated news headlines (CSV, JSON / JSON lines, or Parquet) for the news analyst.

Columns: ``date, ticker, headline, source`` and, when the file has it, ``published_at``. Dates
are the calendar dates the rows carry (see ../shared/data/README.md for what they mean per
source); ``published_at`` is returned in UTC. Which headlines a decision may see (``date < t``)
is the consumer's rule; this module only loads and checks. Every error names the file and the
row (a CSV line number, a JSON record or a Parquet row).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from rewts.errors import DataError
from rewts.fileio import read_regular

REQUIRED = ("date", "ticker", "headline", "source")
_ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[ T][0-9:.+\-Z]*)?"


def _read(path: Path) -> tuple[pd.DataFrame, str, int]:
    """The raw table, the word for its rows, and the number of the first data row."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq"):
        raise DataError(
            f"{path}: unsupported headlines file type {suffix or '(none)'!r}; use .csv, .json, "
            ".jsonl or .parquet"
        )
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: headlines file not found (check data.news_path)")
    data = read_regular(path, what="data.news_path = ")
    try:
        if suffix == ".csv":
            table = pd.read_csv(
                io.BytesIO(data), dtype=str, keep_default_na=False, skip_blank_lines=False
            )
            return table, "line", 2
        if suffix in (".jsonl", ".ndjson"):
            return _read_json_lines(path, data.decode("utf-8")), "line", 1
        if suffix == ".json":
            records = json.loads(data.decode("utf-8"))
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ValueError("expected a list of objects, one per headline")
            return pd.DataFrame.from_records(records), "record", 1
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(io.BytesIO(data)), "row", 1
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty (expected a header row)") from exc
    except (ValueError, OSError, RecursionError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix.lstrip('.').upper()}: {exc}") from exc
    raise DataError(
        f"{path}: unsupported headlines file type {suffix or '(none)'!r}; use .csv, .json, "
        ".jsonl or .parquet"
    )


def _read_json_lines(path: Path, text: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(text.rstrip().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}, line {number}: not a JSON object: {exc}") from exc
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}: expected one JSON object per line")
        records.append(record)
    return pd.DataFrame.from_records(records)


def _text(column: pd.Series) -> pd.Series:
    return column.astype("string").fillna("").str.strip()


def load_headlines(path: Path | str) -> pd.DataFrame:
    """Load and check a headlines file; rows sorted by ``date, ticker`` (stable)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: headlines file not found (check data.news_path)")
    table, unit, first = _read(path)
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(table.columns)}; "
            "expected date, ticker, headline, source and optionally published_at)"
        )
    numbers = np.arange(len(table)) + first

    def fail(mask: np.ndarray, what: str, column: pd.Series) -> None:
        hits = np.flatnonzero(mask)
        if hits.size:
            more = f" (and {hits.size - 1} more)" if hits.size > 1 else ""
            value = column.iloc[hits[0]]
            raise DataError(f"{path}, {unit} {numbers[hits[0]]}: {what} {value!r}{more}")

    if pd.api.types.is_datetime64_any_dtype(table["date"]):
        dates = pd.DatetimeIndex(table["date"])
        dates = dates.tz_localize(None) if dates.tz is not None else dates
        fail(dates.isna(), "missing date", table["date"])
    else:
        raw = _text(table["date"])
        parsed = pd.to_datetime(raw.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        bad = ~raw.str.fullmatch(_ISO_DATE).fillna(False).to_numpy(bool) | parsed.isna().to_numpy()
        fail(bad, "unparsable date (expected YYYY-MM-DD):", table["date"])
        dates = pd.DatetimeIndex(parsed)
    ticker = _text(table["ticker"]).str.upper()
    fail((ticker == "").to_numpy(bool), "empty ticker:", table["ticker"])
    headline = _text(table["headline"])
    fail((headline == "").to_numpy(bool), "empty headline:", table["headline"])

    out = pd.DataFrame(
        {
            "date": dates.normalize().as_unit("ns"),
            "ticker": ticker.astype(object),
            "headline": headline.astype(object),
            "source": _text(table["source"]).astype(object),
        }
    )
    if "published_at" in table.columns:
        raw = _text(table["published_at"])
        stamp = pd.to_datetime(raw.where(raw != ""), utc=True, errors="coerce", format="ISO8601")
        fail(((raw != "") & stamp.isna()).to_numpy(bool), "unparsable published_at:", raw)
        out["published_at"] = stamp.dt.as_unit("ns").to_numpy()
    return out.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)
