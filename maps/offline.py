"""Make a folium page work with no network: inline the vendored Leaflet assets, drop the rest.

folium's template loads Leaflet, jQuery, Bootstrap, Font Awesome and plugins from CDNs.  The
offline page inlines the files in ``maps/static/vendor`` (Leaflet, jQuery — popups need it —
and MarkerCluster) and removes every other external script and stylesheet; pages built for
offline use add no web tiles (the site's own imagery is the base layer).
"""

from __future__ import annotations

import re
from importlib import resources

VENDOR = resources.files("maps") / "static" / "vendor"
INLINE_JS = {"leaflet.js": "leaflet.js", "jquery": "jquery.min.js", "leaflet.markercluster": "leaflet.markercluster.js"}
INLINE_CSS = {"leaflet.css": "leaflet.css", "MarkerCluster.Default.css": "MarkerCluster.Default.css",
              "MarkerCluster.css": "MarkerCluster.css"}

_SCRIPT = re.compile(r'<script\s+src="(https?:[^"]+)"\s*>\s*</script>', re.I)
_LINK = re.compile(r'<link\s+rel="stylesheet"\s+href="(https?:[^"]+)"\s*/?>', re.I)


def _asset(name: str) -> str:
    return (VENDOR / name).read_text(encoding="utf-8")


def inline_assets(html: str) -> str:
    """Return the page with vendored assets inlined and no external script or stylesheet left."""

    def script(m: re.Match) -> str:
        url = m.group(1)
        for key, name in INLINE_JS.items():
            if key in url and not url.endswith(".css"):
                return "<script>" + _asset(name).replace("</script", "<\\/script") + "</script>"
        return ""

    def link(m: re.Match) -> str:
        url = m.group(1)
        for key, name in INLINE_CSS.items():
            if url.endswith(key):
                return "<style>" + _asset(name) + "</style>"
        return ""

    out = _SCRIPT.sub(script, html)
    out = _LINK.sub(link, out)
    return out


def external_references(html: str) -> list[str]:
    """Any script, image or stylesheet the page would fetch from the network (links to click are fine)."""
    return re.findall(r'src="(https?://[^"]+)"', html) + re.findall(r'<link[^>]+href="(https?://[^"]+)"', html)
