"""rewts: LLM-guided reinforcement-learning trading research.

The pipeline, one folder per stage: ``data`` -> ``llm`` -> ``env``/``agents``/``training`` ->
``ensemble`` -> ``backtest`` -> ``metrics`` -> ``report``; :mod:`rewts.pipeline` wires them.
"""

from rewts.config import Config, load_config
from rewts.errors import (
    AuthenticationError,
    ConfigError,
    DataError,
    LLMError,
    QuotaExhaustedError,
    RewtsError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Config",
    "ConfigError",
    "DataError",
    "LLMError",
    "QuotaExhaustedError",
    "RewtsError",
    "__version__",
    "load_config",
]
