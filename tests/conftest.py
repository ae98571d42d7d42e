"""Shared fixtures: the real data in ../shared/data and an isolated Prefect home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SITEWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCH = SHARED / "benchmark"
REPORTS = SHARED / "reports"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (BENCH / "dev-2010-a" / "case.json").exists():
        pytest.fail(f"the shared test data is missing at {SHARED} (set SITEWATCH_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def case_2010(shared) -> Path:
    return BENCH / "dev-2010-a"


@pytest.fixture(scope="session")
def case_2011(shared) -> Path:
    return BENCH / "dev-2011-b"


@pytest.fixture(scope="session", autouse=True)
def _prefect_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    yield
