"""``rewts run`` and ``rewts status``: the stages in order, run or inspected.

:func:`run_pipeline` is ``rewts run``: data -> strategies -> train -> backtest -> report, each
stage skipped when its record (:mod:`rewts.pipeline.records`) says its inputs and output are
unchanged. :func:`pipeline_status` answers the same question without running anything
(``rewts status``): both go through :data:`STAGE_LIST` and each stage's one ``check``.
Stages write their outputs atomically and record themselves last, and a stage's record is
dropped before it reruns, so an interrupted run resumes at the stage it stopped in (training
resumes per agent: finished checkpoints are reused).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from rewts.pipeline.backtest_stage import BACKTEST, REPORT
from rewts.pipeline.base import Context, Feedback, Stage, StageOutcome, StageState
from rewts.pipeline.data_stage import DataStage
from rewts.pipeline.strategies_stage import StrategiesStage
from rewts.pipeline.train_stage import TrainStage

if TYPE_CHECKING:
    from rewts.config import Config

DATA = DataStage()
STRATEGIES = StrategiesStage()
TRAIN = TrainStage()
#: the stages of ``rewts run``, in order (their names are :data:`records.STAGES`)
STAGE_LIST: tuple[Stage, ...] = (DATA, STRATEGIES, TRAIN, BACKTEST, REPORT)


@dataclass
class RunSummary:
    """What ``rewts run`` did, for the one-screen summary and ``--json``."""

    run_dir: Path
    stages: list[StageOutcome]
    wall_s: float
    data: dict[str, Any] = field(default_factory=dict)
    #: provider, model, total, generated, cache_hits, api_calls, cost_usd, fallbacks; None if
    #: no requested agent reads strategies
    strategies: dict[str, Any] | None = None
    #: agents, trained (this run), reused, train_seconds; None without learned agents
    training: dict[str, Any] | None = None
    metrics_json: Path | None = None
    report: Path | None = None
    #: metric -> ticker -> agent label -> "mean ± std" (the paper-shaped tables)
    paper_tables: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def stage(self, name: str) -> StageOutcome:
        return next(s for s in self.stages if s.stage == name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("run_dir", "metrics_json", "report"):
            out[key] = None if out[key] is None else str(out[key])
        return out


def _results_facts(metrics_json: Path) -> tuple[dict[str, Any], list[str]]:
    try:
        payload = json.loads(metrics_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, []
    tables = dict(payload.get("paper_tables") or {})
    if payload.get("generalization"):
        tables["generalization"] = payload["generalization"]
    return tables, list(payload.get("notes") or [])


def default_run_dir(cfg: Config, profile: str | None) -> Path:
    """``backtest.output_dir/<profile>`` (``default`` without one): a stable folder, so a
    rerun finds its results and skips what is unchanged."""
    return Path(cfg.backtest.output_dir) / (profile or "default")


def run_stages(ctx: Context, stages: tuple[Stage, ...] = STAGE_LIST) -> Context:
    """Ensure each stage in order (reused when fresh, built otherwise); returns ``ctx`` with
    what they handed on (the dataset, the tables, the outputs, the outcomes)."""
    for stage in stages:
        stage.ensure(ctx)
    return ctx


def run_pipeline(
    cfg: Config,
    *,
    run_dir: Path,
    html: bool = True,
    refresh_data: bool = False,
    **feedback: Unpack[Feedback],
) -> RunSummary:
    """Run every stage whose output is missing or stale, skip the others, and summarize.

    ``refresh_data`` rebuilds the dataset from its source even when it is up to date; later
    stages still rerun only if the data came out different. ``feedback`` is how the run
    tells the user (:class:`~rewts.pipeline.base.Feedback`: training's and the strategy
    engine's events, lines, each stage's start and outcome).
    """
    t0 = time.perf_counter()
    ctx = Context(cfg, Path(run_dir), html=html, refresh_data=refresh_data, **feedback)
    run_stages(ctx)
    metrics_json = Path(run_dir) / "metrics.json"
    report = Path(run_dir) / "report.html"
    tables_out, all_notes = _results_facts(metrics_json)
    return RunSummary(
        run_dir=Path(run_dir),
        stages=ctx.outcomes,
        wall_s=time.perf_counter() - t0,
        data=ctx.outcomes[0].details,
        strategies=ctx.details.get("strategies"),
        training=ctx.details.get("train"),
        metrics_json=metrics_json if metrics_json.is_file() else None,
        report=report if html and report.is_file() else None,
        paper_tables=tables_out,
        notes=all_notes,
    )


def pipeline_status(cfg: Config, run_dir: Path, *, html: bool = True) -> list[StageState]:
    """Each stage's state for ``cfg``, without running or writing anything.

    A stage is fresh when ``rewts run`` would skip it: its record matches the inputs it would
    have now and its output on disk is the recorded one.
    """
    ctx = Context(cfg, Path(run_dir), html=html)
    states: list[StageState] = []
    ok = True
    for stage in STAGE_LIST:
        state = stage.state(ctx, ok)
        states.append(state)
        if state.state != "not needed":
            ok = ok and state.state == "fresh"
    return states
