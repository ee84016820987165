"""Calibration with planted signals: does an agent use guidance when it is informative and
ignore it when it is not?

The LLM's tau is replaced by a *planted* signal built from each period's own future return with
a chosen information coefficient (IC): ``s = IC * z + sqrt(1 - IC^2) * noise``, where ``z`` is
the period's realized log return (from the close its first decision is executed at to the close
after its last) divided by the standard deviation of the training periods' returns, and the
noise is standard normal, drawn per (seed, ticker, IC). Then ``tau = clip(s / 2, -1, 1)``, so
that LLM-only trades ``sign(s)`` and the agents see a graded strength. IC 0 is a signal with no
information (LLM+RL must then match RL-only); IC 1 is the future itself (the leak check's end of
the scale). By default the noise is one seeded draw per (ticker, IC) and the agents' seeds vary
over the runs; ``draw_per_seed`` draws it anew for every seed, so that the paired tests also
vary the signal's noise. This deliberately looks into the future: it is a calibration of the learners on real
prices, labelled as such everywhere, and its results are never mixed with real results.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rewts.config import Config
from rewts.config.models import DEFAULT_BACKTEST_AGENTS
from rewts.data.timeline import Timeline
from rewts.errors import BacktestError
from rewts.metrics import paired_ttest
from rewts.training.events import Events

#: the IC levels of the issue that asked for this experiment
DEFAULT_IC_LEVELS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.4)
#: agents a calibration compares: the backtest's, but the leak check (the planted signal at IC 1
#: is the future already); RL-only never reads tau: trained once for every IC level
DEFAULT_AGENTS: tuple[str, ...] = tuple(a for a in DEFAULT_BACKTEST_AGENTS if a != "leak_sanity")
LABEL = "CALIBRATION (planted signal built from future returns; not an LLM, not a result)"


def period_returns(prices: np.ndarray, timeline: Timeline) -> np.ndarray:
    """Log return each period's decisions earn when held throughout: from the close of its
    first day (where its first decision is executed) to the close after its last day."""
    prices = np.asarray(prices, dtype=np.float64)
    out = np.full(len(timeline.periods), np.nan)
    for p in timeline.periods:
        last = min(p.end_pos + 1, len(prices) - 1)
        if last > p.start_pos:
            out[p.index] = math.log(prices[last] / prices[p.start_pos])
    return out


def planted_strategies(
    prices: np.ndarray,
    timeline: Timeline,
    *,
    ic: float,
    seed: int,
    ticker: str,
    train_end: Any,
) -> pd.DataFrame:
    """One strategy row per period whose tau carries information coefficient ``ic`` about the
    period's own future return (module docstring). The noise depends only on (seed, ticker,
    ic); the scale of ``z`` only on the training periods."""
    if not 0.0 <= ic <= 1.0:
        raise BacktestError(f"information coefficient must be within [0, 1], got {ic}")
    returns = period_returns(prices, timeline)
    ends = np.array([p.end for p in timeline.periods], dtype="datetime64[ns]")
    train = (ends <= np.datetime64(pd.Timestamp(train_end))) & np.isfinite(returns)
    scale = float(np.std(returns[train], ddof=1)) if train.sum() > 2 else float(np.nanstd(returns))
    z = np.nan_to_num(returns / (scale if scale > 0 else 1.0))
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(ticker.encode()), round(ic * 1_000_000)]
    noise = np.random.default_rng(np.random.SeedSequence(entropy)).standard_normal(len(z))
    signal = ic * z + math.sqrt(max(0.0, 1.0 - ic * ic)) * noise
    tau = np.clip(signal / 2.0, -1.0, 1.0)
    return pd.DataFrame(
        {
            "period": np.arange(len(z)),
            "tau": tau,
            "direction": (tau > 0).astype(int),
            "provider": "planted",
            "model": f"planted-ic{ic:g}",
        }
    )


def realized_ic(
    strategies: pd.DataFrame, prices: np.ndarray, timeline: Timeline, days: Any
) -> float:
    """Pearson correlation between tau and the period's return over the periods inside ``days``
    (a (first, last) date pair): what the planted signal turned out to carry there."""
    returns = period_returns(prices, timeline)
    lo, hi = (np.datetime64(pd.Timestamp(d)) for d in days)
    starts = np.array([p.start for p in timeline.periods], dtype="datetime64[ns]")
    inside = (starts >= lo) & (starts <= hi) & np.isfinite(returns)
    tau = strategies.set_index("period")["tau"].reindex(range(len(returns))).to_numpy()
    if inside.sum() < 3:
        return float("nan")
    return float(np.corrcoef(tau[inside], returns[inside])[0, 1])


@dataclass
class CalibrationResult:
    """Per (ticker, IC, agent, seed): the test metrics; the realized IC of each planted signal;
    the paired tests per IC level."""

    runs: pd.DataFrame
    realized: pd.DataFrame
    tests: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """Mean test Sharpe (± std over seeds, averaged over tickers) per IC level and agent."""
        per_seed = self.runs.groupby(["ic", "agent", "seed"])["sharpe"].mean().reset_index()
        out = per_seed.groupby(["ic", "agent"])["sharpe"].agg(["mean", "std", "count"])
        return out.reset_index()


def _paired(runs: pd.DataFrame, a: str, b: str) -> dict[str, Any]:
    """Paired by ticker and seed; a deterministic agent (LLM-only) pairs with every seed."""
    table = runs.rename(columns={"seed": "run"})
    seeds = sorted(table.loc[table.agent == a, "run"].unique())
    once = table[
        (table.agent == b) & (table.groupby(["ticker", "agent"])["run"].transform("nunique") == 1)
    ]
    if not once.empty and len(seeds) > 1:  # repeat the single run for every seed of a
        table = pd.concat(
            [table.drop(once.index), *(once.assign(run=s) for s in seeds)], ignore_index=True
        )
    return paired_ttest(table, a, b, metric="sharpe").to_dict()


def run_calibration(
    cfg: Config,
    dataset: Any,
    *,
    ic_levels: Sequence[float] = DEFAULT_IC_LEVELS,
    runs: int = 5,
    agents: Sequence[str] = DEFAULT_AGENTS,
    draw_per_seed: bool = False,
    events: Events = None,
    say: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Backtest ``agents`` with planted tau at every IC level, ``runs`` agent seeds each.

    By default, per IC level and ticker the planted signal is one seeded draw (``cfg.seed``),
    the signal every agent of that level sees; the runs vary the agents' seeds
    (``cfg.seed + run``), so that LLM+RL and LLM-only are compared on the same signal and one
    backtest trains every seed as one population. The paired tests are then conditional on
    that one draw. ``draw_per_seed`` draws the signal anew for every seed (its noise seeded by
    the agents' seed), so each seed's agents and LLM-only see their own draw; each seed is
    then its own backtest (no population across seeds: slower). Checkpoints of each level live
    in their own folder (``<checkpoint_dir>/calibration/ic<IC>``, ``ic<IC>-draws`` per seed),
    never replacing the real agents'; RL-only and Buy & Hold never read tau and run once for
    all levels.
    """
    from rewts.backtest.runner import backtest_all
    from rewts.data import timeline_for

    say = say or (lambda _msg: None)
    base = Path(cfg.rewts.checkpoint_dir) / "calibration"
    tau_agents = [a for a in agents if a not in ("rl_only", "buy_and_hold")]
    fixed_agents = [a for a in agents if a in ("rl_only", "buy_and_hold")]
    rows: list[dict[str, Any]] = []
    realized: list[dict[str, Any]] = []
    test_days = (cfg.split.test_start, cfg.split.test_end)

    def run(
        folder: str, which: list[str], ic: float | None, planted: Any, seeds: list[int]
    ) -> None:
        run_cfg = cfg.model_copy(
            update={
                "seed": seeds[0],
                "rewts": cfg.rewts.model_copy(update={"checkpoint_dir": base / folder}),
                "backtest": cfg.backtest.model_copy(
                    update={"runs": len(seeds), "agents": which, "train_missing": True}
                ),
            }
        )
        result = backtest_all(run_cfg, dataset, planted, name="calibration", events=events, say=say)
        for r in result.runs:
            rows.append(
                {"ticker": r.ticker, "ic": ic, "agent": r.agent, "seed": r.seed, **r.metrics}
            )

    seeds = [cfg.seed + r for r in range(runs)]
    if fixed_agents:
        say(f"{LABEL}: {', '.join(fixed_agents)} ({runs} seeds; they never read tau)")
        run("rl", fixed_agents, None, None, seeds)
    # the seeds that share one draw of the planted noise (its seed: the group's first)
    groups = [[s] for s in seeds] if draw_per_seed else [seeds]
    for ic in ic_levels:
        for group in groups:
            planted = {}
            for ticker in cfg.tickers:
                frame = dataset.frames[ticker]
                timeline = timeline_for(frame, cfg)
                prices = frame[cfg.trading_env.price_column].to_numpy(np.float64)
                planted[ticker] = planted_strategies(
                    prices,
                    timeline,
                    ic=ic,
                    seed=group[0],
                    ticker=ticker,
                    train_end=cfg.split.train_end,
                )
                realized.append(
                    {
                        "ticker": ticker,
                        "ic": ic,
                        "draw": group[0],
                        "realized_ic_test": realized_ic(
                            planted[ticker], prices, timeline, test_days
                        ),
                    }
                )
            if tau_agents:
                which = f"seed {group[0]}, its own draw" if draw_per_seed else f"{runs} seeds"
                say(f"{LABEL}: IC {ic:g} ({which})")
                folder = f"ic{ic:g}-draws" if draw_per_seed else f"ic{ic:g}"
                run(folder, tau_agents, ic, planted, group)
    table = pd.DataFrame(rows)
    # the IC-free agents belong to every level
    free = table[table["ic"].isna()]
    table = pd.concat(
        [table[table["ic"].notna()], *(free.assign(ic=ic) for ic in ic_levels)], ignore_index=True
    )
    tests = []
    for ic in ic_levels:
        level = table[table["ic"] == ic]
        for a, b in (("llm_rl", "rl_only"), ("llm_rl", "llm_only"), ("llm_rl", "placebo_shuffled")):
            if {a, b} <= set(level.agent) and a != b:
                tests.append({"ic": ic, **_paired(level, a, b)})
    return CalibrationResult(table, pd.DataFrame(realized), pd.DataFrame(tests))
