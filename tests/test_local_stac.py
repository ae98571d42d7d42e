"""The local static STAC provider on the real shared catalogs."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from pipelines.imagery.base import ImageryRequest
from pipelines.imagery.local_stac import LocalStacProvider, describe_unreadable, unreadable_of
from pipelines.monitoring import run_site, site_request
from sites import read_sites
from sitewatch.errors import CorruptRaster, NoImagery
from conftest import read_page


@pytest.fixture(scope="module")
def site(case_2010):
    return read_sites(case_2010 / "sites.geojson").sites[0]


def test_loads_on_native_utm_grid_with_scale_and_mask(case_2010, site):
    prov = LocalStacProvider(case_2010 / "catalog")
    ds = prov.load(site_request(site, pd.Timestamp("2010-03-01"), pd.Timestamp("2010-12-31")))
    assert ds.attrs["crs"] == "EPSG:32613" and ds.attrs["resolution"] == 30.0
    assert set(ds.data_vars) == {"red", "nir", "swir16", "clear", "snow"}
    # the native Landsat grid (origin 336375 + k*30): pixel centres at ...390, no half-pixel shift
    assert float(ds.x[0] - 336375.0) % 30 == pytest.approx(15.0)
    assert ds.red.dtype == np.float32
    clear_red = ds.red.where(ds.clear).values
    assert np.nanmax(clear_red) < 1.5 and np.nanmin(clear_red) > -0.1  # scaled to reflectance
    # compare with the raw asset: fmask classes 2, 3, 4, 255 are not clear; 0 and 1 are
    item = next(i for i in prov.items if i.id == str(ds.item_id.values[0]))
    with rasterio.open(item.assets["fmask"].get_absolute_href()) as src:
        fmask = src.read(1)
    frac_clear_raw = np.isin(fmask, [0, 1]).mean()
    assert abs(float(ds.clear.isel(time=0).mean()) - frac_clear_raw) < 0.35
    # the snow flag is Fmask class 3 (declared "snow" in the classification extension), never clear
    k = int(np.argmax(ds.snow.mean(("y", "x")).values))
    item = next(i for i in prov.items if i.id == str(ds.item_id.values[k]))
    with rasterio.open(item.assets["fmask"].get_absolute_href()) as src:
        xx, yy = np.meshgrid(ds.x.values, ds.y.values)
        rows, cols = (np.asarray(v).reshape(xx.shape) for v in rasterio.transform.rowcol(src.transform, xx, yy))
        inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
        raw = src.read(1)[rows[inside], cols[inside]]
    snow = ds.snow.isel(time=k).values
    valid = ds.red.isel(time=k).notnull().values  # saturated snow (LEDAPS 16000) is not a measurement
    assert snow.mean() > 0.2 and not snow[~inside].any()
    np.testing.assert_array_equal(snow[inside], (raw == 3) & valid[inside])
    assert not bool((ds.snow & ds.clear).any())
    assert len(ds.time) == len(set(pd.DatetimeIndex(ds.time.values).date))


def test_no_items_in_period_is_no_imagery(case_2010, site):
    prov = LocalStacProvider(case_2010 / "catalog")
    req = ImageryRequest(site.geometry, pd.Timestamp("1990-01-01"), pd.Timestamp("1990-12-31"))
    with pytest.raises(NoImagery, match="no acquisition"):
        prov.load(req)


def test_missing_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(NoImagery, match="no STAC catalog"):
        LocalStacProvider(tmp_path / "nothing")


def _truncate(path: Path) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # opens fine, fails on read
    return data


def test_truncated_geotiff_is_left_out_and_named(case_2010, site, tmp_path):
    copy = tmp_path / "catalog"
    shutil.copytree(case_2010 / "catalog", copy)
    prov = LocalStacProvider(copy)
    req = site_request(site, pd.Timestamp("2010-03-01"), pd.Timestamp("2010-12-31"))
    whole = prov.load(req)
    victim_item = next(i for i in prov.items if i.id == str(whole.item_id.values[-5]))
    victim = Path(victim_item.assets["red"].get_absolute_href())
    _truncate(victim)
    ds = LocalStacProvider(copy).load(req)
    # every other acquisition is read as before; the bad one is listed, not dropped quietly
    assert list(ds.item_id.values) == [i for i in whole.item_id.values if i != victim_item.id]
    np.testing.assert_array_equal(ds.red.values, whole.red.sel(time=ds.time.values).values)
    [entry] = unreadable_of(ds)
    assert entry["item"] == victim_item.id and entry["asset"] == "red"
    assert entry["date"] == str(pd.Timestamp(victim_item.datetime).date()) and entry["href"] == str(victim)
    assert "could not be read" in describe_unreadable(entry) and victim_item.id in describe_unreadable(entry)
    assert not unreadable_of(whole)


def test_mosaic_items_dated_by_their_period(case_2010, site, tmp_path):
    """STAC lets a mosaic or composite (a PlanetScope-style basemap) have ``datetime: null`` and a
    ``start_datetime``/``end_datetime``; such an item is dated by its period's start, as odc-stac
    dates its pixels (it once stopped the provider with a TypeError)."""
    import json as _json

    copy = tmp_path / "catalog"
    shutil.copytree(case_2010 / "catalog", copy)
    req = site_request(site, pd.Timestamp("2010-03-01"), pd.Timestamp("2010-12-31"))
    whole = LocalStacProvider(copy).load(req)
    for item_id in whole.item_id.values[::3]:
        path = copy / str(item_id) / f"{item_id}.json"
        doc = _json.loads(path.read_text())
        when = doc["properties"]["datetime"]
        doc["properties"].update(datetime=None, start_datetime=when,
                                 end_datetime=str((pd.Timestamp(when) + pd.Timedelta(days=30)).isoformat()))
        path.write_text(_json.dumps(doc))
    ds = LocalStacProvider(copy).load(req)
    assert list(ds.item_id.values) == list(whole.item_id.values)
    np.testing.assert_array_equal(ds.time.values, whole.time.values)
    np.testing.assert_array_equal(ds.red.values, whole.red.values)


def test_only_unreadable_acquisitions_raise_corrupt_raster(case_2010, site, tmp_path):
    copy = tmp_path / "catalog"
    shutil.copytree(case_2010 / "catalog", copy)
    prov = LocalStacProvider(copy)
    item = next(i for i in prov.items if pd.Timestamp(i.datetime).year == 2010)
    day = pd.Timestamp(item.datetime).tz_localize(None).normalize()
    _truncate(Path(item.assets["nir"].get_absolute_href()))
    req = replace(site_request(site, day, day), start=day, end=day)
    with pytest.raises(CorruptRaster, match=f"could be read: {item.id}") as err:
        prov.load(req)
    assert [u["item"] for u in err.value.unreadable] == [item.id]
    # the monitoring step records the site as unreadable instead of stopping every other site
    res = run_site(site, prov, day, day)
    assert res.status == "unreadable" and "could not be read" in res.message
    assert [u["item"] for u in res.unreadable] == [item.id]  # named in the run's summary, not lost


def test_rgb_only_catalog_runs_unchanged(shared, tmp_path):
    """An RGB-only catalog (VHR/PlanetScope-style: no NIR, no SWIR) goes through the same pipeline."""
    import json as _json

    from pipelines.monitoring import run_site

    src = shared / "benchmark" / "oscd-bercy" / "catalog"
    dst = tmp_path / "catalog"
    shutil.copytree(src, dst)
    for item_json in dst.glob("*/*.json"):
        doc = _json.loads(item_json.read_text())
        doc["assets"] = {k: v for k, v in doc["assets"].items() if k in ("red", "green", "blue")}
        item_json.write_text(_json.dumps(doc))
    site = read_sites(shared / "benchmark" / "oscd-bercy" / "sites.geojson").sites[0]
    from dataclasses import replace as _replace

    from change_detection import DetectorParams
    from shapely.geometry import box

    small = _replace(site, geometry=box(2.37, 48.83, 2.385, 48.845))
    res = run_site(small, LocalStacProvider(dst), "2016-12-01", "2017-08-30", DetectorParams(min_looks=1), resolution=10.0)
    assert res.status == "ok" and res.detections, "real urban change must show in RGB too"
    assert set(res.detections[0].evidence["features"]) == {"exg", "red", "green", "blue", "texture"}


# --- catalogs that name their assets and masks differently ------------------------------------------

QA_BITS = {0: 1 << 6, 1: (1 << 6) | (1 << 7), 2: 1 << 4, 3: 1 << 5, 4: (1 << 3) | (1 << 1) | (3 << 8), 255: 1}
"""Fmask class -> Landsat Collection 2 QA_PIXEL value (clear, water, shadow, snow, cloud with its
dilation and high confidence, fill)."""


def _restyle(src, dst, declare_bitfields: bool):
    """A copy of a shared catalog in the style of a Landsat Collection 2 catalog: band assets under
    other keys, found by their declared common names (STAC 1.0 ``eo:bands`` and STAC 1.1 ``bands``,
    scale and nodata in either place), and the Fmask asset re-coded as a QA_PIXEL bit field."""
    import json as _json

    shutil.copytree(src, dst)
    for tif in (dst / "assets").glob("*_fmask.tif"):
        with rasterio.open(tif) as f:
            fm, prof = f.read(1), f.profile
        qa = np.zeros(fm.shape, "uint16")
        for cls, bits in QA_BITS.items():
            qa[fm == cls] = bits
        prof.update(dtype="uint16", nodata=None)
        with rasterio.open(tif.with_name(tif.name.replace("_fmask", "_qa")), "w", **prof) as f:
            f.write(qa, 1)
    bitfields = [{"name": n, "offset": o, "length": ln, "classes": cls} for n, o, ln, cls in (
        ("fill", 0, 1, [{"name": "not_fill", "value": 0}, {"name": "fill", "value": 1}]),
        ("dilated_cloud", 1, 1, [{"name": "not_dilated", "value": 0}, {"name": "dilated", "value": 1}]),
        ("cloud", 3, 1, [{"name": "not_cloud", "value": 0}, {"name": "cloud", "value": 1}]),
        ("cloud_shadow", 4, 1, [{"name": "not_shadow", "value": 0}, {"name": "shadow", "value": 1}]),
        ("snow", 5, 1, [{"name": "not_snow", "value": 0}, {"name": "snow", "value": 1}]),
        ("clear", 6, 1, [{"name": "not_clear", "value": 0}, {"name": "clear", "value": 1}]),
        ("water", 7, 1, [{"name": "not_water", "value": 0}, {"name": "water", "value": 1}]),
        ("cloud_confidence", 8, 2, [{"name": n, "value": v} for v, n in enumerate(("not_set", "low", "medium", "high"))]),
    )]
    for item_json in dst.glob("*/*.json"):
        doc = _json.loads(item_json.read_text())
        a = doc["assets"]
        rb = a["red"]["raster:bands"][0]
        red = dict(a.pop("red"), **{"eo:bands": [{"name": "SR_B3", "common_name": "red"}]})
        nir = dict(a.pop("nir"), **{"eo:bands": [{"name": "SR_B4", "common_name": "nir08"}]})
        swir = {k: v for k, v in a.pop("swir16").items() if k != "raster:bands"}
        swir["bands"] = [{"name": "SR_B5", "eo:common_name": "swir16", "nodata": rb["nodata"], "raster:scale": rb["scale"],
                          "data_type": "int16"}]
        fmask = a.pop("fmask")
        qa = {"href": fmask["href"].replace("_fmask", "_qa"), "type": fmask["type"], "roles": ["data"]}
        if declare_bitfields:
            qa["classification:bitfields"] = bitfields
        a.update({"SR_B3": red, "SR_B4": nir, "SR_B5": swir, "qa_pixel": qa})
        item_json.write_text(_json.dumps(doc))


@pytest.mark.parametrize("declared", [True, False], ids=["bitfields-declared", "qa_pixel-by-key"])
def test_assets_found_by_common_name_and_qa_pixel_bits(case_2010, site, tmp_path, declared):
    """Bands under other keys are found by their declared common name (nir08 answers for nir), scale
    and nodata wherever STAC 1.0 or 1.1 puts them, and a QA_PIXEL bit-field mask gives the same clear
    and snow masks as the Fmask classes it was made from (declared, or by the ``qa_pixel`` key)."""
    dst = tmp_path / "catalog"
    _restyle(case_2010 / "catalog", dst, declared)
    req = site_request(site, pd.Timestamp("2010-09-01"), pd.Timestamp("2010-12-31"))
    want = LocalStacProvider(case_2010 / "catalog").load(req)
    got = LocalStacProvider(dst).load(req)
    assert set(got.data_vars) == {"red", "nir", "swir16", "clear", "snow"}
    for b in ("red", "nir", "swir16"):
        np.testing.assert_array_equal(got[b].values, want[b].values)
    np.testing.assert_array_equal(got.clear.values, want.clear.values)
    np.testing.assert_array_equal(got.snow.values, want.snow.values)
    assert float(got.snow.mean()) > 0.01 and 0.05 < float((~got.clear).mean()) < 0.95  # the masks are not trivial


def test_integer_reflectance_without_declared_scale(case_2010, site, tmp_path):
    """An integer band with no declared scale is read as reflectance x 10 000 and says so."""
    import json as _json

    dst = tmp_path / "catalog"
    shutil.copytree(case_2010 / "catalog", dst)
    for item_json in dst.glob("*/*.json"):
        doc = _json.loads(item_json.read_text())
        for k in ("red", "nir"):
            doc["assets"][k]["raster:bands"] = [{"data_type": "int16", "nodata": -9999}]
        item_json.write_text(_json.dumps(doc))
    req = site_request(site, pd.Timestamp("2010-06-01"), pd.Timestamp("2010-07-31"))
    want = LocalStacProvider(case_2010 / "catalog").load(req)
    got = LocalStacProvider(dst).load(req)
    for b in ("red", "nir", "swir16"):
        np.testing.assert_array_equal(got[b].values, want[b].values)
    assert "red, nir" in got.attrs["assumed_scale"] and "assumed_scale" not in want.attrs


def test_bitfield_flags_ignore_confidence_fields():
    import xarray as xr

    from pipelines.imagery.base import clear_from_bitfields, snow_from_bitfields
    from pipelines.imagery.stac_assets import LANDSAT_C2_QA_BITFIELDS

    conf = {"name": "cloud_confidence", "offset": 8, "length": 2,
            "classes": [{"name": n, "value": v} for v, n in enumerate(("not_set", "low", "medium", "high"))]}
    fields = [*LANDSAT_C2_QA_BITFIELDS, conf]
    # clear+low cloud confidence, water, dilated cloud, cirrus, snow, snow under cloud, fill, clear
    qa = xr.DataArray(np.array([64 | (1 << 8), 64 | 128, 2, 4, 32, 32 | 8, 1, 64], "uint16"))
    np.testing.assert_array_equal(clear_from_bitfields(qa, fields, None).values,
                                  [True, True, False, False, False, False, False, True])
    np.testing.assert_array_equal(snow_from_bitfields(qa, fields).values,
                                  [False, False, False, False, True, False, False, False])


@pytest.mark.parametrize("how", ["declared-offset", "processing-baseline"])
def test_scale_and_offset_are_read_per_item(case_2010, site, tmp_path, how):
    """A series whose later items store reflectance + 0.1 (Sentinel-2 L2A from processing baseline
    04.00, January 2022) reads as one series: by the offset each item declares, or, where it
    declares none, by its ``s2:processing_baseline``."""
    import json as _json

    dst = tmp_path / "catalog"
    shutil.copytree(case_2010 / "catalog", dst)
    changed = 0
    for item_json in dst.glob("*/*.json"):
        doc = _json.loads(item_json.read_text())
        late = doc["properties"]["datetime"] >= "2010-07-01"
        doc["properties"]["s2:processing_baseline"] = "04.00" if late else "02.14"
        for b in ("red", "nir", "swir16"):
            rb = doc["assets"][b]["raster:bands"][0]
            rb.pop("offset", None)
            if late:
                tif = item_json.parent.parent / "assets" / Path(doc["assets"][b]["href"]).name
                with rasterio.open(tif) as f:
                    dn, prof = f.read(1), f.profile
                with rasterio.open(tif, "w", **prof) as f:
                    f.write(np.where(dn == rb["nodata"], dn, dn + 1000).astype(dn.dtype), 1)
                if how == "declared-offset":
                    rb["offset"] = -0.1
        changed += late
        if how == "declared-offset":
            del doc["properties"]["s2:processing_baseline"]
        item_json.write_text(_json.dumps(doc))
    assert changed > 10
    req = site_request(site, pd.Timestamp("2010-03-01"), pd.Timestamp("2010-12-31"))
    want = LocalStacProvider(case_2010 / "catalog").load(req)
    got = LocalStacProvider(dst).load(req)
    for b in ("red", "nir", "swir16"):
        np.testing.assert_allclose(got[b].values, want[b].values, atol=2e-6)
        np.testing.assert_array_equal(np.isnan(got[b].values), np.isnan(want[b].values))


def test_native_resolution_from_assets_items_and_degrees():
    """Pixel size in metres: the finest requested band's own (asset gsd or transform), else the
    item's; a transform in degrees is converted; nonsense is not believed."""
    from datetime import datetime

    import pystac

    from pipelines.imagery.local_stac import native_resolution

    def item(props, assets):
        it = pystac.Item("x", None, None, datetime(2020, 1, 1), dict(props))
        for k, extra in assets.items():
            it.add_asset(k, pystac.Asset(f"{k}.tif", extra_fields=extra))
        return it

    s2 = item({"proj:epsg": 32631}, {"red": {"proj:transform": [10, 0, 5e5, 0, -10, 5.4e6]},
                                     "swir16": {"proj:transform": [20, 0, 5e5, 0, -20, 5.4e6]}})
    assert native_resolution(s2, ("red", "nir", "swir16")) == 10.0
    assert native_resolution(s2, ("swir16",)) == 20.0
    assert native_resolution(item({"gsd": 30}, {"red": {}}), ("red",)) == 30.0
    deg = item({"proj:epsg": 4326, "proj:transform": [8.983e-05, 0, 2.3, 0, -8.983e-05, 48.8]}, {"red": {}})
    assert native_resolution(deg, ("red",)) == pytest.approx(10.0, abs=0.05)
    assert native_resolution(item({}, {"red": {}}), ("red",)) is None
    assert native_resolution(item({"proj:epsg": 32631, "proj:transform": [1e-5, 0, 0, 0, -1e-5, 0]}, {"red": {}}),
                             ("red",)) is None


def test_archive_busy_is_transient_not_unreadable(case_2010, site, monkeypatch):
    """A 503 or a timeout while reading is the archive, not a file: the whole load is retried
    (TransientProviderError), no acquisition is probed or left out."""
    import pipelines.imagery.local_stac as ls
    from sitewatch.errors import TransientProviderError

    calls = []

    def busy(items, kwargs):
        calls.append(len(items))
        try:
            raise rasterio.errors.RasterioIOError("HTTP response code: 503")
        except rasterio.errors.RasterioIOError as exc:
            raise CorruptRaster(f"an asset could not be read ({exc})") from exc

    monkeypatch.setattr(ls, "_read", busy)
    req = site_request(site, pd.Timestamp("2010-06-01"), pd.Timestamp("2010-06-30"))
    with pytest.raises(TransientProviderError, match="503"):
        LocalStacProvider(case_2010 / "catalog").load(req)
    assert len(calls) == 1  # one read of all items; no per-item probing


def test_site_whose_every_acquisition_is_unreadable_is_reported(site):
    class Broken:
        name = "broken"

        def load(self, request):
            err = CorruptRaster("broken: no acquisition over the site could be read: X of 2010-06-04: ...")
            err.unreadable = [{"item": "X", "date": "2010-06-04", "asset": "red", "href": "/x.tif", "error": "bad"}]
            raise err

    res = run_site(site, Broken(), pd.Timestamp("2010-06-01"), pd.Timestamp("2010-06-30"))
    assert res.status == "unreadable" and "could be read" in res.message and "/x.tif" not in res.message
    assert [u["item"] for u in res.unreadable] == ["X"]


def test_a_site_too_large_is_not_read_and_the_others_go_on(case_2010, tmp_path, monkeypatch):
    """Over SITEWATCH_MAX_SITE_GB a site that cannot be cut into parts that fit (its buffer and
    reference ring alone are too large) is refused before its imagery is read, also when most of
    it comes from the pixel cache, and reported ``too_large``; the run's other sites are watched."""
    from pipelines.imagery import local_stac
    from pipelines.imagery.cache import CachedProvider
    from pipelines.monitoring import max_pixel_looks
    from pipelines.store import Store
    from pipelines.weekly import run_period
    from sites.geo import buffer_m

    sites = read_sites(case_2010 / "sites.geojson").sites[:2]
    big = replace(sites[0], site_id="BIG", geometry=buffer_m(sites[0].geometry, 1500), buffer_m=1200.0)
    cached = CachedProvider(LocalStacProvider(case_2010 / "catalog"), tmp_path / "cache")
    cached.load(site_request(big, pd.Timestamp("2010-03-01"), pd.Timestamp("2010-06-30")))  # fills the cache
    monkeypatch.setenv("SITEWATCH_MAX_SITE_GB", "0.2")
    assert max_pixel_looks() == int(0.2e9 / 215)
    reads = []
    real = local_stac._read
    monkeypatch.setattr(local_stac, "_read", lambda items, kw: reads.append(len(items)) or real(items, kw))
    res = run_site(big, LocalStacProvider(case_2010 / "catalog"), "2010-03-01", "2010-12-31")
    assert res.status == "too_large" and reads == []
    assert "63 looks of " in res.message and "over the limit of 0.9 M (0.2 GB, SITEWATCH_MAX_SITE_GB)" in res.message
    assert "cannot be split to fit" in res.message and "leave no room for a part" in res.message
    # the cache holds most of its days, and asks the catalog only for the rest: still refused, and
    # not one cached file is read (the limit may have been lowered since they were fetched)
    opened = []
    monkeypatch.setattr(CachedProvider, "_read", lambda *a: opened.append(a) or ([], []))
    assert run_site(big, cached, "2010-03-01", "2010-12-31").status == "too_large" and opened == []
    monkeypatch.undo()
    monkeypatch.setenv("SITEWATCH_MAX_SITE_GB", "0.2")
    # and the refusal names the days of every look, cached or not (parts are sized by them)
    from sitewatch.errors import SiteTooLarge

    monkeypatch.delenv("SITEWATCH_MAX_SITE_GB")
    middle = CachedProvider(LocalStacProvider(case_2010 / "catalog"), tmp_path / "middle")
    middle.load(site_request(big, pd.Timestamp("2009-06-01"), pd.Timestamp("2009-09-30"), history_years=0))
    monkeypatch.setenv("SITEWATCH_MAX_SITE_GB", "0.2")
    request = site_request(big, pd.Timestamp("2010-03-01"), pd.Timestamp("2010-12-31"))
    with pytest.raises(SiteTooLarge) as direct:
        LocalStacProvider(case_2010 / "catalog").load(request)
    for provider in (cached, middle):  # the rest asked for / days before and after the cached ones
        with pytest.raises(SiteTooLarge) as via_cache:
            provider.load(request)
        assert len(direct.value.days) == 63 and via_cache.value.days == direct.value.days
        assert str(via_cache.value) == str(direct.value)  # "63 looks of ...": all of them, not the cache's
    out, summary = run_period(Store(str(tmp_path / "sw.db")), [big, sites[1]], LocalStacProvider(case_2010 / "catalog"),
                              "2010-06-01", "2010-06-30", tmp_path / "out")
    assert summary["statuses"] == {"BIG": "too_large", sites[1].site_id: "ok"}
    import json as _json

    written = _json.loads((tmp_path / "out" / "summary.json").read_text())
    [why] = [s["reason"] for s in written["not_observed_this_week"] if s["site_id"] == "BIG"]
    assert "cannot be split to fit" in why
    monkeypatch.setenv("SITEWATCH_MAX_SITE_GB", "lots")
    with pytest.raises(Exception, match="not a number of gigabytes"):
        max_pixel_looks()


@pytest.mark.slow
def test_a_landscape_too_large_for_memory_is_watched_in_parts(case_2010, tmp_path, monkeypatch):
    """The five sites of the real 2010 case as one landscape, under a limit it does not fit: it is
    watched in parts that fit and, scored against the case's truth, finds the same events with
    no more false alarms than in one piece (each part normalises against its own ring, so a
    faint event may be dated differently).  Week by week, each part resumes its own stored
    state, and the answer equals the backfill's."""
    import shapely

    from change_detection.scoring import ScoredDetection, score_case
    from pipelines.evaluate import read_truth
    from pipelines.monitoring import unpack_part_states
    from pipelines.store import Store
    from pipelines.weekly import run_period
    from sites.geo import to_crs, utm_epsg

    sites = read_sites(case_2010 / "sites.geojson").sites
    land = replace(sites[0], site_id="LAND", name="Valley", geometry=shapely.union_all([s.geometry for s in sites]).convex_hull)
    catalog = LocalStacProvider(case_2010 / "catalog")
    whole = run_site(land, catalog, "2010-03-01", "2010-12-31")
    assert whole.status == "ok" and "parts" not in whole.message and len(whole.detections) >= 3
    monkeypatch.setenv("SITEWATCH_MAX_SITE_GB", "0.1")
    parts = run_site(land, catalog, "2010-03-01", "2010-12-31")
    assert parts.status == "ok" and parts.message.startswith("watched in 4 parts of 1.1 km")
    assert {d.site_id for d in parts.detections} == {"LAND"}
    assert len(unpack_part_states(parts.state)) == 4
    epsg = utm_epsg(land.geometry)
    truth = read_truth(case_2010, epsg)

    def scored(res):
        dets = [ScoredDetection(d.detection_id, "LAND", d.first_seen, to_crs(d.geometry, 4326, epsg))
                for d in res.detections]
        return score_case("land", truth, dets, 1, pd.Timestamp("2010-03-01"), pd.Timestamp("2010-12-31"))

    one, many = scored(whole), scored(parts)
    assert set(one.matches) == set(many.matches) and len(one.matches) >= 3
    assert many.false_alarms <= one.false_alarms
    assert any(d.evidence.get("merged_across_seam") for d in parts.detections)
    assert parts.last_clear == whole.last_clear and set(parts.clear_looks) == set(whole.clear_looks)
    with_dets = {d.evidence["part"] for d in parts.detections}  # their imagery is the offline map's base
    assert len(with_dets) >= 2 and {ov.site_id for ov in (parts.overview, *parts.more_overviews)} == with_dets

    weekly, backfill = Store(str(tmp_path / "w.db")), Store(str(tmp_path / "b.db"))
    run_period(backfill, [land], catalog, "2010-03-01", "2010-12-31", tmp_path / "b")
    run_period(weekly, [land], catalog, "2010-03-01", "2010-08-31", tmp_path / "w1")
    _, later = run_period(weekly, [land], catalog, "2010-09-01", "2010-12-31", tmp_path / "w2")
    assert later["statuses"] == {"LAND": "ok"} and 0 < later["looks_scored"] < parts.looks_scored

    def answer(store):
        f = store.detections()
        f = f[~f.status.isin(["superseded", "withdrawn"])]
        return sorted(zip(f.detection_id, f.first_seen, f.confidence))

    assert answer(weekly) == answer(backfill)
    offline = read_page(tmp_path / "b" / "map_offline.html")
    assert all(f"Site imagery {p}" in offline for p in with_dets)
    from pipelines.review import detection_timeseries

    series = detection_timeseries(weekly, answer(weekly)[0][0], catalog)  # the landscape cannot load whole
    assert len(series) > 10 and {"ndvi_inside", "ndvi_site", "difference"} <= set(series.columns)


@pytest.mark.slow
def test_a_landscape_in_parts_over_years_steps_each_part_and_resumes_them_weekly(case_2010, monkeypatch):
    """Watched since 2009 under a limit it does not fit, a landscape's first run goes in parts, each
    a year at a time; a week later each part resumes its own state from its history years, and
    the whole landscape is asked for once (and refused before reading), not stepped or recomputed.
    Before, the whole site was tried a year at a time, in parts up to that year, then the parts
    again over the whole period: every week."""
    import shapely

    from pipelines.monitoring import unpack_part_states
    from sitewatch.errors import SiteTooLarge

    sites = read_sites(case_2010 / "sites.geojson").sites
    land = replace(sites[0], site_id="LAND", geometry=shapely.union_all([s.geometry for s in sites]).convex_hull)
    catalog = LocalStacProvider(case_2010 / "catalog")
    loads, read = [], catalog.load

    def load(req):  # (area, first date, looks or "refused") of every load asked for
        try:
            ds = read(req)
        except SiteTooLarge:
            loads.append((req.geometry.area, req.start, "refused"))
            raise
        loads.append((req.geometry.area, req.start, ds.sizes["time"]))
        return ds

    monkeypatch.setattr(catalog, "load", load)
    monkeypatch.setenv("SITEWATCH_MAX_SITE_GB", "0.1")
    first = run_site(land, catalog, "2009-03-01", "2010-11-30")
    assert first.status == "ok" and len(unpack_part_states(first.state)) == 4
    whole = max(a for a, _, _ in loads)
    assert loads[-1][0] != whole and [n for a, _, n in loads if a == whole][-1] == "refused"
    by_part = pd.Series([a for a, _, _ in loads if a != whole]).value_counts()
    assert len(by_part) == 4 and (by_part == 2).all()  # each part: 2009-10, then resuming to 2010-11
    loads.clear()
    week = run_site(land, catalog, "2009-03-01", "2010-12-07", state=first.state)
    assert [n for a, _, n in loads if a == whole] == ["refused"] and len(loads) == 5
    assert all(start > pd.Timestamp("2007-06-01") for a, start, _ in loads if a != whole)  # history years only
    assert week.looks_scored < first.looks_scored / 10
    once = run_site(land, catalog, "2009-03-01", "2010-12-07")
    assert sorted((d.detection_id, d.first_seen, d.confidence) for d in week.detections) == \
        sorted((d.detection_id, d.first_seen, d.confidence) for d in once.detections)


def test_a_landscapes_parts_are_sized_for_a_years_load_not_for_every_look_since_the_epoch():
    """Parts were sized for every look since the epoch (and three history years): twelve years of
    looks every 8 days made 0.3 km parts each loading its 1.3 km of buffer and ring, and some years
    later none fitted and the landscape went unwatched.  Each part goes a year at a time and
    resumes its state, so they are sized for the most looks one such load holds."""
    from shapely.geometry import box

    from pipelines.imagery.base import check_size
    from pipelines.monitoring import LOAD_SPAN, looks_per_load, part_km_that_fits
    from sites import Site
    from sitewatch.errors import SiteTooLarge

    every_8_days = list(pd.date_range("2000-01-01", "2021-12-31", freq="8D"))

    class Refusing:  # knows its looks, and refuses every load before reading a pixel
        name = "refusing"

        def load(self, request):
            days = [d for d in every_8_days if request.start <= d <= request.end]
            check_size(replace(request, max_pixel_looks=1), len(days), 500, 500, 10.0, self.name, days)

    land = Site("BIG", "Landscape", box(106.0, 47.0, 106.07, 47.05), 50.0, "restricted", "V")
    res = run_site(land, Refusing(), "2009-03-01", "2020-11-30")
    with pytest.raises(SiteTooLarge) as refused:
        Refusing().load(site_request(land, "2009-03-01", "2020-11-30"))
    assert refused.value.n_looks > 600 and looks_per_load(refused.value) == len(
        [d for d in every_8_days if every_8_days[0] <= d <= every_8_days[0] + LOAD_SPAN])
    assert part_km_that_fits(50.0, 10.0, 256) == 1.9 and part_km_that_fits(50.0, 10.0, 1024) == 0.3
    assert "watched in" in res.message and "parts of 1.9 km" in res.message
    late = run_site(land, Refusing(), "2009-03-01", "2021-11-30")  # a year on: the same parts
    assert "parts of 1.9 km" in late.message
    refused.value.days = ()  # a provider that does not say its days: every look counts
    assert looks_per_load(refused.value) == refused.value.n_looks


def test_parts_merge_a_dig_on_their_seam_but_not_two_digs():
    """Two parts both see a dig on their seam (onsets 5 days apart): one detection, with both
    outlines and the higher confidence.  A later dig overlapping it, 60 days on, stays its own,
    as the detector splits onsets more than ``split_gap_days`` apart."""
    from shapely.geometry import box

    from change_detection import Detection
    from pipelines.monitoring import SiteResult, merge_parts
    from sites import Site

    site = Site("L", "Landscape", box(106.0, 47.0, 106.2, 47.1), 50.0, "restricted", "Tuv")
    parts = [replace(site, site_id="L-p1", geometry=box(106.0, 47.0, 106.1, 47.1)),
             replace(site, site_id="L-p2", geometry=box(106.1, 47.0, 106.2, 47.1))]

    def det(did, part, day, conf, x0):
        t = pd.Timestamp(day)
        return Detection(did, part, box(x0, 47.05, x0 + 0.002, 47.052), "EPSG:4326", t, t, t, 0.7, conf, 3000.0, 2,
                         "bare_soil_exposure", {"algorithm": "sw-seasonal-1"})

    a = SiteResult("L-p1", detections=[det("L-p1-a", "L-p1", "2011-06-01", "low", 106.099)])
    b = SiteResult("L-p2", detections=[det("L-p2-b", "L-p2", "2011-06-06", "high", 106.1),
                                       det("L-p2-c", "L-p2", "2011-08-05", "medium", 106.1005)])
    res = merge_parts(site, parts, [a, b], 10.0)
    assert [d.detection_id for d in res.detections] == ["L-p1-a", "L-p2-c"]
    seam = res.detections[0]
    assert seam.site_id == "L" and seam.confidence == "high" and seam.evidence["merged_across_seam"] == ["L-p2-b"]
    assert seam.geometry.bounds[2] == pytest.approx(106.102) and res.detections[1].evidence["part"] == "L-p2"


def _radar_catalog(ds, root: Path) -> Path:
    """A static STAC catalog of Sentinel-1-like items (``vv``, ``vh`` linear power as float32
    GeoTIFFs, 0 outside the swath), as Planetary Computer's ``sentinel-1-rtc`` keys them."""
    import pystac
    from rasterio.transform import from_origin
    from shapely.geometry import box, mapping

    from sites.geo import to_crs

    res = float(ds.attrs["resolution"])
    transform = from_origin(float(ds.x[0]) - res / 2, float(ds.y[0]) + res / 2, res, res)
    footprint = to_crs(box(float(ds.x[0]), float(ds.y[-1]), float(ds.x[-1]), float(ds.y[0])), 32613, 4326)
    cat = pystac.Catalog("s1", "Sentinel-1 GRD backscatter, made by the test")
    (root / "assets").mkdir(parents=True)
    for k, t in enumerate(pd.DatetimeIndex(ds.time.values)):
        ascending = k % 2 == 0  # two tracks, as the sat extension names them
        item = pystac.Item(f"S1-{t:%Y%m%d}", mapping(footprint), list(footprint.bounds), t.to_pydatetime(),
                           {"platform": "sentinel-1a", "proj:epsg": 32613, "sat:relative_orbit": 33 if ascending else 106,
                            "sat:orbit_state": "ascending" if ascending else "descending"})
        for b in ("vv", "vh"):
            path = root / "assets" / f"{item.id}_{b}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=ds.sizes["x"], height=ds.sizes["y"], count=1,
                               dtype="float32", crs="EPSG:32613", transform=transform, nodata=0) as dst:
                dst.write(ds[b].values[k], 1)
            item.add_asset(b, pystac.Asset(f"../assets/{path.name}", media_type=pystac.MediaType.GEOTIFF,
                                           roles=["data"], extra_fields={"raster:bands": [{"nodata": 0}]}))
        cat.add_item(item)
    cat.normalize_and_save(str(root), pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def test_a_radar_catalog_runs_through_the_same_pipeline(tmp_path):
    """Sentinel-1 backscatter from a local catalog (no mask asset: radar has no cloud) is read on
    the site's grid, a strip outside the swath stays out, and a change there is found and dated
    under every weather."""
    from shapely.geometry import box

    from change_detection.synthetic import add_sar_change, box_mask, synthetic_sar_series
    from sites import Site
    from sites.geo import to_crs

    ds = synthetic_sar_series(ny=40, nx=40, seed=5, start="2008-01-01", end="2011-10-31", slopes_db=3.0)
    dig = box_mask(ds, 20, 27, 20, 27)
    ds = add_sar_change(ds, dig, "2011-07-20", 4.0, 3.0)
    ds["vv"].values[:, :, :3] = 0  # beyond the swath's edge on every look
    ds["vh"].values[:, :, :3] = 0
    catalog = _radar_catalog(ds, tmp_path / "s1")
    x, y = ds.x.values, ds.y.values
    site = Site("SAR-1", "Radar barrows", to_crs(box(x[10], y[32], x[32], y[10]), 32613, 4326), 0.0, "restricted")
    loaded = LocalStacProvider(catalog).load(site_request(site, pd.Timestamp("2011-03-01"), pd.Timestamp("2011-10-31")))
    assert {"vv", "vh", "clear"} <= set(loaded.data_vars) and loaded.attrs["resolution"] == 10.0
    assert not bool(loaded.clear.sel(x=slice(None, x[2] + 1)).any())  # the swath's edge is not clear
    assert set(loaded.orbit.values) == {"ascending 33", "descending 106"}  # each look's track, for its baseline
    res = run_site(site, LocalStacProvider(catalog), "2011-03-01", "2011-10-31")
    assert res.status == "ok"
    (hit,) = res.detections
    first_look = pd.DatetimeIndex(ds.time.values)[ds.time.values >= np.datetime64("2011-07-20")][0]
    assert hit.first_seen == first_look and hit.kind_hint in ("surface_roughened", "new_structure")
    assert hit.evidence["features"] == ["vv_db", "vh_db", "vh_vv_db"]
