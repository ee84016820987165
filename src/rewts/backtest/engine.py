"""Running every agent over the held-out period of each ticker, side by side.

Time alignment (the rule of :mod:`rewts.data.timeline`): row ``t`` of a ticker's calendar is
the decision for day ``t``, taken from observations built from data up to day ``t-1`` and
executed at the close of day ``t`` by the environment's accounting. The LLM signal of day
``t`` is its period's tau, generated from inputs that ended before the period began. The
ReWTS weights for day ``t`` are fitted on the look-back days ``t-L .. t-1``: the returns
realized on those days, i.e. the outcomes of the decisions taken one row earlier
(``outcome_lag = 2`` rows between a decision and the first decision that may know its result).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from rewts.backtest import baselines
from rewts.backtest.agents import (
    AGENT_VARIANT,
    AgentSource,
    Member,
    Variant,
    tau_decided,
)
from rewts.backtest.portfolio import evaluate
from rewts.backtest.result import AgentRun, BacktestResult, agent_label
from rewts.config import Config
from rewts.data.timeline import Timeline
from rewts.ensemble import EnsembleSettings, ReWTSEnsemble
from rewts.env.evaluation import direction_accuracy, greedy_targets, switch_cost
from rewts.env.factory import daily_tau
from rewts.errors import BacktestError, DataError
from rewts.metrics import paired_ttest

log = logging.getLogger(__name__)

Say = Callable[[str], None]

#: rows between a decision and the first decision that may know the return it earned
OUTCOME_LAG = 2
RULE_AGENTS = ("buy_and_hold", "llm_only")
#: paired comparisons reported when both agents ran: (a, b, why)
PAIRED_TESTS: tuple[tuple[str, str], ...] = (
    ("llm_rl", "rl_only"),
    ("rewts", "global_llm_rl"),
    ("llm_rl", "placebo_shuffled"),
    ("llm_rl", "placebo_const"),
)


def long_outcomes(prices: np.ndarray) -> np.ndarray:
    """Per row, the return a long position taken at that close earned by the next close."""
    out = np.zeros_like(prices, dtype=np.float64)
    out[:-1] = prices[1:] / prices[:-1] - 1.0
    return out


class TickerBacktest:
    """The backtest of one ticker: baselines, learned agents and the ensemble."""

    def __init__(
        self,
        cfg: Config,
        ticker: str,
        frame: pd.DataFrame,
        strategies: pd.DataFrame | None,
        source: AgentSource | None,
        timeline: Timeline,
        say: Say,
    ) -> None:
        self.cfg = cfg
        self.ticker = ticker
        self.frame = frame
        self.source = source
        self.timeline = timeline
        self.say = say
        split = cfg.split
        _, (self.lo, self.hi) = timeline.split(
            split.train_start, split.train_end, split.test_start, split.test_end
        )
        if self.lo < timeline.warmup:
            raise BacktestError(
                f"{ticker}: the test period starts on {timeline.dates[self.lo].date()}, inside the "
                f"data warm-up ({timeline.warmup} days); move split.test_start later"
            )
        price_column = getattr(cfg.trading_env, "price_column", "close")
        if price_column not in frame.columns:
            raise DataError(f"{ticker}: no {price_column!r} column in the processed data")
        self.prices = frame[price_column].to_numpy(np.float64)
        self.rows = np.arange(self.lo, self.hi + 1)
        self.dates = pd.DatetimeIndex(timeline.dates[self.lo : self.hi + 1])
        self.strategies = None
        self.tau = None
        if strategies is not None:
            self.strategies = baselines.check_strategies(strategies, ticker)
            # checked above: the values as given, unclipped (the LLM-only agent reads them)
            self.tau = daily_tau(self.strategies, timeline, clip=False)

    # ------------------------------------------------------------------ agents

    def buy_and_hold(self) -> list[AgentRun]:
        """Buy & Hold as the papers define it: the stock's total return (``adj_close``), fully
        invested from the first test day's close, the entry cost paid once, no stop."""
        total_return = self.frame["adj_close"].to_numpy(np.float64)[self.lo : self.hi + 1]
        env = self.cfg.trading_env.model_copy(
            update={"max_position": 1.0, "max_drawdown_limit": None}
        )
        return evaluate(
            baselines.buy_and_hold(len(self.rows))[None],
            total_return,
            self.dates,
            ticker=self.ticker,
            agents=["buy_and_hold"],
            runs=[0],
            seeds=[self.cfg.seed],
            env=env,
            backtest=self.cfg.backtest,
        )

    def rule_targets(self, agent: str) -> np.ndarray:
        if agent == "buy_and_hold":
            return baselines.buy_and_hold(len(self.rows))
        if agent == "llm_only":
            if self.tau is None:
                raise BacktestError(
                    f"{self.ticker}: LLM-only needs strategies; run `rewts strategies`"
                )
            return baselines.llm_only(self.tau[self.lo : self.hi + 1])
        raise BacktestError(f"unknown rule-based agent {agent!r}")

    def _pick_single(self, members: list[Member], agent: str, variant: Variant) -> Member:
        want_global = agent == "global_llm_rl" or self.cfg.backtest.single_agent == "global"
        if want_global:
            found = [m for m in members if m.is_global]
            what = "the global agent"
        else:
            found = [m for m in members if not m.is_global][-1:]
            what = "a chunk agent"
        if not found:
            raise BacktestError(
                f"{self.ticker}: {agent_label(agent)} needs {what} ({variant} variant) but none "
                "is trained; run `rewts train` (or set backtest.train_missing: true)"
            )
        return found[0]

    def learned_targets(self, agent: str, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Targets of a learned agent on the test rows, plus extras (ensemble records)."""
        assert self.source is not None
        variant = AGENT_VARIANT[agent]
        members = self.source.members(self.ticker, variant, seed)
        src = self.source
        if agent != "rewts":
            member = self._pick_single(members, agent, variant)
            q = src.q_values(self.ticker, variant, seed, member, self.rows)
            targets = greedy_targets(q, src.position_values, src.action_positions)
            extra: dict[str, Any] = {
                "diagnostics": self._fit_diagnostics(member, variant, seed, targets)
            }
            return targets, extra
        chunks = [m for m in members if not m.is_global]
        if not chunks:
            raise BacktestError(f"{self.ticker}: the ReWTS ensemble needs trained chunk agents")
        targets, extra = self._ensemble(chunks, seed)
        extra["diagnostics"] = {
            "test_accuracy": direction_accuracy(self.prices, self.rows, targets)
        }
        return targets, extra

    def _range_score(
        self, member: Member, variant: Variant, seed: int, days: tuple[pd.Timestamp, pd.Timestamp]
    ) -> tuple[float, float]:
        """Greedy Sharpe and direction accuracy of ``member`` over a date range (its training
        or validation days), with the backtest's own accounting."""
        from rewts.env.accounting import simulate
        from rewts.metrics import sharpe_ratio

        assert self.source is not None
        lo = max(self.timeline.position(days[0]), self.timeline.warmup)
        hi = self.timeline.position(days[1])
        if hi - lo < 2:
            return float("nan"), float("nan")
        rows = np.arange(lo, hi + 1)
        q = self.source.q_values(self.ticker, variant, seed, member, rows)
        src = self.source
        targets = greedy_targets(q, src.position_values, src.action_positions)
        path = simulate(self.prices[lo : hi + 1], targets, self.cfg.trading_env)
        sharpe = sharpe_ratio(
            path.returns, self.cfg.backtest.risk_free_rate, self.cfg.backtest.periods_per_year
        )
        return sharpe, direction_accuracy(self.prices, rows, targets)

    def _fit_diagnostics(
        self, member: Member, variant: Variant, seed: int, test_targets: np.ndarray
    ) -> dict[str, float]:
        """Greedy Sharpe and direction accuracy on the member's training days, its validation
        days and the test: the overfitting gap at a glance (a broken learner is bad in-sample
        too; an overfit one is good in-sample only)."""
        out = {
            "test_accuracy": direction_accuracy(self.prices, self.rows, test_targets),
            "test_decisive_accuracy": direction_accuracy(
                self.prices,
                self.rows,
                test_targets,
                min_move=switch_cost(self.cfg.trading_env.transaction_cost),
            ),
        }
        assert self.source is not None
        src = self.source
        observed = src.tau_q_values(self.ticker, variant, seed, member, self.rows, None)
        without = src.tau_q_values(self.ticker, variant, seed, member, self.rows, 0.0)
        if observed is not None and without is not None:
            out["test_tau_decided"] = tau_decided(observed, without, src.action_positions)
        for name, days in (("train", member.trained_on), ("validation", member.validated_on)):
            if days is not None:
                out[f"{name}_sharpe"], out[f"{name}_accuracy"] = self._range_score(
                    member, variant, seed, days
                )
        return out

    def _ensemble(self, chunks: list[Member], seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        assert self.source is not None
        cfg = self.cfg
        lookback = cfg.rewts.lookback_length
        first = max(self.timeline.warmup, getattr(self.source, "first_row", 0))
        hist_lo = max(first, self.lo - lookback - OUTCOME_LAG)
        rows = np.arange(hist_lo, self.hi + 1)
        q = np.stack(
            [self.source.q_values(self.ticker, "llm", seed, m, rows) for m in chunks], axis=1
        )  # (rows, models, positions, actions)
        # the last test day's outcome would need the close after the test: it is set to 0
        # and never enters a window (windows end OUTCOME_LAG rows before their decision)
        outcome = long_outcomes(self.prices[hist_lo : self.hi + 1])
        settings = EnsembleSettings(
            lookback=lookback,
            rebalance_every=cfg.backtest.rebalance_every,
            signal=cfg.rewts.ensemble_signal,
            solver=cfg.backtest.qp_solver,
            q_normalize=cfg.backtest.ensemble_q_normalize,
            outcome_lag=OUTCOME_LAG,
        )
        ens = ReWTSEnsemble(len(chunks), settings, self.source.action_positions)
        run = ens.run(
            q, outcome, start=self.lo - hist_lo, position_values=self.source.position_values
        )
        labels = [m.label for m in chunks]
        weights = pd.DataFrame(run.weights, index=self.dates, columns=labels)
        reb = run.rebalances.copy()
        if not reb.empty:
            reb["date"] = self.timeline.dates[hist_lo + reb["row"].to_numpy()]
        if self.lo - hist_lo < lookback + OUTCOME_LAG:
            log.info(
                "%s: only %d rows of history before the test for a %d-day look-back",
                self.ticker,
                self.lo - hist_lo,
                lookback,
            )
        return run.positions.astype(np.float64), {"weights": weights, "rebalances": reb}

    # ------------------------------------------------------------------ run

    def run(self, agents: list[str], seeds: list[int], result: BacktestResult) -> list[AgentRun]:
        targets: list[np.ndarray] = []
        names: list[str] = []
        run_ids: list[int] = []
        seed_ids: list[int] = []
        for agent in agents:
            if agent in RULE_AGENTS and agent != "buy_and_hold":
                targets.append(self.rule_targets(agent))
                names.append(agent)
                run_ids.append(0)
                seed_ids.append(self.cfg.seed)
        learned = [a for a in agents if a in AGENT_VARIANT]
        if learned and self.source is None:
            result.notes.append(
                f"{self.ticker}: learned agents skipped ({', '.join(learned)}): no trained agents"
            )
            learned = []
        for run, seed in enumerate(seeds):
            for agent in learned:
                self.say(f"{self.ticker}: {agent_label(agent)}, run {run + 1}/{len(seeds)}")
                t, extra = self.learned_targets(agent, seed)
                targets.append(t)
                names.append(agent)
                run_ids.append(run)
                seed_ids.append(seed)
                if "weights" in extra:
                    result.ensemble_weights[(self.ticker, run)] = extra["weights"]
                    result.rebalances[(self.ticker, run)] = extra["rebalances"]
                if "diagnostics" in extra:
                    result.diagnostics[(self.ticker, agent, run)] = extra["diagnostics"]
        held = self.buy_and_hold() if "buy_and_hold" in agents else []
        if not targets:
            return held
        return held + evaluate(
            np.vstack(targets),
            self.prices[self.lo : self.hi + 1],
            self.dates,
            ticker=self.ticker,
            agents=names,
            runs=run_ids,
            seeds=seed_ids,
            env=self.cfg.trading_env,
            backtest=self.cfg.backtest,
        )

    def context(self, result: BacktestResult) -> None:
        """The price and LLM-signal panels of the report."""
        result.prices[self.ticker] = pd.Series(self.prices[self.lo : self.hi + 1], index=self.dates)
        if self.strategies is None:
            return
        periods = self.timeline.periods_between(self.dates[0], self.dates[-1])
        tau = dict(zip(self.strategies["period"].astype(int), self.strategies["tau"], strict=True))
        rows = [
            {
                "period": p.index,
                "start": max(p.start, self.dates[0]),
                "end": min(p.end, self.dates[-1]),
                "inputs_end": p.inputs_end,
                "tau": float(tau.get(p.index, 0.0)),
            }
            for p in periods
        ]
        signals = pd.DataFrame(rows)
        if not signals.empty:
            signals["direction"] = np.sign(signals["tau"]).astype(int)
        result.llm_signals[self.ticker] = signals


def _sanity_notes(result: BacktestResult, min_sharpe: float, min_accuracy: float) -> None:
    """The leak agent must reach ``min_sharpe`` and ``min_accuracy`` on every ticker, else the
    learned agents' numbers are flagged as untrustworthy.

    Accuracy is counted on the test days whose move exceeds the cost of a switch: with costs,
    a policy that knows every next return calls only 93-98 % of all days (it does not pay to
    switch for a smaller move) but 100 % of those (docs/rl.md).
    """
    table = result.metrics_table()
    if table.empty or "leak_sanity" not in set(table.agent):
        return
    leak = table[table.agent == "leak_sanity"].groupby("ticker")["sharpe"].mean()
    diag = pd.DataFrame(
        [{"ticker": t, **d} for (t, a, _), d in result.diagnostics.items() if a == "leak_sanity"]
    )
    column = "test_decisive_accuracy"
    accuracy = (
        diag.groupby("ticker")[column].mean()
        if not diag.empty and column in diag.columns
        else pd.Series(np.nan, index=leak.index)
    ).reindex(leak.index)
    bad = leak.index[~(leak >= min_sharpe) | ~(accuracy >= min_accuracy)]
    thresholds = (
        f"Sharpe {min_sharpe}, direction accuracy {100 * min_accuracy:.0f} % on the test days "
        "whose move exceeds the cost of a switch"
    )
    if bad.empty:
        result.notes.append(
            f"Sanity check passed: the agent fed the next day's return reached a mean test Sharpe "
            f"of {leak.min():.2f} or more and a direction accuracy of {100 * accuracy.min():.1f} % "
            f"or more on every ticker (thresholds: {thresholds})."
        )
        return
    detail = ", ".join(f"{t} Sharpe {leak[t]:.2f}, accuracy {100 * accuracy[t]:.1f} %" for t in bad)
    why = "the learner or the environment is broken"
    failing = diag[diag.ticker.isin(bad)] if not diag.empty else diag
    if not failing.empty and {"train_accuracy", "test_accuracy"} <= set(failing.columns):
        tr, te = failing["train_accuracy"].mean(), failing["test_accuracy"].mean()
        sh = failing["train_sharpe"].mean()
        why = (
            f"on its own training days it called the direction right {100 * tr:.0f} % of "
            f"the time (Sharpe {sh:.1f}) against {100 * te:.0f} % on the test: "
            + (
                "it learned the leak but does not generalize (overfit or undertrained)"
                if tr > te + 0.1
                else "it did not learn the leak well even in-sample: the learner is "
                "undertrained or the environment is broken"
            )
        )
    result.notes.append(
        f"Sanity check failed: the agent fed the next day's return stayed below the thresholds "
        f"({thresholds}) on {detail}; {why}. The learned agents' numbers of this run cannot be "
        "trusted."
    )


def _stop_notes(result: BacktestResult, limit: float | None) -> None:
    stopped = [r for r in result.runs if r.stopped is not None]
    if limit is None or not stopped:
        return
    counts = pd.Series([f"{r.ticker} {agent_label(r.agent)}" for r in stopped]).value_counts()
    listed = ", ".join(f"{k} ({v}x)" if v > 1 else k for k, v in counts.items())
    result.notes.append(
        f"trading_env.max_drawdown_limit = {limit}: the environment's drawdown stop closed the "
        f"book and kept it flat for {len(stopped)} of {len(result.runs)} runs, Buy & Hold "
        f"included (same rules for every agent): {listed}. Set it to null for an unstopped "
        "comparison."
    )


def run_backtest(
    cfg: Config,
    dataset: Any,
    strategies: dict[str, pd.DataFrame] | None,
    source: AgentSource | None = None,
    *,
    name: str = "backtest",
    say: Say | None = None,
) -> BacktestResult:
    """Backtest ``cfg.backtest.agents`` on every ticker of ``cfg.tickers``.

    ``dataset`` has ``.frames`` (per ticker); ``strategies`` are the per-ticker strategy tables
    (None: LLM-based agents are skipped with a note); ``source`` gives the learned agents (None:
    those are skipped with a note). Learned agents run ``backtest.runs`` times with seeds
    ``cfg.seed + run``; rule-based agents are deterministic and run once.
    """
    from rewts.data import timeline_for

    say = say or (lambda _msg: None)
    started = time.perf_counter()
    result = BacktestResult(name=name, config=cfg.model_dump(mode="json"))
    agents = list(cfg.backtest.agents)
    seeds = [cfg.seed + r for r in range(cfg.backtest.runs)]
    for ticker in cfg.tickers:
        frame = dataset.frames.get(ticker)
        if frame is None:
            raise BacktestError(f"no processed data for {ticker}; run `rewts data` first")
        strat = (strategies or {}).get(ticker)
        ticker_agents = agents
        if strat is None:
            needs_llm = [
                # the RL-only and leak agents never read tau (see needs_strategies)
                a
                for a in agents
                if a == "llm_only" or AGENT_VARIANT.get(a) not in (None, "no_tau", "leak")
            ]
            if needs_llm:
                result.notes.append(f"{ticker}: no LLM strategies, skipped {', '.join(needs_llm)}")
            ticker_agents = [a for a in agents if a not in needs_llm]
        say(f"{ticker}: backtest on the test period")
        bt = TickerBacktest(cfg, ticker, frame, strat, source, timeline_for(frame, cfg), say)
        last = bt.dates[-1].date()
        if (cfg.split.test_end - last).days > 7:  # more than a weekend or a holiday short
            note = (
                f"{ticker}: the data end on {last}, before split.test_end "
                f"({cfg.split.test_end}): the test period is {bt.dates[0].date()}..{last}, "
                "shorter than configured (extend data.end_date or the data)"
            )
            result.notes.append(note)
            say(note)
        result.runs.extend(bt.run(ticker_agents, seeds, result))
        bt.context(result)
        if source is not None:
            for member in _safe_members(source, ticker, seeds[0]):
                if member.curve is not None:
                    result.training_curves[(ticker, member.label)] = member.curve
    table = result.metrics_table()
    present = set(table.agent) if not table.empty else set()
    pairs = list(PAIRED_TESTS)
    if cfg.backtest.single_agent == "global" and "global_llm_rl" not in present:
        pairs.insert(1, ("rewts", "llm_rl"))  # LLM+RL is the global agent: chunked vs global
    for a, b in pairs:
        if a in present and b in present:
            result.tests.append(paired_ttest(table, a, b, metric="sharpe"))
    _sanity_notes(result, cfg.backtest.sanity_min_sharpe, cfg.backtest.sanity_min_accuracy)
    _stop_notes(result, cfg.trading_env.max_drawdown_limit)
    fallbacks = sum(
        int((r["status"] == "fallback").sum()) for r in result.rebalances.values() if not r.empty
    )
    if fallbacks:
        result.notes.append(
            f"The ensemble QP fell back to uniform weights {fallbacks} time(s); see each ticker's section."
        )
    result.wall_seconds = time.perf_counter() - started
    return result


def _safe_members(source: AgentSource, ticker: str, seed: int) -> list[Member]:
    try:
        return source.members(ticker, "llm", seed)
    except BacktestError:
        return []
