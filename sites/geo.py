"""Small geodesy helpers: the site's UTM zone, metric buffers, and numbers as people type them."""

from __future__ import annotations

import math
import re
import threading

from pygeodesy import ParseError, RangeError, parseDMS
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry
import numpy as np
import shapely


def utm_epsg(geom: BaseGeometry) -> int:
    """EPSG code of the WGS 84 UTM zone that holds the geometry's centroid (lon/lat input)."""
    c = geom.centroid
    zone = int((c.x + 180) // 6) % 60 + 1
    return (32600 if c.y >= 0 else 32700) + zone


_TRANSFORMERS = threading.local()


def _transformer(src: int | str | CRS, dst: int | str | CRS) -> Transformer:
    """A transformer per (src, dst) and thread: making one costs more than reprojecting a site's
    outline, and pyproj's transformers are not to be shared between threads."""
    cache = _TRANSFORMERS.__dict__.setdefault("by_pair", {})
    key = (str(src), str(dst))
    if key not in cache:
        cache[key] = Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)
    return cache[key]


def to_crs(geom: BaseGeometry, src: int | str | CRS, dst: int | str | CRS) -> BaseGeometry:
    """Reproject a shapely geometry (always x/y order)."""
    t = _transformer(src, dst)
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


UNIT_SPELLINGS = {"m": ("metres", "meters", "metros", "метров", "метр", "m", "м")}
"""How a unit is written after a number, longest first (``м`` is Cyrillic, as Mongolian and
Russian write metres)."""


def holder(geom: BaseGeometry, areas: dict) -> tuple:
    """Which of ``areas`` (key → polygon, same CRS) holds most of ``geom`` (a point: covers it),
    the first on a tie; where none holds any of it, the nearest.  Returns (key, held)."""
    held = {k: a.intersection(geom).area if geom.area > 0 else float(a.covers(geom)) for k, a in areas.items()}
    best = max(held, key=held.get)
    if held[best] > 0:
        return best, True
    return min(areas, key=lambda k: areas[k].distance(geom)), False


def parse_number(text: str, what: str, *, unit: str = "") -> float:
    """A number as people type it: ``47.5``, ``47,5`` (a decimal comma, as in a semicolon CSV),
    for metres also ``20 m`` or ``20 м``.  Anything else is refused with its column's name: ``1,500`` for
    metres could be 1.5 or 1 500.  Coordinates in degrees and minutes: :func:`parse_degrees`."""
    s = text.strip().replace("\u2212", "-")  # the minus sign a word processor puts in
    for spelling in UNIT_SPELLINGS.get(unit, (unit,)) if unit else ():
        if s.lower().endswith(spelling):
            s = s[: -len(spelling)].strip()
            break
    if re.fullmatch(r"[-+]?\d+,\d+", s) and not (unit and re.fullmatch(r"[-+]?\d{1,3},\d{3}", s)):
        s = s.replace(",", ".")
    try:
        value = float(s)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r} is not a number")
    return value


HEMISPHERES = {"latitude": "NS", "longitude": "EW"}
DMS_MARKS = "°º'\"′″’”"


def parse_degrees(text: str, what: str) -> float:
    """A latitude or longitude (``what``) as registries and people write it: decimal degrees as
    :func:`parse_number` reads them, or degrees, minutes and seconds with their marks and an
    optional hemisphere before or after (``47°30'15"N``, ``N 47° 30,5'``, ``106°50′20″ W``,
    ``47.5 N``), converted by PyGeodesy's ``parseDMS``.  A hemisphere letter of the other axis
    (``E`` under latitude) means the columns are swapped and is refused, as are minutes or seconds
    of 60 or more; the range is left to the caller, which tells swapped columns from typos."""
    s = text.strip().replace("\u2212", "-")
    try:
        return parse_number(s, what)
    except ValueError:
        letters = re.findall(r"[A-Za-z]", s)
        hemisphere = len(letters) == 1 and (s[0] in "NSEWnsew" or s[-1] in "NSEWnsew")
        if not (re.search(f"[{DMS_MARKS}]", s) or hemisphere):
            raise
    own = HEMISPHERES[what]
    if letters and (len(letters) > 1 or letters[0].upper() not in "NSEW"):
        raise ValueError(f"{what} {text!r} is not degrees, minutes and seconds")
    if letters and letters[0].upper() not in own:
        raise ValueError(f"{what} {text!r} has hemisphere {letters[0].upper()}, which is a "
                         f"{'longitude' if what == 'latitude' else 'latitude'}'s; lat/lon look swapped")
    if letters and s[0].isalpha():  # "N 47°30'": parseDMS wants the hemisphere last, in capitals
        s = s[1:].strip() + s[0]
    s = s[:-1] + s[-1].upper() if letters else s
    s = re.sub(r"(\d),(\d)", r"\1.\2", s.replace("º", "°"))  # a decimal comma; the ordinal º as °
    parts = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", s)]
    if any(x >= 60 for x in parts[1:3]):
        raise ValueError(f"{what} {text!r} has minutes or seconds of 60 or more")
    try:
        return float(parseDMS(s, suffix=own, clip=0))
    except (ParseError, RangeError, ValueError):
        raise ValueError(f"{what} {text!r} is neither decimal degrees nor degrees, minutes and seconds "
                         "(such as 47°30'15\"N)") from None
