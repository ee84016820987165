"""The ReWTS ensemble policy: re-fit weights on the look-back window, act on weighted Q-values.

Rows are decision days in calendar order. Row ``t``'s Q-values come from a state built from
data up to day ``t-1``; the outcome of row ``s`` (the return a long position taken at ``s``
earned) is known ``outcome_lag`` rows later. The weights used at row ``t`` are fitted on the
``lookback`` rows ``[t - outcome_lag - lookback + 1, t - outcome_lag]``; with the usual lag of
1 that is exactly :meth:`rewts.data.timeline.Timeline.lookback` ``(date_t, lookback)``: the
window ends the day before. Nothing at or after row ``t`` enters the weights of row ``t``.

When an agent's state includes the position it holds, its Q-values depend on the ensemble's
own earlier actions. The caller then passes Q-values for every possible held position
(``(rows, models, positions, actions)``) and the scan below picks the one actually held,
which keeps the networks' forward passes vectorized over all rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rewts.ensemble.signals import SignalKind, centered, q_scale, window_problem
from rewts.ensemble.weights import Solver, WeightSolver, uniform
from rewts.errors import ConfigError, DataError


@dataclass(frozen=True, slots=True)
class EnsembleSettings:
    """How the ensemble re-weights its members (from ``rewts.*`` and ``backtest.*``)."""

    lookback: int
    rebalance_every: int = 1
    signal: SignalKind = "position"
    solver: Solver = "clarabel"
    #: put each member's Q-values on a unit scale before averaging (see signals.q_scale)
    q_normalize: bool = True
    #: rows between a decision and the first decision that may see its outcome
    outcome_lag: int = 1
    #: fewest look-back rows for a QP (at most ``lookback``); before that the weights stay uniform
    min_window: int = 2

    def __post_init__(self) -> None:
        if self.lookback < 1:
            raise ConfigError(f"rewts.lookback_length = {self.lookback}: must be at least 1")
        if self.rebalance_every < 1:
            raise ConfigError(
                f"backtest.rebalance_every = {self.rebalance_every}: must be at least 1"
            )
        if self.outcome_lag < 1:
            raise ConfigError(f"outcome_lag = {self.outcome_lag}: an outcome is never known early")


@dataclass
class EnsembleRun:
    """What the ensemble did on the rows from ``start`` on."""

    actions: np.ndarray
    positions: np.ndarray
    #: combined (weighted, scaled) Q-values the action was taken on
    q_values: np.ndarray
    #: weights in force on each row, ``(rows, models)``
    weights: np.ndarray
    #: one row per rebalance: row, status, reason, objective, solve time, window bounds
    rebalances: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def fallbacks(self) -> int:
        if self.rebalances.empty:
            return 0
        return int((self.rebalances["status"] == "fallback").sum())


def window_bounds(row: int, lookback: int, outcome_lag: int = 1) -> tuple[int, int]:
    """Inclusive rows of the look-back window for a decision at ``row`` (may be empty: hi < lo)."""
    hi = row - outcome_lag
    return max(0, hi - lookback + 1), hi


class ReWTSEnsemble:
    """Weighted combination of chunk models, re-fitted on a rolling look-back window."""

    def __init__(
        self, n_models: int, settings: EnsembleSettings, action_positions: np.ndarray
    ) -> None:
        if n_models < 1:
            raise DataError("the ensemble needs at least one chunk model")
        self.n_models = n_models
        self.settings = settings
        self.action_positions = np.asarray(action_positions, dtype=np.float64)
        self.solver = WeightSolver(settings.solver)

    def run(
        self,
        q: np.ndarray,
        outcome: np.ndarray,
        *,
        start: int = 0,
        position_values: np.ndarray | None = None,
        initial_position: float = 0.0,
    ) -> EnsembleRun:
        """Roll the ensemble over every row; report the rows from ``start`` on.

        The held position is ``initial_position`` before row 0 and again at ``start``: the
        positions during the history rows are hypothetical (nothing is traded there), while
        the real book starts flat when trading starts.

        ``q``: ``(rows, models, actions)``, or ``(rows, models, len(position_values),
        actions)`` when the state includes the held position. ``outcome``: per row, the
        return a long position taken at that row earned (NaN where not yet known is fine
        only beyond the last row any window reaches). Rows before ``start`` are history
        (e.g. the end of the training period) that only feeds the look-back window.
        """
        s = self.settings
        q = np.asarray(q, dtype=np.float64)
        outcome = np.asarray(outcome, dtype=np.float64)
        conditional = q.ndim == 4
        if q.ndim not in (3, 4) or q.shape[1] != self.n_models:
            raise DataError(
                f"Q-values must be (rows, {self.n_models} models, [positions,] actions), "
                f"got {q.shape}"
            )
        n_rows, n_actions = q.shape[0], q.shape[-1]
        if n_actions != len(self.action_positions):
            raise DataError(
                f"{n_actions} actions in the Q-values but {len(self.action_positions)} "
                "action positions"
            )
        if outcome.shape != (n_rows,):
            raise DataError(f"outcome must have one value per row ({n_rows}), got {outcome.shape}")
        if not 0 <= start < n_rows:
            raise DataError(f"start row {start} outside 0..{n_rows - 1}")
        pos_values = None
        if conditional:
            if position_values is None or len(position_values) != q.shape[2]:
                raise DataError("position-conditional Q-values need matching position_values")
            pos_values = np.asarray(position_values, dtype=np.float64)

        held_q = np.empty((n_rows, self.n_models, n_actions))  # Q of the state actually held
        actions = np.empty(n_rows, dtype=np.int64)
        combined = np.empty((n_rows, n_actions))
        weights = np.empty((n_rows, self.n_models))
        w = uniform(self.n_models)
        scale = np.ones(self.n_models)
        position = float(initial_position)
        records: list[dict] = []
        self.solver.reset()
        for t in range(n_rows):
            if (t - start) % s.rebalance_every == 0:
                lo, hi = window_bounds(t, s.lookback, s.outcome_lag)
                if hi - lo + 1 >= min(s.min_window, s.lookback):
                    window = held_q[lo : hi + 1]
                    M, y = window_problem(
                        window, outcome[lo : hi + 1], self.action_positions, s.signal
                    )
                    sol = self.solver.solve(M, y)
                    w = sol.weights
                    scale = q_scale(window) if s.q_normalize else np.ones(self.n_models)
                    if t >= start:
                        records.append(
                            {
                                "row": t,
                                "window_start": lo,
                                "window_end": hi,
                                "status": sol.status,
                                "reason": sol.reason,
                                "objective": sol.objective,
                                "solve_seconds": sol.solve_seconds,
                                "warm_started": sol.warm_started,
                            }
                        )
            if t == start:
                position = float(initial_position)
            if conditional:
                assert pos_values is not None
                idx = int(np.argmin(np.abs(pos_values - position)))
                held_q[t] = q[t, :, idx, :]
            else:
                held_q[t] = q[t]
            combined[t] = (w / scale) @ centered(held_q[t])
            actions[t] = int(np.argmax(combined[t]))
            position = float(self.action_positions[actions[t]])
            weights[t] = w
        return EnsembleRun(
            actions=actions[start:],
            positions=self.action_positions[actions[start:]],
            q_values=combined[start:],
            weights=weights[start:],
            rebalances=pd.DataFrame.from_records(
                records,
                columns=[
                    "row",
                    "window_start",
                    "window_end",
                    "status",
                    "reason",
                    "objective",
                    "solve_seconds",
                    "warm_started",
                ],
            ),
        )
