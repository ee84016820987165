"""A local LLM-API simulator: OpenAI chat completions + Batch API, Gemini generateContent + Batch.

A test fixture and demo tool. The official SDKs talk to it over loopback unchanged (their
transports, httpx2 and aiohttp, cannot be mocked reliably), so tests exercise what users run::

    from rewts.sim import SimConfig, SimServer

    with SimServer(SimConfig(latency_s=0.05, rpm_limit=50, error_rate=0.1)) as sim:
        client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="any", max_retries=0)
        gemini = genai.Client(
            api_key="any",
            http_options=types.HttpOptions(
                base_url=sim.gemini_base_url,
                timeout=30_000,  # milliseconds
                # not None: with None, google-genai's aiohttp transport retries a dropped or
                # refused connection once, after sleeping 1-10 s, behind the caller's back
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )
        ...
        sim.stats()          # counts, in-flight peak, tokens, per-request log ("log")
        sim.update(error_rate=1.0)
        sim.stop(); sim.start()  # the server dies mid-run and comes back on the same port

Answers are valid instances of the requested JSON schema, a pure function of (seed, model,
messages); faults and latency are drawn in arrival order from one seeded generator.
"""

from rewts.sim.config import SimConfig
from rewts.sim.server import SimServer

__all__ = ["SimConfig", "SimServer"]
