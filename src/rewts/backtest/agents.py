"""The learned agents as the backtest sees them: greedy Q-values on arrays of observations.

The backtest needs, per ticker, *variant* and seed, the chunk agents and the global agent,
each able to give Q-values for a batch of test-day states with a given held position. An
:class:`AgentSource` provides that; :mod:`rewts.backtest.rl_source` adapts the RL stage
(training, checkpoints, observation matrix) to it, and tests use small fakes.

Variants (what the agent was trained and is fed with):

* ``llm``: the LLM feature tau (LLM+RL, the ReWTS chunks, the global agent);
* ``no_tau``: no tau column (RL-only);
* ``placebo_const`` / ``placebo_shuffled``: tau replaced by an uninformative version, in
  training *and* test, so the agent learns with the placebo it is tested with;
* ``leak``: an extra feature holding the return the next decision will earn (the sanity check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from rewts.training.variants import Variant

#: which variant and which member(s) each learned backtest agent uses
AGENT_VARIANT: dict[str, Variant] = {
    "rl_only": "no_tau",
    "llm_rl": "llm",
    "rewts": "llm",
    "global_llm_rl": "llm",
    "placebo_const": "placebo_const",
    "placebo_shuffled": "placebo_shuffled",
    "leak_sanity": "leak",
}


@dataclass
class Member:
    """One trained agent: a chunk model or the global one."""

    label: str
    #: chunk index, or None for the agent trained on the whole training range
    chunk: int | None
    #: per-episode training record (episode index; columns such as return, loss), if any
    curve: pd.DataFrame | None = None
    #: first and last day the member was trained on (for in-sample diagnostics), if known
    trained_on: tuple[pd.Timestamp, pd.Timestamp] | None = None
    #: first and last day of the validation range that picked its checkpoint, if any
    validated_on: tuple[pd.Timestamp, pd.Timestamp] | None = None

    @property
    def is_global(self) -> bool:
        return self.chunk is None


class AgentSource(Protocol):
    """What the backtest needs from the RL stage for one ticker."""

    #: target position of each action index, e.g. [-1, 1] or [-1, 0, 1]
    action_positions: np.ndarray
    #: the held positions an observation can carry (the book starts flat: 0 included)
    position_values: np.ndarray

    def members(self, ticker: str, variant: Variant, seed: int) -> list[Member]:
        """The trained chunk agents (in chunk order) and the global agent, if trained."""
        ...

    def q_values(
        self, ticker: str, variant: Variant, seed: int, member: Member, rows: np.ndarray
    ) -> np.ndarray:
        """Q-values ``(len(rows), len(position_values), n_actions)`` of ``member`` on the
        observation rows ``rows`` (calendar positions), for every possible held position."""
        ...

    def tau_q_values(
        self,
        ticker: str,
        variant: Variant,
        seed: int,
        member: Member,
        rows: np.ndarray,
        tau: float | None,
    ) -> np.ndarray | None:
        """Q-values ``(len(rows), n_actions)`` with the book flat and tau as observed (None) or
        set to ``tau`` on every row, everything else as observed; None when the variant reads
        no tau."""
        ...


def tau_decided(
    q_observed: np.ndarray, q_without: np.ndarray, action_positions: np.ndarray
) -> float:
    """Share of days on which tau decided the position: the greedy position with the day's tau
    differs from the one with tau = 0, everything else equal (0: the agent never acts on its
    signal; 1: every day's position is the signal's doing)."""
    if len(q_observed) == 0:
        return float("nan")
    positions = np.asarray(action_positions, dtype=np.float64)
    with_tau = positions[np.argmax(q_observed, axis=1)]
    without = positions[np.argmax(q_without, axis=1)]
    return float(np.mean(with_tau != without))
