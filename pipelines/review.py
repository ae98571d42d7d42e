"""Review and field verdicts: the annotation API used by notebooks and ``sitewatch annotate``.

Annotations are append-only (author, time, label, note); the newest one decides a detection's
status, the older ones stay as history.  Annotations feed back into detection:

* a detection labelled a false positive (agriculture, natural, cloud/shadow artefact, no change)
  becomes a *suppression zone*: a later detection that lies mostly inside it and starts in the
  same season (±``SEASON_DAYS``), at that site or another that sees the same ground, is recorded
  with status ``suppressed`` and is not alerted; a new disturbance elsewhere at the site still is;
* confirmed events (looting, bulldozing, construction) raise the site's priority;
* ``calibrate`` sets a per-site threshold from the share of false positives.

Rangers' verdicts come back in bulk too: the field pack's CSV has empty ``verdict``,
``checked_on``, ``checked_by`` and ``field_note`` columns to fill in on patrol, and
:func:`import_verdicts` records each filled row as an annotation by its ranger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from shapely import STRtree, wkt
from shapely.geometry import mapping

from change_detection import DetectorParams
from maps.access import generalise, may_see_exact
from maps.escape import file_name
from maps.field_pack import FIELD_VERDICT_WORDS

from .monitoring import one_disturbance
from .store import RETIRED_STATUSES, Store

LABELS = ("looting", "bulldozing", "construction", "agriculture", "natural", "cloud/shadow artefact", "no change", "unsure")
CONFIRMED = {"looting", "bulldozing", "construction"}
FALSE_POSITIVE = {"agriculture", "natural", "cloud/shadow artefact", "no change"}
FIELD_VERDICTS = dict(zip(FIELD_VERDICT_WORDS, ("looting", "construction", "no change")))
"""A ranger's words (``confirmed looting``, ``other disturbance``, ``nothing found``; the field
pack's workbook offers them as a list) → the review label they record."""
SEASON_DAYS = 45
OVERLAP = 0.5


def verdict_label(written: str, words: dict[str, str] | None = None) -> str:
    """The review label a written verdict records: the unit's own word for a verdict (``words``,
    :func:`set_verdict_words`), a field verdict (``nothing found`` → ``no change``) or a label."""
    said = written.strip()
    said = {w.casefold(): v for w, v in (words or {}).items()}.get(said.casefold(), said.lower())
    return FIELD_VERDICTS.get(said, said)


def set_verdict_words(store: Store, pairs: list[str]) -> dict[str, str]:
    """``WORD=VERDICT`` pairs: the words the unit's rangers write for the field verdicts (or a
    review label), in their language, e.g. ``юу ч олдсонгүй=nothing found``.  They replace any set
    before; the field pack's workbook offers them in its list and its sheets beside the English
    words, and ``sitewatch verdicts import`` and ``annotate`` read them.  sitewatch translates
    nothing: the unit says what its words mean."""
    words: dict[str, str] = {}
    for pair in pairs:
        word, sep, verdict = str(pair).rpartition("=")
        word, verdict = word.strip(), verdict.strip().lower()
        if not sep or not word or not verdict:
            raise ValueError(f"{pair!r}: expected WORD=VERDICT, e.g. \"юу ч олдсонгүй=nothing found\"")
        if verdict not in FIELD_VERDICTS and verdict not in LABELS:
            raise ValueError(f"{pair!r}: {verdict!r} is not a field verdict {tuple(FIELD_VERDICTS)} or a review label {LABELS}")
        if "," in word or '"' in word:
            raise ValueError(f"{pair!r}: a word for a verdict may not hold a comma or a double quote (the workbook's list)")
        if word.casefold() in FIELD_VERDICTS or word.casefold() in LABELS:
            raise ValueError(f"{pair!r}: {word!r} already means {verdict_label(word)!r}")
        same = next((w for w in words if w.casefold() == word.casefold()), None)
        if same is not None and words[same] != verdict:
            raise ValueError(f"{word!r} is given for {words[same]!r} and for {verdict!r}")
        words[same or word] = verdict
    listed = ",".join([*words, *FIELD_VERDICTS])
    if len(listed) > 253:  # Excel keeps a drop-down list written in the cell rule to 255 characters
        raise ValueError(f"the words and the field verdicts make a list of {len(listed)} characters; a spreadsheet's "
                         "drop-down list holds 253: use shorter words")
    store.set_verdict_words(words)
    return words


def status_for(label: str) -> str:
    return "confirmed" if label in CONFIRMED else "dismissed" if label in FALSE_POSITIVE else "review"


def annotate(store: Store, detection_id: str, label: str, author: str, note: str = "",
             visited_on: date | str | None = None, today: date | None = None) -> int:
    """Append an annotation (or a ranger's field verdict) and update the detection's status.  The
    note keeps no e-mail address or phone number (an informant met in the field; with
    ``SITEWATCH_PHONE_REGION`` set, also numbers written without ``+``).  ``visited_on`` is the
    day a ranger was at the place, for a verdict from the field (:func:`field_checks`); it may
    not be in the future nor before the detection was first seen."""
    from reports.privacy import phone_region, scrub_text

    note = scrub_text(note or "", region=phone_region())
    words = store.verdict_words()
    written, label = label, verdict_label(label, words)
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS} (or a field verdict {tuple(FIELD_VERDICTS)}"
                         + (f", or the unit's words {tuple(words)}" if words else "") + f"), not {written!r}")
    if not author.strip():
        raise ValueError("an annotation needs an author")
    detection_id = store.current_id(detection_id)  # one named before its site was renamed
    frame = store.detections()
    if frame.empty or detection_id not in set(frame.detection_id):
        raise ValueError(f"no detection {detection_id!r} in the store")
    row = frame[frame.detection_id == detection_id].iloc[0]
    if visited_on is not None:
        visited_on = visited_on if isinstance(visited_on, date) else _day(str(visited_on), "the visit day")
        if visited_on > (today or datetime.now(timezone.utc).date()):
            raise ValueError(f"visited on {visited_on}: a day still to come")
        if visited_on < date.fromisoformat(str(row.first_seen)[:10]):
            raise ValueError(f"visited on {visited_on}, before the detection was first seen ({row.first_seen})")
        visited_on = str(visited_on)
    n = store.add_annotation(detection_id, label, author.strip(), note, visited_on)
    if row.status == "superseded":
        # A verdict on an id a later run replaced (a ranger back from a patrol planned on last
        # week's pack): the detection that now covers that ground gets it; the old one stays retired.
        host = _successor(frame[frame.site_id == row.site_id], row)
        if host is not None:
            _carry(store, host, label, author, (f"{note} " if note else "") + f"(given on {detection_id})", visited_on)
            return n
    store.set_status(detection_id, status_for(label))  # a withdrawn one a ranger confirms is back
    return n


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError as exc:
        raise ValueError(f"{what} must be a date such as 2024-06-03, not {text!r}") from exc


def _carry(store: Store, detection_id: str, label: str, author: str, note: str, visited_on: str | None) -> None:
    """Record a judgement made on another id on the detection that now covers its ground, visit
    day included (the visit was to this ground, even if the new id was first seen later)."""
    store.add_annotation(detection_id, label, author, note, visited_on)
    store.set_status(detection_id, status_for(label))


def field_checks(store: Store) -> dict[str, dict]:
    """detection id → its newest annotation from the field (one with ``visited_on``: a ranger's
    verdict, through ``sitewatch verdicts import`` or ``annotate --visited-on``)."""
    return {a["detection_id"]: a for a in store.annotations() if a.get("visited_on")}


def awaiting_visit(store: Store, detection_ids, reported: dict[str, list[date]] | None = None) -> set[str]:
    """Which of ``detection_ids`` wait for a ranger: those nobody has checked in the field; those
    an archaeologist marked ``unsure`` after the last check (another look is asked for); and those
    a community report placed there after the last check (``reported``: detection id → the days
    of the reports that corroborate it), which may be new digging.  A place a ranger has checked
    is otherwise not sent to the rangers again week after week while the satellites keep seeing
    the pits he saw."""
    checks = field_checks(store)
    latest = latest_labels(store)
    out = set()
    for det in detection_ids:
        check = checks.get(det)
        if check is None:
            out.add(det)
            continue
        newest = latest.get(det, check)
        if newest["annotation_id"] > check["annotation_id"] and newest["label"] == "unsure":
            out.add(det)
        elif any(str(day) > check["visited_on"] for day in (reported or {}).get(det, [])):
            out.add(det)
    return out


def closed_by_check(store: Store, detection_ids=None, until=None) -> set[str]:
    """Of ``detection_ids`` (all, if None), those a ranger's check has closed: checked in the
    field, and neither reported there since (by ``until``) nor doubted since."""
    from .community import reported_since_check

    checks = field_checks(store)
    ids = [d for d in (checks if detection_ids is None else detection_ids) if d in checks]
    return set(ids) - awaiting_visit(store, ids, reported_since_check(store, ids, until)) if ids else set()


def _successor(site_frame: pd.DataFrame, old) -> str | None:
    """The current detection that covers most of a replaced one's ground, if any."""
    geom = wkt.loads(old.geometry_wkt)
    hosts = [(c.detection_id, wkt.loads(c.geometry_wkt).intersection(geom).area)
             for c in site_frame.itertuples() if c.detection_id != old.detection_id and c.status not in RETIRED_STATUSES]
    hosts = [h for h in hosts if h[1] > 0]
    return max(hosts, key=lambda h: h[1])[0] if hosts else None


def latest_labels(store: Store) -> dict[str, dict]:
    """detection id → its newest annotation."""
    out: dict[str, dict] = {}
    for a in store.annotations():  # ordered by annotation_id: later ones overwrite
        out[a["detection_id"]] = a
    return out


def history(store: Store, detection_id: str) -> list[dict]:
    return store.annotations(detection_id)


def list_detections(store: Store, site_id: str | None = None, week: str | None = None,
                    status: str | None = None) -> pd.DataFrame:
    """Detections with their newest label and the day a ranger last checked the place
    (``visited_on``, empty where nobody has), filtered by site, ISO week (confirmed in it) and
    status."""
    frame = store.detections()
    if frame.empty:
        return frame
    labels = latest_labels(store)
    checks = field_checks(store)
    frame["label"] = [labels.get(i, {}).get("label", "") for i in frame.detection_id]
    frame["visited_on"] = [checks.get(i, {}).get("visited_on", "") for i in frame.detection_id]
    if site_id:
        frame = frame[frame.site_id == site_id]
    if status:
        frame = frame[frame.status == status]
    if week:
        from .community import week_bounds

        monday, sunday = week_bounds(week)
        frame = frame[(frame.confirmed_on >= str(monday)) & (frame.confirmed_on <= str(sunday))]
    return frame.reset_index(drop=True)


def detection_timeseries(store: Store, detection_id: str, provider, lookback_years: int = 2) -> pd.DataFrame:
    """Per clear look: the median NDVI (ExG on RGB mosaics, VV in dB on radar) inside the detection
    and over its site, and their difference.

    For archaeologists judging a detection: a dig shows as the inside line dropping away from the
    site's; a field shows the same drop every year.  At a site too large to load whole (watched in
    parts) "the site" is its ground around the detection, as large as such a part.
    """
    from dataclasses import replace

    from change_detection import feature_stack, usable_looks
    from sites.geo import buffer_m
    from sitewatch.errors import SiteTooLarge

    from .monitoring import part_km_that_fits, rasterize_lonlat, site_request, watch_mask

    frame = store.detections()
    row = frame.set_index("detection_id").loc[detection_id]
    site = next(s for s in store.sites() if s.site_id == row.site_id)
    end = pd.Timestamp(row.last_seen) + pd.Timedelta(days=30)
    start = pd.Timestamp(row.first_seen) - pd.DateOffset(years=lookback_years)
    try:
        ds = provider.load(site_request(site, start, end, history_years=0))
    except SiteTooLarge as exc:  # the ground around the detection, as large as a part that fits
        half = part_km_that_fits(site.buffer_m, exc.resolution, exc.n_looks) * 500.0
        near = site.geometry.intersection(buffer_m(wkt.loads(row.geometry_wkt).centroid, half))
        site = replace(site, geometry=near if not near.is_empty else wkt.loads(row.geometry_wkt))
        ds = provider.load(site_request(site, start, end, history_years=0))
    feats = feature_stack(ds, texture=False)
    index = next(i for i in ("ndvi", "exg", "vv_db") if i in feats)  # radar: VV backscatter, dB
    values = feats[index].where(usable_looks(ds))  # the looks the detector used
    inside = rasterize_lonlat(ds, wkt.loads(row.geometry_wkt))
    site_mask = watch_mask(ds, site) & ~inside
    out = pd.DataFrame({
        "date": pd.DatetimeIndex(ds.time.values),
        f"{index}_inside": [float(np.nanmedian(v[inside])) if np.isfinite(v[inside]).any() else np.nan for v in values.values],
        f"{index}_site": [float(np.nanmedian(v[site_mask])) if np.isfinite(v[site_mask]).any() else np.nan for v in values.values],
    }).dropna()
    out["difference"] = out[f"{index}_inside"] - out[f"{index}_site"]
    return out.reset_index(drop=True)


def precision_table(store: Store) -> pd.DataFrame:
    """Annotated detections per site and label, and the share confirmed (precision)."""
    frame = store.detections()
    labels = latest_labels(store)
    rows = [{"site_id": r.site_id, "month": r.first_seen[:7], "label": labels[r.detection_id]["label"]}
            for r in (frame.itertuples() if not frame.empty else []) if r.detection_id in labels]
    if not rows:
        return pd.DataFrame(columns=["site_id", "month", "label", "confirmed"])
    t = pd.DataFrame(rows)
    t["confirmed"] = t.label.isin(CONFIRMED)
    return t


@dataclass(frozen=True)
class SuppressionZone:
    site_id: str
    geometry: object
    doy: int
    source_detection: str
    label: str


def suppression_zones(store: Store) -> list[SuppressionZone]:
    labelled = {d: a for d, a in latest_labels(store).items() if a["label"] in FALSE_POSITIVE}
    if not labelled:
        return []
    frame = store.detections(detection_ids=list(labelled))
    by_id = frame.set_index("detection_id")
    zones = []
    for det_id, a in labelled.items():
        if det_id in by_id.index:
            r = by_id.loc[det_id]
            zones.append(SuppressionZone(r.site_id, wkt.loads(r.geometry_wkt),
                                         pd.Timestamp(r.first_seen).day_of_year, det_id, a["label"]))
    return zones


def _doy_distance(a: int, b: int) -> int:
    d = abs(a - b) % 365
    return min(d, 365 - d)


def suppressed_by(det_geom, first_seen: date, zones: list[SuppressionZone]) -> SuppressionZone | None:
    """The zone that explains this detection as a recurring false positive, if any (pure).  A zone
    is ground, not a site's: it holds for any site that sees that ground (neighbours whose
    buffers overlap, the parts of a site the authority split)."""
    doy = pd.Timestamp(first_seen).day_of_year
    for z in zones:
        if _doy_distance(doy, z.doy) > SEASON_DAYS:
            continue
        if det_geom.area and det_geom.intersection(z.geometry.buffer(0.0003)).area / det_geom.area >= OVERLAP:
            return z
    return None


def apply_feedback(store: Store, detection_ids: list[str],
                   zones: list[SuppressionZone] | None = None) -> list[tuple[str, str]]:
    """Mark open detections that repeat an annotated false positive as ``suppressed``.  ``zones``:
    :func:`suppression_zones`, where the caller has them (a run's sites share them)."""
    if not detection_ids:
        return []
    zones = suppression_zones(store) if zones is None else zones
    if not zones:
        return []
    frame = store.detections(detection_ids=detection_ids)
    frame = frame[frame.status == "open"]
    done = []
    for r in frame.itertuples():
        z = suppressed_by(wkt.loads(r.geometry_wkt), date.fromisoformat(r.first_seen), zones)
        if z is not None and z.source_detection != r.detection_id:
            store.set_status(r.detection_id, "suppressed")
            done.append((r.detection_id, f"repeats {z.source_detection} ({z.label}) at the same place and season"))
    return done


def supersede(store: Store, site_id: str, current: list[str], end: str) -> list[tuple[str, str | None]]:
    """Retire stored detections of a site that this run's full answer no longer contains.

    A detection's id follows its onset and anchor pixel; when two digs merge, or an onset is
    re-dated by a later look, the earlier id is replaced.  Stored open detections confirmed by
    ``end`` that are not in ``current`` get status ``superseded``; a review they carried is
    appended to the detection that now covers them (author ``sitewatch``), so no judgement is lost,
    and the alerts sent for them count as sent for it, so nobody is paged twice for one dig; a
    community report that corroborated one corroborates it.
    One that nothing now covers — a provisional single-look detection that the next clear look
    did not repeat — gets status ``withdrawn``.
    Returns (old id, new id or None).
    """
    frame = store.detections([site_id])
    if frame.empty:
        return []
    keep = set(current)
    cur = frame[frame.detection_id.isin(keep)]
    stale = frame[~frame.detection_id.isin(keep) & (frame.confirmed_on <= end)
                  & ~frame.status.isin(RETIRED_STATUSES)]
    if stale.empty:
        return []
    labels = latest_labels(store)
    checks = field_checks(store)
    done = []
    for r in stale.itertuples():
        new_id = _successor(cur, r)
        store.set_status(r.detection_id, "superseded" if new_id else "withdrawn")
        if new_id:
            store.carry_alerts(r.detection_id, new_id)
            if r.corroborated_by:  # the report that raised it raises what replaced it (once)
                store.corroborate(new_id, r.corroborated_by)
        if new_id and r.detection_id in labels and new_id not in labels:
            a = labels[r.detection_id]
            check = checks.get(r.detection_id)
            _carry(store, new_id, a["label"], "sitewatch", f"carried over from {r.detection_id} ({a['author']})",
                   check["visited_on"] if check else None)
        done.append((r.detection_id, new_id))
    return done


SAME_DIG = "the same dig, seen from both sites"


def _carried(annotation: dict) -> bool:
    """A judgement :func:`judged_elsewhere` carried from another site's detection of the dig."""
    return annotation["author"] == "sitewatch" and annotation["note"].endswith(SAME_DIG)


def own_judgements(store: Store, labels: dict[str, dict] | None = None) -> set[str]:
    """The detections judged on their own: a latest judgement not carried from another site's."""
    labels = latest_labels(store) if labels is None else labels
    return {d for d, a in labels.items() if not _carried(a)}


def copies_of_one_dig(dets: list, own: set[str], outlines: dict | None = None,
                      gap_days: float = DetectorParams().split_gap_days) -> dict[str, str]:
    """Of ``dets`` (a week's places for the rangers, with ``detection_id``, ``site_id``,
    ``geometry``, ``first_seen`` and ``confidence``), the copies of a dig another
    site's detection among them already stands for (the same ground, onsets within
    ``gap_days``), each → that detection: one waypoint per dig.  The one that stands is a
    detection judged on its own (``own``), else the one whose site's outline (``outlines``, site
    id → lon/lat polygon) holds most of it (the dig is that site's; its region's rangers go), else
    the most confident, then the largest; a copy judged on its own is none (its judgement may
    differ).  The ranger's verdict on the waypoint reaches the copy through
    :func:`judged_elsewhere`."""
    from change_detection import CONFIDENCES

    outlines = outlines or {}

    def held(d) -> float:
        site = outlines.get(d.site_id)
        return site.intersection(d.geometry).area / d.geometry.area if site is not None and d.geometry.area else 0.0

    order = sorted(dets, key=lambda d: (d.detection_id not in own, -round(held(d), 3), -CONFIDENCES.index(d.confidence)
                                        if d.confidence in CONFIDENCES else 0, -d.geometry.area, d.detection_id))
    kept, out = [], {}
    for d in order:
        host = next((k for k in kept if k.site_id != d.site_id and d.detection_id not in own
                     and one_disturbance(k.geometry, k.first_seen, d.geometry, d.first_seen, gap_days)), None)
        if host is None:
            kept.append(d)
        else:
            out[d.detection_id] = host.detection_id
    return out


def judged_elsewhere(store: Store, detection_ids: list[str],
                     gap_days: float = DetectorParams().split_gap_days) -> list[tuple[str, str]]:
    """Detections of ``detection_ids`` without a judgement of their own whose dig another site's
    detection has one for: on the same ground, with an onset within the detector's own span for
    one disturbance (``gap_days``).  Two sites whose watched areas share ground (the parts of a
    site split by the authority, neighbours whose buffers overlap) each report a dig there; the
    judgement made on one — an archaeologist's review, a ranger's check with its day — is the
    other's too (author ``sitewatch``, as :func:`supersede` carries one), so one dig is not
    reviewed twice, nor sent to the rangers as unjudged; a later judgement there (the ranger back
    from the place) is carried too, until one is made on the detection itself.  A judgement
    carried so is not carried on again (a chain of overlapping digs does not pass one verdict
    along).  Returns (detection id, the id whose judgement it took)."""
    labels = latest_labels(store)
    todo = [d for d in detection_ids if d not in labels or _carried(labels[d])]
    own = own_judgements(store, labels)  # not passed on from site to site
    if not todo or not own:
        return []
    frame = store.detections()
    judged = frame[frame.detection_id.isin(own) & ~frame.status.isin(RETIRED_STATUSES)]
    if judged.empty:
        return []
    others = [(r.detection_id, r.site_id, wkt.loads(r.geometry_wkt), pd.Timestamp(r.first_seen))
              for r in judged.itertuples()]
    tree = STRtree([g for _, _, g, _ in others])
    checks = field_checks(store)
    done = []
    # a repeat of a false positive at its own site stays suppressed
    for r in frame[frame.detection_id.isin(todo) & ~frame.status.isin(["suppressed", *RETIRED_STATUSES])].itertuples():
        geom, onset = wkt.loads(r.geometry_wkt), pd.Timestamp(r.first_seen)
        hosts = [(g.intersection(geom).area, other, site) for other, site, g, t in
                 (others[i] for i in sorted(tree.query(geom, predicate="intersects")))
                 if site != r.site_id and one_disturbance(g, t, geom, onset, gap_days)]
        if not hosts:
            continue
        _, other, site = max(hosts, key=lambda h: h[0])
        a, check = labels[other], checks.get(other)
        if r.detection_id in labels and labels[r.detection_id]["annotation_id"] > a["annotation_id"]:
            continue  # has it already
        _carry(store, r.detection_id, a["label"], "sitewatch", f"carried over from {other} at {site} ({a['author']}): "
               + SAME_DIG,
               check["visited_on"] if check else None)
        done.append((r.detection_id, other))
    return done


def confirmed_sites(store: Store) -> set[str]:
    frame = store.detections()
    labels = latest_labels(store)
    if frame.empty:
        return set()
    return {r.site_id for r in frame.itertuples() if labels.get(r.detection_id, {}).get("label") in CONFIRMED}


def calibrate(store: Store, base: DetectorParams = DetectorParams(), min_annotations: int = 3,
              max_factor: float = 1.5) -> dict[str, dict]:
    """Per-site thresholds from annotations: more false positives → a higher threshold.

    threshold = base × (1 + (max_factor − 1) × false-positive share), for sites with at least
    ``min_annotations`` decided labels (``unsure`` does not count).  Sites below that keep the base.
    """
    frame = store.detections()
    labels = latest_labels(store)
    out = {}
    for site_id, group in (frame.groupby("site_id") if not frame.empty else []):
        decided = [labels[i]["label"] for i in group.detection_id if i in labels and labels[i]["label"] != "unsure"]
        if len(decided) < min_annotations:
            continue
        fp = sum(label in FALSE_POSITIVE for label in decided) / len(decided)
        thr = round(base.threshold * (1 + (max_factor - 1) * fp), 2)
        reason = f"{len(decided)} annotated detections, {fp:.0%} false positives"
        store.set_site_threshold(site_id, thr, reason)
        out[site_id] = {"threshold": thr, "reason": reason}
    return out


def export_labelled(store: Store, out_dir: str | Path, access: str = "restricted") -> Path:
    """Annotated detections as GeoJSON (newest label, author, time, history, status, and whether
    the label was carried from another detection of the same ground) plus their chips, at an
    access level: where the reader may not see a site exactly (every site in a ``public``
    export) the outline becomes its generalised cell and no chip is written (a chip shows the place)."""
    from .outputs import OutputFolder

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder = OutputFolder(out, ("labels.geojson", "chips"), access, level_file="labels.geojson")
    folder.begin()  # a public export into last month's restricted one would keep its chips
    (out / "chips").mkdir(parents=True, exist_ok=True)
    frame = store.detections()
    labels = latest_labels(store)
    sites = {s.site_id: s for s in store.sites()}
    feats = []
    for r in frame.itertuples() if not frame.empty else []:
        if r.detection_id not in labels:
            continue
        a = labels[r.detection_id]
        site = sites.get(r.site_id)
        exact = site is not None and may_see_exact(site.sensitivity, access)
        geom = wkt.loads(r.geometry_wkt)
        chips = store.chips(r.detection_id) if exact else None
        files = {}
        if chips is not None:
            for kind, png in (("before", chips.before_png), ("after", chips.after_png), ("ndvi_change", chips.index_png)):
                name = f"{file_name(r.detection_id)}_{kind}.png"
                (out / "chips" / name).write_bytes(png)
                files[kind] = f"chips/{name}"
        feats.append({"type": "Feature", "geometry": mapping(geom if exact else generalise(geom)), "properties": {
            "detection_id": r.detection_id, "site_id": r.site_id, "first_seen": r.first_seen, "label": a["label"],
            "author": a["author"], "annotated_at": str(a["created_at"]), "n_annotations": len(store.annotations(r.detection_id)),
            "evidence": json.loads(r.evidence or "{}"), "chips": files, "location_generalised": not exact,
            # a label carried from another detection of the same ground (a replaced id, another site's copy) and
            # a retired detection repeat an example: a training set may leave them out
            "status": r.status, "label_carried": a["author"] == "sitewatch", "access_level": access}})
    path = out / "labels.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "access_level": access, "features": feats}, indent=1))
    folder.finish()
    return path


def same_note(stored: str, note: str) -> bool:
    """Whether ``note`` is ``stored`` as it was before spans of it were withheld: the same file
    imported again, with the phone country set then and not now (or the other way round), is the
    same verdict, not a new one."""
    import re

    from reports.privacy import WITHHELD

    def covers(withheld: str, clear: str) -> bool:
        parts = withheld.split(WITHHELD)
        return len(parts) > 1 and re.fullmatch(".+?".join(map(re.escape, parts)), clear, flags=re.DOTALL) is not None

    return stored == note or covers(stored, note) or covers(note, stored)


@dataclass
class VerdictImport:
    recorded: list[tuple[int, str, str]] = field(default_factory=list)
    """(row, detection id, label) of each annotation added."""
    unchanged: int = 0
    """Rows whose verdict was already recorded (a file imported twice)."""
    blank: int = 0
    """Rows without a verdict: places not visited yet."""
    rejected: list[tuple[int, str, dict]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the file holds but was deliberately not read (a KoBo repeat group's sheet)."""


def import_verdicts(store: Store, path: str | Path, today: date | None = None, dates: str | None = None) -> VerdictImport:
    """Record the verdicts a ranger wrote into a field pack's CSV (or its GeoJSON, or a KoBo export
    with the same columns) as annotations, append-only, by ``checked_by``.

    ``verdict`` is a field verdict (``confirmed looting``, ``other disturbance``, ``nothing
    found``) or any review label; ``checked_on`` (optional) is the day of the visit, which may not
    be in the future nor before the detection was first seen; ``field_note`` is kept with it,
    less any e-mail address or phone number (an informant the ranger met), also in the rejected
    rows.  A row without a verdict is a place not visited and is skipped; a bad row is rejected
    with its reason and nothing else; a verdict already recorded is not recorded twice.
    A visit day written day-first or month-first (Excel saves the pack's dates in its locale's
    order) is read in the order the file's dates show, or that ``dates`` states.
    """
    from reports.ingest import date_order, date_order_note, parse_date, pop_spill, read_rows
    from reports.privacy import phone_region, scrub_text

    region = phone_region()
    path = Path(path)
    today = today or datetime.now(timezone.utc).date()
    res = VerdictImport()
    words = store.verdict_words()
    rows = read_rows(path, res.notes)
    if rows and "detection_id" not in {str(k).strip().lower() for k in rows[0][1] if k}:
        raise ValueError(f"{path}: no detection_id column; hand back the field pack's CSV with its columns")
    frame = store.detections()
    first_seen = dict(zip(frame.detection_id, frame.first_seen)) if not frame.empty else {}
    # the pack's own first_seen and last_seen, re-saved by Excel, show the order too
    order = date_order([(i, str(v)) for i, raw in rows for k, v in raw.items()
                        if k and str(k).strip().lower() in ("checked_on", "first_seen", "last_seen") and v], dates)
    res.notes.extend(date_order_note(order))
    for i, raw in rows:
        spill = pop_spill(raw)  # a note's own comma, unquoted, shifts the cells after it
        row = {str(k).strip().lower(): ("" if v is None else str(v).strip()) for k, v in raw.items() if k}
        if row.get("field_note"):  # an informant the ranger met may be named by number: not kept
            row["field_note"] = scrub_text(row["field_note"], region=region)
        if spill is not None:  # the note ran on into the cells after it: any of them may hold its words
            res.rejected.append((i, f"the row has {spill} cell(s) more than the header "
                                    "(an unquoted comma in the note?)",
                                 {k: scrub_text(v, region=region) for k, v in row.items()}))
            continue
        verdict = row.get("verdict", "")
        if not verdict:
            res.blank += 1
            continue
        det_id = store.current_id(row.get("detection_id", ""))  # a pack handed out before a site's rename
        label = verdict_label(verdict, words)
        author = row.get("checked_by", "")
        try:
            if label not in LABELS:
                raise ValueError(f"verdict {verdict!r} is not one of {tuple(FIELD_VERDICTS)}"
                                 + (f", the unit's words {tuple(words)}" if words else "")
                                 + f" (or a review label {LABELS})")
            if det_id not in first_seen:
                raise ValueError(f"no detection {det_id!r} in the store")
            if not author:
                raise ValueError("checked_by is empty: a verdict needs the name of whoever was there")
            note = ""
            visit = today  # a row without its day: the ranger was there by the day it came back
            if row.get("checked_on"):
                visit = parse_date(row["checked_on"], today, order)
                if visit < date.fromisoformat(str(first_seen[det_id])[:10]):
                    raise ValueError(f"checked on {visit}, before the detection was first seen ({first_seen[det_id]})")
                note = f"field check on {visit}"
            if row.get("field_note"):
                note = f"{note}: {row['field_note']}" if note else row["field_note"]
        except ValueError as exc:
            res.rejected.append((i, str(exc), row))
            continue
        if any(a["label"] == label and a["author"] == author and same_note(a["note"], note)
               for a in store.annotations(det_id)):
            res.unchanged += 1
            continue
        annotate(store, det_id, label, author, note, visited_on=visit, today=today)
        res.recorded.append((i, det_id, label))
    return res
