"""What every stage is and what one pass over the stages shares.

A :class:`Stage` says what it is built from (:meth:`Stage.inputs`), whether its stored output
can be reused (:meth:`Stage.check`: the one freshness rule, read by ``rewts run`` and
``rewts status`` alike) and how to build it (:meth:`Stage.run`). :meth:`Stage.ensure` is the
run's step (reuse or build, reported to ``on_stage``), :meth:`Stage.state` the status line.
A :class:`Context` carries the config and what the stages before handed on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from rewts.pipeline.records import Check, StageRecord, check_record, read_record

if TYPE_CHECKING:
    import pandas as pd

    from rewts.backtest.result import BacktestResult
    from rewts.config import Config
    from rewts.data import Dataset
    from rewts.llm.generate import GenerationResult
    from rewts.llm.providers import Provider
    from rewts.training.events import Events

Say = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


@dataclass
class StageOutcome:
    """One stage of a run: ``running`` (announced), ``done``, ``skipped`` or ``not needed``."""

    stage: str
    status: str
    why: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageState:
    """What ``rewts status`` says about one stage: fresh, stale, missing or not needed."""

    stage: str
    state: str
    why: str = ""
    where: str = ""
    finished: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Feedback(TypedDict, total=False):
    """How a pass tells the user what happens (each part optional: silent without it); what
    ``run_pipeline`` and ``run_compare`` hand to their :class:`Context`."""

    #: receive training's events (:mod:`rewts.training.events`; a display)
    train_events: Events
    #: receives the strategy engine's events (a display)
    events: Callable[[Any], None] | None
    #: one line per thing worth telling the user (data source chosen, heuristic strategist)
    say: Say
    #: each stage's start (status ``running``) and outcome
    on_stage: Callable[[StageOutcome], None]


@dataclass
class Context:
    """One pass over the stages (a run or a status): the config, where results go, how to
    tell the user, and what each stage handed on to the next."""

    cfg: Config
    #: where the backtest and the report write (a stage command without them needs none)
    run_dir: Path | None = None
    html: bool = True
    #: receive training's events (:mod:`rewts.training.events`; a display); None: silent
    train_events: Events = None
    #: receives the strategy engine's events (a display); None: no display
    events: Callable[[Any], None] | None = None
    say: Say = _quiet
    on_stage: Callable[[StageOutcome], None] = field(default=lambda _outcome: None)
    refresh_data: bool = False
    #: a pass that stores no strategy tables and no records (``rewts signal``): the stages
    #: hand on what they would build; caches (the processed data, the LLM cache) still fill
    read_only: bool = False
    #: the strategies stage also writes each table as JSON (``rewts strategies --json``)
    json_copies: bool = False
    #: a provider made already (``rewts strategies`` checks the key before any data work)
    provider: Provider | None = None
    dataset: Dataset | None = None
    #: the strategy tables (None when no requested agent reads them)
    tables: dict[str, pd.DataFrame] | None = None
    #: what generating (or importing) the strategies returned when it ran in this pass
    generated: GenerationResult | None = None
    #: the backtest's results when it ran in this pass (the report is drawn from them)
    result: BacktestResult | None = None
    #: stage -> hash of its output (None: not needed, or not fresh in a status)
    outputs: dict[str, str | None] = field(default_factory=dict)
    #: stage -> the details its outcome reported (the run summary's facts)
    details: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    outcomes: list[StageOutcome] = field(default_factory=list)
    _started: float = 0.0

    def start(self, stage: str, why: str) -> None:
        """Announce a stage that is about to build its output."""
        self.on_stage(StageOutcome(stage, "running", why))
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the last :meth:`start`."""
        return time.perf_counter() - self._started

    def finish(self, outcome: StageOutcome) -> StageOutcome:
        self.outcomes.append(outcome)
        self.on_stage(outcome)
        return outcome


class Stage:
    """One stage of ``rewts run``. Subclasses name it, say where its output and record live,
    and implement :meth:`inputs`, :meth:`reuse` and :meth:`run`."""

    #: the stage's name (``rewts run``'s order is :data:`rewts.pipeline.STAGE_LIST`)
    name: ClassVar[str]
    #: what its output is, for the reasons ("checkpoints", "metrics.json", ...)
    what: ClassVar[str]

    def not_needed(self, ctx: Context) -> str | None:
        """Why the config needs no output of this stage (None: it does)."""
        return None

    def inputs(self, ctx: Context) -> dict[str, Any]:
        """What the output is built from: the config slice and the upstream outputs."""
        raise NotImplementedError

    def folder(self, ctx: Context) -> Path:
        """Where the stage's record lives (next to its output)."""
        raise NotImplementedError

    def where(self, ctx: Context) -> Path:
        """The output ``rewts status`` points at."""
        return self.folder(ctx)

    def output_now(self, ctx: Context, record: StageRecord) -> str | None:
        """The hash of the stored output as it is now (None: missing)."""
        raise NotImplementedError

    def check(self, ctx: Context) -> Check:
        """Fresh when the record's key equals the inputs' now and the output on disk is the
        recorded one; otherwise stale or missing, with the reason."""
        inputs = self.inputs(ctx)
        record = read_record(self.folder(ctx), self.name)
        now = self.output_now(ctx, record) if record is not None else None
        return check_record(record, inputs, now, self.what)

    def plan(self, ctx: Context) -> Check:
        """Whether a run reuses the output: :meth:`check`, unless a later stage needs it
        rebuilt (the report needs the backtest's results in memory)."""
        return self.check(ctx)

    def output_of(self, check: Check) -> str | None:
        """The hash a fresh output hands on to the stages after it."""
        return check.record.output if check.record is not None else None

    def status_details(self, record: StageRecord) -> dict[str, Any]:
        """What ``rewts status`` shows of a record."""
        return {}

    def missing_why(self, ctx: Context) -> str:
        """What ``rewts status`` says of a stage without a record."""
        return "not built yet"

    def reuse(self, ctx: Context, check: Check) -> StageOutcome:
        """Hand the stored output on (the stage is fresh); the ``skipped`` outcome."""
        ctx.outputs[self.name] = self.output_of(check)
        return StageOutcome(self.name, "skipped", check.why)

    def run(self, ctx: Context, check: Check) -> StageOutcome:
        """Build the output (dropping the record first, writing it last); the ``done``
        outcome. Called after ``ctx.start``."""
        raise NotImplementedError

    def ensure(self, ctx: Context, *, force: bool = False, required: bool = False) -> StageOutcome:
        """The run's step: not needed, reused (``skipped``) or built (``done``);
        ``force`` builds even a fresh output; ``required`` builds or reuses it even when no
        requested agent needs it (a stage command asked for it)."""
        why = None if required else self.not_needed(ctx)
        if why is not None:
            ctx.outputs[self.name] = None
            ctx.details[self.name] = None
            return ctx.finish(StageOutcome(self.name, "not needed", why))
        check = self.plan(ctx)
        if check.fresh and not force:
            outcome = self.reuse(ctx, check)
        else:
            ctx.start(self.name, check.why)
            outcome = self.run(ctx, check)
        ctx.details[self.name] = outcome.details
        return ctx.finish(outcome)

    def state(self, ctx: Context, upstream_ok: bool) -> StageState:
        """The status line: what :meth:`ensure` would do, without doing it."""
        why = self.not_needed(ctx)
        ctx.outputs[self.name] = None
        if why is not None:
            return StageState(self.name, "not needed", why)
        check = self.check(ctx)
        record, where = check.record, str(self.where(ctx))
        if check.fresh:
            ctx.outputs[self.name] = self.output_of(check)
            state = StageState(self.name, "fresh", check.why, where)
        elif record is None:
            return StageState(self.name, "missing", self.missing_why(ctx), where)
        else:
            why = check.why if upstream_ok else "an earlier stage is stale or missing"
            state = StageState(self.name, "stale", why, where)
        if record is not None:
            state.finished = record.finished
            state.details = self.status_details(record)
        return state
