"""Planted signals: the IC is what it says, the noise is seeded, and the calibration runs end
to end apart from the real agents."""

from __future__ import annotations

import numpy as np
import pytest

from rewts.backtest.calibration import planted_strategies, realized_ic, run_calibration
from rewts.config.models import Config
from rewts.data.prepare import Dataset
from rewts.data.timeline import Timeline
from rewts.env.synthetic import SYNTHETIC_FEATURES, synthetic_frame

pytestmark = pytest.mark.usefixtures("one_thread")


def _long_world(n: int = 6000):
    frame = synthetic_frame(n, seed=11)
    timeline = Timeline(frame.index, strategy_frequency=20, warmup=40)
    return frame["close"].to_numpy(), timeline


@pytest.mark.parametrize("ic", [0.0, 0.2, 0.4])
def test_the_planted_signal_has_the_information_coefficient_asked_for(ic):
    prices, timeline = _long_world()
    days = (timeline.dates[0], timeline.dates[-1])
    got = [
        realized_ic(
            planted_strategies(prices, timeline, ic=ic, seed=s, ticker="X", train_end=days[1]),
            prices,
            timeline,
            days,
        )
        for s in range(8)
    ]
    # ~300 periods per draw, 8 draws: the mean is within a few hundredths of the target
    # (tau clipped at |s| = 2 loses a little)
    assert np.mean(got) == pytest.approx(ic * 0.95, abs=0.05)


def test_ic_one_is_the_future_direction_and_noise_is_seeded():
    prices, timeline = _long_world(1500)
    end = timeline.dates[-1]
    perfect = planted_strategies(prices, timeline, ic=1.0, seed=0, ticker="X", train_end=end)
    from rewts.backtest.calibration import period_returns

    returns = period_returns(prices, timeline)
    ok = np.isfinite(returns) & (returns != 0)
    assert (np.sign(perfect.tau[ok]) == np.sign(returns[ok])).all()
    a = planted_strategies(prices, timeline, ic=0.1, seed=3, ticker="X", train_end=end)
    b = planted_strategies(prices, timeline, ic=0.1, seed=3, ticker="X", train_end=end)
    c = planted_strategies(prices, timeline, ic=0.1, seed=4, ticker="X", train_end=end)
    assert a.equals(b) and not a.tau.equals(c.tau)
    assert (a.provider == "planted").all()


def test_the_scale_comes_from_the_training_periods_only():
    prices, timeline = _long_world(1500)
    train_end = timeline.dates[1000]
    base = planted_strategies(prices, timeline, ic=0.3, seed=1, ticker="X", train_end=train_end)
    wild = prices.copy()
    wild[1100:] *= np.linspace(1.0, 4.0, len(wild) - 1100)
    moved = planted_strategies(wild, timeline, ic=0.3, seed=1, ticker="X", train_end=train_end)
    before = [p.index for p in timeline.periods if p.end_pos + 1 < 1100]
    np.testing.assert_array_equal(base.tau[before], moved.tau[before])


def tiny_calibration(tmp_path) -> tuple[Config, Dataset]:
    """One synthetic ticker, two chunks of two episodes: a calibration in seconds."""
    frame = synthetic_frame(420, seed=2, start="2012-01-02")
    dataset = Dataset(
        frames={"AAA": frame},
        source="synthetic",
        content_hash="t",
        feature_columns=SYNTHETIC_FEATURES,
        path=None,
    )
    cfg = Config(
        tickers=["AAA"],
        data={"warmup_days": 40},
        strategy_frequency=20,
        split={
            "train_start": "2012-01-01",
            "train_end": "2013-03-29",
            "test_start": "2013-04-01",
            "test_end": "2013-08-30",
        },
        rewts={
            "chunk_length": 150,
            "episodes_per_chunk": 2,
            "hidden_dims": [8],
            "batch_size": 16,
            "learning_starts": 20,
            "buffer_size": 1000,
            "checkpoint_dir": str(tmp_path / "ck"),
            "n_jobs": 1,
            "device": "cpu",
        },
        trading_env={"window": 5},
    )
    return cfg, dataset


def test_calibration_runs_end_to_end_apart_from_the_real_agents(tmp_path):
    cfg, dataset = tiny_calibration(tmp_path)
    result = run_calibration(
        cfg, dataset, ic_levels=[0.0, 1.0], runs=2, agents=["llm_only", "llm_rl", "rl_only"]
    )
    runs = result.runs
    assert set(runs.ic) == {0.0, 1.0} and set(runs.seed) == {0, 1}
    # learned agents: one row per seed; LLM-only is deterministic (one row per level)
    assert runs.groupby(["ic", "agent"]).size().to_dict() == {
        (ic, a): 1 if a == "llm_only" else 2
        for ic in (0.0, 1.0)
        for a in ("llm_only", "llm_rl", "rl_only")
    }
    # the future's direction (IC 1) beats noise (IC 0) for the rule that follows it
    llm = runs[runs.agent == "llm_only"].groupby("ic").sharpe.mean()
    assert llm[1.0] > max(llm[0.0], 2.5)
    # RL-only never reads tau: trained once, the same numbers at every level
    rl = runs[runs.agent == "rl_only"].sort_values("seed")
    np.testing.assert_array_equal(rl[rl.ic == 0.0].sharpe, rl[rl.ic == 1.0].sharpe)
    # its checkpoints live apart from the real agents'
    assert not (tmp_path / "ck" / "AAA").exists()
    assert (tmp_path / "ck" / "calibration" / "ic1" / "AAA").is_dir()
    assert {"llm_rl", "rl_only"} <= set(result.tests.a) | set(result.tests.b)
    vs_llm = result.tests[(result.tests.b == "llm_only") & (result.tests.ic == 1.0)]
    assert int(vs_llm.n_pairs.iloc[0]) == 2  # LLM-only's one run paired with each seed
    summary = result.summary()
    assert {"ic", "agent", "mean", "std", "count"} <= set(summary.columns)


def test_a_draw_per_seed_gives_each_seed_its_own_signal(tmp_path):
    cfg, dataset = tiny_calibration(tmp_path)
    result = run_calibration(
        cfg, dataset, ic_levels=[0.5], runs=2, agents=["llm_only", "llm_rl"], draw_per_seed=True
    )
    realized = result.realized.sort_values("draw")
    # two draws of the noise, seeded by the agents' seeds: two different signals
    assert realized.draw.tolist() == [0, 1]
    assert realized.realized_ic_test.nunique() == 2
    runs = result.runs
    # LLM-only follows each seed's own signal: one run per seed now, paired seed by seed
    assert sorted(runs[runs.agent == "llm_only"].seed) == [0, 1]
    assert runs[runs.agent == "llm_only"].sharpe.nunique() == 2
    vs_llm = result.tests[result.tests.b == "llm_only"]
    assert int(vs_llm.n_pairs.iloc[0]) == 2
    # apart from the shared-draw checkpoints of the same level
    assert (tmp_path / "ck" / "calibration" / "ic0.5-draws" / "AAA").is_dir()
    assert not (tmp_path / "ck" / "calibration" / "ic0.5").exists()
