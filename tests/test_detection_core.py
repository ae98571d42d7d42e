"""The numeric core on small constructed arrays: one test per mechanism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from change_detection import BaselineParams, DetectorParams, anomaly_scores, confirm_anomalies, detect_changes, seasonal_baseline
from change_detection.synthetic import (
    SOIL, VEG, add_disturbance, add_pits, add_recurring_bare_field, box_mask, flag_snow, heal, set_clouds, set_shadow, set_snow,
    synthetic_series,
)

SINCE = "2011-03-01"


def _detect(ds, **kw):
    return detect_changes(ds, "T-1", since=SINCE, params=DetectorParams(**kw))


def _near(dets, mask, ds):
    """Detections whose polygon covers the mask's centre pixel."""
    from shapely.geometry import Point

    r, c = [int(np.mean(i)) for i in np.nonzero(mask)]
    p = Point(float(ds.x[c]), float(ds.y[r]))
    return [d for d in dets if d.geometry.buffer(1).contains(p)]


def test_quiet_series_gives_no_detection():
    assert _detect(synthetic_series(seed=1)) == []


def test_abrupt_disturbance_found_on_first_look_after_onset():
    ds = synthetic_series(seed=2)
    mask = box_mask(ds, 5, 11, 5, 11)
    ds = add_disturbance(ds, mask, "2011-06-10")
    dets = _detect(ds)
    hit = _near(dets, mask, ds)
    assert len(hit) == 1 and len(dets) == 1
    first_look_after = pd.DatetimeIndex(ds.time.values)[pd.DatetimeIndex(ds.time.values) >= "2011-06-10"][0]
    assert hit[0].first_seen == first_look_after
    assert hit[0].confirmed_on > hit[0].first_seen  # confirmed on a later look, dated from the first
    assert hit[0].area_m2 == pytest.approx(36 * 900, rel=0.15)
    assert hit[0].kind_hint == "bare_soil_exposure"
    assert set(hit[0].evidence["features"]) >= {"ndvi", "red", "nir", "swir16"}


def test_single_missed_cloud_never_confirms():
    ds = set_clouds(synthetic_series(seed=3), "2011-07-01", box_mask(synthetic_series(seed=3), 4, 14, 4, 14), flagged=False)
    assert _detect(ds) == []


def test_unflagged_snow_is_screened():
    ds = synthetic_series(seed=4)
    shade = box_mask(ds, 0, 10, 0, 24)  # snow lingering on a north slope, two looks in a row
    ds = set_snow(set_snow(ds, "2011-11-20", shade), "2011-11-28", shade)
    assert _detect(ds) == []


def test_flagged_snow_is_honoured():
    ds = synthetic_series(seed=4)
    slope = box_mask(ds, 0, 12, 0, 24)
    for day in ("2011-11-20", "2011-11-28", "2011-12-06"):  # snow the mask flags, three looks in a row
        ds = set_snow(ds, day, slope, flagged=True)
    cube = anomaly_scores(ds, since=SINCE)
    k = cube.times.get_indexer([pd.DatetimeIndex(ds.time.values)[ds["snow"].values.any(axis=(1, 2))][0]])[0]
    assert np.isnan(cube.score[k][slope.ravel()]).all() and np.isfinite(cube.score[k][~slope.ravel()]).all()
    assert _detect(ds) == []


def test_dig_under_a_snow_flag_the_spectrum_contradicts_is_seen():
    """Early winter: the mask calls the whole site snow, but the dug pixels show bare soil (SWIR
    brighter than red, which snow never is).  The dig is dated by the first such look."""
    ds = synthetic_series(seed=12)
    dig = box_mask(ds, 6, 12, 6, 12)
    onset = "2011-11-10"
    ds = add_disturbance(ds, dig, onset)
    times = pd.DatetimeIndex(ds.time.values)
    after = times[(times >= onset) & (times <= "2011-12-10")]
    for day in after:
        ds = set_snow(ds, str(day.date()), ~dig & box_mask(ds, 0, 24, 0, 16), flagged=True)  # real snow around it
        ds = flag_snow(ds, str(day.date()), dig)  # the dig itself is flagged too
    assert not ds["clear"].values[:, dig][times.isin(after)].any()  # the provider calls none of it clear
    hit = _near(_detect(ds), dig, ds)
    assert len(hit) == 1 and hit[0].first_seen == after[0]
    assert hit[0].kind_hint == "bare_soil_exposure"
    # a flag on pixels that are spectrally snow is still honoured: the same dig under real snow is invisible
    buried = ds.copy(deep=True)
    for day in after:
        buried = set_snow(buried, str(day.date()), dig, flagged=True)
    assert not _near(detect_changes(buried.sel(time=slice(None, after[-1])), "T-1", since=SINCE), dig, buried)


def test_a_dig_that_is_most_of_a_snowy_look_s_usable_pixels_is_not_contamination():
    """Snow over nearly the whole site: the provider calls only a strip of 12 pixels clear, and
    the dig (36 pixels, bare soil under a snow flag) makes up three quarters of the usable pixels.
    The contamination test is judged on the pixels that set the date's statistics (the clear
    strip, calm), so the dig's looks are kept and date it; judged on all usable pixels they were
    skipped as a bad scene."""
    ds = synthetic_series(seed=14)
    dig = box_mask(ds, 6, 12, 6, 12)
    strip = box_mask(ds, 0, 2, 18, 24)
    onset = "2011-11-10"
    ds = add_disturbance(ds, dig, onset)
    times = pd.DatetimeIndex(ds.time.values)
    after = times[times >= onset][:2]
    for day in after:
        ds = set_snow(ds, str(day.date()), ~dig & ~strip, flagged=True, noise=0.01)
        ds = flag_snow(ds, str(day.date()), dig)  # bare soil the mask calls snow: usable
    cube = anomaly_scores(ds, since=SINCE)
    assert not set(after) & set(cube.skipped_dates)
    k = cube.times.get_loc(after[0])
    assert np.median(cube.score[k][dig.ravel()]) > 3 and np.isfinite(cube.score[k][strip.ravel()]).all()
    hit = _near(_detect(ds), dig, ds)
    assert len(hit) == 1 and hit[0].first_seen == after[0]


def _snowy_spring(seed: int, days: tuple[str, ...] = ("2011-03-24", "2011-04-01")):
    """A site under snow the mask flags on two spring looks (SWIR 0.08 +- 0.01 across the snow)."""
    ds = synthetic_series(seed=seed)
    for i, day in enumerate(days):
        ds = set_snow(ds, day, flagged=True, noise=0.01, seed=i)
    times = pd.DatetimeIndex(ds.time.values)
    return ds, times, [int(np.argmin(np.abs(times - pd.Timestamp(d)))) for d in days]


def test_dig_seen_through_snow_is_dated_by_the_snowy_look():
    """Spring: the site is under snow when the dig is made.  Spoil thrown on the snow raises the
    SWIR of the dug pixels far above the snow around them, though they stay snow to the mask and
    to the spectral snow test (red above SWIR).  The snowy looks do not count towards
    confirmation: on the first clear look the dig is provisional (that look corroborated by the
    snowy ones), the second confirms it; both date it from the snowy look."""
    ds, times, looks = _snowy_spring(seed=41)
    snowy = times[looks]
    dig = box_mask(ds, 6, 12, 6, 12)
    ds = add_disturbance(ds, dig, str((snowy[0] - pd.Timedelta(days=2)).date()), intensity=0.5)  # half soil
    k = looks[0]
    assert (ds["red"].values[k][dig] > ds["swir16"].values[k][dig]).all()  # spectrally still snow
    clear_after = looks[1] + 1
    early = _near(_detect(ds.isel(time=slice(None, clear_after + 1))), dig, ds)
    assert len(early) == 1 and early[0].evidence["provisional"] and early[0].first_seen == snowy[0]
    hit = _near(_detect(ds), dig, ds)
    assert len(hit) == 1 and hit[0].first_seen == snowy[0] and not hit[0].evidence["provisional"]
    assert hit[0].confirmed_on == times[clear_after + 1]  # two clear looks confirm, as without snow
    assert hit[0].evidence["looks_through_snow"] == 2
    assert hit[0].kind_hint == "bare_soil_exposure"  # from the clear looks: snow looks have no direction
    # without looking through snow the same dig waits for the first clear look
    blind = _near(_detect(ds, through_snow=False), dig, ds)
    assert len(blind) == 1 and blind[0].first_seen == times[times > snowy[-1]][0]


def test_ground_showing_through_snow_needs_a_clear_look_to_confirm():
    """A ridge the wind keeps bare shows the ground through the snow, look after look, and so does
    a dig.  Only a usable look can tell them apart: two snowy looks in a row do not confirm, a
    calm clear look after them leaves nothing, and a record that ends on them raises no
    provisional alert either."""
    ds, times, looks = _snowy_spring(seed=42)
    ridge = box_mask(ds, 4, 12, 4, 12)
    for k in looks:
        ds["swir16"].values[k][ridge] = 0.25  # ground through the snow on both snowy looks
    cube = anomaly_scores(ds, since=SINCE)
    kc = cube.times.get_loc(times[looks[1]])
    assert np.median(cube.score[kc][ridge.ravel()]) > 10  # seen, far above the snow
    assert np.isnan(cube.score[kc][~ridge.ravel()]).all()  # the snow itself hides the ground
    assert cube.through_snow[kc][ridge.ravel()].all()
    assert _detect(ds) == []
    for end in looks:  # the record ends on a snowy look: nothing confirmed, no provisional alert
        assert _detect(ds.isel(time=slice(None, end + 1))) == []


def test_spring_dig_seen_through_snow_is_dated_across_the_thaw():
    """A dig made under spring snow, of soil as dull as the dormant grass around it: the spoil
    stands out against the snow, the thaw's clear looks do not show it (soil and dry grass look
    alike), and green-up makes it plain weeks later.  The walk-back crosses the two thaw looks to
    the snowy one; it does not cross three, and without ``thaw_looks`` the dig is dated from
    green-up."""
    from change_detection.synthetic import DRY

    def spring(days, onset):
        ds, times, looks = _snowy_spring(seed=44, days=days)
        dig = box_mask(ds, 6, 12, 6, 12)
        return add_disturbance(ds, dig, onset, intensity=0.6, soil=DRY), times, looks, dig

    ds, times, looks, dig = spring(("2011-04-15", "2011-04-23"), "2011-04-13")
    cube = anomaly_scores(ds, since=SINCE)
    region = [float(np.median(cube.score[cube.times.get_loc(t)][dig.ravel()])) for t in times[looks[1] + 1 : looks[1] + 4]]
    assert max(region[:2]) < 1.2 < 3 < region[2]  # two thaw looks that do not show it, then green-up
    hit = _near(_detect(ds), dig, ds)
    assert len(hit) == 1 and hit[0].first_seen == times[looks[0]]
    assert hit[0].evidence["looks_through_snow"] == 2
    late = _near(_detect(ds, thaw_looks=0), dig, ds)
    assert len(late) == 1 and late[0].first_seen == times[looks[1] + 3]
    # Snow a look earlier leaves three thaw looks between the snowy looks and green-up.
    ds, times, looks, dig = spring(("2011-04-07", "2011-04-15"), "2011-04-05")
    hit = _near(_detect(ds), dig, ds)
    assert len(hit) == 1 and hit[0].first_seen == times[looks[1] + 4]


def test_walk_back_crosses_faint_looks_only_to_a_look_seen_through_snow():
    """On a constructed cube (one region, looks in time order, the confirmed look last): an earlier
    *clear* anomaly behind a faint look does not date the change, an earlier snowy one does."""
    from change_detection.detect import AnomalyCube, _extend_onset

    def cube(looks):  # each look: ("clear" or "snow", region score)
        n_f, n_p = 5, 6
        score = np.array([[s] * n_p for _, s in looks], dtype="float32")
        z = np.zeros((len(looks), n_f, n_p), "float16")
        for j, (kind, _) in enumerate(looks):
            if kind == "clear":
                z[j] = 1.0  # every clear look points the same way as the confirmed change
        times = pd.date_range("2011-03-01", periods=len(looks), freq="8D")
        return AnomalyCube(times, score, z.astype("float32"), list("abcde"), [], z)

    def onset(looks, thaw_looks=2):
        direction = np.ones(5) / np.sqrt(5)
        return _extend_onset(cube(looks), np.arange(6), len(looks) - 1, 1.2, direction, 0.5, thaw_looks)

    assert onset([("snow", 8), ("clear", 0.8), ("clear", 1.0), ("clear", 6)]) == 0
    assert onset([("snow", 8), ("clear", 0.8), ("clear", 1.0), ("clear", 6)], thaw_looks=0) == 3
    assert onset([("snow", 8), ("clear", 0.8), ("clear", 0.8), ("clear", 0.8), ("clear", 6)]) == 4
    assert onset([("clear", 5), ("clear", 0.8), ("clear", 6)]) == 2  # a clear anomaly is not reached
    assert onset([("snow", 8), ("clear", 5), ("clear", 0.8), ("clear", 6)]) == 0  # passed on the way
    assert onset([("clear", 2), ("snow", 8), ("clear", 0.8), ("clear", 6)]) == 0  # walk goes on from the snowy look
    assert onset([("clear", 2), ("clear", 0.5), ("snow", 8), ("clear", 6)]) == 2


def test_snow_contrast():
    from change_detection.features import snow_contrast

    ds, times, (k,) = _snowy_spring(seed=43, days=("2011-03-24",))
    ds["swir16"].values[k][0, 0] = 0.2
    z = snow_contrast(ds, [k - 1, k])
    assert np.isnan(z[0]).all()  # no snow on the look before
    assert np.isfinite(z[1]).all() and z[1][0, 0] > 10 and np.abs(np.median(z[1])) < 0.5
    few = ds.copy(deep=True)
    few["snow"].values[k][:, 5:] = False  # 5 columns of 24 rows flagged: 120 pixels
    assert np.isfinite(snow_contrast(few, [k])).sum() == 120
    assert np.isnan(snow_contrast(few, [k], min_pixels=121)).all()  # too few to say what the snow looks like
    assert np.isnan(snow_contrast(synthetic_series(seed=1))).all()  # no snow flag at all


def test_unmasked_snow_flags_do_not_set_the_dates_statistics():
    """A large patch flagged snow but spectrally mixed ground (SWIR above red) is scored, yet the
    date's common shift and spatial noise come from the provider's clear pixels: a moderate dig
    elsewhere keeps its score on those looks (with the patch as reference it drops below 3)."""
    ds = synthetic_series(seed=13)
    dig = box_mask(ds, 2, 7, 2, 7)
    ds = add_disturbance(ds, dig, "2011-07-10", intensity=0.35)
    times = pd.DatetimeIndex(ds.time.values)
    after = times[times >= "2011-07-10"][:2]
    patch = box_mask(ds, 14, 24, 0, 24)
    rng = np.random.default_rng(0)
    for day in after:
        k = times.get_loc(day)
        ds = flag_snow(ds, str(day.date()), patch)
        red = rng.uniform(0.05, 0.3, patch.sum())
        ds["red"].values[k][patch] = red
        ds["swir16"].values[k][patch] = red + rng.uniform(0.0, 0.1, patch.sum())
        ds["nir"].values[k][patch] = rng.uniform(0.1, 0.4, patch.sum())
    cube = anomaly_scores(ds, since=SINCE)
    for day in after:
        k = cube.times.get_loc(day)
        assert np.isfinite(cube.score[k][patch.ravel()]).all()  # the patch is looked at
        assert np.median(cube.score[k][dig.ravel()]) > DetectorParams().threshold
    hit = _near(_detect(ds), dig, ds)
    assert hit and hit[0].first_seen == after[0]


def test_field_bared_every_year_is_not_an_alarm():
    ds = synthetic_series(seed=5)
    field = box_mask(ds, 2, 10, 12, 22)
    ds = add_recurring_bare_field(ds, field, doy_start=140, length_days=60)
    assert _detect(ds) == []
    # ... but the same baring for the first time is
    fresh = add_recurring_bare_field(synthetic_series(seed=5).sel(time=slice("2011-01-01", None)), field, 140)
    history = synthetic_series(seed=5).sel(time=slice(None, "2010-12-31"))
    import xarray as xr

    first_time = xr.concat([history, fresh], "time")
    first_time.attrs = history.attrs
    assert _near(_detect(first_time), field, first_time)


def test_vegetation_gain_is_not_a_disturbance():
    """A patch growing greener than its seasons (a wet year, scrub on an old spoil heap) is not
    ground disturbance; the dig beside it is still found."""
    ds = synthetic_series(seed=21)
    patch = box_mask(ds, 2, 10, 2, 10)
    greener = add_disturbance(ds, patch, "2011-04-20", intensity=0.6, soil=VEG)
    # the change is strong and lasting: without the one-sided rule it is reported
    assert _near(_detect(greener, ignore_vegetation_gain=False), patch, greener)
    assert _detect(greener) == []
    dig = box_mask(ds, 14, 20, 14, 20)
    both = add_disturbance(greener, dig, "2011-06-10")
    dets = _detect(both)
    assert len(dets) == 1 and _near(dets, dig, both) and dets[0].kind_hint == "bare_soil_exposure"


def test_vegetation_gain_needs_red_and_nir():
    from change_detection.detect import vegetation_gain

    z = np.zeros((1, 4, 1))
    z[0, :, 0] = [2.0, -2.0, 2.0, 0.5]  # ndvi, red, nir, swir16: more leaf
    assert vegetation_gain(z, ["ndvi", "red", "nir", "swir16"]).all()
    assert not vegetation_gain(-z, ["ndvi", "red", "nir", "swir16"]).any()  # soil exposure
    z2 = z.copy()
    z2[0, 2, 0] = -1.0  # NIR down too: a dark soil or water mix, not vegetation
    assert not vegetation_gain(z2, ["ndvi", "red", "nir", "swir16"]).any()
    assert not vegetation_gain(z[:, :3], ["exg", "red", "green"]).any()  # RGB-only: no test


def test_event_under_persistent_cloud_dated_by_first_clear_look():
    ds = synthetic_series(seed=6)
    mask = box_mask(ds, 12, 18, 3, 9)
    ds = add_disturbance(ds, mask, "2011-05-01")
    for day in pd.date_range("2011-05-01", "2011-06-10", freq="8D"):
        ds = set_clouds(ds, str(day.date()))
    dets = _near(_detect(ds), mask, ds)
    assert len(dets) == 1
    times = pd.DatetimeIndex(ds.time.values)
    assert dets[0].first_seen == times[times > "2011-06-14"][0]


def test_slow_ramp_is_found_early_in_the_ramp():
    ds = synthetic_series(seed=7)
    mask = box_mask(ds, 14, 21, 14, 21)
    ds = add_disturbance(ds, mask, "2011-07-01", ramp_days=45)
    dets = _near(_detect(ds), mask, ds)
    assert dets, "a ramping disturbance must be found"
    assert (dets[0].first_seen - pd.Timestamp("2011-07-01")).days <= 24


def test_whole_scene_haze_does_not_alarm():
    ds = synthetic_series(seed=8)
    times = pd.DatetimeIndex(ds.time.values)
    for k in np.flatnonzero((times >= "2011-08-01") & (times <= "2011-08-20")):
        for b in ("red", "nir", "swir16"):
            ds[b].values[k] += 0.04  # additive path radiance over the whole area
    assert _detect(ds) == []


def test_rgb_only_mosaic_degrades_gracefully():
    ds = synthetic_series(seed=9, rgb_only=True)
    mask = box_mask(ds, 5, 12, 12, 19)
    ds = add_disturbance(ds, mask, "2011-06-10")
    dets = _detect(ds)
    hit = _near(dets, mask, ds)
    assert len(hit) == 1 and len(dets) == 1
    assert set(hit[0].evidence["features"]) == {"exg", "red", "green", "blue", "texture"}


def test_rgb_texture_finds_pits_that_keep_the_colour():
    """Pits and spoil heaps on a 3 m mosaic that leave the area's mean colour as it was: only the
    texture feature sees them, so the detection says it rests on texture."""
    ds = synthetic_series(ny=40, nx=40, seed=9, rgb_only=True, resolution=3.0)
    mask = box_mask(ds, 8, 28, 10, 30)  # 20 x 20 pixels, 0.36 ha
    ds = add_pits(ds, mask, "2011-06-10", amplitude=0.15)
    dets = _detect(ds)
    hit = _near(dets, mask, ds)
    assert len(hit) == 1 and len(dets) == 1
    assert hit[0].first_seen == pd.Timestamp("2011-06-10")
    assert "texture" in hit[0].evidence["features"]
    assert hit[0].kind_hint == "surface_roughened"
    assert hit[0].area_m2 == pytest.approx(400 * 9, rel=0.2)
    assert _detect(ds, texture=False) == []  # colour and brightness alone miss it


def test_texture_uses_only_usable_neighbours():
    from change_detection.features import local_texture

    rng = np.random.default_rng(0)
    bright = (0.2 + 0.01 * rng.standard_normal((1, 5, 5))).astype("float32")
    valid = np.ones_like(bright, dtype=bool)
    cloudy = bright.copy()
    cloudy[0, 1, 1] = 0.9  # a cloud beside the centre pixel, flagged by the mask
    mask = valid.copy()
    mask[0, 1, 1] = False
    plain = local_texture(bright, valid)
    masked = local_texture(cloudy, mask)
    assert np.isnan(masked[0, 1, 1])  # the cloud itself has no texture
    window = np.delete(bright[0, 1:4, 1:4].ravel(), 0)
    assert masked[0, 2, 2] == pytest.approx(window.std() / window.mean(), rel=1e-4)  # 8 clear pixels
    assert plain[0, 2, 2] == pytest.approx(bright[0, 1:4, 1:4].std() / bright[0, 1:4, 1:4].mean(), rel=1e-4)
    mask[0, :3, :3] = False  # the edge pixel (3, 0) keeps 4 usable pixels in its window: too few
    tex = local_texture(bright, mask)
    assert np.isfinite(tex[0, 3, 3]) and np.isnan(tex[0, 3, 0])
    assert np.array_equal(local_texture(bright[0], mask[0]), tex[0], equal_nan=True)  # one look on its own


def test_rgb_features_of_one_look_equal_those_of_the_series():
    from change_detection import feature_stack

    ds = synthetic_series(ny=8, nx=8, seed=1, rgb_only=True)
    one, full = feature_stack(ds.isel(time=5)), feature_stack(ds)
    assert one.attrs["evidence"] == full.attrs["evidence"] and "texture" in one
    np.testing.assert_allclose(one.texture.values, full.texture.isel(time=5).values)


def test_rgb_cloud_edges_do_not_roughen_clear_pixels():
    """Scattered small clouds the mask flags, on three looks in a row: every clear pixel beside one
    would look rough if the cloud entered its texture window (a 0.56 ha false detection then)."""
    ds = synthetic_series(ny=40, nx=40, seed=9, rgb_only=True, resolution=3.0)
    r, c = np.indices((40, 40))
    popcorn = ((r % 3) == 1) & ((c % 3) == 1) & (r < 18)
    for when in ("2011-07-05", "2011-07-13", "2011-07-21"):
        ds = set_clouds(ds, when, popcorn, flagged=True)
    assert _detect(ds) == []


def test_baseline_uses_same_season_of_earlier_years_only():
    days = np.array([0, 100, 365, 465, 730, 740], dtype=float)
    values = np.arange(6, dtype="float32").reshape(6, 1, 1)
    base = seasonal_baseline(days, values, np.array([5]), BaselineParams(min_obs=2))
    # target at day 740: same season = day 0 (2 yrs back, ~10 d off) and day 365 (1 yr back, ~10 d off);
    # not day 730 (same year, 10 days ago) nor days 100/465 (other seasons)
    assert base.count[0, 0] == 2 and base.seasonal[0, 0]
    assert base.median[0, 0, 0] == pytest.approx(1.0)  # median of values 0 and 2
    # with too few seasonal values the fallback (preceding year) is used and flagged as such
    fallback = seasonal_baseline(days, values, np.array([5]), BaselineParams(min_obs=3))
    assert not fallback.seasonal[0, 0] and fallback.count[0, 0] == 2  # days 465 and 730


def test_confirmation_needs_consecutive_clear_looks():
    nan = np.nan
    score = np.array([[1, 1], [5, 5], [nan, 1], [5, 5], [5, 1]], dtype=float)
    conf = confirm_anomalies(score, DetectorParams(threshold=3, min_looks=2))
    # pixel 0: anomalous, cloudy look, anomalous -> confirmed, first at look 1, confirmed at look 3
    assert conf.confirmed[0] and conf.first[0] == 1 and conf.confirm[0] == 3 and conf.looks[0] == 3
    # pixel 1: the calm clear look at index 2 breaks the run; look 3 alone is one look; look 4 is calm again
    assert not conf.confirmed[1]


def test_backfill_and_incremental_agree():
    ds = add_disturbance(synthetic_series(seed=10), box_mask(synthetic_series(seed=10), 5, 11, 5, 11), "2011-06-10")
    full = _detect(ds)
    week_by_week = None
    for end in pd.date_range("2011-06-01", "2011-12-31", freq="7D"):
        week_by_week = _detect(ds.sel(time=slice(None, end)))
    assert [d.detection_id for d in full] == [d.detection_id for d in week_by_week]
    assert [d.first_seen for d in full] == [d.first_seen for d in week_by_week]


def test_scores_are_nan_where_not_clear():
    ds = set_clouds(synthetic_series(seed=11), "2011-07-01")
    cube = anomaly_scores(ds, SINCE)
    k = int(np.argmin(np.abs(cube.times - pd.Timestamp("2011-07-01"))))
    assert np.isnan(cube.score[k]).all()


def _last_look(ds):
    return pd.DatetimeIndex(ds.time.values)[-1]


def test_strong_change_on_the_latest_look_is_a_provisional_alert_then_confirmed():
    ds = synthetic_series(seed=12, end="2011-08-31")
    mask = box_mask(ds, 6, 12, 6, 12)
    last = _last_look(ds)
    ds = add_disturbance(ds, mask, str(last.date()))  # a dig that shows on the latest look only
    dets = _detect(ds)
    assert len(dets) == 1 and _near(dets, mask, ds)
    d = dets[0]
    assert d.first_seen == last and d.n_looks == 1 and d.confidence == "low" and d.evidence["provisional"]
    # the next clear look repeats it: the same dig, now confirmed on two looks, dated from the same look
    more = add_disturbance(synthetic_series(seed=12, end="2011-09-10"), mask, str(last.date()))
    confirmed = _near(_detect(more), mask, more)
    assert len(confirmed) == 1 and confirmed[0].first_seen == last and confirmed[0].n_looks == 2
    assert not confirmed[0].evidence["provisional"]


def test_provisional_alert_is_withdrawn_by_a_calm_next_look():
    base = synthetic_series(seed=13, end="2011-09-10")
    mask = box_mask(base, 4, 14, 4, 14)
    k = len(base.time) - 2  # a cloud the mask missed on the second-last look
    ds = set_clouds(base, str(pd.Timestamp(base.time.values[k]).date()), mask, flagged=False)
    upto = ds.isel(time=slice(0, k + 1))
    assert [d.n_looks for d in _detect(upto)] == [1]  # on its own, the latest look raises a provisional alert
    assert _detect(ds) == []  # the next clear look is calm: nothing stands


def test_a_single_look_that_only_darkens_waits_for_its_second_look():
    """A shadow the mask missed (every band darker) on the latest look is not alerted on one look;
    the same darkening repeated on the next look (a flooded pit, a dark surface) is confirmed."""
    ds = synthetic_series(seed=16, end="2011-08-31")
    mask = box_mask(ds, 5, 13, 5, 13)
    last = str(_last_look(ds).date())
    shadow = set_shadow(ds, last, mask)
    cube = anomaly_scores(shadow, SINCE)
    assert np.median(cube.score[-1, mask.ravel()]) > 6.0  # as strong as a single look ever needs
    assert _detect(shadow) == []
    assert [d.n_looks for d in _near(_detect(shadow, single_look_darkening=True), mask, shadow)] == [1]
    longer = synthetic_series(seed=16, end="2011-09-10")
    times = pd.DatetimeIndex(longer.time.values)
    dark = set_shadow(set_shadow(longer, last, mask), str(times[-1].date()), mask)
    dets = _near(_detect(dark), mask, dark)
    assert len(dets) == 1 and dets[0].n_looks == 2 and dets[0].first_seen == pd.Timestamp(last)
    # a dig (soil raises red and SWIR) on the same latest look is still alerted on one look
    assert [d.n_looks for d in _near(_detect(add_disturbance(ds, mask, last)), mask, ds)] == [1]


def _hand_scored(last_scores, prev_scores, prev_direction, n=12):
    """A quiet synthetic site whose cube is set by hand on its last two looks over ``n`` pixels:
    ``last_scores`` and ``prev_scores`` (region scores) along a soil-like direction on the last
    look and ``prev_direction`` on the one before.  Returns (ds, cube, its confirmation, mask)."""
    from change_detection.detect import AnomalyCube, _days

    ds = synthetic_series(seed=17, end="2011-08-31")
    cube = anomaly_scores(ds, SINCE)
    mask = np.zeros((ds.sizes["y"], ds.sizes["x"]), bool)
    mask.ravel()[np.ravel_multi_index((np.repeat([8, 9, 10], n // 3), np.tile(np.arange(6, 6 + n // 3), 3)),
                                      mask.shape)] = True
    pix = np.flatnonzero(mask.ravel())
    soil = np.array([-1.0, -1.0, 1.0, -0.5, 1.0])  # ndvi, ndmi, red, nir, swir16: NDVI down, red up
    soil /= np.linalg.norm(soil)
    score, z = cube.score.copy(), cube.z.astype("float32").copy()
    for k, sc, u in ((-1, last_scores, soil), (-2, prev_scores, prev_direction / np.linalg.norm(prev_direction))):
        score[k, pix] = sc
        z[k][:, pix] = u[:, None] * sc * np.sqrt(len(u))
    cube = AnomalyCube(cube.times, score, cube.delta, cube.features, [], z.astype("float16"))
    return ds, cube, confirm_anomalies(score, DetectorParams(), days=_days(cube.times)), mask


def test_a_single_look_under_the_bar_is_reported_when_the_look_before_showed_it_faintly():
    from change_detection.detect import disturbance_polygons

    soil = np.array([-1.0, -1.0, 1.0, -0.5, 1.0])
    ds, cube, conf, mask = _hand_scored(4.0, 2.0, soil)  # 12 pixels: the single-look bar is 5.1
    dets = disturbance_polygons(ds, cube, conf, "T-1", None, DetectorParams())
    assert len(dets) == 1 and dets[0].evidence["provisional"] and dets[0].confidence == "low"
    assert dets[0].first_seen == cube.times[-2]  # dated from the faint look
    assert disturbance_polygons(ds, cube, conf, "T-1", None, DetectorParams(single_look_corroborated=False)) == []
    # the look before at the place's own level, or pointing elsewhere (greener), corroborates nothing
    for prev, direction in ((1.0, soil), (2.0, -soil)):
        ds, cube, conf, mask = _hand_scored(4.0, prev, direction)
        assert disturbance_polygons(ds, cube, conf, "T-1", None, DetectorParams()) == []
    # nor does one whose direction is unknown (NaN changes fail the direction test, never pass it)
    ds, cube, conf, mask = _hand_scored(4.0, 2.0, soil)
    cube.z[-2][:, mask.ravel()] = np.nan
    assert disturbance_polygons(ds, cube, conf, "T-1", None, DetectorParams()) == []


def test_single_look_needs_twice_the_threshold_and_the_minimum_evidence():
    ds = synthetic_series(seed=14, end="2011-08-31")
    last = str(_last_look(ds).date())
    small = box_mask(ds, 6, 8, 6, 9)  # 6 pixels: the minimum evidence
    faint_small = add_disturbance(ds, small, last, intensity=0.25)
    cube = anomaly_scores(faint_small, SINCE)
    assert 3.0 < np.median(cube.score[-1, small.ravel()]) < 6.0  # anomalous, but not twice the threshold
    assert _detect(faint_small) == []
    tiny = add_disturbance(ds, box_mask(ds, 6, 8, 6, 8), last)  # 4 pixels < 6 pixel-looks
    assert _detect(tiny) == []
    assert _detect(add_disturbance(ds, box_mask(ds, 6, 12, 6, 12), last), single_look_factor=0) == []
    calm = add_disturbance(ds, box_mask(ds, 6, 12, 6, 12), last, intensity=0.06)  # large but barely visible
    assert _detect(calm) == []


def test_single_look_bar_falls_with_the_square_root_of_the_region_size():
    from change_detection.detect import _single_look_bar

    p = DetectorParams()
    assert _single_look_bar(6, p) == pytest.approx(6.0)
    assert _single_look_bar(3, p) == pytest.approx(6.0)  # never below the minimum evidence's bar
    assert _single_look_bar(24, p) == pytest.approx(4.5)
    assert _single_look_bar(54, p) == pytest.approx(4.0)
    # a 36-pixel dig whose anomalous pixels score a median under twice the threshold is reported on
    # one look (its bar is 3 x (1 + sqrt(6 / 36)) = 4.22); six pixels that strong are not (above)
    ds = synthetic_series(seed=14, end="2011-08-31")
    big = box_mask(ds, 6, 12, 6, 12)
    dets = _detect(add_disturbance(ds, big, str(_last_look(ds).date()), intensity=0.12))
    assert len(dets) == 1 and dets[0].evidence["provisional"] and dets[0].n_looks == 1
    assert _single_look_bar(round(dets[0].area_m2 / 900), p) < dets[0].evidence["mean_anomaly_sd"] < 6.0


def test_onset_is_not_dated_by_an_unrelated_anomaly_just_before():
    ds = synthetic_series(seed=15)
    mask = box_mask(ds, 8, 14, 8, 14)
    times = pd.DatetimeIndex(ds.time.values)
    onset = times[times >= "2011-06-10"][0]
    before = times[times < onset][-1]
    ds = add_disturbance(ds, mask, str(onset.date()))
    k = int(np.flatnonzero(times == before)[0])
    for b in ("red", "nir", "swir16"):  # a darker look (wet ground, a shadow): not the dig's way
        ds[b].values[k][mask] *= 0.75
    cube = anomaly_scores(ds, SINCE)
    assert np.median(cube.score[int(np.flatnonzero(cube.times == before)[0]), mask.ravel()]) > 1.2
    hit = _near(_detect(ds), mask, ds)
    assert len(hit) == 1 and hit[0].first_seen == onset
    # the same anomaly pointing the way of the dig (a faint first sign of it) does date the onset
    ds2 = add_disturbance(synthetic_series(seed=15), mask, str(onset.date()))
    for b in ("red", "nir", "swir16"):
        ds2[b].values[k][mask] = 0.91 * ds2[b].values[k][mask] + 0.09 * SOIL[b]
    faint = np.median(anomaly_scores(ds2, SINCE).score[int(np.flatnonzero(cube.times == before)[0]), mask.ravel()])
    assert 1.2 < faint < 3.0
    hit2 = _near(_detect(ds2), mask, ds2)
    assert len(hit2) == 1 and hit2[0].first_seen == before


def _dug_healed_and_dug_again(seed=21):
    ds = synthetic_series(seed=seed, end="2013-12-31")
    mask = box_mask(ds, 6, 12, 6, 12)
    once = heal(add_disturbance(ds, mask, "2011-06-10"), ds, mask, "2011-09-01")  # back-filled by autumn
    return ds, mask, once, add_disturbance(once, mask, "2013-06-10")  # looters return two years later


def test_a_second_dig_on_the_same_ground_after_a_calm_year_is_a_new_detection():
    ds, mask, once, twice = _dug_healed_and_dug_again()
    first = _detect(once)
    assert len(first) == 1 and first[0].first_seen.year == 2011
    again = _detect(twice)
    assert len(again) == 2
    old, new = again
    # the first detection is reported exactly as before: same id, dates and extent
    assert (old.detection_id, old.first_seen, old.last_seen, old.area_m2) == \
           (first[0].detection_id, first[0].first_seen, first[0].last_seen, first[0].area_m2)
    times = pd.DatetimeIndex(ds.time.values)
    assert new.first_seen == times[times >= "2013-06-10"][0] and _near([new], mask, ds)
    # the new detection says the ground was dug before, and when; the old one does not
    assert new.evidence["earlier_disturbance_first_seen"] == str(old.first_seen.date())
    assert new.evidence["earlier_disturbance_share"] > 0.9
    assert "earlier_disturbance_first_seen" not in old.evidence
    # without re-arming, the second dig only stretches the first detection to 2013: no new alert
    never = _detect(twice, rearm_days=0)
    assert len(never) == 1 and never[0].last_seen.year == 2013


def test_a_dig_that_persists_for_years_is_one_detection():
    ds = synthetic_series(seed=22, end="2013-12-31")
    mask = box_mask(ds, 6, 12, 6, 12)
    dets = _detect(add_disturbance(ds, mask, "2011-06-10"))
    assert len(dets) == 1 and dets[0].first_seen.year == 2011


def test_multilook_narrows_the_speckle_of_unchanged_ground():
    """Sentinel-1 GRD speckle (about 4.4 equivalent looks) spreads one pixel's backscatter over
    about ±2 dB between looks at unchanged ground; the 3 x 3 multilook narrows it to under 1 dB
    and keeps its mean (power is averaged, not dB); invalid pixels stay out of every window."""
    from change_detection.features import multilook

    rng = np.random.default_rng(0)
    power = (0.05 * rng.gamma(4.4, 1 / 4.4, size=(40, 64, 64))).astype("float32")
    valid = np.ones(power.shape, bool)
    valid[:, 30:34, :] = False
    raw_db, looked = 10 * np.log10(power), multilook(power, valid)
    assert 1.8 < raw_db[:, 5:25].std() < 2.6 and 0.5 < (10 * np.log10(looked[:, 5:25])).std() < 0.9
    assert np.nanmean(looked[:, 5:25]) == pytest.approx(0.05, rel=0.02)
    assert np.isnan(looked[:, 30:34]).all() and np.isfinite(looked[:, 35:-1, 1:-1]).all()
    assert np.isnan(looked[:, -1, 0]).all()  # a corner's window holds 4 valid pixels, fewer than 6


@pytest.mark.parametrize("vv, vh, kinds", [
    (4.0, 3.0, {"surface_roughened", "new_structure"}),  # pits and spoil heaps, or a wall
    (-10.0, -10.0, {"water"}),  # flooded, or a pit filled with water
    (-3.0, -3.0, {"surface_levelled"}),  # bulldozed smooth
])
def test_radar_finds_a_change_that_no_cloud_hides(vv, vh, kinds):
    """Sentinel-1 backscatter (VV, VH, no reflectance band): the same detector, on the speckle-
    averaged dB and the VH/VV ratio; rain that wets the whole scene (±1 dB a date) cancels in the
    normalisation between dates.  A change of a few dB over 0.4 ha is dated from the first look
    after it and confirmed on the next look or the one after (12-day revisit); quiet ground gives
    nothing."""
    from change_detection.features import SAR_FEATURES
    from change_detection.synthetic import add_sar_change, synthetic_sar_series

    for seed in (1, 2):
        quiet = synthetic_sar_series(seed=seed).sel(time=slice(None, "2011-10-31"))
        assert _detect(quiet) == []
    ds = synthetic_sar_series(seed=3).sel(time=slice(None, "2011-10-31"))
    mask = box_mask(ds, 10, 16, 10, 17)
    dets = _detect(add_sar_change(ds, mask, "2011-06-10", vv, vh))
    (hit,) = _near(dets, mask, ds)
    assert len(dets) == 1 and str(hit.first_seen.date()) == "2011-06-14"  # the first look after the onset
    assert (hit.confirmed_on - hit.first_seen).days in (12, 24) and hit.kind_hint in kinds
    assert hit.evidence["features"] == list(SAR_FEATURES) and 2_500 < hit.area_m2 < 6_000  # 0.42 ha dug


def test_a_radar_look_is_compared_with_looks_from_its_own_track():
    """A slope faces one orbit track and turns from the other, so it returns a different power on
    each.  With the tracks labelled (``orbit``), each look's baseline holds only its own track's
    looks: the spread is the speckle's, not the slope's; without labels (or with ""), any look."""
    from change_detection.baseline import seasonal_baseline

    rng = np.random.default_rng(0)
    days = np.arange(0, 4 * 365, 6, dtype=float)
    track = np.where(np.arange(days.size) % 2 == 0, "ascending 33", "descending 106")
    values = (np.where(track == "ascending 33", 3.0, -3.0)[:, None, None]
              + rng.normal(0, 0.3, (days.size, 1, 50))).astype("float32")
    targets = np.flatnonzero(days >= 3 * 365)
    own = seasonal_baseline(days, values, targets, geometry=track)
    mixed = seasonal_baseline(days, values, targets)
    assert np.nanmedian(own.spread) < 0.5 < 3 < np.nanmedian(mixed.spread)
    np.testing.assert_allclose(own.median[:, 0, :].mean(axis=1), np.where(track[targets] == "ascending 33", 3, -3), atol=0.2)
    unknown = seasonal_baseline(days, values, targets, geometry=np.full(days.size, ""))
    np.testing.assert_array_equal(unknown.spread, mixed.spread)
