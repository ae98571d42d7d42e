"""Ranger field packs: GPX, KML, CSV and GeoJSON waypoints ordered as a patrol route.

Coordinates are WGS 84 lat/lon with 6 decimals (about 0.1 m) and MGRS (``mgrs`` package);
distance and bearing are measured on the ellipsoid from a base point (``pyproj.Geod``).  The route
is a nearest-neighbour tour from the base, which is short enough for a day's patrol of a handful
of points.  A pack only ever holds the detections it is given: the caller cuts by region/ranger.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import gpxpy
import gpxpy.gpx
import mgrs
import simplekml
from pyproj import Geod

from .escape import csv_cell, text

GEOD = Geod(ellps="WGS84")
_MGRS = mgrs.MGRS()
VERDICT_COLUMNS = ("verdict", "checked_on", "checked_by", "field_note")
"""Left empty in the CSV for the ranger to fill in on patrol; ``sitewatch verdicts import`` reads
them back (``verdict``: confirmed looting, other disturbance or nothing found)."""


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
    base: tuple[float, float] | None = None, access: str = "restricted",
) -> dict[str, Path]:
    """Write ``<name>.gpx``, ``.kml``, ``.csv`` and ``.geojson`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    route = patrol_order(waypoints, base)
    paths = {k: out / f"{name}.{k}" for k in ("gpx", "kml", "csv", "geojson")}

    gpx = gpxpy.gpx.GPX()
    gpx.name = f"sitewatch {name} ({access})"
    gpx.description = f"access level: {access}"
    rte = gpxpy.gpx.GPXRoute(name=f"{name} patrol")
    for i, p in enumerate(route, 1):
        desc = (f"{p.detection_id}; {p.site_name}; first seen {p.first_seen}; {p.confidence}; {p.area_m2:.0f} m2; "
                f"{p.what_to_check}; MGRS {p.mgrs}")
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
        pt.description = text(f"{i}. {p.detection_id}: {p.site_name} — first seen {p.first_seen}, {p.confidence}, "
                              f"MGRS {p.mgrs}. {p.what_to_check}")
    kml.save(str(paths["kml"]))

    fields = ["order", "waypoint", "detection_id", "site_name", "lat", "lon", "mgrs", "first_seen", "confidence",
              "area_m2", "distance_m", "bearing_deg", "what_to_check", "access_level"]
    features = []
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*fields, *VERDICT_COLUMNS], restval="")
        w.writeheader()
        for i, p in enumerate(route, 1):
            dist, bearing = _leg(base, p)
            row = {"order": i, "waypoint": waypoint_label(i, p.detection_id), "detection_id": p.detection_id,
                   "site_name": p.site_name,
                   "lat": f"{p.lat:.6f}", "lon": f"{p.lon:.6f}", "mgrs": p.mgrs, "first_seen": p.first_seen,
                   "confidence": p.confidence, "area_m2": round(p.area_m2, 1), "distance_m": dist,
                   "bearing_deg": bearing, "what_to_check": p.what_to_check, "access_level": access}
            w.writerow({k: csv_cell(v) for k, v in row.items()})
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(p.lon, 6), round(p.lat, 6)]},
                             "properties": row})
    paths["geojson"].write_text(json.dumps({"type": "FeatureCollection", "access_level": access, "features": features}, indent=1), encoding="utf-8")
    return paths
