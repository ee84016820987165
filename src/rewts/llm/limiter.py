"""Client-side rate limiting before every request, retries included.

The interface is two calls, so a user can plug in a policy of their own::

    permit = await limiter.acquire(tokens_estimate)   # before sending
    limiter.feedback(permit, Outcome(...))            # after the answer (or the error)

:class:`RateLimiter` is the shipped policy:

* **GCRA** (generic cell rate algorithm, the virtual-scheduling form of a token bucket) for
  the request rate: the strictest of ``max_requests_per_second`` and ``rpm / 60``, with
  ``burst`` requests allowed at once after an idle spell. Over any window of ``w`` seconds at
  most ``burst + rate * w`` requests are granted.
* a **token bucket** for tokens per minute (one second's worth deep; a larger request waits for
  a full bucket and leaves a debt): the caller's estimate is taken before the call and
  corrected with the usage the provider reports in :meth:`feedback`;
* a **daily request count** (``rpd``), loaded from and written to a persistent store (the cache
  database), so it survives restarts. The day is the UTC calendar day (it resets at 00:00 UTC)
  unless a ``today`` function says otherwise (Gemini's quotas reset at midnight Pacific time);
* **FIFO fairness**: waiters queue in arrival order and are granted strictly in that order;
  a head that needs many tokens blocks later callers rather than being overtaken forever;
* **no lock held while waiting**: state changes are synchronous steps on the event loop (which
  makes them atomic); waiters sleep on their own future, and one timer wakes the queue head;
* **adaptive (AIMD)**: a 429 cuts the allowed rate multiplicatively (once per round: answers to
  requests granted before the last cut do not cut again), every success adds back a small
  constant share of the configured rate; a ``Retry-After`` (or a provider's retry delay)
  pauses *everyone* until it has passed, not only the caller that saw it.

A custom policy, for example the seed's "slow down above 80 % of the limit"::

    class SlowDownNearLimit:
        def __init__(self, inner: Limiter, monitor: RequestMonitor) -> None:
            self.inner, self.monitor = inner, monitor

        async def acquire(self, tokens_estimate: int = 0) -> Permit:
            if self.monitor.percent_of_limit() > 80:
                await asyncio.sleep(1.0)
            return await self.inner.acquire(tokens_estimate)

        def feedback(self, permit: Permit, outcome: Outcome) -> None:
            self.inner.feedback(permit, outcome)

and ``generate_strategies(cfg, dataset, limiter=SlowDownNearLimit(...))``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from rewts.llm.providers.base import QuotaExhausted

#: timers may fire a hair early; a grant this close to its slot counts as on time
_SLACK = 1e-9


@dataclass(frozen=True, slots=True)
class Permit:
    """Proof that a request may be sent: when, in which order, with how many tokens reserved."""

    serial: int
    granted_at: float
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a permitted request.

    ``kind``: ``ok`` (answered; ``tokens_used`` as reported), ``rate_limited`` (a 429;
    ``retry_after`` seconds when the server said), ``error`` (anything else).
    """

    kind: Literal["ok", "rate_limited", "error"]
    tokens_used: int | None = None
    retry_after: float | None = None


@runtime_checkable
class Limiter(Protocol):
    """Acquire before a request, give feedback after it."""

    async def acquire(self, tokens_estimate: int = 0) -> Permit: ...

    def feedback(self, permit: Permit, outcome: Outcome) -> None: ...


class DailyLimitReached(QuotaExhausted):
    """The configured requests-per-day budget (``llm.rate_limits.rpd``) is used up."""


def utc_today() -> str:
    """The day used for ``rpd``: the UTC calendar date (resets at 00:00 UTC)."""
    return dt.datetime.now(dt.UTC).date().isoformat()


def today_in(tz: str) -> str:
    """The calendar date now in the IANA zone ``tz``: the day a provider's daily quota counts
    in (its ``quota_tz``). "UTC" needs no tz database."""
    if tz == "UTC":
        return utc_today()
    return dt.datetime.now(ZoneInfo(tz)).date().isoformat()


def default_burst(rate: float) -> int:
    """The burst used when ``llm.rate_limits.burst`` is not set: 20 ms worth of requests, at
    least 2. With a burst of 1, every late wake-up of the event loop (a loaded machine wakes
    timers a few milliseconds late) is a slot lost for good, since GCRA restarts from "now";
    a burst of b absorbs up to b - 1 intervals of lateness while the window bound grows only
    to ``rate * w + b``."""
    return max(2, math.ceil(rate * 0.02))


class RateLimiter:
    """GCRA request rate + token bucket + daily count; FIFO, adaptive, pausable.

    Parameters
    ----------
    rate:
        Requests per second (the strictest of the configured limits).
    burst:
        Requests that may go at once after an idle spell (1 = evenly spaced).
    tpm:
        Tokens per minute, or None.
    rpd, daily_used, take_daily, today:
        Requests per day; how many were already sent today (from the store);
        ``take_daily(day) -> bool`` that checks and counts one request in the store at once
        (False: none left), so processes sharing the store share one budget; the function
        naming the current day.
    clock:
        Seconds, monotonic; default: the running event loop's clock (so a virtual-time loop
        drives the limiter in tests).
    adaptive, decrease, increase, min_rate:
        AIMD: on a 429 ``rate *= decrease`` (not below ``min_rate``); on success
        ``rate += increase * configured_rate`` (not above the configured rate).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        tpm: float | None = None,
        rpd: int | None = None,
        daily_used: int = 0,
        take_daily: Callable[[str], bool] | None = None,
        today: Callable[[], str] = utc_today,
        clock: Callable[[], float] | None = None,
        adaptive: bool = True,
        decrease: float = 0.5,
        increase: float = 0.05,
        min_rate: float | None = None,
    ) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number of requests per second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.configured_rate = float(rate)
        self.rate = float(rate)
        self.burst = int(burst)
        self.tpm = tpm
        self.rpd = rpd
        self.adaptive = adaptive
        self.decrease = decrease
        self.increase = increase
        self.min_rate = min_rate if min_rate is not None else min(rate, 1.0 / 60.0)
        self._clock = clock
        self._today = today
        self._day = today()
        self._daily_used = daily_used
        self._take_daily = take_daily
        self._tat = -math.inf  # GCRA theoretical arrival time
        self._pause_until = -math.inf
        # one second's worth of tokens: a full minute's worth at once would let a burst plus
        # the refill put up to twice the limit into one 60 s window
        self._token_capacity = max(float(tpm) / 60.0, 1.0) if tpm else 0.0
        self._tokens = self._token_capacity
        self._tokens_at: float | None = None
        self._waiters: collections.deque[tuple[asyncio.Future[Permit], int]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._serial = 0
        self._last_cut_serial = -1
        #: counters for monitors and tests
        self.granted = 0
        self.rate_limited = 0
        self.pauses = 0

    # ------------------------------------------------------------------ public

    @property
    def limit_rpm(self) -> float:
        """The configured request limit per minute (what monitors compare against)."""
        return self.configured_rate * 60.0

    @property
    def paused_until(self) -> float:
        return self._pause_until

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self, tokens_estimate: int = 0) -> Permit:
        """Wait (FIFO) until a request may be sent; raises :class:`DailyLimitReached`."""
        tokens = self._clamp_tokens(tokens_estimate)
        if not self._waiters:
            now = self._now()
            self._check_daily()
            if self._ready_at(now, tokens) <= now + _SLACK:
                return self._grant(now, tokens)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Permit] = loop.create_future()
        self._waiters.append((future, tokens))
        self._schedule()
        try:
            return await future
        except asyncio.CancelledError:
            # a permit granted just as we were cancelled is simply spent (conservative)
            self._schedule()
            raise

    def feedback(self, permit: Permit, outcome: Outcome) -> None:
        now = self._now()
        if self.tpm and outcome.tokens_used is not None:
            self._refill(now)
            self._tokens -= outcome.tokens_used - permit.tokens
        if outcome.kind == "rate_limited":
            self.rate_limited += 1
            if self.adaptive and permit.serial > self._last_cut_serial:
                self._set_rate(now, max(self.min_rate, self.rate * self.decrease))
                self._last_cut_serial = self._serial
            if outcome.retry_after is not None and outcome.retry_after > 0:
                self.pause(outcome.retry_after)
        elif outcome.kind == "ok" and self.adaptive and self.rate < self.configured_rate:
            self._set_rate(
                now, min(self.configured_rate, self.rate + self.increase * self.configured_rate)
            )
        self._schedule()

    def pause(self, seconds: float) -> None:
        """Hold every request until ``seconds`` from now (a server's Retry-After)."""
        until = self._now() + seconds
        if until > self._pause_until:
            self._pause_until = until
            self.pauses += 1
        self._schedule()

    # ---------------------------------------------------------------- internal

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _set_rate(self, now: float, rate: float) -> None:
        """Change the rate keeping the requests already "in the bucket": the backlog
        ``(tat - now) * rate`` is re-spread at the new rate, so a cut never frees a burst."""
        if self._tat > now:
            backlog = (self._tat - now) * self.rate
            self._tat = now + backlog / rate
        self.rate = rate

    def _clamp_tokens(self, tokens: int) -> int:
        tokens = max(0, int(tokens))
        return tokens if self.tpm else 0

    def _refill(self, now: float) -> None:
        if not self.tpm:
            return
        if self._tokens_at is not None:
            self._tokens = min(
                self._token_capacity, self._tokens + (now - self._tokens_at) * self.tpm / 60.0
            )
        self._tokens_at = now

    def _check_daily(self) -> None:
        if self.rpd is None:
            return
        day = self._today()
        if day != self._day:
            self._day, self._daily_used = day, 0
        if self._daily_used >= self.rpd:
            raise DailyLimitReached(
                f"the daily budget of {self.rpd} requests (llm.rate_limits.rpd) is used up "
                f"for {day}"
            )

    def _ready_at(self, now: float, tokens: int) -> float:
        interval = 1.0 / self.rate
        ready = max(self._tat - (self.burst - 1) * interval, self._pause_until)
        if self.tpm and tokens:
            self._refill(now)
            # a request larger than the bucket waits for a full bucket and leaves a debt
            # (the level goes negative), so the long-run rate stays exactly tpm
            need = min(float(tokens), self._token_capacity)
            if self._tokens < need:
                ready = max(ready, now + (need - self._tokens) * 60.0 / self.tpm)
        return ready

    def _grant(self, now: float, tokens: int) -> Permit:
        if self.rpd is not None:
            if self._take_daily is not None and not self._take_daily(self._day):
                # other runs sharing the store spent the rest of today's budget
                self._daily_used = self.rpd
                self._check_daily()  # raises DailyLimitReached, nothing granted
            self._daily_used += 1
        self._tat = max(self._tat, now) + 1.0 / self.rate
        if self.tpm:
            self._tokens -= tokens
        self._serial += 1
        self.granted += 1
        return Permit(serial=self._serial, granted_at=now, tokens=tokens)

    def _schedule(self) -> None:
        """Grant every waiter that is ready now, in order; arm one timer for the next head."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiters:
            return
        loop = asyncio.get_running_loop()
        now = self._now()
        while self._waiters:
            future, tokens = self._waiters[0]
            if future.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            try:
                self._check_daily()
            except DailyLimitReached as exc:
                self._waiters.popleft()
                future.set_exception(exc)
                continue
            ready = self._ready_at(now, tokens)
            if ready > now + _SLACK:
                self._timer = loop.call_later(ready - now, self._schedule)
                return
            self._waiters.popleft()
            try:
                future.set_result(self._grant(now, tokens))
            except DailyLimitReached as exc:
                future.set_exception(exc)


class Unlimited:
    """No limit at all (the offline heuristic provider)."""

    def __init__(self) -> None:
        self._serial = 0
        self.granted = 0
        self.rate_limited = 0

    limit_rpm: float | None = None

    async def acquire(self, tokens_estimate: int = 0) -> Permit:
        self._serial += 1
        self.granted += 1
        return Permit(serial=self._serial, granted_at=0.0, tokens=0)

    def feedback(self, permit: Permit, outcome: Outcome) -> None:
        if outcome.kind == "rate_limited":
            self.rate_limited += 1
