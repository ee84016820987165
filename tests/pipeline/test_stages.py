"""Stage records: keys, reasons, atomic storage, and what the strategy hash ignores."""

from __future__ import annotations

import pandas as pd

from rewts.config import load_config
from rewts.pipeline import records as st


def test_changed_keys_names_the_dotted_keys():
    old = {"rewts": {"gamma": 0.9, "hidden_dims": [16]}, "data": "a"}
    new = {"rewts": {"gamma": 0.99, "hidden_dims": [16], "new": 1}, "data": "a"}
    assert st.changed_keys(old, new) == ["rewts.gamma", "rewts.new"]
    assert st.changed_keys(old, old) == []


def test_check_record_says_why():
    inputs = {"data": "d1", "rewts": {"gamma": 0.9}}
    record = st.StageRecord.new("train", inputs, output="out1", seconds=1.0)
    assert st.check_record(None, inputs, "out1", "x").why == "no earlier run"
    fresh = st.check_record(record, inputs, "out1", "checkpoints")
    assert fresh.fresh and fresh.why == "inputs unchanged"
    changed = st.check_record(record, {**inputs, "rewts": {"gamma": 0.5}}, "out1", "checkpoints")
    assert not changed.fresh and changed.why == "changed: rewts.gamma"
    upstream = st.check_record(record, {**inputs, "data": "d2"}, "out1", "checkpoints")
    assert not upstream.fresh and upstream.why == "data output changed"
    missing = st.check_record(record, inputs, None, "checkpoints")
    assert not missing.fresh and missing.why == "checkpoints missing"
    edited = st.check_record(record, inputs, "other", "checkpoints")
    assert not edited.fresh and edited.why == "checkpoints changed on disk"


def test_records_share_a_file_and_can_be_dropped(tmp_path):
    a = st.StageRecord.new("backtest", {"x": 1}, "o1", 0.5, {"n": 3})
    b = st.StageRecord.new("report", {"y": 2}, "o2", 0.1)
    st.write_record(tmp_path, a)
    st.write_record(tmp_path, b)
    assert st.read_record(tmp_path, "backtest") == a
    assert st.read_record(tmp_path, "report") == b
    st.drop_records(tmp_path, ["backtest"])
    assert st.read_record(tmp_path, "backtest") is None
    assert st.read_record(tmp_path, "report") == b
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / st.RECORD_FILE).write_text("{not json")
    assert st.read_record(tmp_path, "report") is None


def _table(tau: float, latency: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ["AAPL", "AAPL"],
            "period": [0, 1],
            "start": pd.to_datetime(["2016-01-04", "2016-02-02"]),
            "end": pd.to_datetime(["2016-02-01", "2016-03-01"]),
            "inputs_end": pd.to_datetime(["2015-12-31", "2016-02-01"]),
            "direction": pd.array([1, 0], dtype="Int64"),
            "confidence": [2.0, 1.0],
            "entropy": [None, None],
            "strength": [0.66, 0.33],
            "tau": [tau, -0.33],
            "status": ["ok", "cached"] if latency < 1 else ["cached", "cached"],
            "latency_s": [latency, latency],
        }
    )


def test_strategies_hash_follows_decisions_not_latency():
    base = st.strategies_hash({"AAPL": _table(0.66, 0.01)})
    assert st.strategies_hash({"AAPL": _table(0.66, 3.0)}) == base
    assert st.strategies_hash({"AAPL": _table(0.5, 0.01)}) != base


def test_slices_leave_out_operational_keys_and_secrets():
    cfg = load_config(
        sets=[
            "llm.rate_limits.rpm=10",
            "llm.openai_api_key=sk-secret",
            "rewts.n_jobs=3",
            "parallel_workers=4",
        ],
        env={},
    )
    base = load_config(env={})
    for make in (
        lambda c: st.strategies_inputs(c, "d", "heuristic", None),
        lambda c: st.train_inputs(c, "d", "s"),
        lambda c: st.backtest_inputs(c, "d", "s", "t"),
    ):
        assert st.digest(make(cfg)) == st.digest(make(base))
    assert "openai_api_key" not in str(st.strategies_inputs(cfg, "d", "openai", None))
    # a key that shapes the output does count
    hot = load_config(sets=["strategy_frequency=10"], env={})
    assert st.strategies_inputs(hot, "d", "heuristic", None) != st.strategies_inputs(
        base, "d", "heuristic", None
    )
