"""An offline, deterministic, rule-based strategist. NOT an LLM.

It fills the same schema as the language model from the same snapshot: trend (price against
the SMA stack, the averages' slopes), momentum (RSI, MACD histogram, 20-day return),
volatility (which lowers confidence, never flips direction) and market context (S&P 500 slope,
VIX level and slope; on a blind snapshot the same rules read its ratios and the VIX's z-score).
It is the default when no API key is set, so that every stage runs
offline, and an experimental baseline ("what does a rulebook give the RL agent?").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from rewts.llm.providers.base import InvalidOutput, Request, Response

#: shown wherever the heuristic is used, so nobody mistakes it for a model
BANNER = "provider: heuristic — a rule-based strategist, NOT an LLM (set an API key for one)"


def _sign(x: float) -> float:
    return 0.0 if x == 0 else math.copysign(1.0, x)


def _get(snap: Mapping[str, Any], name: str) -> float | None:
    value = snap.get(name)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _contributions(snap: Mapping[str, Any]) -> dict[str, float]:
    """Signed votes for LONG (+) or SHORT (-), one per feature that is present."""
    votes: dict[str, float] = {}
    close, sma50, sma200 = _get(snap, "close"), _get(snap, "sma_50"), _get(snap, "sma_200")
    if close is not None and sma50:
        votes["close_vs_sma_50"] = _sign(close - sma50) * 1.0
    elif (rel := _get(snap, "close_vs_sma_50")) is not None:  # a blind snapshot's ratio
        votes["close_vs_sma_50"] = _sign(rel) * 1.0
    if sma50 is not None and sma200:
        votes["sma_50_vs_sma_200"] = _sign(sma50 - sma200) * 1.0
    elif (rel := _get(snap, "sma_50_vs_sma_200")) is not None:
        votes["sma_50_vs_sma_200"] = _sign(rel) * 1.0
    for name, weight in (("sma_50_slope", 0.5), ("sma_200_slope", 0.5)):
        if (v := _get(snap, name)) is not None:
            votes[name] = _sign(v) * weight
    if (rsi := _get(snap, "rsi_14")) is not None:
        votes["rsi_14"] = max(-1.0, min(1.0, (rsi - 50.0) / 25.0)) * 0.75
    if (hist := _get(snap, "macd_hist")) is not None:
        votes["macd_hist"] = _sign(hist) * 0.75
    if (r20 := _get(snap, "return_20d")) is not None:
        votes["return_20d"] = max(-1.0, min(1.0, r20 / 0.10)) * 0.5
    if (sp := _get(snap, "sp500_slope")) is not None:
        votes["sp500_slope"] = _sign(sp) * 0.5
    if (vs := _get(snap, "vix_slope")) is not None:
        votes["vix_slope"] = -_sign(vs) * 0.25
    if (vix := _get(snap, "vix_close")) is not None and vix > 25.0:
        votes["vix_close"] = -0.5
    elif vix is None and (z := _get(snap, "vix_z_252")) is not None and z > 2.0:
        # blind: no VIX level, so "unusually high for the past year" stands in for "above 25"
        votes["vix_z_252"] = -0.5
    return votes


def heuristic_strategy(snap: Mapping[str, Any]) -> dict[str, Any]:
    """The rule-based answer as a plain dict in the strategist schema."""
    votes = _contributions(snap)
    if not votes:
        raise InvalidOutput("the heuristic strategist found no usable feature in the snapshot")
    score = sum(votes.values())
    direction = 1 if score >= 0 else 0
    hv = _get(snap, "hv_20")
    vol_penalty = 0.0 if hv is None else max(0.0, min(0.5, (hv - 0.30) / 0.40))
    strength = min(1.0, abs(score) / 3.0) * (1.0 - vol_penalty)
    confidence = round(1.0 + 2.0 * strength, 2)
    ranked = sorted(votes.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:5]
    total = sum(abs(v) for _, v in ranked) or 1.0
    features = [
        {
            "feature": name,
            "impact": "positive" if v > 0 else "negative" if v < 0 else "neutral",
            "weight": round(abs(v) / total, 3),
        }
        for name, v in ranked
    ]
    trend = sum(v for k, v in votes.items() if k.startswith(("close_vs", "sma_")))
    momentum = sum(votes.get(k, 0.0) for k in ("rsi_14", "macd_hist", "return_20d"))
    market = sum(votes.get(k, 0.0) for k in ("sp500_slope", "vix_slope", "vix_close", "vix_z_252"))
    explanation = (
        f"Rule-based (not an LLM): {'LONG' if direction else 'SHORT'} on a total score of "
        f"{score:+.2f} (trend {trend:+.2f}, momentum {momentum:+.2f}, market {market:+.2f})"
        + (f"; 20-day volatility {hv:.2f} lowers confidence" if vol_penalty > 0 else "")
        + f". Strongest input: {ranked[0][0]}."
    )
    return {
        "direction": direction,
        "confidence": confidence,
        "explanation": explanation,
        "key_features": features,
    }


class HeuristicProvider:
    """The offline strategist behind the provider interface (no network, no limit, no cache)."""

    name = "heuristic"
    local = True

    def __init__(self, model: str | None = None) -> None:
        self.model = model or "rules-v1"

    @property
    def identity(self) -> str:
        return "heuristic"

    async def generate(self, request: Request) -> Response:
        if request.context is None:
            raise InvalidOutput("the heuristic strategist needs the structured snapshot")
        text = json.dumps(heuristic_strategy(request.context), sort_keys=True)
        return Response(text=text, tokens_in=0, tokens_out=0)

    async def aclose(self) -> None:
        return None
