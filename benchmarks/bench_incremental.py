"""Weekly run with stored state vs recomputing from the monitoring epoch, same process, same data.

    python benchmarks/bench_incremental.py            # 64 x 64 px, a year of weekly runs
    python benchmarks/bench_incremental.py --size 16  # smoke size
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from change_detection import detect_changes
from change_detection.incremental import detect_incremental
from change_detection.synthetic import add_disturbance, box_mask, synthetic_series


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args(argv)
    ds = synthetic_series(ny=args.size, nx=args.size, seed=0)
    ds = add_disturbance(ds, box_mask(ds, 2, 8, 2, 8), "2011-06-10")
    ends = pd.date_range("2011-03-07", "2011-12-26", freq="7D")
    state, t_inc, t_full = None, 0.0, 0.0
    for end in ends:
        week = ds.sel(time=slice(None, end))
        t0 = time.perf_counter()
        _, state, _ = detect_incremental(week, "bench", "2011-03-01", state)
        t1 = time.perf_counter()
        detect_changes(week, "bench", since="2011-03-01")
        t2 = time.perf_counter()
        t_inc += t1 - t0
        t_full += t2 - t1
    result = {"pixels": args.size ** 2, "weekly_runs": len(ends), "incremental_s": round(t_inc, 3),
              "recompute_s": round(t_full, 3), "ratio_recompute_to_incremental": round(t_full / t_inc, 2)}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
