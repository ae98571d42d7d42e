"""Spectral features and extra masking, on whatever bands a provider delivers.

The detector works on *features*: spectral indices where the bands allow, plus the reflectances
themselves.  Sentinel-2/Landsat give red, NIR and SWIR; an RGB-only mosaic gives red, green and
blue.  :func:`feature_stack` says which features it could build, so every detection can say which
evidence it rests on.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

REFLECTANCE_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")


def _ratio(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    denom = a + b
    return ((a - b) / denom.where(np.abs(denom) > 1e-6)).astype("float32")


def feature_stack(ds: xr.Dataset) -> xr.Dataset:
    """Build the detector's features from the reflectance bands present in ``ds``.

    Returns a Dataset of float32 features (time, y, x), NaN where the input is invalid.  The
    ``evidence`` attribute lists the features built.
    """
    bands = [b for b in REFLECTANCE_BANDS if b in ds.data_vars]
    if not bands:
        raise ValueError(f"no reflectance band among {REFLECTANCE_BANDS}; got {list(ds.data_vars)}")
    out: dict[str, xr.DataArray] = {}
    if "red" in ds and "nir" in ds:
        out["ndvi"] = _ratio(ds.nir, ds.red)
    if "nir" in ds and "swir16" in ds:
        out["ndmi"] = _ratio(ds.nir, ds.swir16)
    if "nir" not in ds and {"red", "green", "blue"} <= set(ds.data_vars):
        # RGB-only mosaics: excess-green index (Woebbecke et al. 1995) stands in for NDVI.
        total = ds.red + ds.green + ds.blue
        out["exg"] = ((2 * ds.green - ds.red - ds.blue) / total.where(total > 1e-6)).astype("float32")
    for b in bands:
        out[b] = ds[b].astype("float32")
    feats = xr.Dataset(out)
    feats.attrs["evidence"] = list(out)
    return feats


def screen_bright_snow(ds: xr.Dataset) -> xr.DataArray:
    """Pixels that look like snow or bright cloud the provider's mask missed.

    Uses a normalised difference of red and SWIR (snow and ice reflect visible light and absorb
    SWIR; Dozier 1989 uses green, red is the closest band every source here has) above 0.4 with
    red reflectance above 0.2.  Without SWIR, nothing is screened here (the temporal screen in
    :mod:`change_detection.detect` still applies).
    """
    if "red" not in ds or "swir16" not in ds:
        return xr.zeros_like(next(iter(ds.data_vars.values())), dtype=bool)
    ndsi = _ratio(ds.red, ds.swir16)
    return ((ndsi > 0.4) & (ds.red > 0.2)).fillna(False)
