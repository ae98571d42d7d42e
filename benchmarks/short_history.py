"""False alarms with one year of history: the detector on the year *before* each development case.

The development cases hold two history years before their monitoring year.  A site registered
this year, or a case that starts early in the archive, has less.  This runs the detector on the
year before each case's monitoring year (1 March - 31 December), with only the one year of the
case's imagery that precedes it as history.  The case's looting events start in its monitoring
year and are not in that imagery; its recurring fields are (they are bared every year).  So every
detection here is a false alarm under the scoring rules, unless it is a real change on the ground.

    python benchmarks/short_history.py [--cases dev-2011-b] [--set ignore_vegetation_gain=false]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from shapely.geometry import shape

from change_detection import DetectorParams, detect_changes
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import site_request, watch_mask
from sites import read_sites
from sites.geo import to_crs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from injection import ROOT, false_detection_cli  # the same cases, data and command line as injection.py


def run_case(case: str, params: DetectorParams) -> tuple[list[dict], float]:
    meta = json.loads((ROOT / case / "case.json").read_text())
    since = pd.Timestamp(meta["monitor_start"]) - pd.DateOffset(years=1)
    end = pd.Timestamp(meta["monitor_end"]) - pd.DateOffset(years=1)
    fields = [f for f in json.loads((ROOT / case / "truth.geojson").read_text())["features"]
              if f["properties"]["kind"] not in meta["alert_kinds"]]
    provider = LocalStacProvider(ROOT / case / "catalog")
    sites = read_sites(ROOT / case / "sites.geojson").sites
    rows = []
    for site in sites:
        ds = provider.load(site_request(site, since, end)).sel(time=slice(None, end))
        for d in detect_changes(ds, site.site_id, since=since, watch=watch_mask(ds, site), params=params):
            lonlat = to_crs(d.geometry, d.crs, 4326)
            rows.append({"case": case, "site": site.site_id, "first_seen": str(d.first_seen.date()),
                         "confidence": d.confidence, "area_m2": round(d.area_m2), "kind": d.kind_hint,
                         "provisional": bool(d.evidence.get("provisional")),
                         "on_recurring_field": any(lonlat.intersects(shape(f["geometry"])) for f in fields)})
    return rows, len(sites) * (end - since).days / 7.0


def main(argv=None):
    return false_detection_cli(argv, run_case, lambda rows, site_weeks: {
        "false_detections": len(rows), "per_100_site_weeks": round(100 * len(rows) / site_weeks, 2),
        "on_recurring_fields": sum(r["on_recurring_field"] for r in rows),
        "provisional": sum(r["provisional"] for r in rows)})


if __name__ == "__main__":
    main()
