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


def phrase(words: gettext.NullTranslations, message: str, **values: object) -> str:
    """``message`` translated, its ``{name}`` fields filled from ``values``.  A translation whose
    fields are not the message's (a typo in a unit's catalog) gives the English message rather
    than a failed run."""
    try:
        return words.gettext(message).format(**values)
    except (KeyError, IndexError, ValueError, AttributeError):
        return message.format(**values)


def kind_words(words: gettext.NullTranslations, kind_hint: str) -> str:
    """A detection's kind hint in the reader's language."""
    return words.gettext(KIND_WORDS.get(kind_hint, kind_hint.replace("_", " ")))


def confidence_words(words: gettext.NullTranslations, confidence: str) -> str:
    return words.gettext(CONFIDENCE_WORDS.get(confidence, confidence))


def status_words(words: gettext.NullTranslations, status: str) -> str:
    return words.gettext(STATUS_WORDS.get(status, status))
