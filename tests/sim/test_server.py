"""The server itself: concurrency, the HTTP control plane, limits over time, config checks."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import aiohttp
import pytest

from rewts.errors import ConfigError
from rewts.sim import SimConfig, SimServer
from rewts.sim.app import SimState

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


async def _post_many(url: str, n: int, headers: dict[str, str] | None = None) -> list[int]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> int:
            body = {**BODY, "messages": [{"role": "user", "content": f"q{i}"}]}
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                return resp.status

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_a_thousand_concurrent_connections_are_held_without_blocking() -> None:
    n, latency = 1000, 1.5
    with SimServer(SimConfig(latency_s=latency)) as sim:
        t0 = time.monotonic()
        statuses = asyncio.run(_post_many(f"{sim.openai_base_url}/chat/completions", n))
        wall = time.monotonic() - t0
        stats = sim.stats(log=False)
    assert statuses == [200] * n
    assert stats["max_in_flight"] >= 900  # all waiting at once, none serialised behind another
    assert wall < latency + 4.0  # sleeping never blocks the loop


def test_stats_and_control_over_http() -> None:
    with SimServer(SimConfig(latency_s=0.0)) as sim:

        async def go():
            async with aiohttp.ClientSession() as session:
                await _post_many(f"{sim.openai_base_url}/chat/completions", 3)
                async with session.get(f"{sim.url}/stats") as resp:
                    stats = await resp.json()
                async with session.post(
                    f"{sim.url}/control", json={"error_rate": 1.0, "api_key": "k-123"}
                ) as resp:
                    control = await resp.json()
                async with session.post(f"{sim.url}/control", json={"error_rat": 1.0}) as resp:
                    bad = (resp.status, await resp.json())
                failing = await _post_many(
                    f"{sim.openai_base_url}/chat/completions", 2, {"Authorization": "Bearer k-123"}
                )
                async with session.post(
                    f"{sim.url}/control", json={"reset_stats": True, "error_rate": 0}
                ) as resp:
                    assert resp.status == 200
                async with session.get(f"{sim.url}/stats?log=0") as resp:
                    after = await resp.json()
                return stats, control, bad, failing, after

        stats, control, bad, failing, after = asyncio.run(go())
        assert sim.config.error_rate == 0 and sim.config.api_key == "k-123"
    assert stats["requests"] == 3 and stats["by_status"] == {"200": 3}
    assert [e["status"] for e in stats["log"]] == [200, 200, 200]
    assert {e["format"] for e in stats["log"]} == {"openai"} and stats["log"][0]["model"] == "m"
    assert all(e["t"] <= e["t_end"] for e in stats["log"])
    assert stats["tokens_in"] == 3 and stats["tokens_out"] > 0
    assert control["error_rate"] == 1.0 and control["api_key"] == "***"  # never echoed
    assert bad[0] == 400 and "error_rat" in bad[1]["error"]
    assert all(s in (500, 502, 503) for s in failing)
    assert after["requests"] == 0 and "log" not in after


def test_rpm_window_slides_and_429s_do_not_count() -> None:
    window = 0.6
    with SimServer(SimConfig(latency_s=0.0, rpm_limit=3, window_s=window)) as sim:
        url = f"{sim.openai_base_url}/chat/completions"
        first = asyncio.run(_post_many(url, 5))
        time.sleep(window + 0.05)
        second = asyncio.run(_post_many(url, 3))
        log = sim.stats()["log"]
    assert sorted(first) == [200, 200, 200, 429, 429]
    assert second == [200, 200, 200]  # the refused ones did not use the window
    admitted = [e["t"] for e in log if e["status"] == 200]
    # no window of window_s ever holds more than rpm admitted requests
    assert all(sum(1 for u in admitted if t <= u < t + window) <= 3 for t in admitted)


def test_daily_quota_survives_a_restart() -> None:
    with SimServer(SimConfig(latency_s=0.0, rpd_limit=2)) as sim:
        url = f"{sim.openai_base_url}/chat/completions"
        assert asyncio.run(_post_many(url, 2)) == [200, 200]
        sim.stop()
        sim.start()
        assert asyncio.run(_post_many(url, 1)) == [429]
        assert sim.stats(log=False)["faults"]["limit_rpd"] == 1


def test_lognormal_latency_keeps_the_mean() -> None:
    state = SimState(SimConfig(latency_s=2.0, latency_dist="lognormal", latency_sigma=0.6, seed=3))
    draws = [state._latency(state.config) for _ in range(20000)]
    assert statistics.fmean(draws) == pytest.approx(2.0, rel=0.03)
    assert statistics.median(draws) < 2.0 < max(draws)  # right-skewed like real API latency
    fixed = SimState(SimConfig(latency_s=0.5))
    assert {fixed._latency(fixed.config) for _ in range(10)} == {0.5}


def test_latency_is_applied() -> None:
    with SimServer(SimConfig(latency_s=0.3)) as sim:
        t0 = time.monotonic()
        asyncio.run(_post_many(f"{sim.openai_base_url}/chat/completions", 20))
        assert 0.3 <= time.monotonic() - t0 < 2.0


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"latency_dist": "gamma"}, "latency_dist"),
        ({"error_rate": 0.6, "drop_rate": 0.6}, "add up"),
        ({"window_s": 0}, "window_s"),
        ({"latency_s": -1}, "latency_s"),
        ({"api_key": ""}, "api_key"),
    ],
)
def test_bad_settings_name_the_field(changes, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        SimConfig(**changes)


def test_update_rejects_unknown_names_and_hides_the_key() -> None:
    cfg = SimConfig(api_key="secret-key-value")
    assert "secret-key-value" not in repr(cfg)
    assert "secret-key-value" not in json.dumps(cfg.public())
    with pytest.raises(ConfigError, match="rpm"):
        cfg.replace(rpm=5)


def test_unparseable_body_unknown_route_and_missing_gemini_key() -> None:
    with SimServer(SimConfig(latency_s=0.0, api_key="k-123456")) as sim:

        async def go():
            auth = {"Authorization": "Bearer k-123456"}
            async with aiohttp.ClientSession() as session:
                url = f"{sim.openai_base_url}/chat/completions"
                async with session.post(url, data=b"{nope", headers=auth) as r1:
                    b1 = (r1.status, await r1.json())
                url = f"{sim.url}/v1beta/models/x:streamGenerateContent"
                async with session.post(url, json={}) as r2:
                    b2 = (r2.status, await r2.json())
                url = f"{sim.url}/v1beta/models/x:generateContent"
                async with session.post(url, json={}) as r3:
                    b3 = (r3.status, await r3.json())
                return b1, b2, b3

        (s1, b1), (s2, b2), (s3, b3) = asyncio.run(go())
    assert s1 == 400 and b1["error"]["type"] == "invalid_request_error"
    assert s2 == 404 and b2["error"]["status"] == "NOT_FOUND"
    assert s3 == 403 and b3["error"]["status"] == "PERMISSION_DENIED"  # no key at all
