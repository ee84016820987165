"""Retry policy: exponential backoff with full jitter (AWS's "full jitter" variant).

Full jitter (a uniform draw in ``[0, min(cap, initial * multiplier**attempt)]``) spreads the
retries of many callers that failed together, instead of sending them back in one wave. The
limiter still gates every retry, and a server's Retry-After pauses everyone there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The seed's defaults: 2 s, x2, 30 s cap, 3 retries (``llm.retry``)."""

    initial_s: float = 2.0
    multiplier: float = 2.0
    max_s: float = 30.0
    max_retries: int = 3

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the wait before retry number ``attempt + 1`` (attempt counts from 0)."""
        return min(self.max_s, self.initial_s * self.multiplier**attempt)

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))
