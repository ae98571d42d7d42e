"""``sitewatch evaluate``: run the detector on benchmark cases and score it.

A case folder holds ``catalog/``, ``sites.geojson``, ``truth.geojson`` (or ``truth_mask.tif``
for a bi-temporal case) and ``case.json``.  Time-series cases are scored per event
(:mod:`change_detection.scoring`); bi-temporal cases per pixel (precision, recall, F1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio import features as rio_features

from change_detection import DetectorParams
from change_detection.scoring import CaseScore, ScoredDetection, TruthEvent, aggregate, score_case
from sites import read_sites
from sites.geo import to_crs, utm_epsg
from sitewatch.errors import SitewatchError

from .imagery.local_stac import LocalStacProvider
from .monitoring import run_site


@dataclass
class PixelScore:
    name: str
    precision: float
    recall: float
    f1: float
    detections: int


@dataclass
class Evaluation:
    cases: list[CaseScore] = field(default_factory=list)
    pixel_cases: list[PixelScore] = field(default_factory=list)
    without_truth: list[str] = field(default_factory=list)
    """Cases with no ``truth.geojson``, scored as controls (every detection a false alarm)."""

    @property
    def summary(self) -> dict[str, float]:
        return aggregate(self.cases)


def find_cases(root: str | Path) -> list[Path]:
    root = Path(root)
    if (root / "case.json").exists():
        return [root]
    return sorted(p.parent for p in root.glob("*/case.json"))


def utc_naive(value) -> pd.Timestamp:
    """A date or time from a case file as a time-zone-naive UTC timestamp (``2010-10-11`` and
    ``2010-10-11T00:00:00Z`` are the same day), as the imagery's acquisition times are."""
    t = pd.Timestamp(value)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def read_case(case_dir: Path) -> dict:
    """``case.json``, checked for what scoring needs."""
    path = case_dir / "case.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SitewatchError(f"{path}: not readable JSON ({exc})") from exc
    missing = [k for k in ("monitor_start", "monitor_end") if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise SitewatchError(f"{path}: no {' or '.join(missing)}")
    try:
        utc_naive(meta["monitor_start"]), utc_naive(meta["monitor_end"])
    except (ValueError, TypeError) as exc:
        raise SitewatchError(f"{path}: monitor_start/monitor_end are not dates ({exc})") from exc
    return meta


def run_case(case_dir: Path, params: DetectorParams = DetectorParams()):
    meta = read_case(case_dir)
    sites = read_sites(case_dir / "sites.geojson").sites
    provider = LocalStacProvider(case_dir / "catalog")
    start, end = utc_naive(meta["monitor_start"]), utc_naive(meta["monitor_end"])
    if meta.get("kind") == "bitemporal":
        # One look after one reference image: nothing can be confirmed on a second look.
        params = replace(params, min_looks=1)
    results = [run_site(s, provider, start, end, params) for s in sites]
    return meta, sites, results


def case_name(case_dir: Path, meta: dict) -> str:
    return str(meta.get("name") or case_dir.name)


def read_truth(case_dir: Path, epsg: int) -> list[TruthEvent]:
    """The case's events in the sites' UTM zone.  No ``truth.geojson``, or one without features,
    is a case without events (a control): every detection is then a false alarm."""
    path = case_dir / "truth.geojson"
    if not path.exists() or not json.loads(path.read_text()).get("features"):
        return []
    truth = gpd.read_file(path)
    if truth.crs is None:  # GeoJSON is lon/lat (RFC 7946)
        truth = truth.set_crs(4326)
    truth = truth.to_crs(epsg)
    return [
        TruthEvent(str(r.event_id), str(r.site_id), str(r.kind), utc_naive(r.start),
                   float(r.area_m2) if "area_m2" in truth and pd.notna(r.area_m2) else float(r.geometry.area),
                   r.geometry)
        for r in truth.itertuples()
    ]


def evaluate_case(case_dir: Path, params: DetectorParams = DetectorParams()) -> CaseScore | PixelScore:
    meta, sites, results = run_case(case_dir, params)
    dets = [d for r in results for d in r.detections]
    if meta.get("kind") == "bitemporal":
        return _pixel_score(case_dir, case_name(case_dir, meta), dets)
    epsg = utm_epsg(sites[0].geometry)
    events = read_truth(case_dir, epsg)
    scored = [ScoredDetection(d.detection_id, d.site_id, d.first_seen, to_crs(d.geometry, 4326, epsg)) for d in dets]
    kinds = tuple(meta.get("alert_kinds", ("looting", "bulldozing", "construction")))
    return score_case(case_name(case_dir, meta), events, scored, len(sites), utc_naive(meta["monitor_start"]),
                      utc_naive(meta["monitor_end"]), kinds, tuple(meta.get("neutral_kinds", ())))


def _pixel_score(case_dir: Path, name: str, dets) -> PixelScore:
    with rasterio.open(case_dir / "truth_mask.tif") as src:
        truth = src.read(1) == 1
        shapes = [(to_crs(d.geometry, 4326, src.crs.to_string()).__geo_interface__, 1) for d in dets]
        pred = (
            rio_features.rasterize(shapes, out_shape=truth.shape, transform=src.transform, dtype="uint8").astype(bool)
            if shapes else np.zeros_like(truth)
        )
    tp = float((pred & truth).sum())
    precision = tp / pred.sum() if pred.sum() else 0.0
    recall = tp / truth.sum() if truth.sum() else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PixelScore(name, precision, recall, f1, len(dets))


def evaluate(root: str | Path, params: DetectorParams = DetectorParams()) -> Evaluation:
    ev = Evaluation()
    for case in find_cases(root):
        res = evaluate_case(case, params)
        (ev.pixel_cases if isinstance(res, PixelScore) else ev.cases).append(res)
        if isinstance(res, CaseScore) and not (case / "truth.geojson").exists():
            ev.without_truth.append(res.name)
    return ev


def _share(value: float, decimals: int = 2) -> str:
    """A figure with its decimals, or a dash where there is nothing to measure (no event)."""
    return "–" if value != value else f"{value:.{decimals}f}"


def format_evaluation(ev: Evaluation) -> str:
    lines = [f"{'case':<22}{'events':>7}{'found':>7}{'recall':>8}{'false':>7}{'FA/100sw':>10}{'lat.med':>9}"]
    for c in ev.cases:
        lines.append(
            f"{c.name:<22}{c.events:>7}{c.detected:>7}{_share(c.recall):>8}{c.false_alarms:>7}"
            f"{c.false_alarms_per_100_site_weeks:>10.2f}{_share(c.median_latency_days, 1):>9}"
        )
    if ev.cases:
        s = ev.summary
        lines.append(
            f"{'ALL':<22}{s['events']:>7}{'':>7}{_share(s['recall']):>8}{s['false_alarms']:>7}"
            f"{s['false_alarms_per_100_site_weeks']:>10.2f}{_share(s['median_latency_days'], 1):>9}"
        )
        lines.append(f"recall under 0.5 ha: {_share(s['recall_small'])}   over 0.5 ha: {_share(s['recall_large'])}")
        neutral = sum(len(c.neutral_ids) for c in ev.cases)
        if neutral:
            lines.append(f"detections on neutral-kind events (neither hits nor false alarms): {neutral}")
    if ev.without_truth:
        lines.append(f"no truth.geojson, scored as controls (every detection a false alarm): {', '.join(ev.without_truth)}")
    for p in ev.pixel_cases:
        lines.append(f"{p.name} (per pixel): precision {p.precision:.3f} recall {p.recall:.3f} F1 {p.f1:.3f} "
                     f"({p.detections} polygons)")
    return "\n".join(lines)
