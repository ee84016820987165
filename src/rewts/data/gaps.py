"""Finding gaps in a price history: reported to the user, never filled.

Two kinds:

* ``missing``: trading days that the other tickers or the market index (the exchange calendar)
  have, inside this ticker's own first..last range, but this one lacks; a later listing date
  is not a gap;
* ``break``: more than :data:`MAX_BREAK_WEEKDAYS` weekdays without a row between two
  consecutive rows, where no other ticker has a row either (a gap the comparison cannot see,
  e.g. when only one ticker is loaded). Exchange holidays and the 2012 hurricane closure (two
  weekdays) stay below the threshold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

MAX_BREAK_WEEKDAYS = 3


@dataclass(frozen=True)
class Gap:
    """Consecutive trading days without a row for ``ticker`` (inclusive ``start..end``)."""

    ticker: str
    start: dt.date
    end: dt.date
    days: int
    kind: Literal["missing", "break"]

    def describe(self) -> str:
        span = f"{self.start}" if self.start == self.end else f"{self.start}..{self.end}"
        what = (
            "trading day(s) that others have"
            if self.kind == "missing"
            else "weekdays without any row"
        )
        return f"{self.ticker}: {span}: {self.days} {what}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gap:
        return cls(
            ticker=str(data["ticker"]),
            start=dt.date.fromisoformat(str(data["start"])),
            end=dt.date.fromisoformat(str(data["end"])),
            days=int(data["days"]),
            kind=data["kind"],
        )


def _runs(positions: np.ndarray) -> list[np.ndarray]:
    """Split sorted integer positions into runs of consecutive values."""
    if positions.size == 0:
        return []
    return np.split(positions, np.flatnonzero(np.diff(positions) > 1) + 1)


def find_gaps(
    calendars: Mapping[str, pd.DatetimeIndex], market: pd.DatetimeIndex | None = None
) -> list[Gap]:
    """Gaps of every ticker, compared with the union of all tickers' trading days and, when
    given, the market index's days (so that one ticker alone can be checked too)."""
    if not calendars:
        return []
    days = [pd.DatetimeIndex(c) for c in calendars.values()]
    if market is not None:
        days.append(pd.DatetimeIndex(market))
    reference = days[0].append(days[1:]).unique().sort_values()
    gaps: list[Gap] = []
    for ticker, dates in calendars.items():
        if len(dates) == 0:
            continue
        inside = reference[(reference >= dates[0]) & (reference <= dates[-1])]
        absent = np.flatnonzero(~inside.isin(dates))
        for run in _runs(absent):
            gaps.append(
                Gap(ticker, inside[run[0]].date(), inside[run[-1]].date(), len(run), "missing")
            )
        if len(dates) < 2:
            continue
        prev = dates[:-1].to_numpy().astype("datetime64[D]")
        cur = dates[1:].to_numpy().astype("datetime64[D]")
        weekdays = np.busday_count(prev + 1, cur)
        others = reference.searchsorted(dates[1:]) - reference.searchsorted(
            dates[:-1], side="right"
        )
        for i in np.flatnonzero((weekdays > MAX_BREAK_WEEKDAYS) & (others == 0)):
            first = np.busday_offset(prev[i] + 1, 0, roll="forward")
            last = np.busday_offset(cur[i] - 1, 0, roll="backward")
            gaps.append(
                Gap(ticker, first.astype(dt.date), last.astype(dt.date), int(weekdays[i]), "break")
            )
    return gaps
