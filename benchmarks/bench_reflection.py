"""Reflection chains against the simulator: six chains take one chain's time; independent
periods are bound by the rate limit.

Run: ``python benchmarks/bench_reflection.py`` (about 15 s; ``--quick`` for half).

Every row calls ``generate_strategies`` against the simulator (``rewts.sim``) through the real
openai SDK, with the same client-side rate limit. Time is scaled by ``--scale`` (default 10):
the seed's 2.5 s calls take 0.25 s and the limit is ``--rate`` req/s (default 40, chosen so
that six concurrent chains, which need ``6 / latency`` = 24 req/s, stay under it):

* ``llm.reflection: true`` with 1 ticker, then 6 tickers: each ticker is a chain of
  ``--periods`` sequential calls; the chains of different tickers run concurrently, so six
  take about the time of one (the ratio is printed; the ideal is 1.00);
* the same six chains with the news analyst on (a headline in every window): analysts have no
  dependency and run in parallel with the chains, but they double the calls, which then need
  more than the limit allows (48 req/s): this row is bound by the limit, not by the chains;
* ``llm.reflection: false`` with 6 tickers: every period is independent, so the run is bound by
  the rate limit, not by latency; printed as the steady-state completion rate's share of the
  limit (the ideal is 100 %).

``llm.latency_prior_s`` is set to the call latency, as a user would set it to what they expect.
``floor s`` is what no schedule can beat: the longest chain of calls times the latency, or
the number of calls at the rate limit, whichever is longer.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rewts.config import Config
from rewts.llm import generate_strategies
from rewts.sim import SimConfig, SimServer

TICKERS = ["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"]
SEED_LATENCY = 2.5  # s: the seed's one worker made 0.4 req/s
WARMUP, FREQ = 200, 20


@dataclass
class Dataset:
    frames: dict


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Enough of the data stage's columns for a snapshot (close, volume, returns)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=n, name="date")
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0005, 0.015, n)))
    df = pd.DataFrame({"close": close, "volume": rng.integers(10**6, 5 * 10**6, n)}, index=dates)
    df["return_1d"] = df["close"].pct_change()
    df["return_5d"] = df["close"].pct_change(5)
    df["sma_20"] = df["close"].rolling(20, min_periods=1).mean()
    return df


def _dataset(tickers: list[str], periods: int) -> Dataset:
    n = WARMUP + periods * FREQ
    return Dataset({t: _frame(n, i) for i, t in enumerate(tickers)})


def _headlines(data: Dataset) -> pd.DataFrame:
    """One headline per ticker in every window (the day before each period starts)."""
    rows = []
    for ticker, frame in data.frames.items():
        for pos in range(WARMUP - 1, len(frame) - 1, FREQ):
            rows.append((frame.index[pos], ticker, f"{ticker} headline on day {pos}", "bench"))
    return pd.DataFrame(rows, columns=["date", "ticker", "headline", "source"])


def _cfg(
    tmp: Path,
    sim: SimServer,
    tickers: list[str],
    rate: float,
    reflection: bool,
    tag: str,
    latency: float,
):
    return Config.model_validate(
        {
            "tickers": tickers,
            "parallel_workers": "auto",
            "max_requests_per_second": rate,
            "llm": {
                "provider": "local",
                "model": "sim-model",
                "base_url": sim.openai_base_url,
                "logprobs": False,
                "reflection": reflection,
                "latency_prior_s": latency,
                "cache_path": str(tmp / f"cache-{tag}.sqlite"),
                "output_dir": str(tmp / f"out-{tag}"),
            },
        }
    )


def _steady_rate(sim: SimServer, skip: int) -> float:
    """Completions per second after the first ``skip`` (the first wave is spaced by the
    limiter's burst, not by its rate)."""
    done = sorted(e["t_end"] for e in sim.stats()["log"] if e["status"] == 200)
    return (len(done) - skip) / (done[-1] - done[skip - 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=10.0, help="time compression (default 10)")
    ap.add_argument("--rate", type=float, default=40.0, help="rate limit, req/s (default 40)")
    ap.add_argument("--periods", type=int, default=12, help="periods per ticker (default 12)")
    ap.add_argument("--quick", action="store_true", help="6 periods instead of 12")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    periods = 6 if args.quick else args.periods
    latency = SEED_LATENCY / args.scale
    rate = args.rate
    data = _dataset(TICKERS, periods)
    print(
        f"{periods} periods a ticker; calls take {latency:g} s (the seed's {SEED_LATENCY:g} s "
        f"scaled {args.scale:g}x); rate limit {rate:g} req/s; simulator via the openai SDK\n"
    )
    header = (
        f"{'run':<28} | {'calls':>5} | {'wall s':>6} | {'floor s':>7} | {'req/s':>6} | "
        f"{'% of limit':>10} | {'vs one chain':>12}"
    )
    print(header)
    print("-" * len(header))
    rows: list[dict] = []
    one_chain = None
    with (
        tempfile.TemporaryDirectory() as d,
        SimServer(SimConfig(latency_s=latency, answers_file=None)) as sim,
    ):
        tmp = Path(d)
        runs = [
            ("reflection on, 1 ticker", TICKERS[:1], True, False),
            ("reflection on, 6 tickers", TICKERS, True, False),
            ("reflection on + news, 6", TICKERS, True, True),
            ("reflection off, 6 tickers", TICKERS, False, False),
        ]
        for label, tickers, reflection, news in runs:
            subset = Dataset({t: data.frames[t] for t in tickers})
            cfg = _cfg(tmp, sim, tickers, rate, reflection, label.replace(" ", "_"), latency)
            sim.reset_stats()
            result = generate_strategies(
                cfg, subset, headlines=_headlines(subset) if news else None, write=False
            )
            s = result.summary
            calls = sim.stats(log=False)["requests"]
            if reflection:
                speed = calls / s.wall_s
            else:
                # skip the first second's worth: the limiter's burst, not its rate
                speed = _steady_rate(sim, max(2, int(rate * latency)))
            if one_chain is None:
                one_chain = s.wall_s
            ratio = s.wall_s / one_chain
            # what no scheduler can beat: the longest chain of calls, or the calls at the limit
            links = (periods if reflection else 1) + (1 if news else 0)
            floor = max(links * latency, calls / rate)
            print(
                f"{label:<28} | {calls:>5} | {s.wall_s:>6.2f} | {floor:>7.2f} | {speed:>6.1f} | "
                f"{100 * speed / rate:>9.1f}% | {ratio:>11.2f}x"
            )
            rows.append(
                {
                    "run": label,
                    "calls": calls,
                    "wall_s": s.wall_s,
                    "req_s": speed,
                    "share_of_limit": speed / rate,
                    "vs_one_chain": ratio,
                    "floor_s": floor,
                    "failures": s.failures,
                }
            )
    chain_ideal = periods * latency
    print(
        f"\nOne chain's floor: {periods} x {latency:g} s = {chain_ideal:.2f} s. Six chains / one "
        f"chain: {rows[1]['vs_one_chain']:.2f} (ideal 1.00). Reflection off: "
        f"{100 * rows[3]['share_of_limit']:.0f} % of the rate limit (ideal 100 %), "
        f"{rows[1]['wall_s'] / rows[3]['wall_s']:.1f}x faster than the six chains."
    )
    if args.json:
        args.json.write_text(json.dumps({"latency_s": latency, "rate": rate, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
