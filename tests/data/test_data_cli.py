"""`rewts data` through the CLI runner, in an empty folder."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rewts.cli import app

runner = CliRunner()
SIX = ["AAPL", "AMZN", "GOOGL", "META", "MSFT", "TSLA"]


def test_synthetic_from_an_empty_folder_then_loaded_then_refreshed(workdir):
    result = runner.invoke(app, ["data", "--source", "synthetic", "--start", "2019-01-01"])
    assert result.exit_code == 0, result.output
    assert "data: source synthetic" in result.stderr
    for ticker in SIX:
        assert ticker in result.stdout
    for header in ("ticker", "source", "first", "last", "rows", "gaps", "features"):
        assert header in result.stdout
    assert "built" in result.stdout
    manifest = json.loads((workdir / "data" / "processed" / "manifest.json").read_text())
    assert list(manifest["tickers"]) == SIX and manifest["source"] == "synthetic"

    again = runner.invoke(app, ["data", "--source", "synthetic", "--start", "2019-01-01"])
    assert again.exit_code == 0 and "inputs unchanged" in again.stderr
    assert "loaded (unchanged)" in again.stdout

    refreshed = runner.invoke(
        app, ["data", "--source", "synthetic", "--start", "2019-01-01", "--refresh"]
    )
    assert refreshed.exit_code == 0 and "refresh requested" in refreshed.stderr


def test_csv_folder_of_the_shared_data(workdir, shared_data):
    result = runner.invoke(app, ["data", "--data-dir", str(shared_data), "--tickers", "AAPL,MSFT"])
    assert result.exit_code == 0, result.output
    assert "data: source csv" in result.stderr
    assert "AAPL" in result.stdout and "2465" in result.stdout  # 200 warm-up + 2265 days


def test_bad_input_is_one_line_with_the_data_exit_code(workdir, tmp_path):
    folder = tmp_path / "prices"
    folder.mkdir()
    (folder / "AAPL.csv").write_text(
        "date,open,high,low,close,adj_close,volume\n2020-01-02,1,1,1,x,1,1\n"
    )
    result = runner.invoke(app, ["data", "--data-dir", str(folder), "--tickers", "AAPL"])
    assert result.exit_code == 3
    assert "AAPL.csv, line 2: close is 'x'" in result.stderr
    assert "Traceback" not in result.output
