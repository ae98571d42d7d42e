"""Core throughput: pixel-observations per second of the whole detector, as a ratio to one numpy
reduction pass (``nanmean`` over time) over the same array, both measured in this process.

    python benchmarks/bench_core.py            # default size (64 x 64 pixels, 4 years at 8 days)
    python benchmarks/bench_core.py --size 16  # smoke size for CI
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from change_detection import detect_changes
from change_detection.synthetic import add_disturbance, box_mask, synthetic_series


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="pixels per side")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    ds = synthetic_series(ny=args.size, nx=args.size, seed=0)
    ds = add_disturbance(ds, box_mask(ds, 2, 8, 2, 8), "2011-06-10")
    stack = np.stack([ds[b].values for b in ("red", "nir", "swir16")], axis=1)
    n_obs = ds.sizes["time"] * args.size * args.size
    t_ref = best_of(lambda: np.nanmean(stack, axis=0), args.repeat)
    t_det = best_of(lambda: detect_changes(ds, "bench", since="2011-03-01"), args.repeat)
    result = {
        "pixels": args.size * args.size, "looks": ds.sizes["time"], "pixel_observations": n_obs,
        "detector_s": round(t_det, 4), "numpy_reduction_s": round(t_ref, 6),
        "detector_pixel_obs_per_s": round(n_obs / t_det), "ratio_detector_to_reduction": round(t_det / t_ref, 1),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
