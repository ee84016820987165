"""The one place that wires the stages together from a config.

Each ``ensure_*`` function returns a stage's output, running the stage (and the stages before
it) only when its stored output is missing or stale. The CLI commands call these, so every
stage command works in an empty folder: ``rewts train --data-dir DIR --provider heuristic``
prepares the data and the strategies first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rewts.config import Config
    from rewts.data import Dataset


def ensure_data(cfg: Config, **kwargs: Any) -> Dataset:
    """The processed dataset for ``cfg`` (loaded when fresh, rebuilt when inputs changed)."""
    from rewts.data import prepare_data

    return prepare_data(cfg, **kwargs)


def ensure_strategies(cfg: Config, dataset: Dataset | None = None, **kwargs: Any) -> Any:
    """Strategies for every ticker and period (cache hits cost nothing)."""
    from rewts.llm import generate_strategies

    dataset = dataset if dataset is not None else ensure_data(cfg)
    return generate_strategies(cfg, dataset, **kwargs)
