"""Imagery providers: Earth Engine at the ee.data boundary, a STAC API on loopback, one contract."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import pytest
from shapely.geometry import box

from pipelines.imagery.base import ImageryRequest
from pipelines.imagery.earthengine import EarthEngineProvider, _initialize, plan_tiles
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.imagery.stac_api import StacApiProvider
from sitewatch.errors import ConfigError, ImageryError, NoImagery, ProviderAuthError, TransientProviderError

ee = pytest.importorskip("ee")


@pytest.fixture()
def ee_offline():
    """Earth Engine initialised with its own static algorithm list: expressions build, nothing is sent."""
    from ee import apitestcase

    tc = apitestcase.ApiTestCase()
    tc.setUp()
    yield
    tc.tearDown()


REQ = ImageryRequest(box(2.37, 48.83, 2.38, 48.84), pd.Timestamp("2024-05-01"), pd.Timestamp("2024-06-30"),
                     bands=("red", "nir", "swir16"))
DAYS = [pd.Timestamp("2024-05-03"), pd.Timestamp("2024-05-13")]


def fake_pixels(params, calls=None):
    """computePixels stand-in: values encode the pixel's easting/northing, so tiling errors show."""
    if calls is not None:
        calls.append(params)
    g = params["grid"]
    w, h = g["dimensions"]["width"], g["dimensions"]["height"]
    a = g["affineTransform"]
    x = a["translateX"] + a["scaleX"] * (np.arange(w) + 0.5)
    y = a["translateY"] + a["scaleY"] * (np.arange(h) + 0.5)
    dt = np.dtype([(b, "<f4") for b in params["bandIds"]])
    out = np.zeros((h, w), dtype=dt)
    for b in params["bandIds"]:
        out[b] = ((x[None, :] % 1000) / 1e4 + (y[:, None] % 1000) / 1e5)
    out["clear"] = 1.0
    if "snow" in params["bandIds"]:  # a 10 m column every 200 m of easting is flagged snow, not clear
        flagged = np.broadcast_to((x[None, :] % 200) < 10, (h, w))
        out["snow"] = np.where(flagged, 1.0, 0.0)
        out["clear"] = np.where(flagged, 0.0, 1.0)
    return out


def _millis(_obj):
    return [int(d.value // 1_000_000) for d in DAYS]


def _walk(node, found):
    if isinstance(node, dict):
        if "functionInvocationValue" in node:
            found.append(node["functionInvocationValue"])
        for v in node.values():
            _walk(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk(v, found)
    return found


def test_expression_masks_with_cloud_score_plus(ee_offline):
    p = EarthEngineProvider(initialize=lambda: None, cloud_score_threshold=0.65)
    col, bands = p.collection_expression(REQ)
    graph = ee.serializer.encode(p.daily_image(col, DAYS[0]), for_cloud_api=True)
    values = graph["values"]
    calls = _walk(values, [])
    loads = {c["arguments"]["id"]["constantValue"] for c in calls if c["functionName"] == "ImageCollection.load"}
    assert {"COPERNICUS/S2_SR_HARMONIZED", "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"} <= loads
    links = [c for c in calls if c["functionName"] == "Image.linkCollection"]
    assert links and links[0]["arguments"]["imageCollection"]["functionInvocationValue"]["arguments"]["id"][
        "constantValue"] == "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"

    def const(arg):
        if "constantValue" in arg:
            return arg["constantValue"]
        if "valueReference" in arg:
            return const(values[arg["valueReference"]])
        inner = arg.get("functionInvocationValue", {})
        return const(inner["arguments"]["value"]) if inner.get("functionName") == "Image.constant" else None

    gte = [c for c in calls if c["functionName"] == "Image.gte"]
    assert any(const(c["arguments"]["image2"]) == 0.65 and
               const(c["arguments"]["image1"]["functionInvocationValue"]["arguments"]["bandSelectors"]) == ["cs_cdf"]
               for c in gte), "the clear band must be cs_cdf >= threshold"
    assert any(c["functionName"] == "ImageCollection.mosaic" for c in calls)  # same-day tiles composited server-side
    eq = [c for c in calls if c["functionName"] == "Image.eq"]
    assert any(const(c["arguments"]["image2"]) == 11 and
               const(c["arguments"]["image1"]["functionInvocationValue"]["arguments"]["bandSelectors"]) == ["SCL"]
               for c in eq), "the snow flag must be SCL == 11 (snow/ice)"

    def band_test(arg):  # the band a comparison reads: "cs_cdf" of gte, "SCL" of eq
        inner = arg.get("functionInvocationValue") or values.get(arg.get("valueReference"), {}).get(
            "functionInvocationValue", {})
        if inner.get("functionName") in ("Image.gte", "Image.eq"):
            return const(inner["arguments"]["image1"]["functionInvocationValue"]["arguments"]["bandSelectors"])[0]
        return None

    # Cloud Score+ can pass snow as seen: clear is "cs_cdf >= threshold AND NOT snow", and the snow
    # flag is not restricted to pixels Cloud Score+ rejected
    negated = [band_test(c["arguments"]["value"]) for c in calls if c["functionName"] == "Image.not"]
    assert "SCL" in negated and "cs_cdf" not in negated
    ands = [c for c in calls if c["functionName"] == "Image.and"]
    assert any(band_test(c["arguments"]["image1"]) == "cs_cdf" for c in ands)
    assert bands == ["red", "nir", "swir16"]


def test_plan_tiles_respects_limits():
    tiles = plan_tiles(5000, 3000, n_bands=4, bytes_per_value=4, max_bytes=48 * 1024 * 1024)
    assert sum(t.width * t.height for t in tiles) == 5000 * 3000
    assert all(t.width * t.height * 16 <= 48 * 1024 * 1024 and max(t.width, t.height) <= 32768 for t in tiles)
    assert len(plan_tiles(100, 100, 4)) == 1


def test_requests_are_split_and_reassembled(ee_offline):
    calls = []
    p = EarthEngineProvider(initialize=lambda: None, pixels_getter=partial(fake_pixels, calls=calls),
                            value_getter=_millis, max_request_bytes=40 * 40 * 16)
    ds = p.load(REQ)
    assert len(calls) > len(DAYS)  # more than one request per day
    assert all(c["grid"]["dimensions"]["width"] * c["grid"]["dimensions"]["height"] * 16 <= 40 * 40 * 16 for c in calls)
    expected = (ds.x.values[None, :] % 1000) / 1e4 + (ds.y.values[:, None] % 1000) / 1e5
    np.testing.assert_allclose(ds.red.isel(time=0).values, expected, rtol=1e-5)
    assert ds.attrs["crs"] == "EPSG:32631" and ds.attrs["resolution"] == 10.0
    # the snow flag comes back beside the clear mask, tile by tile, never both on one pixel
    flagged = (ds.x % 200) < 10
    assert 0 < int(flagged.sum()) < ds.sizes["x"]
    assert bool((ds.snow == flagged).all()) and bool((ds.clear == ~flagged).all())


def test_a_site_too_large_is_refused_before_any_pixel_is_fetched(ee_offline):
    """Looks × pixels over the request's limit: refused with the numbers, no computePixels call."""
    from dataclasses import replace

    from sitewatch.errors import SiteTooLarge

    calls = []
    p = EarthEngineProvider(initialize=lambda: None, pixels_getter=partial(fake_pixels, calls=calls), value_getter=_millis)
    whole = p.load(REQ)
    n = whole.sizes["time"] * whole.sizes["y"] * whole.sizes["x"]
    calls.clear()
    with pytest.raises(SiteTooLarge, match=rf"2 looks of {whole.sizes['y']} × {whole.sizes['x']} pixels at 10 m"):
        p.load(replace(REQ, max_pixel_looks=n - 1))
    assert calls == []
    assert p.load(replace(REQ, max_pixel_looks=n)).sizes == whole.sizes  # at the limit: read


def test_429_then_success_is_retried_with_backoff(ee_offline):
    attempts, sleeps = [], []

    def flaky(params):
        attempts.append(1)
        if len(attempts) <= 2:
            raise ee.EEException("Too Many Requests (429): quota exceeded")
        return fake_pixels(params)

    p = EarthEngineProvider(initialize=lambda: None, pixels_getter=flaky, value_getter=_millis, sleep=sleeps.append)
    ds = p.load(REQ)
    assert len(ds.time) == 2 and len(sleeps) == 2 and sleeps[1] > 0


def test_auth_error_fails_fast(ee_offline):
    attempts = []

    def denied(params):
        attempts.append(1)
        raise ee.EEException("Permission denied (403): caller does not have permission")

    p = EarthEngineProvider(initialize=lambda: None, pixels_getter=denied, value_getter=_millis, sleep=lambda s: None)
    with pytest.raises(ProviderAuthError, match="authentication failed"):
        p.load(REQ)
    assert len(attempts) == 1


def test_malformed_response_and_empty_collection(ee_offline):
    bad = EarthEngineProvider(initialize=lambda: None, pixels_getter=lambda p: np.zeros((3, 3)), value_getter=_millis)
    with pytest.raises(ImageryError, match="malformed"):
        bad.load(REQ)
    empty = EarthEngineProvider(initialize=lambda: None, pixels_getter=fake_pixels, value_getter=lambda o: [])
    with pytest.raises(NoImagery, match="no sentinel-2 acquisition"):
        empty.load(REQ)


def test_initialize_without_credentials_says_what_to_do(monkeypatch):
    monkeypatch.setattr(ee.data, "is_initialized", lambda: False)

    def refuse(*a, **k):
        raise ee.EEException("Please authorize access to your Earth Engine account by running earthengine authenticate")

    monkeypatch.setattr(ee, "Initialize", refuse)
    with pytest.raises(ProviderAuthError, match="earthengine authenticate.*--provider stac"):
        _initialize(None, False)

    def hang(*a, **k):
        threading.Event().wait(5)

    monkeypatch.setattr(ee, "Initialize", hang)
    with pytest.raises(TransientProviderError, match="did not answer"):
        _initialize(None, False, timeout=0.2)


# --- a STAC API on loopback, answering with items recorded from the local catalog -------------------

@pytest.fixture(scope="module")
def stac_api(shared):
    cat = pystac.Catalog.from_file(str(shared / "benchmark" / "oscd-bercy" / "catalog" / "catalog.json"))
    items = []
    for it in cat.get_items(recursive=True):
        d = it.to_dict()
        for a in d["assets"].values():  # the recorded response points at the real asset files
            a["href"] = str(Path(it.get_self_href()).parent.joinpath(a["href"]).resolve())
        d["collection"] = "sentinel-2-l2a"
        items.append(d)
    landing = {"type": "Catalog", "id": "rec", "stac_version": "1.0.0", "description": "recorded",
               "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                              "https://api.stacspec.org/v1.0.0/item-search#query"],
               "links": []}
    hits, bodies = [], []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _send(self, doc):
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            if self.command == "POST":
                bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"))
            if self.path.startswith("/search"):
                return self._send({"type": "FeatureCollection", "features": items, "links": []})
            base = f"http://127.0.0.1:{self.server.server_port}"
            search = [{"rel": "search", "href": f"{base}/search", "type": "application/geo+json", "method": m}
                      for m in ("GET", "POST")]
            return self._send(dict(landing, links=[*search, {"rel": "self", "href": base + "/"}]))

        do_POST = do_GET  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/", hits, items, bodies
    server.shutdown()


def test_stac_api_provider_against_recorded_response(stac_api, shared):
    url, hits, _, bodies = stac_api
    sites = json.loads((shared / "benchmark" / "oscd-bercy" / "sites.geojson").read_text())
    from shapely.geometry import shape

    geom = shape(sites["features"][0]["geometry"]).centroid.buffer(0.004)
    req = ImageryRequest(geom, pd.Timestamp("2016-11-01"), pd.Timestamp("2017-09-30"), bands=("red", "nir", "swir16"))
    ds = StacApiProvider(url=url).load(req)
    assert any(h.startswith("/search") for h in hits)
    assert bodies[-1]["query"] == {"eo:cloud_cover": {"lt": 80.0}} and bodies[-1]["collections"] == ["sentinel-2-l2a"]
    StacApiProvider(url=url, collection="sentinel-1-rtc").search(req)  # radar carries no cloud cover
    assert "query" not in bodies[-1] and bodies[-1]["collections"] == ["sentinel-1-rtc"]
    with pytest.raises(ConfigError, match="sentinel-1-grd holds uncalibrated"):
        StacApiProvider(url=url, collection="sentinel-1-grd")
    local = LocalStacProvider(shared / "benchmark" / "oscd-bercy" / "catalog").load(
        ImageryRequest(geom, req.start, req.end, req.bands, resolution=10.0))
    # one contract: same grid, bands, dtypes and values from both providers
    assert ds.attrs["crs"] == local.attrs["crs"] == "EPSG:32631"
    np.testing.assert_array_equal(ds.x.values, local.x.values)
    np.testing.assert_array_equal(ds.y.values, local.y.values)
    for b in ("red", "nir", "swir16"):
        assert ds[b].dtype == np.float32
        np.testing.assert_allclose(ds[b].values, local[b].values, equal_nan=True)


def test_stac_api_planetary_computer_asset_names(stac_api, shared):
    """Planetary Computer keys Sentinel-2 bands B04/B08/B11 (no common-name keys): same pixels."""
    import copy

    url, hits, items, _ = stac_api
    saved = copy.deepcopy(items)
    try:
        for d in items:
            d["assets"] = {pc: d["assets"][cn] for pc, cn in (("B04", "red"), ("B08", "nir"), ("B11", "swir16"))}
        from shapely.geometry import shape

        sites = json.loads((shared / "benchmark" / "oscd-bercy" / "sites.geojson").read_text())
        geom = shape(sites["features"][0]["geometry"]).centroid.buffer(0.003)
        req = ImageryRequest(geom, pd.Timestamp("2016-11-01"), pd.Timestamp("2017-09-30"), bands=("red", "nir", "swir16"))
        ds = StacApiProvider(url=url).load(req)
    finally:
        items[:] = saved
    local = LocalStacProvider(shared / "benchmark" / "oscd-bercy" / "catalog").load(
        ImageryRequest(geom, req.start, req.end, req.bands, resolution=10.0))
    for b in ("red", "nir", "swir16"):
        np.testing.assert_allclose(ds[b].values, local[b].values, equal_nan=True)


@pytest.mark.parametrize("kind", ["local", "earthengine"])
def test_provider_contract(kind, shared, ee_offline):
    """Every provider returns the documented dataset: (time, y, x), float32 reflectance, bool clear."""
    if kind == "local":
        prov = LocalStacProvider(shared / "benchmark" / "dev-2010-a" / "catalog")
        req = ImageryRequest(box(-106.915, 40.285, -106.91, 40.29), pd.Timestamp("2010-06-01"), pd.Timestamp("2010-07-31"))
    else:
        prov = EarthEngineProvider(initialize=lambda: None, pixels_getter=fake_pixels, value_getter=_millis)
        req = REQ
    ds = prov.load(req)
    assert tuple(ds.red.dims) == ("time", "y", "x") and ds.clear.dtype == bool
    assert {"red", "nir", "swir16", "clear"} <= set(ds.data_vars)
    assert all(ds[b].dtype == np.float32 for b in ("red", "nir", "swir16"))
    assert ds.snow.dtype == bool and not bool((ds.snow & ds.clear).any())  # the provider's snow/ice flag
    vals = ds.red.where(ds.clear).values
    assert np.nanmin(vals) >= -0.05 and np.nanmax(vals) <= 1.0
    assert ds.attrs["crs"].startswith("EPSG:326") and ds.attrs["provider"] == prov.name
    assert len(ds.item_id) == len(ds.time) and (np.diff(ds.x.values) > 0).all() and (np.diff(ds.y.values) < 0).all()


def test_earth_engine_grid_equals_the_local_grid(shared, ee_offline):
    """Same site, same dates, same 10 m UTM pixel grid from Earth Engine and from the local catalog."""
    from shapely.geometry import shape

    sites = json.loads((shared / "benchmark" / "oscd-bercy" / "sites.geojson").read_text())
    geom = shape(sites["features"][0]["geometry"]).centroid.buffer(0.004)
    req = ImageryRequest(geom, pd.Timestamp("2016-11-01"), pd.Timestamp("2017-09-30"),
                         bands=("red", "nir", "swir16"), resolution=10.0)
    local = LocalStacProvider(shared / "benchmark" / "oscd-bercy" / "catalog").load(req)
    remote = EarthEngineProvider(initialize=lambda: None, pixels_getter=fake_pixels, value_getter=_millis).load(req)
    assert local.attrs["crs"] == remote.attrs["crs"]
    np.testing.assert_array_equal(local.x.values, remote.x.values)
    np.testing.assert_array_equal(local.y.values, remote.y.values)


def test_landsat_expression_masks_the_qa_pixel_flags(ee_offline):
    """Landsat 8/9: fill, dilated cloud, cirrus, cloud and shadow are not clear; snow is the snow
    flag only where none of those is set (the flags the STAC providers read from QA_PIXEL)."""
    p = EarthEngineProvider(initialize=lambda: None, collection="landsat")
    col, bands = p.collection_expression(REQ)
    graph = ee.serializer.encode(p.daily_image(col, DAYS[0]), for_cloud_api=True)
    masks = set()
    for c in _walk(graph["values"], []):
        if c["functionName"] == "Image.bitwiseAnd":
            arg = c["arguments"]["image2"]
            inner = arg.get("functionInvocationValue") or graph["values"].get(arg.get("valueReference"), {}).get(
                "functionInvocationValue", {})
            value = inner.get("arguments", {}).get("value", {})
            if "valueReference" in value:
                value = graph["values"][value["valueReference"]]
            masks.add(value.get("constantValue"))
    assert masks == {0b111111, 0b100000, 0b011111}
    assert bands == ["red", "nir", "swir16"]


def test_sentinel1_expression_and_backscatter_as_power(ee_offline):
    """Sentinel-1 GRD: interferometric wide swath with both polarisations, one orbit pass if
    asked, dB turned into linear power server-side; every pixel the swath has is clear (radar
    sees through cloud), none is snow.  What comes back is a dataset the detector scores."""
    req = replace(REQ, bands=("red", "nir", "swir16", "vv", "vh"))  # what the weekly run asks for

    def swath(params):  # as the expression returns it: power, 0 with clear 0 beyond the swath's edge
        out = fake_pixels(params)
        x = params["grid"]["affineTransform"]["translateX"] + 10 * (np.arange(out.shape[1]) + 0.5)
        edge = np.broadcast_to(x < 453_900, out.shape)
        out["vv"], out["vh"] = np.where(edge, 0, 0.05), np.where(edge, 0, 0.01)
        out["clear"], out["snow"] = np.where(edge, 0.0, 1.0), 0.0
        return out

    def values(obj):  # the acquisition times, or each image's pass and track
        if isinstance(obj, ee.Dictionary):
            return {"pass": ["DESCENDING", "DESCENDING"], "orbit": [106, 33]}
        return _millis(obj)

    p = EarthEngineProvider(initialize=lambda: None, collection="sentinel-1", orbit_pass="descending",
                            pixels_getter=swath, value_getter=values)
    col, bands = p.collection_expression(req)
    assert bands == ["vv", "vh"]
    graph = ee.serializer.encode(p.daily_image(col, DAYS[0]), for_cloud_api=True)
    text = json.dumps(graph)
    assert '"COPERNICUS/S1_GRD"' in text and '"IW"' in text and '"DESCENDING"' in text
    calls = {c["functionName"] for c in _walk(graph["values"], [])}
    assert {"Image.pow", "Image.divide", "Filter.listContains"} <= calls
    ds = p.load(req)
    assert set(ds.data_vars) == {"vv", "vh", "clear", "snow"} and ds.attrs["resolution"] == 10.0
    edge = (ds.x < 453_900).broadcast_like(ds.clear)
    assert bool((ds.clear == ~edge).all()) and not bool(ds.snow.any())
    assert float(ds.vv.where(ds.clear).max()) == pytest.approx(0.05) and bool(ds.vv.where(edge).isnull().all())
    assert list(ds.orbit.values) == ["descending 106", "descending 33"]  # the detector's baseline follows the track
    with pytest.raises(ValueError, match="orbit_pass must be ascending or descending"):
        EarthEngineProvider(initialize=lambda: None, collection="sentinel-1", orbit_pass="sideways")


def test_the_pixel_cache_keeps_each_collection_apart(ee_offline, tmp_path):
    """Earth Engine's Sentinel-2 and Sentinel-1 over the same site share the provider's name and
    the request; with one cache folder, the radar run was answered with the optical pixels."""
    from pipelines.imagery.cache import CachedProvider

    def values(obj):
        return {"pass": ["ASCENDING"] * 2, "orbit": [33, 33]} if isinstance(obj, ee.Dictionary) else _millis(obj)

    req = replace(REQ, bands=("red", "nir", "swir16", "vv", "vh"))  # what the weekly run asks for
    optical, radar = (CachedProvider(EarthEngineProvider(initialize=lambda: None, collection=c, pixels_getter=fake_pixels,
                                                         value_getter=values), tmp_path / "cache")
                      for c in ("sentinel-2", "sentinel-1"))
    assert "red" in optical.load(req) and "vv" not in optical.load(req)
    again = radar.load(req)
    assert "vv" in again and "red" not in again and radar.fetched  # fetched, not taken from the optical run
