"""Tomorrow's position from the trained agents (``rewts signal``): for each ticker, on a day
``D`` (the data's last day, or ``--asof``), the strategy of the current period and each
agent's position for the next trading day, exactly as the backtest would take it.

How it stays honest and equal to the backtest:

* **Nothing after D.** Each ticker's frame is cut after ``D`` and one placeholder row (a copy
  of ``D``'s) stands for the next trading day ``D+1``. Observation row ``t`` reads data rows
  ``<= t-1``, so the decision for ``D+1`` reads rows up to ``D`` only; the placeholder's own
  values feed nothing that decision sees (the ensemble's look-back ends two rows before it).
  The strategy of ``D+1``'s period was made from inputs that ended before the period began;
  when that period has no stored strategy yet (``D`` is the last day of a period) it is
  generated now, through the normal engine and cache, from the cut data.
* **The backtest's own code.** The positions come from
  :class:`rewts.backtest.engine.TickerBacktest` run over the test period from its first day to
  ``D+1`` (the held position is part of an agent's state, so its path matters): the same
  checkpoints, observations, greedy chain and ReWTS weights as ``rewts backtest``. ``position``
  is the decision for ``D+1`` (traded at its close; ``daily.csv`` shows it as the position held
  over the day after), ``held`` the one in force during ``D+1`` (decided the day before).
* **The agents of this config and data.** Every checkpoint used must carry the input hash the
  training stage would give it now (data slice, tau, settings, seed): otherwise it was trained
  on another config or data version and the signal is refused, as is a ``D`` inside the
  training range (the agents have seen those days: an in-sample signal).

The placebo with shuffled tau (its tau permutes every period, later ones included) and the
leak sanity check (it reads the return its decision will earn) are controls that need the
future: they get no signal, with the reason.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rewts.backtest.agents import AGENT_VARIANT
from rewts.backtest.result import agent_label
from rewts.config import Config
from rewts.errors import DataError, SignalError
from rewts.training.jobs import GLOBAL_CHUNK, TrainJob, job_folder, read_meta

#: backtest agents that have no signal, and why
NOT_SIGNALS = {
    "placebo_shuffled": "a control: its tau is shuffled across every period, later ones included",
    "leak_sanity": "a control: it reads the return its decision will earn (the future)",
}


@dataclass
class AgentSignal:
    """One agent (one seed) on the next trading day."""

    agent: str
    label: str
    run: int
    seed: int
    #: the position in force during the next trading day (decided the day before)
    held: float
    #: the decision for the next trading day, traded at its close
    position: float


@dataclass
class EnsembleWeights:
    """The ReWTS weights in force on the next trading day, per chunk model."""

    run: int
    seed: int
    weights: dict[str, float]


@dataclass
class TickerSignal:
    """Everything ``rewts signal`` says about one ticker."""

    ticker: str
    asof: str
    next_day: str
    #: False when ``asof`` is the data's last day: the exchange calendar dates the next day
    next_day_in_data: bool
    #: where ``next_day`` comes from: ``data``, or ``calendar <name>`` (the next session of
    #: the exchange ``data.calendar`` names)
    next_day_from: str
    strategy: dict[str, Any] | None
    agents: list[AgentSignal] = field(default_factory=list)
    ensemble: list[EnsembleWeights] = field(default_factory=list)
    #: agents without a signal -> why
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class SignalReport:
    tickers: list[TickerSignal]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Window:
    """A dataset cut after the as-of day (what the backtest source and training read)."""

    frames: dict[str, pd.DataFrame]
    feature_columns: tuple[str, ...]
    content_hash: str = ""


# ------------------------------------------------------------------------------ days


def as_of_day(cfg: Config, ticker: str, frame: pd.DataFrame, asof: dt.date | None) -> int:
    """Row of the as-of day: the last trading day on or before ``asof`` (the data's last day
    when None); refused when it lies in the training range or before the test's first day."""
    dates = pd.DatetimeIndex(frame.index)
    last = dates[-1]
    if asof is None:
        pos = len(dates) - 1
    else:
        day = pd.Timestamp(asof)
        if day > last:
            raise DataError(
                f"--asof {asof}: after the last day of {ticker}'s data ({last.date()}); "
                "extend the data (data.end_date) or pick an earlier day"
            )
        pos = int(dates.searchsorted(day, side="right")) - 1
        if pos < 0:
            raise SignalError(f"--asof {asof}: before {ticker}'s data begins ({dates[0].date()})")
    split = cfg.split
    if dates[pos] <= pd.Timestamp(split.train_end):
        raise SignalError(
            f"--asof {dates[pos].date()} lies inside the training range "
            f"({split.train_start}..{split.train_end}): the agents have seen those days, so a "
            f"signal there is in-sample; pick a day after {split.train_end}"
        )
    first_test = int(dates.searchsorted(pd.Timestamp(split.test_start), side="left"))
    if pos + 1 < first_test:
        raise SignalError(
            f"--asof {dates[pos].date()}: the backtest's book starts on the test period's "
            f"first day ({dates[min(first_test, len(dates) - 1)].date()}); pick the day before "
            "it or later"
        )
    return pos


@functools.lru_cache(maxsize=16)
def next_session(day: pd.Timestamp, calendar: str) -> pd.Timestamp:
    """The exchange's first session after ``day``, its weekends and holidays skipped (the
    ``exchange_calendars`` calendar ``calendar``, ``data.calendar``). Cached: the tickers of
    one signal usually end on the same day, and building a calendar takes 0.2 s."""
    import exchange_calendars

    try:
        sessions = exchange_calendars.get_calendar(
            calendar, start=day - pd.Timedelta(days=7), end=day + pd.Timedelta(days=31)
        )
        return pd.Timestamp(sessions.date_to_session(day + pd.Timedelta(days=1), "next"))
    except ValueError as exc:  # the library's errors (a day out of its range) are ValueErrors
        raise SignalError(
            f"data.calendar = {calendar}: cannot date the session after {day.date()}: {exc}"
        ) from None


def cut_frame(frame: pd.DataFrame, pos: int, calendar: str) -> tuple[pd.DataFrame, bool]:
    """Rows up to ``pos`` plus a placeholder for the next trading day (a copy of row ``pos``
    under the next day's date: the data's when they go on, else the exchange calendar's next
    session). Returns the frame and whether the next day's date came from the data."""
    known = bool(pos + 1 < len(frame))  # a plain bool for the JSON output, not numpy's
    day = frame.index[pos + 1] if known else next_session(pd.Timestamp(frame.index[pos]), calendar)
    nxt = frame.iloc[[pos]].copy()
    nxt.index = pd.DatetimeIndex([day], name=frame.index.name)
    return pd.concat([frame.iloc[: pos + 1], nxt]), known


# -------------------------------------------------------------------------- strategy


def _strategy_row(table: pd.DataFrame, period: int) -> dict[str, Any] | None:
    hit = table[table["period"] == period]
    if hit.empty:
        return None
    row = hit.iloc[0]

    def value(name: str) -> Any:
        v = row.get(name)
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, pd.Timestamp):
            return v.date().isoformat()
        return v.item() if isinstance(v, np.generic) else v

    direction = value("direction")
    return {
        "period": int(period),
        "start": value("start"),
        "inputs_end": value("inputs_end"),
        "direction": None if direction is None else ("LONG" if int(direction) == 1 else "SHORT"),
        "confidence": value("confidence"),
        "tau": value("tau"),
        "explanation": value("explanation"),
        "provider": value("provider"),
        "model": value("model"),
        "status": value("status"),
    }


def _current_strategy(
    cfg: Config,
    ticker: str,
    window: _Window,
    stored: pd.DataFrame,
    period: int,
    events: Callable[[Any], None] | None,
) -> tuple[pd.DataFrame, dict[str, Any] | None, str]:
    """The ticker's strategies up to ``period``, and that period's strategy with where it
    came from: stored, generated now (cut data, engine and cache), or none (an import that
    lacks it: tau 0)."""
    from rewts.llm.providers import resolve_provider_name

    table = stored[stored["period"] <= period].reset_index(drop=True)
    row = _strategy_row(table, period)
    if row is not None:
        return table, row, "stored"
    if resolve_provider_name(cfg) == "import":
        return table, None, f"none: {cfg.llm.import_path} has no strategy for it (tau 0)"
    from rewts.llm import generate_strategies

    one = cfg.model_copy(update={"tickers": [ticker]})
    made = generate_strategies(
        one, window, events=events, write=False, periods={ticker: [period]}
    ).strategies[ticker]
    new = made[made["period"] == period]
    table = pd.concat([table, new], ignore_index=True)
    return table, _strategy_row(table, period), "generated now from the data up to the day before"


# ---------------------------------------------------------------------- the agents


def _refuse_untrained(job: TrainJob, why: str) -> SignalError:
    where = job_folder(job)
    what = "global agent" if job.chunk == GLOBAL_CHUNK else f"chunk {job.chunk}"
    return SignalError(
        f"{job.ticker} {what} ({where.name}) {why}; train the agents of this config first "
        "(`rewts run`, or `rewts train` with the same flags), or run signal with the config and "
        "flags the agents were trained with"
    )


def check_trained(source: Any, ticker: str, agents: list[str], seeds: list[int]) -> None:
    """Every checkpoint the signal uses was trained on exactly the inputs this config and
    data give (the training stage's own input hash), and the loaded ones are those."""
    planned = source.planned_jobs([ticker], agents, seeds)
    for variant, jobs in planned.items():
        for job in jobs:
            meta = read_meta(job_folder(job))
            if meta is None:
                raise _refuse_untrained(job, f"is not trained (no checkpoint in {job_folder(job)})")
            if meta.get("input_hash") != job.input_hash():
                raise _refuse_untrained(
                    job,
                    f"in {job_folder(job)} was trained on another config or data version "
                    "(its input hash differs from what this config and data give)",
                )
        if source.needed_chunks(variant, agents) != "all":
            continue  # only the single agent is used, and it was checked above
        for seed in seeds:
            wanted = {j.chunk: job_folder(j) for j in jobs if j.seed == seed}
            members = source.members(ticker, variant, seed)
            loaded = {
                GLOBAL_CHUNK if m.is_global else m.chunk: source.checkpoint(
                    ticker, variant, seed, m
                ).path
                for m in members
            }
            if {k: str(v) for k, v in loaded.items()} != {k: str(v) for k, v in wanted.items()}:
                raise SignalError(
                    f"{ticker} ({variant}, seed {seed}): the checkpoint manifest lists other "
                    "agents than this config trains; retrain (`rewts run` or `rewts train`)"
                )


def ticker_signal(
    cfg: Config,
    ticker: str,
    dataset: Any,
    strategies: pd.DataFrame | None,
    *,
    asof: dt.date | None = None,
    events: Callable[[Any], None] | None = None,
) -> TickerSignal:
    """The signal of one ticker (see the module docstring)."""
    from rewts.backtest.engine import TickerBacktest
    from rewts.data import timeline_for

    frame = dataset.frames.get(ticker)
    if frame is None:
        raise DataError(f"no processed data for {ticker}; run `rewts data` first")
    pos = as_of_day(cfg, ticker, frame, asof)
    cut, known = cut_frame(frame, pos, cfg.data.calendar)
    window = _Window({ticker: cut}, tuple(dataset.feature_columns))
    timeline = timeline_for(cut, cfg)
    nxt = timeline.dates[-1]
    out = TickerSignal(
        ticker=ticker,
        asof=timeline.dates[-2].date().isoformat(),
        next_day=nxt.date().isoformat(),
        next_day_in_data=known,
        next_day_from="data" if known else f"calendar {cfg.data.calendar}",
        strategy=None,
    )
    wanted = list(cfg.backtest.agents)
    for agent, why in NOT_SIGNALS.items():
        if agent in wanted:
            out.skipped[agent] = why
    agents = [a for a in wanted if a not in NOT_SIGNALS]
    table = None
    if strategies is not None:
        current = timeline.period_of(nxt)
        assert current is not None  # D+1 is in the test period, after the warm-up
        table, row, origin = _current_strategy(
            cfg, ticker, window, strategies, current.index, events
        )
        out.strategy = {"source": origin, **(row or {"period": current.index, "tau": 0.0})}
    else:
        reads_tau = [
            a for a in agents if a == "llm_only" or AGENT_VARIANT.get(a) in ("llm", "placebo_const")
        ]
        for agent in reads_tau:
            out.skipped[agent] = "no strategies"
        agents = [a for a in agents if a not in reads_tau]

    # the backtest over test_start .. D+1 with this ticker's cut data
    one = cfg.model_copy(
        update={
            "tickers": [ticker],
            "split": cfg.split.model_copy(update={"test_end": nxt.date()}),
            "backtest": cfg.backtest.model_copy(update={"train_missing": False}),
        }
    )
    seeds = [cfg.seed + r for r in range(cfg.backtest.runs)]
    learned = [a for a in agents if a in AGENT_VARIANT]
    source = None
    if learned:
        from rewts.backtest.rl_source import RLAgentSource

        tables = {ticker: table} if table is not None else None
        source = RLAgentSource(one, window, tables)
        check_trained(source, ticker, learned, seeds)
    bt = TickerBacktest(one, ticker, cut, table, source, timeline, lambda _line: None)

    def add(agent: str, run: int, seed: int, targets: np.ndarray) -> None:
        held = float(targets[-2]) if len(targets) > 1 else 0.0  # the book starts flat
        out.agents.append(
            AgentSignal(agent, agent_label(agent), run, seed, held, float(targets[-1]))
        )

    for agent in agents:
        if agent == "buy_and_hold" or agent == "llm_only":
            add(agent, 0, cfg.seed, bt.rule_targets(agent))
    for run, seed in enumerate(seeds):
        for agent in learned:
            targets, extra = bt.learned_targets(agent, seed)
            add(agent, run, seed, targets)
            if "weights" in extra:
                last = extra["weights"].iloc[-1]
                out.ensemble.append(
                    EnsembleWeights(run, seed, {str(k): float(v) for k, v in last.items()})
                )
    return out


def compute_signal(
    cfg: Config,
    dataset: Any,
    strategies: dict[str, pd.DataFrame] | None,
    *,
    asof: dt.date | None = None,
    events: Callable[[Any], None] | None = None,
) -> SignalReport:
    """Every ticker's signal for ``cfg``; ``strategies`` are the strategies stage's tables
    (None when no requested agent reads them)."""
    tickers = []
    for ticker in cfg.tickers:
        table = None if strategies is None else strategies.get(ticker)
        tickers.append(ticker_signal(cfg, ticker, dataset, table, asof=asof, events=events))
    return SignalReport(tickers)
