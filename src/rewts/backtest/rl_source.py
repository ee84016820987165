"""The RL stage as an :class:`~rewts.backtest.agents.AgentSource`: train what is missing, load
checkpoints, and give greedy Q-values on the same observation matrix the agents trained on.

Variants map onto the training stage's checkpoint variants:

=================  ==============  =====================  ======================================
variant            llm_guidance    tag                    what differs
=================  ==============  =====================  ======================================
llm                True            ""                     the real strategies' tau
no_tau             False           ""                     no tau column (RL-only)
placebo_const      True            placebo_const          tau = mean tau of the pre-test periods
placebo_shuffled   True            placebo_shuffled       tau permuted across periods (seeded)
leak               False           leak                   + a column with the return the
                                                          decision will earn (the sanity check)
=================  ==============  =====================  ======================================

Only the members an agent needs are trained: every chunk and the global agent for ``llm``
(the ensemble, LLM+RL and the global agent share them), and the one single agent
(``backtest.single_agent``: the last chunk, or the global agent) for the other variants.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from rewts.agents.presets import apply_preset
from rewts.backtest import baselines
from rewts.backtest.agents import AGENT_VARIANT, Member, Variant
from rewts.config import Config
from rewts.env.evaluation import position_values
from rewts.env.factory import env_data_for
from rewts.env.features import COMPACT_HORIZONS, EnvData
from rewts.env.trading import action_targets
from rewts.errors import BacktestError, RewtsError
from rewts.training import (
    GLOBAL_CHUNK,
    LoadedAgent,
    build_jobs,
    execute_jobs,
    load_chunk_agents,
    load_curves,
    load_global_agent,
)
from rewts.training.checkpoints import UnreadableCheckpoint, write_manifests
from rewts.training.jobs import TrainJob

#: name of the leaked feature column of the sanity check
LEAK_COLUMN = "leak_next_return"
#: each agent variant's checkpoints: (llm_guidance, tag); the pipeline reads them too
VARIANT_CHECKPOINTS: dict[Variant, tuple[bool, str]] = {
    "llm": (True, ""),
    "no_tau": (False, ""),
    "placebo_const": (True, "placebo_const"),
    "placebo_shuffled": (True, "placebo_shuffled"),
    "leak": (False, "leak"),
}
_CURVE_COLUMNS = ("return", "sharpe", "loss")


def leak_frame(frame: pd.DataFrame, price_column: str) -> pd.DataFrame:
    """``frame`` plus the deliberately leaked feature of the sanity check.

    Observation row ``t`` holds data row ``t-1``; the decision of row ``t`` is executed at
    close ``t`` and earns ``close[t+1] / close[t] - 1``. So data row ``d`` gets
    ``close[d+2] / close[d+1] - 1``: exactly the return the next decision will earn.
    """
    price = frame[price_column].to_numpy(np.float64)
    leak = np.zeros(len(price))
    leak[:-2] = price[2:] / price[1:-1] - 1.0
    out = frame.copy()
    out[LEAK_COLUMN] = leak
    return out


def leak_dataset(dataset: Any, price_column: str) -> Any:
    frames = {t: leak_frame(f, price_column) for t, f in dataset.frames.items()}
    fields = {
        "frames": frames,
        "feature_columns": (*tuple(dataset.feature_columns), LEAK_COLUMN),
        "content_hash": f"{getattr(dataset, 'content_hash', '')}+{LEAK_COLUMN}",
    }
    if dataclasses.is_dataclass(dataset):
        return dataclasses.replace(dataset, **fields)
    return SimpleNamespace(**{**vars(dataset), **fields})


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
        progress: bool = False,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = apply_preset(cfg)
        self.dataset = dataset
        self.strategies = strategies
        self.progress = progress
        self.say = say or (lambda _msg: None)
        self.action_positions = action_targets(self.cfg.trading_env.actions)
        # the book starts flat, so 0 is a possible held position for every action set
        self.position_values = position_values(self.action_positions)
        # the first row every feature set can observe (the ensemble's history starts there)
        self.first_row = int(max(self.cfg.trading_env.window, max(COMPACT_HORIZONS)))
        self._data: dict[tuple[str, Variant], EnvData] = {}
        self._loaded: dict[tuple[str, Variant, int], list[tuple[Member, LoadedAgent]]] = {}
        self._inputs: dict[Variant, tuple[Config, Any, dict[str, pd.DataFrame] | None]] = {}

    # ----------------------------------------------------------- variant inputs

    def _variant_inputs(
        self, variant: Variant
    ) -> tuple[Config, Any, dict[str, pd.DataFrame] | None]:
        if variant in self._inputs:
            return self._inputs[variant]
        llm, _ = VARIANT_CHECKPOINTS[variant]
        cfg = self.cfg.model_copy(
            update={"rewts": self.cfg.rewts.model_copy(update={"llm_guidance": llm})}
        )
        dataset, strategies = self.dataset, self.strategies if llm else None
        if llm and strategies is None:
            raise BacktestError(
                "LLM-guided agents need strategies: run `rewts strategies` (or drop them from "
                "backtest.agents)"
            )
        if variant in ("placebo_const", "placebo_shuffled"):
            from rewts.data import timeline_for

            assert strategies is not None
            kind = "constant" if variant == "placebo_const" else "shuffled"
            strategies = {
                t: baselines.placebo_strategies(
                    s,
                    kind,
                    timeline=timeline_for(self.dataset.frames[t], cfg),
                    test_start=pd.Timestamp(cfg.split.test_start),
                    seed=cfg.seed,
                )
                for t, s in strategies.items()
                if t in self.dataset.frames
            }
        if variant == "leak":
            dataset = leak_dataset(self.dataset, cfg.trading_env.price_column)
        self._inputs[variant] = (cfg, dataset, strategies)
        return self._inputs[variant]

    def needed_chunks(self, variant: Variant, agents: Sequence[str]) -> str:
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
        variants = list(dict.fromkeys(AGENT_VARIANT[a] for a in agents if a in AGENT_VARIANT))
        planned: dict[Variant, list[TrainJob]] = {}
        for variant in variants:
            cfg, dataset, strategies = self._variant_inputs(variant)
            _, tag = VARIANT_CHECKPOINTS[variant]
            cfg = cfg.model_copy(update={"tickers": list(tickers)})
            found = build_jobs(cfg, dataset, strategies, include_global=True, seeds=seeds, tag=tag)
            if self.needed_chunks(variant, agents) == "single":
                if self.cfg.backtest.single_agent == "global":
                    found = [j for j in found if j.chunk == GLOBAL_CHUNK]
                else:
                    last = {j.ticker: j.chunk for j in found}
                    for j in found:
                        if j.chunk != GLOBAL_CHUNK:
                            last[j.ticker] = max(last[j.ticker], j.chunk)
                    found = [j for j in found if j.chunk == last[j.ticker]]
            planned[variant] = found
        return planned

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
            self.cfg.model_copy(update={"tickers": list(tickers)}), jobs, progress=self.progress
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
        agent = next(a for m, a in self._load(ticker, variant, seed) if m.label == member.label)
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
