"""The accounting against hand-computed books: long, short, costs, margin call, drawdown stop."""

from __future__ import annotations

import numpy as np
import pytest

from rewts.env.accounting import Rules, exposure, simulate
from rewts.errors import DataError


def test_long_with_costs_matches_hand_computation() -> None:
    rules = Rules(initial_balance=10_000, transaction_cost=0.01, max_position=1.0)
    path = simulate(np.array([100.0, 110.0, 110.0]), np.array([1.0, 1.0, 0.0]), rules)
    shares = 10_000 / (100 * 1.01)  # all-in, cost included so cash ends at zero
    assert path.positions[0] == pytest.approx(shares)
    assert path.costs[0] == pytest.approx(0.01 * shares * 100)
    assert path.equity[0] == pytest.approx(10_000 - 0.01 * shares * 100)
    assert path.equity[1] == pytest.approx(shares * 110)  # 10891.09: no trade, no cost
    assert path.equity[1] == pytest.approx(10_891.089, abs=1e-3)
    # selling at 110 pays 1 % of the sale
    assert path.equity[2] == pytest.approx(shares * 110 * 0.99)
    assert path.positions[2] == 0.0
    assert path.returns[1] == pytest.approx(110 / 100 - 1)


def test_short_is_real_and_profits_from_a_fall() -> None:
    rules = Rules(initial_balance=10_000, transaction_cost=0.0, max_position=0.5)
    path = simulate(np.array([100.0, 90.0, 90.0]), np.array([-1.0, -1.0, 0.0]), rules)
    # 50 borrowed shares sold at 100: cash 15 000, liability 50 * price
    assert path.positions[0] == pytest.approx(-50.0)
    assert path.equity[1] == pytest.approx(15_000 - 50 * 90)  # 10 500
    assert path.equity[2] == pytest.approx(10_500)
    assert exposure(path, np.array([100.0, 90.0, 90.0]))[0] == pytest.approx(-0.5)


def test_short_with_costs_round_trip() -> None:
    rules = Rules(initial_balance=10_000, transaction_cost=0.001, max_position=1.0)
    close = np.array([100.0, 95.0, 95.0])
    path = simulate(close, np.array([-1.0, -1.0, 1.0]), rules)
    n = 10_000 / (100 * 1.001)
    cash = 10_000 + n * 100 - 0.001 * n * 100
    value1 = cash - n * 95
    assert path.equity[1] == pytest.approx(value1)
    # switching short -> long at 95 buys back n and buys the new long: both legs pay
    long_n = value1 / (95 * 1.001)
    assert path.positions[2] == pytest.approx(long_n)
    assert path.costs[2] == pytest.approx(0.001 * (n + long_n) * 95)
    assert path.equity[2] == pytest.approx(value1 - 0.001 * (n + long_n) * 95)


def test_margin_call_buys_back_part_of_a_losing_short() -> None:
    rules = Rules(transaction_cost=0.0, max_position=1.0, short_margin=0.1)
    path = simulate(np.array([100.0, 115.0]), np.array([-1.0, -1.0]), rules)
    # cash 20 000 after the sale; at 115 equity is 8 500 but the short is worth 11 500 > 1.1 x
    assert path.marks[1] == pytest.approx(8_500)
    assert path.positions[1] == pytest.approx(-8_500 / 115)
    assert path.trades[1] == pytest.approx(100 - 8_500 / 115)
    assert path.equity[1] == pytest.approx(8_500)


def test_drawdown_stop_closes_and_stays_flat() -> None:
    rules = Rules(transaction_cost=0.0, max_position=1.0, max_drawdown_limit=0.15)
    close = np.array([100.0, 80.0, 100.0, 120.0])
    path = simulate(close, np.ones(4), rules)
    assert path.alive.tolist() == [True, False, False, False]
    assert path.positions[1:].tolist() == [0.0, 0.0, 0.0]
    assert path.equity[3] == pytest.approx(8_000)


def test_batched_equals_one_by_one() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, 60))
    targets = rng.choice([-1.0, 0.0, 1.0], size=(4, 60))
    rules = Rules(transaction_cost=0.002, max_position=0.9, max_drawdown_limit=0.3)
    batch = simulate(close, targets, rules)
    for i in range(4):
        single = simulate(close, targets[i], rules)
        np.testing.assert_allclose(batch.equity[i], single.equity)
        np.testing.assert_allclose(batch.positions[i], single.positions)


@pytest.mark.parametrize(
    ("close", "targets", "match"),
    [
        (np.array([100.0, -1.0]), np.zeros(2), "row 1"),
        (np.array([100.0, 101.0]), np.zeros(3), "days"),
        (np.array([100.0, 101.0]), np.array([0.0, 2.0]), r"\[-1, 1\]"),
    ],
)
def test_bad_input_is_a_clear_error(close: np.ndarray, targets: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        simulate(close, targets, Rules())
