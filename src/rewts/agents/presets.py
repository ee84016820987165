"""Named hyper-parameter sets. ``rewts.preset: default`` keeps the config's values (whose
defaults are the ones that learn: docs/rl.md); ``seed`` restores the upstream project's values
(exploration that never ends, raw-return reward, 145 inputs, a 15 % drawdown stop in training,
the last chunk as the single agent); ``tdqn`` is Théate & Ernst's published setup (METHOD.md
section 4).

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
    "default": {},
    "seed": {
        "rewts": {
            "gamma": 0.995,
            "epsilon_schedule": "episode",
            "epsilon_start": 1.0,
            "epsilon_min": 0.05,
            "epsilon_decay": 0.998,
            "learning_rate": 5e-4,
            "weight_decay": 0.0,
            "dropout": 0.0,
            "batch_size": 128,
            "buffer_size": 50_000,
            "target_update_freq": 20,
            "hidden_dims": [256, 256, 128],
            "grad_clip": 10.0,
            "sticky_actions": 0.0,
            "learning_starts": 500,
            "train_freq": 1,
            "random_start": True,
            "network": "mlp",
            "validation_days": 0,
        },
        "trading_env": {
            "transaction_cost": 0.0015,
            "max_position": 0.95,
            "max_drawdown_limit": 0.15,
            "drawdown_stop_in_training": True,
            "actions": "long_short",
            "reward": "return",
            "reward_scale": "none",
            "features": "full",
            "window": 30,
            "price_column": "close",
        },
        "backtest": {"single_agent": "last_chunk"},
    },
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
            "validation_days": 0,
        },
        "trading_env": {
            "actions": "long_short",
            "transaction_cost": 0.001,
            "max_drawdown_limit": None,
            "max_position": 1.0,
            "short_margin": 0.1,
            "reward": "return",
            "reward_scale": "none",
            "features": "tdqn",
            "window": 30,
        },
        # TDQN trains one agent on the whole training range and selects nothing
        "backtest": {"single_agent": "global"},
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
            "backtest": cfg.backtest.model_copy(update=values.get("backtest", {})),
        }
    )
