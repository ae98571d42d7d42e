"""One validated configuration object for scheduled runs (``sitewatch.toml``).

Secrets never live here: the SMTP password and the webhook token are read from the environment
variables the file names (``password_env``, ``token_env``).

```toml
sites = "registry.gpkg"
db = "sitewatch.db"
out = "out"
provider = "local"                 # local | stac | earthengine
stac = "catalog/catalog.json"      # for provider = "local"
# collection = "sentinel-1"        # earthengine: sentinel-2 (default), landsat, sentinel-1; stac: an id
# orbit_pass = "descending"        # earthengine sentinel-1: one viewing geometry
start = "2024-03-04"               # first week to monitor (catch-up starts here)
access = "restricted"
timezone = "Asia/Ulaanbaatar"
cron = "0 6 * * 1"                 # Monday 06:00
quick_look_cron = "0 7 * * *"      # optional daily look at secret sites
blind_days = 32                    # list sites without a clear look for this many days
language = "mn"                    # map, field sheets, waypoints: en (default), mn, or a .po file

[columns]                          # the registry's columns whose names sitewatch does not know
site_id = "Дурсгалт газрын код"

[companions]                       # other deployments whose open detections the map shows too
"Sentinel-1 radar" = "sitewatch-radar.db"

[alerts]
min_confidence = "medium"
sensitivities = ["public", "restricted", "secret"]
quiet_hours = [22, 6]              # local hours; only high-confidence secret-site alerts go out inside
access = "restricted"

[alerts.email]
host = "smtp.example.org"
port = 587
starttls = true
user = "sitewatch"
password_env = "SITEWATCH_SMTP_PASSWORD"
sender = "sitewatch@example.org"
to = ["duty-officer@example.org"]

[alerts.webhook]
url = "https://gateway.example.org/sitewatch"
token_env = "SITEWATCH_WEBHOOK_TOKEN"

[alerts.rangers]                  # region → ranger (dispatch messages go to the webhook)
"North valley" = "+976-ranger-1"
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path

from maps.language import LanguageError, check_language
from sites.model import SENSITIVITIES as LEVELS

from .errors import ConfigError

CONFIDENCES = ("low", "medium", "high")
BLIND_DAYS = 32
"""A site without a clear look for this many days is listed as blind: twice Landsat's 16-day
revisit and the detector's latency goal, so it has missed two chances to be seen, and only a
patrol can look for now.  Where a monsoon or a winter hides most sites for months, a unit sets
a longer ``blind_days`` so that the list stays the places to go first."""


@dataclass(frozen=True)
class EmailConfig:
    host: str
    port: int = 25
    sender: str = "sitewatch@localhost"
    to: tuple[str, ...] = ()
    user: str = ""
    password_env: str = ""
    starttls: bool = False


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    token_env: str = ""


@dataclass(frozen=True)
class AlertConfig:
    min_confidence: str = "medium"
    sensitivities: tuple[str, ...] = ("public", "restricted", "secret")
    quiet_hours: tuple[int, int] | None = None
    access: str = "restricted"
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None
    rangers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    sites: Path
    db: str
    out: Path
    start: str
    provider: str = "local"
    stac: str | None = None
    collection: str | None = None
    orbit_pass: str | None = None
    cache: str = ".sitewatch/cache"
    access: str = "restricted"
    timezone: str = "UTC"
    cron: str = "0 6 * * 1"
    quick_look_cron: str | None = None
    blind_days: int = BLIND_DAYS
    alerts: AlertConfig = field(default_factory=AlertConfig)
    columns: dict[str, str] = field(default_factory=dict)
    """The registry's column for a field (``sites.registry.REGISTRY_FIELDS``), as ``--column``."""
    companions: dict[str, str] = field(default_factory=dict)
    """Other deployments (label → store) whose open detections this one's maps show as layers."""
    language: str = "en"
    """Of the weekly map, the rangers' field sheets and the waypoint descriptions: a shipped
    catalog's code or a ``.po`` file (:mod:`maps.language`)."""


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc})") from exc
    return parse_config(raw, base=path.parent)


PROVIDERS = ("local", "stac", "earthengine")
EE_COLLECTIONS = ("sentinel-2", "landsat", "sentinel-1")
"""As ``pipelines.imagery.earthengine.COLLECTIONS`` (not imported: reading the configuration loads no provider)."""


def _known(section: str, given: dict, allowed) -> None:
    """A misspelt setting is an error, not a default silently used in its place."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        where = f"{section}." if section else ""
        raise ConfigError(f"unknown setting(s) {', '.join(where + k for k in unknown)}; known: "
                          f"{', '.join(sorted(allowed))}")


def _one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {tuple(allowed)}, not {value!r}")


def check_provider_options(provider: str, collection: str | None, orbit_pass: str | None) -> None:
    """The provider options that go together, from ``sitewatch.toml`` or the command line (None:
    not given): a local catalog holds what it holds; Earth Engine's collections are
    :data:`EE_COLLECTIONS`; an orbit pass is for Earth Engine's Sentinel-1."""
    if provider == "local" and collection is not None:
        raise ConfigError("the local provider serves what its catalog holds; collection is for earthengine or stac")
    if provider == "earthengine" and collection is not None:
        _one_of("collection", collection, EE_COLLECTIONS)
    if orbit_pass is not None:
        _one_of("orbit_pass", orbit_pass, ("ascending", "descending"))
        if provider != "earthengine" or collection != "sentinel-1":
            raise ConfigError("orbit_pass is for provider = \"earthengine\" with collection = \"sentinel-1\"")


def _webhook_url(url: str) -> None:
    """Detections travel in the webhook's body, exact locations included: https only, except to
    a gateway on this machine."""
    from urllib.parse import urlsplit

    parts = urlsplit(str(url))
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme == "https" or (parts.scheme == "http" and local):
        return
    raise ConfigError(f"alerts.webhook.url must be an https:// address (detections' locations travel in it; "
                      f"http:// only to this machine), not {url!r}")


def _schedule(name: str, cron: str, timezone: str) -> None:
    """Checked by Prefect's own schedule model now, not at Monday 06:00."""
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        errors = exc.errors() if callable(getattr(exc, "errors", None)) else []
        detail = "; ".join(str(e.get("msg", "")) for e in errors) or str(exc)
        raise ConfigError(f"{name} {cron!r} with timezone {timezone!r} is not a valid schedule ({detail})") from None


def parse_config(raw: dict, base: Path = Path(".")) -> Config:
    missing = [k for k in ("sites", "db", "out", "start") if k not in raw]
    if missing:
        raise ConfigError(f"configuration lacks {', '.join(missing)}")
    _known("", raw, [f.name for f in fields(Config)])
    _one_of("provider", raw.get("provider", "local"), PROVIDERS)
    check_provider_options(raw.get("provider", "local"), raw.get("collection"), raw.get("orbit_pass"))
    _one_of("access", raw.get("access", "restricted"), LEVELS)
    try:
        date.fromisoformat(str(raw["start"]))
    except ValueError:
        raise ConfigError(f"start must be a date (YYYY-MM-DD), not {raw['start']!r}") from None
    _schedule("cron", str(raw.get("cron", "0 6 * * 1")), str(raw.get("timezone", "UTC")))
    if raw.get("quick_look_cron"):
        _schedule("quick_look_cron", str(raw["quick_look_cron"]), str(raw.get("timezone", "UTC")))
    blind_days = raw.get("blind_days", BLIND_DAYS)
    if isinstance(blind_days, bool) or not isinstance(blind_days, int) or not 1 <= blind_days <= 366:
        raise ConfigError(f"blind_days must be a whole number of days from 1 to 366, not {blind_days!r}")
    columns = _columns(raw.get("columns", {}))
    language = str(raw.get("language", "en"))
    if language.endswith(".po"):
        language = str(Path(language) if Path(language).is_absolute() else base / language)
    try:
        check_language(language)
    except LanguageError as exc:
        raise ConfigError(f"language: {exc}") from None
    companions = companion_stores(raw.get("companions", {}), str(raw["db"]), "companions")
    a = dict(raw.get("alerts", {}))
    email = a.pop("email", None)
    webhook = a.pop("webhook", None)
    rangers = a.pop("rangers", {})
    _known("alerts", raw.get("alerts", {}), [f.name for f in fields(AlertConfig)])
    # a secret written into the file is named as such, before the unknown-setting check
    if email and ("password" in email or "password" in str(email.get("user", ""))):
        raise ConfigError("put the SMTP password in an environment variable named by alerts.email.password_env")
    if webhook and "token" in webhook:
        raise ConfigError("put the webhook token in an environment variable named by alerts.webhook.token_env")
    if email:
        _known("alerts.email", email, [f.name for f in fields(EmailConfig)])
    if webhook:
        _known("alerts.webhook", webhook, [f.name for f in fields(WebhookConfig)])
        if "url" not in webhook:
            raise ConfigError("alerts.webhook lacks url")
        _webhook_url(webhook["url"])
    if a.get("min_confidence", "medium") not in CONFIDENCES:
        raise ConfigError(f"alerts.min_confidence must be one of {CONFIDENCES}")
    _one_of("alerts.access", a.get("access", "restricted"), LEVELS)
    for level in a.get("sensitivities", ()):
        _one_of("each of alerts.sensitivities", level, LEVELS)
    qh = a.get("quiet_hours")
    try:
        bad_hours = qh is not None and (len(qh) != 2 or not all(0 <= int(h) <= 23 for h in qh))
    except (TypeError, ValueError):
        bad_hours = True
    if bad_hours:
        raise ConfigError("alerts.quiet_hours must be two hours 0-23, e.g. [22, 6]")
    alerts = AlertConfig(
        min_confidence=a.get("min_confidence", "medium"),
        sensitivities=tuple(a.get("sensitivities", ("public", "restricted", "secret"))),
        quiet_hours=tuple(int(h) for h in qh) if qh else None,
        access=a.get("access", "restricted"),
        email=EmailConfig(**{**email, "to": tuple(email.get("to", ()))}) if email else None,
        webhook=WebhookConfig(**webhook) if webhook else None,
        rangers=dict(rangers),
    )
    def rel(p):
        return Path(p) if Path(p).is_absolute() else base / p
    return Config(
        sites=rel(raw["sites"]), db=str(raw["db"]), out=rel(raw["out"]), start=str(raw["start"]),
        provider=raw.get("provider", "local"), stac=str(rel(raw["stac"])) if raw.get("stac") else None,
        collection=raw.get("collection"), orbit_pass=raw.get("orbit_pass"),
        cache=str(rel(raw.get("cache", ".sitewatch/cache"))), access=raw.get("access", "restricted"),
        timezone=raw.get("timezone", "UTC"), cron=raw.get("cron", "0 6 * * 1"),
        quick_look_cron=raw.get("quick_look_cron"), blind_days=blind_days, alerts=alerts, columns=columns,
        companions=companions, language=language,
    )


def companion_stores(raw, own_db: str, where: str = "--companion") -> dict[str, str]:
    """Other deployments' stores, label → SQLAlchemy URL or SQLite path (``companions`` in the
    file, ``--companion LABEL=DB`` on the command line): not this deployment's own store."""
    if not isinstance(raw, dict) or not all(isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip()
                                            for k, v in raw.items()):
        raise ConfigError(f'{where} must name each store with a label, e.g. "Sentinel-1 radar" = "sitewatch-radar.db"')
    same = [k for k, v in raw.items() if Path(v).expanduser().resolve() == Path(own_db).expanduser().resolve()
            or v == own_db]
    if same:
        raise ConfigError(f"{where} {same[0]!r} is this deployment's own store ({own_db}); a companion is another "
                          "deployment's (the radar watch's store beside the optical one's)")
    return {k.strip(): v.strip() for k, v in raw.items()}


def _columns(raw) -> dict[str, str]:
    """``[columns]``: field = "the registry's column", checked as ``--column`` is."""
    from sites.registry import REGISTRY_FIELDS
    from sites.tables import TableError, column_choices

    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError('columns must be a table of field = "column name", e.g. [columns] site_id = "Site code"')
    try:
        return column_choices([f"{k}={v}" for k, v in raw.items()], REGISTRY_FIELDS, option="columns")
    except TableError as exc:
        raise ConfigError(str(exc)) from None
