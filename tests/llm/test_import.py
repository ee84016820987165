"""`rewts strategies import FILE`: every bad row is one `error:` line naming the file and the
row, nothing is written then; good files (CSV, Parquet, JSON) become the generator's tables.

The data are the synthetic market of the pipeline tests (AAPL, 2016-2018, business days): its
first strategy period starts 2016-01-01 and periods are 20 trading days long.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rewts.cli import app
from rewts.config import Config
from rewts.errors import ConfigError, DataError
from rewts.llm.generate import COLUMNS
from rewts.llm.importer import read_import
from rewts.llm.schemas import strength, tau

from .helpers import fake_dataset

runner = CliRunner()
DATA = [
    "--tickers", "AAPL",
    "--source", "synthetic",
    "--set", "data.start_date=2016-01-01",
    "--set", "data.end_date=2018-12-31",
]  # fmt: skip
HEADER = "ticker,date,direction,confidence,tau\n"
GOOD = "AAPL,2016-01-01,LONG,2,\nAAPL,2016-02-01,SHORT,3,\n"


def import_cli(path: Path, *extra: str):
    return runner.invoke(app, ["strategies", "import", str(path), *DATA, *extra])


def write_csv(folder: Path, body: str) -> Path:
    path = folder / "strategies.csv"
    path.write_text(HEADER + body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            GOOD + "XYZ,2016-03-01,LONG,2,\n",
            "strategies.csv, line 4: ticker 'XYZ' is not in the data (tickers: AAPL); add it "
            "to `tickers` (--tickers) or drop its rows",
        ),
        (
            GOOD + "AAPL,2015-06-01,LONG,2,\n",
            "strategies.csv, line 4: date 2015-06-01 is outside the data of AAPL (its strategy "
            "periods run 2016-01-01..2018-12-31)",
        ),
        (
            GOOD + "AAPL,2019-01-02,LONG,2,\n",
            "strategies.csv, line 4: date 2019-01-02 is outside the data of AAPL (its strategy "
            "periods run 2016-01-01..2018-12-31)",
        ),
        (
            # 2016-01-28 is the last day of period 0, which line 2 already gave
            GOOD + "AAPL,2016-01-28,SHORT,1,\n",
            "strategies.csv, line 4: AAPL period 0 (2016-01-01..2016-01-28) is given twice "
            "(first on line 2)",
        ),
        (
            GOOD + "AAPL,2016-03-01,,,1.5\n",
            "strategies.csv, line 4: tau '1.5' is outside [-1, 1] (tau = +/-(confidence / 3) x "
            "certainty; see docs/strategy-import.md)",
        ),
        (
            GOOD + "AAPL,2016-03-01,,,-3.5\n",
            "strategies.csv, line 4: tau '-3.5' is outside [-1, 1]",
        ),
        (
            GOOD + "AAPL,2016-03-01,UP,2,\n",
            "strategies.csv, line 4: direction 'UP' is not LONG, SHORT, 1 or 0",
        ),
        (
            GOOD + "AAPL,2016-03-01,2,2,\n",
            "strategies.csv, line 4: direction '2' is not LONG, SHORT, 1 or 0",
        ),
        (
            GOOD + "AAPL,2016-03-01,LONG,4,\n",
            "strategies.csv, line 4: confidence '4' is not a number from 1 to 3 (1 low, 2 "
            "medium, 3 high)",
        ),
        (
            GOOD + "AAPL,2016-03-01,LONG,,\n",
            "strategies.csv, line 4: give tau, or direction and confidence",
        ),
        (
            GOOD + "AAPL,2016-03-01,LONG,,-0.5\n",
            "strategies.csv, line 4: tau -0.5 contradicts direction LONG",
        ),
        (
            GOOD + "AAPL,March 1st,LONG,2,\n",
            "strategies.csv, line 4: date 'March 1st' is not a date (expected YYYY-MM-DD)",
        ),
    ],
)
def test_a_bad_row_is_one_error_line_and_nothing_is_written(workdir, body, message):
    path = write_csv(workdir, body)
    result = import_cli(path)
    assert result.exit_code == DataError.exit_code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in " ".join(result.output.split()), result.output
    assert str(path) in result.output
    # nothing half-written: no table, no stage record
    assert not (workdir / "data" / "strategies").exists()


def test_a_bad_row_leaves_an_earlier_import_as_it_was(workdir):
    good = write_csv(workdir, GOOD)
    assert import_cli(good).exit_code == 0
    folder = workdir / "data" / "strategies"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    bad = workdir / "bad.csv"
    bad.write_text(HEADER + GOOD.replace("SHORT,3", "SIDEWAYS,3"))
    result = import_cli(bad)
    assert result.exit_code == DataError.exit_code
    assert "bad.csv, line 3: direction 'SIDEWAYS'" in " ".join(result.output.split())
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("ticker,day,tau\nAAPL,2016-01-04,0.5\n", "s.csv", "s.csv: missing column(s) date (or start)"),
        ("ticker,date\nAAPL,2016-01-04\n", "s.csv", "missing column(s) tau (or direction and confidence)"),
        ("ticker,date,tau\n", "s.csv", "s.csv: no strategies in it (only a header)"),
        ("{}", "s.json", "s.json: cannot be read as JSON: expected a list of objects"),
        ("ticker,date,tau\n", "s.txt", "s.txt: unsupported file type '.txt'"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_error_line(workdir, content, name, message):
    path = workdir / name
    path.write_text(content)
    result = import_cli(path)
    assert result.exit_code == DataError.exit_code, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_missing_file_and_a_ticker_without_rows(workdir):
    result = import_cli(workdir / "nope.csv")
    assert result.exit_code == DataError.exit_code
    assert "nope.csv: file not found" in result.output
    path = write_csv(workdir, GOOD)
    result = import_cli(path, "--tickers", "AAPL,MSFT")
    assert result.exit_code == DataError.exit_code
    assert "no strategies for MSFT (the file has AAPL)" in " ".join(result.output.split())


def test_provider_import_needs_a_file(workdir):
    result = runner.invoke(app, ["status", *DATA, "--provider", "import"])
    assert result.exit_code == ConfigError.exit_code
    assert "provider import reads strategies from llm.import_path" in result.output


# ------------------------------------------------------------- what a good file becomes


def _cfg() -> Config:
    return Config(tickers=["AAA", "BBB"], strategy_frequency=20)


def test_rows_become_the_generators_table_with_provenance(tmp_path):
    dataset = fake_dataset(("AAA", "BBB"), n=300)
    starts = pd.bdate_range("2015-01-02", periods=300)[200::20]  # the five period starts
    path = tmp_path / "s.json"
    records = [
        # direction + confidence: the paper's formula (no entropy: certainty 1)
        {"ticker": "aaa", "date": str(starts[0].date()), "direction": "long", "confidence": 2},
        # with an entropy, the certainty factor shrinks the strength
        {"ticker": "AAA", "date": str(starts[1].date()), "direction": 0, "confidence": 3,
         "entropy": 0.5, "explanation": "why", "key_features": ["rsi_14"], "model": "m-1"},
        # tau directly, on a day inside the period (not its start)
        {"ticker": "AAA", "date": str((starts[2] + pd.offsets.BDay(3)).date()), "tau": -0.25},
        {"ticker": "BBB", "date": str(starts[4].date()), "direction": "SHORT", "tau": -0.1},
    ]  # fmt: skip
    path.write_text(json.dumps(records))
    tables, digest, count = read_import(_cfg(), dataset, path)
    assert count == 4 and len(digest) == 64
    a, b = tables["AAA"], tables["BBB"]
    assert list(a.columns) == COLUMNS and len(a) == len(b) == 5
    assert a["tau"].tolist()[:3] == pytest.approx(
        [tau(1, strength(2, None)), tau(0, strength(3, 0.5)), -0.25]
    )
    assert a.loc[0, "direction"] == 1 and a.loc[1, "direction"] == 0
    assert pd.isna(a.loc[2, "direction"])
    assert a.loc[1, "explanation"] == "why" and a.loc[1, "model"] == "m-1"
    assert json.loads(a.loc[1, "key_features"]) == ["rsi_14"]
    assert a.loc[0, "explanation"] == "imported from s.json"
    assert set(a["provider"]) == {"import"} and set(a["cache_key"]) == {digest}
    assert json.loads(a.loc[0, "settings"]) == {"import_path": str(path), "sha256": digest}
    # periods the file does not cover: no signal, labelled
    assert a["status"].tolist() == ["imported"] * 3 + ["absent"] * 2
    assert a.loc[3, "tau"] == 0.0 and b["status"].tolist()[-1] == "imported"
    assert (a["start"] == starts).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_the_three_formats_give_the_same_tables(tmp_path, suffix):
    dataset = fake_dataset(("AAA", "BBB"), n=300)
    starts = pd.bdate_range("2015-01-02", periods=300)[200::20]
    frame = pd.DataFrame(
        {
            "ticker": ["AAA", "BBB"] * 5,
            "date": np.repeat([str(d.date()) for d in starts], 2),
            "tau": np.linspace(-0.9, 0.9, 10),
        }
    )
    path = tmp_path / f"s{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text(frame.to_json(orient="records"))
    tables, _, count = read_import(_cfg(), dataset, path)
    assert count == 10
    assert tables["AAA"]["tau"].tolist() == pytest.approx(frame["tau"][0::2].tolist())
    assert tables["BBB"]["tau"].tolist() == pytest.approx(frame["tau"][1::2].tolist())
    assert set(tables["AAA"]["status"]) == {"imported"}


def test_the_documented_example_imports_on_the_real_data(workdir, shared_data):
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "strategies.csv"
    result = runner.invoke(
        app,
        [
            "strategies",
            "import",
            str(example),
            "--profile",
            "quick",
            "--data-dir",
            str(shared_data),
        ],
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "AAPL: 3 of" in out and "MSFT: 2 of" in out
    aapl = pd.read_parquet(workdir / "data" / "strategies" / "AAPL.parquet")
    given = aapl[aapl["status"] == "imported"]
    # LONG 3 -> 1, SHORT 2 -> -2/3, tau 0.35 as given
    assert given["tau"].tolist() == pytest.approx([1.0, -2 / 3, 0.35])
    assert given["model"].tolist() == ["my-llm-2025-01", "my-llm-2025-01", "notebook"]


def test_options_before_the_subcommand_are_refused_not_dropped(workdir):
    path = write_csv(workdir, GOOD)
    result = runner.invoke(app, ["strategies", "--tickers", "AAPL", "import", str(path)])
    assert result.exit_code == ConfigError.exit_code
    assert "put the options after `strategies import` (given before it: --tickers)" in (
        " ".join(result.output.split())
    )
