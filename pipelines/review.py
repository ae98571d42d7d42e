"""Review and field verdicts: append-only annotations on detections, and what they change.

Used by the notebooks and by ``sitewatch annotate``.  A new annotation supersedes the previous
one for the detection's status; the history stays in the store.
"""

from __future__ import annotations

from .store import Store

LABELS = ("looting", "bulldozing", "construction", "agriculture", "natural", "cloud/shadow artefact", "no change", "unsure")
CONFIRMED = {"looting", "bulldozing", "construction"}
FALSE_POSITIVE = {"agriculture", "natural", "cloud/shadow artefact", "no change"}
FIELD_VERDICTS = {"confirmed looting": "looting", "other disturbance": "construction", "nothing found": "no change"}


def status_for(label: str) -> str:
    return "confirmed" if label in CONFIRMED else "dismissed" if label in FALSE_POSITIVE else "review"


def annotate(store: Store, detection_id: str, label: str, author: str, note: str = "") -> int:
    """Append an annotation (or a ranger's field verdict) and update the detection's status."""
    label = FIELD_VERDICTS.get(label.strip().lower(), label.strip().lower())
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS} (or a field verdict {tuple(FIELD_VERDICTS)}), not {label!r}")
    if not author.strip():
        raise ValueError("an annotation needs an author")
    frame = store.detections()
    if frame.empty or detection_id not in set(frame.detection_id):
        raise ValueError(f"no detection {detection_id!r} in the store")
    n = store.add_annotation(detection_id, label, author.strip(), note)
    store.set_status(detection_id, status_for(label))
    return n
