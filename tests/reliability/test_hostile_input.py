"""Hostile or careless input, round two (issue 16): destructive commands, paths that escape
their folder, files that never end, input that grows without bound, secrets in URLs.

Each test drives the CLI (typer's CliRunner, in-process) or the function underneath, and checks
that nothing is lost or leaked and that the user gets one ``error:`` line with its exit code.
The one-line-per-mistake cases live in the table of ``test_bad_input.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewts.cli import app
from rewts.llm.cache import StrategyCache


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _fill_cache(path: Path, n: int = 3) -> None:
    with StrategyCache(path) as cache:
        for i in range(n):
            cache.put(
                f"k{i}",
                provider="p",
                model="m",
                prompt_version="v1",
                settings={},
                messages=[{"role": "user", "content": str(i)}],
                response_text="{}",
                strategy_json="{}",
            )


# ----------------------------------------------------------------- cache prune / clear


@pytest.mark.parametrize("days", ["-5", "0", "nan", "inf", "1e308"])
def test_prune_rejects_a_non_positive_or_non_finite_age_and_keeps_every_entry(workdir, days):
    path = workdir / "c.sqlite"
    _fill_cache(path)
    result = CliRunner().invoke(
        app, ["cache", "prune", "--cache", str(path), f"--older-than={days}", "--yes"]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = _errors(result.output)
    assert "--older-than" in line and "greater than 0" in line
    with StrategyCache(path) as cache:
        assert len(cache) == 3


@pytest.mark.parametrize(
    "args",
    [["prune", "--prompt-version", "v1"], ["clear"]],
    ids=["prune", "clear"],
)
def test_deleting_entries_needs_yes_when_nobody_can_be_asked(workdir, args):
    path = workdir / "c.sqlite"
    _fill_cache(path)
    result = CliRunner().invoke(app, ["cache", *args, "--cache", str(path)])
    assert result.exit_code == 2, result.output
    [line] = _errors(result.output)
    assert "delete" in line and "3" in line and "--yes" in line
    with StrategyCache(path) as cache:
        assert len(cache) == 3
    result = CliRunner().invoke(app, ["cache", *args, "--cache", str(path), "--yes"])
    assert result.exit_code == 0 and "removed 3" in result.output


def test_export_never_overwrites_silently_and_writes_user_only(workdir):
    path = workdir / "c.sqlite"
    _fill_cache(path)
    target = workdir / "out.json"
    target.write_text("precious")
    result = CliRunner().invoke(app, ["cache", "export", "--cache", str(path), "-o", str(target)])
    assert result.exit_code == 2 and "--yes" in _errors(result.output)[0]
    assert target.read_text() == "precious"
    result = CliRunner().invoke(
        app, ["cache", "export", "--cache", str(path), "-o", str(target), "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert target.stat().st_mode & 0o077 == 0
    fresh = workdir / "new" / "x.parquet"
    assert (
        CliRunner()
        .invoke(app, ["cache", "export", "--cache", str(path), "-o", str(fresh)])
        .exit_code
        == 0
    )
    assert fresh.stat().st_mode & 0o077 == 0


# ----------------------------------------------------------------- cache files that are not ours


def test_cache_on_dev_null_is_refused_without_leaving_a_journal(workdir, tmp_path):
    import os
    import stat as st

    fifo = tmp_path / "pipe.sqlite"
    os.mkfifo(fifo)
    for target in (Path("/dev/null"), fifo):
        before = set(target.parent.iterdir()) if target.parent != Path("/dev") else None
        result = CliRunner().invoke(app, ["cache", "stats", "--cache", str(target)])
        assert result.exit_code == 2, result.output
        [line] = _errors(result.output)
        assert "not a regular file" in line
        if before is not None:
            assert set(target.parent.iterdir()) == before
        assert not Path(f"{target}-journal").exists() or st.S_ISCHR(os.stat(target).st_mode)


def test_cache_with_a_foreign_strategies_table_is_named(workdir):
    path = workdir / "foreign.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE strategies (name TEXT, body TEXT)")
        conn.execute("INSERT INTO strategies VALUES ('mine', 'x')")
    result = CliRunner().invoke(app, ["cache", "stats", "--cache", str(path)])
    assert result.exit_code == 2, result.output
    [line] = _errors(result.output)
    assert "foreign.sqlite" in line and "not a rewts cache" in line
    with sqlite3.connect(path) as conn:  # left as it was
        assert conn.execute("SELECT * FROM strategies").fetchall() == [("mine", "x")]


def test_cache_with_garbage_pages_is_one_error_line(workdir):
    path = workdir / "garbage.sqlite"
    _fill_cache(path, 200)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 4
    with path.open("r+b") as fh:  # every page after the schema page: garbage
        fh.seek(page * 2)
        fh.write(b"\xde\xad\xbe\xef" * (page * (pages - 2) // 4))
    for action in ("stats", "export"):
        extra = ["-o", str(workdir / "x.json")] if action == "export" else []
        result = CliRunner().invoke(app, ["cache", action, "--cache", str(path), *extra])
        assert result.exit_code == 2, result.output
        [line] = _errors(result.output)
        assert "garbage.sqlite" in line and "not a usable SQLite cache" in line


def test_cache_from_a_newer_schema_is_announced(workdir, caplog):
    path = workdir / "new.sqlite"
    _fill_cache(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    result = CliRunner().invoke(app, ["cache", "stats", "--cache", str(path)])
    assert result.exit_code == 0
    assert "newer rewts" in result.output + caplog.text


# ----------------------------------------------------------------- tickers as path components


@pytest.mark.parametrize("ticker", ["..", ".", "...", "-", "^"])
def test_a_ticker_cannot_be_a_path_component_that_escapes(workdir, ticker):
    result = CliRunner().invoke(app, ["train", "--tickers", ticker, "--no-progress"])
    assert result.exit_code == 2, result.output
    [line] = _errors(result.output)
    assert "tickers" in line and "letter or digit" in line
    assert not (workdir / "checkpoints").exists()


def test_a_market_symbol_cannot_point_outside_the_data_folder(workdir):
    result = CliRunner().invoke(
        app, ["data", "--set", "data.market_symbols.vix=..", "--no-progress"]
    )
    assert result.exit_code == 2
    assert "data.market_symbols.vix" in _errors(result.output)[0]


# ----------------------------------------------------------------- a corrupt checkpoint

TINY_TRAIN = [
    "--source", "synthetic",
    "--tickers", "AAA",
    "--episodes", "2",
    "--no-progress",
    "--set", "executor=local",
    "--set", "rewts.hidden_dims=8",
    "--set", "rewts.chunk_length=100",
    "--set", "rewts.learning_starts=50",
    "--set", "rewts.buffer_size=2000",
    "--set", "trading_env.window=5",
    "--set", "data.start_date=2015-01-01",
    "--set", "split.train_start=2015-01-01",
    "--set", "split.train_end=2016-06-30",
    "--set", "split.test_start=2016-07-01",
    "--set", "split.test_end=2016-12-31",
]  # fmt: skip


@pytest.mark.slow
def test_a_corrupt_model_pt_is_named_and_retrained_not_skipped(workdir, caplog):
    import torch

    result = CliRunner().invoke(app, ["train", *TINY_TRAIN])
    assert result.exit_code == 0, result.output
    model = workdir / "checkpoints" / "AAA" / "chunk_0" / "llm_s0" / "model.pt"
    model.write_bytes(b"garbage")
    # the backtest names the broken file instead of "needs trained chunk agents"
    no_train = ["--agents", "rewts", "--set", "backtest.train_missing=false", "--runs", "1"]
    result = CliRunner().invoke(app, ["backtest", *TINY_TRAIN, *no_train])
    assert result.exit_code == 6, result.output
    [line] = _errors(result.output)
    assert str(Path("chunk_0") / "llm_s0" / "model.pt") in line and "rewts train" in line
    # train retrains it (it used to skip it as unchanged), saying so
    result = CliRunner().invoke(app, ["train", *TINY_TRAIN])
    assert result.exit_code == 0, result.output
    said = result.output + caplog.text
    assert "chunk_0/llm_s0/model.pt does not match its meta.json" in said
    assert "retraining it" in said
    torch.load(model, map_location="cpu", weights_only=True)
    # a file replaced by another (valid) checkpoint does not match its meta.json either
    other = workdir / "checkpoints" / "AAA" / "chunk_1" / "llm_s0" / "model.pt"
    model.write_bytes(other.read_bytes())
    caplog.clear()
    result = CliRunner().invoke(app, ["train", *TINY_TRAIN])
    assert "chunk_0/llm_s0/model.pt does not match" in result.output + caplog.text
    result = CliRunner().invoke(app, ["backtest", *TINY_TRAIN, *no_train])
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------- a full disk


def test_disk_full_during_strategies_says_where_and_keeps_the_cache(workdir, monkeypatch):
    """SQLite's own "database or disk is full" (a page limit stands in for the disk): one
    error line naming the cache, exit 8; every committed answer survives and the rerun
    finishes the job."""
    from rewts.sim import SimConfig, SimServer

    original = StrategyCache._conn

    def small_disk(self):
        conn = original(self)
        conn.execute("PRAGMA max_page_count = 12")
        return conn

    args = [
        "strategies",
        "--source", "synthetic",
        "--tickers", "AAA",
        "--provider", "local",
        "--model", "sim",
        "--rps", "200",
        "--no-progress",
        "--set", "data.start_date=2018-01-01",
    ]  # fmt: skip
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        args += ["--base-url", sim.openai_base_url]
        monkeypatch.setattr(StrategyCache, "_conn", small_disk)
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 8, result.output
        assert "Traceback" not in result.output
        [line] = _errors(result.output)
        assert "strategies.sqlite" in line and "disk is full" in line and "intact" in line
        assert not (workdir / "data" / "strategies").exists()
        monkeypatch.setattr(StrategyCache, "_conn", original)
        with StrategyCache(workdir / "cache" / "strategies.sqlite") as cache:
            assert cache.integrity_ok()
            kept = len(cache)
        assert kept > 0
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    with StrategyCache(workdir / "cache" / "strategies.sqlite") as cache:
        assert len(cache) > kept


# ----------------------------------------------------------------- a file we may not read


def test_an_unreadable_data_file_is_one_error_line(tmp_path, shared_data):
    """Permissions only bind an unprivileged user: as root the check runs the command as
    ``nobody`` through setpriv, and skips (with the reason) where that is impossible."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    public = Path(tempfile.mkdtemp(prefix="rewts-perm-", dir="/tmp"))
    try:
        public.chmod(0o777)  # the unprivileged user writes its outputs here
        data = public / "data"
        data.mkdir()
        for symbol in ("AAPL", "GSPC", "VIX", "TNX"):
            shutil.copy(shared_data / f"{symbol}.csv", data)
        data.chmod(0o755)
        (data / "AAPL.csv").chmod(0o000)
        args = ["data", "--data-dir", str(data), "--tickers", "AAPL", "--no-progress"]
        if os.geteuid() != 0:
            result = CliRunner().invoke(app, args)
            code, output = result.exit_code, result.output
        else:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: cannot drop privileges")
            cmd = [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups"]
            probe = subprocess.run([*cmd, sys.executable, "-c", "import rewts"], cwd=public)
            if probe.returncode != 0:
                pytest.skip("the unprivileged user cannot run this interpreter or import rewts")
            env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
            env["HOME"] = str(public)
            run = subprocess.run(
                [*cmd, sys.executable, "-c", "from rewts.cli import main; main()", *args],
                cwd=public,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            code, output = run.returncode, run.stdout + run.stderr
        assert code == 3, output
        assert "Traceback" not in output
        [line] = _errors(output)
        assert "AAPL.csv" in line and "permission denied" in line
    finally:
        shutil.rmtree(public, ignore_errors=True)


# ----------------------------------------------------------------- a store that is not ours


def test_a_processed_store_overwritten_by_another_table_is_rebuilt(workdir, shared_data):
    """What ``strategies --out data/processed`` used to do: a parquet that is not the dataset
    under the dataset's name. The next run rebuilds the store instead of a traceback."""
    import pandas as pd

    args = ["data", "--data-dir", str(shared_data), "--tickers", "AAPL", "--no-progress"]
    assert CliRunner().invoke(app, args).exit_code == 0
    stored = workdir / "data" / "processed" / "AAPL.parquet"
    pd.DataFrame({"ticker": ["AAPL"], "period": [0], "tau": ["off"]}).to_parquet(stored)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "changed on disk" in result.output
    assert "close" in pd.read_parquet(stored).columns


@pytest.mark.slow
def test_a_test_period_past_the_data_is_announced(workdir):
    args = [
        "backtest",
        *TINY_TRAIN,
        "--agents", "buy_and_hold,rl_only",
        "--runs", "1",
        "--set", "data.end_date=2016-10-31",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the note is wrapped to the terminal
    assert "before split.test_end (2016-12-31)" in text and "shorter than configured" in text


# ----------------------------------------------------------------- every answer malformed


def test_a_run_where_every_answer_is_malformed_fails_naming_the_reason(workdir, caplog):
    from rewts.sim import SimConfig, SimServer

    args = [
        "strategies",
        "--source", "synthetic",
        "--tickers", "AAA",
        "--provider", "local",
        "--model", "sim",
        "--rps", "500",
        "--no-progress",
        "--set", "data.start_date=2020-01-01",
        "--set", "llm.retry.max_retries=0",
    ]  # fmt: skip
    with SimServer(SimConfig(latency_s=0.0, malformed_rate=1.0)) as sim:
        result = CliRunner().invoke(app, [*args, "--base-url", sim.openai_base_url])
    assert result.exit_code == 4, result.output
    [line] = _errors(result.output)
    assert "every one of the" in line and "most frequent reason" in line
    assert not (workdir / "data" / "strategies").exists()
    # some answered, some failed: exit 0, and a line names the most frequent reason
    with SimServer(SimConfig(latency_s=0.0, malformed_rate=0.5, seed=1)) as sim:
        result = CliRunner().invoke(app, [*args, "--base-url", sim.openai_base_url])
    assert result.exit_code == 0, result.output
    assert "most frequent reason" in result.output + caplog.text


# ----------------------------------------------------------------- user-only outputs


@pytest.mark.slow
def test_every_output_file_and_folder_is_user_only(workdir):
    import os
    import stat

    old = os.umask(0o022)  # a typical user's umask: rewts must not rely on a stricter one
    try:
        result = CliRunner().invoke(
            app, ["backtest", *TINY_TRAIN, "--agents", "rewts", "--runs", "1"]
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    loose = [
        f"{p.relative_to(workdir)} {stat.S_IMODE(p.stat().st_mode):o}"
        for p in workdir.rglob("*")
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert not loose, loose
    assert (workdir / "data" / "processed").is_dir() and (workdir / "results").is_dir()


# ----------------------------------------------------------------- rewts status tells the truth


def test_status_after_standalone_strategies_and_after_a_changed_dataset(workdir, shared_data):
    import json

    import pandas as pd

    base = ["--data-dir", str(shared_data), "--tickers", "AAPL", "--no-progress"]
    base += ["--set", "data.start_date=2018-01-01"]
    result = CliRunner().invoke(app, ["strategies", *base])
    assert result.exit_code == 0, result.output
    status = CliRunner().invoke(app, ["status", *base, "--json"])
    states = {s["stage"]: s for s in json.loads(status.stdout)["stages"]}
    assert states["data"]["state"] == "fresh"
    assert states["strategies"]["state"] == "fresh", states["strategies"]  # was "missing"
    # the processed file no longer matches its manifest: not "fresh"
    stored = workdir / "data" / "processed" / "AAPL.parquet"
    frame = pd.read_parquet(stored)
    frame.iloc[10, frame.columns.get_loc("close")] *= 2
    frame.to_parquet(stored)
    status = CliRunner().invoke(app, ["status", *base, "--json"])
    data = json.loads(status.stdout)["stages"][0]
    assert data["state"] == "stale" and "changed on disk" in data["why"]
