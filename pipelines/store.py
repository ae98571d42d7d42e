"""The store: SQLite by default, any SQLAlchemy URL (PostGIS) by configuration.

Writes are transactional and idempotent on natural keys: a site by ``site_id``, a detection by
its stable ``detection_id``, a site-week by ``(site_id, week)``, an acquisition by
``(site_id, provider, item_id)``.  Re-running a week updates rows in place and says so; it never
adds duplicates.  Annotations are append-only.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from shapely import wkt
from sqlalchemy import (
    Column, DateTime, Float, Integer, LargeBinary, MetaData, String, Table, Text, create_engine, event, inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SAWarning

from change_detection import CONFIDENCES, Detection, DetectorParams
from maps.language import N_, Said, said_list
from reports.reconcile import RAISE
from sites import Site

metadata = MetaData()

sites_t = Table(
    "sites", metadata,
    Column("site_id", String, primary_key=True),
    Column("name", Text, nullable=False),
    Column("sensitivity", String, nullable=False),
    Column("buffer_m", Float, nullable=False),
    Column("region", Text, nullable=False, default=""),
    Column("geometry_wkt", Text, nullable=False),
    Column("repairs", Text, nullable=False, default="[]"),
    Column("monitor_since", String),
    Column("imported_at", DateTime(timezone=True)),
    Column("id_key", String),
    # the id its digs are named by where it is not site_id: the id it was first watched under,
    # kept through a rename (Store.rename_sites, sites.model.Site.id_key)
)
runs_t = Table(
    "runs", metadata,
    Column("run_id", String, primary_key=True),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("period_start", String),
    Column("period_end", String),
    Column("provider", String),
    Column("status", String),
    Column("summary", Text),
)
acquisitions_t = Table(
    "acquisitions", metadata,
    Column("site_id", String, primary_key=True),
    Column("provider", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("first_run", String),
)
site_weeks_t = Table(
    "site_weeks", metadata,
    Column("site_id", String, primary_key=True),
    Column("week", String, primary_key=True),
    Column("run_id", String),
    Column("status", String),
    Column("looks", Integer),
    Column("clear_looks", Integer),
)
detections_t = Table(
    "detections", metadata,
    Column("detection_id", String, primary_key=True),
    Column("site_id", String, nullable=False, index=True),
    Column("algorithm", String),
    Column("first_seen", String, nullable=False),
    Column("last_seen", String, nullable=False),
    Column("confirmed_on", String, nullable=False),
    Column("score", Float),
    Column("confidence", String),
    Column("area_m2", Float),
    Column("n_looks", Integer),
    Column("kind_hint", String),
    Column("evidence", Text),
    Column("geometry_wkt", Text, nullable=False),
    Column("status", String, nullable=False, default="open"),
    Column("corroborated_by", String),
    # the first community report that corroborated it: its confidence stands one level above the
    # detector's, once, however many weeks the report is reconciled (Store.corroborate)
    Column("first_run", String),
    Column("last_run", String),
    Column("updated_at", DateTime(timezone=True)),
)
annotations_t = Table(
    "annotations", metadata,
    Column("annotation_id", Integer, primary_key=True, autoincrement=True),
    Column("detection_id", String, nullable=False, index=True),
    Column("label", String, nullable=False),
    Column("note", Text, default=""),
    Column("author", String, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("visited_on", String),
    # The day a ranger was at the place (a field verdict); empty for a review from the imagery.
)

detection_aliases_t = Table(
    "detection_aliases", metadata,
    Column("old_id", String, primary_key=True),
    Column("detection_id", String, nullable=False),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True)),
)
# A detection's former id (its site renamed): a field pack or a note made before still finds it.
site_aliases_t = Table(
    "site_aliases", metadata,
    Column("old_id", String, primary_key=True),
    Column("site_id", String, primary_key=True),
    Column("created_at", DateTime(timezone=True)),
)
# A site's former id: a community report that still names the site by it finds the site.  A site
# split in two has a row for each part (the report's place tells which).

chips_t = Table(
    "chips", metadata,
    Column("detection_id", String, primary_key=True),
    Column("before_date", String),
    Column("after_date", String),
    Column("before_png", LargeBinary),
    Column("after_png", LargeBinary),
    Column("index_png", LargeBinary),
    Column("colour", String),
)
site_settings_t = Table(
    "site_settings", metadata,
    Column("site_id", String, primary_key=True),
    Column("threshold", Float),
    Column("reason", Text),
    Column("updated_at", DateTime(timezone=True)),
)
verdict_words_t = Table(
    "verdict_words", metadata,
    Column("word", String, primary_key=True),
    Column("verdict", String, nullable=False),
    Column("updated_at", DateTime(timezone=True)),
)
site_state_t = Table(
    "site_state", metadata,
    Column("site_id", String, primary_key=True),
    Column("state", LargeBinary),
    Column("updated_at", DateTime(timezone=True)),
)
alerts_t = Table(
    "alerts", metadata,
    Column("detection_id", String, primary_key=True),
    Column("confidence", String, primary_key=True),
    Column("sent_at", String),
)
reports_t = Table(
    "reports", metadata,
    Column("report_id", String, primary_key=True),
    Column("observed_on", String, nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    Column("site_id", String),
    Column("site_name", Text),
    Column("text", Text),
    Column("photo_ref", Text),
    Column("reporter", String),
    Column("accuracy_m", Float),
    Column("source", Text),
    Column("source_row", Integer),
    Column("imported_at", DateTime(timezone=True)),
)
# Raw contacts, only under the "restricted" contact policy; never joined into an export.
reporter_contacts_t = Table(
    "reporter_contacts", metadata,
    Column("reporter", String, primary_key=True),
    Column("contact", Text, nullable=False),
)


RETIRED_STATUSES = ("superseded", "withdrawn")
"""Statuses of detections a later run no longer reports (replaced, or not repeated by the next look);
one that reappears is open again."""
HIDDEN_STATUSES = ("dismissed", "suppressed", *RETIRED_STATUSES)
"""Detections no map, field pack or reconciliation shows: annotated false positives, their
repeats, and retired ones."""
OPEN_STATUSES = ("open", "review")
"""A detection no verdict has closed: nobody has been there, or an archaeologist was unsure."""
OPEN_DAYS = DetectorParams().rearm_days
"""How long an open detection stays on the maps, in the field pack and in the reconciliation after
it was last seen: as long as the detector holds its ground as one disturbance (a year of calm
re-arms it)."""


def awaits_ranger(frame: pd.DataFrame, closed=()) -> pd.Series:
    """Which of ``frame``'s detections no verdict from the field has closed: open ones (no
    verdict, or an archaeologist unsure), and confirmed ones not in ``closed`` (the ids a
    ranger's check closed, :func:`pipelines.review.closed_by_check`): confirmed from the imagery
    and not yet visited, or reported again since the check."""
    return frame.status.isin(OPEN_STATUSES) | ((frame.status == "confirmed") & ~frame.detection_id.isin(list(closed)))


def open_or_seen(frame: pd.DataFrame, since, end, closed=()) -> pd.Series:
    """Which of ``frame``'s detections a week ending ``end`` shows (its map, field pack and
    reconciliation): known by ``end``, not hidden, and seen on or after ``since`` or still
    awaiting a ranger (:func:`awaits_ranger`) and seen within :data:`OPEN_DAYS` of ``end``."""
    end = pd.Timestamp(end)
    seen = frame.last_seen >= str(pd.Timestamp(since).date())
    still_open = awaits_ranger(frame, closed) & (frame.last_seen >= str((end - pd.Timedelta(days=OPEN_DAYS)).date()))
    return (frame.confirmed_on <= str(end.date())) & (seen | still_open) & ~frame.status.isin(HIDDEN_STATUSES)


def _is_day(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _upsert(engine: Engine, table: Table, rows: list[dict], keys: list[str]) -> None:
    if not rows:
        return
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    with engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update), rows)


def _renamed_evidence(evidence: str | None, old: str, new: str) -> str | None:
    """A stored detection's evidence with the parts it names (a site watched in parts) renamed."""
    from .monitoring import renamed_id

    try:
        ev = json.loads(evidence or "{}")
    except ValueError:
        return evidence
    if not isinstance(ev, dict):
        return evidence
    if str(ev.get("part", "")).startswith(f"{old}-"):
        ev["part"] = renamed_id(ev["part"], old, new)
    if isinstance(ev.get("merged_across_seam"), list):
        ev["merged_across_seam"] = [renamed_id(i, old, new) if str(i).startswith(f"{old}-") else i
                                    for i in ev["merged_across_seam"]]
    return json.dumps(ev)


def disturbed_before(evidence: str | None) -> str:
    """The first date of an earlier disturbance on the same ground, from a stored detection's
    evidence JSON (the detector re-armed there: a repeat dig); "" if none."""
    try:
        return str(json.loads(evidence or "{}").get("earlier_disturbance_first_seen") or "")
    except (TypeError, ValueError, AttributeError):
        return ""


FEATURE_NAMES = {"ndvi": "NDVI", "ndmi": "NDMI", "exg": "ExG", "red": Said(N_("red")), "green": Said(N_("green")),
                 "blue": Said(N_("blue")), "nir": "NIR", "swir16": "SWIR", "swir22": "SWIR2",
                 "texture": Said(N_("texture")), "vv_db": "VV dB", "vh_db": "VH dB", "vh_vv_db": "VH/VV dB"}
"""The detector's features as a popup names them: indices and band acronyms as they are, words translated."""


def evidence_summary(evidence: str | None) -> Said:
    """One line for a map popup from a stored detection's evidence JSON: the median change of each
    feature against its seasonal baseline (index units, or reflectance) and how far from normal the
    region stands, e.g. ``NDVI -0.210, red +0.050, NIR -0.021, SWIR +0.044; 4.2 robust sd from
    normal``, and on how many looks it was seen through snow, if any; said in any language
    (:class:`maps.language.Said`).  "" if the evidence is missing or unreadable."""
    try:
        ev = json.loads(evidence or "{}")
        changes = [Said("{feature} {change}", feature=FEATURE_NAMES.get(k, k), change=f"{float(v):+.3f}")
                   for k, v in (ev.get("delta") or {}).items()]
        sd = ev.get("mean_anomaly_sd")
        snow = int(ev.get("looks_through_snow") or 0)
        parts = [*([said_list(changes, ", ")] if changes else []),
                 *([Said(N_("{sd} robust sd from normal"), sd=f"{float(sd):.1f}")] if sd is not None else []),
                 *([Said(N_("seen through snow on 1 look"))] if snow == 1 else []),
                 *([Said(N_("seen through snow on {n} looks"), n=snow)] if snow > 1 else [])]
        return said_list(parts)
    except (TypeError, ValueError, AttributeError):
        return Said("")


CHANGES = ("first_seen", "last_seen", "confidence", "area_m2", "n_looks", "geometry_wkt", "status")
"""What makes a detection reported again "updated" rather than unchanged."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store (a path or a ``sqlite:///`` URL); None for a server or memory."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url[len("sqlite:///"):]).expanduser()


class Store:
    """Thin repository over SQLAlchemy Core."""

    def __init__(self, url: str = "sqlite:///sitewatch.db"):
        if "://" not in url:
            url = f"sqlite:///{url}"
        self.url = url
        if (file := sqlite_file(url)) is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn, _):  # noqa: ANN001 - DB-API connection
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()
        metadata.create_all(self.engine)
        self._add_columns()
        if self.engine.dialect.name == "postgresql":
            self._postgis()

    def _add_columns(self) -> None:
        """A store made by an earlier sitewatch gets the columns added since (all may be empty).
        ``annotations.visited_on`` is filled from the note ``field check on DAY`` that
        ``sitewatch verdicts import`` wrote before the column existed.  Two processes opening the
        same old store at once both try: the one that finds the column made meanwhile goes on."""
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        def columns(table: str) -> set[str]:
            with warnings.catch_warnings():  # PostGIS's geometry columns: a type SQLAlchemy does not know
                warnings.filterwarnings("ignore", "Did not recognize type 'geometry'", SAWarning)
                return {c["name"] for c in inspect(self.engine).get_columns(table)}

        if inspect(self.engine).get_pk_constraint("site_aliases")["constrained_columns"] == ["old_id"]:
            with self.engine.begin() as conn:  # a former id had one successor before splits
                rows = [dict(r._mapping) for r in conn.execute(select(site_aliases_t))]
                site_aliases_t.drop(conn)
                site_aliases_t.create(conn)
                if rows:
                    conn.execute(site_aliases_t.insert(), rows)
        had = {t: columns(t) for t in ("annotations", "detections", "sites")}
        for table, names in had.items():
            for column in metadata.tables[table].columns:
                if column.name in names:
                    continue
                kind = column.type.compile(dialect=self.engine.dialect)
                try:
                    with self.engine.begin() as conn:
                        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column.name} {kind}"))
                except DBAPIError:
                    if column.name not in columns(table):
                        raise
        if "visited_on" not in had["annotations"]:
            with self.engine.begin() as conn:
                for a in list(conn.execute(select(annotations_t.c.annotation_id, annotations_t.c.note)
                                           .where(annotations_t.c.note.like("field check on %"))
                                           .where(annotations_t.c.visited_on.is_(None)))):
                    day = a.note[len("field check on "):][:10]
                    if _is_day(day):
                        conn.execute(annotations_t.update().where(annotations_t.c.annotation_id == a.annotation_id)
                                     .values(visited_on=day))

    def _postgis(self) -> None:
        """On PostgreSQL, index site and detection outlines as PostGIS geometries.

        The geometry is a column generated from the WKT the store writes, so the same SQLAlchemy
        Core code serves SQLite and PostGIS, and spatial SQL (``ST_Intersects`` …) works on the
        PostGIS store.
        """
        from sqlalchemy import text

        with self.engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            for table in ("sites", "detections"):
                conn.execute(text(
                    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS geom geometry(Geometry, 4326) "
                    f"GENERATED ALWAYS AS (ST_GeomFromText(geometry_wkt, 4326)) STORED"))
                conn.execute(text(f"CREATE INDEX IF NOT EXISTS {table}_geom_gist ON {table} USING GIST (geom)"))

    # --- sites -------------------------------------------------------------------------------
    def upsert_sites(self, sites: Iterable[Site]) -> int:
        now = _now()
        existing = {r.site_id: r for r in self._rows(select(sites_t.c.site_id, sites_t.c.monitor_since,
                                                                sites_t.c.id_key))}
        rows = [
            {
                "site_id": s.site_id, "name": s.name, "sensitivity": s.sensitivity, "buffer_m": s.buffer_m,
                "region": s.region, "geometry_wkt": s.geometry.wkt, "repairs": json.dumps(list(s.repairs)),
                "monitor_since": existing[s.site_id].monitor_since if s.site_id in existing else None,
                "id_key": existing[s.site_id].id_key if s.site_id in existing else None, "imported_at": now,
            }
            for s in sites
        ]
        _upsert(self.engine, sites_t, rows, ["site_id"])
        return len(rows)

    def sites(self) -> list[Site]:
        return [
            Site(r.site_id, r.name, wkt.loads(r.geometry_wkt), r.buffer_m, r.sensitivity, r.region or "",
                 tuple(json.loads(r.repairs or "[]")), r.id_key or "")
            for r in self._rows(select(sites_t).order_by(sites_t.c.site_id))
        ]

    def keyed(self, sites: Iterable[Site]) -> list[Site]:
        """``sites`` (read from a registry file) with the id their digs are named by, where a
        rename left one (:meth:`rename_sites`)."""
        keys = {r.site_id: r.id_key for r in self._rows(select(sites_t.c.site_id, sites_t.c.id_key)) if r.id_key}
        return [replace(s, id_key=keys[s.site_id]) if s.site_id in keys else s for s in sites]

    def rename_sites(self, pairs: list[tuple[str, str]]) -> list[dict]:
        """Give sites new ids (a unit moving to national register codes), in one transaction:
        either every rename is made or none.

        Everything the store holds under the old id moves to the new one: the site's watched
        weeks, acquisitions, detector state and calibrated threshold, the community reports placed
        at it, and its detections, whose ids take the new site id as their prefix
        (:func:`pipelines.monitoring.renamed_id`) with their reviews, checks, chips and alerts.
        The old detection ids stay findable (:meth:`current_id`), so a field pack handed out
        before the rename still comes back.  The site remembers the id it was first watched under
        (``id_key``), which the detector names its digs by: the next run reports the same digs
        under the same (new) ids.

        A new id the store already has (the renamed registry was run before the rename) is a
        merge: the site watched since the earlier date keeps its detector state and id key, the
        other's detections stay and the next run replaces them with what covers their ground
        (:func:`pipelines.review.supersede` carries their reviews and alerts), and where both
        have a week, a threshold or a state the new id's stands.  Several sites given one new id
        are merged so, one after the other.

        A site given several new ids was split (:meth:`_split`); one of the parts may keep its id.
        Returns, per site renamed or split, what was moved."""
        groups: dict[str, list[str]] = {}
        for o, n in pairs:
            if n in groups.get(o, []):
                raise ValueError(f"{o!r} → {n!r} is listed twice")
            groups.setdefault(o, []).append(n)
        if same := [o for o, news in groups.items() if news == [o]]:
            raise ValueError(f"{same[0]!r} is renamed to itself")
        news_of = [n for o, news in groups.items() for n in news if n != o]
        if chain := sorted(set(news_of) & set(groups)):
            raise ValueError(f"{chain[0]!r} is both renamed and a new id: rename in two steps (through an id "
                             "no site has)")
        parts = {n for news in groups.values() if len(news) > 1 for n in news}
        if both := sorted(n for n in parts if news_of.count(n) > 1):
            raise ValueError(f"{both[0]!r} is a part of a split site and the new id of another site too: split and "
                             "merge in two steps")
        done = []
        with self.engine.begin() as conn:
            for old, news in groups.items():
                done.append(self._rename(conn, old, news[0]) if len(news) == 1 else self._split(conn, old, news))
        return done

    @staticmethod
    def _site_rows(conn, old: str, news: list[str]) -> dict:
        for new in news:
            if not new or new != new.strip():
                raise ValueError(f"new id {new!r}: an id needs text without blanks around it")
        s = sites_t.c
        rows = {r.site_id: r for r in conn.execute(select(sites_t).where(s.site_id.in_([old, *news])))}
        if old not in rows:
            like = [r for r in conn.execute(select(s.site_id)).scalars() if r.casefold() == old.casefold()]
            raise ValueError(f"no site {old!r} in the store" + (f" (did you mean {like[0]!r}?)" if like else ""))
        return rows

    @staticmethod
    def _move_detections(conn, moves: dict[str, tuple[str, str]], reason: str, evidence: dict | None = None) -> None:
        """Detections given new ids (old id → (new id, site)), with everything that names them; the
        old ids stay findable (:meth:`current_id`)."""
        d = detections_t.c
        taken = set(conn.execute(select(d.detection_id).where(
            d.detection_id.in_([to for to, _ in moves.values()]))).scalars()) - set(moves)
        if taken:
            raise ValueError(f"{reason}: detection id {sorted(taken)[0]!r} is already in the store")
        now = _now()
        for was, (to, site_id) in moves.items():
            values = {"detection_id": to, "site_id": site_id}
            if evidence and was in evidence:
                values["evidence"] = evidence[was]
            conn.execute(detections_t.update().where(d.detection_id == was).values(**values))
            if to == was:
                continue
            for table in (annotations_t, chips_t, alerts_t):
                conn.execute(table.update().where(table.c.detection_id == was).values(detection_id=to))
            conn.execute(detection_aliases_t.update().where(detection_aliases_t.c.detection_id == was)
                         .values(detection_id=to))
            conn.execute(detection_aliases_t.delete().where(detection_aliases_t.c.old_id.in_([was, to])))
            conn.execute(detection_aliases_t.insert().values(old_id=was, detection_id=to, reason=reason,
                                                             created_at=now))

    @staticmethod
    def _alias(conn, site: str, news: list[str]) -> None:
        """Site ``site`` now goes by ``news`` (a part each, for a split site; it may keep its id as
        one of them): its id and its own former ids name them."""
        a = site_aliases_t.c
        formerly = list(conn.execute(select(a.old_id).where(a.site_id == site)).scalars())
        olds = [*formerly, *([] if site in news else [site])]
        conn.execute(site_aliases_t.delete().where(a.site_id == site))
        # a former id taken back (a site has it again), or given up again: the latest rename names it
        conn.execute(site_aliases_t.delete().where(a.old_id.in_([*news, site])))
        now = _now()
        rows = [{"old_id": o, "site_id": n, "created_at": now} for o in dict.fromkeys(olds) for n in news if n != o]
        if rows:
            conn.execute(site_aliases_t.insert(), rows)

    def _rename(self, conn, old: str, new: str) -> dict:
        from .monitoring import rename_part_states, renamed_id

        rows = self._site_rows(conn, old, [new])
        s = sites_t.c
        o, n = rows[old], rows.get(new)
        merge = n is not None  # the new id imported (or watched) already
        watched = n is not None and n.monitor_since is not None
        keep_old = o.monitor_since is not None and (not watched or o.monitor_since <= n.monitor_since)
        key = (o.id_key or old) if keep_old else (n.id_key or new) if n is not None else new
        sinces = [v for v in (o.monitor_since, n.monitor_since if n else None) if v]
        since = min(sinces) if sinces else None
        if merge:
            conn.execute(sites_t.update().where(s.site_id == new).values(
                monitor_since=since, id_key=key if key != new else None))
            conn.execute(sites_t.delete().where(s.site_id == old))
        else:
            conn.execute(sites_t.update().where(s.site_id == old).values(site_id=new,
                                                                         id_key=key if key != new else None))
        # detections: new ids, and everything that names them
        d = detections_t.c
        dets = list(conn.execute(select(d.detection_id, d.evidence).where(d.site_id == old)))
        self._move_detections(conn, {r.detection_id: (renamed_id(r.detection_id, old, new), new) for r in dets},
                              f"site {old} renamed {new}",
                              {r.detection_id: _renamed_evidence(r.evidence, old, new) for r in dets})
        # per-site records: the new id's stand where both have one
        for table, keys in ((site_weeks_t, ("week",)), (acquisitions_t, ("provider", "item_id")),
                            (site_settings_t, ()), (site_state_t, ())):
            c = table.c
            if table is site_state_t and keep_old:  # the state of the longer watch goes on
                conn.execute(table.delete().where(c.site_id == new))
            have = {tuple(getattr(r, k) for k in keys) for r in conn.execute(select(table).where(c.site_id == new))}
            for r in list(conn.execute(select(table).where(c.site_id == old))):
                where = c.site_id == old
                for k in keys:
                    where = where & (c[k] == getattr(r, k))
                if tuple(getattr(r, k) for k in keys) in have:
                    conn.execute(table.delete().where(where))
                    continue
                values = {"site_id": new}
                if table is site_state_t and r.state:  # a site watched in parts: its parts' names
                    values["state"] = rename_part_states(r.state, old, new)
                conn.execute(table.update().where(where).values(**values))
        self._alias(conn, old, [new])
        moved_reports = conn.execute(reports_t.update().where(reports_t.c.site_id == old).values(site_id=new)).rowcount
        return {"old": old, "new": new, "merged": watched, "detections": len(dets), "reports": moved_reports,
                "id_key": key}

    def _split(self, conn, old: str, news: list[str]) -> dict:
        """Site ``old`` split into ``news`` (:meth:`rename_sites`), whose outlines the store holds
        (``sitewatch sites import`` of the registry that has them).

        Each detection goes to the part whose watched area (outline and buffer) holds most of it,
        or the nearest where none holds any of it, with its id, reviews, checks, chips and alerts
        (the id takes the part's id as its prefix); each community report to the part at its
        place, or, without a place, to the part that holds most of the site.  Every part gets
        the site's watched weeks, acquisitions, monitoring epoch and calibrated threshold (where
        it has none of its own), and its former ids; the part that holds most of the site, if no
        run watched it yet, its id key, so that the digs there keep their ids.  No part gets the
        detector state: a part's grid is not the site's, so the next run recomputes each part
        from the epoch and replaces what it finds under other ids
        (:func:`pipelines.review.supersede`)."""
        from shapely.geometry import Point

        from sites.geo import buffer_m, holder

        from .monitoring import renamed_id

        rows = self._site_rows(conn, old, news)
        if missing := [n for n in news if n not in rows]:
            raise ValueError(f"{old!r} split into {', '.join(news)}: {missing[0]!r} is not in the store; import the "
                             "registry that holds the parts first (sitewatch sites import FILE), so that sitewatch "
                             "knows their outlines")
        o = rows[old]
        outline = wkt.loads(o.geometry_wkt)
        shapes = {n: wkt.loads(rows[n].geometry_wkt) for n in news}
        near = buffer_m(outline, o.buffer_m)
        if astray := [n for n in news if not shapes[n].intersects(near)]:
            raise ValueError(f"{old!r} split into {', '.join(news)}: {astray[0]!r} lies away from {old!r} (not even "
                             "within its buffer); is it a part of it?")
        areas = {n: buffer_m(shapes[n], rows[n].buffer_m) for n in news}
        largest = max(news, key=lambda n: shapes[n].intersection(outline).area)  # the first listed on a tie

        s = sites_t.c
        heir = old if old in news else largest if rows[largest].monitor_since is None else None
        key = o.id_key or old
        for n in news:
            if n == old:
                continue
            values = {}
            if o.monitor_since and (rows[n].monitor_since is None or o.monitor_since < rows[n].monitor_since):
                values["monitor_since"] = o.monitor_since
            if n == heir:
                values["id_key"] = key if key != n else None
            if values:
                conn.execute(sites_t.update().where(s.site_id == n).values(**values))
        d = detections_t.c
        to: dict[str, str] = {}
        outside = 0
        for r in list(conn.execute(select(d.detection_id, d.geometry_wkt).where(d.site_id == old))):
            to[r.detection_id], inside = holder(wkt.loads(r.geometry_wkt), areas)
            outside += not inside
        self._move_detections(conn, {was: (renamed_id(was, old, n) if n != old else was, n) for was, n in to.items()},
                              f"site {old} split into {', '.join(news)}")
        # per-site records: each part has the site's, where it has none of its own; the state none
        for table, keys in ((site_weeks_t, ("week",)), (acquisitions_t, ("provider", "item_id")),
                            (site_settings_t, ())):
            c = table.c
            theirs = [dict(r._mapping) for r in conn.execute(select(table).where(c.site_id == old))]
            for n in news:
                if n == old:
                    continue
                have = {tuple(getattr(r, k) for k in keys) for r in conn.execute(select(table).where(c.site_id == n))}
                add = [{**r, "site_id": n} for r in theirs if tuple(r[k] for k in keys) not in have]
                if add:
                    conn.execute(table.insert(), add)
        reports, unplaced = {}, 0
        for r in list(conn.execute(select(reports_t.c.report_id, reports_t.c.lat, reports_t.c.lon)
                                   .where(reports_t.c.site_id == old))):
            if r.lat is not None and r.lon is not None:
                reports[r.report_id] = holder(Point(r.lon, r.lat), areas)[0]
            else:
                reports[r.report_id], unplaced = largest, unplaced + 1
        for report_id, n in reports.items():
            conn.execute(reports_t.update().where(reports_t.c.report_id == report_id).values(site_id=n))
        if old not in news:
            for table in (site_weeks_t, acquisitions_t, site_settings_t, site_state_t):
                conn.execute(table.delete().where(table.c.site_id == old))
            conn.execute(sites_t.delete().where(s.site_id == old))
        self._alias(conn, old, news)
        counts = {n: list(to.values()).count(n) for n in news}
        return {"old": old, "new": ", ".join(news), "parts": counts, "merged": False, "split": True,
                "detections": len(to), "outside": outside, "reports": len(reports), "reports_unplaced": unplaced,
                "unplaced_to": largest, "id_key": key if heir else None, "heir": heir}

    def former_site_ids(self) -> dict[str, list[str]]:
        """A renamed site's former ids → its id now; a split site's → its parts' ids
        (:meth:`rename_sites`)."""
        out: dict[str, list[str]] = {}
        for r in self._rows(select(site_aliases_t).order_by(site_aliases_t.c.old_id, site_aliases_t.c.site_id)):
            out.setdefault(r.old_id, []).append(r.site_id)
        return out

    def current_id(self, detection_id: str) -> str:
        """The id a detection has now: ``detection_id`` itself, or what a site's rename made of it."""
        rows = self._rows(select(detection_aliases_t.c.detection_id).where(
            detection_aliases_t.c.old_id == detection_id))
        return rows[0].detection_id if rows else detection_id

    def monitor_since(self, site_id: str, start: str) -> str:
        """The site's monitoring epoch: the earliest period start it was ever run from.

        The detector always confirms from this date on, so a week-by-week run and a backfill
        give the same detections.
        """
        with self.engine.begin() as conn:
            cur = conn.execute(select(sites_t.c.monitor_since).where(sites_t.c.site_id == site_id)).scalar()
            since = min(cur, start) if cur else start
            if since != cur:
                conn.execute(sites_t.update().where(sites_t.c.site_id == site_id).values(monitor_since=since))
        return since

    # --- runs, acquisitions, site-weeks ------------------------------------------------------------
    def start_run(self, run_id: str, start: str, end: str, provider: str) -> None:
        _upsert(self.engine, runs_t, [{"run_id": run_id, "started_at": _now(), "finished_at": None,
                                       "period_start": start, "period_end": end, "provider": provider,
                                       "status": "running", "summary": "{}"}], ["run_id"])

    def finish_run(self, run_id: str, status: str, summary: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs_t.update().where(runs_t.c.run_id == run_id).values(
                finished_at=_now(), status=status, summary=json.dumps(summary, default=str)))

    def runs(self) -> list[dict]:
        return [dict(r._mapping) for r in self._rows(select(runs_t).order_by(runs_t.c.started_at))]

    def record_acquisitions(self, site_id: str, provider: str, item_ids: Iterable[str], run_id: str) -> int:
        """Remember what was read; returns how many were new."""
        ids = sorted({i for i in item_ids if i})
        seen = {r.item_id for r in self._rows(select(acquisitions_t.c.item_id).where(
            (acquisitions_t.c.site_id == site_id) & (acquisitions_t.c.provider == provider)))}
        new = [{"site_id": site_id, "provider": provider, "item_id": i, "first_run": run_id} for i in ids if i not in seen]
        if new:
            with self.engine.begin() as conn:
                conn.execute(acquisitions_t.insert(), new)
        return len(new)

    def record_site_weeks(self, rows: list[dict]) -> None:
        _upsert(self.engine, site_weeks_t, rows, ["site_id", "week"])

    def site_weeks(self) -> list[dict]:
        return [dict(r._mapping) for r in self._rows(select(site_weeks_t))]

    # --- detections ---------------------------------------------------------------------------
    def upsert_detections(self, dets: Iterable[Detection], run_id: str) -> dict[str, int]:
        """Insert new detections, update known ones; returns counts of ``new``, ``updated`` (a known
        detection whose dates, confidence, area, looks, outline or status changed) and ``unchanged``
        (reported again as it was: a quiet week is not "4 updated"), and the new ones' ids
        (``new_ids``)."""
        dets = list(dets)
        c = detections_t.c
        known = {r.detection_id: r for r in self._rows(select(
            c.detection_id, c.first_run, c.status, c.confidence, c.first_seen, c.last_seen, c.area_m2, c.n_looks,
            c.geometry_wkt, c.corroborated_by).where(c.detection_id.in_([d.detection_id for d in dets])))
        } if dets else {}  # only these: reading every stored detection per site grew with the registry's square
        rows = []
        for d in dets:
            prev = known.get(d.detection_id)
            # a report's corroboration raises the detector's confidence one level, for good
            corroborated = prev is not None and prev.corroborated_by
            confidence = RAISE.get(d.confidence, d.confidence) if corroborated else d.confidence
            rows.append({
                "detection_id": d.detection_id, "site_id": d.site_id, "algorithm": d.evidence.get("algorithm", ""),
                "first_seen": str(d.first_seen.date()), "last_seen": str(d.last_seen.date()),
                "confirmed_on": str(d.confirmed_on.date()), "score": d.score,
                # never lowered: a growing region's median looks may dip
                "confidence": max(confidence, prev.confidence, key=CONFIDENCES.index)
                if prev and prev.confidence in CONFIDENCES else confidence,
                "area_m2": d.area_m2, "n_looks": d.n_looks, "kind_hint": d.kind_hint,
                "evidence": json.dumps(d.evidence), "geometry_wkt": d.geometry.wkt,
                "status": prev.status if prev and prev.status not in RETIRED_STATUSES else "open",
                "corroborated_by": prev.corroborated_by if prev else None,
                "first_run": prev.first_run if prev else run_id,
                "last_run": run_id, "updated_at": _now(),
            })
        _upsert(self.engine, detections_t, rows, ["detection_id"])
        new = [d.detection_id for d in dets if d.detection_id not in known]
        same = sum(1 for row in rows if (prev := known.get(row["detection_id"])) is not None
                   and all(getattr(prev, k) == row[k] for k in CHANGES))
        return {"new": len(new), "updated": len(dets) - len(new) - same, "unchanged": same, "new_ids": new}

    def detections(self, site_ids: Iterable[str] | None = None,
                   detection_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Stored detections, of ``site_ids`` and with ``detection_ids`` where given."""
        q = select(detections_t).order_by(detections_t.c.first_seen, detections_t.c.detection_id)
        if site_ids is not None:
            q = q.where(detections_t.c.site_id.in_(list(site_ids)))
        if detection_ids is not None:
            q = q.where(detections_t.c.detection_id.in_(list(detection_ids)))
        with self.engine.connect() as conn:
            return pd.read_sql(q, conn)

    # --- annotations (append-only) ---------------------------------------------------------------
    def add_annotation(self, detection_id: str, label: str, author: str, note: str = "",
                       visited_on: str | None = None) -> int:
        with self.engine.begin() as conn:
            res = conn.execute(annotations_t.insert().values(
                detection_id=detection_id, label=label, note=note, author=author, created_at=_now(),
                visited_on=visited_on))
            return int(res.inserted_primary_key[0])

    def annotations(self, detection_id: str | None = None) -> list[dict[str, Any]]:
        q = select(annotations_t).order_by(annotations_t.c.annotation_id)
        if detection_id:
            q = q.where(annotations_t.c.detection_id == detection_id)
        return [dict(r._mapping) for r in self._rows(q)]

    # --- per-site detector state (see change_detection.incremental) -------------------------------
    def site_state(self, site_id: str) -> bytes | None:
        rows = self._rows(select(site_state_t.c.state).where(site_state_t.c.site_id == site_id))
        return rows[0].state if rows else None

    def save_site_state(self, site_id: str, blob: bytes) -> None:
        _upsert(self.engine, site_state_t, [{"site_id": site_id, "state": blob, "updated_at": _now()}], ["site_id"])

    # --- alerts (one per detection and confidence level) ------------------------------------------
    def alerted(self) -> dict[str, str]:
        """detection id → the highest confidence it was alerted at."""
        order = {"low": 0, "medium": 1, "high": 2}
        out: dict[str, str] = {}
        for r in self._rows(select(alerts_t)):
            if r.detection_id not in out or order[r.confidence] > order[out[r.detection_id]]:
                out[r.detection_id] = r.confidence
        return out

    def record_alerts(self, sent: list[tuple[str, str]], when: str) -> None:
        _upsert(self.engine, alerts_t, [{"detection_id": d, "confidence": c, "sent_at": when} for d, c in sent],
                ["detection_id", "confidence"])

    def carry_alerts(self, old_id: str, new_id: str) -> None:
        """The detection ``new_id`` replaced ``old_id`` (:func:`pipelines.review.supersede`): the
        levels the old one was alerted at count as sent for the new one, so nobody is paged again
        for the same dig under a new id; a rise above them still is."""
        rows = [{"detection_id": new_id, "confidence": r.confidence, "sent_at": r.sent_at}
                for r in self._rows(select(alerts_t).where(alerts_t.c.detection_id == old_id))]
        have = {r.confidence for r in
                self._rows(select(alerts_t.c.confidence).where(alerts_t.c.detection_id == new_id))}
        rows = [r for r in rows if r["confidence"] not in have]
        if rows:
            _upsert(self.engine, alerts_t, rows, ["detection_id", "confidence"])

    # --- chips and per-site settings ------------------------------------------------------------
    def save_chips(self, chips: dict) -> None:
        rows = [{"detection_id": k, "before_date": c.before_date, "after_date": c.after_date, "before_png": c.before_png,
                 "after_png": c.after_png, "index_png": c.index_png, "colour": c.colour} for k, c in chips.items()]
        _upsert(self.engine, chips_t, rows, ["detection_id"])

    def chips(self, detection_id: str):
        from maps.chips import Chips

        rows = self._rows(select(chips_t).where(chips_t.c.detection_id == detection_id))
        if not rows:
            return None
        r = rows[0]
        return Chips(r.before_date, r.after_date, r.before_png, r.after_png, r.index_png, r.colour)

    def set_site_threshold(self, site_id: str, threshold: float | None, reason: str) -> None:
        _upsert(self.engine, site_settings_t, [{"site_id": site_id, "threshold": threshold, "reason": reason,
                                                "updated_at": _now()}], ["site_id"])

    def site_thresholds(self) -> dict[str, float]:
        return {r.site_id: r.threshold for r in self._rows(select(site_settings_t)) if r.threshold}

    def set_verdict_words(self, words: dict[str, str]) -> None:
        """The unit's own words for verdicts (word → field verdict or review label), replacing any
        set before: what its rangers write in a field pack (``pipelines.review.set_verdict_words``
        checks them)."""
        with self.engine.begin() as conn:
            conn.execute(verdict_words_t.delete())
            if words:
                conn.execute(verdict_words_t.insert(), [{"word": w, "verdict": v, "updated_at": _now()}
                                                        for w, v in words.items()])

    def verdict_words(self) -> dict[str, str]:
        return {r.word: r.verdict for r in self._rows(select(verdict_words_t).order_by(verdict_words_t.c.word))}

    # --- community reports -----------------------------------------------------------------------
    def add_reports(self, reports: Iterable, contacts: dict[str, str] | None = None) -> int:
        """Insert new reports (and restricted contacts) in one transaction; returns how many were new.

        Re-importing the same file adds nothing; an error part-way leaves the store as it was.
        """
        reports = list(reports)
        with self.engine.begin() as conn:
            known = set(conn.execute(select(reports_t.c.report_id)).scalars())
            rows = [{
                "report_id": r.report_id, "observed_on": str(r.observed_on), "lat": r.lat, "lon": r.lon,
                "site_id": r.site_id, "site_name": r.site_name, "text": r.text, "photo_ref": r.photo_ref,
                "reporter": r.reporter, "accuracy_m": r.accuracy_m, "source": r.source, "source_row": r.row,
                "imported_at": _now(),
            } for r in reports if r.report_id not in known]
            if rows:
                conn.execute(reports_t.insert(), rows)
            if contacts:
                have = set(conn.execute(select(reporter_contacts_t.c.reporter)).scalars())
                new = [{"reporter": k, "contact": v} for k, v in contacts.items() if k not in have]
                if new:
                    conn.execute(reporter_contacts_t.insert(), new)
        return len(rows)

    def reports(self) -> list:
        from datetime import date as _date

        from reports.ingest import Report

        return [
            Report(r.report_id, _date.fromisoformat(r.observed_on), r.lat, r.lon, r.site_id, r.site_name or "",
                   r.text or "", r.photo_ref or "", r.reporter or "", r.accuracy_m, r.source or "", r.source_row or 0)
            for r in self._rows(select(reports_t).order_by(reports_t.c.observed_on, reports_t.c.report_id))
        ]

    def set_status(self, detection_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(detections_t.update().where(detections_t.c.detection_id == detection_id).values(
                status=status, updated_at=_now()))

    def corroborate(self, detection_id: str, report_id: str) -> bool:
        """A community report corroborates a detection: the first one raises its confidence one
        level (:data:`reports.reconcile.RAISE`) and is kept in ``corroborated_by``; later ones, and
        the same report reconciled again next week, change nothing.  Returns whether it rose."""
        c = detections_t.c
        with self.engine.begin() as conn:
            row = conn.execute(select(c.confidence, c.corroborated_by).where(c.detection_id == detection_id)).first()
            if row is None or row.corroborated_by:
                return False
            up = RAISE.get(row.confidence, row.confidence)
            conn.execute(detections_t.update().where(c.detection_id == detection_id).values(
                corroborated_by=report_id, confidence=up, updated_at=_now()))
            return up != row.confidence

    def set_confidence(self, detection_id: str, confidence: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(detections_t.update().where(detections_t.c.detection_id == detection_id).values(
                confidence=confidence, updated_at=_now()))

    def _rows(self, query):
        with self.engine.connect() as conn:
            return list(conn.execute(query))
