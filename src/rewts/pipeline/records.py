"""The stage records: what each pipeline stage was built from, so a rerun skips what is unchanged.

A record sits next to the output it describes, in ``rewts-stage.json``: the strategies' in
``llm.output_dir``, training's in ``rewts.checkpoint_dir``, the backtest's and the report's in
the run's results folder (the data stage keeps its own manifest in ``data.processed_dir``).
Next to the output, not in one central file, because outputs are shared and can be deleted
one by one: removing the results folder must cost the backtest only, not the training.

A record holds the stage's *key* (SHA-256 of the config slice that shapes its output plus the
upstream stages' *output* hashes), the readable inputs behind the key (so a stale stage can
name the key that changed) and the hash of what it produced. A stage is fresh when the key it
would have now equals the record's and its output still hashes to the recorded value. Keying
downstream stages off upstream outputs means a change that leaves an output identical (say a
regenerated but equal strategy table) stops there.

The functions ``*_inputs`` below are the one place that says which config keys matter to which
stage. They err on the side of invalidating: a new key in a section they include counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rewts.config import Config
from rewts.fileio import sha256_regular, write_text_atomic

#: the stages of ``rewts run``, in order
STAGES = ("data", "strategies", "train", "backtest", "report")
#: file name of the records inside each stage's output folder
RECORD_FILE = "rewts-stage.json"
#: bump when the meaning of a record changes, so old records count as stale
RECORD_VERSION = 1

#: LLM keys that change how requests are sent, never what comes back
_LLM_OPERATIONAL = {
    "api_key_env",
    "gemini_api_key",
    "deepseek_api_key",
    "openai_api_key",
    "project_id",
    "timeout_s",
    "cache_path",
    "rate_limits",
    "retry",
    "batch",
    "prices",
    "latency_prior_s",
    "model_cutoff",
    "max_concurrency",
}
#: top-level keys the strategies never depend on (everything else counts)
_NOT_STRATEGIES = {
    "tickers",
    "data",
    "llm",
    "rewts",
    "trading_env",
    "split",
    "backtest",
    "parallel_workers",
    "max_requests_per_second",
    "seed",
    "executor",
    "ray",
    "profiles",
}
#: rewts keys that decide where or how fast training runs, not what it learns
_REWTS_OPERATIONAL = {"n_jobs", "device"}


# --------------------------------------------------------------------------- hashing


def digest(value: Any) -> str:
    """SHA-256 of a JSON-able value, independent of key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: Path) -> str | None:
    """SHA-256 of a file's bytes; None when it does not exist (a FIFO, device or folder in
    its place is an error naming it, never a hang)."""
    if not os.path.lexists(path):
        return None
    return sha256_regular(path)


def _decision_columns() -> list[str]:
    """The strategy-table columns that shape what later stages see: the head of
    :data:`rewts.llm.tables.COLUMNS` up to ``tau`` (not latency, tokens, provenance, nor
    ``status``: a strategy answered now and the same one from the cache are one decision)."""
    from rewts.llm.tables import COLUMNS  # imported here: the records load without the LLM layer

    return COLUMNS[: COLUMNS.index("tau") + 1]


def strategies_hash(tables: Mapping[str, pd.DataFrame]) -> str:
    """Hash of the strategy tables' decision columns, per ticker in sorted order.

    Latency, tokens, status and provenance are left out: a table regenerated from the cache,
    or by a rule-based strategist, has the same decisions and must not retrain every agent.
    """
    h = hashlib.sha256()
    decisions = _decision_columns()
    for ticker in sorted(tables):
        frame = tables[ticker]
        cols = [c for c in decisions if c in frame.columns]
        h.update(f"\x1e{ticker}\x1f{','.join(cols)}\x1f".encode())
        values = pd.util.hash_pandas_object(frame[cols].reset_index(drop=True), index=True)
        h.update(values.to_numpy().tobytes())
    return h.hexdigest()


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two input trees, shallow ones first (a
    changed ``tickers`` says more than the per-file hashes it drags along)."""
    a, b = flatten(old), flatten(new)

    def norm(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    changed = [k for k in a.keys() | b.keys() if norm(a.get(k)) != norm(b.get(k))]
    return sorted(changed, key=lambda k: (k.count("."), k))


def describe_keys(keys: list[str], limit: int = 4) -> str:
    """``changed: a, b, c (+2 more)``."""
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return f"changed: {', '.join(keys[:limit])}{more}"


# --------------------------------------------------------------------------- config slices


def _dump(cfg: Config) -> dict[str, Any]:
    return cfg.model_dump(mode="json", exclude={"profiles"})


def strategies_inputs(
    cfg: Config, data_hash: str, provider: str, news_hash: str | None
) -> dict[str, Any]:
    """What shapes the strategy tables: the data, the resolved provider, the LLM settings, the
    strategy periods and the news (when the analyst reads it); with ``provider: import`` also
    the imported file's bytes, so a changed file reruns the stage (and retrains only the
    agents whose strategies it changed: training keys on the tables, not on the file)."""
    tree = _dump(cfg)
    llm = {k: v for k, v in tree["llm"].items() if k not in _LLM_OPERATIONAL}
    llm["provider"] = provider
    inputs = {
        "data": data_hash,
        "tickers": tree["tickers"],
        "llm": llm,
        "news": None if cfg.skip_news_processing else news_hash,
        "other": {k: v for k, v in tree.items() if k not in _NOT_STRATEGIES},
    }
    if provider == "import" and cfg.llm.import_path is not None:
        inputs["import"] = file_hash(Path(cfg.llm.import_path)) or "missing"
    return inputs


def learned_agents(cfg: Config) -> list[str]:
    """The requested backtest agents that need trained networks."""
    from rewts.backtest import AGENT_VARIANT

    return [a for a in cfg.backtest.agents if a in AGENT_VARIANT]


def train_inputs(cfg: Config, data_hash: str, strategies: str | None) -> dict[str, Any]:
    """What shapes the trained agents: data, strategies, the DDQN and environment settings,
    and which agents (variants, seeds) the backtest asks for."""
    tree = _dump(cfg)
    rewts = {k: v for k, v in tree["rewts"].items() if k not in _REWTS_OPERATIONAL}
    return {
        "data": data_hash,
        "strategies": strategies,
        "tickers": tree["tickers"],
        "rewts": rewts,
        "trading_env": tree["trading_env"],
        "split": tree["split"],
        "seed": tree["seed"],
        "agents": learned_agents(cfg),
        "runs": cfg.backtest.runs,
        "single_agent": cfg.backtest.single_agent,
    }


def backtest_inputs(
    cfg: Config, data_hash: str, strategies: str | None, train: str | None
) -> dict[str, Any]:
    """What shapes the metrics: the upstream outputs and every backtest, environment and
    ensemble setting (the results folder itself excepted)."""
    tree = _dump(cfg)
    backtest = {
        k: v for k, v in tree["backtest"].items() if k not in ("output_dir", "train_missing")
    }
    rewts = {k: v for k, v in tree["rewts"].items() if k not in _REWTS_OPERATIONAL}
    return {
        "data": data_hash,
        "strategies": strategies,
        "train": train,
        "tickers": tree["tickers"],
        "backtest": backtest,
        "rewts": rewts,
        "trading_env": tree["trading_env"],
        "split": tree["split"],
        "seed": tree["seed"],
        "strategy_frequency": tree["strategy_frequency"],
        "warmup_days": tree["data"]["warmup_days"],
        # the report's memorization warning and before/after-cutoff metrics
        "model_cutoff": tree["llm"]["model_cutoff"],
    }


def report_inputs(backtest: str) -> dict[str, Any]:
    return {"backtest": backtest}


# --------------------------------------------------------------------------- records


@dataclass
class StageRecord:
    """What one stage produced, from which inputs, when."""

    stage: str
    key: str
    output: str
    inputs: dict[str, Any]
    seconds: float = 0.0
    finished: str = ""
    #: stage-specific facts for status and the summary (files, counts, provider, cost)
    details: dict[str, Any] = field(default_factory=dict)
    version: int = RECORD_VERSION

    @classmethod
    def new(
        cls,
        stage: str,
        inputs: dict[str, Any],
        output: str,
        seconds: float,
        details: dict[str, Any] | None = None,
    ) -> StageRecord:
        return cls(
            stage=stage,
            key=digest(inputs),
            output=output,
            inputs=inputs,
            seconds=round(seconds, 3),
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            details=dict(details or {}),
        )


def _read_all(folder: Path) -> dict[str, Any]:
    try:
        tree = json.loads((Path(folder) / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return tree if isinstance(tree, dict) else {}


def read_record(folder: Path, stage: str) -> StageRecord | None:
    """The stage's record in ``folder``; None when absent, malformed or of another version."""
    raw = _read_all(folder).get(stage)
    if not isinstance(raw, dict) or raw.get("version") != RECORD_VERSION:
        return None
    try:
        return StageRecord(**raw)
    except TypeError:
        return None


def _write_all(folder: Path, tree: dict[str, Any]) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORD_FILE
    if not tree:
        path.unlink(missing_ok=True)
        return
    write_text_atomic(path, json.dumps(tree, indent=2, sort_keys=True, default=str) + "\n")


def write_record(folder: Path, record: StageRecord) -> None:
    """Store ``record`` (atomically, other stages' records in the same file kept)."""
    tree = _read_all(folder)
    tree[record.stage] = asdict(record)
    _write_all(folder, tree)


def drop_records(folder: Path, stages: Iterable[str]) -> None:
    """Forget stages before rerunning them, so an interrupted rerun never looks finished."""
    tree = _read_all(folder)
    kept = {k: v for k, v in tree.items() if k not in set(stages)}
    if kept != tree:
        _write_all(folder, kept)


# --------------------------------------------------------------------------- freshness


@dataclass
class Check:
    """Whether a stage's stored output can be reused, and why (not)."""

    fresh: bool
    why: str
    inputs: dict[str, Any]
    record: StageRecord | None = None
    #: the stored output as read to hash it (the strategy tables), handed on when fresh
    stored: Any = None


def check_record(
    record: StageRecord | None, inputs: dict[str, Any], output_now: str | None, what: str
) -> Check:
    """Compare a record with the inputs a stage would have now and its output on disk.

    ``output_now`` is the hash of the stored output as it is now (None: missing); ``what``
    names the output in the reason ("strategy tables", "checkpoints", ...).
    """
    if record is None:
        return Check(False, "no earlier run", inputs)
    if record.key != digest(inputs):
        keys = changed_keys(record.inputs, inputs)
        # an upstream stage's output hash is a plain top-level value named after the stage
        upstream = [k for k in keys if k in STAGES]
        if upstream and len(upstream) == len(keys):
            why = f"{' and '.join(upstream)} output changed"
        else:
            why = describe_keys([k for k in keys if k not in upstream])
        return Check(False, why, inputs, record)
    if output_now is None:
        return Check(False, f"{what} missing", inputs, record)
    if output_now != record.output:
        return Check(False, f"{what} changed on disk", inputs, record)
    return Check(True, "inputs unchanged", inputs, record)


def checkpoint_entries(paths: Iterable[Path]) -> list[list[str]]:
    """``[path, input_hash]`` of each finished checkpoint folder, sorted (the train output)."""
    from rewts.training.jobs import MODEL_FILE, read_meta

    out = []
    for path in paths:
        meta = read_meta(Path(path))
        if meta is not None and (Path(path) / MODEL_FILE).is_file():
            out.append([str(path), str(meta.get("input_hash"))])
    return sorted(out)


def checkpoints_digest(paths: Iterable[Path]) -> str | None:
    """The train output hash of these checkpoint folders as they are now; None if none is
    finished. Computed from what the backtest would load (the training manifests), so a
    checkpoint retrained, deleted or dropped from a manifest since the record shows."""
    entries = checkpoint_entries(paths)
    return digest(entries) if entries else None
