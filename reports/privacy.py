"""Protect the reporter: contacts become keyed pseudonyms before anything is stored.

The pseudonym is ``rp-`` + the first 16 hex digits of HMAC-SHA256(key, normalised contact).  The
key comes from the environment (``SITEWATCH_REPORTER_KEY``) or a key file outside the repository
(``SITEWATCH_REPORTER_KEY_FILE``); without a key, reports that carry a contact are refused rather
than stored with a guessable hash.  Policies:

* ``pseudonym`` (default) — store the pseudonym only;
* ``restricted`` — also keep the raw contact in the separate ``reporter_contacts`` table;
* ``drop`` — store neither (no key needed).

Other columns that name or reach the reporter (a name, a second phone or e-mail, KoBo's
``_submitted_by``, a device id: :func:`identity_columns`) are never stored or written, not even
in the file of rejected rows; where a row has a name but no contact, the name is what gets the
pseudonym.  The reporter's own words keep no e-mail address, international phone number, or
any value of those columns (:func:`scrub_text`), nor, where the country is set
(``--phone-region``, ``SITEWATCH_PHONE_REGION``), a phone number written without ``+``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path
from typing import Literal

from sites.tables import column_key
from sitewatch.errors import ConfigError

ContactPolicy = Literal["pseudonym", "restricted", "drop"]
KEY_ENV = "SITEWATCH_REPORTER_KEY"
KEY_FILE_ENV = "SITEWATCH_REPORTER_KEY_FILE"


def load_key() -> bytes | None:
    """The pseudonymisation key from the environment or a key file, or None."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    path = os.environ.get(KEY_FILE_ENV)
    if path:
        try:
            return Path(path).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the reporter key file named by {KEY_FILE_ENV} ({exc.strerror})") from exc
    return None


def normalise_contact(contact: str) -> str:
    c = contact.strip().casefold()
    digits = re.sub(r"[^\d+]", "", c)
    return digits if "@" not in c and len(digits) >= 6 else c


def pseudonymise(contact: str, key: bytes | None, policy: ContactPolicy = "pseudonym") -> str:
    if policy == "drop":
        return ""
    if not key:
        raise ConfigError(
            f"reports carry reporter contacts but no pseudonymisation key is set; set {KEY_ENV} "
            f"(or {KEY_FILE_ENV}) outside the repository, or import with --contact-policy drop"
        )
    digest = hmac.new(key, normalise_contact(contact).encode(), hashlib.sha256).hexdigest()
    return f"rp-{digest[:16]}"


IDENTITY_NAMES = frozenset({
    "contact", "reporter", "reporter_contact", "phone", "email", "reporter_phone", "telephone", "reporter_name",
    "reporter_email", "name_of_reporter", "your_name", "full_name", "first_name", "last_name", "surname",
    "given_name", "family_name", "mobile", "phone_number", "phonenumber", "email_address", "e_mail", "whatsapp",
    "telegram", "_submitted_by", "submitted_by", "username", "deviceid", "device_id", "imei", "subscriberid",
    "simserial", "informant", "informant_name", "witness_name", "national_id", "passport", "reported_by",
    "submitter", "submitter_name", "observer", "observer_name", "enumerator", "enumerator_name", "collector",
    "collector_name",
    # Mongolian, Russian, Ukrainian, Spanish, French, Arabic: a reporter's phone, e-mail, name
    "утас", "утасны_дугаар", "и_мэйл", "имэйл", "мэдээлэгч", "овог", "ургийн_овог", "телефон", "фио", "фамилия",
    "прізвище", "піб", "почта", "электронная_почта", "teléfono", "telefono", "celular", "correo",
    "correo_electrónico", "correo_electronico", "informante", "apellido", "nombre_del_informante", "téléphone",
    "courriel", "هاتف", "الهاتف", "جوال", "البريد_الإلكتروني", "المبلغ", "اسم_المبلغ",
})
"""Column names (lower case, after any KoBo group prefix ``group/``) that carry who reported."""
IDENTITY_PARTS = ("reporter", "phone", "e_mail", "email", "whatsapp", "telegram", "informant", "surname",
                  "утас", "телефон", "мэдээлэгч", "teléfono", "telefono", "correo", "هاتف")
"""A column whose name contains one of these carries who reported too (``reporter_mobile``...)."""


def identity_columns(names) -> list[str]:
    """The columns among ``names`` that name or reach the reporter."""
    out = []
    for name in names:
        key = column_key(name or "")
        if key and (key in IDENTITY_NAMES or any(part in key for part in IDENTITY_PARTS)):
            out.append(name)
    return out


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+\d[\d \-().]{6,18}\d")
WITHHELD = "[withheld]"


PHONE_REGION_ENV = "SITEWATCH_PHONE_REGION"


def phone_region(region: str | None = None) -> str | None:
    """The country whose phone numbers are recognised without ``+`` (ISO 3166 code, e.g. ``MN``):
    the argument, else ``SITEWATCH_PHONE_REGION``, else none (international numbers only)."""
    import phonenumbers

    code = (region or os.environ.get(PHONE_REGION_ENV, "")).strip().upper()
    if not code:
        return None
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"phone region {code!r} is not a country code libphonenumber knows (e.g. MN, EG, KH, JO, PE)")
    return code


def _national_phones(text: str, region: str) -> str:
    """Phone numbers written the way the region's people write them (``9911 2233`` in Mongolia),
    found by libphonenumber; digits that belong to a decimal number (a coordinate) are not one."""
    from phonenumbers import Leniency, PhoneNumberMatcher

    spans = []
    for m in PhoneNumberMatcher(text, region, leniency=Leniency.VALID):
        before = text[m.start - 1] if m.start else ""
        after = text[m.end:m.end + 2]
        if before in ".," or (len(after) == 2 and after[0] in ".," and after[1].isdigit()):
            continue
        spans.append((m.start, m.end))
    for start, end in reversed(spans):
        text = text[:start] + WITHHELD + text[end:]
    return text


def scrub_text(text: str, identities=(), region: str | None = None) -> str:
    """``text`` without e-mail addresses, international (``+``) phone numbers, the given values,
    and, with a ``region``, that country's phone numbers written without ``+``."""
    for value in sorted({v.strip() for v in identities if v and len(v.strip()) >= 3}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", WITHHELD, text, flags=re.IGNORECASE)
    text = EMAIL.sub(WITHHELD, text)
    if region:
        text = _national_phones(text, region)
    return PHONE.sub(WITHHELD, text)
