"""LLM strategy generation: the public API the pipeline and the RL stage use.

::

    generate_strategies(cfg, dataset, *, events=None,
                        provider=None, limiter=None, write=True, write_json=False,
                        headlines=None)   # headlines: else read from data.news_path
        -> GenerationResult(strategies: dict[str, DataFrame], summary: GenerationSummary)
    load_strategies(cfg) -> dict[str, DataFrame] | None   # llm.output_dir/<TICKER>.parquet

One row per ticker and strategy period, columns :data:`COLUMNS` (direction, confidence,
entropy, strength, tau, status ok|cached|fallback|skipped, the news analysis and reflection
memory, provenance). ``load_strategies``
returns what is stored as-is; ``rewts.pipeline.ensure_strategies`` regenerates (cache hits cost
nothing) so the tables follow the data.

How the pieces fit (each in its own module, importable for extension, not promised to stay):

* :mod:`.prompts` builds each period's snapshot from rows up to ``period.inputs_end`` only
  and renders versioned, deterministic messages;
* :mod:`.engine` runs :class:`~rewts.llm.engine.Task` objects: a task may depend on others
  (``deps``) and build its request from their results (``build``), and may bring its own
  answer schema (``schema``) — the news analyst (:mod:`.analyst`) and reflection chains
  (:mod:`.memory`) are tasks of this kind; :mod:`.batch` runs the same tasks as provider batch
  jobs (``llm.batch``);
* :mod:`.limiter` is the rate-limit policy behind a two-call protocol
  (:class:`Limiter`: ``acquire``/``feedback``); pass your own as ``limiter=``;
* :mod:`.providers` adapts each API behind
  :class:`~rewts.llm.providers.base.Provider` (``generate(request) -> Response`` with text,
  usage and log-probabilities) and maps its errors to a small taxonomy: OpenAI-compatible
  APIs, Gemini, an in-process GGUF model (llama-cpp) and the offline heuristic;
* :mod:`.cache` is the SQLite store, :mod:`.monitor` the events a display subscribes to.
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
