"""The language model's training cutoff (``llm.model_cutoff``) and what it means for a run.

Why: a model trained on text written after the test period may remember what happened in it
(METHOD.md section 7). The report therefore names the cutoff, warns at the top when the test
period ends before it, and, when the test period spans it, shows the metrics before and after
it separately (after the cutoff the model cannot have read about the outcome).

Defaults for the preset models are below, each with its source. Where the vendor publishes a
knowledge cutoff as a month, the last day of that month is used (text from that month may be
in the training data). Where no cutoff is published, the date the served model was released is
used as an upper bound and labelled so. ``llm.model_cutoff`` always wins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Literal

CutoffKind = Literal[
    "published knowledge cutoff",
    "release date (upper bound)",
    "configured",
    "unknown",
    "not a language model",
]


@dataclass(frozen=True, slots=True)
class ModelCutoff:
    """A model's training cutoff, how it is known and where it comes from."""

    date: dt.date | None
    kind: CutoffKind
    source: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["date"] = None if self.date is None else self.date.isoformat()
        return out

    def describe(self) -> str:
        if self.date is None:
            return self.kind
        return f"{self.date.isoformat()} ({self.kind}; {self.source})"


_GEMINI_25 = ModelCutoff(
    dt.date(2025, 1, 31),
    "published knowledge cutoff",
    "Google's model pages, https://ai.google.dev/gemini-api/docs/models: 'Knowledge cutoff: "
    "January 2025' for Gemini 2.5 Pro, Flash and Flash-Lite",
)
_GPT_4O = ModelCutoff(
    dt.date(2023, 10, 31),
    "published knowledge cutoff",
    "OpenAI's model page, https://platform.openai.com/docs/models/gpt-4o-mini: knowledge cutoff "
    "October 2023 ('Oct 01, 2023')",
)

#: default cutoffs by model-name prefix (longest match wins), checked 2026
KNOWN_CUTOFFS: dict[str, ModelCutoff] = {
    "gemini-2.5-flash-lite": _GEMINI_25,
    "gemini-2.5-flash": _GEMINI_25,
    "gemini-2.5-pro": _GEMINI_25,
    "gpt-4o-mini": _GPT_4O,
    "gpt-4o": _GPT_4O,
    "deepseek-chat": ModelCutoff(
        dt.date(2025, 12, 1),
        "release date (upper bound)",
        "DeepSeek publishes no knowledge cutoff; deepseek-chat was upgraded to DeepSeek-V3.2 on "
        "2025-12-01 (https://api-docs.deepseek.com/updates), so nothing later can be in it",
    ),
}


def resolve_cutoff(configured: dt.date | None, provider: str, model: str | None) -> ModelCutoff:
    """The cutoff a run uses: ``llm.model_cutoff`` if set, else the model's default."""
    if configured is not None:
        return ModelCutoff(configured, "configured", "llm.model_cutoff")
    if provider == "heuristic":
        return ModelCutoff(None, "not a language model", "the rule-based strategist reads no text")
    name = (model or "").rsplit("/", 1)[-1]
    matches = [prefix for prefix in KNOWN_CUTOFFS if name.startswith(prefix)]
    if matches:
        return KNOWN_CUTOFFS[max(matches, key=len)]
    return ModelCutoff(
        None, "unknown", f"no default for model {model!r}: set llm.model_cutoff (YYYY-MM-DD)"
    )


def cutoff_warning(
    cutoff: ModelCutoff, model: str | None, test_start: dt.date, test_end: dt.date
) -> str | None:
    """The line the report puts at the top, or None when the test period is after the cutoff
    (or no language model is involved)."""
    period = f"{test_start.isoformat()} .. {test_end.isoformat()}"
    if cutoff.kind == "not a language model":
        return None
    if cutoff.date is None:
        return (
            f"Memorization warning: the training cutoff of model {model} is unknown, so it may "
            f"have seen the test period ({period}). Set llm.model_cutoff, and compare named "
            "with blind prompts (rewts compare)."
        )
    if test_end < cutoff.date:
        return (
            f"Memorization warning: the test period ({period}) ends before the training cutoff "
            f"of model {model} ({cutoff.date.isoformat()}, {cutoff.kind}): the model may have "
            "seen these years, so its LLM results may measure recall, not judgment. Compare "
            "named with blind prompts (rewts compare), or test after the cutoff."
        )
    if test_start <= cutoff.date:
        return (
            f"Memorization warning: the test period ({period}) spans the training cutoff of "
            f"model {model} ({cutoff.date.isoformat()}, {cutoff.kind}): only the days after it "
            "are free of possible recall; the report shows the metrics before and after it "
            "separately."
        )
    return None


__all__ = ["KNOWN_CUTOFFS", "ModelCutoff", "cutoff_warning", "resolve_cutoff"]
