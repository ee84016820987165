"""Exploration schedules: the seed's per-episode multiplicative decay and TDQN's per-step
exponential decay."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EpsilonSchedule:
    kind: str = "episode"
    start: float = 1.0
    minimum: float = 0.05
    #: ``episode``: factor per finished episode
    decay: float = 0.998
    #: ``step_exponential``: time constant in environment steps
    decay_steps: float = 10_000.0

    def value(self, episode: int, step: int) -> float:
        """Epsilon for the given finished-episode count and global step count."""
        if self.kind == "episode":
            return max(self.minimum, self.start * self.decay**episode)
        if self.kind == "step_exponential":
            return self.minimum + (self.start - self.minimum) * math.exp(-step / self.decay_steps)
        raise ValueError(f"unknown epsilon schedule {self.kind!r}")
