"""Peak memory of one site's run against its pixel-looks, for the per-site limit.

Each size runs in a fresh process (peak RSS is per process): the first site of dev-2010-a grown by
a margin, its 2010 season scored with its history.  The slope of peak RSS over pixel-looks is what
one pixel costs on one look; ``pipelines.imagery.base.BYTES_PER_PIXEL_LOOK`` turns
``SITEWATCH_MAX_SITE_GB`` into a limit with it, so the ratio printed here should stay near 1.

    python benchmarks/bench_memory.py                   # margins 0, 500, 1500, 3000 m
    python benchmarks/bench_memory.py --grow 0 300      # smoke size
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmark"

CHILD = r"""
import json, resource, sys, tracemalloc
from dataclasses import replace
import pandas as pd
from sites import read_sites
from sites.geo import buffer_m
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import run_site, site_request
case, grow = sys.argv[1], float(sys.argv[2])
site = read_sites(f"{case}/sites.geojson").sites[0]
site = replace(site, geometry=buffer_m(site.geometry, grow))
prov = LocalStacProvider(f"{case}/catalog")
tracemalloc.start()
ds = prov.load(site_request(site, pd.Timestamp("2010-03-01"), pd.Timestamp("2010-12-31")))
n = ds.sizes["time"] * ds.sizes["y"] * ds.sizes["x"]
del ds
res = run_site(site, prov, "2010-03-01", "2010-12-31")
print(json.dumps({"grow_m": grow, "pixel_looks": n, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "traced_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20, "status": res.status}))
"""


def main(argv=None) -> dict:
    from pipelines.imagery.base import BYTES_PER_PIXEL_LOOK

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grow", type=float, nargs="+", default=[0, 500, 1500, 3000])
    args = ap.parse_args(argv)
    case = ROOT / "dev-2010-a"
    rows = []
    for g in args.grow:
        out = subprocess.run([sys.executable, "-c", CHILD, str(case), str(g)], capture_output=True, text=True,
                             check=True, env={**__import__("os").environ, "SITEWATCH_MAX_SITE_GB": "1000"})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    (a, b) = rows[0], rows[-1]
    dn = max(b["pixel_looks"] - a["pixel_looks"], 1)
    slope = (b["peak_mb"] - a["peak_mb"]) * 2**20 / dn  # process peak: exact, but blind under the import peak
    traced = (b["traced_peak_mb"] - a["traced_peak_mb"]) * 2**20 / dn  # numpy and Python allocations only
    result = {"runs": rows, "bytes_per_pixel_look": round(slope, 1), "traced_bytes_per_pixel_look": round(traced, 1),
              "assumed": BYTES_PER_PIXEL_LOOK, "ratio_measured_to_assumed": round(slope / BYTES_PER_PIXEL_LOOK, 2)}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
