"""Per-site detector state, so a weekly run scores only the new looks.

Scoring a look needs its seasonal baseline (medians over earlier years) — the expensive part.
A look's score never changes once computed (the baseline looks only back, normalisation is per
date), and the confirmation walk is a state machine over looks.  So the state after a run is the
scores and feature deltas of the looks since the monitoring epoch plus the walk's state; the
next run scores the looks after ``last_look``, appends them and resumes the walk.  The result is
identical to recomputing everything (``tests/test_incremental.py``).  Of the looks older than a
year (``DetectorParams.onset_reach_days``) the state keeps only the pixels with a disturbance or a
pending run, the only ones a later run reads there (:func:`prune`).

The state is invalidated — and everything recomputed — when the grid, the epoch, the detector
settings or the set of earlier looks changed (a late-arriving acquisition).

A run that resumes a state needs imagery only from its last look minus the baseline's reach (the
history years and the widest same-season window): the new looks' baselines reach no further
back, and everything before is in the state.  So a weekly run's memory and time stay those of
its history years, however long the site has been watched (before 2026-12-05 every run loaded
the imagery from the epoch on: ten years on, a weekly run held 3.9 times the memory of a
resumed one).  Such a run passes ``resume_only``: if the state cannot be resumed it raises
:class:`StateNotResumable`, and the caller loads the imagery from the epoch and recomputes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .detect import (
    ARCHIVE_FIELDS, AnomalyCube, Confirmation, Detection, DetectorParams, _days, anomaly_scores, confirm_anomalies,
    disturbance_polygons,
)


class StateNotResumable(Exception):
    """The stored state does not fit this imagery (grid, epoch, settings or earlier looks changed):
    the imagery from the epoch on is needed to recompute."""


@dataclass
class SiteState:
    key: str
    """Hash of grid, epoch and detector settings: a state is only resumed under the same key."""
    cube: AnomalyCube
    conf: Confirmation


def state_key(ds: xr.Dataset, since: pd.Timestamp, params: DetectorParams) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ds.x.values).tobytes())
    h.update(np.ascontiguousarray(ds.y.values).tobytes())
    h.update(str(ds.attrs.get("crs")).encode())
    h.update(str(pd.Timestamp(since).date()).encode())
    h.update(repr(asdict(params)).encode())
    h.update(",".join(sorted(v for v in ds.data_vars if v != "clear")).encode())
    return h.hexdigest()[:24]


def resume_from(blob: bytes | None) -> pd.Timestamp | None:
    """The last look a stored state (:func:`dump_state`) has scored: the imagery a resumed run
    needs starts the baseline's reach before it.  Only the state's dates are read, not its cube.
    None where there is no state to resume (none, unreadable, or a site's parts)."""
    if not blob:
        return None
    try:
        times = np.load(io.BytesIO(blob), allow_pickle=False)["times"]
    except (OSError, ValueError, KeyError):
        return None
    return pd.Timestamp(times[-1].astype("datetime64[ns]")) if len(times) else None


def detect_incremental(
    ds: xr.Dataset, site_id: str, since, state: SiteState | None, watch: np.ndarray | None = None,
    params: DetectorParams = DetectorParams(), resume_only: bool = False,
) -> tuple[list[Detection], SiteState, int]:
    """Detections as :func:`detect_changes` gives them, reusing ``state``; returns the new state and
    how many looks had to be scored in this call.  ``ds`` holds every look from the epoch
    ``since`` on, or, with ``resume_only``, every look from :func:`resume_from` minus the
    baseline's reach on (:class:`StateNotResumable` if the state does not fit it)."""
    since = pd.Timestamp(since)
    key = state_key(ds, since, params)
    times = pd.DatetimeIndex(ds.sortby("time").time.values)
    usable = state is not None and state.key == key and len(state.cube.times) > 0
    if usable:
        known = state.cube.times
        # the looks the imagery holds up to the last known one are the known ones (a resumed run's
        # imagery starts after the epoch: checked from its first look)
        check_from = max(since, times[0]) if resume_only and len(times) else since
        earlier = times[(times >= check_from) & (times <= known[-1])]
        expected = known[known >= check_from]
        usable = len(earlier) == len(expected) and (earlier == expected).all()
    if not usable and resume_only:
        raise StateNotResumable(f"{site_id}: the stored detector state does not fit the imagery")
    if usable:
        new = anomaly_scores(ds, known[-1] + pd.Timedelta(seconds=1), params)
        old = state.cube
        cube = AnomalyCube(known.append(new.times), np.concatenate([old.score, new.score]),
                           np.concatenate([old.delta, new.delta]), old.features,
                           old.skipped_dates + new.skipped_dates, np.concatenate([old.z, new.z]),
                           old.start, old.kept, old.old_score, old.old_delta, old.old_z)
        conf = confirm_anomalies(new.score, params, resume=state.conf, days=_days(new.times),
                                 through_snow=new.through_snow)
        scored = len(new.times)
    else:
        cube = anomaly_scores(ds, since, params)
        conf = confirm_anomalies(cube.score, params, days=_days(cube.times), through_snow=cube.through_snow)
        scored = len(cube.times)
    dets = disturbance_polygons(ds, cube, conf, site_id, watch, params)
    return dets, SiteState(key, prune(cube, conf, params), conf), scored


def prune(cube: AnomalyCube, conf: Confirmation, params: DetectorParams) -> AnomalyCube:
    """The cube a later run needs: every pixel's looks within ``onset_reach_days`` of the last one,
    and the earlier looks only of the pixels with a disturbance (open or closed) or a pending run.

    A later run reads a pixel's looks only from ``onset_reach_days`` before its own first anomalous
    one (``DetectorParams.onset_reach_days``).  A pixel with neither a disturbance nor a pending
    run now can start one only after the last look, so its looks older than the reach are never
    read again; the others keep theirs.  The detections stay exactly those of an unpruned cube
    (``tests/test_incremental.py``) while the state stops growing with every look: without this a
    site watched for ten years stored and loaded ten years of scores for every pixel."""
    reach = params.onset_reach_days
    if reach <= 0 or not len(cube.times):
        return cube
    days = _days(cube.times)
    start = int(np.searchsorted(days, days[-1] - reach))
    if start <= cube.start:
        return cube
    involved = conf.confirmed | (conf.run_len > 0)
    if conf.closed is not None:
        involved |= conf.closed > 0
    keep = np.flatnonzero(involved)
    moved = start - cube.start  # looks leaving the part held for every pixel

    def old_block(dense: np.ndarray, old: np.ndarray | None) -> np.ndarray:
        out = np.full((start,) + dense.shape[1:-1] + (keep.size,), np.nan, dtype=dense.dtype)
        if cube.start and cube.kept is not None and cube.kept.size:
            _, ia, ib = np.intersect1d(keep, cube.kept, assume_unique=True, return_indices=True)
            out[: cube.start][..., ia] = old[..., ib]
        out[cube.start :] = dense[:moved][..., keep]
        return out

    return AnomalyCube(
        cube.times, cube.score[moved:].copy(), cube.delta[moved:].copy(), cube.features, cube.skipped_dates,
        cube.z[moved:].copy(), start, keep, old_block(cube.score, cube.old_score),
        old_block(cube.delta, cube.old_delta), old_block(cube.z, cube.old_z),
    )


def dump_state(state: SiteState) -> bytes:
    """Compressed bytes for the store (numpy's npz; no pickle)."""
    c, k = state.cube, state.conf
    buf = io.BytesIO()
    np.savez_compressed(
        buf, key=np.array(state.key), times=c.times.values.astype("datetime64[ns]").astype("int64"),
        score=c.score.astype("float32"), delta=c.delta.astype("float32"), z=c.z.astype("float16"),
        features=np.array(c.features),
        skipped=np.array([t.value for t in c.skipped_dates], dtype="int64"),
        start=np.array(c.start),
        **({"kept": c.kept, "old_score": c.old_score.astype("float32"), "old_delta": c.old_delta.astype("float32"),
            "old_z": c.old_z.astype("float16")} if c.start else {}),
        confirmed=k.confirmed, first=k.first, confirm=k.confirm, last=k.last, looks=k.looks,
        mean_score=k.mean_score, run_start=k.run_start, run_len=k.run_len, run_sum=k.run_sum, total=k.total,
        walked=np.array(k.n_looks_walked), quiet=k.quiet, last_day=k.last_day, closed=k.closed,
        **{f"archive_{f}": a for f, a in (k.archive or {}).items()},
    )
    return buf.getvalue()


def load_state(blob: bytes | None) -> SiteState | None:
    if not blob:
        return None
    try:
        z = np.load(io.BytesIO(blob), allow_pickle=False)
        start = int(z["start"]) if "start" in z.files else 0  # states stored before 2026-12-05: unpruned
        old = (z["kept"], z["old_score"], z["old_delta"], z["old_z"]) if start else (None,) * 4
        cube = AnomalyCube(pd.DatetimeIndex(z["times"].astype("datetime64[ns]")), z["score"], z["delta"],
                           [str(f) for f in z["features"]], [pd.Timestamp(int(v)) for v in z["skipped"]], z["z"],
                           start, *old)
        conf = Confirmation(z["confirmed"], z["first"], z["confirm"], z["last"], z["looks"], z["mean_score"],
                            z["run_start"], z["run_len"], z["run_sum"], z["total"], int(z["walked"]),
                            z["quiet"], z["last_day"], z["closed"], {f: z[f"archive_{f}"] for f in ARCHIVE_FIELDS})
        return SiteState(str(z["key"]), cube, conf)
    except (OSError, ValueError, KeyError):
        return None  # an unreadable state is recomputed, never trusted
