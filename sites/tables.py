"""Tables as people keep them: CSV (UTF-8, comma or semicolon) and Excel workbooks (.xlsx).

Site lists, community reports and field verdicts arrive as spreadsheets: KoBoToolbox downloads
XLSX by default, heritage offices keep their registers in Excel, and a field pack's CSV filled in
on a laptop is saved back by Excel as a workbook.  Every cell comes out as text, written the way
the CSV of the same sheet would have it (a date cell as ``2024-05-03``, a number without Excel's
display format), so the readers downstream have one set of rules.  Every row keeps the number the
spreadsheet shows for it, so a rejection points at the row to fix.

A workbook is read from its one sheet of data.  KoBoToolbox puts each repeat group on a sheet of
its own (its header has ``_parent_index``): those rows belong to the main sheet's records and are
named in :attr:`Table.notes`, not read.  A workbook with several other sheets of data is refused
rather than read from one of them.  ``openpyxl`` reads it through ``defusedxml``, which refuses
XML entity bombs.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from collections.abc import Iterable
from pathlib import Path

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
OLD_WORKBOOK_SUFFIXES = (".xls", ".ods", ".numbers")


class TableError(ValueError):
    """A table file that cannot be read; the message says what to do."""


@dataclass
class Table:
    header: list[str]
    rows: list[tuple[int, list[str]]]
    """(row number as the spreadsheet shows it, cells as text); rows without any text are left out."""
    notes: list[str] = field(default_factory=list)
    """What was deliberately not read (a KoBo repeat group's sheet)."""


def column_key(name: str) -> str:
    """A column's name as a form's field name: the last part of a KoBo/ODK group path, lower case,
    every run of other characters (spaces, ``-``, ``?``, ``(``) as one ``_``, none at the end; so
    a question label a KoBoToolbox export uses as header ("What did you see?") and a spreadsheet's
    "Site ID" or "Buffer (m)" read like field names (``what_did_you_see``, ``site_id``,
    ``buffer_m``)."""
    return re.sub(r"[\W_]+", "_", str(name).lower().split("/")[-1].strip()).rstrip("_")


LATITUDE_WORDS = ("өргөрөг", "широта", "latitud", "خط_العرض")
LONGITUDE_WORDS = ("уртраг", "долгота", "довгота", "longitud", "خط_الطول")
"""Latitude and longitude as Mongolian, Russian, Ukrainian, Spanish and Arabic column names call
them (French and English share ``latitude``), for registries and report forms alike."""


COORDINATE_SUFFIX = re.compile(
    r"(_(wgs_?84|epsg_?4326|4326|deg|degrees?|dd|dec|decimal|dms|n|s|e|w|north|east|coord|coordinates?|градус\w*|grados?|degr[eé]s))+$")


def coordinate_key(key: str) -> str:
    """A coordinate column's :func:`column_key` without the datum, unit or axis words spreadsheets
    add: "Latitude (WGS84)", "Lat_DD", "Longitude (°E)", "Y coord" and "Өргөрөг (градус)" read as ``latitude``, ``lat``,
    ``longitude``, ``y`` and ``өргөрөг``; ArcGIS's ``POINT_X``/``POINT_Y`` as ``x``/``y``."""
    key = COORDINATE_SUFFIX.sub("", key)
    return {"point_x": "x", "point_y": "y"}.get(key, key)


def column_choices(pairs: Iterable[str], fields: Iterable[str], option: str = "--column") -> dict[str, str]:
    """``FIELD=COLUMN`` pairs (``--column site_id="Дурсгалт газрын код"``) as {field: column}: for
    a file whose column for a field has a name sitewatch does not know, without renaming it."""
    fields = tuple(fields)
    chosen: dict[str, str] = {}
    for pair in pairs:
        name, sep, column = str(pair).partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise TableError(f"{option} {pair!r}: expected FIELD=COLUMN, e.g. {option} {fields[0]}=\"Site code\"")
        if name not in fields:
            raise TableError(f"{option} {pair!r}: no field {name!r}; the fields are {', '.join(fields)}")
        if name in chosen and chosen[name] != column:
            raise TableError(f"{option} gives {name} twice ({chosen[name]!r} and {column!r})")
        chosen[name] = column
    twice = {c for c in chosen.values() if list(chosen.values()).count(c) > 1}
    if twice:
        raise TableError(f"{option}: column {sorted(twice)[0]!r} is given for "
                         f"{' and '.join(f for f, c in chosen.items() if c in twice)}; one column answers one field")
    return chosen


def chosen_columns(header: Iterable[object], chosen: dict[str, str], source: str,
                   option: str = "--column") -> dict[str, str]:
    """{field: the file's column} for each column in ``chosen``: the header written exactly so, else
    the one column whose :func:`column_key` is the same ("site code" for "Site Code")."""
    names = [str(h) for h in header if h is not None]
    found = {}
    for name, column in chosen.items():
        if column in names:
            found[name] = column
            continue
        like = [h for h in names if column_key(h) == column_key(column)]
        if len(like) != 1:
            listed = ", ".join(repr(h) for h in names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
            why = f"{len(like)} columns match it ({', '.join(map(repr, like))})" if like else "no such column"
            raise TableError(f"{source}: {option} {name}={column!r}: {why}; its columns are {listed or 'none'}")
        found[name] = like[0]
    return found


def is_workbook(path: str | Path) -> bool:
    return Path(path).suffix.lower() in WORKBOOK_SUFFIXES


def read_table(path: str | Path) -> Table:
    """A CSV or an Excel workbook as header and numbered rows of text."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in OLD_WORKBOOK_SUFFIXES:
        raise TableError(f"{path}: a {suffix} spreadsheet; save it as an Excel workbook (.xlsx) or as 'CSV UTF-8'")
    return _read_workbook(path) if suffix in WORKBOOK_SUFFIXES else _read_csv(path)


def not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    """Why a file that is not UTF-8 is refused, and what to do."""
    return (f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as 'CSV UTF-8' "
            "(sitewatch does not guess the encoding: a wrong guess garbles names without an error)")


def _read_csv(path: Path) -> Table:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            delim = ";" if sample.count(";") > sample.count(",") else ","
            records = list(csv.reader(fh, delimiter=delim))  # a blank line is a record too, as in Excel
    except UnicodeDecodeError as exc:
        raise TableError(not_utf8(path, exc)) from exc
    except (OSError, csv.Error) as exc:
        raise TableError(f"{path}: cannot read the file ({exc})") from exc
    return _numbered(records)


def _read_workbook(path: Path) -> Table:
    import openpyxl
    from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, data_only=True)  # a formula's last computed value
    except Exception as exc:  # noqa: BLE001 - zipfile, openpyxl and defusedxml each have their own
        cause = exc.__cause__ or exc.__context__
        if isinstance(exc, DTDForbidden | EntitiesForbidden | ExternalReferenceForbidden) or isinstance(
                cause, DTDForbidden | EntitiesForbidden | ExternalReferenceForbidden):
            raise TableError(f"{path}: the workbook's XML declares entities or external references "
                             f"({cause or exc!r}) and was not read: an XML bomb, or a file to distrust") from exc
        known = isinstance(exc, zipfile.BadZipFile | InvalidFileException | KeyError | OSError | ValueError)
        why = (str(exc).splitlines() or [""])[0] if known else f"{type(exc).__name__}: {exc}"
        raise TableError(
            f"{path}: not a readable Excel workbook ({why}); save it again from the spreadsheet program "
            "(a workbook protected by a password without one), or as 'CSV UTF-8'"
        ) from exc
    sheets, groups = [], []
    for sheet in book.worksheets:
        records = [[_text(v) for v in row] for row in sheet.iter_rows(min_row=1, values_only=True)]
        table = _numbered(records)
        if not table.header and not table.rows:
            continue
        # every row of a sheet is as wide as its widest (formatted but empty columns too): cells
        # past the header's last name count only where they hold text
        while table.header and not table.header[-1].strip():
            table.header.pop()
        width = len(table.header)
        table.rows = [(n, cells if any(c.strip() for c in cells[width:]) else cells[:width]) for n, cells in table.rows]
        (groups if "_parent_index" in {h.strip().lower() for h in table.header} else sheets).append((sheet.title, table))
    if len(sheets) > 1:
        raise TableError(
            f"{path}: {len(sheets)} sheets hold data ({', '.join(repr(t) for t, _ in sheets)}); sitewatch reads one "
            "sheet: keep the one to import in a workbook of its own, or save it as 'CSV UTF-8'"
        )
    if not sheets:
        return Table([], [], [f"sheet {t!r} is a KoBoToolbox repeat group and was not read" for t, _ in groups])
    table = sheets[0][1]
    table.notes += [f"sheet {t!r} ({len(g.rows)} rows) is a KoBoToolbox repeat group: its rows belong to the "
                    f"records of sheet {sheets[0][0]!r} and were not read" for t, g in groups]
    return table


def _numbered(records: list[list[str]]) -> Table:
    """Header = the first row with any text; rows after it keep their spreadsheet numbers."""
    numbered = [(n, cells) for n, cells in enumerate(records, start=1) if any(c.strip() for c in cells)]
    if not numbered:
        return Table([], [])
    (_, header), rows = numbered[0], numbered[1:]
    return Table(header, rows)


def _text(value: object) -> str:
    """A workbook cell as the text its CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) and value.tzinfo is None else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float):
        # Excel keeps every number as a double: 12 is 12.0, a phone number 97699112233.0
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)
