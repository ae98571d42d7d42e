"""Detector recall on many injected events in the real control imagery (a development aid).

The shared cases hold eight events; this injects many more, one at a time, into the real Landsat
series of the control case (no events of its own): an irregular blob of disturbed soil (dark moist
to bright dry, drawn per event) mixed into the clear pixels from a random onset, ramping up over
0-45 days — the recipe shared/data/README.md describes.  It reports recall, median latency and the
false alarms of the un-injected runs, scored as `sitewatch evaluate` scores.

    python benchmarks/injection.py --events 40 [--threshold 3.0]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from change_detection import DetectorParams
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import detect_site, site_request, watch_mask
from sites import read_sites
from sites.geo import to_crs

CASE = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmark" / "dev-2012-control"
DARK = {"red": 0.08, "nir": 0.12, "swir16": 0.16}
BRIGHT = {"red": 0.28, "nir": 0.33, "swir16": 0.40}


def inject(ds, mask, onset, ramp, intensity, soil):
    ds = ds.copy(deep=True)
    days = ((pd.DatetimeIndex(ds.time.values) - onset) / pd.Timedelta(days=1)).to_numpy()
    frac = np.where(days < 0, 0.0, intensity * np.minimum(1.0, (days + 1) / max(ramp, 1)))
    for b, v in soil.items():
        a = ds[b].values
        for k in np.flatnonzero(frac > 0):
            m = mask & ds["clear"].values[k]
            a[k][m] = (1 - frac[k]) * a[k][m] + frac[k] * v
    return ds


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threshold", type=float, default=DetectorParams().threshold)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="any other DetectorParams field, e.g. --set onset_fraction=0.5")
    args = ap.parse_args(argv)
    extra = {k: type(getattr(DetectorParams(), k))(v) for k, v in (s.split("=", 1) for s in args.set)}
    params = replace(DetectorParams(), threshold=args.threshold, **extra)
    meta = json.loads((CASE / "case.json").read_text())
    start, end = pd.Timestamp(meta["monitor_start"]), pd.Timestamp(meta["monitor_end"])
    sites = read_sites(CASE / "sites.geojson").sites
    prov = LocalStacProvider(CASE / "catalog")
    rng = np.random.default_rng(args.seed)
    loaded = {s.site_id: prov.load(site_request(s, start, end)) for s in sites}
    false_alarms = sum(len(detect_site(s, loaded[s.site_id], start, end, params).detections) for s in sites)
    found, latencies, small_found, small = 0, [], 0, 0
    for i in range(args.events):
        site = sites[i % len(sites)]
        ds = loaded[site.site_id]
        inside = watch_mask(ds, site) & ndimage.binary_erosion(watch_mask(ds, site), iterations=2)
        ys, xs = np.nonzero(inside)
        c = rng.integers(len(ys))
        blob = np.zeros_like(inside)
        blob[ys[c], xs[c]] = True
        n_px = int(rng.integers(4, 30))
        while blob.sum() < n_px:
            grown = ndimage.binary_dilation(blob) & inside & (rng.random(blob.shape) < 0.5)
            blob |= grown
        onset = start + pd.Timedelta(days=int(rng.integers(0, 210)))
        t = rng.random()
        soil = {b: DARK[b] + t * (BRIGHT[b] - DARK[b]) for b in DARK}
        ev = inject(ds, blob, onset, float(rng.uniform(0, 45)), float(rng.uniform(0.6, 0.9)), soil)
        res = detect_site(site, ev, start, end, params)
        epsg = int(ds.attrs["crs"].split(":")[1])
        res_px = float(ds.attrs["resolution"])
        pts = [(float(ds.x[x]), float(ds.y[y])) for y, x in zip(*np.nonzero(blob))]
        from shapely.geometry import MultiPoint

        outline = MultiPoint(pts).buffer(res_px / 2, cap_style="square")
        is_small = n_px * res_px**2 < 5000
        small += is_small
        hits = [d for d in res.detections if to_crs(d.geometry, 4326, epsg).distance(outline) <= 20
                and -3 <= (d.first_seen - onset).days <= 60]
        if hits:
            found += 1
            small_found += is_small
            latencies.append(min((d.first_seen - onset).days for d in hits))
    out = {"events": args.events, "recall": round(found / args.events, 3),
           "recall_small": round(small_found / small, 3) if small else None,
           "median_latency_days": float(np.median(latencies)) if latencies else None,
           "false_alarms_without_injection": false_alarms, "threshold": args.threshold, **extra}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
