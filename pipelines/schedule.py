"""Every Monday without anyone pressing a button: deployments, catch-up, the daily quick look.

``scheduled_monitoring`` is the flow a deployment runs: it works out which ISO weeks since
``config.start`` are complete and not yet done for every site (a machine that was off, a provider
that was down), runs them in order — each one idempotent per site-week — and sends the alerts.
``build_deployments`` turns the configuration into Prefect deployments with cron schedules;
``sitewatch serve`` serves them against Prefect's server (``PREFECT_API_URL``; a real schedule needs
``prefect server start``, the temporary local API cannot schedule).
"""

from __future__ import annotations

import os
import re
from itertools import groupby
from datetime import datetime
from pathlib import Path

import pandas as pd

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from sites import read_sites  # noqa: E402
from sitewatch.config import Config, load_config  # noqa: E402

from .alerts import alert_report, send_alerts  # noqa: E402
from .imagery import make_provider  # noqa: E402
from .store import Store  # noqa: E402
from .weekly import run_period, weeks_between  # noqa: E402


def pending_weeks(store: Store, site_ids: list[str], start: str, today: pd.Timestamp) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """Complete ISO weeks from ``start`` up to ``today`` that some site has not had run, oldest first."""
    done, want = weeks_run(store), set(site_ids)
    return [w for w in complete_weeks(start, today) if not want <= done.get(w[0], set())]


def weeks_run(store: Store) -> dict[str, set[str]]:
    """ISO week → the sites the store has had it run for."""
    done: dict[str, set[str]] = {}
    for r in store.site_weeks():
        done.setdefault(r["week"], set()).add(r["site_id"])
    return done


def complete_weeks(start: str, today: pd.Timestamp) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """The ISO weeks from ``start`` that ended before ``today``."""
    return [w for w in weeks_between(start, today) if w[2] < pd.Timestamp(today).normalize()]


def local_now(cfg: Config, now: datetime | None = None) -> datetime:
    """The time in the configuration's zone, without a zone attached: quiet hours and the weeks
    are the unit's local ones, whatever zone the server runs in.  A given ``now`` with a zone is
    converted; one without is taken as already local."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(cfg.timezone)
    if now is None:
        return datetime.now(zone).replace(tzinfo=None)
    return now.astimezone(zone).replace(tzinfo=None) if now.tzinfo is not None else now


WEEKLY_CATCH_UP = 8
"""How many of the latest pending weeks a catch-up runs one by one, each with its own folder and
alerts; older pending weeks are back-filled (:func:`plan_catch_up`)."""
BACKFILL_WEEKS = 13
"""The longest back-filled span run as one period: a quarter.  A run loads the period with its
three history years, so a quarter adds about 8 % to a site's memory over a week's run (a year
would add a third, and push a site sized for the per-site limit into being run in parts)."""


def plan_catch_up(pending: list[tuple[str, pd.Timestamp, pd.Timestamp]], weekly: int = WEEKLY_CATCH_UP,
                  span: int = BACKFILL_WEEKS) -> list[tuple[str, pd.Timestamp, pd.Timestamp, bool]]:
    """What a catch-up runs: the last ``weekly`` pending weeks one by one, and the older ones as
    back-fill periods of consecutive weeks (at most ``span`` each), oldest first, each as
    ``(label, monday, sunday, backfill)``.  A unit that sets ``start`` years back, or a server
    that was off all winter, would otherwise get one output folder, one run and one alert e-mail
    per week of the gap; a back-fill finds the same detections (the detector's state carries
    over, as between weeks) and its alerts go out once, with the first recent week's."""
    old, recent = pending[:max(len(pending) - weekly, 0)], pending[max(len(pending) - weekly, 0):]
    plan: list[tuple[str, pd.Timestamp, pd.Timestamp, bool]] = []
    run: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []

    def close() -> None:
        if run:
            label = run[0][0] if len(run) == 1 else f"{run[0][0]}_{run[-1][0]}"
            plan.append((f"backfill-{label}", run[0][1], run[-1][2], True))
            run.clear()

    for week in old:
        if run and (week[1] - run[-1][1] != pd.Timedelta(days=7) or len(run) >= span):
            close()
        run.append(week)
    close()
    return plan + [(label, monday, sunday, False) for label, monday, sunday in recent]


def run_catch_up(cfg: Config, now: datetime | None = None, runner=None) -> list[dict]:
    """Run every pending week in order (older ones back-filled, :func:`plan_catch_up`), then send
    the alerts; returns one record per week or back-filled span.

    ``runner(store, sites, provider, start, end, out, registry)`` defaults to :func:`run_period` (no
    Prefect); ``registry`` is the site ids of the whole registry, when ``sites`` are part of it;
    the flow passes the Prefect weekly flow.
    """
    now = local_now(cfg, now)
    store = Store(cfg.db)
    sites = read_sites(cfg.sites, columns=cfg.columns).sites
    provider = make_provider(cfg.provider, catalog=cfg.stac, cache_dir=cfg.cache, collection=cfg.collection,
                             orbit_pass=cfg.orbit_pass)
    runner = runner or (lambda st, ss, pv, a, b, out, reg: run_period(
        st, ss, pv, a, b, out, access=cfg.access, blind_days=cfg.blind_days, companions=cfg.companions,
        registry=reg, language=cfg.language)[1])
    records = []
    for label, monday, sunday, backfill, some in catch_up_runs(store, sites, cfg.start, pd.Timestamp(now)):
        out = Path(cfg.out) / label
        summary = runner(store, some, provider, str(monday.date()), str(sunday.date()), out,
                         {s.site_id for s in sites})  # a back-fill of added sites leaves no other site out
        # what a back-fill finds goes out with the next week's alerts
        sent = alert_report() if backfill else send_alerts(store, sites, cfg.alerts, label, out, now,
                                                                  cfg.language)
        records.append({"week": label, "new": summary.get("new"), "updated": summary.get("updated"), "alerts": sent,
                        "backfill": backfill, **({"sites_only": len(some)} if some is not sites else {})})
    return records


def catch_up_runs(store: Store, sites: list, start: str, today: pd.Timestamp) -> list[tuple]:
    """The runs a catch-up makes, oldest first, as ``(label, monday, sunday, backfill, sites)``.

    The complete weeks since ``start`` that no site has had (the machine was off; a unit's first
    catch-up) are run for the whole registry (:func:`plan_catch_up`).  Weeks the unit had that
    some of the registry's sites lack — a site added to the registry, a registry re-coded to new
    ids, a site whose archive failed that week — are back-filled for those sites alone, in spans
    of consecutive weeks (``backfill-…-added`` for sites never watched, ``backfill-…-gap``
    otherwise), their alerts going out with the next week's.  Before, a week was run again for
    the whole registry while any site lacked it: one site added in August had every site run over
    the season again, and the last eight weeks' folders, which the unit had used, rewritten."""
    ids = {s.site_id for s in sites}
    done = weeks_run(store)
    watched = set().union(*done.values()) if done else set()
    weeks = complete_weeks(start, today)
    runs = [(*p, sites) for p in plan_catch_up([w for w in weeks if w[0] not in done])]
    # consecutive weeks the same sites lack: back-filled together, in spans as plan_catch_up cuts them
    for lacking, group in groupby(weeks, key=lambda w: frozenset(ids - done[w[0]]) if w[0] in done else frozenset()):
        if lacking:
            kind = "gap" if lacking & watched else "added"
            runs += [(f"{label}-{kind}", monday, sunday, True, [s for s in sites if s.site_id in lacking])
                     for label, monday, sunday, _ in plan_catch_up(list(group), weekly=0)]
    return sorted(runs, key=lambda r: r[1])


def run_quick_look(cfg: Config, now: datetime | None = None) -> dict:
    """The daily look at secret sites: the last seven days, alerts for what is new or escalated."""
    clock = local_now(cfg, now)  # quiet hours are judged at this hour, not at midnight
    now = pd.Timestamp(clock).normalize()
    store = Store(cfg.db)
    registry = read_sites(cfg.sites, columns=cfg.columns).sites
    sites = [s for s in registry if s.sensitivity == "secret"]
    if not sites:
        return {"sites": 0}
    provider = make_provider(cfg.provider, catalog=cfg.stac, cache_dir=cfg.cache, collection=cfg.collection,
                             orbit_pass=cfg.orbit_pass)
    out = Path(cfg.out) / f"quick-look-{now.date()}"
    start = max(pd.Timestamp(cfg.start), now - pd.Timedelta(days=7))
    _, summary = run_period(store, sites, provider, str(start.date()), str(now.date()), out, access=cfg.access,
                            blind_days=cfg.blind_days, companions=cfg.companions,
                            registry={s.site_id for s in registry}, record_weeks=False, language=cfg.language)
    summary["alerts"] = send_alerts(store, sites, cfg.alerts, f"quick look {now.date()}", out, clock, cfg.language)
    return summary


def next_runs(cfg: Config, n: int = 5) -> dict[str, list[str]]:
    """The next ``n`` run times of each schedule, computed by Prefect's own cron schedule."""
    import inspect

    from prefect.server.schemas.schedules import CronSchedule
    from prefect.utilities.asyncutils import run_coro_as_sync

    def dates(cron: str) -> list[str]:
        got = CronSchedule(cron=cron, timezone=cfg.timezone).get_dates(n)
        return [str(d) for d in (run_coro_as_sync(got) if inspect.isawaitable(got) else got)]

    out = {"weekly": dates(cfg.cron)}
    if cfg.quick_look_cron:
        out["quick-look"] = dates(cfg.quick_look_cron)
    return out


def build_deployments(config_path: str | Path):
    """Prefect deployments with cron schedules (built without a server), named after the
    configuration file: ``sitewatch.toml`` serves ``sitewatch-weekly`` (and
    ``sitewatch-quick-look``), ``sitewatch-radar.toml`` ``sitewatch-radar-weekly``.  Two
    configurations served on one Prefect server (radar beside optical, two regions) keep their
    own deployments; under one name, the second would replace the first's configuration."""
    from prefect.schedules import Cron

    from .flows import quick_look, scheduled_monitoring

    cfg = load_config(config_path)
    path = str(Path(config_path).resolve())
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(config_path).stem).strip("-") or "sitewatch"
    deps = [scheduled_monitoring.to_deployment(name=f"{stem}-weekly", parameters={"config_path": path},
                                               schedules=[Cron(cfg.cron, timezone=cfg.timezone)])]
    if cfg.quick_look_cron:
        deps.append(quick_look.to_deployment(name=f"{stem}-quick-look", parameters={"config_path": path},
                                             schedules=[Cron(cfg.quick_look_cron, timezone=cfg.timezone)]))
    return deps
