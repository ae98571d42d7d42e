"""Schedule, catch-up and alerts against a real SMTP server and HTTP receiver on loopback."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from datetime import datetime
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from pipelines.schedule import build_deployments, next_runs, pending_weeks, plan_catch_up, run_catch_up
from pipelines.store import Store
from sitewatch.config import load_config

pytestmark = pytest.mark.slow
CONTACT = "+976 8800 1122"


@pytest.fixture()
def smtp_server():
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            self.messages.append(envelope.content)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free loopback port (aiosmtpd checks readiness by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    yield port, sink.messages
    ctl.stop()


@pytest.fixture()
def receiver():
    got = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):  # noqa: N802
            n = int(self.headers["Content-Length"])
            got.append({"auth": self.headers.get("Authorization"), "body": json.loads(self.rfile.read(n))})
            self.send_response(204)
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_port, got
    srv.shutdown()


@pytest.fixture()
def config(case_2011, tmp_path, smtp_server, receiver, monkeypatch):
    smtp_port, _ = smtp_server
    http_port, _ = receiver
    sites = tmp_path / "sites.geojson"
    doc = json.loads((case_2011 / "sites.geojson").read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["site_id"] in ("S02-04", "S02-05")]
    for f in doc["features"]:
        f["properties"]["region"] = "North valley" if f["properties"]["site_id"] == "S02-04" else "South"
    sites.write_text(json.dumps(doc))
    monkeypatch.setenv("SW_TEST_TOKEN", "t0ken-not-logged")
    path = tmp_path / "sitewatch.toml"
    path.write_text(f"""
sites = "{sites}"
db = "{tmp_path / 'sw.db'}"
out = "{tmp_path / 'out'}"
provider = "local"
stac = "{case_2011 / 'catalog' / 'catalog.json'}"
cache = "{tmp_path / 'cache'}"
start = "2011-06-06"
timezone = "Asia/Ulaanbaatar"
cron = "0 6 * * 1"
quick_look_cron = "30 7 * * *"
blind_days = 45
language = "mn"

[alerts]
min_confidence = "low"

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
sender = "sitewatch@unit.example"
to = ["duty@unit.example"]

[alerts.webhook]
url = "http://127.0.0.1:{http_port}/hook"
token_env = "SW_TEST_TOKEN"

[alerts.rangers]
"North valley" = "ranger-north"
"*" = "ranger-duty"
""")
    return load_config(path)


def test_weekly_alerts_catch_up_and_escalation(config, smtp_server, receiver, caplog):
    _, mails = smtp_server
    _, posts = receiver
    store = Store(config.db)
    # Monday 2011-06-20 06:00: weeks W23 and W24 are complete
    first = run_catch_up(config, now=datetime(2011, 6, 20, 6, 0))
    assert [r["week"] for r in first] == ["2011-W23", "2011-W24"]
    assert json.loads((config.out / "2011-W24" / "summary.json").read_text())["blind_days"] == 45  # as configured
    sheets = list((config.out / "2011-W24" / "field" / "sheets").glob("*.html"))  # language = "mn"
    assert sheets and all("Хээрийн шалгалт" in p.read_text(encoding="utf-8") for p in sheets)
    # a herder reports the dig at S02-05 by phone: the contact must reach no alert
    from shapely import wkt

    from pipelines.community import import_reports_file

    det = store.detections().set_index("site_id").loc["S02-05"]
    c = wkt.loads(det.geometry_wkt if isinstance(det.geometry_wkt, str) else det.geometry_wkt.iloc[0]).centroid
    rep = config.out.parent / "reports.csv"
    rep.write_text(f"date,latitude,longitude,comment,contact\n2011-06-25,{c.y:.6f},{c.x:.6f},digging at night,{CONTACT}\n")
    import os

    os.environ["SITEWATCH_REPORTER_KEY"] = "k"
    try:
        assert len(import_reports_file(store, rep)[0].accepted) == 1
    finally:
        del os.environ["SITEWATCH_REPORTER_KEY"]
    # the machine is off on 2011-06-27; on 2011-07-05 it catches up W25 and W26, in order, nothing twice
    second = run_catch_up(config, now=datetime(2011, 7, 5, 6, 0))
    assert [r["week"] for r in second] == ["2011-W25", "2011-W26"]
    assert run_catch_up(config, now=datetime(2011, 7, 5, 9, 0)) == []  # re-run: nothing pending, nothing sent
    weeks = sorted({r["week"] for r in store.site_weeks()})
    assert weeks == ["2011-W23", "2011-W24", "2011-W25", "2011-W26"]

    sent = [r["alerts"] for r in first + second]
    assert sum(a["email"] for a in sent) >= 2 and all(not a["errors"] for a in sent)
    bodies = [p["body"] for p in posts]
    assert all(p["auth"] == "Bearer t0ken-not-logged" for p in posts)
    alerted = [d for b in bodies for d in b["detections"]]
    ids = [d["detection_id"] for d in alerted]
    # S02-04's dig: alerted at low, then again when it escalated to medium; never twice at one level
    s04 = [d for d in alerted if d["site_id"] == "S02-04"]
    assert [d["confidence"] for d in s04][:2] == ["low", "medium"] and s04[1]["escalation"] is True
    assert len(ids) == len({(d["detection_id"], d["confidence"]) for d in alerted})
    for d in alerted:
        assert d["mgrs"] and -107 < d["lon"] < -106 and 40 < d["lat"] < 41
    msgs = [m for b in bodies for m in b["dispatch"]]
    assert all(len(m["text"]) <= 160 and "MGRS" in m["text"] for m in msgs)
    assert {m["to"] for m in msgs} == {"ranger-north", "ranger-duty"}

    digest = email.message_from_bytes(mails[0])
    html = next(p for p in digest.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert any(i in html for i in ids) and "MGRS" in html
    # language = "mn": the unit's digest is in Mongolian; the dispatch SMS stays one GSM message
    assert "илрүүлэлтэд анхаарал хандуулах шаардлагатай" in html and "Итгэлийн түвшин" in html
    subject = str(email.message_from_bytes(mails[0], policy=email.policy.default)["Subject"])
    assert subject.startswith("sitewatch 2011-W2") and subject.endswith(" илрүүлэлт")
    assert "Офлайн газрын зураг болон хээрийн багцыг хавсаргасан." in html and "need attention" not in html
    for m in msgs:
        m["text"].encode("gsm03.38")
    names = [p.get_filename() for p in digest.walk() if p.get_filename()]
    assert "map_offline.html" in names and "field_pack.gpx" in names
    everything = b"".join(mails).decode(errors="ignore") + json.dumps(bodies) + caplog.text
    everything += "".join(p.read_text(errors="ignore") for p in config.out.rglob("*") if p.suffix in (".html", ".json", ".txt", ".csv", ".geojson"))
    assert CONTACT not in everything and "88001122" not in everything and "t0ken-not-logged" not in caplog.text
    summary = json.loads((config.out / "2011-W26" / "summary.json").read_text())
    assert summary["reconciliation"]["corroborated"] >= 1  # the report was used, its sender was not shown


def test_a_long_gap_is_back_filled_not_run_and_alerted_week_by_week(config, smtp_server, receiver):
    """A unit that sets `start` months back (or a server off all summer) gets the old weeks
    back-filled in spans of at most a quarter, one folder each and no alert of their own, and the
    latest 8 weeks run one by one with their alerts, which carry what the back-fill found.
    Before, every week of the gap had its own run, folder and alert e-mail (800 of them for a
    `start` 15 years back)."""
    _, mails = smtp_server
    _, posts = receiver
    store = Store(config.db)
    records = run_catch_up(config, now=datetime(2011, 9, 20, 6, 0))  # W23..W37 complete: 15 weeks
    assert [(r["week"], r["backfill"]) for r in records] == [("backfill-2011-W23_2011-W29", True)] + [
        (f"2011-W{w}", False) for w in range(30, 38)]
    assert records[0]["alerts"]["alerts"] == 0 and records[0]["new"] >= 1
    assert (config.out / "backfill-2011-W23_2011-W29" / "map.html").exists()
    assert sorted({r["week"] for r in store.site_weeks()}) == [f"2011-W{w}" for w in range(23, 38)]
    alerted = [d for p in posts for d in p["body"]["detections"]]
    assert posts[0]["body"]["week"] == "2011-W30" and len(mails) <= 8
    early = {d["detection_id"] for d in alerted if d["first_seen"] <= "2011-07-24"}  # found by the back-fill
    assert early, "what the back-fill found goes out with the first recent week's alerts"


def test_catch_up_plan():
    weeks = [(f"W{i:02d}", pd.Timestamp("2011-01-03") + pd.Timedelta(weeks=i), pd.Timestamp("2011-01-09")
              + pd.Timedelta(weeks=i)) for i in range(40)]
    plan = plan_catch_up(weeks[:5] + weeks[10:40])  # a gap after W04 (those weeks were run)
    assert [(label, backfill) for label, _, _, backfill in plan] == [
        ("backfill-W00_W04", True), ("backfill-W10_W22", True), ("backfill-W23_W31", True)] + [
        (f"W{i}", False) for i in range(32, 40)]
    assert (plan[1][1], plan[1][2]) == (weeks[10][1], weeks[22][2])
    assert [label for label, *_ in plan_catch_up(weeks[:8])] == [f"W{i:02d}" for i in range(8)]
    assert [label for label, *_ in plan_catch_up(weeks[:9])] == ["backfill-W00"] + [f"W{i:02d}" for i in range(1, 9)]
    assert plan_catch_up([]) == []


def test_pending_weeks_and_quiet_hours(config):
    from pipelines.alerts import in_quiet_hours

    store = Store(config.db)
    weeks = pending_weeks(store, ["S02-04"], "2011-06-06", pd.Timestamp("2011-06-29"))
    assert [w[0] for w in weeks] == ["2011-W23", "2011-W24", "2011-W25"]  # W26 is not complete on Wednesday
    assert in_quiet_hours(datetime(2011, 6, 1, 23), (22, 6)) and not in_quiet_hours(datetime(2011, 6, 1, 12), (22, 6))


def test_quiet_hours_and_weeks_are_the_units_local_ones(config):
    """The server may run in UTC; the unit's quiet hours are Ulaanbaatar's (UTC+8).  15:00 UTC is
    23:00 there: quiet.  And a quick look asked at 15:00 is judged at that hour, not at midnight."""
    from datetime import timezone

    from pipelines.alerts import in_quiet_hours
    from pipelines.schedule import local_now

    assert config.timezone == "Asia/Ulaanbaatar"
    evening = local_now(config, datetime(2011, 6, 20, 15, 0, tzinfo=timezone.utc))
    assert evening == datetime(2011, 6, 20, 23, 0) and in_quiet_hours(evening, (22, 6))
    assert not in_quiet_hours(local_now(config, datetime(2011, 6, 20, 3, 0, tzinfo=timezone.utc)), (22, 6))  # 11:00
    assert local_now(config, datetime(2011, 6, 20, 6, 0)) == datetime(2011, 6, 20, 6, 0)  # no zone: already local
    # Sunday 20:00 UTC is Monday 04:00 in Ulaanbaatar: the week just ended is complete there
    monday = pd.Timestamp(local_now(config, datetime(2011, 6, 19, 20, 0, tzinfo=timezone.utc)))
    weeks = pending_weeks(Store(config.db), ["S02-04"], "2011-06-13", monday)
    assert [w[0] for w in weeks] == ["2011-W24"]


def test_cron_schedule_is_registered_as_configured(config, tmp_path):
    deps = build_deployments(tmp_path / "sitewatch.toml")
    weekly = next(d for d in deps if d.name == "sitewatch-weekly")
    sched = weekly.schedules[0].schedule
    assert sched.cron == "0 6 * * 1" and sched.timezone == "Asia/Ulaanbaatar"
    assert weekly.parameters["config_path"].endswith("sitewatch.toml")
    quick = next(d for d in deps if d.name == "sitewatch-quick-look")
    assert quick.schedules[0].schedule.cron == "30 7 * * *"
    runs = next_runs(config, 3)["weekly"]
    assert all(pd.Timestamp(r).day_of_week == 0 and pd.Timestamp(r).hour == 6 for r in runs)
    # a second configuration served on the same Prefect server (radar beside optical) keeps its
    # own deployment; under the same name it replaced the first one's configuration
    (tmp_path / "sitewatch-radar.toml").write_text((tmp_path / "sitewatch.toml").read_text())
    radar = build_deployments(tmp_path / "sitewatch-radar.toml")
    assert [d.name for d in radar] == ["sitewatch-radar-weekly", "sitewatch-radar-quick-look"]
    assert radar[0].parameters["config_path"].endswith("sitewatch-radar.toml")


def test_a_repeat_dig_is_alerted_as_repeat(tmp_path):
    from shapely.geometry import Point, box

    from change_detection import Detection
    from pipelines.alerts import digest_html, due_alerts, payload
    from sites import Site
    from sitewatch.config import AlertConfig

    site = Site("S-9", "Mound field", box(106.9, 47.9, 106.91, 47.91), 50.0, "restricted", "Tuv")
    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([site])

    def det(did, first, evidence):
        t = pd.Timestamp(first)
        return Detection(did, "S-9", Point(106.905, 47.905).buffer(0.0003), "EPSG:4326", t, t, t, 0.8, "high",
                         2500.0, 3, "bare_soil_exposure", {"algorithm": "sw-seasonal-1", **evidence})

    store.upsert_detections([det("S-9-old", "2011-06-10", {}),
                             det("S-9-new", "2013-06-15", {"earlier_disturbance_first_seen": "2011-06-10",
                                                           "earlier_disturbance_share": 0.97})], "run-1")
    alerts = {a.detection_id: a for a in due_alerts(store, [site], AlertConfig(), datetime(2013, 6, 20, 9))}
    assert alerts["S-9-new"].disturbed_before == "2011-06-10" and "REPEAT" in alerts["S-9-new"].sms()
    assert alerts["S-9-old"].disturbed_before == "" and "REPEAT" not in alerts["S-9-old"].sms()
    body = payload(list(alerts.values()), "2013-W24", "restricted")
    assert {d["detection_id"]: d["disturbed_before"] for d in body["detections"]} == \
           {"S-9-old": None, "S-9-new": "2011-06-10"}
    assert "repeat: first dug 2011-06-10" in digest_html(list(alerts.values()), "2013-W24")


def test_a_ranger_sms_never_cuts_where_to_go():
    """An SMS is 160 characters; a registry's long ids and names must give way, not the
    coordinates (a cut coordinate is another place)."""
    from pipelines.alerts import SMS_LIMIT, Alert

    def alert(site_id, name):
        return Alert(f"{site_id}-20110703-abc123", site_id, name, "Tuv", "medium", True, "2011-07-03", 900.0,
                     47.912345, 106.954321, "48TXU4200206933", False, "2010-06-10")

    short = alert("S-9", "Mound field").sms()
    assert short == ("sitewatch ESCALATED REPEAT MEDIUM 47.91235,106.95432 MGRS 48TXU4200206933 since 2011-07-03 "
                     "S-9-20110703-abc123 Mound field")
    long_id = alert("MN-ARKH-" + "0" * 60, "Khirgisuur complex of the upper valley " * 3).sms()
    assert len(long_id) <= SMS_LIMIT and "47.91235,106.95432 MGRS 48TXU4200206933 since 2011-07-03" in long_id
    assert "MN-ARKH" not in long_id and long_id.endswith("..")  # no half id; the name is shortened
    assert "since 2011-07-03 NN-abc123 " in long_id  # the waypoint's name on the sheet and the GPS instead
    long_name = alert("S-9", "Khirgisuur complex of the upper valley " * 3).sms()
    assert len(long_name) == SMS_LIMIT and "S-9-20110703-abc123 Khirgisuur" in long_name


def test_a_ranger_sms_stays_one_message_with_a_mongolian_site_name():
    """A Cyrillic site name (a Mongolian registry's) made the whole SMS UCS-2: 70 characters a
    part, so the 160-character message went out in three parts, or was cut by the gateway.  So
    did the "…" that shortened a long name.  Now the name is written in GSM letters and the
    message is one part of the GSM 7-bit alphabet; an id that is not GSM text is never
    transliterated (it must read back exactly): the GPS waypoint's name stands for it."""
    from pipelines.alerts import SMS_LIMIT, Alert, septets

    def alert(site_id, name, mgrs="48TXU4200206933"):
        return Alert(f"{site_id}-20110703-abc123", site_id, name, "Tuv", "high", False, "2011-07-03", 900.0,
                     47.912345, 106.954321, mgrs, False)

    sms = alert("MN-0042", "Хар бух балгас").sms()
    assert sms == ("sitewatch HIGH 47.91235,106.95432 MGRS 48TXU4200206933 since 2011-07-03 MN-0042-20110703-abc123 "
                   "Khar bukh balgas")
    sms.encode("gsm03.38")  # one GSM 7-bit message: no character forces UCS-2
    long = alert("MN-0042", "Өндөр Улааны хиргисүүрийн цогцолбор, дээд хөндийн " * 3).sms()
    long.encode("gsm03.38")
    assert septets(long) <= SMS_LIMIT and long.endswith("..") and "Ondor Ulaany" in long
    cyrillic_id = alert("ХБ-0042", "Хар бух").sms()
    assert "ХБ" not in cyrillic_id and "KhB" not in cyrillic_id
    assert cyrillic_id.endswith("since 2011-07-03 NN-abc123 Khar bukh")
    # GSM's extension characters take two septets each: the name is cut to fit, not the message split
    brackets = alert("S-9", "[Mound] {field} | €" * 10, mgrs=None).sms()
    assert septets(brackets) <= SMS_LIMIT and len(brackets) < septets(brackets) and " (approx.) " in brackets


@pytest.mark.parametrize("change, message", [
    ({"access": "publik"}, "access must be one of"),
    ({"provider": "eartengine"}, "provider must be one of"),
    ({"start": "last monday"}, "start must be a date"),
    ({"timezone": "Mars/Olympus"}, "Invalid timezone"),
    ({"cron": "every monday"}, "Invalid cron string"),
    ({"quick_look_corn": "0 7 * * *"}, r"unknown setting\(s\) quick_look_corn"),
    ({"blind_days": "a month"}, "blind_days must be a whole number of days from 1 to 366, not 'a month'"),
    ({"blind_days": 0}, "blind_days must be a whole number"),
    ({"provider": "earthengine", "collection": "sentinel-3"}, "collection must be one of"),
    ({"provider": "earthengine", "orbit_pass": "descending"}, "orbit_pass is for provider = \"earthengine\" with"),
    ({"provider": "earthengine", "collection": "sentinel-1", "orbit_pass": "sideways"}, "orbit_pass must be one of"),
    ({"collection": "sentinel-1"}, "the local provider serves what its catalog holds"),
    ({"alerts": {"min_confidance": "high"}}, r"unknown setting\(s\) alerts.min_confidance"),
    ({"alerts": {"access": "secrt"}}, "alerts.access must be one of"),
    ({"alerts": {"sensitivities": ["secrte"]}}, "each of alerts.sensitivities"),
    ({"alerts": {"quiet_hours": ["ten", 6]}}, "quiet_hours must be two hours"),
    ({"alerts": {"email": {"host": "h", "too": ["a@b"]}}}, r"alerts.email.too; known: host"),
    ({"alerts": {"webhook": {"url": "https://g.example/x", "tokenenv": "T"}}}, "alerts.webhook.tokenenv"),
    ({"alerts": {"webhook": {"url": "http://gateway.example.org/x"}}}, "must be an https:// address"),
    ({"alerts": {"webhook": {"url": "file:///etc/passwd"}}}, "must be an https:// address"),
])
def test_a_configuration_mistake_is_found_when_it_is_read(change, message):
    """Not at Monday 06:00 inside a scheduled run, and never as a default silently used instead."""
    from sitewatch.config import parse_config
    from sitewatch.errors import ConfigError

    raw = {"sites": "s.geojson", "db": "x.db", "out": "o", "start": "2024-03-04", **change}
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_a_full_configuration_is_accepted():
    from sitewatch.config import parse_config
    from sitewatch.errors import ConfigError

    cfg = parse_config({
        "sites": "s.geojson", "db": "x.db", "out": "o", "start": "2024-03-04", "provider": "local", "stac": "c.json",
        "cache": "cache", "access": "secret", "timezone": "Asia/Ulaanbaatar", "cron": "0 6 * * 1",
        "quick_look_cron": "0 7 * * *", "blind_days": 60,
        "alerts": {"min_confidence": "high", "sensitivities": ["secret"], "quiet_hours": [22, 6], "access": "secret",
                   "email": {"host": "h", "port": 587, "starttls": True, "user": "u", "password_env": "P",
                             "sender": "s@x", "to": ["a@b"]},
                   "webhook": {"url": "http://localhost:8080/hook", "token_env": "T"},  # a gateway on this machine
                   "rangers": {"North valley": "ranger-north"}}})
    assert cfg.access == "secret" and cfg.alerts.webhook.url.startswith("http://localhost") and cfg.blind_days == 60
    radar = parse_config({"sites": "s.geojson", "db": "x.db", "out": "o", "start": "2024-03-04",
                          "provider": "earthengine", "collection": "sentinel-1", "orbit_pass": "descending"})
    assert (radar.collection, radar.orbit_pass) == ("sentinel-1", "descending")
    from pipelines.imagery import make_provider
    from pipelines.imagery.earthengine import COLLECTIONS
    from sitewatch.config import EE_COLLECTIONS

    assert EE_COLLECTIONS == COLLECTIONS  # the configuration checks what the provider accepts
    ee = make_provider("earthengine", collection=radar.collection, orbit_pass=radar.orbit_pass)
    assert (ee.collection, ee.orbit_pass) == ("sentinel-1", "DESCENDING")
    with pytest.raises(ConfigError, match="the local provider serves what its catalog holds; collection is for"):
        make_provider("local", catalog="c.json", collection="sentinel-1")


def test_the_quick_look_judges_quiet_hours_at_the_hour_it_runs(config, tmp_path, monkeypatch):
    """It once passed midnight to the alert rules (a normalised date), so inside quiet hours
    [22, 6] only high-confidence alerts ever left a daily quick look."""
    from dataclasses import replace
    from datetime import timezone

    from pipelines import schedule

    doc = json.loads(config.sites.read_text())
    for f in doc["features"]:
        f["properties"]["sensitivity"] = "secret"
    (tmp_path / "secret.geojson").write_text(json.dumps(doc))
    seen = []
    monkeypatch.setattr(schedule, "send_alerts", lambda store, sites, cfg, label, out, now, *_: seen.append(now) or {})
    schedule.run_quick_look(replace(config, sites=tmp_path / "secret.geojson"),
                            now=datetime(2011, 7, 5, 3, 30, tzinfo=timezone.utc))
    assert seen == [datetime(2011, 7, 5, 11, 30)]  # 11:30 in Ulaanbaatar


def test_outputs_made_for_a_higher_level_are_not_attached_to_a_wider_mailing(tmp_path):
    """A run at access "secret" writes exact outlines of secret sites into the offline map and the
    field pack; alerts at "restricted" (a wider list) must not carry them as attachments."""
    from pipelines.alerts import attachable, digest_html

    (tmp_path / "summary.json").write_text(json.dumps({"access_level": "secret"}))
    files, said = attachable(tmp_path, "restricted")
    assert files == [] and "not attached: they were made at access level secret, above this message's (restricted)" in said
    assert "not attached" in digest_html([], "2024-W23", said)
    files, said = attachable(tmp_path, "secret")
    assert [f.name for f in files] == ["map_offline.html", "field_pack.gpx", "field_pack.csv", "field_pack.xlsx"]
    assert "are attached" in said
    (tmp_path / "summary.json").write_text(json.dumps({"access_level": "public"}))
    assert attachable(tmp_path, "restricted")[0]  # a public map may go to anyone on the list
    (tmp_path / "summary.json").unlink()
    assert attachable(tmp_path, "secret")[0] == []  # nothing says what the files show: not sent


def test_a_secret_written_into_the_configuration_is_named_as_such():
    from sitewatch.config import parse_config
    from sitewatch.errors import ConfigError

    base = {"sites": "s.geojson", "db": "x.db", "out": "o", "start": "2024-03-04"}
    with pytest.raises(ConfigError, match="put the SMTP password in an environment variable"):
        parse_config({**base, "alerts": {"email": {"host": "h", "password": "hunter2"}}})
    with pytest.raises(ConfigError, match="put the webhook token in an environment variable"):
        parse_config({**base, "alerts": {"webhook": {"url": "https://g.example/x", "token": "t"}}})


def test_a_place_a_ranger_checked_is_not_paged_again(tmp_path):
    """Two digs alerted at medium; a ranger checks one.  A third clear look raises both to
    high: the unchecked one is escalated, the checked one pages nobody (the ranger has been)
    until a community report made after the check corroborates it."""
    from datetime import date

    from shapely.geometry import Point, box

    from change_detection import Detection
    from pipelines.alerts import due_alerts
    from pipelines.review import annotate
    from reports.ingest import Report
    from sites import Site
    from sitewatch.config import AlertConfig

    site = Site("S-9", "Mound field", box(106.9, 47.9, 106.91, 47.91), 50.0, "restricted", "Tuv")
    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([site])

    def det(did, x, confidence):
        t = pd.Timestamp("2011-06-10")
        return Detection(did, "S-9", Point(x, 47.905).buffer(0.0003), "EPSG:4326", t, t, t, 0.8, confidence,
                         2500.0, 3, "bare_soil_exposure", {"algorithm": "sw-seasonal-1"})

    store.upsert_detections([det("S-9-a", 106.902, "medium"), det("S-9-b", 106.908, "medium")], "run-1")
    now = datetime(2011, 6, 20, 9)
    store.record_alerts([(a.detection_id, a.confidence) for a in due_alerts(store, [site], AlertConfig(), now)],
                        "2011-06-20")
    annotate(store, "S-9-a", "confirmed looting", "Ranger Bold", visited_on="2011-06-15")
    store.upsert_detections([det("S-9-a", 106.902, "high"), det("S-9-b", 106.908, "high")], "run-2")
    assert [(a.detection_id, a.escalation) for a in due_alerts(store, [site], AlertConfig(), now)] == [("S-9-b", True)]
    store.add_reports([Report("rep-1", date(2011, 6, 18), 47.905, 106.902, "S-9", "Mound field", "new pits", "", "",
                              30.0, "test", 2)])
    assert {a.detection_id for a in due_alerts(store, [site], AlertConfig(), now)} == {"S-9-a", "S-9-b"}


def test_the_quick_look_of_the_secret_sites_leaves_no_site_out(config, tmp_path, monkeypatch):
    """The daily quick look runs the registry's secret sites only.  The rest of the registry is
    not "left out of the registry" (pipelines.weekly.left_out_sites): its summary lists no site
    as no longer watched, while a weekly run of part of a registry still does."""
    from dataclasses import replace
    from datetime import timezone
    from pathlib import Path

    from pipelines import schedule
    from pipelines.imagery.local_stac import LocalStacProvider
    from pipelines.weekly import run_period
    from sites import read_sites

    doc = json.loads(config.sites.read_text())
    for f in doc["features"]:
        f["properties"]["sensitivity"] = "secret" if f["properties"]["site_id"] == "S02-04" else "restricted"
    (tmp_path / "mixed.geojson").write_text(json.dumps(doc))
    cfg = replace(config, sites=tmp_path / "mixed.geojson")
    sites = read_sites(cfg.sites).sites
    store = Store(str(cfg.db))
    provider = LocalStacProvider(Path(str(cfg.stac)).parent)
    run_period(store, sites, provider, "2011-06-27", "2011-07-03", tmp_path / "week")  # both sites watched
    monkeypatch.setattr(schedule, "send_alerts", lambda *a: {})
    schedule.run_quick_look(cfg, now=datetime(2011, 7, 5, 3, 30, tzinfo=timezone.utc))
    quick = json.loads((Path(cfg.out) / "quick-look-2011-07-05" / "summary.json").read_text())
    assert quick["sites"] == 1
    assert (quick["sites_not_in_registry"], quick["sites_not_in_registry_not_named"]) == ([], 0)
    run_period(store, sites[:1], provider, "2011-07-04", "2011-07-10", tmp_path / "part")
    part = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert [g["site_id"] for g in part["sites_not_in_registry"]] == ["S02-05"]


def test_one_dig_is_paged_once_whatever_id_or_site_it_comes_under(tmp_path):
    """The registry re-coded and run before anyone renamed the site: MN-9 (S-9's outline) finds
    S-9's dig afresh, under a new id.  The police were paged for it as S-9's; they are not paged
    again, unless it rises.  A dig seen from two overlapping sites in the same week pages once.
    A dig on the same ground months later (a repeat) is paged."""
    from shapely.geometry import Point, box

    from change_detection import Detection
    from pipelines.alerts import due_alerts
    from sites import Site
    from sitewatch.config import AlertConfig

    old, new = (Site(k, "Mound field", box(106.9, 47.9, 106.91, 47.91), 50.0, "restricted", "Tuv")
                for k in ("S-9", "MN-9"))
    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    store.upsert_sites([old, new])

    def det(did, site, first, confidence, x=106.905):
        t = pd.Timestamp(first)
        return Detection(did, site, Point(x, 47.905).buffer(0.0003), "EPSG:4326", t, t, t, 0.8, confidence,
                         2500.0, 3, "bare_soil_exposure", {"algorithm": "sw-seasonal-1"})

    store.upsert_detections([det("S-9-a", "S-9", "2011-06-10", "medium")], "run-1")
    now = datetime(2011, 7, 20, 9)
    store.record_alerts([(a.detection_id, a.confidence) for a in due_alerts(store, [old], AlertConfig(), now)], "x")
    assert store.alerted() == {"S-9-a": "medium"}
    store.upsert_detections([det("MN-9-a", "MN-9", "2011-06-10", "medium"),  # the same dig, re-found
                             det("MN-9-b", "MN-9", "2011-06-26", "medium", 106.9052),  # re-dated a look later
                             det("MN-9-c", "MN-9", "2012-06-01", "medium"),  # dug again a year on
                             det("MN-9-d", "MN-9", "2011-07-01", "medium", 106.908)], "run-2")  # elsewhere
    assert [a.detection_id for a in due_alerts(store, [new], AlertConfig(), now)] == ["MN-9-d", "MN-9-c"]
    store.upsert_detections([det("MN-9-a", "MN-9", "2011-06-10", "high")], "run-3")
    assert [(a.detection_id, a.escalation) for a in due_alerts(store, [new], AlertConfig(), now)][0] == ("MN-9-a", True)
    # two overlapping sites see one new dig in the same week: one page
    store.upsert_detections([det("S-9-e", "S-9", "2013-05-01", "high", 106.9095),
                             det("MN-9-e", "MN-9", "2013-05-01", "high", 106.9096)], "run-4")
    due = [a.detection_id for a in due_alerts(store, [old, new], AlertConfig(), datetime(2013, 5, 6, 9))]
    assert len([d for d in due if d.endswith("-e")]) == 1


def test_a_site_added_to_the_registry_is_back_filled_alone(config, smtp_server, receiver):
    """S02-05 joins the registry in July.  It begins with a back-fill of its own over the weeks
    S02-04 had (one run, for it alone); the week due for both is then run for both.  Before, one
    site added made every week since `start` pending again and the whole registry was run over
    them, rewriting the folders of weeks the unit had already used."""
    from dataclasses import replace

    from sites import read_sites

    registry = read_sites(config.sites).sites
    one = Path(config.sites).parent / "one.geojson"
    doc = json.loads(Path(config.sites).read_text())
    one.write_text(json.dumps({**doc, "features": [f for f in doc["features"]
                                                   if f["properties"]["site_id"] == "S02-04"]}))
    first = run_catch_up(replace(config, sites=one), now=datetime(2011, 6, 27, 6, 0))
    assert [r["week"] for r in first] == ["2011-W23", "2011-W24", "2011-W25"]
    before = {p: p.read_bytes() for p in config.out.rglob("*") if p.is_file()}
    records = run_catch_up(config, now=datetime(2011, 7, 4, 6, 0))
    assert [(r["week"], r["backfill"], r.get("sites_only")) for r in records] == [
        ("backfill-2011-W23_2011-W25-added", True, 1), ("2011-W26", False, None)]
    assert {p: p.read_bytes() for p in before} == before  # the weeks already used are as they were
    added = json.loads((config.out / "backfill-2011-W23_2011-W25-added" / "summary.json").read_text())
    assert added["sites"] == 1 and added["period"] == {"start": "2011-06-06", "end": "2011-06-26"}
    assert added["sites_not_in_registry"] == []  # S02-04 is in the registry: it is just not in this run
    weeks = {(r["site_id"], r["week"]) for r in Store(config.db).site_weeks()}
    assert weeks == {(s.site_id, f"2011-W{w}") for s in registry for w in (23, 24, 25, 26)}
    assert json.loads((config.out / "2011-W26" / "summary.json").read_text())["sites"] == 2


def test_the_quick_look_leaves_the_week_due_for_the_weekly_run(config, tmp_path, monkeypatch):
    """The daily quick look of the secret sites watches a few days of a week: it records no
    week as run.  The Monday catch-up then runs each week for every site, with its folder and
    alerts, as if the quick look had not run (a registry of secret sites only would otherwise
    never get its weekly map, and a first Monday after a quick look would take the other sites
    for sites new to the registry)."""
    from dataclasses import replace
    from datetime import timezone

    from pipelines import schedule

    doc = json.loads(config.sites.read_text())
    for f in doc["features"]:
        f["properties"]["sensitivity"] = "secret" if f["properties"]["site_id"] == "S02-05" else "restricted"
    (tmp_path / "mixed.geojson").write_text(json.dumps(doc))
    cfg = replace(config, sites=tmp_path / "mixed.geojson")
    monkeypatch.setattr(schedule, "send_alerts", lambda *a: {})
    assert schedule.run_quick_look(cfg, now=datetime(2011, 6, 22, 3, 30, tzinfo=timezone.utc))["sites"] == 1
    store = Store(str(cfg.db))
    assert store.site_weeks() == [] and len(store.runs()) == 1
    records = run_catch_up(cfg, now=datetime(2011, 6, 27, 6, 0))
    assert [(r["week"], r["backfill"]) for r in records] == [(f"2011-W{w}", False) for w in (23, 24, 25)]
    assert {(r["site_id"], r["week"]) for r in store.site_weeks()} == {
        (k, f"2011-W{w}") for k in ("S02-04", "S02-05") for w in (23, 24, 25)}


def test_weeks_some_sites_lack_are_back_filled_for_them_alone(tmp_path):
    """Which runs a catch-up makes: the weeks nobody had, for everyone; the weeks the unit had,
    for the sites that lack them alone — a site added, a site whose archive failed one week, a
    registry re-coded to new ids — never the whole registry again."""
    from shapely.geometry import box

    from pipelines.schedule import catch_up_runs
    from sites import Site

    def site(k):
        return Site(k, k, box(106.9, 47.9, 106.91, 47.91))

    def ran(store, ids, weeks):
        store.record_site_weeks([{"site_id": k, "week": f"2011-W{w}", "run_id": "r", "status": "observed",
                                  "looks": 1, "clear_looks": 1} for k in ids for w in weeks])

    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    ran(store, ["A"], (23, 24, 25, 26))
    ran(store, ["B"], (23, 24, 26))  # its archive failed in W25
    runs = catch_up_runs(store, [site("A"), site("B"), site("C")], "2011-06-06", pd.Timestamp("2011-07-11"))
    assert [(label, backfill, [s.site_id for s in some]) for label, _, _, backfill, some in runs] == [
        ("backfill-2011-W23_2011-W24-added", True, ["C"]), ("backfill-2011-W25-gap", True, ["B", "C"]),
        ("backfill-2011-W26-added", True, ["C"]), ("2011-W27", False, ["A", "B", "C"])]
    recoded = Store(f"sqlite:///{tmp_path / 'b.db'}")
    ran(recoded, ["S1", "S2"], (23, 24, 25, 26))
    runs = catch_up_runs(recoded, [site("MN-1"), site("MN-2")], "2011-06-06", pd.Timestamp("2011-07-11"))
    assert [(label, [s.site_id for s in some]) for label, _, _, _, some in runs] == [
        ("backfill-2011-W23_2011-W26-added", ["MN-1", "MN-2"]), ("2011-W27", ["MN-1", "MN-2"])]
    first = catch_up_runs(Store(f"sqlite:///{tmp_path / 'c.db'}"), [site("A")], "2011-06-06",
                          pd.Timestamp("2011-07-11"))
    assert [(label, backfill) for label, _, _, backfill, _ in first] == [
        (f"2011-W{w}", False) for w in (23, 24, 25, 26, 27)]
