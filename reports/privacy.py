"""Protect the reporter: contacts become keyed pseudonyms before anything is stored.

The pseudonym is ``rp-`` + the first 16 hex digits of HMAC-SHA256(key, normalised contact).  The
key comes from the environment (``SITEWATCH_REPORTER_KEY``) or a key file outside the repository
(``SITEWATCH_REPORTER_KEY_FILE``); without a key, reports that carry a contact are refused rather
than stored with a guessable hash.  Policies:

* ``pseudonym`` (default) — store the pseudonym only;
* ``restricted`` — also keep the raw contact in the separate ``reporter_contacts`` table;
* ``drop`` — store neither (no key needed).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path
from typing import Literal

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
