"""Typed records of a backtest: what each agent did, and everything the report draws.

The backtest fills these; :mod:`rewts.report` only renders them, and they round-trip
through plain files (CSV/JSON) so a report can be re-rendered without re-running anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rewts.metrics import PairedTest

#: agent keys in table order, with the name the report shows and a one-line meaning
AGENTS: dict[str, tuple[str, str]] = {
    "buy_and_hold": (
        "Buy & Hold",
        "the stock's total return (adj_close), fully invested from the first test day, the "
        "entry cost paid once",
    ),
    "llm_only": ("LLM-only", "each period's LLM direction (tau > 0 long, tau < 0 short, 0 flat)"),
    "rl_only": ("RL-only", "DDQN without the LLM feature tau (the paper's TDQN baseline)"),
    "llm_rl": (
        "LLM+RL",
        "DDQN with tau: the single agent (backtest.single_agent; by default trained on the "
        "whole training range)",
    ),
    "rewts": ("ReWTS ensemble", "LLM+RL chunk agents weighted by the look-back QP"),
    "global_llm_rl": ("Global LLM+RL", "one LLM+RL agent trained on the whole training range"),
    "placebo_const": ("Placebo: tau constant", "LLM+RL agent with tau held at its mean"),
    "placebo_shuffled": ("Placebo: tau shuffled", "LLM+RL agent with tau shuffled across periods"),
    "leak_sanity": (
        "Sanity: leaked return",
        "agent that sees the next day's return; must score near-perfectly",
    ),
}


def agent_label(agent: str) -> str:
    return AGENTS.get(agent, (agent, ""))[0]


@dataclass
class AgentRun:
    """One agent, one ticker, one seed over the test period (one row per test day)."""

    ticker: str
    agent: str
    run: int
    seed: int
    dates: pd.DatetimeIndex
    returns: np.ndarray
    #: signed exposure held over each day (fraction of portfolio value)
    positions: np.ndarray
    equity: np.ndarray
    #: shares bought (+) or sold (-) each day
    trades: np.ndarray
    costs: np.ndarray
    metrics: dict[str, Any]
    #: the day the drawdown stop closed the book (it stays flat after), None if it never fired
    stopped: pd.Timestamp | None = None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "equity": self.equity,
                "return": self.returns,
                "position": self.positions,
                "trade": self.trades,
                "cost": self.costs,
            },
            index=pd.DatetimeIndex(self.dates, name="date"),
        )


@dataclass
class BacktestResult:
    """Everything one ``rewts backtest`` produced."""

    name: str
    #: the validated config as a plain dict (for the report's "how this was run")
    config: dict[str, Any]
    runs: list[AgentRun] = field(default_factory=list)
    #: per ticker: close prices over the test period (the report's price panel)
    prices: dict[str, pd.Series] = field(default_factory=dict)
    #: per ticker: one row per strategy period (start, end, direction, tau)
    llm_signals: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: per (ticker, run): weights in force each test day, one column per chunk
    ensemble_weights: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict)
    #: per (ticker, run): one row per rebalance (status, fallback reason, solve time, ...)
    rebalances: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict)
    #: per (ticker, label): a training curve (episode -> value columns), when available
    training_curves: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    #: per (ticker, agent, run): extra numbers, e.g. the leak agent's in- vs out-of-sample fit
    diagnostics: dict[tuple[str, str, int], dict[str, float]] = field(default_factory=dict)
    tests: list[PairedTest] = field(default_factory=list)
    #: things a reader must know (skipped agents, fallbacks, sanity-check verdicts)
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    #: the language model and its training cutoff (rewts.llm.cutoff), the warning shown at
    #: the top of the report and, when the test spans the cutoff, metrics either side of it
    #: (``split``: records of rewts.memorization.cutoff_split); empty without an LLM
    memorization: dict[str, Any] = field(default_factory=dict)

    def metrics_table(self) -> pd.DataFrame:
        """One row per (ticker, agent, run) with every metric."""
        rows = [
            {"ticker": r.ticker, "agent": r.agent, "run": r.run, "seed": r.seed, **r.metrics}
            for r in self.runs
        ]
        return pd.DataFrame(rows)

    def tickers(self) -> list[str]:
        return list(dict.fromkeys(r.ticker for r in self.runs))

    def agents(self) -> list[str]:
        present = {r.agent for r in self.runs}
        return [a for a in AGENTS if a in present] + sorted(present - set(AGENTS))

    def find(self, ticker: str, agent: str, run: int = 0) -> AgentRun | None:
        for r in self.runs:
            if r.ticker == ticker and r.agent == agent and r.run == run:
                return r
        return None
