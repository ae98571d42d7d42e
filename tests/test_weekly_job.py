"""The weekly job end to end on a real benchmark case: outputs, store, idempotency."""

from __future__ import annotations

import csv
import json

import gpxpy
import pandas as pd
import pytest
from shapely.geometry import shape

from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import watch_area
from pipelines.store import Store
from pipelines.weekly import run_period, weeks_between
from sites import read_sites
from conftest import read_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def case_run(case_2011, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    meta = json.loads((case_2011 / "case.json").read_text())
    sites = read_sites(case_2011 / "sites.geojson").sites
    store = Store(str(out / "sw.db"))
    provider = LocalStacProvider(case_2011 / "catalog")
    outputs, summary = run_period(store, sites, provider, meta["monitor_start"], meta["monitor_end"], out)
    return meta, sites, store, provider, out, outputs, summary


def test_outputs_have_the_promised_schema(case_run):
    meta, sites, store, provider, out, outputs, summary = case_run
    fc = json.loads(outputs.detections_geojson.read_text())
    assert fc["access_level"] == "restricted"
    assert fc["features"], "the case has four looting events; the job must report something"
    needed = {"detection_id", "site_id", "first_seen", "last_seen", "score", "confidence", "area_m2"}
    for f in fc["features"]:
        p = f["properties"]
        assert needed <= set(p)
        assert 0 <= p["score"] <= 1 and p["confidence"] in ("low", "medium", "high") and p["area_m2"] > 0
        assert meta["monitor_start"] <= p["last_seen"] and p["first_seen"] <= meta["monitor_end"]
    html = read_page(outputs.map_html)
    assert html.count("L.map(") == 1
    assert html.count("robust sd from normal") >= len(fc["features"])  # every popup states its evidence
    s = json.loads(outputs.summary_json.read_text())
    assert s["detections_open"] == len(fc["features"]) and s["sites"] == len(sites)


def test_detections_fall_inside_watched_sites(case_run):
    _, sites, _, _, _, outputs, _ = case_run
    areas = {s.site_id: watch_area(s) for s in sites}
    for f in json.loads(outputs.detections_geojson.read_text())["features"]:
        geom = shape(f["geometry"])
        inside = geom.intersection(areas[f["properties"]["site_id"]]).area / geom.area
        assert inside > 0.5, f"{f['properties']['detection_id']} lies outside its site"


def test_field_pack_lists_the_detections(case_run):
    _, _, _, _, out, outputs, _ = case_run
    n = len(json.loads(outputs.detections_geojson.read_text())["features"])
    gpx = gpxpy.parse((out / "field" / "field_pack.gpx").read_text())
    assert len(gpx.waypoints) == n
    rows = list(csv.DictReader((out / "field" / "field_pack.csv").open()))
    assert len(rows) == n and all(r["mgrs"] for r in rows)


def test_rerun_of_the_same_period_duplicates_nothing(case_run):
    meta, sites, store, provider, out, outputs, summary = case_run
    before = store.detections()
    weeks_before = len(store.site_weeks())
    _, again = run_period(store, sites, provider, meta["monitor_start"], meta["monitor_end"], out)
    after = store.detections()
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, len(before))  # nothing changed: not "updated"
    assert sorted(after.detection_id) == sorted(before.detection_id)
    assert len(store.site_weeks()) == weeks_before == len(sites) * len(weeks_between(meta["monitor_start"], meta["monitor_end"]))
    assert again["acquisitions_new"] == 0  # every acquisition was recorded by the first run
    assert [r["status"] for r in store.runs()] == ["completed", "completed"]


def test_week_by_week_equals_backfill(case_2011, tmp_path):
    meta = json.loads((case_2011 / "case.json").read_text())
    sites = [s for s in read_sites(case_2011 / "sites.geojson").sites if s.site_id in ("S02-04", "S02-05")]
    provider = LocalStacProvider(case_2011 / "catalog")
    back = Store(str(tmp_path / "back.db"))
    run_period(back, sites, provider, meta["monitor_start"], "2011-08-28", tmp_path / "b")
    # The unit starts monitoring on monitor_start, then runs every Monday for the last six weeks.
    weekly = Store(str(tmp_path / "weekly.db"))
    weeks = weeks_between(meta["monitor_start"], "2011-08-28")
    run_period(weekly, sites, provider, meta["monitor_start"], str(weeks[-7][2].date()), tmp_path / "w")
    for _label, monday, sunday in weeks[-6:]:
        run_period(weekly, sites, provider, str(monday.date()), str(sunday.date()), tmp_path / "w")
    cols = ["detection_id", "first_seen", "confirmed_on"]
    b = back.detections()[cols].sort_values("detection_id").reset_index(drop=True)
    w = weekly.detections()[cols].sort_values("detection_id").reset_index(drop=True)
    assert not b.empty
    pd.testing.assert_frame_equal(b, w)


def test_public_export_generalises_everything(case_run, tmp_path):
    meta, sites, store, provider, out, outputs, summary = case_run
    from pipelines.weekly import write_outputs

    pub = write_outputs(store, sites, [], meta["monitor_start"], meta["monitor_end"], tmp_path / "public", access="public")
    fc = json.loads(pub.detections_geojson.read_text())
    assert fc["access_level"] == "public" and fc["features"]
    exact = {f["properties"]["detection_id"]: f for f in json.loads(outputs.detections_geojson.read_text())["features"]}
    for f in fc["features"]:
        p = f["properties"]
        assert f["geometry"]["type"] == "Point" and p["location_generalised"] and p["mgrs"] is None
        assert p["last_seen"] is None  # on an open detection under cloud, when the site was last seen at all
        lon, lat = f["geometry"]["coordinates"]
        assert abs((lon / 0.1) % 1 - 0.5) < 1e-6 and abs((lat / 0.1) % 1 - 0.5) < 1e-6  # a 0.1° cell centre
        assert (lat, lon) != (exact[p["detection_id"]]["properties"]["lat"], exact[p["detection_id"]]["properties"]["lon"])
    assert len(gpxpy.parse((tmp_path / "public" / "field" / "field_pack.gpx").read_text()).waypoints) == 0
    from openpyxl import load_workbook

    assert load_workbook(tmp_path / "public" / "field" / "field_pack.xlsx").active.max_row == 1  # the header only
    html = read_page(pub.map_html)
    for f in exact.values():
        assert f"{f['properties']['lat']:.6f}" not in html and f['properties']['mgrs'] not in html


def test_field_sheets_and_chips_for_each_detection(case_run):
    _, _, _, _, out, outputs, _ = case_run
    ids = [f["properties"]["detection_id"] for f in json.loads(outputs.detections_geojson.read_text())["features"]]
    sheets = {p.stem for p in (out / "field" / "sheets").glob("*.html")}
    assert sheets == set(ids)
    assert any((out / "chips").glob("*_before_*.png"))
    swipes = list((out / "swipe").glob("*.html"))
    assert swipes and {p.stem for p in swipes} <= set(ids)
    assert "type=\"range\"" in swipes[0].read_text() and "http" not in swipes[0].read_text()
    assert "Field check" in (out / "field" / "sheets" / f"{ids[0]}.html").read_text()
    # the sheet names the GPS waypoint the pack gives the same detection
    labels = {r["detection_id"]: r["waypoint"] for r in csv.DictReader((out / "field" / "field_pack.csv").open())}
    assert f"NN-{labels[ids[0]][3:]}" in (out / "field" / "sheets" / f"{ids[0]}.html").read_text()


def test_all_cloud_and_empty_imagery_are_reported_not_silent(tmp_path):
    """A site under cloud all week, and one with no acquisition, are listed as not observed, with why."""
    from change_detection.synthetic import synthetic_series
    from shapely.geometry import box

    from sites import Site
    from sites.geo import to_crs
    from sitewatch.errors import NoImagery

    ds = synthetic_series(ny=12, nx=12, seed=3)
    ds["clear"].values[ds.time.values >= pd.Timestamp("2011-06-01").to_datetime64()] = False  # cloud from June on
    ds = ds.assign_coords(item_id=("time", [f"i{k}" for k in range(ds.sizes["time"])]))
    area = to_crs(box(float(ds.x[2]), float(ds.y[-3]), float(ds.x[-3]), float(ds.y[2])), 32613, 4326)
    cloudy, empty = Site("CLOUDY", "Under cloud", area, 0.0, "public"), Site("EMPTY", "No data", area, 0.0, "public")

    class Provider:
        name = "synthetic"

        def load(self, request):
            return ds.sel(time=slice(request.start, request.end))

    class Empty:
        name = "synthetic"

        def load(self, request):
            raise NoImagery("no acquisition over the site")

    store = Store(str(tmp_path / "sw.db"))
    _, s1 = run_period(store, [cloudy], Provider(), "2011-06-06", "2011-06-12", tmp_path / "a")
    _, s2 = run_period(store, [empty], Empty(), "2011-06-06", "2011-06-12", tmp_path / "b")
    assert s1["statuses"] == {"CLOUDY": "all_cloud"} and s2["statuses"] == {"EMPTY": "no_imagery"}
    a = json.loads((tmp_path / "a" / "summary.json").read_text())["not_observed_this_week"]
    b = json.loads((tmp_path / "b" / "summary.json").read_text())["not_observed_this_week"]
    assert a[0]["site_id"] == "CLOUDY" and "cloud" in a[0]["reason"]
    assert b[0]["site_id"] == "EMPTY" and "no acquisition" in b[0]["reason"]
    weeks = {(r["site_id"], r["status"]) for r in store.site_weeks()}
    assert ("CLOUDY", "all_cloud") in weeks and ("EMPTY", "no_imagery") in weeks


def test_another_deployments_detections_are_a_layer_of_their_own(case_run, tmp_path, capsys):
    """The radar watch runs as a deployment of its own, with its own store.  The optical map shows
    its open detections (those it saw in the four weeks to the map's week) as a layer of their
    own, named by the label, at the map's access level; they stay out of this deployment's
    detections.geojson and field pack.  A companion store that is not there is said in the
    summary (the map is made without it), and none is created in its place."""
    from pipelines.weekly import write_outputs
    from sitewatch.cli import main
    from sitewatch.config import parse_config
    from sitewatch.errors import ConfigError

    meta, sites, radar, provider, out, outputs, summary = case_run
    end = pd.Timestamp(meta["monitor_end"])
    frame = radar.detections()
    recent = frame[(frame.status == "open") & (frame.confirmed_on <= str(end.date()))]  # none visited yet
    assert len(recent) >= 1
    own = Store(str(tmp_path / "optical.db"))
    missing = tmp_path / "not-yet.db"
    got = write_outputs(own, sites, [], meta["monitor_start"], meta["monitor_end"], tmp_path / "o",
                        companions={"Sentinel-1 radar": radar.url, "Landsat": str(missing),
                                    "as a URL": f"sqlite:///{missing}"})
    html = read_page(got.map_html)
    assert "Sentinel-1 radar: open detections" in html
    assert all(d in html for d in recent.detection_id)
    s = json.loads(got.summary_json.read_text())
    assert s["companions"]["Sentinel-1 radar"]["open"] == len(recent)
    assert s["companions"]["Landsat"] == {"error": f"no store at {missing}"} and not missing.exists()
    assert s["companions"]["as a URL"] == {"error": f"no store at sqlite:///{missing}"}
    assert json.loads(got.detections_geojson.read_text())["features"] == []
    assert len(gpxpy.parse((tmp_path / "o" / "field" / "field_pack.gpx").read_text()).waypoints) == 0
    assert "Sentinel-1 radar: open detections" in read_page(tmp_path / "o" / "map_offline.html")

    pub = write_outputs(own, sites, [], meta["monitor_start"], meta["monitor_end"], tmp_path / "p", access="public",
                        companions={"Sentinel-1 radar": radar.url})
    html = read_page(pub.map_html)
    exact = {f["properties"]["detection_id"]: f["properties"] for f in json.loads(outputs.detections_geojson.read_text())["features"]}
    for det in recent.detection_id:
        if det in exact:
            assert f"{exact[det]['lat']:.6f}" not in html and exact[det]["mgrs"] not in html

    base = {"sites": "s.geojson", "db": "optical.db", "out": "out", "start": "2024-03-04"}
    assert parse_config({**base, "companions": {"Sentinel-1 radar": "radar.db"}}).companions == {"Sentinel-1 radar": "radar.db"}
    with pytest.raises(ConfigError, match="is this deployment's own store"):
        parse_config({**base, "companions": {"radar": "optical.db"}})
    with pytest.raises(ConfigError, match="must name each store with a label"):
        parse_config({**base, "companions": ["radar.db"]})
    args = ["run", "--sites", str(tmp_path / "nowhere.geojson"), "--start", "2011-09-01", "--end", "2011-09-07",
            "--out", str(tmp_path / "c"), "--no-prefect", "--db", str(tmp_path / "optical.db")]
    assert main([*args, "--companion", "radar"]) == 2
    assert "expected LABEL=DB" in capsys.readouterr().err
    (tmp_path / "s.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": sites[0].geometry.__geo_interface__,
         "properties": {"site_id": sites[0].site_id, "name": sites[0].name}}]}), encoding="utf-8")
    args[2] = str(tmp_path / "s.geojson")
    assert main([*args, "--stac", str(provider.catalog_path), "--companion", f"radar={radar.url}",
                 "--companion", f"other={missing}"]) == 0
    said = capsys.readouterr().out
    assert "companion 'radar': " in said and f"warning: companion 'other': no store at {missing}" in said


def test_recording_a_weeks_results_reads_the_whole_detection_table_a_fixed_number_of_times(tmp_path):
    """Recording each site's result read every stored detection (to upsert its own, to find the
    labelled false positives, to suppress repeats): a week's job grew with the square of the
    sites.  Now the reads of the whole table do not depend on how many sites there are."""
    from sqlalchemy import event
    from shapely.geometry import box

    from change_detection import Detection
    from pipelines.monitoring import SiteResult
    from pipelines.weekly import record_results
    from sites import Site

    def whole_table_reads(n: int) -> int:
        store, reads = Store(str(tmp_path / f"n{n}.db")), []
        sites = [Site(f"S{i}", f"S{i}", box(100 + i * 0.05, 44, 100.002 + i * 0.05, 44.0015)) for i in range(n)]
        store.upsert_sites(sites)
        results = [SiteResult(s.site_id, [Detection(f"{s.site_id}-d", s.site_id, s.geometry, "EPSG:4326",
                                                    pd.Timestamp("2010-06-10"), pd.Timestamp("2010-06-20"),
                                                    pd.Timestamp("2010-06-18"), 0.8, "medium", 4000.0, 3, "other",
                                                    {"algorithm": "x"})]) for s in sites]
        record_results(store, "r0", "p", results, "2010-06-14", "2010-06-20")  # a week on record
        store.add_annotation("S0-d", "agriculture", "arch")  # a labelled false positive: a zone
        event.listen(store.engine, "before_cursor_execute",
                     lambda *a: reads.append(a[2]) if "FROM detections" in a[2] and "WHERE" not in a[2] else None)
        record_results(store, "r1", "p", results, "2010-06-21", "2010-06-27")
        return len(reads)

    assert whole_table_reads(3) == whole_table_reads(12)
