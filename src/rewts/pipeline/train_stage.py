"""The train stage: the checkpoints of every learned agent the backtest asks for, in
``rewts.checkpoint_dir`` (training resumes per agent: finished checkpoints are reused)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewts.pipeline.base import Context, Stage, StageOutcome
from rewts.pipeline.records import (
    Check,
    StageRecord,
    checkpoint_entries,
    checkpoints_digest,
    digest,
    drop_records,
    learned_agents,
    train_inputs,
    write_record,
)

if TYPE_CHECKING:
    from rewts.config import Config

#: why a run with ``backtest.train_missing: false`` trains nothing
NO_TRAINING = "backtest.train_missing is false: the checkpoints are used as they are"


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
        for llm, tag in _variants(learned_agents(cfg)):
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


class TrainStage(Stage):
    """Train the Double DQN agents (per ticker, chunk, variant and seed) the backtest needs."""

    name = "train"
    what = "checkpoints"

    def not_needed(self, ctx: Context) -> str | None:
        return None if learned_agents(ctx.cfg) else "no learned agent requested"

    def folder(self, ctx: Context) -> Path:
        return Path(ctx.cfg.rewts.checkpoint_dir)

    def inputs(self, ctx: Context) -> dict[str, Any]:
        return train_inputs(ctx.cfg, ctx.outputs.get("data") or "", ctx.outputs.get("strategies"))

    def output_now(self, ctx: Context, record: StageRecord) -> str | None:
        return checkpoints_digest(trained_members(ctx.cfg))

    def check(self, ctx: Context) -> Check:
        """With ``backtest.train_missing: false`` the checkpoints are used as they are (fresh
        by definition, keyed on what they are); otherwise the record's rule."""
        if not ctx.cfg.backtest.train_missing:
            entries = checkpoint_entries(trained_members(ctx.cfg))
            return Check(True, NO_TRAINING, self.inputs(ctx), stored=entries)
        return super().check(ctx)

    def output_of(self, check: Check) -> str | None:
        if check.record is None and check.stored is not None:
            return digest(check.stored)
        return super().output_of(check)

    def status_details(self, record: StageRecord) -> dict[str, Any]:
        return {"agents": len(record.details.get("checkpoints", []))}

    def missing_why(self, ctx: Context) -> str:
        """``rewts train`` trains without a record: say that its checkpoints will be used."""
        found = len(trained_members(ctx.cfg))
        if not found:
            return super().missing_why(ctx)
        return f"not recorded yet: a run reuses those of the {found} checkpoint(s) found that match"

    def reuse(self, ctx: Context, check: Check) -> StageOutcome:
        ctx.outputs[self.name] = self.output_of(check)
        if check.record is None:  # train_missing is false
            entries = check.stored or []
            shown = {"agents": len(entries), "trained": 0, "reused": len(entries)}
            return StageOutcome(self.name, "skipped", check.why, 0.0, shown)
        checkpoints = check.record.details.get("checkpoints", [])
        details = {
            "agents": len(checkpoints),
            "trained": 0,
            "reused": len(checkpoints),
            "train_seconds": 0.0,
            # what training them took when they were trained (for the summary)
            "earlier_train_seconds": check.record.details.get("all_seconds", 0.0),
        }
        return StageOutcome(self.name, "skipped", check.why, 0.0, details)

    def run(self, ctx: Context, check: Check) -> StageOutcome:
        from rewts.backtest.rl_source import RLAgentSource

        cfg, folder = ctx.cfg, self.folder(ctx)
        started = time.time()
        drop_records(folder, [self.name])
        seeds = [cfg.seed + r for r in range(cfg.backtest.runs)]
        source = RLAgentSource(cfg, ctx.dataset, ctx.tables, events=ctx.train_events, say=ctx.say)
        source.ensure_trained(cfg.tickers, learned_agents(cfg), seeds)
        entries = checkpoint_entries(trained_members(cfg))
        fresh = [Path(p) for p, _ in entries if (Path(p) / "meta.json").stat().st_mtime >= started]
        details: dict[str, Any] = {
            "checkpoints": entries,
            "agents": len(entries),
            "trained": len(fresh),
            "reused": len(entries) - len(fresh),
            "train_seconds": round(sum(_meta_seconds(p) for p in fresh), 2),
            "all_seconds": round(sum(_meta_seconds(Path(p)) for p, _ in entries), 2),
        }
        output = digest(entries)
        seconds = ctx.elapsed()
        write_record(folder, StageRecord.new(self.name, check.inputs, output, seconds, details))
        ctx.outputs[self.name] = output
        shown = {k: v for k, v in details.items() if k != "checkpoints"}
        return StageOutcome(self.name, "done", check.why, seconds, shown)
