"""Chunked training: layout, skip/resume by input hash, loading, process pool == in-process."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from rewts.config.models import Config
from rewts.errors import TrainingError
from rewts.training import (
    GLOBAL_CHUNK,
    load_chunk_agents,
    load_curves,
    load_global_agent,
    train_all,
)


def _weights(agent) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in agent.agent.online.parameters()]


def test_trains_every_chunk_and_global_then_skips_unchanged(cfg, dataset, strategies) -> None:
    first = train_all(cfg, dataset, strategies)
    # train 2012-01-02..2013-03-29 = 325 days, minus 40 warm-up = 285: chunks of 100, 100, 85
    chunks = [r.chunk for r in first.jobs if r.ticker == "AAA"]
    assert chunks == [0, 1, 2, GLOBAL_CHUNK]
    assert not any(r.skipped for r in first.jobs)
    agents = load_chunk_agents(cfg, "AAA")
    assert [a.chunk for a in agents] == [0, 1, 2]
    assert agents[0].end < agents[1].start < agents[2].start
    meta = agents[1].metadata
    assert meta["tau_hash"] and meta["data_hash"] and meta["dataset_hash"] == "test"
    assert meta["obs_names"][-1] == "tau" and meta["metrics"]["episodes"] == 2
    curves = load_curves(agents[1])
    assert list(curves.columns) == [
        "episode", "steps", "return", "sharpe", "final_equity", "loss", "epsilon", "validation",
    ]  # fmt: skip
    glob = load_global_agent(cfg, "AAA")
    # the global agent trains on the range less its validation tail, which ends the range
    assert glob.is_global and glob.start == agents[0].start and glob.end < agents[-1].end
    assert glob.metadata["validation_end"] == agents[-1].metadata["validation_end"]
    assert pd.Timestamp(glob.metadata["validation_start"]) > glob.end

    second = train_all(cfg, dataset, strategies)
    assert all(r.skipped for r in second.jobs)
    assert second.summary()["skipped"].tolist() == [4, 4]


def test_changed_tau_retrains_only_the_chunks_that_see_it(cfg, dataset, strategies) -> None:
    train_all(cfg, dataset, strategies)
    before = _weights(load_chunk_agents(cfg, "AAA")[0])
    last = load_chunk_agents(cfg, "AAA")[2]
    changed = {k: v.copy() for k, v in strategies.items()}
    # periods whose days fall inside the last chunk only
    frame = dataset.frames["AAA"]
    start_row = last.metadata["start_row"]
    late = changed["AAA"]["period"] * 20 + 40 > start_row + 20
    changed["AAA"].loc[late, "tau"] = -changed["AAA"].loc[late, "tau"]
    assert late.any() and len(frame)
    result = train_all(cfg, dataset, changed)
    retrained = {(r.ticker, r.chunk) for r in result.jobs if not r.skipped}
    assert retrained == {("AAA", 2), ("AAA", GLOBAL_CHUNK)}
    for after, old in zip(_weights(load_chunk_agents(cfg, "AAA")[0]), before, strict=True):
        np.testing.assert_array_equal(after, old)


def test_interrupted_run_resumes_and_config_change_retrains(cfg, dataset, strategies) -> None:
    train_all(cfg, dataset, strategies, include_global=False)
    folder = load_chunk_agents(cfg, "BBB")[1].path
    (folder / "meta.json").unlink()  # as if killed before the chunk finished
    result = train_all(cfg, dataset, strategies, include_global=False)
    assert [(r.ticker, r.chunk) for r in result.jobs if not r.skipped] == [("BBB", 1)]
    assert json.loads((folder / "meta.json").read_text())["chunk"] == 1
    more = cfg.model_copy(update={"rewts": cfg.rewts.model_copy(update={"episodes_per_chunk": 3})})
    assert not any(
        r.skipped for r in train_all(more, dataset, strategies, include_global=False).jobs
    )


def test_rl_only_needs_no_strategies_and_drops_tau(cfg, dataset) -> None:
    rl = cfg.model_copy(update={"rewts": cfg.rewts.model_copy(update={"llm_guidance": False})})
    with pytest.raises(TrainingError, match="--no-llm"):
        train_all(cfg, dataset, None)
    train_all(rl, dataset, None, include_global=False, seeds=[3])
    agents = load_chunk_agents(rl, "AAA", llm_guidance=False, seed=3)
    assert "tau" not in agents[0].obs_names and agents[0].path.parent.name == "chunk_0"
    assert agents[0].path.name == "rl_s3"
    with pytest.raises(TrainingError, match="rewts train --tickers AAA"):
        load_chunk_agents(rl, "AAA", llm_guidance=True, seed=3)


@pytest.mark.slow
def test_process_pool_matches_in_process(cfg: Config, dataset, strategies, tmp_path) -> None:
    def run(n_jobs: int, folder: str):
        c = cfg.model_copy(
            update={
                "tickers": ["AAA"],
                "rewts": cfg.rewts.model_copy(
                    update={"n_jobs": n_jobs, "checkpoint_dir": tmp_path / folder}
                ),
            }
        )
        result = train_all(c, dataset, strategies, include_global=False)
        return result, load_chunk_agents(c, "AAA")

    threads = torch.get_num_threads()
    pooled, pooled_agents = run(2, "pool")
    assert pooled.workers == 2
    serial, serial_agents = run(1, "serial")
    assert serial.workers == 1
    assert torch.get_num_threads() == threads  # in-process jobs restore the thread count
    for a, b in zip(pooled_agents, serial_agents, strict=True):
        for wa, wb in zip(_weights(a), _weights(b), strict=True):
            np.testing.assert_array_equal(wa, wb)
        assert load_curves(a).equals(load_curves(b))


def test_chunks_left_over_from_an_earlier_config_are_not_loaded(cfg, dataset, strategies) -> None:
    coarse = cfg.model_copy(update={"rewts": cfg.rewts.model_copy(update={"chunk_length": 60})})
    train_all(coarse, dataset, strategies, include_global=False)
    assert len(load_chunk_agents(coarse, "AAA")) == 5  # 285 days: 60 x 4 + 45
    train_all(cfg, dataset, strategies, include_global=False)
    agents = load_chunk_agents(cfg, "AAA")
    assert [a.chunk for a in agents] == [0, 1, 2]
    # the 100-day chunks of this config, not the 60-day ones left on disk
    starts = [a.metadata["start_row"] for a in agents]
    assert starts[2] - starts[1] == 100  # (chunk 0 starts late: the first 60 days feed ret_60d)
    (agents[1].path / "meta.json").unlink()
    with pytest.raises(TrainingError, match="rerun `rewts train`"):
        load_chunk_agents(cfg, "AAA")


def test_pool_size_follows_executor_jobs_and_cpus(cfg) -> None:
    from rewts.training.runner import pool_size

    auto = cfg.model_copy(update={"rewts": cfg.rewts.model_copy(update={"n_jobs": "auto"})})
    assert pool_size(auto, 1) == 1
    assert pool_size(auto, 10_000) == (os.cpu_count() or 1)
    three = cfg.model_copy(update={"rewts": cfg.rewts.model_copy(update={"n_jobs": 3})})
    assert pool_size(three, 10) == 3
    assert pool_size(three.model_copy(update={"executor": "local"}), 10) == 1
