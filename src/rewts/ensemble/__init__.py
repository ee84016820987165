"""ReWTS ensemble: QP weights over chunk models on a rolling look-back window.

See docs/ensemble.md for the signal scale (``rewts.ensemble_signal``), the solver choice and
the no-look-ahead rule of the window.
"""

from rewts.ensemble.policy import EnsembleRun, EnsembleSettings, ReWTSEnsemble, window_bounds
from rewts.ensemble.signals import SignalKind, greedy_positions, preference, window_problem
from rewts.ensemble.weights import Solver, WeightSolution, WeightSolver, solve_weights, uniform

__all__ = [
    "EnsembleRun",
    "EnsembleSettings",
    "ReWTSEnsemble",
    "SignalKind",
    "Solver",
    "WeightSolution",
    "WeightSolver",
    "greedy_positions",
    "preference",
    "solve_weights",
    "uniform",
    "window_bounds",
    "window_problem",
]
