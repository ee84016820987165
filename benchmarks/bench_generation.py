"""Strategy generation: the seed's table, rebuilt side by side with the seed's own design.

Run: ``python benchmarks/bench_generation.py`` (about a minute; ``--quick`` for half).

Part 1 reproduces the seed's table (workers 1/4/8/12/16 at 8 req/s, plus ``auto``) against
the simulator (``rewts.sim``) through the real openai SDK. Time is scaled by ``--scale``
(default 4): latency 2.5 s / scale (the seed's 1 worker made 0.4 req/s, i.e. 2.5 s calls) and
rate 8 req/s * scale, so every ratio is the seed's while the run is short. Each row runs twice:

* **rewts**: ``generate_strategies`` with ``parallel_workers: N`` (asyncio engine, GCRA limiter,
  SQLite cache);
* **seed**: the seed's design rebuilt here: a ``ThreadPoolExecutor`` of N workers, a rate limiter
  that sleeps while holding its lock at a fixed interval, the synchronous SDK client.

Printed per row: throughput in the seed's units (req/s at scale 1), as a share of the limit,
and the speed-up of rewts over the seed's design. ``auto`` is compared with the seed's default
(8 workers).

Part 2: a 100 %-cache-hit rerun of 6 tickers x 88 periods and its wall time (the seed quotes
12 s for 88 strategies).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openai

from rewts.config import Config
from rewts.data import prepare_data
from rewts.data.timeline import Timeline
from rewts.llm import generate_strategies
from rewts.llm.prompts import render_messages, snapshot_inputs, system_message
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA, parse_strategy
from rewts.sim import SimConfig, SimServer

TICKERS = ["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"]
SEED_RATE = 8.0  # req/s, the seed's max_requests_per_second
SEED_LATENCY = 2.5  # s: the seed's 1 worker made 0.4 req/s
PERIODS = 88


@dataclass
class Dataset:
    frames: dict


def _dataset(tmp: Path, periods: int, tickers: list[str]) -> Dataset:
    """Synthetic market data through the real data stage, cut to ``periods`` strategy periods."""
    cfg = Config.model_validate(
        {
            "tickers": tickers,
            "data": {
                "source": "synthetic",
                "processed_dir": str(tmp / "processed"),
                "start_date": "2010-01-01",
                "end_date": "2019-12-31",
            },
        }
    )
    ds = prepare_data(cfg)
    rows = cfg.data.warmup_days + periods * cfg.strategy_frequency
    return Dataset({t: ds.frames[t].iloc[:rows] for t in tickers})


def _cfg(tmp: Path, sim: SimServer, workers, rate: float, tickers: list[str], tag: str) -> Config:
    return Config.model_validate(
        {
            "tickers": tickers,
            "parallel_workers": workers,
            "max_requests_per_second": rate,
            "llm": {
                "provider": "local",
                "model": "deepseek-chat",
                "base_url": sim.openai_base_url,
                "logprobs": False,
                "cache_path": str(tmp / f"cache-{tag}.sqlite"),
                "output_dir": str(tmp / f"out-{tag}"),
            },
        }
    )


# ------------------------------------------------------------- the seed, rebuilt


class SeedRateLimiter:
    """The seed's limiter: a fixed minimum interval, enforced by sleeping under the lock."""

    def __init__(self, max_per_second: float) -> None:
        self.interval = 1.0 / max_per_second
        self.lock = threading.Lock()
        self.last = 0.0

    def wait(self) -> None:
        with self.lock:
            elapsed = time.monotonic() - self.last
            if elapsed < self.interval:
                time.sleep(self.interval - elapsed)
            self.last = time.monotonic()


def seed_run(sim: SimServer, dataset: Dataset, tickers: list[str], workers: int, rate: float):
    """The seed's ThreadPoolExecutor design over the same prompts; returns (wall_s, n)."""
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="seed", max_retries=0, timeout=60)
    limiter = SeedRateLimiter(rate)
    system = system_message("v1")
    jobs = []
    for t in tickers:
        frame = dataset.frames[t]
        tl = Timeline(frame.index, strategy_frequency=20, warmup=200)
        jobs += [
            render_messages(t, p, snapshot_inputs(frame, p), system=system) for p in tl.periods
        ]
    cache: dict[int, object] = {}
    cache_lock = threading.Lock()

    def one(i_messages):
        i, messages = i_messages
        limiter.wait()
        out = client.chat.completions.create(
            model="deepseek-chat",
            messages=list(messages),
            temperature=0.0,
            max_tokens=512,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "strategy", "strict": True, "schema": STRATEGY_JSON_SCHEMA},
            },
        )
        strategy = parse_strategy(out.choices[0].message.content)
        with cache_lock:
            cache[i] = strategy

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, enumerate(jobs)))
    client.close()
    return time.perf_counter() - t0, len(jobs)


def _steady_rate(sim: SimServer, skip: int) -> float:
    """Requests per second in steady state: the server's completions after the first ``skip``
    (the first wave, which the rate limiter spaces rather than the workers)."""
    done = sorted(e["t_end"] for e in sim.stats()["log"])
    return (len(done) - skip) / (done[-1] - done[skip - 1])


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=4.0, help="time compression (default 4)")
    ap.add_argument("--quick", action="store_true", help="time scaled 8x instead of 4x")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.quick:
        args.scale = 8.0
    k = args.scale
    rate, latency = SEED_RATE * k, SEED_LATENCY / k
    figures: dict = {"scale": k, "rate_req_s": rate, "latency_s": latency, "rows": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        one = _dataset(tmp / "one", 64, ["AAPL"])
        print(
            f"Seed table: workers at {SEED_RATE:g} req/s with {SEED_LATENCY:g} s calls, time "
            f"scaled {k:g}x ({rate:g} req/s, {latency:.3f} s calls on the simulator); "
            "req/s = the server's steady-state completion rate, in the seed's units\n"
        )
        header = (
            f"{'workers':>8} | {'rewts req/s':>11} | {'% of limit':>10} | {'seed req/s':>10} | "
            f"{'% of limit':>10} | {'speed-up':>8} | {'ideal':>5} | {'88 strategies':>13}"
        )
        print(header)
        print("-" * len(header))
        seed_default = None
        with SimServer(SimConfig(latency_s=latency, answers_file=None)) as sim:
            for workers in (1, 4, 8, 12, 16, "auto"):
                # four waves of requests per row: long enough for a steady state
                n = max(8, 4 * (16 if workers == "auto" else workers))
                data = Dataset({"AAPL": one.frames["AAPL"].iloc[: 200 + 20 * n]})
                cfg = _cfg(tmp, sim, workers, rate, ["AAPL"], f"w{workers}")
                sim.reset_stats()
                generate_strategies(cfg, data)
                wave = 16 if workers == "auto" else workers
                ours = _steady_rate(sim, wave) / k
                seed_n = 8 if workers == "auto" else workers
                if workers == "auto" and seed_default is not None:
                    seed = seed_default
                else:
                    sim.reset_stats()
                    seed_run(sim, data, ["AAPL"], seed_n, rate)
                    seed = _steady_rate(sim, seed_n) / k
                    if seed_n == 8:
                        seed_default = seed
                ideal = SEED_RATE if workers == "auto" else min(SEED_RATE, workers / SEED_LATENCY)
                label = "auto" if workers == "auto" else str(workers)
                vs = " (seed: 8 workers)" if workers == "auto" else ""
                per_ticker = PERIODS / ours + SEED_LATENCY
                print(
                    f"{label:>8} | {ours:>11.2f} | {100 * ours / SEED_RATE:>9.1f}% | {seed:>10.2f} | "
                    f"{100 * seed / SEED_RATE:>9.1f}% | {ours / seed:>7.2f}x | {ideal:>5.2f} | "
                    f"{per_ticker:>11.0f} s{vs}"
                )
                figures["rows"].append(
                    {"workers": label, "rewts_req_s": ours, "seed_req_s": seed, "ideal": ideal}
                )

        # the seed's headline case: 40 s calls against a 1000 RPM limit, time scaled 20x
        hk, n = 20.0, 44
        h_rate, h_latency = 1000.0 / 60.0 * hk, 40.0 / hk
        print(
            f"\nHeadline case: 40 s calls, 1000 RPM limit, {n} strategies, time scaled {hk:g}x "
            f"({h_rate:.0f} req/s, {h_latency:g} s calls)"
        )
        data = Dataset({"AAPL": one.frames["AAPL"].iloc[: 200 + 20 * n]})
        with SimServer(SimConfig(latency_s=h_latency, answers_file=None)) as sim:
            res = generate_strategies(_cfg(tmp, sim, "auto", h_rate, ["AAPL"], "headline"), data)
            in_flight = sim.stats(log=False)["max_in_flight"]
            seed_wall, _ = seed_run(sim, data, ["AAPL"], 8, h_rate)
        ours_wall = res.summary.wall_s
        print(
            f"  rewts auto: {ours_wall:.2f} s (max {in_flight} in flight) | seed, 8 workers: "
            f"{seed_wall:.2f} s | speed-up {seed_wall / ours_wall:.1f}x | unscaled: "
            f"{ours_wall * hk:.0f} s vs {seed_wall * hk / 60:.1f} min"
        )
        figures["headline"] = {"rewts_s": ours_wall, "seed_s": seed_wall, "scale": hk, "n": n}

        print(f"\nCache: {len(TICKERS)} tickers x {PERIODS} periods, 100 % hits on the rerun")
        six = _dataset(tmp / "six", PERIODS, TICKERS)
        with SimServer(SimConfig(latency_s=0.0, answers_file=None)) as sim:
            cfg = _cfg(tmp, sim, "auto", 2000.0, TICKERS, "six")
            t0 = time.perf_counter()
            first = generate_strategies(cfg, six)
            fill = time.perf_counter() - t0
            before = sim.stats(log=False)["requests"]
            t0 = time.perf_counter()
            rerun = generate_strategies(cfg, six)
            total_rerun = time.perf_counter() - t0
            sent = sim.stats(log=False)["requests"] - before
        s = rerun.summary
        print(f"  first run: {first.summary.total} strategies generated in {fill:.2f} s")
        print(
            f"  rerun: {s.cache_hits}/{s.total} cache hits, {sent} requests, engine "
            f"{s.wall_s * 1000:.0f} ms, whole call (prompts, cache, Parquet) {total_rerun:.2f} s "
            f"(the seed: 12 s for 88 -> {12.0 * s.total / 88:.0f} s for {s.total})"
        )
        figures["cache_rerun"] = {
            "strategies": s.total,
            "hits": s.cache_hits,
            "requests": sent,
            "engine_s": s.wall_s,
            "call_s": total_rerun,
        }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
