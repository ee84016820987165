"""The data stage: prices and features in ``data.processed_dir``.

Its record is the processed store's own manifest (two hashes: inputs and content), so its
freshness rule lives in the data layer (:func:`rewts.data.prepare.plan_data` and
:mod:`rewts.data.store`): :func:`rewts.data.prepare_data` applies it when it runs, and
:meth:`DataStage.check` reads the same manifest for ``rewts status``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewts.pipeline.base import Context, Stage, StageOutcome, StageState
from rewts.pipeline.records import Check, changed_keys, describe_keys

if TYPE_CHECKING:
    from rewts.config import Config
    from rewts.data import Dataset


def ensure_data(cfg: Config, **kwargs: Any) -> Dataset:
    """The processed dataset for ``cfg`` (loaded when fresh, rebuilt when inputs changed)."""
    from rewts.data import prepare_data

    return prepare_data(cfg, **kwargs)


class DataStage(Stage):
    """Load prices from the configured source, compute features, store them."""

    name = "data"
    what = "processed dataset"

    def folder(self, ctx: Context) -> Path:
        return Path(ctx.cfg.data.processed_dir)

    def inputs(self, ctx: Context) -> dict[str, Any]:
        from rewts.data.prepare import plan_data

        return plan_data(ctx.cfg).inputs

    def _inspect(self, ctx: Context) -> tuple[StageState, str | None]:
        """The stored dataset against the inputs now: its state and, when fresh, its
        content hash (what the later stages key on)."""
        from rewts.data import store
        from rewts.data.prepare import plan_data

        folder = self.folder(ctx)
        planned = plan_data(ctx.cfg)
        inputs, why = planned.inputs, planned.why
        manifest = store.read_manifest(folder)
        where = str(folder)
        if manifest is None:
            why = f"no processed dataset (source would be {why})"
            return StageState("data", "missing", why, where=where), None
        details = {"source": manifest.get("source"), "tickers": list(manifest.get("tickers", {}))}
        if manifest.get("inputs_hash") != store.inputs_hash(inputs):
            keys = changed_keys(manifest.get("inputs") or {}, inputs)
            why = describe_keys(keys) if keys else "written by another version"
            return StageState("data", "stale", why, details=details, where=where), None
        missing = [
            t for t in manifest.get("tickers", {}) if not (folder / store.parquet_name(t)).is_file()
        ]
        if missing:
            why = f"files missing: {', '.join(missing)}"
            return StageState("data", "stale", why, details=details, where=where), None
        stored = store.read_store(folder, manifest.get("inputs_hash", ""))
        if isinstance(stored, str):  # the files no longer match the manifest's content hash
            return StageState("data", "stale", stored, details=details, where=where), None
        written = dt.datetime.fromtimestamp((folder / store.MANIFEST).stat().st_mtime, dt.UTC)
        fresh = StageState(
            "data",
            "fresh",
            f"inputs unchanged ({why})",
            finished=written.isoformat(timespec="seconds"),
            details=details,
            where=where,
        )
        return fresh, manifest.get("content_hash")

    def check(self, ctx: Context) -> Check:
        state, content_hash = self._inspect(ctx)
        return Check(state.state == "fresh", state.why, self.inputs(ctx), stored=content_hash)

    def state(self, ctx: Context, upstream_ok: bool) -> StageState:
        state, ctx.outputs[self.name] = self._inspect(ctx)
        return state

    def ensure(self, ctx: Context, *, force: bool = False, required: bool = False) -> StageOutcome:
        """Always through :func:`rewts.data.prepare_data`, which loads a fresh store and
        rebuilds a stale one (``force`` or ``ctx.refresh_data``: rebuild regardless); every
        pass needs the data (``required`` changes nothing)."""
        refresh = force or ctx.refresh_data
        ctx.start(self.name, "refresh requested" if refresh else "")
        dataset = ensure_data(ctx.cfg, refresh=refresh, reporter=ctx.say)
        details = {
            "source": dataset.source,
            "tickers": list(dataset.tickers),
            "content_hash": dataset.content_hash,
            "path": str(dataset.path),
        }
        status, why = ("skipped", "inputs unchanged") if dataset.report.from_store else ("done", "")
        if refresh:
            why = "refresh requested"
        ctx.dataset = dataset
        ctx.outputs[self.name] = dataset.content_hash
        ctx.details[self.name] = details
        return ctx.finish(StageOutcome(self.name, status, why, ctx.elapsed(), details))
