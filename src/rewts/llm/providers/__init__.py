"""Provider adapters, one per API, behind :class:`~rewts.llm.providers.base.Provider`."""

from __future__ import annotations

import os

from rewts.config import Config
from rewts.errors import ConfigError
from rewts.llm.providers.base import Provider, Request, Response, TokenLogprob
from rewts.llm.providers.heuristic import BANNER, HeuristicProvider

#: provider ``auto`` tries these in order; the first whose key variable is set wins
AUTO_ORDER = (("deepseek", "DEEPSEEK_API_KEY"), ("openai", "OPENAI_API_KEY"))


def resolve_provider_name(cfg: Config) -> str:
    """``llm.provider`` with ``auto`` resolved (a key in the environment or config, else heuristic)."""
    name = cfg.llm.provider
    if name != "auto":
        return name
    if cfg.llm.base_url:
        return "local"
    for candidate, var in AUTO_ORDER:
        secret = getattr(cfg.llm, f"{candidate}_api_key", None)
        if os.environ.get(var) or (secret is not None and secret.get_secret_value()):
            return candidate
    return "heuristic"


def make_provider(cfg: Config) -> Provider:
    """The provider the config asks for; a missing key stops here, naming the variable."""
    name = resolve_provider_name(cfg)
    if name == "heuristic":
        return HeuristicProvider()
    if name in ("deepseek", "openai", "local"):
        from rewts.llm.providers.openai_compat import make_openai_provider

        return make_openai_provider(cfg, name)
    if name == "gemini":
        raise ConfigError(
            "llm.provider = gemini is not available yet (it comes with the Gemini issue); "
            "use deepseek, openai, local (an OpenAI-compatible --base-url) or heuristic"
        )
    raise ConfigError(f"llm.provider = {name!r}: unknown provider")


__all__ = [
    "BANNER",
    "HeuristicProvider",
    "Provider",
    "Request",
    "Response",
    "TokenLogprob",
    "make_provider",
    "resolve_provider_name",
]
