"""The trading environment: a Gymnasium ``Env`` over one ticker's precomputed observations.

Timing (Théate & Ernst): the decision for day ``t`` is made from observation row ``t``, which
holds data up to day ``t-1`` only (plus the held position and the tau of the period containing
``t``, whose strategy used data that ended before the period began); it is executed at day
``t``'s close. The step's reward is the portfolio's relative change from just before that
trade to day ``t+1``'s close: the chosen book's P&L net of its own cost (clipped to [-1, 1]).
With ``reward: risk_adjusted`` penalties for recent volatility, drawdown and turnover are
subtracted. Accounting (real shorts, margin rule, costs, drawdown stop) is
:mod:`rewts.env.accounting`; one step here is one call of its ``trade_step``.

An episode covers decision days ``start .. end-1`` of the given range (day ``end`` only prices
the last decision). It terminates when the drawdown stop fires (the book is closed) and is
truncated at the end of the range.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rewts.config.models import TradingEnvConfig
from rewts.env.accounting import Rules, trade_step
from rewts.env.features import OBS_CLIP, EnvData
from rewts.errors import DataError

ACTION_TARGETS: dict[str, tuple[float, ...]] = {
    "long_short": (-1.0, 1.0),
    "short_flat_long": (-1.0, 0.0, 1.0),
}


def reward_scale(prices: np.ndarray, start: int, end: int) -> float:
    """Standard deviation of the daily returns of ``prices[start..end]`` (the agent's own
    training days only: the test period never sets the scale of what the agent learns)."""
    window = np.asarray(prices[start : end + 1], dtype=np.float64)
    if window.size < 3:
        return 1.0
    std = float(np.std(window[1:] / window[:-1] - 1.0, ddof=1))
    return std if np.isfinite(std) and std > 1e-12 else 1.0


def action_targets(actions: str) -> np.ndarray:
    """Target position of each discrete action (index = action)."""
    return np.asarray(ACTION_TARGETS[actions], dtype=np.float64)


class TradingEnv(gym.Env):
    """One ticker, daily steps, discrete actions mapped to target positions.

    Parameters
    ----------
    data:
        The ticker's precomputed arrays (:func:`rewts.env.features.build_env_data`).
    cfg:
        ``trading_env`` rules.
    start, end:
        Inclusive row range of the episode (decisions on ``start .. end-1``); default: all rows
        with a full observation window.
    random_start:
        Start each episode at a random row of the range (at least ``min_episode`` decisions).
    reward_scale:
        The step reward is divided by it (the training days' daily volatility, so that rewards
        and Q-values are on a unit scale; :func:`reward_scale`).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        data: EnvData,
        cfg: TradingEnvConfig,
        *,
        start: int | None = None,
        end: int | None = None,
        random_start: bool = False,
        min_episode: int = 20,
        reward_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.data = data
        self.cfg = cfg
        self.rules = Rules.from_config(cfg)
        self.start = data.first_valid if start is None else int(start)
        self.end = len(data.prices) - 1 if end is None else int(end)
        if self.start < data.first_valid:
            raise DataError(
                f"{data.ticker}: episode starts at row {self.start} ({data.dates[self.start].date()})"
                f" but a full observation window needs row >= {data.first_valid}"
            )
        if self.end <= self.start or self.end >= len(data.prices):
            raise DataError(
                f"{data.ticker}: episode range rows {self.start}..{self.end} is empty or outside "
                f"the data ({len(data.prices)} rows)"
            )
        self.random_start = random_start
        if not (np.isfinite(reward_scale) and reward_scale > 0):
            raise DataError(f"{data.ticker}: reward_scale must be positive, got {reward_scale!r}")
        self.reward_scale = float(reward_scale)
        self.min_episode = max(1, min(min_episode, self.end - self.start))
        self.targets = action_targets(cfg.actions)
        self.action_space = gym.spaces.Discrete(len(self.targets))
        self.observation_space = gym.spaces.Box(
            -OBS_CLIP, OBS_CLIP, shape=(data.obs_dim,), dtype=np.float32
        )
        self._obs = data.obs
        self._prices = data.prices
        self._pos_idx = data.position_index
        self._reset_book(self.start)

    def _reset_book(self, t: int) -> None:
        self._t = t
        self._cash = self.rules.initial_balance
        self._shares = 0.0
        self._held = 0.0
        self._peak = self.rules.initial_balance
        self._alive = True
        self._recent = np.zeros(self.cfg.reward_window)
        self._n = 0

    def _observation(self) -> np.ndarray:
        obs = self._obs[self._t].copy()
        obs[self._pos_idx] = self._held
        return obs

    def expected_episode_steps(self) -> float:
        """Mean decisions per episode (sizes the exploration schedule to the step budget)."""
        if not self.random_start:
            return float(self.end - self.start)
        # start uniform on start .. end - min_episode, each episode runs to the end
        return (self.end - self.start + self.min_episode) / 2.0

    @property
    def day(self) -> int:
        """Row of the next decision."""
        return self._t

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        t = self.start
        if options and "start" in options:
            t = int(options["start"])
        elif self.random_start:
            t = int(self.np_random.integers(self.start, self.end - self.min_episode + 1))
        self._reset_book(t)
        return self._observation(), {"day": t, "equity": self.rules.initial_balance}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        t = self._t
        price = self._prices[t]
        step = trade_step(
            self._cash,
            self._shares,
            self._held,
            self._peak,
            self._alive,
            price,
            self.targets[int(action)],
            self.rules,
        )
        self._cash, self._shares, self._held = float(step.cash), float(step.shares), step.target
        self._peak, self._alive = float(step.peak), bool(step.alive)
        self._held = float(self._held)
        mark = float(step.mark)
        next_mark = self._cash + self._shares * self._prices[t + 1]
        ret = next_mark / mark - 1.0 if mark > 0 else 0.0
        reward = min(1.0, max(-1.0, ret))
        if self.cfg.reward == "risk_adjusted":
            reward -= self._penalties(ret, next_mark, abs(float(step.traded)) * price / mark)
        reward /= self.reward_scale
        self._t = t + 1
        terminated = not self._alive
        truncated = (not terminated) and self._t >= self.end
        info = {
            "day": t,
            "equity": mark - float(step.cost),
            "mark": mark,
            "return": ret,
            "shares": self._shares,
            "target": self._held,
            "cost": float(step.cost),
        }
        return self._observation(), float(reward), terminated, truncated, info

    def _penalties(self, ret: float, next_mark: float, turnover: float) -> float:
        """Volatility of the recent step returns, current drawdown and turnover, weighted."""
        self._recent[self._n % len(self._recent)] = ret
        self._n += 1
        vol = float(self._recent[: min(self._n, len(self._recent))].std())
        drawdown = max(0.0, 1.0 - next_mark / max(self._peak, next_mark))
        return (
            self.cfg.reward_vol_penalty * vol
            + self.cfg.reward_drawdown_penalty * drawdown
            + self.cfg.reward_trade_penalty * turnover
        )
