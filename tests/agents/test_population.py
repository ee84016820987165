"""A population of agents trained as one batched computation: a population of one is the
single agent, and an agent's result never depends on the others in its population."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rewts.agents.ddqn import DDQNAgent, DQNSettings
from rewts.agents.population import Population, population_supported
from rewts.config.models import TradingEnvConfig
from rewts.env import TradingEnv, build_env_data
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame
from rewts.errors import TrainingError

#: batched and single matrix products round differently in the last bits of float32
WEIGHT_TOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")


def _data(seed: int = 3, tau_seed: int | None = None):
    frame = synthetic_frame(400, seed=seed)
    tau = None if tau_seed is None else np.random.default_rng(tau_seed).uniform(-1, 1, 400)
    return build_env_data(
        "SYN", frame, SYNTHETIC_FEATURES, window=5, train_range=(0, 300), tau=tau,
        feature_set="compact",
    )  # fmt: skip


SETTINGS = DQNSettings(
    hidden_dims=(16, 16),
    learning_starts=40,
    batch_size=16,
    buffer_size=2000,
    sticky_actions=0.1,
    weight_decay=1e-4,
    grad_clip=0.5,
    target_update_freq=25,
)
ENV = TradingEnvConfig()


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=WEIGHT_TOL)


def test_a_population_of_one_is_the_single_agent():
    """Same actions (hence returns, equity and epsilon, exactly) and the same weights up to
    float32 rounding: the batched product (bmm) and nn.Linear's (addmm) round differently."""
    data = _data()
    env = TradingEnv(data, ENV, start=70, end=300, reward_scale=0.02)
    alone = DDQNAgent(data.obs_dim, 2, SETTINGS, seed=7)
    curves = alone.learn(env, 3)
    pop = Population([data], [7], SETTINGS, ENV, start=70, end=300, reward_scale=0.02)
    (batched,) = pop.learn(3)
    for col in ("return", "epsilon", "final_equity", "steps"):
        np.testing.assert_array_equal(curves[col].to_numpy(), batched[col].to_numpy(), err_msg=col)
    np.testing.assert_allclose(curves["loss"], batched["loss"], rtol=1e-4)
    member = pop.member(0)
    _assert_same_weights(alone.online.state_dict(), member.online.state_dict())
    assert (member.steps, member.updates) == (alone.steps, alone.updates)


def test_an_agent_in_a_population_trains_as_it_would_alone():
    """Different seeds and different observations (LLM+RL next to a placebo): each agent's
    curves and weights are those of training it by itself."""
    datas = [_data(tau_seed=1), _data(tau_seed=2), _data(tau_seed=1)]
    seeds = [11, 12, 13]
    pop = Population(datas, seeds, SETTINGS, ENV, start=70, end=300, reward_scale=0.02)
    together = pop.learn(2, validation_rows=np.arange(301, 360))
    for k in range(3):
        solo = Population(
            [datas[k]], [seeds[k]], SETTINGS, ENV, start=70, end=300, reward_scale=0.02
        )
        (alone,) = solo.learn(2, validation_rows=np.arange(301, 360))
        np.testing.assert_array_equal(together[k]["return"], alone["return"])
        np.testing.assert_allclose(together[k]["validation"], alone["validation"], rtol=1e-6)
        assert pop.selected_episode[k] == solo.selected_episode[0]
        _assert_same_weights(pop.member(k).online.state_dict(), solo.member(0).online.state_dict())
    # and the agents did differ from each other (the test could fail)
    assert not np.array_equal(together[0]["return"], together[1]["return"])


def test_validation_keeps_each_agents_own_best_episode():
    datas = [_data(), _data()]
    pop = Population(datas, [1, 2], SETTINGS, ENV, start=70, end=300, reward_scale=0.02)
    curves = pop.learn(4, validation_rows=np.arange(301, 380))
    for k in range(2):
        best = int(curves[k]["validation"].to_numpy().argmax()) + 1
        assert pop.selected_episode[k] == best
        score = pop.score(k, np.arange(301, 380)).sharpe
        assert score == pytest.approx(curves[k]["validation"].max(), rel=1e-6)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"network": "tdqn"}, "tdqn network"),
        ({"dropout": 0.2}, "dropout"),
    ],
)
def test_what_a_population_cannot_train_is_refused_with_the_reason(change, why):
    settings = replace(SETTINGS, **change)
    assert why in population_supported(settings, ENV, random_start=False)
    with pytest.raises(TrainingError, match="cannot train"):
        Population([_data()], [1], settings, ENV, start=70, end=300)
    assert population_supported(SETTINGS, ENV, random_start=True) == "random episode starts"
    assert population_supported(SETTINGS, ENV.model_copy(update={"reward": "risk_adjusted"}), False)


def test_members_must_share_prices_and_width():
    with pytest.raises(TrainingError, match="same prices"):
        Population([_data(seed=1), _data(seed=2)], [1, 2], SETTINGS, ENV, start=70, end=300)
    with pytest.raises(TrainingError, match="observation width"):
        Population([_data(), _data(tau_seed=1)], [1, 2], SETTINGS, ENV, start=70, end=300)
