"""LLM strategy generation: the public API the pipeline and the RL stage use.

::

    generate_strategies(cfg, dataset, *, progress=False, events=None) -> GenerationResult
    load_strategies(cfg) -> dict[str, pd.DataFrame] | None

Everything else (engine, limiter, cache, providers, prompts) is importable from its module
for extension (a custom :class:`~rewts.llm.limiter.Limiter`, a provider) but is not promised
to stay put.
"""

from rewts.llm.generate import (
    COLUMNS,
    GenerationResult,
    GenerationSummary,
    generate_strategies,
    load_strategies,
)
from rewts.llm.limiter import Limiter, Outcome, Permit, RateLimiter

__all__ = [
    "COLUMNS",
    "GenerationResult",
    "GenerationSummary",
    "Limiter",
    "Outcome",
    "Permit",
    "RateLimiter",
    "generate_strategies",
    "load_strategies",
]
