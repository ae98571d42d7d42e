"""Public STAC API provider (no account): Earth Search by default, Planetary Computer optional.

Searches with ``pystac-client``, reads with ``odc-stac`` onto the same UTM grid as the other
providers, through the same :func:`~.local_stac.load_items`: bands, scales and the mask (SCL,
QA_PIXEL…) are found as :mod:`.stac_assets` says, so Planetary Computer's ``B04``/``SCL`` keys
answer to the common names.  Planetary Computer hrefs are signed with
``planetary_computer.sign_inplace`` when that package is installed.  A Sentinel-1 collection
(Planetary Computer's ``sentinel-1-rtc``: ``vv``/``vh`` as linear power) is searched without a
cloud filter.
"""

from __future__ import annotations

from collections.abc import Callable

import pystac
import xarray as xr

from sitewatch.errors import ConfigError

from .base import ImageryRequest
from .local_stac import item_time, load_items
from .retries import with_retries

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"


class StacApiProvider:
    name = "stac"

    def __init__(self, url: str = EARTH_SEARCH, collection: str = "sentinel-2-l2a", max_cloud: float = 80.0,
                 modifier: Callable | None = None, attempts: int = 4, sleep: Callable[[float], None] | None = None):
        if collection == "sentinel-1-grd":  # Earth Search's: digital numbers, not backscatter
            raise ConfigError("sentinel-1-grd holds uncalibrated, not terrain-corrected amplitudes, which the "
                              "detector cannot compare between dates; use Planetary Computer's sentinel-1-rtc "
                              "(--collection sentinel-1-rtc) or --provider earthengine --collection sentinel-1")
        self.url, self.collection, self.max_cloud = url, collection, max_cloud
        self.modifier = modifier
        if modifier is None and "planetarycomputer" in url:
            try:
                import planetary_computer

                self.modifier = planetary_computer.sign_inplace
            except ImportError as exc:
                raise ConfigError("Planetary Computer needs `pip install planetary-computer` to sign asset URLs") from exc
        self.attempts, self._sleep = attempts, sleep
        self.calls = 0

    @property
    def source(self) -> str:
        """Where the pixels come from, for the pixel cache's key."""
        return f"{self.name}|{self.url}|{self.collection}|{self.max_cloud}"

    def search(self, request: ImageryRequest) -> list[pystac.Item]:
        from pystac_client import Client

        def call():
            self.calls += 1
            client = Client.open(self.url, modifier=self.modifier)
            # radar items (Sentinel-1) carry no cloud cover, and a cloud filter would drop them all
            radar = "sentinel-1" in self.collection
            search = client.search(
                collections=[self.collection], intersects=request.geometry.__geo_interface__,
                datetime=f"{request.start.date()}/{request.end.date()}",
                query=None if radar else {"eo:cloud_cover": {"lt": self.max_cloud}},
            )
            return list(search.items())

        kw = {"sleep": self._sleep} if self._sleep else {}
        items = with_retries(call, provider=self.name, attempts=self.attempts, **kw)
        return sorted(items, key=item_time)

    def load(self, request: ImageryRequest) -> xr.Dataset:
        # Without a requested resolution: the finest of the bands' own (Sentinel-2 10 m, Landsat 30 m).
        return load_items(self.search(request), request, self.name)
