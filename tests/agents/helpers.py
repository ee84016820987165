"""What several agent tests share: a tiny fast learner and the greedy hit rate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rewts.agents import DQNSettings, EpsilonSchedule
from rewts.env import TradingEnv

#: a small network that learns a synthetic market in a few episodes
TINY = DQNSettings(
    hidden_dims=(32, 32),
    gamma=0.0,
    learning_rate=1e-3,
    batch_size=32,
    learning_starts=64,
    target_update_freq=50,
    epsilon=EpsilonSchedule(decay=0.6, minimum=0.02),
)


def hit_rate(env: TradingEnv, policy: Callable[[np.ndarray], int]) -> float:
    """Share of one pass's days on which ``policy``'s position earned a positive return."""
    obs, _ = env.reset()
    hits, done = [], False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        hits.append(info["return"] > 0)
        done = terminated or truncated
    return float(np.mean(hits))
