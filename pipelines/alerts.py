"""Alerts: an email digest, a webhook POST, and short dispatch messages for rangers.

One alert per detection and confidence level: a detection is alerted once, and again only when
its confidence rises (escalation).  What was sent is recorded in the store, so a re-run sends
nothing twice.  Rules: minimum confidence, site sensitivities, quiet hours (inside them only
high-confidence detections at secret sites go out; the rest wait for the next run).  Payloads are
built from detections alone — no report, and so no reporter, ever reaches them; secrets come from
the environment and are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from gettext import NullTranslations
from pathlib import Path

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import pandas as pd
from anyascii import anyascii
from shapely import wkt

from maps.access import LEVELS, generalise, may_see_exact, rank
from maps.escape import text as esc
from maps.field_pack import to_mgrs, waypoint_label
from maps.language import ACCESS_WORDS, ENGLISH_WORDS, N_, Said, confidence_words, phrase, say, words_for
from sites import Site
from sitewatch.config import AlertConfig
from sitewatch.errors import ConfigError

from .store import Store, disturbed_before

log = logging.getLogger(__name__)
RANK = {"low": 0, "medium": 1, "high": 2}
SMS_LIMIT = 160
ATTACHED = Said(N_("The offline map and the field pack are attached."))


@dataclass(frozen=True)
class Alert:
    detection_id: str
    site_id: str
    site_name: str
    region: str
    confidence: str
    escalation: bool
    first_seen: str
    area_m2: float
    lat: float
    lon: float
    mgrs: str | None
    generalised: bool
    disturbed_before: str = ""
    """First date of an earlier disturbance on the same ground (a repeat dig), if any."""

    def sms(self) -> str:
        """One SMS: 160 characters of the GSM 7-bit alphabet.  A single character outside it (a
        Cyrillic or Arabic site name, "…") makes a phone send the whole message as UCS-2, 70
        characters a part, so a Mongolian site name would split the message in three (and some
        gateways drop the rest).  The name is therefore written in GSM letters (:func:`gsm_text`:
        "Хар бух" as "Khar bukh").  Where to go is never cut: a long site id or name is what gives
        way: the id whole, where it is GSM text as it is (an id must read back exactly) and fits,
        else the GPS waypoint's name it has on the field pack's sheet (``NN-5d7578``, the id's end);
        then the name, shortened with ".."."""
        where = f"{self.lat:.5f},{self.lon:.5f}" + (f" MGRS {self.mgrs}" if self.mgrs else " (approx.)")
        head = ("ESCALATED " if self.escalation else "") + ("REPEAT " if self.disturbed_before else "")
        msg = f"sitewatch {head}{self.confidence.upper()} {where} since {self.first_seen}"
        for ref in (self.detection_id, waypoint_label("NN", self.detection_id)):
            if is_gsm(ref) and septets(msg) + 1 + septets(ref) <= SMS_LIMIT:
                msg += f" {ref}"
                break
        room = SMS_LIMIT - septets(msg) - 1
        name = " ".join(gsm_text(self.site_name).split())
        if room >= 4 and name:
            msg += " " + (name if septets(name) <= room else _cut(name, room - 2).rstrip() + "..")
        return msg


def is_gsm(text: str) -> bool:
    """Whether ``text`` is all in the GSM 03.38 alphabet (its basic set and extension table)."""
    try:
        text.encode("gsm03.38")
    except UnicodeError:
        return False
    return True


def septets(text: str) -> int:
    """The length of GSM text in an SMS: an extension character (``€``, ``[``, ``|``) takes two."""
    return len(text.encode("gsm03.38"))


def gsm_text(text: str) -> str:
    """``text`` in the GSM 7-bit alphabet: each character it lacks transliterated (``anyascii``:
    Cyrillic, Arabic, Khmer, ``á``), and left out if even that is not GSM text."""
    return "".join(c if is_gsm(c) else "".join(t for t in anyascii(c) if is_gsm(t)) for c in text)


def _cut(text: str, room: int) -> str:
    """The longest start of GSM ``text`` that fits ``room`` septets."""
    out, used = [], 0
    for c in text:
        used += septets(c)
        if used > room:
            break
        out.append(c)
    return "".join(out)


def in_quiet_hours(now: datetime, quiet: tuple[int, int] | None) -> bool:
    if not quiet:
        return False
    start, end = quiet
    h = now.hour
    return (start <= h or h < end) if start > end else (start <= h < end)


def due_alerts(store: Store, sites: list[Site], cfg: AlertConfig, now: datetime) -> list[Alert]:
    """Open detections that pass the rules and were not yet alerted at their current confidence.
    A place a ranger has checked raises no alert (nor escalation) unless it waits for another
    visit: a report made after the check, or an archaeologist's doubt after it
    (:func:`pipelines.review.closed_by_check`)."""
    from .review import closed_by_check

    frame = store.detections([s.site_id for s in sites])
    if frame.empty:
        return []
    closed = closed_by_check(store, frame.detection_id, now.date())
    sent = store.alerted()
    paged = _alerted_digs(store, sent)
    by_id = {s.site_id: s for s in sites}
    quiet = in_quiet_hours(now, cfg.quiet_hours)
    out = []
    for r in frame.itertuples():
        site = by_id.get(r.site_id)
        if site is None or r.status not in ("open", "confirmed") or site.sensitivity not in cfg.sensitivities:
            continue
        if r.detection_id in closed:
            continue
        if RANK[r.confidence] < RANK[cfg.min_confidence]:
            continue
        geom = wkt.loads(r.geometry_wkt)
        prev = sent.get(r.detection_id) or _paged_as(paged, r.detection_id, geom, r.first_seen)
        if prev is not None and RANK[r.confidence] <= RANK[prev]:
            continue
        if quiet and not (r.confidence == "high" and site.sensitivity == "secret"):
            continue
        exact = may_see_exact(site.sensitivity, cfg.access)
        c = geom.representative_point() if exact else generalise(geom)
        out.append(Alert(r.detection_id, r.site_id, site.name, site.region, r.confidence, prev is not None,
                         r.first_seen, float(r.area_m2), round(c.y, 6), round(c.x, 6),
                         to_mgrs(c.y, c.x) if exact else None, not exact, disturbed_before(r.evidence)))
        paged.append((r.detection_id, geom, pd.Timestamp(r.first_seen), r.confidence))  # one page per dig
    return out


def _alerted_digs(store: Store, sent: dict[str, str]) -> list[tuple[str, object, pd.Timestamp, str]]:
    """The detections alerted so far, at any site: (id, outline, onset, highest level sent)."""
    if not sent:
        return []
    frame = store.detections()
    frame = frame[frame.detection_id.isin(list(sent))]
    return [(r.detection_id, wkt.loads(r.geometry_wkt), pd.Timestamp(r.first_seen), sent[r.detection_id])
            for r in frame.itertuples()]


def _paged_as(paged: list, detection_id: str, geom, first_seen: str) -> str | None:
    """The highest level one dig was alerted at under another id: a detection on the same ground
    with an onset within the detector's own span for one disturbance (``split_gap_days``).  A
    site's registry re-coded and run before the rename, a dig seen from two overlapping sites, or
    one re-dated into a new id is not paged again; a repeat dig, months later, is."""
    from .monitoring import one_disturbance

    levels = [level for other, g, t, level in paged
              if other != detection_id and one_disturbance(g, t, geom, first_seen)]
    return max(levels, key=RANK.get) if levels else None


def payload(alerts: list[Alert], week: str, access: str) -> dict:
    return {
        "source": "sitewatch", "week": week, "access_level": access,
        "detections": [{
            "detection_id": a.detection_id, "site_id": a.site_id, "site_name": a.site_name, "confidence": a.confidence,
            "escalation": a.escalation, "first_seen": a.first_seen, "area_m2": a.area_m2, "lat": a.lat, "lon": a.lon,
            "mgrs": a.mgrs, "location_generalised": a.generalised,
            "disturbed_before": a.disturbed_before or None} for a in alerts],
    }


def dispatch_messages(alerts: list[Alert], rangers: dict[str, str]) -> list[dict]:
    """One short message per alert for the ranger of the site's region (or ``duty`` if none)."""
    return [{"to": rangers.get(a.region, rangers.get("*", "duty")), "text": a.sms()} for a in alerts]


def digest_html(alerts: list[Alert], week: str, attached: str = ATTACHED,
                words: NullTranslations = ENGLISH_WORDS) -> str:
    """The email digest for the unit, in ``words``' language (:mod:`maps.language`); ids, dates,
    coordinates and MGRS as they are."""
    _ = words.gettext
    escalated, withheld = _(" (escalated)"), _("withheld")

    def repeat(a):
        return phrase(words, " (repeat: first dug {date})", date=a.disturbed_before) if a.disturbed_before else ""

    rows = "".join(
        f"<tr><td>{esc(a.detection_id)}</td><td>{esc(a.site_name)}</td><td>{esc(confidence_words(words, a.confidence))}"
        f"{esc(escalated) if a.escalation else ''}</td><td>{esc(a.first_seen)}{esc(repeat(a))}</td>"
        f"<td>{a.area_m2:.0f} m²</td><td>{a.lat:.6f}, {a.lon:.6f}</td><td>{esc(a.mgrs or withheld)}</td></tr>"
        for a in alerts)
    head = "".join(f"<th>{esc(_(h))}</th>" for h in (N_("Detection"), N_("Site"), N_("Confidence"), N_("First seen"),
                                                     N_("Area"), N_("Lat, lon"), "MGRS"))
    heading = phrase(words, "sitewatch — week {week}", week=week)
    need = phrase(words, "{n} detection(s) need attention.", n=len(alerts))
    return (f"<html lang='{esc(words.info().get('language', 'en'))}'><head><meta charset='utf-8'></head><body>"
            f"<h2>{esc(heading)}</h2><p>{esc(need)} {esc(say(words, attached))}</p>"
            f"<table border='1' cellspacing='0' cellpadding='3'><tr>{head}</tr>{rows}</table></body></html>")


def outputs_access(out_dir: Path) -> str | None:
    """The access level the run's outputs in ``out_dir`` were made at (its ``summary.json``)."""
    try:
        return json.loads((out_dir / "summary.json").read_text(encoding="utf-8")).get("access_level")
    except (OSError, ValueError, AttributeError):
        return None


def attachable(out_dir: Path, access: str) -> tuple[list[Path], str]:
    """The offline map and field pack to attach, unless the run made them at a higher access level
    than the alerts' readers have (``access = "secret"`` for the run, ``alerts.access =
    "restricted"`` for a wider list): those would carry exact locations of secret sites."""
    files = [out_dir / "map_offline.html", *(out_dir / "field" / f"field_pack.{k}" for k in ("gpx", "csv", "xlsx"))]
    level = outputs_access(out_dir)
    if level in LEVELS and rank(level) <= rank(access):
        return files, ATTACHED
    return [], Said(N_("The offline map and the field pack are not attached: they were made at access level {level}, "
                       "above this message's ({access}); open them where that level is allowed."),
                    level=Said(ACCESS_WORDS[level] if level in LEVELS else N_("unknown")),
                    access=Said(ACCESS_WORDS.get(access, access)))


def send_email(cfg: AlertConfig, alerts: list[Alert], week: str, attachments: list[Path],
               attached: str = ATTACHED, words: NullTranslations = ENGLISH_WORDS) -> None:
    """The digest (:func:`digest_html`, in ``words``' language) with the dispatch messages as its
    plain text, and the offline map and field pack attached where the reader's level allows."""
    e = cfg.email
    msg = EmailMessage()
    msg["Subject"] = phrase(words, "sitewatch {week}: {n} detection(s)", week=week, n=len(alerts)) + (
        words.gettext(" — ESCALATED") if any(a.escalation for a in alerts) else "")
    msg["From"] = e.sender
    msg["To"] = ", ".join(e.to)
    msg.set_content("\n".join(a.sms() for a in alerts) + "\n\n" + say(words, attached))
    msg.add_alternative(digest_html(alerts, week, attached, words), subtype="html")
    for p in attachments:
        if p.exists():
            msg.add_attachment(p.read_bytes(), maintype="application", subtype="octet-stream", filename=p.name)
    password = os.environ.get(e.password_env, "") if e.password_env else ""
    if e.password_env and not password:
        raise ConfigError(f"alerts.email.password_env names {e.password_env}, which is not set")
    with smtplib.SMTP(e.host, e.port, timeout=30) as smtp:
        if e.starttls:
            smtp.starttls()
        if e.user and password:
            smtp.login(e.user, password)
        smtp.send_message(msg)


def post_webhook(cfg: AlertConfig, body: dict) -> None:
    w = cfg.webhook
    headers = {"Content-Type": "application/json"}
    if w.token_env:
        token = os.environ.get(w.token_env, "")
        if not token:
            raise ConfigError(f"alerts.webhook.token_env names {w.token_env}, which is not set")
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(w.url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the URL is the operator's own
        if resp.status >= 300:
            raise OSError(f"webhook answered {resp.status}")


def alert_report(due: int = 0) -> dict:
    """What a week's alerting did, per channel: ``due`` alerts, how many each channel took."""
    return {"alerts": due, "email": 0, "webhook": 0, "dispatch": 0, "errors": []}


def send_alerts(store: Store, sites: list[Site], cfg: AlertConfig, week: str, out_dir: Path,
                now: datetime | None = None, language: str | None = None) -> dict:
    """Send what is due; record it; return what was sent per channel.  The email digest is in
    ``language`` (:mod:`maps.language`); the dispatch SMS stays English in GSM letters
    (:meth:`Alert.sms`)."""
    now = now or datetime.now()
    alerts = due_alerts(store, sites, cfg, now)
    report = alert_report(len(alerts))
    if not alerts:
        return report
    body = {**payload(alerts, week, cfg.access), "dispatch": dispatch_messages(alerts, cfg.rangers)}
    delivered = False
    if cfg.email and cfg.email.to:
        try:
            files, attached = attachable(out_dir, cfg.access)
            send_email(cfg, alerts, week, files, attached, words_for(language))
            report["email"] = len(alerts)
            delivered = True
        except (OSError, smtplib.SMTPException) as exc:
            report["errors"].append(f"email: {type(exc).__name__}")
            log.warning("alert email failed: %s", type(exc).__name__)
    if cfg.webhook:
        try:
            post_webhook(cfg, body)
            report["webhook"] = len(alerts)
            report["dispatch"] = len(body["dispatch"])
            delivered = True
        except OSError as exc:
            report["errors"].append(f"webhook: {type(exc).__name__}")
            log.warning("alert webhook failed: %s", type(exc).__name__)
    (out_dir / "dispatch.txt").write_text("\n".join(f"{m['to']}: {m['text']}" for m in body["dispatch"]) + "\n")
    if delivered:
        store.record_alerts([(a.detection_id, a.confidence) for a in alerts], str(pd.Timestamp(now)))
    return report
