"""Provider adapters, one per API, behind :class:`~rewts.llm.providers.base.Provider`.

``local`` has two forms: with ``llm.base_url`` an OpenAI-compatible server (Ollama, llama.cpp
server, vLLM, ``rewts sim``); without it a GGUF model run in-process by llama-cpp-python
(:mod:`rewts.llm.providers.llama`, the ``local`` extra).
"""

from __future__ import annotations

import os

from rewts.config import Config
from rewts.errors import ConfigError
from rewts.llm.providers.base import Provider, Request, Response, TokenLogprob
from rewts.llm.providers.heuristic import BANNER, HeuristicProvider

#: provider ``auto`` tries these in order; the first whose key is set wins
AUTO_ORDER = (
    ("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    ("deepseek", ("DEEPSEEK_API_KEY",)),
    ("openai", ("OPENAI_API_KEY",)),
)


def resolve_provider_name(cfg: Config) -> str:
    """``llm.provider`` with ``auto`` resolved (a key in the environment or config, else heuristic)."""
    name = cfg.llm.provider
    if name != "auto":
        return name
    if cfg.llm.base_url:
        return "local"
    for candidate, variables in AUTO_ORDER:
        secret = getattr(cfg.llm, f"{candidate}_api_key", None)
        if any(os.environ.get(v) for v in variables) or (
            secret is not None and secret.get_secret_value()
        ):
            return candidate
    return "heuristic"


def make_provider(cfg: Config) -> Provider:
    """The provider the config asks for; a missing key stops here, naming the variable."""
    name = resolve_provider_name(cfg)
    if name == "import":
        raise ConfigError(
            f"llm.provider = import reads the strategies from llm.import_path "
            f"({cfg.llm.import_path}) and asks no model: use `rewts strategies import FILE`, "
            "or pick a provider that generates them"
        )
    if name == "heuristic":
        return HeuristicProvider()
    if name == "local" and not cfg.llm.base_url:
        # no server: the GGUF model (llm.model_path, else the bundled SmolLM2) in-process
        from rewts.llm.providers.llama import make_llama_provider

        return make_llama_provider(cfg)
    if name in ("deepseek", "openai", "local"):
        from rewts.llm.providers.openai_compat import make_openai_provider

        return make_openai_provider(cfg, name)
    if name == "gemini":
        from rewts.llm.providers.gemini import make_gemini_provider

        return make_gemini_provider(cfg)
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
