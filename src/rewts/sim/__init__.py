"""A local LLM-API simulator (OpenAI chat completions and Gemini generateContent/batch).

A test fixture and demo tool: the official SDKs talk to it over loopback unchanged, so tests
exercise exactly what users run. See :class:`SimServer` and :class:`SimConfig`.
"""

from rewts.sim.config import SimConfig
from rewts.sim.server import SimServer

__all__ = ["SimConfig", "SimServer"]
