"""Small constructed time series for tests and benchmarks (no I/O, deterministic by seed).

A grid of pixels with a few land covers, a smooth seasonal vegetation cycle that shifts a little
from year to year, sensor noise, and helpers that add each thing the detector must handle: a
disturbance with a ramp, pits that change only the texture, a cloud the mask caught, a cloud the
mask missed, snow (flagged or not, even or varying), a snow flag on what is not snow, a field
bared at the same time every year, whole-scene haze.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

SOIL = {"red": 0.22, "nir": 0.28, "swir16": 0.34, "green": 0.17, "blue": 0.12}
VEG = {"red": 0.04, "nir": 0.40, "swir16": 0.16, "green": 0.08, "blue": 0.03}
DRY = {"red": 0.14, "nir": 0.24, "swir16": 0.28, "green": 0.11, "blue": 0.08}


def synthetic_series(
    ny: int = 24, nx: int = 24, start: str = "2008-01-01", end: str = "2011-12-31", revisit_days: int = 8,
    seed: int = 0, rgb_only: bool = False, noise: float = 0.006, resolution: float = 30.0,
) -> xr.Dataset:
    """A clear, cloud-free seasonal time series on a UTM-like grid (EPSG:32613)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, end, freq=f"{revisit_days}D")
    doy = times.day_of_year.to_numpy()
    year_shift = rng.normal(0, 6, size=times.year.nunique())  # green-up a few days early or late
    shift = year_shift[times.year - times.year.min()]
    green = np.clip(np.sin(2 * np.pi * (doy - 110 - shift) / 365.0), 0, None)  # summer peak
    cover = rng.uniform(0.3, 0.9, size=(ny, nx))  # vegetation capacity per pixel
    cover = (cover + np.roll(cover, 1, 0) + np.roll(cover, 1, 1)) / 3
    bands = ("red", "green", "blue") if rgb_only else ("red", "nir", "swir16")
    data = {}
    for b in bands:
        v = green[:, None, None] * cover[None]
        val = v * VEG[b] + (1 - v) * DRY[b]
        data[b] = (val + rng.normal(0, noise, size=val.shape)).astype("float32")
    x = 336_390.0 + resolution * np.arange(nx)
    y = 4_462_410.0 - resolution * np.arange(ny)
    ds = xr.Dataset({b: (("time", "y", "x"), a) for b, a in data.items()}, coords={"time": times, "y": y, "x": x})
    ds["clear"] = xr.ones_like(ds[bands[0]], dtype=bool)
    ds.attrs.update({"crs": "EPSG:32613", "resolution": resolution, "provider": "synthetic"})
    return ds


def box_mask(ds: xr.Dataset, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    m = np.zeros((ds.sizes["y"], ds.sizes["x"]), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def add_disturbance(ds: xr.Dataset, mask: np.ndarray, onset: str, ramp_days: float = 0.0,
                    intensity: float = 0.8, soil: dict[str, float] = SOIL) -> xr.Dataset:
    """Mix the pixels in ``mask`` towards bare soil from ``onset``, ramping up over ``ramp_days``."""
    ds = ds.copy(deep=True)
    days = ((pd.DatetimeIndex(ds.time.values) - pd.Timestamp(onset)) / pd.Timedelta(days=1)).to_numpy()
    frac = np.where(days < 0, 0.0, intensity * np.minimum(1.0, (days + 1) / max(ramp_days, 1.0)))
    for b in [v for v in ds.data_vars if v in soil]:
        a = ds[b].values
        a[:, mask] = (1 - frac[:, None]) * a[:, mask] + frac[:, None] * soil[b]
    return ds


def add_pits(ds: xr.Dataset, mask: np.ndarray, onset: str, amplitude: float = 0.15) -> xr.Dataset:
    """Pock-mark the pixels in ``mask`` from ``onset``: pits and spoil heaps in a checkerboard, every
    band darker by ``amplitude`` on one square and brighter by as much on the other, so the area's
    mean colour and brightness stay as they were and only its texture changes."""
    ds = ds.copy(deep=True)
    after = pd.DatetimeIndex(ds.time.values) >= pd.Timestamp(onset)
    rows, cols = np.indices(mask.shape)
    sign = np.where((rows + cols) % 2 == 0, 1.0, -1.0)
    factor = np.where(mask, 1.0 + amplitude * sign, 1.0).astype("float32")
    for b in [v for v in ds.data_vars if v in SOIL]:
        ds[b].values[after] *= factor
    return ds


def heal(ds: xr.Dataset, original: xr.Dataset, mask: np.ndarray, after: str) -> xr.Dataset:
    """Put ``original``'s values back in ``mask`` from ``after`` on: the ground has recovered."""
    ds = ds.copy(deep=True)
    t = pd.DatetimeIndex(ds.time.values) >= pd.Timestamp(after)
    for b in [v for v in ds.data_vars if v != "clear" and v in original]:
        a = ds[b].values
        sub = a[t]
        sub[:, mask] = original[b].values[t][:, mask]
        a[t] = sub
    return ds


def add_recurring_bare_field(ds: xr.Dataset, mask: np.ndarray, doy_start: int, length_days: int = 60) -> xr.Dataset:
    """A field bared every year from the same day of year (harvest/ploughing), then regrowing."""
    ds = ds.copy(deep=True)
    doy = pd.DatetimeIndex(ds.time.values).day_of_year.to_numpy()
    bare = (doy >= doy_start) & (doy < doy_start + length_days)
    for b in [v for v in ds.data_vars if v in SOIL]:
        a = ds[b].values
        for k in np.flatnonzero(bare):
            a[k][mask] = 0.3 * a[k][mask] + 0.7 * SOIL[b]
    return ds


def _look(ds: xr.Dataset, when: str, mask: np.ndarray | None) -> tuple[int, np.ndarray]:
    """Index of the look nearest ``when`` and the pixel mask (all pixels when None)."""
    k = int(np.argmin(np.abs(pd.DatetimeIndex(ds.time.values) - pd.Timestamp(when))))
    return k, np.ones((ds.sizes["y"], ds.sizes["x"]), dtype=bool) if mask is None else mask


def set_clouds(ds: xr.Dataset, when: str, mask: np.ndarray | None = None, flagged: bool = True) -> xr.Dataset:
    """Bright cloud on the look nearest ``when``; ``flagged=False`` is a cloud the mask missed."""
    ds = ds.copy(deep=True)
    k, m = _look(ds, when, mask)
    for b in [v for v in ds.data_vars if v != "clear"]:
        ds[b].values[k][m] = 0.45 if b != "swir16" else 0.30
    if flagged:
        ds["clear"].values[k][m] = False
    return ds


def set_shadow(ds: xr.Dataset, when: str, mask: np.ndarray | None = None, factor: float = 0.45) -> xr.Dataset:
    """A cloud shadow the mask missed on the look nearest ``when``: every band darkened by ``factor``."""
    ds = ds.copy(deep=True)
    k, m = _look(ds, when, mask)
    for b in [v for v in ds.data_vars if v not in ("clear", "snow")]:
        ds[b].values[k][m] *= factor
    return ds


def set_snow(ds: xr.Dataset, when: str, mask: np.ndarray | None = None, flagged: bool = False,
             noise: float = 0.0, seed: int = 0) -> xr.Dataset:
    """Snow on the look nearest ``when`` (bright visible, dark SWIR), where ``mask``;
    ``flagged=True`` is snow the provider's mask flags (``snow`` set, not clear).  ``noise``: the
    standard deviation of each band across the snow (real snow is not one value; SWIR varies
    by about 0.01)."""
    ds = ds.copy(deep=True)
    k, m = _look(ds, when, mask)
    rng = np.random.default_rng(seed)
    for b, v in {"red": 0.7, "nir": 0.65, "swir16": 0.08, "green": 0.72, "blue": 0.75}.items():
        if b in ds:
            ds[b].values[k][m] = v + rng.normal(0, noise, int(m.sum())) if noise else v
    return flag_snow(ds, when, m) if flagged else ds


def flag_snow(ds: xr.Dataset, when: str, mask: np.ndarray | None = None) -> xr.Dataset:
    """The provider's mask calls the pixels in ``mask`` snow on the look nearest ``when``, whatever
    they show (Fmask and SCL also flag bright soil and patchy snow as snow)."""
    ds = ds.copy(deep=True)
    k, m = _look(ds, when, mask)
    if "snow" not in ds:
        ds["snow"] = xr.zeros_like(ds["clear"], dtype=bool)
    ds["snow"].values[k][m] = True
    ds["clear"].values[k][m] = False
    return ds


SAR_GRASS_DB = {"vv": -12.0, "vh": -19.0}
"""Sentinel-1 backscatter of steppe grassland, dB (typical C-band values); VH rises with the
season's plant volume, VV less."""


def synthetic_sar_series(
    ny: int = 32, nx: int = 32, start: str = "2008-01-01", end: str = "2011-12-31", revisit_days: int = 12,
    seed: int = 0, looks: float = 4.4, moisture_db: float = 1.0, resolution: float = 10.0, slopes_db: float = 0.0,
) -> xr.Dataset:
    """Sentinel-1 GRD-like backscatter (``vv``, ``vh`` as linear power) with a seasonal cycle, each
    pixel's own mean, a soil-moisture offset per date common to the scene (rain wets everything;
    standard deviation ``moisture_db``) and speckle: multiplicative gamma noise with ``looks``
    equivalent looks (GRD IW has about 4.4), independent per pixel and look.  Radar sees through
    cloud: every look is clear.  With ``slopes_db``, looks alternate between an ascending and a
    descending track (``orbit`` coordinate), and each pixel returns a different power on each, by a
    pixel's own offset of that standard deviation (a slope faces one track and turns from the
    other)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, end, freq=f"{revisit_days}D")
    doy = times.day_of_year.to_numpy()
    green = np.clip(np.sin(2 * np.pi * (doy - 110) / 365.0), 0, None)
    wet = rng.normal(0, moisture_db, size=times.size)
    own = rng.normal(0, 1.5, size=(ny, nx))  # each pixel's roughness and slope
    ascending = np.arange(times.size) % 2 == 0
    facing = rng.normal(0, slopes_db, size=(ny, nx)) if slopes_db else np.zeros((ny, nx))
    side = np.where(ascending, 0.5, -0.5)[:, None, None] * facing[None]
    data = {}
    for b, base in SAR_GRASS_DB.items():
        season = (2.5 if b == "vh" else 1.0) * green
        db = base + own[None] + season[:, None, None] + wet[:, None, None] + side
        speckle = rng.gamma(looks, 1.0 / looks, size=db.shape)
        data[b] = (10 ** (db / 10) * speckle).astype("float32")
    x = 336_390.0 + resolution * np.arange(nx)
    y = 4_462_410.0 - resolution * np.arange(ny)
    ds = xr.Dataset({b: (("time", "y", "x"), a) for b, a in data.items()}, coords={"time": times, "y": y, "x": x})
    ds["clear"] = xr.ones_like(ds["vv"], dtype=bool)
    if slopes_db:
        ds = ds.assign_coords(orbit=("time", np.where(ascending, "ascending 33", "descending 106")))
    ds.attrs.update({"crs": "EPSG:32613", "resolution": resolution, "provider": "synthetic"})
    return ds


def add_sar_change(ds: xr.Dataset, mask: np.ndarray, onset: str, vv_db: float = 2.5, vh_db: float = 1.5,
                   ramp_days: float = 0.0) -> xr.Dataset:
    """Change the backscatter in ``mask`` from ``onset`` by ``vv_db``/``vh_db`` (pits and spoil
    heaps roughen the surface and raise both; negative values level it), ramping up over
    ``ramp_days``."""
    ds = ds.copy(deep=True)
    days = ((pd.DatetimeIndex(ds.time.values) - pd.Timestamp(onset)) / pd.Timedelta(days=1)).to_numpy()
    frac = np.where(days < 0, 0.0, np.minimum(1.0, (days + 1) / max(ramp_days, 1.0)))
    for b, d in (("vv", vv_db), ("vh", vh_db)):
        if b in ds:
            ds[b].values[:, mask] *= (10 ** (frac * d / 10))[:, None].astype("float32")
    return ds
