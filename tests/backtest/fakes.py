"""Small stand-ins for the RL stage with the same greedy-Q interface as the real agents."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd

from rewts.backtest.agents import Member
from rewts.backtest.result import AGENTS
from rewts.config import Config
from rewts.errors import BacktestError

POSITIONS = np.array([-1.0, 0.0, 1.0])
#: the training days every fake member claims (inside the small config's training range)
TRAINED_ON = (pd.Timestamp("2016-09-01"), pd.Timestamp("2017-08-31"))
LONG_SHORT = np.array([-1.0, 1.0])


def synthetic_frame(n: int = 560, seed: int = 0, start: str = "2016-01-04") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.cumprod(1 + rng.normal(0.0004, 0.015, n))
    return pd.DataFrame(
        {"close": close, "adj_close": close},
        index=pd.DatetimeIndex(pd.bdate_range(start, periods=n), name="date"),
    )


def small_config(**backtest) -> Config:
    return Config.model_validate(
        {
            "tickers": ["AAA", "BBB"],
            "data": {"warmup_days": 40, "start_date": "2016-01-01", "end_date": "2018-12-31"},
            "split": {
                "train_start": "2016-01-01",
                "train_end": "2017-08-31",
                "test_start": "2017-09-01",
                "test_end": "2018-02-28",
            },
            "rewts": {"lookback_length": 60},
            "strategy_frequency": 20,
            "trading_env": {"max_drawdown_limit": None},
            # every agent, the last chunk as the single agent: the plumbing of each path
            "backtest": {
                "runs": 2,
                "single_agent": "last_chunk",
                "agents": list(AGENTS),
                **backtest,
            },
        }
    )


def dataset(cfg: Config) -> SimpleNamespace:
    return SimpleNamespace(frames={t: synthetic_frame(seed=i) for i, t in enumerate(cfg.tickers)})


def strategies(cfg: Config, data) -> dict[str, pd.DataFrame]:
    from rewts.data import timeline_for

    out = {}
    for i, (ticker, frame) in enumerate(data.frames.items()):
        tl = timeline_for(frame, cfg)
        rng = np.random.default_rng(100 + i)
        tau = rng.choice([-0.8, -0.3, 0.0, 0.4, 0.9], size=len(tl.periods))
        out[ticker] = pd.DataFrame(
            {"period": range(len(tl.periods)), "tau": tau, "direction": (tau > 0).astype(int)}
        )
    return out


@dataclass
class FakeSource:
    """Chunk agents that are oracles on their own chunk and random elsewhere.

    ``oracle_chunk`` knows each day's next return on the whole calendar (the "right" model);
    the leak variant is an oracle everywhere; other members follow a seeded random sign.
    """

    data: SimpleNamespace
    n_chunks: int = 3
    oracle_chunk: int | None = 2
    action_positions: np.ndarray = field(default_factory=lambda: LONG_SHORT.copy())
    position_values: np.ndarray = field(default_factory=lambda: POSITIONS.copy())
    calls: list = field(default_factory=list)
    missing_global: bool = False
    #: the leak agent: ``oracle`` everywhere, ``overfit`` (oracle on its training days only)
    #: or ``broken`` (random everywhere)
    leak_mode: str = "oracle"

    def members(self, ticker, variant, seed):
        members = [
            Member(
                f"chunk {i}",
                i,
                pd.DataFrame(
                    {"return": np.arange(5.0) * (i + 1)}, index=pd.RangeIndex(5, name="episode")
                ),
                trained_on=TRAINED_ON,
            )
            for i in range(self.n_chunks)
        ]
        if not self.missing_global:
            members.append(Member("global", None))
        return members

    def tau_q_values(self, ticker, variant, seed, member, rows, tau):
        return None  # the fake's Q-values do not come from observations

    def q_values(self, ticker, variant, seed, member, rows):
        self.calls.append((ticker, variant, seed, member.label, rows[0], rows[-1]))
        close = self.data.frames[ticker]["close"].to_numpy()
        nxt = np.zeros(len(close))
        nxt[:-1] = np.sign(close[1:] / close[:-1] - 1)
        oracle = nxt[rows]
        salt = zlib.crc32(f"{ticker}/{variant}/{member.label}".encode()) + 7 * seed
        noise = np.sign(np.random.default_rng(salt).normal(size=len(rows)))
        if variant == "leak":
            dates = self.data.frames[ticker].index[rows]
            trained = (dates >= TRAINED_ON[0]) & (dates <= TRAINED_ON[1])
            knows = {"oracle": np.ones(len(rows), bool), "overfit": trained}.get(
                self.leak_mode, np.zeros(len(rows), bool)
            )
            sig = np.where(knows, oracle, noise)
        elif member.chunk is not None and member.chunk == self.oracle_chunk:
            sig = oracle
        else:
            sig = noise
        q = np.stack([-sig, sig], axis=-1)  # (rows, actions)
        return np.repeat(q[:, None, :], len(self.position_values), axis=1)


class NoAgents(FakeSource):
    def members(self, ticker, variant, seed):
        raise BacktestError(f"{ticker}: no trained agents")
