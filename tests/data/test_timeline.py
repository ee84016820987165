"""Property tests: the time-alignment rules hold for any calendar and any lengths."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewts.data.timeline import Timeline
from rewts.errors import DataError


@st.composite
def calendars(draw):
    n = draw(st.integers(min_value=30, max_value=600))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=5), min_size=n, max_size=n))
    start = pd.Timestamp("2010-01-04") + pd.Timedelta(days=draw(st.integers(0, 3000)))
    return start + pd.to_timedelta(np.cumsum(gaps), unit="D")


@settings(max_examples=200, deadline=None)
@given(dates=calendars(), freq=st.integers(1, 40), warmup=st.integers(1, 25))
def test_periods_partition_the_calendar_after_warmup_without_lookahead(dates, freq, warmup):
    tl = Timeline(dates, strategy_frequency=freq, warmup=warmup)
    covered = []
    for m, period in enumerate(tl.periods):
        assert period.index == m
        # the strategy's inputs end strictly before the first day it guides
        assert period.inputs_end < period.start
        assert period.inputs_end_pos == period.start_pos - 1
        assert tl.dates[period.inputs_end_pos] == period.inputs_end
        # ... and exactly on the last day of the previous period
        if m > 0:
            assert period.inputs_end == tl.periods[m - 1].end
        assert 1 <= period.length <= freq
        covered.extend(range(period.start_pos, period.end_pos + 1))
    assert covered == list(range(warmup, len(dates)))
    index = tl.period_index()
    assert (index[:warmup] == -1).all()
    assert (np.diff(index[warmup:]) >= 0).all()


@settings(max_examples=100, deadline=None)
@given(dates=calendars(), freq=st.integers(1, 30), warmup=st.integers(1, 25))
def test_daily_values_come_only_from_periods_whose_inputs_ended_before(dates, freq, warmup):
    tl = Timeline(dates, strategy_frequency=freq, warmup=warmup)
    values = {p.index: float(p.index + 1) for p in tl.periods}
    daily = tl.daily_from_periods(values, fill=0.0)
    for pos, value in enumerate(daily):
        if pos < warmup:
            assert value == 0.0
            continue
        period = tl.periods[int(value) - 1]
        assert period.inputs_end_pos < pos  # the value was computable before day pos


@settings(max_examples=100, deadline=None)
@given(dates=calendars(), length=st.integers(2, 120), warmup=st.integers(1, 25))
def test_chunks_are_contiguous_and_inside_the_range(dates, length, warmup):
    tl = Timeline(dates, strategy_frequency=20, warmup=warmup)
    chunks = tl.chunks(dates[0], dates[-1], length)
    assert chunks[0].start_pos == warmup
    assert chunks[-1].end_pos == len(dates) - 1
    for a, b in itertools.pairwise(chunks):
        assert b.start_pos == a.end_pos + 1
        assert a.length == length
    if len(chunks) > 1:
        assert chunks[-1].length >= length // 2


@settings(max_examples=100, deadline=None)
@given(dates=calendars(), length=st.integers(1, 300), data=st.data())
def test_lookback_window_ends_the_day_before(dates, length, data):
    tl = Timeline(dates, strategy_frequency=20, warmup=1)
    pos = data.draw(st.integers(1, len(dates) - 1))
    lo, hi = tl.lookback(dates[pos], length)
    assert hi == pos - 1
    assert hi - lo + 1 == min(length, pos)


def test_split_ranges_never_overlap():
    dates = pd.bdate_range("2012-01-02", "2019-12-31")
    tl = Timeline(dates, strategy_frequency=20, warmup=200)
    train, test = tl.split(
        pd.Timestamp("2012-01-01").date(),
        pd.Timestamp("2017-12-31").date(),
        pd.Timestamp("2018-01-02").date(),
        pd.Timestamp("2019-12-31").date(),
    )
    assert train[1] < test[0]
    assert tl.dates[test[0]] == pd.Timestamp("2018-01-02")


def test_too_little_history_for_the_warmup_is_a_clear_error():
    with pytest.raises(DataError, match="warm-up needs 200"):
        Timeline(pd.bdate_range("2020-01-01", periods=150), strategy_frequency=20, warmup=200)


def test_duplicate_dates_are_rejected():
    with pytest.raises(DataError, match="duplicate date"):
        Timeline(
            pd.to_datetime(["2020-01-02", "2020-01-02", "2020-01-03"]),
            strategy_frequency=1,
            warmup=1,
        )
