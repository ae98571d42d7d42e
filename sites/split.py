"""Split a large site into parts small enough to watch one at a time.

A cultural landscape (Mongolia's Orkhon Valley covers 1 219 km²) cannot be scored in one piece:
its imagery would not fit in memory (``SITEWATCH_MAX_SITE_GB``).  Cut on a square grid in the
site's UTM zone, each part is a site of its own (``<id>-p01`` …, "name (part 1 of n)") with the
site's buffer, sensitivity and region, so the weekly run, the maps, the field packs and the alerts
handle it like any other.  Neighbouring parts are both watched over their buffers, so along a
seam they overlap by twice the buffer: a dig on a seam narrower than that is seen whole in one
part, and one on the overlap may be reported by both.
"""

from __future__ import annotations

import math
from dataclasses import replace

import shapely
from shapely.geometry import box, mapping

from .geo import to_crs, utm_epsg
from .model import SENSITIVITIES, Site


def split_site(site: Site, part_km: float) -> list[Site]:
    """``site`` itself if it fits in a ``part_km`` square, else its parts on a ``part_km`` grid."""
    if not part_km > 0:
        raise ValueError(f"part size must be positive, not {part_km!r}")
    epsg = utm_epsg(site.geometry)
    local = to_crs(site.geometry, 4326, epsg)
    minx, miny, maxx, maxy = local.bounds
    side = part_km * 1000.0
    if maxx - minx <= side and maxy - miny <= side:
        return [site]
    cols, rows = math.ceil((maxx - minx) / side), math.ceil((maxy - miny) / side)
    pieces = []
    for r in range(rows):  # north to south, west to east: parts read like a page
        for c in range(cols):
            cell = box(minx + c * side, maxy - (r + 1) * side, minx + (c + 1) * side, maxy - r * side)
            part = shapely.intersection(local, cell)
            polys = [g for g in getattr(part, "geoms", [part]) if g.geom_type in ("Polygon", "MultiPolygon") and g.area >= 1.0]
            if polys:
                pieces.append(shapely.union_all(polys))
    width = len(str(len(pieces)))
    return [
        replace(site, site_id=f"{site.site_id}-p{k:0{width}d}", name=f"{site.name} (part {k} of {len(pieces)})",
                geometry=to_crs(piece, epsg, 4326), id_key=f"{site.id_key}-p{k:0{width}d}" if site.id_key else "",
                repairs=(*site.repairs, f"part {k} of {len(pieces)} of {site.site_id}, split into {part_km:g} km squares"))
        for k, piece in enumerate(pieces, start=1)
    ]


def sites_feature_collection(sites: list[Site], part_of: dict[str, str] | None = None) -> dict:
    """Sites as a GeoJSON registry that :func:`sites.read_sites` reads back; ``part_of`` names the
    site each part was cut from."""
    part_of = part_of or {}
    # a registry holds exact outlines: it is readable at the level of its most sensitive site
    level = max((s.sensitivity for s in sites), key=SENSITIVITIES.index, default="public")
    return {"type": "FeatureCollection", "access_level": level, "features": [
        {"type": "Feature", "geometry": mapping(s.geometry), "properties": {
            "site_id": s.site_id, "name": s.name, "buffer_m": s.buffer_m, "sensitivity": s.sensitivity,
            "region": s.region, "part_of": part_of.get(s.site_id, "")}}
        for s in sites]}
