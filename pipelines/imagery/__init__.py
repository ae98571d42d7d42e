"""Imagery providers behind one interface (:class:`ImageryProvider`), chosen by configuration."""

from __future__ import annotations

from .base import ImageryProvider, ImageryRequest
from .local_stac import LocalStacProvider

__all__ = ["ImageryProvider", "ImageryRequest", "LocalStacProvider", "make_provider"]


def make_provider(kind: str = "local", catalog: str | None = None, cache_dir: str | None = None, **options) -> ImageryProvider:
    """``local`` (static catalog, the default), ``stac`` (public STAC API) or ``earthengine``.
    ``options`` go to the provider: ``collection`` (Earth Engine: ``sentinel-2``, ``landsat`` or
    ``sentinel-1``; STAC: a collection id), ``orbit_pass`` (Earth Engine Sentinel-1); None is the
    provider's default."""
    from sitewatch.config import check_provider_options
    from sitewatch.errors import ConfigError

    options = {k: v for k, v in options.items() if v is not None}
    check_provider_options(kind, options.get("collection"), options.get("orbit_pass"))
    if kind == "local":
        if not catalog:
            raise ConfigError("the local provider needs --stac PATH/TO/catalog.json")
        provider: ImageryProvider = LocalStacProvider(catalog)
    elif kind == "stac":
        from .stac_api import StacApiProvider

        provider = StacApiProvider(**options)
    elif kind == "earthengine":
        from .earthengine import EarthEngineProvider

        provider = EarthEngineProvider(**options)
    else:
        raise ConfigError(f"unknown provider {kind!r}; use local, stac or earthengine")
    if cache_dir:
        from .cache import CachedProvider

        provider = CachedProvider(provider, cache_dir)
    return provider
