"""The local static STAC provider on the real shared catalogs."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio

from pipelines.imagery.base import ImageryRequest
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import site_request
from sites import read_sites
from sitewatch.errors import CorruptRaster, NoImagery


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


def test_truncated_geotiff_raises_corrupt_raster(case_2010, site, tmp_path):
    copy = tmp_path / "catalog"
    shutil.copytree(case_2010 / "catalog", copy)
    victim = sorted((copy / "assets").glob("*_red.tif"))[40]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # opens fine, fails on read
    prov = LocalStacProvider(copy)
    with pytest.raises(CorruptRaster, match="could not be read"):
        prov.load(site_request(site, pd.Timestamp("2010-03-01"), pd.Timestamp("2012-12-31")))


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
    assert set(res.detections[0].evidence["features"]) == {"exg", "red", "green", "blue"}
