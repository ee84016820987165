"""Exploration schedules.

* ``linear_budget`` (the default): epsilon falls linearly from ``start`` to ``minimum`` over the
  first ``fraction`` of the run's whole step budget, then stays there, so it reaches its floor
  well before training ends whatever the episode count (SB3's ``exploration_fraction``).
* ``episode``: the seed's ``epsilon *= decay`` per finished episode (0.998 leaves 0.97 after 15
  episodes: exploration that never ends; kept to reproduce the upstream).
* ``step_exponential``: TDQN's ``min + (start - min) * exp(-step / decay_steps)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("linear_budget", "episode", "step_exponential")


@dataclass(frozen=True, slots=True)
class EpsilonSchedule:
    kind: str = "linear_budget"
    start: float = 1.0
    minimum: float = 0.05
    #: ``episode``: factor per finished episode
    decay: float = 0.998
    #: ``step_exponential``: time constant in environment steps
    decay_steps: float = 10_000.0
    #: ``linear_budget``: share of the run's steps over which epsilon falls to its floor
    fraction: float = 0.5

    def value(self, episode: int, step: int, total_steps: float | None = None) -> float:
        """Epsilon for the given finished-episode count and global step count; ``total_steps``
        is the run's step budget (needed by ``linear_budget``)."""
        if self.kind == "linear_budget":
            if not total_steps or total_steps <= 0:
                raise ValueError("the linear_budget schedule needs the run's step budget")
            progress = min(1.0, step / max(1.0, self.fraction * total_steps))
            return self.start + (self.minimum - self.start) * progress
        if self.kind == "episode":
            return max(self.minimum, self.start * self.decay**episode)
        if self.kind == "step_exponential":
            return self.minimum + (self.start - self.minimum) * math.exp(-step / self.decay_steps)
        raise ValueError(f"unknown epsilon schedule {self.kind!r}")
