"""The Gymnasium environment: API conformance, same P&L as the accounting, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from rewts.config.models import Config, TradingEnvConfig
from rewts.data.timeline import Timeline
from rewts.env import TradingEnv, action_targets, build_env_data, simulate
from rewts.env.factory import env_data_for
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame
from rewts.errors import DataError


def _data(n: int = 300, seed: int = 0, tau: bool = True):
    frame = synthetic_frame(n, seed=seed)
    tau_col = np.linspace(-1, 1, n) if tau else None
    return build_env_data(
        "SYN", frame, SYNTHETIC_FEATURES, window=10, train_range=(0, 200), tau=tau_col
    )


@pytest.mark.parametrize("actions", ["long_short", "short_flat_long"])
def test_passes_gymnasium_env_checker(actions: str) -> None:
    env = TradingEnv(_data(), TradingEnvConfig(actions=actions, reward="risk_adjusted"))
    check_env(env, skip_render_check=True)
    assert env.action_space.n == len(action_targets(actions))


@pytest.mark.parametrize(
    ("actions", "dd"), [("long_short", None), ("short_flat_long", None), ("long_short", 0.1)]
)
def test_env_equity_equals_accounting(actions: str, dd: float | None) -> None:
    data = _data(seed=4)
    cfg = TradingEnvConfig(actions=actions, max_drawdown_limit=dd, transaction_cost=0.002)
    env = TradingEnv(data, cfg, start=20, end=250)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    equity, rewards, chosen = [], [], []
    done = False
    while not done:
        action = int(rng.integers(env.action_space.n))
        _, reward, terminated, truncated, info = env.step(action)
        chosen.append(action_targets(actions)[action])
        equity.append(info["equity"])
        rewards.append(reward)
        done = terminated or truncated
    days = len(chosen)
    path = simulate(data.prices[20 : 20 + days + 1], np.array([*chosen, 0.0]), cfg)
    np.testing.assert_allclose(equity, path.equity[:days], rtol=1e-12)
    np.testing.assert_allclose(rewards, path.step_rewards()[:days], rtol=1e-9, atol=1e-12)
    if dd is None:
        assert days == 230  # decisions 20..249, truncated at the end of the range
        assert truncated and not terminated
    else:
        assert terminated == (not path.alive[days - 1])


def test_observation_carries_position_and_tau() -> None:
    data = _data()
    env = TradingEnv(data, TradingEnvConfig(), start=50, end=100)
    obs, _ = env.reset()
    assert obs[data.position_index] == 0.0
    assert obs[data.tau_index] == pytest.approx(data.obs[50, data.tau_index])
    obs, *_ = env.step(1)  # long
    assert obs[data.position_index] == 1.0
    assert data.names[-2:] == ("position", "tau")
    no_tau = _data(tau=False)
    assert no_tau.tau_index is None and no_tau.obs_dim == data.obs_dim - 1


def test_range_outside_window_is_rejected() -> None:
    with pytest.raises(DataError, match="full observation window"):
        TradingEnv(_data(), TradingEnvConfig(), start=3, end=100)


def _lookahead_setup(frame: pd.DataFrame, tau_by_period: dict[int, float]):
    cfg = Config(
        data={"warmup_days": 40},
        strategy_frequency=20,
        split={
            "train_start": "2012-01-01",
            "train_end": "2012-12-31",
            "test_start": "2013-01-02",
            "test_end": "2013-12-31",
        },
    )
    strategy = pd.DataFrame({"period": list(tau_by_period), "tau": list(tau_by_period.values())})
    data = env_data_for(cfg, "SYN", frame, SYNTHETIC_FEATURES, strategy)
    return cfg, data


def test_no_look_ahead_future_data_and_later_tau_do_not_change_the_observation() -> None:
    frame = synthetic_frame(500, seed=1, start="2012-01-02")
    timeline = Timeline(frame.index, strategy_frequency=20, warmup=40)
    rng = np.random.default_rng(0)
    taus = {p.index: float(rng.uniform(-1, 1)) for p in timeline.periods}
    _, base = _lookahead_setup(frame, taus)
    t = timeline.position("2013-03-15")  # a test-period day, mid-period
    period = timeline.period_of(frame.index[t]).index

    future = frame.copy()
    numeric = future.columns
    noise = rng.uniform(0.5, 1.5, size=(len(frame) - t, len(numeric)))
    future.iloc[t:] = future.iloc[t:].to_numpy() * noise  # day t onwards: unknown at decision
    future.iloc[t:] = future.iloc[t:].sample(frac=1.0, random_state=1).to_numpy()  # and shuffled
    later = {k: (float(rng.uniform(-1, 1)) if k > period else v) for k, v in taus.items()}
    _, perturbed = _lookahead_setup(future, later)

    np.testing.assert_array_equal(perturbed.obs[: t + 1], base.obs[: t + 1])
    # the test can fail: the same perturbation one day earlier does change row t
    earlier = frame.copy()
    earlier.iloc[t - 1 :] = earlier.iloc[t - 1 :].to_numpy() * 1.1
    earlier.loc[earlier.index[t - 1], "volume"] *= 3
    _, moved = _lookahead_setup(earlier, taus)
    assert not np.array_equal(moved.obs[t], base.obs[t])
    # and tau of day t is the value of its own period (inputs ended before it began)
    assert base.obs[t, base.tau_index] == pytest.approx(taus[period])


def test_risk_adjusted_reward_subtracts_penalties_and_reduces_to_return() -> None:
    data = _data(seed=2)

    def rewards(**kw) -> np.ndarray:
        env = TradingEnv(data, TradingEnvConfig(max_drawdown_limit=None, **kw), start=20, end=120)
        env.reset(seed=0)
        out = []
        for t in range(99):
            out.append(env.step(t % 2)[1])  # flip every day: turnover and volatility
        return np.array(out)

    plain = rewards()
    zero = rewards(reward="risk_adjusted", reward_vol_penalty=0.0, reward_drawdown_penalty=0.0,
                   reward_trade_penalty=0.0)  # fmt: skip
    adjusted = rewards(reward="risk_adjusted")
    np.testing.assert_allclose(zero, plain)
    assert (adjusted <= plain + 1e-15).all() and (adjusted < plain).mean() > 0.9
