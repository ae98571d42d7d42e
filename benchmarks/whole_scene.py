"""False detections anywhere in the scene, not only at the development sites (a development aid).

The development cases watch fifteen sites; a judged case, or a real registry, puts its sites
elsewhere.  This runs the detector over (nearly) the whole scene of each case — one "site" covering
the catalog's footprint less a 150 m margin — for the case's monitoring year, with its history, and
counts every detection more than 120 m from the case's own events and recurring fields: on the
real imagery those are false (or real changes on the ground).  The count is given per hectare-week
and as the false-alarm rate a registry of 18 ha sites (15 ha and their 60 m buffer, the size of the
development sites) would see, per 100 site-weeks.

    python benchmarks/whole_scene.py [--cases dev-2012-control] [--set threshold=3.0]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from shapely.geometry import box, shape

from change_detection import DetectorParams, detect_changes
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import rasterize_lonlat, site_request, watch_mask
from sites.geo import buffer_m, to_crs
from sites.model import Site

sys.path.insert(0, str(Path(__file__).resolve().parent))
from injection import AVOID_M, ROOT, false_detection_cli  # the same cases, distance and command line

MARGIN_M = 150.0
SITE_HA = 18.0


def run_case(case: str, params: DetectorParams) -> tuple[list[dict], float]:
    """False detections over the case's scene and the hectare-weeks watched."""
    meta = json.loads((ROOT / case / "case.json").read_text())
    start, end = pd.Timestamp(meta["monitor_start"]), pd.Timestamp(meta["monitor_end"])
    item = next((ROOT / case / "catalog").glob("*/*.json"))
    scene = Site("SCENE", "whole scene", buffer_m(box(*json.loads(item.read_text())["bbox"]), -MARGIN_M), buffer_m=0)
    truth = [shape(f["geometry"]) for f in json.loads((ROOT / case / "truth.geojson").read_text())["features"]]
    ds = LocalStacProvider(ROOT / case / "catalog").load(site_request(scene, start, end))
    ds = ds.sel(time=slice(None, end + pd.Timedelta(days=1)))
    watch = watch_mask(ds, scene)
    avoid = np.zeros_like(watch)
    for g in truth:
        avoid |= rasterize_lonlat(ds, buffer_m(g, AVOID_M), all_touched=True)
    rows = []
    for d in detect_changes(ds, scene.site_id, since=start, watch=watch, params=params):
        if (rasterize_lonlat(ds, to_crs(d.geometry, d.crs, 4326), all_touched=True) & avoid).any():
            continue
        rows.append({"case": case, "first_seen": str(d.first_seen.date()), "confidence": d.confidence,
                     "area_m2": round(d.area_m2), "kind": d.kind_hint, "n_looks": d.n_looks,
                     "provisional": bool(d.evidence.get("provisional"))})
    hectares = float((watch & ~avoid).sum()) * float(ds.attrs["resolution"]) ** 2 / 1e4
    return rows, hectares * (end - start).days / 7.0


def main(argv=None):
    return false_detection_cli(argv, run_case, lambda rows, hectare_weeks: {
        "false_detections": len(rows), "hectare_weeks": round(hectare_weeks),
        f"per_100_site_weeks_{SITE_HA:g}ha": round(100 * len(rows) * SITE_HA / hectare_weeks, 2),
        "provisional": sum(r["provisional"] for r in rows)})


if __name__ == "__main__":
    main()
