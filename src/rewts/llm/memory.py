"""In-context memory (``llm.reflection``): what period ``m``'s prompt is told about period ``m-1``.

Period ``m-1`` ends on ``inputs_end_m``, the last day of data period ``m`` may read, so its
realized outcome (the stock's return from the close of ``inputs_end_{m-1}``, where its strategy
took effect, to the close of its last day) is known when period ``m`` is decided.
:func:`period_outcome` computes it from the frame cut at ``inputs_end_m`` and nothing later.

Memory shows model answers only. If period ``m-1``'s call failed (whatever fallback its row then
got), period ``m``'s prompt says the previous strategy is unavailable; on the next run the
failed call is retried and, once it succeeds, period ``m``'s prompt (and cache key) changes with
it, so every chain stays exact. Period 0 has no memory: its prompt equals the
independent-periods prompt.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rewts.data.timeline import StrategyPeriod
from rewts.llm.blind import previous_period_label
from rewts.llm.prompts import stable_number
from rewts.llm.schemas import Strategy


def period_outcome(
    frame: pd.DataFrame, previous: StrategyPeriod, period: StrategyPeriod
) -> float | None:
    """The stock's return over ``previous``, from rows up to ``period.inputs_end`` only."""
    if previous.end_pos != period.inputs_end_pos:
        raise ValueError(
            f"period {previous.index} does not end where period {period.index}'s inputs end"
        )
    past = frame["close"].iloc[: period.inputs_end_pos + 1]
    if len(past) == 0 or past.index[-1] != period.inputs_end:
        raise ValueError(
            f"frame is not aligned with the timeline: row {period.inputs_end_pos} is not "
            f"{period.inputs_end.date()}"
        )
    start = float(past.iloc[previous.inputs_end_pos])
    end = float(past.iloc[previous.end_pos])
    if not (math.isfinite(start) and math.isfinite(end)) or start <= 0:
        return None
    return end / start - 1.0


def memory_section(
    previous: StrategyPeriod,
    strategy: Strategy | None,
    outcome: float | None,
    *,
    blind: bool = False,
) -> dict[str, Any]:
    """The previous strategy, its rationale and its realized outcome (JSON-ready);
    ``blind``: the period named without dates."""
    if blind:
        guided = previous_period_label(previous)
    else:
        guided = f"{previous.start.date().isoformat()}..{previous.end.date().isoformat()}"
    if strategy is None:
        return {
            "period": guided,
            "status": "unavailable: the previous strategy call failed; decide without it",
            "stock_return": stable_number(outcome),
        }
    position = None
    if outcome is not None:
        position = outcome if strategy.direction == 1 else -outcome
    return {
        "period": guided,
        "direction": "LONG" if strategy.direction == 1 else "SHORT",
        "confidence": strategy.confidence,
        "explanation": strategy.explanation,
        "stock_return": stable_number(outcome),
        "position_return": stable_number(position),
    }


__all__ = ["memory_section", "period_outcome"]
