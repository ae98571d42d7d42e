"""Take community and monitor reports in: CSV, Excel workbooks, GeoJSON and KoBoToolbox/ODK-style exports.

Every row ends up either accepted or rejected with its row number and reason; nothing is lost.
The reporter's contact never leaves this module in clear: it is replaced by a keyed pseudonym
(:mod:`reports.privacy`) before a report record exists; other columns naming the reporter are
dropped, and the text keeps no e-mail address, phone number or name of the reporter.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import shapely.errors
from rapidfuzz import process
from shapely import wkt as shapely_wkt
from shapely.geometry import Point, shape

from maps.escape import csv_cell
from sites import Site
from sites.geo import holder, parse_degrees, parse_number
from sites.tables import (LATITUDE_WORDS, LONGITUDE_WORDS, TableError, chosen_columns, column_key, coordinate_key, not_utf8,
                          read_table)
from sitewatch.errors import InvalidReport

from .privacy import WITHHELD, ContactPolicy, identity_columns, phone_region, pseudonymise, scrub_text

ALIASES = {
    "observed_on": ("observed_on", "date", "observationyear", "observation_date", "today", "start", "_submission_time",
                    "time", "datetime", "reported_on", "огноо", "дата", "fecha", "التاريخ", "تاريخ"),
    "lat": ("lat", "latitude", "_gps_latitude", "_location_latitude", "gps_latitude", "y", *LATITUDE_WORDS),
    "lon": ("lon", "lng", "longitude", "_gps_longitude", "_location_longitude", "gps_longitude", "x", *LONGITUDE_WORDS),
    "geolocation": ("_geolocation", "geolocation", "location", "gps"),
    "wkt": ("wkt", "geometry"),
    "site_name": ("site_name", "name", "site", "place", "site_id", "site_code", "дурсгалын_нэр", "дурсгал", "объект",
                  "памятник", "пам_ятка", "sitio", "lugar", "site_nom"),
    "text": ("text", "comment", "description", "notes", "what_did_you_see", "report", "тайлбар", "мэдээлэл",
             "описание", "комментарий", "опис", "коментар", "descripción", "descripcion", "comentario",
             "الوصف", "ملاحظات"),
    "photo_ref": ("photo_ref", "photo", "image", "picture", "_attachments", "зураг", "фото", "foto", "صورة"),
    "contact": ("contact", "reporter", "reporter_contact", "phone", "email", "reporter_phone", "telephone",
                "утас", "утасны_дугаар", "телефон", "teléfono", "telefono", "celular", "هاتف", "الهاتف"),
    "accuracy_m": ("accuracy_m", "location_accuracy", "_gps_precision", "accuracy", "precision_m", "нарийвчлал",
                   "точность", "точність", "precisión", "precision", "الدقة"),
}
"""Column names (as :func:`sites.tables.column_key` writes them) for each field: the English ones
and KoBoToolbox's, then Mongolian, Russian, Ukrainian, Spanish and Arabic ones."""
REPORT_FIELDS = tuple(ALIASES)
"""What ``columns`` (``--column FIELD=COLUMN``) can name a report file's column for."""
DEFAULT_ACCURACY_M = 100.0
EXTRA_CELLS = "_extra_cells"
"""Where a CSV row's cells beyond the header go (an unquoted comma in the text, usually)."""
EARLIEST = date(1970, 1, 1)


@dataclass(frozen=True)
class Report:
    """One accepted report; carries no contact, only its pseudonym."""

    report_id: str
    observed_on: date
    lat: float | None
    lon: float | None
    site_id: str | None
    site_name: str
    text: str
    photo_ref: str
    reporter: str
    """Keyed pseudonym of the reporter (``rp-…``), or ``""`` when none was given."""
    accuracy_m: float
    source: str
    row: int


@dataclass
class ImportResult:
    accepted: list[Report] = field(default_factory=list)
    rejected: list[tuple[int, str, dict]] = field(default_factory=list)
    """(row number, reason, row with the contact replaced by its pseudonym, other identity columns withheld)."""
    contacts: dict[str, str] = field(default_factory=dict, repr=False)
    """pseudonym → raw contact, only under the ``restricted`` contact policy."""
    notes: list[str] = field(default_factory=list)
    """What the file holds but was deliberately not read (a KoBo repeat group's sheet)."""


GEOPOINT_PARTS = {"lat": "_latitude", "lon": "_longitude", "accuracy_m": "_precision"}
"""KoBoToolbox splits a geopoint question ``where`` into ``_where_latitude``, ``_where_longitude``,
``_where_altitude`` and ``_where_precision`` (metres), whatever the question is called."""


def geopoints(row: dict[str, str]) -> list[str]:
    """The geopoint questions a KoBo export split into columns (``_where`` for ``_where_latitude``)."""
    keys = (column_key(k) for k in row if k)
    return sorted({k[: -len("_latitude")] for k in keys if k.startswith("_") and k.endswith("_latitude")
                   and len(k) > len("__latitude")})


def _column(row: dict[str, str], key: str, chosen: dict[str, str] | None = None) -> str | None:
    """The row's column that answers for ``key``: the column ``chosen`` for it (``--column``), else
    the first of its aliases with a value, else the part of the form's one split geopoint (several
    are ambiguous, and one may be the reporter's)."""
    if chosen and key in chosen:
        return chosen[key] if row.get(chosen[key]) not in (None, "") else None
    keyed = {column_key(k): k for k in row if k}
    if key in ("lat", "lon"):  # "Latitude (WGS84)", "Lon_DD"; the first such column wins
        keyed = {coordinate_key(c): k for c, k in reversed(keyed.items())} | keyed
    for alias in ALIASES[key]:
        k = keyed.get(alias)
        if k is not None and row[k] not in (None, ""):
            return k
    if key in GEOPOINT_PARTS and len(points := geopoints(row)) == 1:
        k = keyed.get(points[0] + GEOPOINT_PARTS[key])
        if k is not None and row[k] not in (None, ""):
            return k
    return None


def _pick(row: dict[str, str], key: str, chosen: dict[str, str] | None = None) -> str:
    k = _column(row, key, chosen)
    return str(row[k]).strip() if k is not None else ""


def read_rows(path: Path, notes: list[str] | None = None) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV (comma or semicolon), an Excel workbook (a KoBoToolbox XLSX download), GeoJSON,
    or a KoBo JSON export, as dicts of strings, each with its row number: the spreadsheet's row
    (the header is row 1), or the record's position in a JSON file.  A CSV row's cells past the
    header are under :data:`EXTRA_CELLS`, missing ones are ``None``.  What a workbook holds but
    is not read (a KoBo repeat group's sheet) is said in ``notes``."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".geojson", ".json"):
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
                rows = []
                for f in doc.get("features", []):
                    props = {k: "" if v is None else str(v) for k, v in (f.get("properties") or {}).items()}
                    geom = f.get("geometry") or {}
                    if geom.get("type") == "Point":
                        props.setdefault("longitude", str(geom["coordinates"][0]))
                        props.setdefault("latitude", str(geom["coordinates"][1]))
                    elif geom.get("type"):  # an area or a track the reporter drew
                        try:
                            props.setdefault("wkt", shape(geom).wkt)
                        except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException):
                            props.setdefault("wkt", json.dumps(geom))  # rejected below as unreadable
                    rows.append(props)
                return list(enumerate(rows, start=1))
            items = doc if isinstance(doc, list) else doc.get("results") if isinstance(doc, dict) else None
            if not isinstance(items, list) or not all(isinstance(it, dict) for it in items):
                raise InvalidReport(
                    f"{path}: not a GeoJSON FeatureCollection, a KoBo export ({{\"results\": [...]}}) "
                    "or a list of records"
                )
            return list(enumerate(({k: json.dumps(v) if isinstance(v, (list, dict)) else ("" if v is None else str(v))
                                    for k, v in it.items()} for it in items), start=1))
        table = read_table(path)
    except UnicodeDecodeError as exc:  # a JSON file; a table's own reader says the same
        raise InvalidReport(not_utf8(path, exc)) from exc
    except TableError as exc:
        raise InvalidReport(str(exc)) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidReport(f"{path}: cannot read the file ({exc})") from exc
    if notes is not None:
        notes.extend(table.notes)
    width = len(table.header)
    out = []
    for n, cells in table.rows:
        row: dict = dict(zip(table.header, cells))
        row.update({h: None for h in table.header[len(cells):]})  # fewer cells than the header
        if len(cells) > width:
            row[EXTRA_CELLS] = cells[width:]
        out.append((n, row))
    return out


def pop_spill(row: dict) -> int | None:
    """How many cells a CSV row has past its header (an unquoted comma in free text), or None;
    they are joined into the row's :data:`EXTRA_CELLS` cell, which the caller rejects and scrubs."""
    spill = row.pop(EXTRA_CELLS, None)
    if spill is None:
        return None
    row[EXTRA_CELLS] = ",".join("" if c is None else str(c) for c in spill)
    return len(spill)


NUMERIC_DATE = re.compile(r"(\d{1,2})[-./](\d{1,2})[-./](\d{4}|\d{2})(?:\D.*)?")
"""A date written day-first or month-first (``25/07/2011``, ``07.25.11``, ``3-7-2011 14:05``,
``25.07.2011г.``)."""
MONGOLIAN_MONTHS = ("нэг", "хоёр", "гурав", "дөрөв", "тав", "зургаа", "дол", "найм", "ес", "арав",
                    "арван нэг", "арван хоёр")
"""Mongolian months are numbered: долдугаар сар, "the seventh month", is July."""
MONGOLIAN_DATE = re.compile(
    r"(\d{4})\s*(?:оны|он)\s*(\d{1,2}|" + "|".join(sorted(MONGOLIAN_MONTHS, key=len, reverse=True))
    + r")\s*(?:-?р|-?(?:д[уү]г[аэ]{2}р))?\s*сар(?:ын)?\s*(\d{1,2})(?:\D.*)?", re.IGNORECASE)
"""A date as Mongolian writes it: year, month, day (``2011 оны 7 сарын 25``, ``2011 оны 07 дугаар
сарын 25-ны өдөр``, ``2011 оны долдугаар сарын 25``)."""
DATE_ORDERS = ("day-first", "month-first")


@dataclass(frozen=True)
class DateOrder:
    """How a file writes its numeric dates: ``order`` is ``day-first``, ``month-first``, ``mixed``
    (both are shown, so neither can be trusted) or ``None`` (nothing tells); ``why`` says how it is
    known ("--dates", "row 4: 25/07/2011")."""

    order: str | None = None
    why: str = ""


def date_order_note(order: DateOrder) -> list[str]:
    """What an import says about how it read the file's numeric dates (nothing where none were
    ambiguous, or where the operator stated the order)."""
    if order.order == "mixed":
        return [f"dates are written both day-first and month-first ({order.why}): a numeric date that "
                "could be either, such as 03/07/2011, is not read; write them as YYYY-MM-DD"]
    if order.order and order.why != "--dates":
        return [f"numeric dates such as 03/07/2011 read {order.order}, as {order.why} shows "
                f"(pass --dates {DATE_ORDERS[order.order == DATE_ORDERS[0]]} if that is wrong)"]
    return []


def date_order(cells: list[tuple[int, str]], stated: str | None = None) -> DateOrder:
    """The order of a file's numeric dates, as the operator states it (``--dates``) or as the file
    shows it: one of ``cells`` (row number, text) whose first number is over 12 is written
    day-first (25/07/2011), one whose second is, month-first.  A spreadsheet writes every date of a
    file in its locale's order, so one such date tells how to read the ambiguous ones (03/07/2011);
    a file that shows both is ``mixed``, and then only its dates with one reading are read."""
    if stated:
        if stated not in DATE_ORDERS:
            raise ValueError(f"date order {stated!r} is not one of {DATE_ORDERS}")
        return DateOrder(stated, "--dates")
    shown: dict[str, tuple[int, str]] = {}
    for n, text in cells:
        m = NUMERIC_DATE.fullmatch(_first_date(text or ""))
        try:  # a date with one reading, and a real one (not a phone number's "99.11.2233")
            order = _numeric_reading(m, DateOrder())[1] if m else None
        except ValueError:
            order = None
        if order:  # quoted in a note, which no scrubbing passes: the date alone, not the rest of the cell
            shown.setdefault(order, (n, m.string[:m.end(3)]))
    if len(shown) == 2:
        return DateOrder("mixed", "; ".join(f"{o} in row {n} ({t})" for o, (n, t) in shown.items()))
    if shown:
        ((order, (n, text)),) = shown.items()
        return DateOrder(order, f"row {n}: {text}")
    return DateOrder()


def _first_date(text: str) -> str:
    # "2022-03-12/2022-03-27" (an ISO interval) or "2022-03-12 2022-03-27": a span; take its start
    return re.split(r"\s+(?=\d{4}-)|/(?=\d{4}-|P)", text.strip())[0]


def parse_date(text: str, today: date, order: DateOrder = DateOrder()) -> date:
    """An observation day from ISO dates and timestamps, ``YYYY/MM/DD`` or ``YYYY.MM.DD``, a span
    (its start), a month or year (its middle), a date with its month in words
    (:func:`_named_month_date`) or a Mongolian date (:data:`MONGOLIAN_DATE`).  A day-first or month-first date (``03/07/2011``)
    is read in the file's :class:`DateOrder` (a two-digit year as ``strptime``'s ``%y`` does:
    69–99 are 1969–1999); where the file does not say which, only a date with one reading is
    (25/07/2011, 05/05/2011) and the others are refused rather than guessed."""
    text = (text or "").strip()
    if not text:
        raise ValueError("no date")
    first = _first_date(text)
    if numeric := NUMERIC_DATE.fullmatch(first):
        try:
            d = _numeric_date(numeric, order)
        except ValueError as exc:
            raise ValueError(f"date {text!r}: {exc}") from None
    else:
        d = _iso_date(text, first)
    # ``today`` is the server's UTC date; in Ulaanbaatar (UTC+8) it is already tomorrow from 16:00
    # UTC, and places run up to UTC+14: a day of grace, or this morning's reports were "future"
    if d > today + timedelta(days=1):
        raise ValueError(f"date {d} is in the future")
    if d < EARLIEST:
        raise ValueError(f"date {d} is before 1970")
    return d


def _iso_date(text: str, first: str) -> date:
    try:
        ymd = re.fullmatch(r"(\d{4})[./](\d{1,2})[./](\d{1,2})(?:\D.*)?", first)
        if ymd:
            return date(*map(int, ymd.groups()))
        if mn := MONGOLIAN_DATE.fullmatch(text):
            month = mn[2].lower()
            return date(int(mn[1]), int(month) if month.isdigit() else MONGOLIAN_MONTHS.index(month) + 1,
                        int(mn[3]))
        return datetime.fromisoformat(first.replace("Z", "+00:00")).date()
    except ValueError:
        if named := _named_month_date(text):
            return named
        # Month or year precision ("2022-03", "2022/03", "2023"): the middle of the period.
        m = re.fullmatch(r"(\d{4})(?:[-./](\d{1,2}))?", first)
        if not m or not (1 <= int(m.group(2) or 7) <= 12):
            raise ValueError(f"unreadable date {text!r}; write it as YYYY-MM-DD") from None
        return date(int(m.group(1)), int(m.group(2) or 7), 15 if m.group(2) else 1)


NAMED_MONTH_SETTINGS = {"PARSERS": ["absolute-time"], "RETURN_AS_TIMEZONE_AWARE": False,
                        "PREFER_DAY_OF_MONTH": "first"}
"""dateparser's settings for a date with its month in words: only absolute dates ("yesterday" and
"3 weeks ago" depend on when the file was written, which the import does not know)."""


@lru_cache(maxsize=4096)  # a file repeats its words ("unknown"); each costs dateparser a pass over its languages
def _named_month_date(text: str) -> date | None:
    """A date with its month written in words, in any language dateparser knows (``25 July 2011``,
    ``25-Jul-11``, ``July 25, 2011``, ``25 июля 2011 г.``, ``12 березня 2022 р.``, ``25 de julio de
    2011``, ``٢٥ يوليو ٢٠١١``); a month and year alone (``березень 2022``) is its middle, as
    ``2022-03`` is.  The month's name tells which number is the day, so no order is assumed; text
    holding a numeric date (``03/07/2011 ...``) is never handed over, since dateparser would read
    that in its own order, not the file's."""
    if not re.search(r"[^\W\d_]{3}", text) or re.search(r"\d[-./]\d{1,2}[-./]\d", text):
        return None
    import dateparser  # Prefect's dependency; imported here, the first date it reads loads its languages

    full = dateparser.parse(text, settings={**NAMED_MONTH_SETTINGS, "STRICT_PARSING": True})
    if full:
        return full.date()
    if not re.search(r"(?<!\d)\d{4}(?!\d)", text):  # "25 Jul" is not July 2025
        return None
    month = dateparser.parse(text, settings={**NAMED_MONTH_SETTINGS, "REQUIRE_PARTS": ["month", "year"]})
    return month.date().replace(day=15) if month else None


def _numeric_date(m: re.Match, order: DateOrder) -> date:
    d, shown = _numeric_reading(m, order)
    if not (shown or order.order or d.day == d.month):
        raise ValueError("it could be day-first or month-first and no date in the file tells which; "
                         "write it as YYYY-MM-DD, or state the file's order with --dates day-first "
                         "or --dates month-first")
    return d


def _numeric_reading(m: re.Match, order: DateOrder) -> tuple[date, str | None]:
    """The date a numeric date gives in ``order`` (day-first where none is known), and the order it
    shows by itself (None where both readings are months)."""
    a, b, y = int(m[1]), int(m[2]), int(m[3])
    year = y if len(m[3]) == 4 else datetime.strptime(m[3], "%y").year
    if a > 12 and b > 12:
        raise ValueError("neither of its first two numbers is a month")
    readings = {"day-first": (year, b, a), "month-first": (year, a, b)}
    shown = "day-first" if a > 12 else "month-first" if b > 12 else None
    if order.order == "mixed":  # only a date with one reading (25/07/2011, 07/26/2011, 05/05/2011)
        if shown or a == b:
            return date(*readings[shown or "day-first"]), shown
        raise ValueError(f"the file writes dates both day-first and month-first ({order.why}); "
                         "write them as YYYY-MM-DD")
    if shown and order.order and shown != order.order:
        raise ValueError(f"it is {shown}, but the file's dates are {order.order} ({order.why})")
    return date(*readings[shown or order.order or "day-first"]), shown


def _parse_location(row: dict[str, str], chosen: dict[str, str] | None = None) -> tuple[float | None, float | None, float]:
    """(lat, lon, extent in metres): a point has no extent; an area or a track the reporter drew
    is located at a point inside it, and its extent (the farthest of its vertices from that point)
    widens the report's location accuracy."""
    lat_s, lon_s = _pick(row, "lat", chosen), _pick(row, "lon", chosen)
    extent = 0.0
    if not (lat_s and lon_s):
        geo = _pick(row, "geolocation", chosen)
        # "47.5 106.9 1500 5" (KoBo), "[47.5, 106.9]"; without a dot, "47,5 106,9" has decimal commas
        nums = re.findall(r"[-+]?\d+(?:\.\d+)?" if "." in geo else r"[-+]?\d+(?:,\d+)?", geo)
        if len(nums) >= 2:
            lat_s, lon_s = nums[0], nums[1]  # KoBo writes [lat, lon]
        elif _pick(row, "wkt", chosen):
            try:
                g = shapely_wkt.loads(_pick(row, "wkt", chosen))
            except shapely.errors.GEOSException as exc:
                raise ValueError(f"unreadable geometry {_pick(row, 'wkt', chosen)!r}") from exc
            if g.is_empty:
                raise ValueError("the geometry is empty")
            p = g if isinstance(g, Point) else g.representative_point()
            lon_s, lat_s = str(p.x), str(p.y)
            if not isinstance(g, Point) and abs(p.y) <= 90 and abs(p.x) <= 180:
                extent = _extent_m(g, p)
    if not (lat_s and lon_s):
        keyed = {column_key(k): v for k, v in row.items() if k}
        if len(points := geopoints(row)) > 1 and any(keyed.get(p + "_latitude") for p in points):
            raise ValueError(f"{len(points)} located questions ({', '.join(points)}) and no latitude/longitude "
                             "column: name the report's location's columns latitude and longitude")
        return None, None, 0.0
    lat, lon = parse_degrees(lat_s, "latitude"), parse_degrees(lon_s, "longitude")
    if abs(lat) > 90 and abs(lon) <= 90:
        raise ValueError(f"latitude {lat} is impossible; lat/lon look swapped")
    if abs(lat) > 90 or abs(lon) > 180:
        if abs(lat) > 1000 and abs(lon) > 1000:
            raise ValueError(f"coordinates {lat}, {lon} look like projected metres (UTM?); give latitude and "
                             "longitude in degrees")
        raise ValueError(f"coordinates {lat}, {lon} are outside the globe")
    if lat == 0 and lon == 0:
        raise ValueError("coordinates 0, 0 (a device that had no fix)")
    return lat, lon, extent


def _accuracy(row: dict[str, str], default: float, chosen: dict[str, str] | None = None) -> float:
    text = _pick(row, "accuracy_m", chosen)
    return parse_number(text, "location accuracy", unit="m") if text else default


def _extent_m(geom, centre: Point) -> float:
    """The farthest vertex of a lon/lat geometry from ``centre``, in metres (local equirectangular)."""
    from shapely import get_coordinates

    xy = get_coordinates(geom)
    k = math.cos(math.radians(centre.y))
    d = ((xy[:, 0] - centre.x) * k) ** 2 + (xy[:, 1] - centre.y) ** 2
    return round(float(math.sqrt(d.max())) * 111_320.0, 1)


def _match_site(name: str, sites: list[Site], former_ids: dict[str, list[str]] | None = None
                ) -> tuple[Site | None, list[str]]:
    if not name:
        return None, []
    key = name.casefold()
    by_id = [s for s in sites if s.site_id.casefold() == key]
    if not by_id and former_ids:  # the id a renamed site had: signboards and forms keep it for years
        by_id = [s for s in sites if s.site_id in _now_named(name, former_ids)]
    by_name = [s for s in sites if s.name.casefold() == key]
    if len(by_id) == 1:
        return by_id[0], []
    if len(by_name) == 1 and not by_id:
        return by_name[0], []
    if by_id or by_name:  # a name several sites share: which one is not for sitewatch to guess
        return None, []
    names = [s.name for s in sites]
    suggestions = [m[0] for m in process.extract(name, names, limit=3, score_cutoff=60)]
    return None, suggestions


def _now_named(name: str, former_ids: dict[str, list[str]] | None) -> set[str]:
    """The ids a site that had the id ``name`` goes by now (several parts, for a split site)."""
    return {new for old, news in (former_ids or {}).items() if old.casefold() == name.casefold() for new in news}


def import_reports(
    path: str | Path, sites: list[Site], *, key: bytes | None, policy: ContactPolicy = "pseudonym",
    today: date | None = None, region: str | None = None, dates: str | None = None,
    columns: dict[str, str] | None = None, former_ids: dict[str, list[str]] | None = None,
) -> ImportResult:
    """Validate every row; return accepted reports and rejected rows (row number, reason).
    ``region`` (or ``SITEWATCH_PHONE_REGION``) is the country whose phone numbers are also
    recognised in the text without ``+``; ``dates`` (``day-first`` or ``month-first``) is how the
    file writes numeric dates, where the file itself does not show it (:func:`date_order`).
    ``columns`` names the file's column for a field (:data:`REPORT_FIELDS`) where its name is not
    one sitewatch knows: only that column is read for the field; a chosen ``contact`` column is
    the reporter's identity whatever it is called, and another chosen column is not taken for one.
    ``former_ids`` (a renamed site's former id → its id now; a split site's → its parts') lets a
    report name a site by its former id."""
    path = Path(path)
    region = phone_region(region)
    today = today or datetime.now(timezone.utc).date()
    res = ImportResult()
    rows = read_rows(path, res.notes)
    chosen = _chosen(rows, columns or {}, path)
    if unread := _unread(rows, chosen):  # a text column called otherwise would leave every report without its words
        listed = ", ".join(map(repr, unread[:10])) + (f" and {len(unread) - 10} more" if len(unread) > 10 else "")
        res.notes.append(f"column(s) not read: {listed}; if one holds the reports' date, "
                         f"place, text or photo, name it with --column FIELD=COLUMN ({', '.join(REPORT_FIELDS)})")
    order = date_order([(i, _pick(row, "observed_on", chosen)) for i, row in rows], dates)
    res.notes.extend(date_order_note(order))
    seen: dict[tuple, int] = {}
    for i, row in rows:
        named = [k for k in identity_columns(row) if k not in set(chosen.values()) - {chosen.get("contact")}]
        if "contact" in chosen and chosen["contact"] not in named:
            named.append(chosen["contact"])
        who = {k: str(row[k]).strip() for k in named if str(row.get(k) or "").strip()}
        # the contact, else any other column naming the reporter, is what gets the pseudonym
        contact = _pick(row, "contact", chosen) or next(iter(who.values()), "")
        pseudo = pseudonymise(contact, key, policy) if contact else ""
        if contact and policy == "restricted":
            res.contacts[pseudo] = contact
        # the reporter's own words lose any identity; identity columns are kept out of the row, and
        # the rejected-rows file (written out) holds the pseudonym or nothing in their place
        spill = pop_spill(row)  # cells past the header, kept as one (scrubbed) cell
        prose = {_column(row, "text", chosen), _column(row, "photo_ref", chosen)} - {None}
        if spill is not None:  # the text ran on into the next columns: any cell may hold its words
            prose = set(row)
        clean = {k: ((pseudo if v.strip() == contact else WITHHELD) if k in who
                     else scrub_text(str(v), who.values(), region) if k in prose else v) for k, v in row.items()}
        row = {k: v for k, v in clean.items() if k not in who}
        try:
            if spill is not None:
                raise ValueError(f"the row has {spill} cell(s) more than the header "
                                 "(an unquoted comma or semicolon in the text?)")
            if short := [k for k, v in row.items() if v is None]:
                raise ValueError(f"the row has fewer cells than the header (nothing under {', '.join(short)})")
            observed = parse_date(_pick(row, "observed_on", chosen), today, order)
            lat, lon, extent = _parse_location(row, chosen)
            site_name = _pick(row, "site_name", chosen)
            site, suggestions = _match_site(site_name, sites, former_ids)
            parts = {s.site_id: s for s in sites if s.site_id in _now_named(site_name, former_ids)}
            if lat is None and site is None:
                if len(same := [s.site_id for s in sites if s.name.casefold() == site_name.casefold()]) > 1:
                    raise ValueError(f"no coordinates, and {len(same)} sites are named {site_name!r} "
                                     f"({', '.join(same)}); give the site_id or the coordinates")
                if len(parts) > 1:
                    raise ValueError(f"no coordinates, and site {site_name!r} was split into {', '.join(parts)}; "
                                     "give the coordinates or the new site_id")
                if site_name:
                    hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
                    raise ValueError(f"no coordinates and unknown site name {site_name!r}{hint}")
                raise ValueError("no coordinates and no site name")
            if site is None and lat is not None and len(parts) > 1:  # a site split since: the part at the place
                site = parts[holder(Point(lon, lat), {k: p.geometry for k, p in parts.items()})[0]]
            if lat is None:
                c = site.geometry.representative_point()
                lat, lon = round(c.y, 6), round(c.x, 6)
                accuracy = max(_accuracy(row, 0.0, chosen), _site_radius_m(site))
            else:
                accuracy = max(_accuracy(row, DEFAULT_ACCURACY_M, chosen), extent)
            if not (0 <= accuracy <= 100_000):
                raise ValueError(f"location accuracy {accuracy} m is not plausible")
            text = _pick(row, "text", chosen)
            place = site.site_id if site and not _pick(row, "lat", chosen) else f"{lat:.3f},{lon:.3f}"
            dup_key = (pseudo or "anon", place, observed, "" if pseudo else text.casefold())
            if dup_key in seen:
                raise ValueError(f"duplicate of row {seen[dup_key]} (same reporter, place and day)")
            seen[dup_key] = i
        except (ValueError, TypeError) as exc:
            # a misaligned file can put a phone number under "latitude": the reason quotes the
            # cell, and the rejected-rows file keeps it, so both are scrubbed like the text
            res.rejected.append((i, scrub_text(str(exc), who.values(), region),
                                 {k: v if k in who or v is None else scrub_text(str(v), who.values(), region)
                                  for k, v in clean.items()}))
            continue
        ident = hashlib.sha256(json.dumps([pseudo, str(observed), lat, lon, site_name, text]).encode()).hexdigest()[:16]
        res.accepted.append(Report(
            report_id=f"rep-{ident}", observed_on=observed, lat=lat, lon=lon, site_id=site.site_id if site else None,
            site_name=site_name, text=text, photo_ref=_pick(row, "photo_ref", chosen), reporter=pseudo,
            accuracy_m=accuracy, source=path.name, row=i,
        ))
    return res


FORM_METADATA = {"start", "end", "today", "deviceid", "username", "simserial", "subscriberid", "phonenumber",
                 "instanceid", "instancename", "version", "audit", "uuid", "id", "index", "status", "submitted_by",
                 "tags", "validation_status", "submission_time"}
"""KoBoToolbox's and ODK's own columns (without their leading ``_``): not a report's words."""


def _header(rows: list[tuple[int, dict]]) -> list[str]:
    """Every column of the rows, in order (a JSON file's records may each have their own keys)."""
    return list(dict.fromkeys(k for _, row in rows for k in row if k and k != EXTRA_CELLS))


def _unread(rows: list[tuple[int, dict]], chosen: dict[str, str]) -> list[str]:
    """The columns no field was read from in any row, other than identity columns and a form's
    own metadata."""
    header = _header(rows)
    shapes: dict[tuple, dict] = {}  # which column answers depends only on the row's columns and which are filled
    for _, row in rows:
        shapes.setdefault((tuple(row), frozenset(k for k, v in row.items() if v not in (None, ""))), row)
    used = {_column(row, key, chosen) for row in shapes.values() for key in REPORT_FIELDS}
    used |= set(identity_columns(header)) | set(chosen.values())
    return [h for h in header if h not in used and column_key(h).lstrip("_") not in FORM_METADATA
            and not column_key(h).startswith("_") and any(str(row.get(h) or "").strip() for _, row in rows)]


def _chosen(rows: list[tuple[int, dict]], columns: dict[str, str], path: Path) -> dict[str, str]:
    """{field: the file's column} for the columns ``--column`` names (any record's column will do)."""
    if not columns:
        return {}
    if unknown := sorted(set(columns) - set(REPORT_FIELDS)):
        raise InvalidReport(f"no report field {unknown[0]!r}; the fields are {', '.join(REPORT_FIELDS)}")
    try:
        return chosen_columns(_header(rows), columns, path.name)
    except TableError as exc:
        raise InvalidReport(str(exc)) from exc


def _site_radius_m(site: Site) -> float:
    from sites.geo import area_m2

    return round(math.sqrt(area_m2(site.geometry) / math.pi) + site.buffer_m, 1)


def rejected_file(path: str | Path, folder: str | Path | None = None) -> Path:
    """Where an import keeps the rows it rejected: ``FILE.rejected.csv`` beside ``path``, or in
    ``folder`` (``--rejected-dir``)."""
    path = Path(path)
    return Path(folder or path.parent) / f"{path.stem}.rejected.csv"


def write_rejected(result, path: str | Path) -> Path | None:
    """``result.rejected`` (row number, reason, row) as CSV: rejected reports (their contacts already
    replaced by pseudonyms) or rejected field verdicts."""
    if not result.rejected:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # a --rejected-dir named for this import
    keys: list[str] = []
    for _, _, row in result.rejected:
        keys.extend(k for k in row if k not in keys)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["row", "reason", *keys])
        w.writeheader()
        for n, reason, row in result.rejected:
            w.writerow({"row": n, "reason": reason, **{k: csv_cell(v) for k, v in row.items()}})
    return path
