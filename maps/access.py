"""Access levels for every export: what a reader at a given level may see.

Levels, from least to most trusted: ``public`` < ``restricted`` < ``secret``.  An export made at
level *L* shows the exact outline of a site only when the site's sensitivity is at most *L*;
other sites, and detections at them, are generalised to the centre of a coarse grid cell
(:data:`GENERALISE_DEG`, about 11 km) and carry no outline.  A ``public`` export drops every
site outline.
"""

from __future__ import annotations

import math

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
