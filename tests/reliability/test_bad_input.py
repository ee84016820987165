"""Bad input through the CLI, table-driven: every case exits non-zero with one readable line
that names what to fix and no traceback; ``--debug`` adds the traceback.

Runs in-process with typer's CliRunner (seconds for the whole table); the LLM cases talk to
the simulator over loopback, the data cases to small CSV folders written from the real data.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rewts.cli import app
from rewts.sim import SimConfig, SimServer

RIGHT_KEY = "sk-right-key-123"


@dataclass(frozen=True)
class Case:
    name: str
    #: the command line; ``{data}``/``{sim}``/``{dead}``/``{csv:NAME}`` are filled in
    args: list[str]
    exit_code: int
    #: substrings the error line must contain (the key or file to fix, and why)
    expect: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def _nan_close(df):
    df.loc[100, "close"] = float("nan")
    return df


def _bad_date(df):
    df["date"] = df["date"].astype(object)
    df.loc[50, "date"] = "2013-13-45"
    return df


def _duplicate(df):
    return pd.concat([df.iloc[:60], df.iloc[59:]]).reset_index(drop=True)


def _text_price(df):
    df["close"] = df["close"].astype(object)
    df.loc[70, "close"] = "abc"
    return df


def _zero_price(df):
    df.loc[80, "low"] = 0.0
    return df


CSV_MUTATIONS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "missing_col": lambda df: df.drop(columns=["high"]),
    "bad_date": _bad_date,
    "nan": _nan_close,
    "dup": _duplicate,
    "zero": _zero_price,
    "short": lambda df: df[df["date"] >= "2020-06-01"],
    "header_only": lambda df: df.iloc[:0],
    "text_price": _text_price,
}

SPECIAL_FILES: dict[str, Callable[[Path], None]] = {
    "fifo": os.mkfifo,
    "vixfifo": os.mkfifo,
    "devzero": lambda p: p.symlink_to("/dev/zero"),
    "loop": lambda p: p.symlink_to(p.name),
    "folder": lambda p: p.mkdir(),
}

STRAT = ["strategies", "--data-dir", "{data}", "--tickers", "AAPL"]
FAST_RETRY = ["--set", "llm.retry.initial_s=0.01", "--set", "llm.retry.max_s=0.02"]
SIM_LLM = ["--provider", "openai", "--base-url", "{sim}", "--model", "gpt-4o-mini", *FAST_RETRY]

CASES = [
    Case("malformed-yaml", ["data", "--config", "{file:bad.yaml}"], 2, ("bad.yaml", "line 2")),
    Case(
        "unknown-key-yaml",
        ["data", "--config", "{file:unknown.yaml}"],
        2,
        ("llm.temprature", "unknown key"),
    ),
    Case("unknown-key-set", ["data", "--set", "rewts.gama=0.9"], 2, ("rewts.gama", "unknown key")),
    Case("wrong-type", ["data", "--set", "rewts.gamma=abc"], 2, ("rewts.gamma", "valid number")),
    Case("zero-rps", [*STRAT, "--rps", "0"], 2, ("max_requests_per_second", "greater than 0")),
    Case("negative-rps", [*STRAT, "--rps", "-3"], 2, ("max_requests_per_second",)),
    Case("negative-rpm", [*STRAT, "--rpm", "-5"], 2, ("llm.rate_limits.rpm", "greater than 0")),
    Case("zero-workers", [*STRAT, "--workers", "0"], 2, ("parallel_workers",)),
    Case("unknown-provider", [*STRAT, "--provider", "foo"], 2, ("llm.provider = 'foo'", "openai")),
    Case("missing-key", [*STRAT, "--provider", "openai"], 4, ("set OPENAI_API_KEY",)),
    Case(
        "unknown-model",
        [*STRAT, *SIM_LLM, "--model", "gpt-9"],
        4,
        ("'gpt-9' not found", "llm.model"),
        {"OPENAI_API_KEY": RIGHT_KEY},
    ),
    Case(
        "wrong-key-401",
        [*STRAT, *SIM_LLM],
        4,
        ("rejected the API key", "set OPENAI_API_KEY"),
        {"OPENAI_API_KEY": "sk-wrong-key-456"},
    ),
    Case(
        "unreachable-url",
        # few periods: the abort waits for the first task's retries behind every other
        # task's attempts in the limiter (see test_fault_matrix's xfail on that)
        [
            *STRAT,
            *SIM_LLM,
            "--base-url",
            "{dead}",
            "--set",
            "data.start_date=2020-07-01",
            "--rps",
            "50",
        ],
        4,
        ("cannot reach", "llm.base_url"),
        {"OPENAI_API_KEY": RIGHT_KEY},
    ),
    Case("empty-tickers", ["data", "--tickers", ""], 2, ("tickers = []", "at least 1")),
    Case("empty-tickers-set", ["data", "--set", "tickers="], 2, ("tickers = []",)),
    Case("unknown-ticker", ["data", "--data-dir", "{data}", "--tickers", "NOPE"], 3, ("NOPE",)),
    Case("missing-data-dir", ["data", "--data-dir", "{file:nowhere}"], 3, ("data.csv_dir",)),
    Case(
        "csv-missing-column",
        ["data", "--data-dir", "{csv:missing_col}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "line 1", "missing column high"),
    ),
    Case(
        "csv-bad-date",
        ["data", "--data-dir", "{csv:bad_date}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "line 52", "2013-13-45"),
    ),
    Case(
        "csv-nan-price",
        ["data", "--data-dir", "{csv:nan}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "line 102", "close"),
    ),
    Case(
        "csv-zero-price",
        ["data", "--data-dir", "{csv:zero}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "line 82", "low"),
    ),
    Case(
        "csv-header-only",
        ["data", "--data-dir", "{csv:header_only}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "no data rows"),
    ),
    Case(
        "csv-text-price",
        ["data", "--data-dir", "{csv:text_price}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "line 72", "close is 'abc'"),
    ),
    Case(
        "csv-duplicate-dates",
        ["data", "--data-dir", "{csv:dup}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "lines 61 and 62", "duplicate date"),
    ),
    Case(
        "too-little-history",
        ["data", "--data-dir", "{csv:short}", "--tickers", "AAPL"],
        3,
        ("AAPL: too little history", "data.warmup_days", "remove AAPL from tickers"),
    ),
    Case("bad-date-flag", ["data", "--start", "yesterday"], 2, ("data.start_date",)),
    Case(
        "dates-reversed",
        ["data", "--start", "2020-01-01", "--end", "2019-01-01"],
        2,
        ("end_date (2019-01-01) must be after start_date",),
    ),
    Case("unknown-profile", ["data", "--profile", "nope"], 2, ("unknown profile 'nope'",)),
    Case("set-without-equals", ["data", "--set", "rewts.gamma"], 2, ("expected KEY.PATH=VALUE",)),
    Case(
        "corrupt-cache",
        ["cache", "stats", "--cache", "{file:corrupt.sqlite}"],
        2,
        ("corrupt.sqlite", "not a usable SQLite cache", "delete the file"),
    ),
    Case(
        "cache-is-a-folder",
        ["cache", "stats", "--cache", "{file:csv_folder_as_cache}"],
        2,
        ("llm.cache_path", "cannot create the cache file"),
    ),
    # issue 16: each of these was a traceback (or a hang)
    Case("start-year-1", ["data", "--start", "0001-01-01"], 2, ("data.start_date", "1900-01-01")),
    Case("end-year-9999", ["data", "--end", "9999-12-31"], 2, ("data.end_date", "2200-12-31")),
    Case("rps-inf", [*STRAT, "--rps", "inf"], 2, ("max_requests_per_second", "finite")),
    Case("rps-nan", [*STRAT, "--rps", "nan"], 2, ("max_requests_per_second", "finite")),
    Case(
        "rpm-never", [*STRAT, "--rpm", "1e-9"], 2, ("llm.rate_limits.rpm", "one request per hour")
    ),
    Case(
        "csv-fifo",
        ["data", "--data-dir", "{csv:fifo}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "not a regular file", "FIFO"),
    ),
    Case(
        "csv-link-to-dev-zero",
        ["data", "--data-dir", "{csv:devzero}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "not a regular file"),
    ),
    Case(
        "csv-symlink-loop",
        ["data", "--data-dir", "{csv:loop}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "symlink loop"),
    ),
    Case(
        "csv-is-a-folder",
        ["data", "--data-dir", "{csv:folder}", "--tickers", "AAPL"],
        3,
        ("AAPL.csv", "is a folder"),
    ),
    Case(
        "market-csv-fifo",
        ["data", "--data-dir", "{csv:vixfifo}", "--tickers", "AAPL"],
        3,
        ("VIX.csv", "not a regular file"),
    ),
    Case(
        "config-is-a-fifo",
        ["data", "--config", "{file:fifo.yaml}"],
        2,
        ("fifo.yaml", "not a regular file"),
    ),
    Case(
        "env-file-not-utf8",
        [*STRAT, "--env-file", "{file:latin1.env}"],
        2,
        ("latin1.env", "line 2", "not UTF-8"),
    ),
    Case(
        "billion-laughs-yaml",
        ["data", "--config", "{file:laughs.yaml}"],
        2,
        ("laughs.yaml", "expands to more than"),
    ),
    Case(
        "deep-yaml",
        ["data", "--config", "{file:deep.yaml}"],
        2,
        ("deep.yaml", "nested more than"),
    ),
    Case("deep-set", ["data", "--set", "rewts.gamma=" + "[" * 3000 + "]" * 3000], 2, ("nested",)),
    Case(
        "duplicate-yaml-key",
        ["data", "--config", "{file:dup.yaml}"],
        2,
        ("dup.yaml", "line 4", "duplicate key 'seed'"),
    ),
    Case(
        "cache-dev-null",
        ["cache", "stats", "--cache", "/dev/null"],
        2,
        ("/dev/null", "not a regular file"),
    ),
    Case(
        "cache-export-to-a-folder",
        ["cache", "export", "--cache", "{file:empty.sqlite}", "-o", "{file:a_folder.json}"],
        2,
        ("a_folder.json", "is a folder"),
    ),
    Case(
        "backtest-out-is-a-file",
        ["backtest", "--tickers", "AAPL", "--out", "{file:bad.yaml}"],
        2,
        ("--out", "bad.yaml", "is a file"),
    ),
    Case(
        "strategies-out-is-the-dataset",
        [*STRAT, "--out", "data/processed"],
        2,
        ("llm.output_dir", "data.processed_dir", "same folder"),
    ),
    Case(
        "unset-variable-for-a-path",
        ["data", "--config", "{file:unset_var.yaml}"],
        2,
        ("data.csv_dir uses ${REWTS_TEST_UNSET_DIR}", "not set"),
    ),
    Case(
        "unset-variable-for-a-ticker",
        ["data", "--set", "tickers=${{REWTS_TEST_UNSET_TICKER}}"],  # {{ }}: str.format,
        2,
        ("tickers.0 uses ${REWTS_TEST_UNSET_TICKER}",),
    ),
    Case("sim-port-out-of-range", ["sim", "--port", "99999"], 2, ("--port 99999", "65535")),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, shared_data):
    """Files for every case, one simulator, one closed port."""
    root = tmp_path_factory.mktemp("bad_input")
    (root / "bad.yaml").write_text("tickers: [AAPL\nllm: {\n")
    (root / "unknown.yaml").write_text("tickers: [AAPL]\nllm:\n  temprature: 0\n")
    (root / "corrupt.sqlite").write_bytes(b"not a database, " * 64)
    (root / "csv_folder_as_cache").mkdir()
    (root / "a_folder.json").mkdir()
    os.mkfifo(root / "fifo.yaml")
    (root / "latin1.env").write_bytes(b"# keys\nOPENAI_API_KEY=sk-caf\xe9\n")
    (root / "latin1.env").chmod(0o600)
    laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    (root / "laughs.yaml").write_text(laughs)
    (root / "deep.yaml").write_text("rewts:\n  gamma: " + "[" * 3000 + "]" * 3000 + "\n")
    (root / "unset_var.yaml").write_text("data:\n  csv_dir: ${REWTS_TEST_UNSET_DIR}\n")
    (root / "dup.yaml").write_text("seed: 1\nllm:\n  temperature: 0\nseed: 2\n")
    aapl = pd.read_csv(shared_data / "AAPL.csv")
    for name, mutate in CSV_MUTATIONS.items():
        folder = root / name
        folder.mkdir()
        for symbol in ("GSPC", "VIX", "TNX"):
            shutil.copy(shared_data / f"{symbol}.csv", folder)
        mutate(aapl.copy()).to_csv(folder / "AAPL.csv", index=False)
    for name, make in SPECIAL_FILES.items():  # AAPL.csv (or VIX.csv) that is not a file
        folder = root / name
        folder.mkdir()
        for symbol in ("AAPL", "GSPC", "VIX", "TNX"):
            shutil.copy(shared_data / f"{symbol}.csv", folder)
        target = folder / ("VIX.csv" if name == "vixfifo" else "AAPL.csv")
        target.unlink()
        make(target)
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    sim = SimServer(SimConfig(latency_s=0.0, api_key=RIGHT_KEY, models=("gpt-4o-mini",)))
    sim.start()
    yield {"root": root, "data": str(shared_data), "sim": sim.openai_base_url, "dead": dead}
    sim.stop()


def _fill(arg: str, world: dict) -> str:
    for kind in ("file", "csv"):
        if arg.startswith("{" + kind + ":"):
            return str(Path(world["root"]) / arg[len(kind) + 2 : -1])
    return arg.format(**{k: v for k, v in world.items() if isinstance(v, str)})


def _invoke(case: Case, world: dict, workdir: Path, *extra: str):
    quiet = [] if case.args[0] in ("cache", "sim") else ["--no-progress"]  # no progress there
    args = [_fill(a, world) for a in case.args] + [*quiet, *extra]
    return CliRunner().invoke(app, args, env=case.env)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_with_one_line_naming_what_to_fix(case, world, workdir):
    result = _invoke(case, world, workdir)
    out = result.output
    assert result.exit_code == case.exit_code, out
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), f"unhandled {result.exception!r}"
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    for text in case.expect:
        assert text in errors[0], f"{text!r} not in {errors[0]!r}"
    # nothing half-written for the user to trip over
    assert not (workdir / "data" / "strategies").exists()


@pytest.mark.parametrize("case", [c for c in CASES if c.exit_code != 4][::4], ids=lambda c: c.name)
def test_debug_shows_the_traceback(case, world, workdir):
    result = _invoke(case, world, workdir, "--debug")
    assert result.exit_code == case.exit_code
    assert "Traceback" in result.output
    assert sum(line.startswith("error:") for line in result.output.splitlines()) == 1


def test_debug_traceback_for_an_llm_error(world, workdir):
    case = next(c for c in CASES if c.name == "wrong-key-401")
    result = _invoke(case, world, workdir, "--debug")
    assert result.exit_code == 4 and "Traceback" in result.output
    assert "AuthenticationError" in result.output


def test_rewts_debug_variable_shows_the_traceback_too(world, workdir):
    case = next(c for c in CASES if c.name == "unknown-key-set")
    result = CliRunner().invoke(app, [*case.args, "--no-progress"], env={"REWTS_DEBUG": "1"})
    assert result.exit_code == 2
    assert "Traceback" in result.output and "rewts.gama: unknown key" in result.output
