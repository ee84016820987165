"""The rate limiter in virtual time: rate + burst bound, FIFO, pauses, AIMD, tokens, daily."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewts.llm.cache import StrategyCache
from rewts.llm.limiter import DailyLimitReached, Limiter, Outcome, RateLimiter, Unlimited

from .vtime import run_virtual


def _max_in_window_excess(grants: list[float], rate: float, burst: int) -> float:
    """max over all windows [g_i, g_j] of count - (burst + rate * length); <= 0 is compliant."""
    g = np.sort(np.asarray(grants))
    n = len(g)
    if n == 0:
        return -np.inf
    i, j = np.triu_indices(n)
    return float(np.max((j - i + 1) - (burst + rate * (g[j] - g[i]))))


client = st.tuples(
    st.floats(0.0, 20.0),  # arrival
    st.floats(0.0, 3.0),  # latency
    st.lists(st.sampled_from(["ok", "429", "429ra", "err"]), min_size=1, max_size=4),
)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.5, 50.0),
    burst=st.integers(1, 5),
    clients=st.lists(client, min_size=1, max_size=40),
)
def test_never_more_than_rate_plus_burst_in_any_window(rate, burst, clients):
    """Random arrivals, latencies and 429 sequences; every retry passes the limiter."""

    async def main():
        limiter = RateLimiter(rate, burst=burst)
        loop = asyncio.get_running_loop()
        grants: list[float] = []

        async def one(arrival, latency, outcomes):
            await asyncio.sleep(arrival)
            for kind in outcomes:  # each outcome is one attempt: retries acquire again
                permit = await limiter.acquire()
                grants.append(loop.time())
                await asyncio.sleep(latency)
                if kind == "ok":
                    limiter.feedback(permit, Outcome("ok"))
                    return
                if kind == "err":
                    limiter.feedback(permit, Outcome("error"))
                else:
                    ra = 1.5 if kind == "429ra" else None
                    limiter.feedback(permit, Outcome("rate_limited", retry_after=ra))

        await asyncio.gather(*(one(*c) for c in clients))
        return grants, limiter

    grants, limiter = run_virtual(main())
    assert len(grants) == sum(
        len(c[2]) if "ok" not in c[2] else c[2].index("ok") + 1 for c in clients
    )
    assert limiter.granted == len(grants)  # retries count against the limit
    assert _max_in_window_excess(grants, rate, burst) <= 1e-6


@settings(max_examples=30, deadline=None)
@given(
    rate=st.floats(1.0, 20.0),
    tokens=st.lists(st.integers(0, 3000), min_size=2, max_size=30),
    tpm=st.sampled_from([None, 5000.0, 20000.0]),
)
def test_fifo_grants_in_arrival_order(rate, tokens, tpm):
    async def main():
        limiter = RateLimiter(rate, tpm=tpm)
        order: list[int] = []

        async def one(i, t):
            await asyncio.sleep(i * 1e-3)  # arrive in index order
            await limiter.acquire(t)
            order.append(i)

        await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
        return order

    assert run_virtual(main()) == list(range(len(tokens)))


def test_retry_after_pauses_everyone_not_just_the_caller():
    async def main():
        limiter = RateLimiter(100.0)
        loop = asyncio.get_running_loop()
        permit = await limiter.acquire()
        t0 = loop.time()
        limiter.feedback(permit, Outcome("rate_limited", retry_after=5.0))
        times = []
        for _ in range(3):
            await limiter.acquire()
            times.append(loop.time() - t0)
        return times, limiter

    times, limiter = run_virtual(main())
    assert times[0] == pytest.approx(5.0, abs=1e-6)
    assert all(t >= 5.0 - 1e-9 for t in times)
    assert limiter.pauses == 1


def test_aimd_cuts_once_per_round_and_recovers_additively():
    async def main():
        limiter = RateLimiter(10.0, increase=0.1)
        permits = [await limiter.acquire() for _ in range(5)]
        for p in permits:  # five 429s from one round: one cut
            limiter.feedback(p, Outcome("rate_limited"))
        after_round = limiter.rate
        p = await limiter.acquire()  # granted after the cut: may cut again
        limiter.feedback(p, Outcome("rate_limited"))
        after_second = limiter.rate
        for _ in range(3):
            limiter.feedback(await limiter.acquire(), Outcome("ok"))
        return after_round, after_second, limiter.rate

    after_round, after_second, recovered = run_virtual(main())
    assert after_round == pytest.approx(5.0)
    assert after_second == pytest.approx(2.5)
    assert recovered == pytest.approx(2.5 + 3 * 1.0)


def test_tokens_per_minute_estimate_then_correction():
    async def main():
        limiter = RateLimiter(1e6, tpm=6000.0)  # 100 tokens per second, bucket of 100
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        p = await limiter.acquire(100)  # the whole bucket
        limiter.feedback(p, Outcome("ok", tokens_used=50))  # used half: 50 come back
        await limiter.acquire(50)  # available at once
        immediate = loop.time() - t0
        big = await limiter.acquire(600)  # waits for a full bucket (1 s), leaves a debt of 500
        after_full = loop.time() - t0
        limiter.feedback(big, Outcome("ok", tokens_used=600))
        await limiter.acquire(100)  # the debt is paid first: 5 s, then a full bucket: 1 s
        return immediate, after_full, loop.time() - t0

    immediate, after_full, waited = run_virtual(main())
    assert immediate == pytest.approx(0.0, abs=1e-6)
    assert after_full == pytest.approx(1.0, rel=1e-3)
    assert waited == pytest.approx(7.0, rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    tpm=st.floats(600.0, 60000.0),
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=40),
)
def test_tokens_in_any_window_stay_within_the_rate_plus_one_bucket_and_one_request(tpm, sizes):
    async def main():
        limiter = RateLimiter(1e6, tpm=tpm)
        loop = asyncio.get_running_loop()
        grants = []
        for size in sizes:
            await limiter.acquire(size)
            grants.append((loop.time(), size))
        return grants

    grants = run_virtual(main())
    rate, capacity, biggest = tpm / 60.0, max(tpm / 60.0, 1.0), max(sizes)
    for i, (t_i, _) in enumerate(grants):
        total = 0
        for t_j, size in grants[i:]:
            total += size
            assert total <= capacity + biggest + rate * (t_j - t_i) + 1e-6


def test_requests_per_day_persist_across_runs_and_reset_on_a_new_day(tmp_path):
    cache = StrategyCache(tmp_path / "c.sqlite")
    day = {"d": "2026-01-01"}

    def make():
        return RateLimiter(
            1000.0,
            rpd=3,
            daily_used=cache.daily_requests(day["d"], "sim"),
            take_daily=lambda d: cache.take_daily_request(d, "sim", 3),
            today=lambda: day["d"],
        )

    async def use(limiter, n):
        for _ in range(n):
            await limiter.acquire()

    run_virtual(use(make(), 2))
    assert cache.daily_requests("2026-01-01", "sim") == 2
    second = make()  # a new run the same day: one request left
    run_virtual(use(second, 1))
    with pytest.raises(DailyLimitReached, match="rpd"):
        run_virtual(use(second, 1))
    day["d"] = "2026-01-02"
    run_virtual(use(make(), 3))
    cache.close()


def test_waiting_does_not_block_other_coroutines():
    """While callers queue for permits, unrelated work on the loop keeps running."""

    async def main():
        limiter = RateLimiter(1.0)
        loop = asyncio.get_running_loop()
        ticks = []

        async def ticker():
            for _ in range(5):
                await asyncio.sleep(0.5)
                ticks.append(loop.time())

        await asyncio.gather(ticker(), *(limiter.acquire() for _ in range(3)))
        return ticks

    assert run_virtual(main()) == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5])


def test_both_policies_satisfy_the_protocol():
    assert isinstance(RateLimiter(1.0), Limiter)
    assert isinstance(Unlimited(), Limiter)
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0.0)
