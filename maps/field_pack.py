"""Ranger field packs: GPX, KML, CSV, an Excel workbook and GeoJSON waypoints ordered as a patrol route.

Coordinates are WGS 84 lat/lon with 6 decimals (about 0.1 m) and MGRS (``mgrs`` package);
distance and bearing are measured on the ellipsoid from a base point (``pyproj.Geod``).  The route
is a nearest-neighbour tour from the base, which is short enough for a day's patrol of a handful
of points.  A pack only ever holds the detections it is given: the caller cuts by region/ranger.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date
from gettext import NullTranslations
from pathlib import Path

import gpxpy
import gpxpy.gpx
import mgrs
import simplekml
from pyproj import Geod

from .escape import csv_cell, text
from .language import ENGLISH_WORDS, access_words, confidence_words, phrase

GEOD = Geod(ellps="WGS84")
_MGRS = mgrs.MGRS()
VERDICT_COLUMNS = ("verdict", "checked_on", "checked_by", "field_note")
"""Left empty in the CSV and the workbook for the ranger to fill in on patrol; ``sitewatch
verdicts import`` reads them back (``verdict``: confirmed looting, other disturbance or nothing found)."""
FIELD_VERDICT_WORDS = ("confirmed looting", "other disturbance", "nothing found")
"""What a ranger writes in ``verdict`` (``pipelines.review.FIELD_VERDICTS`` maps them to labels);
the workbook offers them as a drop-down list."""


@dataclass(frozen=True)
class Waypoint:
    detection_id: str
    site_name: str
    lat: float
    lon: float
    first_seen: str
    confidence: str
    area_m2: float
    what_to_check: str

    @property
    def mgrs(self) -> str:
        return to_mgrs(self.lat, self.lon)


def to_mgrs(lat: float, lon: float) -> str:
    """MGRS at 1 m precision, as ``mgrs`` writes it (e.g. ``13TCE3663461283``)."""
    return _MGRS.toMGRS(lat, lon, MGRSPrecision=5)


def waypoint_label(order: int | str, detection_id: str) -> str:
    """The name a GPS unit shows: the stop's number and the end of the detection id, e.g.
    ``03-a1b2c3`` (9 characters).  Hand-held units cut names to 10–14 characters, and full ids
    (the site id, the date, a hash) of one site and month would all read the same; the full id
    is in the waypoint's comment and description and beside the label in the CSV.  A field
    sheet, which does not know the stop, passes ``"NN"``."""
    return f"{order:>02}-{detection_id[-6:]}"


def patrol_order(points: list[Waypoint], base: tuple[float, float] | None) -> list[Waypoint]:
    """Nearest-neighbour tour from ``base`` (lat, lon), or from the first point."""
    if not points:
        return []
    todo = list(points)
    if base is None:
        route = [todo.pop(0)]
        here = (route[0].lat, route[0].lon)
    else:
        route, here = [], base
    while todo:
        nxt = min(todo, key=lambda p: GEOD.inv(here[1], here[0], p.lon, p.lat)[2])
        todo.remove(nxt)
        route.append(nxt)
        here = (nxt.lat, nxt.lon)
    return route


def _leg(base: tuple[float, float] | None, p: Waypoint) -> tuple[float | None, float | None]:
    if base is None:
        return None, None
    az, _, dist = GEOD.inv(base[1], base[0], p.lon, p.lat)
    return round(dist, 1), round(az % 360.0, 1)


def write_field_pack(
    waypoints: list[Waypoint], out_dir: str | Path, name: str = "field_pack",
    base: tuple[float, float] | None = None, access: str = "restricted", verdict_words: tuple[str, ...] = (),
    words: NullTranslations = ENGLISH_WORDS,
) -> dict[str, Path]:
    """Write ``<name>.gpx``, ``.kml``, ``.csv``, ``.xlsx`` and ``.geojson`` into ``out_dir``;
    ``verdict_words`` are the unit's own words for verdicts, offered first in the workbook's list;
    ``words`` the language of the GPX and KML descriptions (:mod:`maps.language`; the CSV's and
    the workbook's columns keep their names, ``sitewatch verdicts import`` reads them)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    route = patrol_order(waypoints, base)
    paths = {k: out / f"{name}.{k}" for k in ("gpx", "kml", "csv", "xlsx", "geojson")}

    gpx = gpxpy.gpx.GPX()
    gpx.name = f"sitewatch {name} ({access})"
    gpx.description = phrase(words, "access level: {level}", level=access_words(words, access))
    rte = gpxpy.gpx.GPXRoute(name=phrase(words, "{name} patrol", name=name))
    for i, p in enumerate(route, 1):
        first_seen = phrase(words, "first seen {date}", date=p.first_seen)
        desc = (f"{p.detection_id}; {p.site_name}; {first_seen}; {confidence_words(words, p.confidence)}; "
                f"{p.area_m2:.0f} m2; {p.what_to_check}; MGRS {p.mgrs}")
        gpx.waypoints.append(gpxpy.gpx.GPXWaypoint(p.lat, p.lon, name=waypoint_label(i, p.detection_id),
                                                   comment=p.detection_id, description=desc, symbol="Flag"))
        rte.points.append(gpxpy.gpx.GPXRoutePoint(p.lat, p.lon, name=waypoint_label(i, p.detection_id)))
    if route:
        gpx.routes.append(rte)
    paths["gpx"].write_text(gpx.to_xml(), encoding="utf-8")

    kml = simplekml.Kml(name=f"sitewatch {name} ({access})")
    for i, p in enumerate(route, 1):
        pt = kml.newpoint(name=waypoint_label(i, p.detection_id), coords=[(p.lon, p.lat)])  # KML is lon, lat
        # KML viewers render a description as HTML once the XML is read: escape it as HTML too
        first_seen = phrase(words, "first seen {date}", date=p.first_seen)
        pt.description = text(f"{i}. {p.detection_id}: {p.site_name} — {first_seen}, "
                              f"{confidence_words(words, p.confidence)}, MGRS {p.mgrs}. {p.what_to_check}")
    kml.save(str(paths["kml"]))

    features, rows = [], []
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*PACK_COLUMNS, *VERDICT_COLUMNS], restval="")
        w.writeheader()
        for i, p in enumerate(route, 1):
            dist, bearing = _leg(base, p)
            row = {"order": i, "waypoint": waypoint_label(i, p.detection_id), "detection_id": p.detection_id,
                   "site_name": p.site_name,
                   "lat": f"{p.lat:.6f}", "lon": f"{p.lon:.6f}", "mgrs": p.mgrs, "first_seen": p.first_seen,
                   "confidence": p.confidence, "area_m2": round(p.area_m2, 1), "distance_m": dist,
                   "bearing_deg": bearing, "what_to_check": p.what_to_check, "access_level": access}
            w.writerow({k: csv_cell(v) for k, v in row.items()})
            rows.append(row)
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(p.lon, 6), round(p.lat, 6)]},
                             "properties": row})
    paths["geojson"].write_text(json.dumps({"type": "FeatureCollection", "access_level": access, "features": features}, indent=1), encoding="utf-8")
    _write_workbook(rows, paths["xlsx"], f"sitewatch {name} ({access})", verdict_words)
    return paths


PACK_COLUMNS = ("order", "waypoint", "detection_id", "site_name", "lat", "lon", "mgrs", "first_seen", "confidence",
                "area_m2", "distance_m", "bearing_deg", "what_to_check", "access_level")
WIDTHS = {"detection_id": 30, "site_name": 24, "mgrs": 17, "first_seen": 11, "what_to_check": 40,
          "verdict": 18, "checked_on": 11, "checked_by": 16, "field_note": 40}
FIRST_DAY = date(2000, 1, 1)


def _write_workbook(rows: list[dict], path: Path, title: str, verdict_words: tuple[str, ...] = ()) -> None:
    """The CSV's rows as one Excel sheet a ranger fills in on a laptop or a phone.

    Excel opens a CSV with its locale's settings: a ``2024-06-03`` it rewrites ``03/06/2024`` or
    ``6/3/2024`` when saving, and it offers no choice of words.  Here ``first_seen`` and
    ``checked_on`` are date cells (shown ``yyyy-mm-dd`` in every locale, and read back as dates),
    ``verdict`` offers the unit's own words and the three field verdicts as a drop-down list
    (another review label is allowed after a warning, as the import allows it), ``checked_on`` takes only a date, and every
    text is a text cell: a site name starting with ``=`` is not a formula here.  One sheet, as
    ``sitewatch verdicts import`` reads it.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = "patrol"
    book.properties.title = title
    columns = [*PACK_COLUMNS, *VERDICT_COLUMNS]
    sheet.append(columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    letter = {c: get_column_letter(i) for i, c in enumerate(columns, 1)}
    for r, row in enumerate(rows, 2):
        for c, name in enumerate(PACK_COLUMNS, 1):
            value = row[name]
            if name == "first_seen" and value:
                value = date.fromisoformat(str(value)[:10])
            elif name in ("lat", "lon"):
                value = float(value)
            cell = sheet.cell(r, c, value)
            if isinstance(value, str):
                cell.data_type = "s"  # openpyxl takes text starting with "=" for a formula
            elif isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
            elif name in ("lat", "lon"):
                cell.number_format = "0.000000"
        sheet.cell(r, columns.index("checked_on") + 1).number_format = "yyyy-mm-dd"
    last = max(len(rows) + 1, 2)  # a row a ranger adds has no detection_id to report on
    choices = [*verdict_words, *FIELD_VERDICT_WORDS]
    verdict = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True,
                             errorStyle="warning", showErrorMessage=True, showInputMessage=True,
                             promptTitle="verdict", prompt=("What was there: " + ", ".join(choices)
                                                            + ". Leave it empty if the place was not visited.")[:255],
                             errorTitle="verdict", error="Not a field verdict. Another review label (e.g. "
                             "agriculture, natural) is accepted; otherwise pick one from the list.")
    verdict.add(f"{letter['verdict']}2:{letter['verdict']}{last}")
    visit = DataValidation(type="date", operator="greaterThanOrEqual", formula1=str((FIRST_DAY - date(1899, 12, 30)).days),
                           allow_blank=True, showErrorMessage=True, showInputMessage=True,
                           promptTitle="checked_on", prompt="The day of the visit, e.g. 2024-06-03.",
                           errorTitle="checked_on", error="Write the day of the visit as a date, e.g. 2024-06-03.")
    visit.add(f"{letter['checked_on']}2:{letter['checked_on']}{last}")
    sheet.add_data_validation(verdict)
    sheet.add_data_validation(visit)
    for name, width in WIDTHS.items():
        sheet.column_dimensions[letter[name]].width = width
    sheet.freeze_panes = "D2"  # the header and the stop, its label and its id stay in view
    sheet.auto_filter.ref = f"A1:{letter[columns[-1]]}{len(rows) + 1}"
    book.save(path)
