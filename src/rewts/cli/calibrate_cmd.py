"""``rewts calibrate``: planted signals of known information coefficient instead of the LLM's,
to show whether the agents use guidance when it is informative and ignore it when it is not."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rewts.cli.app import app
from rewts.cli.common import out_console, split_list
from rewts.cli.options import COMMON, DATA, CommandArgs, optional, options
from rewts.errors import ConfigError
from rewts.fileio import atomic_write, write_text_atomic

ICOpt = Annotated[
    str,
    typer.Option("--ic", help="Comma-separated information coefficients in [0, 1]."),
]
SeedsOpt = Annotated[
    int,
    typer.Option("--seeds", min=1, help="Agent seeds per IC level (backtest runs)."),
]
AgentsOpt = Annotated[
    str | None,
    optional(
        "--agents",
        help="Comma-separated agents (default: buy_and_hold, llm_only, rl_only, llm_rl, rewts, "
        "placebo_const, placebo_shuffled).",
    ),
]
EpisodesOpt = Annotated[
    int | None,
    optional("--episodes", min=1, help="rewts.episodes_per_chunk."),
]
OutOpt = Annotated[
    Path | None,
    optional(
        "--out",
        help="Folder of the calibration's files (default: backtest.output_dir/calibration-<time>).",
    ),
]
DrawPerSeedOpt = Annotated[
    bool,
    typer.Option(
        "--draw-per-seed",
        help="Draw the planted noise anew for every seed (the paired tests then vary the "
        "signal too; slower: each seed trains apart) instead of one draw per ticker and IC.",
    ),
]


def _levels(text: str) -> list[float]:
    try:
        levels = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--ic {text!r}: give comma-separated numbers in [0, 1]") from None
    if not levels or any(not 0.0 <= x <= 1.0 for x in levels):
        raise ConfigError(f"--ic {text!r}: every information coefficient must be within [0, 1]")
    return levels


@app.command("calibrate")
@options(DATA, COMMON)
def calibrate_command(
    args: CommandArgs,
    ic: ICOpt = "0,0.05,0.1,0.2,0.4",
    seeds: SeedsOpt = 5,
    agents: AgentsOpt = None,
    episodes: EpisodesOpt = None,
    out: OutOpt = None,
    draw_per_seed: DrawPerSeedOpt = False,
) -> None:
    """Replace tau by a planted signal of known IC (built from each period's future return) on
    real prices, and compare LLM-only, LLM+RL, RL-only, ReWTS and the placebos per IC level.

    A calibration, never a result: its files say so, and its checkpoints live apart from the
    real agents' (<checkpoint_dir>/calibration/).
    """
    from rewts.backtest.calibration import DEFAULT_AGENTS, LABEL, run_calibration
    from rewts.pipeline import ensure_data

    levels = _levels(ic)
    cfg = args.load({"rewts.episodes_per_chunk": episodes})
    chosen = split_list(agents) or list(DEFAULT_AGENTS)
    unknown = sorted(set(chosen) - set(DEFAULT_AGENTS))
    if unknown:
        raise ConfigError(
            f"--agents: {', '.join(unknown)} cannot be calibrated (choose from "
            f"{', '.join(DEFAULT_AGENTS)})"
        )
    folder = out or Path(cfg.backtest.output_dir) / (
        f"calibration-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    )
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"--out {folder} is not empty; choose a new folder")

    dataset = ensure_data(cfg)
    result = run_calibration(
        cfg,
        dataset,
        ic_levels=levels,
        runs=seeds,
        agents=chosen,
        draw_per_seed=draw_per_seed,
        events=args.training_display(),
        say=args.say,
    )
    folder.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    for name, frame in (
        ("calibration_runs.csv", result.runs),
        ("calibration_summary.csv", summary),
        ("calibration_tests.csv", result.tests),
        ("realized_ic.csv", result.realized),
    ):
        atomic_write(folder / name, partial(frame.to_csv, index=False), mode=0o666)
    write_text_atomic(
        folder / "README.txt",
        f"{LABEL}\n\ncommand: rewts calibrate --ic {ic} --seeds {seeds}"
        f"{' --draw-per-seed' if draw_per_seed else ''}\ntickers: "
        f"{', '.join(cfg.tickers)}\n",
        mode=0o666,
    )
    table = Table(title=f"{LABEL}\nmean test Sharpe ± std over seeds (mean over tickers)")
    table.add_column("IC", justify="right")
    realized = result.realized.groupby("ic")["realized_ic_test"].mean()  # over tickers
    table.add_column("realized IC (test)", justify="right")
    shown = [a for a in DEFAULT_AGENTS if a in set(summary.agent)]
    for agent in shown:
        table.add_column(agent, justify="right")
    for level in levels:
        cells = []
        for agent in shown:
            hit = summary[(summary.ic == level) & (summary.agent == agent)]
            cells.append(
                "" if hit.empty else f"{hit['mean'].iloc[0]:.2f} ± {hit['std'].iloc[0]:.2f}"
            )
        table.add_row(f"{level:g}", f"{realized.get(level, float('nan')):.3f}", *cells)
    out_console.print(table)
    for _, row in result.tests.iterrows():
        out_console.print(
            f"IC {row['ic']:g}: {row['a']} - {row['b']} mean Sharpe difference "
            f"{row['mean_diff']:+.3f} over {int(row['n_pairs'])} pairs, p = {row['p_value']:.3f}",
            highlight=False,
        )
    out_console.print(f"calibration files in {folder}", highlight=False)
