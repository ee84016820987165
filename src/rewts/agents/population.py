"""A population of K Double DQN agents trained as one batched computation.

On a CPU a small network's training step is overhead, not arithmetic: one agent with a 64-64
network does a few hundred updates per second whatever the batch size. K agents that share a
ticker, a training range and an observation shape (different seeds, and the variants that see
the same rows: LLM+RL and the placebos) can share that overhead: their weights are stacked
along a leading dimension and every layer is one batched matrix product (``torch.bmm``),
the environment is stepped for all K books at once through the vectorized accounting, and the
replay buffers are one preallocated array.

The agents stay independent: each has its own initial weights (``torch.manual_seed(seed)`` and
the same layer construction as :class:`~rewts.agents.network.QNetwork`), its own NumPy
generator for exploration and sampling (drawn in the same order as :class:`DDQNAgent`), its own
replay slice, its own target network slice and its own gradient-norm clip. The loss is the sum
of the agents' own mean losses, so no gradient crosses agents; Adam is elementwise, so the
shared optimizer is K independent optimizers. An agent's result therefore depends only on its
own seed and inputs, and a population of one reproduces :class:`DDQNAgent`
(``tests/agents/test_population.py``).

One difference from the single agent, documented rather than hidden: a book that goes bust
(equity to zero, which the margin rule leaves to a one-day jump larger than the margin) stays
flat until the end of the pass instead of ending its episode there, since the K books move in
step.

What a population cannot do falls back to one agent at a time (:func:`population_supported`):
random episode starts (books would fall out of step), the ``tdqn`` network (batch norm) and
dropout (torch's dropout draws from one global generator), the risk-adjusted reward and a
drawdown stop in training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from rewts.agents.ddqn import DDQNAgent, DQNSettings, _adam, resolve_device, sharpe
from rewts.agents.network import QNetwork
from rewts.agents.replay import sample_indices
from rewts.config.models import TradingEnvConfig
from rewts.env.accounting import Rules, trade_step
from rewts.env.evaluation import PolicyScore, score_policy
from rewts.env.features import EnvData
from rewts.env.trading import action_targets
from rewts.errors import TrainingError


def population_supported(
    settings: DQNSettings, env_cfg: TradingEnvConfig, random_start: bool
) -> str:
    """Empty when a population can train these settings; else why not (for the log)."""
    if random_start:
        return "random episode starts"
    if settings.network != "mlp" or settings.dropout > 0:
        return f"the {settings.network} network with dropout {settings.dropout}"
    if env_cfg.reward != "return":
        return f"the {env_cfg.reward} reward"
    if env_cfg.drawdown_stop_in_training and env_cfg.max_drawdown_limit is not None:
        return "a drawdown stop in training"
    return ""


class StackedMLP(nn.Module):
    """K independent MLPs (Linear + ReLU) evaluated as one: input ``(K, B, in)``; with their
    tau heads when they have them (all or none, at one column)."""

    def __init__(self, networks: Sequence[QNetwork]) -> None:
        super().__init__()
        self.tau_index = networks[0].tau_index
        if self.tau_index is not None:
            self.tau_weight = nn.Parameter(
                torch.stack([net.tau_weight.detach()[None, :] for net in networks]).contiguous()
            )
        layers = [[m for m in net.net if isinstance(m, nn.Linear)] for net in networks]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].weight.detach().t() for ls in layers]).contiguous())
            for i in range(len(layers[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].bias.detach()[None, :] for ls in layers]).contiguous())
            for i in range(len(layers[0]))
        )

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) per layer as plain tensors: iterating a ParameterList on every call
        costs more than the arithmetic of a small network."""
        return list(zip(self.weights, self.biases, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = self.__dict__.get("_layers") or self.__dict__.setdefault("_layers", self.layers())
        last = len(layers) - 1
        q = x
        for i, (w, b) in enumerate(layers):
            q = torch.bmm(q, w)  # then the bias in place: baddbmm measured 3x slower on CPU
            q += b
            if i < last:
                q = F.relu(q, inplace=True)
        if self.tau_index is not None:
            q += x[:, :, self.tau_index : self.tau_index + 1] * self.tau_weight
        return q

    def member_q(self, k: int, obs: torch.Tensor) -> torch.Tensor:
        """Agent ``k``'s Q-values of ``(N, in)`` observations."""
        q = obs
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            q = torch.addmm(b[k], q, w[k])
            if i < last:
                q = F.relu(q)
        if self.tau_index is not None:
            q = q + obs[:, self.tau_index : self.tau_index + 1] * self.tau_weight[k]
        return q

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Agent ``k``'s weights as a :class:`QNetwork` state dict (Linear layers at 0, 2, ...)."""
        head = {} if self.tau_index is None else {"tau_weight": self.tau_weight[k, 0].detach()}
        return {
            **{name: value.clone().cpu() for name, value in head.items()},
            **{
                f"net.{2 * i}.weight": w[k].detach().t().contiguous().cpu()
                for i, w in enumerate(self.weights)
            },
            **{
                f"net.{2 * i}.bias": b[k, 0].detach().clone().cpu()
                for i, b in enumerate(self.biases)
            },
        }


def _clip_per_agent(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each agent's own gradients (the leading dimension)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch.stack([g.reshape(g.shape[0], -1).pow(2).sum(dim=1) for g in grads]).sum(dim=0)
    coef = torch.clamp(max_norm / (norms.sqrt() + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))


class Population:
    """K agents on the same prices and training rows, each with its own observation matrix
    (same width), seed and settings-identical learner."""

    def __init__(
        self,
        datas: Sequence[EnvData],
        seeds: Sequence[int],
        settings: DQNSettings,
        env_cfg: TradingEnvConfig,
        *,
        start: int,
        end: int,
        reward_scale: float = 1.0,
        device: str | torch.device = "cpu",
    ) -> None:
        if len(datas) != len(seeds) or not datas:
            raise TrainingError("a population needs one observation matrix per seed")
        dims = {d.obs_dim for d in datas}
        if len(dims) != 1:
            raise TrainingError(f"a population's agents must share one observation width: {dims}")
        why = population_supported(settings, env_cfg, random_start=False)
        if why:
            raise TrainingError(f"a population cannot train with {why}")
        first = datas[0]
        if any(not np.array_equal(d.prices, first.prices) for d in datas[1:]):
            raise TrainingError("a population's agents must trade the same prices")
        if len({d.tau_index for d in datas}) != 1:
            raise TrainingError("a population's agents must read tau from one column")
        if not (first.first_valid <= start < end < len(first.prices)):
            raise TrainingError(f"rows {start}..{end} are outside the data")
        self.k = len(datas)
        self.settings = settings
        self.seeds = [int(s) for s in seeds]
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.obs = np.stack([d.obs for d in datas])  # (K, T, D)
        self.pos_idx = np.array([d.position_index for d in datas])
        self.prices = first.prices
        self.obs_dim = first.obs_dim
        self.start, self.end = int(start), int(end)
        self.reward_scale = float(reward_scale)
        self.rules = Rules.from_config(env_cfg)
        self.targets = action_targets(env_cfg.actions)
        self.n_actions = len(self.targets)
        self.tau_index = settings.head_column(first.tau_index)
        networks = []
        dims = settings.hidden_dims
        for seed in self.seeds:  # the same draws as DDQNAgent.__init__
            torch.manual_seed(seed)
            networks.append(QNetwork(self.obs_dim, self.n_actions, dims, tau_index=self.tau_index))
            QNetwork(self.obs_dim, self.n_actions, dims, tau_index=self.tau_index)  # its target
        self.online = StackedMLP(networks).to(self.device)
        self.target = StackedMLP(networks).to(self.device)
        self.target.requires_grad_(False)
        self.optimizer = _adam(
            self.online.parameters(), settings.learning_rate, settings.weight_decay
        )
        self.rngs = [np.random.default_rng(seed) for seed in self.seeds]
        cap = settings.buffer_size
        self.buf_obs = np.zeros((self.k, cap, self.obs_dim), np.float32)
        self.buf_next = np.zeros((self.k, cap, self.obs_dim), np.float32)
        self.buf_actions = np.zeros((self.k, cap), np.int64)
        self.buf_rewards = np.zeros((self.k, cap), np.float32)
        self.buf_dones = np.zeros((self.k, cap), np.float32)
        self._offsets = (np.arange(self.k) * cap)[:, None]
        self.size = self._next = 0
        self.steps = self.updates = self.episodes = 0
        self.selected_episode = [0] * self.k

    # ------------------------------------------------------------------ acting

    def _observe(self, t: int, held: np.ndarray) -> np.ndarray:
        obs = self.obs[:, t, :].copy()
        obs[np.arange(self.k), self.pos_idx] = held
        return obs

    @torch.inference_mode()
    def _greedy(self, obs: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(obs).to(self.device).unsqueeze(1)
        return self.online(x)[:, 0, :].argmax(dim=-1).cpu().numpy()

    @torch.inference_mode()
    def q_values(self, k: int, obs: np.ndarray) -> np.ndarray:
        """Agent ``k``'s Q-values of a batch of its observations, ``(N, n_actions)``."""
        x = torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32)).to(self.device)
        return self.online.member_q(k, x).cpu().numpy()

    # ---------------------------------------------------------------- learning

    def _update(self) -> torch.Tensor:
        s = self.settings
        idx = np.stack([sample_indices(rng, self.size, s.batch_size) for rng in self.rngs])
        flat = (idx + self._offsets).ravel()  # one take per array beats 2-D fancy indexing
        shape = (self.k, s.batch_size)
        to = self.device

        def take(a: np.ndarray, width: int | None = None) -> torch.Tensor:
            rows = a.reshape(-1, width) if width else a.reshape(-1)
            out = np.take(rows, flat, axis=0)
            return torch.from_numpy(out.reshape(*shape, width) if width else out.reshape(shape)).to(
                to
            )

        obs = take(self.buf_obs, self.obs_dim)
        next_obs = take(self.buf_next, self.obs_dim)
        actions = take(self.buf_actions)
        rewards = take(self.buf_rewards)
        dones = take(self.buf_dones)
        q_sa = self.online(obs).gather(2, actions.unsqueeze(2)).squeeze(2)
        with torch.no_grad():
            next_a = self.online(next_obs).argmax(dim=2, keepdim=True)
            next_q = self.target(next_obs).gather(2, next_a).squeeze(2)
            y = rewards + s.gamma * (1.0 - dones) * next_q
        losses = F.smooth_l1_loss(q_sa, y, reduction="none").mean(dim=1)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        if s.grad_clip is not None:
            _clip_per_agent(list(self.online.parameters()), s.grad_clip)
        self.optimizer.step()
        self.updates += 1
        if self.updates % s.target_update_freq == 0:
            self.target.load_state_dict(self.online.state_dict())
        return losses.detach()

    def _snapshot(self, k: int) -> list[torch.Tensor]:
        return [p[k].detach().clone() for p in self.online.parameters()]

    def _restore(self, k: int, state: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, q, value in zip(
                self.online.parameters(), self.target.parameters(), state, strict=True
            ):
                p[k].copy_(value)
                q[k].copy_(value)

    def score(self, k: int, rows: np.ndarray) -> PolicyScore:
        """Agent ``k``'s greedy policy over consecutive ``rows`` (training or validation days)."""

        def q_for(position: float, r: np.ndarray) -> np.ndarray:
            block = self.obs[k, r].copy()
            block[:, self.pos_idx[k]] = position
            return self.q_values(k, block)

        return score_policy(q_for, self.prices, rows, self.targets, self.rules)

    def learn(
        self,
        episodes: int,
        *,
        validation_rows: np.ndarray | None = None,
        on_episode: Callable[[int], None] | None = None,
    ) -> list[pd.DataFrame]:
        """Train every agent for ``episodes`` passes over rows ``start .. end-1``; one curve
        frame per agent (the columns of :meth:`DDQNAgent.learn`). With ``validation_rows`` each
        agent keeps the weights of its own best validation episode."""
        s = self.settings
        k_all = np.arange(self.k)
        per_episode = self.end - self.start
        budget = self.steps + episodes * per_episode
        sticky = s.sticky_actions
        best: list[tuple[float, int, list[torch.Tensor]] | None] = [None] * self.k
        rows: list[list[dict[str, float]]] = [[] for _ in range(self.k)]
        for _ in range(episodes):
            cash = np.full(self.k, self.rules.initial_balance)
            shares = np.zeros(self.k)
            held = np.zeros(self.k)
            peak = np.full(self.k, self.rules.initial_balance)
            alive = np.ones(self.k, dtype=bool)
            prev: np.ndarray | None = None
            total = np.zeros(self.k)
            daily = np.zeros((self.k, per_episode))
            losses: list[torch.Tensor] = []
            epsilon = s.epsilon.value(self.episodes, self.steps, budget)
            per_step = s.epsilon.kind != "episode"
            equity = cash.copy()
            obs = self._observe(self.start, held)
            for i, t in enumerate(range(self.start, self.end)):
                if per_step:
                    epsilon = s.epsilon.value(self.episodes, self.steps, budget)
                actions = np.empty(self.k, dtype=np.int64)
                greedy = None
                for k, rng in enumerate(self.rngs):  # each agent's draws, in DDQNAgent's order
                    if prev is not None and sticky and rng.random() < sticky:
                        actions[k] = prev[k]
                    elif rng.random() < epsilon:
                        actions[k] = int(rng.integers(self.n_actions))
                    else:
                        if greedy is None:
                            greedy = self._greedy(obs)
                        actions[k] = greedy[k]
                price = self.prices[t]
                step = trade_step(
                    cash, shares, held, peak, alive, price, self.targets[actions], self.rules
                )
                cash, shares, held = (
                    step.cash,
                    step.shares,
                    np.asarray(step.target, dtype=np.float64),
                )
                peak, alive = step.peak, step.alive
                mark = step.mark
                next_mark = cash + shares * self.prices[t + 1]
                ret = np.where(mark > 0, next_mark / np.where(mark > 0, mark, 1.0) - 1.0, 0.0)
                reward = np.clip(ret, -1.0, 1.0) / self.reward_scale
                next_obs = self._observe(t + 1, held)
                terminated = ~alive
                slot = self._next
                self.buf_obs[:, slot] = obs
                self.buf_next[:, slot] = next_obs
                self.buf_actions[:, slot] = actions
                self.buf_rewards[:, slot] = reward
                self.buf_dones[:, slot] = terminated
                self._next = (slot + 1) % s.buffer_size
                self.size = min(self.size + 1, s.buffer_size)
                self.steps += 1
                total += reward
                daily[:, i] = ret
                equity = mark - step.cost  # after this close's trade (DDQNAgent's info["equity"])
                if (
                    self.steps >= s.learning_starts
                    and self.size >= s.batch_size
                    and self.steps % s.train_freq == 0
                ):
                    losses.append(self._update())
                obs, prev = next_obs, actions
            self.episodes += 1
            loss = (
                torch.stack(losses).mean(dim=0).cpu().numpy() if losses else np.full(self.k, np.nan)
            )
            for k in k_all:
                row = {
                    "episode": self.episodes,
                    "steps": self.steps,
                    "return": float(total[k]),
                    "sharpe": sharpe(daily[k]),
                    "final_equity": float(equity[k]),
                    "loss": float(loss[k]),
                    "epsilon": epsilon,
                }
                if validation_rows is not None:
                    score = self.score(int(k), validation_rows).sharpe
                    row["validation"] = score
                    current = best[k]
                    if math.isfinite(score) and (current is None or score > current[0]):
                        best[k] = (score, self.episodes, self._snapshot(int(k)))
                rows[k].append(row)
            if on_episode is not None:
                on_episode(self.episodes)
        for k in k_all:
            self.selected_episode[k] = self.episodes
            chosen = best[k]
            if chosen is not None:
                self.selected_episode[k] = chosen[1]
                self._restore(int(k), chosen[2])
        return [pd.DataFrame(r) for r in rows]

    def member(self, k: int) -> DDQNAgent:
        """Agent ``k`` as a plain :class:`DDQNAgent` (what checkpoints and the backtest use)."""
        agent = DDQNAgent(
            self.obs_dim,
            self.n_actions,
            self.settings,
            seed=self.seeds[k],
            device="cpu",
            tau_index=self.tau_index,
        )
        state = self.online.member_state(k)
        agent.online.load_state_dict(state)
        agent.target.load_state_dict(state)
        agent.steps, agent.updates, agent.episodes = self.steps, self.updates, self.episodes
        agent.selected_episode = self.selected_episode[k]
        return agent
