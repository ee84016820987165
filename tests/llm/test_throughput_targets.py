"""The generator issue's throughput targets at full scale, through the real openai SDK.

~500 strategies at 100 req/s with 1 s calls (rate-bound) and 8 s calls (latency-bound). The
simulator runs in its own process (``rewts sim``) so that its CPU does not share the
client's GIL, as a real API would not; the smaller in-process variants live in test_sim.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from rewts.llm import generate_strategies

from .helpers import fake_dataset
from .test_sim import _cfg

pytestmark = pytest.mark.slow

TICKERS = ("AAA", "BBB", "CCC", "DDD")
PERIODS = 125  # 4 x 125 = 500 strategies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _SimProcess:
    """``rewts sim`` in a child process, with the attributes ``_cfg`` reads."""

    def __init__(self, latency: float) -> None:
        port = _free_port()
        self.openai_base_url = f"http://127.0.0.1:{port}/v1"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rewts.cli",
                "sim",
                "--port",
                str(port),
                "--latency",
                str(latency),
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1).read()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.mark.parametrize("latency", [1.0, 8.0], ids=["rate-bound-1s", "latency-bound-8s"])
def test_500_strategies_at_100_rps_finish_within_25_percent_of_n_over_rate_plus_latency(
    tmp_path, latency
):
    rate, n = 100.0, len(TICKERS) * PERIODS
    sim = _SimProcess(latency)
    try:
        dataset = fake_dataset(TICKERS, n=200 + 5 * PERIODS)
        result = generate_strategies(_cfg(tmp_path, sim, rps=rate), dataset)
    finally:
        sim.close()
    s = result.summary
    assert s.total == s.generated == n and s.fallbacks == 0 and s.failures == 0
    ideal = n / rate + latency
    # never faster than the limit, far below serial; bench_generation.py measures the ratio
    assert 0.9 * ideal <= s.wall_s <= 2.0 * ideal, (s.wall_s, ideal)
    # Little's law from the start: about rate x latency requests in flight
    assert s.max_in_flight >= min(n, 0.8 * rate * latency)
