"""Blind prompts (``llm.blind``): neither the stock nor the time can be read from them.

Why: the paper's test years lie before the training cutoff of every model a user can call
today, so a model shown "AAPL, data up to 2018-03-29" may recall what happened next, and its
Sharpe would measure memory, not judgment. A blind prompt keeps every signal of the named one
in relative form and removes what names or dates it:

* **the snapshot** (:func:`blind_snapshot`): price levels become ratios (close / SMA - 1, the
  50- against the 200-day average, MACD and ATR over the close); the S&P 500, the VIX and the
  10-year yield become 20-day changes and z-scores over the past year
  (:data:`BLIND_EQUIVALENTS` says which blind fields stand for each named one);
* **dates**: the decision day is "the decision day"; headlines and the previous period are
  counted back from it ("3 days before", :func:`days_before`);
* **free text** (headlines, the model's own earlier answers fed back by reflection,
  :func:`blind_scrubber`): the stock's ticker and names become ``STOCK`` / ``the Company``,
  every other company of the universe ``OTHER`` / ``another company``, a few well-known people
  and products ``[name]``, years, dates and month names ``[year]`` / ``[date]`` / ``[month]``,
  and per-share dollar prices ``$[price]``.

Blind prompts have their own prompt version (``v1-blind``), hence their own cache keys: a
blind answer is never served for a named prompt or the other way round.

What blind cannot remove (docs/llm-method.md): a headline still describes its event, and a
model that knows the event can date it; a stock's volatility and beta can hint at which stock
it is. The named-vs-blind comparison (``rewts compare``) measures what is left.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from rewts.data.timeline import StrategyPeriod
from rewts.llm.analyst import ENTITY_NAMES, anonymizer, days_before, window_label
from rewts.llm.prompts import past_rows, stable_number

#: appended to ``llm.prompt_version`` in blind mode (cache keys, the rows' provenance)
BLIND_SUFFIX = "-blind"
#: what a blind prompt calls the universe's other companies
OTHER_TICKER = "OTHER"
OTHER_NAME = "another company"
#: what a blind prompt calls a well-known person or product of the universe
NAME_PLACEHOLDER = "[name]"

#: people and flagship products that name a company of the paper's universe on their own
#: (checked on the headlines in ../shared/data); matched as whole words, any case
BLIND_EXTRA_NAMES: dict[str, tuple[str, ...]] = {
    "AAPL": ("Tim Cook", "iPhone", "iPad", "iTunes", "MacBook", "AirPods", "App Store"),
    "AMZN": ("Jeff Bezos", "Bezos", "Alexa", "AWS", "Whole Foods", "Kindle"),
    "GOOGL": ("Sundar Pichai", "Pichai", "Sergey Brin", "Larry Page", "YouTube", "Waymo"),
    "META": ("Mark Zuckerberg", "Zuckerberg", "Sheryl Sandberg", "Sandberg", "Instagram",
             "WhatsApp", "Oculus"),
    "MSFT": ("Satya Nadella", "Nadella", "Bill Gates", "Xbox", "Azure", "LinkedIn"),
    "TSLA": ("Elon Musk", "Musk", "Gigafactory", "SolarCity", "Model 3", "Model S", "Model X",
             "Model Y"),
}  # fmt: skip

#: the blind fields that carry each named snapshot field's signal (the rest keep their name)
BLIND_EQUIVALENTS: dict[str, tuple[str, ...]] = {
    "close": ("close_vs_sma_20", "close_vs_sma_50", "close_vs_sma_100", "close_vs_sma_200"),
    "sma_20": ("close_vs_sma_20",),
    "sma_50": ("close_vs_sma_50", "sma_50_vs_sma_200"),
    "sma_100": ("close_vs_sma_100",),
    "sma_200": ("close_vs_sma_200", "sma_50_vs_sma_200"),
    "macd": ("macd_over_close",),
    "macd_signal": ("macd_signal_over_close",),
    "macd_hist": ("macd_hist_over_close",),
    "atr_14": ("atr_14_over_close",),
    "sp500_close": ("sp500_change_20d", "sp500_z_252"),
    "vix_close": ("vix_change_20d", "vix_z_252"),
    "tnx_close": ("tnx_change_20d", "tnx_z_252"),
}
#: snapshot fields that are already relative (returns, slopes, bounded or unit-free)
_KEPT = (
    "return_1d",
    "return_5d",
    "sma_20_slope",
    "sma_50_slope",
    "sma_100_slope",
    "sma_200_slope",
    "rsi_14",
    "hv_20",
    "beta_60",
    "sp500_slope",
    "vix_slope",
)
#: trading days of the market series' change, and of the window their z-score is taken over
CHANGE_DAYS = 20
Z_WINDOW = 252
#: fewer valid values than this in the z-score window: no z-score (None)
_Z_MIN = 60


def prompt_version(base: str, blind: bool) -> str:
    """The prompt version a run records and keys its cache on (``v1`` or ``v1-blind``)."""
    return f"{base}{BLIND_SUFFIX}" if blind else base


# ------------------------------------------------------------------- snapshot


def _ratio(a: Any, b: Any) -> float | None:
    """``a / b - 1``, None when either is missing or ``b`` is 0."""
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None
    return a / b - 1.0


def _over(a: Any, b: Any) -> float | None:
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None
    return a / b


def _zscore(values: np.ndarray) -> float | None:
    """The last value's z-score within ``values`` (the past year), None with too few values."""
    finite = values[np.isfinite(values)]
    if len(finite) < _Z_MIN or not math.isfinite(values[-1]):
        return None
    std = float(finite.std(ddof=1))
    return None if std == 0 else (float(values[-1]) - float(finite.mean())) / std


def blind_snapshot(frame: pd.DataFrame, period: StrategyPeriod) -> dict[str, Any]:
    """The strategist's inputs without a price level: every signal of
    :func:`~rewts.llm.prompts.snapshot_inputs` in relative form, from the same rows (up to
    ``period.inputs_end``, nothing later)."""
    past = past_rows(frame, period)
    last = past.iloc[-1]
    cols = past.columns
    snap: dict[str, Any] = {n: stable_number(last[n]) for n in _KEPT if n in cols}

    def put(name: str, value: float | None) -> None:
        snap[name] = stable_number(value)

    close = float(last["close"])
    closes = past["close"].to_numpy(dtype=float)
    if len(closes) > CHANGE_DAYS:
        put("return_20d", _ratio(closes[-1], closes[-1 - CHANGE_DAYS]))
    for n in (20, 50, 100, 200):
        if f"sma_{n}" in cols:
            put(f"close_vs_sma_{n}", _ratio(close, last[f"sma_{n}"]))
    if "sma_50" in cols and "sma_200" in cols:
        put("sma_50_vs_sma_200", _ratio(last["sma_50"], last["sma_200"]))
    for name in ("macd", "macd_signal", "macd_hist", "atr_14"):
        if name in cols:
            put(f"{name}_over_close", _over(last[name], close))
    for prefix in ("sp500", "vix", "tnx"):
        col = f"{prefix}_close"
        if col not in cols:
            continue
        series = past[col].to_numpy(dtype=float)
        if len(series) > CHANGE_DAYS:
            now, before = series[-1], series[-1 - CHANGE_DAYS]
            # a yield is already a rate: its change is in percentage points, not relative
            change = float(now - before) if prefix == "tnx" else _ratio(now, before)
            put(f"{prefix}_change_20d", change)
        put(f"{prefix}_z_252", _zscore(series[-Z_WINDOW:]))
    if "volume" in cols and len(past) >= 20:
        volume = past["volume"].to_numpy(dtype=float)
        mean20 = volume[-20:].mean()
        if mean20 > 0:
            put("volume_vs_20d_avg", volume[-1] / mean20)
    return snap


# ----------------------------------------------------------------------- dates


def previous_period_label(previous: StrategyPeriod) -> str:
    """The period before the decision, without dates (it ends on the decision day)."""
    return (
        f"the previous strategy period ({previous.length} trading days, ending on the decision day)"
    )


# ------------------------------------------------------------------ free text

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec")
# capitalized or upper case; lower case only where the word is not also an ordinary one
_MONTH_WORDS = sorted(
    {
        *_MONTHS,
        *_MONTH_ABBR,
        *(w.upper() for w in (*_MONTHS, *_MONTH_ABBR)),
        *(m.lower() for m in _MONTHS if m not in ("May", "March")),
    },
    key=len,
    reverse=True,
)
_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # 2018-03-29, 2018/3/29
    (re.compile(r"(?<!\d)\d{4}[-/]\d{1,2}[-/]\d{1,2}(?!\d)"), "[date]"),
    # 3/29, 3/29/18, 03/29/2018 (not the 1/2 of "1-1/2-week")
    (re.compile(r"(?<![\d/.\-])\d{1,2}/\d{1,2}(?:/\d{2}(?:\d{2})?)?(?![\d/])"), "[date]"),
    # two-digit years after a fiscal or calendar period: FY19, Q1'19, 2H19, CY 20
    (
        re.compile(r"(?i)(?<![A-Za-z0-9])(FY|CY|Q[1-4]|[1-4]Q|[12]H|H[12])\s?['’]?\d{2}(?!\d)"),
        r"\1[year]",
    ),
    # an apostrophe year: Next '19
    (re.compile(r"(?<![\w'’])['’]\d{2}(?![\d\w])"), "[year]"),
    # a four-digit year (not inside a number: 0.2018, 12018)
    (re.compile(r"(?<![\d.])(?:19|20)\d{2}(?!\d)"), "[year]"),
    (re.compile(rf"(?<![A-Za-z])(?:{'|'.join(_MONTH_WORDS)})(?![A-Za-z])"), "[month]"),
    # a per-share dollar price ($246.93, PT to $250), not an amount ($38 billion, $1.5B)
    (
        re.compile(
            r"\$\s?\d[\d,]*(?:\.\d+)?(?![\d.,]?\d)"
            r"(?!\s?(?i:k|m|b|t|mln|bln|mn|bn|million|billion|trillion|thousand)\b)"
        ),
        "$[price]",
    ),
)


def universe(tickers: Iterable[str]) -> tuple[str, ...]:
    """Every company a blind prompt must not name: the run's tickers and the paper's six."""
    return tuple(dict.fromkeys([*(t.upper() for t in tickers), *ENTITY_NAMES]))


def _extra_names(names: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted(set(names), key=len, reverse=True)
    if not words:
        return None
    alt = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w)(?:{alt})(?:s|'s|’s)?(?!\w)", re.IGNORECASE)


def scrub_time(text: str) -> str:
    """``text`` without years, dates, month names or per-share prices (placeholders instead)."""
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def blind_scrubber(ticker: str, tickers: Iterable[str]) -> Callable[[str], str]:
    """The rewrite of every blind user message of ``ticker``: its own names -> STOCK / the
    Company, the other companies of ``tickers`` (see :func:`universe`) -> OTHER / another
    company, well-known people and products -> [name], then :func:`scrub_time`."""
    everyone = universe([ticker, *tickers])
    own = anonymizer(ticker)
    others = [
        anonymizer(t, ticker_alias=OTHER_TICKER, name_alias=OTHER_NAME)
        for t in everyone
        if t != ticker
    ]
    extra = _extra_names(n for t in everyone for n in BLIND_EXTRA_NAMES.get(t, ()))

    def apply(text: str) -> str:
        text = own(text)
        for other in others:
            text = other(text)
        if extra is not None:
            text = extra.sub(NAME_PLACEHOLDER, text)
        return scrub_time(text)

    return apply


__all__ = [
    "BLIND_EQUIVALENTS",
    "BLIND_EXTRA_NAMES",
    "BLIND_SUFFIX",
    "blind_scrubber",
    "blind_snapshot",
    "days_before",
    "previous_period_label",
    "prompt_version",
    "scrub_time",
    "universe",
    "window_label",
]
