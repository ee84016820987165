"""ReWTS ensemble weights: ``min_w ||y - M w||^2`` subject to ``w >= 0``, ``sum(w) = 1``.

The problem is a small convex QP (one variable per chunk model) solved with a maintained
solver through :mod:`qpsolvers`:

* **Clarabel** (default): an interior-point solver that returns a solution accurate to about
  1e-8 even when ``M^T M`` is singular, which is the usual case here: chunk models that agree
  on the whole look-back window give identical columns. It has no warm start (qpsolvers
  ignores ``initvals`` for it), and needs none at this size (well under a millisecond for 20
  models, see ``benchmarks/bench_ensemble.py``).
* **OSQP** (option): ADMM, warm-started from the previous rebalance's weights, which is what
  makes it fast on a sequence of similar problems. Its default tolerance (1e-3) is too loose
  for weights that must sum to one, so it runs with tight tolerances and solution polishing.

The objective is divided by the window length (so its scale does not grow with the window)
and carries a tiny ridge ``ridge * ||w||^2``: among models that fit the window equally well
the weight is split evenly instead of depending on solver internals.

A solver failure (no solution, a non-finite one, or one that violates the constraints beyond
tolerance) falls back to uniform weights, with the reason logged and recorded in the result;
there is no other fallback.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from qpsolvers import Problem, solve_problem

from rewts.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Solver = Literal["clarabel", "osqp"]

#: solver settings: tight enough that the constraints hold to ~1e-9
_SOLVER_SETTINGS: dict[str, dict[str, float | bool]] = {
    "clarabel": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
    "osqp": {"eps_abs": 1e-9, "eps_rel": 1e-9, "polish": True, "max_iter": 20_000},
}
#: how far a returned solution may be from the simplex before it counts as a failure
CONSTRAINT_TOL = 1e-6


@dataclass(frozen=True, slots=True)
class WeightSolution:
    """Weights for one rebalance, and how they were obtained."""

    weights: np.ndarray
    #: ``solved``, or ``fallback`` when uniform weights replaced a failed solve
    status: str
    #: why the fallback was used ("" when solved)
    reason: str
    #: ``||y - M w||^2 / n`` at the returned weights
    objective: float
    solve_seconds: float
    warm_started: bool


def _objective(M: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    resid = y - M @ w
    return float(resid @ resid / len(y))


def _check_inputs(M: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    M = np.asarray(M, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if M.ndim != 2 or y.ndim != 1 or M.shape[0] != y.shape[0]:
        raise DataError(
            f"ensemble QP needs M of shape (window, models) and y of shape (window,), got "
            f"M {M.shape} and y {y.shape}"
        )
    if M.shape[0] == 0 or M.shape[1] == 0:
        raise DataError(f"ensemble QP needs a non-empty window and model set, got M {M.shape}")
    return M, y


def uniform(n_models: int) -> np.ndarray:
    return np.full(n_models, 1.0 / n_models)


class WeightSolver:
    """Solves the ReWTS QP at successive rebalance dates, warm-starting where supported.

    One instance per ensemble and ticker: it remembers the last weights as the next starting
    point (used by OSQP; Clarabel ignores it).
    """

    def __init__(self, solver: Solver = "clarabel", *, ridge: float = 1e-8) -> None:
        if solver not in _SOLVER_SETTINGS:
            raise ConfigError(
                f"backtest.qp_solver = {solver!r}: choose one of {sorted(_SOLVER_SETTINGS)}"
            )
        if ridge < 0:
            raise ConfigError(f"ensemble ridge = {ridge}: must be >= 0")
        self.solver = solver
        self.ridge = ridge
        self._last: np.ndarray | None = None

    @property
    def supports_warm_start(self) -> bool:
        return self.solver == "osqp"

    def reset(self) -> None:
        """Forget the previous weights (the next solve starts cold)."""
        self._last = None

    def solve(self, M: np.ndarray, y: np.ndarray) -> WeightSolution:
        """Weights on the simplex that best reproduce ``y`` from the columns of ``M``."""
        M, y = _check_inputs(M, y)
        n, k = M.shape
        if not (np.isfinite(M).all() and np.isfinite(y).all()):
            return self._fallback(M, y, "non-finite values in the signals or the target", 0.0)
        if k == 1:
            w = np.ones(1)
            self._last = w
            return WeightSolution(w, "solved", "", _objective(M, y, w), 0.0, False)
        P = M.T @ M / n + self.ridge * np.eye(k)
        P = 0.5 * (P + P.T)  # exact symmetry (OSQP does not check)
        q = -(M.T @ y) / n
        problem = Problem(P, q, A=np.ones((1, k)), b=np.array([1.0]), lb=np.zeros(k), ub=np.ones(k))
        initvals = self._last if (self.supports_warm_start and self._last is not None) else None
        if initvals is not None and initvals.shape != (k,):
            initvals = None
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # a failed solve is reported through ``found``; its warning would be noise
                warnings.simplefilter("ignore")
                sol = solve_problem(
                    problem, solver=self.solver, initvals=initvals, **_SOLVER_SETTINGS[self.solver]
                )
        except Exception as exc:  # the solver's own errors, translated to a recorded fallback
            return self._fallback(
                M,
                y,
                f"{self.solver} raised {type(exc).__name__}: {exc}",
                time.perf_counter() - start,
            )
        elapsed = time.perf_counter() - start
        if not sol.found or sol.x is None:
            status = (sol.extras or {}).get("status", "no solution")
            return self._fallback(M, y, f"{self.solver} found no solution ({status})", elapsed)
        w = np.asarray(sol.x, dtype=np.float64)
        if not np.isfinite(w).all():
            return self._fallback(M, y, f"{self.solver} returned non-finite weights", elapsed)
        violation = max(float(-w.min()), abs(float(w.sum()) - 1.0))
        if violation > CONSTRAINT_TOL:
            return self._fallback(
                M, y, f"{self.solver} weights violate the simplex by {violation:.2e}", elapsed
            )
        # remove the solver's round-off (|w_i| < tol below zero, sum off by < tol)
        w = np.clip(w, 0.0, None)
        w /= w.sum()
        self._last = w
        return WeightSolution(w, "solved", "", _objective(M, y, w), elapsed, initvals is not None)

    def _fallback(
        self, M: np.ndarray, y: np.ndarray, reason: str, elapsed: float
    ) -> WeightSolution:
        log.warning("ensemble weights: uniform fallback, %s", reason)
        w = uniform(M.shape[1])
        return WeightSolution(w, "fallback", reason, _objective(M, y, w), elapsed, False)


def solve_weights(M: np.ndarray, y: np.ndarray, solver: Solver = "clarabel") -> WeightSolution:
    """One cold solve of the ReWTS QP (see :class:`WeightSolver`)."""
    return WeightSolver(solver).solve(M, y)
