"""The one imagery interface every provider implements.

A provider turns an :class:`ImageryRequest` (an area in lon/lat, a period, band names, a grid)
into an ``xarray.Dataset`` with the same contract whatever the source:

* dims ``(time, y, x)`` on the site's UTM grid (``x``/``y`` pixel centres in metres);
* one float32 variable per reflectance band, surface reflectance 0-1 (scale/offset applied),
  NaN where the pixel is fill/nodata;
* a boolean ``clear`` variable: True where the provider's own mask says clear land or water
  (not cloud, shadow, snow, cirrus, saturated or fill);
* where the mask has a snow/ice class, a boolean ``snow`` variable: True where the mask says snow
  or ice and nothing worse (the detector checks such flags against the pixel's spectrum);
* attrs ``crs`` (``"EPSG:326xx"``), ``resolution`` (metres), ``provider``;
* per-time coordinates ``item_id`` and ``platform``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr
from shapely.geometry.base import BaseGeometry

from change_detection.features import BACKSCATTER_BANDS

# Names of mask classes that do *not* count as a clear look, across Fmask, Sentinel-2 SCL and others.
NOT_CLEAR_CLASSES = frozenset(
    {
        "cloud", "cloud_shadow", "shadow", "snow", "ice", "snow_ice", "fill", "no_data", "nodata",
        "saturated", "saturated_or_defective", "defective", "cirrus", "thin_cirrus",
        "cloud_medium_probability", "cloud_high_probability", "dark_area_pixels", "unclassified",
        "cloud_shadows", "high_cloud", "medium_cloud",
    }
)
# Sentinel-2 L2A scene classification (SCL) values that are not clear (ESA L2A product spec).
SCL_NOT_CLEAR = (0, 1, 3, 8, 9, 10, 11)
VALID_REFLECTANCE = (-0.05, 1.0)
# Mask classes that say "snow or ice" (and nothing worse): the detector checks these against the
# pixel's spectrum, so a snow flag on what is spectrally bare soil does not hide a change.
SNOW_CLASSES = frozenset({"snow", "ice", "snow_ice"})
SCL_SNOW = (11,)


@dataclass(frozen=True)
class ImageryRequest:
    """What to load: an area, a period, bands and the output grid."""

    geometry: BaseGeometry
    """Area to load, lon/lat (the site, its buffer and the reference ring around it)."""
    start: pd.Timestamp
    end: pd.Timestamp
    bands: tuple[str, ...] = ("red", "nir", "swir16")
    epsg: int | None = None
    """Output CRS; default the UTM zone of the geometry."""
    resolution: float | None = None
    """Output pixel size in metres; default the source's native size."""
    extra: dict = field(default_factory=dict, hash=False, compare=False)
    max_pixel_looks: int | None = field(default=None, compare=False)
    """Refuse (:class:`SiteTooLarge`) before reading when looks × pixels would exceed this."""

    @property
    def output_epsg(self) -> int:
        from sites.geo import utm_epsg

        return self.epsg or utm_epsg(self.geometry)


BYTES_PER_PIXEL_LOOK = 215
"""Peak memory of loading and scoring one pixel on one look (``benchmarks/bench_memory.py``,
docs/performance.md): a site's run peaked at 286 MB with 0.21 M pixel-looks and at 1 090 MB with
4.18 M, 211–212 bytes per pixel-look over two runs."""


def grid_size(request: ImageryRequest, resolution: float) -> tuple[int, int]:
    """(height, width) of the request's area on its UTM grid at ``resolution`` metres."""
    from sites.geo import to_crs

    minx, miny, maxx, maxy = to_crs(request.geometry, 4326, request.output_epsg).bounds
    return int(math.ceil((maxy - miny) / resolution)) + 1, int(math.ceil((maxx - minx) / resolution)) + 1


def check_size(request: ImageryRequest, n_looks: int, height: int, width: int, resolution: float,
               provider: str, days=()) -> None:
    """Refuse a load whose looks × pixels exceed ``request.max_pixel_looks``, before any pixel is
    read: a cultural landscape of 1 000 km² at 10 m would exhaust the machine's memory and take
    every other site's week down with it.  ``days``: the looks' days, carried by the refusal."""
    limit = request.max_pixel_looks
    n = n_looks * height * width
    if limit is None or n <= limit:
        return
    from sitewatch.errors import SiteTooLarge

    exc = SiteTooLarge(
        f"{provider}: the site's imagery is {n_looks} looks of {height} × {width} pixels at {resolution:g} m "
        f"({n / 1e6:.1f} M pixel-looks, about {n * BYTES_PER_PIXEL_LOOK / 1e9:.1f} GB to score), over the "
        f"limit of {limit / 1e6:.1f} M ({limit * BYTES_PER_PIXEL_LOOK / 1e9:.1f} GB, SITEWATCH_MAX_SITE_GB)"
    )
    exc.n_looks, exc.resolution = n_looks, float(resolution)
    exc.days = tuple(sorted({look_day(d) for d in days}))
    raise exc


def look_day(value) -> pd.Timestamp:
    """A look's day as a naive UTC midnight (item times are often zone-aware)."""
    t = pd.Timestamp(value)
    return (t.tz_convert(None) if t.tzinfo is not None else t).normalize()


def orbit_label(state, track) -> str:
    """A radar look's viewing geometry: its orbit pass and relative orbit (track), such as
    ``descending 106``; "" where neither is known."""
    return " ".join(str(v).lower() for v in (state, track) if v not in (None, ""))


def orbits_by_day(looks, days) -> list[str]:
    """Each of ``days``' label from ``looks`` ((day, label) pairs); "" for a day mosaicked from
    looks of more than one geometry, or with none."""
    labels: dict = {}
    for day, label in looks:
        labels.setdefault(day, set()).add(label)
    return [next(iter(labels[d])) if len(labels.get(d, ())) == 1 else "" for d in days]


@runtime_checkable
class ImageryProvider(Protocol):
    """Anything that can answer an :class:`ImageryRequest`."""

    name: str

    def load(self, request: ImageryRequest) -> xr.Dataset:  # pragma: no cover - protocol
        ...


def finish_dataset(
    raw: xr.Dataset,
    bands: tuple[str, ...],
    scales: dict[str, tuple[float, float, float | None]],
    clear: xr.DataArray,
    epsg: int,
    resolution: float,
    provider: str,
    snow: xr.DataArray | None = None,
) -> xr.Dataset:
    """Apply scale/offset/nodata and attach the contract's attrs; shared by every provider.

    ``scales`` maps band → (scale, offset, nodata); scale and offset are numbers or, where the
    items of a series differ (Sentinel-2 processing baselines), one value per time.
    """
    out = {}
    for b in bands:
        if b not in raw:
            continue
        scale, offset, nodata = scales.get(b, (1.0, 0.0, None))
        da = raw[b]
        bad = ~np.isfinite(da) if da.dtype.kind == "f" else xr.zeros_like(da, dtype=bool)
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            bad = bad | (da == nodata)
        if np.ndim(scale) or np.ndim(offset):
            scale = xr.DataArray(np.broadcast_to(scale, da.sizes["time"]).astype("float32"), dims="time")
            offset = xr.DataArray(np.broadcast_to(offset, da.sizes["time"]).astype("float32"), dims="time")
        else:
            scale, offset = np.float32(scale), np.float32(offset)
        refl = da.astype("float32") * scale + offset
        if b in BACKSCATTER_BANDS:  # radar power: any positive value (a roof's corner reflector
            bad = bad | ~(refl > 0)  # returns many times the power sent); 0 is the swath's fill
        else:
            # Surface reflectance outside [-0.05, 1] is saturation or a processing flag (LEDAPS
            # writes 16000 for saturated pixels), not a measurement.
            bad = bad | (refl > VALID_REFLECTANCE[1]) | (refl < VALID_REFLECTANCE[0])
        out[b] = refl.where(~bad).astype("float32")
    if not out:
        raise ValueError(f"none of the bands {bands} is in the source (has {list(raw.data_vars)})")
    valid = xr.concat([v.notnull() for v in out.values()], "band").all("band")
    ds = xr.Dataset(out)
    ds["clear"] = (clear & valid).astype(bool)
    if snow is not None:
        ds["snow"] = (snow & valid & ~ds["clear"]).astype(bool)
    ds.attrs.update({"crs": f"EPSG:{epsg}", "resolution": float(resolution), "provider": provider})
    return ds.drop_vars([c for c in ("spatial_ref",) if c in ds.coords])


def clear_from_classes(mask: xr.DataArray, classes: list[dict] | None, nodata: float | None) -> xr.DataArray:
    """Boolean clear mask from a classification band, using the class *names* it declares."""
    if classes:
        bad_values = [c["value"] for c in classes if str(c.get("name", "")).lower() in NOT_CLEAR_CLASSES]
    else:  # an undeclared mask: assume Sentinel-2 SCL
        bad_values = list(SCL_NOT_CLEAR)
    if nodata is not None:
        bad_values.append(nodata)
    return ~mask.isin(bad_values)


def snow_from_classes(mask: xr.DataArray, classes: list[dict] | None) -> xr.DataArray:
    """Boolean snow/ice flag from a classification band (declared class names, else SCL)."""
    if classes:
        values = [c["value"] for c in classes if str(c.get("name", "")).lower() in SNOW_CLASSES]
    else:
        values = list(SCL_SNOW)
    return mask.isin(values)


def _bitfield(mask: xr.DataArray, field: dict) -> xr.DataArray:
    values = mask.fillna(0).astype("int64")
    return (values >> int(field.get("offset", 0))) & ((1 << int(field.get("length", 1))) - 1)


def _flag_set(mask: xr.DataArray, fields: list[dict], names: frozenset[str]) -> xr.DataArray:
    """True where a one-bit field named in ``names`` is set (``cloud``, ``cloud_shadow``, ...) or a
    wider field named in ``names`` holds a class whose name is in ``names``; the confidence fields
    (``cloud_confidence``: ``not_set``/``low``/``medium``/``high``) are not flags and are ignored."""
    out = xr.zeros_like(mask, dtype=bool)
    for f in fields:
        if str(f.get("name", "")).lower() not in names:
            continue
        if int(f.get("length", 1)) == 1:  # a one-bit flag named for what it flags: set means flagged
            bad = [1]
        else:
            bad = [c["value"] for c in f.get("classes", []) if str(c.get("name", "")).lower() in names]
        out = out | _bitfield(mask, f).isin(bad)
    return out


BITFIELD_NOT_CLEAR = NOT_CLEAR_CLASSES | {"dilated_cloud"}


def clear_from_bitfields(mask: xr.DataArray, fields: list[dict], nodata: float | None) -> xr.DataArray:
    """Boolean clear mask from a bit-field QA band (Landsat Collection 2 ``QA_PIXEL``, declared with
    the classification extension's ``classification:bitfields``): clear unless a fill, cloud,
    dilated-cloud, cirrus, shadow or snow flag is set."""
    bad = _flag_set(mask, fields, BITFIELD_NOT_CLEAR) | mask.isnull()
    if nodata is not None:
        bad = bad | (mask == nodata)
    return ~bad


def snow_from_bitfields(mask: xr.DataArray, fields: list[dict]) -> xr.DataArray:
    """Boolean snow/ice flag from a bit-field QA band: a snow flag with no cloud, shadow or fill."""
    worse = _flag_set(mask, fields, BITFIELD_NOT_CLEAR - SNOW_CLASSES)
    return _flag_set(mask, fields, SNOW_CLASSES) & ~worse
