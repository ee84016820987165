"""Where raw daily prices come from: a CSV folder, Yahoo Finance, or the synthetic generator.

Every source returns the same thing, a :class:`RawPrices`: one validated OHLCV table per
symbol (``DatetimeIndex`` named ``date``, float64 columns ``open, high, low, close, adj_close,
volume``), plus what it had to report. Features are computed elsewhere
(:mod:`rewts.data.features`), so the sources only load and check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

#: the columns every source delivers, in this order
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")


@dataclass
class RawPrices:
    """Validated price tables of one source, before features."""

    source: str
    #: ticker -> OHLCV table
    tickers: dict[str, pd.DataFrame]
    #: market prefix (e.g. ``sp500``) -> OHLCV table of its symbol
    market: dict[str, pd.DataFrame]
    #: market prefix -> why it is missing (its feature columns are omitted, not faked)
    missing_market: dict[str, str] = field(default_factory=dict)
    #: things the user should know that did not stop the run
    warnings: list[str] = field(default_factory=list)


__all__ = ["PRICE_COLUMNS", "RawPrices"]
