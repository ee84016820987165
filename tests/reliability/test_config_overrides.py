"""Command-line overrides a user types without YAML syntax: one value for a list key, and
dropping an entry of a mapping (a market symbol) with null."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rewts.cli import app
from rewts.config import load_config
from rewts.errors import ConfigError


@pytest.mark.parametrize(
    ("item", "attr", "expected"),
    [
        ("tickers=AAPL", "tickers", ["AAPL"]),
        ("tickers=aapl,msft", "tickers", ["AAPL", "MSFT"]),
        ("tickers=[AAPL]", "tickers", ["AAPL"]),
        ("rewts.hidden_dims=8", "hidden_dims", [8]),
        ("rewts.hidden_dims=8,4", "hidden_dims", [8, 4]),
        ("backtest.agents=rewts", "agents", ["rewts"]),
    ],
)
def test_a_plain_value_for_a_list_key_is_a_list(workdir, item, attr, expected):
    cfg = load_config(sets=[item])
    section = {"hidden_dims": cfg.rewts, "agents": cfg.backtest}.get(attr, cfg)
    assert getattr(section, attr) == expected


def test_commas_stay_in_string_keys(workdir):
    assert load_config(sets=["llm.model=a,b"]).llm.model == "a,b"
    assert load_config(sets=["llm.base_url=http://h/x,y"]).llm.base_url == "http://h/x,y"


def test_an_empty_ticker_list_is_an_error_naming_the_key(workdir):
    with pytest.raises(ConfigError, match=r"tickers = \[\]: List should have at least 1 item"):
        load_config(sets=["tickers="])


def test_null_drops_one_market_symbol_and_null_or_braces_drop_all(workdir):
    default = load_config().data.market_symbols
    assert "vix" in default
    dropped = load_config(sets=["data.market_symbols.vix=null"]).data.market_symbols
    assert dropped == {k: v for k, v in default.items() if k != "vix"}
    assert load_config(sets=["data.market_symbols=null"]).data.market_symbols == {}
    assert load_config(sets=["data.market_symbols={}"]).data.market_symbols == {}
    added = load_config(sets=["data.market_symbols.dji=DJI"]).data.market_symbols
    assert added == {**default, "dji": "DJI"}


def test_profile_entries_use_the_same_rules(workdir):
    cfg = load_config(sets=["profiles.one.tickers=AAPL"], profile=None)
    assert cfg.profiles["one"] == {"tickers": ["AAPL"]}


def test_data_stage_runs_without_a_dropped_market_symbol(workdir, shared_data):
    result = CliRunner().invoke(
        app,
        [
            "data",
            "--data-dir",
            str(shared_data),
            "--set",
            "tickers=AAPL",
            "--set",
            "data.market_symbols.vix=null",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sp500_close" in result.output and "vix_close" not in result.output
