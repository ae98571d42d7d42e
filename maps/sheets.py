"""A printable one-page sheet per detection for the ranger: chips, coordinates, what to check."""

from __future__ import annotations

from pathlib import Path

from .escape import file_name, text
from .field_pack import FIELD_VERDICT_WORDS, waypoint_label


def detection_sheet(det, site_name: str, lat: float, lon: float, mgrs: str, chips_html: str, access: str,
                    access_notes: str = "", verdict_words: dict[str, str] | None = None) -> str:
    """The sheet; ``verdict_words`` (the unit's word → verdict) are printed beside the verdicts'
    boxes, so a ranger ticks what the unit calls it."""
    boxes = " ".join(
        "☐ " + text(" / ".join([*(w for w, v in (verdict_words or {}).items() if v == verdict), verdict]))
        for verdict in FIELD_VERDICT_WORDS)
    rows = [("Detection", det.detection_id),
            ("GPS waypoint", f"{waypoint_label('NN', det.detection_id)} (NN: its stop in the field pack's route)"),
            ("Site", site_name), ("Lat, lon (WGS 84)", f"{lat:.6f}, {lon:.6f}"),
            ("MGRS", mgrs), ("First seen", det.first_seen), ("Last seen", det.last_seen),
            ("Area", f"{det.area_m2:.0f} m²"), ("Confidence", det.confidence), ("Type hint", det.kind_hint.replace("_", " ")),
            *det.repeat_rows(),
            ("Access notes", access_notes or "—")]
    body = "".join(f"<tr><th>{text(k)}</th><td>{text(v)}</td></tr>" for k, v in rows)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sitewatch field sheet</title>"
        "<style>@page{size:A4;margin:15mm}body{font:13px sans-serif}th{text-align:left;padding-right:8px}"
        "img{width:45mm;image-rendering:pixelated}</style></head><body>"
        f"<h2>Field check — {text(det.detection_id)}</h2><table>{body}</table>{chips_html}"
        f"<h3>Record on site</h3><p>Verdict: {boxes}</p>"
        "<p>Checked on: ____________ by: ______________________</p>"
        "<p>Notes / photo numbers: ______________________________________________</p>"
        "<p style='font-size:10px'>Back at base: write the verdict into field_pack.xlsx or field_pack.csv (verdict, "
        "checked_on, checked_by, field_note) and run <code>sitewatch verdicts import</code>.</p>"
        f"<p style='font-size:10px'>Access level: {text(access)}. Do not share this sheet outside the unit.</p>"
        "</body></html>"
    )


def write_sheet(html: str, folder: Path, detection_id: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_name(detection_id)}.html"
    path.write_text(html, encoding="utf-8")
    return path
