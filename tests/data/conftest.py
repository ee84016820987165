"""Helpers for the data tests: small synthetic price folders written as CSV, and configs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rewts.config import Config
from rewts.data.sources.synthetic import generate

HEADER = "date,open,high,low,close,adj_close,volume"


def write_price_csv(path: Path, table: pd.DataFrame) -> Path:
    out = table.copy()
    out.index = out.index.strftime("%Y-%m-%d")
    out.index.name = "date"
    out.to_csv(path, float_format="%.10g")
    return path


def make_config(tmp_path: Path, **data: Any) -> Config:
    tickers = data.pop("tickers", ["AAA", "BBB"])
    base: dict[str, Any] = {
        "start_date": "2015-01-01",
        "end_date": "2016-12-31",
        "processed_dir": str(tmp_path / "processed"),
        "warmup_days": 60,
        "market_symbols": {"sp500": "GSPC", "vix": "VIX", "tnx": "TNX"},
    }
    base.update(data)
    return Config.model_validate({"tickers": tickers, "data": base, "seed": 0})


@pytest.fixture
def csv_folder(tmp_path: Path) -> Path:
    """AAA, BBB and the three market symbols as CSV files (synthetic values, 2014-2016)."""
    folder = tmp_path / "prices"
    folder.mkdir()
    raw = generate(
        ["AAA", "BBB"],
        {"sp500": "GSPC", "vix": "VIX", "tnx": "TNX"},
        seed=3,
        start=dt.date(2014, 1, 1),
        end=dt.date(2016, 12, 31),
    )
    for ticker, table in raw.tickers.items():
        write_price_csv(folder / f"{ticker}.csv", table)
    for prefix, symbol in {"sp500": "GSPC", "vix": "VIX", "tnx": "TNX"}.items():
        write_price_csv(folder / f"{symbol}.csv", raw.market[prefix])
    return folder
