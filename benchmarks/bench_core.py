"""Core throughput: pixel-observations per second of the whole detector, as a ratio to one numpy
reduction pass (``nanmean`` over time) over the same array, both measured in this process.

    python benchmarks/bench_core.py            # default size (64 x 64 pixels, 4 years at 8 days)
    python benchmarks/bench_core.py --size 16  # smoke size for CI
    python benchmarks/bench_core.py --rgb      # an RGB-only mosaic (its texture feature included)
    python benchmarks/bench_core.py --radar    # Sentinel-1 backscatter (its multilook included)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from change_detection import DetectorParams, detect_changes
from change_detection.synthetic import add_disturbance, add_sar_change, box_mask, synthetic_sar_series, synthetic_series


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
    ap.add_argument("--rgb", action="store_true", help="an RGB-only mosaic instead of red/NIR/SWIR")
    ap.add_argument("--radar", action="store_true", help="Sentinel-1 VV/VH backscatter instead of red/NIR/SWIR")
    args = ap.parse_args(argv)
    if args.radar:  # a look every 12 days at 10 m, as Sentinel-1 gives
        ds = synthetic_sar_series(ny=args.size, nx=args.size, seed=0)
        ds = add_sar_change(ds, box_mask(ds, 2, 8, 2, 8), "2011-06-10", 4.0, 3.0)
        bands = ("vv", "vh")
    else:
        ds = synthetic_series(ny=args.size, nx=args.size, seed=0, rgb_only=args.rgb)
        ds = add_disturbance(ds, box_mask(ds, 2, 8, 2, 8), "2011-06-10")
        bands = ("red", "green", "blue") if args.rgb else ("red", "nir", "swir16")
    stack = np.stack([ds[b].values for b in bands], axis=1)
    n_obs = ds.sizes["time"] * args.size * args.size
    t_ref = best_of(lambda: np.nanmean(stack, axis=0), args.repeat)
    t_det = best_of(lambda: detect_changes(ds, "bench", since="2011-03-01"), args.repeat)
    result = {
        "bands": list(bands), "pixels": args.size * args.size, "looks": ds.sizes["time"], "pixel_observations": n_obs,
        "detector_s": round(t_det, 4), "numpy_reduction_s": round(t_ref, 6),
        "detector_pixel_obs_per_s": round(n_obs / t_det), "ratio_detector_to_reduction": round(t_det / t_ref, 1),
    }
    if args.rgb:  # what the texture feature costs, in the same process
        t_plain = best_of(lambda: detect_changes(ds, "bench", since="2011-03-01", params=DetectorParams(texture=False)),
                          args.repeat)
        result.update({"detector_without_texture_s": round(t_plain, 4),
                       "ratio_texture_to_without": round(t_det / t_plain, 2)})
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
