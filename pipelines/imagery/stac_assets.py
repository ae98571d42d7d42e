"""What a STAC item's assets are: which one is which band, how to scale it, which one is the mask.

Catalogs name their assets differently — Earth Search ``red``/``nir``/``swir16``/``scl``, Earth
Search and Planetary Computer Landsat Collection 2 ``nir08``/``qa_pixel``, Planetary Computer
Sentinel-2 ``B04``/``B08``/``B11``/``SCL``, a hand-made catalog anything at all.  The STAC ``eo``
extension says what each asset holds (``eo:bands[].common_name``; STAC 1.1 ``bands[].eo:common_name``),
so sitewatch asks it before falling back to the names the big catalogs use.  Scale, offset and
nodata come from the raster extension (STAC 1.0 ``raster:bands``, STAC 1.1 ``bands`` or the asset
itself); the cloud mask is the asset with a classification extension, as classes (Fmask, SCL)
or bit fields (Landsat Collection 2 ``QA_PIXEL``).
"""

from __future__ import annotations

import numpy as np
import pystac
import xarray as xr

# Asset keys the large public catalogs use for a common band name, most specific first.
ALIASES = {
    "blue": ("B02",),
    "green": ("B03",),
    "red": ("B04",),
    # Broad NIR first (Sentinel-2 B08); Landsat 8/9 and Sentinel-2 B8A name theirs nir08.
    "nir": ("B08", "nir08", "B8A"),
    "swir16": ("B11", "swir1"),
    "swir22": ("B12", "swir2"),
}
"""Only keys that mean the same band on every mission: Sentinel-2's ``Bxx`` and the common names.
Landsat's ``SR_B4`` is red on Landsat 8 and NIR on Landsat 7, so Landsat assets are matched by their
declared common name only."""
COMMON_NAME_FALLBACK = {"nir": ("nir", "nir08")}
"""A request for ``nir`` is also answered by an asset whose common name is ``nir08`` (narrow NIR)."""
MASK_KEYS = ("fmask", "scl", "SCL", "qa_pixel", "QA_PIXEL", "cloud_mask")

# Landsat Collection 2 Level-2 QA_PIXEL bits (USGS LSDS-1619), for a qa_pixel asset that does not
# declare its bit fields.
LANDSAT_C2_QA_BITFIELDS = [
    {"name": name, "offset": offset, "length": 1, "classes": [{"name": f"not_{name}", "value": 0},
                                                             {"name": name, "value": 1}]}
    for name, offset in (("fill", 0), ("dilated_cloud", 1), ("cirrus", 2), ("cloud", 3), ("cloud_shadow", 4),
                         ("snow", 5), ("clear", 6), ("water", 7))
]


def _band_dicts(asset: pystac.Asset) -> list[dict]:
    return list(asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or [])


def common_names(asset: pystac.Asset) -> list[str]:
    """The common band names an asset declares (STAC 1.0 ``eo:bands``, STAC 1.1 ``bands``)."""
    out = [str(b.get("common_name") or b.get("eo:common_name") or "") for b in _band_dicts(asset)]
    if "eo:common_name" in asset.extra_fields:  # STAC 1.1 single-band asset
        out.append(str(asset.extra_fields["eo:common_name"]))
    return [n for n in out if n]


def band_asset_key(item: pystac.Item, band: str) -> str | None:
    """The key of the item's asset that holds ``band`` (a common name), or None.

    An asset keyed by the name itself wins; then a single-band asset declaring it as its common
    name; then the keys the large public catalogs use (``ALIASES``).
    """
    if band in item.assets:
        return band
    for wanted in COMMON_NAME_FALLBACK.get(band, (band,)):
        for key, asset in item.assets.items():
            names = common_names(asset)
            if len(names) == 1 and names[0] == wanted:
                return key
    return next((k for k in ALIASES.get(band, ()) if k in item.assets), None)


def alias_band_assets(item: pystac.Item, bands: tuple[str, ...]) -> pystac.Item:
    """Make ``item.assets[band]`` the asset holding each wanted band (in place; returns the item)."""
    for b in bands:
        key = band_asset_key(item, b)
        if key is not None and key != b:
            item.assets[b] = item.assets[key]
    return item


def mask_asset_key(item: pystac.Item) -> str | None:
    """The asset holding the cloud/validity classes (classification extension or role, else a
    conventional key)."""
    for key, asset in item.assets.items():
        roles = set(asset.roles or [])
        fields = asset.extra_fields
        if "classification:classes" in fields or "classification:bitfields" in fields or roles & {"cloud", "data-mask"}:
            return key
    return next((k for k in MASK_KEYS if k in item.assets), None)


def mask_scheme(asset: pystac.Asset, key: str) -> tuple[str, list[dict] | None]:
    """How to read a mask asset: ``("classes", classes)`` or ``("bitfields", fields)``.

    Undeclared masks follow their key: ``qa_pixel`` is Landsat Collection 2 QA_PIXEL; anything else
    is taken for Sentinel-2 SCL (``classes`` None).
    """
    fields = asset.extra_fields
    if "classification:bitfields" in fields:
        return "bitfields", list(fields["classification:bitfields"])
    if "classification:classes" in fields:
        return "classes", list(fields["classification:classes"])
    for b in _band_dicts(asset):
        if "classification:bitfields" in b:
            return "bitfields", list(b["classification:bitfields"])
        if "classification:classes" in b:
            return "classes", list(b["classification:classes"])
    if key.lower() == "qa_pixel":
        return "bitfields", LANDSAT_C2_QA_BITFIELDS
    return "classes", None


def _raster_fields(asset: pystac.Asset) -> dict:
    """Scale, offset and nodata of a single-band asset, wherever the item's STAC version puts them."""
    out: dict = {}
    for src in (asset.extra_fields, *(asset.extra_fields.get("raster:bands") or [])[:1], *_band_dicts(asset)[:1]):
        for name in ("scale", "offset", "nodata"):
            for key in (name, f"raster:{name}"):
                if key in src and name not in out:
                    out[name] = src[key]
    return out


S2_BOA_ADD_OFFSET_DN = -1000
"""Sentinel-2 L2A from processing baseline 04.00 (25 January 2022) stores reflectance + 0.1:
reflectance = (DN + BOA_ADD_OFFSET) / 10 000 (ESA L2A product specification)."""


def _processing_baseline(item: pystac.Item) -> float | None:
    try:
        return float(item.properties.get("s2:processing_baseline"))
    except (TypeError, ValueError):
        return None


def item_band_scaling(item: pystac.Item, band: str) -> tuple[float | None, float | None, float | None]:
    """(scale, offset, nodata) of one item's band; scale None where the item declares none.

    The offset is the declared one; where none is declared on a Sentinel-2 item of processing
    baseline 04.00 or later, it is the L2A ``BOA_ADD_OFFSET`` (-1000 DN) in reflectance units, so a
    series that crosses January 2022 is not 0.1 brighter after it (Earth Search declares it,
    Planetary Computer does not).
    """
    f = _raster_fields(item.assets[band])
    scale = float(f["scale"]) if "scale" in f else None
    offset = float(f["offset"]) if "offset" in f else None
    if offset is None and (_processing_baseline(item) or 0.0) >= 4.0:
        offset = S2_BOA_ADD_OFFSET_DN * (scale if scale is not None else 1e-4)
    return scale, offset, f.get("nodata")


def mask_nodata(asset: pystac.Asset) -> float | None:
    return _raster_fields(asset).get("nodata")


def undeclared_integer_scale(values: np.ndarray) -> float:
    """Scale for integer reflectance whose asset declares none.

    Surface reflectance stored as integers is reflectance x 10 000 by the long-standing convention
    of Sentinel-2 L2A and Landsat Collection 1 SR; a band whose valid values are mostly above 1.5
    (no reflectance is) is taken to follow it.  Returns 1 for values already in reflectance.
    """
    v = values[np.isfinite(values) & (values > 0)]
    return 1e-4 if v.size and float(np.median(v)) > 1.5 else 1.0


def series_scales(day_items: list[pystac.Item], raw: xr.Dataset, bands: tuple[str, ...]
                  ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, float | None]], list[str]]:
    """band -> (scale per time, offset per time, nodata) for a loaded series whose time steps come
    from ``day_items``, and the bands whose scale was assumed (:func:`undeclared_integer_scale`).
    Per item, because a series may mix processing baselines or collections."""
    scales, assumed = {}, []
    for b in bands:
        per = [item_band_scaling(it, b) if b in it.assets else (None, None, None) for it in day_items]
        scale = np.array([np.nan if p[0] is None else p[0] for p in per])
        nodata = next((p[2] for p in per if p[2] is not None), None)
        if np.isnan(scale).any():
            fill = 1.0
            if raw[b].dtype.kind in "iu":  # integer reflectance without a declared scale: x 10 000
                vals = raw[b].values[np.isnan(scale)].astype("float64")
                if nodata is not None:
                    vals = np.where(vals == nodata, np.nan, vals)
                fill = undeclared_integer_scale(vals)
                if fill != 1.0:
                    assumed.append(b)
            scale = np.where(np.isnan(scale), fill, scale)
        offset = np.array([0.0 if p[1] is None else p[1] for p in per])
        scales[b] = (scale, offset, nodata)
    return scales, assumed
