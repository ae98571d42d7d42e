"""Reconcile community reports with satellite detections in space and time.

Pure functions over records (no store, no files).  Outcomes, one row each, explainable:

* ``corroborated`` — a report and a detection agree: the report lies within its location
  accuracy plus ``tolerance_m`` of the detection's outline, and was made between
  ``days_before`` days before the detection was first seen and ``days_after`` days after (or
  while the detection was still visible, or while it is open: no verdict yet).  The detection's
  confidence is raised one level, once: by the first report that corroborates it.
  Many-to-many: several reports of one dig and one report near two digs all give rows.
* ``report_without_detection`` — a report at a registered site that no detection explains (cloud?
  too small? not visible from space?): re-check the next clear image and send a ranger.
* ``detection_without_report`` — nobody reported it: send a ranger.  A detection a ranger has
  already checked (``checked_on``) is nobody's errand and gives no such row; a report at it is
  still matched (its ``field_check`` says when and what), and one made after the check asks for
  another visit (new digging?).
* ``report_outside_sites`` — a report away from every registered site: review it; it may be an
  unregistered site.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from pyproj import Geod
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from maps.language import N_, Said, field_check_said
from sites import Site
from sites.geo import buffer_m

from .ingest import Report

GEOD = Geod(ellps="WGS84")
OUTCOMES = ("corroborated", "report_without_detection", "detection_without_report", "report_outside_sites")
RAISE = {"low": "medium", "medium": "high", "high": "high"}
ACTIONS = {k: Said(v) for k, v in {
    "corroborated": N_("treat as confirmed activity; dispatch a ranger with the field pack"),
    "report_without_detection": N_("re-check the next clear image; send a ranger to look"),
    "detection_without_report": N_("send a ranger to verify"),
    "report_outside_sites": N_("review: possibly an unregistered site"),
    "reported_after_check": N_("reported after the last field check: send a ranger to look for new digging"),
    "checked_before_report": N_("checked in the field since this report; no visit needed"),
    "report_at_unwatched_site": N_("the satellites do not watch this site (not in the registry file): send a ranger "
                                   "to look, and put the site in the registry file to watch it"),
}.items()}
"""What to do, per outcome: English in the reconciliation files, the reader's language on the map
(:class:`maps.language.Said`)."""


@dataclass(frozen=True)
class ReconDetection:
    detection_id: str
    site_id: str
    geometry: BaseGeometry
    """lon/lat"""
    first_seen: date
    last_seen: date
    confidence: str
    open_until: date | None = None
    """For a detection no verdict has closed: the day until which it stays open (a dig nobody has
    visited is still there); a report up to that day can corroborate it."""
    checked_on: date | None = None
    """The day a ranger last checked the place, if one has."""
    verdict: str = ""
    """What the ranger found there (the review label of that check)."""
    corroborated: bool = False
    """A report has corroborated it before: its confidence was raised then, and is not again."""


@dataclass(frozen=True)
class ReconItem:
    outcome: str
    report_id: str | None
    detection_id: str | None
    site_id: str | None
    lat: float
    lon: float
    distance_m: float | None
    days_apart: int | None
    """Report date minus the detection's first_seen (negative: the report came first)."""
    reason: str
    """Why, in English (a :class:`maps.language.Said`: a page for people says it in its reader's language)."""
    action: str
    """What to do (:data:`ACTIONS`)."""
    confidence_after: str | None = None
    field_check: str | None = None
    """The ranger's last check of the detection's place (``2024-06-12: looting``), where there was
    one; when the rangers go is patrol knowledge, withheld where the reader may not see the site
    exactly (:func:`pipelines.community.for_access`)."""


def distance_m(lat: float, lon: float, geom: BaseGeometry) -> float:
    """Geodesic distance from a point to the nearest point of a lon/lat geometry (0 inside)."""
    p = Point(lon, lat)
    if geom.contains(p):
        return 0.0
    q = nearest_points(p, geom)[1]
    return float(GEOD.inv(lon, lat, q.x, q.y)[2])


def reconcile(
    reports: list[Report], detections: list[ReconDetection], sites: list[Site], *,
    tolerance_m: float = 50.0, days_before: int = 60, days_after: int = 90, unwatched: Collection[str] = (),
    copies: Collection[str] = (),
) -> list[ReconItem]:
    """Match community reports with detections in space and time.  ``unwatched``: ids of
    ``sites`` the satellites do not watch (left out of the registry file run): a report there
    without a detection cannot wait for the next clear image.  ``copies``: detections another
    site's detection of the same dig stands for (one errand per dig): matched with reports, but
    not a ``detection_without_report`` of their own."""
    items: list[ReconItem] = []
    corroborating: dict[str, int] = {}
    watched = {s.site_id: buffer_m(s.geometry, s.buffer_m) for s in sites}
    for r in reports:
        matched = False
        for d in detections:
            dist = distance_m(r.lat, r.lon, d.geometry)
            reach = r.accuracy_m + tolerance_m
            days = (r.observed_on - d.first_seen).days
            late_limit = max(days_after, (d.last_seen - d.first_seen).days + 30,
                             (d.open_until - d.first_seen).days if d.open_until else 0)
            if dist <= reach and -days_before <= days <= late_limit:
                matched = True
                corroborating[d.detection_id] = corroborating.get(d.detection_id, 0) + 1
                when = Said(N_("{days} days before first seen") if days < 0 else N_("{days} days after first seen"),
                            days=abs(days))
                action = ACTIONS["corroborated"]
                if d.checked_on:
                    action = ACTIONS["reported_after_check" if r.observed_on > d.checked_on else "checked_before_report"]
                items.append(ReconItem(
                    "corroborated", r.report_id, d.detection_id, d.site_id, r.lat, r.lon, round(dist, 1), days,
                    Said(N_("report {distance} m from the detection (within accuracy {accuracy} m + {tolerance} m), "
                            "{when}"), distance=f"{dist:.0f}", accuracy=f"{r.accuracy_m:.0f}",
                         tolerance=f"{tolerance_m:.0f}", when=when), action,
                    d.confidence if d.corroborated else RAISE.get(d.confidence, d.confidence),
                    field_check_said(d.checked_on, d.verdict) if d.checked_on else None))
        if matched:
            continue
        near = [(sid, distance_m(r.lat, r.lon, g)) for sid, g in watched.items()]
        near = [(sid, dist) for sid, dist in near if dist <= r.accuracy_m]
        if r.site_id or near:
            sid = r.site_id or min(near, key=lambda t: t[1])[0]
            gone = sid in unwatched
            items.append(ReconItem(
                "report_without_detection", r.report_id, None, sid, r.lat, r.lon, None, None,
                Said(N_("at a registered site the weekly run does not watch (not in its registry file)")) if gone else
                Said(N_("at a registered site; no detection within its accuracy and time window "
                        "(cloud, too small, or not visible from space)")),
                ACTIONS["report_at_unwatched_site" if gone else "report_without_detection"]))
        else:
            items.append(ReconItem(
                "report_outside_sites", r.report_id, None, None, r.lat, r.lon, None, None,
                Said(N_("more than its accuracy ({accuracy} m) from every registered site"),
                     accuracy=f"{r.accuracy_m:.0f}"), ACTIONS["report_outside_sites"]))
    for d in detections:
        if d.detection_id not in corroborating and d.checked_on is None and d.detection_id not in copies:
            c = d.geometry.representative_point()
            items.append(ReconItem(
                "detection_without_report", None, d.detection_id, d.site_id, round(c.y, 6), round(c.x, 6), None, None,
                Said(N_("no report within its reach and time window")), ACTIONS["detection_without_report"],
                d.confidence))
    return items
