"""Score detections against truth events, exactly as ``shared/data/README.md`` defines it.

* An event counts as detected when a detection lies within 20 m of its outline with
  ``first_seen`` between 3 days before and 60 days after the event's ``start``.
* Latency = ``first_seen - start`` of the earliest matching detection.
* A detection that matches no event is a false alarm; false alarms are reported per 100
  site-weeks of the monitoring period.
* Recall is reported for all events and for events under and over 0.5 ha.
* Only alert kinds count as events; distractor kinds (``recurring_agriculture``) are not events,
  so a detection on them is a false alarm.
* A case may name ``neutral_kinds`` (its ``case.json``): events of those kinds are neither to be
  found nor to be avoided, so a detection that matches one (by the same distance and date rule)
  and no alert event is neither a hit nor a false alarm; it is counted apart.

Geometries must be in a metric CRS (the caller reprojects); this module is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MATCH_DISTANCE_M = 20.0
EARLY_DAYS = 3
LATE_DAYS = 60
SMALL_EVENT_M2 = 5000.0


@dataclass(frozen=True)
class TruthEvent:
    event_id: str
    site_id: str
    kind: str
    start: pd.Timestamp
    area_m2: float
    geometry: object  # shapely, metric CRS


@dataclass(frozen=True)
class ScoredDetection:
    detection_id: str
    site_id: str
    first_seen: pd.Timestamp
    geometry: object  # shapely, metric CRS


@dataclass
class CaseScore:
    name: str
    events: int
    detected: int
    small_events: int
    small_detected: int
    detections: int
    false_alarms: int
    site_weeks: float
    latencies_days: list[float] = field(default_factory=list)
    matches: dict[str, str] = field(default_factory=dict)
    false_alarm_ids: list[str] = field(default_factory=list)
    neutral_ids: list[str] = field(default_factory=list)
    """Detections that match only a neutral-kind event: not false alarms, not hits."""

    @property
    def recall(self) -> float:
        return self.detected / self.events if self.events else float("nan")

    @property
    def false_alarms_per_100_site_weeks(self) -> float:
        return 100.0 * self.false_alarms / self.site_weeks if self.site_weeks else float("nan")

    @property
    def median_latency_days(self) -> float:
        return float(np.median(self.latencies_days)) if self.latencies_days else float("nan")


def score_case(
    name: str,
    events: list[TruthEvent],
    detections: list[ScoredDetection],
    n_sites: int,
    monitor_start: pd.Timestamp,
    monitor_end: pd.Timestamp,
    alert_kinds: tuple[str, ...] = ("looting", "bulldozing", "construction"),
    neutral_kinds: tuple[str, ...] = (),
) -> CaseScore:
    alert_events = [e for e in events if e.kind in alert_kinds]
    neutral_events = [e for e in events if e.kind in neutral_kinds and e.kind not in alert_kinds]
    weeks = (pd.Timestamp(monitor_end) - pd.Timestamp(monitor_start)).days / 7.0
    matched_dets: set[str] = set()
    latencies = []
    matches = {}
    detected = small = small_det = 0
    for ev in alert_events:
        is_small = ev.area_m2 < SMALL_EVENT_M2
        small += is_small
        hits = _matching(ev, detections)
        if hits:
            detected += 1
            small_det += is_small
            best = min(hits, key=lambda d: d.first_seen)
            latencies.append(float((best.first_seen - ev.start).days))
            matches[ev.event_id] = best.detection_id
            matched_dets.update(d.detection_id for d in hits)
    neutral = {d.detection_id for ev in neutral_events for d in _matching(ev, detections)} - matched_dets
    false = [d.detection_id for d in detections if d.detection_id not in matched_dets | neutral]
    return CaseScore(
        name, len(alert_events), detected, small, small_det, len(detections), len(false),
        n_sites * weeks, latencies, matches, false, sorted(neutral),
    )


def _matching(ev: TruthEvent, detections: list[ScoredDetection]) -> list[ScoredDetection]:
    """Detections within the match distance of the event and in its date window."""
    return [
        d for d in detections
        if d.geometry.distance(ev.geometry) <= MATCH_DISTANCE_M
        and -EARLY_DAYS <= (d.first_seen - ev.start).days <= LATE_DAYS
    ]


def aggregate(scores: list[CaseScore]) -> dict[str, float]:
    events = sum(s.events for s in scores)
    small = sum(s.small_events for s in scores)
    large = events - small
    lat = [x for s in scores for x in s.latencies_days]
    site_weeks = sum(s.site_weeks for s in scores)
    return {
        "events": events,
        "recall": sum(s.detected for s in scores) / events if events else float("nan"),
        "recall_small": sum(s.small_detected for s in scores) / small if small else float("nan"),
        "recall_large": (sum(s.detected - s.small_detected for s in scores) / large) if large else float("nan"),
        "false_alarms": sum(s.false_alarms for s in scores),
        "false_alarms_per_100_site_weeks": 100.0 * sum(s.false_alarms for s in scores) / site_weeks if site_weeks else float("nan"),
        "median_latency_days": float(np.median(lat)) if lat else float("nan"),
    }
