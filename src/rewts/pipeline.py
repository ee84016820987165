"""The one place that wires the stages together from a config.

Each ``ensure_*`` function returns a stage's output, running the stage (and the stages before
it) only when its stored output is missing or stale. The CLI commands call these, so every
stage command works in an empty folder: ``rewts train --data-dir DIR --provider heuristic``
prepares the data and the strategies first.

:func:`run_pipeline` is ``rewts run``: data -> strategies -> train -> backtest -> report, each
stage skipped when its record (:mod:`rewts.stages`) says its inputs and output are unchanged.
:func:`pipeline_status` answers the same question without running anything (``rewts status``).
Stages write their outputs atomically and record themselves last, and a stage's record is
dropped before it reruns, so an interrupted run resumes at the stage it stopped in (training
resumes per agent: finished checkpoints are reused).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewts import stages as st
from rewts.fileio import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

    from rewts.config import Config
    from rewts.data import Dataset
    from rewts.training.events import Events

Say = Callable[[str], None]


def ensure_data(cfg: Config, **kwargs: Any) -> Dataset:
    """The processed dataset for ``cfg`` (loaded when fresh, rebuilt when inputs changed)."""
    from rewts.data import prepare_data

    return prepare_data(cfg, **kwargs)


def ensure_strategies(cfg: Config, dataset: Dataset | None = None, **kwargs: Any) -> Any:
    """Strategies for every ticker and period (cache hits cost nothing); with
    ``llm.provider: import`` read from ``llm.import_path`` instead of generated."""
    from rewts.llm import generate_strategies
    from rewts.llm.providers import resolve_provider_name

    dataset = dataset if dataset is not None else ensure_data(cfg)
    if resolve_provider_name(cfg) == "import":
        from rewts.llm.importer import import_strategies

        return import_strategies(cfg, dataset, write=kwargs.get("write", True))
    return generate_strategies(cfg, dataset, **kwargs)


# ----------------------------------------------------------------------------- records


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
    output = st.strategies_hash(tables)
    summary = generated.summary.to_dict()
    details = {
        k: summary.get(k)
        for k in (
            "provider", "model", "total", "analyses", "generated", "cache_hits", "api_calls",
            "cost_usd", "fallbacks", "skipped", "tokens_in", "tokens_out", "wall_s",
        )
    }  # fmt: skip
    details["llm"] = provider != "heuristic"
    if provider == "import":
        details["import_path"] = str(cfg.llm.import_path)
        details["import_sha256"] = st.file_hash(Path(cfg.llm.import_path))
    details["news"] = news_state(cfg, provider)
    record = st.StageRecord.new("strategies", inputs, output, seconds, details)
    st.write_record(Path(cfg.llm.output_dir), record)
    return output, details


def strategies_inputs_now(cfg: Config, dataset: Dataset) -> dict[str, Any]:
    """The strategies stage's inputs for ``cfg`` and this dataset (what its record keys on)."""
    from rewts.llm.providers import resolve_provider_name

    return st.strategies_inputs(
        cfg, dataset.content_hash, resolve_provider_name(cfg), news_hash(cfg)
    )


@dataclass
class StageOutcome:
    """One stage of a run: ``running`` (announced), ``done``, ``skipped`` or ``not needed``."""

    stage: str
    status: str
    why: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


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


def news_hash(cfg: Config) -> str | None:
    """SHA-256 of the headlines file the analyst reads (``missing`` if it is not there)."""
    path = cfg.data.news_path
    if path is None:
        return None
    return st.file_hash(Path(path)) or "missing"


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


def heuristic_note() -> str:
    return (
        "The strategies come from the offline heuristic strategist (rules on technical "
        "indicators), not from a language model: 'LLM' agents here test the plumbing, not "
        "an LLM's judgment."
    )


def import_note(details: dict[str, Any]) -> str:
    """The report's line on strategies that were imported rather than generated."""
    digest = str(details.get("import_sha256") or "")[:12]
    return (
        f"The strategies were imported from {details.get('import_path')} (SHA-256 {digest}...), "
        f"model {details.get('model')}: made outside this run, not generated by it."
    )


def _variants(learned: list[str]) -> list[tuple[bool, str]]:
    """(llm_guidance, tag) of each checkpoint variant the learned agents rest on."""
    from rewts.backtest import AGENT_VARIANT
    from rewts.backtest.rl_source import VARIANT_CHECKPOINTS

    return list(dict.fromkeys(VARIANT_CHECKPOINTS[AGENT_VARIANT[a]] for a in learned))


def trained_members(cfg: Config) -> list[Path]:
    """Checkpoint folders the backtest will load: every (ticker, variant, seed) manifest's."""
    from rewts.training.checkpoints import manifest_path
    from rewts.training.jobs import variant_name

    root = Path(cfg.rewts.checkpoint_dir)
    seeds = [cfg.seed + r for r in range(cfg.backtest.runs)]
    paths: list[Path] = []
    for ticker in cfg.tickers:
        for llm, tag in _variants(st.learned_agents(cfg)):
            for seed in seeds:
                path = manifest_path(root, ticker, variant_name(llm, seed, tag))
                try:
                    manifest = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                paths.extend(Path(e["path"]) for e in manifest.get("agents", []))
    return paths


def _meta_seconds(path: Path) -> float:
    from rewts.training.jobs import read_meta

    meta = read_meta(path) or {}
    return float((meta.get("metrics") or {}).get("seconds", 0.0))


def _results_facts(metrics_json: Path) -> tuple[dict[str, Any], list[str]]:
    try:
        payload = json.loads(metrics_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, []
    tables = dict(payload.get("paper_tables") or {})
    if payload.get("generalization"):
        tables["generalization"] = payload["generalization"]
    return tables, list(payload.get("notes") or [])


def _strategies_check(
    cfg: Config, data_hash: str, provider: str
) -> tuple[st.Check, dict[str, pd.DataFrame] | None]:
    """Whether the stored strategy tables can be reused (and the tables when they can).

    Periods that failed (fallback or skipped) make the tables stale: failures are never
    cached, and the next run asks for them again.
    """
    from rewts.llm import load_strategies

    inputs = st.strategies_inputs(cfg, data_hash, provider, news_hash(cfg))
    record = st.read_record(Path(cfg.llm.output_dir), "strategies")
    tables = None
    if record is not None and record.key == st.digest(inputs):
        tables = load_strategies(cfg)
    now = st.strategies_hash(tables) if tables else None
    check = st.check_record(record, inputs, now, "strategy tables")
    if check.fresh and tables is not None:
        retry = sum(int(t["status"].isin(["fallback", "skipped"]).sum()) for t in tables.values())
        if retry:
            check = st.Check(False, f"{retry} failed period(s) to retry", inputs, record)
    return check, tables if check.fresh else None


def model_info(cfg: Config, strategies: dict[str, Any] | None) -> dict[str, Any] | None:
    """The strategies' model, its training cutoff and the report's warning (None when no
    agent reads strategies)."""
    from rewts.llm.cutoff import cutoff_warning, resolve_cutoff

    if strategies is None:
        return None
    provider, model = str(strategies.get("provider") or ""), strategies.get("model")
    cutoff = resolve_cutoff(cfg.llm.model_cutoff, provider, model)
    return {
        "provider": provider,
        "model": model,
        "blind": cfg.llm.blind,
        "cutoff": cutoff.to_dict(),
        "warning": cutoff_warning(cutoff, model, cfg.split.test_start, cfg.split.test_end),
    }


def with_cutoff_split(model: dict[str, Any], result: Any) -> dict[str, Any]:
    """``model`` plus the metrics either side of the cutoff when the test period spans it."""
    from rewts.memorization import cutoff_split

    date = model["cutoff"].get("date")
    if not date:
        return dict(model)
    split = cutoff_split(result, dt.date.fromisoformat(date))
    return {**model, "split": split.to_dict(orient="records")}


# ------------------------------------------------------------------------------- run


class _Run:
    """One ``rewts run``: the stages in order, each reported to ``on_stage``."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        *,
        html: bool,
        train_events: Events,
        events: Callable[[Any], None] | None,
        say: Say,
        on_stage: Callable[[StageOutcome], None],
    ) -> None:
        self.cfg, self.run_dir, self.html = cfg, Path(run_dir), html
        self.train_events, self.events = train_events, events
        self.say, self.on_stage = say, on_stage
        self.outcomes: list[StageOutcome] = []

    def _finish(self, outcome: StageOutcome) -> StageOutcome:
        self.outcomes.append(outcome)
        self.on_stage(outcome)
        return outcome

    def _start(self, stage: str, why: str) -> float:
        self.on_stage(StageOutcome(stage, "running", why))
        return time.perf_counter()

    # ---------------------------------------------------------------- data

    def data(self, refresh: bool = False) -> Dataset:
        t0 = self._start("data", "refresh requested" if refresh else "")
        dataset = ensure_data(self.cfg, refresh=refresh, reporter=self.say)
        details = {
            "source": dataset.source,
            "tickers": list(dataset.tickers),
            "content_hash": dataset.content_hash,
            "path": str(dataset.path),
        }
        status, why = ("skipped", "inputs unchanged") if dataset.report.from_store else ("done", "")
        if refresh:
            why = "refresh requested"
        self._finish(StageOutcome("data", status, why, time.perf_counter() - t0, details))
        return dataset

    # ---------------------------------------------------------- strategies

    def strategies(
        self, dataset: Dataset
    ) -> tuple[dict[str, pd.DataFrame] | None, str | None, dict[str, Any] | None]:
        from rewts.backtest import needs_strategies
        from rewts.llm import load_strategies
        from rewts.llm.providers import BANNER, resolve_provider_name

        cfg = self.cfg
        if not needs_strategies(cfg):
            self._finish(StageOutcome("strategies", "not needed", "no requested agent reads tau"))
            return None, None, None
        provider = resolve_provider_name(cfg)
        folder = Path(cfg.llm.output_dir)
        check, tables = _strategies_check(cfg, dataset.content_hash, provider)
        inputs, record = check.inputs, check.record
        if check.fresh and tables is not None and record is not None:
            details = dict(record.details)
            # nothing was asked of any provider this time: the tables were reused as stored
            details.update(
                generated=0, cache_hits=0, api_calls=0, cost_usd=0.0, reused=details.get("total")
            )
            self._finish(StageOutcome("strategies", "skipped", check.why, 0.0, details))
            return tables, record.output, details

        t0 = self._start("strategies", check.why)
        events = self.events
        if events is None:
            # no display to announce it: say it here, once, instead of a log warning
            if provider == "heuristic":
                self.say(BANNER)
            events = lambda _event: None  # noqa: E731
        st.drop_records(folder, ["strategies"])
        generated = ensure_strategies(cfg, dataset, events=events)
        tables = load_strategies(cfg) or generated.strategies
        seconds = time.perf_counter() - t0
        output, details = record_strategies(cfg, inputs, tables, generated, provider, seconds)
        self._finish(StageOutcome("strategies", "done", check.why, seconds, details))
        return tables, output, details

    # ---------------------------------------------------------------- train

    def train(
        self, dataset: Dataset, tables: dict[str, pd.DataFrame] | None, strat_hash: str | None
    ) -> tuple[str | None, dict[str, Any] | None]:
        cfg = self.cfg
        learned = st.learned_agents(cfg)
        if not learned:
            self._finish(StageOutcome("train", "not needed", "no learned agent requested"))
            return None, None
        if not cfg.backtest.train_missing:
            entries = st.checkpoint_entries(trained_members(cfg))
            details = {"agents": len(entries), "trained": 0, "reused": len(entries)}
            why = "backtest.train_missing is false: the checkpoints are used as they are"
            self._finish(StageOutcome("train", "skipped", why, 0.0, details))
            return st.digest(entries), details
        inputs = st.train_inputs(cfg, dataset.content_hash, strat_hash)
        folder = Path(cfg.rewts.checkpoint_dir)
        record = st.read_record(folder, "train")
        now = st.checkpoints_digest(trained_members(cfg)) if record is not None else None
        check = st.check_record(record, inputs, now, "checkpoints")
        if check.fresh and record is not None:
            details = {
                "agents": len(record.details.get("checkpoints", [])),
                "trained": 0,
                "reused": len(record.details.get("checkpoints", [])),
                "train_seconds": 0.0,
                # what training them took when they were trained (for the summary)
                "earlier_train_seconds": record.details.get("all_seconds", 0.0),
            }
            self._finish(StageOutcome("train", "skipped", check.why, 0.0, details))
            return record.output, details

        from rewts.backtest.rl_source import RLAgentSource

        t0 = self._start("train", check.why)
        started = time.time()
        st.drop_records(folder, ["train"])
        seeds = [cfg.seed + r for r in range(cfg.backtest.runs)]
        source = RLAgentSource(cfg, dataset, tables, events=self.train_events, say=self.say)
        source.ensure_trained(cfg.tickers, learned, seeds)
        members = trained_members(cfg)
        entries = st.checkpoint_entries(members)
        fresh = [Path(p) for p, _ in entries if (Path(p) / "meta.json").stat().st_mtime >= started]
        details = {
            "checkpoints": entries,
            "agents": len(entries),
            "trained": len(fresh),
            "reused": len(entries) - len(fresh),
            "train_seconds": round(sum(_meta_seconds(p) for p in fresh), 2),
            "all_seconds": round(sum(_meta_seconds(Path(p)) for p, _ in entries), 2),
        }
        output = st.digest(entries)
        seconds = time.perf_counter() - t0
        st.write_record(folder, st.StageRecord.new("train", inputs, output, seconds, details))
        shown = {k: v for k, v in details.items() if k != "checkpoints"}
        self._finish(StageOutcome("train", "done", check.why, seconds, shown))
        return output, shown

    # ------------------------------------------------------- backtest, report

    def backtest_and_report(
        self,
        dataset: Dataset,
        tables: dict[str, pd.DataFrame] | None,
        hashes: tuple[str | None, str | None],
        notes: list[str],
        model: dict[str, Any] | None = None,
    ) -> None:
        cfg, run_dir = self.cfg, self.run_dir
        strat_hash, train_hash = hashes
        inputs = st.backtest_inputs(cfg, dataset.content_hash, strat_hash, train_hash)
        bt = st.check_backtest(run_dir, inputs)
        rp = st.check_report(run_dir, bt) if self.html else None
        if bt.fresh and (rp is None or rp.fresh):
            self._finish(StageOutcome("backtest", "skipped", bt.why))
            if rp is not None:
                self._finish(StageOutcome("report", "skipped", rp.why))
            else:
                self._finish(StageOutcome("report", "not needed", "--no-html"))
            return
        why = bt.why
        if bt.fresh and rp is not None:
            why = f"{rp.why}: the report is drawn from the backtest's results in memory"

        from rewts.backtest import backtest_all
        from rewts.report import render_html, write_report

        t0 = self._start("backtest", why)
        st.drop_records(run_dir, ["backtest", "report"])
        # the train stage above trained (or deliberately did not train) every member
        bt_cfg = cfg.model_copy(
            update={"backtest": cfg.backtest.model_copy(update={"train_missing": False})}
        )
        result = backtest_all(
            bt_cfg, dataset, tables, name=run_dir.name, events=self.train_events, say=self.say
        )
        result.config = cfg.model_dump(mode="json")
        result.notes[:0] = notes
        if model is not None:
            result.memorization = with_cutoff_split(model, result)
        files = write_report(result, run_dir, html=False)
        output = st.file_hash(files.metrics_json) or ""
        seconds = time.perf_counter() - t0
        st.write_record(run_dir, st.StageRecord.new("backtest", inputs, output, seconds))
        details = {"metrics_json": str(files.metrics_json), "runs": len(result.runs)}
        self._finish(StageOutcome("backtest", "done", why, seconds, details))

        if not self.html:
            (run_dir / "report.html").unlink(missing_ok=True)  # it would describe older results
            self._finish(StageOutcome("report", "not needed", "--no-html"))
            return
        t0 = self._start("report", "backtest output changed")
        path = run_dir / "report.html"
        write_text_atomic(path, render_html(result), mode=0o666)
        seconds = time.perf_counter() - t0
        rp_inputs = st.report_inputs(output)
        st.write_record(
            run_dir, st.StageRecord.new("report", rp_inputs, st.file_hash(path) or "", seconds)
        )
        self._finish(StageOutcome("report", "done", "backtest output changed", seconds))


def default_run_dir(cfg: Config, profile: str | None) -> Path:
    """``backtest.output_dir/<profile>`` (``default`` without one): a stable folder, so a
    rerun finds its results and skips what is unchanged."""
    return Path(cfg.backtest.output_dir) / (profile or "default")


def run_pipeline(
    cfg: Config,
    *,
    run_dir: Path,
    html: bool = True,
    train_events: Events = None,
    events: Callable[[Any], None] | None = None,
    say: Say | None = None,
    on_stage: Callable[[StageOutcome], None] | None = None,
    refresh_data: bool = False,
) -> RunSummary:
    """Run every stage whose output is missing or stale, skip the others, and summarize.

    ``refresh_data`` rebuilds the dataset from its source even when it is up to date; later
    stages still rerun only if the data came out different.

    ``train_events`` receive training's events (:mod:`rewts.training.events`; a display);
    ``events`` receives the strategy engine's events (a display); ``say`` one line per
    thing worth telling the user (data source chosen, heuristic strategist, ...);
    ``on_stage`` each stage's start (status ``running``) and outcome.
    """
    t0 = time.perf_counter()
    run = _Run(
        cfg,
        run_dir,
        html=html,
        train_events=train_events,
        events=events,
        say=say or (lambda _line: None),
        on_stage=on_stage or (lambda _outcome: None),
    )
    dataset = run.data(refresh_data)
    tables, strat_hash, strat = run.strategies(dataset)
    train_hash, training = run.train(dataset, tables, strat_hash)
    notes = []
    if strat is not None and strat.get("provider") == "heuristic":
        notes.append(heuristic_note())
    if strat is not None and strat.get("provider") == "import":
        notes.append(import_note(strat))
    if strat is not None and strat.get("fallbacks"):
        notes.append(
            f"{strat['fallbacks']} strategy period(s) used the failure fallback "
            f"(llm.on_failure = {cfg.llm.on_failure})."
        )
    model = model_info(cfg, strat)
    if model is not None and model["warning"]:
        notes.insert(0, model["warning"])
    run.backtest_and_report(dataset, tables, (strat_hash, train_hash), notes, model)
    metrics_json = Path(run_dir) / "metrics.json"
    report = Path(run_dir) / "report.html"
    tables_out, all_notes = _results_facts(metrics_json)
    return RunSummary(
        run_dir=Path(run_dir),
        stages=run.outcomes,
        wall_s=time.perf_counter() - t0,
        data=run.outcomes[0].details,
        strategies=strat,
        training=training,
        metrics_json=metrics_json if metrics_json.is_file() else None,
        report=report if html and report.is_file() else None,
        paper_tables=tables_out,
        notes=all_notes,
    )


# ----------------------------------------------------------------------------- status


@dataclass
class StageState:
    """What ``rewts status`` says about one stage: fresh, stale, missing or not needed."""

    stage: str
    state: str
    why: str = ""
    where: str = ""
    finished: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _data_state(cfg: Config) -> tuple[StageState, str | None]:
    from rewts.data import store
    from rewts.data.prepare import plan_data

    folder = Path(cfg.data.processed_dir)
    planned = plan_data(cfg)
    inputs, why = planned.inputs, planned.why
    manifest = store.read_manifest(folder)
    base = {"where": str(folder)}
    if manifest is None:
        return StageState(
            "data", "missing", f"no processed dataset (source would be {why})", **base
        ), None
    details = {"source": manifest.get("source"), "tickers": list(manifest.get("tickers", {}))}
    if manifest.get("inputs_hash") != store.inputs_hash(inputs):
        keys = st.changed_keys(manifest.get("inputs") or {}, inputs)
        why = st.describe_keys(keys) if keys else "written by another version"
        return StageState("data", "stale", why, details=details, **base), None
    missing = [
        t for t in manifest.get("tickers", {}) if not (folder / store.parquet_name(t)).is_file()
    ]
    if missing:
        why = f"files missing: {', '.join(missing)}"
        return StageState("data", "stale", why, details=details, **base), None
    stored = store.read_store(folder, manifest.get("inputs_hash", ""))
    if isinstance(stored, str):  # the files no longer match the manifest's content hash
        return StageState("data", "stale", stored, details=details, **base), None
    written = dt.datetime.fromtimestamp((folder / store.MANIFEST).stat().st_mtime, dt.UTC)
    return (
        StageState(
            "data",
            "fresh",
            f"inputs unchanged ({why})",
            finished=written.isoformat(timespec="seconds"),
            details=details,
            **base,
        ),
        manifest.get("content_hash"),
    )


def _state(stage: str, check: st.Check, where: Path, upstream_ok: bool) -> StageState:
    record = check.record
    finished = record.finished if record is not None else ""
    if check.fresh:
        return StageState(stage, "fresh", check.why, str(where), finished)
    if record is None:
        return StageState(stage, "missing", "not built yet", str(where))
    why = check.why if upstream_ok else "an earlier stage is stale or missing"
    return StageState(stage, "stale", why, str(where), finished)


def pipeline_status(cfg: Config, run_dir: Path, *, html: bool = True) -> list[StageState]:
    """Each stage's state for ``cfg``, without running or writing anything.

    A stage is fresh when ``rewts run`` would skip it: its record matches the inputs it would
    have now and its output on disk is the recorded one.
    """
    from rewts.backtest import needs_strategies
    from rewts.llm.providers import resolve_provider_name

    run_dir = Path(run_dir)
    data, data_hash = _data_state(cfg)
    states = [data]
    ok = data_hash is not None

    strat_hash: str | None = None
    folder = Path(cfg.llm.output_dir)
    if not needs_strategies(cfg):
        states.append(StageState("strategies", "not needed", "no requested agent reads tau"))
    else:
        check, _ = _strategies_check(cfg, data_hash or "", resolve_provider_name(cfg))
        record = check.record
        state = _state("strategies", check, folder, ok)
        if record is not None:
            state.details = {
                k: record.details.get(k) for k in ("provider", "model", "total", "fallbacks")
            }
        states.append(state)
        ok = ok and check.fresh
        strat_hash = record.output if check.fresh and record is not None else None

    train_hash: str | None = None
    root = Path(cfg.rewts.checkpoint_dir)
    if not st.learned_agents(cfg):
        states.append(StageState("train", "not needed", "no learned agent requested"))
    else:
        inputs = st.train_inputs(cfg, data_hash or "", strat_hash)
        record = st.read_record(root, "train")
        now = st.checkpoints_digest(trained_members(cfg)) if record is not None else None
        check = st.check_record(record, inputs, now, "checkpoints")
        state = _state("train", check, root, ok)
        if record is not None:
            state.details = {"agents": len(record.details.get("checkpoints", []))}
        states.append(state)
        ok = ok and check.fresh
        train_hash = record.output if check.fresh and record is not None else None

    inputs = st.backtest_inputs(cfg, data_hash or "", strat_hash, train_hash)
    check = st.check_backtest(run_dir, inputs)
    states.append(_state("backtest", check, run_dir / "metrics.json", ok))
    ok = ok and check.fresh
    if not html:
        states.append(StageState("report", "not needed", "--no-html"))
    else:
        rp = st.check_report(run_dir, check)
        states.append(_state("report", rp, run_dir / "report.html", ok))
    return states
