"""Incremental detector state: a weekly run scores only the new looks and gets the backfill's answer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from change_detection import DetectorParams, detect_changes
from change_detection.detect import AnomalyCube, _extend_onset
from change_detection.incremental import detect_incremental, dump_state, load_state
from change_detection.synthetic import add_disturbance, add_pits, box_mask, synthetic_series
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.store import Store
from pipelines.weekly import run_period, weeks_between
from sites import read_sites


def _same(a, b):
    assert [d.detection_id for d in a] == [d.detection_id for d in b]
    for x, y in zip(a, b):
        assert (x.first_seen, x.last_seen, x.confidence, x.n_looks, x.area_m2) == \
               (y.first_seen, y.last_seen, y.confidence, y.n_looks, y.area_m2)
        assert x.evidence["delta"] == y.evidence["delta"]


def test_week_by_week_state_equals_full_recompute():
    ds = add_disturbance(synthetic_series(seed=31), box_mask(synthetic_series(seed=31), 4, 10, 4, 10), "2011-06-10")
    state, scored = None, []
    for end in pd.date_range("2011-04-03", "2011-10-30", freq="7D"):
        week = ds.sel(time=slice(None, end))
        dets, st, n = detect_incremental(week, "S", "2011-03-01", load_state(dump_state(state)) if state else None)
        state = st
        scored.append(n)
        _same(dets, detect_changes(week, "S", since="2011-03-01"))
    assert dets, "the disturbance must be found"
    assert max(scored[1:]) <= 1  # an 8-day revisit: at most one new look a week; nothing rescored


def test_a_redrawn_site_outline_keeps_its_detection_ids():
    """A detection's id names its anchor pixel by map coordinates, so a site whose outline is
    redrawn in the registry (its grid grows or shrinks around the same pixels) keeps the ids of
    its digs, and with them their reviews, field checks and alerts.  Before, the id held the
    pixel's index in the grid, and every open dig of an edited site came back under a new id."""
    ds = add_disturbance(synthetic_series(seed=31), box_mask(synthetic_series(seed=31), 4, 10, 4, 10), "2011-06-10")
    whole = detect_changes(ds, "S", since="2011-03-01")
    assert len(whole) == 1
    for crop in ({"y": slice(2, None), "x": slice(1, None)}, {"y": slice(None, -3), "x": slice(None, -2)}):
        part = detect_changes(ds.isel(**crop), "S", since="2011-03-01")
        assert [(d.detection_id, d.first_seen) for d in part] == [(d.detection_id, d.first_seen) for d in whole]
    moved = detect_changes(add_disturbance(synthetic_series(seed=31), box_mask(synthetic_series(seed=31), 5, 11, 4, 10),
                                           "2011-06-10"), "S", since="2011-03-01")
    assert moved[0].detection_id != whole[0].detection_id  # another place is another dig


def test_week_by_week_state_equals_full_recompute_on_an_rgb_mosaic():
    """The texture feature of an RGB mosaic depends only on the same look's neighbours, so a
    look's score is final once computed here too."""
    base = synthetic_series(ny=40, nx=40, seed=9, rgb_only=True, resolution=3.0, start="2009-01-01")
    ds = add_pits(base, box_mask(base, 8, 28, 10, 30), "2011-06-10")
    state = None
    for end in pd.date_range("2011-08-28", "2011-10-09", freq="7D"):
        week = ds.sel(time=slice(None, end))
        dets, state, _ = detect_incremental(week, "S", "2011-03-01", load_state(dump_state(state)) if state else None)
        _same(dets, detect_changes(week, "S", since="2011-03-01"))
    assert dets and "texture" in dets[0].evidence["features"]


def test_week_by_week_state_equals_full_recompute_through_snow():
    """A look seen through snow is scored against the snow of that same look only, so its score
    is final once computed: a spring dig dated from a snowy look comes out the same week by week."""
    from change_detection.synthetic import set_snow

    ds = synthetic_series(seed=41)
    for i, day in enumerate(("2011-03-24", "2011-04-01")):
        ds = set_snow(ds, day, flagged=True, noise=0.01, seed=i)
    ds = add_disturbance(ds, box_mask(ds, 6, 12, 6, 12), "2011-03-20", intensity=0.5)
    state = None
    for end in pd.date_range("2011-03-20", "2011-05-15", freq="7D"):
        week = ds.sel(time=slice(None, end))
        dets, state, _ = detect_incremental(week, "S", "2011-03-01", load_state(dump_state(state)) if state else None)
        _same(dets, detect_changes(week, "S", since="2011-03-01"))
    assert dets and dets[0].evidence["looks_through_snow"] >= 1 and dets[0].first_seen < pd.Timestamp("2011-04-05")


def test_week_by_week_state_equals_full_recompute_across_the_thaw():
    """A dig seen through spring snow, invisible on the thaw's clear looks and confirmed at
    green-up: the week that confirms it dates it from the snowy look, as a backfill does."""
    from change_detection.synthetic import DRY, set_snow

    ds = synthetic_series(seed=44)
    for i, day in enumerate(("2011-04-15", "2011-04-23")):
        ds = set_snow(ds, day, flagged=True, noise=0.01, seed=i)
    ds = add_disturbance(ds, box_mask(ds, 6, 12, 6, 12), "2011-04-13", intensity=0.6, soil=DRY)
    state = None
    for end in pd.date_range("2011-04-24", "2011-06-05", freq="7D"):
        week = ds.sel(time=slice(None, end))
        dets, state, _ = detect_incremental(week, "S", "2011-03-01", load_state(dump_state(state)) if state else None)
        _same(dets, detect_changes(week, "S", since="2011-03-01"))
    assert dets and dets[0].first_seen == pd.Timestamp("2011-04-15")


def test_week_by_week_state_equals_full_recompute_across_a_re_armed_site():
    from change_detection.synthetic import heal

    base = synthetic_series(seed=21, end="2013-12-31")
    mask = box_mask(base, 6, 12, 6, 12)
    ds = add_disturbance(heal(add_disturbance(base, mask, "2011-06-10"), base, mask, "2011-09-01"), mask, "2013-06-10")
    state = None
    for end in ["2011-12-31", "2012-12-31", "2013-05-31"] + [str(d.date()) for d in pd.date_range("2013-06-02", "2013-07-31", freq="7D")]:
        part = ds.sel(time=slice(None, end))
        dets, state, _ = detect_incremental(part, "S", "2011-03-01", load_state(dump_state(state)) if state else None)
        _same(dets, detect_changes(part, "S", since="2011-03-01"))
    assert len(dets) == 2 and state.conf.closed.max() == 1  # the 2011 episode closed, kept in the state


def test_a_stored_state_stays_a_year_deep_and_keeps_older_looks_only_where_the_ground_changed():
    """Six years watched, run quarterly through the store's bytes: the state holds every pixel's
    looks of the last year and the older ones only of pixels with a disturbance or a pending run,
    and finds what one run over everything finds, and what a state keeping every look finds."""
    base = synthetic_series(seed=33, start="2008-01-01", end="2016-12-31")
    early, late = box_mask(base, 2, 7, 2, 7), box_mask(base, 14, 19, 14, 19)
    ds = add_disturbance(add_disturbance(base, early, "2012-06-10"), late, "2015-07-01")
    runs = {}
    for params in (DetectorParams(), DetectorParams(onset_reach_days=0)):
        state = None
        for end in pd.date_range("2011-03-31", "2016-12-31", freq="91D"):
            part = ds.sel(time=slice(None, end))
            resumed = load_state(dump_state(state)) if state else None
            dets, state, _ = detect_incremental(part, "S", "2011-03-01", resumed, params=params)
        _same(dets, detect_changes(part, "S", since="2011-03-01", params=params))
        runs[params.onset_reach_days] = dets, state
    (dets, state), (every, whole) = runs[365.0], runs[0]
    _same(dets, every)
    assert [d.first_seen.year for d in dets] == [2012, 2015]
    cube, n_pix = state.cube, early.size
    assert whole.cube.start == 0 and 0 < (cube.times[-1] - cube.times[cube.start]).days <= 365
    assert set(np.flatnonzero((early | late).ravel())) <= set(cube.kept) and cube.kept.size < n_pix / 4
    assert len(dump_state(state)) * 3 < len(dump_state(whole))
    # a pixel the state keeps reads as the whole state's from a year before its dig on; one it does
    # not keep is NaN before the last year
    dug, calm = int(np.flatnonzero(late.ravel())[0]), int(np.setdiff1d(np.arange(n_pix), cube.kept)[0])
    k = int(np.searchsorted(cube.times, pd.Timestamp("2014-07-01")))
    np.testing.assert_array_equal(cube.score_at(slice(k, None), dug), whole.cube.score[k:, dug])
    np.testing.assert_array_equal(cube.z_at(slice(k, None), dug), whole.cube.z[k:, :, dug])
    assert np.isnan(cube.score_at(slice(0, cube.start), calm)).all() and np.isfinite(whole.cube.score[:, calm]).any()


def test_the_onset_walk_goes_back_no_further_than_its_reach():
    """A region faintly changed in the same direction on every look for two years before it was
    confirmed is dated at most ``onset_reach_days`` before the confirming look, not two years back."""
    times = pd.date_range("2012-01-01", periods=60, freq="16D")
    score = np.full((60, 4), 2.0)  # above the walk's 1.2, below the threshold
    z = np.zeros((60, 2, 4), dtype="float16")
    z[:, 0] = 2.0
    cube = AnomalyCube(times, score, np.zeros((60, 2, 4)), ["a", "b"], [], z)
    direction, pix = np.array([1.0, 0.0]), np.arange(4)
    assert _extend_onset(cube, pix, 59, 1.2, direction, 0.5) == 0
    k = _extend_onset(cube, pix, 59, 1.2, direction, 0.5, reach=365.0)
    assert 365 - 16 < (times[59] - times[k]).days <= 365


def test_state_is_not_reused_when_settings_or_history_change():
    ds = synthetic_series(seed=32)
    _, st, n1 = detect_incremental(ds.sel(time=slice(None, "2011-06-30")), "S", "2011-03-01", None)
    assert n1 > 5
    _, _, n2 = detect_incremental(ds.sel(time=slice(None, "2011-06-30")), "S", "2011-04-01", st)  # other epoch
    assert n2 > 0 and n2 == len(pd.DatetimeIndex(ds.time.values)[(ds.time.values >= np.datetime64("2011-04-01"))
                                                                   & (ds.time.values <= np.datetime64("2011-06-30"))])
    dropped = ds.sel(time=slice(None, "2011-06-30"))
    dropped = dropped.drop_sel(time=dropped.time.values[-5])  # an acquisition the state knew is gone
    _, _, n3 = detect_incremental(dropped, "S", "2011-03-01", st)
    assert n3 == n1 - 1  # recomputed from the epoch
    assert load_state(b"not a state") is None


def test_weekly_runs_store_state_and_score_only_new_looks(case_2011, tmp_path):
    sites = [s for s in read_sites(case_2011 / "sites.geojson").sites if s.site_id in ("S02-04", "S02-05")]
    provider = LocalStacProvider(case_2011 / "catalog")
    store = Store(str(tmp_path / "sw.db"))
    _, first = run_period(store, sites, provider, "2011-03-01", "2011-06-26", tmp_path / "a")
    assert first["looks_scored"] >= 10 and store.site_state("S02-04")
    from pipelines.review import annotate, history

    june = store.detections()
    s05 = june[june.site_id == "S02-05"].sort_values("first_seen")
    assert len(s05) >= 2  # in June the dig shows as separate parts and onsets
    later = s05.detection_id.iloc[0]
    annotate(store, later, "looting", "field team")  # a verdict on the part that will be merged away
    from datetime import datetime

    from pipelines.alerts import due_alerts
    from sitewatch.config import AlertConfig

    paged = due_alerts(store, sites, AlertConfig(min_confidence="low"), datetime(2011, 6, 27, 9))
    assert set(s05.detection_id) <= {a.detection_id for a in paged}
    store.record_alerts([(a.detection_id, a.confidence) for a in paged], "2011-06-27")
    for _label, monday, sunday in weeks_between("2011-06-27", "2011-07-24"):
        _, s = run_period(store, sites, provider, str(monday.date()), str(sunday.date()), tmp_path / "w")
        assert s["looks_scored"] <= 2 * len(sites)  # one or two new looks per site, not the whole season
    back = Store(str(tmp_path / "back.db"))
    run_period(back, sites, provider, "2011-03-01", "2011-07-24", tmp_path / "b")
    cols = ["detection_id", "first_seen", "last_seen", "confidence", "n_looks", "area_m2"]
    weekly = store.detections()
    superseded = weekly[weekly.status == "superseded"]
    assert set(superseded.detection_id) == set(s05.detection_id)  # June's parts merged into one dig by July
    hosts = weekly[(weekly.site_id == "S02-05") & (weekly.status != "superseded")]
    assert len(hosts) == 1
    host = hosts.detection_id.iloc[0]
    carried = history(store, host)  # the verdict moved to the detection that absorbed it
    assert carried[-1]["label"] == "looting" and carried[-1]["author"] == "sitewatch" and later in carried[-1]["note"]
    # The police were paged for June's parts: the dig that absorbed them pages nobody again at a
    # level already sent (before, the new id was paged as if it were a new dig).
    from change_detection.detect import CONFIDENCES

    sent = max(CONFIDENCES.index(a.confidence) for a in paged if a.detection_id in set(s05.detection_id))
    again = [a for a in due_alerts(store, sites, AlertConfig(min_confidence="low"), datetime(2011, 7, 25, 9))
             if a.detection_id == host]
    assert all(CONFIDENCES.index(a.confidence) > sent and a.escalation for a in again)
    live = weekly[weekly.status != "superseded"]
    pd.testing.assert_frame_equal(live[cols].sort_values("detection_id").reset_index(drop=True),
                                  back.detections()[cols].sort_values("detection_id").reset_index(drop=True))


class _Recording:
    """A provider of a synthetic series that notes from when each request asked for imagery."""

    name = "synthetic"

    def __init__(self, ds):
        self.ds, self.starts, self.ends = ds, [], []

    def load(self, request):
        self.starts.append(pd.Timestamp(request.start))
        self.ends.append(pd.Timestamp(request.end))
        return self.ds.sel(time=slice(request.start, request.end))


def _years_of_a_site(seed: int, site_id: str):
    """Seven years of a synthetic site with a dig in 2012 and one in 2014, and the site over it."""
    from shapely.geometry import box

    from sites import Site
    from sites.geo import to_crs

    base = synthetic_series(ny=24, nx=24, seed=seed, start="2008-01-01", end="2014-12-31")
    ds = add_disturbance(base, box_mask(base, 3, 9, 3, 9), "2012-06-12")
    ds = add_disturbance(ds, box_mask(ds, 14, 20, 14, 20), "2014-07-08")
    x, y = ds.x.values, ds.y.values
    return ds, Site(site_id, site_id, to_crs(box(x[1], y[-2], x[-2], y[1]), 32613, 4326), 0.0, "restricted", "V")


def test_a_weekly_run_years_after_the_epoch_reads_only_its_history_years(tmp_path):
    """Every weekly run loaded the imagery from the site's monitoring epoch on (minus the history
    years), so its memory and time grew with every year the site was watched: after ten years a
    week held 3.3 times the first year's memory.  The stored state already holds every earlier
    look; now a run that resumes it reads only what the new looks' baselines reach back to, and
    finds exactly what reading everything finds.  Where the state does not fit that imagery (a
    late acquisition inside it), the run reads from the epoch and recomputes."""
    ds, site = _years_of_a_site(33, "SYN-7")
    provider = _Recording(ds)
    weekly = Store(str(tmp_path / "weekly.db"))
    run_period(weekly, [site], provider, "2011-03-01", "2014-06-29", tmp_path / "a")
    assert provider.starts[0] == pd.Timestamp("2008-01-01")  # the first run: the epoch minus the history
    provider.starts.clear()
    scored = []
    for _label, monday, sunday in weeks_between("2014-06-30", "2014-07-27"):
        _, s = run_period(weekly, [site], provider, str(monday.date()), str(sunday.date()), tmp_path / "w")
        scored.append(s["looks_scored"])
    # each week reads from its state's last look minus three years and 60 days, never from 2008
    assert all(pd.Timestamp("2011-04-01") < start < pd.Timestamp("2011-06-01") for start in provider.starts)
    assert len(provider.starts) == 4 and max(scored) <= 1
    whole = Store(str(tmp_path / "whole.db"))
    run_period(whole, [site], _Recording(ds), "2011-03-01", "2014-07-27", tmp_path / "b")
    cols = ["detection_id", "first_seen", "last_seen", "confidence", "n_looks", "area_m2", "status"]
    a, b = (s.detections()[cols].sort_values("detection_id").reset_index(drop=True) for s in (weekly, whole))
    assert len(a) >= 2 and set(a.first_seen.str[:4]) >= {"2012", "2014"}  # both digs
    pd.testing.assert_frame_equal(a, b)
    # a dig whose before-look is older than what a resumed run reads gets no chips from the run
    # (here: none at all): the map shows the ones stored when it was in reach
    from pipelines.weekly import monitor_site

    def without_chips(*args):
        result = monitor_site(*args)
        result.chips = {}
        return result

    run_period(weekly, [site], provider, "2014-07-28", "2014-08-03", tmp_path / "x", site_runner=without_chips)
    shown = {r["detection_id"] for r in json.loads((tmp_path / "x" / "summary.json").read_text())["ranked"]}
    assert shown and all(list((tmp_path / "x" / "chips").glob(f"{d}_before_*.png")) for d in shown)
    # a late acquisition inside the history years: the state does not fit it; read from the epoch
    late = ds.isel(time=[100]).assign_coords(time=[pd.Timestamp("2013-05-02")])
    provider.ds = xr.concat([ds, late], "time").sortby("time")
    provider.starts.clear()
    _, s = run_period(weekly, [site], provider, "2014-08-04", "2014-08-10", tmp_path / "w")
    # the resumed read is refused, then the run goes again from the epoch (a year at a time)
    assert provider.starts[0] > pd.Timestamp("2011-01-01") and provider.starts[1] == pd.Timestamp("2008-01-01")
    assert s["looks_scored"] > 100


def test_a_run_resuming_a_state_over_a_year_old_goes_a_year_at_a_time():
    """A machine off for two years: the run that resumes the state read everything since in one
    piece (and a site that fits a year would then be refused or split).  Now it goes a year at a
    time from the state, no load longer than a year and a month and its history years, and finds
    what a run from the epoch finds."""
    from pipelines.monitoring import LOAD_SPAN, run_site

    ds, site = _years_of_a_site(35, "SYN-9")
    provider = _Recording(ds)
    first = run_site(site, provider, "2011-03-01", "2012-03-31")  # a year and a month: one piece
    assert provider.starts == [pd.Timestamp("2008-01-01")]
    provider.starts.clear()
    later = run_site(site, provider, "2011-03-01", "2014-07-27", state=first.state)
    assert len(provider.starts) == 3 and provider.starts[0] > pd.Timestamp("2009-01-01")
    assert all(end - start <= LOAD_SPAN for start, end in zip(provider.starts, provider.ends))
    one = run_site(site, _Recording(ds), "2011-03-01", "2014-07-27")
    _same(later.detections, one.detections)
    assert len(one.detections) >= 2 and later.looks_scored < one.looks_scored


def test_a_first_run_over_years_goes_a_year_at_a_time_and_finds_what_one_piece_finds(tmp_path):
    """A first run over four years read all of them (and three history years) at once; now it
    goes a year at a time, each year resuming the last one's state, and finds the same."""
    from pipelines.monitoring import run_site

    ds, site = _years_of_a_site(34, "SYN-8")
    provider = _Recording(ds)
    stepped = run_site(site, provider, "2011-03-01", "2014-09-30")
    assert len(provider.starts) == 4 and provider.starts[0] == pd.Timestamp("2008-01-01")
    assert all(a < b for a, b in zip(provider.starts, provider.starts[1:]))  # each year its own history
    from change_detection import DetectorParams
    from pipelines.monitoring import _load_and_detect

    day = pd.Timestamp("2011-03-01")  # the whole period in one piece, as every first run read it before
    one = _load_and_detect(site, _Recording(ds), day, day, pd.Timestamp("2014-09-30"), DetectorParams(), None, None,
                           True)
    _same(stepped.detections, one.detections)
    assert len(one.detections) >= 2 and stepped.clear_looks == one.clear_looks
    assert stepped.acquisitions == one.acquisitions and stepped.looks_scored == one.looks_scored
    assert set(stepped.chips) == set(one.chips) == {d.detection_id for d in one.detections}
    assert load_state(stepped.state).cube.times.equals(load_state(one.state).cube.times)
