"""The one place that wires the stages together from a config.

One :class:`~rewts.pipeline.base.Stage` object per stage (``data_stage``,
``strategies_stage``, ``train_stage``, ``backtest_stage``), each with ``inputs()``, ``check()``
and ``run()``; :data:`STAGE_LIST` puts them in order for ``rewts run``
(:func:`run_pipeline`), ``rewts status`` (:func:`pipeline_status`), and the stage commands
walk the same objects (``rewts backtest`` the first three, then its own two; ``rewts data``,
``strategies``, ``train`` and ``signal`` the stages they need, ``Stage.ensure(required=True)``
for one the config's agents would not need). The records that make a rerun skip an unchanged
stage are in :mod:`rewts.pipeline.records`.

``ensure_data`` and ``ensure_strategies`` return a stage's output without records (what the
benchmarks and ``rewts calibrate`` read).
"""

from __future__ import annotations

from rewts.pipeline.backtest_stage import (
    BACKTEST,
    REPORT,
    heuristic_note,
    import_note,
    model_info,
    run_notes,
    with_cutoff_split,
)
from rewts.pipeline.base import Context, Feedback, Say, Stage, StageOutcome, StageState
from rewts.pipeline.data_stage import ensure_data
from rewts.pipeline.records import STAGES
from rewts.pipeline.run import (
    DATA,
    STAGE_LIST,
    STRATEGIES,
    TRAIN,
    RunSummary,
    default_run_dir,
    pipeline_status,
    run_pipeline,
    run_stages,
)
from rewts.pipeline.strategies_stage import (
    ensure_strategies,
    news_hash,
    news_state,
    record_strategies,
    strategies_inputs_now,
)
from rewts.pipeline.train_stage import trained_members

__all__ = [
    "BACKTEST",
    "DATA",
    "REPORT",
    "STAGES",
    "STAGE_LIST",
    "STRATEGIES",
    "TRAIN",
    "Context",
    "Feedback",
    "RunSummary",
    "Say",
    "Stage",
    "StageOutcome",
    "StageState",
    "default_run_dir",
    "ensure_data",
    "ensure_strategies",
    "heuristic_note",
    "import_note",
    "model_info",
    "news_hash",
    "news_state",
    "pipeline_status",
    "record_strategies",
    "run_notes",
    "run_pipeline",
    "run_stages",
    "strategies_inputs_now",
    "trained_members",
    "with_cutoff_split",
]
