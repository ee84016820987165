"""Time alignment, defined once: the trading calendar, strategy periods, RL chunks, look-back
windows and the train/test split.

The rule every stage relies on: anything used to act on trading day ``t`` was computable from
data up to day ``t-1``. Here that is true by construction:

* the strategy that guides period ``m`` is generated from inputs that end on
  ``period.inputs_end``, the last trading day *before* ``period.start`` (which is the last day of
  period ``m-1``);
* a look-back window for a decision on day ``t`` ends on day ``t-1``;
* train and test ranges never overlap.

Everything works on integer positions into one sorted, duplicate-free calendar, which keeps the
arithmetic exact and vectorizable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rewts.errors import ConfigError, DataError


@dataclass(frozen=True, slots=True)
class StrategyPeriod:
    """A block of trading days guided by one LLM strategy.

    ``start_pos``/``end_pos`` are inclusive positions in the calendar; the strategy's inputs end
    at ``inputs_end_pos == start_pos - 1``.
    """

    index: int
    start: pd.Timestamp
    end: pd.Timestamp
    inputs_end: pd.Timestamp
    start_pos: int
    end_pos: int

    @property
    def inputs_end_pos(self) -> int:
        return self.start_pos - 1

    @property
    def length(self) -> int:
        return self.end_pos - self.start_pos + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.index,
            "start": self.start.date().isoformat(),
            "end": self.end.date().isoformat(),
            "inputs_end": self.inputs_end.date().isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Chunk:
    """A contiguous block of training days for one ReWTS chunk model (inclusive positions)."""

    index: int
    start: pd.Timestamp
    end: pd.Timestamp
    start_pos: int
    end_pos: int

    @property
    def length(self) -> int:
        return self.end_pos - self.start_pos + 1


def _as_calendar(dates: Any) -> pd.DatetimeIndex:
    calendar = pd.DatetimeIndex(pd.to_datetime(dates)).normalize()
    if calendar.tz is not None:
        calendar = calendar.tz_localize(None)
    if calendar.has_duplicates:
        dup = calendar[calendar.duplicated()][0]
        raise DataError(f"trading calendar has a duplicate date: {dup.date()}")
    if not calendar.is_monotonic_increasing:
        raise DataError("trading calendar is not sorted ascending")
    return calendar


class Timeline:
    """The trading calendar of an experiment and the periods cut from it.

    Parameters
    ----------
    dates:
        Trading days (sorted, unique); usually the processed dataset's index.
    strategy_frequency:
        Trading days per strategy period (``strategy_frequency`` in the config).
    warmup:
        Trading days of history before the first period starts (enough for the 200-day SMA).
    """

    def __init__(self, dates: Any, *, strategy_frequency: int, warmup: int) -> None:
        if strategy_frequency < 1:
            raise ConfigError(f"strategy_frequency = {strategy_frequency}: must be at least 1")
        if warmup < 1:
            raise ConfigError(f"data.warmup_days = {warmup}: must be at least 1")
        self.dates = _as_calendar(dates)
        self.strategy_frequency = strategy_frequency
        self.warmup = warmup
        if len(self.dates) <= warmup:
            raise DataError(
                f"only {len(self.dates)} trading days of history, but the warm-up needs "
                f"{warmup} before the first strategy period (set data.start_date earlier or "
                "lower data.warmup_days)"
            )
        self.periods = self._cut_periods()
        # period index of every trading day; -1 during the warm-up
        self._period_of_pos = np.full(len(self.dates), -1, dtype=np.int64)
        for period in self.periods:
            self._period_of_pos[period.start_pos : period.end_pos + 1] = period.index

    def __len__(self) -> int:
        return len(self.dates)

    def __repr__(self) -> str:
        return (
            f"Timeline({self.dates[0].date()}..{self.dates[-1].date()}, {len(self.dates)} days, "
            f"{len(self.periods)} periods of {self.strategy_frequency})"
        )

    def _cut_periods(self) -> tuple[StrategyPeriod, ...]:
        starts = np.arange(self.warmup, len(self.dates), self.strategy_frequency)
        periods = []
        for index, start in enumerate(starts):
            end = min(start + self.strategy_frequency, len(self.dates)) - 1
            periods.append(
                StrategyPeriod(
                    index=index,
                    start=self.dates[start],
                    end=self.dates[end],
                    inputs_end=self.dates[start - 1],
                    start_pos=int(start),
                    end_pos=int(end),
                )
            )
        return tuple(periods)

    # ----------------------------------------------------------------- lookups

    def position(self, date: Any) -> int:
        """Calendar position of a trading day (an error if it is not one)."""
        ts = pd.Timestamp(date).normalize()
        pos = self.dates.searchsorted(ts)
        if pos >= len(self.dates) or self.dates[pos] != ts:
            raise DataError(f"{ts.date()} is not a trading day of this calendar")
        return int(pos)

    def period_index(self) -> np.ndarray:
        """For every trading day, the index of the period it belongs to (-1 in the warm-up)."""
        return self._period_of_pos.copy()

    def period_of(self, date: Any) -> StrategyPeriod | None:
        """The period that a trading day belongs to, or None during the warm-up."""
        index = self._period_of_pos[self.position(date)]
        return None if index < 0 else self.periods[index]

    def periods_between(self, start: Any, end: Any) -> tuple[StrategyPeriod, ...]:
        """Periods that overlap the closed date range ``[start, end]``."""
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        return tuple(p for p in self.periods if p.end >= lo and p.start <= hi)

    def daily_from_periods(self, values: dict[int, float], fill: float = 0.0) -> np.ndarray:
        """Spread one value per period over its trading days (``fill`` where none is given).

        This is how a per-period LLM signal becomes a per-day feature: day ``t`` gets the
        value of the period containing ``t``, whose inputs ended before the period began.
        """
        table = np.full(len(self.periods) + 1, fill, dtype=np.float64)
        for index, value in values.items():
            table[index] = value
        # position -1 (warm-up) maps to the extra slot at the end, which holds ``fill``
        return table[self._period_of_pos]

    # ------------------------------------------------------------- RL windows

    def range_positions(self, start: Any, end: Any) -> tuple[int, int]:
        """Inclusive positions of the trading days within ``[start, end]`` (dates need not trade)."""
        lo = int(self.dates.searchsorted(pd.Timestamp(start), side="left"))
        hi = int(self.dates.searchsorted(pd.Timestamp(end), side="right")) - 1
        if hi < lo:
            raise DataError(
                f"no trading day between {pd.Timestamp(start).date()} and {pd.Timestamp(end).date()} "
                f"(data covers {self.dates[0].date()}..{self.dates[-1].date()})"
            )
        return lo, hi

    def chunks(
        self, start: Any, end: Any, chunk_length: int, *, min_length: int | None = None
    ) -> tuple[Chunk, ...]:
        """Cut ``[start, end]`` (first day no earlier than the warm-up) into ReWTS chunks.

        Chunks are consecutive and ``chunk_length`` days long; a remainder shorter than
        ``min_length`` (default: half a chunk) is merged into the last chunk instead of becoming a
        model trained on too little data.
        """
        if chunk_length < 2:
            raise ConfigError(f"rewts.chunk_length = {chunk_length}: must be at least 2")
        lo, hi = self.range_positions(start, end)
        lo = max(lo, self.warmup)
        if hi < lo:
            raise DataError(f"the range {start}..{end} lies inside the warm-up period")
        min_length = chunk_length // 2 if min_length is None else min_length
        bounds = list(range(lo, hi + 1, chunk_length))
        if len(bounds) > 1 and hi + 1 - bounds[-1] < min_length:
            bounds.pop()
        chunks = []
        for index, first in enumerate(bounds):
            last = bounds[index + 1] - 1 if index + 1 < len(bounds) else hi
            chunks.append(Chunk(index, self.dates[first], self.dates[last], first, last))
        return tuple(chunks)

    def lookback(self, date: Any, length: int) -> tuple[int, int]:
        """Inclusive positions of the ``length`` trading days *before* ``date``.

        Used to fit ensemble weights for a decision on ``date``: the window ends the day before.
        """
        pos = self.position(date)
        if pos < 1:
            raise DataError(f"no history before {pd.Timestamp(date).date()} for a look-back window")
        return max(0, pos - length), pos - 1

    def split(
        self, train_start: dt.date, train_end: dt.date, test_start: dt.date, test_end: dt.date
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """Inclusive positions of the train and test ranges; they never overlap."""
        train = self.range_positions(train_start, train_end)
        test = self.range_positions(test_start, test_end)
        if test[0] <= train[1]:
            raise ConfigError(
                f"split: the test range starts ({self.dates[test[0]].date()}) before the training "
                f"range ends ({self.dates[train[1]].date()})"
            )
        return train, test
