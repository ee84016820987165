"""A folder of ``SYMBOL.csv`` files: the format of ../shared/data or Yahoo's download format.

Accepted headers (case and spacing do not matter):

* ``date,open,high,low,close,adj_close,volume`` (../shared/data)
* ``Date,Open,High,Low,Close,Adj Close,Volume`` (Yahoo Finance)

``adj_close`` may be absent (then ``close`` is used, with a warning); every other column is
required. Every check is vectorized over the whole file, and every error names the file and
the 1-based line number in it (the header is line 1), so the user can open the file and fix it.
Rows are never dropped or filled here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rewts.data.sources import PRICE_COLUMNS, RawPrices
from rewts.errors import DataError
from rewts.fileio import read_regular, sha256_regular

#: a price this many times above or below the file's median close gets a warning
SPIKE_FACTOR = 1000.0
_REQUIRED = ("date", "open", "high", "low", "close", "volume")
# ISO date, optionally followed by a time and offset (yfinance's to_csv writes those)
_ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[ T][0-9:.+\-Z]*)?"


def csv_file_name(symbol: str) -> str:
    """``^GSPC`` and ``GSPC`` both live in ``GSPC.csv`` (file names drop Yahoo's caret)."""
    return f"{symbol.lstrip('^')}.csv"


def file_sha256(path: Path) -> str:
    """Hash of a data file; a FIFO, device, folder or oversized file is a :class:`DataError`."""
    return sha256_regular(path)


@dataclass
class CsvPlan:
    """Which file holds which symbol; built before loading so the store can hash the files."""

    folder: Path
    ticker_files: dict[str, Path]
    market_files: dict[str, Path]
    missing_market: dict[str, str] = field(default_factory=dict)

    def file_hashes(self) -> dict[str, str]:
        files = {**self.ticker_files, **self.market_files}
        return {path.name: file_sha256(path) for path in sorted(set(files.values()))}


def _find(folder: Path, name: str, listing: Sequence[Path]) -> Path | None:
    exact = folder / name
    if exact.is_file():
        return exact
    matches = [p for p in listing if p.name.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def plan_csv_folder(
    folder: Path, tickers: Sequence[str], market_symbols: Mapping[str, str]
) -> CsvPlan:
    """Locate every symbol's file: a missing ticker is an error, a missing market symbol is
    reported (its columns are omitted, not faked)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"data.csv_dir = {str(folder)!r}: folder not found (pass --data-dir DIR with one "
            "SYMBOL.csv per symbol)"
        )
    listing = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
    existing = ", ".join(p.name for p in listing) or "no .csv files"
    ticker_files: dict[str, Path] = {}
    for ticker in tickers:
        path = _find(folder, csv_file_name(ticker), listing)
        if path is None:
            raise DataError(
                f"{folder / csv_file_name(ticker)}: file not found for ticker {ticker} "
                f"(the folder has: {existing}); add the file or remove {ticker} from tickers"
            )
        ticker_files[ticker] = path
    market_files: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for prefix, symbol in market_symbols.items():
        path = _find(folder, csv_file_name(symbol), listing)
        if path is None:
            missing[prefix] = (
                f"{csv_file_name(symbol)} not found in {folder}: the {prefix}_* columns are "
                f"omitted (add the file or remove {prefix} from data.market_symbols)"
            )
        else:
            market_files[prefix] = path
    return CsvPlan(folder, ticker_files, market_files, missing)


def _normalize_header(columns: Sequence[str], path: Path) -> list[str]:
    names = []
    for col in columns:
        name = re.sub(r"[\s_]+", "_", str(col).strip().lower())
        names.append("adj_close" if name.replace("_", "") == "adjclose" else name)
    seen = [n for n in names if names.count(n) > 1]
    if seen:
        raise DataError(f"{path}, line 1: column {seen[0]!r} appears twice in the header")
    return names


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _more(mask: np.ndarray) -> str:
    extra = int(mask.sum()) - 1
    return f" (and {extra} more row{'s' if extra != 1 else ''})" if extra > 0 else ""


def _describe(raw: str) -> str:
    return "empty" if raw.strip() == "" else repr(raw)


def read_price_csv(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read and check one price file; returns the OHLCV table and any warnings.

    Errors (all :class:`DataError`, naming the file and line): unreadable file, missing
    column, unparsable date, a price that is empty/not a number/not positive, a negative or
    missing volume, a duplicate date.
    """
    path = Path(path)
    data = read_regular(path)  # never a FIFO or /dev/zero: those would hang
    try:
        raw = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8",
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}, line 1: the file is empty (expected a header row)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from exc

    raw.columns = _normalize_header(list(raw.columns), path)
    missing = [c for c in _REQUIRED if c not in raw.columns]
    if missing:
        raise DataError(
            f"{path}, line 1: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (header has: {', '.join(raw.columns)}; expected "
            "date,open,high,low,close,adj_close,volume or Yahoo's Date,Open,...,Adj Close,Volume)"
        )
    warnings: list[str] = []
    if "adj_close" not in raw.columns:
        raw["adj_close"] = raw["close"]
        warnings.append(f"{path.name}: no adj_close column; using close (no dividend adjustment)")

    # trailing blank lines are harmless; blank lines inside the data are errors below
    filled = (raw != "").any(axis=1).to_numpy()
    last = np.flatnonzero(filled)
    raw = raw.iloc[: (last[-1] + 1) if last.size else 0]
    if raw.empty:
        raise DataError(f"{path}: no data rows after the header")
    lines = np.arange(len(raw)) + 2  # the header is line 1

    dates_raw = raw["date"].str.strip()
    iso = dates_raw.str.fullmatch(_ISO_DATE).to_numpy(dtype=bool)
    dates = pd.to_datetime(dates_raw.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    bad = ~iso | dates.isna().to_numpy()
    row = _first(bad)
    if row is not None:
        value = raw["date"].iloc[row]
        what = "date is empty" if value.strip() == "" else f"unparsable date {value!r}"
        raise DataError(f"{path}, line {lines[row]}: {what} (expected YYYY-MM-DD){_more(bad)}")

    table = pd.DataFrame(index=pd.DatetimeIndex(dates, name="date").as_unit("ns"))
    first_bad: tuple[int, str] | None = None
    for col in PRICE_COLUMNS:
        values = pd.to_numeric(raw[col].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        if col == "volume":
            bad = ~(values >= 0) | ~np.isfinite(values)
            rule = "volume must be a number >= 0"
        else:
            bad = ~(values > 0) | ~np.isfinite(values)
            rule = "prices must be positive numbers"
        row = _first(bad)
        if row is not None and (first_bad is None or row < first_bad[0]):
            first_bad = (
                row,
                f"{col} is {_describe(raw[col].iloc[row])}: {rule}{_more(bad)}",
            )
        table[col] = values
    if first_bad is not None:
        raise DataError(f"{path}, line {lines[first_bad[0]]}: {first_bad[1]}")

    dup = table.index.duplicated(keep=False)
    row = _first(dup)
    if row is not None:
        same = lines[table.index == table.index[row]]
        where = ", ".join(str(n) for n in same[:-1]) + f" and {same[-1]}"
        raise DataError(
            f"{path}, lines {where}: duplicate date {table.index[row].date()} "
            "(keep one row per trading day)"
        )
    if not table.index.is_monotonic_increasing:
        warnings.append(f"{path.name}: rows were not in date order; sorted ascending")
        table = table.sort_index(kind="stable")
        lines = lines[np.argsort(dates.to_numpy(), kind="stable")]

    # a typo like 1e308 is a valid positive number: kept as given, but never without a word
    prices = table[["open", "high", "low", "close"]].to_numpy()
    median = float(np.median(prices[:, 3]))
    spikes = ((prices > SPIKE_FACTOR * median) | (prices < median / SPIKE_FACTOR)).any(axis=1)
    row = _first(spikes)
    if row is not None:
        warnings.append(
            f"{path.name}: {int(spikes.sum())} row(s) with a price over {SPIKE_FACTOR:g}x "
            f"away from the median close ({median:.4g}), first at line {lines[row]} "
            f"(close {prices[row, 3]:.6g}): a typo? (kept as given)"
        )

    low_bad = table["low"].to_numpy() > np.minimum(table["open"], table["close"]).to_numpy()
    high_bad = table["high"].to_numpy() < np.maximum(table["open"], table["close"]).to_numpy()
    inconsistent = low_bad | high_bad
    row = _first(inconsistent)
    if row is not None:
        warnings.append(
            f"{path.name}: {int(inconsistent.sum())} rows with low > min(open, close) or "
            f"high < max(open, close), first at line {lines[row]} (kept as given)"
        )
    return table, warnings


def load_csv_folder(plan: CsvPlan) -> RawPrices:
    """Read every planned file (a missing market file was already reported by the plan)."""
    warnings: list[str] = []
    tickers: dict[str, pd.DataFrame] = {}
    for ticker, path in plan.ticker_files.items():
        tickers[ticker], notes = read_price_csv(path)
        warnings.extend(notes)
    market: dict[str, pd.DataFrame] = {}
    for prefix, path in plan.market_files.items():
        market[prefix], notes = read_price_csv(path)
        warnings.extend(notes)
    return RawPrices("csv", tickers, market, dict(plan.missing_market), warnings)
