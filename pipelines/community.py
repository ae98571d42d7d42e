"""Community reports against the store: import, reconcile, and write the results."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from shapely import wkt

from reports import ReconDetection, ReconItem, import_reports, load_key, reconcile, rejected_file, write_rejected
from reports.export import write_reconciliation

from .review import closed_by_check, copies_of_one_dig, field_checks, own_judgements
from .store import HIDDEN_STATUSES, OPEN_DAYS, Store, awaits_ranger, open_or_seen


def import_reports_file(store: Store, path: str | Path, policy: str = "pseudonym", rejected_dir: str | Path | None = None,
                        region: str | None = None, dates: str | None = None, columns: dict[str, str] | None = None):
    """Validate a report file against the registered sites and store the good rows atomically.
    The rejected rows are written first (beside the file, or into ``rejected_dir``): where they
    cannot be kept, nothing is imported, so that no row is lost between the two."""
    res = import_reports(path, store.sites(), key=load_key() if policy != "drop" else None, policy=policy,
                         region=region, dates=dates, columns=columns, former_ids=store.former_site_ids())
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


def reconcile_store(store: Store, week: str | None = None, lookback_days: int = 120,
                    registry: Collection[str] | None = None) -> list[ReconItem]:
    """Reconcile the stored reports and detections (of one week's review, if given: those seen in
    its look-back, and every open one, as the week's map shows them).  A detection a verdict
    dismissed, or a later run retired, is left out: it is nobody's errand, and a report at its
    place is news to check.  One a ranger has checked is matched with reports but is not an
    unreported detection to send a ranger to.  A report at a site the weekly run does not watch
    (not in ``registry``, the run's site ids) is for a ranger, not for the next clear image."""
    frame = store.detections()
    reports = store.reports()
    checks = field_checks(store)
    sunday = None
    if not frame.empty:
        frame = frame[~frame.status.isin(HIDDEN_STATUSES)]
    if week:
        monday, sunday = week_bounds(week)
        lo = monday - timedelta(days=lookback_days)
        reports = [r for r in reports if lo <= r.observed_on <= sunday]
    closed = closed_by_check(store, until=sunday)
    if week and not frame.empty:
        frame = frame[open_or_seen(frame, lo, sunday, closed)]
    waiting = set(frame.detection_id[awaits_ranger(frame, closed)]) if not frame.empty else set()
    dets = _recon_detections(frame, checks, waiting)
    sites = store.sites()
    copies = copies_of_one_dig([d for d in dets if d.detection_id in waiting and d.checked_on is None],
                               own_judgements(store), {s.site_id: s.geometry for s in sites})
    return reconcile(reports, dets, sites, unwatched=no_longer_watched(store, registry), copies=set(copies))


def no_longer_watched(store: Store, registry: Collection[str] | None = None) -> set[str]:
    """The store's sites not in ``registry`` (the weekly run's site ids): none, without it (a
    site's archive failing for some weeks is not a site dropped)."""
    return {s.site_id for s in store.sites()} - set(registry) if registry is not None else set()


def _recon_detections(frame: pd.DataFrame, checks: dict[str, dict], waiting=()) -> list[ReconDetection]:
    """The store's detections as the reconciliation takes them: open for a year after last seen
    where they wait for a ranger (``waiting``), with the ranger's last check (``checks``)."""
    return [ReconDetection(r.detection_id, r.site_id, wkt.loads(r.geometry_wkt), date.fromisoformat(r.first_seen),
                           date.fromisoformat(r.last_seen), r.confidence,
                           date.fromisoformat(r.last_seen) + timedelta(days=OPEN_DAYS) if r.detection_id in waiting
                           else None,
                           *((date.fromisoformat(checks[r.detection_id]["visited_on"]), checks[r.detection_id]["label"])
                             if r.detection_id in checks else (None, "")),
                           corroborated=bool(r.corroborated_by))
            for r in frame.itertuples()]


def reported_since_check(store: Store, detection_ids, until=None) -> dict[str, list[date]]:
    """Of ``detection_ids``, those a ranger has checked that a community report made after the
    check (and by ``until``, the end of the week being run) corroborates (the same rule of place
    and time as :func:`reconcile_store`), with the reports' days: the looters may be back
    (:func:`pipelines.review.awaiting_visit`)."""
    checks = field_checks(store)
    ids = [d for d in detection_ids if d in checks]
    if not ids:
        return {}
    last = str(pd.Timestamp(until).date()) if until is not None else "9999-12-31"
    reports = [r for r in store.reports()
               if min(checks[d]["visited_on"] for d in ids) < str(r.observed_on) <= last]
    if not reports:
        return {}
    frame = store.detections()
    day = {r.report_id: r.observed_on for r in reports}
    out: dict[str, list[date]] = {}
    for i in reconcile(reports, _recon_detections(frame[frame.detection_id.isin(ids)], checks), store.sites()):
        if i.outcome == "corroborated" and str(day[i.report_id]) > checks[i.detection_id]["visited_on"]:
            out.setdefault(i.detection_id, []).append(day[i.report_id])
    return out


def apply_corroboration(store: Store, items: list[ReconItem]) -> int:
    """Raise the confidence of newly corroborated detections in the store, one level each, once
    (:meth:`pipelines.store.Store.corroborate`); returns how many rose.  (Before 2026-11-28 the
    same report raised a detection again every week it was reconciled: a provisional single look
    reported once reached ``high`` in two weekly runs.)"""
    changed = 0
    for it in items:
        if it.outcome == "corroborated" and it.detection_id and it.report_id:
            changed += store.corroborate(it.detection_id, it.report_id)
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
            i = replace(i, lat=g.y, lon=g.x, distance_m=None, field_check=None)
        out.append(i)
    return out


def reconcile_to_files(store: Store, out_dir: str | Path, week: str | None = None, access: str = "restricted"):
    items = reconcile_store(store, week)
    apply_corroboration(store, items)
    return items, write_reconciliation(for_access(items, store.sites(), access), out_dir, access)


def outcome_counts(items: list[ReconItem]) -> dict[str, int]:
    return pd.Series([i.outcome for i in items], dtype="object").value_counts().to_dict() if items else {}
