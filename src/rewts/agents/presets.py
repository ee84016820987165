"""Named hyper-parameter sets. ``rewts.preset: tdqn`` is Théate & Ernst's published setup
(METHOD.md section 4); ``seed`` keeps the config's values.

A preset's values replace the file's for the keys it names (documented in default.yaml); every
stage that builds an agent or an environment goes through :func:`apply_preset`, so they agree.
The episode count is left to ``rewts.episodes_per_chunk`` / ``--episodes`` so that the flag
keeps working (TDQN trained 50 episodes: ``--episodes 50``).
Not reproduced: storing both actions' transitions per step, and whole-share sizing (we trade
fractional shares).
"""

from __future__ import annotations

from typing import Any

from rewts.config.models import Config

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "seed": {},
    "tdqn": {
        "rewts": {
            "gamma": 0.4,
            "learning_rate": 1e-4,
            "weight_decay": 1e-6,
            "target_update_freq": 1000,
            "buffer_size": 100_000,
            "batch_size": 32,
            "grad_clip": 1.0,
            "epsilon_schedule": "step_exponential",
            "epsilon_start": 1.0,
            "epsilon_min": 0.01,
            "epsilon_decay_steps": 10_000.0,
            "sticky_actions": 0.1,
            "hidden_dims": [512, 512, 512, 512, 512],
            "network": "tdqn",
            "random_start": True,
            "learning_starts": 32,
        },
        "trading_env": {
            "actions": "long_short",
            "transaction_cost": 0.001,
            "max_drawdown_limit": None,
            "max_position": 1.0,
            "short_margin": 0.1,
            "reward": "return",
            "window": 30,
        },
    },
}


def apply_preset(cfg: Config) -> Config:
    """``cfg`` with its ``rewts.preset`` applied (a new object; idempotent)."""
    values = PRESETS[cfg.rewts.preset]
    if not values:
        return cfg
    return cfg.model_copy(
        update={
            "rewts": cfg.rewts.model_copy(update=values.get("rewts", {})),
            "trading_env": cfg.trading_env.model_copy(update=values.get("trading_env", {})),
        }
    )
