"""Google Earth Engine provider: the production source.

Compositing and masking run server-side: Sentinel-2 SR (``COPERNICUS/S2_SR_HARMONIZED``) is
linked to Cloud Score+ (``GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED``), pixels with ``cs_cdf``
below the threshold are masked (snow, SCL 11, which Cloud Score+ can pass as seen, is flagged), same-day tiles are mosaicked, reflectance is scaled to 0-1 and a
``clear`` band and a ``snow`` flag are computed — all in the expression graph.  Landsat 8/9
Collection 2 L2 is the alternative (QA_PIXEL cloud, shadow, snow, fill bits), and Sentinel-1 GRD
radar backscatter (VV, VH; interferometric wide swath, optionally one orbit pass), which clouds do
not stop.  Pixels come back through
``ee.data.computePixels`` as NumPy structured arrays on the site's UTM grid, split into requests
under EE's limits (:func:`plan_tiles`); quota/429/5xx errors are retried with backoff, auth errors
fail fast.  ``ee.Initialize`` is never called at import; it runs once, with a timeout, on the
first load.  Credentials: a service-account key file named by ``SITEWATCH_EE_KEY_FILE`` or
``GOOGLE_APPLICATION_CREDENTIALS`` (never in the repository), else the user's
``earthengine authenticate`` token.

The ``pixels_getter`` and ``value_getter`` parameters are the remote calls; tests pass fakes at
exactly that boundary.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from sitewatch.errors import ImageryError, NoImagery, ProviderAuthError, TransientProviderError

from .base import ImageryRequest, check_size, finish_dataset, orbit_label, orbits_by_day
from .retries import with_retries

MAX_REQUEST_BYTES = 48 * 1024 * 1024  # computePixels limit on uncompressed bytes
MAX_SIDE_PX = 32768
S2_BANDS = {"blue": "B2", "green": "B3", "red": "B4", "nir": "B8", "swir16": "B11", "swir22": "B12"}
MASK_BANDS = ("clear", "snow")
"""Computed server-side with the reflectance: the clear mask and the provider's snow/ice flag
(Sentinel-2 SCL 11, Landsat QA_PIXEL bit 5), which the detector checks against the spectrum."""
S1_BANDS = {"vv": "VV", "vh": "VH"}
"""Sentinel-1 GRD (``COPERNICUS/S1_GRD``): EE has calibrated, terrain-corrected and border-noise
masked it, in dB; it is delivered as linear power, which the detector averages over speckle."""
L89_BANDS = {"blue": "SR_B2", "green": "SR_B3", "red": "SR_B4", "nir": "SR_B5", "swir16": "SR_B6", "swir22": "SR_B7"}
INIT_TIMEOUT_S = 60.0
COLLECTIONS = ("sentinel-2", "landsat", "sentinel-1")
LANDSAT_NOT_CLEAR = 0b111111
"""QA_PIXEL bits that make a Landsat 8/9 pixel not clear: fill, dilated cloud, cirrus, cloud, shadow, snow."""
LANDSAT_SNOW = 0b100000


@dataclass(frozen=True)
class Tile:
    col0: int
    row0: int
    width: int
    height: int


def plan_tiles(width: int, height: int, n_bands: int, bytes_per_value: int = 4,
               max_bytes: int = MAX_REQUEST_BYTES, max_side: int = MAX_SIDE_PX) -> list[Tile]:
    """Split a width x height grid into requests under EE's byte and side limits (pure)."""
    if width <= 0 or height <= 0:
        raise ValueError("empty grid")
    per_px = n_bands * bytes_per_value
    if per_px > max_bytes:
        raise ValueError("a single pixel exceeds the request limit")
    side = min(max_side, int(math.isqrt(max_bytes // per_px)))
    tiles = []
    for r in range(0, height, side):
        for c in range(0, width, side):
            tiles.append(Tile(c, r, min(side, width - c), min(side, height - r)))
    return tiles


def _initialize(project: str | None, high_volume: bool, timeout: float = INIT_TIMEOUT_S) -> None:
    import ee

    if ee.data.is_initialized():
        return
    key_file = os.environ.get("SITEWATCH_EE_KEY_FILE") or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    kwargs = {"project": project or os.environ.get("SITEWATCH_EE_PROJECT")}
    if high_volume:
        kwargs["opt_url"] = ee.data.HIGH_VOLUME_API_BASE_URL
    box: dict[str, BaseException | None] = {"error": None}

    def run() -> None:
        try:
            creds = ee.ServiceAccountCredentials(None, key_file=key_file) if key_file else None
            ee.Initialize(creds, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TransientProviderError(f"earthengine: ee.Initialize did not answer in {timeout:.0f} s (no network?)")
    if box["error"] is not None:
        raise ProviderAuthError(
            f"earthengine: cannot initialise ({box['error']}); run `earthengine authenticate`, or set "
            "SITEWATCH_EE_KEY_FILE to a service-account key and SITEWATCH_EE_PROJECT to a Cloud project; "
            "or use --provider stac / local"
        ) from box["error"]


class EarthEngineProvider:
    name = "earthengine"

    def __init__(
        self, *, collection: str = "sentinel-2", cloud_score_threshold: float = 0.6, project: str | None = None,
        high_volume: bool = False, pixels_getter: Callable | None = None, value_getter: Callable | None = None,
        initialize: Callable[[], None] | None = None, attempts: int = 5, sleep: Callable[[float], None] | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES, orbit_pass: str | None = None,
    ):
        if collection not in COLLECTIONS:
            raise ValueError(f"collection must be one of {COLLECTIONS}, not {collection!r}")
        if orbit_pass is not None and orbit_pass.upper() not in ("ASCENDING", "DESCENDING"):
            raise ValueError(f"orbit_pass must be ascending or descending, not {orbit_pass!r}")
        self.collection = collection
        self.orbit_pass = orbit_pass.upper() if orbit_pass else None
        self.threshold = float(cloud_score_threshold)
        self._init = initialize or (lambda: _initialize(project, high_volume))
        self._pixels = pixels_getter
        self._value = value_getter
        self.attempts = attempts
        self._sleep = sleep
        self.max_request_bytes = max_request_bytes
        self.calls = 0

    @property
    def source(self) -> str:
        """What the pixels are, for the pixel cache's key: the collection and how it is masked."""
        return f"{self.name}|{self.collection}|{self.orbit_pass or ''}|{self.threshold}"

    # --- the server-side expression -------------------------------------------------------------
    def collection_expression(self, request: ImageryRequest):
        """The masked, scaled, daily-mosaicked ``ee.ImageCollection`` for the request."""
        import ee

        region = ee.Geometry(request.geometry.__geo_interface__)
        start, end = str(request.start.date()), str((request.end + pd.Timedelta(days=1)).date())
        if self.collection == "sentinel-2":
            names = {k: v for k, v in S2_BANDS.items() if k in request.bands}
            s2 = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterBounds(region).filterDate(start, end)
            csp = ee.ImageCollection("GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED")
            threshold = self.threshold

            def prep(img):
                # Cloud Score+ grades how well the surface is seen, and snow is a surface, so it
                # can pass as clear.  Sen2Cor's SCL 11 (snow or ice, exclusive of its cloud
                # classes) is the snow flag, as in the STAC providers, and is never clear.
                snow = img.select("SCL").eq(11)
                clear = img.select("cs_cdf").gte(threshold).And(snow.Not())
                refl = img.select(list(names.values()), list(names)).divide(10000).toFloat()
                return (refl.addBands(clear.rename("clear").toFloat()).addBands(snow.rename("snow").toFloat())
                        .copyProperties(img, ["system:time_start"]))

            col = s2.linkCollection(csp, ["cs_cdf"]).map(prep)
        elif self.collection == "sentinel-1":
            names = {k: v for k, v in S1_BANDS.items() if k in request.bands}
            s1 = (ee.ImageCollection("COPERNICUS/S1_GRD").filterBounds(region).filterDate(start, end)
                  .filter(ee.Filter.eq("instrumentMode", "IW")))
            for pol in names.values():
                s1 = s1.filter(ee.Filter.listContains("transmitterReceiverPolarisation", pol))
            if self.orbit_pass:  # one viewing geometry: ascending and descending looks differ on slopes
                s1 = s1.filter(ee.Filter.eq("orbitProperties_pass", self.orbit_pass))

            def prep(img):
                # radar sees through cloud: a pixel is clear where the swath has it (EE masks the
                # border noise); there is no snow flag
                db = img.select(list(names.values()), list(names))
                clear = db.mask().reduce(ee.Reducer.min()).gt(0).unmask(0)
                power = ee.Image(10).pow(db.divide(10)).unmask(0).toFloat()
                return (power.addBands(clear.rename("clear").toFloat())
                        .addBands(ee.Image(0).rename("snow").toFloat())
                        .copyProperties(img, ["system:time_start"]))

            col = s1.map(prep)
        else:
            names = {k: v for k, v in L89_BANDS.items() if k in request.bands}
            l8 = ee.ImageCollection("LANDSAT/LC08/C02/T1_L2").merge(ee.ImageCollection("LANDSAT/LC09/C02/T1_L2"))
            l8 = l8.filterBounds(region).filterDate(start, end)

            def prep(img):
                qa = img.select("QA_PIXEL")
                # bits: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 shadow, 5 snow (the flags the
                # STAC providers read from QA_PIXEL's bit fields)
                bad = qa.bitwiseAnd(LANDSAT_NOT_CLEAR).neq(0)
                snow = qa.bitwiseAnd(LANDSAT_SNOW).neq(0).And(qa.bitwiseAnd(LANDSAT_NOT_CLEAR & ~LANDSAT_SNOW).eq(0))
                refl = img.select(list(names.values()), list(names)).multiply(0.0000275).add(-0.2).toFloat()
                return (refl.addBands(bad.Not().rename("clear").toFloat()).addBands(snow.rename("snow").toFloat())
                        .copyProperties(img, ["system:time_start"]))

            col = l8.map(prep)
        return col, list(names)

    def daily_image(self, col, day: pd.Timestamp):
        import ee

        d0 = ee.Date(str(day.date()))
        return col.filterDate(d0, d0.advance(1, "day")).mosaic().set("system:time_start", d0.millis())

    # --- remote calls (injectable) ------------------------------------------------------------------
    def _get_value(self, obj):
        import ee

        self.calls += 1
        if self._value is not None:
            return self._value(obj)
        return ee.data.computeValue(obj)

    def _get_pixels(self, params: dict):
        import ee

        self.calls += 1
        if self._pixels is not None:
            return self._pixels(params)
        return ee.data.computePixels(params)

    def _retry(self, fn):
        kw = {"sleep": self._sleep} if self._sleep else {}
        return with_retries(fn, provider=self.name, attempts=self.attempts, **kw)

    # --- the interface --------------------------------------------------------------------------
    def grid(self, request: ImageryRequest) -> tuple[int, int, float, float, float]:
        from sites.geo import to_crs

        epsg = request.output_epsg
        res = request.resolution or (30.0 if self.collection == "landsat" else 10.0)
        minx, miny, maxx, maxy = to_crs(request.geometry, 4326, epsg).bounds
        x0, y1 = math.floor(minx / res) * res, math.ceil(maxy / res) * res
        width, height = int(math.ceil((maxx - x0) / res)), int(math.ceil((y1 - miny) / res))
        return width, height, x0, y1, res

    def load(self, request: ImageryRequest) -> xr.Dataset:
        self._init()
        col, bands = self.collection_expression(request)
        if not bands:
            raise NoImagery(f"earthengine: none of the bands {request.bands} exists in {self.collection}")
        millis = self._retry(lambda: self._get_value(col.aggregate_array("system:time_start")))
        if not isinstance(millis, list):
            raise ImageryError(f"earthengine: malformed acquisition list ({type(millis).__name__})")
        if not millis:
            raise NoImagery(f"earthengine: no {self.collection} acquisition between {request.start.date()} "
                            f"and {request.end.date()} over the site")
        days = sorted({pd.Timestamp(int(m), unit="ms").normalize() for m in millis})
        width, height, x0, y1, res = self.grid(request)
        check_size(request, len(days), height, width, res, self.name, days)
        epsg = request.output_epsg
        n_bands = len(bands) + len(MASK_BANDS)
        tiles = plan_tiles(width, height, n_bands, 4, self.max_request_bytes)
        cube = {b: np.full((len(days), height, width), np.nan, dtype="float32") for b in [*bands, *MASK_BANDS]}
        for k, day in enumerate(days):
            img = self.daily_image(col, day)
            for t in tiles:
                params = {
                    "expression": img, "fileFormat": "NUMPY_NDARRAY", "bandIds": [*bands, *MASK_BANDS],
                    "grid": {"dimensions": {"width": t.width, "height": t.height},
                             "affineTransform": {"scaleX": res, "shearX": 0, "translateX": x0 + t.col0 * res,
                                                 "shearY": 0, "scaleY": -res, "translateY": y1 - t.row0 * res},
                             "crsCode": f"EPSG:{epsg}"},
                }
                arr = self._retry(lambda p=params: self._get_pixels(p))
                self._check(arr, bands, t)
                for b in [*bands, *MASK_BANDS]:
                    cube[b][k, t.row0:t.row0 + t.height, t.col0:t.col0 + t.width] = arr[b].astype("float32")
        x = x0 + res * (np.arange(width) + 0.5)
        y = y1 - res * (np.arange(height) + 0.5)
        coords = {"time": pd.DatetimeIndex(days), "y": y, "x": x}
        raw = xr.Dataset({b: (("time", "y", "x"), a) for b, a in cube.items() if b not in MASK_BANDS}, coords=coords)
        clear, snow = (xr.DataArray(np.nan_to_num(cube[m], nan=0.0) > 0.5, coords=coords, dims=("time", "y", "x"))
                       for m in MASK_BANDS)
        ds = finish_dataset(raw, tuple(bands), {}, clear, epsg, res, self.name, snow=snow)
        ids = [f"{self.collection}:{d.date()}" for d in days]
        ds = ds.assign_coords(item_id=("time", ids), platform=("time", [self.collection] * len(days)))
        if self.collection == "sentinel-1":
            ds = ds.assign_coords(orbit=("time", self._orbits(col, millis, days)))
        return ds

    def _orbits(self, col, millis: list, days: list[pd.Timestamp]) -> list[str]:
        """Each day's viewing geometry (``descending 106``: orbit pass and relative orbit), so that
        the detector compares a look with earlier looks from the same track; "" for a day whose
        images come from more than one, or when EE's answer is malformed."""
        import ee

        meta = self._retry(lambda: self._get_value(ee.Dictionary({
            "pass": col.aggregate_array("orbitProperties_pass"),
            "orbit": col.aggregate_array("relativeOrbitNumber_start")})))
        passes, tracks = (meta.get("pass"), meta.get("orbit")) if isinstance(meta, dict) else (None, None)
        if not isinstance(passes, list) or not isinstance(tracks, list) or not len(passes) == len(tracks) == len(millis):
            return [""] * len(days)
        return orbits_by_day(((pd.Timestamp(int(m), unit="ms").normalize(), orbit_label(ps, tr))
                              for m, ps, tr in zip(millis, passes, tracks)), days)

    @staticmethod
    def _check(arr, bands: list[str], t: Tile) -> None:
        names = getattr(getattr(arr, "dtype", None), "names", None)
        if not names or any(b not in names for b in [*bands, *MASK_BANDS]):
            raise ImageryError(f"earthengine: malformed pixel response (fields {names}, expected {[*bands, *MASK_BANDS]})")
        if arr.shape != (t.height, t.width):
            raise ImageryError(f"earthengine: pixel response has shape {arr.shape}, expected {(t.height, t.width)}")
