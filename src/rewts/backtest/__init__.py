"""Backtests: agents and baselines side by side on the held-out period."""

from rewts.backtest.result import AGENTS, AgentRun, BacktestResult, agent_label

__all__ = ["AGENTS", "AgentRun", "BacktestResult", "agent_label"]
