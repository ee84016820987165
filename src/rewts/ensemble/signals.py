"""What the ReWTS QP fits: each chunk model's signal and the ex-post target, on one scale.

Two scales (``rewts.ensemble_signal``), explained in docs/ensemble.md:

* ``position`` (default): column i of ``M`` is the position model i's greedy action takes
  (-1 short, 0 flat, +1 long) on each look-back day, and ``y`` is the position that would
  have been right, ``sign(r)`` of the return that position earned. Every model is on the same
  scale by construction, whatever its reward scale, discount or training length.
* ``q_value``: column i is model i's signed preference, the greedy action's Q-value above the
  mean over actions, times the greedy action's direction; ``y`` is the realized return.
  Q-values of independently trained networks live on arbitrary scales, so each column and
  ``y`` are divided by their mean absolute value on the window (a common unit scale).

Everything here is a pure function of arrays; the window slicing lives in the policy.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from rewts.errors import ConfigError, DataError

SignalKind = Literal["position", "q_value"]


def greedy_positions(q: np.ndarray, action_positions: np.ndarray) -> np.ndarray:
    """Position of each model's greedy action; ``q`` is ``(..., n_actions)``."""
    return np.asarray(action_positions, dtype=np.float64)[np.argmax(q, axis=-1)]


def centered(q: np.ndarray) -> np.ndarray:
    """Q-values minus their mean over actions (the state value does not pick an action)."""
    return q - q.mean(axis=-1, keepdims=True)


def preference(q: np.ndarray, action_positions: np.ndarray) -> np.ndarray:
    """Signed strength of each greedy choice: its direction times its margin over the mean."""
    c = centered(q)
    return greedy_positions(q, action_positions) * c.max(axis=-1)


def _unit_scale(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Divide by the mean absolute value along ``axis`` (left as is where that is 0)."""
    scale = np.abs(x).mean(axis=axis, keepdims=True)
    return np.divide(x, scale, out=np.zeros_like(x), where=scale > 0)


def window_problem(
    q_window: np.ndarray,
    outcome_window: np.ndarray,
    action_positions: np.ndarray,
    kind: SignalKind,
) -> tuple[np.ndarray, np.ndarray]:
    """``(M, y)`` for one look-back window.

    ``q_window`` is ``(window, models, actions)``: each model's Q-values for the states of the
    look-back days; ``outcome_window`` the return a long position earned for each of those
    decisions (known by the decision day by construction of the window).
    """
    q_window = np.asarray(q_window, dtype=np.float64)
    outcome = np.asarray(outcome_window, dtype=np.float64)
    if q_window.ndim != 3 or outcome.shape != q_window.shape[:1]:
        raise DataError(
            f"window signals must be (window, models, actions) with one outcome per day, got "
            f"{q_window.shape} and {outcome.shape}"
        )
    if kind == "position":
        return greedy_positions(q_window, action_positions), np.sign(outcome)
    if kind == "q_value":
        M = _unit_scale(preference(q_window, action_positions), axis=0)
        return M, _unit_scale(outcome, axis=0)
    raise ConfigError(f"rewts.ensemble_signal = {kind!r}: choose 'position' or 'q_value'")


def q_scale(q_window: np.ndarray) -> np.ndarray:
    """Per-model scale of Q-values on a window: the mean greedy margin over the action mean.

    Dividing a model's centered Q-values by it puts every model on a unit scale before the
    weighted average, so the weights, not each network's reward scale, decide who counts.
    """
    margin = centered(np.asarray(q_window, dtype=np.float64)).max(axis=-1).mean(axis=0)
    return np.where(margin > 0, margin, 1.0)
