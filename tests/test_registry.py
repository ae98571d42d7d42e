"""Site registry: every validation rule, each with a real bad file."""

from __future__ import annotations

import csv
import json

import geopandas as gpd
import pytest
from shapely.geometry import Point, Polygon

from sites import read_sites
from sitewatch.errors import DuplicateSiteId, InvalidSiteFile, InvalidSiteGeometry


def _fc(features):
    return {"type": "FeatureCollection", "features": features}


def _feat(coords, **props):
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [coords]}, "properties": props}


SQUARE = [[106.90, 47.90], [106.91, 47.90], [106.91, 47.91], [106.90, 47.91], [106.90, 47.90]]


def test_reads_real_benchmark_sites(case_2010):
    res = read_sites(case_2010 / "sites.geojson")
    assert [s.site_id for s in res.sites] == ["S01-01", "S01-02", "S01-03", "S01-04", "S01-05"]
    assert all(s.sensitivity == "restricted" and s.buffer_m == 60 for s in res.sites)
    assert res.warnings == [] and res.repairs == []


@pytest.mark.filterwarnings("ignore:Column names longer than 10", "ignore:Normalized/laundered field name")
@pytest.mark.parametrize("ext,driver", [("gpkg", "GPKG"), ("shp", "ESRI Shapefile")])
def test_reads_geopackage_and_shapefile(case_2010, tmp_path, ext, driver):
    frame = gpd.read_file(case_2010 / "sites.geojson").to_crs(32613)  # stored projected: must come back lon/lat
    frame.loc[0, "sensitivity"] = "secret"  # a shapefile cuts the column name to "sensitivit"
    path = tmp_path / f"sites.{ext}"
    frame.to_file(path, driver=driver)
    res = read_sites(path)
    assert len(res.sites) == 5
    assert [s.sensitivity for s in res.sites[:2]] == ["secret", "restricted"]
    ref = read_sites(case_2010 / "sites.geojson").sites[0].geometry
    assert res.sites[0].geometry.symmetric_difference(ref).area < 1e-10


def test_csv_wkt_without_crs_is_assumed_wgs84_with_warning(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text('site_id,name,wkt,sensitivity\nMN-1,Khirigsuur 1,"POLYGON((106.9 47.9,106.91 47.9,106.91 47.91,106.9 47.9))",secret\n')
    res = read_sites(path)
    assert res.sites[0].sensitivity == "secret"
    assert any("assuming EPSG:4326" in w for w in res.warnings)
    assert "CRS not declared" in res.sites[0].repairs[0]


def test_swapped_lat_lon_is_a_clear_error(tmp_path):
    swapped = [[y, x] for x, y in SQUARE]  # lat first: 106.9 as latitude is impossible
    path = tmp_path / "swapped.geojson"
    path.write_text(json.dumps(_fc([_feat(swapped, site_id="MN-1", name="Deer stone")])))
    with pytest.raises(InvalidSiteGeometry, match="swapped"):
        read_sites(path)


def test_swap_detected_against_declared_region(tmp_path):
    # Both orders are legal numbers; only the region (Jordan) tells them apart.
    petra = Point(35.44, 30.33).buffer(0.005)
    mirrored = Polygon([(y, x) for x, y in petra.exterior.coords])
    path = tmp_path / "jordan.geojson"
    path.write_text(json.dumps(_fc([{"type": "Feature", "geometry": mirrored.__geo_interface__,
                                     "properties": {"site_id": "JO-1", "name": "Petra"}}])))
    with pytest.raises(InvalidSiteGeometry, match="swapped"):
        read_sites(path, region_bbox=(34.9, 29.1, 39.3, 33.4))


def test_projected_coordinates_without_crs_are_rejected(tmp_path):
    path = tmp_path / "utm.csv"
    path.write_text('site_id,name,wkt\nA,Mound,"POLYGON((336400 4461000,336500 4461000,336500 4461100,336400 4461000))"\n')
    with pytest.raises(InvalidSiteGeometry, match="projected"):
        read_sites(path)
    res = read_sites(path, crs="EPSG:32613")  # the fix the message suggests
    assert -107 < res.sites[0].geometry.centroid.x < -106


def test_bow_tie_is_repaired_and_recorded(tmp_path):
    bow = [[106.90, 47.90], [106.91, 47.91], [106.91, 47.90], [106.90, 47.91], [106.90, 47.90]]
    path = tmp_path / "bow.geojson"
    path.write_text(json.dumps(_fc([_feat(bow, site_id="MN-2", name="Bow tie")])))
    res = read_sites(path)
    site = res.sites[0]
    assert site.geometry.is_valid and site.geometry.area > 0
    assert any("make_valid" in r and "Self-intersection" in r for r in site.repairs)
    assert res.repairs == [f"MN-2: {site.repairs[0]}"]


def test_duplicate_ids_name_both_rows(tmp_path):
    path = tmp_path / "dup.geojson"
    path.write_text(json.dumps(_fc([_feat(SQUARE, site_id="A", name="One"), _feat(SQUARE, site_id="B", name="Two"),
                                    _feat(SQUARE, site_id="A", name="Three")])))
    with pytest.raises(DuplicateSiteId, match=r"'A' appears in row 1 and row 3"):
        read_sites(path)


def test_ids_differing_only_in_case_are_duplicates(tmp_path):
    path = tmp_path / "case.geojson"
    path.write_text(json.dumps(_fc([_feat(SQUARE, site_id="MN-12a", name="One"), _feat(SQUARE, site_id="MN-12A", name="Two")])))
    with pytest.raises(DuplicateSiteId, match=r"'MN-12A' appears in row 1 \(as 'MN-12a', which differs only in case\) and row 2"):
        read_sites(path)


def test_a_numeric_id_column_with_a_gap_keeps_integer_ids(tmp_path):
    """A null in a numeric id column makes the column float; site 12 must stay '12', not '12.0',
    or a re-import without the gap would register it as another site."""
    path = tmp_path / "num.geojson"
    path.write_text(json.dumps(_fc([_feat(SQUARE, site_id=12, name="One"), _feat(SQUARE, site_id=None, name="Two")])))
    res = read_sites(path, strict=False)
    assert [s.site_id for s in res.sites] == ["12"] and res.rejected == ["row 2: empty site_id"]


def test_csv_as_spreadsheets_write_it(tmp_path):
    """Semicolons with decimal commas (a European spreadsheet) are read; a row with more or fewer
    cells than the header, an empty file, another encoding and 75 minutes are clear errors."""
    path = tmp_path / "semi.csv"
    path.write_text("site_id;name;lat;lon\nA;Alpha;47,905;106,905\n", encoding="utf-8")
    (site,) = read_sites(path).sites
    assert site.geometry.centroid.y == pytest.approx(47.905, abs=1e-6)
    for content, encoding, error, message in [
        ("site_id,name,lat,lon\nA,Alpha,47.905,106.905,extra\nB,Beta,47.9\n", "utf-8", InvalidSiteFile,
         "header has 4 columns but line 2 has 5 cells; line 3 has 3 cells"),
        ("", "utf-8", InvalidSiteFile, "empty"),
        ("site_id,name,lat,lon\nA,Tömör,47.905,106.905\n", "cp1252", InvalidSiteFile, "not UTF-8 text.*CSV UTF-8"),
        ("site_id,name,lat,lon\nA,Alpha,47°75'N,106.905\n", "utf-8", InvalidSiteGeometry,
         "latitude .* has minutes or seconds of 60 or more"),
    ]:
        path.write_text(content, encoding=encoding)
        with pytest.raises(error, match=message):
            read_sites(path)


def test_degrees_minutes_seconds_and_coordinate_headers_with_units(tmp_path, as_workbook):
    """A registry kept by hand writes coordinates in degrees, minutes and seconds (with the
    ordinal º a Spanish keyboard gives for °, and a hemisphere before or after) and names their
    columns with a datum or unit, as ArcGIS's POINT_X/POINT_Y do with the axis.  Before, every
    such row was refused ("not a number"), and "Latitude (WGS84)" was not found at all."""
    rows = [["Site ID", "Name", "Latitude (WGS84)", "Longitude (WGS84)"],
            ["MN-1", "Deer stones", "47°30'15\"N", "106°50'20\"E"],
            ["PE-1", "Huaca", "S 12º 2' 46\"", "W 77º 1' 42,5\""],
            ["MN-2", "Khirigsuur", "47.5 N", "106.9 E"],
            ["MN-3", "Mound", "47,25", "106,75"],
            ["PE-2", "Typed", "s 12°30'", "\u221277°30'"]]  # a lower-case hemisphere, a word processor's minus
    sites = read_sites(as_workbook(rows, tmp_path / "dms.xlsx", typed=False)).sites
    got = [(s.site_id, round(s.geometry.centroid.y, 5), round(s.geometry.centroid.x, 5)) for s in sites]
    assert got == [("MN-1", 47.50417, 106.83889), ("PE-1", -12.04611, -77.02847), ("MN-2", 47.5, 106.9),
                   ("MN-3", 47.25, 106.75), ("PE-2", -12.5, -77.5)]
    path = tmp_path / "arcgis.csv"
    path.write_text("Site_ID,Name,POINT_X,POINT_Y\n7,Mound,106.9,47.9\n", encoding="utf-8")
    (site,) = read_sites(path).sites
    assert (site.site_id, round(site.geometry.centroid.x, 4), round(site.geometry.centroid.y, 4)) == ("7", 106.9, 47.9)
    path = tmp_path / "pair.csv"
    path.write_text('id,name,coordinates\nA,Alpha,"N 47°30\', E 106°50\'"\nB,Beta,"106°50\'E 47°30\'N"\n', encoding="utf-8")
    assert [(round(s.geometry.centroid.y, 3), round(s.geometry.centroid.x, 3)) for s in read_sites(path).sites] == [
        (47.5, 106.833), (47.5, 106.833)]
    for lat, lon, message in [("47°30'15\"E", "106°50'20\"N", "latitude .* has hemisphere E.*lat/lon look swapped"),
                              ("47°30'75\"N", "106.9", "minutes or seconds of 60 or more"),
                              ("47°30'N 106°E", "106.9", "is not degrees, minutes and seconds")]:
        with path.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([["id", "name", "lat", "lon"], ["A", "Alpha", lat, lon]])
        with pytest.raises(InvalidSiteGeometry, match=message):
            read_sites(path)


def test_missing_required_column_and_empty_name(tmp_path):
    path = tmp_path / "noname.geojson"
    path.write_text(json.dumps(_fc([_feat(SQUARE, site_id="A")])))
    with pytest.raises(InvalidSiteFile, match="name"):
        read_sites(path)
    path.write_text(json.dumps(_fc([_feat(SQUARE, site_id="A", name="")])))
    with pytest.raises(InvalidSiteGeometry, match="empty name"):
        read_sites(path)


def test_a_point_site_takes_the_size_its_registry_gives(tmp_path):
    """A registry of points often says how big each site is: a burial of 40 m, a town of 80 ha.
    Each point becomes a circle of its radius, or of its area, and the repair says which; only a
    point without either gets the default 250 m.  Before, every point got 250 m: a small burial
    was watched with 20 ha of fields around it, a large town only in its middle.  A size that is
    not a number rejects the row, naming it."""
    from sites.geo import area_m2

    path = tmp_path / "points.csv"
    path.write_text("id,name,lat,lon,Radius (m),Area (ha)\nA,Burial,47.5,106.9,40,\nB,Town,47.6,106.9,,80\n"
                    "C,Unknown,47.7,106.9,,\n", encoding="utf-8")
    a, b, c = read_sites(path).sites
    assert [round(area_m2(s.geometry) / 1e4, 1) for s in (a, b, c)] == [0.5, 79.9, 19.6]
    assert a.repairs[-1] == "point buffered to a 40 m circle (its radius_m)"
    assert b.repairs[-1] == "point buffered to a 505 m circle (the area in its area_ha, 80)"
    assert c.repairs[-1] == "point buffered to a 250 m circle (registry gave no outline)"
    path.write_text("id,name,lat,lon,Радиус (м)\nA,Булш,47.5,106.9,много\n", encoding="utf-8")
    with pytest.raises(InvalidSiteGeometry, match=r"row 1 \(site_id 'A'\): радиус_м 'много' is not a number"):
        read_sites(path)
    path.write_text("id,name,lat,lon,area_m2\nA,Typo,47.5,106.9,9000000000000\n", encoding="utf-8")
    with pytest.raises(InvalidSiteGeometry, match="circle of 1693 km radius; over 50 km is not one site's size"):
        read_sites(path)


def test_registries_kept_in_the_units_language(tmp_path, as_workbook):
    """Mongolia's registry names its columns in Mongolian, Peru's in Spanish, Egypt's and Jordan's
    in Arabic: their id, name, coordinate and region columns are found.  Before, every such file
    had "no geometry column".  A column still not known is named in the error, with the file's
    own columns, so the operator knows what to rename."""
    rows = [["Код", "Дурсгалын нэр", "Өргөрөг", "Уртраг", "Аймаг"],
            ["MN-001", "Хүннүгийн булш", "47°30'15\"N", "106°55'03\"E", "Архангай"]]
    (site,) = read_sites(as_workbook(rows, tmp_path / "mn.xlsx", typed=False)).sites
    assert (site.site_id, site.name, site.region) == ("MN-001", "Хүннүгийн булш", "Архангай")
    assert (round(site.geometry.centroid.y, 4), round(site.geometry.centroid.x, 4)) == (47.5042, 106.9175)
    path = tmp_path / "pe.csv"
    path.write_text("Código;Nombre del sitio;Latitud;Longitud;Departamento\nPE-1;Huaca;-12,05;-77,03;Lima\n",
                    encoding="utf-8")
    (site,) = read_sites(path).sites
    assert (site.site_id, site.name, site.region, round(site.geometry.centroid.x, 2)) == ("PE-1", "Huaca", "Lima", -77.03)
    path = tmp_path / "ru.csv"
    path.write_text('Код,Название,Геометрия\nRU-1,Курган,"POLYGON ((106.9 47.5, 106.901 47.5, 106.901 47.501, 106.9 47.5))"\n',
                    encoding="utf-8")
    assert [(s.site_id, s.name) for s in read_sites(path).sites] == [("RU-1", "Курган")]
    path = tmp_path / "ar.csv"
    path.write_text("الرمز,الاسم,خط العرض,خط الطول,المحافظة\nEG-1,تل,26.5,31.7,سوهاج\n", encoding="utf-8")
    (site,) = read_sites(path).sites
    assert (site.site_id, site.name, site.region, round(site.geometry.centroid.y, 1)) == ("EG-1", "تل", "سوهاج", 26.5)
    path.write_text("ref,label,N,E\nA,Alpha,47.5,106.9\n", encoding="utf-8")
    with pytest.raises(InvalidSiteFile, match=r"no geometry column among 'ref', 'label', 'N', 'E'.*rename"):
        read_sites(path)
    path.write_text("ref,label,lat,lon\nA,Alpha,47.5,106.9\n", encoding="utf-8")
    with pytest.raises(InvalidSiteFile, match=r"missing: site_id, name \(the file has 'ref', 'label', 'lat', 'lon'"):
        read_sites(path)


@pytest.mark.filterwarnings("ignore:Could not parse column")
def test_bad_buffer_and_sensitivity_name_the_row(tmp_path):
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(_fc([_feat(SQUARE, site_id="A", name="x", buffer_m="sixty"),
                                    _feat(SQUARE, site_id="B", name="y", buffer_m=-5),
                                    _feat(SQUARE, site_id="C", name="z", sensitivity="top-secret")])))
    with pytest.raises(InvalidSiteGeometry) as err:
        read_sites(path)
    msg = str(err.value)
    assert "'A'): buffer_m 'sixty' is not a number of metres" in msg
    assert "'B'): buffer_m -5.0 outside 0..50000" in msg and "'C'): sensitivity 'top-secret'" in msg


def test_antimeridian_polygon_is_rejected(tmp_path):
    ring = [[179.9, 65.0], [-179.9, 65.0], [-179.9, 65.1], [179.9, 65.1], [179.9, 65.0]]
    path = tmp_path / "chukotka.geojson"
    path.write_text(json.dumps(_fc([_feat(ring, site_id="RU-1", name="Ekven")])))
    with pytest.raises(InvalidSiteGeometry, match="antimeridian"):
        read_sites(path)


def test_real_heritage_list_points_are_buffered_and_gaps_listed(shared):
    path = shared / "reports" / "ukraine_world_heritage_and_tentative_sites.csv"
    with pytest.raises(InvalidSiteGeometry, match="11 invalid row"):
        read_sites(path)
    res = read_sites(path, strict=False)
    assert len(res.sites) + len(res.rejected) == 42  # nothing lost: kept or listed with a reason
    assert all("missing or empty" in r for r in res.rejected)
    chersonese = next(s for s in res.sites if "Chersonese" in s.name)  # written "44.6108 N, 33.4914 E"
    assert chersonese.geometry.centroid.x == pytest.approx(33.4914, abs=1e-3)
    assert any("point buffered" in r for r in chersonese.repairs)


def test_real_heritage_list_as_a_workbook(shared, tmp_path, as_workbook):
    """The same real list kept in Excel (ids and years as numbers): the same sites, the same
    rejected rows; a blank row in the middle does not shift the row numbers a fix is asked for."""
    path = shared / "reports" / "ukraine_world_heritage_and_tentative_sites.csv"
    book = as_workbook(path, tmp_path / "ua.xlsx")
    from_csv, from_book = read_sites(path, strict=False), read_sites(book, strict=False)
    assert [(s.site_id, s.name, s.geometry.wkt, s.region, s.sensitivity) for s in from_book.sites] == [
        (s.site_id, s.name, s.geometry.wkt, s.region, s.sensitivity) for s in from_csv.sites]
    assert from_book.rejected == from_csv.rejected and from_book.sites[0].site_id == "1"  # not "1.0"
    assert "ua.xlsx: a workbook carries no CRS; assuming EPSG:4326 (lon/lat)" in from_book.warnings
    rows = [["site_id", "name", "lat", "lon"], [101, "Mound A", 47.9, 106.9], [None, None, None, None],
            [102, "Mound B", "47,91", "106.91"], [103, "Mound C", "106°55'E", 47.92]]
    with pytest.raises(InvalidSiteGeometry, match=r"row 5: unreadable geometry \(latitude \"106°55'E\" has hemisphere E, "
                       r"which is a longitude's; lat/lon look swapped"):
        read_sites(as_workbook(rows, tmp_path / "mounds.xlsx", typed=False))
    sites = read_sites(as_workbook(rows[:4], tmp_path / "two.xlsx", typed=False)).sites
    assert [(s.site_id, round(s.geometry.centroid.y, 3)) for s in sites] == [("101", 47.9), ("102", 47.91)]


def test_headers_as_people_write_them_keep_a_secret_site_secret(tmp_path, as_workbook):
    """ "Sensitivity", "Site ID", "Buffer (m)", "Region": a registry kept by hand names its columns
    like this.  Before, "Sensitivity" was not found and a secret site was imported as restricted
    (its exact outline then in every restricted map and field pack), "Buffer_m" was not found
    and the buffer fell back to 50 m, and "Site ID" was a missing column."""
    props = {"Site ID": "MN-7", "Name": "Deer stones", "Sensitivity": "secret", "Buffer (m)": 200, "Region": "Khövsgöl"}
    path = tmp_path / "hand.geojson"
    path.write_text(json.dumps(_fc([_feat(SQUARE, **props)])), encoding="utf-8")
    (site,) = read_sites(path).sites
    assert (site.site_id, site.name, site.sensitivity, site.buffer_m, site.region) == (
        "MN-7", "Deer stones", "secret", 200.0, "Khövsgöl")
    book = as_workbook([[*props, "Lat, Lon"], [*props.values(), "47.905, 106.905"]], tmp_path / "hand.xlsx",
                       typed=False)
    (site,) = read_sites(book).sites
    assert (site.sensitivity, site.buffer_m) == ("secret", 200.0)
    assert site.geometry.centroid.y == pytest.approx(47.905, abs=1e-4)
    path.write_text(json.dumps(_fc([_feat(SQUARE, site_id="MN-8", name="Khirigsuur", Aimag="Arkhangai")])))
    assert read_sites(path).sites[0].region == "Arkhangai"  # field packs are split by it


def test_arches_export(tmp_path):
    doc = {"business_data": {"resources": [{
        "resourceinstance": {"resourceinstanceid": "5f1c-aa", "descriptors": {"en": {"name": "Tomb group"}},
                             "sensitivity": "secret"},
        "tiles": [{"data": {"node-geom": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [SQUARE]}, "properties": {}}]}}}],
    }]}}
    path = tmp_path / "arches.json"
    path.write_text(json.dumps(doc))
    site = read_sites(path).sites[0]
    assert (site.site_id, site.name, site.sensitivity) == ("5f1c-aa", "Tomb group", "secret")


@pytest.mark.parametrize("crs", [3857, 32648])
def test_degrees_under_a_metric_crs_are_refused_not_moved_to_null_island(tmp_path, crs):
    """A .prj or GeoPackage that says metres while the numbers are degrees would put every site
    within 180 m of the projection's origin (points there are valid circles): refused, and
    ``crs=`` reads the file as it really is."""
    path = tmp_path / "wrong.gpkg"
    gpd.GeoDataFrame({"site_id": ["A", "B"], "name": ["a", "b"]},
                     geometry=[Point(106.9, 47.9), Polygon(SQUARE)], crs=crs).to_file(path)
    with pytest.raises(InvalidSiteFile, match=rf"declares .*EPSG:{crs}, metres.*look like longitude/latitude"):
        read_sites(path)
    sites = read_sites(path, crs="EPSG:4326").sites
    assert sites[0].geometry.centroid.x == pytest.approx(106.9, abs=1e-6)


def test_a_large_site_splits_into_parts_that_cover_it(tmp_path, capsys):
    """A 7 km × 5 km landscape on 2 km squares: 4 × 3 parts that tile it exactly, each a site with
    the landscape's buffer, sensitivity and region; written as a registry that reads back; a small
    site is left whole."""
    from shapely.ops import unary_union

    from sites import Site, area_m2
    from sites.geo import to_crs, utm_epsg
    from sites.split import split_site
    from sitewatch.cli import main

    centre = Point(102.8, 47.55)
    epsg = utm_epsg(centre)
    c = to_crs(centre, 4326, epsg)
    land = to_crs(Polygon([(c.x - 3500, c.y - 2500), (c.x + 3500, c.y - 2500), (c.x + 3500, c.y + 2500),
                           (c.x - 3500, c.y + 2500)]), epsg, 4326)
    site = Site("MN-ORK", "Orkhon Valley", land, 50.0, "secret", "Övörkhangai")
    parts = split_site(site, 2.0)
    assert [p.site_id for p in parts] == [f"MN-ORK-p{k:02d}" for k in range(1, 13)]
    assert parts[0].name == "Orkhon Valley (part 1 of 12)"
    assert {(p.buffer_m, p.sensitivity, p.region) for p in parts} == {(50.0, "secret", "Övörkhangai")}
    assert abs(area_m2(unary_union([p.geometry for p in parts])) - area_m2(land)) < 1.0
    assert sum(area_m2(p.geometry) for p in parts) == pytest.approx(area_m2(land), rel=1e-6)  # no overlap
    small = Site("S-1", "Mound", Polygon(SQUARE))
    assert split_site(small, 2.0) == [small]

    reg = tmp_path / "reg.geojson"
    reg.write_text(json.dumps(_fc([
        {"type": "Feature", "geometry": json.loads(json.dumps(land.__geo_interface__)),
         "properties": {"site_id": "MN-ORK", "name": "Orkhon Valley", "sensitivity": "secret", "region": "Övörkhangai"}},
        _feat(SQUARE, site_id="S-1", name="Mound")])))
    out = tmp_path / "parts.geojson"
    assert main(["sites", "split", str(reg), "--km", "2", "--out", str(out)]) == 0
    assert "MN-ORK: 12 parts of 2 km (MN-ORK-p01 … MN-ORK-p12)" in capsys.readouterr().out
    back = read_sites(out).sites
    assert [s.site_id for s in back] == [*(p.site_id for p in parts), "S-1"]
    assert {s.sensitivity for s in back[:12]} == {"secret"}
    assert back[-1].sensitivity == "restricted"  # S-1 has no sensitivity where MN-ORK has one: the default
    doc = json.loads(out.read_text())
    assert {f["properties"]["part_of"] for f in doc["features"]} == {"MN-ORK", ""}
    assert doc["access_level"] == "secret"  # exact outlines of a secret site


@pytest.mark.parametrize("gb, resolution, looks", [("6", 10.0, 400), ("2", 10.0, 250), ("6", 30.0, 100)])
def test_parts_of_the_default_size_fit_the_per_site_limit(monkeypatch, gb, resolution, looks):
    """``sites split`` without --km cuts parts whose imagery, buffer and ring included, fits
    SITEWATCH_MAX_SITE_GB at the given resolution and number of looks."""
    import pandas as pd

    from pipelines.imagery.base import grid_size
    from pipelines.monitoring import max_pixel_looks, part_km_that_fits, site_request
    from sites import Site
    from sites.geo import to_crs, utm_epsg
    from sites.split import split_site

    monkeypatch.setenv("SITEWATCH_MAX_SITE_GB", gb)
    c = to_crs(Point(102.8, 47.55), 4326, utm_epsg(Point(102.8, 47.55)))
    land = to_crs(Polygon([(c.x - 20e3, c.y - 9e3), (c.x + 20e3, c.y - 9e3), (c.x + 20e3, c.y + 9e3), (c.x - 20e3, c.y + 9e3)]),
                  utm_epsg(Point(102.8, 47.55)), 4326)
    site = Site("MN-ORK", "Orkhon Valley", land, 50.0)
    km = part_km_that_fits(site.buffer_m, resolution, looks)
    parts = split_site(site, km)
    biggest = max(grid_size(site_request(p, pd.Timestamp("2024-06-01"), pd.Timestamp("2024-06-07")), resolution)[0]
                  * grid_size(site_request(p, pd.Timestamp("2024-06-01"), pd.Timestamp("2024-06-07")), resolution)[1]
                  for p in parts)
    assert biggest * looks <= max_pixel_looks() < biggest * looks * 1.3  # fits, without wasting the limit


def test_every_site_layer_of_a_geopackage_is_read(tmp_path):
    """GDAL reads a GeoPackage's first layer only: sites kept as points in a second layer were
    dropped with nothing but a Python warning.  Every layer with sites is read; the others are
    named."""
    path = tmp_path / "registry.gpkg"
    gpd.GeoDataFrame({"site_id": ["A", "B"], "name": ["Mound", "Wall"]},
                     geometry=[Polygon(SQUARE), Polygon([(x + 0.05, y) for x, y in SQUARE])], crs=4326).to_file(path, layer="outlines")
    gpd.GeoDataFrame({"id": ["C"], "site_name": ["Stele"]}, geometry=[Point(106.99, 47.905)], crs=4326) \
        .to_crs(32648).to_file(path, layer="points")  # another layer, other column names, in UTM
    gpd.GeoDataFrame({"kind": ["road"]}, geometry=[Point(106.8, 47.8)], crs=4326).to_file(path, layer="roads")
    res = read_sites(path)
    assert [s.site_id for s in res.sites] == ["A", "B", "C"]
    assert res.sites[2].name == "Stele" and res.sites[2].geometry.centroid.x == pytest.approx(106.99, abs=1e-6)
    assert "3 layers; read outlines, points; left out roads" in res.warnings[0]
    gpd.GeoDataFrame({"id": ["A"], "name": ["again"]}, geometry=[Point(106.98, 47.9)], crs=4326).to_file(path, layer="more")
    with pytest.raises(DuplicateSiteId, match="'A' appears in row 1 and row 4"):
        read_sites(path)


def test_columns_the_registry_names_otherwise_are_chosen_with_column(tmp_path, as_workbook, capsys):
    """A unit's registry calls its id "Дурсгалт газрын код" and its coordinates "N (deg)" and
    "E (deg)": no name sitewatch knows.  Naming them (``--column FIELD=COLUMN``, or ``[columns]``
    in sitewatch.toml) reads the file as it is; another column that would answer for a chosen
    field is not read, and a warning says so.  A chosen column the file lacks, a field that does
    not exist, or a column given twice is an error that lists the file's columns."""
    from sitewatch.cli import main
    from sitewatch.config import parse_config
    from sitewatch.errors import ConfigError

    rows = [["Дурсгалт газрын код", "Дурсгалын нэр", "N (deg)", "E (deg)", "latitude", "Хамгаалалтын бүс (м)"],
            ["MN-001", "Хүннүгийн булш", "47.5042", "106.9175", "0", "120"],
            ["MN-002", "Хиргисүүр", "47.6", "106.8", "0", "80"]]
    path = as_workbook(rows, tmp_path / "mn.xlsx", typed=False)
    with pytest.raises(InvalidSiteFile, match=r"no geometry column among 'Дурсгалт газрын код'.*name them, e.g. --column lat="):
        read_sites(path)
    with pytest.raises(InvalidSiteFile, match=r"missing: site_id \(the file has .*name them, e.g. --column site_id="):
        read_sites(path, columns={"lat": "N (deg)", "lon": "E (deg)"})
    columns = {"site_id": "Дурсгалт газрын код", "lat": "N (deg)", "lon": "e (DEG)",  # case and spaces aside
               "buffer_m": "Хамгаалалтын бүс (м)"}
    res = read_sites(path, columns=columns)
    assert [(s.site_id, s.name, s.buffer_m) for s in res.sites] == [("MN-001", "Хүннүгийн булш", 120.0),
                                                                    ("MN-002", "Хиргисүүр", 80.0)]
    assert (round(res.sites[0].geometry.centroid.y, 4), round(res.sites[0].geometry.centroid.x, 4)) == (47.5042, 106.9175)
    assert "mn.xlsx: column 'latitude' not read, since --column lat='N (deg)' was given" in res.warnings
    # without the choice the file's own "latitude" column (all zeros) would be read: said, not silent
    plain = tmp_path / "two.csv"
    plain.write_text("site_id,name,latitude,Өргөрөг (градус),lon\nA,Alpha,0,47.5,106.9\n", encoding="utf-8")
    assert any("lat read from 'latitude', not from 'Өргөрөг (градус)'" in w for w in read_sites(plain).warnings)
    (site,) = read_sites(plain, columns={"lat": "Өргөрөг (градус)"}).sites
    assert round(site.geometry.centroid.y, 1) == 47.5

    with pytest.raises(InvalidSiteFile, match=r"--column site_id='Код': no such column; its columns are "
                                              r"'Дурсгалт газрын код', 'Дурсгалын нэр'"):
        read_sites(path, columns={"site_id": "Код"})
    with pytest.raises(InvalidSiteFile, match="no registry field 'code'; the fields are site_id, name"):
        read_sites(path, columns={"code": "Дурсгалт газрын код"})
    gj = tmp_path / "mn.geojson"
    gj.write_text(json.dumps(_fc([_feat(SQUARE, **{"Дурсгалт газрын код": "MN-9", "name": "Булш"})])), encoding="utf-8")
    assert [s.site_id for s in read_sites(gj, columns={"site_id": "Дурсгалт газрын код"}).sites] == ["MN-9"]
    with pytest.raises(InvalidSiteFile, match="a vector file carries its own geometry; --column lat"):
        read_sites(gj, columns={"lat": "y"})

    db = tmp_path / "sw.db"
    args = ["sites", "import", str(path), "--db", str(db), "--column", "site_id=Дурсгалт газрын код",
            "--column", "lat=N (deg)", "--column", "lon=E (deg)"]
    assert main(args) == 0 and "2 site(s) imported" in capsys.readouterr().out
    assert main([*args, "--column", "name=N (deg)"]) == 2
    assert "column 'N (deg)' is given for lat and name" in capsys.readouterr().err
    assert main([*args[:5], "--column", "site_id"]) == 2
    assert "expected FIELD=COLUMN" in capsys.readouterr().err

    base = {"sites": "mn.xlsx", "db": "sw.db", "out": "out", "start": "2024-03-04"}
    cfg = parse_config({**base, "columns": {"site_id": "Дурсгалт газрын код", "lat": "N (deg)", "lon": "E (deg)"}},
                       base=tmp_path)
    assert [s.site_id for s in read_sites(cfg.sites, columns=cfg.columns).sites] == ["MN-001", "MN-002"]
    with pytest.raises(ConfigError, match="columns .*no field 'siteid'"):
        parse_config({**base, "columns": {"siteid": "Код"}}, base=tmp_path)
    with pytest.raises(ConfigError, match="columns must be a table"):
        parse_config({**base, "columns": {"site_id": 3}}, base=tmp_path)
