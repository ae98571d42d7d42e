"""The language of the weekly map's labels, its chips and before/after pages, the summary page and
the rangers' papers: field sheets, the GPX and KML waypoints' descriptions and "what to check".

Words are gettext messages (``words.gettext("First seen")``) translated by a catalog in GNU
gettext's ``.po`` format, read with Babel: one ships for each language in ``maps/locale/``
(``mn``: Mongolian), and a unit may give its own ``.po`` file instead (a corrected copy of the
shipped one, or a language sitewatch does not ship), so wording is fixed without touching code.
A message the catalog lacks is printed in English.  What a program reads back — the CSV and
workbook column names, the verdicts that ``sitewatch verdicts import`` takes, ids, dates,
coordinates — stays as it is in every language; the unit's own words for the verdicts come
from ``sitewatch verdicts words``.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po

LOCALE_DIR = Path(__file__).with_name("locale")
ENGLISH = "en"
ENGLISH_WORDS = gettext.NullTranslations()
"""English, as the messages are written in the code."""


class LanguageError(ValueError):
    """An unknown language or an unreadable catalog."""


def shipped() -> list[str]:
    """The languages with a catalog in ``maps/locale/`` (English needs none)."""
    return sorted([ENGLISH, *(p.stem for p in LOCALE_DIR.glob("*.po"))])


def catalog_path(language: str) -> Path | None:
    """The ``.po`` file for ``language`` (a shipped code or a path to a file); None for English."""
    if language in ("", ENGLISH):
        return None
    if language.endswith(".po"):
        path = Path(language).expanduser()
        if not path.is_file():
            raise LanguageError(f"no catalog at {path}")
        return path
    path = LOCALE_DIR / f"{language}.po"
    if not path.is_file():
        raise LanguageError(f"no catalog for language {language!r}: sitewatch ships {', '.join(shipped())}, "
                            "or give the path of a .po file")
    return path


def words_for(language: str | None) -> gettext.NullTranslations:
    """The translations for ``language`` (None or ``"en"``: English, as written in the code).
    Fuzzy entries (a translator's unchecked guess) are left out, as ``msgfmt`` leaves them out."""
    path = catalog_path(language or ENGLISH)
    if path is None:
        return ENGLISH_WORDS
    try:
        with path.open("rb") as fh:
            catalog = read_po(fh, abort_invalid=True)
    except (PoFileError, UnicodeDecodeError, OSError) as exc:
        raise LanguageError(f"cannot read the catalog {path}: {exc}") from exc
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def check_language(language: str | None) -> str:
    """``language`` if its catalog can be read (for argument and configuration checks)."""
    words_for(language)
    return language or ENGLISH


def N_(message: str) -> str:
    """Marks a message for the catalog where it is defined and translated later (gettext's N_)."""
    return message


KIND_WORDS = {
    "bare_soil_exposure": N_("bare soil exposure"), "vegetation_loss": N_("vegetation loss"),
    "water": N_("water"), "new_structure": N_("new structure"),
    "surface_roughened": N_("surface roughened"), "surface_levelled": N_("surface levelled"),
    "other": N_("other"),
}
"""The detector's ``kind_hint`` as words (``change_detection.detect``)."""
CONFIDENCE_WORDS = {"low": N_("low"), "medium": N_("medium"), "high": N_("high")}
STATUS_WORDS = {"open": N_("open"), "review": N_("review"), "dismissed": N_("dismissed"),
                "suppressed": N_("suppressed"), "superseded": N_("superseded"), "withdrawn": N_("withdrawn")}
"""A detection's ``status`` as words (``pipelines.store``)."""
LABEL_WORDS = {"looting": N_("looting"), "bulldozing": N_("bulldozing"), "construction": N_("construction"),
               "agriculture": N_("agriculture"), "natural": N_("natural"),
               "cloud/shadow artefact": N_("cloud/shadow artefact"), "no change": N_("no change"),
               "unsure": N_("unsure")}
"""An archaeologist's or a ranger's verdict (``pipelines.review.LABELS``) as a page shows it; the
verdicts ``sitewatch annotate`` and ``verdicts import`` take stay English (or the unit's own words)."""
ACCESS_WORDS = {"public": N_("public"), "restricted": N_("restricted"), "secret": N_("secret")}
"""An output's access level and a site's sensitivity (:mod:`maps.access`) as words."""
OUTCOME_WORDS = {"corroborated": N_("corroborated"), "report_without_detection": N_("report without detection"),
                 "detection_without_report": N_("detection without report"),
                 "report_outside_sites": N_("report outside sites")}
"""A reconciliation's outcome (:mod:`reports.reconcile`) as words."""


def phrase(words: gettext.NullTranslations, message: str, **values: object) -> str:
    """``message`` translated, its ``{name}`` fields filled from ``values``.  A translation whose
    fields are not the message's (a typo in a unit's catalog) gives the English message rather
    than a failed run."""
    try:
        return words.gettext(message).format(**values)
    except (KeyError, IndexError, ValueError, AttributeError):
        return message.format(**values)


class Said(str):
    """A sentence the data carries (why a site was not observed, how a report matched, what the
    detection rests on): English text, as ``summary.json``, the CSV files and the logs keep it, that
    also remembers its gettext ``message`` and ``fields``, so that a page for people says it in the
    reader's language (:func:`say`).  A field may itself be a :class:`Said` (said in the same
    language) or plain data (a name, an id, a provider's error: shown as it is)."""

    message: str
    fields: Mapping[str, object]

    def __new__(cls, message: str, /, **fields: object) -> Said:
        said = super().__new__(cls, _fill(ENGLISH_WORDS, message, fields))
        said.message, said.fields = message, fields
        return said

    def __getnewargs_ex__(self):  # pickled (a Dask worker, a Prefect result) as itself
        return (self.message,), dict(self.fields)

    def in_words(self, words: gettext.NullTranslations) -> str:
        return _fill(words, self.message, self.fields)


def _fill(words: gettext.NullTranslations, message: str, fields: Mapping[str, object]) -> str:
    if not message:  # gettext("") is the catalog's header
        return ""
    return phrase(words, message, **{k: say(words, v) for k, v in fields.items()})


def said_list(parts: list[object], sep: str = "; ") -> Said:
    """Parts said one after the other (each a :class:`Said` or data), in any language."""
    return Said(sep.join(f"{{p{i}}}" for i in range(len(parts))), **{f"p{i}": p for i, p in enumerate(parts)})


def say(words: gettext.NullTranslations, value: object) -> object:
    """``value`` for a reader of ``words``: a :class:`Said` in their language, anything else as it is."""
    return value.in_words(words) if isinstance(value, Said) else value


def kind_words(words: gettext.NullTranslations, kind_hint: str) -> str:
    """A detection's kind hint in the reader's language."""
    return words.gettext(KIND_WORDS.get(kind_hint, kind_hint.replace("_", " ")))


def confidence_words(words: gettext.NullTranslations, confidence: str) -> str:
    return words.gettext(CONFIDENCE_WORDS.get(confidence, confidence))


def status_words(words: gettext.NullTranslations, status: str) -> str:
    return words.gettext(STATUS_WORDS.get(status, status))


def access_words(words: gettext.NullTranslations, level: str) -> str:
    return words.gettext(ACCESS_WORDS.get(level, level))


def outcome_words(words: gettext.NullTranslations, outcome: str) -> str:
    return words.gettext(OUTCOME_WORDS.get(outcome, outcome.replace("_", " ")))


def yes_no(words: gettext.NullTranslations, value: object) -> object:
    """A yes/no column's value in words; None (not said to this reader) and anything else as it is."""
    return words.gettext(N_("yes") if value else N_("no")) if isinstance(value, bool) else value


def label_words(words: gettext.NullTranslations, label: str) -> str:
    return words.gettext(LABEL_WORDS.get(label, label))


def field_check_said(visited_on: object, label: str) -> Said:
    """A ranger's check of a place, e.g. ``2024-06-12: looting``, its verdict in any language."""
    return Said("{date}: {verdict}", date=str(visited_on), verdict=Said(LABEL_WORDS.get(label, label)))
