"""ReWTS ensemble benchmarks: QP solve time per rebalance, and backtest wall time.

    python benchmarks/bench_ensemble.py [--repeats 30] [--skip-backtest]

1. QP solve time per rebalance for 5, 20 and 100 chunk models on a 200-day look-back window,
   median over ``--repeats`` consecutive rebalances of a rolling window (one new day each),
   for Clarabel (no warm start) and OSQP cold and warm-started from the previous weights.
   Both position signals (+/-1, singular M^T M: the realistic case) and continuous ones.
2. Backtest wall time for 6 tickers on the real data in ../shared/data (when present) with
   untrained networks of the configured size standing in for trained agents, so the number
   is the backtest's own cost (observations, forward passes, QP, accounting, metrics), not
   training time.

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


def _untrained_source(cfg, dataset, strategies):
    """RLAgentSource whose members are untrained networks of the configured size.

    The backtest's own cost does not depend on what the weights learned, so this measures it
    without hours of training: same observation matrices, same forward passes, same QP.
    """
    from rewts.agents import DDQNAgent, DQNSettings
    from rewts.backtest.agents import Member
    from rewts.backtest.rl_source import RLAgentSource
    from rewts.data import timeline_for
    from rewts.training import LoadedAgent

    class Untrained(RLAgentSource):
        def _load(self, ticker, variant, seed):
            key = (ticker, variant, seed)
            if key not in self._loaded:
                data = self._env_data(ticker, variant)
                tl = timeline_for(dataset.frames[ticker], self.cfg)
                chunks = tl.chunks(
                    self.cfg.split.train_start,
                    self.cfg.split.train_end,
                    self.cfg.rewts.chunk_length,
                )
                settings = DQNSettings.from_config(self.cfg.rewts)
                out = []
                for c in [*chunks, None]:
                    agent = DDQNAgent(
                        data.obs_dim,
                        len(self.action_positions),
                        settings,
                        seed=seed + (0 if c is None else c.index + 1),
                    )
                    idx = -1 if c is None else c.index
                    member = Member(
                        "global" if c is None else f"chunk {idx}", None if c is None else idx
                    )
                    out.append(
                        (
                            member,
                            LoadedAgent(
                                ticker=ticker,
                                chunk=idx,
                                start=tl.dates[0],
                                end=tl.dates[-1],
                                seed=seed,
                                llm_guidance=variant != "no_tau",
                                agent=agent,
                                metadata={},
                                path=Path(),
                            ),
                        )
                    )
                self._loaded[key] = out
            return self._loaded[key]

    return Untrained(cfg, dataset, strategies)


def bench_backtest(tickers: list[str], data_dir: Path | None, runs: int) -> None:
    import tempfile

    import torch

    from rewts.backtest.engine import run_backtest
    from rewts.config import load_config
    from rewts.data import prepare_data
    from rewts.llm import generate_strategies

    if data_dir is None:
        print("backtest wall time: skipped (../shared/data not found)")
        return
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            sets=[
                f"tickers=[{','.join(tickers)}]",
                "data.source=csv",
                f"data.csv_dir={data_dir}",
                f"data.processed_dir={tmp}/processed",
                "llm.provider=heuristic",
                f"llm.output_dir={tmp}/strategies",
                f"backtest.runs={runs}",
            ]
        )
        t0 = time.perf_counter()
        dataset = prepare_data(cfg)
        strategies = generate_strategies(cfg, dataset).strategies
        prep = time.perf_counter() - t0
        source = _untrained_source(cfg, dataset, strategies)
        t0 = time.perf_counter()
        result = run_backtest(cfg, dataset, strategies, source, name="bench")
        wall = time.perf_counter() - t0
    n_agents = len(cfg.backtest.agents)
    reb = sum(len(r) for r in result.rebalances.values())
    qp = sum(float(r["solve_seconds"].sum()) for r in result.rebalances.values())
    print(
        f"backtest wall time, {len(tickers)} tickers x {n_agents} agents x {runs} run(s) on "
        f"the 2018-2019 test period (real data, heuristic strategies, untrained agents of the "
        f"configured size {cfg.rewts.hidden_dims}, chunk_length {cfg.rewts.chunk_length}, "
        f"look-back {cfg.rewts.lookback_length}):"
    )
    print(f"  data + strategies (not part of the backtest): {prep:.1f} s")
    print(
        f"  backtest: {wall:.1f} s for {len(result.runs)} agent runs "
        f"({wall / len(tickers):.2f} s per ticker)"
    )
    print(f"  of which ReWTS QP: {reb} solves, {qp:.2f} s ({1000 * qp / max(reb, 1):.2f} ms each)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--runs", type=int, default=1, help="seeds per learned agent")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    bench_qp(args.repeats)
    if not args.skip_backtest:
        print()
        shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
        data_dir = shared if (shared / "manifest.json").is_file() else None
        bench_backtest(["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"], data_dir, args.runs)
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
