"""Plain functions the flows orchestrate: one site, one period → detections in lon/lat.

No Prefect here: the flow in :mod:`pipelines.flows` wraps these in tasks, and the tests and
``sitewatch evaluate`` call them directly.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xarray as xr
from rasterio import features as rio_features
from shapely.geometry import mapping

from change_detection import CONFIDENCES, Detection, DetectorParams, grid_transform, usable_looks
from change_detection.incremental import StateNotResumable, detect_incremental, dump_state, load_state, resume_from
from maps.chips import Chips, Overview, detection_chips, site_overview
from sites import Site
from sites.geo import area_m2, buffer_m, to_crs, utm_epsg
from sitewatch.errors import ConfigError, CorruptRaster, NoClearObservations, NoImagery, SiteTooLarge

from .imagery.base import BYTES_PER_PIXEL_LOOK, ImageryProvider, ImageryRequest
from .imagery.local_stac import unreadable_of

log = logging.getLogger(__name__)
CONTEXT_M = 600.0
"""Reference ring loaded around each site for the normalisation between dates."""
HISTORY_YEARS = 3
HISTORY_MARGIN = pd.Timedelta(days=60)
"""Loaded before the history years too: the widest same-season baseline window reaches back
48 days before a date's anniversary."""
MAX_SITE_GB = 6.0
"""Memory one site's run may take (``SITEWATCH_MAX_SITE_GB`` overrides it): about 28 M
pixel-looks — a site of 1 km² with its ring at 10 m over 400 Sentinel-2 looks (three years), or
a 12 km square at 30 m over 100 Landsat looks.  Larger sites are refused before a pixel is read
and reported as ``too_large``; ``sitewatch sites split`` cuts them into parts."""


def part_km_that_fits(buffer: float = 50.0, resolution: float = 10.0, looks: int = 400) -> float:
    """The side of the square parts whose imagery (with the buffer and the reference ring) fits
    the per-site limit at ``resolution`` over ``looks`` looks (default: three years of
    Sentinel-2)."""
    # a grid has a pixel more than its extent over the resolution, rounded up: two fewer per side
    side_m = (math.floor(math.sqrt(max_pixel_looks() / looks)) - 2) * resolution - 2 * (buffer + CONTEXT_M)
    if side_m < 100:
        raise ConfigError(
            f"at {resolution:g} m over {looks} looks, the buffer and reference ring alone ({2 * (buffer + CONTEXT_M):.0f} m "
            "across) leave no room for a part under SITEWATCH_MAX_SITE_GB; raise it"
        )
    return math.floor(side_m / 100) / 10


def max_pixel_looks() -> int:
    raw = os.environ.get("SITEWATCH_MAX_SITE_GB", "")
    try:
        gb = float(raw) if raw.strip() else MAX_SITE_GB
    except ValueError:
        raise ConfigError(f"SITEWATCH_MAX_SITE_GB={raw!r} is not a number of gigabytes") from None
    if not gb > 0:
        raise ConfigError(f"SITEWATCH_MAX_SITE_GB={raw!r} must be positive")
    return int(gb * 1e9 / BYTES_PER_PIXEL_LOOK)


@dataclass
class SiteResult:
    """What one site's run produced."""

    site_id: str
    detections: list[Detection] = field(default_factory=list)
    """Detections with geometry in EPSG:4326."""
    acquisitions: list[str] = field(default_factory=list)
    """Item ids of every acquisition read (history included)."""
    clear_looks: dict[str, float] = field(default_factory=dict)
    """Monitoring-period date → share of the watched area that was clear."""
    status: str = "ok"
    """``ok``, ``no_imagery``, ``all_cloud``, ``unreadable`` (no acquisition could be read) or
    ``too_large`` (its imagery would exceed the memory allowed per site; nothing was read); the
    weekly run adds ``provider_error`` (the archive kept failing; the week stays pending)."""
    message: str = ""
    chips: dict[str, Chips] = field(default_factory=dict)
    """Detection id → before/after imagery chips."""
    overview: Overview | None = None
    """The site's latest clear look, for the offline map's base layer."""
    more_overviews: list[Overview] = field(default_factory=list)
    """A site watched in parts: the latest clear looks of its other parts with a detection."""
    state: bytes | None = None
    """The detector state after this run (the looks since the epoch that later runs read, and
    the walk: :mod:`change_detection.incremental`)."""
    looks_scored: int = 0
    """How many looks this run had to score (the rest came from the stored state)."""
    unreadable: list[dict] = field(default_factory=list)
    """Acquisitions left out because an asset could not be read (item, date, asset, href, error)."""
    last_clear: str | None = None
    """The latest look, up to the period's end and history included, on which at least half of
    the watched area was usable: when the satellites last saw the site."""


def watch_area(site: Site):
    """The polygon that is reported on: the site plus its buffer (lon/lat)."""
    return buffer_m(site.geometry, site.buffer_m)


def site_request(
    site: Site, start: pd.Timestamp, end: pd.Timestamp, bands=("red", "nir", "swir16", "green", "blue", "vv", "vh"),
    history_years: int = HISTORY_YEARS, context_m: float = CONTEXT_M, resolution: float | None = None,
) -> ImageryRequest:
    area = buffer_m(site.geometry, site.buffer_m + context_m)
    return ImageryRequest(
        geometry=area,
        start=pd.Timestamp(start) - pd.DateOffset(years=history_years) - HISTORY_MARGIN,
        end=pd.Timestamp(end),
        bands=tuple(bands),
        epsg=utm_epsg(site.geometry),
        resolution=resolution,
        max_pixel_looks=max_pixel_looks(),
    )


def rasterize_lonlat(ds: xr.Dataset, geom_lonlat, all_touched: bool = False) -> np.ndarray:
    """A lon/lat geometry as a boolean mask on the dataset's grid."""
    epsg = int(str(ds.attrs["crs"]).split(":")[1])
    transform, _ = grid_transform(ds)
    return rio_features.rasterize(
        [(mapping(to_crs(geom_lonlat, 4326, epsg)), 1)], out_shape=(ds.sizes["y"], ds.sizes["x"]),
        transform=transform, all_touched=all_touched, dtype="uint8",
    ).astype(bool)


def watch_mask(ds: xr.Dataset, site: Site) -> np.ndarray:
    """Rasterise the watched area onto the dataset grid (all-touched, so edge pixels count)."""
    return rasterize_lonlat(ds, watch_area(site), all_touched=True)


def detections_to_lonlat(dets: list[Detection]) -> list[Detection]:
    return [replace(d, geometry=to_crs(d.geometry, d.crs, 4326), crs="EPSG:4326") for d in dets]


def detect_site(
    site: Site,
    ds: xr.Dataset,
    start: pd.Timestamp,
    end: pd.Timestamp,
    params: DetectorParams = DetectorParams(),
    state: bytes | None = None,
    resume_only: bool = False,
) -> SiteResult:
    """Run the core on a loaded dataset and describe the period's coverage (``resume_only``: the
    dataset starts after the epoch, :func:`change_detection.incremental.detect_incremental`)."""
    result = SiteResult(site.site_id, acquisitions=[str(v) for v in ds.item_id.values] if "item_id" in ds.coords else [],
                        unreadable=unreadable_of(ds))
    ds = ds.sel(time=slice(None, pd.Timestamp(end) + pd.Timedelta(hours=23, minutes=59)))
    watch = watch_mask(ds, site)
    period = ds.sel(time=slice(pd.Timestamp(start), None))
    usable = usable_looks(period)  # what the detector can use: the provider's clear, checked
    for k, t in enumerate(period.time.values):
        clear = usable.values[k][watch]
        result.clear_looks[str(pd.Timestamp(t).date())] = round(float(clear.mean()) if clear.size else 0.0, 3)
    result.last_clear = last_clear_look(ds, watch)
    if not result.clear_looks:
        lost = [u for u in result.unreadable if pd.Timestamp(u["date"]) >= pd.Timestamp(start).normalize()]
        if lost:
            result.status = "unreadable"
            result.message = f"the period's {len(lost)} acquisition(s) could not be read; re-download them"
        else:
            result.status, result.message = "no_imagery", "no acquisition in the period"
        return result
    if max(result.clear_looks.values()) == 0.0:
        result.status, result.message = "all_cloud", "every look in the period was cloud, shadow, snow or fill"
        return result
    result.overview = site_overview(ds.sel(time=slice(None, pd.Timestamp(end) + pd.Timedelta(days=1))), site.site_id)
    dets, new_state, result.looks_scored = detect_incremental(ds, site.id_key or site.site_id, start,
                                                              load_state(state), watch, params, resume_only)
    result.state = dump_state(new_state)
    if site.id_key:  # a renamed site: its digs keep the ids they had, under its new name
        dets = [replace(d, site_id=site.site_id, detection_id=renamed_id(d.detection_id, site.id_key, site.site_id))
                for d in dets]
    dets = [d for d in dets if d.first_seen <= pd.Timestamp(end) + pd.Timedelta(days=1)]
    for d in dets:
        chips = detection_chips(ds, d.geometry, d.first_seen, pd.Timestamp(end) + pd.Timedelta(days=1))
        if chips is not None:
            result.chips[d.detection_id] = chips
    result.detections = detections_to_lonlat(dets)
    return result


def renamed_id(detection_id: str, old: str, new: str) -> str:
    """A detection id of site ``old`` as site ``new`` names it: the site's id is its prefix
    (``S01-03-20100612-1a2b3c`` → ``MN-0042-20100612-1a2b3c``); the rest, the onset and the key
    of its anchor pixel, stays."""
    if not detection_id.startswith(f"{old}-"):
        raise ValueError(f"detection {detection_id!r} is not named after site {old!r}")
    return f"{new}{detection_id[len(old):]}"


def last_clear_look(ds: xr.Dataset, watch: np.ndarray, share: float = 0.5) -> str | None:
    """The date of the latest look on which at least ``share`` of the watched pixels are usable
    (searched from the newest back, one look at a time: usually the first few decide)."""
    if not watch.any():
        return None
    for k in range(ds.sizes["time"] - 1, -1, -1):
        look = ds.isel(time=[k])
        if float(usable_looks(look).values[0][watch].mean()) >= share:
            return str(pd.Timestamp(look.time.values[0]).date())
    return None


def run_site(
    site: Site, provider: ImageryProvider, start, end, params: DetectorParams = DetectorParams(), resolution=None,
    state: bytes | None = None, split: bool = True,
) -> SiteResult:
    """Load a site's imagery (history included) and detect changes in [start, end].  A site whose
    imagery would not fit in memory is watched in parts (:func:`run_in_parts`) unless ``split`` is
    off (a part is never split again)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if split and unpack_part_states(state):
        # watched in parts before: each part resumes its own state (run_in_parts); the whole site
        # is neither resumed nor stepped, whose first steps may fit in one piece and be thrown away
        return _load_and_detect(site, provider, start, start, end, params, resolution, state, split)
    # A stored state holds what later runs need of the looks since the epoch: this run needs the
    # imagery its new looks' baselines reach back to, not the epoch's (change_detection.incremental).
    resume = resume_from(state)
    if resume is not None and resume > start:
        try:
            return _in_steps(site, provider, start, end, params, resolution, split, state, resume)
        except StateNotResumable:
            log.info("%s: the stored detector state does not fit the imagery; recomputing from %s",
                     site.site_id, start.date())
    return _in_steps(site, provider, start, end, params, resolution, split, state)


STEP = pd.Timedelta(days=365)
"""A run over a longer period (a first run from the epoch, or one resuming a state more than a
year old) goes in steps of a year, each resuming the last one's state, so it holds the imagery of
a year and its history years, not of the whole period."""

LAST_STRETCH = STEP + pd.Timedelta(days=31)
"""A period up to this long goes in one piece (a step and the month after it)."""

LOAD_SPAN = LAST_STRETCH + pd.Timedelta(days=366 * HISTORY_YEARS) + HISTORY_MARGIN
"""The longest period one load of :func:`run_site` holds: a step, or a last stretch of up to a
year and a month, with its history years."""


def _in_steps(site: Site, provider: ImageryProvider, start: pd.Timestamp, end: pd.Timestamp,
              params: DetectorParams, resolution, split: bool, state: bytes | None = None,
              resume: pd.Timestamp | None = None) -> SiteResult:
    """:func:`run_site` from the epoch ``start``, or from a stored ``state``'s last look
    ``resume`` (:class:`StateNotResumable` where the state does not fit the imagery), to ``end``.
    Over more than a year and a month it goes a year at a time, each step resuming the last one's
    state (the same detections as one piece, :func:`change_detection.incremental.
    detect_incremental`), so no load holds more than :data:`LOAD_SPAN`.  Where a step leaves no
    state to resume (no imagery in a year) or does not fit in memory, the period goes in one piece,
    or in parts, each part a year at a time.  (Before 2026-12-05 a run resuming an old state read
    everything since in one piece, and a step that did not fit ran the site in parts up to that
    step's end before the parts ran again over the whole period.)"""
    first = resume if resume is not None else start
    if end - first <= LAST_STRETCH:
        return _load_and_detect(site, provider, first, start, end, params, resolution, state, split)
    done, looks_scored, load_from, step_end = None, 0, first, min(first + STEP, end)
    while True:
        carried = done.state if done is not None else state if resume is not None else None
        try:
            got = _load_and_detect(site, provider, load_from, start, step_end, params, resolution, carried,
                                   split=False)
        except StateNotResumable:
            if done is None and resume is not None:
                raise
            got = None
        nxt = resume_from(got.state) if got is not None and got.status == "ok" else None
        if nxt is None:
            return _load_and_detect(site, provider, first, start, end, params, resolution, state, split)
        looks_scored += got.looks_scored
        if done is not None:  # what the run says about the whole period, from every step
            got.clear_looks = {**done.clear_looks, **got.clear_looks}
            got.acquisitions = sorted({*done.acquisitions, *got.acquisitions})
            seen = {(u.get("item"), u.get("asset")) for u in got.unreadable}
            got.unreadable += [u for u in done.unreadable if (u.get("item"), u.get("asset")) not in seen]
            ids = {d.detection_id for d in got.detections}  # a dig older than the last step's imagery: its
            got.chips = {k: c for k, c in {**done.chips, **got.chips}.items() if k in ids}  # chips from then
        done = got
        if step_end >= end:
            done.looks_scored = looks_scored
            return done
        load_from, step_end = nxt, min(step_end + STEP, end)


def looks_per_load(exc: SiteTooLarge) -> int:
    """The most looks one load of a part will hold: the most of the refused load's days within any
    :data:`LOAD_SPAN` (a part goes a year at a time and resumes its state, so it never holds the
    whole period); the refused load's looks where the provider gave no days."""
    if not exc.days:
        return exc.n_looks
    days = pd.DatetimeIndex(exc.days).sort_values()
    ends = days.searchsorted(days + LOAD_SPAN, side="right")
    return int((ends - np.arange(len(days))).max())


def _load_and_detect(site: Site, provider: ImageryProvider, load_from: pd.Timestamp, start: pd.Timestamp,
                     end: pd.Timestamp, params: DetectorParams, resolution, state: bytes | None,
                     split: bool) -> SiteResult:
    """:func:`run_site` with imagery from ``load_from`` (minus the history) on: the epoch ``start``,
    or a stored state's last look (then only that state is resumed, never recomputed)."""
    try:
        ds = provider.load(site_request(site, load_from, end, resolution=resolution))
    except NoImagery as exc:
        return SiteResult(site.site_id, status="no_imagery", message=str(exc))
    except NoClearObservations as exc:
        return SiteResult(site.site_id, status="all_cloud", message=str(exc))
    except SiteTooLarge as exc:  # refused before reading: in parts, or not at all; the other sites go on
        if split and exc.n_looks:
            return run_in_parts(site, provider, start, end, params, resolution, state, exc)
        return SiteResult(site.site_id, status="too_large", message=f"{exc}; split the site into parts "
                                                                    "(`sitewatch sites split`) or raise the limit")
    except CorruptRaster as exc:  # not one acquisition could be read: the other sites go on
        lost = list(exc.unreadable)
        message = (f"none of the {len(lost)} acquisition(s) over the site could be read; re-download them" if lost
                   else str(exc))
        return SiteResult(site.site_id, status="unreadable", message=message, unreadable=lost)
    return detect_site(site, ds, start, end, params, state, resume_only=load_from > start)


PARTS_KEY = "__sitewatch_parts__"


def pack_part_states(states: dict[str, bytes]) -> bytes:
    """The detector states of a site's parts as one blob for the store (npz, no pickle)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{PARTS_KEY: np.array(sorted(states))},
                        **{f"part_{k}": np.frombuffer(v, dtype=np.uint8) for k, v in enumerate(
                            states[p] for p in sorted(states))})
    return buf.getvalue()


def unpack_part_states(blob: bytes | None) -> dict[str, bytes]:
    """Part id → state; a site's state from before it was split (or none) gives nothing."""
    if not blob:
        return {}
    try:
        z = np.load(io.BytesIO(blob), allow_pickle=False)
        if PARTS_KEY not in z.files:
            return {}
        return {str(p): z[f"part_{k}"].tobytes() for k, p in enumerate(z[PARTS_KEY])}
    except (OSError, ValueError, KeyError):
        return {}


def rename_part_states(blob: bytes, old: str, new: str) -> bytes:
    """A site's stored state with its parts named after its new id (``S01-03-p1`` →
    ``MN-0042-p1``); the state of a site watched in one piece is returned as it is."""
    states = unpack_part_states(blob)
    if not states:
        return blob
    return pack_part_states({renamed_id(p, old, new) if p.startswith(f"{old}-") else p: v for p, v in states.items()})


def run_in_parts(site: Site, provider: ImageryProvider, start: pd.Timestamp, end: pd.Timestamp,
                 params: DetectorParams, resolution, state: bytes | None, exc: SiteTooLarge) -> SiteResult:
    """Watch a site too large for memory as square parts that fit (:mod:`sites.split`), one after
    the other, and answer for the site as a whole.

    The part size is chosen for the next power of two above the most looks one load of a part
    holds (:func:`looks_per_load`: a year and a month and its history years, as each part goes a
    year at a time and resumes its state), so it stays the same from year to year while the
    archive grows (and with it the parts' ids and stored states).  (Before 2026-12-05 it was
    chosen for every look since the epoch: the parts shrank as the years went by, each of them
    loading its own reference ring, until at 10 m after four to five years of Sentinel-2 the ring
    alone left no room and the landscape was no longer watched.)  Each part has its own reference
    ring and detector state (stored together under the site).  A dig on a seam, seen by both
    neighbours over their buffers, is one detection: overlapping detections of different parts
    that start within the detector's ``split_gap_days`` of each other are merged (the earliest
    onset's record, the union of the outlines, the highest confidence).
    """
    from sites.split import split_site

    looks = 2 ** math.ceil(math.log2(max(looks_per_load(exc), 1)))
    try:
        km = part_km_that_fits(site.buffer_m, exc.resolution, looks)
    except ConfigError as why:
        return SiteResult(site.site_id, status="too_large", message=f"{exc}; it cannot be split to fit: {why}")
    parts = split_site(site, km)
    if len(parts) < 2:
        return SiteResult(site.site_id, status="too_large", message=f"{exc}; raise the limit")
    states = unpack_part_states(state)
    results = [run_site(p, provider, start, end, params, resolution, states.get(p.site_id), split=False)
               for p in parts]
    return merge_parts(site, parts, results, km, params.split_gap_days)


def one_disturbance(geom_a, onset_a, geom_b, onset_b, gap_days: float = DetectorParams().split_gap_days) -> bool:
    """Whether two detections are one dig: on the same ground (their outlines meet) and with
    onsets within ``gap_days`` of each other, the detector's own rule for one disturbance.  Two
    parts of a site, two sites whose watched areas share ground, or one dig under a new id."""
    return abs(pd.Timestamp(onset_a) - pd.Timestamp(onset_b)).days <= gap_days and geom_a.intersects(geom_b)


def merge_parts(site: Site, parts: list[Site], results: list[SiteResult], km: float,
                gap_days: float = DetectorParams().split_gap_days) -> SiteResult:
    """One site's result from its parts' results.  Detections of two parts that overlap and start
    within ``gap_days`` of each other (the detector's own rule for one disturbance) are one."""
    from shapely.ops import unary_union

    ok = [r for r in results if r.status == "ok"]
    res = SiteResult(site.site_id, status="ok" if ok else results[0].status)
    lagging = [f"{p.site_id}: {r.status}" for p, r in zip(parts, results) if r.status != "ok"]
    res.message = (f"watched in {len(parts)} parts of {km:g} km (its imagery does not fit in memory in one piece)"
                   + (f"; {', '.join(lagging)}" if lagging else ""))
    if not ok:
        res.message = f"{results[0].message} ({res.message})"
    res.acquisitions = sorted({a for r in results for a in r.acquisitions})
    seen_unreadable = set()
    for r in results:
        for u in r.unreadable:
            if (u.get("item"), u.get("asset")) not in seen_unreadable:
                seen_unreadable.add((u.get("item"), u.get("asset")))
                res.unreadable.append(u)
    weight = {p.site_id: area_m2(watch_area(p)) for p in parts}
    dates = sorted({d for r in results for d in r.clear_looks})
    for d in dates:  # the share of the whole site that was clear: parts weighted by their area
        have = [(weight[p.site_id], r.clear_looks[d]) for p, r in zip(parts, results) if d in r.clear_looks]
        res.clear_looks[d] = round(sum(w * f for w, f in have) / sum(w for w, _ in have), 3)
    lasts = [r.last_clear for r in results]
    res.last_clear = None if any(v is None for v in lasts) else min(lasts)  # every part seen since
    res.looks_scored = sum(r.looks_scored for r in results)
    res.state = pack_part_states({p.site_id: r.state for p, r in zip(parts, results) if r.state is not None})
    # a dig on a seam is seen by both parts: one detection
    dets = sorted((d for r in results for d in r.detections), key=lambda d: (d.first_seen, -d.area_m2))
    merged: list[Detection] = []
    for d in dets:
        d = replace(d, site_id=site.site_id, evidence={**d.evidence, "part": d.site_id})
        hit = next((i for i, m in enumerate(merged) if m.evidence.get("part") != d.evidence["part"]
                    and one_disturbance(m.geometry, m.first_seen, d.geometry, d.first_seen, gap_days)), None)
        if hit is None:
            merged.append(d)
            continue
        m = merged[hit]
        geom = unary_union([m.geometry, d.geometry])
        merged[hit] = replace(m, geometry=geom, area_m2=round(area_m2(geom), 1), last_seen=max(m.last_seen, d.last_seen),
                              confidence=max(m.confidence, d.confidence, key=CONFIDENCES.index),
                              evidence={**m.evidence, "merged_across_seam": [*m.evidence.get("merged_across_seam", []),
                                                                            d.detection_id]})
    res.detections = merged
    keep = {d.detection_id for d in merged}
    res.chips = {k: c for r in results for k, c in r.chips.items() if k in keep}
    # imagery of every part with a detection (the offline map's base layers), else of one part
    with_dets = [r.overview for r in ok if r.overview is not None and any(d.detection_id in keep for d in r.detections)]
    shown = with_dets or [r.overview for r in ok if r.overview is not None][:1]
    res.overview, res.more_overviews = (shown[0], shown[1:]) if shown else (None, [])
    return res
