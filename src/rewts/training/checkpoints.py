"""Loading trained agents back: the chunk agents of a ticker (ordered by chunk) and its global
agent, each with the metadata the backtest needs to rebuild and check its observations."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rewts.agents.ddqn import DDQNAgent
from rewts.errors import TrainingError
from rewts.fileio import write_json_atomic
from rewts.training.jobs import (
    GLOBAL_CHUNK,
    META_FILE,
    MODEL_FILE,
    chunk_folder,
    model_problem,
    read_meta,
    variant_name,
)

if TYPE_CHECKING:
    from rewts.config.models import Config

_CHUNK_DIR = re.compile(r"^chunk_(\d+)$")


class UnreadableCheckpoint(TrainingError):
    """A checkpoint that exists but cannot be used: reported, never treated as absent."""


@dataclass
class LoadedAgent:
    """A trained agent and where it came from."""

    ticker: str
    #: chunk index; -1 for the global agent
    chunk: int
    start: pd.Timestamp
    end: pd.Timestamp
    seed: int
    llm_guidance: bool
    agent: DDQNAgent
    metadata: dict[str, Any]
    path: Path

    @property
    def is_global(self) -> bool:
        return self.chunk == GLOBAL_CHUNK

    @property
    def obs_names(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("obs_names", ()))

    def greedy_q(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of a batch of observations, ``(N, n_actions)``."""
        return self.agent.greedy_q(obs)

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        """Greedy action(s)."""
        return self.agent.act(obs)


def _load(folder: Path, device: str) -> LoadedAgent:
    meta = read_meta(folder)
    if meta is None or not (folder / MODEL_FILE).is_file():
        raise TrainingError(f"incomplete checkpoint in {folder} (rerun `rewts train` to finish it)")
    problem = model_problem(folder, meta)
    if problem is not None:
        raise UnreadableCheckpoint(
            f"{folder / MODEL_FILE} {problem}: rerun `rewts train` (it retrains that checkpoint)"
        )
    try:
        agent, _ = DDQNAgent.load(folder / MODEL_FILE, device=device)
    except TrainingError as exc:
        raise UnreadableCheckpoint(f"{exc}; rerun `rewts train` (it retrains it)") from exc
    return LoadedAgent(
        ticker=meta["ticker"],
        chunk=int(meta["chunk"]),
        start=pd.Timestamp(meta["start"]),
        end=pd.Timestamp(meta["end"]),
        seed=int(meta["seed"]),
        llm_guidance=bool(meta["llm_guidance"]),
        agent=agent,
        metadata=meta,
        path=folder,
    )


def manifest_path(root: Path, ticker: str, variant: str) -> Path:
    """The record of a variant's last complete training run: which chunks make its ensemble."""
    return Path(root) / ticker / f"{variant}.manifest.json"


def write_manifests(root: Path, folders: list[Path]) -> None:
    """After a complete run: per (ticker, variant), the chunk folders and their input hashes.

    Loading goes through it, so chunks left over from an earlier config (say a longer
    ``chunk_length`` that made more chunks) never join the ensemble.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for folder in folders:
        meta = read_meta(folder)
        if meta is None:
            continue
        entry = {"chunk": meta["chunk"], "path": str(folder), "input_hash": meta["input_hash"]}
        groups.setdefault((meta["ticker"], folder.name), []).append(entry)
    for (ticker, variant), entries in groups.items():
        path = manifest_path(root, ticker, variant)
        entries.sort(key=lambda e: (e["chunk"] == GLOBAL_CHUNK, e["chunk"]))
        write_json_atomic(path, {"ticker": ticker, "variant": variant, "agents": entries})


def _from_manifest(root: Path, ticker: str, variant: str) -> list[tuple[int, Path]] | None:
    path = manifest_path(root, ticker, variant)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    out = []
    for entry in manifest["agents"]:
        folder = Path(entry["path"])
        meta = read_meta(folder)
        if meta is None or meta.get("input_hash") != entry["input_hash"]:
            raise TrainingError(
                f"{ticker} ({variant}): the checkpoint in {folder} changed or is missing since "
                "the last complete training run; rerun `rewts train` to finish it"
            )
        out.append((int(entry["chunk"]), folder))
    return out


def _device(cfg: Config) -> str:
    return "cpu" if cfg.rewts.device == "auto" else cfg.rewts.device


def load_chunk_agents(
    cfg: Config,
    ticker: str,
    *,
    llm_guidance: bool = True,
    seed: int | None = None,
    tag: str = "",
) -> list[LoadedAgent]:
    """The ticker's trained chunk agents of one variant, ordered by chunk index.

    An error names what to run when none exist. Inference runs on the CPU unless
    ``rewts.device`` says ``cuda``.
    """
    seed = cfg.seed if seed is None else seed
    root = Path(cfg.rewts.checkpoint_dir) / ticker
    variant = variant_name(llm_guidance, seed, tag)
    listed = _from_manifest(Path(cfg.rewts.checkpoint_dir), ticker, variant)
    found: list[tuple[int, Path]] = []
    if listed is not None:
        found = [(chunk, folder) for chunk, folder in listed if chunk != GLOBAL_CHUNK]
    elif root.is_dir():  # no complete run recorded: every finished chunk on disk
        for child in root.iterdir():
            match = _CHUNK_DIR.match(child.name)
            if match and (child / variant / META_FILE).is_file():
                found.append((int(match.group(1)), child / variant))
    if not found:
        flag = "" if llm_guidance else " --no-llm"
        raise TrainingError(
            f"no trained chunk agents for {ticker} ({variant}) under {root}: run "
            f"`rewts train --tickers {ticker}{flag}` first"
        )
    return [_load(path, _device(cfg)) for _, path in sorted(found)]


def load_global_agent(
    cfg: Config,
    ticker: str,
    *,
    llm_guidance: bool = True,
    seed: int | None = None,
    tag: str = "",
) -> LoadedAgent:
    """The ticker's agent trained over the whole training range."""
    seed = cfg.seed if seed is None else seed
    folder = chunk_folder(Path(cfg.rewts.checkpoint_dir), ticker, GLOBAL_CHUNK)
    folder = folder / variant_name(llm_guidance, seed, tag)
    if not (folder / META_FILE).is_file():
        raise TrainingError(
            f"no global agent for {ticker} at {folder}: run `rewts train` (with "
            "rewts.train_global true)"
        )
    return _load(folder, _device(cfg))


def load_curves(agent: LoadedAgent) -> pd.DataFrame:
    """The training curves of one agent (episode, return, sharpe, loss, epsilon, ...)."""
    return pd.read_csv(agent.path / "curves.csv")
