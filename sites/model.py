"""The site record."""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely.geometry.base import BaseGeometry

SENSITIVITIES = ("public", "restricted", "secret")


@dataclass(frozen=True)
class Site:
    """A registered archaeological site."""

    site_id: str
    """Unique identifier, as the heritage authority spells it."""
    name: str
    """Human name shown to police and rangers (never trusted as HTML)."""
    geometry: BaseGeometry
    """Polygon or MultiPolygon in EPSG:4326 (lon, lat)."""
    buffer_m: float = 50.0
    """Watch this many metres around the polygon as well."""
    sensitivity: str = "restricted"
    """``public``, ``restricted`` or ``secret``: who may see the exact outline."""
    region: str = ""
    """Administrative region or patrol area; field packs are cut by it."""
    repairs: tuple[str, ...] = field(default=())
    """What the registry changed on import (geometry repair, point buffered, CRS assumed)."""
    id_key: str = ""
    """The id the detector names this site's digs by, where it is not ``site_id``: the id the site
    had when it was first watched, kept through ``sitewatch sites rename`` so that its digs keep
    their ids (and with them their reviews, checks and alerts).  Set by the store, never read from
    a registry file."""

    def __post_init__(self) -> None:
        if self.sensitivity not in SENSITIVITIES:
            raise ValueError(f"sensitivity must be one of {SENSITIVITIES}, not {self.sensitivity!r}")
