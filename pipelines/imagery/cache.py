"""Pixel cache: fetched imagery is kept on disk so re-runs never refetch.

One folder per (provider, area, bands, CRS, resolution) — the key is a hash of those — holding
one NetCDF file per acquisition and an ``index.json`` with the periods already fetched completely
and each file's SHA-256.  A request is answered from disk where its period is covered; only the
uncovered part goes to the provider (a weekly run fetches just the new week).  A file whose
checksum or read fails is treated as missing: its period is fetched again, never used.  A day
on which the provider could not read an acquisition (:data:`~.local_stac.UNREADABLE_ATTR`) is
neither kept nor marked covered, so the next run asks for it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from sitewatch.errors import CorruptRaster, NoImagery, SiteTooLarge

from .base import ImageryProvider, ImageryRequest, check_size, look_day
from .local_stac import UNREADABLE_ATTR, none_readable, unreadable_of

log = logging.getLogger(__name__)
PUBLICATION_LAG_DAYS = 5


CACHE_FORMAT = "2"
"""Bumped when the dataset contract changes (2: the ``snow`` flag), so old entries are not mixed in.
The key also holds the provider's ``source`` (its collection, API or catalog) where it has one."""


def cache_key(provider: str, request: ImageryRequest) -> str:
    h = hashlib.sha256()
    h.update(f"{CACHE_FORMAT}|{provider}".encode())
    h.update(request.geometry.wkb)
    h.update(",".join(sorted(request.bands)).encode())
    h.update(f"{request.output_epsg}|{request.resolution}".encode())
    return h.hexdigest()[:20]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _merge(windows: list[list[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    for a, b in sorted(windows):
        if out and pd.Timestamp(a) <= pd.Timestamp(out[-1][1]) + pd.Timedelta(days=1):
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _gaps(start: pd.Timestamp, end: pd.Timestamp, covered: list[list[str]]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    gaps, cur = [], start
    for a, b in _merge(covered):
        a, b = pd.Timestamp(a), pd.Timestamp(b)
        if b < cur:
            continue
        if a > end:
            break
        if a > cur:
            gaps.append((cur, min(end, a - pd.Timedelta(days=1))))
        cur = max(cur, b + pd.Timedelta(days=1))
    if cur <= end:
        gaps.append((cur, end))
    return gaps


class CachedProvider:
    """Wraps any provider; same interface, answers from disk where it can."""

    def __init__(self, inner: ImageryProvider, cache_dir: str | Path):
        self.inner = inner
        self.name = inner.name
        self.root = Path(cache_dir) / "pixels" / inner.name
        self.fetched: list[dict] = []
        """What this provider object fetched from the source: key, period, acquisitions."""

    def _folder(self, request: ImageryRequest) -> Path:
        # keyed by where the pixels come from, not only the provider's kind: Earth Engine's
        # Sentinel-2 and Sentinel-1, two STAC APIs or two local catalogs over the same area must
        # not answer for each other
        return self.root / cache_key(getattr(self.inner, "source", self.name), request)

    def _index(self, folder: Path) -> dict:
        try:
            return json.loads((folder / "index.json").read_text())
        except (OSError, json.JSONDecodeError):
            return {"covered": [], "files": {}}

    def _write_index(self, folder: Path, index: dict) -> None:
        tmp = folder / "index.json.tmp"
        tmp.write_text(json.dumps(index, indent=1))
        os.replace(tmp, folder / "index.json")  # atomic: a crash leaves the old index

    def _grid(self, folder: Path, index: dict, days: list[str]) -> tuple[int, int, float] | None:
        """Height, width and resolution of the cached looks, from a file's header (no pixel read)."""
        for day in days:
            try:
                with xr.open_dataset(folder / index["files"][day]["file"], engine="scipy") as f:
                    return f.sizes["y"], f.sizes["x"], float(f.attrs.get("resolution", 0) or 0)
            except (OSError, ValueError, RuntimeError, KeyError, TypeError):
                continue
        return None

    def _refusal(self, exc: SiteTooLarge, request: ImageryRequest, index: dict, start, end, known,
                 grid: tuple[int, int, float] | None) -> SiteTooLarge:
        """The refusal of the whole request, naming every day of it (and, where the cached grid is
        known, stating all its looks, not only the part that was refused)."""
        days = self._days(request, index, start, end, known)
        if grid is not None:
            try:
                check_size(request, len(days), *grid, self.name, days)
            except SiteTooLarge as whole:
                return whole
        exc.days = days
        return exc

    def _days(self, request: ImageryRequest, index: dict, start, end, known) -> tuple:
        """Every day with a look in the request: the cached ones, ``known``, and those of the periods
        not cached, asked for under a limit of 0 (refused before a pixel is read)."""
        days = {*known, *(look_day(d) for d in index["files"] if start <= pd.Timestamp(d) <= end)}
        for h0, h1 in _gaps(start, end, index["covered"]):
            try:
                self.inner.load(replace(request, start=h0, end=h1, max_pixel_looks=0))
            except SiteTooLarge as more:
                days |= set(more.days)
            except (NoImagery, CorruptRaster):
                pass
        return tuple(sorted(days))

    def _read(self, folder: Path, index: dict, start, end) -> tuple[list[xr.Dataset], list[str]]:
        parts, bad = [], []
        for day, meta in sorted(index["files"].items()):
            if not (start <= pd.Timestamp(day) <= end):
                continue
            path = folder / meta["file"]
            try:
                if _sha(path) != meta["sha256"]:
                    raise ValueError("checksum mismatch")
                with xr.open_dataset(path, engine="scipy") as f:
                    ds = f.load()
                ds["clear"] = ds["clear"].astype(bool)
                parts.append(ds)
            except (OSError, ValueError, RuntimeError) as exc:
                log.warning("pixel cache: %s unusable (%s); fetching it again", path.name, exc)
                bad.append(day)
        return parts, bad

    def load(self, request: ImageryRequest) -> xr.Dataset:
        folder = self._folder(request)
        folder.mkdir(parents=True, exist_ok=True)
        index = self._index(folder)
        start, end = pd.Timestamp(request.start).normalize(), pd.Timestamp(request.end).normalize()
        # Refuse before a cached pixel is read: the cached days alone may be over the limit (it was
        # lowered, for several site tasks at once), and the provider is asked for the rest under
        # what they leave of it.
        cached = [d for d in sorted(index["files"]) if start <= pd.Timestamp(d) <= end]
        grid = self._grid(folder, index, cached) if request.max_pixel_looks is not None else None
        if grid is not None:
            try:
                check_size(request, len(cached), *grid, self.name, cached)
            except SiteTooLarge as exc:
                raise self._refusal(exc, request, index, start, end, exc.days, grid) from None
        parts, bad = self._read(folder, index, start, end)
        unreadable: list[dict] = []
        if bad:  # forget the coverage around unusable files so those days are fetched again
            for day in bad:
                index["files"].pop(day, None)
                index["covered"] = [w for w in index["covered"] if not (w[0] <= day <= w[1])]
        for g0, g1 in _gaps(start, end, index["covered"]):
            sub = replace(request, start=g0, end=g1)
            if grid is not None:
                sub = replace(sub, max_pixel_looks=max(request.max_pixel_looks - len(parts) * grid[0] * grid[1], 0))
            left_out = []
            try:
                fresh = self.inner.load(sub)
                left_out = unreadable_of(fresh)
            except SiteTooLarge as exc:
                read = {look_day(p.time.values[0]) for p in parts}
                raise self._refusal(exc, request, index, start, end, {*exc.days, *read}, grid) from None
            except NoImagery:
                fresh = None
            except CorruptRaster as exc:
                if not exc.unreadable:
                    raise
                fresh, left_out = None, exc.unreadable  # the gap's only acquisitions: the cached ones still count
            n = 0
            unreadable += left_out
            skipped_days = {u["date"] for u in left_out}
            if fresh is not None:
                fresh.attrs.pop(UNREADABLE_ATTR, None)
                for t in fresh.time.values:
                    one = fresh.sel(time=[t])
                    day = str(pd.Timestamp(t).date())
                    if day in skipped_days:  # partly read: used this time, not kept
                        parts.append(one.copy())
                        continue
                    path = folder / f"{day}.nc"
                    out = one.assign(clear=one["clear"].astype("int8"))
                    out.to_netcdf(path, engine="scipy")
                    index["files"][day] = {"file": path.name, "sha256": _sha(path)}
                    one = one.copy()
                    parts.append(one)
                    n += 1
            # Archives publish a few days late: recent days stay uncovered and are asked again next time.
            settled = min(g1, pd.Timestamp.now().normalize() - pd.Timedelta(days=PUBLICATION_LAG_DAYS))
            if settled >= g0:
                # A day with an unreadable acquisition stays uncovered, so it is asked again next time.
                kept = _gaps(g0, settled, [[d, d] for d in skipped_days])
                index["covered"] = _merge([*index["covered"], *([str(a.date()), str(b.date())] for a, b in kept)])
            self._write_index(folder, index)
            self.fetched.append({"key": folder.name, "start": str(g0.date()), "end": str(g1.date()), "acquisitions": n})
        if not parts:
            if unreadable:
                raise none_readable(self.name, unreadable)
            raise NoImagery(f"no acquisition between {start.date()} and {end.date()} over the site")
        # The provider checked only the days it was asked for; cached days count as much.
        check_size(request, len(parts), parts[0].sizes["y"], parts[0].sizes["x"],
                   float(parts[0].attrs.get("resolution", 0) or 0), self.name, [p.time.values[0] for p in parts])
        parts = sorted(parts, key=lambda d: d.time.values[0])
        attrs = dict(parts[0].attrs)
        ds = xr.concat(parts, "time", data_vars="all", coords="different", compat="equals", join="outer")
        attrs.pop(UNREADABLE_ATTR, None)
        if unreadable:
            attrs[UNREADABLE_ATTR] = json.dumps(unreadable)
        ds.attrs = attrs
        _, keep = np.unique(ds.time.values, return_index=True)
        return ds.isel(time=np.sort(keep))
