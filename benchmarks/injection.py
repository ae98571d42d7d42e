"""Detector recall and latency on many injected events in the real imagery (a development aid).

The shared cases hold eight events; this injects many more, one at a time, into the real Landsat
series of the three development cases (monitoring years 2010, 2011 and 2012), away from their own
events: an irregular blob of disturbed soil (dark moist to bright dry, drawn per event, with pixel
texture and fractional edges) mixed into the clear pixels from a random onset, ramping up over
0-45 days — the recipe shared/data/README.md describes.  It reports recall, median latency, the
latency an oracle that sees the event on its first clear look would have, the events dated
before their onset (``early``) or seen only after the 60-day window (``late``: a miss and a
false alarm under the shared scoring), the false alarms of the un-injected runs (scored as
`sitewatch evaluate` scores) and how often weekly operation would raise a provisional
single-look alert on them (cut after every look).

    python benchmarks/injection.py --events 60 [--seed 7] [--kind looting] [--set threshold=3.0] [--details out.jsonl]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from shapely.geometry import MultiPoint, shape

from change_detection import DetectorParams, detect_changes
from change_detection.detect import AnomalyCube, _days, anomaly_scores, confirm_anomalies, disturbance_polygons
from change_detection.features import usable_looks
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import rasterize_lonlat, site_request, watch_mask
from sites import read_sites
from sites.geo import buffer_m, to_crs

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmark"
CASES = ("dev-2010-a", "dev-2011-b", "dev-2012-control")
YEARS_BACK = 0
"""Inject into the year this many years before each case's monitoring year (``--years-back``),
with only the case's imagery before that as history: 1 gives one history year, as for a site
registered this year or a case early in the archive."""
AVOID_M = 120.0
"""Injected events keep this far from a case's own events (and detections near those are ignored)."""
DARK = {"red": 0.08, "nir": 0.12, "swir16": 0.16}
BRIGHT = {"red": 0.28, "nir": 0.33, "swir16": 0.40}
ASPHALT = {"red": 0.07, "nir": 0.09, "swir16": 0.11}
CONCRETE = {"red": 0.30, "nir": 0.33, "swir16": 0.36}
KINDS = {
    # The shared recipe: a pit field of disturbed soil, 3-45 pixels, ramping up over 0-45 days.
    "looting": {"pixels": (3, 45), "ramp": (0, 45), "intensity": (0.6, 0.9), "ends": (DARK, BRIGHT), "grow": 0.5},
    # Scraped to bare ground in days: larger, compact, nearly pure soil.
    "bulldozing": {"pixels": (15, 60), "ramp": (0, 7), "intensity": (0.8, 1.0), "ends": (DARK, BRIGHT), "grow": 0.8},
    # A pad or roof going up over weeks: compact, from dark asphalt to bright concrete.
    "construction": {"pixels": (4, 25), "ramp": (14, 60), "intensity": (0.7, 1.0), "ends": (ASPHALT, CONCRETE),
                     "grow": 0.9},
}
"""Event kinds the benchmark can inject (``--kind``).  Only ``looting`` is the shared recipe; the
other two are this project's guesses at the alert kinds that ``case.json`` also names, to check
that the detector is not tied to one spectrum or size."""


def inject(ds, weight, texture, onset, ramp, intensity, soil):
    """Mix ``soil`` (times a per-pixel ``texture``) into the pixels, ``weight`` < 1 at the edges.

    As in the shared cases, pixels under cloud, cloud shadow or fill stay as observed; clear and
    snow-flagged pixels take the mix.
    """
    days = ((pd.DatetimeIndex(ds.time.values) - onset) / pd.Timedelta(days=1)).to_numpy()
    frac = np.where(days < 0, 0.0, intensity * np.minimum(1.0, (days + 1) / max(ramp, 1)))
    return mix_soil(ds, weight, texture, frac, soil)


def mix_soil(ds, weight, texture, frac, soil):
    """Mix ``soil`` (times a per-pixel ``texture``) into the pixels with ``weight`` > 0, by
    ``frac[k] * weight`` on look ``k``; cloud, shadow and fill stay as observed (see :func:`inject`)."""
    ds = ds.copy(deep=True)
    mask = weight > 0
    seen = ds["clear"].values | (ds["snow"].values if "snow" in ds else False)
    for b, v in soil.items():
        a = ds[b].values
        for k in np.flatnonzero(frac > 0):
            m = mask & seen[k]
            f = frac[k] * weight[m]
            a[k][m] = (1 - f) * a[k][m] + f * v * texture[m]
    return ds


_LOADED: dict = {}


def _load(case: str):
    if case not in _LOADED:
        meta = json.loads((ROOT / case / "case.json").read_text())
        start, end = pd.Timestamp(meta["monitor_start"]), pd.Timestamp(meta["monitor_end"])
        start, end = start - pd.DateOffset(years=YEARS_BACK), end - pd.DateOffset(years=YEARS_BACK)
        sites = read_sites(ROOT / case / "sites.geojson").sites
        truth = [shape(f["geometry"]) for f in json.loads((ROOT / case / "truth.geojson").read_text())["features"]]
        prov = LocalStacProvider(ROOT / case / "catalog")
        loaded = {}
        for s in sites:
            ds = prov.load(site_request(s, start, end))
            ds = ds.sel(time=slice(None, end + pd.Timedelta(days=1)))
            avoid = np.zeros((ds.sizes["y"], ds.sizes["x"]), bool)
            for g in truth:
                avoid |= rasterize_lonlat(ds, buffer_m(g, AVOID_M), all_touched=True)
            loaded[s.site_id] = (s, ds, avoid)
        _LOADED[case] = (start, end, loaded)
    return _LOADED[case]


def make_event(job):
    """The injected dataset of one job and what was injected."""
    case, site_id, seed, params, kind = job
    recipe = KINDS[kind]
    start, end, loaded = _load(case)
    site, ds, avoid = loaded[site_id]
    rng = np.random.default_rng(seed)
    watch = watch_mask(ds, site)
    inside = ndimage.binary_erosion(watch, iterations=1) & ~avoid
    ys, xs = np.nonzero(inside)
    if ys.size == 0:
        return None
    c = rng.integers(len(ys))
    blob = np.zeros_like(inside)
    blob[ys[c], xs[c]] = True
    n_px = int(rng.integers(*recipe["pixels"]))
    for _ in range(200):
        if blob.sum() >= n_px:
            break
        blob |= ndimage.binary_dilation(blob) & inside & (rng.random(blob.shape) < recipe["grow"])
    edge = blob & ~ndimage.binary_erosion(blob)
    weight = np.where(edge, rng.uniform(0.4, 1.0, blob.shape), 1.0) * blob
    texture = rng.normal(1.0, 0.08, blob.shape)
    last_onset = min(end - pd.Timedelta(days=30), start + pd.Timedelta(days=245))
    onset = start + pd.Timedelta(days=int(rng.integers(14, (last_onset - start).days)))
    t = rng.random()
    lo, hi = recipe["ends"]
    soil = {b: lo[b] + t * (hi[b] - lo[b]) for b in lo}
    ramp = float(rng.uniform(*recipe["ramp"]))
    ev = inject(ds, weight, texture, onset, ramp, float(rng.uniform(*recipe["intensity"])), soil)
    return ev, blob, watch, onset, ramp, avoid


def run_event(job):
    case, site_id, seed, params, kind = job
    start, end, loaded = _load(case)
    made = make_event(job)
    if made is None:
        return None
    ds, blob, watch, onset, ramp, avoid = made
    dets = detect_changes(ds, site_id, since=start, watch=watch, params=params)
    res_px = float(ds.attrs["resolution"])
    pts = [(float(ds.x[x]), float(ds.y[y])) for y, x in zip(*np.nonzero(blob))]
    outline = MultiPoint(pts).buffer(res_px / 2, cap_style="square")
    times = pd.DatetimeIndex(ds.time.values)
    clear_share = usable_looks(ds).values[:, blob].mean(axis=1)
    after = np.flatnonzero((times >= onset) & (times <= onset + pd.Timedelta(days=60)) & (clear_share >= 0.5))
    oracle = (times[after[0]] - onset).days if after.size else None
    hits = [d for d in dets if d.geometry.distance(outline) <= 20 and -3 <= (d.first_seen - onset).days <= 60]
    early = [d for d in dets if d.geometry.distance(outline) <= 20 and (d.first_seen - onset).days < -3]
    # Seen, but only after the 60-day window: under the shared scoring a miss *and* a false alarm.
    late = [d for d in dets if d.geometry.distance(outline) <= 20 and (d.first_seen - onset).days > 60]
    others = [d for d in dets if d not in hits and d.geometry.distance(outline) > 20
              and not (rasterize_lonlat(ds, to_crs(d.geometry, d.crs, 4326), all_touched=True) & avoid).any()]
    return {"case": case, "site": site_id, "kind": kind, "onset": str(onset.date()), "ramp": round(ramp), "pixels": int(blob.sum()),
            "clear_looks_60d": int(after.size), "oracle_days": oracle, "found": bool(hits),
            "latency": min((d.first_seen - onset).days for d in hits) if hits else None,
            "looks": max(d.n_looks for d in hits) if hits else None, "early": len(early),
            "late": 0 if hits else len(late), "other_detections": len(others)}


def baseline_false_alarms(case: str, params: DetectorParams) -> int:
    start, end, loaded = _load(case)
    n = 0
    for site_id, (site, ds, avoid) in loaded.items():
        for d in detect_changes(ds, site_id, since=start, watch=watch_mask(ds, site), params=params):
            px = rasterize_lonlat(ds, to_crs(d.geometry, d.crs, 4326), all_touched=True)
            n += not (px & avoid).any()
    return n


def provisional_alerts(case: str, params: DetectorParams) -> tuple[int, int]:
    """Weekly operation without injection: cut the record after every look of the period and count
    the provisional single-look detections away from the case's own events (all are false).
    Returns (provisional detections, site-looks)."""
    start, end, loaded = _load(case)
    n = looks = 0
    for site_id, (site, ds, avoid) in loaded.items():
        cube = anomaly_scores(ds, since=start, params=params)
        watch = watch_mask(ds, site)
        for k in range(len(cube.times)):
            sub = AnomalyCube(cube.times[: k + 1], cube.score[: k + 1], cube.delta[: k + 1], cube.features, [],
                              cube.z[: k + 1])
            looks += 1
            conf = confirm_anomalies(sub.score, params, days=_days(sub.times), through_snow=sub.through_snow)
            for d in disturbance_polygons(ds, sub, conf, site_id, watch, params):
                if d.evidence.get("provisional"):
                    px = rasterize_lonlat(ds, to_crs(d.geometry, d.crs, 4326), all_touched=True)
                    n += not (px & avoid).any()
    return n, looks


def param_overrides(sets: list[str]) -> dict:
    """``--set NAME=VALUE`` options as DetectorParams overrides, each value of its field's type."""
    base = DetectorParams()
    return {k: type(getattr(base, k))(v) if not isinstance(getattr(base, k), bool) else v in ("1", "true", "True")
            for k, v in (s.split("=", 1) for s in sets)}


def false_detection_cli(argv, run_case, summarise) -> dict:
    """The command line of the false-detection benchmarks (short_history, whole_scene): ``--cases``
    and ``--set``; ``run_case(case, params)`` gives (rows, exposure), each row is printed as a JSON
    line, then ``summarise(rows, exposure)`` with the overrides, which is returned."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="any DetectorParams field")
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args(argv)
    extra = param_overrides(args.set)
    params = replace(DetectorParams(), **extra)
    total, exposure = [], 0.0
    for case in args.cases.split(","):
        rows, amount = run_case(case, params)
        total += rows
        exposure += amount
        for r in rows:
            print(json.dumps(r))
    summary = {**extra, **summarise(total, exposure)}
    print(json.dumps(summary))
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=60, help="events per case")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--details", type=Path)
    ap.add_argument("--kind", choices=sorted(KINDS), default="looting",
                    help="what to inject (looting is the shared recipe)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="any DetectorParams field, e.g. --set onset_fraction=0.5")
    ap.add_argument("--years-back", type=int, default=0,
                    help="inject into the year(s) before each case's monitoring year (less history)")
    args = ap.parse_args(argv)
    global YEARS_BACK
    if args.years_back != YEARS_BACK:
        YEARS_BACK = args.years_back
        _LOADED.clear()
    extra = param_overrides(args.set)
    params = replace(DetectorParams(), **extra)
    cases = args.cases.split(",")
    jobs = []
    for case in cases:
        sites = sorted(f["properties"]["site_id"]
                       for f in json.loads((ROOT / case / "sites.geojson").read_text())["features"])
        for i in range(args.events):
            jobs.append((case, sites[i % len(sites)], [args.seed, CASES.index(case), i], params, args.kind))
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = [r for r in pool.map(run_event, jobs, chunksize=4) if r is not None]
            fas = dict(zip(cases, pool.map(baseline_false_alarms, cases, [params] * len(cases))))
            prov = list(pool.map(provisional_alerts, cases, [params] * len(cases)))
    else:
        rows = [r for r in map(run_event, jobs) if r is not None]
        fas = {c: baseline_false_alarms(c, params) for c in cases}
        prov = [provisional_alerts(c, params) for c in cases]
    if args.details:
        args.details.write_text("".join(json.dumps(r) + "\n" for r in rows))
    df = pd.DataFrame(rows)
    reach = df[df.clear_looks_60d >= 1]
    out = {"kind": args.kind, "events": len(df), "recall": round(df.found.mean(), 3),
           "recall_reachable": round(reach.found.mean(), 3),
           "recall_small": round(df[df.pixels * 900 < 5000].found.mean(), 3),
           "median_latency_days": float(df.latency.median()),
           "median_oracle_days": float(reach.oracle_days.median()),
           "median_excess_days": float((df.latency - df.oracle_days).median()),
           "other_detections": int(df.other_detections.sum()), "early": int(df.early.sum()),
           "late": int(df.late.sum()),
           "false_alarms_without_injection": fas,
           "provisional_per_100_site_looks": round(100 * sum(p[0] for p in prov) / max(1, sum(p[1] for p in prov)), 2),
           **extra}
    for case in cases:
        d = df[df.case == case]
        out[case] = {"recall": round(d.found.mean(), 3), "latency": float(d.latency.median())}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
