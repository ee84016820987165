"""Named hyper-parameter sets of ``rewts.preset`` (the table; see :mod:`rewts.agents.presets`).

They live with the config because :class:`~rewts.config.models.Config` applies the preset
once, when it is validated: every stage then reads the values the preset gives, and none has
to remember to apply it.
"""

from __future__ import annotations

from typing import Any

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
            "tau_head": "none",
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
            "tau_head": "none",
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


def with_preset(data: dict[str, Any]) -> dict[str, Any]:
    """The raw config mapping ``data`` with its ``rewts.preset`` values written over the
    sections they name (the preset wins over the file and ``--set``); unchanged without one."""
    rewts = data.get("rewts")
    if rewts is None:
        return data
    preset = rewts.get("preset") if isinstance(rewts, dict) else getattr(rewts, "preset", None)
    values = PRESETS.get(preset) if isinstance(preset, str) else None
    if not values:
        return data
    out = dict(data)
    for section, update in values.items():
        current = out.get(section)
        if current is None:
            out[section] = dict(update)
        elif isinstance(current, dict):
            out[section] = {**current, **update}
        else:  # an already built section model
            out[section] = current.model_copy(update=update)
    return out
