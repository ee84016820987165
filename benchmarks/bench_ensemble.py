"""ReWTS ensemble benchmarks: QP solve time per rebalance, and backtest wall time.

    python benchmarks/bench_ensemble.py [--repeats 30] [--skip-backtest]

1. QP solve time per rebalance for 5, 20 and 100 chunk models on a 200-day look-back window,
   median over ``--repeats`` consecutive rebalances of a rolling window (one new day each),
   for Clarabel (no warm start) and OSQP cold and warm-started from the previous weights.
   Both position signals (+/-1, singular M^T M: the realistic case) and continuous ones.
2. Backtest wall time for 6 tickers on the real data in ../shared/data (when present) with
   tiny untrained agents standing in for trained ones, so the number is the backtest's own
   cost (observations, forward passes, QP, accounting, metrics), not training time.

It prints what it measured and on what; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from rewts.ensemble import WeightSolver


def _rolling_problems(k: int, repeats: int, window: int, kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = window + repeats
    if kind == "position":
        signals = np.sign(rng.normal(size=(n, k)))
        target = np.sign(rng.normal(size=n))
    else:
        signals = rng.normal(size=(n, k))
        target = signals @ rng.dirichlet(np.ones(k)) + rng.normal(0, 0.5, n)
    for i in range(repeats):
        yield signals[i : i + window], target[i : i + window]


def bench_qp(repeats: int, window: int = 200) -> None:
    print(
        f"QP solve time per rebalance (look-back {window} days, median of {repeats} "
        "consecutive rebalances, milliseconds)"
    )
    print(
        f"{'models':>7} {'signal':>10} {'clarabel':>10} {'osqp cold':>10} {'osqp warm':>10} "
        f"{'max |obj diff|':>16}"
    )
    for k in (5, 20, 100):
        for kind in ("position", "continuous"):
            times: dict[str, list[float]] = {"clarabel": [], "osqp_cold": [], "osqp_warm": []}
            diff = 0.0
            warm = WeightSolver("osqp")
            for M, y in _rolling_problems(k, repeats, window, kind):
                c = WeightSolver("clarabel").solve(M, y)
                cold_solver = WeightSolver("osqp")
                cold = cold_solver.solve(M, y)
                w = warm.solve(M, y)
                times["clarabel"].append(c.solve_seconds)
                times["osqp_cold"].append(cold.solve_seconds)
                times["osqp_warm"].append(w.solve_seconds)
                if c.status == w.status == "solved":
                    diff = max(diff, float(np.abs(c.objective - w.objective)))
            med = {key: 1000 * statistics.median(v) for key, v in times.items()}
            print(
                f"{k:>7} {kind:>10} {med['clarabel']:>10.3f} {med['osqp_cold']:>10.3f} "
                f"{med['osqp_warm']:>10.3f} {diff:>16.2e}"
            )
    print("(last column: largest objective difference between the two solvers)")


def bench_backtest(tickers: list[str]) -> None:
    try:
        from rewts.backtest.bench import backtest_wall_time
    except ImportError as exc:  # the RL stage is not importable yet
        print(f"backtest wall time: skipped ({exc})")
        return
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    backtest_wall_time(tickers, shared if (shared / "manifest.json").is_file() else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--skip-backtest", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    bench_qp(args.repeats)
    if not args.skip_backtest:
        print()
        bench_backtest(["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"])
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
