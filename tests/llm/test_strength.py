"""Entropy-adjusted signal strength: ``str = (likert / 3) * (eps + (1 - eps) * (1 - H))``,
eps = 0.01, H from given log-probabilities against values computed by hand, C = 1 without
log-probabilities, and H / str / tau stored with every strategy (also from the cache)."""

from __future__ import annotations

import json
import math

import pytest

from rewts.llm import generate_strategies
from rewts.llm.providers.base import Request, Response, TokenLogprob
from rewts.llm.schemas import EPS, answer_entropy, strength, tau
from rewts.sim import SimConfig, SimServer

from .helpers import fake_dataset
from .test_analyst import news_cfg

ln = math.log


def _tok(text: str, *alternatives: tuple[str, float]) -> TokenLogprob:
    """A token with its top alternatives given as probabilities (the first is the token)."""
    top = tuple((t, ln(p)) for t, p in alternatives)
    return TokenLogprob(text, top[0][1] if top else 0.0, top)


#: '{"direction": 1, "confidence": 2.5, "explanation": "up", "key_features": []}' as tokens
TOKENS = [
    _tok('{"'),
    _tok("direction"),
    _tok('": '),
    _tok("1", ("1", 0.8), ("0", 0.2)),
    _tok(', "'),
    _tok("confidence"),
    _tok('": '),
    _tok("2", ("2", 0.5), ("3", 0.25), ("1", 0.25)),
    _tok(".", (".", 0.99), ("5", 0.01)),
    _tok("5", ("5", 0.6), ("0", 0.3)),
    _tok(', "explanation": "'),
    # prose: maximally uncertain, but not part of the decision, so not part of H
    _tok("up", ("up", 0.25), ("down", 0.25), ("flat", 0.25), ("x", 0.25)),
    _tok('", "key_features": []}'),
]
ANSWER_TEXT = "".join(t.token for t in TOKENS)

# By hand, each decision token's top-k renormalized and its entropy divided by ln k:
#   "1": -(.8 ln .8 + .2 ln .2) / ln 2                = 0.500402 / 0.693147 = 0.721928
#   "2": -(.5 ln .5 + 2 * .25 ln .25) / ln 3          = 1.039721 / 1.098612 = 0.946395
#   ".": -(.99 ln .99 + .01 ln .01) / ln 2            = 0.056002 / 0.693147 = 0.080793
#   "5": (.6, .3) -> (2/3, 1/3): 0.636514 / 0.693147  = 0.918296
#   H = mean = 2.667412 / 4 = 0.666853
#   str = (2.5 / 3) * (0.01 + 0.99 * (1 - 0.666853)) = 0.833333 * 0.339815 = 0.283179
H_BY_HAND = 0.666853
STR_BY_HAND = 0.283179


def test_entropy_and_strength_from_given_logprobs_match_the_hand_computation():
    h = answer_entropy(TOKENS)
    assert h == pytest.approx(H_BY_HAND, abs=1e-6)
    assert strength(2.5, h) == pytest.approx(STR_BY_HAND, abs=1e-6)
    assert tau(1, strength(2.5, h)) == pytest.approx(STR_BY_HAND, abs=1e-6)
    assert tau(0, strength(2.5, h)) == pytest.approx(-STR_BY_HAND, abs=1e-6)
    assert json.loads(ANSWER_TEXT)["confidence"] == 2.5


def test_limits_of_the_formula():
    assert EPS == 0.01
    assert strength(3.0, None) == 1.0  # no log-probabilities: C = 1
    assert strength(1.5, None) == 0.5
    assert strength(3.0, 0.0) == pytest.approx(1.0)  # certain: C = 1
    assert strength(3.0, 1.0) == pytest.approx(0.01)  # uniform: C = eps, never 0
    certain = [_tok("1", ("1", 1.0), ("0", 1e-12))]
    assert answer_entropy(certain) == pytest.approx(0.0, abs=1e-9)
    assert answer_entropy(None) is None and answer_entropy([]) is None
    # without alternatives there is nothing to measure: None, so C = 1
    assert answer_entropy([_tok("1"), _tok("2")]) is None


class LogprobProvider:
    """Answers ANSWER_TEXT with TOKENS' log-probabilities (what an adapter hands the engine)."""

    name = "logprobs"
    model = "m"
    local = False
    identity = "logprobs@test"

    def __init__(self):
        self.calls = 0

    async def generate(self, request: Request) -> Response:
        self.calls += 1
        assert request.logprobs
        return Response(text=ANSWER_TEXT, tokens_in=10, tokens_out=13, logprobs=list(TOKENS))

    async def aclose(self):
        pass


def test_every_row_stores_h_strength_and_tau_also_from_the_cache(tmp_path):
    ds = fake_dataset(("AAA",))
    cfg = news_cfg(tmp_path, ("AAA",), logprobs=True)
    provider = LogprobProvider()
    df = generate_strategies(cfg, ds, provider=provider, write=False).strategies["AAA"]
    assert provider.calls == 5
    assert df["entropy"].to_numpy() == pytest.approx([H_BY_HAND] * 5, abs=1e-6)
    assert df["strength"].to_numpy() == pytest.approx([STR_BY_HAND] * 5, abs=1e-6)
    assert df["tau"].to_numpy() == pytest.approx([STR_BY_HAND] * 5, abs=1e-6)
    again = LogprobProvider()
    cached = generate_strategies(cfg, ds, provider=again, write=False).strategies["AAA"]
    assert again.calls == 0 and (cached["status"] == "cached").all()
    assert list(cached["entropy"]) == list(df["entropy"])
    assert list(cached["tau"]) == list(df["tau"])


def test_the_simulators_logprobs_through_the_sdk_give_h_and_a_consistent_tau(tmp_path):
    ds = fake_dataset(("AAA",))
    with SimServer(SimConfig(latency_s=0.0, answers_file=None)) as sim:
        cfg = news_cfg(
            tmp_path, ("AAA",), provider="local", model="sim", base_url=sim.openai_base_url
        )
        df = generate_strategies(cfg, ds, write=False).strategies["AAA"]
    h = df["entropy"].to_numpy()
    assert ((h > 0) & (h < 1)).all()  # measured, not the C = 1 default
    expected = [strength(c, e) for c, e in zip(df["confidence"], df["entropy"], strict=True)]
    assert df["strength"].to_numpy() == pytest.approx(expected)
    sign = [1.0 if d == 1 else -1.0 for d in df["direction"]]
    assert df["tau"].to_numpy() == pytest.approx(
        [s * x for s, x in zip(sign, expected, strict=True)]
    )
    assert (df["strength"] < df["confidence"] / 3).all()
