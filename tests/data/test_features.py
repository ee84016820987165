"""Every indicator against a hand computation (plain loops, no TA-Lib), and no look-ahead."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewts.data import features as feat
from rewts.data.sources.synthetic import generate

N = 260


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, N)))
    open_ = close * np.exp(rng.normal(0, 0.005, N))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, N)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, N)))
    adj = close * np.linspace(0.9, 1.0, N)  # a dividend-style adjustment, not equal to close
    index = pd.DatetimeIndex(pd.bdate_range("2019-01-01", periods=N), name="date")
    return pd.DataFrame(
        {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": adj,
            "volume": rng.integers(1000, 5000, N).astype(float),
        },
        index=index,
    )


@pytest.fixture(scope="module")
def computed(prices: pd.DataFrame) -> pd.DataFrame:
    return feat.stock_features(prices)


# ---------------------------------------------------------------- hand computations


def hand_sma(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for t in range(n - 1, len(x)):
        out[t] = sum(x[t - n + 1 : t + 1]) / n
    return out


def hand_ema(x: np.ndarray, n: int, seed_at: int) -> np.ndarray:
    """EMA with alpha 2/(n+1), seeded at ``seed_at`` with the mean of the n values ending there."""
    out = np.full(len(x), np.nan)
    alpha = 2.0 / (n + 1)
    out[seed_at] = np.mean(x[seed_at - n + 1 : seed_at + 1])
    for t in range(seed_at + 1, len(x)):
        out[t] = alpha * x[t] + (1 - alpha) * out[t - 1]
    return out


def hand_rsi(x: np.ndarray, n: int = 14) -> np.ndarray:
    """Wilder: averages of gains and losses seeded with a simple mean, then (13*prev + x)/14."""
    out = np.full(len(x), np.nan)
    change = np.diff(x)
    gain, loss = np.clip(change, 0, None), np.clip(-change, 0, None)
    avg_gain, avg_loss = gain[:n].mean(), loss[:n].mean()
    out[n] = 100 - 100 / (1 + avg_gain / avg_loss)
    for t in range(n + 1, len(x)):
        avg_gain = (avg_gain * (n - 1) + gain[t - 1]) / n
        avg_loss = (avg_loss * (n - 1) + loss[t - 1]) / n
        out[t] = 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def hand_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14) -> np.ndarray:
    out = np.full(len(close), np.nan)
    tr = [np.nan] + [
        max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        for t in range(1, len(close))
    ]
    atr = np.mean(tr[1 : n + 1])
    out[n] = atr
    for t in range(n + 1, len(close)):
        atr = (atr * (n - 1) + tr[t]) / n
        out[t] = atr
    return out


def assert_close(actual, expected, rtol=1e-10, atol=1e-12) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


# ------------------------------------------------------------------------- tests


def test_sma_on_a_tiny_known_series():
    closes = np.arange(1.0, 31.0)  # 1..30
    table = pd.DataFrame(
        {c: closes for c in ("open", "high", "low", "close", "adj_close", "volume")},
        index=pd.bdate_range("2020-01-01", periods=30),
    )
    out = feat.stock_features(table)
    assert np.isnan(out["sma_20"].iloc[18])
    assert out["sma_20"].iloc[19] == pytest.approx(10.5)  # mean of 1..20
    assert out["sma_20"].iloc[29] == pytest.approx(20.5)  # mean of 11..30
    # slope: 5-day relative change of the SMA: 20.5 / 15.5 - 1
    assert out["sma_20_slope"].iloc[29] == pytest.approx(20.5 / 15.5 - 1)
    # strictly rising closes: no losses, RSI is 100
    assert out["rsi_14"].iloc[29] == pytest.approx(100.0)
    assert out["return_1d"].iloc[29] == pytest.approx(30 / 29 - 1)
    assert out["return_5d"].iloc[29] == pytest.approx(30 / 25 - 1)


@pytest.mark.parametrize("n", feat.SMA_WINDOWS)
def test_sma_and_slope_match_a_rolling_mean(prices, computed, n):
    sma = hand_sma(prices["close"].to_numpy(), n)
    assert_close(computed[f"sma_{n}"], sma)
    slope = np.full(N, np.nan)
    slope[5:] = sma[5:] / sma[:-5] - 1
    assert_close(computed[f"sma_{n}_slope"], slope)
    assert np.isfinite(computed[f"sma_{n}_slope"].iloc[n - 1 + 5])


def test_rsi_is_wilders(prices, computed):
    assert_close(computed["rsi_14"], hand_rsi(prices["close"].to_numpy()))
    assert computed["rsi_14"].first_valid_index() == prices.index[14]


def test_macd_is_ema12_minus_ema26_with_ema9_signal(prices, computed):
    close = prices["close"].to_numpy()
    # both EMAs start on the day the slow one has its first full window (index 25), each
    # seeded with the mean of its own window there (TA-Lib's convention)
    macd = hand_ema(close, 12, 25) - hand_ema(close, 26, 25)
    signal = hand_ema(macd, 9, 25 + 8)
    macd[: 25 + 8] = np.nan  # reported once the signal exists
    assert_close(computed["macd"], macd)
    assert_close(computed["macd_signal"], signal)
    assert_close(computed["macd_hist"], macd - signal)


def test_atr_is_wilder_smoothed_true_range(prices, computed):
    expected = hand_atr(*(prices[c].to_numpy() for c in ("high", "low", "close")))
    assert_close(computed["atr_14"], expected)


def test_atr_of_a_constant_range_is_that_range():
    n = 40
    close = np.full(n, 100.0)
    table = pd.DataFrame(
        {
            "open": close,
            "high": close + 2,
            "low": close - 2,
            "close": close,
            "adj_close": close,
            "volume": close,
        },
        index=pd.bdate_range("2020-01-01", periods=n),
    )
    assert feat.stock_features(table)["atr_14"].iloc[-1] == pytest.approx(4.0)


def test_historical_volatility_and_returns_use_adj_close(prices, computed):
    adj = prices["adj_close"].to_numpy()
    log_ret = np.log(adj[1:] / adj[:-1])
    hv = np.full(N, np.nan)
    for t in range(20, N):
        hv[t] = np.std(log_ret[t - 20 : t], ddof=1) * np.sqrt(252)
    assert_close(computed["hv_20"], hv, rtol=1e-8)
    r1 = np.r_[np.nan, adj[1:] / adj[:-1] - 1]
    r5 = np.r_[[np.nan] * 5, adj[5:] / adj[:-5] - 1]
    assert_close(computed["return_1d"], r1)
    assert_close(computed["return_5d"], r5)


def test_beta_is_cov_over_var_of_the_last_60_returns(prices):
    rng = np.random.default_rng(5)
    index_close = 1000 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    market = prices.assign(close=index_close, adj_close=index_close)
    frame, _ = feat.compute_features(prices, {"sp500": market})
    rs = prices["adj_close"].pct_change().to_numpy()
    rm = pd.Series(index_close).pct_change().to_numpy()
    beta = np.full(N, np.nan)
    for t in range(60, N):
        s, m = rs[t - 59 : t + 1], rm[t - 59 : t + 1]
        beta[t] = np.cov(s, m, ddof=1)[0, 1] / np.var(m, ddof=1)
    assert_close(frame["beta_60"], beta, rtol=1e-8)
    # a stock that is exactly 1.5x the index (in returns) has beta 1.5
    twin = np.r_[100.0, 100 * np.cumprod(1 + 1.5 * rm[1:])]
    levered = prices.assign(adj_close=twin)
    frame, _ = feat.compute_features(levered, {"sp500": market})
    assert frame["beta_60"].iloc[-1] == pytest.approx(1.5)


def test_market_columns_and_past_only_alignment(prices):
    # the market trades on every other day only: stock days in between take the previous value
    market = prices.iloc[::2].assign(close=np.arange(1.0, N // 2 + 1) * 10)
    frame, carried = feat.compute_features(prices, {"tnx": market})
    assert list(frame.columns[-2:]) == ["tnx_close", "tnx_slope"]
    assert "beta_60" not in frame.columns  # no sp500 symbol: no beta
    np.testing.assert_array_equal(frame["tnx_close"].to_numpy()[:6], [10, 10, 20, 20, 30, 30])
    assert carried == {"tnx": N // 2}
    sma = hand_sma(market["close"].to_numpy(), 20)
    slope_own = np.r_[[np.nan] * 5, sma[5:] / sma[:-5] - 1]
    assert_close(frame["tnx_slope"].to_numpy()[::2], slope_own)
    assert_close(frame["tnx_slope"].to_numpy()[1::2], slope_own)  # carried from the day before


def test_a_stale_market_value_is_not_carried_for_more_than_a_week(prices):
    market = prices.drop(prices.index[100:110])  # two weeks without a market row
    frame, _ = feat.compute_features(prices, {"vix": market})
    stale = frame["vix_close"].iloc[100:110]
    assert stale.iloc[:5].notna().all()  # up to 7 calendar days old: carried
    assert stale.iloc[-3:].isna().all()  # older: NaN, which the data layer then reports


def test_feature_columns_follow_the_market_prefixes():
    cols = feat.feature_columns(["sp500", "vix"])
    assert cols[: len(feat.STOCK_FEATURES)] == feat.STOCK_FEATURES
    assert cols[len(feat.STOCK_FEATURES) :] == (
        "beta_60",
        "sp500_close",
        "sp500_slope",
        "vix_close",
        "vix_slope",
    )
    assert "beta_60" not in feat.feature_columns(["vix"])


def test_no_look_ahead_rows_up_to_t_ignore_everything_after_t():
    """Rewrite every price after day t (stock and market): rows <= t must not change."""
    raw = generate(
        ["AAA"],
        {"sp500": "GSPC", "vix": "VIX", "tnx": "TNX"},
        seed=1,
        start=dt.date(2018, 1, 1),
        end=dt.date(2019, 12, 31),
    )
    before, _ = feat.compute_features(raw.tickers["AAA"], raw.market)
    rng = np.random.default_rng(9)
    for t in (230, 300, 480):
        cut = before.index[t]

        def scramble(table: pd.DataFrame, cut: pd.Timestamp = cut) -> pd.DataFrame:
            out = table.copy()
            after = out.index > cut
            factor = rng.uniform(0.5, 2.0, (int(after.sum()), 1))
            out.loc[after] = out.loc[after].to_numpy() * factor
            return out

        stock = scramble(raw.tickers["AAA"])
        market = {p: scramble(m) for p, m in raw.market.items()}
        after, _ = feat.compute_features(stock, market)
        pd.testing.assert_frame_equal(after.loc[:cut], before.loc[:cut])
        # the test can fail: later rows did change
        assert not np.allclose(after.iloc[t + 1 :].to_numpy(), before.iloc[t + 1 :].to_numpy())


@settings(max_examples=25, deadline=None)
@given(
    t=st.integers(min_value=0, max_value=298),
    seed=st.integers(min_value=0, max_value=2**16),
    factor=st.floats(min_value=0.2, max_value=5.0).filter(lambda f: abs(f - 1) > 1e-3),
)
def test_no_look_ahead_for_any_day_and_any_change(t, seed, factor):
    """Property: for any day t and any rewrite of the future, rows <= t stay bit-identical."""
    rng = np.random.default_rng(seed)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    spread = np.exp(np.abs(rng.normal(0, 0.01, n)))
    stock = pd.DataFrame(
        {"open": close, "high": close * spread, "low": close / spread, "close": close,
         "adj_close": close, "volume": np.full(n, 1e6)},
        index=pd.bdate_range("2015-01-01", periods=n),
    )  # fmt: skip
    market = {"sp500": stock.iloc[::-1].set_axis(stock.index), "vix": stock * 0.2}
    before, _ = feat.compute_features(stock, market)
    future = stock.index > stock.index[t]
    stock2 = stock.copy()
    stock2.loc[future] *= factor
    market2 = {p: m.copy() for p, m in market.items()}
    for m in market2.values():
        m.loc[future] /= factor
    after, _ = feat.compute_features(stock2, market2)
    pd.testing.assert_frame_equal(after.iloc[: t + 1], before.iloc[: t + 1])
    assert not after.iloc[t + 1 :]["close"].equals(before.iloc[t + 1 :]["close"])
