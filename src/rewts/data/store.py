"""The processed dataset on disk: one Parquet file per ticker plus ``manifest.json``.

Two hashes make staleness explicit:

* the **inputs hash** covers everything that determines the processed data (source, tickers,
  dates, market symbols, warm-up, the synthetic seed, the CSV files' SHA-256, the feature code
  version); a stored dataset is reused only when it matches;
* the **content hash** covers the processed frames themselves (index, column names, values),
  so later stages can record exactly which data they were built from, and a file changed on
  disk is detected on load.

Every file is written through :func:`rewts.fileio.atomic_write`; the
manifest is written last, so a crash leaves either the old dataset or a detectably stale one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rewts.fileio import atomic_write, remove_orphan_temporaries, write_bytes_atomic

MANIFEST = "manifest.json"
STORE_VERSION = 1


def inputs_hash(inputs: Mapping[str, Any]) -> str:
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(frames: Mapping[str, pd.DataFrame]) -> str:
    """SHA-256 over every frame's ticker, columns, dates and float64 values (order-stable)."""
    digest = hashlib.sha256()
    for ticker in sorted(frames):
        frame = frames[ticker]
        digest.update(f"\x1e{ticker}\x1f{','.join(map(str, frame.columns))}\x1f".encode())
        index = pd.DatetimeIndex(frame.index).as_unit("ns").asi8
        digest.update(np.ascontiguousarray(index, dtype="<i8").tobytes())
        values = np.ascontiguousarray(frame.to_numpy(dtype=np.float64), dtype="<f8")
        digest.update(values.tobytes())
    return digest.hexdigest()


def date_index(index: pd.Index) -> pd.DatetimeIndex:
    """The one index form of a processed frame: tz-naive ``datetime64[ns]``, named ``date``,
    no ``freq`` (so a frame built in memory equals the same frame read back from Parquet)."""
    values = pd.DatetimeIndex(index).as_unit("ns").to_numpy()
    return pd.DatetimeIndex(values, name="date")


def _atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """One ticker's file (the umask decides its mode, as for the manifest)."""
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, engine="pyarrow", index=True), mode=0o666)


def parquet_name(ticker: str) -> str:
    return f"{ticker.lstrip('^')}.parquet"


def write_store(folder: Path, frames: Mapping[str, pd.DataFrame], manifest: dict[str, Any]) -> None:
    """Write every frame, then the manifest; remove Parquet files of tickers no longer listed
    and the temporary files of writers killed mid-write."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_orphan_temporaries(folder)
    old = read_manifest(folder)
    listed = {parquet_name(t) for t in (old or {}).get("tickers", {})}
    written: list[Path] = []
    try:
        for ticker, frame in frames.items():
            path = folder / parquet_name(ticker)
            if path.name not in listed and not path.exists():
                written.append(path)
            _atomic_write_parquet(path, frame)
        text = json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"
        write_bytes_atomic(folder / MANIFEST, text.encode("utf-8"), mode=0o666)
    except OSError:
        # a full disk mid-way: files no manifest vouches for would only hold the space a
        # smaller rerun needs (files the old manifest lists fail its hash and are rebuilt)
        for path in written:
            path.unlink(missing_ok=True)
        raise
    if old:
        for ticker in set(old.get("tickers", {})) - set(frames):
            (folder / parquet_name(ticker)).unlink(missing_ok=True)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def read_store(
    folder: Path, expected_inputs_hash: str
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]] | str:
    """The stored frames and manifest when they match ``expected_inputs_hash``, else the reason
    they cannot be used (a string, for the reporter)."""
    manifest = read_manifest(folder)
    if manifest is None:
        return f"no processed dataset in {folder}"
    if manifest.get("store_version") != STORE_VERSION:
        return "the stored dataset was written by another version"
    if manifest.get("inputs_hash") != expected_inputs_hash:
        return "inputs changed since the stored dataset was built"
    frames: dict[str, pd.DataFrame] = {}
    for ticker in manifest.get("tickers", {}):
        path = folder / parquet_name(ticker)
        try:
            frame = pd.read_parquet(path, engine="pyarrow")
            frame.index = date_index(frame.index)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            return f"{path} cannot be read ({exc.__class__.__name__})"
        frames[ticker] = frame
    try:
        chash = content_hash(frames)
    except (ValueError, TypeError, KeyError) as exc:
        # another table landed here (say, strategy tables through a misdirected --out):
        # rebuilt like any file that changed on disk, never a traceback on every later run
        return f"the stored files changed on disk (not this dataset: {exc.__class__.__name__})"
    if chash != manifest.get("content_hash"):
        return "the stored files changed on disk (content hash mismatch)"
    return frames, manifest
