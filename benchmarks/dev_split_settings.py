"""Choosing learner settings without the test years: a development split of the training range.

    python benchmarks/dev_split_settings.py --ic 0,0.4,0.6 --rl-only              # the defaults
    python benchmarks/dev_split_settings.py --set rewts.tau_head=none --ic 0,0.4,0.6

Global LLM+RL agents are trained on 2012-2015 (its last 252 days are the usual validation
range) with a planted tau of known information coefficient (``rewts.backtest.calibration``) and
scored on 2016-2017, inside the real training range: the 2018-2019 test years are never read,
so a setting chosen here is not chosen on the test period. Each seed draws its own planted
noise, so a mean is over realizations of the signal, not over one draw; ``--rl-only`` adds
RL-only agents (no tau) under the same settings. Per IC level it prints, as means over tickers
and seeds: Sharpe on training, validation and development days, LLM-only's development Sharpe
(``sign(tau)`` held), and what the greedy policy does on development days: the share of days it
is long, its agreement with ``sign(tau)``, and its *tau sensitivity* (the share of days on which
it goes long with tau = +0.5 and short with tau = -0.5, everything else equal: how much the
agent actually uses the signal). About 4-6 minutes on 2 cores for six stocks, four seeds and
three IC levels.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from rewts.agents.presets import apply_preset
from rewts.backtest.calibration import planted_strategies
from rewts.config import Config, load_config
from rewts.data import timeline_for
from rewts.data.prepare import Dataset
from rewts.env.accounting import Rules, simulate
from rewts.env.evaluation import annualized_sharpe
from rewts.env.factory import daily_tau
from rewts.pipeline import ensure_data
from rewts.training.jobs import GLOBAL_CHUNK, build_population, training_env_config
from rewts.training.runner import build_jobs

DEV_SPLIT = (
    "split.train_end=2015-12-31",
    "split.test_start=2016-01-04",
    "split.test_end=2017-12-29",
)


def _long(q: np.ndarray) -> np.ndarray:
    return q[:, -1] > q[:, 0]


def score_ticker(
    cfg: Config, dataset: Dataset, ticker: str, ic: float | None, seeds: int
) -> list[dict[str, object]]:
    """Train ``seeds`` global LLM+RL agents on one ticker's planted tau and score them;
    ``ic`` None: RL-only agents (no tau), the comparison for every IC level. Each seed draws
    its own planted noise, so the mean is over realizations of the signal, not one draw."""
    frame = dataset.frames[ticker]
    prices = frame[cfg.trading_env.price_column].to_numpy(np.float64)
    timeline = timeline_for(frame, cfg)
    one = cfg.model_copy(update={"tickers": [ticker]})
    if ic is None:
        one = one.model_copy(update={"rewts": one.rewts.model_copy(update={"llm_guidance": False})})
    planted = [
        planted_strategies(
            prices,
            timeline,
            ic=ic or 0.0,
            seed=cfg.seed + seed,
            ticker=ticker,
            train_end=cfg.split.train_end,
        )
        for seed in range(seeds)
    ]
    jobs = [
        j
        for seed in range(seeds)
        for j in build_jobs(
            one, dataset, None if ic is None else {ticker: planted[seed]}, seeds=[seed]
        )
        if j.chunk == GLOBAL_CHUNK
    ]
    lead = jobs[0]
    env_cfg = training_env_config(lead)
    population = build_population(jobs, device="cpu")
    val = np.arange(lead.val_start, lead.val_end + 1) if lead.has_validation else None
    population.learn(lead.episodes, validation_rows=val)
    dates = pd.DatetimeIndex(frame.index)
    dev = np.flatnonzero(
        (dates >= pd.Timestamp(cfg.split.test_start)) & (dates <= pd.Timestamp(cfg.split.test_end))
    )
    train = np.arange(lead.start, lead.end + 1)
    tau_col = lead.data.tau_index
    rules = Rules.from_config(env_cfg)
    rows = []
    for k, job in enumerate(jobs):
        # what LLM-only holds: sign(tau) of this agent's own planted signal
        tau_sign = np.where(daily_tau(planted[k], timeline)[dev] > 0, 1, -1)
        flat = population.obs[k, dev].copy()
        flat[:, population.pos_idx[k]] = 0.0
        act = np.where(_long(population.q_values(k, flat)), 1, -1)
        uses_tau = np.full(len(dev), np.nan)
        if tau_col is not None:
            plus, minus = flat.copy(), flat.copy()
            plus[:, tau_col], minus[:, tau_col] = 0.5, -0.5
            uses_tau = _long(population.q_values(k, plus)) & ~_long(population.q_values(k, minus))
        rows.append(
            {
                "ic": "rl_only" if ic is None else ic,
                "ticker": ticker,
                "seed": job.seed,
                "train": population.score(k, train).sharpe,
                "valid": population.score(k, val).sharpe if val is not None else np.nan,
                "dev": population.score(k, dev).sharpe,
                "long": float(np.mean(act == 1)),
                "agree": float(np.mean(act == tau_sign)),
                "tau_sens": float(np.mean(uses_tau)),
                "llm_only": annualized_sharpe(
                    simulate(prices[dev[0] : dev[-1] + 1], tau_sign, rules).returns
                ),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--ic", default="0,0.2,0.4", help="comma-separated IC levels")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--tickers", default="AAPL,AMZN,GOOGL,META,MSFT,TSLA")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--out", default=None, help="CSV of the per-agent rows")
    parser.add_argument(
        "--rl-only", action="store_true", help="also RL-only agents (no tau), once for all ICs"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = [f"data.csv_dir={args.data_dir}", f"tickers=[{args.tickers}]", *DEV_SPLIT, *args.sets]
    cfg = apply_preset(load_config(None, sets=sets))
    dataset = ensure_data(cfg)
    t0 = time.perf_counter()
    levels: list[float | None] = [float(x) for x in args.ic.split(",")]
    if args.rl_only:
        levels.append(None)
    rows = [
        row
        for ic in levels
        for ticker in cfg.tickers
        for row in score_ticker(cfg, dataset, ticker, ic, args.seeds)
    ]
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    summary = (
        table.astype({"ic": str})
        .groupby("ic", sort=False)[
            ["train", "valid", "dev", "llm_only", "long", "agree", "tau_sens"]
        ]
        .mean()
    )
    print(f"development split (scored 2016-2017), settings: {' '.join(args.sets) or 'defaults'}")
    print(summary.round(3).to_string())
    print(f"{len(table)} agents in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
