"""One exception hierarchy for sitewatch.

Every error says what was wrong and what to do about it.  Nothing is silently turned into
"no change": a provider that returns no clear pixels raises :class:`NoClearObservations`, it does
not return an empty detection list.
"""

from __future__ import annotations


class SitewatchError(Exception):
    """Base class for every error sitewatch raises on purpose."""


class InvalidSiteFile(SitewatchError):
    """A site registry file cannot be read or lacks required columns."""


class InvalidSiteGeometry(SitewatchError):
    """A site polygon is unusable (empty, not a polygon, swapped lat/lon, wrong CRS)."""


class DuplicateSiteId(SitewatchError):
    """Two rows of a site registry share one ``site_id``."""


class ImageryError(SitewatchError):
    """An imagery provider failed."""


class NoImagery(ImageryError):
    """The provider has no acquisition for the site and period asked."""


class NoClearObservations(ImageryError):
    """Acquisitions exist but every pixel is cloud, shadow, snow or fill."""


class CorruptRaster(ImageryError):
    """A raster asset cannot be read (truncated, not a GeoTIFF, wrong size)."""

    unreadable: tuple[dict, ...] | list[dict] = ()
    """The acquisitions that could not be read, where known (item, date, asset, href, error)."""


class SiteTooLarge(ImageryError):
    """A site's imagery would not fit the memory allowed per site; split the site into parts."""

    n_looks: int = 0
    """How many looks the refused load had (the part size that fits depends on it)."""
    resolution: float = 0.0
    """Its pixel size in metres."""
    days: tuple = ()
    """The days of its looks, where the provider knows them (how many looks any one year's load
    would hold: :func:`pipelines.monitoring.looks_per_load`)."""


class ProviderAuthError(ImageryError):
    """The provider rejected the credentials; retrying will not help."""


class TransientProviderError(ImageryError):
    """A retryable provider failure (quota, 429, 5xx, connection reset)."""


class InvalidReport(SitewatchError):
    """A community report row is unusable."""


class ConfigError(SitewatchError):
    """The configuration is incomplete or inconsistent."""
