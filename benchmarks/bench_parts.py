"""A landscape watched whole and in parts: time, peak memory and the detections, as ratios.

The five sites of dev-2010-a as one landscape (their convex hull, grown by ``--grow`` metres),
its 2010 season scored with its history, each way in a fresh process (peak RSS is per process):
once with no memory limit (whole), once under ``--limit-gb`` (``SITEWATCH_MAX_SITE_GB``), which
it does not fit, so it is watched in parts.  Parts should keep the peak under the limit, find
the same disturbances with the same onsets, and cost more time (each part loads its own 600 m
reference ring).

    python benchmarks/bench_parts.py                          # grown by 1500 m, 0.3 GB
    python benchmarks/bench_parts.py --grow 0 --limit-gb 0.1  # smoke size
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmark"

CHILD = r"""
import json, resource, sys, time
from dataclasses import replace
import shapely
from sites import read_sites
from sites.geo import buffer_m
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import run_site
case, grow = sys.argv[1], float(sys.argv[2])
sites = read_sites(f"{case}/sites.geojson").sites
hull = shapely.union_all([s.geometry for s in sites]).convex_hull
land = replace(sites[0], site_id="LAND", geometry=buffer_m(hull, grow) if grow else hull)
prov = LocalStacProvider(f"{case}/catalog")
t = time.perf_counter()
res = run_site(land, prov, "2010-03-01", "2010-12-31")
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "status": res.status, "message": res.message,
                  "onsets": sorted(str(d.first_seen.date()) for d in res.detections),
                  "merged_across_seams": sum(bool(d.evidence.get("merged_across_seam")) for d in res.detections)}))
"""


def _run(case: Path, grow: float, limit_gb: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(case), str(grow)], capture_output=True, text=True,
                         check=True, env={**os.environ, "SITEWATCH_MAX_SITE_GB": limit_gb})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _minus(a: list[str], b: list[str]) -> list[str]:
    rest = list(b)
    out = []
    for x in a:
        if x in rest:
            rest.remove(x)
        else:
            out.append(x)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grow", type=float, default=1500.0)
    ap.add_argument("--limit-gb", type=float, default=0.3)
    args = ap.parse_args(argv)
    case = ROOT / "dev-2010-a"
    whole = _run(case, args.grow, "1000")
    parts = _run(case, args.grow, str(args.limit_gb))
    result = {
        "grow_m": args.grow, "limit_gb": args.limit_gb, "whole": whole, "parts": parts,
        "time_ratio_parts_to_whole": round(parts["seconds"] / whole["seconds"], 2),
        "peak_ratio_parts_to_whole": round(parts["peak_mb"] / whole["peak_mb"], 2),
        "same_onsets": parts["onsets"] == whole["onsets"],
        "onsets_only_whole": _minus(whole["onsets"], parts["onsets"]),
        "onsets_only_parts": _minus(parts["onsets"], whole["onsets"]),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
