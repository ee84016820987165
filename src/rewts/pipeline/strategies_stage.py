"""The strategies stage: one strategy per ticker and period in ``llm.output_dir``, generated
(cache hits cost nothing) or, with ``llm.provider: import``, read from ``llm.import_path``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewts.pipeline.base import Context, Stage, StageOutcome
from rewts.pipeline.records import (
    Check,
    StageRecord,
    check_record,
    digest,
    drop_records,
    file_hash,
    read_record,
    strategies_hash,
    strategies_inputs,
    write_record,
)

if TYPE_CHECKING:
    import pandas as pd

    from rewts.config import Config
    from rewts.data import Dataset

#: the summary's facts a strategies record keeps
_SUMMARY_KEYS = (
    "provider", "model", "total", "analyses", "generated", "cache_hits", "api_calls",
    "cost_usd", "fallbacks", "skipped", "tokens_in", "tokens_out", "wall_s",
)  # fmt: skip


def ensure_strategies(
    cfg: Config, dataset: Dataset | None = None, *, write: bool = True, **kwargs: Any
) -> Any:
    """Strategies for every ticker and period (cache hits cost nothing); with
    ``llm.provider: import`` read from ``llm.import_path`` instead of generated. ``write``
    stores the tables in ``llm.output_dir`` (without a stage record); ``kwargs`` go to
    :func:`rewts.llm.generate_strategies`."""
    from rewts.llm import generate_strategies
    from rewts.llm.providers import resolve_provider_name

    if dataset is None:
        from rewts.pipeline.data_stage import ensure_data

        dataset = ensure_data(cfg)
    if resolve_provider_name(cfg) == "import":
        from rewts.llm.importer import import_strategies

        return import_strategies(cfg, dataset, write=write)
    return generate_strategies(cfg, dataset, write=write, **kwargs)


def news_hash(cfg: Config) -> str | None:
    """SHA-256 of the headlines file the analyst reads (``missing`` if it is not there)."""
    path = cfg.data.news_path
    if path is None:
        return None
    return file_hash(Path(path)) or "missing"


def news_state(cfg: Config, provider: str) -> str:
    """Whether the news analyst took part, in words, for the summary."""
    if provider == "import":
        return f"not read (strategies imported from {cfg.llm.import_path})"
    if cfg.skip_news_processing:
        return "skipped (skip_news_processing / --no-news)"
    if cfg.data.news_path is None:
        return "off (no data.news_path)"
    if provider == "heuristic":
        return "not read (the heuristic strategist reads no headlines)"
    return f"analyst on {cfg.data.news_path}"


def strategies_inputs_now(cfg: Config, dataset: Dataset) -> dict[str, Any]:
    """The strategies stage's inputs for ``cfg`` and this dataset (what its record keys on)."""
    from rewts.llm.providers import resolve_provider_name

    return strategies_inputs(cfg, dataset.content_hash, resolve_provider_name(cfg), news_hash(cfg))


def record_strategies(
    cfg: Config,
    inputs: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    generated: Any,
    provider: str,
    seconds: float,
) -> tuple[str, dict[str, Any]]:
    """Write the strategies stage record (``rewts run`` and a stand-alone ``rewts strategies``
    alike, so ``rewts status`` sees the tables either made); returns (output hash, details)."""
    output = strategies_hash(tables)
    summary = generated.summary.to_dict()
    details = {k: summary.get(k) for k in _SUMMARY_KEYS}
    details["llm"] = provider != "heuristic"
    if provider == "import":
        assert cfg.llm.import_path is not None  # the config requires it with provider import
        details["import_path"] = str(cfg.llm.import_path)
        details["import_sha256"] = file_hash(Path(cfg.llm.import_path))
    details["news"] = news_state(cfg, provider)
    record = StageRecord.new("strategies", inputs, output, seconds, details)
    write_record(Path(cfg.llm.output_dir), record)
    return output, details


class StrategiesStage(Stage):
    """Ask the LLM (or the heuristic, or an imported file) for every period's strategy."""

    name = "strategies"
    what = "strategy tables"

    def not_needed(self, ctx: Context) -> str | None:
        from rewts.backtest import needs_strategies

        return None if needs_strategies(ctx.cfg) else "no requested agent reads tau"

    def folder(self, ctx: Context) -> Path:
        return Path(ctx.cfg.llm.output_dir)

    def inputs(self, ctx: Context) -> dict[str, Any]:
        from rewts.llm.providers import resolve_provider_name

        cfg = ctx.cfg
        data = ctx.outputs.get("data") or ""
        return strategies_inputs(cfg, data, resolve_provider_name(cfg), news_hash(cfg))

    def check(self, ctx: Context) -> Check:
        """Also stale when periods failed (fallback or skipped): failures are never cached,
        and the next run asks for them again. A fresh check carries the tables it read."""
        from rewts.llm import load_strategies

        inputs = self.inputs(ctx)
        record = read_record(self.folder(ctx), self.name)
        tables = None
        if record is not None and record.key == digest(inputs):
            tables = load_strategies(ctx.cfg)
        now = strategies_hash(tables) if tables else None
        check = check_record(record, inputs, now, self.what)
        if check.fresh and tables is not None:
            retry = sum(
                int(t["status"].isin(["fallback", "skipped"]).sum()) for t in tables.values()
            )
            if retry:
                check = Check(False, f"{retry} failed period(s) to retry", inputs, record)
        if check.fresh:
            check.stored = tables
        return check

    def status_details(self, record: StageRecord) -> dict[str, Any]:
        return {k: record.details.get(k) for k in ("provider", "model", "total", "fallbacks")}

    def reuse(self, ctx: Context, check: Check) -> StageOutcome:
        assert check.record is not None
        details = dict(check.record.details)
        # nothing was asked of any provider this time: the tables were reused as stored
        details.update(
            generated=0, cache_hits=0, api_calls=0, cost_usd=0.0, reused=details.get("total")
        )
        ctx.tables = check.stored
        ctx.outputs[self.name] = check.record.output
        return StageOutcome(self.name, "skipped", check.why, 0.0, details)

    def run(self, ctx: Context, check: Check) -> StageOutcome:
        """Generate (or import) every table, then replace the stored ones and their record:
        a failed generation or a bad import file leaves both as they were. A read-only pass
        (``rewts signal``) hands the tables on and stores nothing."""
        from rewts.llm.providers import BANNER, resolve_provider_name
        from rewts.llm.tables import write_strategies

        cfg = ctx.cfg
        provider = resolve_provider_name(cfg)
        events = ctx.events
        if events is None:
            # no display to announce it: say it here, once, instead of a log warning
            if provider == "heuristic":
                ctx.say(BANNER)
            events = lambda _event: None  # noqa: E731
        options: dict[str, Any] = {} if ctx.provider is None else {"provider": ctx.provider}
        generated = ensure_strategies(cfg, ctx.dataset, events=events, write=False, **options)
        # handed on as made (they are what is written next: not read back from disk)
        tables = generated.strategies
        ctx.tables, ctx.generated = tables, generated
        seconds = ctx.elapsed()
        if ctx.read_only:
            ctx.outputs[self.name] = strategies_hash(tables)
            return StageOutcome(self.name, "done", check.why, seconds, {"stored": False})
        folder = self.folder(ctx)
        drop_records(folder, [self.name])
        write_strategies(tables, folder, json_too=ctx.json_copies)
        output, details = record_strategies(cfg, check.inputs, tables, generated, provider, seconds)
        ctx.outputs[self.name] = output
        return StageOutcome(self.name, "done", check.why, seconds, details)
