"""One validated configuration object for scheduled runs (``sitewatch.toml``).

Secrets never live here: the SMTP password and the webhook token are read from the environment
variables the file names (``password_env``, ``token_env``).

```toml
sites = "registry.gpkg"
db = "sitewatch.db"
out = "out"
provider = "local"                 # local | stac | earthengine
stac = "catalog/catalog.json"      # for provider = "local"
start = "2024-03-04"               # first week to monitor (catch-up starts here)
access = "restricted"
timezone = "Asia/Ulaanbaatar"
cron = "0 6 * * 1"                 # Monday 06:00
quick_look_cron = "0 7 * * *"      # optional daily look at secret sites

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
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

CONFIDENCES = ("low", "medium", "high")


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
    cache: str = ".sitewatch/cache"
    access: str = "restricted"
    timezone: str = "UTC"
    cron: str = "0 6 * * 1"
    quick_look_cron: str | None = None
    alerts: AlertConfig = field(default_factory=AlertConfig)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc})") from exc
    return parse_config(raw, base=path.parent)


def parse_config(raw: dict, base: Path = Path(".")) -> Config:
    missing = [k for k in ("sites", "db", "out", "start") if k not in raw]
    if missing:
        raise ConfigError(f"configuration lacks {', '.join(missing)}")
    a = dict(raw.get("alerts", {}))
    email = a.pop("email", None)
    webhook = a.pop("webhook", None)
    rangers = a.pop("rangers", {})
    if a.get("min_confidence", "medium") not in CONFIDENCES:
        raise ConfigError(f"alerts.min_confidence must be one of {CONFIDENCES}")
    qh = a.get("quiet_hours")
    if qh is not None and (len(qh) != 2 or not all(0 <= int(h) <= 23 for h in qh)):
        raise ConfigError("alerts.quiet_hours must be two hours 0-23, e.g. [22, 6]")
    if email and ("password" in email or "password" in str(email.get("user", ""))):
        raise ConfigError("put the SMTP password in an environment variable named by alerts.email.password_env")
    if webhook and "token" in webhook:
        raise ConfigError("put the webhook token in an environment variable named by alerts.webhook.token_env")
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
        cache=str(rel(raw.get("cache", ".sitewatch/cache"))), access=raw.get("access", "restricted"),
        timezone=raw.get("timezone", "UTC"), cron=raw.get("cron", "0 6 * * 1"),
        quick_look_cron=raw.get("quick_look_cron"), alerts=alerts,
    )
