"""Escaping for every data string that reaches a page.

folium escapes nothing: popup and tooltip strings are live HTML, and popup HTML is placed inside a
JavaScript template literal, so ``${...}`` would run too.  And branca, rendering the page, compiles
every element's output once more as a Jinja template: ``{{ ... }}`` in a site name or a report's
text would run Python in the weekly job, and ``{%`` would stop the map.  Every string that comes
from data (site names, report text, ids) goes through :func:`text` before it touches HTML.
"""

from __future__ import annotations

import hashlib
import html
import re


def text(value: object) -> str:
    """HTML-escape and neutralise template syntax: JavaScript's (backtick, ``$``, backslash) and
    Jinja's (braces)."""
    s = html.escape("" if value is None else str(value), quote=True)
    for c, entity in (("`", "&#96;"), ("$", "&#36;"), ("\\", "&#92;"), ("{", "&#123;"), ("}", "&#125;")):
        s = s.replace(c, entity)
    return s


def table(rows: list[tuple[str, object]]) -> str:
    """A two-column HTML table with escaped labels and values."""
    body = "".join(f"<tr><th style='text-align:left;padding-right:6px'>{text(k)}</th><td>{text(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def file_name(value: object) -> str:
    """A file name for an id (a detection id carries its site id, which a registry may write as
    ``MN/ARK/12`` or worse): letters, digits, ``.``, ``_`` and ``-`` only, never starting with a
    dot; where anything had to change, a short hash of the original keeps two ids apart."""
    raw = "" if value is None else str(value)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", raw).lstrip(".")[:120] or "_"
    if safe == raw:
        return safe
    return f"{safe}-{hashlib.sha1(raw.encode()).hexdigest()[:6]}"


def csv_cell(value: object) -> object:
    """A value for a CSV cell that a spreadsheet will not run: text starting with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return gets a leading apostrophe (OWASP's advice against
    formula injection); numbers, ``-106.9`` included, are left as they are."""
    if not isinstance(value, str) or not value or value[0] not in "=+-@\t\r":
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value
