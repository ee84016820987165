"""The backtest stage from a config: train the agents that are missing, then run them all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd

from rewts.backtest.agents import AGENT_VARIANT
from rewts.backtest.engine import run_backtest
from rewts.backtest.result import BacktestResult
from rewts.config import Config
from rewts.training.events import Events


def needs_strategies(cfg: Config) -> bool:
    """Whether any requested agent reads the LLM signal."""
    return any(
        a == "llm_only" or AGENT_VARIANT.get(a) in ("llm", "placebo_const", "placebo_shuffled")
        for a in cfg.backtest.agents
    )


def default_run_name(cfg: Config) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{'-'.join(cfg.tickers)[:40]}"


def backtest_all(
    cfg: Config,
    dataset: Any,
    strategies: dict[str, pd.DataFrame] | None,
    *,
    name: str | None = None,
    events: Events = None,
    say: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Train what the requested agents need (``backtest.train_missing``), then backtest.

    Seeds of learned agents are ``cfg.seed + run`` for ``run < backtest.runs``; the training
    stage skips every agent whose checkpoint matches its inputs, so a rerun trains nothing.
    """
    learned = [a for a in cfg.backtest.agents if a in AGENT_VARIANT]
    source = None
    if learned:
        from rewts.backtest.rl_source import RLAgentSource

        source = RLAgentSource(cfg, dataset, strategies, events=events, say=say)
        if cfg.backtest.train_missing:
            seeds = [cfg.seed + r for r in range(cfg.backtest.runs)]
            source.ensure_trained(cfg.tickers, learned, seeds)
    return run_backtest(
        cfg, dataset, strategies, source, name=name or default_run_name(cfg), say=say
    )
