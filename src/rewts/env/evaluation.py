"""Scoring a greedy policy on a range of days, the same way for model selection (validation
days inside the training range), for the in-sample/validation columns of the report, and for
the backtest: greedy actions from precomputed Q-values, then the environment's accounting.

The held position is part of the observation, so a greedy policy is a chain: each day's action
depends on the position the previous day's action chose. :func:`greedy_targets` walks that
chain over Q-values computed in one batched pass per possible held position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rewts.env.accounting import Rules, simulate


def greedy_targets(
    q: np.ndarray,
    position_values: np.ndarray,
    action_positions: np.ndarray,
    initial_position: float = 0.0,
) -> np.ndarray:
    """Targets of a greedy agent whose state includes the position it holds.

    ``q`` is ``(rows, len(position_values), n_actions)``: the Q-values of each row for every
    possible held position; the scan feeds each row the position the previous action chose.
    """
    q = np.asarray(q, dtype=np.float64)
    position_values = np.asarray(position_values, dtype=np.float64)
    action_positions = np.asarray(action_positions, dtype=np.float64)
    # precompute each row's greedy action for every held position, then walk the chain
    greedy = np.argmax(q, axis=-1)  # (rows, positions)
    index_of = {float(p): i for i, p in enumerate(position_values)}
    targets = np.empty(q.shape[0])
    held = float(initial_position)
    for t in range(q.shape[0]):
        held = float(action_positions[greedy[t, index_of[held]]])
        targets[t] = held
    return targets


def position_values(action_positions: np.ndarray) -> np.ndarray:
    """Every position an observation can carry: the actions' targets and flat (the start)."""
    return np.unique(np.concatenate([[0.0], np.asarray(action_positions, dtype=np.float64)]))


def next_day_returns(prices: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The return a long position taken at each row's close earns by the next close (0 for the
    data's last row, which has no next close)."""
    prices = np.asarray(prices, dtype=np.float64)
    rows = np.asarray(rows)
    nxt = np.minimum(rows + 1, len(prices) - 1)
    return prices[nxt] / prices[rows] - 1.0


def direction_accuracy(
    prices: np.ndarray, rows: np.ndarray, targets: np.ndarray, *, min_move: float = 0.0
) -> float:
    """Share of days whose held direction matched the next close's move (flat days and the
    data's last day excluded); NaN when no day counts.

    ``min_move`` > 0 counts only *decisive* days, whose move exceeds it: with costs, even a
    policy that knows every next return does not switch for a move smaller than the switch
    costs (docs/rl.md: such an oracle calls 93-98 % of all test days but 100 % of the days
    whose move exceeds the cost of switching).
    """
    rows = np.asarray(rows)
    targets = np.asarray(targets, dtype=np.float64)
    moves = next_day_returns(prices, rows)
    ok = (targets != 0) & (rows + 1 < len(prices)) & (np.abs(moves) > min_move)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.sign(targets[ok]) == np.sign(moves[ok])))


def switch_cost(transaction_cost: float) -> float:
    """The move that pays for reversing a position: 2 x the cost (a full turn of the book)."""
    return 2.0 * float(transaction_cost)


def annualized_sharpe(returns: np.ndarray, periods_per_year: int = 252) -> float:
    """sqrt(periods) * mean / std of daily returns (risk-free 0); 0.0 when undefined (the
    training curves' and model selection's Sharpe; reports use rewts.metrics.sharpe_ratio)."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.size < 2:
        return 0.0
    std = returns.std(ddof=1)
    return float(np.sqrt(periods_per_year) * returns.mean() / std) if std > 0 else 0.0


@dataclass(frozen=True)
class PolicyScore:
    """How a greedy policy did over a range of days."""

    sharpe: float
    accuracy: float
    days: int
    #: total log return of the path
    log_return: float = float("nan")
    #: direction accuracy on the days whose move exceeds the cost of a switch
    decisive_accuracy: float = float("nan")

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_sharpe": self.sharpe, f"{prefix}_accuracy": self.accuracy}


def score_policy(
    q_for_position: Callable[[float, np.ndarray], np.ndarray],
    prices: np.ndarray,
    rows: np.ndarray,
    action_positions: np.ndarray,
    rules: Rules,
) -> PolicyScore:
    """Greedy Sharpe and direction accuracy over ``rows`` (consecutive calendar rows).

    ``q_for_position(p, rows)`` gives the Q-values ``(len(rows), n_actions)`` with position
    ``p`` held. Only ``prices[rows]`` are read: the last row's decision is not priced.
    """
    rows = np.asarray(rows)
    if rows.size < 2:
        return PolicyScore(float("nan"), float("nan"), int(rows.size))
    held = position_values(action_positions)
    q = np.stack([q_for_position(float(p), rows) for p in held], axis=1)
    targets = greedy_targets(q, held, action_positions)
    path = simulate(np.asarray(prices)[rows[0] : rows[-1] + 1], targets, rules)
    seen = np.asarray(prices)[: rows[-1] + 1]
    accuracy = direction_accuracy(seen, rows, targets)
    decisive = direction_accuracy(seen, rows, targets, min_move=switch_cost(rules.transaction_cost))
    log_return = float(np.log1p(np.maximum(path.returns, -1 + 1e-12)).sum())
    return PolicyScore(
        annualized_sharpe(path.returns), accuracy, int(rows.size), log_return, decisive
    )
