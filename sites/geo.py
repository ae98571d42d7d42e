"""Small geodesy helpers: the site's UTM zone, metric buffers, and numbers as people type them."""

from __future__ import annotations

import math
import re

from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry
import numpy as np
import shapely


def utm_epsg(geom: BaseGeometry) -> int:
    """EPSG code of the WGS 84 UTM zone that holds the geometry's centroid (lon/lat input)."""
    c = geom.centroid
    zone = int((c.x + 180) // 6) % 60 + 1
    return (32600 if c.y >= 0 else 32700) + zone


def to_crs(geom: BaseGeometry, src: int | str | CRS, dst: int | str | CRS) -> BaseGeometry:
    """Reproject a shapely geometry (always x/y order)."""
    t = Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def buffer_m(geom: BaseGeometry, metres: float, epsg: int | None = None) -> BaseGeometry:
    """Buffer a lon/lat geometry by metres in its UTM zone; returns lon/lat."""
    if metres == 0:
        return geom
    epsg = epsg or utm_epsg(geom)
    return to_crs(to_crs(geom, 4326, epsg).buffer(metres), epsg, 4326)


def area_m2(geom: BaseGeometry) -> float:
    """Area of a lon/lat geometry in square metres (in its UTM zone)."""
    return float(to_crs(geom, 4326, utm_epsg(geom)).area)


def parse_number(text: str, what: str, *, unit: str = "") -> float:
    """A number as people type it: ``47.5``, ``47,5`` (a decimal comma, as in a semicolon CSV),
    for metres also ``20 m``.  Anything else is refused with its column's name: ``1,500`` for
    metres could be 1.5 or 1 500, and ``47°30'N`` is not decimal degrees."""
    s = text.strip()
    if unit and s.lower().endswith(unit):
        s = s[: -len(unit)].strip()
    if re.fullmatch(r"[-+]?\d+,\d+", s) and not (unit and re.fullmatch(r"[-+]?\d{1,3},\d{3}", s)):
        s = s.replace(",", ".")
    try:
        value = float(s)
    except ValueError:
        hint = " (degrees, minutes, seconds: convert to decimal degrees)" if re.search(r"[°'\"′″]", s) else ""
        raise ValueError(f"{what} {text!r} is not a number{hint}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r} is not a number")
    return value
