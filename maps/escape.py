"""Escaping for every data string that reaches a page.

folium escapes nothing: popup and tooltip strings are live HTML, and popup HTML is placed inside a
JavaScript template literal, so ``${...}`` would run too.  Every string that comes from data (site
names, report text, ids) goes through :func:`text` before it touches HTML.
"""

from __future__ import annotations

import hashlib
import html
import re


def text(value: object) -> str:
    """HTML-escape and neutralise template-literal syntax (backtick, ``$``, backslash)."""
    s = html.escape("" if value is None else str(value), quote=True)
    return s.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


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
