"""From an image time series to disturbance polygons — the pure core of sitewatch.

Steps (each a plain function, tested on small constructed arrays):

1. :func:`anomaly_scores` — features (indices + reflectances) compared with the seasonal baseline
   of :mod:`change_detection.baseline`; each residual is normalised between dates (the date's
   common-mode shift over the reference area is removed: haze, illumination, a wet year) and
   divided by the pixel's baseline spread combined with the date's spatial noise.  The score is the
   root-mean-square of the standardised residuals over features; an anomaly that is vegetation
   gain (NDVI up, red down, NIR up) counts as calm — regrowth is not disturbance.
2. :func:`confirm_anomalies` — a pixel is *confirmed* when ``min_looks`` consecutive clear looks
   are anomalous (score above ``threshold``).  A clear look below ``threshold`` breaks the run;
   cloudy looks do not.  ``first_seen`` is the first look that shows the change (found at region
   level, walking back from the confirmation), not the date of confirmation.  Single-date
   outliers (a cloud the mask missed) never confirm; a strong change on a pixel's latest look,
   not yet confirmed or refuted, is reported provisionally at low confidence, unless it only
   darkens every band (a missed shadow or wet ground until a second look says otherwise).  A confirmed pixel
   calm for a year is re-armed by its next anomaly (a second dig on the same ground).
3. :func:`disturbance_polygons` — confirmed pixels inside the watched area are grouped with
   ``scikit-image`` (closing, 8-connected labelling, a minimum mapping unit), split where onset
   dates differ by more than ``split_gap_days``, and turned into polygons with a score, a
   confidence level, the first and last date seen, the evidence and a disturbance-type hint.

Nothing here reads files or talks to a network.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from rasterio import features as rio_features
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from skimage import measure, morphology

from .baseline import BaselineParams, nanmean_quiet, nanmedian_quiet, seasonal_baseline
from .features import REFLECTANCE_BANDS, feature_stack, snow_contrast, usable_looks

ALGORITHM_VERSION = "sw-seasonal-1"
CONFIDENCES = ("low", "medium", "high")


@dataclass(frozen=True)
class DetectorParams:
    """Every tunable of the detector, with the reason for its default."""

    threshold: float = 3.0
    """Anomaly score (RMS of robust z-scores) that counts a look as anomalous: three robust
    standard deviations, the usual outlier fence."""
    min_looks: int = 2
    """Consecutive anomalous clear looks needed to confirm (GLAD/RADD confirm on a second look)."""
    medium_looks: int = 3
    """Consecutive anomalous looks for medium confidence."""
    high_looks: int = 4
    """Consecutive anomalous looks for high confidence (or ``min_looks`` at twice the threshold)."""
    min_area_m2: float = 1800.0
    """Minimum mapping unit: two Landsat pixels, eighteen Sentinel-2 pixels."""
    split_gap_days: float = 20.0
    """Neighbouring pixels whose onsets differ by more than this (about two revisits) are separate
    events; over-splitting one event costs nothing, merging two hides the later one."""
    onset_fraction: float = 0.4
    """Once a region is confirmed, earlier looks whose median score over the region exceeds this
    share of ``threshold`` (1.2) are taken as its first sightings (hysteresis in time: a ramping
    disturbance is visible, faintly, before it crosses the threshold).  A region's median is far
    steadier than a pixel's: over 3 x 3 regions of the real control imagery with no change it is
    0.68 (median) and 1.12 (90th percentile).  Pixels above this level also take the pooled score."""
    onset_min_cos: float = 0.5
    """An earlier look joins the onset only if its change points the same way as the confirmed one:
    median cosine with the confirmed change's direction (standardised features) of at least this,
    i.e. within 60 degrees.  On injected events this halves the looks taken in before the onset
    (a detection dated before its event is a miss and a false alarm) for 1 % of the true ones."""
    onset_reach_days: float = 365.0
    """How far a pixel's looks are read back before its own disturbance: the onset walk-back stops
    this many days before the look that confirmed the region, and a region's direction and its
    looks through snow count a pixel's looks only from this many days before that pixel's own first
    anomalous one.  A change that already showed a year before it was confirmed is not this dig's
    onset (the year that re-arms a pixel, ``rearm_days``).  With this reach nothing reads a look of
    a pixel that has never been anomalous once the look is older than the reach, so the stored
    state keeps such looks only for the pixels with a disturbance or a pending run
    (:func:`~change_detection.incremental.prune`) and stays about a year deep however long a site
    is watched.  0 reads back without limit (and nothing is pruned)."""
    max_anomalous_fraction: float = 0.6
    """A date on which more than this share of the reference area is anomalous is treated as
    contaminated (missed haze/cloud, a bad scene) and skipped.  The share is taken over the pixels
    that set the date's statistics (the provider's clear ones), not over snow flags the spectrum
    contradicts: on a look with snow over most of a site, a dig on un-masked flags could
    otherwise be most of the usable pixels and have its own look discarded."""
    min_evidence: int = 6
    """Anomalous pixel-looks a region needs in total (minimum mapping unit x ``min_looks`` + 2)."""
    single_look_factor: float = 2.0
    """A change seen on a pixel's latest clear look only (no later clear look yet to confirm or
    refute it) is reported, provisionally and at low confidence, when its region is at least
    ``min_evidence`` pixels and its median score is this many times ``threshold`` — the same bar as
    high confidence on two looks.  A larger region needs less: its margin above ``threshold``
    shrinks with the square root of its size (``min_evidence`` / pixels), as the standard error of
    a region's median does (24 pixels: 1.5 x, 54 pixels: 1.33 x).  GLAD and RADD alert on a single
    look the same way.  It is withdrawn if the next clear look is calm; in a backfill only the
    record's last looks can qualify.  0 turns single-look alerts off."""
    single_look_darkening: bool = False
    """Whether a single look may alert on a change that only darkens the pixels: every reflectance
    band lower than its baseline.  A missed cloud shadow, rain- or melt-wet ground and a low sun
    do exactly that and are gone by the next look; one look cannot tell them from a dig, so such a
    change waits for its second look (it is then confirmed like any other).  A change that raises
    any band (soil or spoil on vegetation, rubble, a roof) is not held back."""
    single_look_corroborated: bool = True
    """A single-look region below the single-look bar is still reported provisionally when the
    clear look before it already showed the change faintly — its region median above the onset
    hysteresis (``onset_fraction`` x ``threshold``) and pointing the same way (``onset_min_cos``),
    the walk-back's two tests.  That is two looks of evidence, one of them weaker than confirmation
    asks: typically an autumn dig ramping up on the record's last looks."""
    rearm_days: float = 365.0
    """A confirmed pixel that has been calm on at least ``min_looks`` clear looks and on every clear
    look for this many days is re-armed by its next anomalous look: its episode is closed (its
    detection stays as it was) and the new anomaly must confirm as a new disturbance — looters
    return to the same mound.  A year, because within a year a new anomaly on the same pixels
    cannot be told from the first disturbance fading in and out of the seasonal noise, while a
    year of calm means the ground had recovered or become the new normal.  0 never re-arms."""
    ignore_vegetation_gain: bool = True
    """Digging, bulldozing and building remove vegetation or expose soil and material.  An
    anomalous look that points to *more* vegetation — NDVI up, red down (chlorophyll absorbs it)
    and NIR up (more leaf) — is regrowth, a wetter or later season, or a crop, and counts as calm.
    OPERA DIST-ALERT and GLAD alert on vegetation loss only, the same one-sided choice.  Soil,
    spoil, water, rubble or a roof mixed into a pixel lower its NIR or raise its red.  Needs red
    and NIR (not applied to RGB-only mosaics)."""
    spatial_pooling: bool = True
    """Also score each pixel by its 3 x 3 neighbourhood (coherent change) and keep the larger."""
    texture: bool = True
    """On RGB-only mosaics, also score the local texture of brightness
    (:func:`~change_detection.features.local_texture`): pits and spoil keep the colour of the
    ground they are dug in but roughen it; bulldozing smooths it.  Multispectral sources have no
    texture feature."""
    through_snow: bool = True
    """Also look at pixels under snow (:func:`~change_detection.features.snow_contrast`).  Snow is
    nearly black in the SWIR and even across a site, so ground showing through it — spoil thrown
    on the snow, snow dug or scraped away — stands out against the snow around it on the same
    date.  Such a look is scored by that contrast alone (there is no snow-free baseline to compare
    it with), so it never counts towards confirmation — a ridge the wind keeps bare shows through
    the snow on look after look — and two usable looks still confirm.  It dates the change (the
    walk-back of :func:`disturbance_polygons` passes it on its score, also across ``thaw_looks``
    clear looks that do not show the change) and corroborates a single usable look after it.
    Needs SWIR and the provider's snow flag."""
    thaw_looks: int = 2
    """Clear looks the onset walk-back may cross to reach an earlier look on which the region was
    seen through snow (``through_snow``), though they do not show the change themselves.  A dig
    made under spring snow stands out against the snow (spoil is far brighter in the SWIR), but on
    the thaw's clear looks disturbed soil and dormant grass look alike; it is confirmed weeks later
    at green-up, when the bare patch stands out against new grass.  The walk-back would stop at the
    first of those thaw looks and date the dig from green-up.  Crossing reaches only a look seen
    through snow (a faint clear look still stops the walk towards an earlier clear anomaly).  Two,
    the looks confirmation asks for: a longer stretch of clear looks that do not show the change is
    evidence against it.  0 stops the walk at the first such look."""
    baseline: BaselineParams = field(default_factory=BaselineParams)


@dataclass(frozen=True)
class Detection:
    """One disturbance polygon found at one site."""

    detection_id: str
    """Stable across re-runs and weeks: site, algorithm version, onset date, anchor pixel."""
    site_id: str
    geometry: BaseGeometry
    """Polygon in the dataset's CRS (see ``crs``)."""
    crs: str
    first_seen: pd.Timestamp
    """First clear date that shows the change."""
    last_seen: pd.Timestamp
    """Latest clear date that still shows it."""
    confirmed_on: pd.Timestamp
    """Date of the look that confirmed it."""
    score: float
    """0-1; 0.5 is an anomaly exactly at the threshold, approaching 1 as it grows."""
    confidence: str
    area_m2: float
    n_looks: int
    """Consecutive clear anomalous looks so far."""
    kind_hint: str
    """``bare_soil_exposure``, ``vegetation_loss``, ``water``, ``new_structure``, on RGB mosaics
    ``surface_roughened`` or ``surface_levelled`` (texture only), or ``other``."""
    evidence: dict = field(default_factory=dict, hash=False, compare=False)
    """Median change of each feature against the baseline and the features used."""


@dataclass
class AnomalyCube:
    """Scores for the target looks: arrays are (target, pixel)."""

    times: pd.DatetimeIndex
    score: np.ndarray
    """NaN where the look is not clear or has no baseline."""
    delta: np.ndarray
    """(target, feature, pixel) change of each feature against the baseline."""
    features: list[str]
    skipped_dates: list[pd.Timestamp]
    z: np.ndarray
    """(target, feature, pixel) standardised residuals (float16): the direction of a change."""
    start: int = 0
    """Index in ``times`` of the first look that ``score``, ``delta`` and ``z`` hold for every
    pixel.  A stored state keeps the looks before it only for the pixels ``kept``, in the ``old_*``
    arrays (:func:`change_detection.incremental.prune`); read them with :meth:`score_at`,
    :meth:`delta_at` and :meth:`z_at`, which give NaN for a look not kept."""
    kept: np.ndarray | None = None
    old_score: np.ndarray | None = None
    old_delta: np.ndarray | None = None
    old_z: np.ndarray | None = None

    @property
    def through_snow(self) -> np.ndarray:
        """(target, pixel) True where a look was seen through snow (``DetectorParams.through_snow``):
        scored by its contrast with the snow, with no feature change against a baseline.  Over the
        looks held for every pixel (from ``start``)."""
        return np.isfinite(self.score) & ~_has_direction(self.z)

    def score_at(self, looks: int | slice, pix) -> np.ndarray:
        """``score[looks][..., pix]`` with ``looks`` indexing all of ``times``."""
        return self._take(self.score, self.old_score, looks, pix)

    def delta_at(self, looks: int | slice, pix) -> np.ndarray:
        """``delta[looks][..., pix]``: (look, feature, pixel), axes dropped for an int."""
        return self._take(self.delta, self.old_delta, looks, pix)

    def z_at(self, looks: int | slice, pix) -> np.ndarray:
        """``z[looks][..., pix]``: (look, feature, pixel), axes dropped for an int."""
        return self._take(self.z, self.old_z, looks, pix)

    def _take(self, dense: np.ndarray, old: np.ndarray | None, looks: int | slice, pix) -> np.ndarray:
        if self.start == 0:
            return dense[looks][..., pix]
        idx = np.arange(len(self.times))[looks]
        one_look, one_pixel = np.ndim(idx) == 0, np.ndim(pix) == 0
        idx, p = np.atleast_1d(idx), np.atleast_1d(np.asarray(pix))
        out = np.full((idx.size,) + dense.shape[1:-1] + (p.size,), np.nan, dtype=dense.dtype)
        recent = idx >= self.start
        out[recent] = dense[idx[recent] - self.start][..., p]
        if self.kept is not None and self.kept.size and not recent.all():
            pos = np.minimum(np.searchsorted(self.kept, p), self.kept.size - 1)
            held = self.kept[pos] == p
            past = out[~recent]
            past[..., held] = old[idx[~recent]][..., pos[held]]
            out[~recent] = past
        out = out[0] if one_look else out
        return out[..., 0] if one_pixel else out


def _days(times: pd.DatetimeIndex) -> np.ndarray:
    return ((times - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype="float64")


def anomaly_scores(
    ds: xr.Dataset, since: pd.Timestamp | str | None = None, params: DetectorParams = DetectorParams()
) -> AnomalyCube:
    """Score every clear look on or after ``since`` against its seasonal baseline.

    ``ds`` has reflectance bands (float, 0-1, NaN where invalid) or radar backscatter, and a
    boolean ``clear`` variable on (time, y, x).  Every pixel of ``ds`` serves as reference area for
    the normalisation between dates; the watched area is applied later.  An ``orbit`` coordinate
    (time; a radar look's pass and track, "" where unknown) keeps each look's baseline to looks
    of the same geometry (:func:`~change_detection.baseline.seasonal_baseline`).
    """
    ds = ds.sortby("time")
    times = pd.DatetimeIndex(ds.time.values)
    feats = feature_stack(ds, texture=params.texture)
    names = list(feats.data_vars)
    usable = usable_looks(ds)
    # The date's statistics (common-mode shift, spatial noise) come from the pixels the provider
    # itself calls clear; pixels whose snow flag the spectrum contradicts are scored, not used as
    # reference (the flag often marks patchy snow nearby).
    ref = (ds["clear"].astype(bool) & usable).values.reshape(len(times), 1, -1)
    arr = np.stack([feats[n].where(usable).values for n in names], axis=1)  # (t, f, y, x)
    n_t, n_f = arr.shape[:2]
    values = arr.reshape(n_t, n_f, -1).astype("float32")
    # Relative normalisation between dates: remove each date's median over the reference area, so
    # the baseline models how a pixel differs from its surroundings in that season.  Green-up that
    # comes two weeks early, haze and sun angle move the whole area together and cancel here.
    values = values - nanmedian_quiet(np.where(ref, values, np.nan), axis=2)
    start = pd.Timestamp(since) if since is not None else times[0]
    targets = np.flatnonzero(times >= start)
    if targets.size == 0:  # nothing new to score
        return AnomalyCube(times[:0], np.zeros((0, values.shape[2]), "float32"),
                           np.zeros((0, n_f, values.shape[2]), "float32"), names, [],
                           np.zeros((0, n_f, values.shape[2]), "float16"))
    geometry = ds["orbit"].values.astype(str) if "orbit" in ds.coords else None  # radar: pass and track
    base = seasonal_baseline(_days(times), values, targets, params.baseline, geometry)
    obs = values[targets]
    resid = obs - base.median
    ref_t = ref[targets]
    common = nanmedian_quiet(np.where(ref_t, resid, np.nan), axis=2)
    resid = resid - common
    scene_sd = 1.4826 * nanmedian_quiet(np.abs(np.where(ref_t, resid, np.nan)), axis=2)
    spread = np.nan_to_num(base.spread, nan=0.0)
    sigma = np.sqrt(spread**2 + scene_sd**2)
    z = resid / np.where(sigma > 1e-6, sigma, np.nan)
    score = np.sqrt(nanmean_quiet(z**2, axis=1))
    score[~np.all(np.isfinite(z), axis=1)] = np.nan
    if params.spatial_pooling:
        ny, nx = ds.sizes["y"], ds.sizes["x"]
        pooled = _pooled_score(z.reshape(len(targets), n_f, ny, nx)).reshape(len(targets), -1)
        # Pooling lends support to faint but coherent anomalies; it does not annex calm neighbours,
        # so only pixels that are themselves above the hysteresis level take the pooled score.
        faint = np.isfinite(score) & (score > params.threshold * params.onset_fraction)
        score = np.where(faint, np.fmax(score, pooled), score)
    if params.ignore_vegetation_gain:
        gain = vegetation_gain(z, names)
        score = np.where(gain & (score > params.threshold), 0.0, score)
    kept = np.ones(len(targets), dtype=bool)
    for k in range(len(targets)):
        # Judged on the pixels that set the date's statistics: a look with snow over most of the
        # site may leave a dig on un-masked snow flags as most of its usable pixels.
        finite = np.isfinite(score[k]) & ref_t[k, 0]
        if finite.sum() and np.mean(score[k][finite] > params.threshold) > params.max_anomalous_fraction:
            score[k] = np.nan
            kept[k] = False
    skipped = list(times[targets[~kept]])
    if params.through_snow:
        # Only a contrast above the threshold is a look: snow that looks like snow hides the
        # ground, so it neither extends nor breaks a run.  A look the contamination test skipped
        # is not looked at through snow either.
        snowy = snow_contrast(ds, targets).reshape(len(targets), -1)
        score = np.where(kept[:, None] & (snowy > params.threshold) & ~np.isfinite(score), snowy, score)
    z16 = np.clip(np.nan_to_num(z, nan=0.0), -6e4, 6e4).astype("float16")
    return AnomalyCube(times[targets], score, resid + common, names, skipped, z16)


def vegetation_gain(z: np.ndarray, names: list[str]) -> np.ndarray:
    """(time, pixel) True where a look's standardised change ``z`` (time, feature, pixel) points to
    more vegetation: NDVI up, red down and NIR up.  Needs red and NIR; on RGB-only mosaics there
    is no such test (dark moist soil lowers red and can raise excess green there too), so it is
    False everywhere."""
    if not {"ndvi", "red", "nir"} <= set(names):
        return np.zeros((z.shape[0], z.shape[2]), dtype=bool)
    with np.errstate(invalid="ignore"):
        return ((z[:, names.index("ndvi")] > 0) & (z[:, names.index("red")] < 0)
                & (z[:, names.index("nir")] > 0))


def _pooled_score(z: np.ndarray) -> np.ndarray:
    """Spatially pooled score: mean z over each pixel's clear 3 x 3 neighbourhood, re-standardised.

    A disturbance covers several neighbouring pixels with a coherent change; noise does not.  The
    neighbourhood mean is divided by its own robust spread over the reference area on that date,
    so the pooled score is in the same units as the pixel score.  z: (time, feature, y, x).
    """
    from scipy import ndimage

    finite = np.isfinite(z)
    filled = np.where(finite, z, 0.0)
    kernel = np.ones((1, 1, 3, 3))
    total = ndimage.convolve(filled, kernel, mode="constant")
    count = ndimage.convolve(finite.astype(float), kernel, mode="constant")
    mean = np.where((count >= 5) & finite, total / np.maximum(count, 1), np.nan)
    n_t, n_f = mean.shape[:2]
    flat = mean.reshape(n_t, n_f, -1)
    centre = nanmedian_quiet(flat, axis=2)
    sd = 1.4826 * nanmedian_quiet(np.abs(flat - centre), axis=2)
    zp = (flat - centre) / np.where(sd > 1e-9, sd, np.nan)
    return np.sqrt(nanmean_quiet(zp**2, axis=1)).reshape(n_t, *mean.shape[2:])


@dataclass
class Confirmation:
    """Per-pixel outcome of :func:`confirm_anomalies`; index arrays point into the cube's times.

    The ``run_*`` arrays and ``total`` are the walk's state, so a later call can resume it with
    only the new looks (:mod:`change_detection.incremental`).  A pixel re-armed after a calm year
    (``DetectorParams.rearm_days``) keeps its closed episodes in ``archive``: per field
    (``first``, ``confirm``, ``last``, ``looks``, ``total``) an array (episode ordinal, pixel);
    ``closed`` counts them per pixel.
    """

    confirmed: np.ndarray
    first: np.ndarray
    confirm: np.ndarray
    last: np.ndarray
    looks: np.ndarray
    mean_score: np.ndarray
    run_start: np.ndarray | None = None
    run_len: np.ndarray | None = None
    run_sum: np.ndarray | None = None
    total: np.ndarray | None = None
    n_looks_walked: int = 0
    quiet: np.ndarray | None = None
    """Calm clear looks since the pixel's last anomalous one."""
    last_day: np.ndarray | None = None
    """Day number (since 1970) of the pixel's last anomalous look; NaN before any."""
    closed: np.ndarray | None = None
    archive: dict | None = None


ARCHIVE_FIELDS = ("first", "confirm", "last", "looks", "total")


def confirm_anomalies(score: np.ndarray, params: DetectorParams = DetectorParams(),
                      resume: Confirmation | None = None, days: np.ndarray | None = None,
                      through_snow: np.ndarray | None = None) -> Confirmation:
    """Walk the looks in time order; confirm pixels with ``min_looks`` consecutive anomalous looks.

    ``score``: (time, pixel), NaN for looks that are not clear (they neither extend nor break a
    run).  ``through_snow`` (time, pixel; :attr:`AnomalyCube.through_snow`) marks looks seen
    through snow: the walk treats them as hidden too — ground showing through snow on look after
    look is as likely a ridge the wind keeps bare as a dig — and they serve only to date a change
    (:func:`_extend_onset`).  After confirmation every further anomalous look extends ``last`` and
    ``looks``.
    With ``resume`` (the result of an earlier walk), ``score`` holds only the looks that follow
    it; indices continue from where that walk stopped.  ``days`` (day numbers of ``score``'s looks)
    enables re-arming after a calm ``rearm_days``; without it a pixel stays confirmed.
    """
    n_t, n_p = score.shape
    if resume is None:
        run_start = np.full(n_p, -1)
        run_len = np.zeros(n_p, dtype=int)
        run_sum = np.zeros(n_p)
        confirmed = np.zeros(n_p, dtype=bool)
        first = np.full(n_p, -1)
        confirm = np.full(n_p, -1)
        last = np.full(n_p, -1)
        looks = np.zeros(n_p, dtype=int)
        total = np.zeros(n_p)
        offset = 0
        resume = Confirmation(confirmed, first, confirm, last, looks, np.zeros(n_p))
    else:
        run_start, run_len, run_sum = resume.run_start.copy(), resume.run_len.copy(), resume.run_sum.copy()
        confirmed, first, confirm = resume.confirmed.copy(), resume.first.copy(), resume.confirm.copy()
        last, looks, total = resume.last.copy(), resume.looks.copy(), resume.total.copy()
        offset = resume.n_looks_walked
    quiet = resume.quiet.copy() if resume.quiet is not None else np.zeros(n_p, dtype=int)
    last_day = resume.last_day.copy() if resume.last_day is not None else np.full(n_p, np.nan)
    closed = resume.closed.copy() if resume.closed is not None else np.zeros(n_p, dtype=int)
    archive = {f: a.copy() for f, a in resume.archive.items()} if resume.archive else _empty_archive(n_p)
    rearming = days is not None and params.rearm_days > 0
    for j in range(n_t):
        k = offset + j
        s = score[j] if through_snow is None else np.where(through_snow[j], np.nan, score[j])
        clear = np.isfinite(s)
        anom = clear & (s > params.threshold)
        calm = clear & ~anom
        if rearming:
            with np.errstate(invalid="ignore"):
                rearm = confirmed & anom & (quiet >= params.min_looks) & (days[j] - last_day >= params.rearm_days)
            if rearm.any():  # close the old episode; this look may start a new one
                idx = np.flatnonzero(rearm)
                need = int(closed[idx].max()) + 1
                if archive["first"].shape[0] < need:
                    archive = _grow_archive(archive, need)
                episode = {"first": first, "confirm": confirm, "last": last, "looks": looks, "total": total}
                for f in ARCHIVE_FIELDS:
                    archive[f][closed[idx], idx] = episode[f][idx]
                closed[idx] += 1
                confirmed[idx] = False
                first[idx] = confirm[idx] = last[idx] = run_start[idx] = -1
                looks[idx] = run_len[idx] = 0
                total[idx] = run_sum[idx] = 0.0
        quiet[calm] += 1
        quiet[anom] = 0
        if days is not None:
            last_day[anom] = days[j]
        # pixels still waiting for confirmation
        wait = ~confirmed
        starting = wait & anom & (run_len == 0)
        run_start[starting] = k
        grow = wait & anom
        run_len[grow] += 1
        run_sum[grow] += s[grow]
        reset = wait & calm
        run_len[reset] = 0
        run_sum[reset] = 0.0
        now = wait & (run_len >= params.min_looks)
        confirmed[now] = True
        first[now] = run_start[now]
        confirm[now] = k
        last[now] = k
        looks[now] = run_len[now]
        total[now] = run_sum[now]
        # pixels confirmed earlier keep accumulating evidence while the change persists
        later = confirmed & ~now & anom
        last[later] = k
        looks[later] += 1
        total[later] += s[later]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(looks > 0, total / np.maximum(looks, 1), np.nan)
    return Confirmation(confirmed, first, confirm, last, looks, mean, run_start, run_len, run_sum, total, offset + n_t,
                        quiet, last_day, closed, archive)


def _empty_archive(n_p: int) -> dict:
    return {f: np.zeros((0, n_p), dtype=float if f == "total" else int) for f in ARCHIVE_FIELDS}


def _grow_archive(archive: dict, rows: int) -> dict:
    out = {}
    for f, a in archive.items():
        extra = np.full((rows - a.shape[0], a.shape[1]), 0 if f in ("looks", "total") else -1, dtype=a.dtype)
        out[f] = np.concatenate([a, extra])
    return out


def episode_layers(conf: Confirmation) -> list[Confirmation]:
    """The confirmed episodes as layers, one per episode ordinal: layer ``o`` holds each pixel's
    ``o``-th disturbance (closed ones from the archive, the open one from ``conf``).  Without
    re-armed pixels this is ``[conf]``."""
    closed = conf.closed if conf.closed is not None else np.zeros(conf.confirmed.size, dtype=int)
    if not closed.any():
        return [conf]
    layers = []
    for o in range(int(closed.max()) + 1):
        arch = closed > o
        cur = (closed == o) & conf.confirmed
        vals = {f: np.where(arch, conf.archive[f][o], getattr(conf, f)) if o < conf.archive[f].shape[0]
                else getattr(conf, f).copy() for f in ARCHIVE_FIELDS}
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(vals["looks"] > 0, vals["total"] / np.maximum(vals["looks"], 1), np.nan)
        layers.append(Confirmation(arch | cur, vals["first"], vals["confirm"], vals["last"], vals["looks"], mean))
    return layers


def grid_transform(ds: xr.Dataset) -> tuple[Affine, float]:
    """The affine transform of the dataset's pixel grid (from pixel-centre coordinates) and the pixel area."""
    x = ds.x.values
    y = ds.y.values
    dx = float(x[1] - x[0]) if x.size > 1 else float(ds.attrs.get("resolution", 30.0))
    dy = float(y[1] - y[0]) if y.size > 1 else -abs(dx)
    return Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2), abs(dx * dy)


def _backscatter_kind(delta: dict[str, float]) -> str:
    """Name a radar change from the median backscatter deltas in dB.  One dB is about the spread
    that speckle leaves after :func:`~change_detection.features.multilook`; open water is a
    mirror to the radar (a drop of several dB); a wall or roof raises co-polarised VV most (double
    bounce), so the VH/VV ratio falls by dBs; losing plants loses VH's volume scattering; pits and spoil
    heaps roughen the surface and raise both; bulldozing smooths it and lowers both."""
    vv, vh = delta.get("vv_db", 0.0), delta.get("vh_db", 0.0)
    ratio = delta.get("vh_vv_db", vh - vv)
    # grassland's VV is near -12 dB, calm water's near -20 dB or below; the region's median
    # change understates that by about half, since the multilook mixes its edge with the ground
    # around it
    if min(vv, vh) < -5:
        return "water"
    if vv > 3 and ratio < -2:
        return "new_structure"
    if vh < -1 and ratio < -1:
        return "vegetation_loss"
    if max(vv, vh) > 1:
        return "surface_roughened"
    if max(vv, vh) < -1:
        return "surface_levelled"
    return "other"


def _kind_hint(delta: dict[str, float]) -> str:
    """Name the change from the median feature deltas (reflectance units, index units)."""
    if "vv_db" in delta or "vh_db" in delta:
        return _backscatter_kind(delta)
    d_ndvi = delta.get("ndvi", delta.get("exg", 0.0))
    bands = [delta[b] for b in ("red", "green", "blue", "nir", "swir16") if b in delta]
    brightness = float(np.mean(bands)) if bands else 0.0
    if "nir" in delta and delta["nir"] < -0.05 and d_ndvi < -0.1 and brightness < 0:
        return "water"
    if d_ndvi < -0.05 and delta.get("swir16", brightness) > 0.01:
        return "bare_soil_exposure"
    if d_ndvi < -0.05:
        return "vegetation_loss"
    if brightness > 0.03:
        return "new_structure"
    texture = delta.get("texture", 0.0)  # RGB mosaics: local variation / mean brightness
    if texture > 0.05:
        return "surface_roughened"  # pits and spoil heaps in ground of the same colour
    if texture < -0.05:
        return "surface_levelled"  # bulldozed or scraped smooth
    return "other"


def _score01(mean_score: float, threshold: float) -> float:
    return float(mean_score / (mean_score + threshold)) if math.isfinite(mean_score) else 0.0


def _confidence(looks: int, mean_score: float, params: DetectorParams) -> str:
    if looks >= params.high_looks or (looks >= params.min_looks and mean_score >= 2 * params.threshold):
        return "high"
    if looks >= params.medium_looks:
        return "medium"
    return "low"


def _onset_parts(mask: np.ndarray, onset_days: np.ndarray, gap: float) -> Iterator[list[np.ndarray]]:
    """For each 8-connected component of ``mask``: its parts split where onsets (``onset_days``, a
    grid like ``mask``) differ by more than ``gap`` days, each part 8-connected, in onset order."""
    components = measure.label(mask, connectivity=2)
    for comp in range(1, components.max() + 1):
        idx = np.flatnonzero((components == comp).ravel())
        groups = _onset_groups(onset_days.ravel()[idx], gap)
        parts = []
        for g in np.unique(groups):  # groups are numbered in onset order
            sub = np.zeros(mask.size, dtype=bool)
            sub[idx[groups == g]] = True
            labels = measure.label(sub.reshape(mask.shape), connectivity=2)
            parts.extend(labels == p for p in range(1, labels.max() + 1))
        yield parts


def _onset_groups(first_days: np.ndarray, gap: float) -> np.ndarray:
    """Cluster sorted onset dates: a new group starts after a gap longer than ``gap`` days."""
    order = np.argsort(first_days)
    groups = np.zeros(first_days.size, dtype=int)
    g = 0
    for a, b in zip(order[:-1], order[1:]):
        if first_days[b] - first_days[a] > gap:
            g += 1
        groups[b] = g
    return groups


def disturbance_polygons(
    ds: xr.Dataset,
    cube: AnomalyCube,
    conf: Confirmation,
    site_id: str,
    watch: np.ndarray | None = None,
    params: DetectorParams = DetectorParams(),
) -> list[Detection]:
    """Group confirmed pixels into polygons with dates, score, confidence and evidence."""
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    transform, pixel_area = grid_transform(ds)
    crs = str(ds.attrs.get("crs", ""))
    mask = conf.confirmed.reshape(ny, nx)
    if watch is not None:
        mask = mask & watch.astype(bool)
    min_pixels = max(2, int(math.ceil(params.min_area_m2 / pixel_area)))
    days = _days(cube.times)
    layers = episode_layers(conf)
    found: list[tuple[np.ndarray, Confirmation, np.ndarray]] = []  # region, its episodes, their ordinals
    for ordinal, layer in enumerate(layers):
        ords = np.full(conf.confirmed.size, ordinal)
        lmask = layer.confirmed.reshape(ny, nx)
        if watch is not None:
            lmask = lmask & watch.astype(bool)
        for parts in _onset_parts(lmask, days[layer.first.reshape(ny, nx)], params.split_gap_days):
            earlier: list[np.ndarray] = []  # regions of this component with an earlier onset
            for part in parts:
                host = _growth_host(part, earlier, layer, min_pixels, params, days)
                if host is not None:
                    host |= part  # the earlier event spreading, not a new one
                elif part.sum() >= min_pixels:
                    earlier.append(part.copy())
                elif len(layers) > 1:
                    found.append((part.copy(), layer, ords))  # may be part of a region in another layer
            found.extend((r, layer, ords) for r in earlier)
    if len(layers) > 1:
        found = _merge_across_layers(found, days, params.split_gap_days)
        found = [(r, v, o) for r, v, o in found if r.sum() >= min_pixels]
    # Minimum evidence: anomalous pixel-looks summed over the region.  Two pixels seen twice by
    # chance are far likelier than three pixels seen twice, or two seen three times.
    found = [(r, v, o) for r, v, o in found if int(v.looks[np.flatnonzero(r.ravel())].sum()) >= params.min_evidence]
    detections = [_repeat_evidence(_make_detection(ds, cube, v, r, transform, pixel_area, crs, site_id, min_pixels,
                                                   params), conf, cube, r, o)
                  for r, v, o in found]
    if params.single_look_factor > 0 and conf.run_len is not None:
        taken = _neighbourhood(mask)
        detections += _single_look_detections(ds, cube, conf, taken, watch, transform, pixel_area, crs, site_id,
                                               min_pixels, params)
    return sorted(detections, key=lambda d: (d.first_seen, d.detection_id))


def _neighbourhood(mask: np.ndarray) -> np.ndarray:
    """The mask and its 8-connected neighbours: what "touching" a region means here."""
    return morphology.dilation(mask, morphology.footprint_rectangle((3, 3)))


def _merge_across_layers(found: list, days: np.ndarray, gap: float) -> list:
    """Join regions of different episode layers that touch and start within ``gap`` days: one
    disturbance over pixels of which some had an earlier, closed episode and some had none."""
    out: list[list] = [[r.copy(), v, o] for r, v, o in found]
    merged = True
    while merged:
        merged = False
        for a in range(len(out)):
            for b in range(a + 1, len(out)):
                (ra, va, oa), (rb, vb, ob) = out[a], out[b]
                if va is vb:
                    continue
                onset_a = np.median(days[va.first[np.flatnonzero(ra.ravel())]])
                onset_b = np.median(days[vb.first[np.flatnonzero(rb.ravel())]])
                if abs(onset_a - onset_b) > gap or not (_neighbourhood(ra) & rb).any():
                    continue
                out[a] = [ra | rb, _composite(va, ra, vb, rb), np.where(rb.ravel(), ob, oa)]
                del out[b]
                merged = True
                break
            if merged:
                break
    return [(r, v, o) for r, v, o in out]


def _repeat_evidence(det: Detection, conf: Confirmation, cube: AnomalyCube, region: np.ndarray,
                     ordinals: np.ndarray) -> Detection:
    """Say so when the detection is on ground disturbed before (a pixel's second or later episode):
    the first date of the earlier disturbance and the share of the area it covered."""
    pix = np.flatnonzero(region.ravel())
    again = pix[ordinals[pix] >= 1]
    if again.size:
        earlier = conf.archive["first"][ordinals[again] - 1, again]
        det.evidence["earlier_disturbance_first_seen"] = str(cube.times[int(earlier.min())].date())
        det.evidence["earlier_disturbance_share"] = round(again.size / pix.size, 2)
    return det


def _composite(va: Confirmation, ra: np.ndarray, vb: Confirmation, rb: np.ndarray) -> Confirmation:
    """A view holding ``va``'s episodes on ``ra`` and ``vb``'s on ``rb``."""
    pb = np.flatnonzero(rb.ravel())
    arrs = []
    for f in ("confirmed", "first", "confirm", "last", "looks", "mean_score"):
        a = getattr(va, f).copy()
        a[pb] = getattr(vb, f)[pb]
        arrs.append(a)
    return Confirmation(*arrs)


def _single_look_detections(ds, cube, conf, taken, watch, transform, pixel_area, crs, site_id, min_pixels,
                            params) -> list[Detection]:
    """Provisional detections from pixels whose only anomalous look is their latest clear one.

    Such a pixel's run has started and nothing has broken it (clouds since do not), but it has not
    had the second look that confirms.  Regions next to a confirmed detection are its growth and
    are left to it.  A region qualifies on strength alone: ``min_evidence`` pixels (one look each)
    at a median score of ``single_look_factor`` x ``threshold``, less for larger regions
    (:func:`_single_look_bar`) — or, under that bar, when the clear look before it already showed
    the change faintly (``single_look_corroborated``).  A change that only darkens every band
    waits for its second look (``single_look_darkening``).
    """
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    pending = (~conf.confirmed & (conf.run_len >= 1)).reshape(ny, nx) & ~taken
    if watch is not None:
        pending &= watch.astype(bool)
    run_mean = np.where(conf.run_len > 0, conf.run_sum / np.maximum(conf.run_len, 1), np.nan)
    days = _days(cube.times)
    out = []
    for parts in _onset_parts(pending, days[conf.run_start.reshape(ny, nx)], params.split_gap_days):
        for part in parts:
            pix = np.flatnonzero(part.ravel())
            if pix.size < max(min_pixels, params.min_evidence):
                continue
            if np.median(run_mean[pix]) < _single_look_bar(pix.size, params):
                if not params.single_look_corroborated:
                    continue
                k_run = int(np.max(conf.run_start[pix]))
                direction = _change_direction(cube, pix, k_run, k_run, params.threshold, conf.run_start[pix],
                                              params.onset_reach_days)
                if _extend_onset(cube, pix, k_run, params.threshold * params.onset_fraction, direction,
                                 params.onset_min_cos, reach=params.onset_reach_days) == k_run:
                    continue
            if not params.single_look_darkening and _only_darker(cube, pix, conf.run_start[pix]):
                continue
            out.append(_make_detection(ds, cube, _pending_as_confirmed(conf, pix, run_mean), part, transform,
                                       pixel_area, crs, site_id, min_pixels, params, provisional=True))
    return out


def _only_darker(cube: AnomalyCube, pix: np.ndarray, looks: np.ndarray) -> bool:
    """True when every reflectance band of the region is lower than its baseline on the pixels'
    look (median standardised change below 0): shadow, wet ground or illumination, on one look."""
    bands = [i for i, name in enumerate(cube.features) if name in REFLECTANCE_BANDS]
    if not bands:
        return False
    z = np.empty((pix.size, len(cube.features)), dtype="float32")  # (pixel, feature)
    for k in np.unique(looks):
        on = looks == k
        z[on] = cube.z_at(int(k), pix[on]).T
    return bool(np.all(np.median(z[:, bands], axis=0) < 0))


def _single_look_bar(n_pixels: int, params: DetectorParams) -> float:
    """Median score a single-look region of ``n_pixels`` needs: ``single_look_factor`` x
    ``threshold`` at the minimum evidence, the margin above the threshold shrinking with the square
    root of the region's size (the standard error of a region's median falls as 1 / sqrt(n))."""
    margin = (params.single_look_factor - 1.0) * math.sqrt(params.min_evidence / max(n_pixels, params.min_evidence))
    return params.threshold * (1.0 + margin)


def _pending_as_confirmed(conf: Confirmation, pix: np.ndarray, run_mean: np.ndarray) -> Confirmation:
    """A copy of ``conf`` in which the pending pixels ``pix`` count as confirmed by their one look."""
    confirmed, first, confirm, last = conf.confirmed.copy(), conf.first.copy(), conf.confirm.copy(), conf.last.copy()
    looks, mean = conf.looks.copy(), conf.mean_score.copy()
    confirmed[pix] = True
    # With the default two-look confirmation a pending run is one look long: it starts and ends there.
    first[pix] = confirm[pix] = last[pix] = conf.run_start[pix]
    looks[pix] = conf.run_len[pix]
    mean[pix] = run_mean[pix]
    return Confirmation(confirmed, first, confirm, last, looks, mean)


def _growth_host(part: np.ndarray, earlier: list[np.ndarray], conf: Confirmation, min_pixels: int,
                 params: DetectorParams, days: np.ndarray) -> np.ndarray | None:
    """The earlier region that a later-onset ``part`` touches, if the part is only its growth.

    A later-onset part next to an earlier detection is a new event only if it stands on its own:
    at least twice the minimum mapping unit and confirmed at medium confidence or better.
    Otherwise it is the earlier dig spreading and is merged into it — unless the earlier one had
    been calm for ``rearm_days`` when the part began (a dig does not spread after a calm year).
    """
    if not earlier:
        return None
    grown = _neighbourhood(part)
    onset = days[conf.first[np.flatnonzero(part.ravel())]].min()

    def active(r: np.ndarray) -> bool:
        last = days[conf.last[np.flatnonzero(r.ravel())]].max()
        return params.rearm_days <= 0 or onset - last < params.rearm_days

    touching = [r for r in earlier if (grown & r).any() and active(r)]
    if not touching:
        return None
    looks = int(np.median(conf.looks[np.flatnonzero(part.ravel())]))
    if part.sum() >= 2 * min_pixels and looks >= params.medium_looks:
        return None
    return max(touching, key=lambda r: int((grown & r).sum()))


def _change_direction(cube: AnomalyCube, pix: np.ndarray, k0: int, k1: int, threshold: float,
                      starts: np.ndarray, reach: float) -> np.ndarray | None:
    """Unit vector of the median standardised change over the pixels' anomalous looks k0..k1, each
    pixel's from ``reach`` days before its own first anomalous look (``starts``) on."""
    sc = cube.score_at(slice(k0, k1 + 1), pix)
    z = cube.z_at(slice(k0, k1 + 1), pix).astype("float32")
    sel = np.isfinite(sc) & (sc > threshold) & _has_direction(z) & _within_reach(cube, k0, k1, starts, reach)
    if not sel.any():
        return None
    u = np.array([np.median(z[:, f][sel]) for f in range(z.shape[1])])
    norm = float(np.linalg.norm(u))
    return u / norm if norm > 0 else None


def _within_reach(cube: AnomalyCube, k0: int, k1: int, starts: np.ndarray, reach: float) -> np.ndarray:
    """(look, pixel): True where look k0..k1 is at most ``reach`` days before the pixel's own first
    anomalous look ``starts`` (``DetectorParams.onset_reach_days``; 0: every look)."""
    if reach <= 0:
        return np.ones((k1 - k0 + 1, len(starts)), dtype=bool)
    days = _days(cube.times)
    return days[k0 : k1 + 1, None] >= days[starts][None, :] - reach


def _has_direction(z: np.ndarray) -> np.ndarray:
    """False where a scored pixel-look has no feature change: it was seen through snow
    (``DetectorParams.through_snow``), scored by its contrast with the snow, not against its
    baseline.  ``z`` is (..., feature, pixel) as in ``AnomalyCube.z``."""
    return np.any(z != 0, axis=-2)


def _extend_onset(cube: AnomalyCube, pix: np.ndarray, k_first: int, low: float, direction: np.ndarray | None,
                  min_cos: float, thaw_looks: int = 0, reach: float = 0.0) -> int:
    """Walk back from ``k_first`` over looks that already show the change, faintly.

    A look counts when the region's median score is above ``low`` and its change points the same
    way as the confirmed change (median cosine with ``direction`` of at least ``min_cos``): a
    random anomaly before the onset seldom does both.  Looks where less than half the region is
    clear neither extend nor stop the walk.  A look seen through snow counts on its score alone.
    The walk stops at the first clear look that fails, unless a look seen through snow follows
    (earlier in time) within ``thaw_looks`` failing clear looks: then it goes on from that look
    (``DetectorParams.thaw_looks``).  Clear looks passed on the way there do not move the onset.
    It goes back no further than ``reach`` days (``DetectorParams.onset_reach_days``; 0: no limit).
    """
    k = k_first
    crossing = 0  # failing clear looks passed since the onset last moved
    days = _days(cube.times)
    for j in range(k_first - 1, -1, -1):
        if reach > 0 and days[j] < days[k_first] - reach:
            break
        s = cube.score_at(j, pix)
        clear = np.isfinite(s)
        if clear.mean() < 0.5:
            continue
        z = cube.z_at(j, pix[clear]).astype("float32")
        has = _has_direction(z)
        if has.mean() < 0.5:  # seen through snow: its score is the test, there is no direction
            if np.median(s[clear]) <= low:
                break
            k, crossing = j, 0
            continue
        passes = np.median(s[clear]) > low
        if passes and direction is not None:
            z = z[:, has]
            # An elementwise product, not ``direction @ z``: under threaded site runs the BLAS
            # matmul raised spurious "invalid value" warnings on these small, finite arrays.
            cos = (direction[:, None] * z).sum(axis=0) / np.maximum(np.linalg.norm(z, axis=0), 1e-6)
            passes = bool(np.median(cos) >= min_cos)  # NaN (no direction to compare) fails the test
        if passes and not crossing:
            k = j
        elif not passes:
            crossing += 1
            if crossing > thaw_looks:
                break
    return k


def _make_detection(ds, cube, conf, part, transform, pixel_area, crs, site_id, min_pixels, params,
                    provisional: bool = False) -> Detection:
    pix = np.flatnonzero(part.ravel())
    # The event is confirmed once a minimum mapping unit of it is: the min_pixels-th confirmation.
    k_confirm = int(np.sort(conf.confirm[pix])[min(min_pixels, pix.size) - 1])
    # Its onset is found at region level, walking back from that look over the pixels already
    # under way then: one pixel's stray anomalous look before the onset must not date the event.
    core = pix[conf.first[pix] <= k_confirm]
    reach = params.onset_reach_days
    direction = _change_direction(cube, core, int(conf.first[core].min()), int(conf.last[pix].max()), params.threshold,
                                  conf.first[core], reach)
    k_first = _extend_onset(cube, core, k_confirm, params.threshold * params.onset_fraction, direction,
                            params.onset_min_cos, params.thaw_looks if params.through_snow else 0, reach)
    anchor = int(pix[np.argmin(conf.first[pix] * part.size + pix)])
    k_last = int(conf.last[pix].max())
    looks = int(np.median(conf.looks[pix]))
    mean_score = float(np.nanmedian(conf.mean_score[pix]))
    polys = [shape(geom) for geom, val in rio_features.shapes(part.astype("uint8"), mask=part, transform=transform) if val]
    geom = unary_union(polys)
    # Evidence: median change per feature over the pixels' anomalous looks since onset.
    vals: list[list[float]] = [[] for _ in cube.features]
    for p in pix:
        looks_p = slice(int(conf.first[p]), int(conf.last[p]) + 1)
        seq, sc = cube.delta_at(looks_p, p), cube.score_at(looks_p, p)  # (look, feature), (look,)
        anomalous = np.isfinite(sc) & (sc > params.threshold)
        for f in range(len(cube.features)):
            v = seq[anomalous, f]
            vals[f].extend(v[np.isfinite(v)].tolist())
    deltas = {name: round(float(np.median(v)), 4) if v else 0.0 for name, v in zip(cube.features, vals)}
    # Looks on which the region was seen through snow (scored by its contrast with the snow).
    sc = cube.score_at(slice(k_first, k_last + 1), pix)
    fin = np.isfinite(sc) & _within_reach(cube, k_first, k_last, conf.first[pix], reach)
    blind = fin & ~_has_direction(cube.z_at(slice(k_first, k_last + 1), pix))
    through_snow = int(np.sum((fin.sum(axis=1) > 0) & (2 * blind.sum(axis=1) > fin.sum(axis=1))))
    first_seen = cube.times[k_first]
    # The id names the anchor pixel by its centre's map coordinates, not its index in this grid:
    # a site's outline redrawn in the registry (a larger or smaller grid around the same pixels)
    # keeps the ids of the digs it already had, and so their reviews, checks and alerts.
    row, col = divmod(anchor, part.shape[1])
    ax, ay = transform @ (col + 0.5, row + 0.5)
    key = f"{site_id}|{ALGORITHM_VERSION}|{first_seen.date()}|{round(ax, 6)!r}|{round(ay, 6)!r}|{crs}"
    det_id = f"{site_id}-{first_seen:%Y%m%d}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"
    return Detection(
        detection_id=det_id,
        site_id=site_id,
        geometry=geom,
        crs=crs,
        first_seen=first_seen,
        last_seen=cube.times[k_last],
        confirmed_on=cube.times[k_confirm],
        score=round(_score01(mean_score, params.threshold), 3),
        confidence="low" if provisional else _confidence(looks, mean_score, params),
        area_m2=round(float(pix.size * pixel_area), 1),
        n_looks=looks,
        kind_hint=_kind_hint(deltas),
        evidence={"features": list(cube.features), "delta": deltas, "clear_looks": looks,
                  "mean_anomaly_sd": round(mean_score, 2), "looks_through_snow": through_snow,
                  "algorithm": ALGORITHM_VERSION,
                  "provisional": provisional},
    )


def detect_changes(
    ds: xr.Dataset,
    site_id: str,
    since: pd.Timestamp | str | None = None,
    watch: np.ndarray | None = None,
    params: DetectorParams = DetectorParams(),
) -> list[Detection]:
    """The whole core in one call: score, confirm, and polygonise the changes since ``since``."""
    cube = anomaly_scores(ds, since, params)
    conf = confirm_anomalies(cube.score, params, days=_days(cube.times), through_snow=cube.through_snow)
    return disturbance_polygons(ds, cube, conf, site_id, watch, params)
