"""Portfolio accounting, defined once: the environment steps it one day at a time, the backtest
runs it over whole action sequences (and many sequences at once).

Conventions (the environment's docstring and docs/rl.md repeat them):

* Prices are daily closes. The position decided for day ``t`` is executed at ``close[t]``.
* A *target* is a fraction of the allowed exposure in ``[-1, 1]``: ``+1`` long, ``-1`` short,
  ``0`` flat. The shares bought or sold are ``target * max_position * value / (close * (1 +
  cost))`` where ``value`` is the portfolio's mark-to-market value at that close before
  trading; dividing by ``1 + cost`` keeps the cash of an all-in long non-negative after costs.
* The book is only rebalanced when the target changes: holding a long lets its weight drift,
  as a real holder's would, and costs nothing.
* A short is real: the shares are borrowed and sold, the sale's cash is held, and the
  liability ``shares * close`` moves with the price. Margin rule (Théate & Ernst's epsilon):
  while the short's value exceeds ``(1 + short_margin) * max_position`` of the portfolio's
  value, shares are bought back until it is ``max_position`` of it again. Equity can therefore
  only reach zero through a single-day jump larger than the margin.
* Costs are ``transaction_cost * |shares traded| * close``, paid from cash.
* Drawdown stop: when the marked value falls ``max_drawdown_limit`` below its running peak
  (or to zero), everything is closed at that close and the portfolio stays flat.

Every function here is pure and works on Python floats (the environment) and on NumPy arrays
of any leading shape (the backtest runs many seeds' actions in one call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rewts.errors import DataError

if TYPE_CHECKING:
    from rewts.config.models import TradingEnvConfig


@dataclass(frozen=True, slots=True)
class Rules:
    """The numbers the accounting needs (from ``trading_env.*``)."""

    initial_balance: float = 10_000.0
    transaction_cost: float = 0.0015
    max_position: float = 0.95
    short_margin: float = 0.1
    #: fraction below the running peak that stops trading; None never stops
    max_drawdown_limit: float | None = None

    @classmethod
    def from_config(cls, env: TradingEnvConfig) -> Rules:
        return cls(
            initial_balance=float(env.initial_balance),
            transaction_cost=float(env.transaction_cost),
            max_position=float(env.max_position),
            short_margin=float(getattr(env, "short_margin", 0.1)),
            max_drawdown_limit=env.max_drawdown_limit,
        )

    @property
    def stop_factor(self) -> float:
        """Trading stops once ``value <= peak * stop_factor`` (0: only at zero equity)."""
        return 0.0 if self.max_drawdown_limit is None else 1.0 - self.max_drawdown_limit


@dataclass(frozen=True, slots=True)
class StepResult:
    """One close: the book after trading and what the trade did (floats or arrays)."""

    cash: Any
    shares: Any
    target: Any
    peak: Any
    alive: Any
    #: value marked at this close before trading
    mark: Any
    traded: Any
    cost: Any

    @property
    def equity(self) -> Any:
        """Value after the trade and its cost, at the same close."""
        return self.mark - self.cost


def trade_step(
    cash: Any,
    shares: Any,
    target_held: Any,
    peak: Any,
    alive: Any,
    price: Any,
    target: Any,
    rules: Rules,
) -> StepResult:
    """Mark the book at ``price``, apply the drawdown stop and margin rule, trade to ``target``.

    Written with arithmetic on booleans instead of branches so that the same code serves a
    scalar step of the environment and a vectorized step over many portfolios.
    """
    mark = cash + shares * price
    peak = np.maximum(peak, mark)
    alive = alive & (mark > 0) & (mark > peak * rules.stop_factor)
    target = target * alive
    cap = rules.max_position * mark
    margin_call = (shares < 0) & (-shares * price > (1.0 + rules.short_margin) * cap)
    rebalance = (target != target_held) | margin_call
    wanted = target * cap / (price * (1.0 + rules.transaction_cost))
    new_shares = shares + rebalance * (wanted - shares)
    traded = new_shares - shares
    cost = rules.transaction_cost * abs(traded) * price
    cash = cash - traded * price - cost
    return StepResult(cash, new_shares, target, peak, alive, mark, traded, cost)


@dataclass(frozen=True, slots=True)
class PortfolioPath:
    """A whole simulated path; every array has the shape of ``target_positions``."""

    #: value at each close after that close's trade and cost
    equity: np.ndarray
    #: daily return of ``equity`` (day 0 against the initial balance): costs on the trade day
    returns: np.ndarray
    #: shares held after each close's trade (negative = short)
    positions: np.ndarray
    #: shares traded at each close
    trades: np.ndarray
    #: transaction costs paid at each close
    costs: np.ndarray
    #: value marked at each close before trading
    marks: np.ndarray
    #: target actually held after each close (0 after a drawdown stop)
    targets: np.ndarray
    #: False from the close at which the drawdown stop fired
    alive: np.ndarray

    def step_rewards(self) -> np.ndarray:
        """The environment's reward of each decision: ``marks[t+1] / marks[t] - 1``.

        The action at close ``t`` is credited with its own cost and with the price move from
        ``t`` to ``t+1`` of the book it chose; length ``T - 1`` along the last axis.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.marks[..., 1:] / self.marks[..., :-1] - 1.0


def check_prices(close: np.ndarray, what: str = "close") -> np.ndarray:
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1 or close.size == 0:
        raise DataError(f"{what} prices must be a non-empty 1-D array, got shape {close.shape}")
    bad = ~np.isfinite(close) | (close <= 0)
    if bad.any():
        raise DataError(
            f"{what} prices must be finite and positive; row {int(np.argmax(bad))} is "
            f"{close[int(np.argmax(bad))]!r} (fill or drop that day in the data)"
        )
    return close


def simulate(
    close: np.ndarray, target_positions: np.ndarray, cfg: TradingEnvConfig | Rules
) -> PortfolioPath:
    """Run the accounting over whole target sequences.

    ``close`` has shape ``(T,)``; ``target_positions`` has shape ``(..., T)`` with values in
    ``[-1, 1]`` (row ``t`` = the target decided for day ``t``, executed at ``close[t]``). The
    book starts flat with ``initial_balance`` in cash. The loop runs over days only; every
    portfolio in the leading dimensions advances together.
    """
    rules = cfg if isinstance(cfg, Rules) else Rules.from_config(cfg)
    close = check_prices(close)
    targets_in = np.asarray(target_positions, dtype=np.float64)
    if targets_in.shape[-1:] != close.shape:
        raise DataError(
            f"target_positions has {targets_in.shape[-1] if targets_in.ndim else 0} days on its "
            f"last axis but close has {close.size}"
        )
    if not np.isfinite(targets_in).all() or (np.abs(targets_in) > 1).any():
        raise DataError("target_positions must be finite and within [-1, 1]")
    batch = targets_in.shape[:-1]
    cash = np.full(batch, rules.initial_balance)
    shares = np.zeros(batch)
    held = np.zeros(batch)
    peak = np.full(batch, rules.initial_balance)
    alive = np.ones(batch, dtype=bool)
    out = {k: np.empty(targets_in.shape) for k in ("equity", "positions", "trades", "costs")}
    out |= {"marks": np.empty(targets_in.shape), "targets": np.empty(targets_in.shape)}
    alive_out = np.empty(targets_in.shape, dtype=bool)
    for t in range(close.size):
        step = trade_step(cash, shares, held, peak, alive, close[t], targets_in[..., t], rules)
        cash, shares, held, peak, alive = step.cash, step.shares, step.target, step.peak, step.alive
        out["equity"][..., t] = step.equity
        out["positions"][..., t] = shares
        out["trades"][..., t] = step.traded
        out["costs"][..., t] = step.cost
        out["marks"][..., t] = step.mark
        out["targets"][..., t] = held
        alive_out[..., t] = alive
    previous = np.concatenate(
        [np.full((*batch, 1), rules.initial_balance), out["equity"][..., :-1]], axis=-1
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(previous > 0, out["equity"] / previous - 1.0, 0.0)
    return PortfolioPath(returns=returns, alive=alive_out, **out)


def exposure(path: PortfolioPath, close: np.ndarray) -> np.ndarray:
    """Signed position value over equity after each close's trade (the weight held)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(path.equity > 0, path.positions * close / path.equity, 0.0)
