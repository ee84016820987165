"""Double DQN agents.

Public API::

    DDQNAgent(obs_dim, n_actions, settings=None, *, seed=0, device="cpu")
        .greedy_q(obs_batch) -> (N, n_actions) Q-values     # vectorized inference
        .act(obs, epsilon=0.0) -> int | (N,) actions
        .learn(env, episodes, *, on_episode=None) -> curves DataFrame
        .save(path, metadata) / DDQNAgent.load(path, device=...) -> (agent, metadata)
    DQNSettings.from_config(cfg.rewts)
    apply_preset(cfg) -> cfg with rewts.preset applied
"""

from rewts.agents.ddqn import DDQNAgent, DQNSettings, resolve_device, sharpe
from rewts.agents.presets import PRESETS, apply_preset
from rewts.agents.replay import Batch, ReplayBuffer
from rewts.agents.schedules import EpsilonSchedule

__all__ = [
    "PRESETS",
    "Batch",
    "DDQNAgent",
    "DQNSettings",
    "EpsilonSchedule",
    "ReplayBuffer",
    "apply_preset",
    "resolve_device",
    "sharpe",
]
