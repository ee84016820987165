"""Shared fixtures: the real market data in ../shared/data and an isolated working folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder; tests skip with a reason when it is absent (a user's clone).

    CI sets REWTS_REQUIRE_SHARED_DATA=1, which turns the skip into a failure.
    """
    if not (SHARED_DATA / "manifest.json").is_file():
        if os.environ.get("REWTS_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"real market data missing at {SHARED_DATA} (required in CI)")
        pytest.skip(f"real market data not found at {SHARED_DATA} (only in the project workspace)")
    return SHARED_DATA


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, with no API keys from the developer's environment."""
    monkeypatch.chdir(tmp_path)
    for var in (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "DEEPSEEK_API_KEY",
        "OPENAI_API_KEY",
        "REWTS_DATA_DIR",
    ):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def one_thread():
    """One torch intra-op thread during the test (training's setting), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
