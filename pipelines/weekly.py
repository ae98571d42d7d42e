"""The weekly job as plain functions: monitor sites, record results, write the outputs.

:mod:`pipelines.flows` wraps these in Prefect tasks; tests call them directly.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from gettext import NullTranslations
from pathlib import Path

import pandas as pd
from shapely import STRtree, wkt
from shapely.geometry import mapping
from shapely.ops import unary_union
from sqlalchemy.exc import SQLAlchemyError

from change_detection import DetectorParams
from maps.access import generalise, may_see_exact
from maps.escape import file_name, text
from maps.field_pack import Waypoint, to_mgrs, write_field_pack
from maps.language import (
    ENGLISH_WORDS, N_, Said, access_words, confidence_words, field_check_said, kind_words, outcome_words, phrase, say,
    words_for, yes_no,
)
from maps.sheets import detection_sheet, write_sheet
from maps.swipe import write_swipe
from maps.weekly_map import MapDetection, MapReport, save_map, weekly_map
from reports.reconcile import OUTCOMES
from sites import Site
from sites.geo import holder
from sitewatch.config import BLIND_DAYS
from sitewatch.errors import TransientProviderError

from .imagery.base import ImageryProvider
from .community import apply_corroboration, reconcile_store, week_bounds
from .monitoring import SiteResult, run_site, watch_area
from .outputs import OutputFolder
from .review import (
    FIELD_VERDICTS, apply_feedback, closed_by_check, confirmed_sites, copies_of_one_dig, field_checks, judged_elsewhere,
    latest_labels, own_judgements, supersede, suppression_zones,
)
from .store import OPEN_STATUSES, Store, disturbed_before, evidence_summary, open_or_seen, sqlite_file

CONFIDENCE_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 3.0}
CONFIRMED_SITE_WEIGHT = 1.5
SENSITIVITY_WEIGHT = {"public": 1.0, "restricted": 1.5, "secret": 2.0}


def iso_week(day: pd.Timestamp) -> str:
    y, w, _ = pd.Timestamp(day).isocalendar()
    return f"{y}-W{w:02d}"


def weeks_between(start, end) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """ISO weeks (label, Monday, Sunday) overlapping [start, end]."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    monday = start - pd.Timedelta(days=start.weekday())
    out = []
    while monday <= end:
        out.append((iso_week(monday), monday, monday + pd.Timedelta(days=6)))
        monday += pd.Timedelta(days=7)
    return out


def site_params(store: Store, site_id: str, params: DetectorParams) -> DetectorParams:
    """The detector settings for one site: a calibrated threshold (``sitewatch calibrate``) wins."""
    thr = store.site_thresholds().get(site_id)
    return replace(params, threshold=thr) if thr else params


def new_run_id() -> str:
    return f"run-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def monitor_site(site: Site, provider: ImageryProvider, since: str, end: str,
                 params: DetectorParams = DetectorParams(), state: bytes | None = None) -> SiteResult:
    """One site: imagery from ``since`` minus the history, detection from ``since`` to ``end``,
    resuming the stored detector ``state`` where it still applies."""
    return run_site(site, provider, pd.Timestamp(since), pd.Timestamp(end), params, state=state)


def provider_failed(site_id: str, exc: Exception) -> SiteResult:
    """A site whose imagery could not be fetched, after the provider's (and the task's) retries:
    the run goes on for the others, and nothing is recorded for this site's weeks, so the next
    run or catch-up asks again."""
    return SiteResult(site_id, status="provider_error",
                      message=f"the imagery archive failed ({exc}); this week will be asked again on the next run")


def give_up_if_all_failed(results: list[SiteResult]) -> None:
    """When every site's fetch failed (the network or the archive is down) there is nothing to
    report: the run fails with the provider's error, as before."""
    if results and all(r.status == "provider_error" for r in results):
        raise TransientProviderError(results[0].message)


def record_results(store: Store, run_id: str, provider: str, results: list[SiteResult], start, end,
                   weeks: bool = True) -> dict:
    """Write one run's results; idempotent per site-week and per detection.  ``weeks`` off (the
    daily quick look: a few days of a week) records no site-week, so the week stays due for the
    weekly run."""
    counts = {"new": 0, "updated": 0, "unchanged": 0, "acquisitions_new": 0, "looks_scored": 0, "superseded": [],
              "judged_elsewhere": []}
    week_rows, new_ids = [], []
    counts["suppressed"] = []
    counts["unreadable"] = {r.site_id: r.unreadable for r in results if r.unreadable}
    zones = None  # the labelled false positives' zones, read once a run (and again after a label is carried)
    for r in results:
        c = store.upsert_detections(r.detections, run_id)
        counts["new"] += c["new"]
        counts["updated"] += c["updated"]
        counts["unchanged"] += c["unchanged"]
        if r.status == "ok":
            replaced = supersede(store, r.site_id, [d.detection_id for d in r.detections],
                                 str(pd.Timestamp(end).date()))
            counts["superseded"] += replaced
            zones = None if replaced else zones  # a label carried to a new id is a zone there
        new_ids += c["new_ids"]
        store.save_chips(r.chips)
        if r.state is not None:
            store.save_site_state(r.site_id, r.state)
        counts["looks_scored"] += r.looks_scored
        if r.detections:
            zones = suppression_zones(store) if zones is None else zones
            counts["suppressed"] += apply_feedback(store, [d.detection_id for d in r.detections], zones)
        counts["acquisitions_new"] += store.record_acquisitions(r.site_id, provider, r.acquisitions, run_id)
        if r.status == "provider_error" or not weeks:
            continue  # no site-week: the week stays pending for this site
        for label, monday, sunday in weeks_between(start, end):
            looks = {d: f for d, f in r.clear_looks.items() if monday <= pd.Timestamp(d) <= sunday}
            clear = sum(1 for f in looks.values() if f >= 0.5)
            status = r.status if r.status != "ok" else ("observed" if clear else ("all_cloud" if looks else "no_acquisition"))
            week_rows.append({"site_id": r.site_id, "week": label, "run_id": run_id, "status": status,
                              "looks": len(looks), "clear_looks": clear})
    store.record_site_weeks(week_rows)
    # a new id for a dig the store knew under another (merged sites, a re-dated onset) is an update, not news
    replacing = {d for _, d in counts["superseded"] if d} & set(new_ids)
    counts["new"] -= len(replacing)
    counts["updated"] += len(replacing)
    # a dig another site has on record (a split site's parts, overlapping buffers): its judgement, and no news
    counts["judged_elsewhere"] = judged_elsewhere(store, [d.detection_id for r in results for d in r.detections])
    counts["new"] -= len({d for d, _ in counts["judged_elsewhere"]} & set(new_ids) - replacing)
    return counts


def _map_detections(frame: pd.DataFrame, week_start: pd.Timestamp,
                    checks: dict[str, dict] | None = None) -> list[MapDetection]:
    checks = checks or {}
    return [
        MapDetection(r.detection_id, r.site_id, wkt.loads(r.geometry_wkt), r.first_seen, r.last_seen,
                     r.confirmed_on, float(r.score), r.confidence, float(r.area_m2), r.kind_hint, r.status,
                     pd.Timestamp(r.confirmed_on) >= week_start, int(r.n_looks),
                     disturbed_before(r.evidence), evidence_summary(r.evidence),
                     field_check_said(checks[r.detection_id]["visited_on"], checks[r.detection_id]["label"])
                     if r.detection_id in checks else "")
        for r in frame.itertuples()
    ]


def period_detections(store: Store, sites: list[Site], start, end, closed: set[str] | None = None) -> pd.DataFrame:
    """Detections known by ``end`` that were still seen on or after ``start``, and every open one
    (:func:`pipelines.store.open_or_seen`): a dig not yet visited stays on the week's map and in
    its field pack through a week of cloud or a winter, until a verdict closes it.  (Before, a
    week without a clear look emptied the map and the rangers' pack.)  ``closed`` are the ids a
    ranger's check closed by ``end`` (:func:`pipelines.review.closed_by_check`; found if None)."""
    frame = store.detections([s.site_id for s in sites])
    if frame.empty:
        return frame
    closed = closed_by_check(store, until=end) if closed is None else closed
    return frame[open_or_seen(frame, start, end, closed)].reset_index(drop=True)


SAME_OUTLINE_IOU = 0.5
"""Two outlines are taken for one site's when they share at least half of what they cover
together (intersection over union): a redrawn outline moves an edge, another site does not."""


def same_outlines(store: Store, sites: list[Site]) -> dict[str, list[str]]:
    """Sites the store watched that ``sites`` (a registry) lack → the sites of ``sites`` that no
    run watched together with them (two sites of one registry are two sites; a catch-up may watch a
    new id over weeks the old one was watched in, in later runs) and that have their outline
    (:data:`SAME_OUTLINE_IOU`), for ``sitewatch sites rename``: one site (the same site under a new
    id), several side by side, each mostly inside it (the site split in parts), or one that
    several are mostly inside (sites merged; each of them → that one).  The closest answers
    first; each site is in one answer."""
    ids = {s.site_id for s in sites}
    runs: dict[str, set] = {}
    for w in store.site_weeks():
        runs.setdefault(w["site_id"], set()).add(w["run_id"])
    gone = [s for s in store.sites() if s.site_id in runs and s.site_id not in ids]
    if not gone or not sites:
        return {}

    def iou(a, b) -> float:
        union = a.union(b).area
        return a.intersection(b).area / union if union > 0 else 0.0

    def inside(small, big) -> bool:  # mostly inside
        return small.area > 0 and small.intersection(big).area >= 0.5 * small.area

    def apart(old: Site, new: Site) -> bool:
        return not runs.get(new.site_id, set()) & runs[old.site_id]

    tree = STRtree([s.geometry for s in sites])  # a whole registry re-coded: thousands against thousands
    options = []
    by_new: dict[str, list[Site]] = {}
    for old in gone:
        near = [s for s in (sites[i] for i in tree.query(old.geometry, predicate="intersects")) if apart(old, s)]
        options += [(iou(old.geometry, s.geometry), [old.site_id], [s.site_id]) for s in near]
        parts = [s for s in near if inside(s.geometry, old.geometry)]
        if len(parts) > 1 and not any(inside(a.geometry, b.geometry) or inside(b.geometry, a.geometry)
                                      for i, a in enumerate(parts) for b in parts[i + 1:]):  # parts, side by side
            options.append((iou(old.geometry, unary_union([s.geometry for s in parts])), [old.site_id],
                            [s.site_id for s in parts]))
        for s in near:
            if inside(old.geometry, s.geometry):
                by_new.setdefault(s.site_id, []).append(old)
    new_of = {s.site_id: s for s in sites}
    for new, olds in by_new.items():
        if len(olds) > 1:
            options.append((iou(new_of[new].geometry, unary_union([o.geometry for o in olds])),
                            [o.site_id for o in olds], [new]))
    out: dict[str, list[str]] = {}
    used: set[str] = set()
    for score, olds, news in sorted(options, key=lambda o: (-o[0], len(o[1]) + len(o[2]))):
        if score >= SAME_OUTLINE_IOU and not (set(olds) & set(out)) and not (set(news) & used):
            out.update({o: news for o in olds})
            used.update(news)
    return out


def left_out_warning(summary: dict) -> list[str]:
    """What a run says of the sites an earlier run watched that its registry lacks (from its
    ``summary.json``; named only at the output's level): in the first week one is missing, and
    while places there wait for the rangers."""
    named = summary.get("sites_not_in_registry", [])
    hidden = summary.get("sites_not_in_registry_not_named", 0)
    if not summary.get("sites_not_in_registry_news"):
        return []  # retired before, nothing waiting there: in the summary, not said every week
    waiting = sum(g["to_visit"] for g in named)
    line = (f"warning: {len(named) + hidden} site(s) watched before are not in this registry"
            + (f" ({', '.join(g['site_id'] for g in named)}{' and others' if hidden else ''})" if named else "")
            + ": not watched this week" + (f"; {waiting} place(s) there waiting for the rangers are not on the map "
                                           "or in the field pack" if waiting else "")
            + " (see summary.html; put them back in the registry file unless they were retired; a site whose id "
              "changed: `sitewatch sites rename OLD NEW`)")
    return [line, *same_outline_lines({g["site_id"]: g["same_outline_as"].split(", ")
                                       for g in named if g.get("same_outline_as")})]


def same_outline_lines(pairs: dict[str, list[str]], limit: int = 10) -> list[str]:
    """The renames, splits and merges :func:`same_outlines` proposes, as commands to type."""
    merged: dict[str, list[str]] = {}
    for old, news in pairs.items():
        if len(news) == 1 and sum(n == news for n in pairs.values()) > 1:
            merged.setdefault(news[0], []).append(old)
    lines, said = [], set()
    for old, news in pairs.items():
        if old in said:
            continue
        if len(news) > 1:
            lines.append(f"  {old}'s outline is that of {' and '.join(news)} together in this registry: if the site "
                         f"was split, `sitewatch sites rename {old} {' '.join(news)}` before the next run")
        elif news[0] in merged:
            olds = merged[news[0]]
            lines.append(f"  the outlines of {' and '.join(olds)} together are {news[0]}'s in this registry: if the "
                         "sites were merged, " + " and ".join(f"`sitewatch sites rename {o} {news[0]}`" for o in olds)
                         + " before the next run")
            said.update(olds)
        else:
            lines.append(f"  {old}'s outline is {news[0]}'s in this registry: if it is the same site, "
                         f"`sitewatch sites rename {old} {news[0]}` before the next run")
    if len(lines) > limit:
        lines = [*lines[:limit], f"  and {len(lines) - limit} more such site(s): rename them with "
                                 "`sitewatch sites rename --from FILE`"]
    return lines


def left_out_sites(store: Store, registry: set[str], start, end, closed: set[str]) -> list[dict]:
    """Sites the store watched in earlier runs that this run's registry does not hold, with how
    many of their places still wait for the rangers.  They are not watched this week and those
    places are not on its map or in its field pack: said, so a registry exported with a filter (one
    province, one period) does not drop sites and open digs without a word.  ``newly``: it was
    watched up to the week before this run's period (a site retired long ago is not news).
    ``registry``: the site ids of the registry file (a run of part of it, as the daily quick look
    of the secret sites is, leaves none of the rest out)."""
    ids = set(registry)
    last: dict[str, str] = {}  # a site imported (`sites import`) but never run was not watched
    for w in store.site_weeks():
        if w["site_id"] not in ids and w["week"] > last.get(w["site_id"], ""):
            last[w["site_id"]] = w["week"]
    gone = [s for s in store.sites() if s.site_id in last]
    if not gone:
        return []
    frame = store.detections([s.site_id for s in gone])
    waiting = (frame[open_or_seen(frame, start, end, closed) & ~frame.detection_id.isin(list(closed))]
               .groupby("site_id").size().to_dict() if not frame.empty else {})
    before = iso_week(pd.Timestamp(start) - pd.Timedelta(days=7))
    return [{"site_id": s.site_id, "name": s.name, "region": s.region, "sensitivity": s.sensitivity,
             "last_watched_week": last[s.site_id], "newly": last[s.site_id] >= before,
             "to_visit": int(waiting.get(s.site_id, 0))} for s in gone]


COMPANION_WEEKS = 4
"""Another deployment's detections shown on this map: those it saw in the four weeks to this
week's end (it may run on another day, or later on the same Monday)."""


def companion_detections(companions: dict[str, str] | None, sites: list[Site], end,
                         former: dict[str, list[str]] | None = None) -> tuple[dict, dict]:
    """Other deployments' open detections at ``sites`` (label → store URL or SQLite path; a radar
    watch beside the optical one), for the map: ({label: [MapDetection]}, {label: what it gave}).
    A store that is not there or cannot be read is said in the second, not raised: this week's
    own map does not wait on another deployment.  ``former`` (this store's renamed sites' former
    ids → their ids now, a split site's → its parts'): a companion store not renamed with it still
    shows its detections at those sites, under their new ids (a split site's at the part that
    holds them), and ``not_renamed`` lists the pairs (old, new)."""
    ids = {s.site_id for s in sites}
    renamed = {old: [n for n in nows if n in ids] for old, nows in (former or {}).items()}
    renamed = {old: nows for old, nows in renamed.items() if nows}
    areas = {s.site_id: watch_area(s) for s in sites if any(s.site_id in nows for nows in renamed.values())}
    shown: dict[str, list[MapDetection]] = {}
    said: dict[str, dict] = {}
    window = pd.Timestamp(end).normalize() - pd.Timedelta(weeks=COMPANION_WEEKS) + pd.Timedelta(days=1)
    for label, db in (companions or {}).items():
        file = sqlite_file(db)
        if file is not None and not file.is_file():  # not made here
            said[label] = {"error": f"no store at {db}"}
            continue
        try:
            other = Store(db)
            theirs = {s.site_id for s in other.sites()} if renamed else set()
            stale = {old: nows for old, nows in renamed.items() if old in theirs}
            by_id = {s.site_id: s for s in sites}
            frame = period_detections(other, [*sites, *(replace(by_id[nows[0]], site_id=old)
                                                         for old, nows in stale.items())], window, end)
        except SQLAlchemyError as exc:
            said[label] = {"error": f"cannot read the store at {db} ({type(exc).__name__})"}
            continue
        if stale and not frame.empty:
            frame = frame.assign(site_id=[
                holder(wkt.loads(g), {n: areas[n] for n in stale[sid]})[0] if sid in stale else sid
                for sid, g in zip(frame.site_id, frame.geometry_wkt)])
        shown[label] = _map_detections(frame, window)
        said[label] = {"open": len(shown[label]), "seen_since": str(window.date()),
                       **({"not_renamed": [[old, n] for old, nows in sorted(stale.items()) for n in nows]}
                          if stale else {})}
    return shown, said


def priority(det: MapDetection, site: Site | None, confirmed_sites: set[str] = frozenset()) -> float:
    """confidence × √area(ha) × site sensitivity, × 1.5 where looting was confirmed at the site before."""
    sens = SENSITIVITY_WEIGHT.get(site.sensitivity if site else "restricted", 1.0)
    seen = CONFIRMED_SITE_WEIGHT if det.site_id in confirmed_sites else 1.0
    return round(CONFIDENCE_WEIGHT.get(det.confidence, 1.0) * (det.area_m2 / 10_000.0) ** 0.5 * sens * seen, 3)


@dataclass
class Outputs:
    detections_geojson: Path
    map_html: Path
    summary_json: Path
    field_dir: Path
    kept_edited: list[Path] = field(default_factory=list)
    """Files of the folder's last run that were changed since (verdicts filled in), kept renamed."""


WEEKLY_OUTPUTS = ("map.html", "map_offline.html", "detections.geojson", "summary.json", "summary.html", "chips",
                  "swipe", "field")
"""What :func:`write_outputs` writes into its folder (and clears of its last run's files first)."""


def _write_detections(dets: list[MapDetection], by_id: dict[str, Site], access: str, path: Path) -> Path:
    """detections.geojson at the output's access level (generalised where the reader may not see)."""
    features = []
    for d in dets:
        site = by_id.get(d.site_id)
        exact = site is not None and may_see_exact(site.sensitivity, access)
        geom = d.geometry if exact else generalise(d.geometry)
        c = geom.centroid
        features.append({"type": "Feature", "geometry": mapping(geom), "properties": {
            "detection_id": d.detection_id, "site_id": d.site_id, "first_seen": d.first_seen,
            "last_seen": d.last_seen if exact else None, "confirmed_on": d.confirmed_on, "score": d.score,
            "confidence": d.confidence, "area_m2": d.area_m2, "kind_hint": d.kind_hint, "status": d.status,
            "new_this_week": d.new_this_week, "lat": round(c.y, 6), "lon": round(c.x, 6),
            "mgrs": to_mgrs(c.y, c.x) if exact else None, "location_generalised": not exact,
            "access_level": access,
        }})
    path.write_text(json.dumps({"type": "FeatureCollection", "access_level": access, "features": features}, indent=1),
                    encoding="utf-8")
    return path


def last_clear_looks(store: Store, sites: list[Site], results: list[SiteResult], end) -> dict[str, dict]:
    """Per site, when the satellites last saw it (at least half of it usable) by ``end``, and how
    many days ago: from this run's imagery (history included), else from the weeks recorded in the
    store (``week …``; the days then count from that week's Sunday, a lower bound)."""
    end = pd.Timestamp(end).normalize()
    by_site = {r.site_id: r for r in results}
    weeks: dict[str, str] = {}
    for w in store.site_weeks():
        if (w.get("clear_looks") or 0) > 0 and w["week"] <= iso_week(end) and w["week"] > weeks.get(w["site_id"], ""):
            weeks[w["site_id"]] = w["week"]
    out = {}
    for s in sites:
        r = by_site.get(s.site_id)
        if r is not None and r.last_clear:
            out[s.site_id] = {"last_clear_look": r.last_clear, "days": int((end - pd.Timestamp(r.last_clear)).days)}
        elif s.site_id in weeks:
            sunday = pd.Timestamp(week_bounds(weeks[s.site_id])[1])
            out[s.site_id] = {"last_clear_look": Said(N_("week {week}"), week=weeks[s.site_id]),
                              "days": max(0, int((end - sunday).days))}
        else:
            out[s.site_id] = {"last_clear_look": None, "days": None}
    return out


def seen_text(seen: dict) -> Said:
    """When a site last had a clear look, said for people (in any language, :class:`maps.language.Said`)."""
    if not seen or seen.get("last_clear_look") is None:
        return Said(N_("no clear look in the imagery read"))
    days = seen["days"]
    ago = (Said(N_("the period's last day")) if days == 0 else Said(N_("1 day before the period's end")) if days == 1
           else Said(N_("{days} days before the period's end"), days=days))
    return Said("{date} ({ago})", date=seen["last_clear_look"], ago=ago)


def _unobserved(sites: list[Site], results: list[SiteResult], week_start: pd.Timestamp) -> dict[str, str]:
    """Sites with no mostly-clear look in the week, and why (said in any language, a provider's error as it is)."""
    results_by_site = {r.site_id: r for r in results}
    unobserved = {}
    for s in sites:
        r = results_by_site.get(s.site_id)
        week_looks = {d: f for d, f in (r.clear_looks.items() if r else []) if pd.Timestamp(d) >= week_start}
        if r is None or r.status != "ok" or not any(f >= 0.5 for f in week_looks.values()):
            lost = [u["item"] for u in (r.unreadable if r else []) if pd.Timestamp(u["date"]) >= week_start]
            reason = (r.message if r and r.status != "ok" else
                      Said(N_("all looks cloudy")) if week_looks else Said(N_("no acquisition this week")))
            if lost and (r is None or r.status == "ok"):
                reason = Said(N_("{reason}; {n} acquisition(s) could not be read ({items})"), reason=reason,
                              n=len(lost), items=", ".join(lost))
            unobserved[s.site_id] = reason
    return unobserved


def _write_field(dets: list[MapDetection], by_id: dict[str, Site], access: str, field_dir: Path,
                 chip_html: dict[str, str], base: tuple[float, float] | None,
                 verdict_words: dict[str, str] | None = None, words: NullTranslations = ENGLISH_WORDS) -> None:
    """Field packs (all, and per region) and one printable sheet per detection; ``verdict_words``
    are the unit's own words for the verdicts (``sitewatch verdicts words``), ``words`` the
    language of the papers (:mod:`maps.language`)."""
    verdict_words = verdict_words or {}
    offered = tuple(w for w, v in verdict_words.items() if v in FIELD_VERDICTS)
    waypoints_by_region: dict[str, list[Waypoint]] = {}
    for d in dets:
        site = by_id.get(d.site_id)
        if site is None or not may_see_exact(site.sensitivity, access):
            continue  # a field pack is for going there: only exact, authorised locations
        c = d.geometry.representative_point()
        wp = Waypoint(d.detection_id, site.name, c.y, c.x, d.first_seen, d.confidence, d.area_m2,
                      phrase(words, "check for fresh digging ({kind})", kind=kind_words(words, d.kind_hint)))
        waypoints_by_region.setdefault(site.region or "all", []).append(wp)
        write_sheet(detection_sheet(d, site.name, wp.lat, wp.lon, wp.mgrs, chip_html.get(d.detection_id, ""), access,
                                    verdict_words=verdict_words, words=words),
                    field_dir / "sheets", d.detection_id)
    all_wps = [w for ws in waypoints_by_region.values() for w in ws]
    write_field_pack(all_wps, field_dir, "field_pack", base, access, offered, words)
    folders = region_folders([r for r in waypoints_by_region if r != "all"])
    for region, wps in waypoints_by_region.items():
        if region != "all" and len(waypoints_by_region) > 1:
            write_field_pack(wps, field_dir / folders[region], "field_pack", base, access, offered, words)


def write_outputs(
    store: Store, sites: list[Site], results: list[SiteResult], start, end, out_dir: str | Path,
    access: str = "restricted", run_id: str = "", base: tuple[float, float] | None = None,
    blind_days: int = BLIND_DAYS, companions: dict[str, str] | None = None, registry: set[str] | None = None,
    language: str = "en",
) -> Outputs:
    """detections.geojson, map.html, field/ and summary.json for the period's last week (the map's
    labels, the field sheets and the waypoints in ``language``, :mod:`maps.language`); sites
    without a clear look for ``blind_days`` or more are listed as blind; ``companions`` (label →
    store) are other deployments whose open detections the maps show beside this one's; ``registry``
    the site ids of the whole registry when ``sites`` are part of it (:func:`left_out_sites`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder = OutputFolder(out, WEEKLY_OUTPUTS, access, level_file="summary.json")
    kept = folder.begin()
    by_id = {s.site_id: s for s in sites}
    week_label, week_start, _ = weeks_between(start, end)[-1]
    lookback = max(120, (pd.Timestamp(end) - pd.Timestamp(start)).days)
    recon, map_reports = _reconciliation(store, week_label, lookback,  # first: corroboration raises confidence
                                         {s.site_id for s in sites} | set(registry or ()))
    # the rangers' errands: places nobody has checked, or reported (or doubted) since the last check
    closed = closed_by_check(store, until=end)
    dets = _map_detections(period_detections(store, sites, start, end, closed), week_start, field_checks(store))
    to_visit = {d.detection_id for d in dets} - closed
    # a dig two sites see (a split site's halves, overlapping buffers) is one waypoint
    copies = copies_of_one_dig([d for d in dets if d.detection_id in to_visit], own_judgements(store),
                               {s.site_id: s.geometry for s in sites})
    to_visit -= set(copies)
    dets = [replace(d, same_dig_as=copies[d.detection_id]) if d.detection_id in copies else d for d in dets]

    det_path = _write_detections(dets, by_id, access, out / "detections.geojson")
    all_unobserved = _unobserved(sites, results, week_start)
    # That a site is not being seen, and since when, tells a looter when to go there: it is named
    # only where this output's reader may see the site exactly, and counted elsewhere.
    exact = {s.site_id for s in sites if may_see_exact(s.sensitivity, access)}
    unobserved = {k: v for k, v in all_unobserved.items() if k in exact}
    seen = last_clear_looks(store, sites, results, end)
    all_blind = [s for s in sites if seen[s.site_id]["days"] is None or seen[s.site_id]["days"] >= blind_days]
    blind = sorted(({"site_id": s.site_id, "name": s.name, "region": s.region, **seen[s.site_id]}
                    for s in all_blind if s.site_id in exact),
                   key=lambda b: -(b["days"] if b["days"] is not None else 10**6))
    # Imagery chips show the place: only for sites this output's reader may see exactly.
    visible = {r.site_id for r in results if r.site_id in by_id and may_see_exact(by_id[r.site_id].sensitivity, access)}
    all_left_out = left_out_sites(store, {s.site_id for s in sites} | set(registry or ()), start, end, closed)
    renamed = {old: ", ".join(news) for old, news in same_outlines(store, sites).items()
               if all(may_see_exact(by_id[n].sensitivity, access) for n in news)}
    left_out = [{**{k: v for k, v in g.items() if k != "sensitivity"}, "same_outline_as": renamed.get(g["site_id"], "")}
                for g in all_left_out if may_see_exact(g["sensitivity"], access)]
    chips = {k: c for r in results if r.site_id in visible for k, c in r.chips.items()}
    # a dig older than the imagery a resumed run reads (its history years) keeps the chips made
    # when its before-look was in reach (pipelines.monitoring.run_site)
    for d in dets:
        if d.detection_id not in chips and d.site_id in visible:
            stored = store.chips(d.detection_id)
            if stored is not None:
                chips[d.detection_id] = stored
    _write_chips(chips, out / "chips")
    names = {d.detection_id: by_id[d.site_id].name for d in dets if d.site_id in by_id}
    chip_html = {}
    words = words_for(language)
    swipe_link = text(words.gettext("before/after swipe view"))
    for k, c in chips.items():
        if k in names:
            write_swipe(out / "swipe", k, names[k], c, words)
            chip_html[k] = c.html(words) + (f"<p><a href='swipe/{text(file_name(k))}.html' target='_blank'>"
                                            f"{swipe_link}</a></p>")
    # The site's own imagery as a base layer where there is something to look at (keeps a national
    # map small): sites with an open detection, visible exactly to this reader.
    with_dets = {d.site_id for d in dets}
    overviews = [ov for r in results if r.overview is not None and r.site_id in visible & with_dets
                 for ov in (r.overview, *r.more_overviews)]
    verdicts = _verdicts(store, sites, end, week_start)
    last_seen = {k: seen_text(v) for k, v in seen.items() if k in exact}
    others, companion_said = companion_detections(companions, sites, end, store.former_site_ids())
    for got in companion_said.values():  # a site's ids, where this output's reader may see the site
        if "not_renamed" in got:
            got["not_renamed"] = [p for p in got["not_renamed"] if may_see_exact(by_id[p[1]].sensitivity, access)]
    m = weekly_map(sites, dets, week_label, unobserved, access, chips=chip_html, reports=map_reports,
                   overviews=overviews, verdicts=verdicts, last_seen=last_seen, companions=others, words=words)
    map_path = save_map(m, out / "map.html")
    offline = weekly_map(sites, dets, week_label, unobserved, access, chips=chip_html, reports=map_reports,
                         overviews=overviews, offline=True, verdicts=verdicts, last_seen=last_seen, companions=others,
                         words=words)
    save_map(offline, out / "map_offline.html", offline=True)

    field_dir = out / "field"
    _write_field([d for d in dets if d.detection_id in to_visit], by_id, access, field_dir, chip_html, base,
                 store.verdict_words(), words)

    hot = confirmed_sites(store)
    # whether a ranger has been is patrol knowledge: said (and ranked by) only where the reader sees the site
    visit = {d.detection_id: d.detection_id in to_visit if d.site_id in exact else None for d in dets}
    ranked = sorted(dets, key=lambda d: (visit[d.detection_id] is False, -priority(d, by_id.get(d.site_id), hot)))
    summary = {
        "run_id": run_id, "period": {"start": str(pd.Timestamp(start).date()), "end": str(pd.Timestamp(end).date())},
        "week": week_label, "access_level": access,
        "sites": len(sites), "sites_observed_this_week": len(sites) - len(all_unobserved),
        "not_observed_not_named": len(all_unobserved) - len(unobserved),
        "not_observed_this_week": [{"site_id": k, "name": by_id[k].name, "reason": v,
                                    "last_clear_look": seen[k]["last_clear_look"], "days_without_clear_look": seen[k]["days"]}
                                   for k, v in unobserved.items()],
        "blind_days": blind_days,
        "blind_sites": [{"site_id": b["site_id"], "name": b["name"], "region": b["region"],
                         "last_clear_look": b["last_clear_look"], "days_without_clear_look": b["days"]} for b in blind],
        "blind_sites_not_named": len(all_blind) - len(blind),
        "sites_not_in_registry": left_out, "sites_not_in_registry_not_named": len(all_left_out) - len(left_out),
        # to be said by the run: a site dropped since the last week, or one with places still waiting
        "sites_not_in_registry_news": any(g["newly"] or g["to_visit"] for g in all_left_out),
        **({"companions": companion_said} if companion_said else {}),
        "detections_shown": len(dets), "detections_open": sum(d.status in OPEN_STATUSES for d in dets),
        "detections_to_visit": sum(v is True for v in visit.values()), "detections_new_this_week": sum(d.new_this_week for d in dets),
        "by_confidence": {c: sum(d.confidence == c for d in dets) for c in ("high", "medium", "low")},
        "by_region": _count_by_region(dets, by_id),
        "ranked": [{"detection_id": d.detection_id, "site_id": d.site_id,
                    "site_name": by_id[d.site_id].name if d.site_id in by_id else "",
                    "priority": priority(d, by_id.get(d.site_id), hot),
                    "confidence": d.confidence, "area_m2": d.area_m2, "first_seen": d.first_seen,
                    "new_this_week": d.new_this_week, "status": d.status, "to_visit": visit[d.detection_id],
                    # another site's waypoint stands for this dig
                    "same_dig_as": copies.get(d.detection_id) if d.site_id in exact else None,
                    # when the rangers went is patrol knowledge: only where the reader sees the site
                    "field_check": (d.field_check or None) if d.site_id in exact else None} for d in ranked],
        "acquisitions_unreadable": _unreadable(results),
        "reconciliation": {o: sum(i.outcome == o for i in recon) for o in OUTCOMES},
        "annotations": _annotation_stats(store),
        "reconciliation_items": [
            {"outcome": i.outcome, "report_id": i.report_id, "detection_id": i.detection_id, "site_id": i.site_id,
             "distance_m": i.distance_m, "days_apart": i.days_apart, "reason": i.reason, "action": i.action,
             "field_check": i.field_check if i.site_id in exact else None}
            for i in recon],
    }
    sum_path = out / "summary.json"
    sum_path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    (out / "summary.html").write_text(summary_html(summary, words), encoding="utf-8")
    folder.finish()
    return Outputs(det_path, map_path, sum_path, field_dir, kept)


def _unreadable(results: list[SiteResult]) -> list[dict]:
    """Acquisitions left out of this run because an asset could not be read, and how many sites lost them."""
    out: dict[str, dict] = {}
    for r in results:
        for u in r.unreadable:
            entry = out.setdefault(u["item"], {"item": u["item"], "date": u["date"], "asset": u["asset"],
                                               "error": u["error"], "sites": 0})
            entry["sites"] += 1
    return sorted(out.values(), key=lambda e: (e["date"], e["item"]))


def _reconciliation(store: Store, week_label: str, lookback_days: int, registry: set[str]):
    """Reconcile this week's reports (if any) and raise corroborated detections' confidence."""
    if not store.reports():
        return [], []
    items = reconcile_store(store, week_label, lookback_days, registry)
    apply_corroboration(store, items)
    texts = {r.report_id: r for r in store.reports()}
    shown = [MapReport(i.report_id, i.lat, i.lon, str(texts[i.report_id].observed_on), texts[i.report_id].text,
                       i.outcome, i.site_id, i.reason, i.action) for i in items if i.report_id]
    return items, shown


COLUMN_WORDS = {k: k for k in (
    N_("detection_id"), N_("site_id"), N_("site_name"), N_("priority"), N_("confidence"), N_("area_m2"),
    N_("first_seen"), N_("new_this_week"), N_("to_visit"), N_("same_dig_as"), N_("field_check"), N_("name"),
    N_("reason"), N_("last_clear_look"), N_("region"), N_("days_without_clear_look"), N_("last_watched_week"),
    N_("same_outline_as"), N_("item"), N_("date"), N_("asset"), N_("sites"), N_("error"), N_("outcome"),
    N_("report_id"), N_("distance_m"), N_("days_apart"), N_("action"))}
"""The summary page's column names (``summary.json``'s keys), translated on the page only."""


def summary_html(summary: dict, words: NullTranslations = ENGLISH_WORDS) -> str:
    """The weekly summary as a printable page in ``words``' language (:mod:`maps.language`; the
    data, and ``summary.json``, as they are); every data string escaped."""
    from html import escape

    from maps.escape import text as esc

    _ = words.gettext

    def prose(said):  # a sentence of the page, not data: element content, where quotes need no escaping
        return escape(said, quote=False)

    def rows(items, cols):
        head = "".join(f"<th>{esc(_(COLUMN_WORDS[c]))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{esc(cell(c, i.get(c, '')))}</td>" for c in cols) + "</tr>"
                       for i in items)
        return (f"<table border='1' cellspacing='0' cellpadding='3'><tr>{head}</tr>{body}</table>" if items
                else f"<p>{nothing}</p>")

    def unnamed(n):
        said = phrase(words, "and {n} site(s) above this output's access level, not named here (when a site is not "
                      "seen tells a looter when to go)", n=n)
        return f"<p>{prose(said)}</p>" if n else ""

    def para(said):
        return f"<p>{prose(said)}</p>"

    def cell(column, value):  # codes and sentences in words; ids, names, numbers and dates as they are
        value = say(words, yes_no(words, value))
        if column == "confidence":
            return confidence_words(words, value) if value else value
        return outcome_words(words, value) if column == "outcome" and value else value

    nothing = esc(_("none"))

    conf = ", ".join(f"{confidence_words(words, k)}: {v}" for k, v in summary["by_confidence"].items())
    regions = ", ".join(f"{esc(k)}: {v}" for k, v in summary["by_region"].items()) or nothing
    recon = ", ".join(f"{esc(outcome_words(words, k))}: {v}" for k, v in summary.get("reconciliation", {}).items())
    period = phrase(words, "Period {start} to {end} · access level {level} · {observed} of {sites} sites observed this "
                    "week · {shown} detections shown ({by_confidence}): {new} new, {open} without a verdict, {visit} for "
                    "the rangers (field pack)", start=summary['period']['start'], end=summary['period']['end'],
                    level="{level}", observed=summary['sites_observed_this_week'], sites=summary['sites'],
                    shown=summary['detections_shown'], by_confidence=conf,
                    new=summary['detections_new_this_week'], open=summary['detections_open'],
                    visit=summary['detections_to_visit'])
    level = access_words(words, summary["access_level"])
    title, heading = _("sitewatch weekly summary"), phrase(words, "sitewatch — week {week}", week=summary["week"])
    blind = phrase(words, "Sites not seen for {days} days or more", days=summary.get("blind_days"))
    h = {"ranked": _("Detections by priority"), "unobserved": _("Sites not observed this week"),
         "not_in_registry": _("Sites watched before but not in this registry"),
         "unreadable": _("Acquisitions that could not be read"), "regions": _("Per region"),
         "reports": _("Community reports"), "none": _("no reports")}
    h = {k: esc(v) for k, v in h.items()}
    return (
        f"<!DOCTYPE html><html lang='{esc(words.info().get('language', 'en'))}'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title>"
        "<style>body{font:14px sans-serif;margin:2em}td,th{font-size:13px}</style></head><body>"
        f"<h1>{esc(heading)}</h1><p>{esc(period).replace(esc('{level}'), '<b>' + esc(level) + '</b>')}</p>"
        f"<h2>{h['ranked']}</h2>"
        + para(_("Places for the rangers first (nobody has checked them, or a report or a doubt came after the last "
                 "check), then those checked in the field. A dig two sites see is one place: same_dig_as names the "
                 "detection whose waypoint stands for it."))
        + rows(summary['ranked'], ['detection_id', 'site_id', 'site_name', 'priority', 'confidence', 'area_m2',
                                   'first_seen', 'new_this_week', 'to_visit', 'same_dig_as', 'field_check'])
        + f"<h2>{h['unobserved']}</h2>"
        + rows(summary['not_observed_this_week'], ['site_id', 'name', 'reason', 'last_clear_look'])
        + unnamed(summary.get("not_observed_not_named", 0))
        + (f"<h2>{esc(blind)}</h2>"
           + para(_("No clear look for that long: the satellites cannot tell whether the ground was dug there; send "
                    "a patrol."))
           + rows(summary['blind_sites'], ['site_id', 'name', 'region', 'last_clear_look', 'days_without_clear_look'])
           + unnamed(summary.get("blind_sites_not_named", 0))
           if summary.get("blind_sites") or summary.get("blind_sites_not_named") else "")
        + (f"<h2>{h['not_in_registry']}</h2>"
           + para(phrase(words, "Not watched this week: the places there that wait for the rangers (to_visit) are not "
                         "on this map or in the field pack. Put the sites back in the registry file, or leave them out "
                         "if they were retired. A site that has a new id, or was split or merged (same_outline_as: the "
                         "registry's sites with its outline) is renamed with {command} (OLD NEW NEW … for a split).",
                         command="{command}")).replace("{command}", "<code>sitewatch sites rename OLD NEW</code>")
           + rows(summary.get('sites_not_in_registry', []), ['site_id', 'name', 'region', 'last_watched_week',
                                                             'to_visit', 'same_outline_as'])
           + unnamed(summary.get("sites_not_in_registry_not_named", 0))
           if summary.get("sites_not_in_registry") or summary.get("sites_not_in_registry_not_named") else "")
        + (f"<h2>{h['unreadable']}</h2>"
           + para(_("Left out of this run; re-download them."))
           + rows(summary['acquisitions_unreadable'], ['item', 'date', 'asset', 'sites', 'error'])
           if summary.get("acquisitions_unreadable") else "")
        + f"<h2>{h['regions']}</h2><p>{regions}</p>"
        f"<h2>{h['reports']}</h2><p>{recon or h['none']}</p>"
        + rows(summary.get('reconciliation_items', []), ['outcome', 'report_id', 'detection_id', 'site_id',
                                                         'distance_m', 'days_apart', 'action', 'field_check'])
        + "</body></html>"
    )


def _verdicts(store: Store, sites: list[Site], end, week_start) -> list[tuple[MapDetection, str, str]]:
    """Every reviewed detection at these sites known by ``end`` (dismissed ones included), newest label."""
    labels = latest_labels(store)
    frame = store.detections([s.site_id for s in sites])
    if frame.empty or not labels:
        return []
    frame = frame[frame.detection_id.isin(list(labels))
                  & (frame.confirmed_on <= str(pd.Timestamp(end).date()))].reset_index(drop=True)
    return [(d, labels[d.detection_id]["label"], labels[d.detection_id]["author"])
            for d in _map_detections(frame, week_start)]


def _annotation_stats(store: Store) -> dict:
    labels = latest_labels(store)
    by_label: dict[str, int] = {}
    for a in labels.values():
        by_label[a["label"]] = by_label.get(a["label"], 0) + 1
    frame = store.detections()
    return {"annotated": len(labels), "by_label": by_label,
            "suppressed": int((frame.status == "suppressed").sum()) if not frame.empty else 0,
            "unreviewed_open": int(((frame.status == "open") & ~frame.detection_id.isin(list(labels))).sum())
            if not frame.empty else 0}


def _write_chips(chips: dict, folder: Path) -> None:
    if not chips:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for det_id, c in chips.items():
        name = file_name(det_id)
        (folder / f"{name}_before_{c.before_date}.png").write_bytes(c.before_png)
        (folder / f"{name}_after_{c.after_date}.png").write_bytes(c.after_png)
        (folder / f"{name}_ndvi_change.png").write_bytes(c.index_png)


def _count_by_region(dets: list[MapDetection], by_id: dict[str, Site]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in dets:
        site = by_id.get(d.site_id)
        region = (site.region if site else "") or "unassigned"
        counts[region] = counts.get(region, 0) + 1
    return counts


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")[:60] or "region"


def region_folders(regions: list[str]) -> dict[str, str]:
    """A folder name per region, one folder per region: names that would share a folder
    ("Bayan-Ölgii" and "Bayan Ölgii", "Tuv" and "TUV" on Windows or macOS, or past 60 characters)
    or take the sheets' folder get the start of their name's SHA-1, so no region's pack overwrites
    another's."""
    import hashlib

    slugs = {r: _slug(r) for r in regions}
    taken: dict[str, int] = {}
    for s in slugs.values():
        taken[s.casefold()] = taken.get(s.casefold(), 0) + 1
    return {r: (f"{s}-{hashlib.sha1(r.encode()).hexdigest()[:6]}" if taken[s.casefold()] > 1 or s.casefold() == "sheets"
                else s) for r, s in slugs.items()}


def run_period(
    store: Store, sites: list[Site], provider: ImageryProvider, start, end, out_dir,
    params: DetectorParams = DetectorParams(), access: str = "restricted", site_runner=None,
    base: tuple[float, float] | None = None, blind_days: int = BLIND_DAYS, companions: dict[str, str] | None = None,
    registry: set[str] | None = None, record_weeks: bool = True, language: str = "en",
) -> tuple[Outputs, dict]:
    """The whole weekly job without Prefect (the flow does the same with tasks and retries).
    ``record_weeks`` off: the period is not a week's run (the daily quick look), and leaves the
    weeks it touched due (:func:`record_results`)."""
    run_id = new_run_id()
    start_s, end_s = str(pd.Timestamp(start).date()), str(pd.Timestamp(end).date())
    store.start_run(run_id, start_s, end_s, provider.name)
    store.upsert_sites(sites)
    sites = store.keyed(sites)  # a renamed site's digs keep their ids
    runner = site_runner or monitor_site
    results = []
    for s in sites:
        try:
            results.append(runner(s, provider, store.monitor_since(s.site_id, start_s), end_s,
                                  site_params(store, s.site_id, params), store.site_state(s.site_id)))
        except TransientProviderError as exc:
            results.append(provider_failed(s.site_id, exc))
    give_up_if_all_failed(results)
    counts = record_results(store, run_id, provider.name, results, start, end, weeks=record_weeks)
    outputs = write_outputs(store, sites, results, start, end, out_dir, access, run_id, base, blind_days, companions,
                            registry, language)
    summary = {**counts, "sites": len(sites), "statuses": {r.site_id: r.status for r in results},
               "fetched": list(getattr(provider, "fetched", [])), "kept_edited": [str(p) for p in outputs.kept_edited]}
    store.finish_run(run_id, "completed", summary)
    return outputs, summary
