"""Annotations: append-only, concurrent, and feeding back into what is alerted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from shapely import wkt
from shapely.geometry import box

from change_detection.synthetic import add_disturbance, add_recurring_bare_field, box_mask, synthetic_series
from pipelines.review import (
    annotate, apply_feedback, calibrate, export_labelled, history, list_detections, suppressed_by, suppression_zones,
)
from pipelines.store import Store
from pipelines.weekly import run_period
from sites import Site
from sites.geo import to_crs
from conftest import read_page


class SyntheticProvider:
    """Serves one constructed series, whatever the request (the grid is the site's)."""

    name = "synthetic"

    def __init__(self, ds):
        self.ds = ds.assign_coords(item_id=("time", [f"syn-{i}" for i in range(ds.sizes["time"])]),
                                   platform=("time", ["synthetic"] * ds.sizes["time"]))

    def load(self, request):
        return self.ds.sel(time=slice(request.start, request.end))


@pytest.fixture()
def scene(tmp_path):
    ds = synthetic_series(ny=30, nx=30, seed=21)
    field = box_mask(ds, 3, 10, 3, 10)
    dig = box_mask(ds, 18, 24, 18, 24)
    fresh = add_recurring_bare_field(ds.sel(time=slice("2011-01-01", None)), field, doy_start=130, length_days=60)
    import xarray as xr

    ds = xr.concat([ds.sel(time=slice(None, "2010-12-31")), fresh], "time")
    ds.attrs = synthetic_series(ny=2, nx=2).attrs
    ds = add_disturbance(ds, dig, "2011-07-20")
    x, y = ds.x.values, ds.y.values
    inner = box(x[1], y[-2], x[-2], y[1])  # the site: most of the grid; the rest is reference ring
    site = Site("SYN-1", "Synthetic barrows", to_crs(inner, 32613, 4326), 0.0, "restricted", "Test valley")
    return ds, site, field, dig, Store(str(tmp_path / "sw.db")), tmp_path


def _ids(out):
    return {f["properties"]["detection_id"] for f in json.loads((out / "detections.geojson").read_text())["features"]}


def _field_pack(store, ds, site, out):
    """A run's field pack CSV and its rows, to fill in as a ranger would."""
    import csv

    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    pack = out / "field" / "field_pack.csv"
    return pack, list(csv.DictReader(pack.open(encoding="utf-8")))


def _write_pack(pack, rows):
    import csv

    with pack.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_annotations_are_append_only_with_author_and_time(scene):
    ds, site, field, dig, store, tmp = scene
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-07-10", tmp / "o")
    det = store.detections().detection_id.iloc[0]
    annotate(store, det, "unsure", "Dr. Enkhtuya")
    annotate(store, det, "agriculture", "Dr. Batbayar", note="ploughed every May")
    h = history(store, det)
    assert [a["label"] for a in h] == ["unsure", "agriculture"]
    assert [a["author"] for a in h] == ["Dr. Enkhtuya", "Dr. Batbayar"] and all(a["created_at"] for a in h)
    assert list_detections(store).set_index("detection_id").loc[det, "label"] == "agriculture"
    assert store.detections().set_index("detection_id").status[det] == "dismissed"
    with pytest.raises(ValueError, match="label must be one of"):
        annotate(store, det, "aliens", "x")
    with pytest.raises(ValueError, match="no detection"):
        annotate(store, "nope", "looting", "x")


def test_two_concurrent_annotators_lose_nothing(scene):
    ds, site, field, dig, store, tmp = scene
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-07-10", tmp / "o")
    det = store.detections().detection_id.iloc[0]
    code = ("import sys; from pipelines.store import Store; from pipelines.review import annotate\n"
            "s = Store(sys.argv[1])\n"
            "for i in range(40): annotate(s, sys.argv[2], 'unsure', sys.argv[3], note=str(i))\n")
    repo = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", code, store.url, det, who], cwd=repo)
             for who in ("annotator-a", "annotator-b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    h = history(store, det)
    assert len(h) == 80
    assert sorted(int(a["note"]) for a in h if a["author"] == "annotator-a") == list(range(40))
    assert sorted(int(a["note"]) for a in h if a["author"] == "annotator-b") == list(range(40))


def test_annotated_false_positive_not_realerted_but_new_dig_is(scene):
    ds, site, field, dig, store, tmp = scene
    prov = SyntheticProvider(ds)
    run_period(store, [site], prov, "2011-03-01", "2011-07-10", tmp / "w1")
    first = store.detections()
    assert len(first) == 1  # the field, bared for the first time this year
    field_det = first.detection_id.iloc[0]
    annotate(store, field_det, "agriculture", "archaeologist")
    # the following weeks: the field is still bare, and digging starts elsewhere on the site
    for end in ("2011-07-17", "2011-07-24", "2011-07-31", "2011-08-07", "2011-08-14"):
        run_period(store, [site], prov, str((pd.Timestamp(end) - pd.Timedelta(days=6)).date()), end, tmp / end)
    last = tmp / "2011-08-14"
    shown = _ids(last)
    assert field_det not in shown
    dig_dets = [i for i in shown if i != field_det]
    assert dig_dets, "the new disturbance at the same site must still be alerted"
    summary = json.loads((last / "summary.json").read_text())
    assert summary["annotations"]["by_label"] == {"agriculture": 1}
    html = read_page(last / "map.html")
    assert "Reviews and field verdicts" in html and f"{field_det}: agriculture" in html


def test_suppression_zone_matches_same_place_and_season_only(scene):
    ds, site, field, dig, store, tmp = scene
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-07-10", tmp / "o")
    r = store.detections().iloc[0]
    annotate(store, r.detection_id, "agriculture", "a")
    zones = suppression_zones(store)
    from shapely import wkt

    geom = wkt.loads(r.geometry_wkt)
    same = pd.Timestamp(r.first_seen) + pd.DateOffset(years=1)
    assert suppressed_by(geom, same.date(), zones) is not None
    assert suppressed_by(geom, (same + pd.Timedelta(days=120)).date(), zones) is None  # other season
    assert suppressed_by(geom.centroid.buffer(0.003), same.date(), zones) is None  # mostly elsewhere
    # the ground, not the site: a neighbour (or the other half of a split site) that sees it gets the zone
    from change_detection import Detection

    ts = pd.Timestamp(same.date())
    store.upsert_sites([Site("NEXT", "Neighbour", geom.buffer(0.002))])
    store.upsert_detections([Detection("NEXT-1", "NEXT", geom, "EPSG:4326", ts, ts, ts, 0.6, "medium", 900.0, 2,
                                       "vegetation_loss", {})], "run-2")
    assert apply_feedback(store, ["NEXT-1"]) == [("NEXT-1", f"repeats {r.detection_id} (agriculture) at the same place "
                                                              "and season")]


def test_calibrate_and_export_labelled(scene):
    ds, site, field, dig, store, tmp = scene
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", tmp / "o")
    ids = list(store.detections().detection_id)
    assert len(ids) >= 2
    for i in ids:
        annotate(store, i, "agriculture", "a")
    annotate(store, ids[0], "looting", "b")
    res = calibrate(store, min_annotations=2)
    assert site.site_id in res and res[site.site_id]["threshold"] > 3.0
    assert store.site_thresholds()[site.site_id] == res[site.site_id]["threshold"]
    path = export_labelled(store, tmp / "labels")
    fc = json.loads(path.read_text())
    assert {f["properties"]["detection_id"] for f in fc["features"]} == set(ids)
    assert any(f["properties"]["chips"] for f in fc["features"])
    assert all((tmp / "labels" / p).exists() for f in fc["features"] for p in f["properties"]["chips"].values())
    assert fc["access_level"] == "restricted" and not any(f["properties"]["location_generalised"] for f in fc["features"])
    # a public export (and any export below the site's sensitivity) carries no outline and no chip
    from sitewatch.cli import main

    assert main(["export-labels", "--out", str(tmp / "public"), "--access", "public", "--db", store.url]) == 0
    public = json.loads((tmp / "public" / "labels.geojson").read_text())
    assert public["access_level"] == "public" and len(public["features"]) == len(ids)
    for f in public["features"]:
        assert f["geometry"]["type"] == "Point" and f["properties"]["location_generalised"]
        assert f["properties"]["chips"] == {}
    assert not list((tmp / "public" / "chips").iterdir())
    # the same folder as the restricted export, rewritten at public: its chips do not stay behind
    assert main(["export-labels", "--out", str(tmp / "labels"), "--access", "public", "--db", store.url]) == 0
    assert json.loads(path.read_text())["access_level"] == "public"
    assert not [p for p in (tmp / "labels").rglob("*.png")]


def test_provisional_detection_withdrawn_when_next_look_is_calm(tmp_path):
    from change_detection.synthetic import set_clouds

    ds = synthetic_series(ny=30, nx=30, seed=22)
    times = pd.DatetimeIndex(ds.time.values)
    cloud_day = times[times >= "2011-08-01"][0]
    ds = set_clouds(ds, str(cloud_day.date()), box_mask(ds, 8, 18, 8, 18), flagged=False)  # missed by the mask
    x, y = ds.x.values, ds.y.values
    site = Site("SYN-2", "Synthetic tell", to_crs(box(x[1], y[-2], x[-2], y[1]), 32613, 4326), 0.0, "restricted", "")
    store, provider = Store(str(tmp_path / "sw.db")), SyntheticProvider(ds)
    monday = cloud_day - pd.Timedelta(days=cloud_day.day_of_week)
    run_period(store, [site], provider, "2011-03-01", str((monday + pd.Timedelta(days=6)).date()), tmp_path / "a")
    first = store.detections()
    assert len(first) == 1 and first.n_looks.iloc[0] == 1 and first.confidence.iloc[0] == "low"
    assert _ids(tmp_path / "a") == {first.detection_id.iloc[0]}  # on this week's map, as provisional
    nxt = monday + pd.Timedelta(days=7)
    run_period(store, [site], provider, str(nxt.date()), str((nxt + pd.Timedelta(days=6)).date()), tmp_path / "b")
    after = store.detections()
    assert after.status.tolist() == ["withdrawn"]  # the next clear look was calm
    assert _ids(tmp_path / "b") == set()


def test_site_ids_with_slashes_and_quotes_stay_inside_the_output(scene):
    """A registry may write ids like ``MN/ARK 12``; a hostile one carries quotes and markup.  Every
    file named after a detection stays in its folder, and the swipe link cannot leave its attribute."""
    ds, site, field, dig, store, tmp = scene
    hostile = Site("../MN/ARK 12' onmouseover='alert(1)", site.name, site.geometry, 0.0, "restricted", "Test valley")
    out = tmp / "o"
    run_period(store, [hostile], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    assert store.detections().detection_id.str.startswith("../MN/ARK").all()
    written = [p for p in tmp.rglob("*") if p.is_file()]
    assert all(out in p.parents or p.parent == tmp for p in written)  # nothing escaped the output folder
    for folder in ("chips", "swipe", "field/sheets"):
        names = [p.name for p in (out / folder).iterdir()]
        assert names and all(n.startswith("_MN_ARK_12") for n in names), (folder, names)
    html = read_page(out / "map.html")
    assert "onmouseover='alert" not in html and "href='swipe/_MN_ARK_12_" in html
    assert all((out / "swipe" / n).exists() for n in re.findall(r"href='swipe/([^']+)'", html))


def test_field_verdicts_come_back_in_the_field_pack_csv(scene):
    """The ranger fills in the field pack's CSV on patrol; importing it records each verdict as an
    annotation by the ranger, once, and rejects what cannot be a verdict, with its reason."""
    import csv

    from pipelines.review import import_verdicts
    from reports.ingest import write_rejected

    ds, site, field, dig, store, tmp = scene
    out = tmp / "o"
    pack, rows = _field_pack(store, ds, site, out)
    assert rows and all(r["verdict"] == r["checked_by"] == "" for r in rows)  # empty, to fill in
    det = rows[0]["detection_id"]
    first = store.detections().set_index("detection_id").first_seen[det]
    before = str((pd.Timestamp(first) - pd.Timedelta(days=5)).date())
    after = str((pd.Timestamp(first) + pd.Timedelta(days=20)).date())
    filled = [
        {**rows[0], "verdict": "Confirmed looting", "checked_on": after, "checked_by": "Ranger Bold",
         "field_note": "<b>6 fresh pits</b>, photos 112-118, herder saw a truck (+976 9911 2233)"},
        {**rows[0], "verdict": "looted?", "checked_by": "Ranger Bold"},
        {**rows[0], "verdict": "nothing found", "checked_by": ""},
        {**rows[0], "verdict": "nothing found", "checked_by": "Ranger Bold", "checked_on": before},
        {**rows[0], "detection_id": "SYN-1-20990101-000000", "verdict": "nothing found", "checked_by": "Ranger Bold"},
        *rows[1:],  # not visited: left blank
    ]
    _write_pack(pack, filled)
    res = import_verdicts(store, pack)
    assert res.recorded == [(2, det, "looting")] and res.blank == len(rows) - 1 and res.unchanged == 0
    reasons = {n: why for n, why, _ in res.rejected}
    assert "verdict 'looted?' is not one of" in reasons[3]
    assert "checked_by is empty" in reasons[4]
    assert f"before the detection was first seen ({first})" in reasons[5]
    assert "no detection 'SYN-1-20990101-000000'" in reasons[6]
    (a,) = history(store, det)
    assert (a["label"], a["author"]) == ("looting", "Ranger Bold")
    assert a["note"] == f"field check on {after}: <b>6 fresh pits</b>, photos 112-118, herder saw a truck ([withheld])"
    assert store.detections().set_index("detection_id").status[det] == "confirmed"
    again = import_verdicts(store, pack)  # the same file handed in twice adds nothing
    assert again.recorded == [] and again.unchanged == 1 and len(history(store, det)) == 1
    kept = list(csv.DictReader(write_rejected(res, tmp / "rej.csv").open(encoding="utf-8")))
    assert [int(r["row"]) for r in kept] == [3, 4, 5, 6]
    with pack.open("a", newline="", encoding="utf-8") as fh:  # a note with its own comma, unquoted
        fh.write(",".join([*(rows[0][k] for k in list(rows[0])[:-4]), "nothing found", "", "Ranger Bold",
                           "dry ground", " no pits", " herder at +976 9911 2244"]) + "\n")
    spilled = import_verdicts(store, pack)
    assert spilled.rejected[-1][0] == len(filled) + 2 and "2 cell(s) more than the header" in spilled.rejected[-1][1]
    assert "9911" not in str(spilled.rejected[-1][2])  # the note's spill-over is scrubbed too
    with pytest.raises(ValueError, match="no detection_id column"):
        (tmp / "other.csv").write_text("id,verdict\nx,nothing found\n", encoding="utf-8")
        import_verdicts(store, tmp / "other.csv")


def test_a_field_pack_excel_saved_with_day_first_dates(scene):
    """Excel in a day-first locale rewrites the pack's ISO dates as 15/06/2011 when it saves the
    CSV, and the ranger types the visit's day the same way (03/09/2011).  The pack's own dates
    show the order, so the visit is read as 3 September; before, it was refused as ambiguous."""
    from pipelines.review import import_verdicts

    ds, site, field, dig, store, tmp = scene
    pack, rows = _field_pack(store, ds, site, tmp / "o")
    det = rows[0]["detection_id"]
    first = pd.Timestamp(store.detections().set_index("detection_id").first_seen[det]).date()
    visit = next(first + pd.Timedelta(days=n) for n in range(1, 60)
                 if (first + pd.Timedelta(days=n)).day <= 12 and (first + pd.Timedelta(days=n)).day != first.month)
    visit = pd.Timestamp(visit).date()

    def local(iso):  # as Excel writes a date in day-first settings
        return pd.Timestamp(iso).strftime("%d/%m/%Y") if iso else iso

    resaved = [{**r, "first_seen": local(r["first_seen"])} for r in rows]
    assert any(int(r["first_seen"][:2]) > 12 for r in resaved)  # the order shows
    resaved[0].update(verdict="nothing found", checked_by="Ranger Bold", checked_on=visit.strftime("%d/%m/%Y"))
    _write_pack(pack, resaved)
    res = import_verdicts(store, pack)
    assert res.recorded == [(2, det, "no change")] and not res.rejected
    assert res.notes and "read day-first" in res.notes[0]
    assert history(store, det)[-1]["note"] == f"field check on {visit.isoformat()}"


def test_field_verdicts_come_back_in_a_workbook(scene, as_workbook):
    """The ranger's laptop opened the pack's CSV in Excel and saved it as a workbook: the visit's
    day is a date cell, coordinates are numbers.  Its verdict is recorded as from the CSV, and
    the same verdict handed in again as CSV is not recorded twice."""
    import csv

    from pipelines.review import import_verdicts

    ds, site, field, dig, store, tmp = scene
    out = tmp / "o"
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    pack = out / "field" / "field_pack.csv"
    with pack.open(encoding="utf-8", newline="") as fh:
        cells = list(csv.reader(fh))
    header = cells[0]
    det = cells[1][header.index("detection_id")]
    first = store.detections().set_index("detection_id").first_seen[det]
    visit = str((pd.Timestamp(first) + pd.Timedelta(days=9)).date())
    for name, value in (("verdict", "Confirmed looting"), ("checked_on", visit), ("checked_by", "Ranger Bold"),
                        ("field_note", "4 pits, herder +976 9911 2233")):
        cells[1][header.index(name)] = value
    book = as_workbook(cells, tmp / "field_pack.xlsx")
    from openpyxl import load_workbook

    assert load_workbook(book).active.cell(2, header.index("checked_on") + 1).is_date
    res = import_verdicts(store, book)
    assert res.recorded == [(2, det, "looting")] and not res.rejected and res.blank == len(cells) - 2
    (a,) = history(store, det)
    assert (a["author"], a["note"]) == ("Ranger Bold", f"field check on {visit}: 4 pits, herder [withheld]")
    with pack.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(cells)
    assert import_verdicts(store, pack).unchanged == 1 and len(history(store, det)) == 1


def test_the_pack_workbook_offers_the_verdicts_and_comes_back(scene):
    """The run writes field_pack.xlsx beside the CSV: the same stops, a drop-down of the three
    field verdicts, date cells for first_seen and checked_on.  A ranger picks a verdict and types
    the visit's day into it (a date cell, whatever the laptop's locale); the next run keeps the
    filled-in workbook, and its verdict is recorded."""
    import csv

    from openpyxl import load_workbook

    from pipelines.review import FIELD_VERDICTS, import_verdicts

    ds, site, field, dig, store, tmp = scene
    out = tmp / "o"
    pack, rows = _field_pack(store, ds, site, out)
    book_path = out / "field" / "field_pack.xlsx"
    book = load_workbook(book_path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    assert header == list(csv.DictReader(pack.open(encoding="utf-8")).fieldnames) and len(book.worksheets) == 1
    col = {name: i + 1 for i, name in enumerate(header)}
    assert [sheet.cell(r + 2, col["detection_id"]).value for r in range(len(rows))] == [r["detection_id"] for r in rows]
    assert [round(sheet.cell(r + 2, col["lat"]).value, 6) for r in range(len(rows))] == [float(r["lat"]) for r in rows]
    assert sheet.cell(2, col["first_seen"]).is_date and str(sheet.cell(2, col["first_seen"]).value)[:10] == rows[0]["first_seen"]
    checks = {dv.type: dv for dv in sheet.data_validations.dataValidation}
    letter = sheet.cell(1, col["verdict"]).column_letter
    assert str(checks["list"].sqref) == f"{letter}2:{letter}{len(rows) + 1}"
    assert checks["list"].formula1.strip('"').split(",") == list(FIELD_VERDICTS)
    assert str(checks["date"].sqref).startswith(sheet.cell(1, col["checked_on"]).column_letter)

    det = rows[0]["detection_id"]
    visit = (pd.Timestamp(store.detections().set_index("detection_id").first_seen[det]) + pd.Timedelta(days=5)).date()
    sheet.cell(2, col["verdict"], "nothing found")
    sheet.cell(2, col["checked_on"], visit)
    sheet.cell(2, col["checked_by"], "Ranger Saraa")
    book.save(book_path)
    # the next run into the folder keeps the filled-in workbook, as it keeps a filled-in CSV
    _, summary = run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    (kept,) = summary["kept_edited"]
    assert kept.startswith(str(out / "field" / "field_pack.edited-")) and kept.endswith(".xlsx")
    res = import_verdicts(store, kept)
    assert res.recorded == [(2, det, "no change")] and not res.rejected and res.blank == len(rows) - 1
    (a,) = history(store, det)
    assert (a["author"], a["note"]) == ("Ranger Saraa", f"field check on {visit}")


def test_verdicts_import_on_the_command_line(scene, capsys):
    from sitewatch.cli import main

    ds, site, field, dig, store, tmp = scene
    out = tmp / "o"
    pack, rows = _field_pack(store, ds, site, out)
    rows[0].update(verdict="nothing found", checked_by="Ranger Saraa")
    rows.append({**rows[0], "verdict": "maybe"})
    _write_pack(pack, rows)
    assert main(["verdicts", "import", str(pack), "--db", str(tmp / "sw.db")]) == 0
    said = capsys.readouterr().out
    assert f"{rows[0]['detection_id']} → no change" in said and "1 rejected" in said
    assert (out / "field" / "field_pack.rejected.csv").exists()


def test_a_verdict_on_a_replaced_detection_reaches_the_one_that_replaced_it(tmp_path):
    """A patrol planned on last week's pack reports on an id that this week's run re-dated: the
    verdict lands on the detection that now covers that ground, and the old id stays retired
    (before, it came back as confirmed, beside its successor).  A withdrawn one a ranger confirms
    is back."""
    from shapely.geometry import Point

    from change_detection import Detection

    site = Site("S-7", "Mound field", box(106.9, 47.9, 106.91, 47.91), 50.0, "restricted", "Tuv")
    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([site])

    def det(did, first, where):
        t = pd.Timestamp(first)
        return Detection(did, "S-7", where.buffer(0.0003), "EPSG:4326", t, t, t, 0.8, "medium", 2500.0, 3,
                         "bare_soil_exposure", {"algorithm": "sw-seasonal-1"})

    store.upsert_detections([det("S-7-old", "2011-06-20", Point(106.905, 47.905)),
                             det("S-7-new", "2011-06-04", Point(106.9052, 47.905)),
                             det("S-7-gone", "2011-08-01", Point(106.902, 47.902))], "run-1")
    store.set_status("S-7-old", "superseded")
    store.set_status("S-7-gone", "withdrawn")
    annotate(store, "S-7-old", "confirmed looting", "Ranger Bold", note="6 pits")
    status = store.detections().set_index("detection_id").status
    assert status["S-7-old"] == "superseded" and status["S-7-new"] == "confirmed"
    assert [(a["label"], a["author"], a["note"]) for a in history(store, "S-7-new")] == [
        ("looting", "Ranger Bold", "6 pits (given on S-7-old)")]
    assert [a["label"] for a in history(store, "S-7-old")] == ["looting"]  # its own history keeps it too
    annotate(store, "S-7-gone", "confirmed looting", "Ranger Saraa")
    assert store.detections().set_index("detection_id").status["S-7-gone"] == "confirmed"


def test_a_rerun_into_the_same_folder_leaves_no_file_of_the_last_run(scene):
    """The same folder written again at ``public`` after ``restricted``: the restricted run's chips,
    swipe views and field sheets (exact places) are gone, not left under a public label; files
    sitewatch did not write stay."""
    ds, site, field, dig, store, tmp = scene
    out = tmp / "o"
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    exact = [p for p in (out / "chips", out / "swipe", out / "field" / "sheets") if p.is_dir() and any(p.iterdir())]
    assert len(exact) == 3  # the restricted run wrote what shows the place
    (out / "field" / "route notes.txt").write_text("water at the well", encoding="utf-8")
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out, access="public")
    assert not any(f.is_file() for p in exact if p.exists() for f in p.rglob('*'))
    assert json.loads((out / "summary.json").read_text())["access_level"] == "public"
    assert (out / "field" / "route notes.txt").read_text(encoding="utf-8") == "water at the well"
    left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "field/field_pack.csv" in left and not any(p.startswith(("chips/", "swipe/", "field/sheets/")) for p in left)


def test_verdicts_filled_into_the_folder_survive_the_next_run(scene, capsys):
    """A ranger filled in out/field/field_pack.csv; the next run into out/ keeps that file (renamed,
    and named to the operator) instead of overwriting it, and it still imports.  A run at a lower
    level into that folder is refused before any work, and nothing is deleted."""
    import csv

    from pipelines.outputs import OutputFolder
    from pipelines.review import import_verdicts
    from pipelines.weekly import WEEKLY_OUTPUTS
    from sitewatch.errors import SitewatchError

    ds, site, field, dig, store, tmp = scene
    out = tmp / "o"
    pack, rows = _field_pack(store, ds, site, out)
    rows[0].update(verdict="nothing found", checked_by="Ranger Saraa")
    _write_pack(pack, rows)
    before = sorted(p for p in out.rglob("*") if p.is_file())
    with pytest.raises(SitewatchError, match=r"field/field_pack.csv \(edited after a run at a higher access level"):
        OutputFolder(out, WEEKLY_OUTPUTS, "public", level_file="summary.json").check()
    with pytest.raises(SitewatchError, match="import or move it first"):
        run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out, access="public")
    assert sorted(p for p in out.rglob("*") if p.is_file()) == before
    _, summary = run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    (kept,) = summary["kept_edited"]
    assert kept.startswith(str(out / "field" / "field_pack.edited-")) and kept.endswith(".csv")
    assert all(r["verdict"] == "" for r in csv.DictReader(pack.open(encoding="utf-8")))  # a fresh pack
    assert import_verdicts(store, kept).recorded[0][2] == "no change"
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    assert Path(kept).exists()  # the ranger's file is never deleted by a later run


def test_a_folder_written_before_manifests_is_not_lowered(scene, capsys):
    from pipelines.outputs import MANIFEST
    from sitewatch.errors import SitewatchError

    ds, site, field, dig, store, tmp = scene
    out = tmp / "o"
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    (out / MANIFEST).unlink()  # as an older sitewatch left it
    with pytest.raises(SitewatchError, match=r"holds outputs written at 'restricted' \(by a sitewatch without"):
        run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out, access="public")
    from sitewatch.cli import main

    # the command line refuses before reading the registry or scoring a site
    assert main(["run", "--sites", str(tmp / "nowhere.geojson"), "--start", "2011-09-01", "--end", "2011-09-30",
                 "--out", str(out), "--access", "public", "--db", store.url, "--no-prefect"]) == 2
    assert "holds outputs written at 'restricted'" in capsys.readouterr().err
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out, access="secret")


def test_each_region_keeps_its_own_field_pack(tmp_path):
    """Regions spelt so that their folder names would meet ("Bayan-Ölgii" / "Bayan Ölgii", "Tuv" /
    "TUV" on a Windows or macOS laptop) or that would take the sheets' folder each get a pack of
    their own; before, the second overwrote the first's and its rangers got the other's route."""
    import csv

    from shapely.geometry import Point

    from change_detection import Detection
    from pipelines.weekly import region_folders, write_outputs

    regions = ["Bayan-Ölgii", "Bayan Ölgii", "Tuv", "TUV", "sheets", "Arkhangai"]
    sites, dets = [], []
    for k, region in enumerate(regions):
        c = Point(100.0 + k, 47.0)
        sites.append(Site(f"S-{k}", f"Mound {k}", c.buffer(0.01), 50.0, "restricted", region))
        t = pd.Timestamp("2011-06-01")
        dets.append(Detection(f"S-{k}-d", f"S-{k}", c.buffer(0.0003), "EPSG:4326", t, t, t, 0.8, "medium", 2500.0, 3,
                              "bare_soil_exposure", {"algorithm": "sw-seasonal-1"}))
    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites(sites)
    store.upsert_detections(dets, "run-1")
    folders = region_folders(regions)
    assert folders["Arkhangai"] == "Arkhangai" and len({f.casefold() for f in folders.values()}) == len(regions)
    assert folders["sheets"] != "sheets"
    out = write_outputs(store, sites, [], "2011-06-01", "2011-06-30", tmp_path / "o")
    for k, region in enumerate(regions):
        rows = list(csv.DictReader((out.field_dir / folders[region] / "field_pack.csv").open(encoding="utf-8")))
        assert [r["detection_id"] for r in rows] == [f"S-{k}-d"]


def test_notes_keep_no_contact_and_a_file_imported_twice_is_one_verdict(scene, monkeypatch):
    """An annotation's note loses an informant's e-mail and phone number however it is written
    (`sitewatch annotate --note`, a notebook, a verdict file); a verdict file imported with the
    phone country set and again without it (or the other way round) records its verdict once."""
    from pipelines.review import import_verdicts, same_note

    ds, site, field, dig, store, tmp = scene
    pack, rows = _field_pack(store, ds, site, tmp / "o")
    det = store.detections().detection_id.iloc[0]
    monkeypatch.delenv("SITEWATCH_PHONE_REGION", raising=False)
    annotate(store, det, "unsure", "Dr. Enkhtuya", note="herder Bat (bat@example.mn, +976 9911 2233) saw a truck")
    assert history(store, det)[-1]["note"] == "herder Bat ([withheld], [withheld]) saw a truck"
    rows[0].update(verdict="confirmed looting", checked_by="Ranger Bold", field_note="herder at 9911 2233, 4 pits")
    _write_pack(pack, rows)
    det = rows[0]["detection_id"]
    n = len(history(store, det))
    monkeypatch.setenv("SITEWATCH_PHONE_REGION", "MN")
    assert len(import_verdicts(store, pack).recorded) == 1
    assert history(store, det)[-1]["note"] == "herder at [withheld], 4 pits"
    monkeypatch.delenv("SITEWATCH_PHONE_REGION")
    again = import_verdicts(store, pack)
    assert again.recorded == [] and again.unchanged == 1 and len(history(store, det)) == n + 1
    assert same_note("at [withheld], 4 pits", "at 9911 2233, 4 pits") and same_note("at 9911, 4", "at [withheld], 4")
    assert not same_note("at [withheld], 4 pits", "at 9911 2233, 6 pits") and not same_note("4 pits", "6 pits")


def test_sites_the_satellites_have_not_seen_are_listed_with_their_last_clear_look(scene):
    """Cloud over the site from mid-August: a week in late September is not observed, and the
    summary, its page and the map say when the site was last seen clearly (from the imagery's
    history, not only this week's) and list it among the sites to patrol once that is 32 days or
    more.  When the archive fails, the last observed week recorded in the store answers."""
    from pipelines.weekly import BLIND_DAYS
    from sitewatch.errors import TransientProviderError

    ds, site, field, dig, store, tmp = scene
    cloud_from = pd.Timestamp("2011-08-15")
    cloudy = ds.time >= cloud_from.to_datetime64()
    ds = ds.assign(clear=ds.clear.where(~cloudy, False).where(cloudy, True))
    last = str(pd.Timestamp(ds.time.values[~cloudy.values][-1]).date())
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-08-14", tmp / "before")
    out = tmp / "o"
    run_period(store, [site], SyntheticProvider(ds), "2011-09-19", "2011-09-25", out)
    days = (pd.Timestamp("2011-09-25") - pd.Timestamp(last)).days
    assert days >= BLIND_DAYS
    summary = json.loads((out / "summary.json").read_text())
    (entry,) = summary["not_observed_this_week"]
    assert (entry["last_clear_look"], entry["days_without_clear_look"]) == (last, days)
    assert summary["blind_sites"] == [{"site_id": "SYN-1", "name": site.name, "region": "Test valley",
                                       "last_clear_look": last, "days_without_clear_look": days}]
    assert f"Sites not seen for {BLIND_DAYS} days or more" in (out / "summary.html").read_text()
    assert f"{last} ({days} days before the period" in read_page(out / "map.html")
    run_period(store, [site], SyntheticProvider(ds), "2011-09-19", "2011-09-25", tmp / "public", access="public")
    public = json.loads((tmp / "public" / "summary.json").read_text())  # a restricted site, read at public
    assert public["blind_sites"] == [] and public["blind_sites_not_named"] == 1
    assert public["not_observed_this_week"] == [] and public["not_observed_not_named"] == 1
    assert public["sites_observed_this_week"] == 0
    assert last not in read_page(tmp / "public" / "map.html")
    assert last not in (tmp / "public" / "summary.html").read_text()
    assert "1 site(s) above this output's access level, not named here" in (tmp / "public" / "summary.html").read_text()
    seen_week = json.loads((tmp / "before" / "summary.json").read_text())
    assert seen_week["blind_sites"] == [] and seen_week["not_observed_this_week"] == []
    # a unit whose sites are under monsoon cloud for months lists them only after a longer time
    monsoon = tmp / "monsoon"
    run_period(store, [site], SyntheticProvider(ds), "2011-09-19", "2011-09-25", monsoon, blind_days=days + 1)
    assert json.loads((monsoon / "summary.json").read_text())["blind_sites"] == []
    assert "days or more" not in (monsoon / "summary.html").read_text()

    class Down:
        name = "synthetic"

        def load(self, request):
            raise TransientProviderError("archive down")

    other = Site("SYN-2", "Second mound", site.geometry, 0.0, "restricted", "Test valley")

    def runner(s, provider, since, end, params, state):
        if s.site_id == "SYN-1":
            raise TransientProviderError("archive down")
        from pipelines.weekly import monitor_site

        return monitor_site(s, SyntheticProvider(ds), since, end, params, state)

    run_period(store, [site, other], Down(), "2011-10-03", "2011-10-09", tmp / "down", site_runner=runner)
    blind = {b["site_id"]: b for b in json.loads((tmp / "down" / "summary.json").read_text())["blind_sites"]}
    assert blind["SYN-1"]["last_clear_look"] == f"week {pd.Timestamp(last).strftime('%G-W%V')}"
    assert blind["SYN-1"]["days_without_clear_look"] >= BLIND_DAYS


def test_a_radar_week_writes_the_same_outputs(tmp_path):
    """A week of Sentinel-1 backscatter (no colour bands): the map, field pack and summary as for
    optical imagery; the chips are radar false colour with the VV change beside them, and the
    popup's evidence names the backscatter changes."""
    from change_detection.synthetic import add_sar_change, synthetic_sar_series
    from maps.chips import RADAR_COLOUR

    ds = synthetic_sar_series(ny=40, nx=40, seed=5, end="2011-10-31")
    ds = add_sar_change(ds, box_mask(ds, 20, 27, 20, 27), "2011-07-20", 4.0, 3.0)
    x, y = ds.x.values, ds.y.values
    site = Site("SAR-1", "Radar barrows", to_crs(box(x[2], y[-3], x[-3], y[2]), 32613, 4326), 0.0, "restricted",
                "Test valley")
    store, out = Store(str(tmp_path / "sw.db")), tmp_path / "o"
    _, summary = run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out)
    assert summary["new"] == 1 and summary["statuses"] == {"SAR-1": "ok"}
    (det,) = store.detections().itertuples()
    chips = store.chips(det.detection_id)
    assert chips.colour == RADAR_COLOUR and chips.index_name == "VV change"
    assert "VV dB +" in read_page(out / "map.html") and "VV change" in read_page(out / "map.html")
    assert (out / "field" / "field_pack.gpx").exists() and (out / f"swipe/{det.detection_id}.html").exists()
    from pipelines.review import detection_timeseries  # the notebook's view: VV inside against the site

    series = detection_timeseries(store, det.detection_id, SyntheticProvider(ds)).set_index("date")
    assert list(series.columns) == ["vv_db_inside", "vv_db_site", "difference"]
    assert series.difference[:"2011-07-10"].median() < 1 < 2.5 < series.difference["2011-07-20":].median()


def test_an_open_detection_stays_on_the_map_through_cloud_until_a_verdict(scene):
    """Cloud over the site from mid-August.  The detections found before it stay on a cloudy
    September week's map, in its summary and in its field pack, since nobody has been there yet.
    Before, a week without a clear look emptied all three.  A verdict that dismisses one takes
    it off; an archaeologist's "unsure" keeps it; a year after it was last seen, it goes."""
    import csv

    ds, site, field, dig, store, tmp = scene
    cloudy = ds.time >= pd.Timestamp("2011-08-15").to_datetime64()
    ds = ds.assign(clear=ds.clear.where(~cloudy, False).where(cloudy, True))
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-08-14", tmp / "before")
    found = store.detections()
    assert len(found) >= 2 and set(found.status) == {"open"} and (found.last_seen < "2011-08-15").all()
    out = tmp / "w38"
    run_period(store, [site], SyntheticProvider(ds), "2011-09-19", "2011-09-25", out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sites_observed_this_week"] == 0 and summary["detections_open"] == len(found)
    assert _ids(out) == set(found.detection_id)
    pack = {r["detection_id"] for r in csv.DictReader((out / "field" / "field_pack.csv").open(encoding="utf-8"))}
    assert pack == set(found.detection_id)
    html = read_page(out / "map.html")
    assert all(d in html for d in found.detection_id)

    gone, unsure = found.detection_id.iloc[0], found.detection_id.iloc[1]
    annotate(store, gone, "nothing found", "Ranger Saraa")
    annotate(store, unsure, "unsure", "Dr. Enkhtuya")
    run_period(store, [site], SyntheticProvider(ds), "2011-09-26", "2011-10-02", tmp / "w39")
    assert _ids(tmp / "w39") == set(found.detection_id) - {gone}
    later = tmp / "a-year-on"
    run_period(store, [site], SyntheticProvider(ds), "2012-08-27", "2012-09-02", later)
    assert _ids(later) == set()


def test_a_late_report_corroborates_an_open_detection_not_a_dismissed_one(scene):
    """A herder reports pits five months after the satellites first saw a dig that nobody has
    visited (cloud and snow since): the dig is still there, so the report corroborates it.
    Before, a report more than 90 days after the first sighting, and a detection not seen for
    120 days, were not matched, and each got an errand of its own.  Once a ranger found nothing
    there, the detection is nobody's errand (it was listed "send a ranger" before) and a report
    at its place is news to check."""
    from datetime import date, timedelta

    from pipelines.community import reconcile_store
    from reports.ingest import Report

    ds, site, field, dig, store, tmp = scene
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-08-14", tmp / "o")
    det = store.detections().iloc[0]
    first, last = date.fromisoformat(det.first_seen), date.fromisoformat(det.last_seen)
    seen_on = last + timedelta(days=150)
    assert (seen_on - first).days > 90 and (seen_on - last).days > 120
    c = wkt.loads(det.geometry_wkt).representative_point()
    store.add_reports([Report("rep-late", seen_on, round(c.y, 6), round(c.x, 6), site.site_id, site.name,
                              "fresh pits", "", "", 30.0, "test", 2)])
    week = f"{seen_on.isocalendar()[0]}-W{seen_on.isocalendar()[1]:02d}"
    items = reconcile_store(store, week)
    mine = [it for it in items if it.detection_id == det.detection_id]
    assert [it.outcome for it in mine] == ["corroborated"] and mine[0].report_id == "rep-late"
    annotate(store, det.detection_id, "nothing found", "Ranger Saraa")
    items = reconcile_store(store, week)
    assert not [it for it in items if it.detection_id == det.detection_id]
    assert [it.outcome for it in items if it.report_id == "rep-late"] == ["report_without_detection"]


def test_rangers_write_verdicts_in_the_units_own_words(scene, capsys):
    """The unit sets its own words for the verdicts (sitewatch does not translate them): the pack's
    workbook offers them first in its list, each printed sheet shows them beside the English
    boxes, and a pack filled in with them, in any case, is recorded as the verdicts they stand
    for.  A word that already means something else, or one given for two verdicts, is refused."""
    from openpyxl import load_workbook

    from pipelines.review import import_verdicts, set_verdict_words
    from sitewatch.cli import main

    ds, site, field, dig, store, tmp = scene
    db = store.url.removeprefix("sqlite:///")
    assert main(["verdicts", "words", "Хулгайн ухалт=confirmed looting", "Юу ч олдсонгүй=nothing found",
                 "Газар тариалан=agriculture", "--db", db]) == 0
    assert "Юу ч олдсонгүй\tnothing found" in capsys.readouterr().out
    out = tmp / "o"
    pack, rows = _field_pack(store, ds, site, out)
    sheet = load_workbook(out / "field" / "field_pack.xlsx").active
    (rule,) = [dv for dv in sheet.data_validations.dataValidation if dv.type == "list"]
    assert rule.formula1.strip('"').split(",") == ["Хулгайн ухалт", "Юу ч олдсонгүй", "confirmed looting",
                                                   "other disturbance", "nothing found"]
    printed = (out / "field" / "sheets").glob("*.html")
    assert all("☐ Юу ч олдсонгүй / nothing found" in p.read_text(encoding="utf-8") for p in printed)

    rows[0].update(verdict="юу ч олдсонгүй", checked_by="Ranger Saraa")
    rows[1].update(verdict="газар тариалан", checked_by="Ranger Saraa")
    _write_pack(pack, rows)
    res = import_verdicts(store, pack)
    assert [label for _, _, label in res.recorded] == ["no change", "agriculture"] and not res.rejected
    det = rows[0]["detection_id"]
    annotate(store, det, "Хулгайн ухалт", "Ranger Bold")  # a second visit found it dug after all
    assert history(store, det)[-1]["label"] == "looting"
    with pytest.raises(ValueError, match=r"or the unit's words \('Газар тариалан'"):
        annotate(store, det, "олдсон", "Ranger Bold")
    with pytest.raises(ValueError, match="'nothing found' already means 'no change'"):
        set_verdict_words(store, ["nothing found=confirmed looting"])
    with pytest.raises(ValueError, match="'олдсонгүй' is given for 'nothing found' and for 'looting'"):
        set_verdict_words(store, ["Олдсонгүй=nothing found", "олдсонгүй=looting"])
    assert len(store.verdict_words()) == 3  # a refused set leaves the words as they were
    assert main(["verdicts", "words", "--clear", "--db", db]) == 0 and store.verdict_words() == {}


def test_a_pack_in_mongolian_comes_back_like_an_english_one(scene):
    """``--language mn``: the map, the sheets, the waypoints and "what to check" are in Mongolian;
    the columns, ids and verdicts that ``sitewatch verdicts import`` reads are not, so the pack
    comes back the same."""
    import csv

    import gpxpy

    from pipelines.review import import_verdicts

    ds, site, field, dig, store, tmp = scene
    out = tmp / "mn"
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out, language="mn")
    pack = out / "field" / "field_pack.csv"
    rows = list(csv.DictReader(pack.open(encoding="utf-8")))
    assert rows and all(r["what_to_check"].startswith("шинээр ухсан ул мөр байгаа эсэхийг шалгах (") for r in rows)
    assert list(rows[0])[-4:] == ["verdict", "checked_on", "checked_by", "field_note"]
    gpx = gpxpy.parse((out / "field" / "field_pack.gpx").read_text(encoding="utf-8"))
    assert {w.comment for w in gpx.waypoints} == {r["detection_id"] for r in rows}
    assert all("анх илэрсэн" in w.description for w in gpx.waypoints)
    sheets = sorted((out / "field" / "sheets").glob("*.html"))
    assert len(sheets) == len(rows) and all("Хээрийн шалгалт" in p.read_text(encoding="utf-8") for p in sheets)
    assert "Field check" not in sheets[0].read_text(encoding="utf-8")
    assert "Анх илэрсэн" in read_page(out / "map.html")  # the police map too
    assert "Эрэмбээр жагсаасан илрүүлэлтүүд" in (out / "summary.html").read_text(encoding="utf-8")
    assert json.loads((out / "summary.json").read_text())["ranked"][0]["confidence"] in ("low", "medium", "high")
    swipes = list((out / "swipe").glob("*.html"))
    assert swipes and all("Зүүн: өмнө (" in p.read_text(encoding="utf-8") for p in swipes)
    assert "өмнө/дараа харьцуулах гулсуур" in sheets[0].read_text(encoding="utf-8")  # the chips on the sheet
    rows[0].update(verdict="confirmed looting", checked_by="Ranger Saraa",
                   checked_on=str((pd.Timestamp(rows[0]["first_seen"]) + pd.Timedelta(days=10)).date()))
    _write_pack(pack, rows)
    res = import_verdicts(store, pack)
    assert res.recorded == [(2, rows[0]["detection_id"], "looting")] and not res.rejected


def test_what_sitewatch_says_about_the_data_is_in_the_maps_language_too(scene):
    """A Mongolian map said "corroborated", "treat as confirmed activity …", "all looks cloudy" and
    "4.2 robust sd from normal" in English: the labels were translated, what sitewatch says about
    the data was not.  Now those sentences are in the map's and the summary page's language, and
    stay English in ``summary.json``, which programs read."""
    from reports.ingest import Report

    ds, site, field, dig, store, tmp = scene
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", tmp / "en")
    det = store.detections().iloc[0]
    c = wkt.loads(det.geometry_wkt).representative_point()
    store.add_reports([Report("rep-dig", pd.Timestamp("2011-09-20").date(), round(c.y, 6), round(c.x, 6), site.site_id,
                              site.name, "fresh pits", "", "", 30.0, "test", 2),
                       Report("rep-away", pd.Timestamp("2011-09-21").date(), round(c.y + 0.3, 6), round(c.x, 6), "", "",
                              "a new mound?", "", "", 30.0, "test", 3)])
    annotate(store, det.detection_id, "looting", "Dr. Enkhtuya")  # from the imagery: the verdicts layer
    out = tmp / "mn"
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", out, language="mn")
    page = read_page(out / "map.html")
    for said in ("нотлогдсон", "батлагдсан үйл ажиллагаа гэж үзэх; хээрийн багцтай байгаль хамгаалагч илгээх",
                 "мэдээлэл илрүүлэлтээс", "дурсгалт газраас гадуурх мэдээлэл",
                 "хянах: бүртгэлгүй дурсгалт газар байж магадгүй", "робаст стандарт хазайлт", "улаан +",
                 "хязгаарлагдмал", f"{det.detection_id}: хууль бус ухалт"):
        assert said in page or json.dumps(said)[1:-1] in page, said
    for english in ("treat as confirmed activity", "robust sd from normal", "report outside sites",
                    "days after first seen", "possibly an unregistered site"):
        assert english not in page, english
    summary_page = (out / "summary.html").read_text(encoding="utf-8")
    assert "<td>нотлогдсон</td>" in summary_page and "<td>тийм</td>" in summary_page
    assert ">True<" not in summary_page and ">False<" not in summary_page
    said = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    corroborated = [i for i in said["reconciliation_items"] if i["outcome"] == "corroborated"]
    assert corroborated and corroborated[0]["action"].startswith("treat as confirmed activity")
    assert corroborated[0]["reason"].startswith("report ") and "after first seen" in corroborated[0]["reason"]
    # the English map says it as before, now with what to do about each report
    english = (tmp / "en2")
    run_period(store, [site], SyntheticProvider(ds), "2011-03-01", "2011-09-30", english)
    page = read_page(english / "map.html")
    assert "robust sd from normal" in page and "review: possibly an unregistered site" in page


def test_a_place_a_ranger_checked_leaves_the_field_pack_until_reported_again(scene):
    """A ranger confirms looting at a dig and hands the pack back.  The satellites keep seeing
    the same pits every week; before, the dig stayed the first stop of every week's field pack,
    ranked first in the summary and listed "send a ranger to verify" in the reconciliation.  Now
    it leaves the pack (the map still shows it, with the check) until a community report made
    after the check, or an archaeologist's doubt, asks for another visit.  A dig an archaeologist
    confirmed from the imagery alone stays in the pack, and on the map through weeks it is not
    seen: nobody has been there."""
    import csv
    from datetime import timedelta

    from pipelines.community import reconcile_store
    from pipelines.review import closed_by_check, import_verdicts
    from pipelines.store import open_or_seen
    from reports.ingest import Report

    ds, site, field, dig, store, tmp = scene
    pack, rows = _field_pack(store, ds, site, tmp / "o")
    assert len(rows) >= 2
    frame = store.detections().set_index("detection_id")
    dug = frame.first_seen >= "2011-07-20"  # the dig, seen every week since; the other one is not
    checked, desk = frame.index[dug][0], frame.index[~dug][0]
    rows = sorted(rows, key=lambda r: r["detection_id"] != checked)
    visit = pd.Timestamp(frame.first_seen[checked]) + pd.Timedelta(days=3)
    _write_pack(pack, [{**rows[0], "verdict": "confirmed looting", "checked_on": str(visit.date()),
                        "checked_by": "Ranger Bold", "field_note": "6 fresh pits"}, *rows[1:]])
    assert import_verdicts(store, pack).recorded == [(2, checked, "looting")]
    annotate(store, desk, "looting", "Dr. Enkhtuya")  # from the imagery: nobody went

    def week(start, end, name):
        out = tmp / name
        run_period(store, [site], SyntheticProvider(ds), start, end, out)
        packed = {r["detection_id"] for r in csv.DictReader((out / "field" / "field_pack.csv").open(encoding="utf-8"))}
        return out, packed, json.loads((out / "summary.json").read_text())

    out, packed, summary = week("2011-10-03", "2011-10-09", "w40")
    assert checked in _ids(out) and checked not in packed and desk in packed
    ranked = {r["detection_id"]: r for r in summary["ranked"]}
    assert ranked[checked]["to_visit"] is False and ranked[checked]["field_check"] == f"{visit.date()}: looting"
    assert ranked[desk]["to_visit"] is True and ranked[desk]["field_check"] is None
    assert [r["detection_id"] for r in summary["ranked"]][-1] == checked  # the errands first
    assert summary["detections_to_visit"] == len(packed) == summary["detections_shown"] - 1
    assert f"Checked in the field</th><td>{visit.date()}: looting" in read_page(out / "map.html")
    assert not (out / "field" / "sheets" / f"{checked}.html").exists()

    # a report before the check is matched but asks nothing; the check is nobody's errand
    c = wkt.loads(frame.geometry_wkt[checked]).representative_point()
    reported = (visit + pd.Timedelta(days=30)).date()
    store.add_reports([Report("rep-before", (visit - pd.Timedelta(days=1)).date(), round(c.y, 6), round(c.x, 6),
                              site.site_id, site.name, "pits", "", "", 30.0, "test", 2)])
    items = [i for i in reconcile_store(store, "2011-W40") if i.detection_id == checked]
    assert [(i.outcome, i.action, i.field_check) for i in items] == [
        ("corroborated", "checked in the field since this report; no visit needed", f"{visit.date()}: looting")]
    # a herder reports new pits there a month after the check: back to the rangers
    store.add_reports([Report("rep-after", reported, round(c.y, 6), round(c.x, 6), site.site_id, site.name,
                              "new pits again", "", "", 30.0, "test", 3)])
    assert checked in closed_by_check(store, until=reported - timedelta(days=1))  # a week run before it
    out, packed, summary = week("2011-10-10", "2011-10-16", "w41")
    assert checked in packed
    [again] = [i for i in summary["reconciliation_items"] if i["report_id"] == "rep-after"]
    assert again["action"] == "reported after the last field check: send a ranger to look for new digging"
    assert again["field_check"] == f"{visit.date()}: looting"
    # when the rangers went is patrol knowledge: not in a public output
    pub = tmp / "public"
    run_period(store, [site], SyntheticProvider(ds), "2011-10-10", "2011-10-16", pub, access="public")
    public = json.loads((pub / "summary.json").read_text())
    assert [(r["field_check"], r["to_visit"]) for r in public["ranked"]] == [(None, None)] * len(public["ranked"])
    assert public["detections_to_visit"] == 0  # as its field pack: no exact place in a public output
    assert [i["field_check"] for i in public["reconciliation_items"]] == [None] * len(public["reconciliation_items"])
    for name in ("summary.json", "summary.html", "map.html", "detections.geojson"):
        assert str(visit.date()) not in (pub / name).read_text() and "Checked in the field" not in (pub / name).read_text()
    # while it waits for the ranger it stays on the map in weeks it is not seen, as an open one does
    def shown_unseen(day):
        frame = store.detections()
        return set(frame.detection_id[open_or_seen(frame, day, day, closed_by_check(store, until=day))])

    assert checked in shown_unseen("2012-01-15")
    # the ranger goes again: checked since the report, off the pack once more
    annotate(store, checked, "looting", "Ranger Bold", visited_on=reported + timedelta(days=2))
    assert checked not in week("2011-10-17", "2011-10-23", "w42")[1]
    assert checked not in shown_unseen("2012-01-15") and desk in shown_unseen("2012-01-15")
    # an archaeologist doubts it after the check: another look is asked for
    annotate(store, checked, "unsure", "Dr. Enkhtuya")
    assert checked in week("2011-10-24", "2011-10-30", "w43")[1]
    with pytest.raises(ValueError, match="a day still to come"):
        annotate(store, checked, "looting", "Ranger Bold", visited_on="2999-01-01")
    with pytest.raises(ValueError, match="before the detection was first seen"):
        annotate(store, checked, "looting", "Ranger Bold", visited_on="2011-01-01")


def test_a_store_from_an_earlier_sitewatch_gets_the_new_columns(tmp_path):
    """A store written before field checks and corroboration were kept: opening it adds the
    columns, and a verdict imported then (its note "field check on DAY") counts as a check."""
    import sqlite3

    from shapely.geometry import Point, box

    from change_detection import Detection
    from pipelines.review import field_checks

    path = tmp_path / "old.db"
    store = Store(str(path))
    store.upsert_sites([Site("S-1", "Mound", box(106.9, 47.9, 106.91, 47.91))])
    t = pd.Timestamp("2011-06-10")
    store.upsert_detections([Detection("S-1-1", "S-1", Point(106.905, 47.905).buffer(0.0003), "EPSG:4326", t, t, t,
                                       0.7, "medium", 2500.0, 3, "bare_soil_exposure", {})], "run-1")
    store.engine.dispose()
    with sqlite3.connect(path) as conn:  # the columns as an earlier sitewatch had them: none
        conn.execute("ALTER TABLE annotations DROP COLUMN visited_on")
        conn.execute("ALTER TABLE detections DROP COLUMN corroborated_by")
        conn.execute("INSERT INTO annotations (detection_id, label, note, author, created_at) VALUES "
                     "('S-1-1', 'looting', 'field check on 2011-06-20: pits', 'Ranger Bold', '2011-06-21 10:00:00')")
        conn.execute("INSERT INTO annotations (detection_id, label, note, author, created_at) VALUES "
                     "('S-1-1', 'looting', 'seen on the chips', 'Dr. E', '2011-06-22 10:00:00')")
    store = Store(str(path))
    assert {a["note"]: a["visited_on"] for a in store.annotations()} == {
        "field check on 2011-06-20: pits": "2011-06-20", "seen on the chips": None}
    assert field_checks(store)["S-1-1"]["author"] == "Ranger Bold"
    assert store.detections().corroborated_by.tolist() == [None]


def _renaming_store(tmp_path):
    """A store with site A (a dig reviewed, checked, alerted, reported, calibrated, watched in
    two parts) and an unrelated site Z."""
    from change_detection import Detection
    from pipelines.monitoring import pack_part_states
    from reports.ingest import Report

    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([Site("A", "Mound", box(106.9, 47.9, 106.91, 47.91)),
                        Site("Z", "Cairn", box(107.9, 47.9, 107.91, 47.91))])
    store.monitor_since("A", "2011-05-02")
    t = pd.Timestamp("2011-06-10")
    dig = Detection("A-p1-20110610-abc123", "A", box(106.901, 47.901, 106.902, 47.902), "EPSG:4326", t, t, t, 0.7,
                    "medium", 2500.0, 3, "bare_soil_exposure",
                    {"algorithm": "sw-seasonal-1", "part": "A-p1", "merged_across_seam": ["A-p2-20110611-def456"]})
    store.upsert_detections([dig], "run-1")
    store.add_annotation(dig.detection_id, "looting", "B. Archaeologist", visited_on="2011-06-20")
    store.record_alerts([(dig.detection_id, "medium")], "2011-06-13")
    store.set_site_threshold("A", 4.5, "calibrated")
    store.save_site_state("A", pack_part_states({"A-p1": b"one", "A-p2": b"two"}))
    store.record_site_weeks([{"site_id": "A", "week": "2011-W23", "run_id": "run-1", "status": "observed",
                              "looks": 1, "clear_looks": 1}])
    store.add_reports([Report("r1", pd.Timestamp("2011-06-12").date(), 47.9015, 106.9015, "A", "Mound", "pits", "",
                              "", None, "sms.csv", 2)])
    return store, dig.detection_id


def test_a_rename_moves_everything_the_store_holds_under_the_old_id(tmp_path):
    from pipelines.monitoring import unpack_part_states

    store, dig = _renaming_store(tmp_path)
    [done] = store.rename_sites([("A", "MN-0042")])
    assert (done["merged"], done["detections"], done["reports"], done["id_key"]) == (False, 1, 1, "A")
    now = "MN-0042-p1-20110610-abc123"
    assert [(s.site_id, s.id_key) for s in store.sites()] == [("MN-0042", "A"), ("Z", "")]
    frame = store.detections()
    assert frame.detection_id.tolist() == [now] and frame.site_id.tolist() == ["MN-0042"]
    assert json.loads(frame.evidence[0])["part"] == "MN-0042-p1"
    assert json.loads(frame.evidence[0])["merged_across_seam"] == ["MN-0042-p2-20110611-def456"]
    assert [(a["detection_id"], a["visited_on"]) for a in store.annotations()] == [(now, "2011-06-20")]
    assert store.alerted() == {now: "medium"} and store.site_thresholds() == {"MN-0042": 4.5}
    assert unpack_part_states(store.site_state("MN-0042")) == {"MN-0042-p1": b"one", "MN-0042-p2": b"two"}
    assert store.site_state("A") is None and [w["site_id"] for w in store.site_weeks()] == ["MN-0042"]
    assert [r.site_id for r in store.reports()] == ["MN-0042"]
    assert store.current_id(dig) == now and store.current_id(now) == now
    # the registry, imported again under the new id, keeps the key; a second rename keeps the first id's
    store.upsert_sites([Site("MN-0042", "Mound (national register)", box(106.9, 47.9, 106.91, 47.91))])
    assert store.keyed([Site("MN-0042", "x", box(0, 0, 1, 1))])[0].id_key == "A"
    store.rename_sites([("MN-0042", "MN-0042-A")])
    assert store.current_id(dig) == "MN-0042-A-p1-20110610-abc123" == store.current_id(now)
    assert [(s.site_id, s.id_key) for s in store.sites()][0] == ("MN-0042-A", "A")
    # a site never watched has no digs to keep: its new id is all it needs; one only imported is no merge
    store.upsert_sites([Site("Y", "Cairn (national register)", box(107.9, 47.9, 107.91, 47.91))])
    [done] = store.rename_sites([("Z", "Y")])
    assert (done["merged"], done["id_key"]) == (False, "Y")
    assert [(s.site_id, s.id_key, s.name) for s in store.sites()][1:] == [("Y", "", "Cairn (national register)")]
    # a villager's report still names the site by the code on its old signboard
    from pipelines.community import import_reports_file

    sms = tmp_path / "sms.csv"
    sms.write_text("date,site,comment\n2011-07-01,a,fresh pits\n2011-07-02,MN-0042,more pits\n2011-07-03,B,?\n")
    res, new, _ = import_reports_file(store, sms, policy="drop")
    assert [r.site_id for r in res.accepted] == ["MN-0042-A", "MN-0042-A"] and new == 2
    assert [why for _, why, _ in res.rejected] == ["no coordinates and unknown site name 'B'"]


def test_a_rename_that_cannot_be_made_changes_nothing(tmp_path):
    store, dig = _renaming_store(tmp_path)
    for pairs, why in (([("a", "B")], "no site 'a' in the store \\(did you mean 'A'\\?\\)"),
                       ([("A", "A")], "renamed to itself"),
                       ([("A", "B"), ("A", "C")], "'B' is not in the store; import the registry that holds the "
                                                  "parts first"),
                       ([("A", "B"), ("A", "B")], "listed twice"),
                       ([("A", "N"), ("A", "Z"), ("Z", "Y")], "rename in two steps"),
                       ([("A", "N"), ("A", "M"), ("Z", "M")], "part of a split site and the new id of another"),
                       ([("A", "B"), ("B", "C")], "rename in two steps"),
                       ([("A", " B")], "blanks"),
                       ([("A", "B"), ("nowhere", "C")], "no site 'nowhere'")):
        with pytest.raises(ValueError, match=why):
            store.rename_sites(pairs)
        assert [s.site_id for s in store.sites()] == ["A", "Z"] and store.detections().detection_id.tolist() == [dig]


def test_a_rename_into_a_site_already_watched_keeps_the_longer_watch(tmp_path):
    """The new id was run (from a later week) before the rename: the old site's state and key go
    on, the new id's weeks and threshold stand where both have one, and its own detections stay
    for the next run to supersede."""
    from change_detection import Detection
    from pipelines.monitoring import unpack_part_states

    store, dig = _renaming_store(tmp_path)
    store.upsert_sites([Site("N", "Mound", box(106.9, 47.9, 106.91, 47.91))])
    store.monitor_since("N", "2011-07-04")
    store.save_site_state("N", b"younger")
    store.set_site_threshold("N", 3.0, "calibrated")
    store.record_site_weeks([{"site_id": "N", "week": w, "run_id": "run-2", "status": "observed", "looks": 1,
                              "clear_looks": 1} for w in ("2011-W23", "2011-W27")])
    t = pd.Timestamp("2011-07-05")
    store.upsert_detections([Detection("N-20110705-fff000", "N", box(106.901, 47.901, 106.902, 47.902), "EPSG:4326",
                                       t, t, t, 0.5, "low", 2500.0, 1, "bare_soil_exposure", {})], "run-2")
    [done] = store.rename_sites([("A", "N")])
    assert done["merged"] and done["id_key"] == "A"
    assert [(s.site_id, s.id_key) for s in store.sites()] == [("N", "A"), ("Z", "")]
    assert store.monitor_since("N", "2011-08-01") == "2011-05-02"
    assert unpack_part_states(store.site_state("N")) == {"N-p1": b"one", "N-p2": b"two"}
    assert store.site_thresholds() == {"N": 3.0}
    weeks = sorted((w["week"], w["run_id"]) for w in store.site_weeks())
    assert weeks == [("2011-W23", "run-2"), ("2011-W27", "run-2")]
    assert sorted(store.detections().detection_id) == ["N-20110705-fff000", "N-p1-20110610-abc123"]


def test_a_split_site_gives_each_part_its_digs_reports_and_watch(tmp_path, capsys):
    """The authority splits site A into A-W and A-E (imported with their outlines first): each
    detection goes with its review, check, alert and old id to the part that holds it, each
    report to the part at its place; both parts have A's weeks, epoch and threshold, no state
    (their grids are not A's), and the half listed first on a tie A's key.  A report naming A
    finds the part at its place; without a place it is refused, saying why."""
    from change_detection import Detection
    from pipelines.community import import_reports_file
    from reports.ingest import Report
    from sitewatch.cli import main

    store, dig = _renaming_store(tmp_path)
    t = pd.Timestamp("2011-06-17")
    east = Detection("A-20110617-e00001", "A", box(106.908, 47.908, 106.909, 47.909), "EPSG:4326", t, t, t, 0.6,
                     "medium", 1200.0, 2, "bare_soil_exposure", {})
    store.upsert_detections([east], "run-1")
    store.add_reports([Report("r2", pd.Timestamp("2011-06-18").date(), 47.9085, 106.9085, "A", "Mound", "a bulldozer",
                              "", "", None, "sms.csv", 3)])
    store.upsert_sites([Site("A-W", "Mound west", box(106.9, 47.9, 106.905, 47.91)),
                        Site("A-E", "Mound east", box(106.905, 47.9, 106.91, 47.91))])
    db = str(tmp_path / "sw.db")
    capsys.readouterr()
    assert main(["sites", "rename", "A", "A-W", "A-E", "--db", db]) == 0
    assert ("A split into A-W, A-E: 2 detection(s) moved (1 to A-W, 1 to A-E), 2 report(s) moved"
            in capsys.readouterr().out)
    west_id, east_id = "A-W" + dig[1:], "A-E-20110617-e00001"
    assert [(s.site_id, s.id_key) for s in store.sites()] == [("A-E", ""), ("A-W", "A"), ("Z", "")]
    assert store.detections().set_index("detection_id").site_id.to_dict() == {west_id: "A-W", east_id: "A-E"}
    assert [(a["detection_id"], a["visited_on"]) for a in store.annotations()] == [(west_id, "2011-06-20")]
    assert store.alerted() == {west_id: "medium"} and store.current_id(dig) == west_id
    assert store.current_id("A-20110617-e00001") == east_id
    assert {r.report_id: r.site_id for r in store.reports()} == {"r1": "A-W", "r2": "A-E"}
    assert sorted((w["site_id"], w["week"]) for w in store.site_weeks()) == [("A-E", "2011-W23"), ("A-W", "2011-W23")]
    assert store.site_thresholds() == {"A-E": 4.5, "A-W": 4.5}
    assert store.site_state("A-W") is None and store.site_state("A-E") is None and store.site_state("A") is None
    assert store.monitor_since("A-E", "2011-09-05") == "2011-05-02" == store.monitor_since("A-W", "2011-09-05")
    assert store.former_site_ids() == {"A": ["A-E", "A-W"]}
    sms = tmp_path / "sms.csv"
    sms.write_text("date,site,lat,lon,comment\n2011-07-01,A,47.9085,106.9085,fresh pits\n"
                   "2011-07-02,A,,,more pits\n")
    res, new, _ = import_reports_file(store, sms, policy="drop")
    assert [r.site_id for r in res.accepted] == ["A-E"] and new == 1
    assert [why for _, why, _ in res.rejected] == [
        "no coordinates, and site 'A' was split into A-E, A-W; give the coordinates or the new site_id"]
    assert main(["sites", "list", "--db", db]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["A-E\trestricted\t50 m\tMound east\tformerly A",
                                                        "A-W\trestricted\t50 m\tMound west\tformerly A"]


def test_a_split_site_may_keep_its_id_for_one_part(tmp_path):
    """A is redrawn as its western half and the eastern half becomes A-E: A keeps its digs
    there, its key and its state (the next run finds its grid changed and recomputes); A-E takes
    the dig on its ground and A's weeks.  A split into parts the store lacks changes nothing."""
    from change_detection import Detection

    store, dig = _renaming_store(tmp_path)
    t = pd.Timestamp("2011-06-17")
    store.upsert_detections([Detection("A-20110617-e00001", "A", box(106.908, 47.908, 106.909, 47.909), "EPSG:4326",
                                       t, t, t, 0.6, "medium", 1200.0, 2, "bare_soil_exposure", {})], "run-1")
    with pytest.raises(ValueError, match="'A-E' is not in the store; import the registry"):
        store.rename_sites([("A", "A"), ("A", "A-E")])
    with pytest.raises(ValueError, match="'Z' lies away from 'A' .not even within its buffer.; is it a part of it"):
        store.rename_sites([("A", "A"), ("A", "Z")])
    assert [s.site_id for s in store.sites()] == ["A", "Z"]
    store.upsert_sites([Site("A", "Mound west", box(106.9, 47.9, 106.905, 47.91)),
                        Site("A-E", "Mound east", box(106.905, 47.9, 106.91, 47.91))])
    [done] = store.rename_sites([("A", "A"), ("A", "A-E")])
    assert (done["parts"], done["heir"]) == ({"A": 1, "A-E": 1}, "A")
    assert [(s.site_id, s.id_key) for s in store.sites()] == [("A", ""), ("A-E", ""), ("Z", "")]
    assert store.detections().set_index("detection_id").site_id.to_dict() == {dig: "A",
                                                                              "A-E-20110617-e00001": "A-E"}
    assert store.site_state("A") is not None and store.site_state("A-E") is None
    assert sorted(w["site_id"] for w in store.site_weeks()) == ["A", "A-E"]
    assert store.former_site_ids() == {} and store.current_id(dig) == dig


def test_a_store_made_before_splits_keeps_its_former_ids(tmp_path):
    """The site_aliases table had one successor per former id (primary key old_id): opened now,
    it is rebuilt with its rows, so a split can give a former id two parts."""
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE site_aliases (old_id VARCHAR PRIMARY KEY, site_id VARCHAR NOT NULL, "
                     "created_at DATETIME)")
        conn.execute("INSERT INTO site_aliases VALUES ('S01-03', 'MN-0042', '2026-11-27 10:00:00')")
    store = Store(str(path))
    assert store.former_site_ids() == {"S01-03": ["MN-0042"]}
    from sqlalchemy import inspect

    assert inspect(store.engine).get_pk_constraint("site_aliases")["constrained_columns"] == ["old_id", "site_id"]


def test_a_companion_store_not_split_shows_its_digs_at_the_part_that_holds_them(tmp_path):
    from change_detection import Detection
    from pipelines.weekly import companion_detections

    store, _ = _renaming_store(tmp_path)
    parts = [Site("A-W", "Mound west", box(106.9, 47.9, 106.905, 47.91)),
             Site("A-E", "Mound east", box(106.905, 47.9, 106.91, 47.91))]
    store.upsert_sites(parts)
    store.rename_sites([("A", "A-W"), ("A", "A-E")])
    radar = Store(f"sqlite:///{tmp_path / 'radar.db'}")
    radar.upsert_sites([Site("A", "Mound", box(106.9, 47.9, 106.91, 47.91))])
    t = pd.Timestamp("2011-06-20")
    radar.upsert_detections([Detection(f"A-20110620-0a0b0{i}", "A", box(x, 47.903, x + 0.001, 47.904), "EPSG:4326",
                                       t, t, t, 0.6, "medium", 1200.0, 2, "bare_soil_exposure", {})
                             for i, x in enumerate((106.901, 106.907))], "r-1")
    shown, said = companion_detections({"radar": radar.url}, parts, "2011-06-26", store.former_site_ids())
    assert sorted((d.detection_id, d.site_id) for d in shown["radar"]) == [("A-20110620-0a0b00", "A-W"),
                                                                           ("A-20110620-0a0b01", "A-E")]
    assert said["radar"]["not_renamed"] == [["A", "A-E"], ["A", "A-W"]]


def test_a_dig_two_sites_see_takes_the_judgement_made_at_either(tmp_path):
    """Two sites whose watched areas share ground each report a dig there: the judgement made on
    one (with the ranger's visit day) is the other's, so it is not sent to the rangers unjudged.
    A dig months later on that ground, one at the same site, or one already judged, is its own."""
    from change_detection import Detection
    from pipelines.review import judged_elsewhere, latest_labels

    store, dig = _renaming_store(tmp_path)  # A's dig, checked in the field on 2011-06-20
    ground = box(106.9012, 47.9012, 106.9025, 47.9025)

    def det(i, site, day):
        t = pd.Timestamp(day)
        return Detection(f"{site}-{day.replace('-', '')}-00000{i}", site, ground, "EPSG:4326", t, t, t, 0.6, "medium",
                         900.0, 2, "bare_soil_exposure", {})

    near, late, own, judged = det(1, "Z", "2011-06-24"), det(2, "Z", "2011-09-30"), det(3, "A", "2011-05-25"), \
        det(4, "Z", "2011-07-20")
    store.upsert_detections([near, late, own, judged], "run-2")
    store.add_annotation(judged.detection_id, "unsure", "C. Archaeologist")
    ids = [near.detection_id, late.detection_id, own.detection_id, judged.detection_id]
    assert judged_elsewhere(store, ids) == [(near.detection_id, dig)]
    carried = latest_labels(store)[near.detection_id]
    assert (carried["label"], carried["author"], carried["visited_on"]) == ("looting", "sitewatch", "2011-06-20")
    assert store.detections().set_index("detection_id").status[near.detection_id] == "confirmed"
    assert judged_elsewhere(store, ids) == []  # judged now: once
    exported = {f["properties"]["detection_id"]: f["properties"] for f in json.loads(
        export_labelled(store, tmp_path / "labels").read_text())["features"]}
    assert {k: (v["label_carried"], v["status"]) for k, v in exported.items()} == {
        dig: (False, "open"), near.detection_id: (True, "confirmed"), judged.detection_id: (False, "open")}
    # the ranger back from A's dig: its check is carried too; a review of the copy itself stands
    store.add_annotation(dig, "looting", "Ranger Bold", "pits filled in", visited_on="2011-07-02")
    assert judged_elsewhere(store, ids) == [(near.detection_id, dig)]
    assert latest_labels(store)[near.detection_id]["visited_on"] == "2011-07-02"
    store.add_annotation(near.detection_id, "unsure", "C. Archaeologist")
    store.add_annotation(dig, "looting", "Ranger Bold", "again", visited_on="2011-07-09")
    assert judged_elsewhere(store, ids) == []


def test_a_dig_two_sites_see_is_one_waypoint():
    """The rangers' pack has one waypoint per dig: of two sites' detections of one ground with
    onsets within the detector's span, the one judged on its own (else the most confident, then
    the larger) stands for the other; one judged on its own stands for itself, as do a dig at the
    same site, one months later and one elsewhere."""
    from types import SimpleNamespace

    from pipelines.review import copies_of_one_dig

    ground = box(106.901, 47.901, 106.902, 47.902)

    def det(i, site, day, confidence="medium", geom=ground):
        return SimpleNamespace(detection_id=f"{site}-{i}", site_id=site, geometry=geom, first_seen=day,
                               confidence=confidence)

    e, w = det(1, "E", "2011-06-04"), det(2, "W", "2011-06-10", "high")
    assert copies_of_one_dig([e, w], own=set()) == {"E-1": "W-2"}  # the more confident stands
    assert copies_of_one_dig([e, w], own={"E-1"}) == {"W-2": "E-1"}  # the one reviewed stands
    assert copies_of_one_dig([e, w], own={"E-1", "W-2"}) == {}  # both reviewed: each its own
    outlines = {"E": box(106.9, 47.9, 106.9015, 47.91), "W": box(106.9015, 47.9, 106.91, 47.91)}
    assert copies_of_one_dig([e, w], own=set(), outlines=outlines) == {"E-1": "W-2"}  # half each: the more confident
    outlines["E"] = box(106.9, 47.9, 106.9018, 47.91)
    assert copies_of_one_dig([e, w], own=set(), outlines=outlines) == {"W-2": "E-1"}  # the dig is E's
    others = [det(3, "E", "2011-06-05"), det(4, "W", "2011-08-30"), det(5, "W", "2011-06-05",
                                                                          geom=box(106.95, 47.9, 106.951, 47.901))]
    assert copies_of_one_dig([e, *others], own=set()) == {}


def test_a_dig_two_sites_see_is_one_errand_in_the_reconciliation(tmp_path):
    """Two sites' detections of one dig, nobody reported: one "send a ranger to verify" row, the
    other site's copy stands behind it (as in the field pack)."""
    from change_detection import Detection
    from pipelines.community import reconcile_store

    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([Site("A", "Mound", box(106.9, 47.9, 106.9055, 47.91)),
                        Site("Z", "Cairn", box(106.9055, 47.9, 106.91, 47.91))])
    ground = box(106.905, 47.905, 106.906, 47.906)
    store.upsert_detections([Detection(i, i[0], ground, "EPSG:4326", pd.Timestamp(day), pd.Timestamp(day),
                                       pd.Timestamp(day), 0.6, conf, 900.0, 2, "bare_soil_exposure", {})
                             for i, day, conf in (("A-20110801-aaa001", "2011-08-01", "high"),
                                                  ("Z-20110803-zzz001", "2011-08-03", "medium"))], "run-2")
    unreported = [i.detection_id for i in reconcile_store(store) if i.outcome == "detection_without_report"]
    assert unreported == ["A-20110801-aaa001"]


def test_renames_are_read_from_a_table(tmp_path, capsys):
    from sitewatch.cli import main

    store, dig = _renaming_store(tmp_path)
    table = tmp_path / "codes.csv"
    table.write_text("old_id,new_id\nA,MN-0042\nZ,MN-0043\n,\n")
    db = str(tmp_path / "sw.db")
    assert main(["sites", "rename", "--from", str(table), "--db", db]) == 0
    assert "2 site(s) renamed" in capsys.readouterr().out
    assert [s.site_id for s in store.sites()] == ["MN-0042", "MN-0043"]
    table.write_text("old_id,new_id\nMN-0042,\n")
    assert main(["sites", "rename", "--from", str(table), "--db", db]) == 2
    assert "row 2: old_id and new_id both need an id" in capsys.readouterr().err
    assert main(["sites", "rename", "MN-0042", "--db", db]) == 2
    assert "OLD NEW" in capsys.readouterr().err


def test_the_parts_of_a_renamed_site_keep_the_key_of_its_first_id():
    from dataclasses import replace

    from sites.split import split_site

    site = Site("MN-0042", "Valley", box(106.0, 47.0, 106.3, 47.1), id_key="S01-03")
    parts = split_site(site, 10.0)
    assert len(parts) > 1 and parts[0].site_id == "MN-0042-p1" and parts[0].id_key == "S01-03-p1"
    assert split_site(replace(site, id_key=""), 10.0)[0].id_key == ""


def test_a_site_under_a_new_id_is_known_by_its_outline(tmp_path):
    """A re-coded registry: which site watched before has which new id is proposed from the
    outlines (shared area over joint area ≥ 0.5), never for a site a run watched together with
    the old one (in one registry), and each new id for one old site only.  A new id a catch-up
    watched over the old one's weeks, in later runs, is proposed."""
    from pipelines.weekly import same_outlines

    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    a, b, c = box(106.90, 47.90, 106.91, 47.91), box(106.95, 47.90, 106.96, 47.91), box(107.0, 47.9, 107.01, 47.91)
    store.upsert_sites([Site("A", "Mound", a), Site("B", "Cairn", b), Site("C", "Wall", c)])
    store.record_site_weeks([{"site_id": k, "week": w, "run_id": "r", "status": "observed", "looks": 1,
                              "clear_looks": 1} for k in ("A", "B", "C") for w in ("2011-W22", "2011-W23")])
    store.record_site_weeks([{"site_id": "C2", "week": "2011-W24", "run_id": "r", "status": "observed", "looks": 1,
                              "clear_looks": 1},
                             {"site_id": "MN-3", "week": "2011-W22", "run_id": "r2", "status": "observed", "looks": 1,
                              "clear_looks": 1}])
    registry = [Site("MN-1", "Mound", box(106.90, 47.90, 106.91, 47.907)),  # A redrawn: 70 % of it
                Site("MN-2", "Mound too", box(106.90, 47.90, 106.91, 47.906)),  # also on A, less alike
                Site("MN-3", "Cairn", box(106.953, 47.90, 106.963, 47.91)),  # B moved by 30 %: IoU 0.54
                Site("C2", "Wall", c),  # C's outline, but watched while C was: another site
                Site("MN-4", "Kiln", box(108.0, 47.9, 108.01, 47.91))]
    assert same_outlines(store, registry) == {"A": ["MN-1"], "B": ["MN-3"]}
    assert same_outlines(store, [Site("MN-5", "x", box(106.956, 47.90, 106.966, 47.91))]) == {}  # IoU 0.25
    # A split in two halves; B and C merged into one outline over both (C's weeks now apart from it)
    halves = [Site("A-W", "Mound west", box(106.90, 47.90, 106.905, 47.91)),
              Site("A-E", "Mound east", box(106.905, 47.90, 106.91, 47.91))]
    both = Site("BC", "Cairn and wall", box(106.95, 47.90, 107.01, 47.91))
    assert same_outlines(store, [*halves, both]) == {"A": ["A-W", "A-E"]}  # B and C cover a third of BC
    store.upsert_sites([Site("C", "Wall", box(106.96, 47.9, 106.97, 47.91))])
    bc = Site("BC", "Cairn and wall", box(106.95, 47.90, 106.97, 47.91))
    assert same_outlines(store, [*halves, bc]) == {"A": ["A-W", "A-E"], "B": ["BC"], "C": ["BC"]}
    from pipelines.weekly import same_outline_lines

    assert same_outline_lines(same_outlines(store, [*halves, bc])) == [
        "  A's outline is that of A-W and A-E together in this registry: if the site was split, `sitewatch sites "
        "rename A A-W A-E` before the next run",
        "  the outlines of B and C together are BC's in this registry: if the sites were merged, `sitewatch sites "
        "rename B BC` and `sitewatch sites rename C BC` before the next run"]


def test_a_companion_store_not_renamed_still_shows_its_digs_and_is_named(tmp_path):
    """The optical store renamed A to MN-0042; the radar deployment's store was forgotten.  The
    optical map still shows the radar's dig there (as MN-0042's), and the run names the store
    to rename; once renamed there too, nothing is said."""
    from change_detection import Detection
    from pipelines.weekly import companion_detections

    store, dig = _renaming_store(tmp_path)
    store.rename_sites([("A", "MN-0042")])
    radar = Store(f"sqlite:///{tmp_path / 'radar.db'}")
    radar.upsert_sites([Site("A", "Mound", box(106.9, 47.9, 106.91, 47.91))])
    t = pd.Timestamp("2011-06-20")
    radar.upsert_detections([Detection("A-20110620-0a0b0c", "A", box(106.903, 47.903, 106.904, 47.904), "EPSG:4326",
                                       t, t, t, 0.6, "medium", 1200.0, 2, "bare_soil_exposure", {})], "r-1")
    sites = [Site("MN-0042", "Mound", box(106.9, 47.9, 106.91, 47.91))]
    shown, said = companion_detections({"radar": radar.url}, sites, "2011-06-26", store.former_site_ids())
    assert [(d.detection_id, d.site_id) for d in shown["radar"]] == [("A-20110620-0a0b0c", "MN-0042")]
    assert said["radar"]["not_renamed"] == [["A", "MN-0042"]]
    radar.rename_sites([("A", "MN-0042")])
    shown, said = companion_detections({"radar": radar.url}, sites, "2011-06-26", store.former_site_ids())
    assert [(d.detection_id, d.site_id) for d in shown["radar"]] == [("MN-0042-20110620-0a0b0c", "MN-0042")]
    assert "not_renamed" not in said["radar"]
