"""Local static STAC catalog provider: the embedded default, the tests and the demo.

A static catalog cannot be searched (``pystac_client`` raises ``DoesNotConformTo ITEM_SEARCH``),
so items are filtered by bbox and date here; pixels are read with ``odc.stac.load``, which
reprojects onto the site's UTM grid.  Scale, offset and nodata come from the STAC raster
extension; the cloud mask from the asset carrying the classification extension.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pystac
import rasterio
import xarray as xr
from odc.geo import xy_
from odc.geo.geom import Geometry

from sitewatch.errors import CorruptRaster, NoImagery, TransientProviderError

from .base import (ImageryRequest, check_size, clear_from_bitfields, clear_from_classes, finish_dataset, grid_size,
                   orbit_label, orbits_by_day, snow_from_bitfields, snow_from_classes)
from .retries import classify
from .stac_assets import alias_band_assets, mask_asset_key, mask_nodata, mask_scheme, series_scales

log = logging.getLogger(__name__)


def item_time(item: pystac.Item) -> pd.Timestamp:
    """When an item was seen, in UTC: its ``datetime``, or where that is null (a mosaic or
    composite over a period, valid STAC) its ``start_datetime``, else its ``end_datetime`` — the
    order odc-stac follows for the time it gives the loaded pixels."""
    cm = item.common_metadata
    when = item.datetime or cm.start_datetime or cm.end_datetime
    if when is None:
        raise NoImagery(f"item {item.id} has neither datetime nor start_datetime/end_datetime")
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def item_epsg(item: pystac.Item) -> int | None:
    """The item's EPSG code, from ``proj:epsg`` or (STAC projection v2) ``proj:code``."""
    if item.properties.get("proj:epsg"):
        return int(item.properties["proj:epsg"])
    code = str(item.properties.get("proj:code") or "")
    return int(code.split(":")[1]) if code.upper().startswith("EPSG:") else None


def native_resolution(item: pystac.Item, bands: tuple[str, ...]) -> float | None:
    """The finest pixel size in metres of the item's requested bands, or None if it does not say.

    Looks at each band asset's ``gsd`` or ``proj:transform`` (Sentinel-2 bands are 10, 20 or 60 m),
    then the item's.  A transform in a geographic CRS (degrees) is converted with its north-south
    pixel size (1 degree of latitude ~ 111.3 km); a size outside 0.1 m - 5 km is not believed.
    """
    epsg = item_epsg(item)
    geographic = False
    if epsg:
        try:
            from pyproj import CRS

            geographic = CRS.from_epsg(epsg).is_geographic
        except Exception:  # noqa: BLE001 - an unknown code: use the transform as it is
            geographic = False

    def from_fields(fields: dict) -> float | None:
        t = fields.get("proj:transform")
        if t and len(t) >= 5:
            return abs(float(t[4])) * 111_320.0 if geographic else abs(float(t[0]))
        return float(fields["gsd"]) if fields.get("gsd") else None

    sizes = [from_fields(item.assets[b].extra_fields) for b in bands if b in item.assets]
    sizes = [v for v in sizes if v is not None]
    size = min(sizes) if sizes else from_fields(item.properties)
    return size if size is not None and 0.1 <= size <= 5000 else None


UNREADABLE_ATTR = "unreadable"
"""Dataset attribute: JSON list of the acquisitions left out because an asset could not be read
(``item``, ``date``, ``asset``, ``href``, ``error``); absent when every one was read."""


def _read(items: list[pystac.Item], kwargs: dict) -> xr.Dataset:
    import odc.stac

    try:
        return odc.stac.load(items, **kwargs).load()
    except (rasterio.errors.RasterioError, OSError, RuntimeError) as exc:
        raise CorruptRaster(f"an asset could not be read ({exc})") from exc


def unreadable_items(items: list[pystac.Item], kwargs: dict) -> list[dict]:
    """The acquisitions among ``items`` that cannot be read with ``kwargs``, each with the first
    asset that fails: read one item, then one band at a time, over the same window."""
    out = []
    for it in items:
        try:
            _read([it], kwargs)
            continue
        except CorruptRaster as exc:
            error, asset = str(exc), None
        for band in kwargs["bands"]:
            try:
                _read([it], {**kwargs, "bands": [band]})
            except CorruptRaster as exc:
                error, asset = str(exc), band
                break
        href = it.assets[asset].get_absolute_href() or it.assets[asset].href if asset in it.assets else ""
        out.append({"item": it.id, "date": str(item_time(it).tz_localize(None).date()),
                    "asset": asset or "", "href": href, "error": error})
    return out


def describe_unreadable(entry: dict) -> str:
    """One line for a left-out acquisition: which item, which file, why."""
    where = f" asset {entry['asset']} ({entry['href']})" if entry.get("asset") else ""
    return f"{entry['item']} of {entry['date']}:{where} {entry['error']}"


def none_readable(provider: str, unreadable: list[dict]) -> CorruptRaster:
    """The error for a request none of whose acquisitions could be read; it carries the list."""
    err = CorruptRaster(f"{provider}: no acquisition over the site could be read: "
                        + "; ".join(describe_unreadable(u) for u in unreadable) + "; re-download them or remove the items")
    err.unreadable = unreadable
    return err


def unreadable_of(ds: xr.Dataset) -> list[dict]:
    """The acquisitions a provider left out of ``ds`` as unreadable (see :data:`UNREADABLE_ATTR`)."""
    raw = ds.attrs.get(UNREADABLE_ATTR)
    return json.loads(raw) if raw else []


def load_items(
    items: list[pystac.Item], request: ImageryRequest, provider: str, patch_url=None
) -> xr.Dataset:
    """Shared by the local and remote STAC providers: read items onto the request's grid.

    Acquisitions with an asset that cannot be read (truncated, not a GeoTIFF) are left out and
    listed in the dataset's :data:`UNREADABLE_ATTR`; if none can be read, :class:`CorruptRaster`.
    """
    if not items:
        raise NoImagery(
            f"no acquisition between {request.start.date()} and {request.end.date()} over the site"
        )
    for it in items:  # assets keyed B04, nir08 or declaring a common name answer to that name
        alias_band_assets(it, request.bands)
    first = items[0]
    bands = tuple(b for b in request.bands if b in first.assets)
    if not bands:
        raise NoImagery(f"items carry none of the bands {request.bands} (by key, eo:bands common name or the "
                        f"usual aliases); they have {sorted(first.assets)}")
    mkey = mask_asset_key(first)
    epsg = request.output_epsg
    res = request.resolution or native_resolution(first, bands) or 10.0
    days = {item_time(it).normalize() for it in items}
    check_size(request, len(days), *grid_size(request, res), res, provider, days)
    anchor = None
    t = first.properties.get("proj:transform")
    if t and item_epsg(first) == epsg:
        # keep the native pixel grid: no half-pixel resampling of Landsat's 15 m offset grid
        anchor = xy_(((t[2] / res) % 1.0), ((t[5] / res) % 1.0))
    load_bands = list(bands) + ([mkey] if mkey else [])
    kwargs = dict(
        bands=load_bands,
        crs=f"EPSG:{epsg}",
        resolution=res,
        geopolygon=Geometry(request.geometry, crs="EPSG:4326"),
        groupby="solar_day",
        resampling={"*": "bilinear", **({mkey: "nearest"} if mkey else {})},
        fail_on_error=True,
    )
    if anchor is not None:
        kwargs["anchor"] = anchor
    if patch_url is not None:
        kwargs["patch_url"] = patch_url
    unreadable: list[dict] = []
    try:
        raw = _read(items, kwargs)
    except CorruptRaster as exc:
        cause = classify(exc.__cause__ or exc, provider)
        if isinstance(cause, TransientProviderError):  # the archive, not a file: retried as a whole
            raise cause from exc
        # One bad download must not cost every site its week: find the acquisitions that cannot be
        # read, name them, and read the others.  Those left out are reported, never dropped quietly.
        unreadable = unreadable_items(items, kwargs)
        if not unreadable:  # not tied to one acquisition
            raise CorruptRaster(f"{provider}: {exc}; re-download the assets or remove the items") from exc
        bad_ids = {u["item"] for u in unreadable}
        items = [it for it in items if it.id not in bad_ids]
        if not items:
            raise none_readable(provider, unreadable) from exc
        log.warning("%s: left out %d unreadable acquisition(s): %s", provider, len(unreadable),
                    "; ".join(describe_unreadable(u) for u in unreadable))
        first = items[0]
        raw = _read(items, kwargs)
    if mkey:
        m_asset = first.assets[mkey]
        scheme, declared = mask_scheme(m_asset, mkey)
        if scheme == "bitfields":
            clear = clear_from_bitfields(raw[mkey], declared, mask_nodata(m_asset))
            snow = snow_from_bitfields(raw[mkey], declared)
        else:
            clear = clear_from_classes(raw[mkey], declared, mask_nodata(m_asset))
            snow = snow_from_classes(raw[mkey], declared)
    else:
        clear = xr.ones_like(raw[bands[0]], dtype=bool)
        snow = None
    by_day = {}
    for it in items:
        by_day.setdefault(item_time(it).tz_localize(None).normalize(), it)
    days = pd.DatetimeIndex(raw.time.values).normalize()
    scales, assumed = series_scales([by_day.get(d, first) for d in days], raw, bands)
    ds = finish_dataset(raw, bands, scales, clear, epsg, res, provider, snow=snow)
    if unreadable:
        ds.attrs[UNREADABLE_ATTR] = json.dumps(unreadable)
    if assumed:
        ds.attrs["assumed_scale"] = f"{', '.join(assumed)}: no scale declared, integer reflectance x 10000 assumed"
    ds = ds.assign_coords(
        item_id=("time", [by_day.get(d).id if d in by_day else "" for d in days]),
        platform=("time", [str(by_day[d].properties.get("platform", "")) if d in by_day else "" for d in days]),
    )
    # radar: each day's pass and track (STAC sat extension), "" where a day mixes them
    looks = [(item_time(it).tz_localize(None).normalize(),
              orbit_label(it.properties.get("sat:orbit_state"), it.properties.get("sat:relative_orbit"))) for it in items]
    if any(label for _, label in looks):
        ds = ds.assign_coords(orbit=("time", orbits_by_day(looks, days)))
    return ds


class LocalStacProvider:
    """Reads a static STAC catalog on disk (``catalog.json``)."""

    name = "local-stac"

    def __init__(self, catalog: str | Path):
        self.catalog_path = Path(catalog)
        if self.catalog_path.is_dir():
            self.catalog_path = self.catalog_path / "catalog.json"
        if not self.catalog_path.exists():
            raise NoImagery(f"no STAC catalog at {self.catalog_path}")
        self._items: list[pystac.Item] | None = None

    @property
    def source(self) -> str:
        """Which catalog, for the pixel cache's key."""
        return f"{self.name}|{self.catalog_path.resolve()}"

    @property
    def items(self) -> list[pystac.Item]:
        if self._items is None:
            cat = pystac.Catalog.from_file(str(self.catalog_path))
            self._items = sorted(cat.get_items(recursive=True), key=item_time)
        return self._items

    def search(self, request: ImageryRequest) -> list[pystac.Item]:
        start = request.start.tz_localize("UTC") if request.start.tzinfo is None else request.start
        end = request.end.tz_localize("UTC") if request.end.tzinfo is None else request.end
        end = end + pd.Timedelta(days=1) - pd.Timedelta(seconds=1) if end == end.normalize() else end
        out = []
        for it in self.items:
            if not (start <= item_time(it) <= end):
                continue
            if it.bbox is not None:
                from shapely.geometry import box

                if not box(*it.bbox).intersects(request.geometry):
                    continue
            out.append(it)
        return out

    def load(self, request: ImageryRequest) -> xr.Dataset:
        return load_items(self.search(request), request, self.name)
