"""Small synthetic price frames for tests and benchmarks (never used as market data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: the data layer's feature names this generator fills (a subset is enough for the env)
SYNTHETIC_FEATURES: tuple[str, ...] = ("return_1d", "return_5d", "rsi_14", "sma_20", "hv_20")


def synthetic_frame(
    n: int = 400, *, seed: int = 0, pattern: str = "random", start: str = "2012-01-03"
) -> pd.DataFrame:
    """An OHLCV frame with a few indicator columns on business days.

    ``pattern``: ``random`` (a geometric random walk) or ``alternating`` (the close goes up 2 %
    and down 2 % on alternate days: trivially learnable from the last return).
    """
    rng = np.random.default_rng(seed)
    if pattern == "alternating":
        rets = np.where(np.arange(n) % 2 == 0, 0.02, -0.02)
    elif pattern == "random":
        rets = rng.normal(0.0003, 0.015, n)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    rets[0] = 0.0
    close = 100.0 * np.cumprod(1.0 + rets)
    spread = np.abs(rng.normal(0, 0.005, n)) * close + 0.01
    frame = pd.DataFrame(
        {
            "open": close * (1 + rng.normal(0, 0.002, n)),
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "adj_close": close,
            "volume": rng.integers(1_000_000, 2_000_000, n).astype(np.float64),
        },
        index=pd.bdate_range(start, periods=n, name="date"),
    )
    s = frame["close"]
    frame["return_1d"] = s.pct_change()
    frame["return_5d"] = s.pct_change(5)
    delta = s.diff()
    up = delta.clip(lower=0).rolling(14).mean()
    down = (-delta.clip(upper=0)).rolling(14).mean()
    frame["rsi_14"] = 100 - 100 / (1 + up / down.replace(0, np.nan))
    frame["sma_20"] = s.rolling(20).mean()
    frame["hv_20"] = np.log(s).diff().rolling(20).std() * np.sqrt(252)
    return frame
