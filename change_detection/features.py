"""Spectral features and extra masking, on whatever bands a provider delivers.

The detector works on *features*: spectral indices where the bands allow, plus the reflectances
themselves.  Sentinel-2/Landsat give red, NIR and SWIR; an RGB-only mosaic gives red, green and
blue, and with them brightness, colour and texture; Sentinel-1 gives radar backscatter (VV, VH),
which clouds do not stop.  :func:`feature_stack` says which features it could build, so every
detection can say which evidence it rests on.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

REFLECTANCE_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
BACKSCATTER_BANDS = ("vv", "vh")
"""Sentinel-1 backscatter as linear power (sigma0 or gamma0, not dB), by polarisation."""
SAR_FEATURES = ("vv_db", "vh_db", "vh_vv_db")


def _ratio(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    denom = a + b
    return ((a - b) / denom.where(np.abs(denom) > 1e-6)).astype("float32")


def _window_sums(values: np.ndarray, ok: np.ndarray, squares: bool = False):
    """Over each pixel's 3 x 3 window of each look (..., y, x): how many ``ok`` pixels, the sum of
    their values and (with ``squares``) of their squares; pixels not ``ok`` count for nothing."""
    from scipy import ndimage

    v = np.where(ok, values, 0.0).astype("float64")
    size = (1,) * (v.ndim - 2) + (3, 3)  # each look on its own

    def total(a):
        return ndimage.uniform_filter(a, size, mode="constant") * 9

    return total(ok.astype("float64")), total(v), total(v * v) if squares else None


def local_texture(brightness: np.ndarray, valid: np.ndarray, min_valid: int = 6) -> np.ndarray:
    """Coefficient of variation of ``brightness`` (..., y, x) over each pixel's 3 x 3 window.

    Only ``valid`` pixels enter a window (a cloud beside a clear pixel must not make it look
    rough); a pixel that is not valid itself, or has fewer than ``min_valid`` valid pixels in its
    window, is NaN.  The standard deviation is divided by the window's mean so that a gain between
    dates (sun angle, another sensor) does not change the texture.
    """
    ok = valid & np.isfinite(brightness)
    n, s1, s2 = _window_sums(brightness, ok, squares=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        sd = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
        cv = sd / mean
    good = ok & (np.rint(n) >= min_valid) & (mean > 1e-4)
    return np.where(good, cv, np.nan).astype("float32")


def multilook(power: np.ndarray, valid: np.ndarray, min_valid: int = 6) -> np.ndarray:
    """Mean backscatter power (..., y, x) over each pixel's 3 x 3 window of valid pixels.

    Radar speckle makes one Sentinel-1 GRD pixel's power vary by about ±2 dB between looks at
    ground that has not changed (about 4.4 equivalent looks); averaging nine pixels raises that
    to about 40 and narrows the spread to about ±0.7 dB, at 30 m instead of 10 m — still finer
    than the minimum mapping unit.  The boxcar is the plain multilook of SAR processing; averaging
    power (not dB) keeps the mean unbiased.  A pixel that is not valid, or has fewer than
    ``min_valid`` valid pixels in its window, is NaN.
    """
    ok = valid & np.isfinite(power) & (power > 0)
    n, s, _ = _window_sums(power, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
    return np.where(ok & (np.rint(n) >= min_valid), mean, np.nan).astype("float32")


def _backscatter_features(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Sentinel-1: each polarisation's multilooked backscatter in dB and, with both, the
    cross-polarisation ratio VH/VV in dB (high where vegetation scatters, low over bare or
    levelled ground).  Digging roughens the surface and raises backscatter; levelling and water
    lower it; a new wall or roof raises VV most (double bounce)."""
    out: dict[str, xr.DataArray] = {}
    valid = usable_looks(ds) if "clear" in ds else None
    for b in BACKSCATTER_BANDS:
        if b in ds:
            da = ds[b].transpose(..., "y", "x")
            ok = valid.transpose(..., "y", "x").values if valid is not None else np.ones(da.shape, bool)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"{b}_db"] = da.copy(data=(10 * np.log10(multilook(da.values, ok))).astype("float32"))
    if len(out) == 2:
        out["vh_vv_db"] = (out["vh_db"] - out["vv_db"]).astype("float32")
    return out


def feature_stack(ds: xr.Dataset, texture: bool = True) -> xr.Dataset:
    """Build the detector's features from the reflectance bands present in ``ds``.

    Returns a Dataset of float32 features (time, y, x), NaN where the input is invalid.  The
    ``evidence`` attribute lists the features built.

    Sentinel-1 backscatter (``vv``, ``vh``; no reflectance band) gets its own features instead
    (:func:`_backscatter_features`, speckle reduced by :func:`multilook`).

    An RGB-only mosaic also gets ``texture`` (unless ``texture`` is False): the local coefficient
    of variation of brightness (:func:`local_texture`) over the pixels the detector may use
    (:func:`usable_looks` where ``ds`` has a ``clear`` mask).  Such mosaics come from PlanetScope
    or VHR sensors whose pixels (0.3-5 m) are smaller than a looting pit, so pits and spoil heaps
    pock-mark the surface even where they keep its colour, and bulldozing smooths it.  Multispectral
    sources get no texture feature: at Landsat's 30 m a 3 x 3 window (90 m) is larger than most digs
    and would smear them, and their NIR/SWIR already separate soil from vegetation.
    """
    bands = [b for b in REFLECTANCE_BANDS if b in ds.data_vars]
    if not bands and any(b in ds.data_vars for b in BACKSCATTER_BANDS):
        feats = xr.Dataset(_backscatter_features(ds))
        feats.attrs["evidence"] = list(feats.data_vars)
        return feats
    if not bands:
        raise ValueError(f"no reflectance band among {REFLECTANCE_BANDS} nor backscatter among "
                         f"{BACKSCATTER_BANDS}; got {list(ds.data_vars)}")
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
    if texture and "exg" in out:
        bright = ((ds.red + ds.green + ds.blue) / 3).transpose(..., "y", "x")
        valid = usable_looks(ds).transpose(..., "y", "x").values if "clear" in ds else np.ones(bright.shape, bool)
        out["texture"] = bright.copy(data=local_texture(bright.values, valid))
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


def snow_flag_contradicted(ds: xr.Dataset) -> xr.DataArray:
    """Pixels the provider flags as snow whose spectrum cannot be snow.

    Snow absorbs in the short-wave infrared and is bright in the visible, so its red/SWIR
    normalised difference is well above zero (Fmask's snow test asks for an NDSI above 0.15, the
    MODIS snow product for 0.4).  A flagged pixel whose SWIR is at least as bright as its red
    (difference <= 0) is soil, rock or dry vegetation: the flag is a mask error, or the snow has
    been dug or scraped away.  Such pixels are looked at, not hidden; they are scored but do not
    serve as reference for the date's statistics (see :func:`~change_detection.anomaly_scores`).
    Needs the provider's ``snow`` variable and red + SWIR; otherwise none.
    """
    if "snow" not in ds or "red" not in ds or "swir16" not in ds:
        return xr.zeros_like(ds["clear"], dtype=bool)
    return (ds["snow"].astype(bool) & (_ratio(ds.red, ds.swir16) <= 0.0)).fillna(False)


def snow_contrast(ds: xr.Dataset, looks: np.ndarray | None = None, min_pixels: int = 30) -> np.ndarray:
    """How far each snow-covered pixel's SWIR stands above the snow around it, per look.

    Snow absorbs the short-wave infrared (reflectance about 0.05) and a snow cover is even across
    a site, so ground showing through it — spoil thrown on the snow, snow dug or scraped away, a
    patch melted early — raises a pixel's SWIR far above the date's snow.  For the pixels the
    provider flags as snow and the detector cannot use (:func:`usable_looks`), this is the robust
    z-score (median, 1.4826 x MAD) of SWIR against all such pixels of the same look; NaN for every
    other pixel, and for a look with fewer than ``min_pixels`` of them (too few to say what the
    snow looks like).  Returns float32 (look, y, x) for ``looks`` (indices along ``time``; all by
    default).  Needs the provider's ``snow`` variable and SWIR; otherwise all NaN.
    """
    ds = ds.transpose("time", "y", "x", ...)
    idx = np.arange(ds.sizes["time"]) if looks is None else np.asarray(looks)
    out = np.full((idx.size, ds.sizes["y"], ds.sizes["x"]), np.nan, dtype="float32")
    if "snow" not in ds or "swir16" not in ds:
        return out
    snow = (ds["snow"].astype(bool) & ~usable_looks(ds)).values[idx]
    swir = ds["swir16"].values[idx].astype("float32")
    for i in range(idx.size):
        pix = snow[i] & np.isfinite(swir[i])
        if pix.sum() < min_pixels:
            continue
        centre = np.median(swir[i][pix])
        spread = 1.4826 * np.median(np.abs(swir[i][pix] - centre))
        if spread > 1e-6:
            out[i][pix] = (swir[i][pix] - centre) / spread
    return out


def usable_looks(ds: xr.Dataset) -> xr.DataArray:
    """The pixel-looks the detector uses: the provider's ``clear``, plus snow flags the spectrum
    contradicts (:func:`snow_flag_contradicted`), minus snow and bright cloud the mask missed
    (:func:`screen_bright_snow`)."""
    return (ds["clear"].astype(bool) | snow_flag_contradicted(ds)) & ~screen_bright_snow(ds)
