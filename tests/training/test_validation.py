"""Model selection on validation days inside the training range, never on the test period."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rewts.agents.ddqn import DDQNAgent, DQNSettings
from rewts.config.models import Config, TradingEnvConfig
from rewts.env import TradingEnv, build_env_data
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame
from rewts.errors import TrainingError
from rewts.training.jobs import GLOBAL_CHUNK, run_job
from rewts.training.runner import build_jobs, validation_split

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_global_agent_holds_out_the_end_of_the_training_range():
    assert validation_split("X", GLOBAL_CHUNK, 30, 1500, 1500, 252) == (30, 1248, 1249, 1500)


def test_a_chunk_validates_on_the_days_after_it_and_the_last_on_its_own_tail():
    # chunk 0 of 400 days: a quarter chunk (100) right after it
    assert validation_split("X", 0, 30, 429, 1500, 252) == (30, 429, 430, 529)
    # the last chunk: nothing after it inside the training range, so its own tail
    assert validation_split("X", 3, 1101, 1500, 1500, 252) == (1101, 1400, 1401, 1500)


def test_validation_zero_turns_selection_off_and_short_ranges_hold_out_less():
    assert validation_split("X", GLOBAL_CHUNK, 30, 1500, 1500, 0) == (30, 1500, -1, -1)
    # at most a quarter of a short range is held out
    assert validation_split("X", GLOBAL_CHUNK, 30, 300, 300, 252) == (30, 233, 234, 300)
    # a last chunk too short to hold anything out keeps its last episode
    assert validation_split("X", 4, 1456, 1500, 1500, 252) == (1456, 1500, -1, -1)
    with pytest.raises(TrainingError, match="only 2 days"):
        validation_split("X", 0, 10, 11, 1500, 252)


def test_jobs_never_validate_past_the_training_range(cfg: Config, dataset) -> None:
    cfg = cfg.model_copy(
        update={
            "rewts": cfg.rewts.model_copy(update={"llm_guidance": False, "validation_days": 40})
        }
    )
    jobs = build_jobs(cfg, dataset, None)
    for job in jobs:
        last_train_day = job.data.dates[job.end] if job.val_end < 0 else job.data.dates[job.val_end]
        assert last_train_day <= np.datetime64(cfg.split.train_end)
        assert job.has_validation
        assert not (job.start <= job.val_start <= job.end)  # disjoint from its training days


def test_learn_keeps_the_weights_of_the_best_validation_episode():
    frame = synthetic_frame(200, seed=5)
    data = build_env_data("SYN", frame, SYNTHETIC_FEATURES, window=5, train_range=(0, 150))
    env = TradingEnv(data, TradingEnvConfig(), start=5, end=150)
    agent = DDQNAgent(data.obs_dim, 2, DQNSettings(hidden_dims=(8,), learning_starts=16), seed=2)
    scores = iter([1.0, 5.0, 2.0, 0.5])
    snapshots = []

    def validate(a: DDQNAgent) -> float:
        snapshots.append({k: v.clone() for k, v in a.online.state_dict().items()})
        return next(scores)

    curves = agent.learn(env, 4, validate=validate)
    assert agent.selected_episode == 2
    assert list(curves["validation"]) == [1.0, 5.0, 2.0, 0.5]
    for key, value in agent.online.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][key])
        torch.testing.assert_close(agent.target.state_dict()[key], snapshots[1][key])


def test_selection_is_identical_whatever_the_test_period_holds(cfg: Config, dataset, tmp_path):
    """Scramble every row after the training range: the same episode and weights are kept."""
    cfg = cfg.model_copy(
        update={
            "tickers": ["AAA"],
            "rewts": cfg.rewts.model_copy(
                update={"llm_guidance": False, "validation_days": 40, "episodes_per_chunk": 4}
            ),
        }
    )
    frame = dataset.frames["AAA"]
    cut = int(np.searchsorted(frame.index, np.datetime64(cfg.split.train_end), side="right"))
    scrambled = frame.copy()
    rng = np.random.default_rng(0)
    tail = scrambled.iloc[cut:].to_numpy()
    scrambled.iloc[cut:] = tail[rng.permutation(len(tail))] * 3.0
    other = replace(dataset, frames={"AAA": scrambled})

    def train(ds, folder: Path) -> tuple[dict, dict]:
        job = next(j for j in build_jobs(cfg, ds, None) if j.chunk == GLOBAL_CHUNK)
        job = replace(job, out_dir=str(folder))
        result = run_job(job)
        agent, _ = DDQNAgent.load(Path(result.path) / "model.pt")
        meta = __import__("json").loads((Path(result.path) / "meta.json").read_text())
        return agent.online.state_dict(), meta["metrics"]

    weights_a, metrics_a = train(dataset, tmp_path / "a")
    weights_b, metrics_b = train(other, tmp_path / "b")
    assert metrics_a["selected_episode"] == metrics_b["selected_episode"]
    assert metrics_a["validation_sharpe"] == metrics_b["validation_sharpe"]
    for key in weights_a:
        torch.testing.assert_close(weights_a[key], weights_b[key], rtol=0, atol=0)
