"""Backtests: agents and baselines side by side on the held-out period.

Public API::

    backtest_all(cfg, dataset, strategies, *, name=None, events=None, say=None)
        -> BacktestResult                    # trains missing agents, then runs every agent
    run_backtest(cfg, dataset, strategies, source=None, *, name, say) -> BacktestResult
    AgentSource, Member                      # what a source of learned agents provides
    BacktestResult, AgentRun, AGENTS         # the records the report renders
"""

from rewts.backtest.agents import AGENT_VARIANT, AgentSource, Member
from rewts.backtest.engine import run_backtest
from rewts.backtest.result import AGENTS, AgentRun, BacktestResult, agent_label
from rewts.backtest.runner import backtest_all, needs_strategies

__all__ = [
    "AGENTS",
    "AGENT_VARIANT",
    "AgentRun",
    "AgentSource",
    "BacktestResult",
    "Member",
    "agent_label",
    "backtest_all",
    "needs_strategies",
    "run_backtest",
]
