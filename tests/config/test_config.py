from __future__ import annotations

from pathlib import Path

import pytest

from rewts.config import Config, load_config
from rewts.config.loader import interpolate_env, packaged_default_text, parse_set_option
from rewts.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_packaged_defaults_equal_shipped_config_file():
    shipped = (REPO_ROOT / "configs/hybrid/rewts_llm_rl.yaml").read_text()
    assert shipped == packaged_default_text()


def test_defaults_load_from_any_folder(workdir):
    cfg = load_config()
    assert cfg.tickers == ["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"]
    assert cfg.parallel_workers == "auto"
    assert cfg.rewts.hidden_dims == [64, 64]
    assert cfg.trading_env.transaction_cost == pytest.approx(0.0015)
    assert cfg.data.csv_dir is None


def test_seed_config_keys_are_accepted(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        """
tickers: [AAPL, MSFT]
data: {start_date: "2012-01-01", end_date: "2020-12-31"}
llm:
  llm_model: "deepseek-chat"
  temperature: 0.0
  deepseek_api_key: "${DEEPSEEK_API_KEY}"
rewts:
  chunk_length: 400
  lookback_length: 200
  forecast_horizon: 1
  episodes_per_chunk: 100
  gamma: 0.995
  epsilon_start: 1.0
  epsilon_min: 0.05
  epsilon_decay: 0.998
  learning_rate: 0.0005
  batch_size: 128
  buffer_size: 50000
  target_update_freq: 20
  hidden_dims: [256, 256, 128]
trading_env:
  initial_balance: 10000
  transaction_cost: 0.0015
  max_position: 0.95
  max_drawdown_limit: 0.15
strategy_frequency: 20
parallel_workers: 8
max_requests_per_second: 8.0
skip_news_processing: false
"""
    )
    cfg = load_config(seed, env={"DEEPSEEK_API_KEY": "sk-test-123"})
    assert cfg.llm.model == "deepseek-chat"
    assert cfg.llm.deepseek_api_key is not None
    assert cfg.llm.deepseek_api_key.get_secret_value() == "sk-test-123"
    assert "sk-test-123" not in repr(cfg)
    assert cfg.parallel_workers == 8


def test_unset_variable_leaves_optional_key_unset(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("llm: {gemini_api_key: '${GEMINI_API_KEY}'}\n")
    assert load_config(f, env={}).llm.gemini_api_key is None


def test_interpolation_with_default_and_inside_text():
    env = {"HOME_DIR": "/h"}
    assert interpolate_env(
        {"a": "${NOPE:-x}", "b": "${HOME_DIR}/data", "c": [1, "${HOME_DIR}"]}, env
    ) == {
        "a": "x",
        "b": "/h/data",
        "c": [1, "/h"],
    }


def test_set_overrides_nested_keys_and_lists():
    assert parse_set_option("llm.rate_limits.rpm=50") == {"llm": {"rate_limits": {"rpm": 50}}}
    assert parse_set_option("tickers=AAPL,MSFT") == {"tickers": ["AAPL", "MSFT"]}
    cfg = load_config(sets=["tickers=aapl,msft", "rewts.gamma=0.9", "parallel_workers=4"])
    assert cfg.tickers == ["AAPL", "MSFT"]
    assert cfg.rewts.gamma == 0.9
    assert cfg.parallel_workers == 4


def test_profile_quick_applies():
    cfg = load_config(profile="quick")
    assert cfg.tickers == ["AAPL", "MSFT"]
    assert cfg.backtest.runs == 1 < Config().backtest.runs
    assert str(cfg.rewts.checkpoint_dir) == "checkpoints/quick"


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["rewts.gama=0.9"], "rewts.gama: unknown key"),
        (
            ["max_requests_per_second=-1"],
            "max_requests_per_second = -1: Input should be greater than 0",
        ),
        (["max_requests_per_second=0"], "max_requests_per_second = 0"),
        (["parallel_workers=zero"], "parallel_workers = 'zero'"),
        (["llm.provider=foo"], "llm.provider = 'foo': Input should be"),
        (["tickers=[]"], "tickers = []"),
        (["data.end_date=2000-01-01"], "end_date (2000-01-01) must be after start_date"),
        (["rewts.hidden_dims=[0]"], "rewts.hidden_dims.0 = 0"),
        (["trading_env.transaction_cost=abc"], "trading_env.transaction_cost = 'abc'"),
        (["tickers=AAPL,AAPL"], "duplicate tickers: AAPL"),
        (["nonsense"], "expected KEY.PATH=VALUE"),
    ],
)
def test_bad_values_name_key_value_and_rule(sets, expected):
    with pytest.raises(ConfigError) as info:
        load_config(sets=sets)
    assert expected in str(info.value)


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tickers: [AAPL\nllm: {\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_config(bad)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_profile(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown profile 'fast'.*quick"):
        load_config(profile="fast")


def test_secret_values_never_appear_in_errors():
    with pytest.raises(ConfigError) as info:
        load_config(sets=["llm.gemini_api_key=[sk-SENTINEL]"])
    assert "SENTINEL" not in str(info.value)
    assert "<hidden>" in str(info.value)
