"""CI smoke step for benchmarks/: they run at a tiny size (no timing is asserted)."""

import importlib.util
from pathlib import Path


def _benchmark(name: str):
    """Import ``benchmarks/<name>.py`` as a module (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_core_benchmark_runs_at_tiny_size():
    mod = _benchmark("bench_core")
    res = mod.main(["--size", "8", "--repeat", "1"])
    assert res["pixel_observations"] == 64 * res["looks"]
    rgb = mod.main(["--size", "8", "--repeat", "1", "--rgb"])
    assert rgb["bands"] == ["red", "green", "blue"] and rgb["ratio_texture_to_without"] > 0
    radar = mod.main(["--size", "8", "--repeat", "1", "--radar"])
    assert radar["bands"] == ["vv", "vh"] and radar["pixel_observations"] == 64 * radar["looks"]


def test_incremental_benchmark_runs_at_tiny_size():
    mod = _benchmark("bench_incremental")
    res = mod.main(["--size", "8"])
    assert res["weekly_runs"] == 43 and res["incremental_s"] > 0
    years = mod.main(["--size", "8", "--years"])
    assert [w["year"] for w in years["weeks"]] == [2011, 2014, 2017, 2020]
    assert years["weeks"][-1]["from_epoch_looks_read"] > years["weeks"][-1]["history_years_looks_read"]
    assert years["weeks"][-1]["state_mb_every_look"] >= years["weeks"][-1]["state_mb"]


def test_injection_benchmark_runs_on_the_real_control_case(shared):
    mod = _benchmark("injection")
    mod.ROOT = shared / "benchmark"
    res = mod.main(["--events", "2", "--cases", "dev-2012-control", "--workers", "1"])
    assert res["events"] == 2 and 0 <= res["recall"] <= 1
    assert res["false_alarms_without_injection"] == {"dev-2012-control": 0}
    built = mod.main(["--events", "1", "--cases", "dev-2012-control", "--workers", "1", "--kind", "construction"])
    assert built["kind"] == "construction" and built["events"] == 1
    earlier = mod.main(["--events", "1", "--cases", "dev-2012-control", "--workers", "1", "--years-back", "1"])
    assert earlier["events"] == 1 and mod._LOADED["dev-2012-control"][0] == mod.pd.Timestamp("2011-03-01")


def test_short_history_benchmark_and_the_one_sided_score_on_real_imagery(shared, capsys):
    """2010 at the dev-2011-b sites with only 2009 as history: June green-up against one year's
    baseline raised false detections until vegetation gain counted as calm."""
    mod = _benchmark("short_history")
    mod.ROOT = shared / "benchmark"
    now = mod.main(["--cases", "dev-2011-b"])
    assert '"kind": "other"' not in capsys.readouterr().out
    before = mod.main(["--cases", "dev-2011-b", "--set", "ignore_vegetation_gain=false"])
    assert '"kind": "other"' in capsys.readouterr().out  # the green-up ones
    assert now["false_detections"] < before["false_detections"]


def test_whole_scene_benchmark_counts_false_detections_anywhere(shared, capsys):
    """The detector over the control case's whole scene: a detector that cries wolf (threshold 1.5)
    must show up as many more false detections than the default one."""
    mod = _benchmark("whole_scene")
    mod.ROOT = shared / "benchmark"
    now = mod.main(["--cases", "dev-2012-control"])
    assert now["hectare_weeks"] > 5000
    assert now["per_100_site_weeks_18ha"] == round(100 * now["false_detections"] * 18 / now["hectare_weeks"], 2)
    loose = mod.main(["--cases", "dev-2012-control", "--set", "threshold=1.5"])
    assert loose["false_detections"] > 3 * max(now["false_detections"], 1)


def test_distractor_benchmark_bares_its_fields_every_year_or_once(shared):
    """Recurring fields are bared on the same day of every year of the record (history too); the
    ``--once`` control bares them in the monitoring year only.  Both run on the real control case."""
    mod = _benchmark("distractors")
    mod.injection.ROOT = shared / "benchmark"
    params = mod.DetectorParams()
    job = ("dev-2012-control", "S03-01", [5, 2, 0, 101], params, False, 0)
    start, end, loaded = mod._load(job[0])
    raw = loaded[job[1]][1]
    every, field, _, doy, fade = mod.make_field(job)
    once = mod.make_field(job[:4] + (True, 0))[0]
    times = mod.pd.DatetimeIndex(raw.time.values)
    age = ((times - mod.pd.to_datetime([f"{t.year}-01-01" for t in times])) / mod.pd.Timedelta(days=1)) - (doy - 1)
    clear = raw["clear"].values[:, field].all(axis=1)
    bare = clear & (age >= 0) & (age < fade * 0.5)
    def changed_looks(ds):  # NaN (cloud, fill) is as observed
        a, b = ds["swir16"].values, raw["swir16"].values
        return ((a != b) & ~(mod.np.isnan(a) & mod.np.isnan(b)))[:, field].any(axis=1)

    changed, changed_once = changed_looks(every), changed_looks(once)
    assert doy in range(91, 213) and 6 <= field.sum() <= 25
    assert set(times[bare & changed].year) == set(times[bare].year) and len(set(times[bare].year)) >= 2
    assert set(times[changed_once].year) == {start.year}
    assert not (changed & ~((age >= 0) & (age < fade))).any()  # outside the bare season: as observed
    jittered = changed_looks(mod.make_field(job[:5] + (20,))[0])
    assert jittered.any() and (jittered != changed).any()  # bared on other days in some years
    res = mod.main(["--fields", "2", "--cases", "dev-2012-control", "--workers", "1"])
    assert res["fields"] == 2 and 0 <= res["fields_alarmed"] <= 2 and not res["once"]
    assert mod.main(["--fields", "1", "--cases", "dev-2012-control", "--workers", "1", "--once"])["once"]


def test_memory_benchmark_measures_bytes_per_pixel_look(shared):
    mod = _benchmark("bench_memory")
    mod.ROOT = shared / "benchmark"
    res = mod.main(["--grow", "0", "400"])
    assert [r["status"] for r in res["runs"]] == ["ok", "ok"]
    assert res["runs"][1]["pixel_looks"] > res["runs"][0]["pixel_looks"]
    # the limit's figure (215) is what the numpy allocations cost, within a factor of two
    assert 0.5 < res["traced_bytes_per_pixel_look"] / res["assumed"] < 2


def test_parts_benchmark_runs_at_tiny_size(shared):
    """The landscape under a limit it does not fit is watched in parts (no timing is asserted)."""
    mod = _benchmark("bench_parts")
    mod.ROOT = shared / "benchmark"
    res = mod.main(["--grow", "0", "--limit-gb", "0.1"])
    assert res["whole"]["message"] == "" and res["parts"]["message"].startswith("watched in 4 parts")
    assert res["parts"]["status"] == "ok" and res["whole"]["onsets"] and res["parts"]["onsets"]


def test_radar_simulation_runs_at_tiny_size():
    res = _benchmark("radar_simulation").main(["--series", "1"])
    assert res["series"] == 1 and res["site_weeks"] == 35 and set(res["found"]) >= {"+4.0,+3.0", "-8.0,-8.0"}


def test_many_sites_benchmark_runs_at_tiny_size():
    res = _benchmark("bench_many_sites").main(["--sites", "5"])
    assert res["sites"] == [5, 20] and res["large"]["week2_s"] > 0 and res["large"]["map_kb"] > res["small"]["map_kb"]
