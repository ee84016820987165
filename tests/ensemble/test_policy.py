"""The ensemble policy: look-back ends the day before, no look-ahead, acts on weighted Q."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rewts.data.timeline import Timeline
from rewts.ensemble import EnsembleSettings, ReWTSEnsemble, window_bounds, window_problem
from rewts.errors import ConfigError, DataError

LS = np.array([-1.0, 1.0])  # long_short: action 0 short, 1 long


def _q_from_positions(positions: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """Q-values whose greedy action is the given position (+1 long / -1 short)."""
    return np.stack([-positions * margin, positions * margin], axis=-1)


def _world(n=300, k=4, seed=0):
    rng = np.random.default_rng(seed)
    outcome = rng.normal(0, 0.01, n)
    pos = np.sign(rng.normal(size=(n, k)))
    return pos, outcome


@pytest.mark.parametrize("lookback", [1, 5, 20, 200])
def test_window_ends_the_day_before_as_timeline_lookback(lookback):
    dates = pd.bdate_range("2017-01-02", periods=400)
    tl = Timeline(dates, strategy_frequency=20, warmup=10)
    for row in range(1, len(dates)):
        assert window_bounds(row, lookback) == tl.lookback(dates[row], lookback)
    lo, hi = window_bounds(0, lookback)
    assert hi < lo  # nothing is known before the first day


def test_weights_at_row_t_do_not_depend_on_anything_from_row_t_on():
    pos, outcome = _world()
    q = _q_from_positions(pos)
    ens = ReWTSEnsemble(4, EnsembleSettings(lookback=30), LS)
    base = ens.run(q, outcome, start=50)
    for t in (50, 120, 299):
        q2, out2 = q.copy(), outcome.copy()
        q2[t:] = np.random.default_rng(t).normal(size=q2[t:].shape)
        out2[t:] = -out2[t:] * 7
        other = ReWTSEnsemble(4, EnsembleSettings(lookback=30), LS).run(q2, out2, start=50)
        row = t - 50
        np.testing.assert_array_equal(base.weights[: row + 1], other.weights[: row + 1])
        np.testing.assert_array_equal(base.actions[:row], other.actions[:row])


def test_the_outcome_of_the_day_before_does_enter_the_window():
    pos, outcome = _world(k=3)
    pos[:, 0] = np.sign(outcome)  # model 0 was always right
    q = _q_from_positions(pos)
    s = EnsembleSettings(lookback=1, min_window=1)
    run = ReWTSEnsemble(3, s, LS).run(q, outcome, start=10)
    # with a one-day window the weight goes to models right on day t-1
    for r in range(5):
        t = 10 + r
        right = pos[t - 1] == np.sign(outcome[t - 1])
        assert run.weights[r][right].sum() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("signal", ["position", "q_value"])
def test_a_model_right_on_the_lookback_dominates_and_the_ensemble_follows_it(signal):
    pos, outcome = _world(n=260, k=5, seed=1)
    pos[:, 3] = np.sign(outcome)  # model 3 knows each day's direction
    margins = np.array([50.0, 0.1, 3.0, 1.0, 7.0])  # very different Q scales
    q = _q_from_positions(pos) * margins[None, :, None]
    if signal == "q_value":  # model 3's preference tracks the size of the move too
        q[:, 3, :] = _q_from_positions(outcome * 100.0)
    run = ReWTSEnsemble(5, EnsembleSettings(lookback=60, signal=signal), LS).run(
        q, outcome, start=100
    )
    assert run.weights[:, 3].min() > 0.6
    assert run.fallbacks == 0
    # model 0 has 500x larger Q-values, yet after scaling the weights decide
    agree = run.positions == pos[100:, 3]
    assert agree.mean() > 0.95


def test_raw_q_average_lets_a_large_scale_model_dominate():
    pos, outcome = _world(n=200, k=2, seed=2)
    right = np.random.default_rng(9).random(200) < 0.85
    pos[:, 1] = np.where(right, np.sign(outcome), -np.sign(outcome))  # right 85 % of days
    q = _q_from_positions(pos) * np.array([1000.0, 1.0])[None, :, None]
    settings = {"lookback": 50, "rebalance_every": 5}
    raw = ReWTSEnsemble(2, EnsembleSettings(**settings, q_normalize=False), LS).run(
        q, outcome, start=100
    )
    scaled = ReWTSEnsemble(2, EnsembleSettings(**settings), LS).run(q, outcome, start=100)
    np.testing.assert_allclose(raw.weights, scaled.weights)
    assert raw.weights[:, 1].min() > 0.6 and raw.weights[:, 0].min() > 0.01
    # where the two disagree, raw Q follows the 1000x model despite its small weight,
    # the scaled average follows the weights
    disagree = pos[100:, 0] != pos[100:, 1]
    assert disagree.sum() > 20
    assert (raw.positions[disagree] == pos[100:, 0][disagree]).all()
    assert (scaled.positions[disagree] == pos[100:, 1][disagree]).all()


def test_position_conditional_q_values_follow_the_held_position():
    n = 40
    outcome = np.zeros(n)
    # one model whose preference flips with the position it holds: hold long -> go short
    q = np.zeros((n, 1, 2, 2))
    q[:, 0, 0, :] = [0.0, 1.0]  # holding short (-1): prefers long
    q[:, 0, 1, :] = [1.0, 0.0]  # holding long (+1): prefers short
    run = ReWTSEnsemble(1, EnsembleSettings(lookback=5), LS).run(
        q, outcome, start=0, position_values=np.array([-1.0, 1.0]), initial_position=-1.0
    )
    np.testing.assert_array_equal(run.positions[:6], [1, -1, 1, -1, 1, -1])


def test_rebalance_every_holds_weights_between_dates_and_records_them():
    pos, outcome = _world(n=120, k=3, seed=4)
    q = _q_from_positions(pos)
    run = ReWTSEnsemble(3, EnsembleSettings(lookback=20, rebalance_every=10), LS).run(
        q, outcome, start=40
    )
    assert run.rebalances["row"].tolist() == list(range(40, 120, 10))
    for a in range(0, 80, 10):
        block = run.weights[a : a + 10]
        assert (block == block[0]).all()
    assert np.allclose(run.weights.sum(axis=1), 1.0) and (run.weights >= 0).all()
    assert (run.rebalances["window_end"] == run.rebalances["row"] - 1).all()


def test_window_problem_scales():
    q = _q_from_positions(np.array([[1.0, -1.0], [-1.0, -1.0], [1.0, 1.0]]), margin=4.0)
    M, y = window_problem(q, np.array([0.02, -0.01, 0.0]), LS, "position")
    np.testing.assert_array_equal(M, [[1, -1], [-1, -1], [1, 1]])
    np.testing.assert_array_equal(y, [1, -1, 0])
    M, y = window_problem(q, np.array([0.02, -0.01, 0.03]), LS, "q_value")
    np.testing.assert_allclose(np.abs(M).mean(axis=0), 1.0)
    np.testing.assert_allclose(np.abs(y).mean(), 1.0)
    with pytest.raises(ConfigError):
        window_problem(q, np.zeros(3), LS, "nope")  # type: ignore[arg-type]


def test_bad_inputs_are_clear_errors():
    ens = ReWTSEnsemble(2, EnsembleSettings(lookback=5), LS)
    with pytest.raises(DataError, match="models"):
        ens.run(np.zeros((10, 3, 2)), np.zeros(10))
    with pytest.raises(DataError, match="outcome"):
        ens.run(np.zeros((10, 2, 2)), np.zeros(9))
    with pytest.raises(ConfigError, match="rebalance_every"):
        EnsembleSettings(lookback=5, rebalance_every=0)


def test_a_one_day_lookback_still_fits_weights():
    pos, outcome = _world(n=40, k=2, seed=5)
    pos[:, 1] = np.sign(outcome)
    run = ReWTSEnsemble(2, EnsembleSettings(lookback=1), LS).run(
        _q_from_positions(pos), outcome, start=5
    )
    assert (run.rebalances.status == "solved").all() and len(run.rebalances) == 35
    # the one-day window holds row t-1: where the models disagreed there, the right one wins;
    # where they agreed, the tie is split evenly
    disagreed = pos[4:-1, 0] != pos[4:-1, 1]
    assert disagreed.any() and (~disagreed).any()
    np.testing.assert_allclose(run.weights[disagreed, 1], 1.0, atol=1e-4)
    np.testing.assert_allclose(run.weights[~disagreed, 1], 0.5, atol=1e-4)
