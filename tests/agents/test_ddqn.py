"""The Double DQN: it learns a trivially learnable market, seeds reproduce, checkpoints load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rewts.agents import (
    DDQNAgent,
    DQNSettings,
    EpsilonSchedule,
    ReplayBuffer,
    apply_preset,
)
from rewts.config.models import Config, TradingEnvConfig
from rewts.env import TradingEnv, build_env_data
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame
from rewts.errors import TrainingError

from .helpers import TINY, hit_rate


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _env(pattern: str = "alternating", seed: int = 0) -> TradingEnv:
    frame = synthetic_frame(260, seed=seed, pattern=pattern)
    data = build_env_data("SYN", frame, SYNTHETIC_FEATURES, window=5, train_range=(0, 200))
    cfg = TradingEnvConfig(max_drawdown_limit=None, transaction_cost=0.0)
    return TradingEnv(data, cfg, start=10, end=200)


def test_learns_an_alternating_market_far_better_than_random() -> None:
    env = _env()
    agent = DDQNAgent(env.observation_space.shape[0], 2, TINY, seed=1)
    curves = agent.learn(env, 8)
    greedy = hit_rate(env, lambda o: agent.act(o))
    rng = np.random.default_rng(0)
    random_rate = np.mean([hit_rate(env, lambda o: int(rng.integers(2))) for _ in range(3)])
    assert greedy >= 0.95, curves
    assert random_rate < 0.65
    assert curves["sharpe"].iloc[-1] > curves["sharpe"].iloc[0]
    greedy_eval = agent.evaluate(env)
    assert greedy_eval["steps"] == 190 and greedy_eval["sharpe"] > 10


def test_same_seed_same_run_other_seed_other_run() -> None:
    def run(seed: int):
        env = _env("random", seed=3)
        agent = DDQNAgent(env.observation_space.shape[0], 2, TINY, seed=seed)
        curves = agent.learn(env, 2)
        return curves, agent.greedy_q(env.data.obs[10:50])

    c1, q1 = run(5)
    c2, q2 = run(5)
    _, q3 = run(6)
    np.testing.assert_array_equal(q1, q2)
    assert c1.equals(c2)
    assert not np.array_equal(q1, q3)


def test_greedy_q_is_vectorized_and_checks_the_width() -> None:
    agent = DDQNAgent(7, 3, TINY, seed=0)
    obs = np.random.default_rng(0).normal(size=(100, 7)).astype(np.float32)
    q = agent.greedy_q(obs)
    assert q.shape == (100, 3)
    np.testing.assert_allclose(q[5], agent.greedy_q(obs[5]), rtol=1e-6)
    assert agent.act(obs).shape == (100,)
    with pytest.raises(TrainingError, match="expects 7"):
        agent.greedy_q(np.zeros((2, 8)))


def test_save_load_round_trip_is_atomic(tmp_path) -> None:
    agent = DDQNAgent(6, 2, TINY, seed=2)
    path = agent.save(tmp_path / "a" / "model.pt", {"chunk": 3})
    loaded, meta = DDQNAgent.load(path)
    obs = np.ones((4, 6), dtype=np.float32)
    np.testing.assert_array_equal(loaded.greedy_q(obs), agent.greedy_q(obs))
    assert meta == {"chunk": 3} and loaded.settings == agent.settings
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]
    path.write_bytes(b"broken")
    with pytest.raises(TrainingError, match="retrain"):
        DDQNAgent.load(path)


def test_double_dqn_target_uses_online_argmax_and_target_values() -> None:
    agent = DDQNAgent(2, 2, DQNSettings(hidden_dims=(4,), gamma=0.5, grad_clip=None), seed=0)
    for net in (agent.online, agent.target):
        for p in net.parameters():
            torch.nn.init.zeros_(p)
    # online prefers action 1 everywhere; the target values action 1 at 3.0 and action 0 at 9.0
    agent.online.net[-1].bias.data = torch.tensor([0.0, 1.0])
    agent.target.net[-1].bias.data = torch.tensor([9.0, 3.0])
    from rewts.agents.replay import Batch

    batch = Batch(
        obs=np.zeros((1, 2), np.float32),
        actions=np.array([0]),
        rewards=np.array([1.0], np.float32),
        next_obs=np.zeros((1, 2), np.float32),
        dones=np.array([0.0], np.float32),
    )
    loss = agent.update(batch)
    # y = 1 + 0.5 * Q_target(s', argmax_a Q_online(s', a)) = 1 + 0.5 * 3 = 2.5; Q(s, 0) = 0
    assert loss == pytest.approx(2.5 - 0.5)  # Huber beyond 1: |d| - 0.5


def test_replay_buffer_wraps_and_samples() -> None:
    buf = ReplayBuffer(5, 2)
    for i in range(7):
        buf.add(np.full(2, i), i % 2, float(i), np.full(2, i + 1), i == 6)
    assert len(buf) == 5
    assert sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]
    batch = buf.sample(16, np.random.default_rng(0))
    assert batch.obs.shape == (16, 2) and batch.actions.dtype == np.int64
    np.testing.assert_array_equal(batch.next_obs, batch.obs + 1)


def test_epsilon_schedules() -> None:
    seed = EpsilonSchedule("episode", start=1.0, minimum=0.05, decay=0.5)
    assert seed.value(0, 999) == 1.0 and seed.value(2, 0) == 0.25 and seed.value(10, 0) == 0.05
    tdqn = EpsilonSchedule("step_exponential", start=1.0, minimum=0.01, decay_steps=10_000)
    assert tdqn.value(0, 10_000) == pytest.approx(0.01 + 0.99 * math.exp(-1))


def test_tdqn_preset_sets_the_published_values() -> None:
    cfg = apply_preset(Config(rewts={"preset": "tdqn"}))
    s = DQNSettings.from_config(cfg.rewts)
    assert (s.gamma, s.learning_rate, s.weight_decay, s.batch_size) == (0.4, 1e-4, 1e-6, 32)
    assert (s.buffer_size, s.target_update_freq, s.grad_clip, s.sticky_actions) == (
        100_000,
        1000,
        1.0,
        0.1,
    )
    assert s.epsilon.kind == "step_exponential" and s.epsilon.minimum == 0.01
    assert s.network == "tdqn" and s.hidden_dims == (512,) * 5
    env = cfg.trading_env
    assert (env.actions, env.transaction_cost, env.max_drawdown_limit) == (
        "long_short",
        0.001,
        None,
    )
    assert env.features == "tdqn" and cfg.backtest.single_agent == "global"
    # the default preset keeps the values as written; seed restores the upstream's
    assert apply_preset(Config()).rewts.gamma == Config().rewts.gamma == 0.5
    seed = apply_preset(Config(rewts={"preset": "seed"}))
    assert (seed.rewts.gamma, seed.rewts.epsilon_schedule, seed.rewts.epsilon_decay) == (
        0.995,
        "episode",
        0.998,
    )
    assert seed.rewts.hidden_dims == [256, 256, 128] and seed.rewts.validation_days == 0
    assert (seed.trading_env.features, seed.trading_env.reward_scale) == ("full", "none")
    assert (
        seed.trading_env.max_drawdown_limit == 0.15 and seed.backtest.single_agent == "last_chunk"
    )


def test_usable_by_stable_baselines3() -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    model = sb3.DQN(
        "MlpPolicy", _env(), learning_starts=10, buffer_size=500, policy_kwargs={"net_arch": [8]}
    )
    model.learn(50)
    action, _ = model.predict(_env().reset()[0], deterministic=True)
    assert int(action) in (0, 1)


def test_sticky_actions_repeat_the_previous_action() -> None:
    env = _env("random")
    sticky = DQNSettings(
        hidden_dims=(8,),
        learning_starts=10**9,
        sticky_actions=0.9,
        epsilon=EpsilonSchedule(decay=1.0, minimum=1.0),
    )
    agent = DDQNAgent(env.observation_space.shape[0], 2, sticky, seed=0)
    agent.learn(env, 1)
    actions = agent._buffer.actions[: agent.steps]
    switches = np.mean(actions[1:] != actions[:-1])
    # random actions switch half the time; repeating 90 % of them leaves ~5 %
    assert switches < 0.15


def test_learns_to_follow_a_tau_that_reveals_the_next_move() -> None:
    """A random walk is unpredictable from prices; a tau equal to the sign of the move from
    day t's close to day t+1's is the whole edge. Learning it also proves the timing: tau on
    row t reaches the decision executed at day t's close, whose reward is that very move."""
    frame = synthetic_frame(260, seed=5, pattern="random")
    close = frame["close"].to_numpy()
    leak = np.zeros(len(close))
    leak[:-1] = np.sign(close[1:] - close[:-1])
    data = build_env_data(
        "SYN", frame, SYNTHETIC_FEATURES, window=5, train_range=(0, 200), tau=leak
    )
    cfg = TradingEnvConfig(max_drawdown_limit=None, transaction_cost=0.0)
    env = TradingEnv(data, cfg, start=10, end=200)
    agent = DDQNAgent(env.observation_space.shape[0], 2, TINY, seed=0)
    agent.learn(env, 8)
    assert hit_rate(env, lambda o: agent.act(o)) >= 0.85  # random: ~0.5


def test_tdqn_network_acts_in_eval_mode_and_learns() -> None:
    env = _env()
    settings = DQNSettings(**{**TINY.__dict__, "network": "tdqn", "hidden_dims": (32, 32)})
    agent = DDQNAgent(env.observation_space.shape[0], 2, settings, seed=1)
    layers = [type(m).__name__ for m in agent.online.net]
    assert layers[:4] == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout"]
    obs = env.data.obs[10:40]
    np.testing.assert_array_equal(agent.greedy_q(obs), agent.greedy_q(obs))  # no dropout noise
    agent.learn(env, 8)
    assert agent.online.training  # learning happens in train mode
    assert hit_rate(env, lambda o: agent.act(o)) >= 0.9
