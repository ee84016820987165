"""Double DQN (van Hasselt et al., 2016) as used by Théate & Ernst, written to read like the
equations:

    a*      = argmax_a Q_online(s', a)
    y       = r + gamma * (1 - done) * Q_target(s', a*)
    loss    = Huber(Q_online(s, a) - y)

Adam with optional weight decay, gradient-norm clipping, a hard target copy every
``target_update_freq`` gradient updates, epsilon-greedy exploration with optional sticky actions,
and a replay buffer of preallocated arrays. Everything random draws from generators seeded by
the caller (``torch.manual_seed`` for the weights, a NumPy ``Generator`` for exploration and
sampling), so a seed reproduces a run on the same device and thread count.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from rewts.agents.network import QNetwork
from rewts.agents.replay import Batch, ReplayBuffer
from rewts.agents.schedules import EpsilonSchedule
from rewts.env.evaluation import annualized_sharpe as sharpe
from rewts.errors import TrainingError
from rewts.fileio import atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import gymnasium as gym

    from rewts.config.models import RewtsConfig

CHECKPOINT_FORMAT = 1
#: rows per forward pass in vectorized inference
INFERENCE_CHUNK = 65_536


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "rewts.device = cuda, but no CUDA device is available (use auto or cpu)"
        )
    return torch.device(device)


@dataclass(frozen=True)
class DQNSettings:
    """The hyper-parameters of one agent (from ``rewts.*``)."""

    hidden_dims: tuple[int, ...] = (256, 256, 128)
    gamma: float = 0.995
    learning_rate: float = 5e-4
    weight_decay: float = 0.0
    batch_size: int = 128
    buffer_size: int = 50_000
    #: counted in gradient updates (= environment steps when ``train_freq`` is 1)
    target_update_freq: int = 20
    grad_clip: float | None = 10.0
    learning_starts: int = 500
    train_freq: int = 1
    sticky_actions: float = 0.0
    epsilon: EpsilonSchedule = field(default_factory=EpsilonSchedule)
    #: ``mlp`` (Linear + ReLU) or ``tdqn`` (Linear + BatchNorm + LeakyReLU + Dropout 0.2)
    network: str = "mlp"
    #: ``mlp``: dropout after each hidden layer (0: none)
    dropout: float = 0.0
    #: ``linear``: tau also reaches the Q-values through one weight per action
    #: (:class:`~rewts.agents.network.QNetwork`); ``none``: only through the MLP
    tau_head: str = "none"

    @classmethod
    def from_config(cls, rewts: RewtsConfig) -> DQNSettings:
        return cls(
            hidden_dims=tuple(rewts.hidden_dims),
            gamma=rewts.gamma,
            learning_rate=rewts.learning_rate,
            weight_decay=rewts.weight_decay,
            batch_size=rewts.batch_size,
            buffer_size=rewts.buffer_size,
            target_update_freq=rewts.target_update_freq,
            grad_clip=rewts.grad_clip,
            learning_starts=rewts.learning_starts,
            train_freq=rewts.train_freq,
            sticky_actions=rewts.sticky_actions,
            network=rewts.network,
            dropout=rewts.dropout,
            tau_head=rewts.tau_head,
            epsilon=EpsilonSchedule(
                kind=rewts.epsilon_schedule,
                start=rewts.epsilon_start,
                minimum=rewts.epsilon_min,
                decay=rewts.epsilon_decay,
                decay_steps=rewts.epsilon_decay_steps,
                fraction=rewts.exploration_fraction,
            ),
        )

    def head_column(self, tau_index: int | None) -> int | None:
        """The observation column the tau head reads: tau's, when the head is on."""
        return tau_index if self.tau_head == "linear" else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden_dims"] = list(self.hidden_dims)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DQNSettings:
        data = dict(data)
        data.setdefault("dropout", 0.0)
        data.setdefault("tau_head", "none")  # checkpoints written before the head existed
        data["hidden_dims"] = tuple(data["hidden_dims"])
        data["epsilon"] = EpsilonSchedule(**data["epsilon"])
        return cls(**data)


@contextlib.contextmanager
def _eval_mode(net: QNetwork) -> Iterator[None]:
    """Evaluation mode while acting, for networks where it matters (batch norm, dropout)."""
    if not net.has_modes:
        yield
        return
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


def _adam(params: Any, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam, fused into one kernel where this torch build supports it (about 10 % faster)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _copy_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class DDQNAgent:
    """Online and target Q-networks, their optimizer, a replay buffer and the training loop."""

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        settings: DQNSettings | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
        tau_index: int | None = None,
    ) -> None:
        """``tau_index``: the observation column of tau; with ``settings.tau_head == "linear"``
        the network adds its linear tau head (ignored otherwise; RL-only has no tau)."""
        self.obs_dim, self.n_actions = int(obs_dim), int(n_actions)
        self.settings = settings or DQNSettings()
        self.tau_index = self.settings.head_column(tau_index)
        self.seed = int(seed)
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        torch.manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        dims, kind, drop = self.settings.hidden_dims, self.settings.network, self.settings.dropout
        head = self.tau_index
        self.online = QNetwork(self.obs_dim, self.n_actions, dims, kind, drop, head).to(self.device)
        self.target = QNetwork(self.obs_dim, self.n_actions, dims, kind, drop, head).to(self.device)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.target.eval()
        self.optimizer = _adam(
            self.online.parameters(), self.settings.learning_rate, self.settings.weight_decay
        )
        self._buffer: ReplayBuffer | None = None
        self.steps = 0
        self.updates = 0
        self.episodes = 0
        #: the episode whose weights the agent holds after ``learn`` (validation's pick)
        self.selected_episode = 0

    # ------------------------------------------------------------------ acting

    @torch.inference_mode()
    def greedy_q(self, obs: np.ndarray) -> np.ndarray:
        """Q-values ``(N, n_actions)`` of a batch of observations, in large vectorized passes."""
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        obs = obs.reshape(1, -1) if single else obs
        if obs.shape[-1] != self.obs_dim:
            raise TrainingError(
                f"observations have {obs.shape[-1]} features but the agent expects "
                f"{self.obs_dim} (was it trained with the same llm_guidance and window?)"
            )
        with _eval_mode(self.online):
            parts = [
                self.online(torch.from_numpy(obs[i : i + INFERENCE_CHUNK]).to(self.device)).cpu()
                for i in range(0, len(obs), INFERENCE_CHUNK)
            ]
        q = torch.cat(parts).numpy() if parts else np.zeros((0, self.n_actions), np.float32)
        return q[0] if single else q

    @torch.inference_mode()
    def _greedy_one(self, obs: np.ndarray) -> int:
        """The training loop's fast path: one observation, no checks, no copies on the CPU."""
        with _eval_mode(self.online):
            return int(self.online(torch.from_numpy(obs).to(self.device).unsqueeze(0)).argmax())

    def act(self, obs: np.ndarray, epsilon: float = 0.0) -> np.ndarray | int:
        """Greedy action(s) of one observation or a batch; epsilon-greedy when ``epsilon > 0``."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim == 1:
            if epsilon > 0 and self.rng.random() < epsilon:
                return int(self.rng.integers(self.n_actions))
            return int(np.argmax(self.greedy_q(obs)))
        actions = self.greedy_q(obs).argmax(axis=1)
        if epsilon > 0:
            explore = self.rng.random(len(actions)) < epsilon
            actions = np.where(
                explore, self.rng.integers(self.n_actions, size=len(actions)), actions
            )
        return actions

    # ---------------------------------------------------------------- learning

    def update(self, batch: Batch) -> float:
        """One Double DQN gradient step on a minibatch; returns the Huber loss."""
        s = self.settings
        obs = torch.from_numpy(batch.obs).to(self.device)
        next_obs = torch.from_numpy(batch.next_obs).to(self.device)
        actions = torch.from_numpy(batch.actions).to(self.device)
        rewards = torch.from_numpy(batch.rewards).to(self.device)
        dones = torch.from_numpy(batch.dones).to(self.device)
        q_sa = self.online(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        with torch.no_grad():  # outside the graph: backward only runs over the s half
            next_actions = self.online(next_obs).argmax(dim=1, keepdim=True)
            next_q = self.target(next_obs).gather(1, next_actions).squeeze(1)
            y = rewards + s.gamma * (1.0 - dones) * next_q
        loss = F.smooth_l1_loss(q_sa, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.online.parameters(), s.grad_clip)
        self.optimizer.step()
        self.updates += 1
        if self.updates % s.target_update_freq == 0:
            self.target.load_state_dict(self.online.state_dict())
        return float(loss.detach())

    def learn(
        self,
        env: gym.Env,
        episodes: int,
        *,
        on_episode: Callable[[dict[str, float]], None] | None = None,
        validate: Callable[[DDQNAgent], float] | None = None,
    ) -> pd.DataFrame:
        """Train for ``episodes`` episodes; one row of curves per episode.

        Columns: episode, steps, return (sum of rewards), sharpe (of the daily portfolio
        returns), final_equity, loss (mean over the episode's updates), epsilon (at the end),
        and with ``validate`` the validation score of the greedy policy after the episode.

        ``validate`` scores the greedy policy on held-out days (higher is better); the weights
        of the best-scoring episode are kept (``selected_episode``): model selection that never
        looks at the test period, because the caller only hands it validation days.
        """
        s = self.settings
        n_actions = int(env.action_space.n)
        if n_actions != self.n_actions:
            raise TrainingError(f"env has {n_actions} actions, agent {self.n_actions}")
        if self._buffer is None:
            self._buffer = ReplayBuffer(s.buffer_size, self.obs_dim)
        buffer, rng = self._buffer, self.rng
        per_episode = float(getattr(env, "expected_episode_steps", lambda: 0)() or 0)
        budget = self.steps + episodes * per_episode if per_episode else None
        if s.epsilon.kind == "linear_budget" and budget is None:
            raise TrainingError("the linear_budget schedule needs env.expected_episode_steps()")
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        rows = []
        for _ in range(episodes):
            obs, info = env.reset(seed=self.seed if self.episodes == 0 else None)
            prev_action: int | None = None
            total, losses, daily, equity = 0.0, [], [], float(info.get("equity", 0.0))
            epsilon = s.epsilon.value(self.episodes, self.steps, budget)
            per_step = s.epsilon.kind != "episode"
            done = False
            while not done:
                if per_step:
                    epsilon = s.epsilon.value(self.episodes, self.steps, budget)
                if prev_action is not None and s.sticky_actions and rng.random() < s.sticky_actions:
                    action = prev_action
                elif rng.random() < epsilon:
                    action = int(rng.integers(n_actions))
                else:
                    action = self._greedy_one(obs)
                next_obs, reward, terminated, truncated, info = env.step(action)
                buffer.add(obs, action, reward, next_obs, terminated)
                self.steps += 1
                total += reward
                daily.append(info.get("return", reward))
                equity = float(info.get("equity", equity))
                if (
                    self.steps >= s.learning_starts
                    and len(buffer) >= s.batch_size
                    and self.steps % s.train_freq == 0
                ):
                    losses.append(self.update(buffer.sample(s.batch_size, rng)))
                obs, prev_action = next_obs, action
                done = terminated or truncated
            self.episodes += 1
            row = {
                "episode": self.episodes,
                "steps": self.steps,
                "return": total,
                "sharpe": sharpe(np.asarray(daily)),
                "final_equity": equity,
                "loss": float(np.mean(losses)) if losses else float("nan"),
                "epsilon": epsilon,
            }
            if validate is not None:
                score = float(validate(self))
                row["validation"] = score
                if np.isfinite(score) and (best is None or score > best[0]):
                    best = (score, self.episodes, _copy_state(self.online))
            rows.append(row)
            if on_episode is not None:
                on_episode(row)
        self.selected_episode = self.episodes
        if best is not None:
            _, self.selected_episode, state = best
            self.online.load_state_dict(state)
            self.target.load_state_dict(state)
        return pd.DataFrame(rows)

    def evaluate(self, env: gym.Env, start: int | None = None) -> dict[str, float]:
        """One greedy episode (no exploration, no learning) from ``start`` (default: the
        environment's first day): its Sharpe, total log return, final equity and steps."""
        options = {"start": start if start is not None else getattr(env, "start", 0)}
        obs, info = env.reset(options=options)
        daily, equity, done = [], float(info.get("equity", 0.0)), False
        while not done:
            obs, reward, terminated, truncated, info = env.step(self._greedy_one(obs))
            daily.append(info.get("return", reward))
            equity = float(info.get("equity", equity))
            done = terminated or truncated
        returns = np.asarray(daily)
        return {
            "sharpe": sharpe(returns),
            "log_return": float(np.log1p(returns).sum()),
            "final_equity": equity,
            "steps": float(len(returns)),
        }

    # ------------------------------------------------------------ persistence

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write weights, settings and metadata atomically (:func:`rewts.fileio.atomic_write`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "obs_dim": self.obs_dim,
            "n_actions": self.n_actions,
            "seed": self.seed,
            "tau_index": self.tau_index,
            "settings": self.settings.to_dict(),
            "online": {k: v.cpu() for k, v in self.online.state_dict().items()},
            "target": {k: v.cpu() for k, v in self.target.state_dict().items()},
            "counters": {"steps": self.steps, "updates": self.updates, "episodes": self.episodes},
            "metadata": metadata or {},
        }
        atomic_write(path, lambda tmp: torch.save(payload, tmp))
        return path

    @classmethod
    def load(
        cls, path: str | Path, *, device: str | torch.device = "cpu"
    ) -> tuple[DDQNAgent, dict[str, Any]]:
        """An agent (ready for inference) and the metadata it was saved with."""
        path = Path(path)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise TrainingError(f"no checkpoint at {path} (run `rewts train` first)") from None
        except Exception as exc:  # a truncated or foreign file
            raise TrainingError(f"checkpoint {path} cannot be read ({exc}); retrain it") from exc
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise TrainingError(f"checkpoint {path} has an unknown format; retrain it")
        agent = cls(
            payload["obs_dim"],
            payload["n_actions"],
            DQNSettings.from_dict(payload["settings"]),
            seed=payload["seed"],
            device=device,
            tau_index=payload.get("tau_index"),
        )
        agent.online.load_state_dict(payload["online"])
        agent.target.load_state_dict(payload["target"])
        counters = payload["counters"]
        agent.steps, agent.updates, agent.episodes = (
            counters["steps"],
            counters["updates"],
            counters["episodes"],
        )
        return agent, payload["metadata"]
