"""The scoring rules of shared/data/README.md on constructed events and detections (no imagery)."""

import pandas as pd
from shapely.geometry import box

from change_detection.scoring import ScoredDetection, TruthEvent, aggregate, score_case

T = pd.Timestamp


def _event(eid, kind, start, x0):
    return TruthEvent(eid, "S1", kind, T(start), 900.0 * 4, box(x0, 0, x0 + 60, 60))


def _det(did, first_seen, x0):
    return ScoredDetection(did, "S1", T(first_seen), box(x0, 0, x0 + 30, 30))


EVENTS = [
    _event("E1", "looting", "2010-06-01", 0),
    _event("E2", "looting", "2010-06-01", 10_000),
    _event("D1", "recurring_agriculture", "2010-05-01", 20_000),
    _event("N1", "wildfire", "2010-07-01", 30_000),
]


def _score(dets, neutral=()):
    return score_case("c", EVENTS, dets, n_sites=2, monitor_start=T("2010-03-01"),
                      monitor_end=T("2010-12-31"), neutral_kinds=neutral)


def test_match_window_distance_and_latency():
    dets = [
        _det("hit", "2010-06-11", 75),         # 15 m from E1's outline, 10 days late
        _det("early", "2010-05-28", 10_000),   # 4 days before E2: outside the window
        _det("far", "2010-06-05", 10_085),     # 25 m from E2
    ]
    s = _score(dets)
    assert (s.events, s.detected, s.latencies_days, s.matches) == (2, 1, [10.0], {"E1": "hit"})
    assert sorted(s.false_alarm_ids) == ["early", "far"]
    assert s.site_weeks == 2 * (T("2010-12-31") - T("2010-03-01")).days / 7
    assert aggregate([s])["recall_small"] == 0.5


def test_a_distractor_is_a_false_alarm_and_a_neutral_kind_is_not():
    dets = [_det("field", "2010-05-10", 20_000), _det("fire", "2010-07-03", 30_000)]
    plain = _score(dets)
    assert sorted(plain.false_alarm_ids) == ["field", "fire"] and plain.neutral_ids == []
    s = _score(dets, neutral=("wildfire",))
    assert s.false_alarm_ids == ["field"] and s.neutral_ids == ["fire"] and s.detected == 0
    # Outside the neutral event's date window the detection is a false alarm again.
    late = _score([_det("fire-late", "2010-10-30", 30_000)], neutral=("wildfire",))
    assert late.false_alarm_ids == ["fire-late"]


def test_truth_file_absent_empty_or_real(tmp_path, case_2010):
    """A control case may ship no truth or an empty one; the real file reads in the sites' UTM zone."""
    from pipelines.evaluate import read_truth

    assert read_truth(tmp_path, 32613) == []
    (tmp_path / "truth.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    assert read_truth(tmp_path, 32613) == []
    events = read_truth(case_2010, 32613)
    assert {e.kind for e in events} >= {"looting", "recurring_agriculture"}
    e = events[0]
    assert 330_000 < e.geometry.centroid.x < 345_000 and e.area_m2 > 0  # metres, UTM 13N


def test_truth_times_with_a_time_zone_score_like_dates(tmp_path, case_2010):
    """``2010-10-11T00:00:00Z`` in a judged case's truth is the day ``2010-10-11``; no area given
    means the outline's area."""
    import json

    from pipelines.evaluate import read_truth, utc_naive

    truth = json.loads((case_2010 / "truth.geojson").read_text())
    plain = read_truth(case_2010, 32613)
    truth["features"][0]["properties"]["start"] += "T00:00:00Z"
    truth["features"][1]["properties"]["start"] += "T02:00:00+02:00"
    del truth["features"][0]["properties"]["area_m2"]
    (tmp_path / "truth.geojson").write_text(json.dumps(truth))
    events = read_truth(tmp_path, 32613)
    assert [e.start for e in events] == [e.start for e in plain] and events[0].start.tzinfo is None
    assert abs(events[0].area_m2 - events[0].geometry.area) < 1
    det = ScoredDetection("d", events[0].site_id, events[0].start + pd.Timedelta(days=5), events[0].geometry)
    case = score_case("tz", events[:1], [det], 1, utc_naive("2010-03-01T00:00:00Z"), utc_naive("2010-12-31"))
    assert case.detected == 1 and case.median_latency_days == 5


def test_a_broken_case_file_is_one_clear_error_and_a_case_without_truth_says_so(tmp_path, case_2010, capsys):
    import json
    import shutil

    from sitewatch.cli import main

    case = tmp_path / "c1"
    case.mkdir()
    shutil.copy(case_2010 / "sites.geojson", case / "sites.geojson")
    (case / "catalog").symlink_to(case_2010 / "catalog")
    (case / "case.json").write_text('{"name": "c1", ')
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "c1/case.json: not readable JSON" in capsys.readouterr().err
    (case / "case.json").write_text(json.dumps({"name": "c1", "monitor_start": "2010-12-01"}))
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "c1/case.json: no monitor_end" in capsys.readouterr().err
    (case / "case.json").write_text(json.dumps({"name": "c1", "monitor_start": "2010-12-01", "monitor_end": "soon"}))
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "are not dates" in capsys.readouterr().err
    (case / "case.json").write_text(json.dumps({"name": "c1", "monitor_start": "2010-12-01", "monitor_end": "2010-12-31"}))
    assert main(["evaluate", str(tmp_path)]) == 0
    assert "no truth.geojson, scored as controls (every detection a false alarm): c1" in capsys.readouterr().out
