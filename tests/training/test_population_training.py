"""Training runs populations on every executor; checkpoints, skipping and resume stay per
agent."""

from __future__ import annotations

from pathlib import Path

import torch

from rewts.config.models import Config
from rewts.training import build_jobs, load_chunk_agents, load_global_agent, train_all
from rewts.training.jobs import job_folder, read_meta, run_population
from rewts.training.runner import plan_units


def _with(cfg: Config, tmp_path: Path, name: str, **rewts) -> Config:
    return cfg.model_copy(
        update={
            "rewts": cfg.rewts.model_copy(
                update={"checkpoint_dir": tmp_path / name, "validation_days": 30, **rewts}
            )
        }
    )


def _members(cfg: Config, seed: int) -> list:
    return [*load_chunk_agents(cfg, "AAA", seed=seed), load_global_agent(cfg, "AAA", seed=seed)]


def test_populations_group_seeds_of_the_same_rows(cfg, dataset, strategies, tmp_path):
    jobs = build_jobs(_with(cfg, tmp_path, "p"), dataset, strategies, seeds=[0, 1, 2])
    units = plan_units(jobs, 25)
    # 2 tickers x (3 chunks + global): one population of 3 seeds each
    assert sorted(len(u) for u in units) == [3] * 8
    for unit in units:
        assert len({(jobs[i].ticker, jobs[i].chunk) for i in unit}) == 1
    assert sorted(len(u) for u in plan_units(jobs, 2)) == [1] * 8 + [2] * 8
    assert all(len(u) == 1 for u in plan_units(jobs, 1))
    # a setting a population cannot train keeps every agent alone
    random = _with(cfg, tmp_path, "r", random_start=True)
    assert all(
        len(u) == 1 for u in plan_units(build_jobs(random, dataset, strategies, seeds=[0, 1]), 25)
    )


def test_population_and_one_at_a_time_write_the_same_agents(cfg, dataset, strategies, tmp_path):
    together = _with(cfg, tmp_path, "together", population_size=25)
    alone = _with(cfg, tmp_path, "alone", population_size=1)
    train_all(together, dataset, strategies, seeds=[0, 1])
    train_all(alone, dataset, strategies, seeds=[0, 1])
    for seed in (0, 1):
        pairs = zip(_members(together, seed), _members(alone, seed), strict=True)
        for a, b in pairs:
            assert (
                a.metadata["metrics"]["population"] == 2
                and b.metadata["metrics"]["population"] == 1
            )
            assert (
                a.metadata["metrics"]["selected_episode"]
                == b.metadata["metrics"]["selected_episode"]
            )
            for key, value in a.agent.online.state_dict().items():
                torch.testing.assert_close(
                    value, b.agent.online.state_dict()[key], rtol=0, atol=1e-5
                )


def test_a_killed_population_resumes_with_only_the_unfinished_agents(
    cfg, dataset, strategies, tmp_path
):
    run_cfg = _with(cfg, tmp_path, "resume")
    jobs = [
        j
        for j in build_jobs(run_cfg, dataset, strategies, seeds=[0, 1, 2])
        if j.ticker == "AAA" and j.chunk == 0
    ]
    first = run_population(jobs)
    assert not any(r.skipped for r in first)
    before = torch.load(job_folder(jobs[2]) / "model.pt", weights_only=True)["online"]
    # as if killed after writing two agents: the third has no "done" marker
    (job_folder(jobs[2]) / "meta.json").unlink()
    stamp = {i: (job_folder(jobs[i]) / "model.pt").stat().st_mtime_ns for i in (0, 1)}
    second = run_population(jobs)
    assert [r.skipped for r in second] == [True, True, False]
    assert stamp == {i: (job_folder(jobs[i]) / "model.pt").stat().st_mtime_ns for i in (0, 1)}
    meta = read_meta(job_folder(jobs[2]))
    assert meta is not None and meta["metrics"]["population"] == 1  # retrained on its own
    # it is the same agent as the first time (its result depends only on its own seed)
    after = torch.load(job_folder(jobs[2]) / "model.pt", weights_only=True)["online"]
    for key, value in before.items():
        torch.testing.assert_close(value, after[key], rtol=0, atol=1e-5)


def test_agents_reading_tau_from_different_columns_train_apart(cfg, dataset, strategies, tmp_path):
    """The leak agent has LLM+RL's observation width but no tau: with the tau head they
    cannot share a population (a quick run once stopped on exactly this)."""
    from rewts.training.jobs import build_population
    from rewts.training.variants import leak_dataset

    llm = build_jobs(_with(cfg, tmp_path, "c"), dataset, strategies, seeds=[0])
    blind = _with(cfg, tmp_path, "c", llm_guidance=False)
    leak = build_jobs(blind, leak_dataset(dataset, cfg.trading_env.price_column), None, seeds=[0])
    assert leak[0].data.obs_dim == llm[0].data.obs_dim  # the case this guards
    assert leak[0].data.tau_index is None and llm[0].data.tau_index is not None
    jobs = [*llm, *leak]
    units = plan_units(jobs, 25)
    for unit in units:
        assert len({jobs[i].data.tau_index for i in unit}) == 1
        build_population([jobs[i] for i in unit])  # raises if the columns were mixed
