"""Parsing, entropy/strength, deterministic look-ahead-free prompts, and the SQLite cache."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import stat

import numpy as np
import pytest

from rewts.data.timeline import Timeline
from rewts.llm.cache import StrategyCache, cache_key
from rewts.llm.prompts import render_messages, snapshot_inputs
from rewts.llm.providers.base import InvalidOutput, TokenLogprob
from rewts.llm.schemas import answer_entropy, parse_strategy, strength, tau

from .helpers import synthetic_frame

GOOD = {
    "direction": 1,
    "confidence": 2.5,
    "explanation": "Price above all averages.",
    "key_features": [{"feature": "sma_50_slope", "impact": "positive", "weight": 0.6}],
}


def test_parse_valid_and_fenced_answers():
    s = parse_strategy(json.dumps(GOOD))
    assert (s.direction, s.confidence) == (1, 2.5)
    assert parse_strategy("```json\n" + json.dumps(GOOD) + "\n```").direction == 1


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        ('{"direction": 1, "confidence": 2.5, "explanation": "tru', "not valid JSON"),
        (json.dumps({**GOOD, "direction": 2}), "direction"),
        (json.dumps({**GOOD, "direction": True}), "boolean"),
        (json.dumps({**GOOD, "confidence": 3.5}), "confidence"),
        (json.dumps({**GOOD, "extra": 1}), "extra"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "explanation"}), "explanation"),
    ],
)
def test_invalid_or_truncated_answers_are_retryable_failures(text, why):
    with pytest.raises(InvalidOutput, match=why) as info:
        parse_strategy(text)
    assert info.value.retryable


def test_entropy_against_a_hand_computed_value():
    # the decision tokens are "1" (after "direction": ) and "2" (confidence); JSON scaffolding
    # tokens have alternatives too but must not dilute H
    lp = math.log
    tokens = [
        TokenLogprob('{"direction": ', lp(0.99), (('{"direction": ', lp(0.99)), ("x", lp(0.01)))),
        TokenLogprob("1", lp(0.8), (("1", lp(0.8)), ("0", lp(0.2)))),
        TokenLogprob(', "confidence": ', lp(1.0), ()),
        TokenLogprob("2", lp(0.5), (("2", lp(0.5)), ("3", lp(0.25)), ("1", lp(0.25)))),
        TokenLogprob("}", lp(1.0), ()),
    ]
    h1 = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2)) / math.log(2)  # 0.7219...
    h2 = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)) / math.log(3)  # 0.9464...
    expected = (h1 + h2) / 2
    assert answer_entropy(tokens) == pytest.approx(expected, rel=1e-12)
    assert answer_entropy(None) is None
    # strength and tau follow the paper's formula
    c = 0.01 + 0.99 * (1 - expected)
    assert strength(2.0, expected) == pytest.approx((2.0 / 3.0) * c)
    assert strength(3.0, None) == 1.0
    assert tau(0, 0.5) == -0.5 and tau(1, 0.5) == 0.5


def _timeline(frame):
    return Timeline(frame.index, strategy_frequency=20, warmup=200)


def test_prompt_uses_no_data_after_inputs_end():
    frame = synthetic_frame(300)
    tl = _timeline(frame)
    period = tl.periods[2]
    before = render_messages("AAA", period, snapshot_inputs(frame, period))
    mutated = frame.copy()
    after_pos = period.inputs_end_pos + 1
    mutated.iloc[after_pos:] = mutated.iloc[after_pos:] * 7.0 + 3.0  # the future changes
    assert render_messages("AAA", period, snapshot_inputs(mutated, period)) == before
    # and the last input row does matter (the test can fail)
    mutated.iloc[period.inputs_end_pos, mutated.columns.get_loc("close")] *= 1.5
    assert render_messages("AAA", period, snapshot_inputs(mutated, period)) != before


def test_prompt_rendering_is_deterministic_and_shares_its_prefix():
    frame = synthetic_frame(300)
    tl = _timeline(frame)
    a = render_messages("AAA", tl.periods[0], snapshot_inputs(frame, tl.periods[0]))
    b = render_messages("AAA", tl.periods[0], snapshot_inputs(frame.copy(), tl.periods[0]))
    c = render_messages("AAA", tl.periods[1], snapshot_inputs(frame, tl.periods[1]))
    assert a == b
    assert a[0] == c[0]  # identical shared instructions first (prefix caching)
    assert a[1] != c[1]
    assert '"direction"' in a[0]["content"]  # the schema is in the instructions


def test_misaligned_frame_is_an_error_not_look_ahead():
    frame = synthetic_frame(300)
    tl = _timeline(frame)
    with pytest.raises(ValueError, match="not aligned"):
        snapshot_inputs(frame.iloc[5:], tl.periods[0])


def test_distinct_periods_never_share_a_cache_key():
    frame = synthetic_frame(600)
    tl = _timeline(frame)
    keys = {
        cache_key(
            "openai@x",
            "m",
            "v1",
            render_messages("AAA", p, snapshot_inputs(frame, p)),
            {"temperature": 0.0},
        )
        for p in tl.periods
    }
    assert len(keys) == len(tl.periods)
    msgs = render_messages("AAA", tl.periods[0], snapshot_inputs(frame, tl.periods[0]))
    k = cache_key("p", "m", "v1", msgs, {"temperature": 0.0})
    assert k != cache_key("p", "m", "v1", msgs, {"temperature": 0.1})
    assert k != cache_key("p", "m2", "v1", msgs, {"temperature": 0.0})
    assert k != cache_key("p", "m", "v2", msgs, {"temperature": 0.0})
    assert k != cache_key("q", "m", "v1", msgs, {"temperature": 0.0})


def _put(cache, key, **kw):
    cache.put(
        key,
        provider="p",
        model="m",
        prompt_version=kw.get("pv", "v1"),
        settings={"temperature": 0},
        messages=[{"role": "user", "content": key}],
        response_text=json.dumps(GOOD),
        strategy_json=json.dumps(GOOD),
        tokens_in=10,
        tokens_out=5,
        latency_s=0.1,
    )


def test_cache_roundtrip_permissions_stats_prune(tmp_path):
    path = tmp_path / "sub" / "c.sqlite"
    with StrategyCache(path) as cache:
        _put(cache, "a")
        _put(cache, "b", pv="v0")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert cache.get("a").tokens_in == 10
        assert set(cache.get_many(["a", "b", "zz"])) == {"a", "b"}
        assert cache.stats()["entries"] == 2
        assert cache.prune(prompt_version="v0") == 1
        assert len(cache) == 1 and cache.integrity_ok()
        assert cache.clear() == 1


def _writer(path, start, n):
    cache = StrategyCache(path)
    for i in range(start, start + n):
        _put(cache, f"k{i}")
    cache.close()


def test_two_processes_share_one_cache_without_losing_entries(tmp_path):
    path = tmp_path / "c.sqlite"
    StrategyCache(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, i * 100, 100)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with StrategyCache(path) as cache:
        assert len(cache) == 200 and cache.integrity_ok()


def test_unusable_cache_file_names_the_setting(tmp_path):
    bad = tmp_path / "c.sqlite"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    from rewts.errors import ConfigError

    with pytest.raises(ConfigError, match=r"llm\.cache_path"):
        StrategyCache(bad)


def test_opening_a_new_cache_from_several_threads_at_once(tmp_path):
    """Regression: switching a fresh file to WAL raced ("database is locked") between openers."""
    import threading

    errors = []
    for i in range(40):
        path = tmp_path / f"c{i}.sqlite"
        barrier = threading.Barrier(3)

        def open_it(path=path, barrier=barrier):
            barrier.wait()
            try:
                with StrategyCache(path) as cache:
                    cache.get_many(["k"])
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
