"""`rewts signal`: after a run, the position the signal gives for the day after D is the one the
backtest takes there, for every agent and the ensemble; nothing after D is read; agents of
another config or data version and in-sample days are refused.

One tiny run (``test_run``'s settings: a synthetic ticker, two chunks of one episode, test year
2018) is shared by the module's tests.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rewts.cli import app
from rewts.cli.common import common
from rewts.config import Config
from rewts.errors import SignalError

from .test_run import TINY as RUN_TINY

runner = CliRunner()
#: TINY without weight decay: its one-episode agents then take both sides over the test days,
#: so comparing the signal's positions with the backtest's is not vacuous (the regularized
#: default holds the stock throughout on this synthetic ticker)
TINY = [*RUN_TINY, "--set", "rewts.weight_decay=0"]
#: days D of the test year: its second day, a period's last day (D+1 starts a new period),
#: mid-year, and late in December
DAYS = ["2018-01-02", "2018-02-22", "2018-06-15", "2018-10-04", "2018-12-27"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signal")
    here = Path.cwd()
    os.chdir(folder)
    try:
        result = runner.invoke(app, ["run", *TINY, "--no-html"])
        assert result.exit_code == 0, result.output
    finally:
        os.chdir(here)
    return folder


@pytest.fixture
def in_run(trained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(trained)
    return trained


def tiny_config(*agents: str) -> Config:
    """The config of TINY's command line, for calling the signal's functions directly."""
    sets = [TINY[i + 1] for i, flag in enumerate(TINY) if flag == "--set"]
    flags = {
        "tickers": ["AAPL"],
        "data.source": "synthetic",
        "backtest.runs": 1,
        "rewts.episodes_per_chunk": 1,
        "backtest.agents": list(agents),
    }
    return common(None, sets, None, False, True).load(flags)


def signal(*extra: str) -> dict:
    result = runner.invoke(app, ["signal", *TINY, "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_signal_is_the_backtests_position_on_the_day_after(in_run):
    daily = pd.read_csv(in_run / "results" / "default" / "daily.csv", parse_dates=["date"])
    weights = pd.read_csv(
        in_run / "results" / "default" / "ensemble_weights.csv", parse_dates=["date"]
    )
    dates = pd.DatetimeIndex(sorted(daily["date"].unique()))
    agents = {"buy_and_hold", "llm_only", "rl_only", "llm_rl", "rewts"}
    seen_moves = set()
    for day in DAYS:
        report = signal("--asof", day)
        (ticker,) = report["tickers"]
        d = dates.get_loc(pd.Timestamp(day))
        after, later = dates[d + 1], dates[d + 2]
        assert ticker["asof"] == day and ticker["next_day"] == str(after.date())
        assert ticker["next_day_in_data"] is True
        assert {a["agent"] for a in ticker["agents"]} == agents
        for a in ticker["agents"]:
            rows = daily[(daily.agent == a["agent"]) & (daily.run == a["run"])].set_index("date")
            # daily.csv holds the weight over each day: the position held during D+1 was
            # decided for D; the signal's decision for D+1 is held over the day after it
            assert np.sign(rows.loc[after, "position"]) == a["held"], (day, a)
            assert np.sign(rows.loc[later, "position"]) == a["position"], (day, a)
            seen_moves.add((a["agent"], a["held"], a["position"]))
        (ens,) = ticker["ensemble"]
        row = weights[(weights.run == ens["run"]) & (weights.date == after)]
        for label, value in ens["weights"].items():
            assert row[label].iloc[0] == pytest.approx(value, rel=1e-12, abs=1e-12)
        strategy = ticker["strategy"]
        assert strategy["source"] == "stored" and pd.Timestamp(strategy["start"]) <= after
    # the comparison is not vacuous: the learned agents took both sides over these days
    assert {p for a, _, p in seen_moves if a in ("llm_rl", "rewts", "rl_only")} >= {-1.0, 1.0}


def test_text_output_names_each_agent_and_the_weights(in_run):
    result = runner.invoke(app, ["signal", *TINY, "--asof", DAYS[2]])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "AAPL: data up to 2018-06-15; positions for 2018-06-18" in out
    for label in ("Buy & Hold", "LLM-only", "RL-only", "LLM+RL", "ReWTS ensemble"):
        assert label in out
    assert "ReWTS weights (run 1): chunk 0" in out and "strategy of period" in out
    assert "held on 2018-06-18" in out and "new target at its close" in out


def test_nothing_after_the_as_of_day_is_read(in_run):
    from rewts.pipeline import ensure_data, ensure_strategies
    from rewts.signal import compute_signal

    cfg = tiny_config("buy_and_hold", "llm_only", "rl_only", "llm_rl", "rewts")
    dataset = ensure_data(cfg)
    strategies = ensure_strategies(cfg, dataset, write=False).strategies
    asof = pd.Timestamp(DAYS[2])
    before = compute_signal(cfg, dataset, strategies, asof=asof.date()).to_dict()

    frame = dataset.frames["AAPL"]
    later = frame.index > asof
    rng = np.random.default_rng(0)
    changed = frame.copy()
    # every later row: values of another later row, prices shifted by 40 %
    changed.loc[later] = frame.loc[later].to_numpy()[rng.permutation(int(later.sum()))]
    for column in ("open", "high", "low", "close", "adj_close"):
        changed.loc[later, column] *= 1.4
    assert not changed.loc[later].equals(frame.loc[later])
    moved = dataclasses.replace(dataset, frames={"AAPL": changed})
    # the strategies too are regenerated from the changed data (later periods differ)
    regenerated = ensure_strategies(cfg, moved, write=False).strategies
    assert not regenerated["AAPL"]["tau"].equals(strategies["AAPL"]["tau"])
    after = compute_signal(cfg, moved, regenerated, asof=asof.date()).to_dict()
    assert after == before


def test_a_period_without_a_strategy_yet_is_generated_from_the_data_before_it(in_run):
    """The data end on a period's last day: the next period's strategy does not exist yet."""
    from rewts.data import timeline_for
    from rewts.pipeline import ensure_data, ensure_strategies
    from rewts.signal import compute_signal

    cfg = tiny_config("llm_only", "llm_rl")
    dataset = ensure_data(cfg)
    full = ensure_strategies(cfg, dataset, write=False).strategies["AAPL"]
    period = timeline_for(dataset.frames["AAPL"], cfg).periods[31]
    assert period.start.year == 2018
    cut = dataset.frames["AAPL"].loc[: period.inputs_end]
    short = dataclasses.replace(dataset, frames={"AAPL": cut})
    stored = ensure_strategies(cfg, short, write=False).strategies
    assert stored["AAPL"]["period"].max() == 30  # the data end where period 31 would begin
    report = compute_signal(cfg, short, stored).to_dict()
    (ticker,) = report["tickers"]
    assert ticker["asof"] == str(period.inputs_end.date())
    assert ticker["next_day_in_data"] is False
    strategy = ticker["strategy"]
    assert strategy["period"] == 31 and strategy["source"].startswith("generated now")
    # the same strategy the generator gives with all the data: its inputs end before it
    assert strategy["tau"] == pytest.approx(float(full.loc[full.period == 31, "tau"].iloc[0]))
    llm_only = next(a for a in ticker["agents"] if a["agent"] == "llm_only")
    assert llm_only["position"] == np.sign(strategy["tau"])


def test_the_day_after_the_data_is_the_exchange_s_next_session(in_run):
    """The data end on Thursday 2018-03-29, before Good Friday: the positions are for Monday
    2018-04-02, New York's next session (a weekday count would date them the 30th, a
    holiday); London, closed on Easter Monday too, trades next on the Tuesday."""
    from rewts.pipeline import ensure_data, ensure_strategies
    from rewts.signal import compute_signal

    cfg = tiny_config("llm_only")
    dataset = ensure_data(cfg)
    cut = dataset.frames["AAPL"].loc[:"2018-03-29"]
    short = dataclasses.replace(dataset, frames={"AAPL": cut})
    stored = ensure_strategies(cfg, short, write=False).strategies
    (ticker,) = compute_signal(cfg, short, stored).to_dict()["tickers"]
    assert ticker["asof"] == "2018-03-29"
    assert (ticker["next_day"], ticker["next_day_from"]) == ("2018-04-02", "calendar XNYS")
    london = cfg.model_copy(update={"data": cfg.data.model_copy(update={"calendar": "XLON"})})
    (ticker,) = compute_signal(london, short, stored).to_dict()["tickers"]
    assert (ticker["next_day"], ticker["next_day_from"]) == ("2018-04-03", "calendar XLON")


@pytest.mark.parametrize(
    ("day", "calendar", "after"),
    [
        ("2020-12-31", "XNYS", "2021-01-04"),  # New Year's Day, then a weekend
        ("2019-07-03", "XNYS", "2019-07-05"),  # Independence Day
        ("2018-12-24", "XLON", "2018-12-27"),  # Christmas and Boxing Day
        ("2019-06-14", "XNYS", "2019-06-17"),  # an ordinary weekend
    ],
)
def test_next_session_skips_the_exchange_s_holidays(day, calendar, after):
    from rewts.signal import next_session

    assert next_session(pd.Timestamp(day), calendar) == pd.Timestamp(after)


def test_an_unknown_exchange_calendar_is_a_config_error_naming_the_key():
    from rewts.config import load_config
    from rewts.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data\.calendar = 'NYSX'.*did you mean XNYS"):
        load_config(None, sets=["data.calendar=NYSX"])
    assert load_config(None, sets=["data.calendar=XLON"]).data.calendar == "XLON"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--asof", "2017-06-01"],
            "error: --asof 2017-06-01 lies inside the training range (2016-01-01..2017-12-31): "
            "the agents have seen those days, so a signal there is in-sample; pick a day after "
            "2017-12-31",
        ),
        (
            ["--asof", "2017-12-29"],
            "error: --asof 2017-12-29 lies inside the training range",
        ),
        (
            ["--set", "rewts.gamma=0.9"],
            "error: AAPL global agent (rl_s0) in checkpoints/AAPL/global/rl_s0 was trained on "
            "another config or data version (its input hash differs from what this config and "
            "data give); train the agents of this config first (`rewts run`, or `rewts train` "
            "with the same flags), or run signal with the config and flags the agents were "
            "trained with",
        ),
        (
            ["--set", "data.synthetic_seed=8"],
            "error: AAPL global agent (rl_s0) in checkpoints/AAPL/global/rl_s0 was trained on "
            "another config or data version",
        ),
        (
            ["--runs", "2"],
            "error: AAPL global agent (rl_s1) is not trained (no checkpoint in "
            "checkpoints/AAPL/global/rl_s1)",
        ),
        (["--asof", "2019-03-01"], "error: --asof 2019-03-01: after the last day of AAPL's data"),
        (["--asof", "soon"], "error: --asof 'soon': not a date (expected YYYY-MM-DD)"),
    ],
)
def test_refusals_are_one_clear_line(in_run, extra, message):
    result = runner.invoke(app, ["signal", *TINY, *extra])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [
        result.output.strip()
    ], "one line"
    if "trained" in message or "in-sample" in message:
        assert result.exit_code == SignalError.exit_code
