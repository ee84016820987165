"""Feature sets produce the documented inputs, read only the past, and the reward scale comes
from the agent's own training days."""

from __future__ import annotations

import numpy as np
import pytest

from rewts.config.models import TradingEnvConfig
from rewts.data.features import feature_columns
from rewts.env import TradingEnv, build_env_data
from rewts.env.features import COMPACT_INDICATORS
from rewts.env.synthetic import synthetic_frame
from rewts.env.trading import reward_scale
from rewts.errors import DataError

ALL = feature_columns(["sp500", "vix", "tnx"])


def _frame(n: int = 400, seed: int = 0):
    frame = synthetic_frame(n, seed=seed)
    rng = np.random.default_rng(seed)
    for col in ALL:  # every data-layer column, with plausible magnitudes
        if col not in frame.columns:
            frame[col] = rng.normal(0, 1, n) + (50 if col.endswith("_close") else 0)
    for col in ("sma_20", "sma_50", "sma_100", "sma_200"):
        frame[col] = frame["close"] * (1 + rng.normal(0, 0.02, n))
    frame["extra_signal"] = rng.normal(0, 1, n)
    return frame


def test_compact_has_the_documented_inputs():
    data = build_env_data(
        "X", _frame(), ALL, window=30, train_range=(0, 300), tau=np.zeros(400),
        feature_set="compact",
    )  # fmt: skip
    assert data.names == (
        "ret_1d", "ret_5d", "ret_20d", "ret_60d", "vol_20d", *COMPACT_INDICATORS,
        "position", "tau",
    )  # fmt: skip
    assert data.obs_dim == 13 and data.feature_set == "compact"
    assert data.first_valid == 60


def test_full_and_tdqn_have_the_documented_inputs():
    full = build_env_data("X", _frame(), ALL, window=30, train_range=(0, 300), feature_set="full")
    assert full.obs_dim == 4 * 30 + len(ALL) + 1  # history, every indicator, position
    tdqn = build_env_data("X", _frame(), ALL, window=30, train_range=(0, 300), feature_set="tdqn")
    assert tdqn.obs_dim == 4 * 30 + 1
    assert tdqn.names[0] == "ret_lag1" and tdqn.names[-1] == "position"


@pytest.mark.parametrize("feature_set", ["compact", "full", "tdqn"])
def test_extra_columns_survive_every_feature_set(feature_set):
    data = build_env_data(
        "X", _frame(), [*ALL, "extra_signal"], window=10, train_range=(0, 300),
        feature_set=feature_set, extra_columns=["extra_signal"],
    )  # fmt: skip
    assert "extra_signal" in data.names


def test_unknown_feature_set_is_a_clear_error():
    with pytest.raises(DataError, match="unknown feature set 'wide'"):
        build_env_data("X", _frame(), ALL, window=10, train_range=(0, 300), feature_set="wide")


@pytest.mark.parametrize("feature_set", ["compact", "full", "tdqn"])
def test_no_look_ahead_row_t_only_reads_rows_before_t(feature_set):
    """Changing day d (prices and indicators) changes no observation row <= d."""
    frame = _frame()
    base = build_env_data("X", frame, ALL, window=10, train_range=(0, 200), feature_set=feature_set)
    d = 250
    moved = frame.copy()
    numeric = moved.select_dtypes("number").columns
    moved.loc[moved.index[d:], numeric] = moved.loc[moved.index[d:], numeric] * 1.7
    after = build_env_data(
        "X", moved, ALL, window=10, train_range=(0, 200), feature_set=feature_set
    )
    np.testing.assert_array_equal(base.obs[: d + 1], after.obs[: d + 1])
    assert not np.array_equal(base.obs[d + 1], after.obs[d + 1])


def test_reward_scale_reads_only_the_training_days():
    prices = synthetic_frame(400, seed=2)["close"].to_numpy()
    scale = reward_scale(prices, 50, 250)
    later = prices.copy()
    later[251:] *= np.linspace(1, 5, 149)  # a wild test period
    assert reward_scale(later, 50, 250) == scale
    expected = np.std(prices[51:251] / prices[50:250] - 1, ddof=1)
    assert scale == pytest.approx(expected)


def test_the_environment_divides_the_reward_by_the_scale():
    frame = synthetic_frame(200, seed=1)
    data = build_env_data("X", frame, (), window=5, train_range=(0, 150))
    cfg = TradingEnvConfig()
    raw = TradingEnv(data, cfg, start=10, end=100)
    scaled = TradingEnv(data, cfg, start=10, end=100, reward_scale=0.02)
    raw.reset()
    scaled.reset()
    for action in (1, 1, 0, 1):
        r1 = raw.step(action)[1]
        r2 = scaled.step(action)[1]
        assert r2 == pytest.approx(r1 / 0.02)
