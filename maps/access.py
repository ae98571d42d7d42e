"""Access levels for every export: what a reader at a given level may see.

Levels, from least to most trusted: ``public`` < ``restricted`` < ``secret``.  An export made at
level *L* shows the exact outline of a site only when the site's sensitivity is at most *L*;
other sites, and detections at them, are generalised to the centre of a coarse grid cell
(:data:`GENERALISE_DEG`, about 11 km) and carry no outline.  A ``public`` export drops every
site outline.
"""

from __future__ import annotations

import math
import re

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

LEVELS = ("public", "restricted", "secret")
GENERALISE_DEG = 0.1


def rank(level: str) -> int:
    if level not in LEVELS:
        raise ValueError(f"access level must be one of {LEVELS}, not {level!r}")
    return LEVELS.index(level)


def may_see_exact(site_sensitivity: str, access: str) -> bool:
    """Whether a reader at ``access`` may see the exact geometry of a site of that sensitivity."""
    if access == "public":
        return False
    return rank(site_sensitivity) <= rank(access)


def generalise(geom: BaseGeometry, cell_deg: float = GENERALISE_DEG) -> Point:
    """Replace a lon/lat geometry with the centre of the grid cell holding its centroid."""
    c = geom.centroid
    gx = (math.floor(c.x / cell_deg) + 0.5) * cell_deg
    gy = (math.floor(c.y / cell_deg) + 0.5) * cell_deg
    return Point(round(gx, 6), round(gy, 6))


LOCATION_WITHHELD = "[location withheld]"
_LOCATION_PATTERNS = [
    re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE),  # a map link carries the place
    re.compile(r"\bgeo:[-+\d.,;=a-z]+", re.IGNORECASE),
    # degrees, minutes, seconds: 47°54'44"N, 47° 54.7' N
    re.compile(r"[-+]?\d{1,3}(?:\.\d+)?\s*°\s*(?:\d{1,2}(?:\.\d+)?\s*['′]\s*(?:\d{1,2}(?:\.\d+)?\s*[\"″]\s*)?)?[NSEW]?",
               re.IGNORECASE),
    # MGRS / UTM grid references: 48TXU4200206933, 48T XU 42002 06933
    re.compile(r"\b\d{1,2}[C-HJ-NP-X]\s?[A-HJ-NP-Z]{2}\s?\d{2,5}\s?\d{2,5}\b"),
    # Open Location Codes (plus codes): 8GX8+2X, 8GX8F2XR+5V
    re.compile(r"\b[23456789CFGHJMPQRVWX]{4,8}\+[23456789CFGHJMPQRVWX]{2,3}\b"),
    # decimal degrees: a pair with two decimals or more (47.91, 106.95 is within a kilometre), or
    # one number with four or more (47.91234: metres, not a size)
    re.compile(r"[-+]?\b\d{1,3}\.\d{2,}\s*[,;/ ]\s*[-+]?\d{1,3}\.\d{2,}\b"),
    re.compile(r"[-+]?\b\d{1,3}\.\d{4,}\b"),
]


def scrub_location(text: str) -> str:
    """``text`` without the coordinates people write into it — decimal degrees, degrees-minutes-
    seconds, MGRS, plus codes, map links — for outputs where the report's place is generalised:
    a reporter who pastes the GPS fix of a secret site must not publish it through the text."""
    for pattern in _LOCATION_PATTERNS:
        text = pattern.sub(LOCATION_WITHHELD, text)
    return text

