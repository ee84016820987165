"""The self-contained report.html: text that explains each figure, tables, and PNGs as base64.

One file, no external assets or scripts, so it can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from rewts.backtest.result import AGENTS, BacktestResult, agent_label
from rewts.metrics import METRIC_NAMES
from rewts.report import figures
from rewts.report.tables import (
    PAPER_TABLES,
    best_agents,
    generalization_table,
    paper_table,
    summary_table,
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
td.best{font-weight:bold;color:#1a7f37}.muted{color:#666;font-size:.9em}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;margin:.4em 0}
.bad{background:#fdecea;border-left:4px solid #d62728;padding:.4em .8em;margin:.4em 0}
figure{margin:1em 0}figcaption{color:#444;font-size:.92em;max-width:900px}
img{max-width:100%;border:1px solid #eee}code{background:#f4f4f4;padding:0 .2em}
"""

CONVENTIONS = [
    "Every agent is scored by one metrics module (rewts.metrics) on simple daily returns of "
    "portfolio value over every trading day of the test period; the first test day counts "
    "(its return is measured from the initial capital), no day is dropped.",
    "Sharpe = sqrt(252) × mean(excess daily return) / sample std (ddof = 1); the risk-free "
    "rate is annual, turned into a daily rate geometrically. Sortino uses the root-mean-square "
    "of shortfalls over all days. Max drawdown is a positive fraction of the running peak "
    "(the initial capital is the first peak).",
    "Every agent's P&L comes from the same accounting as the training environment "
    "(rewts.env.accounting.simulate): same transaction cost, same execution rule, same "
    "position limits. An action decided from data up to day t-1 is what the agent holds on "
    "day t.",
    "Buy & Hold is the papers' benchmark: the stock's total return (adj_close, dividends "
    "included), fully invested from the first test day's close, the entry cost paid once, no "
    "drawdown stop.",
    "Nothing was chosen by looking at the test period: each learned agent's checkpoint (the "
    "episode whose weights are kept) was picked on validation days inside the training range.",
    "mean ± std: over the backtest's runs (seeds); the Mean row averages the per-ticker means "
    "and the per-ticker stds. Deterministic agents (Buy & Hold, LLM-only) have one run.",
]


def _img(png: bytes | None, caption: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption[:80])}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _frame_html(frame: pd.DataFrame, best: dict[str, str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for idx, row in frame.iterrows():
        cells = []
        for col in frame.columns:
            cls = ' class="best"' if best and best.get(str(idx)) == col else ""
            cells.append(f"<td{cls}>{html.escape(str(row[col]))}</td>")
        rows.append(f"<tr><td>{html.escape(str(idx))}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "n/a" if not math.isfinite(x) else f"{x:.3f}"
    return str(x)


def _full_summary(result: BacktestResult) -> str:
    metrics = [m for m in METRIC_NAMES if m != "n_days"]
    summary = summary_table(result, metrics)
    if summary.empty:
        return ""
    frame = pd.DataFrame(
        {
            "agent": [agent_label(a) for a in summary.agent],
            **{
                m: [
                    f"{_fmt(mu)} ± {_fmt(sd)}" if n > 1 and math.isfinite(sd) else _fmt(mu)
                    for mu, sd, n in zip(
                        summary[f"{m}_mean"], summary[f"{m}_std"], summary["runs"], strict=True
                    )
                ]
                for m in metrics
            },
        },
        index=summary.ticker,
    )
    return _frame_html(frame)


def _config_facts(result: BacktestResult) -> str:
    c = result.config
    split, env, rewts, bt = (
        c.get("split", {}),
        c.get("trading_env", {}),
        c.get("rewts", {}),
        c.get("backtest", {}),
    )
    facts = [
        ("tickers", ", ".join(result.tickers())),
        ("training period", f"{split.get('train_start')} .. {split.get('train_end')}"),
        ("test period", f"{split.get('test_start')} .. {split.get('test_end')}"),
        (
            "transaction cost",
            f"{100 * float(env.get('transaction_cost', 0)):.2f} % of traded value",
        ),
        ("actions", str(env.get("actions"))),
        ("max position", str(env.get("max_position"))),
        ("runs (seeds) per learned agent", str(bt.get("runs"))),
        ("strategy source", str(c.get("llm", {}).get("provider"))),
        *_model_facts(result),
        ("strategy period", f"{c.get('strategy_frequency')} trading days"),
        (
            "ReWTS chunk / look-back",
            f"{rewts.get('chunk_length')} / {rewts.get('lookback_length')} days",
        ),
        (
            "ensemble signal / QP solver",
            f"{rewts.get('ensemble_signal')} / {bt.get('qp_solver', 'clarabel')}",
        ),
        ("wall time", f"{result.wall_seconds:.1f} s"),
    ]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return f"<table>{rows}</table>"


def _model_facts(result: BacktestResult) -> list[tuple[str, str]]:
    """The language model, its prompts and its training cutoff, for "How this was run"."""
    info = result.memorization
    if not info:
        return []
    cutoff = info.get("cutoff") or {}
    date = cutoff.get("date")
    when = f"{date} ({cutoff.get('kind')}; {cutoff.get('source')})" if date else cutoff.get("kind")
    return [
        ("language model", f"{info.get('provider')} / {info.get('model')}"),
        ("prompts", "blind (no names, dates or price levels)" if info.get("blind") else "named"),
        ("model training cutoff", str(when)),
    ]


def _cutoff_split_html(result: BacktestResult) -> str:
    """Metrics before and after the model's training cutoff (when the test spans it)."""
    split = result.memorization.get("split")
    if not split:
        return ""
    frame = pd.DataFrame(split)
    frame["agent"] = [agent_label(a) for a in frame["agent"]]
    wide = frame.pivot_table(
        index=["ticker", "agent"], columns="side", values=["sharpe", "annual_return", "n_days"]
    )
    cols = [
        (m, side) for m in ("n_days", "sharpe", "annual_return") for side in ("before", "after")
    ]
    wide = wide.reindex(columns=[c for c in cols if c in wide.columns])
    shown = pd.DataFrame(
        {f"{m} {side}": [_fmt(float(v)) for v in wide[(m, side)]] for m, side in wide.columns},
        index=[f"{t} · {a}" for t, a in wide.index],
    )
    date = result.memorization["cutoff"]["date"]
    return (
        "<h2>Before and after the model's training cutoff</h2>"
        f"<p>The test period spans the model's training cutoff ({html.escape(date)}). Up to "
        "the cutoff the model may have read what happened next; after it, it cannot have. A "
        "result that holds only before the cutoff is more likely recall than judgment. Means "
        "over runs; each side is scored on its own days.</p>" + _frame_html(shown)
    )


#: how to read the named-vs-blind table (report and docs)
MEMORIZATION_GUIDE = (
    "The same strategy periods were generated twice: with named prompts (ticker, dates, price "
    "levels, headlines as written) and with blind ones (llm.blind: no name of any stock in the "
    "universe, no year, date, month or price level). Each side was backtested alike. The "
    "paired t-test compares the two sides' returns period by period (same period, same seed). "
    "A named edge that vanishes blind (named significantly better) is likely memorization: "
    "the model recognized the stock and the time and recalled what followed. No significant "
    "difference does not prove there is none: a blind prompt can still hint at the stock "
    "through its volatility, and with few periods the test has little power."
)


def memorization_section(records: list[dict[str, Any]]) -> str:
    """The "Memorization check" section: named vs blind per ticker and agent."""
    if not records:
        return (
            "<h2>Memorization check</h2><p>No LLM agent was backtested on both sides, so "
            "there is nothing to compare.</p>"
        )
    frame = pd.DataFrame(records)
    shown = pd.DataFrame(
        {
            "Sharpe named": frame["sharpe_named"].map(_fmt),
            "Sharpe blind": frame["sharpe_blind"].map(_fmt),
            "Sharpe Buy & Hold": frame["sharpe_buy_and_hold"].map(_fmt),
            "periods": frame["periods"],
            "mean period return diff": frame["mean_diff"].map(_fmt),
            "p": frame["p"].map(_fmt),
            "verdict": frame["verdict"],
        }
    )
    shown.index = [
        f"{t} · {agent_label(a)}" for t, a in zip(frame["ticker"], frame["agent"], strict=True)
    ]
    flagged = frame["verdict"].str.startswith("likely memorization")
    summary = (
        f"<div class='bad'>{int(flagged.sum())} of {len(frame)} comparisons show a named edge "
        "that vanishes blind: likely memorization.</div>"
        if flagged.any()
        else "<div class='note'>No named edge vanishes blind at the 5 % level.</div>"
    )
    return (
        "<h2>Memorization check</h2>"
        f"<p>{html.escape(MEMORIZATION_GUIDE)}</p>{summary}{_frame_html(shown)}"
    )


def render_compare_html(
    named: BacktestResult, blind: BacktestResult, records: list[dict[str, Any]]
) -> str:
    """``rewts compare``'s report: the cutoff warning, the memorization check and each side's
    Sharpe table (each side's full report is in its own folder)."""
    warning = named.memorization.get("warning")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>rewts named vs blind {html.escape(named.name)}</title><style>{_CSS}</style>"
        "</head><body>",
        "<h1>Named vs blind prompts</h1>",
        f"<div class='bad'>{html.escape(warning)}</div>" if warning else "",
        f"<p class='muted'>Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by rewts. "
        "Full reports of each side: <code>named/report.html</code> and "
        "<code>blind/report.html</code>.</p>",
        "<h2>How this was run</h2>",
        _config_facts(named),
        memorization_section(records),
        _cutoff_split_html(named),
    ]
    for side, result in (("named", named), ("blind", blind)):
        if result.runs:
            parts.append(f"<h3>Sharpe ratio, {side} prompts (mean ± std over runs)</h3>")
            parts.append(_frame_html(paper_table(result, "sharpe"), best_agents(result, "sharpe")))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _rebalance_text(result: BacktestResult, ticker: str) -> str:
    keys = sorted(k for k in result.rebalances if k[0] == ticker)
    if not keys:
        return ""
    frames = [result.rebalances[k] for k in keys]
    reb = pd.concat(frames, ignore_index=True)
    if reb.empty:
        return ""
    fallbacks = int((reb["status"] == "fallback").sum())
    med = 1000 * float(reb["solve_seconds"].median())
    text = (
        f"{len(reb)} weight re-fits over {len(keys)} run(s); median QP solve time {med:.2f} ms; "
        f"uniform fallbacks: {fallbacks}."
    )
    if fallbacks:
        reasons = reb.loc[reb["status"] == "fallback", "reason"].value_counts().head(3)
        text += " Reasons: " + "; ".join(f"{r} ({n}x)" for r, n in reasons.items())
    return f'<p class="muted">{html.escape(text)}</p>'


def _trading_agent(result: BacktestResult, ticker: str) -> str:
    for agent in ("rewts", "llm_rl", "llm_only", "buy_and_hold"):
        if result.find(ticker, agent) is not None:
            return agent
    return result.agents()[0] if result.agents() else "buy_and_hold"


def render_html(result: BacktestResult, *, progress: Callable[[str], None] | None = None) -> str:
    """The whole report as one HTML string."""
    say = progress or (lambda _msg: None)
    # the memorization warning goes at the very top, not among the other notes
    warning = result.memorization.get("warning")
    notes = [n for n in result.notes if n != warning]
    parts: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>rewts backtest {html.escape(result.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Backtest report: {html.escape(result.name)}</h1>",
        f"<div class='bad'>{html.escape(warning)}</div>" if warning else "",
        f"<p class='muted'>Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by rewts.</p>",
        "<p>This run trades each stock on a held-out test period with several agents side by "
        "side: simple baselines, reinforcement-learning agents with and without the LLM's "
        "monthly signal, the ReWTS ensemble of chunk agents, and placebo and sanity checks "
        "that tell whether the LLM signal carries information and whether the machinery "
        "works. The tables compare risk-adjusted return (Sharpe) and worst loss (max "
        "drawdown); the figures show how each number came about.</p>",
        "<h2>How this was run</h2>",
        _config_facts(result),
        "<h2>Conventions</h2><ul>",
        *[f"<li>{html.escape(c)}</li>" for c in CONVENTIONS],
        "</ul>",
    ]
    if notes:
        parts.append("<h2>Read this first</h2>")
        for note in notes:
            cls = (
                "bad"
                if note.lower().startswith(("warning", "failed", "sanity check failed"))
                else "note"
            )
            parts.append(f"<div class='{cls}'>{html.escape(note)}</div>")
    parts.append("<h2>Headline results</h2>")
    parts.append(
        "<p>Shaped like the paper's Tables VII and VIII (Darmanin &amp; Vella 2025). For "
        "reference, the paper reports a mean Sharpe of 1.10 for LLM+RL, 0.64 for RL-only and "
        "1.03 for LLM-only over 25 runs, and a mean max drawdown of 0.31 (LLM+RL) against 0.36 "
        "(RL-only). The best agent per row is in bold green (the leak sanity check is not "
        "ranked).</p>"
    )
    for metric, title in PAPER_TABLES.items():
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(_frame_html(paper_table(result, metric), best_agents(result, metric)))
    if result.tests:
        parts.append("<h3>Paired test</h3><ul>")
        parts.extend(f"<li>{html.escape(t.describe())}</li>" for t in result.tests)
        parts.append(
            "</ul><p class='muted'>Runs are paired by ticker and seed (the two agents share "
            "data and seed); scipy.stats.ttest_rel on the per-run metric.</p>"
        )
    fit = generalization_table(result)
    if not fit.empty:
        parts.append("<h3>Generalization: training, validation and test days</h3>")
        parts.append(
            "<p>Each learned agent's greedy policy on the days it trained on, on the validation "
            "days that picked its checkpoint (inside the training range) and on the test, mean "
            "over runs. A training Sharpe far above the test Sharpe is memorization; direction "
            "accuracy is the share of days whose held direction matched the next move. The "
            "ensemble has test numbers only (its members trained on different chunks).</p>"
        )
        labels = fit["ticker"] + " " + fit["agent"]
        parts.append(_frame_html(fit.drop(columns=["ticker", "agent"]).set_index(labels).map(_fmt)))
    parts.append(_cutoff_split_html(result))
    if result.memorization.get("comparison") is not None:
        parts.append(memorization_section(result.memorization["comparison"]))
    say("overview figure")
    parts.append(
        _img(
            figures.sharpe_overview(result),
            "Mean Sharpe ratio per ticker and agent over runs; whiskers show one standard "
            "deviation across runs, i.e. how much the result depends on the seed.",
        )
    )
    parts.append("<h2>Agents</h2><table><tr><th>agent</th><th>what it does</th></tr>")
    for key in result.agents():
        label, meaning = AGENTS.get(key, (key, ""))
        parts.append(
            f"<tr><td>{html.escape(label)}</td><td style='text-align:left'>{html.escape(meaning)}</td></tr>"
        )
    parts.append("</table>")
    parts.append(
        "<details><summary>All metrics (mean ± std over runs)</summary>"
        + _full_summary(result)
        + "</details>"
    )
    for ticker in result.tickers():
        say(f"figures for {ticker}")
        parts.append(f"<h2>{html.escape(ticker)}</h2>")
        parts.append(
            _img(
                figures.equity_curves(result, ticker),
                "Portfolio value of each agent over the test period, starting at 1. Bold: the "
                "first run; faint: the other seeds of the same agent. A line above Buy & Hold "
                "earned more than holding the stock. A cross marks the day the drawdown stop "
                "(trading_env.max_drawdown_limit) closed that agent's book for good.",
            )
        )
        parts.append(
            _img(
                figures.drawdowns(result, ticker),
                "How far each agent's portfolio stood below its best value so far (first "
                "run). The deepest point is the max drawdown in the table; long flat stretches "
                "below zero are long recoveries.",
            )
        )
        agent = _trading_agent(result, ticker)
        parts.append(
            _img(
                figures.price_trades_signal(result, ticker, agent),
                f"Close price with the trades of {agent_label(agent)} (first run): green up "
                "triangles raise the position, red down triangles lower it. Background and "
                "lower panel: the LLM's signal tau for each strategy period (green long, red "
                "short, stronger colour = higher confidence); it was produced from data up to "
                "the day before its period started.",
            )
        )
        parts.append(
            _img(
                figures.ensemble_weights(result, ticker),
                "ReWTS weights of each chunk model on every test day (first run): the QP "
                "re-fitted on the look-back window that ends the day before. A chunk whose "
                "recent behaviour matched the market takes over; crosses mark uniform "
                "fallbacks after a solver failure.",
            )
        )
        parts.append(_rebalance_text(result, ticker))
        parts.append(
            _img(
                figures.training_curves(result, ticker),
                "Training curves of each chunk agent and the global one (per episode, first "
                "seed), as recorded at training time on the agent's own training days: the "
                "episode's return and Sharpe while exploring (epsilon-greedy, so early "
                "episodes are close to random) and the mean TD loss. A curve that never rises "
                "means that agent learned little.",
            )
        )
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)
