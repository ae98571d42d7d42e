"""The pixel cache: a second run makes no provider calls; corrupt entries are refetched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.imagery.cache import CachedProvider, _gaps
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.monitoring import site_request
from pipelines.store import Store
from pipelines.weekly import run_period
from sites import read_sites


class Counting:
    """Wraps the real local provider and counts what reaches it."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, []

    def load(self, request):
        self.calls.append((request.start, request.end))
        return self.inner.load(request)


@pytest.fixture()
def setup(case_2010, tmp_path):
    sites = [s for s in read_sites(case_2010 / "sites.geojson").sites if s.site_id == "S01-03"]
    counting = Counting(LocalStacProvider(case_2010 / "catalog"))
    return sites, counting, CachedProvider(counting, tmp_path / "cache"), tmp_path


def test_second_weekly_run_makes_no_provider_call(setup):
    sites, counting, cached, tmp = setup
    store = Store(str(tmp / "sw.db"))
    run_period(store, sites, cached, "2010-06-01", "2010-06-30", tmp / "o1")
    first = len(counting.calls)
    assert first >= 1
    run_period(store, sites, cached, "2010-06-01", "2010-06-30", tmp / "o2")
    assert len(counting.calls) == first  # answered from disk
    run_period(store, sites, cached, "2010-07-01", "2010-07-07", tmp / "o3")  # next week: only the new days
    new = counting.calls[first:]
    assert len(new) == 1 and new[0][0] == pd.Timestamp("2010-07-01")


def test_cached_pixels_equal_fresh_pixels(setup):
    sites, counting, cached, _ = setup
    req = site_request(sites[0], pd.Timestamp("2010-06-01"), pd.Timestamp("2010-06-30"))
    fresh = counting.inner.load(req)
    cached.load(req)
    again = cached.load(req)
    assert list(again.time.values) == list(fresh.time.values)
    for b in ("red", "nir", "swir16", "clear"):
        np.testing.assert_array_equal(again[b].values, fresh[b].values)
    assert again.attrs["crs"] == fresh.attrs["crs"]


def test_corrupt_cache_entry_is_refetched_not_used(setup):
    sites, counting, cached, _ = setup
    req = site_request(sites[0], pd.Timestamp("2010-06-01"), pd.Timestamp("2010-06-30"))
    cached.load(req)
    n = len(counting.calls)
    victim = sorted(cached.root.rglob("*.nc"))[-1]
    victim.write_bytes(victim.read_bytes()[:100])  # a partial write
    ds = cached.load(req)
    assert len(counting.calls) == n + 1
    fresh = counting.inner.load(req)
    np.testing.assert_array_equal(ds.red.values, fresh.red.values)


def test_gaps():
    T = pd.Timestamp
    assert _gaps(T("2024-01-01"), T("2024-01-31"), [["2024-01-01", "2024-01-10"]]) == [(T("2024-01-11"), T("2024-01-31"))]
    assert _gaps(T("2024-01-01"), T("2024-01-10"), [["2023-12-01", "2024-02-01"]]) == []


def test_unreadable_acquisition_is_not_cached_and_is_asked_again(case_2010, tmp_path):
    import shutil
    from pathlib import Path

    from pipelines.imagery.local_stac import unreadable_of

    shutil.copytree(case_2010 / "catalog", tmp_path / "catalog")
    site = [s for s in read_sites(case_2010 / "sites.geojson").sites if s.site_id == "S01-03"][0]
    counting = Counting(LocalStacProvider(tmp_path / "catalog"))
    cached = CachedProvider(counting, tmp_path / "cache")
    req = site_request(site, pd.Timestamp("2010-06-01"), pd.Timestamp("2010-08-31"))
    whole = counting.inner.load(req)
    victim = next(i for i in counting.inner.items if i.id == str(whole.item_id.values[-3]))
    path = Path(victim.assets["swir16"].get_absolute_href())
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])

    first = cached.load(req)
    assert [u["item"] for u in unreadable_of(first)] == [victim.id]
    assert victim.id not in list(first.item_id.values) and len(first.time) == len(whole.time) - 1
    day = str(pd.Timestamp(victim.datetime).date())
    assert not list(cached.root.rglob(f"{day}.nc"))  # nothing of that day kept
    n = len(counting.calls)

    path.write_bytes(good)  # re-downloaded
    again = cached.load(req)
    assert len(counting.calls) > n  # the left-out day is asked for again
    assert not unreadable_of(again)
    assert list(again.time.values) == list(whole.time.values)
    np.testing.assert_array_equal(again.swir16.values, whole.swir16.values)
    n = len(counting.calls)
    cached.load(req)
    assert len(counting.calls) == n  # and now kept
