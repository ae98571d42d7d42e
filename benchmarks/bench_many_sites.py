"""The weekly job's own work for many sites: N and 4 N sites, two weeks each, in the same process.

Everything a week's run does besides reading imagery and scoring it: the store (detections,
states, weeks, acquisitions), supersession and the archaeologists' feedback, the same dig seen from
two sites, the maps, the field packs and the summary.  Each site's result is made up (a site on a
0.05° grid in Mongolia; every fifth with one detection), so the figure is the job's, not the
detector's.  A heritage authority registers thousands of sites; the time per site should not grow
with their number (ratio 1.0: linear).

    python benchmarks/bench_many_sites.py              # 400 and 1600 sites
    python benchmarks/bench_many_sites.py --sites 10   # smoke size
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from shapely.geometry import box

from change_detection import Detection
from pipelines.monitoring import SiteResult
from pipelines.store import Store
from pipelines.weekly import run_period
from sites import Site


def registry(n: int) -> list[Site]:
    out = []
    for i in range(n):
        lon, lat = 100 + (i % 50) * 0.05, 44 + (i // 50) * 0.05
        out.append(Site(f"MN-{i:05d}", f"Site {i}", box(lon, lat, lon + 0.002, lat + 0.0015), 50.0, "restricted",
                        f"R{i % 7}"))
    return out


class NoImagery:
    name = "none"


def made_up(site: Site, provider, since, end, params, state) -> SiteResult:
    """A site's result without imagery: every fifth site with one dig, every site seen clearly."""
    dets = []
    if int(site.site_id[3:]) % 5 == 0:
        c = site.geometry.centroid
        dig = box(c.x - 0.0004, c.y - 0.0003, c.x + 0.0004, c.y + 0.0003)
        dets.append(Detection(
            f"{site.site_id}-20100610-abcdef", site.site_id, dig,
            "EPSG:4326", pd.Timestamp("2010-06-10"), pd.Timestamp("2010-06-20"), pd.Timestamp("2010-06-18"), 0.8,
            "medium", 4000.0, 3, "bare_soil_exposure",
            {"features": ["ndvi"], "delta": {"ndvi": -0.1}, "clear_looks": 3, "mean_anomaly_sd": 4.2,
             "looks_through_snow": 0, "algorithm": "sw-seasonal-1", "provisional": False}))
    return SiteResult(site.site_id, dets, ["A1"], {"2010-06-18": 1.0, "2010-06-20": 0.9}, last_clear="2010-06-20")


def two_weeks(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store, sites, out = Store(str(Path(tmp) / "sw.db")), registry(n), {}
        for week, (start, end) in enumerate((("2010-06-14", "2010-06-20"), ("2010-06-21", "2010-06-27")), 1):
            t = time.perf_counter()
            run_period(store, sites, NoImagery(), start, end, Path(tmp) / f"out{week}", site_runner=made_up)
            out[f"week{week}_s"] = round(time.perf_counter() - t, 2)
        out["map_kb"] = (Path(tmp) / "out1" / "map.html").stat().st_size // 1000
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=400, help="N: the run is timed at N and 4 N sites")
    args = ap.parse_args(argv)
    small, large = two_weeks(args.sites), two_weeks(4 * args.sites)
    result = {"sites": [args.sites, 4 * args.sites], "small": small, "large": large,
              # time per site at 4 N over time per site at N (1.0: the job grows linearly)
              "per_site_ratio_week1": round(large["week1_s"] / (4 * small["week1_s"]), 2),
              "per_site_ratio_week2": round(large["week2_s"] / (4 * small["week2_s"]), 2)}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
