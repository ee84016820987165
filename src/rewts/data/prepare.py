"""From a config to the processed dataset: choose the source, load, compute features, store.

Shape of every frame: ``data.warmup_days`` warm-up rows, then the trading days from
``data.start_date`` to ``data.end_date``. The warm-up rows are taken from the history *before*
``start_date`` when the source has it (so strategies can start on the configured date); a
ticker whose history starts later (META's listing in 2012) starts trading once the warm-up and
every feature are available, and the report says so. Features are computed on the whole
history up to ``end_date`` and then cut, so the first rows after the warm-up have exactly the
values they would have had in a longer run. Nothing after the warm-up is NaN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rewts import __version__
from rewts.config import Config
from rewts.config.models import DataConfig
from rewts.data import features as feat
from rewts.data import store
from rewts.data.gaps import Gap, find_gaps
from rewts.data.sources import RawPrices
from rewts.data.sources.csv_folder import CsvPlan, load_csv_folder, plan_csv_folder
from rewts.data.sources.synthetic import generate
from rewts.data.sources.yahoo import load_yahoo, yahoo_reachable
from rewts.data.store import date_index
from rewts.errors import ConfigError, DataError

Reporter = Callable[[str], None]

#: trading days of history loaded before the warm-up (Yahoo, synthetic), so that the
#: recursive indicators (EMA, Wilder) have converged when the warm-up ends
HISTORY_PAD_DAYS = 260
#: how long ``source: auto`` waits for Yahoo Finance before falling back
AUTO_PROBE_TIMEOUT_S = 1.5


@dataclass(frozen=True)
class DataReport:
    """What the data stage noticed: gaps, warnings, missing market symbols, start days."""

    gaps: tuple[Gap, ...] = ()
    warnings: tuple[str, ...] = ()
    #: market prefix -> why its columns are absent
    missing_market: Mapping[str, str] = field(default_factory=dict)
    #: ticker -> first trading day after the warm-up (the first day a strategy can guide)
    first_trading_day: Mapping[str, dt.date] = field(default_factory=dict)
    #: True when the dataset was loaded from the store instead of rebuilt
    from_store: bool = False
    inputs_hash: str = ""

    def gaps_for(self, ticker: str) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.ticker == ticker)


@dataclass(frozen=True)
class Dataset:
    """The processed market data of an experiment (see :func:`prepare_data`)."""

    #: per ticker: ``DatetimeIndex`` named ``date`` (tz-naive, ascending, unique), OHLCV and
    #: feature columns, the first ``data.warmup_days`` rows being the warm-up
    frames: dict[str, pd.DataFrame]
    #: ``csv``, ``yahoo`` or ``synthetic``
    source: str
    #: SHA-256 of the processed frames (stable across runs and machines)
    content_hash: str
    #: model features (all numeric), excluding raw OHLCV
    feature_columns: tuple[str, ...]
    #: the ``data.processed_dir`` the dataset is stored in
    path: Path | None
    report: DataReport = field(default_factory=DataReport)

    @property
    def tickers(self) -> tuple[str, ...]:
        return tuple(self.frames)


# ------------------------------------------------------------------------ source choice


def resolve_source(
    data: DataConfig, probe: Callable[[float], tuple[bool, str]] | None = None
) -> tuple[str, str]:
    """The concrete source for ``data.source`` and one line saying why."""
    probe = probe or (lambda timeout: yahoo_reachable(timeout))
    if data.source == "csv":
        if data.csv_dir is None:
            raise ConfigError(
                "data.source = 'csv' needs data.csv_dir: pass --data-dir DIR (a folder with one "
                "SYMBOL.csv per symbol)"
            )
        return "csv", f"data.source = csv, folder {data.csv_dir}"
    if data.source == "synthetic":
        return "synthetic", f"data.source = synthetic, seed {data.synthetic_seed} (not real prices)"
    if data.source == "yahoo":
        ok, why = probe(AUTO_PROBE_TIMEOUT_S * 2)
        if not ok:
            raise DataError(
                f"data.source = yahoo but Yahoo Finance is not reachable ({why}); use "
                "--source csv --data-dir DIR or --source synthetic"
            )
        return "yahoo", "data.source = yahoo"
    if data.csv_dir is not None:
        return "csv", f"data.source = auto and data.csv_dir is set ({data.csv_dir})"
    ok, why = probe(AUTO_PROBE_TIMEOUT_S)
    if ok:
        return "yahoo", f"data.source = auto, no data.csv_dir, {why}"
    return "synthetic", (
        f"data.source = auto, no data.csv_dir, Yahoo Finance not reachable ({why}); "
        f"seed {data.synthetic_seed} (not real prices)"
    )


# ------------------------------------------------------------------------------ inputs


def _history_start(data: DataConfig) -> dt.date:
    """First day to load from a source that is asked for dates (Yahoo, synthetic)."""
    days = data.warmup_days + HISTORY_PAD_DAYS
    return (pd.Timestamp(data.start_date) - pd.offsets.BDay(days)).date()


@dataclass(frozen=True)
class DataPlan:
    """Where the data stage would read from, and everything its output depends on."""

    source: str
    #: why that source (announced to the user)
    why: str
    plan: CsvPlan | None
    inputs: dict[str, Any]


def plan_data(cfg: Config) -> DataPlan:
    """Resolve the source and hash the inputs without loading prices (`rewts status` too)."""
    source, why = resolve_source(cfg.data)
    plan = None
    if source == "csv":
        assert cfg.data.csv_dir is not None
        plan = plan_csv_folder(cfg.data.csv_dir, cfg.tickers, cfg.data.market_symbols)
    return DataPlan(source, why, plan, stage_inputs(cfg, source, plan))


def stage_inputs(cfg: Config, source: str, plan: CsvPlan | None) -> dict[str, Any]:
    """Everything the processed dataset depends on (its manifest's hash; `rewts status` too)."""
    data = cfg.data
    inputs: dict[str, Any] = {
        "store_version": store.STORE_VERSION,
        "features_version": feat.FEATURES_VERSION,
        "source": source,
        "tickers": list(cfg.tickers),
        "start_date": data.start_date.isoformat(),
        "end_date": data.end_date.isoformat(),
        "market_symbols": dict(data.market_symbols),
        "warmup_days": data.warmup_days,
        "history_pad_days": HISTORY_PAD_DAYS,
    }
    if source == "synthetic":
        inputs["synthetic_seed"] = data.synthetic_seed
    if plan is not None:
        inputs["csv_files"] = plan.file_hashes()
        inputs["missing_market"] = sorted(plan.missing_market)
    return inputs


def _load_raw(cfg: Config, source: str, plan: CsvPlan | None) -> RawPrices:
    data = cfg.data
    if source == "csv":
        assert plan is not None
        return load_csv_folder(plan)
    if source == "yahoo":
        return load_yahoo(
            cfg.tickers, data.market_symbols, start=_history_start(data), end=data.end_date
        )
    return generate(
        cfg.tickers,
        data.market_symbols,
        seed=data.synthetic_seed,
        start=_history_start(data),
        end=data.end_date,
    )


# ---------------------------------------------------------------------------- building


def cut_to_range(
    ticker: str,
    full: pd.DataFrame,
    columns: tuple[str, ...],
    data: DataConfig,
    coverage: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Keep the warm-up rows before the first trading day and every day up to ``end_date``.

    Returns the frame and notes: the first trading day had to move past ``start_date``, or the
    data end well before ``end_date``. ``coverage`` (market prefix -> "SYMBOL covers a..b")
    makes the error for a market hole precise.
    """
    warmup = data.warmup_days
    start, end = pd.Timestamp(data.start_date), pd.Timestamp(data.end_date)
    full = full.loc[:end]
    s = int(full.index.searchsorted(start))
    if s >= len(full):
        covers = f"{full.index[0].date()}..{full.index[-1].date()}" if len(full) else "nothing"
        raise DataError(
            f"{ticker}: no trading day between {start.date()} and {end.date()} (its data covers "
            f"{covers}); change data.start_date/end_date or remove {ticker} from tickers"
        )
    valid = full[list(columns)].notna().all(axis=1).to_numpy()
    if not valid[s:].any():
        never = [c for c in columns if full[c].iloc[s:].isna().all()]
        market = {c for c in never if c.rsplit("_", 1)[0] in (coverage or {})}
        if never and not market:
            # the ticker's own indicators (sma_200, ...) never fill: its history is too short
            raise DataError(
                f"{ticker}: too little history: {len(full)} trading days "
                f"({full.index[0].date()}..{full.index[-1].date()}), so "
                f"{', '.join(never)} never get a value and the {warmup}-day warm-up "
                f"(data.warmup_days) needs at least {warmup + 1} days; give {ticker} a longer "
                f"history (data.end_date later or more rows in its file) or remove {ticker} "
                "from tickers"
            )
        raise DataError(
            f"{ticker}: no day from {start.date()} to {end.date()} has every feature; never "
            f"available: {', '.join(never) or 'none'} (a market symbol that does not cover the "
            "range? drop it from data.market_symbols or change the dates)"
        )
    first_valid = int(np.argmax(valid))
    first_trade = max(s, first_valid)
    frame = full.iloc[max(0, first_trade - warmup) :]
    if len(frame) <= warmup:
        raise DataError(
            f"{ticker}: only {len(frame)} trading days from {frame.index[0].date()} to "
            f"{frame.index[-1].date()}, but the {warmup}-day warm-up needs at least {warmup + 1} "
            f"(features need {first_valid + 1} days of history); set data.start_date earlier or "
            f"data.end_date later, lower data.warmup_days, or remove {ticker} from tickers"
        )
    tail = frame.iloc[warmup:]
    holes = tail.isna().to_numpy()
    if holes.any():
        row, _ = np.argwhere(holes)[0]
        cols = [c for c, bad in zip(tail.columns, holes[row], strict=True) if bad]
        prefixes = {c.rsplit("_", 1)[0] for c in cols}
        if prefixes <= set(coverage or {}):
            (prefix, *_) = sorted(prefixes)
            why = (
                f"{(coverage or {})[prefix]}, and no {prefix} value within "
                f"{feat.MARKET_MAX_STALE_DAYS} days before; change data.end_date/start_date, "
                f"fix the data, or remove {prefix} from data.market_symbols"
            )
        else:
            why = "fix the data"
        raise DataError(
            f"{ticker}: {', '.join(cols)} missing on {tail.index[row].date()}, after the "
            f"{warmup}-day warm-up ({why})"
        )
    notes = []
    if frame.index[warmup] > full.index[s]:
        notes.append(
            f"{ticker}: history starts {full.index[0].date()}, so the first day after the "
            f"warm-up is {frame.index[warmup].date()} (data.start_date is {start.date()})"
        )
    if (end - frame.index[-1]).days > feat.MARKET_MAX_STALE_DAYS:
        notes.append(
            f"{ticker}: data ends {frame.index[-1].date()}, before data.end_date {end.date()}"
        )
    return frame, notes


def build_frames(
    raw: RawPrices, cfg: Config
) -> tuple[dict[str, pd.DataFrame], tuple[str, ...], list[str], dict[str, dt.date]]:
    """Features for every ticker, cut to the configured range; returns the frames, feature
    columns, notes and each ticker's first trading day."""
    end = pd.Timestamp(cfg.data.end_date)
    market = {p: t.loc[:end] for p, t in raw.market.items()}
    columns = feat.feature_columns(list(market))
    coverage = {
        p: f"{cfg.data.market_symbols[p]} covers {t.index[0].date()}..{t.index[-1].date()}"
        for p, t in market.items()
        if len(t)
    }
    frames: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    first_day: dict[str, dt.date] = {}
    carried: dict[str, dict[str, int]] = {}
    for ticker in cfg.tickers:
        full, filled = feat.compute_features(raw.tickers[ticker].loc[:end], market)
        for prefix, count in filled.items():
            if count:
                carried.setdefault(prefix, {})[ticker] = count
        frame, cut_notes = cut_to_range(ticker, full, columns, cfg.data, coverage)
        frame.index = date_index(frame.index)
        frames[ticker] = frame
        first_day[ticker] = frame.index[cfg.data.warmup_days].date()
        notes.extend(cut_notes)
    for prefix, counts in carried.items():
        per = ", ".join(f"{t} {n}" for t, n in counts.items())
        notes.insert(
            0,
            f"{prefix}: days without a {cfg.data.market_symbols[prefix]} row took its latest "
            f"earlier value (at most {feat.MARKET_MAX_STALE_DAYS} days old): {per}",
        )
    return frames, columns, notes, first_day


def _market_calendar(raw: RawPrices, cfg: Config) -> pd.DatetimeIndex | None:
    """The market index's trading days (the exchange calendar), to find a single ticker's gaps."""
    index = raw.market.get(feat.BETA_PREFIX)
    return None if index is None else index.loc[: pd.Timestamp(cfg.data.end_date)].index


def _manifest(
    cfg: Config,
    source: str,
    inputs: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    columns: tuple[str, ...],
    report: DataReport,
    chash: str,
) -> dict[str, Any]:
    return {
        "store_version": store.STORE_VERSION,
        "created_by": f"rewts {__version__}",
        "source": source,
        "symbols": {"tickers": list(frames), "market": dict(cfg.data.market_symbols)},
        "tickers": {
            t: {
                "file": store.parquet_name(t),
                "first": f.index[0].date().isoformat(),
                "last": f.index[-1].date().isoformat(),
                "rows": len(f),
                "warmup_rows": cfg.data.warmup_days,
                "first_trading_day": report.first_trading_day[t].isoformat(),
                "gaps": len(report.gaps_for(t)),
            }
            for t, f in frames.items()
        },
        "feature_columns": list(columns),
        "missing_market": dict(report.missing_market),
        "gaps": [g.to_dict() for g in report.gaps],
        "warnings": list(report.warnings),
        "content_hash": chash,
        "inputs_hash": store.inputs_hash(inputs),
        "inputs": inputs,
    }


def _report_from_manifest(manifest: Mapping[str, Any], ihash: str) -> DataReport:
    return DataReport(
        gaps=tuple(Gap.from_dict(g) for g in manifest.get("gaps", [])),
        warnings=tuple(manifest.get("warnings", [])),
        missing_market=dict(manifest.get("missing_market", {})),
        first_trading_day={
            t: dt.date.fromisoformat(info["first_trading_day"])
            for t, info in manifest.get("tickers", {}).items()
        },
        from_store=True,
        inputs_hash=ihash,
    )


def _announce(report: DataReport, say: Reporter) -> None:
    for why in report.missing_market.values():
        say(f"data: market symbol missing: {why}")
    for warning in report.warnings:
        say(f"data: note: {warning}")
    by_ticker: dict[str, list[Gap]] = {}
    for gap in report.gaps:
        by_ticker.setdefault(gap.ticker, []).append(gap)
    for ticker, gaps in by_ticker.items():
        days = sum(g.days for g in gaps)
        shown = "; ".join(g.describe().split(": ", 1)[1] for g in gaps[:3])
        more = f"; and {len(gaps) - 3} more" if len(gaps) > 3 else ""
        say(f"data: gaps (not filled): {ticker}: {len(gaps)} gap(s), {days} day(s): {shown}{more}")


def prepare_data(
    cfg: Config, *, refresh: bool = False, reporter: Reporter | None = None
) -> Dataset:
    """The processed dataset for ``cfg``: loaded from ``data.processed_dir`` when its inputs
    hash matches (and ``refresh`` is False), otherwise loaded from the source, checked, given
    features and stored. ``reporter`` receives one line per thing worth telling the user."""
    say: Reporter = reporter or (lambda _line: None)
    planned = plan_data(cfg)
    source, plan, inputs = planned.source, planned.plan, planned.inputs
    say(f"data: source {source} ({planned.why})")
    ihash = store.inputs_hash(inputs)
    folder = Path(cfg.data.processed_dir)

    if not refresh:
        stored = store.read_store(folder, ihash)
        if isinstance(stored, tuple):
            frames, manifest = stored
            try:
                report = _report_from_manifest(manifest, ihash)
                columns = tuple(manifest["feature_columns"])
            except (KeyError, TypeError, ValueError) as exc:
                stored = f"the manifest in {folder} is malformed ({exc.__class__.__name__})"
        if isinstance(stored, tuple):
            say(f"data: loaded {len(frames)} ticker(s) from {folder} (inputs unchanged)")
            _announce(report, say)
            return Dataset(
                frames=frames,
                source=source,
                content_hash=manifest["content_hash"],
                feature_columns=columns,
                path=folder.resolve(),
                report=report,
            )
        say(f"data: building the processed dataset ({stored})")
    else:
        say("data: building the processed dataset (refresh requested)")

    raw = _load_raw(cfg, source, plan)
    frames, columns, notes, first_day = build_frames(raw, cfg)
    report = DataReport(
        gaps=tuple(find_gaps({t: f.index for t, f in frames.items()}, _market_calendar(raw, cfg))),
        warnings=(*raw.warnings, *notes),
        missing_market=dict(raw.missing_market),
        first_trading_day=first_day,
        from_store=False,
        inputs_hash=ihash,
    )
    chash = store.content_hash(frames)
    try:
        store.write_store(
            folder, frames, _manifest(cfg, source, inputs, frames, columns, report, chash)
        )
    except OSError as exc:
        raise DataError(
            f"cannot write the processed dataset to {folder}: {exc.strerror or exc} "
            "(set data.processed_dir to a writable folder)"
        ) from exc
    _announce(report, say)
    say(f"data: wrote {len(frames)} ticker(s) to {folder} (content {chash[:12]})")
    return Dataset(
        frames=frames,
        source=source,
        content_hash=chash,
        feature_columns=columns,
        path=folder.resolve(),
        report=report,
    )
