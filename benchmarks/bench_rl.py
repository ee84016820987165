"""RL throughput: our environment and Double DQN next to Stable-Baselines3's DQN, populations
of K agents trained as one batched computation, and the process pool's wall-time speed-up over
one process for six tickers' chunk agents.

    python benchmarks/bench_rl.py            # default: a few minutes on 2 cores
    python benchmarks/bench_rl.py --updates 5000 --train-steps 5000 --episodes 2
    python benchmarks/bench_rl.py --only-population   # the population figures alone

Same environment, network (``rewts.hidden_dims``), batch size, buffer, learning starts, one
gradient step per environment step and one torch thread for both libraries. SB3's DQN is
vanilla DQN (its target takes the max of the target network) where ours is Double DQN (one
extra argmax over the online network's pass); both do one optimizer step per update.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rewts.agents import DDQNAgent, DQNSettings, EpsilonSchedule
from rewts.config.models import Config, TradingEnvConfig
from rewts.data.prepare import Dataset
from rewts.env import TradingEnv, build_env_data
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame

HIDDEN = (256, 256, 128)
BATCH = 128


def make_env(n: int = 1600, window: int = 30) -> TradingEnv:
    frame = synthetic_frame(n, seed=0)
    data = build_env_data(
        "SYN", frame, SYNTHETIC_FEATURES, window=window, train_range=(0, n // 2), tau=np.zeros(n)
    )
    return TradingEnv(data, TradingEnvConfig(max_drawdown_limit=None), start=window)


def bench_env(steps: int) -> float:
    env = make_env()
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, steps)
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def settings(learning_starts: int) -> DQNSettings:
    return DQNSettings(
        hidden_dims=HIDDEN,
        batch_size=BATCH,
        buffer_size=50_000,
        learning_starts=learning_starts,
        target_update_freq=1000,
        epsilon=EpsilonSchedule(kind="step_exponential", start=1.0, minimum=0.05),
    )


def ours_updates(n: int) -> float:
    env = make_env()
    agent = DDQNAgent(env.observation_space.shape[0], 2, settings(10**9), seed=0)
    agent.learn(env, 1)  # fills the buffer without updates
    buffer = agent._buffer
    assert buffer is not None
    t0 = time.perf_counter()
    for _ in range(n):
        agent.update(buffer.sample(BATCH, agent.rng))
    return n / (time.perf_counter() - t0)


def ours_train_loop(steps: int, learning_starts: int) -> tuple[float, int]:
    env = make_env(n=steps + 40)
    agent = DDQNAgent(env.observation_space.shape[0], 2, settings(learning_starts), seed=0)
    t0 = time.perf_counter()
    agent.learn(env, 1)
    return agent.steps / (time.perf_counter() - t0), agent.updates


def sb3_model(env: TradingEnv, learning_starts: int):  # type: ignore[no-untyped-def]
    from stable_baselines3 import DQN

    return DQN(
        "MlpPolicy",
        env,
        learning_rate=5e-4,
        buffer_size=50_000,
        learning_starts=learning_starts,
        batch_size=BATCH,
        train_freq=1,
        gradient_steps=1,
        target_update_interval=1000,
        policy_kwargs={"net_arch": list(HIDDEN)},
        device="cpu",
        seed=0,
        verbose=0,
    )


def sb3_updates(n: int) -> float:
    env = make_env()
    model = sb3_model(env, learning_starts=10**9)
    model.learn(1500)  # fills the buffer, no updates
    t0 = time.perf_counter()
    model.train(gradient_steps=n, batch_size=BATCH)
    return n / (time.perf_counter() - t0)


def sb3_train_loop(steps: int, learning_starts: int) -> tuple[float, int]:
    env = make_env(n=steps + 40)
    model = sb3_model(env, learning_starts)
    t0 = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - t0), int(model._n_updates)


def _population_env(steps: int):  # type: ignore[no-untyped-def]
    """The default observation (compact, with tau) over ``steps`` decisions of synthetic data."""
    n = steps + 200
    frame = synthetic_frame(n, seed=0)
    data = build_env_data(
        "SYN", frame, SYNTHETIC_FEATURES, window=30, train_range=(0, n // 2), tau=np.zeros(n),
        feature_set="compact",
    )  # fmt: skip
    return data, 100, 100 + steps


def population_rates(
    steps: int, ks: tuple[int, ...], hidden: tuple[int, ...], batch: int
) -> dict[str, float]:
    """Agent-steps per second (one gradient update per step, one thread) of today's single
    agent loop, SB3's DQN and populations of K agents, same data, network and batch."""
    from rewts.agents.population import Population

    data, start, end = _population_env(steps)
    env_cfg = TradingEnvConfig()
    base = DQNSettings.from_config(Config().rewts)
    st = DQNSettings(
        **{**base.__dict__, "hidden_dims": hidden, "batch_size": batch, "learning_starts": 100}
    )
    out: dict[str, float] = {}
    env = TradingEnv(data, env_cfg, start=start, end=end)
    agent = DDQNAgent(data.obs_dim, 2, st, seed=0)
    t0 = time.perf_counter()
    agent.learn(env, 1)
    out["single"] = agent.steps / (time.perf_counter() - t0)
    from stable_baselines3 import DQN

    model = DQN(
        "MlpPolicy", env, learning_rate=st.learning_rate, buffer_size=st.buffer_size,
        learning_starts=100, batch_size=batch, train_freq=1, gradient_steps=1,
        target_update_interval=st.target_update_freq, policy_kwargs={"net_arch": list(hidden)},
        device="cpu", seed=0, verbose=0,
    )  # fmt: skip
    t0 = time.perf_counter()
    model.learn(end - start)
    out["sb3"] = (end - start) / (time.perf_counter() - t0)
    for k in ks:
        population = Population([data] * k, list(range(k)), st, env_cfg, start=start, end=end)
        t0 = time.perf_counter()
        population.learn(1)
        out[f"K={k}"] = k * (end - start) / (time.perf_counter() - t0)
    return out


def print_population(steps: int, hidden: tuple[int, ...], batch: int, label: str) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    r = population_rates(steps, (1, 5, 25), hidden, batch)
    after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"population training, agent-steps/s (1 update/step, 1 thread), {label} network "
        f"{hidden}, batch {batch}; load average {load:.1f} before, {after:.1f} after:"
    )
    print(f"  today's single-agent loop {r['single']:>8,.0f}   SB3 DQN {r['sb3']:>8,.0f}")
    for k in (1, 5, 25):
        rate = r[f"K={k}"]
        print(
            f"  population K={k:<3}          {rate:>8,.0f}   {rate / r['single']:5.1f}x the "
            f"single-agent loop, {rate / r['sb3']:5.1f}x SB3"
        )


def _warm_worker(_index: int = 0) -> float:
    """A no-op job: what a worker pays before its first agent (spawn + imports)."""
    import rewts.training.jobs  # noqa: F401

    return time.perf_counter()


def startup_seconds(workers: int) -> float:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from rewts.training.jobs import init_worker

    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker) as pool:
        list(pool.map(_warm_worker, range(workers)))
    return time.perf_counter() - t0


def pool_speedup(episodes: int, jobs: int | None) -> dict[str, float]:
    """Wall time of six tickers' chunk agents with one process and with the pool."""
    from rewts.training import train_all

    tickers = ["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"]
    frames = {t: synthetic_frame(760, seed=i, start="2012-01-02") for i, t in enumerate(tickers)}
    dataset = Dataset(frames, "synthetic", "bench", SYNTHETIC_FEATURES, None)
    root = Path(tempfile.mkdtemp(prefix="bench_rl_"))
    out: dict[str, float] = {}
    n_jobs = jobs or os.cpu_count() or 1
    try:
        for label, workers in (("serial", 1), ("pool", n_jobs)):
            cfg = Config(
                tickers=tickers,
                data={"warmup_days": 40},
                split={
                    "train_start": "2012-01-01",
                    "train_end": "2014-06-30",
                    "test_start": "2014-07-01",
                    "test_end": "2014-12-31",
                },
                rewts={
                    "chunk_length": 200,
                    "episodes_per_chunk": episodes,
                    "hidden_dims": [64, 64],
                    "batch_size": 64,
                    "learning_starts": 64,
                    "checkpoint_dir": str(root / label),
                    "n_jobs": workers,
                    "device": "cpu",
                    "llm_guidance": False,
                },
                trading_env={"max_drawdown_limit": None},
            )
            t0 = time.perf_counter()
            result = train_all(cfg, dataset, None, include_global=False)
            out[label] = time.perf_counter() - t0
            out[f"{label}_job_seconds"] = sum(r.seconds for r in result.jobs)
            out["agents"] = len(result.jobs)
            out["workers"] = result.workers
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["startup"] = startup_seconds(int(out["workers"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=50_000)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--train-steps", type=int, default=1500)
    parser.add_argument("--learning-starts", type=int, default=500)
    parser.add_argument("--episodes", type=int, default=3, help="per chunk, pool benchmark")
    parser.add_argument("--jobs", type=int, default=None, help="pool size (default: CPUs)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats, best kept")
    parser.add_argument("--skip-pool", action="store_true")
    parser.add_argument("--population-steps", type=int, default=1000)
    parser.add_argument("--only-population", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    default = Config().rewts
    print_population(
        args.population_steps, tuple(default.hidden_dims), default.batch_size, "the default"
    )
    print_population(args.population_steps, HIDDEN, BATCH, "the seed's")
    if args.only_population:
        return
    print(f"torch {torch.__version__}, 1 thread, CPU; network {HIDDEN}, batch {BATCH}")

    env_sps = bench_env(args.env_steps)
    print(f"env steps/s (random actions)        ours {env_sps:>10,.0f}")

    # interleaved repeats, best of each: the machine is shared, the fastest run is the cleanest
    ours_u = sb3_u = 0.0
    for _ in range(args.repeats):
        ours_u = max(ours_u, ours_updates(args.updates))
        sb3_u = max(sb3_u, sb3_updates(args.updates))
    print(
        f"gradient updates/s                  ours {ours_u:>10,.0f}   SB3 DQN {sb3_u:>8,.0f}"
        f"   ratio {ours_u / sb3_u:.2f}x"
    )
    ours_t = sb3_t = 0.0
    for _ in range(args.repeats):
        rate, ours_n = ours_train_loop(args.train_steps, args.learning_starts)
        ours_t = max(ours_t, rate)
        rate, sb3_n = sb3_train_loop(args.train_steps, args.learning_starts)
        sb3_t = max(sb3_t, rate)
    print(
        f"train loop env steps/s (1 upd/step) ours {ours_t:>8,.0f}   SB3 DQN {sb3_t:>8,.0f}"
        f"   ratio {ours_t / sb3_t:.2f}x   (updates: ours {ours_n}, SB3 {sb3_n})"
    )
    if not args.skip_pool:
        r = pool_speedup(args.episodes, args.jobs)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"process pool, 6 tickers, {r['agents']:.0f} chunk agents: one process "
            f"{r['serial']:.1f} s, {r['workers']:.0f} processes {r['pool']:.1f} s, "
            f"speed-up {r['serial'] / r['pool']:.2f}x (os.cpu_count() = {os.cpu_count()})"
        )
        print(
            f"  worker start-up (spawn + imports) {r['startup']:.1f} s; speed-up without it "
            f"{r['serial'] / max(r['pool'] - r['startup'], 1e-9):.2f}x; CPU seconds per agent "
            f"{r['serial_job_seconds'] / r['agents']:.2f} alone vs "
            f"{r['pool_job_seconds'] / r['agents']:.2f} in the pool (load average {load:.1f}: "
            "other processes share the cores)"
        )


if __name__ == "__main__":
    main()
