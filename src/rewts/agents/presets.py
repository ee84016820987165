"""Named hyper-parameter sets. ``rewts.preset: default`` keeps the config's values (whose
defaults are the ones that learn: docs/rl.md); ``seed`` restores the upstream project's values
(exploration that never ends, raw-return reward, 145 inputs, a 15 % drawdown stop in training,
the last chunk as the single agent); ``tdqn`` is Théate & Ernst's published setup (METHOD.md
section 4).

A preset's values replace the file's for the keys it names (documented in default.yaml); every
:class:`~rewts.config.models.Config` applies them once, when it is validated
(:mod:`rewts.config.presets`), so every stage that builds an agent or an environment agrees.
The episode count is left to ``rewts.episodes_per_chunk`` / ``--episodes`` so that the flag
keeps working (TDQN trained 50 episodes: ``--episodes 50``).
Not reproduced: storing both actions' transitions per step, and whole-share sizing (we trade
fractional shares).
"""

from __future__ import annotations

from rewts.config.models import Config
from rewts.config.presets import PRESETS

__all__ = ["PRESETS", "apply_preset"]


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
