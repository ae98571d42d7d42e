"""Imagery chips for detections, and the site's own imagery as an offline base layer.

Colour: true colour (red, green, blue) where the source has it, otherwise the Landsat/Sentinel
false colour (SWIR, NIR, red) in which fresh bare soil shows bright magenta against green
vegetation.  Reflectance 0–0.35 is stretched to 0–255 with a gamma of 0.8 (fixed, so chips from
different dates compare).  The disturbance-index chip shows the NDVI change after − before
(red: loss, green: gain).  Sentinel-1 radar is shown in its usual false colour (VV, VH and the
VV/VH ratio in dB, speckle averaged as the detector does) and its change chip is the VV change
(red: less backscatter, green: more).
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass
from gettext import NullTranslations

import numpy as np
import pandas as pd
import xarray as xr
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from shapely.geometry.base import BaseGeometry

from change_detection import feature_stack, usable_looks

from .escape import text
from .language import ENGLISH_WORDS, N_, phrase

# rasterio's array-to-array reproject, shapes and rasterize warn "Dataset has no geotransform" at
# random when several threads call them at once (sites run in threads; a known spurious warning,
# opendatacube/odc-geo#131): they use the transforms they are given (tests/test_maps.py gets the
# same image in 16 threads as alone; every polygon test checks positions).  Only that message,
# only from rasterio.warp and rasterio.features, set once at import (filters set inside threads
# are not thread-safe; the weekly run imports this module), so operators are not told their
# imagery lacks a position.
warnings.filterwarnings("ignore", message="Dataset has no geotransform", category=NotGeoreferencedWarning,
                        module=r"rasterio\.(warp|features)")

STRETCH_MAX = 0.35
RADAR_DB = {"vv_db": (-25.0, 0.0), "vh_db": (-32.0, -5.0), "vv_vh_db": (0.0, 15.0)}
"""The dB ranges stretched to 0–255 for radar chips (fixed, so chips from different dates compare)."""
RADAR_COLOUR = N_("radar (VV, VH, VV/VH)")


@dataclass(frozen=True)
class Chips:
    before_date: str
    after_date: str
    before_png: bytes
    after_png: bytes
    index_png: bytes
    colour: str
    """``true colour``, ``false colour (SWIR, NIR, red)`` or :data:`RADAR_COLOUR`."""

    @property
    def index_name(self) -> str:
        return N_("VV change") if self.colour == RADAR_COLOUR else N_("NDVI change")

    def html(self, words: NullTranslations = ENGLISH_WORDS) -> str:
        """The three chips with their captions in ``words``' language (:mod:`maps.language`)."""
        def img(png: bytes, title: str) -> str:
            title = text(title)
            return (f"<figure style='display:inline-block;margin:2px'><img alt='{title}' title='{title}' width='110' "
                    f"src='data:image/png;base64,{base64.b64encode(png).decode()}'><figcaption style='font-size:10px'>"
                    f"{title}</figcaption></figure>")
        return ("<div class='sitewatch-chips'>" + img(self.before_png, phrase(words, "before {date}", date=self.before_date))
                + img(self.after_png, phrase(words, "after {date}", date=self.after_date))
                + img(self.index_png, words.gettext(self.index_name)) + "</div>")


def _rgb_bands(ds: xr.Dataset) -> tuple[list[str], str]:
    if "vv" in ds.data_vars and "red" not in ds.data_vars:
        return ["vv_db", "vh_db", "vv_vh_db"], RADAR_COLOUR
    if {"red", "green", "blue"} <= set(ds.data_vars):
        return ["red", "green", "blue"], N_("true colour")
    if {"swir16", "nir", "red"} <= set(ds.data_vars):
        return ["swir16", "nir", "red"], N_("false colour (SWIR, NIR, red)")
    b = [v for v in ds.data_vars if v not in ("clear", "snow")][:1] * 3
    return b, N_("grey")


def to_png(rgb: np.ndarray, scale: int = 1) -> bytes:
    """uint8 (y, x, 3|4) → PNG bytes, enlarged ``scale`` times with nearest neighbour."""
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _radar_layers(ds_t: xr.Dataset) -> dict[str, np.ndarray]:
    """A radar look's VV and VH in dB (speckle averaged, as the detector sees them) and their ratio;
    with VV alone, VV stands in for all three."""
    feats = feature_stack(ds_t.expand_dims("time") if "time" not in ds_t.dims else ds_t, texture=False)
    vv = feats["vv_db"].values.reshape(ds_t["vv"].shape)
    vh = feats["vh_db"].values.reshape(vv.shape) if "vh_db" in feats else vv
    return {"vv_db": vv, "vh_db": vh, "vv_vh_db": vv - vh if "vh_db" in feats else vv}


def composite(ds_t: xr.Dataset) -> np.ndarray:
    """One look → RGBA uint8; not-clear pixels transparent."""
    bands, colour = _rgb_bands(ds_t)
    if colour == RADAR_COLOUR:
        layers = _radar_layers(ds_t)
        arr = np.stack([(layers[b] - RADAR_DB[b][0]) / (RADAR_DB[b][1] - RADAR_DB[b][0]) for b in bands], axis=-1)
        arr = arr.astype("float32")
        rgb = np.clip(np.nan_to_num(arr, nan=0.0), 0, 1)
    else:
        arr = np.stack([ds_t[b].values for b in bands], axis=-1).astype("float32")
        rgb = np.clip(np.nan_to_num(arr / STRETCH_MAX, nan=0.0), 0, 1) ** 0.8
    alpha = (usable_looks(ds_t).values & np.isfinite(arr).all(-1)).astype("uint8") * 255
    return np.dstack([(rgb * 255).astype("uint8"), alpha])


def _clear_share(ds_t: xr.Dataset, covered: np.ndarray | None = None) -> float:
    """Share of the covered pixels (those the archive has data for at all) that are clear."""
    clear = usable_looks(ds_t).values
    if covered is not None:
        clear = clear[covered]
    return float(clear.mean()) if clear.size else 0.0


def detection_chips(ds: xr.Dataset, geom_utm: BaseGeometry, first_seen: pd.Timestamp, end: pd.Timestamp,
                    pad_px: int = 6, min_clear: float = 0.8) -> Chips | None:
    """Before/after chips around a detection: the last clear look before ``first_seen`` and the
    latest clear look up to ``end``.  None when either has no clear look."""
    res = float(ds.attrs.get("resolution", abs(float(ds.x[1] - ds.x[0]))))
    minx, miny, maxx, maxy = geom_utm.buffer(pad_px * res).bounds
    win = ds.sel(x=slice(minx, maxx), y=slice(maxy, miny))
    if win.sizes["x"] == 0 or win.sizes["y"] == 0:
        return None
    times = pd.DatetimeIndex(win.time.values)
    before = [k for k in range(len(times)) if times[k] < first_seen and _clear_share(win.isel(time=k)) >= min_clear]
    after = [k for k in range(len(times)) if first_seen <= times[k] <= end and _clear_share(win.isel(time=k)) >= min_clear]
    if not before or not after:
        return None
    b, a = win.isel(time=before[-1]), win.isel(time=after[-1])
    scale = max(1, int(110 // max(win.sizes["x"], win.sizes["y"])))
    _, colour = _rgb_bands(win)
    return Chips(str(times[before[-1]].date()), str(times[after[-1]].date()),
                 to_png(composite(b), scale), to_png(composite(a), scale), to_png(ndvi_change(b, a), scale), colour)


def ndvi_change(before: xr.Dataset, after: xr.Dataset) -> np.ndarray:
    """Change of the detector's vegetation index (NDVI, or ExG for RGB-only) as a red/green image;
    for radar, the change of VV backscatter (±6 dB full scale)."""
    if _rgb_bands(before)[1] == RADAR_COLOUR:
        v = np.clip(np.nan_to_num(_radar_layers(after)["vv_db"] - _radar_layers(before)["vv_db"], nan=0.0) / 6, -1, 1)
    else:
        def index(d):
            feats = feature_stack(d, texture=False)
            return feats["ndvi"] if "ndvi" in feats else feats["exg"]

        v = np.clip(np.nan_to_num((index(after) - index(before)).values, nan=0.0) / 0.4, -1, 1)
    out = np.zeros((*v.shape, 4), dtype="uint8")
    out[..., 0] = (255 * np.clip(-v, 0, 1)).astype("uint8")
    out[..., 1] = (255 * np.clip(v, 0, 1)).astype("uint8")
    out[..., 2] = 40
    out[..., 3] = 255
    return out


@dataclass(frozen=True)
class Overview:
    """The site's latest clear look, warped to lon/lat, for use as a map base layer."""

    site_id: str
    date: str
    png: bytes
    bounds: tuple[float, float, float, float]
    """lon_min, lat_min, lon_max, lat_max"""

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


def site_overview(ds: xr.Dataset, site_id: str, min_clear: float = 0.9) -> Overview | None:
    """Warp the most recent mostly-clear look to EPSG:4326 with rasterio (bilinear)."""
    from rasterio.crs import CRS
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    covered = usable_looks(ds).values.any(axis=0)  # the scene footprint; outside it nothing is ever clear
    looks = [k for k in range(ds.sizes["time"]) if _clear_share(ds.isel(time=k), covered) >= min_clear]
    if not looks:
        return None
    k = looks[-1]
    rgba = composite(ds.isel(time=k))
    res = float(ds.attrs["resolution"])
    x, y = ds.x.values, ds.y.values
    src_t = from_bounds(x[0] - res / 2, y[-1] - res / 2, x[-1] + res / 2, y[0] + res / 2, x.size, y.size)
    src_crs, dst_crs = CRS.from_string(ds.attrs["crs"]), CRS.from_epsg(4326)
    left, bottom, right, top = x[0] - res / 2, y[-1] - res / 2, x[-1] + res / 2, y[0] + res / 2
    dst_t, w, h = calculate_default_transform(src_crs, dst_crs, x.size, y.size, left, bottom, right, top)
    out = np.zeros((4, h, w), dtype="uint8")
    for i in range(4):
        reproject(rgba[..., i], out[i], src_transform=src_t, src_crs=src_crs, dst_transform=dst_t, dst_crs=dst_crs,
                  resampling=Resampling.nearest)
    lon0, lat1 = dst_t @ (0, 0)
    lon1, lat0 = dst_t @ (w, h)
    scale = max(1, int(600 // max(w, h)))
    return Overview(site_id, str(pd.Timestamp(ds.time.values[k]).date()), to_png(np.moveaxis(out, 0, -1), scale),
                    (lon0, lat0, lon1, lat1))

