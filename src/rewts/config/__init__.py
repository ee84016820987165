"""Configuration: validated pydantic models and their loading from YAML and the CLI."""

from rewts.config.loader import DEFAULT_CONFIG_PATH, load_config, parse_set_option
from rewts.config.models import (
    BacktestConfig,
    Config,
    DataConfig,
    LLMConfig,
    RateLimitsConfig,
    RetryConfig,
    RewtsConfig,
    SplitConfig,
    TradingEnvConfig,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "BacktestConfig",
    "Config",
    "DataConfig",
    "LLMConfig",
    "RateLimitsConfig",
    "RetryConfig",
    "RewtsConfig",
    "SplitConfig",
    "TradingEnvConfig",
    "load_config",
    "parse_set_option",
]
