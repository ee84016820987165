"""Yahoo Finance through ``yfinance``, used only when the network is reachable.

Every failure of yfinance (it raises, or it returns an empty table and prints instead) becomes
a :class:`DataError` naming the symbol and the dates. Symbols: the config may name indices
without Yahoo's caret (``GSPC``, ``VIX``, ``TNX``, as the CSV files are named); those get the
caret here.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rewts.data.sources import PRICE_COLUMNS, RawPrices
from rewts.errors import DataError

YAHOO_HOST = "query2.finance.yahoo.com"
#: index names that Yahoo lists with a caret
_CARET = {"GSPC", "VIX", "TNX", "TYX", "FVX", "IRX", "DJI", "IXIC", "NDX", "RUT", "VXN"}


def yahoo_symbol(symbol: str) -> str:
    return f"^{symbol}" if symbol.upper() in _CARET else symbol


def yahoo_reachable(
    timeout_s: float = 1.5, host: str = YAHOO_HOST, port: int = 443
) -> tuple[bool, str]:
    """Can we complete a TLS handshake with Yahoo within ``timeout_s``? Returns (ok, reason).

    A TLS handshake with certificate check, not just a TCP connect: a sandbox proxy that
    accepts every connection must not count as "online". Name resolution has no timeout of its
    own, so the check runs in a daemon thread that we stop waiting for after ``timeout_s``:
    offline, ``source: auto`` falls back within seconds.
    """
    result: list[tuple[bool, str]] = []

    def probe() -> None:
        try:
            context = ssl.create_default_context()
            with (
                socket.create_connection((host, port), timeout=timeout_s) as sock,
                context.wrap_socket(sock, server_hostname=host),
            ):
                result.append((True, f"{host} reachable"))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
            result.append((False, f"{host} unreachable: {reason}"))

    thread = threading.Thread(target=probe, name="rewts-yahoo-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.2)
    if not result:
        return False, f"{host}: no answer within {timeout_s:g} s"
    return result[0]


def _download(symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    import yfinance as yf  # imported lazily: slow to import and only needed online

    ysym = yahoo_symbol(symbol)
    where = f"Yahoo Finance {ysym} ({start}..{end})"
    try:
        table = yf.download(
            ysym,
            start=start.isoformat(),
            end=(end + dt.timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
            auto_adjust=False,
            actions=False,
            progress=False,
            threads=False,
            multi_level_index=False,
            timeout=20,
        )
    except Exception as exc:  # yfinance raises many unrelated types; translate at the boundary
        raise DataError(f"{where}: download failed: {exc}") from exc
    if table is None or table.empty:
        raise DataError(
            f"{where}: no rows returned (unknown symbol, no data in the range, or rate-limited; "
            "check the symbol or use --source csv/synthetic)"
        )
    return normalize_yahoo_table(table, where)


def normalize_yahoo_table(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """yfinance's table to the common OHLCV layout, with the same checks as a CSV file."""
    if isinstance(table.columns, pd.MultiIndex):
        table = table.droplevel(-1, axis=1) if table.columns.nlevels > 1 else table
    table = table.rename(columns=lambda c: str(c).strip().lower().replace(" ", "_"))
    if "adj_close" not in table.columns and "close" in table.columns:
        table = table.assign(adj_close=table["close"])
    missing = [c for c in PRICE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{where}: the answer lacks column(s) {', '.join(missing)}")
    index = pd.DatetimeIndex(table.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    out = pd.DataFrame(
        {c: pd.to_numeric(table[c], errors="coerce").to_numpy(np.float64) for c in PRICE_COLUMNS},
        index=pd.DatetimeIndex(index.normalize(), name="date").as_unit("ns"),
    )
    # Yahoo sends all-empty rows on some holidays: they are not trading days
    out = out[out[list(PRICE_COLUMNS[:5])].notna().any(axis=1)]
    prices = out[list(PRICE_COLUMNS[:5])].to_numpy()
    bad = ~(prices > 0).all(axis=1)
    if bad.any():
        day = out.index[np.flatnonzero(bad)[0]].date()
        raise DataError(f"{where}: a price on {day} is missing or not positive")
    if out.index.has_duplicates:
        day = out.index[out.index.duplicated()][0].date()
        raise DataError(f"{where}: duplicate date {day}")
    out["volume"] = out["volume"].fillna(0.0)
    return out.sort_index()


def load_yahoo(
    tickers: Sequence[str],
    market_symbols: Mapping[str, str],
    *,
    start: dt.date,
    end: dt.date,
) -> RawPrices:
    """Download every ticker (a failure is an error) and market symbol (a failure is reported)."""
    raw = RawPrices("yahoo", {t: _download(t, start, end) for t in tickers}, {})
    for prefix, symbol in market_symbols.items():
        try:
            raw.market[prefix] = _download(symbol, start, end)
        except DataError as exc:
            raw.missing_market[prefix] = f"{exc}: the {prefix}_* columns are omitted"
    return raw
