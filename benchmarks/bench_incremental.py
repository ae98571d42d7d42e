"""Weekly run with stored state vs recomputing from the monitoring epoch, same process, same data.

    python benchmarks/bench_incremental.py            # 64 x 64 px, a year of weekly runs
    python benchmarks/bench_incremental.py --size 16  # smoke size
    python benchmarks/bench_incremental.py --years    # one week's run after 1, 4, 7 and 10 years of
                                                      # watching: the imagery from the epoch on, or
                                                      # only the history years a resumed state needs;
                                                      # and the stored state's size, pruned to a year
                                                      # (onset_reach_days) or keeping every look
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import pandas as pd

from change_detection import DetectorParams, detect_changes
from change_detection.incremental import detect_incremental, dump_state, resume_from
from change_detection.synthetic import add_disturbance, box_mask, synthetic_series


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--years", action="store_true", help="a week's run after years of watching a site")
    args = ap.parse_args(argv)
    if args.years:
        return years_of_watching(args.size)
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


def years_of_watching(size: int) -> dict:
    """One weekly run with the stored state after 1, 4, 7 and 10 years of watching (epoch
    2011-03-01, an 8-day revisit), given the imagery from the epoch minus three years on (as every
    run read it before 2026-12-05) or from the state's last look minus three years and 60 days
    (``pipelines.monitoring.run_site`` now); the same detections either way.  Time and the peak
    of numpy's allocations (tracemalloc), in the same process.  Also the stored state's bytes and
    its cube's bytes in memory, pruned (``DetectorParams.onset_reach_days``, the default) against a
    state that keeps every look (``onset_reach_days=0``), with the same detections."""
    ds = synthetic_series(ny=size, nx=size, start="2008-01-01", end="2020-12-31", seed=0)
    ds = add_disturbance(ds, box_mask(ds, 1, max(3, size // 8), 1, max(3, size // 8)), "2012-06-10")
    rows = []
    for year in (2011, 2014, 2017, 2020):
        before, end = pd.Timestamp(f"{year}-11-30"), pd.Timestamp(f"{year}-12-07")
        pruned_dets, state, _ = detect_incremental(ds.sel(time=slice(None, before)), "bench", "2011-03-01", None)
        window = resume_from(dump_state(state)) - pd.DateOffset(years=3) - pd.Timedelta(days=60)
        every_dets, every, _ = detect_incremental(ds.sel(time=slice(None, before)), "bench", "2011-03-01", None,
                                                  params=DetectorParams(onset_reach_days=0))
        row = {"year": year, "state_mb": _mb(len(dump_state(state))),
               "state_mb_every_look": _mb(len(dump_state(every))),
               "cube_mb": _mb(_cube_bytes(state)), "cube_mb_every_look": _mb(_cube_bytes(every))}
        row["state_ratio"] = round(row["state_mb_every_look"] / row["state_mb"], 2)
        assert [d.detection_id for d in every_dets] == [d.detection_id for d in pruned_dets]
        for how, first in (("from_epoch", None), ("history_years", window)):
            week = ds.sel(time=slice(first, end))
            tracemalloc.start()
            t0 = time.perf_counter()
            dets, _, scored = detect_incremental(week, "bench", "2011-03-01", state, resume_only=first is not None)
            row[f"{how}_s"] = round(time.perf_counter() - t0, 3)
            row[f"{how}_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
            tracemalloc.stop()
            row[f"{how}_looks_read"] = week.sizes["time"]
            row[f"{how}_detections"] = [(d.detection_id, str(d.first_seen.date())) for d in dets]
        assert row["from_epoch_detections"] == row["history_years_detections"]
        row["memory_ratio"] = round(row["from_epoch_peak_mb"] / row["history_years_peak_mb"], 2)
        row["time_ratio"] = round(row["from_epoch_s"] / row["history_years_s"], 2)
        rows.append({k: v for k, v in row.items() if not k.endswith("_detections")})
    result = {"pixels": size ** 2, "weeks": rows}
    print(json.dumps(result, indent=1))
    return result


def _mb(n: int) -> float:
    return round(n / 1e6, 1)


def _cube_bytes(state) -> int:
    c = state.cube
    return sum(a.nbytes for a in (c.score, c.delta, c.z, c.old_score, c.old_delta, c.old_z) if a is not None)


if __name__ == "__main__":
    main()
