"""The RL stage as an :class:`~rewts.backtest.agents.AgentSource`: train what is missing, load
checkpoints, and give greedy Q-values on the same observation matrix the agents trained on.

Variants and the jobs that train them are planned in :mod:`rewts.training.variants`.

Only the members an agent needs are trained: every chunk and the global agent for ``llm``
(the ensemble, LLM+RL and the global agent share them), and the one single agent
(``backtest.single_agent``: the last chunk, or the global agent) for the other variants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rewts.backtest.agents import AGENT_VARIANT, Member, Variant
from rewts.config import Config
from rewts.env.evaluation import position_values
from rewts.env.factory import env_data_for
from rewts.env.features import COMPACT_HORIZONS, EnvData
from rewts.env.trading import action_targets
from rewts.errors import BacktestError, RewtsError
from rewts.training import (
    LoadedAgent,
    execute_jobs,
    load_chunk_agents,
    load_curves,
    load_global_agent,
)
from rewts.training.checkpoints import UnreadableCheckpoint, write_manifests
from rewts.training.events import Events
from rewts.training.jobs import TrainJob
from rewts.training.variants import (
    LEAK_COLUMN,
    VARIANT_CHECKPOINTS,
    Needed,
    VariantInputs,
    VariantPlan,
    leak_dataset,
    leak_frame,
)

__all__ = ["LEAK_COLUMN", "VARIANT_CHECKPOINTS", "RLAgentSource", "leak_dataset", "leak_frame"]

_CURVE_COLUMNS = ("return", "sharpe", "loss")


def _curve(agent: LoadedAgent) -> pd.DataFrame | None:
    try:
        curves = load_curves(agent)
    except (OSError, ValueError):
        return None
    if "episode" in curves.columns:
        curves = curves.set_index("episode")
    keep = [c for c in _CURVE_COLUMNS if c in curves.columns]
    return curves[keep] if keep else None


def _validation_days(meta: dict[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    start, end = meta.get("validation_start"), meta.get("validation_end")
    return (pd.Timestamp(start), pd.Timestamp(end)) if start and end else None


class RLAgentSource:
    """Trained DDQN agents of every variant the backtest asks for."""

    def __init__(
        self,
        cfg: Config,
        dataset: Any,
        strategies: dict[str, pd.DataFrame] | None,
        *,
        events: Events = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.dataset = dataset
        self.strategies = strategies
        self.events = events
        self.say = say or (lambda _msg: None)
        self.action_positions = action_targets(self.cfg.trading_env.actions)
        # the book starts flat, so 0 is a possible held position for every action set
        self.position_values = position_values(self.action_positions)
        # the first row every feature set can observe (the ensemble's history starts there)
        self.first_row = int(max(self.cfg.trading_env.window, max(COMPACT_HORIZONS)))
        self._data: dict[tuple[str, Variant], EnvData] = {}
        self._loaded: dict[tuple[str, Variant, int], list[tuple[Member, LoadedAgent]]] = {}
        self.plan = VariantPlan(self.cfg, dataset, strategies)

    # ----------------------------------------------------------- variant inputs

    def _variant_inputs(self, variant: Variant) -> VariantInputs:
        return self.plan.inputs(variant)

    def needed_chunks(self, variant: Variant, agents: Sequence[str]) -> Needed:
        """``all`` (every chunk and the global one) or ``single`` (only the single agent)."""
        if variant == "llm" and ("rewts" in agents or "global_llm_rl" in agents):
            return "all"
        return "single"

    # ----------------------------------------------------------------- training

    def planned_jobs(
        self, tickers: Sequence[str], agents: Sequence[str], seeds: Sequence[int]
    ) -> dict[Variant, list[TrainJob]]:
        """Per variant, the training jobs the requested agents need (finished or not): what
        training runs, and what ``rewts signal`` checks the checkpoints against."""
        variants = dict.fromkeys(AGENT_VARIANT[a] for a in agents if a in AGENT_VARIANT)
        needed = {v: self.needed_chunks(v, agents) for v in variants}
        return self.plan.jobs(tickers, needed, seeds)

    def ensure_trained(
        self, tickers: Sequence[str], agents: Sequence[str], seeds: Sequence[int]
    ) -> None:
        """Train the members the requested agents need and that have no checkpoint yet."""
        jobs = []
        for variant, found in self.planned_jobs(tickers, agents, seeds).items():
            if found:
                self.say(
                    f"training {variant} agents ({len(found)} jobs; finished ones are skipped)"
                )
            jobs += found
        if not jobs:
            return
        # every variant at once: seeds, LLM+RL and its placebos share populations, and the
        # configured executor (process pool, in-process or Ray tasks) sees all the work
        results, _ = execute_jobs(
            self.cfg.model_copy(update={"tickers": list(tickers)}), jobs, events=self.events
        )
        # record the run like `rewts train` does, so loading sees exactly these members
        write_manifests(Path(self.cfg.rewts.checkpoint_dir), [Path(r.path) for r in results])

    # ------------------------------------------------------------ AgentSource

    def _env_data(self, ticker: str, variant: Variant) -> EnvData:
        key = (ticker, variant)
        if key not in self._data:
            cfg, dataset, strategies = self._variant_inputs(variant)
            llm, _ = VARIANT_CHECKPOINTS[variant]
            strategy = strategies.get(ticker) if strategies else None
            self._data[key] = env_data_for(
                cfg,
                ticker,
                dataset.frames[ticker],
                dataset.feature_columns,
                strategy,
                llm_guidance=llm,
            )
        return self._data[key]

    def _load(self, ticker: str, variant: Variant, seed: int) -> list[tuple[Member, LoadedAgent]]:
        key = (ticker, variant, seed)
        if key in self._loaded:
            return self._loaded[key]
        cfg, _, _ = self._variant_inputs(variant)
        llm, tag = VARIANT_CHECKPOINTS[variant]
        loaded: list[LoadedAgent] = []
        problems: list[str] = []
        # a variant may have only chunks or only the global agent: each absence is fine alone
        try:
            loaded.extend(load_chunk_agents(cfg, ticker, llm_guidance=llm, seed=seed, tag=tag))
        except UnreadableCheckpoint:
            raise  # present but broken: say which file, never "no agents"
        except RewtsError as exc:
            problems.append(str(exc))
        try:
            loaded.append(load_global_agent(cfg, ticker, llm_guidance=llm, seed=seed, tag=tag))
        except UnreadableCheckpoint:
            raise
        except RewtsError as exc:
            problems.append(str(exc))
        if not loaded:
            raise BacktestError(
                f"no trained {variant} agents for {ticker} (seed {seed}) under "
                f"{cfg.rewts.checkpoint_dir} (set backtest.train_missing: true to train them): "
                + "; ".join(problems)
            )
        names = self._env_data(ticker, variant).names
        members = []
        for agent in loaded:
            if agent.obs_names and tuple(agent.obs_names) != tuple(names):
                raise BacktestError(
                    f"{ticker} {variant} agent at {agent.path} was trained on different "
                    "observations than the current data gives; retrain it (`rewts train`)"
                )
            label = "global" if agent.is_global else f"chunk {agent.chunk}"
            member = Member(
                label,
                None if agent.is_global else agent.chunk,
                _curve(agent),
                trained_on=(pd.Timestamp(agent.start), pd.Timestamp(agent.end)),
                validated_on=_validation_days(agent.metadata),
            )
            members.append((member, agent))
        self._loaded[key] = members
        return members

    def members(self, ticker: str, variant: Variant, seed: int) -> list[Member]:
        return [m for m, _ in self._load(ticker, variant, seed)]

    def checkpoint(self, ticker: str, variant: Variant, seed: int, member: Member) -> LoadedAgent:
        """The loaded checkpoint behind ``member`` (its folder and training metadata)."""
        return next(a for m, a in self._load(ticker, variant, seed) if m.label == member.label)

    def q_values(
        self, ticker: str, variant: Variant, seed: int, member: Member, rows: np.ndarray
    ) -> np.ndarray:
        agent = self.checkpoint(ticker, variant, seed, member)
        data = self._env_data(ticker, variant)
        rows = np.asarray(rows)
        if rows.min() < data.first_valid:
            raise BacktestError(
                f"{ticker}: row {rows.min()} lacks a full observation window "
                f"(first valid row {data.first_valid})"
            )
        # one batched forward pass per possible held position
        return np.stack(
            [agent.greedy_q(data.observations(float(p), rows)) for p in self.position_values],
            axis=1,
        ).astype(np.float64)

    def tau_q_values(
        self,
        ticker: str,
        variant: Variant,
        seed: int,
        member: Member,
        rows: np.ndarray,
        tau: float | None,
    ) -> np.ndarray | None:
        data = self._env_data(ticker, variant)
        if data.tau_index is None:
            return None
        agent = self.checkpoint(ticker, variant, seed, member)
        obs = data.observations(0.0, np.asarray(rows))
        if tau is not None:
            obs[:, data.tau_index] = tau
        return agent.greedy_q(obs).astype(np.float64)
