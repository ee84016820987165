"""Soak: 20,000 requests through everything a request passes (the engine, the rate limiter,
the official openai SDK, the SQLite cache) against the simulator, at a high rate.

Run: ``python benchmarks/soak.py`` (20,000 requests at 150 req/s: about two and a half
minutes), ``--requests 3000`` for a short run, ``--max-seconds`` bounds the run (what finished
by then is reported). Not part of CI.

The simulator runs in its own process (``rewts sim``), so the memory and file descriptors
measured are the client's alone. Printed:

* every 1,000 finished tasks: elapsed time, throughput over that thousand, RSS now and the peak
  so far, open file descriptors, requests in flight, Python allocated blocks, requests queued
  at the limiter (above 0: the limiter sets the pace), the mean latency seen by the client
  (with the simulator's own latency fixed, growth is time the loaded machine added) and the
  client's CPU use;
* file descriptors before the run and after the provider and the cache are closed (a leak
  shows as a difference);
* steady throughput (after the first wave) as a share of the configured limit;
* the RSS slope per 1,000 tasks from the second thousand to the end: the engine returns every
  task's result (strategy, answer text, usage), so RSS grows with the results themselves; what
  tells a leak is the count of Python allocated blocks after the results are dropped (it goes
  back to where it was before the run when nothing leaks);
* client CPU per request, to tell a CPU-bound machine from a limiter that holds back.

Exit status 1 when descriptors leaked, a task is missing, or throughput fell under 80 % of the
limit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from rewts.config import Config
from rewts.llm.cache import StrategyCache
from rewts.llm.engine import Engine, Task
from rewts.llm.generate import engine_settings, make_limiter
from rewts.llm.monitor import TaskFinished
from rewts.llm.providers import make_provider
from rewts.llm.providers.base import Request
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA

#: a prompt of realistic size (the strategist's is ~3-4 KB)
PADDING = "Close 101.2, SMA20 99.8 (slope +0.4 %), RSI 57, MACD 0.31/0.22, ATR 2.1; " * 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_sim(port: int, latency: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from rewts.cli import main; main()", "sim"]
    cmd += ["--port", str(port), "--latency", str(latency), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the simulator did not start within 60 s")


def _sim_stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats?log=0", timeout=10) as resp:
        data = json.load(resp)
    data.pop("log", None)
    return data


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def _tasks(n: int, model: str) -> list[Task]:
    schema = ("strategy", STRATEGY_JSON_SCHEMA)
    out = []
    for i in range(n):
        messages = (
            {"role": "system", "content": "You are a trading strategist. Answer in JSON."},
            {"role": "user", "content": f"Ticker T{i % 50:02d}, period {i}. {PADDING}"},
        )
        request = Request(messages, model, max_tokens=512, json_schema=schema)
        out.append(Task(id=i, request=request, meta={"ticker": f"T{i % 50:02d}", "period": i}))
    return out


class Sampler:
    """Every ``every`` finished tasks: a row of figures (an engine event subscriber)."""

    def __init__(self, every: int, engine: Engine, proc: psutil.Process) -> None:
        self.every = every
        self.engine = engine
        self.proc = proc
        self.done = 0
        self.rows: list[dict[str, float]] = []
        self.t0 = time.perf_counter()
        self._last = (0, self.t0)
        self._lat = (0.0, 0)
        self._cpu = sum(proc.cpu_times()[:2])

    def __call__(self, event: Any) -> None:
        if not isinstance(event, TaskFinished):
            return
        self.done += 1
        if self.done % self.every:
            return
        now = time.perf_counter()
        n0, t0 = self._last
        self._last = (self.done, now)
        stats = self.engine.stats
        lat0, gen0 = self._lat
        self._lat = (stats.latency_sum_s, stats.generated)
        latency = (stats.latency_sum_s - lat0) / max(stats.generated - gen0, 1)
        cpu = sum(self.proc.cpu_times()[:2])
        cpu_share, self._cpu = (cpu - self._cpu) / max(now - t0, 1e-9), cpu
        self.rows.append(
            {
                "done": self.done,
                "elapsed_s": now - self.t0,
                "rate": (self.done - n0) / max(now - t0, 1e-9),
                "rss_mb": self.proc.memory_info().rss / 2**20,
                "peak_mb": _peak_rss_mb(),
                "fds": self.proc.num_fds(),
                "in_flight": self.engine.stats.in_flight,
                "blocks_k": sys.getallocatedblocks() / 1000,
                # waiting for a permit: > 0 means the limiter, not the machine, sets the pace
                "queued": getattr(self.engine.limiter, "queued", 0),
                "latency_ms": 1000 * latency,
                "cpu_pct": 100 * cpu_share,
            }
        )
        r = self.rows[-1]
        print(
            f"{r['done']:>7} {r['elapsed_s']:>9.1f} {r['rate']:>9.1f} {r['rss_mb']:>9.1f} "
            f"{r['peak_mb']:>9.1f} {r['fds']:>5} {r['in_flight']:>9} {r['blocks_k']:>9.0f} "
            f"{r['queued']:>6} {r['latency_ms']:>10.0f} {r['cpu_pct']:>7.0f}",
            flush=True,
        )


async def _run(engine: Engine, tasks: list[Task], provider: Any, max_s: float) -> dict:
    try:
        return await asyncio.wait_for(engine.run(tasks), max_s)
    except TimeoutError:
        print(f"stopped at --max-seconds {max_s:g}", flush=True)
        return {}
    finally:
        await provider.aclose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=150.0, help="limit, requests per second")
    ap.add_argument("--latency", type=float, default=0.2, help="simulated answer latency (s)")
    ap.add_argument(
        "--burst", type=int, default=1, help="llm.rate_limits.burst (1 = evenly spaced)"
    )
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument(
        "--every",
        type=int,
        default=None,
        help="a row every this many tasks (default: 1000, or a tenth of a shorter run)",
    )
    args = ap.parse_args(argv)
    if args.every is None:  # a short run still gets rows to measure its steady state from
        args.every = max(1, min(1000, args.requests // 10))

    proc = psutil.Process()
    port = _free_port()
    sim = _start_sim(port, args.latency)
    tmp = Path(tempfile.mkdtemp(prefix="rewts-soak-"))
    try:
        cfg = Config.model_validate(
            {
                "tickers": ["AAPL"],
                "max_requests_per_second": args.rate,
                "parallel_workers": "auto",
                "llm": {
                    "provider": "local",
                    "model": "deepseek-chat",
                    "base_url": f"http://127.0.0.1:{port}/v1",
                    "logprobs": False,
                    "timeout_s": 30.0,
                    "latency_prior_s": args.latency,
                    "rate_limits": {"burst": args.burst},
                    "cache_path": str(tmp / "cache.sqlite"),
                },
            }
        )
        tasks = _tasks(args.requests, "deepseek-chat")
        # a short warm-up run first: the SDK and pydantic build their lazy machinery on first
        # use, which would otherwise read as growth (different prompts: nothing is cached)
        _warm_up(cfg, 300)
        gc.collect()
        fds_before = proc.num_fds()
        rss_before = proc.memory_info().rss / 2**20
        blocks_before = sys.getallocatedblocks()
        cpu_before = sum(proc.cpu_times()[:2])
        provider = make_provider(cfg)
        cache = StrategyCache(cfg.llm.cache_path)
        limiter = make_limiter(cfg, provider, cache)
        engine = Engine(provider, limiter, cache=cache, settings=engine_settings(cfg, limiter))
        sampler = Sampler(args.every, engine, proc)
        engine.subscribe(sampler)
        print(
            f"soak: {args.requests} requests, limit {args.rate:g} req/s (burst {args.burst}), "
            f"simulated latency "
            f"{args.latency:g} s, concurrency {engine.concurrency_limit} (auto)\n"
            f"fds before: {fds_before}, RSS before: {rss_before:.1f} MB (tasks built)\n"
            f"{'done':>7} {'elapsed_s':>9} {'req/s':>9} {'rss_mb':>9} {'peak_mb':>9} "
            f"{'fds':>5} {'in_flight':>9} {'blocks_k':>9} {'queued':>6} {'latency_ms':>10} "
            f"{'cpu_%':>7}",
            flush=True,
        )
        t0 = time.perf_counter()
        results = asyncio.run(_run(engine, tasks, provider, args.max_seconds))
        wall = time.perf_counter() - t0
        cpu_ms = 1000 * (sum(proc.cpu_times()[:2]) - cpu_before) / max(args.requests, 1)
        entries = len(cache)
        ok_cache = cache.integrity_ok()
        cache.close()
        failed = [r for r in results.values() if r.status != "ok"]
        for r in failed[:5]:
            print(f"task {r.id}: {r.status}: {r.error}")
        blocks_with_results = sys.getallocatedblocks()
        del results, failed, engine, limiter, provider, cache, sampler.engine
        gc.collect()
        fds_after = proc.num_fds()
        blocks = (blocks_before, blocks_with_results, sys.getallocatedblocks())
        stats = _sim_stats(port)
    finally:
        sim.terminate()
        sim.wait(10)
    return _report(args, sampler.rows, wall, fds_before, fds_after, entries, ok_cache,
                   cpu_ms, stats, blocks)  # fmt: skip


def _warm_up(cfg: Config, n: int) -> None:
    warm = _tasks(n, "deepseek-chat")
    for t in warm:
        t.id = ("warm-up", t.id)
        t.request = Request(
            ({"role": "user", "content": f"warm-up {t.id[1]}"},),
            "deepseek-chat",
            json_schema=("strategy", STRATEGY_JSON_SCHEMA),
        )
    provider = make_provider(cfg)
    cache = StrategyCache(cfg.llm.cache_path)
    limiter = make_limiter(cfg, provider, cache)
    engine = Engine(provider, limiter, cache=cache, settings=engine_settings(cfg, limiter))
    asyncio.run(_run(engine, warm, provider, 60.0))
    cache.clear()
    cache.close()


def _report(args, rows, wall, fds_before, fds_after, entries, ok_cache, cpu_ms, stats,
            blocks):  # fmt: skip
    done = rows[-1]["done"] if rows else 0
    # steady state: from the end of the first row (the first wave in flight) to the last row
    # before the drain (the last tasks wait for stragglers and retries, not for the limiter)
    body = rows[:-1] if len(rows) >= 3 else rows
    steady_rate: float | None = None  # None: too few rows to leave the waves out
    if len(body) >= 2:
        a, b = body[0], body[-1]
        steady_rate = (b["done"] - a["done"]) / max(b["elapsed_s"] - a["elapsed_s"], 1e-9)
    slope = float("nan")
    if len(rows) >= 3:
        first, last = rows[1], rows[-1]
        slope = (last["rss_mb"] - first["rss_mb"]) / ((last["done"] - first["done"]) / 1000)
    print()
    print(f"finished: {entries} cached answers of {args.requests} requests in {wall:.1f} s")
    print(f"server saw: {stats['requests']} requests, max in flight {stats['max_in_flight']}")
    if steady_rate is None:
        print(f"steady throughput: not measured ({len(rows)} row(s) of {args.every} tasks; it "
              "needs two: raise --requests or lower --every)")  # fmt: skip
    else:
        print(f"steady throughput (first and last {args.every} left out): {steady_rate:.1f} "
              f"req/s = {100 * steady_rate / args.rate:.0f} % of the {args.rate:g} req/s limit")  # fmt: skip
    if rows:
        print(f"RSS: {rows[0]['rss_mb']:.1f} MB at {rows[0]['done']}, {rows[-1]['rss_mb']:.1f} MB "
              f"at {rows[-1]['done']}; peak {max(r['peak_mb'] for r in rows):.1f} MB; "
              f"slope {slope:.2f} MB per 1,000 tasks")  # fmt: skip
    print(
        f"client CPU: {cpu_ms:.2f} ms per request (the SDK, the engine, the cache; a "
        "throughput under the limit with about 1000/limit ms of CPU per request is CPU-bound)"
    )
    print(f"file descriptors: {fds_before} before, {fds_after} after "
          f"(peak {max((r['fds'] for r in rows), default=fds_before)} during)")  # fmt: skip
    print(f"cache integrity_check: {'ok' if ok_cache else 'FAILED'}")
    before, during, after = blocks
    n = max(args.requests, 1)
    print(f"Python allocated blocks: {before:,} before, {during:,} holding the results "
          f"({(during - before) / n:.1f} per task: the strategy, answer text and usage the run "
          f"returns), {after:,} after dropping them ({(after - before) / n:+.2f} per task: what "
          "a leak would keep)")  # fmt: skip
    failures = []
    if fds_after > fds_before:
        failures.append(f"{fds_after - fds_before} file descriptors leaked")
    if done < args.requests and entries < args.requests:
        failures.append(f"only {entries} of {args.requests} answered")
    if steady_rate is not None and steady_rate < 0.8 * args.rate:
        failures.append(f"throughput {steady_rate:.1f} req/s under 80 % of the limit")
    if not ok_cache:
        failures.append("cache integrity_check failed")
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
