"""The same store on PostgreSQL + PostGIS (started by .ci/start-postgis; skipped on a laptop without it)."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import text

from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.review import annotate, history
from pipelines.store import Store
from pipelines.weekly import run_period
from sites import read_sites

URL = os.environ.get("SITEWATCH_TEST_PG_URL")


@pytest.fixture(scope="module")
def pg_store():
    if not URL:
        if os.environ.get("CI"):
            pytest.fail("SITEWATCH_TEST_PG_URL is not set on CI: .ci/run should have started PostGIS")
        pytest.skip("no PostGIS (run .ci/start-postgis and set SITEWATCH_TEST_PG_URL)")
    store = Store(URL)
    with store.engine.begin() as conn:
        for t in ("alerts", "annotations", "chips", "detections", "site_weeks", "acquisitions", "runs", "sites",
                  "reports", "reporter_contacts", "site_settings", "site_state", "detection_aliases", "site_aliases"):
            conn.execute(text(f"DELETE FROM {t}"))
    return store


@pytest.mark.slow
def test_weekly_job_on_postgis_is_idempotent_and_spatially_indexed(pg_store, case_2011, tmp_path):
    sites = [s for s in read_sites(case_2011 / "sites.geojson").sites if s.site_id in ("S02-04", "S02-05")]
    provider = LocalStacProvider(case_2011 / "catalog")
    out, first = run_period(pg_store, sites, provider, "2011-03-01", "2011-09-30", tmp_path / "a")
    _, again = run_period(pg_store, sites, provider, "2011-03-01", "2011-09-30", tmp_path / "b")
    dets = pg_store.detections()
    assert first["new"] == len(dets) >= 2 and again["new"] == 0
    assert len(json.loads(out.detections_geojson.read_text())["features"]) == len(dets)
    with pg_store.engine.connect() as conn:
        inside = conn.execute(text(
            "SELECT count(*) FROM detections d JOIN sites s ON d.site_id = s.site_id "
            "WHERE ST_Intersects(d.geom, ST_Buffer(s.geom::geography, s.buffer_m)::geometry)")).scalar()
        assert inside == len(dets)
        assert conn.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'detections_geom_gist'")).scalar() == 1
    det = dets.detection_id.iloc[0]
    annotate(pg_store, det, "unsure", "a")
    annotate(pg_store, det, "looting", "b")
    assert [a["label"] for a in history(pg_store, det)] == ["unsure", "looting"]
    # a site renamed (national register codes): the same digs, under its new name, with their reviews
    from dataclasses import replace

    [done] = pg_store.rename_sites([(sites[0].site_id, "MN-0100")])
    renamed = [replace(s, site_id="MN-0100") if s is sites[0] else s for s in sites]
    _, after = run_period(pg_store, renamed, provider, "2011-03-01", "2011-09-30", tmp_path / "c")
    assert after["new"] == 0 and len(pg_store.detections()) == len(dets)
    assert done["detections"] == int((dets.site_id == sites[0].site_id).sum()) >= 1
    assert set(pg_store.detections().site_id) == {"MN-0100", *set(dets.site_id) - {sites[0].site_id}}
    now = pg_store.current_id(det)
    assert [a["label"] for a in history(pg_store, now)] == ["unsure", "looting"]
    with pg_store.engine.connect() as conn:
        q = "SELECT count(*) FROM sites WHERE site_id = 'MN-0100' AND geom IS NOT NULL"
        assert conn.execute(text(q)).scalar() == 1
    # then split in two halves (imported first): each dig with its review goes to the half that holds it
    from shapely.geometry import box

    x0, y0, x1, y1 = renamed[0].geometry.bounds
    xm = (x0 + x1) / 2
    halves = [replace(renamed[0], site_id=k, geometry=renamed[0].geometry.intersection(b)) for k, b in (
        ("MN-0100-W", box(x0 - 1, y0 - 1, xm, y1 + 1)), ("MN-0100-E", box(xm, y0 - 1, x1 + 1, y1 + 1)))]
    pg_store.upsert_sites(halves)
    [split] = pg_store.rename_sites([("MN-0100", h.site_id) for h in halves])
    assert sum(split["parts"].values()) == done["detections"]
    assert pg_store.former_site_ids()[sites[0].site_id] == ["MN-0100-E", "MN-0100-W"]
    _, later = run_period(pg_store, [*halves, *renamed[1:]], provider, "2011-03-01", "2011-09-30", tmp_path / "d")
    assert set(later["statuses"]) == {"MN-0100-W", "MN-0100-E", *(s.site_id for s in renamed[1:])}
    assert [a["label"] for a in history(pg_store, pg_store.current_id(det))][:2] == ["unsure", "looting"]
