"""The report's figures, drawn with matplotlib's Agg backend into PNG bytes (no display needed).

Each function takes the backtest's records and returns PNG bytes, or None when there is
nothing to draw (e.g. no ensemble was run); it never computes a metric itself beyond the
drawdown curve it plots.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless, deterministic rendering

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rewts.backtest.result import BacktestResult, agent_label
from rewts.metrics import drawdown_series

#: one fixed colour per agent, so a colour means the same agent in every figure
COLORS: dict[str, str] = {
    "buy_and_hold": "#7f7f7f",
    "llm_only": "#ff7f0e",
    "rl_only": "#1f77b4",
    "llm_rl": "#2ca02c",
    "rewts": "#d62728",
    "global_llm_rl": "#9467bd",
    "placebo_const": "#8c564b",
    "placebo_shuffled": "#e377c2",
    "leak_sanity": "#bcbd22",
}


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _agents_for(result: BacktestResult, *, with_sanity: bool = False) -> list[str]:
    return [a for a in result.agents() if with_sanity or a != "leak_sanity"]


def equity_curves(result: BacktestResult, ticker: str) -> bytes | None:
    """Portfolio value of every agent (run 0 bold, other runs faint), starting at 1."""
    agents = _agents_for(result)
    if not any(r.ticker == ticker for r in result.runs):
        return None
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for agent in agents:
        runs = [r for r in result.runs if r.ticker == ticker and r.agent == agent]
        for r in runs:
            start = r.equity[0] / (1.0 + r.returns[0])
            first = r.run == min(x.run for x in runs)
            ax.plot(
                r.dates,
                r.equity / start,
                color=COLORS.get(agent),
                lw=1.6 if first else 0.6,
                alpha=1.0 if first else 0.25,
                label=agent_label(agent) if first else None,
            )
            if first and r.stopped is not None:
                k = int(np.searchsorted(pd.DatetimeIndex(r.dates), r.stopped))
                ax.scatter(
                    [r.stopped],
                    [r.equity[k] / start],
                    marker="x",
                    color=COLORS.get(agent),
                    s=40,
                    zorder=3,
                )
    ax.axhline(1.0, color="black", lw=0.5)
    ax.set_ylabel("portfolio value (start = 1)")
    ax.set_title(f"{ticker}: equity curves on the test period")
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def drawdowns(result: BacktestResult, ticker: str) -> bytes | None:
    """Fall from the running peak of every agent (run 0)."""
    agents = _agents_for(result)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    drawn = False
    for agent in agents:
        runs = sorted(
            (r for r in result.runs if r.ticker == ticker and r.agent == agent),
            key=lambda r: r.run,
        )
        if not runs:
            continue
        r = runs[0]
        ax.plot(
            r.dates,
            100 * drawdown_series(r.returns),
            color=COLORS.get(agent),
            lw=1.2,
            label=agent_label(agent),
        )
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_ylabel("drawdown (%)")
    ax.set_title(f"{ticker}: drawdown from the running peak (first run)")
    ax.legend(loc="lower left", fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    return _png(fig)


def price_trades_signal(result: BacktestResult, ticker: str, agent: str) -> bytes | None:
    """Close price with the agent's trades, over the monthly LLM signal (tau) per period."""
    price = result.prices.get(ticker)
    runs = sorted(
        (r for r in result.runs if r.ticker == ticker and r.agent == agent), key=lambda r: r.run
    )
    if price is None or price.empty:
        return None
    fig, (ax, ax_tau) = plt.subplots(
        2, 1, figsize=(10, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    signals = result.llm_signals.get(ticker)
    if signals is not None and not signals.empty:
        for _, p in signals.iterrows():
            tau = float(p["tau"])
            color = "#2ca02c" if tau > 0 else "#d62728" if tau < 0 else "#bbbbbb"
            alpha = 0.08 + 0.25 * min(abs(tau), 1.0)
            ax.axvspan(p["start"], p["end"], color=color, alpha=alpha, lw=0)
            ax_tau.hlines(tau, p["start"], p["end"], color=color, lw=2.5)
        ax_tau.axhline(0, color="black", lw=0.5)
        ax_tau.set_ylim(-1.05, 1.05)
    ax_tau.set_ylabel("LLM tau")
    ax.plot(price.index, price.to_numpy(), color="black", lw=1.0, label="close")
    if runs:
        r = runs[0]
        trade_days = pd.DatetimeIndex(r.dates)
        px = price.reindex(trade_days).to_numpy()
        # actual trades at each close (a drifting weight is not a trade)
        up, down = r.trades > 1e-12, r.trades < -1e-12
        for days, marker, color, verb in (
            (up, "^", "#2ca02c", "buys"),
            (down, "v", "#d62728", "sells"),
        ):
            ax.scatter(
                trade_days[days],
                px[days],
                marker=marker,
                color=color,
                s=28,
                zorder=3,
                label=f"{agent_label(agent)} {verb}",
            )
    ax.set_ylabel("close price")
    ax.set_title(f"{ticker}: price, {agent_label(agent)} trades (first run), LLM signal per period")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def ensemble_weights(result: BacktestResult, ticker: str) -> bytes | None:
    """Stacked ReWTS weights of each chunk model over the test period (first run)."""
    keys = sorted(k for k in result.ensemble_weights if k[0] == ticker)
    if not keys:
        return None
    weights = result.ensemble_weights[keys[0]]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.stackplot(
        weights.index, weights.to_numpy().T, labels=[str(c) for c in weights.columns], alpha=0.85
    )
    rebal = result.rebalances.get(keys[0])
    if rebal is not None and not rebal.empty and "status" in rebal:
        fallback = rebal[rebal["status"] == "fallback"]
        if not fallback.empty and "date" in fallback:
            ax.scatter(
                fallback["date"],
                np.full(len(fallback), 1.02),
                marker="x",
                color="black",
                s=16,
                label="uniform fallback",
                clip_on=False,
            )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("weight")
    ax.set_title(f"{ticker}: ReWTS ensemble weights per chunk model (first run)")
    ax.legend(loc="upper left", fontsize=7, ncol=min(len(weights.columns), 8))
    return _png(fig)


def training_curves(result: BacktestResult, ticker: str) -> bytes | None:
    """Per-chunk training curves (one line per chunk, one panel per recorded quantity)."""
    curves = {label: c for (t, label), c in result.training_curves.items() if t == ticker}
    curves = {k: v for k, v in curves.items() if not v.empty}
    if not curves:
        return None
    columns = list(dict.fromkeys(col for c in curves.values() for col in c.columns))[:3]
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.2), squeeze=False)
    for ax, col in zip(axes[0], columns, strict=True):
        for label, curve in curves.items():
            if col in curve:
                ax.plot(curve.index, curve[col].to_numpy(), lw=1.0, label=label)
        ax.set_title(col, fontsize=9)
        ax.set_xlabel(curves[next(iter(curves))].index.name or "episode")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{ticker}: training curves per chunk (first seed)", y=1.04)
    return _png(fig)


def sharpe_overview(result: BacktestResult) -> bytes | None:
    """Mean Sharpe ratio per ticker and agent with the spread over runs (error bars)."""
    table = result.metrics_table()
    if table.empty:
        return None
    table = table[table.agent != "leak_sanity"]
    stats = table.groupby(["ticker", "agent"], sort=False)["sharpe"].agg(["mean", "std"])
    tickers = result.tickers()
    agents = _agents_for(result)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / max(len(agents), 1)
    x = np.arange(len(tickers))
    for i, agent in enumerate(agents):
        means = [stats["mean"].get((t, agent), np.nan) for t in tickers]
        errs = [stats["std"].get((t, agent), np.nan) for t in tickers]
        ax.bar(
            x + i * width - 0.4 + width / 2,
            means,
            width,
            yerr=np.nan_to_num(errs),
            color=COLORS.get(agent),
            label=agent_label(agent),
            capsize=2,
        )
    ax.set_xticks(x, tickers)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel("Sharpe ratio")
    ax.set_title("Sharpe ratio per ticker and agent (bars: mean over runs, whiskers: std)")
    ax.legend(fontsize=7, ncol=4)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
