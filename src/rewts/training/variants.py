"""Which checkpoints each training *variant* needs, and the inputs it is trained on.

A variant is what an agent was trained and is fed with; the backtest maps its learned agents
onto them (``rewts.backtest.agents.AGENT_VARIANT``):

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

:class:`VariantPlan` turns (tickers, variants and the members each needs, seeds) into the
training jobs: what training runs and what ``rewts signal`` checks checkpoints against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import pandas as pd

from rewts.config import Config
from rewts.data.timeline import Timeline
from rewts.errors import BacktestError, DataError
from rewts.training.jobs import GLOBAL_CHUNK, TrainJob
from rewts.training.runner import build_jobs

Variant = Literal["llm", "no_tau", "placebo_const", "placebo_shuffled", "leak"]
#: the members a variant needs: every chunk and the global agent, or the single agent only
#: (``backtest.single_agent``: the last chunk, or the global agent)
Needed = Literal["all", "single"]
PlaceboKind = Literal["constant", "shuffled"]

#: name of the leaked feature column of the sanity check
LEAK_COLUMN = "leak_next_return"
#: each variant's checkpoints: (llm_guidance, tag); the pipeline reads them too
VARIANT_CHECKPOINTS: dict[Variant, tuple[bool, str]] = {
    "llm": (True, ""),
    "no_tau": (False, ""),
    "placebo_const": (True, "placebo_const"),
    "placebo_shuffled": (True, "placebo_shuffled"),
    "leak": (False, "leak"),
}


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
    """``dataset`` with :func:`leak_frame` applied to every ticker (and its hash marked)."""
    frames = {t: leak_frame(f, price_column) for t, f in dataset.frames.items()}
    fields = {
        "frames": frames,
        "feature_columns": (*tuple(dataset.feature_columns), LEAK_COLUMN),
        "content_hash": f"{getattr(dataset, 'content_hash', '')}+{LEAK_COLUMN}",
    }
    if dataclasses.is_dataclass(dataset):
        return dataclasses.replace(dataset, **fields)
    return SimpleNamespace(**{**vars(dataset), **fields})


def placebo_strategies(
    strategies: pd.DataFrame,
    kind: PlaceboKind,
    *,
    timeline: Timeline,
    test_start: pd.Timestamp,
    seed: int,
) -> pd.DataFrame:
    """A copy of ``strategies`` whose tau carries no information about its period.

    ``constant`` replaces every period's tau with the mean tau of the periods that end before
    the test starts (no test-period information); ``shuffled`` permutes tau across all
    periods with a seeded generator (same values, wrong timing).
    """
    out = strategies.copy()
    tau = out["tau"].to_numpy(dtype=float)
    if kind == "constant":
        ends = np.array(
            [timeline.periods[int(p)].end for p in out["period"]], dtype="datetime64[ns]"
        )
        before = ends < np.datetime64(pd.Timestamp(test_start))
        value = float(tau[before].mean()) if before.any() else 0.0
        out["tau"] = value
    elif kind == "shuffled":
        out["tau"] = np.random.default_rng(seed).permutation(tau)
    else:
        raise DataError(f"unknown placebo {kind!r}: use 'constant' or 'shuffled'")
    if "direction" in out.columns:
        out["direction"] = (out["tau"] > 0).astype(int)
    out.attrs["placebo"] = kind
    return out


VariantInputs = tuple[Config, Any, dict[str, pd.DataFrame] | None]


class VariantPlan:
    """The inputs of every variant of one experiment (built once each), and their jobs."""

    def __init__(
        self, cfg: Config, dataset: Any, strategies: dict[str, pd.DataFrame] | None
    ) -> None:
        self.cfg, self.dataset, self.strategies = cfg, dataset, strategies
        self._inputs: dict[Variant, VariantInputs] = {}

    def inputs(self, variant: Variant) -> VariantInputs:
        """(config, dataset, strategies) the variant trains and is fed with."""
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
            kind: PlaceboKind = "constant" if variant == "placebo_const" else "shuffled"
            strategies = {
                t: placebo_strategies(
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

    def jobs(
        self, tickers: Sequence[str], needed: Mapping[Variant, Needed], seeds: Sequence[int]
    ) -> dict[Variant, list[TrainJob]]:
        """Per variant, the jobs of the members it needs (finished or not)."""
        planned: dict[Variant, list[TrainJob]] = {}
        for variant, members in needed.items():
            cfg, dataset, strategies = self.inputs(variant)
            _, tag = VARIANT_CHECKPOINTS[variant]
            cfg = cfg.model_copy(update={"tickers": list(tickers)})
            found = build_jobs(cfg, dataset, strategies, include_global=True, seeds=seeds, tag=tag)
            if members == "single":
                found = self._single(found)
            planned[variant] = found
        return planned

    def _single(self, found: list[TrainJob]) -> list[TrainJob]:
        """Only each ticker's single agent: the global one, or its last chunk."""
        if self.cfg.backtest.single_agent == "global":
            return [j for j in found if j.chunk == GLOBAL_CHUNK]
        last = {j.ticker: j.chunk for j in found}
        for j in found:
            if j.chunk != GLOBAL_CHUNK:
                last[j.ticker] = max(last[j.ticker], j.chunk)
        return [j for j in found if j.chunk == last[j.ticker]]
