"""Exploration that ends: the default schedule reaches its floor well before training ends,
whatever the episode count (the seed's per-episode decay left epsilon at 0.97 after 15)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewts.agents.ddqn import DDQNAgent, DQNSettings
from rewts.agents.schedules import EpsilonSchedule
from rewts.config.models import TradingEnvConfig
from rewts.env import TradingEnv, build_env_data
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame


@pytest.mark.parametrize("total", [1, 7, 300, 12_345, 10_000_000])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 1.0])
def test_linear_budget_reaches_its_floor_at_the_fraction_of_any_budget(total, fraction):
    s = EpsilonSchedule(kind="linear_budget", start=1.0, minimum=0.05, fraction=fraction)
    assert s.value(0, 0, total) == 1.0
    floor_at = int(np.ceil(max(1.0, fraction * total)))
    assert s.value(0, floor_at, total) == pytest.approx(0.05)
    assert s.value(0, total, total) == pytest.approx(0.05)
    if floor_at > 1:
        assert s.value(0, floor_at - 1, total) > 0.05


def test_linear_budget_refuses_to_run_without_a_budget():
    with pytest.raises(ValueError, match="budget"):
        EpsilonSchedule(kind="linear_budget").value(0, 10, None)


def test_the_seed_schedule_never_ends_exploring():
    """Why the default changed: the seed's decay, measured the way the issue did."""
    seed = EpsilonSchedule(kind="episode", decay=0.998)
    assert seed.value(15, 0) > 0.97 and seed.value(100, 0) > 0.8


@pytest.mark.parametrize("episodes", [1, 3, 12])
@pytest.mark.parametrize("random_start", [False, True])
def test_training_ends_at_the_floor_for_any_episode_count(episodes, random_start):
    torch.set_num_threads(1)
    frame = synthetic_frame(120, seed=3)
    data = build_env_data("SYN", frame, SYNTHETIC_FEATURES, window=5, train_range=(0, 100))
    env = TradingEnv(
        data, TradingEnvConfig(), start=10, end=100, random_start=random_start, min_episode=90
    )
    settings = DQNSettings(hidden_dims=(4,), learning_starts=10**9)  # no updates: fast
    agent = DDQNAgent(data.obs_dim, 2, settings, seed=1)
    curves = agent.learn(env, episodes)
    # every episode has the expected length here, so the last one ends at the floor
    assert curves["epsilon"].iloc[-1] == pytest.approx(0.05)
    assert curves["epsilon"].is_monotonic_decreasing or episodes == 1
    reached = curves.index[np.isclose(curves["epsilon"], 0.05)][0]
    assert reached <= int(np.ceil(0.5 * episodes))  # half the budget, not the end
