"""The news Analyst: one period's dated headlines in, a small structured news signal out.

Look-ahead is ruled out by how the headline window is cut. The strategist of period ``m``
decides from data up to ``inputs_end_m`` (the last trading day before the period starts), so its
news signal reads only the headlines dated in ``(inputs_end_{m-1}, inputs_end_m]``: the trading
days of period ``m-1`` and the calendar days (weekends, holidays) between them. Windows are
half-open and consecutive, so every headline belongs to exactly one window and none is dated
after the decision's data end (the data README's rule for day ``t``: ``date < t``). Period 0's
window is the ``strategy_frequency`` trading days before it (inside the warm-up).

A window without headlines gets :data:`NEUTRAL` with no API call. Company names and tickers can
be replaced in every prompt (``llm.anonymize``), as the paper did against memorization.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from rewts.data.timeline import StrategyPeriod
from rewts.errors import ConfigError
from rewts.llm.schemas import strict_object

#: the newest headlines kept per window (a month of a heavily covered stock is ~60)
MAX_HEADLINES = 80
#: characters kept of one headline (a few Reuters BRIEF items run to ~300)
MAX_HEADLINE_CHARS = 300

#: names the paper's universe is known by in headlines; the ticker itself is always included
ENTITY_NAMES: dict[str, tuple[str, ...]] = {
    "AAPL": ("Apple Inc", "Apple"),
    "AMZN": ("Amazon.com", "Amazon"),
    "GOOGL": ("Alphabet", "Google", "GOOG"),
    "META": ("Meta Platforms", "Facebook", "Meta", "FB"),
    "MSFT": ("Microsoft",),
    "TSLA": ("Tesla Inc", "Tesla"),
}
#: what an anonymized prompt calls the stock
ALIAS_TICKER = "STOCK"
ALIAS_NAME = "the Company"


class Factor(BaseModel):
    """One news factor: what happened, which way it points, how much it could move the stock."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=1000)
    sentiment: Literal[-1, 0, 1]
    impact: Literal[1, 2, 3]


class NewsAnalysis(BaseModel):
    """The analyst's answer (the paper's fields): up to 3 factors and an overall view."""

    model_config = ConfigDict(extra="forbid")

    factors: list[Factor] = Field(default_factory=list, max_length=3)
    overall_sentiment: Literal["bullish", "neutral", "bearish"]
    confidence: float = Field(ge=0.0, le=1.0)
    key_topics: list[str] = Field(default_factory=list, max_length=8)


#: no headlines in the window: neutral, zero confidence, and no API call was made
NEUTRAL = NewsAnalysis(factors=[], overall_sentiment="neutral", confidence=0.0, key_topics=[])

#: sent as the structured-output schema (OpenAI strict mode: every property required)
ANALYST_JSON_SCHEMA: dict[str, Any] = strict_object(
    {
        "factors": {
            "type": "array",
            "maxItems": 3,
            "items": strict_object(
                {
                    "description": {"type": "string"},
                    "sentiment": {"type": "integer", "enum": [-1, 0, 1]},
                    "impact": {"type": "integer", "enum": [1, 2, 3]},
                }
            ),
        },
        "overall_sentiment": {"type": "string", "enum": ["bullish", "neutral", "bearish"]},
        "confidence": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        "key_topics": {"type": "array", "maxItems": 5, "items": {"type": "string"}},
    }
)

ANALYST_SYSTEM_V1 = """You are the News Analyst of a systematic trading desk. You read the news \
headlines about one company published during one period (about a trading month) and condense \
them into a signal for the desk's strategist.

Find at most 3 factors that could move the stock over the coming weeks. For each factor give a \
one-sentence description, its sentiment for the stock (-1 negative, 0 neutral, 1 positive) and \
its potential market impact (1 low, 2 medium, 3 high). Ignore items that merely mention the \
company. Then give the overall sentiment (bullish, neutral or bearish), your confidence in it \
from 0.0 (none) to 1.0 (certain), and up to 5 key topics (a few words each). Judge only from \
the headlines given; do not use anything you may know about later events.

Answer with one JSON object and nothing else, matching this JSON schema:
{schema}"""

#: blind mode (llm.blind): the same task, told that names and dates are withheld on purpose
ANALYST_BLIND_NOTE = """

The company, the other companies it is compared with and all calendar dates are withheld on \
purpose: names are replaced by STOCK / the Company and OTHER / another company, dates by \
[year], [month] and [date], and each headline says how many days before the decision it \
appeared. Do not try to guess which company or which year it is; judge the headlines as \
written."""


# ----------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class NewsWindow:
    """Headlines dated in ``(after, until]`` feed the strategist of period ``period``."""

    period: int
    after: pd.Timestamp | None
    until: pd.Timestamp

    def describe(self, *, blind: bool = False) -> str:
        """The window in words; ``blind``: without dates, counted back from the decision."""
        if blind:
            return window_label(self.after, self.until)
        lo = "the start of the data" if self.after is None else self.after.date().isoformat()
        return f"after {lo} up to and including {self.until.date().isoformat()}"


def days_before(day: pd.Timestamp | str, decision: pd.Timestamp) -> str:
    """``day`` counted back from the decision day in calendar days ("3 days before")."""
    n = (pd.Timestamp(decision).normalize() - pd.Timestamp(day).normalize()).days
    if n < 0:
        raise ValueError(f"{day} is after the decision day {decision}: look-ahead")
    if n == 0:
        return "the decision day"
    return "1 day before" if n == 1 else f"{n} days before"


def window_label(after: pd.Timestamp | None, until: pd.Timestamp) -> str:
    """A headline window ``(after, until]`` without dates (``until`` is the decision day)."""
    if after is None:
        return "the days up to and including the decision day"
    n = (until.normalize() - after.normalize()).days
    return f"the {n} calendar days up to and including the decision day"


def news_windows(
    dates: pd.DatetimeIndex, periods: Iterable[StrategyPeriod], strategy_frequency: int
) -> dict[int, NewsWindow]:
    """The headline window of every period (see the module docstring)."""
    out: dict[int, NewsWindow] = {}
    previous: StrategyPeriod | None = None
    for period in periods:
        if previous is not None:
            after: pd.Timestamp | None = previous.inputs_end
        else:
            pos = period.inputs_end_pos - strategy_frequency
            after = dates[pos] if pos >= 0 else None
        out[period.index] = NewsWindow(period.index, after, period.inputs_end)
        previous = period
    return out


def window_headlines(
    headlines: pd.DataFrame, ticker: str, window: NewsWindow, *, limit: int = MAX_HEADLINES
) -> tuple[list[tuple[str, str]], int]:
    """``([(date, headline), ...], total)``: the window's headlines for ``ticker``, newest
    ``limit`` kept, in date then text order (deterministic), exact duplicates dropped."""
    dates = headlines["date"].to_numpy()
    mask = (headlines["ticker"].to_numpy() == ticker) & (dates <= window.until.to_datetime64())
    if window.after is not None:
        mask &= dates > window.after.to_datetime64()
    rows = headlines.loc[mask, ["date", "headline"]]
    if rows.empty:
        return [], 0
    text = rows["headline"].astype(str).str.split().str.join(" ").str.slice(0, MAX_HEADLINE_CHARS)
    table = pd.DataFrame({"date": rows["date"].dt.strftime("%Y-%m-%d"), "headline": text})
    table = table.drop_duplicates().sort_values(["date", "headline"], kind="stable")
    total = len(table)
    kept = table.iloc[-limit:] if total > limit else table
    return list(zip(kept["date"], kept["headline"], strict=True)), total


# ------------------------------------------------------------------ anonymizing


def anonymizer(
    ticker: str,
    names: Iterable[str] | None = None,
    *,
    ticker_alias: str = ALIAS_TICKER,
    name_alias: str = ALIAS_NAME,
) -> Callable[[str], str]:
    """A function replacing ``ticker`` and the company's names by neutral aliases.

    A ticker as a whole word, case-sensitively (short tickers can be ordinary words in lower
    case); a cashtag in any case with its suffix (``$tsla``, ``$TSLAQ``). A name in any case:
    one of 5+ letters with whatever word follows it (``Teslas``, ``AmazonFresh``,
    ``Teslarati``); a shorter one (``Meta``) only whole, plural or CamelCase, so that
    ``metadata`` and ``Metaverse`` stay. Never inside another word (``FBI`` stays).
    Blind prompts reuse it with other aliases for the universe's other companies.
    """
    names = tuple(ENTITY_NAMES.get(ticker, ()) if names is None else names)
    tickers = sorted({ticker, *(n for n in names if n.isupper() and len(n) <= 5)}, key=len)
    words = sorted({n for n in names if n not in tickers}, key=len, reverse=True)
    alt = "|".join(re.escape(t) for t in reversed(tickers))
    # tickers first: "META" is the ticker, not the name "Meta" in capitals
    patterns = [
        (re.compile(rf"\$(?:{alt})\w*", re.IGNORECASE), ticker_alias),
        (re.compile(rf"(?<![\w$])(?:{alt})(?!\w)"), ticker_alias),
    ]
    # a long name starts a word (Teslarati, Amazonfresh); a short one (Meta) is a whole word,
    # a plural or a CamelCase compound, since it also begins ordinary words (metadata)
    long_names = [w for w in words if len(w) >= 5]
    short_names = [w for w in words if len(w) < 5]
    if long_names:
        alt = "|".join(re.escape(w) for w in long_names)
        patterns.append((re.compile(rf"(?<!\w)(?:{alt})\w*", re.IGNORECASE), name_alias))
    if short_names:
        alt = "|".join(re.escape(w) for w in short_names)
        name = rf"(?<!\w)(?:{alt})(?:(?-i:[A-Z])\w*|s)?(?!\w)"
        patterns.append((re.compile(name, re.IGNORECASE), name_alias))

    def apply(text: str) -> str:
        for pattern, alias in patterns:
            text = pattern.sub(alias, text)
        return text

    return apply


# ---------------------------------------------------------------------- prompts


def analyst_system_message(prompt_version: str, *, blind: bool = False) -> str:
    """The analyst's shared instructions (identical for every call: prefix caching applies)."""
    if prompt_version != "v1":
        raise ConfigError(f"llm.prompt_version = {prompt_version!r}: unknown (known: v1)")
    schema = json.dumps(ANALYST_JSON_SCHEMA, sort_keys=True, separators=(",", ":"))
    text = ANALYST_SYSTEM_V1.replace("{schema}", schema)
    return text + ANALYST_BLIND_NOTE if blind else text


def render_analyst_messages(
    ticker: str,
    window: NewsWindow,
    items: list[tuple[str, str]],
    total: int,
    *,
    system: str,
    anonymize: Callable[[str], str] | None = None,
    blind: bool = False,
) -> tuple[dict[str, str], ...]:
    """Chat messages for one analyst call; the headlines are the only varying part.

    ``blind``: each headline is dated by days before the decision instead of its date (pass
    the blind scrubber as ``anonymize`` for its text)."""
    label = ALIAS_TICKER if anonymize is not None else ticker
    shown = f"{len(items)}" if len(items) == total else f"the latest {len(items)} of {total}"
    if blind:
        lines = "\n".join(f"- {days_before(day, window.until)}: {text}" for day, text in items)
        dated = f"from {window.describe(blind=True)}"
    else:
        lines = "\n".join(f"- {day}: {text}" for day, text in items)
        dated = f"dated {window.describe()}"
    user = f"Company: {label}\nHeadlines {dated} ({shown}):\n{lines}\nAnalyze these headlines."
    if anonymize is not None:
        user = anonymize(user)
    return ({"role": "system", "content": system}, {"role": "user", "content": user})


def news_signal(
    window: NewsWindow,
    count: int,
    analysis: NewsAnalysis | None,
    status: str,
    *,
    blind: bool = False,
) -> dict[str, Any]:
    """What the strategist's prompt shows of the news (a plain, JSON-ready dict)."""
    signal: dict[str, Any] = {"headlines": count, "window": window.describe(blind=blind)}
    if analysis is None:
        signal["status"] = "unavailable: the news analyst failed; decide without news"
        return signal
    signal["status"] = "no headlines: neutral" if status == "none" else "analyzed"
    signal.update(analysis.model_dump())
    return signal


__all__ = [
    "ANALYST_JSON_SCHEMA",
    "ENTITY_NAMES",
    "MAX_HEADLINES",
    "NEUTRAL",
    "Factor",
    "NewsAnalysis",
    "NewsWindow",
    "analyst_system_message",
    "anonymizer",
    "days_before",
    "news_signal",
    "news_windows",
    "render_analyst_messages",
    "window_headlines",
    "window_label",
]
