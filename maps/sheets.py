"""A printable one-page sheet per detection for the ranger: chips, coordinates, what to check."""

from __future__ import annotations

from gettext import NullTranslations
from pathlib import Path

from .escape import file_name, text
from .field_pack import FIELD_VERDICT_WORDS, waypoint_label
from .language import ENGLISH_WORDS, access_words, confidence_words, kind_words, phrase


def detection_sheet(det, site_name: str, lat: float, lon: float, mgrs: str, chips_html: str, access: str,
                    access_notes: str = "", verdict_words: dict[str, str] | None = None,
                    words: NullTranslations = ENGLISH_WORDS) -> str:
    """The sheet; ``verdict_words`` (the unit's word → verdict) are printed beside the verdicts'
    boxes, so a ranger ticks what the unit calls it; ``words`` the language of its labels
    (:mod:`maps.language`; the verdicts stay what ``sitewatch verdicts import`` reads)."""
    _ = words.gettext
    boxes = " ".join(
        "☐ " + text(" / ".join([*(w for w, v in (verdict_words or {}).items() if v == verdict), verdict]))
        for verdict in FIELD_VERDICT_WORDS)
    rows = [(_("Detection"), det.detection_id),
            (_("GPS waypoint"), phrase(words, "{label} (NN: its stop in the field pack's route)",
                                    label=waypoint_label("NN", det.detection_id))),
            (_("Site"), site_name), (_("Lat, lon (WGS 84)"), f"{lat:.6f}, {lon:.6f}"),
            ("MGRS", mgrs), (_("First seen"), det.first_seen), (_("Last seen"), det.last_seen),
            (_("Area"), f"{det.area_m2:.0f} m²"), (_("Confidence"), confidence_words(words, det.confidence)),
            (_("Type hint"), kind_words(words, det.kind_hint)),
            *det.repeat_rows(words),
            (_("Access notes"), access_notes or "—")]
    body = "".join(f"<tr><th>{text(k)}</th><td>{text(v)}</td></tr>" for k, v in rows)
    back = _("Back at base: write the verdict into field_pack.xlsx or field_pack.csv (verdict, checked_on, "
             "checked_by, field_note) and run")
    share = phrase(words, "Access level: {level}. Do not share this sheet outside the unit.",
                   level=access_words(words, access))
    title, heading = _("sitewatch field sheet"), phrase(words, "Field check — {id}", id=det.detection_id)
    record, verdict, checked_on, by = _("Record on site"), _("Verdict:"), _("Checked on:"), _("by:")
    notes = _("Notes / photo numbers:")
    return (
        f"<!DOCTYPE html><html lang='{text(words.info().get('language', 'en'))}'><head><meta charset='utf-8'>"
        f"<title>{text(title)}</title>"
        "<style>@page{size:A4;margin:15mm}body{font:13px sans-serif}th{text-align:left;padding-right:8px}"
        "img{width:45mm;image-rendering:pixelated}</style></head><body>"
        f"<h2>{text(heading)}</h2><table>{body}</table>{chips_html}"
        f"<h3>{text(record)}</h3><p>{text(verdict)} {boxes}</p>"
        f"<p>{text(checked_on)} ____________ {text(by)} ______________________</p>"
        f"<p>{text(notes)} ______________________________________________</p>"
        f"<p style='font-size:10px'>{text(back)} <code>sitewatch verdicts import</code>.</p>"
        f"<p style='font-size:10px'>{text(share)}</p>"
        "</body></html>"
    )


def write_sheet(html: str, folder: Path, detection_id: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_name(detection_id)}.html"
    path.write_text(html, encoding="utf-8")
    return path
