"""Strategies made elsewhere (another LLM run, a notebook, a colleague's batch job), read from a
CSV, Parquet or JSON file into the per-ticker tables the generator writes.

Why a stage of its own and not a provider: an imported strategy has no prompt, no request and
no cache entry; what it shares with a generated one is the table. So the rows come out with the
generator's columns (:data:`rewts.llm.tables.COLUMNS`), ``provider`` ``import``, the file's
SHA-256 as ``cache_key`` (its provenance) and ``status`` ``imported``; training, the backtest,
``rewts run`` and ``rewts status`` then treat them like any strategies.

Each row names a ticker, a day (the period's start or any day inside it) and either ``tau`` or
``direction`` + ``confidence`` (then ``strength`` and ``tau`` follow the paper's formula,
:func:`rewts.llm.schemas.strength`). The whole file is checked before anything is written: the
first bad row stops the import with one line naming the file and the row. The format is
described in docs/strategy-import.md.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rewts.config import Config
from rewts.errors import ConfigError, DataError
from rewts.fileio import atomic_write, read_regular, sha256_regular
from rewts.llm.generate import (
    GenerationResult,
    GenerationSummary,
    strategy_table,
    write_strategies,
)
from rewts.llm.schemas import strength, tau
from rewts.llm.tables import STRATEGY_COLUMNS

#: the provider name imported rows carry
PROVIDER = "import"
#: file types the importer reads
SUFFIXES = (".csv", ".parquet", ".pq", ".json")
#: the columns that name the period, in the order they are looked for
DATE_COLUMNS = ("date", "start")
_DIRECTIONS = {"LONG": 1, "SHORT": 0, "1": 1, "0": 0}
#: YYYY-MM-DD, optionally with a time of day (ignored), as text in CSV and JSON files
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T][0-9:.+\-Z]*)?")


def _read(path: Path) -> tuple[pd.DataFrame, str, int]:
    """The raw table, the word for its rows and the number of the first data row."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .parquet or .json"
        )
    data = read_regular(path)
    try:
        if suffix == ".csv":
            table = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
            return table, "line", 2
        if suffix == ".json":
            records = json.loads(data.decode("utf-8"))
            if isinstance(records, dict) and isinstance(records.get("strategies"), list):
                records = records["strategies"]
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ValueError("expected a list of objects, one per strategy")
            return pd.DataFrame.from_records(records), "record", 1
        return pd.read_parquet(io.BytesIO(data)), "row", 1
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a header row)") from None
    except (ValueError, OSError, RecursionError, pd.errors.ParserError) as exc:
        kind = suffix.lstrip(".").upper()
        raise DataError(f"{path}: cannot be read as {kind}: {exc}") from None


def _missing(value: Any) -> bool:
    """An empty cell: None, NaN, NA or a blank string (CSV cells are strings)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _direction(value: Any) -> int | None:
    """LONG/SHORT (any case) or 1/0; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return int(value) if value in (0, 1) else None
    return _DIRECTIONS.get(str(value).strip().upper())


def _day(value: Any) -> pd.Timestamp | None:
    """A calendar day from a date, a timestamp or an ISO text (time of day ignored)."""
    if isinstance(value, int | float | bool | np.integer | np.floating):
        return None  # a bare number is not a date (pandas would read it as nanoseconds)
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value.strip()):
        return None  # "March 1st" would parse, as year 1
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def _key_features(value: Any) -> str:
    """Stored as JSON text, like the generator's column."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list) and _missing(value):
        return "[]"
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return json.dumps([value])
        return value if isinstance(parsed, list) else json.dumps([parsed])
    return json.dumps(value if isinstance(value, list) else [value], default=str)


@dataclass(frozen=True)
class _Calendar:
    """One ticker's strategy periods, for mapping a day to its period."""

    starts: pd.DatetimeIndex
    last_day: pd.Timestamp
    periods: Sequence[Any]

    def period_of(self, day: pd.Timestamp) -> int | None:
        """The period whose span ``[start, next start)`` holds ``day`` (None outside the data)."""
        if day < self.starts[0] or day > self.last_day:
            return None
        return int(self.starts.searchsorted(day, side="right")) - 1


def _calendars(cfg: Config, dataset: Any) -> dict[str, _Calendar]:
    from rewts.data import timeline_for

    out = {}
    for ticker in cfg.tickers:
        frame = dataset.frames.get(ticker)
        if frame is None:
            raise DataError(f"no processed data for {ticker}; run `rewts data` first")
        timeline = timeline_for(frame, cfg)
        starts = pd.DatetimeIndex([p.start for p in timeline.periods])
        out[ticker] = _Calendar(starts, timeline.dates[-1], timeline.periods)
    return out


def _values(raw: pd.DataFrame, row: int, column: str) -> Any:
    return raw[column].iloc[row] if column in raw.columns else None


def _row_signal(
    raw: pd.DataFrame, i: int, bad: Callable[[str], DataError]
) -> tuple[int | None, float | None, float | None, float, float]:
    """Row ``i``'s (direction, confidence, entropy, tau, strength): tau as given, else from
    direction and confidence as the generator computes it; ``bad`` makes the error that names
    the row."""
    direction_value = _values(raw, i, "direction")
    direction = None
    if not _missing(direction_value):
        direction = _direction(direction_value)
        if direction is None:
            raise bad(f"direction {_shown(direction_value)} is not LONG, SHORT, 1 or 0")
    confidence_value = _values(raw, i, "confidence")
    confidence = None
    if not _missing(confidence_value):
        confidence = _number(confidence_value)
        if confidence is None or not 1.0 <= confidence <= 3.0:
            raise bad(
                f"confidence {_shown(confidence_value)} is not a number from 1 to 3 "
                "(1 low, 2 medium, 3 high)"
            )
    entropy_value = _values(raw, i, "entropy")
    entropy = None
    if not _missing(entropy_value):
        entropy = _number(entropy_value)
        if entropy is None or not 0.0 <= entropy <= 1.0:
            raise bad(f"entropy {_shown(entropy_value)} is not a number from 0 to 1")
    tau_value = _values(raw, i, "tau")
    if not _missing(tau_value):
        value = _number(tau_value)
        if value is None or not -1.0 <= value <= 1.0:
            raise bad(
                f"tau {_shown(tau_value)} is outside [-1, 1] (tau = +/-(confidence / 3) x "
                "certainty; see docs/strategy-import.md)"
            )
        if direction is not None and value != 0 and (value > 0) != (direction == 1):
            word_dir = "LONG" if direction == 1 else "SHORT"
            raise bad(f"tau {value:g} contradicts direction {word_dir}")
        row_tau, row_strength = value, abs(value)
    elif direction is not None and confidence is not None:
        row_strength = strength(confidence, entropy)
        row_tau = tau(direction, row_strength)
    else:
        raise bad("give tau, or direction and confidence")
    return direction, confidence, entropy, row_tau, row_strength


def read_import(
    cfg: Config, dataset: Any, path: Path | str
) -> tuple[dict[str, pd.DataFrame], str, int]:
    """Validate ``path`` against the dataset and build the per-ticker tables.

    Returns (tables, the file's SHA-256, rows imported). Every ticker of ``cfg.tickers`` gets
    one row per strategy period; a period the file does not cover gets ``tau`` 0 (no signal)
    and ``status`` ``absent``. Raises :class:`DataError` naming the file and the first bad row.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: file not found (the strategies to import)")
    raw, word, first = _read(path)
    digest = sha256_regular(path)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    date_column = next((c for c in DATE_COLUMNS if c in raw.columns), None)
    has_strength = "tau" in raw.columns or {"direction", "confidence"} <= set(raw.columns)
    missing = [
        name
        for name, ok in (
            ("ticker", "ticker" in raw.columns),
            ("date (or start)", date_column is not None),
            ("tau (or direction and confidence)", has_strength),
        )
        if not ok
    ]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (have: "
            f"{', '.join(map(str, raw.columns)) or 'none'}); see docs/strategy-import.md"
        )
    if raw.empty:
        raise DataError(f"{path}: no strategies in it (only a header)")
    assert date_column is not None
    calendars = _calendars(cfg, dataset)
    seen: dict[tuple[str, int], int] = {}
    rows: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in cfg.tickers}
    source = {"import_path": str(path), "sha256": digest}
    settings = json.dumps(source, sort_keys=True)

    for i in range(len(raw)):
        where = f"{path}, {word} {first + i}"

        def bad(message: str, where: str = where) -> DataError:
            return DataError(f"{where}: {message}")

        ticker_value = _values(raw, i, "ticker")
        ticker = "" if _missing(ticker_value) else str(ticker_value).strip().upper()
        if ticker not in calendars:
            shown = _shown(ticker_value) if ticker else "empty"
            raise bad(
                f"ticker {shown} is not in the data (tickers: {', '.join(cfg.tickers)}); "
                "add it to `tickers` (--tickers) or drop its rows"
            )
        calendar = calendars[ticker]
        day_value = _values(raw, i, date_column)
        day = None if _missing(day_value) else _day(day_value)
        if day is None:
            raise bad(f"{date_column} {_shown(day_value)} is not a date (expected YYYY-MM-DD)")
        index = calendar.period_of(day)
        if index is None:
            raise bad(
                f"{date_column} {day.date()} is outside the data of {ticker} (its strategy "
                f"periods run {calendar.starts[0].date()}..{calendar.last_day.date()})"
            )
        period = calendar.periods[index]
        if (ticker, index) in seen:
            raise bad(
                f"{ticker} period {index} ({period.start.date()}..{period.end.date()}) is given "
                f"twice (first on {word} {seen[(ticker, index)]})"
            )
        seen[(ticker, index)] = first + i

        direction, confidence, entropy, row_tau, row_strength = _row_signal(raw, i, bad)

        explanation = _values(raw, i, "explanation")
        model = _values(raw, i, "model")
        rows[ticker][index] = {
            "ticker": ticker,
            "period": index,
            "start": period.start,
            "end": period.end,
            "inputs_end": period.inputs_end,
            "direction": direction,
            "confidence": confidence,
            "entropy": entropy,
            "strength": row_strength,
            "tau": row_tau,
            "explanation": (
                f"imported from {path.name}" if _missing(explanation) else str(explanation)
            ),
            "key_features": _key_features(_values(raw, i, "key_features")),
            "status": "imported",
            "model": "unknown" if _missing(model) else str(model),
        }

    empty = [t for t in cfg.tickers if not rows[t]]
    if empty:
        have = sorted({t for t, _ in seen})
        raise DataError(
            f"{path}: no strategies for {', '.join(empty)} (the file has "
            f"{', '.join(have)}); add their rows or leave them out of `tickers` (--tickers)"
        )
    tables = {}
    for ticker, given in rows.items():
        out = []
        for period in calendars[ticker].periods:
            row = given.get(period.index) or {
                "ticker": ticker,
                "period": period.index,
                "start": period.start,
                "end": period.end,
                "inputs_end": period.inputs_end,
                "direction": None,
                "confidence": None,
                "entropy": None,
                "strength": 0.0,
                "tau": 0.0,
                "explanation": f"not in {path.name}: no signal (tau 0)",
                "key_features": "[]",
                "status": "absent",
                "model": "",
            }
            out.append(
                row
                | {
                    "fallback": False,
                    "provider": PROVIDER,
                    "prompt_version": PROVIDER,
                    "settings": settings,
                    "cache_key": digest,
                    "tokens_in": 0,
                    "tokens_out": 0,
                    "latency_s": None,
                    "news_status": "off",
                    "news_count": 0,
                    "analysis": "",
                    "analysis_key": None,
                    "memory": "off",
                }
            )
        tables[ticker] = strategy_table(out)
    return tables, digest, len(seen)


def import_strategies(
    cfg: Config, dataset: Any, *, path: Path | str | None = None, write: bool = True
) -> GenerationResult:
    """The strategies stage for ``llm.provider: import``: read, check, write the tables.

    ``path`` defaults to ``llm.import_path``. Nothing is written unless every row is valid.
    """
    path = path if path is not None else cfg.llm.import_path
    if path is None:
        raise ConfigError("llm.provider = import needs llm.import_path (the file to import)")
    tables, _, _ = read_import(cfg, dataset, path)
    models = Counter(
        m
        for t in tables.values()
        for m, s in zip(t["model"], t["status"], strict=True)
        if s == "imported"
    )
    summary = GenerationSummary(
        total=sum(len(t) for t in tables.values()),
        provider=PROVIDER,
        model=models.most_common(1)[0][0] if models else "unknown",
        output_dir=str(cfg.llm.output_dir),
    )
    if write:
        write_strategies(tables, Path(cfg.llm.output_dir))
    return GenerationResult(strategies=tables, summary=summary)


#: the columns ``export`` writes, in order (``date`` is the period's first trading day)
EXPORT_COLUMNS = ("ticker", "date", *STRATEGY_COLUMNS, "model", "provider")


def export_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The stored tables as one import-format table (periods without a strategy left out)."""
    frames = []
    for ticker, table in tables.items():
        keep = np.isfinite(pd.to_numeric(table["tau"], errors="coerce").to_numpy(np.float64))
        keep &= (table["status"] != "absent").to_numpy()
        part = table.loc[keep].copy()
        part["ticker"] = ticker
        part["date"] = pd.to_datetime(part["start"]).dt.strftime("%Y-%m-%d")
        for column in ("end", "inputs_end"):
            part[column] = pd.to_datetime(part[column]).dt.strftime("%Y-%m-%d")
        part["direction"] = [
            None if pd.isna(d) else ("LONG" if int(d) == 1 else "SHORT") for d in part["direction"]
        ]
        frames.append(part[list(EXPORT_COLUMNS)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=EXPORT_COLUMNS)


def export_strategies(cfg: Config, path: Path) -> int:
    """Write ``cfg.tickers``' stored tables to ``path`` (.csv, .parquet or .json), user-only;
    returns the number of rows. An error names the ticker whose table is missing."""
    folder = Path(cfg.llm.output_dir)
    missing = [t for t in cfg.tickers if not (folder / f"{t}.parquet").is_file()]
    if missing:
        raise DataError(
            f"no strategy table for {', '.join(missing)} in {folder}: run `rewts strategies` "
            "(or `rewts run`) first, or pick --tickers"
        )
    tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in cfg.tickers}
    out = export_table(tables)
    suffix = path.suffix.lower()

    def write(tmp: Path) -> None:
        if suffix == ".csv":
            out.to_csv(tmp, index=False)
        elif suffix == ".json":
            records = json.loads(out.to_json(orient="records"))
            tmp.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
        else:
            out.to_parquet(tmp, index=False)

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, write)  # user-only
    return len(out)
