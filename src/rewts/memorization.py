"""Memorization control: metrics either side of the model's training cutoff, and the
named-vs-blind comparison behind ``rewts compare``.

Why: an LLM whose training text covers the test years may recall the outcome (METHOD.md
section 7). Two pieces of evidence separate recall from judgment, and both are computed here
from ordinary backtest results (the stages themselves are not touched):

* **the cutoff split** (:func:`cutoff_split`): each agent's metrics on the test days up to the
  cutoff and after it; only the days after it are free of possible recall;
* **named vs blind** (:func:`compare_named_blind`, :func:`run_compare`): the same periods with
  named prompts and with blind ones (``llm.blind``), backtested alike; per ticker and agent, a
  paired t-test on the strategy periods' returns. A named edge that vanishes blind is reported
  as likely memorization.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

import numpy as np
import pandas as pd

from rewts.fileio import atomic_write, write_text_atomic
from rewts.metrics import paired_ttest, summarize

if TYPE_CHECKING:
    from rewts.backtest.result import BacktestResult
    from rewts.config import Config
    from rewts.pipeline import Feedback, RunSummary

#: agents the comparison backtests on each side (the ones the LLM's strategies drive), and
#: Buy & Hold as the yardstick of an "edge"
COMPARE_AGENTS = ("buy_and_hold", "llm_only", "llm_rl")
#: metrics shown either side of the cutoff
SPLIT_METRICS = ("sharpe", "annual_return", "max_drawdown", "cumulative_return")


# ------------------------------------------------------------------ cutoff split


def cutoff_split(result: BacktestResult, cutoff: dt.date) -> pd.DataFrame:
    """Mean metrics per (ticker, agent) on the test days up to ``cutoff`` and after it.

    Empty when the test period does not span the cutoff (fewer than 2 days on a side).
    """
    day = pd.Timestamp(cutoff)
    rows = []
    for run in result.runs:
        dates = pd.DatetimeIndex(run.dates)
        before = dates <= day
        if before.sum() < 2 or (~before).sum() < 2:
            continue
        for side, mask in (("before", before), ("after", ~before)):
            metrics = summarize(run.returns[mask], run.positions[mask])
            rows.append(
                {
                    "ticker": run.ticker,
                    "agent": run.agent,
                    "run": run.run,
                    "side": side,
                    "n_days": int(mask.sum()),
                    **{m: metrics[m] for m in SPLIT_METRICS},
                }
            )
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    grouped = table.groupby(["ticker", "agent", "side"], sort=False)
    out = grouped[["n_days", *SPLIT_METRICS]].mean()
    out["runs"] = grouped.size()
    return out.reset_index()


# --------------------------------------------------------------- named vs blind


def _period_bounds(result: BacktestResult, ticker: str, dates: pd.DatetimeIndex) -> list:
    """(start, end) of each strategy period in the test, else 20-day blocks."""
    signals = result.llm_signals.get(ticker)
    if signals is not None and not signals.empty and {"start", "end"} <= set(signals.columns):
        return [
            (pd.Timestamp(s), pd.Timestamp(e))
            for s, e in zip(signals["start"], signals["end"], strict=True)
        ]
    return [(dates[i], dates[min(i + 19, len(dates) - 1)]) for i in range(0, len(dates), 20)]


def period_returns(result: BacktestResult, agents: Iterable[str]) -> pd.DataFrame:
    """One row per (ticker, agent, run, period): the compounded return over the period's
    test days (the unit the paired test pairs on)."""
    wanted = set(agents)
    rows = []
    for run in result.runs:
        if run.agent not in wanted:
            continue
        dates = pd.DatetimeIndex(run.dates)
        returns = pd.Series(run.returns, index=dates)
        for k, (start, end) in enumerate(_period_bounds(result, run.ticker, dates)):
            inside = returns[(dates >= start) & (dates <= end)]
            if inside.empty:
                continue
            rows.append(
                {
                    "ticker": run.ticker,
                    "agent": run.agent,
                    "run": run.run,
                    "period": k,
                    "period_return": float(np.prod(1.0 + inside.to_numpy()) - 1.0),
                }
            )
    return pd.DataFrame(rows)


def verdict(
    mean_diff: float, p_value: float, named: float, blind: float, hold: float | None
) -> str:
    """What a per-ticker comparison says, in words."""
    if math.isfinite(p_value) and p_value < 0.05:
        if mean_diff > 0:
            return "likely memorization: the named edge vanishes blind (p < 0.05)"
        return "blind better than named (p < 0.05)"
    finite = hold is not None and math.isfinite(named) and math.isfinite(blind)
    if finite and named > hold >= blind:  # type: ignore[operator]
        return "named beats Buy & Hold, blind does not (not significant)"
    return "no sign of memorization"


def compare_named_blind(
    named: BacktestResult, blind: BacktestResult, agents: Iterable[str] = ("llm_only", "llm_rl")
) -> pd.DataFrame:
    """One row per (ticker, agent): Sharpe named and blind (mean over runs), Buy & Hold's, the
    paired t-test on period returns (pairs: same period and seed) and the verdict."""
    agents = list(agents)
    rows = []
    for ticker in named.tickers():
        hold_run = named.find(ticker, "buy_and_hold")
        hold = float(hold_run.metrics["sharpe"]) if hold_run is not None else None
        for agent in agents:
            a = period_returns(named, [agent])
            b = period_returns(blind, [agent])
            if a.empty or b.empty:
                continue
            a, b = a[a["ticker"] == ticker], b[b["ticker"] == ticker]
            if a.empty or b.empty:
                continue
            table = pd.concat([a.assign(agent="named"), b.assign(agent="blind")])
            test = paired_ttest(
                table, "named", "blind", metric="period_return", pair_on=("period", "run")
            )
            sharpe = {
                side: float(
                    np.nanmean(
                        [
                            r.metrics["sharpe"]
                            for r in res.runs
                            if r.ticker == ticker and r.agent == agent
                        ]
                    )
                )
                for side, res in (("named", named), ("blind", blind))
            }
            rows.append(
                {
                    "ticker": ticker,
                    "agent": agent,
                    "sharpe_named": sharpe["named"],
                    "sharpe_blind": sharpe["blind"],
                    "sharpe_buy_and_hold": hold,
                    "periods": test.n_pairs,
                    "mean_period_return_named": test.mean_a,
                    "mean_period_return_blind": test.mean_b,
                    "mean_diff": test.mean_diff,
                    "t": test.t_statistic,
                    "p": test.p_value,
                    "named_better_periods": test.a_wins,
                    "verdict": verdict(
                        test.mean_diff, test.p_value, sharpe["named"], sharpe["blind"], hold
                    ),
                }
            )
    return pd.DataFrame(rows)


# -------------------------------------------------------------------- the command


def load_runs(run_dir: Path, signals: dict[str, pd.DataFrame] | None = None) -> BacktestResult:
    """The agent runs of a finished backtest, read back from its ``daily.csv``, ``metrics.csv``
    and ``metrics.json`` (so a skipped stage's results compare like fresh ones)."""
    from rewts.backtest.result import AgentRun, BacktestResult
    from rewts.errors import DataError

    run_dir = Path(run_dir)
    try:
        daily = pd.read_csv(run_dir / "daily.csv", parse_dates=["date"])
        metrics = pd.read_csv(run_dir / "metrics.csv")
        payload = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the backtest results in {run_dir}: {exc}") from None
    result = BacktestResult(
        name=str(payload.get("run", run_dir.name)),
        config=payload.get("config") or {},
        notes=list(payload.get("notes") or []),
        llm_signals=dict(signals or {}),
        memorization=dict(payload.get("memorization") or {}),
    )
    by_run = {(r.ticker, r.agent, int(r.run)): r for r in metrics.itertuples(index=False)}
    for (ticker, agent, run), rows in daily.groupby(["ticker", "agent", "run"], sort=False):
        row = by_run.get((ticker, agent, int(run)))
        values = {} if row is None else row._asdict()
        result.runs.append(
            AgentRun(
                ticker=str(ticker),
                agent=str(agent),
                run=int(run),
                seed=int(values.get("seed", 0)),
                dates=pd.DatetimeIndex(rows["date"]),
                returns=rows["return"].to_numpy(float),
                positions=rows["position"].to_numpy(float),
                equity=rows["equity"].to_numpy(float),
                trades=rows["trade"].to_numpy(float),
                costs=rows["cost"].to_numpy(float),
                metrics={
                    k: v for k, v in values.items() if k not in ("ticker", "agent", "run", "seed")
                },
            )
        )
    return result


@dataclass
class CompareResult:
    """What ``rewts compare`` produced: the two runs and the comparison table."""

    out_dir: Path
    named: RunSummary
    blind: RunSummary
    table: pd.DataFrame
    report: Path | None


def arm_config(cfg: Config, arm: str, root: Path) -> Config:
    """``cfg`` for one side: blind or not, with its own strategy tables and checkpoints (the
    LLM+RL agents learn from that side's tau), and the comparison's agents."""
    agents = [a for a in cfg.backtest.agents if a in COMPARE_AGENTS] or list(COMPARE_AGENTS)
    if "buy_and_hold" not in agents:
        agents.insert(0, "buy_and_hold")
    return cfg.model_copy(
        update={
            "llm": cfg.llm.model_copy(
                update={"blind": arm == "blind", "output_dir": root / "strategies" / arm}
            ),
            "rewts": cfg.rewts.model_copy(update={"checkpoint_dir": root / "checkpoints" / arm}),
            "backtest": cfg.backtest.model_copy(update={"agents": agents}),
        }
    )


def run_compare(
    cfg: Config, out_dir: Path, *, html: bool = True, **feedback: Unpack[Feedback]
) -> CompareResult:
    """Run the pipeline twice on the same data and periods, named then blind (each skips
    what is unchanged, like ``rewts run``), and compare them. Writes
    ``memorization.csv``/``.json`` and ``report.html`` (the named run's report with the
    "Memorization check" section) under ``out_dir``; each side's full results are in
    ``out_dir/named`` and ``out_dir/blind``."""
    from rewts.llm import load_strategies
    from rewts.pipeline import run_pipeline

    out_dir = Path(out_dir)
    work = out_dir / "work"
    summaries: dict[str, RunSummary] = {}
    results: dict[str, BacktestResult] = {}
    say = feedback.get("say")
    for arm in ("named", "blind"):
        if say is not None:
            say(f"rewts compare: {arm} prompts")
        arm_cfg = arm_config(cfg, arm, work)
        summaries[arm] = run_pipeline(arm_cfg, run_dir=out_dir / arm, html=html, **feedback)
        tables = load_strategies(arm_cfg) or {}
        signals = {t: df[["start", "end", "direction", "tau"]] for t, df in tables.items()}
        results[arm] = load_runs(out_dir / arm, signals)
    table = compare_named_blind(results["named"], results["blind"])
    atomic_write(out_dir / "memorization.csv", lambda p: table.to_csv(p, index=False), mode=0o666)
    records = json.loads(table.to_json(orient="records"))
    payload = {
        "named": str(out_dir / "named"),
        "blind": str(out_dir / "blind"),
        "comparison": records,
    }
    write_text_atomic(out_dir / "memorization.json", json.dumps(payload, indent=2), mode=0o666)
    report = None
    if html:
        from rewts.report.html import render_compare_html

        report = out_dir / "report.html"
        html_text = render_compare_html(results["named"], results["blind"], records)
        write_text_atomic(report, html_text, mode=0o666)
    return CompareResult(out_dir, summaries["named"], summaries["blind"], table, report)


__all__ = [
    "COMPARE_AGENTS",
    "CompareResult",
    "arm_config",
    "compare_named_blind",
    "cutoff_split",
    "load_runs",
    "period_returns",
    "run_compare",
    "verdict",
]
