"""Validated configuration models.

One small pydantic model per section of ``configs/hybrid/rewts_llm_rl.yaml``. Every model
forbids unknown keys, so a typo is an error that names the key instead of a silently ignored
setting. The seed's keys are accepted as written (``llm.llm_model``, ``rewts.*``,
``trading_env.*``, ``parallel_workers``, ``max_requests_per_second``, ...). The ``llm``
section lives in :mod:`rewts.config.llm`, the shared types in :mod:`rewts.config.base`.
"""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PositiveInt,
    field_validator,
    model_validator,
)

from rewts.config.base import (
    FIRST_DATE,
    LAST_DATE,
    MarketDate,
    MarketSymbol,
    PositiveFloat,
    Section,
    Ticker,
    per_hour,
)
from rewts.config.llm import (
    RATE_PRESETS,
    LLMConfig,
    ModelPrice,
    RateLimitsConfig,
    RatePreset,
    RetryConfig,
    preset_limits,
)
from rewts.config.presets import with_preset

__all__ = [
    "FIRST_DATE",
    "LAST_DATE",
    "RATE_PRESETS",
    "BacktestConfig",
    "Config",
    "DataConfig",
    "LLMConfig",
    "MarketDate",
    "MarketSymbol",
    "ModelPrice",
    "PositiveFloat",
    "RateLimitsConfig",
    "RatePreset",
    "RayConfig",
    "RetryConfig",
    "RewtsConfig",
    "Section",
    "SplitConfig",
    "Ticker",
    "TradingEnvConfig",
    "preset_limits",
]


class DataConfig(Section):
    """Where market data comes from and which period it covers."""

    start_date: MarketDate = dt.date(2012, 1, 1)
    end_date: MarketDate = dt.date(2020, 12, 31)
    #: ``auto`` tries the CSV folder, then Yahoo Finance, then the synthetic generator
    source: Literal["auto", "csv", "yahoo", "synthetic"] = "auto"
    #: folder with one ``SYMBOL.csv`` per symbol (the format of ../shared/data or Yahoo's)
    csv_dir: Path | None = None
    #: market context joined to every ticker by date; keys are feature prefixes
    market_symbols: dict[str, MarketSymbol] = Field(
        default_factory=lambda: {"sp500": "GSPC", "vix": "VIX", "tnx": "TNX"}
    )
    #: dated headlines (CSV/JSON/Parquet) for the news analyst; optional
    news_path: Path | None = None
    #: where the processed Parquet dataset and its manifest are written
    processed_dir: Path = Path("data/processed")
    #: trading days of history needed before the first strategy period (the 200-day SMA)
    warmup_days: PositiveInt = 200
    #: seed of the synthetic generator
    synthetic_seed: int = 7
    #: the exchange's trading calendar (an ``exchange_calendars`` name: XNYS New York, XLON
    #: London, XTKS Tokyo, ...): it dates the session after the data's last day (rewts signal)
    calendar: str = "XNYS"

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, name: str) -> str:
        if name == "XNYS":  # the default needs no look-up (importing the library takes 0.5 s)
            return name
        import exchange_calendars

        names = exchange_calendars.get_calendar_names(include_aliases=True)
        if name not in names:
            close = difflib.get_close_matches(name.upper(), names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown exchange calendar {name!r} (an exchange_calendars name such as "
                f"XNYS, XLON, XTKS){hint}"
            )
        return name

    @model_validator(mode="after")
    def _dates_ordered(self) -> DataConfig:
        if self.end_date <= self.start_date:
            raise ValueError(
                f"end_date ({self.end_date}) must be after start_date ({self.start_date})"
            )
        return self


class RewtsConfig(Section):
    """ReWTS chunking and the Double DQN hyper-parameters (the seed's keys)."""

    chunk_length: PositiveInt = 400
    lookback_length: PositiveInt = 200
    forecast_horizon: PositiveInt = 1
    episodes_per_chunk: PositiveInt = 10
    gamma: float = Field(0.5, ge=0.0, le=1.0)
    epsilon_start: float = Field(1.0, ge=0.0, le=1.0)
    epsilon_min: float = Field(0.05, ge=0.0, le=1.0)
    epsilon_decay: float = Field(0.998, gt=0.0, le=1.0)
    learning_rate: PositiveFloat = 5e-4
    batch_size: PositiveInt = 32
    buffer_size: PositiveInt = 50_000
    target_update_freq: PositiveInt = 20
    hidden_dims: list[PositiveInt] = Field(default_factory=lambda: [64, 64], min_length=1)
    #: feed the LLM feature tau to the agent; False is the RL-only baseline
    llm_guidance: bool = True
    #: where each chunk agent's checkpoint (weights, config, data hash, metrics) is written
    checkpoint_dir: Path = Path("checkpoints")
    #: ensemble signal: the chunk model's position, or its greedy action's Q-value
    ensemble_signal: Literal["position", "q_value"] = "position"
    #: ``default``: the values as written (defaults that learn, docs/rl.md). ``seed`` and
    #: ``tdqn`` replace the learner and environment keys with the upstream project's values or
    #: Théate & Ernst's published ones (they win over the file's; applied when the config is
    #: validated, see rewts.config.presets).
    preset: Literal["default", "seed", "tdqn"] = "default"
    #: ``linear_budget``: linear from start to min over the first ``exploration_fraction`` of
    #: the run's steps (reaches its floor whatever the episode count);
    #: ``episode``: epsilon *= epsilon_decay after each episode (the seed);
    #: ``step_exponential``: min + (start - min) * exp(-step / epsilon_decay_steps) (TDQN)
    epsilon_schedule: Literal["linear_budget", "episode", "step_exponential"] = "linear_budget"
    epsilon_decay_steps: PositiveFloat = 10_000.0
    #: ``linear_budget``: share of the training steps spent lowering epsilon to its floor
    exploration_fraction: float = Field(0.5, gt=0.0, le=1.0)
    #: ``mlp`` network: dropout after each hidden layer (0: none)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    #: trading days held out at the end of the global agent's range (a chunk agent: the days
    #: right after its chunk, at most a quarter of a chunk) to pick the episode whose weights
    #: are kept; 0 keeps the last episode (no model selection)
    validation_days: int = Field(252, ge=0)
    #: Adam's L2 weight decay (TDQN: 1e-6); usable once the reward is scaled
    weight_decay: float = Field(0.03, ge=0.0)
    #: ``linear``: tau also reaches each action's Q-value through one weight per action (a
    #: linear path next to the MLP), so the weight decay that stops memorization does not also
    #: erase an informative signal; ``none``: tau is one more input of the MLP (seed, TDQN)
    tau_head: Literal["linear", "none"] = "linear"
    #: clip the gradient's global L2 norm at this value (None: no clipping)
    grad_clip: PositiveFloat | None = 10.0
    #: probability of repeating the previous action while exploring (TDQN: 0.1)
    sticky_actions: float = Field(0.0, ge=0.0, lt=1.0)
    #: environment steps before the first gradient update
    learning_starts: int = Field(500, ge=0)
    #: environment steps per gradient update (``target_update_freq`` counts gradient updates)
    train_freq: PositiveInt = 1
    #: start each training episode at a random day of the chunk (TDQN); False (default): each
    #: episode is one pass over every training day, so early days are seen as often as late ones
    random_start: bool = False
    #: agents that share a ticker, training days and observation width (seeds, LLM+RL and
    #: its placebos) train together as one batched population of at most this many
    #: (rewts.agents.population; 1: one agent at a time)
    population_size: PositiveInt = 25
    #: parallel training processes: a number or ``auto`` (min(jobs, CPU count))
    n_jobs: PositiveInt | Literal["auto"] = "auto"
    #: ``auto``: CUDA when available, else CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: Q-network layers: ``mlp`` (Linear + ReLU) or ``tdqn`` (+ BatchNorm, LeakyReLU, Dropout)
    network: Literal["mlp", "tdqn"] = "mlp"
    #: also train one agent over the whole training range (chunked vs global comparison)
    train_global: bool = True

    @model_validator(mode="after")
    def _epsilons_ordered(self) -> RewtsConfig:
        if self.epsilon_min > self.epsilon_start:
            raise ValueError(
                f"epsilon_min ({self.epsilon_min}) must not exceed "
                f"epsilon_start ({self.epsilon_start})"
            )
        return self


class TradingEnvConfig(Section):
    """Rules of the trading environment (the seed's keys plus the action set and reward)."""

    initial_balance: PositiveFloat = 10_000.0
    transaction_cost: float = Field(0.0015, ge=0.0, lt=0.1)
    max_position: float = Field(1.0, gt=0.0, le=1.0)
    #: stop trading at this drawdown from the peak (None: never); training ignores it unless
    #: ``drawdown_stop_in_training`` (a stop ends episodes early and teaches nothing)
    max_drawdown_limit: float | None = Field(None, gt=0.0, le=1.0)
    drawdown_stop_in_training: bool = False
    #: the observation: ``compact`` (a few returns, volatility, a few indicators), ``full``
    #: (30 days of history and every indicator) or ``tdqn`` (Théate & Ernst's history only)
    features: Literal["compact", "full", "tdqn"] = "compact"
    #: rewards divided by the daily volatility of the agent's own training days (unit-scale
    #: Q-values, so weight decay does not collapse the policy); ``none``: raw returns
    reward_scale: Literal["volatility", "none"] = "volatility"
    actions: Literal["long_short", "short_flat_long"] = "long_short"
    reward: Literal["return", "risk_adjusted"] = "return"
    #: trading days of price/volume history in the observation
    window: PositiveInt = 30
    #: price the book is marked and traded at: ``adj_close`` (total return, the default) or the
    #: split-adjusted ``close`` (dividends ignored, as in the seed)
    price_column: Literal["close", "adj_close"] = "adj_close"
    #: a short is bought back to ``max_position`` once it exceeds ``(1 + short_margin)`` of it
    short_margin: float = Field(0.1, ge=0.0, le=1.0)
    #: ``risk_adjusted`` reward = return - vol * rolling std - drawdown * dd - trade * turnover
    reward_vol_penalty: float = Field(0.1, ge=0.0)
    reward_drawdown_penalty: float = Field(0.05, ge=0.0)
    reward_trade_penalty: float = Field(0.001, ge=0.0)
    reward_window: PositiveInt = 20


class SplitConfig(Section):
    """Train/test split by date (the paper's: train 2012-2017, test 2018-01-02..2019-12-31)."""

    train_start: MarketDate = dt.date(2012, 1, 1)
    train_end: MarketDate = dt.date(2017, 12, 31)
    test_start: MarketDate = dt.date(2018, 1, 2)
    test_end: MarketDate = dt.date(2019, 12, 31)

    @model_validator(mode="after")
    def _ordered(self) -> SplitConfig:
        if not (self.train_start < self.train_end < self.test_start <= self.test_end):
            raise ValueError(
                "dates must satisfy train_start < train_end < test_start <= test_end, got "
                f"{self.train_start}, {self.train_end}, {self.test_start}, {self.test_end}"
            )
        return self


BacktestAgent = Literal[
    "buy_and_hold",
    "llm_only",
    "rl_only",
    "llm_rl",
    "rewts",
    "global_llm_rl",
    "placebo_const",
    "placebo_shuffled",
    "leak_sanity",
]
#: the agents a backtest runs unless ``backtest.agents`` says otherwise
DEFAULT_BACKTEST_AGENTS: tuple[BacktestAgent, ...] = (
    "buy_and_hold",
    "llm_only",
    "rl_only",
    "llm_rl",
    "rewts",
    "placebo_const",
    "placebo_shuffled",
    "leak_sanity",
)


class BacktestConfig(Section):
    """How agents are compared on the held-out period."""

    runs: PositiveInt = 5
    #: annual rate; Sharpe and Sortino use returns in excess of it (docs/metrics.md)
    risk_free_rate: float = Field(0.0, ge=-0.1, le=0.5)
    periods_per_year: PositiveInt = 252
    output_dir: Path = Path("results")
    #: agents run side by side (placebos and the leak check each need their own training)
    agents: list[BacktestAgent] = Field(
        default_factory=lambda: list(DEFAULT_BACKTEST_AGENTS), min_length=1
    )
    #: QP solver of the ReWTS weights: clarabel (accurate interior point) or osqp (warm-started)
    qp_solver: Literal["clarabel", "osqp"] = "clarabel"
    #: trading days between re-fits of the ensemble weights (1 = every day)
    rebalance_every: PositiveInt = 1
    #: put each chunk model's Q-values on a unit scale before the weighted average
    ensemble_q_normalize: bool = True
    #: the agent behind "LLM+RL", "RL-only", the placebos and the leak check: the one trained on
    #: the whole training range (both papers), or the last chunk's
    single_agent: Literal["last_chunk", "global"] = "global"
    #: the leak sanity agent must reach this test Sharpe ratio and this test direction
    #: accuracy on every ticker, else the report flags the run
    sanity_min_sharpe: float = 2.0
    sanity_min_accuracy: float = Field(0.95, ge=0.0, le=1.0)
    #: train agents whose checkpoints are missing (False: fail with a clear error instead)
    train_missing: bool = True

    @field_validator("agents")
    @classmethod
    def _unique_agents(cls, agents: list[str]) -> list[str]:
        dupes = sorted({a for a in agents if agents.count(a) > 1})
        if dupes:
            raise ValueError(f"duplicate agents: {', '.join(dupes)}")
        return agents


class RayConfig(Section):
    """``executor: ray``: where the cluster is and what each training task reserves."""

    #: an existing cluster (``auto``, ``ray://host:10001``); None starts a local instance
    address: str | None = None
    #: CPUs of the local instance rewts starts when ``address`` is None (None: all cores)
    num_cpus: PositiveInt | None = None
    num_cpus_per_task: PositiveFloat = 1.0
    #: GPUs per training task; fractional values share one GPU between tasks
    num_gpus_per_task: float = Field(0.0, ge=0.0)
    #: folder mounted at the same path on every node: tasks write checkpoints there and the
    #: driver copies them into ``rewts.checkpoint_dir`` (None: tasks write there directly)
    shared_path: Path | None = None


class Config(Section):
    """The whole experiment, as loaded from YAML and command-line overrides."""

    tickers: list[Ticker] = Field(
        default_factory=lambda: ["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"], min_length=1
    )
    data: DataConfig = Field(default_factory=DataConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    rewts: RewtsConfig = Field(default_factory=RewtsConfig)
    trading_env: TradingEnvConfig = Field(default_factory=TradingEnvConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    #: trading days per strategy period (the seed's 20: one strategy a month)
    strategy_frequency: PositiveInt = 20
    #: concurrent LLM requests: a number (1 = sequential) or ``auto`` (Little's law)
    parallel_workers: PositiveInt | Literal["auto"] = "auto"
    max_requests_per_second: Annotated[PositiveFloat, per_hour(1)] = 8.0
    skip_news_processing: bool = False
    #: master seed of everything random outside the LLM
    seed: int = 0
    executor: Literal["local", "process", "ray"] = "process"
    ray: RayConfig = Field(default_factory=RayConfig)
    #: named override sets, applied with ``--profile NAME``
    profiles: dict[str, dict] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """``rewts.preset`` is applied here, once, when the config is validated: every stage
        reads the values it gives (:mod:`rewts.config.presets`)."""
        return with_preset(data) if isinstance(data, dict) else data

    def stage_folders(self) -> dict[str, Path]:
        """Where each stage reads or writes its per-ticker files (the inputs included)."""
        folders = {
            "data.processed_dir": self.data.processed_dir,
            "llm.output_dir": self.llm.output_dir,
            "rewts.checkpoint_dir": self.rewts.checkpoint_dir,
            "backtest.output_dir": self.backtest.output_dir,
        }
        if self.data.csv_dir is not None:
            folders["data.csv_dir"] = self.data.csv_dir
        return folders

    @model_validator(mode="after")
    def _own_folders(self) -> Config:
        """Two stages in one folder overwrite each other's files (strategy tables and the
        processed dataset are both ``TICKER.parquet``): every stage gets its own."""
        seen: dict[Path, str] = {}
        for key, folder in self.stage_folders().items():
            where = folder.expanduser().resolve()
            if where in seen:
                raise ValueError(
                    f"{key} and {seen[where]} are the same folder ({folder}): each stage needs "
                    "its own, or one overwrites the other's files"
                )
            seen[where] = key
        return self

    @field_validator("tickers")
    @classmethod
    def _unique_upper(cls, tickers: list[str]) -> list[str]:
        upper = [t.upper() for t in tickers]
        dupes = sorted({t for t in upper if upper.count(t) > 1})
        if dupes:
            raise ValueError(f"duplicate tickers: {', '.join(dupes)}")
        return upper
