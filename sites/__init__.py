"""Site registry: read, validate and describe registered archaeological sites."""

from .geo import area_m2, buffer_m, to_crs, utm_epsg
from .model import SENSITIVITIES, Site
from .registry import RegistryResult, read_sites

__all__ = ["SENSITIVITIES", "RegistryResult", "Site", "area_m2", "buffer_m", "read_sites", "to_crs", "utm_epsg"]
