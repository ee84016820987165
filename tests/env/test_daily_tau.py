"""One ``daily_tau`` (issue #14) for the environment and the backtest, each keeping what it
relied on: the environment drops unusable rows and clips; the backtest, whose tables are
checked first, keeps every value exactly as given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rewts.backtest.baselines import check_strategies
from rewts.data.timeline import Timeline
from rewts.env.factory import daily_tau
from rewts.errors import DataError


def _timeline() -> Timeline:
    return Timeline(pd.bdate_range("2017-01-02", periods=300), strategy_frequency=20, warmup=40)


def _old_backtest_daily_tau(strategies: pd.DataFrame, timeline: Timeline) -> np.ndarray:
    """The backtest's own version before the two were merged (kept here as the reference)."""
    values = {
        int(p): float(t)
        for p, t in zip(strategies["period"], strategies["tau"], strict=True)
        if 0 <= int(p) < len(timeline.periods)
    }
    return timeline.daily_from_periods(values, fill=0.0)


def test_the_backtest_gets_its_checked_values_unclipped() -> None:
    tl = _timeline()
    n = len(tl.periods)
    tau = np.tile([0.5, -0.3, 0.0, 1.0 + 5e-10, -1.0 - 5e-10], n)[:n]
    periods = list(range(n))
    periods[3] = n + 5  # a period past the timeline: no signal
    table = check_strategies(pd.DataFrame({"period": periods, "tau": tau}), "AAA")
    got = daily_tau(table, tl, clip=False)
    np.testing.assert_array_equal(got, _old_backtest_daily_tau(table, tl))
    assert got.max() == 1.0 + 5e-10  # within check_strategies' tolerance, kept as given


def test_the_environment_drops_unusable_rows_and_clips() -> None:
    tl = _timeline()
    p = tl.periods
    table = pd.DataFrame(
        {"period": [0, 1, 2, 3, -1], "tau": [1.7, np.nan, "junk", -0.25, 0.9]},
    )
    got = daily_tau(table, tl)
    assert (got[p[0].start_pos : p[0].end_pos + 1] == 1.0).all()  # clipped
    assert (got[p[1].start_pos : p[2].end_pos + 1] == 0.0).all()  # NaN, non-numeric: 0
    assert (got[p[3].start_pos : p[3].end_pos + 1] == -0.25).all()
    assert (got[: tl.warmup] == 0.0).all()
    with pytest.raises(DataError, match="tau"):
        daily_tau(pd.DataFrame({"period": [0]}), tl)
