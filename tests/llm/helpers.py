"""Small synthetic market frames for the generator's tests (the data stage is not needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def synthetic_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A frame with the data stage's columns, on business days, deterministic."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=n, name="date")
    ret = rng.normal(0.0005, 0.015, n)
    close = 100.0 * np.exp(np.cumsum(ret))
    df = pd.DataFrame(index=dates)
    df["open"] = close * (1 + rng.normal(0, 0.003, n))
    df["high"] = np.maximum(df["open"], close) * 1.01
    df["low"] = np.minimum(df["open"], close) * 0.99
    df["close"] = close
    df["adj_close"] = close
    df["volume"] = rng.integers(1_000_000, 5_000_000, n).astype(float)
    s = pd.Series(close, index=dates)
    df["return_1d"] = s.pct_change()
    df["return_5d"] = s.pct_change(5)
    for w in (20, 50, 100, 200):
        sma = s.rolling(w, min_periods=1).mean()
        df[f"sma_{w}"] = sma
        df[f"sma_{w}_slope"] = sma.pct_change(5)
    delta = s.diff()
    up = delta.clip(lower=0).rolling(14, min_periods=1).mean()
    down = (-delta.clip(upper=0)).rolling(14, min_periods=1).mean()
    df["rsi_14"] = 100 - 100 / (1 + up / down.replace(0, np.nan))
    ema12, ema26 = s.ewm(span=12).mean(), s.ewm(span=26).mean()
    df["macd"] = ema12 - ema26
    df["macd_signal"] = df["macd"].ewm(span=9).mean()
    df["macd_hist"] = df["macd"] - df["macd_signal"]
    df["atr_14"] = (df["high"] - df["low"]).rolling(14, min_periods=1).mean()
    df["hv_20"] = s.pct_change().rolling(20, min_periods=2).std() * np.sqrt(252)
    df["beta_60"] = 1.0 + rng.normal(0, 0.1, n)
    sp = 2000 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    df["sp500_close"] = sp
    df["sp500_slope"] = pd.Series(sp, index=dates).pct_change(5)
    df["vix_close"] = 15 + rng.normal(0, 2, n)
    df["vix_slope"] = pd.Series(df["vix_close"]).pct_change(5)
    df["tnx_close"] = 2.0 + rng.normal(0, 0.1, n)
    return df


@dataclass
class FakeDataset:
    """Stands in for ``rewts.data.Dataset`` (only ``frames`` is used by the generator)."""

    frames: dict[str, pd.DataFrame]
    content_hash: str = "test"
    feature_columns: list[str] = field(default_factory=list)


def fake_dataset(tickers=("AAA", "BBB"), n: int = 300) -> FakeDataset:
    return FakeDataset({t: synthetic_frame(n, seed=i) for i, t in enumerate(tickers)})


# ------------------------------------------------------------------ fake provider

import asyncio  # noqa: E402
import json  # noqa: E402
from collections.abc import Callable  # noqa: E402

from rewts.llm.providers.base import Request, Response  # noqa: E402

ANSWER = json.dumps(
    {
        "direction": 1,
        "confidence": 2.0,
        "explanation": "fake",
        "key_features": [{"feature": "rsi_14", "impact": "positive", "weight": 0.5}],
    }
)


class FakeProvider:
    """A provider in the engine's own interface: sleeps ``latency`` (virtual time in tests),
    then answers; ``script(n, request)`` may raise a ProviderError for call number ``n``."""

    name = "fake"
    model = "fake-model"
    local = False
    identity = "fake@test"

    def __init__(
        self,
        latency: float | Callable[[int], float] = 0.0,
        script: Callable[[int, Request], None] | None = None,
        text: str | Callable[[Request], str] = ANSWER,
    ) -> None:
        self.latency = latency
        self.script = script
        self.text = text
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent_at: list[float] = []
        self.requests: list[Request] = []

    async def generate(self, request: Request) -> Response:
        n = self.calls
        self.calls += 1
        self.requests.append(request)
        self.sent_at.append(asyncio.get_running_loop().time())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            lat = self.latency(n) if callable(self.latency) else self.latency
            if lat:
                await asyncio.sleep(lat)
            if self.script is not None:
                self.script(n, request)
            text = self.text(request) if callable(self.text) else self.text
            return Response(text=text, tokens_in=100, tokens_out=50)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        pass
