"""Per-pixel seasonal baseline: what this place normally looks like at this time of year.

For an observation at time *t* the baseline is built from clear observations in the same season
of earlier years only — those whose lag behind *t* is within ``window_days`` of a whole number of
years (1 to ``max_years``).  This is the approach of OPERA DIST-ALERT (baseline from the same
season of previous years) rather than a fitted harmonic: a field that is bared every May is bare in
the May baseline too, so harvest, snow melt and green-up do not alarm.  The window widens
per pixel (``window_days`` then each entry of ``widen_days``) until ``min_obs`` clear values are
found.  Where no seasonal history exists at all (a bi-temporal pair, a site registered this year),
the baseline falls back to the clear observations of the preceding ``fallback_days``.

The baseline is causal: it only ever looks back, so a week-by-week run and a backfill over the same
period see the same baseline for every observation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

YEAR_DAYS = 365.2425


@dataclass(frozen=True)
class BaselineParams:
    window_days: float = 16.0
    """Half-width of the same-season window (one Landsat or two Sentinel-2 revisits)."""
    widen_days: tuple[float, ...] = (24.0, 32.0, 48.0)
    """Wider half-windows tried, per pixel, when the narrow one holds too few clear values."""
    max_years: int = 3
    """How many earlier years the seasonal baseline looks back (DIST-ALERT uses 3)."""
    min_obs: int = 3
    """Clear values needed before a seasonal baseline is trusted."""
    fallback_days: float = 365.0
    """Look-back for the non-seasonal fallback baseline."""
    fallback_gap_days: float = 1.0
    """The fallback baseline ignores observations closer than this to *t*."""


@dataclass
class Baseline:
    """Baseline statistics for the observations at ``times``; arrays are (time, feature, pixel)."""

    median: np.ndarray
    spread: np.ndarray
    """Robust standard deviation (1.4826 * MAD) of the baseline values; NaN where n < 2."""
    count: np.ndarray
    """Clear values the baseline rests on, (time, pixel)."""
    seasonal: np.ndarray
    """True where the seasonal baseline was used, False where the fallback was, (time, pixel)."""


# NumPy warns on empty slices, and ``warnings.catch_warnings`` is not thread-safe (Prefect and Dask
# run sites in threads), so the core's reductions never see one: empty slices give NaN quietly.
def nanmedian_quiet(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian(a, axis, keepdims=True)``, NaN for all-NaN slices without a warning."""
    empty = np.isnan(a).all(axis=axis, keepdims=True)
    out = np.nanmedian(np.where(empty, 0.0, a), axis=axis, keepdims=True)
    return np.where(empty, np.nan, out)


def nanmean_quiet(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean(a, axis)``, NaN for all-NaN slices without a warning."""
    n = np.isfinite(a).sum(axis=axis)
    return np.where(n > 0, np.nansum(a, axis=axis) / np.maximum(n, 1), np.nan).astype(a.dtype)


def _masked_median_mad(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """values: (obs, feature, pixel) with NaN for missing → median, robust sd, count."""
    count = np.sum(np.isfinite(values[:, 0, :]), axis=0)
    med = nanmedian_quiet(values, axis=0)
    mad = 1.4826 * nanmedian_quiet(np.abs(values - med), axis=0)[0]
    mad = np.where(np.isnan(med[0]) | (count[None, :] < 2), np.nan, mad)
    return med[0], mad, count


def seasonal_baseline(
    days: np.ndarray, values: np.ndarray, targets: np.ndarray, params: BaselineParams = BaselineParams(),
    geometry: np.ndarray | None = None,
) -> Baseline:
    """Compute the baseline for each target observation.

    ``days``: (time,) observation dates as float days; ``values``: (time, feature, pixel) with NaN
    where not clear; ``targets``: indices into ``days`` to build a baseline for.  ``geometry``
    (time,), where given, is each look's viewing geometry (a radar's orbit pass and track): a
    look's baseline then comes from earlier looks of the same geometry only, as OPERA's DIST-S1
    builds its radar baselines per track, since a slope seen from the other side of the orbit
    returns a different power whatever happened on it.  An empty label means unknown: any look.
    """
    n_feat, n_pix = values.shape[1], values.shape[2]
    shape = (len(targets), n_feat, n_pix)
    median = np.full(shape, np.nan, dtype="float32")
    spread = np.full(shape, np.nan, dtype="float32")
    count = np.zeros((len(targets), n_pix), dtype="int32")
    seasonal = np.zeros((len(targets), n_pix), dtype=bool)
    windows = (params.window_days, *params.widen_days)
    for k, t in enumerate(targets):
        lag = days[t] - days
        same = np.ones(days.shape, dtype=bool) if geometry is None or not geometry[t] else geometry == geometry[t]
        lag = np.where(same, lag, np.nan)  # another geometry's looks are in no window
        years = np.round(lag / YEAR_DAYS)
        off = np.abs(lag - years * YEAR_DAYS)
        in_years = (years >= 1) & (years <= params.max_years)
        done = np.zeros(n_pix, dtype=bool)
        for w in windows:
            sel = np.flatnonzero(in_years & (off <= w))
            if sel.size == 0:
                continue
            # a wider window only for the pixels still without a baseline (each pixel's median is
            # its own, so this changes no value; pixels never valid, such as a radar grid's
            # corners, no longer cost every window for the whole site)
            take = _fill(median[k], spread[k], count[k], values, sel, np.flatnonzero(~done), params.min_obs)
            seasonal[k, take] = True
            done[take] = True
            if done.all():
                break
        if not done.all():
            sel = np.flatnonzero((lag >= params.fallback_gap_days) & (lag <= params.fallback_days))
            if sel.size:
                _fill(median[k], spread[k], count[k], values, sel, np.flatnonzero(~done), 1)
    return Baseline(median, spread, count, seasonal)


def _fill(median: np.ndarray, spread: np.ndarray, count: np.ndarray, values: np.ndarray, sel: np.ndarray,
          pixels: np.ndarray, min_obs: int) -> np.ndarray:
    """Set one target's baseline (``median``/``spread`` (feature, pixel), ``count`` (pixel)) from
    the looks ``sel`` for those of ``pixels`` with at least ``min_obs`` of them; returns those."""
    sub = values[sel] if pixels.size == values.shape[2] else values[sel][:, :, pixels]  # no copy of all
    med, mad, cnt = _masked_median_mad(sub)
    ok = cnt >= min_obs
    take = pixels[ok]
    median[:, take] = med[:, ok]
    spread[:, take] = mad[:, ok]
    count[take] = cnt[ok]
    return take
