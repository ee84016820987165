"""The ReWTS QP: constraints, optimality against brute force, the perfect model, the fallback."""

from __future__ import annotations

import itertools
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from rewts.ensemble import WeightSolver, solve_weights
from rewts.ensemble import weights as weights_mod
from rewts.errors import ConfigError, DataError

SOLVERS = ["clarabel", "osqp"]


def _obj(M, y, w):
    r = y - M @ w
    return float(r @ r / len(y))


def _simplex_grid(k: int, steps: int) -> np.ndarray:
    pts = [c for c in itertools.product(range(steps + 1), repeat=k - 1) if sum(c) <= steps]
    grid = np.array([[*c, steps - sum(c)] for c in pts], dtype=float) / steps
    return grid


@pytest.mark.parametrize("solver", SOLVERS)
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 12),
    n=st.integers(3, 80),
    discrete=st.booleans(),
)
def test_weights_lie_on_the_simplex(solver, seed, k, n, discrete):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, k))
    y = rng.normal(size=n)
    if discrete:  # position signals: many identical columns, singular M^T M
        M, y = np.sign(M), np.sign(y)
    sol = solve_weights(M, y, solver=solver)
    assert sol.status == "solved", sol.reason
    assert sol.weights.shape == (k,)
    assert sol.weights.min() >= 0.0
    assert sol.weights.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_matches_grid_search_over_the_simplex(solver):
    rng = np.random.default_rng(1)
    grid = _simplex_grid(3, 200)  # step 0.005
    for _ in range(5):
        M = rng.normal(size=(30, 3))
        y = M @ rng.dirichlet(np.ones(3)) + rng.normal(0, 0.5, 30)
        sol = solve_weights(M, y, solver=solver)
        resid = y[None, :] - grid @ M.T
        grid_obj = (resid**2).mean(axis=1)
        best = grid[np.argmin(grid_obj)]
        # the QP is at least as good as every grid point, and near the best one
        assert sol.objective <= grid_obj.min() + 1e-9
        np.testing.assert_allclose(sol.weights, best, atol=0.01)


@pytest.mark.parametrize("solver", SOLVERS)
def test_matches_scipy_slsqp_on_small_cases(solver):
    rng = np.random.default_rng(2)
    for k in (2, 4, 6):
        M = rng.normal(size=(50, k))
        y = rng.normal(size=50) + M[:, 0]
        ref = minimize(
            lambda w, M=M, y=y: _obj(M, y, w),
            np.full(k, 1 / k),
            method="SLSQP",
            bounds=[(0, 1)] * k,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        sol = solve_weights(M, y, solver=solver)
        assert sol.objective <= ref.fun + 1e-8
        np.testing.assert_allclose(sol.weights, ref.x, atol=1e-4)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["continuous", "positions"])
def test_a_model_that_predicts_the_lookback_perfectly_gets_all_the_weight(solver, kind):
    rng = np.random.default_rng(3)
    n, k, star = 200, 8, 5
    M = rng.normal(size=(n, k))
    if kind == "positions":
        M = np.sign(M)
    y = M[:, star].copy()
    sol = solve_weights(M, y, solver=solver)
    assert sol.weights[star] == pytest.approx(1.0, abs=1e-4)
    assert sol.objective == pytest.approx(0.0, abs=1e-6)


def test_identical_models_share_the_weight_evenly():
    rng = np.random.default_rng(4)
    col = np.sign(rng.normal(size=100))
    M = np.column_stack([col, col, -col])
    sol = solve_weights(M, col)
    np.testing.assert_allclose(sol.weights, [0.5, 0.5, 0.0], atol=1e-4)


def test_osqp_is_warm_started_from_the_previous_weights_and_agrees_with_clarabel():
    rng = np.random.default_rng(5)
    osqp, clarabel = WeightSolver("osqp"), WeightSolver("clarabel")
    base = rng.normal(size=(120, 10))
    y = base @ rng.dirichlet(np.ones(10)) + rng.normal(0, 0.3, 120)
    first = osqp.solve(base, y)
    assert not first.warm_started
    for step in range(1, 4):  # a rolling window: one new row each time
        M = np.roll(base, step, axis=0)
        yy = np.roll(y, step)
        warm = osqp.solve(M, yy)
        assert warm.warm_started
        np.testing.assert_allclose(warm.weights, clarabel.solve(M, yy).weights, atol=1e-5)
    assert not clarabel.supports_warm_start
    osqp.reset()
    assert not osqp.solve(base, y).warm_started


def test_solver_failure_falls_back_to_uniform_with_a_logged_reason(monkeypatch, caplog):
    not_found = SimpleNamespace(found=False, x=None, extras={"status": "MaxIterations"})
    monkeypatch.setattr(weights_mod, "solve_problem", lambda *a, **k: not_found)
    M = np.eye(4)
    with caplog.at_level(logging.WARNING, logger="rewts.ensemble.weights"):
        sol = solve_weights(M, np.ones(4))
    assert sol.status == "fallback"
    assert "MaxIterations" in sol.reason
    np.testing.assert_allclose(sol.weights, 0.25)
    assert "uniform fallback" in caplog.text


def test_solver_exception_and_bad_values_fall_back(monkeypatch):
    def boom(*a, **k):
        raise ValueError("P is not positive semi-definite")

    monkeypatch.setattr(weights_mod, "solve_problem", boom)
    sol = solve_weights(np.eye(3), np.ones(3))
    assert sol.status == "fallback" and "ValueError" in sol.reason
    monkeypatch.undo()
    bad = np.eye(3)
    bad[0, 0] = np.nan
    sol = solve_weights(bad, np.ones(3))
    assert sol.status == "fallback" and "non-finite" in sol.reason


def test_weights_off_the_simplex_count_as_a_failure(monkeypatch):
    off = SimpleNamespace(found=True, x=np.array([0.7, 0.7, -0.2]), extras={})
    monkeypatch.setattr(weights_mod, "solve_problem", lambda *a, **k: off)
    sol = solve_weights(np.eye(3), np.ones(3))
    assert sol.status == "fallback" and "violate the simplex" in sol.reason


def test_bad_shapes_and_solver_names_are_clear_errors():
    with pytest.raises(DataError, match="shape"):
        solve_weights(np.ones((5, 2)), np.ones(4))
    with pytest.raises(ConfigError, match="qp_solver"):
        WeightSolver("cvxopt")  # type: ignore[arg-type]


def test_single_model_gets_weight_one():
    sol = solve_weights(np.ones((5, 1)), np.zeros(5))
    assert sol.weights.tolist() == [1.0] and sol.status == "solved"
