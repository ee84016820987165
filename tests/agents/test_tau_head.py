"""The tau head: a linear path from tau to each action's Q-value next to the MLP, so that the
weight decay that keeps the MLP from memorizing market features does not also erase the
guidance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rewts.agents import DDQNAgent, DQNSettings
from rewts.agents.network import QNetwork
from rewts.agents.population import Population
from rewts.config.models import TradingEnvConfig
from rewts.env import TradingEnv, build_env_data
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame
from rewts.errors import TrainingError

from .helpers import TINY, hit_rate

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_head_adds_tau_times_its_weight_to_the_mlp() -> None:
    net = QNetwork(6, 2, (8,), tau_index=4)
    with torch.no_grad():
        net.tau_weight.copy_(torch.tensor([0.5, -2.0]))
    obs = torch.randn(5, 6)
    expected = net.net(obs) + obs[:, 4:5] * torch.tensor([0.5, -2.0])
    torch.testing.assert_close(net(obs), expected)


def test_the_head_leaves_the_mlps_initial_weights_as_they_were() -> None:
    torch.manual_seed(3)
    plain = QNetwork(6, 2, (8, 8))
    torch.manual_seed(3)
    headed = QNetwork(6, 2, (8, 8), tau_index=5)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(headed.state_dict()[key], value, rtol=0, atol=0)
    assert torch.count_nonzero(headed.tau_weight) == 0
    with pytest.raises(ValueError, match="outside"):
        QNetwork(6, 2, (8,), tau_index=6)


def _noisy_tau_env() -> tuple[TradingEnv, int]:
    """A random walk whose tau tells the next move right on 80 % of days (0.8 hit rate at most)."""
    frame = synthetic_frame(260, seed=5, pattern="random")
    close = frame["close"].to_numpy()
    move = np.zeros(len(close))
    move[:-1] = np.sign(close[1:] - close[:-1])
    wrong = np.random.default_rng(0).random(len(close)) < 0.2
    tau = np.where(wrong, -move, move) * 0.3
    data = build_env_data("SYN", frame, SYNTHETIC_FEATURES, window=5, train_range=(0, 200), tau=tau)
    cfg = TradingEnvConfig(max_drawdown_limit=None, transaction_cost=0.0)
    assert data.tau_index is not None
    return TradingEnv(data, cfg, start=10, end=200), data.tau_index


def test_with_heavy_weight_decay_only_the_head_keeps_an_informative_tau() -> None:
    """Decay 0.1 (on every weight, the head's too) flattens the MLP, and an agent without the
    head falls to a coin's hit rate; with the head it still follows tau (0.8 is the most tau
    allows): one weight pays far less for an effect than a path through decayed layers."""
    env, tau_index = _noisy_tau_env()
    hits = {}
    for head in ("none", "linear"):
        settings = replace(TINY, weight_decay=0.1, tau_head=head)
        agent = DDQNAgent(env.observation_space.shape[0], 2, settings, seed=0, tau_index=tau_index)
        agent.learn(env, 8)
        hits[head] = hit_rate(env, agent.act)
    assert hits["linear"] >= 0.75, hits
    assert hits["none"] <= 0.6, hits


def test_an_rl_only_agent_has_no_head_and_checkpoints_keep_it(tmp_path) -> None:
    settings = replace(TINY, tau_head="linear")
    assert DDQNAgent(6, 2, settings, seed=1).online.tau_index is None  # no tau column
    assert DDQNAgent(6, 2, TINY, seed=1, tau_index=5).online.tau_index is None  # head off
    agent = DDQNAgent(6, 2, settings, seed=1, tau_index=5)
    with torch.no_grad():
        agent.online.tau_weight.copy_(torch.tensor([0.3, -0.7]))
    loaded, _ = DDQNAgent.load(agent.save(tmp_path / "model.pt"))
    assert loaded.tau_index == 5
    obs = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.greedy_q(obs), agent.greedy_q(obs))


def _population_data(tau_seed: int):
    frame = synthetic_frame(400, seed=3)
    tau = np.random.default_rng(tau_seed).uniform(-1, 1, 400)
    return build_env_data(
        "SYN", frame, SYNTHETIC_FEATURES, window=5, train_range=(0, 300), tau=tau,
        feature_set="compact",
    )  # fmt: skip


def test_a_population_of_one_with_a_head_is_the_single_agent() -> None:
    settings = DQNSettings(
        hidden_dims=(16, 16), learning_starts=40, batch_size=16, buffer_size=2000,
        weight_decay=0.05, grad_clip=0.5, target_update_freq=25, tau_head="linear",
    )  # fmt: skip
    env_cfg = TradingEnvConfig()
    data = _population_data(1)
    env = TradingEnv(data, env_cfg, start=70, end=300, reward_scale=0.02)
    alone = DDQNAgent(data.obs_dim, 2, settings, seed=7, tau_index=data.tau_index)
    curves = alone.learn(env, 3)
    pop = Population([data], [7], settings, env_cfg, start=70, end=300, reward_scale=0.02)
    (batched,) = pop.learn(3)
    np.testing.assert_array_equal(curves["return"].to_numpy(), batched["return"].to_numpy())
    member = pop.member(0)
    assert member.tau_index == data.tau_index
    expected, got = alone.online.state_dict(), member.online.state_dict()
    assert expected.keys() == got.keys() and "tau_weight" in got
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-5)
    assert torch.count_nonzero(got["tau_weight"]) > 0  # the head did learn something
    obs = data.obs[100:140]
    np.testing.assert_allclose(pop.q_values(0, obs), alone.greedy_q(obs), rtol=0, atol=1e-5)


def test_a_population_refuses_members_that_read_tau_from_different_columns() -> None:
    with_tau = _population_data(1)
    moved = replace(with_tau, tau_index=0)
    with pytest.raises(TrainingError, match="one column"):
        Population([with_tau, moved], [1, 2], TINY, TradingEnvConfig(), start=70, end=300)
