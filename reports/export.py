"""Write reconciliation results: GeoJSON and CSV, with no reporter identity in either."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from maps.escape import csv_cell

from .reconcile import ReconItem

FIELDS = ["outcome", "report_id", "detection_id", "site_id", "lat", "lon", "distance_m", "days_apart", "reason",
          "action", "confidence_after", "field_check"]


def write_reconciliation(items: list[ReconItem], out_dir: str | Path, access: str = "restricted") -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"geojson": out / "reconciliation.geojson", "csv": out / "reconciliation.csv"}
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [i.lon, i.lat]},
              "properties": {**{k: v for k, v in asdict(i).items() if k not in ("lat", "lon")}, "access_level": access}}
             for i in items]
    paths["geojson"].write_text(json.dumps({"type": "FeatureCollection", "access_level": access, "features": feats},
                                           indent=1, default=str), encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*FIELDS, "access_level"])
        w.writeheader()
        for i in items:
            w.writerow({**{k: csv_cell(v) for k, v in asdict(i).items()}, "access_level": access})
    return paths
