"""What the simulator does: latency, server-side limits and the faults it injects.

A plain frozen dataclass (not a pydantic model of the project config) because the simulator is
a test fixture: tests build it in one line and change it at run time with ``SimServer.update``.
Values are checked here so a typo in a test or on the command line fails at once, naming the
field, instead of silently simulating something else.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rewts.errors import ConfigError

LatencyDist = Literal["fixed", "lognormal"]

#: the fault probabilities; together they may not exceed 1
FAULT_RATES = (
    "error_rate",
    "malformed_rate",
    "truncated_rate",
    "garbage_rate",
    "hang_rate",
    "drop_rate",
)


@dataclass(frozen=True)
class SimConfig:
    """Behaviour of a :class:`~rewts.sim.SimServer` (all rates are per request, in [0, 1])."""

    #: mean answer latency in seconds (429/401/404 answers are immediate, as on the real APIs)
    latency_s: float = 0.05
    latency_dist: LatencyDist = "fixed"
    #: sigma of the underlying normal when ``latency_dist`` is lognormal (mean stays latency_s)
    latency_sigma: float = 0.5
    #: server-side limits answered with 429; None = unlimited
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    rpd_limit: int | None = None
    #: length of the rpm/tpm sliding window; 60 s like the real APIs, shorter for fast tests
    window_s: float = 60.0
    #: send Retry-After/retry-after-ms (OpenAI) or RetryInfo.retryDelay (Gemini) with a 429
    retry_after: bool = True
    error_rate: float = 0.0
    malformed_rate: float = 0.0
    truncated_rate: float = 0.0
    #: 200 whose HTTP body itself is cut off (not JSON at all): the SDKs raise a JSONDecodeError
    garbage_rate: float = 0.0
    hang_rate: float = 0.0
    drop_rate: float = 0.0
    #: how long a hung request is held before the server finally closes the connection
    hang_s: float = 600.0
    #: when set, any other key is rejected (401 OpenAI, 400 API_KEY_INVALID Gemini)
    api_key: str | None = field(default=None, repr=False)
    #: when set, any other model answers 404
    models: tuple[str, ...] | None = None
    seed: int = 0
    #: a Gemini batch job is PENDING for the first third, RUNNING, then SUCCEEDED after this
    batch_delay_s: float = 2.0
    #: real strategist answers to draw from: "auto" (the workspace's shared data if present),
    #: a path, or None (always generate)
    answers_file: str | None = "auto"
    #: the per-request log keeps the last this many entries (memory stays bounded in soaks)
    log_limit: int = 200_000

    def __post_init__(self) -> None:
        if self.models is not None and not isinstance(self.models, tuple):
            object.__setattr__(self, "models", tuple(self.models))
        if isinstance(self.answers_file, Path):
            object.__setattr__(self, "answers_file", str(self.answers_file))
        _check(self)

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with ``changes`` applied; an unknown name is a :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(
                f"unknown simulator setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The settings as JSON-ready values, the key masked (for /control and the CLI)."""
        out = dataclasses.asdict(self)
        out["api_key"] = None if self.api_key is None else "***"
        out["models"] = None if self.models is None else list(self.models)
        return out


def _check(cfg: SimConfig) -> None:
    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"simulator setting {name}={getattr(cfg, name)!r}: {why}")

    for name in ("latency_s", "latency_sigma", "hang_s", "batch_delay_s"):
        value = getattr(cfg, name)
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise bad(name, "must be a finite number >= 0")
    if not isinstance(cfg.window_s, int | float) or not cfg.window_s > 0:
        raise bad("window_s", "must be > 0 seconds")
    if cfg.latency_dist not in ("fixed", "lognormal"):
        raise bad("latency_dist", "must be fixed or lognormal")
    for name in ("rpm_limit", "tpm_limit", "rpd_limit"):
        value = getattr(cfg, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise bad(name, "must be a whole number >= 1, or None for no limit")
    for name in FAULT_RATES:
        value = getattr(cfg, name)
        if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise bad(name, "must be a probability in [0, 1]")
    total = sum(getattr(cfg, name) for name in FAULT_RATES)
    if total > 1.0 + 1e-9:
        raise ConfigError(
            f"simulator fault rates add up to {total:.3f} > 1 ({', '.join(FAULT_RATES)})"
        )
    if cfg.log_limit < 0:
        raise bad("log_limit", "must be >= 0")
    if cfg.api_key is not None and not cfg.api_key:
        raise ConfigError(
            "simulator setting api_key: use None for no key check, not an empty string"
        )
