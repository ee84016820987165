"""The strategist prompt: our own wording, versioned, rendered deterministically.

Two rules make the cache exact and the experiment honest:

* **No look-ahead.** :func:`snapshot_inputs` is the only place that touches the data; it slices
  the frame to the rows up to ``period.inputs_end`` (the last trading day *before* the period the
  strategy will guide) and reads nothing after it.
* **Deterministic rendering.** Floats are formatted to a fixed number of significant digits,
  keys are sorted, and the shared instructions (with the JSON schema) come first, identical
  for every call, so providers' prefix caching applies and equal inputs give equal bytes.

Optional sections follow the snapshot: the news analyst's signal (:mod:`.analyst`) and, with
``llm.reflection``, the previous strategy and its realized outcome (:mod:`.memory`). Without
them the text is exactly the independent-periods prompt.

Changing any wording means a new ``prompt_version``; old cache entries are then simply not hit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from rewts.data.features import STOCK_FEATURES
from rewts.data.timeline import StrategyPeriod
from rewts.errors import ConfigError
from rewts.llm.schemas import STRATEGY_JSON_SCHEMA

#: prompt versions this module can render
PROMPT_VERSIONS = ("v1",)

#: snapshot fields read from the last input row, when the column exists
_LAST_ROW_FIELDS = (
    "close",
    *STOCK_FEATURES,
    "beta_60",
    "sp500_close",
    "sp500_slope",
    "vix_close",
    "vix_slope",
    "tnx_close",
)

_SIG_DIGITS = 6

#: how every v1 strategist prompt ends: named and blind prompts ask for the same answer
_ANSWER_V1 = """Weigh the evidence; when signals conflict, say so and lower your confidence.

Answer with one JSON object and nothing else, matching this JSON schema:
{schema}

Fields:
- direction: 1 for LONG, 0 for SHORT.
- confidence: 1.0 (low) to 3.0 (high), how strongly the evidence supports the direction.
- explanation: two to four sentences citing the numbers that drove the decision.
- key_features: up to 5 snapshot fields that mattered most, each with its impact on the \
decision (positive, negative or neutral) and a weight between 0 and 1."""

SYSTEM_V1 = f"""You are the Strategist of a systematic trading desk. Once per strategy period \
(about one trading month) you read a structured snapshot of one stock and its market context, \
computed only from data available before the period starts, and decide the position for the \
whole period: LONG (direction 1) or SHORT (direction 0).

How to decide:
- Trend: price against its 20/50/100/200-day moving averages and the slopes of those averages.
- Momentum: RSI(14), MACD against its signal line, and recent returns (1, 5 and 20 days).
- Risk: ATR(14), 20-day historical volatility and beta to the S&P 500.
- Market context: S&P 500 level and slope, VIX level and slope, the 10-year Treasury yield.
{_ANSWER_V1}"""


#: blind mode (llm.blind): the same task and answer, on relative inputs with names and dates
#: withheld (rewts.llm.blind builds the snapshot)
SYSTEM_V1_BLIND = f"""You are the Strategist of a systematic trading desk. Once per strategy \
period (about one trading month) you read a structured snapshot of one stock and its market \
context, computed only from data available before the period starts, and decide the position \
for the whole period: LONG (direction 1) or SHORT (direction 0).

The stock, the other companies and all calendar dates are withheld on purpose: the stock is \
called STOCK (the Company), other companies OTHER (another company), dates are replaced by \
[year], [month] and [date], and time is counted back from the decision day. Every input is \
relative (returns, ratios, z-scores); there are no price levels. Do not try to guess which \
stock or which year it is; decide from the numbers given.

How to decide:
- Trend: the close against its 20/50/100/200-day moving averages (close_vs_sma_N = close / \
SMA - 1), the 50-day against the 200-day average (sma_50_vs_sma_200) and the slopes of the \
averages.
- Momentum: RSI(14), MACD against its signal line (both as a fraction of the close) and recent \
returns (1, 5 and 20 days).
- Risk: ATR(14) as a fraction of the close, 20-day historical volatility and beta to the \
S&P 500.
- Market context: the S&P 500's 20-day change, the z-score of its level over the past year \
and its slope; the VIX's 20-day change, z-score and slope; the 10-year Treasury yield's \
20-day change (percentage points) and z-score.
{_ANSWER_V1}"""

#: what a blind prompt says instead of the decision's date
BLIND_DATA_END = (
    "the decision day (calendar dates are withheld; earlier days are counted back from it)"
)


def _stable(value: Any) -> Any:
    """A JSON-ready value with a fixed number of significant digits (None for NaN/inf)."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    rounded = float(f"{number:.{_SIG_DIGITS}g}")
    return 0.0 if rounded == 0.0 else rounded


#: public name of the rounding rule, for other prompt sections (news, memory)
stable_number = _stable


def past_rows(frame: pd.DataFrame, period: StrategyPeriod) -> pd.DataFrame:
    """The rows a decision for ``period`` may read: up to and including ``inputs_end``.

    ``frame`` must share the timeline's calendar (the timeline was cut from its index); the
    check makes a misaligned frame an error instead of silent look-ahead.
    """
    past = frame.iloc[: period.inputs_end_pos + 1]
    if len(past) == 0 or past.index[-1] != period.inputs_end:
        raise ValueError(
            f"frame is not aligned with the timeline: row {period.inputs_end_pos} is not "
            f"{period.inputs_end.date()}"
        )
    return past


def snapshot_inputs(frame: pd.DataFrame, period: StrategyPeriod) -> dict[str, Any]:
    """The strategist's inputs for ``period``: built only from rows up to ``period.inputs_end``
    (:func:`past_rows`)."""
    past = past_rows(frame, period)
    last = past.iloc[-1]
    snap: dict[str, Any] = {
        name: _stable(last[name]) for name in _LAST_ROW_FIELDS if name in past.columns
    }
    close = past["close"].to_numpy(dtype=float)
    if len(close) > 20:
        snap["return_20d"] = _stable(close[-1] / close[-21] - 1.0)
    if "volume" in past.columns and len(past) >= 20:
        volume = past["volume"].to_numpy(dtype=float)
        mean20 = volume[-20:].mean()
        if mean20 > 0:
            snap["volume_vs_20d_avg"] = _stable(volume[-1] / mean20)
    return snap


def system_message(prompt_version: str, *, blind: bool = False) -> str:
    """The shared instructions, identical for every call of a prompt version (and mode)."""
    if prompt_version != "v1":
        raise ConfigError(
            f"llm.prompt_version = {prompt_version!r}: unknown (known: {', '.join(PROMPT_VERSIONS)})"
        )
    schema = json.dumps(STRATEGY_JSON_SCHEMA, sort_keys=True, separators=(",", ":"))
    return (SYSTEM_V1_BLIND if blind else SYSTEM_V1).replace("{schema}", schema)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), allow_nan=False)


def render_messages(
    ticker: str,
    period: StrategyPeriod,
    snapshot: dict[str, Any],
    *,
    prompt_version: str = "v1",
    system: str | None = None,
    news: Mapping[str, Any] | None = None,
    memory: Mapping[str, Any] | None = None,
    anonymize: Callable[[str], str] | None = None,
    blind: bool = False,
) -> tuple[dict[str, str], ...]:
    """Chat messages for one strategist call (shared system message first, then the inputs).

    ``news`` (the analyst's signal) and ``memory`` (the previous strategy and its outcome) are
    optional sections; without them the text is exactly the independent-periods prompt, so
    existing cache entries stay valid. ``anonymize`` rewrites the user message (names, ticker).
    ``blind`` withholds the date (the snapshot and sections must be blind ones too, see
    :mod:`rewts.llm.blind`, and ``anonymize`` its scrubber).
    """
    system = system if system is not None else system_message(prompt_version, blind=blind)
    data_end = BLIND_DATA_END if blind else period.inputs_end.date().isoformat()
    user = (
        f"Ticker: {ticker}\n"
        f"Data up to and including: {data_end}\n"
        f"Snapshot (JSON): {_json(snapshot)}\n"
    )
    if news is not None:
        user += f"News analyst signal for the past period (JSON): {_json(news)}\n"
    if memory is not None:
        user += f"Your previous strategy and how it turned out (JSON): {_json(memory)}\n"
    user += "Decide the position for the strategy period."
    if anonymize is not None:
        user = anonymize(user)
    return ({"role": "system", "content": system}, {"role": "user", "content": user})
