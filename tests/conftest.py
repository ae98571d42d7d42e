"""Shared fixtures: the real data in ../shared/data and an isolated Prefect home."""

from __future__ import annotations

import os
import re
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


def _excel_value(text: str):
    """What Excel makes of a CSV cell it opens: ISO dates become date cells, plain numbers become
    numbers (a leading zero or ``+`` stays text, as Excel keeps a phone number it is told is text)."""
    import re
    from datetime import datetime

    t = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?", t):
        try:
            return datetime.fromisoformat(t)
        except ValueError:
            return text
    if re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?", t):
        return float(t)
    return text


@pytest.fixture
def as_workbook():
    """Save rows (a CSV file or lists of cells) as an Excel workbook the way Excel would after
    opening them: typed cells; ``extra`` sheets (name → rows) added after the first."""
    import csv

    import openpyxl

    def save(rows, path: Path, extra: dict | None = None, typed: bool = True) -> Path:
        if isinstance(rows, Path):
            with rows.open(encoding="utf-8-sig", newline="") as fh:
                head = fh.readline()
                fh.seek(0)
                rows = list(csv.reader(fh, delimiter=";" if head.count(";") > head.count(",") else ","))
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.title = "reports"
        for k, row in enumerate(rows):
            sheet.append([_excel_value(c) if typed and k and isinstance(c, str) else c for c in row])
        for name, more in (extra or {}).items():
            other = book.create_sheet(name)
            for row in more:
                other.append(row)
        book.save(path)
        return path

    return save


def page_text(html: str) -> str:
    """A map page as its scripts hand it to the browser: folium writes each layer's GeoJSON (its
    popups and tooltips with it) as ASCII JSON, with ``<``, ``>``, ``&``, ``'`` and every
    non-ASCII letter as ``\\uXXXX``; decoded here, so a test reads what Leaflet will show."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), html)


def read_page(path) -> str:
    """:func:`page_text` of a written map page."""
    return page_text(Path(path).read_text(encoding="utf-8"))
