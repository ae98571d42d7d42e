"""Community reports against the store: import, reconcile, and write the results."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from shapely import wkt

from reports import ReconDetection, ReconItem, import_reports, load_key, reconcile, rejected_file, write_rejected
from reports.export import write_reconciliation

from .store import HIDDEN_STATUSES, OPEN_DAYS, OPEN_STATUSES, Store, open_or_seen


def import_reports_file(store: Store, path: str | Path, policy: str = "pseudonym", rejected_dir: str | Path | None = None,
                        region: str | None = None, dates: str | None = None, columns: dict[str, str] | None = None):
    """Validate a report file against the registered sites and store the good rows atomically.
    The rejected rows are written first (beside the file, or into ``rejected_dir``): where they
    cannot be kept, nothing is imported, so that no row is lost between the two."""
    res = import_reports(path, store.sites(), key=load_key() if policy != "drop" else None, policy=policy,
                         region=region, dates=dates, columns=columns)
    target = rejected_file(path, rejected_dir)
    try:
        rejected = write_rejected(res, target)
    except OSError as exc:
        raise OSError(f"cannot keep the {len(res.rejected)} rejected row(s) in {target} ({exc.strerror or exc}); "
                      "nothing was imported: choose a folder with --rejected-dir") from exc
    new = store.add_reports(res.accepted, res.contacts if policy == "restricted" else None)
    return res, new, rejected


def week_bounds(week: str) -> tuple[date, date]:
    """``2024-W23`` → (Monday, Sunday)."""
    try:
        year, w = week.upper().split("-W")
        monday = date.fromisocalendar(int(year), int(w), 1)
    except ValueError as exc:
        raise ValueError(f"week must look like 2024-W23, not {week!r}") from exc
    return monday, monday + timedelta(days=6)


def reconcile_store(store: Store, week: str | None = None, lookback_days: int = 120) -> list[ReconItem]:
    """Reconcile the stored reports and detections (of one week's review, if given: those seen in
    its look-back, and every open one, as the week's map shows them).  A detection a verdict
    dismissed, or a later run retired, is left out: it is nobody's errand, and a report at its
    place is news to check."""
    frame = store.detections()
    reports = store.reports()
    if not frame.empty:
        frame = frame[~frame.status.isin(HIDDEN_STATUSES)]
    if week:
        monday, sunday = week_bounds(week)
        lo = monday - timedelta(days=lookback_days)
        reports = [r for r in reports if lo <= r.observed_on <= sunday]
        if not frame.empty:
            frame = frame[open_or_seen(frame, lo, sunday)]
    dets = [ReconDetection(r.detection_id, r.site_id, wkt.loads(r.geometry_wkt), date.fromisoformat(r.first_seen),
                           date.fromisoformat(r.last_seen), r.confidence,
                           date.fromisoformat(r.last_seen) + timedelta(days=OPEN_DAYS) if r.status in OPEN_STATUSES
                           else None)
            for r in frame.itertuples()]
    return reconcile(reports, dets, store.sites())


def apply_corroboration(store: Store, items: list[ReconItem]) -> int:
    """Raise the confidence of corroborated detections in the store; returns how many changed."""
    frame = store.detections()
    current = dict(zip(frame.detection_id, frame.confidence)) if not frame.empty else {}
    changed = 0
    for it in items:
        if it.outcome == "corroborated" and it.confidence_after and current.get(it.detection_id) != it.confidence_after:
            store.set_confidence(it.detection_id, it.confidence_after)
            current[it.detection_id] = it.confidence_after
            changed += 1
    return changed


def for_access(items: list[ReconItem], sites, access: str) -> list[ReconItem]:
    """Generalise the location of items at sites this reader may not see exactly (public: all)."""
    from dataclasses import replace

    from shapely.geometry import Point

    from maps.access import generalise, may_see_exact

    sens = {s.site_id: s.sensitivity for s in sites}
    out = []
    for i in items:
        exact = access != "public" and (i.site_id is None or may_see_exact(sens.get(i.site_id, "secret"), access))
        if not exact:
            g = generalise(Point(i.lon, i.lat))
            i = replace(i, lat=g.y, lon=g.x, distance_m=None)
        out.append(i)
    return out


def reconcile_to_files(store: Store, out_dir: str | Path, week: str | None = None, access: str = "restricted"):
    items = reconcile_store(store, week)
    apply_corroboration(store, items)
    return items, write_reconciliation(for_access(items, store.sites(), access), out_dir, access)


def outcome_counts(items: list[ReconItem]) -> dict[str, int]:
    return pd.Series([i.outcome for i in items], dtype="object").value_counts().to_dict() if items else {}
