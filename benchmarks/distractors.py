"""False alarms on many injected recurring fields (a development aid).

Each development case holds one ``recurring_agriculture`` distractor: a field inside a site that
is bared every year from the same day of year and regrows over about 60 days, in the history
years too.  Alarming on one is a false alarm.  Three fields, all bared in late April or May, say
little about a field bared on another day, whose anniversaries may fall on cloudy or snowy looks
of the history years.  This injects such fields one at a time into the real imagery of the three
development cases (the whole record: history and monitoring year), at random places inside the
sites and at least 120 m from the cases' own events and fields, and counts the detections within
20 m of each field: every one is a false alarm under the shared scoring.

The recipe follows the cases' own fields (read off their imagery: a 0.7 soil mix on the day the
field is bared, fading linearly to none over about 60 days): a compact rectangle of 6-25 pixels,
soil from dark moist to bright dry as for looting, intensity 0.6-0.8, bared on a day of year
drawn from 1 April - 31 July and regrown over 45-75 days, the same day every year.  Pixels under
cloud, shadow or fill stay as observed.

    python benchmarks/distractors.py --fields 30 [--seed 7] [--once] [--jitter 14] [--set threshold=3.0]
                                     [--details out.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from shapely.geometry import MultiPoint

from change_detection import DetectorParams, detect_changes
from change_detection.baseline import YEAR_DAYS
from change_detection.features import usable_looks
from pipelines.monitoring import watch_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))
import injection  # noqa: E402  the same cases, soils and command line as injection.py
from injection import BRIGHT, CASES, DARK, _load, mix_soil, param_overrides  # noqa: E402

WINDOW_DAYS = 48.0
"""The widest same-season window of the baseline: an anniversary is *seen* when the history year
has at least three usable looks of the field within it (``BaselineParams.min_obs``)."""


def field_mix(ds, field, doy, fade_days, intensity, soil, texture, only_year=None, shift=None):
    """Mix ``soil`` into the field's pixels every year (or in ``only_year``) from day of year
    ``doy`` (plus ``shift[year]`` days, if given), fading out linearly over ``fade_days``; clear and
    snow-flagged pixels take the mix, as in the cases."""
    times = pd.DatetimeIndex(ds.time.values)
    shift = shift or {}
    bared = pd.to_datetime([f"{t.year}-01-01" for t in times]) + pd.to_timedelta(
        [doy - 1 + shift.get(t.year, 0) for t in times], unit="D")
    age = ((times - bared) / pd.Timedelta(days=1)).to_numpy()
    frac = np.where((age >= 0) & (age < fade_days), intensity * (1 - age / fade_days), 0.0)
    if only_year is not None:
        frac = np.where(times.year == only_year, frac, 0.0)
    return mix_soil(ds, field.astype(float), texture, frac, soil)


def make_field(job):
    case, site_id, seed, params, once, jitter = job
    start, end, loaded = _load(case)
    site, ds, avoid = loaded[site_id]
    rng = np.random.default_rng(seed)
    watch = watch_mask(ds, site)
    inside = ndimage.binary_erosion(watch, iterations=1) & ~avoid
    h, w = int(rng.integers(2, 6)), int(rng.integers(3, 6))
    # top-left corners of every h x w rectangle wholly inside
    ny, nx = inside.shape
    fits = np.array([[inside[y:y + h, x:x + w].all() for x in range(nx - w + 1)] for y in range(ny - h + 1)])
    ys, xs = np.nonzero(fits) if fits.size else (np.array([]), np.array([]))
    if ys.size == 0:
        return None
    c = rng.integers(len(ys))
    field = np.zeros_like(inside)
    field[ys[c]:ys[c] + h, xs[c]:xs[c] + w] = True
    doy = int(rng.integers(91, 213))
    fade = float(rng.uniform(45, 75))
    t = rng.random()
    soil = {b: DARK[b] + t * (BRIGHT[b] - DARK[b]) for b in DARK}
    texture = rng.normal(1.0, 0.08, field.shape)
    years = sorted(set(pd.DatetimeIndex(ds.time.values).year))
    shift = {y: int(rng.integers(-jitter, jitter + 1)) for y in years} if jitter else None
    ev = field_mix(ds, field, doy, fade, float(rng.uniform(0.6, 0.8)), soil, texture,
                   only_year=start.year if once else None, shift=shift)
    return ev, field, watch, doy, fade


def run_field(job):
    start, end, loaded = _load(job[0])
    made = make_field(job)
    if made is None:
        return None
    ds, field, watch, doy, fade = made
    case, site_id, params = job[0], job[1], job[3]
    dets = detect_changes(ds, site_id, since=start, watch=watch, params=params)
    res = float(ds.attrs["resolution"])
    outline = MultiPoint([(float(ds.x[x]), float(ds.y[y])) for y, x in zip(*np.nonzero(field))]).buffer(
        res / 2, cap_style="square")
    hits = [d for d in dets if d.geometry.distance(outline) <= 20]
    # Anniversaries the baseline can see: history years with >= 3 usable looks of the field near it.
    times = pd.DatetimeIndex(ds.time.values)
    share = usable_looks(ds).values[:, field].mean(axis=1)
    seen_years = 0
    for year in range(start.year - 3, start.year):
        day = pd.Timestamp(f"{year}-01-01") + pd.Timedelta(days=doy - 1)
        near = np.abs((times - day) / pd.Timedelta(days=1)) <= WINDOW_DAYS
        seen_years += int(((share >= 0.5) & near).sum() >= 3)
    bared = pd.Timestamp(f"{start.year}-01-01") + pd.Timedelta(days=doy - 1)
    return {"case": case, "site": site_id, "doy": doy, "bared": str(bared.date()), "fade_days": round(fade),
            "pixels": int(field.sum()), "history_years_seen": seen_years, "history_years": int(
                round((start - times[0]) / pd.Timedelta(days=1) / YEAR_DAYS)),
            "false_alarms": len(hits),
            "detections": [{"first_seen": str(d.first_seen.date()), "confidence": d.confidence,
                            "provisional": bool(d.evidence.get("provisional")), "kind": d.kind_hint}
                           for d in hits],
            "site_weeks": (end - start).days / 7.0}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--fields", type=int, default=30, help="fields per case")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--details", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="any DetectorParams field")
    ap.add_argument("--once", action="store_true", help="bare each field in the monitoring year only (control)")
    ap.add_argument("--jitter", type=int, default=0,
                    help="bare each field up to this many days earlier or later each year (farm timing varies)")
    args = ap.parse_args(argv)
    extra = param_overrides(args.set)
    params = replace(DetectorParams(), **extra)
    jobs = []
    for case in args.cases.split(","):
        sites = sorted(f["properties"]["site_id"]
                       for f in json.loads((injection.ROOT / case / "sites.geojson").read_text())["features"])
        jobs += [(case, sites[i % len(sites)], [args.seed, CASES.index(case), i, 101], params, args.once, args.jitter)
                 for i in range(args.fields)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = [r for r in pool.map(run_field, jobs, chunksize=4) if r is not None]
    else:
        rows = [r for r in map(run_field, jobs) if r is not None]
    if args.details:
        args.details.write_text("".join(json.dumps(r) + "\n" for r in rows))
    df = pd.DataFrame(rows)
    alarmed = df.false_alarms > 0
    out = {"once": args.once, "jitter_days": args.jitter, "fields": len(df), "fields_alarmed": int(alarmed.sum()), "share_alarmed": round(float(alarmed.mean()), 3),
           "false_alarms": int(df.false_alarms.sum()),
           "per_100_site_weeks": round(100 * float(df.false_alarms.sum()) / float(df.site_weeks.sum()), 2),
           "alarmed_by_history_years_seen": {int(k): f"{int(v.sum())}/{len(v)}"
                                             for k, v in (df.false_alarms > 0).groupby(df.history_years_seen)},
           **extra}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
