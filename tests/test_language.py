"""The rangers' papers in their language: the catalogs are complete, a sheet reads in Mongolian,
and a unit's own catalog can neither break a run nor put live HTML on a sheet."""

from __future__ import annotations

import json
import re
import string
from dataclasses import replace
from pathlib import Path

import gpxpy
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from shapely.geometry import Point

from maps.field_pack import Waypoint, write_field_pack
from maps.language import (
    ENGLISH_WORDS, KIND_WORDS, LOCALE_DIR, LanguageError, check_language, phrase, shipped, words_for,
)
from maps.sheets import detection_sheet
from maps.weekly_map import MapDetection
from conftest import page_text

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "gettext": None, "N_": None, "phrase": (2,)}


def _marked() -> set[str]:
    """Every message the code marks for translation, as ``pybabel extract`` would find it."""
    found = set()
    for package in ("maps", "pipelines", "reports"):
        for _file, _line, message, _comments, _context in extract_from_dir(
                ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS):
            found.add(message)
    return found


def _fields(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name is not None}


def _det(**kw):
    d = MapDetection("MN-0042-20240601-abc123", "MN-0042", Point(106.905, 47.905).buffer(0.0005), "2024-06-01",
                     "2024-06-20", "2024-06-09", 0.8, "high", 2500.0, "bare_soil_exposure", "open", True)
    return replace(d, **kw)


def test_every_shipped_catalog_translates_exactly_what_the_code_marks():
    """A label added to a sheet without its translation, or a translation left behind when a label
    changes, fails here; so does a translation that drops or renames a ``{field}``."""
    marked = _marked()
    assert {"Field check — {id}", "First seen", "check for fresh digging ({kind})", *KIND_WORDS.values()} <= marked
    assert "mn" in shipped()
    from pipelines.review import LABELS
    assert set(LABELS) <= marked  # every verdict a page may show
    for po in sorted(LOCALE_DIR.glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh)
        entries = {m.id: m for m in catalog if m.id}
        assert set(entries) - marked == set(), f"{po.name}: translations of messages the code no longer has"
        assert marked - set(entries) == set(), f"{po.name}: messages without a translation"
        for m in entries.values():
            assert m.string and not m.fuzzy, f"{po.name}: {m.id!r} is untranslated or fuzzy"
            assert _fields(m.string) == _fields(m.id), f"{po.name}: {m.id!r} changes its fields"
            assert m.string != m.id or m.id in {"Lat, lon (WGS 84)"}, f"{po.name}: {m.id!r} left in English"


def test_a_field_sheet_in_mongolian_keeps_what_a_program_or_a_gps_reads():
    det = _det(disturbed_before="2022-06-01")
    mn = detection_sheet(det, "Хар бух балгас", 47.905123, 106.905456, "48TUT1234567890", "", "restricted",
                         verdict_words={"Юу ч олдсонгүй": "nothing found"}, words=words_for("mn"))
    en = detection_sheet(det, "Хар бух балгас", 47.905123, 106.905456, "48TUT1234567890", "", "restricted",
                         verdict_words={"Юу ч олдсонгүй": "nothing found"})
    assert "<html lang='mn'>" in mn and "<html lang='en'>" in en
    for label in ("Хээрийн шалгалт — MN-0042-20240601-abc123", "Анх илэрсэн", "Дүгнэлт:", "хөрс ил гарсан",
                  "өндөр", "газар өмнө нь хөндөгдсөн (анх илэрсэн 2022-06-01)", "Нууцлалын түвшин: хязгаарлагдмал."):
        assert label in mn
    for english in ("Field check", "First seen", "Verdict:", "bare soil exposure", "Do not share"):
        assert english in en and english not in mn
    # ids, coordinates, MGRS, dates, the verdicts the import reads and the command stay as they are
    for kept in ("47.905123, 106.905456", "48TUT1234567890", "2024-06-20", "NN-abc123",
                 "☐ Юу ч олдсонгүй / nothing found", "☐ confirmed looting", "<code>sitewatch verdicts import</code>", "field_pack.csv"):
        assert kept in mn and kept in en


def test_gpx_and_kml_descriptions_in_mongolian(tmp_path):
    wp = Waypoint("MN-0042-20240601-abc123", "Хар бух", 47.9, 106.9, "2024-06-01", "medium", 900.0, "шалгах")
    paths = write_field_pack([wp], tmp_path, access="restricted", words=words_for("mn"))
    gpx = gpxpy.parse(paths["gpx"].read_text(encoding="utf-8"))
    assert gpx.description == "нууцлалын түвшин: хязгаарлагдмал" and gpx.routes[0].name == "field_pack эргүүл"
    assert "анх илэрсэн 2024-06-01; дунд;" in gpx.waypoints[0].description
    assert gpx.waypoints[0].name == "01-abc123" and gpx.waypoints[0].comment == "MN-0042-20240601-abc123"
    assert "анх илэрсэн 2024-06-01, дунд, MGRS" in paths["kml"].read_text(encoding="utf-8")
    header = paths["csv"].read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("order,waypoint,detection_id,") and header.endswith("verdict,checked_on,checked_by,field_note")


def test_a_units_catalog_cannot_break_a_run_or_put_html_on_a_sheet(tmp_path):
    """A unit fixes wording in its own copy of the catalog.  Markup in it prints as text, a field
    it misspells gives that message in English, a message it leaves out stays English, and a
    fuzzy (unchecked) entry is not used."""
    po = tmp_path / "unit.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: mn\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "First seen"\nmsgstr "<script>alert(1)</script>Анх"\n\n'
        'msgid "Field check — {id}"\nmsgstr "Шалгалт — {dugaar}"\n\n'
        '#, fuzzy\nmsgid "Last seen"\nmsgstr "Сүүлд (?)"\n', encoding="utf-8")
    words = words_for(str(po))
    sheet = detection_sheet(_det(), "S", 47.9, 106.9, "48TUT", "", "restricted", words=words)
    assert "<script>" not in sheet and "&lt;script&gt;alert(1)&lt;/script&gt;Анх" in sheet
    assert "Field check — MN-0042-20240601-abc123" in sheet  # its field misspelt: English
    assert "Last seen" in sheet and "Сүүлд (?)" not in sheet
    assert "Verdict:" in sheet  # not in the unit's catalog
    assert phrase(ENGLISH_WORDS, "first seen {date}", date="x") == "first seen x"


def test_an_unknown_language_or_an_unreadable_catalog_is_refused_with_the_reason(tmp_path):
    with pytest.raises(LanguageError, match=re.escape("no catalog for language 'xx': sitewatch ships en, mn")):
        check_language("xx")
    with pytest.raises(LanguageError, match="no catalog at"):
        check_language(str(tmp_path / "missing.po"))
    bad = tmp_path / "bad.po"
    bad.write_bytes(b'msgid "First seen"\nmsgstr "\xff\xfe broken\n')
    with pytest.raises(LanguageError, match="cannot read the catalog"):
        check_language(str(bad))
    assert check_language(None) == "en" and check_language("mn") == "mn"


def test_the_language_is_checked_where_it_is_given(tmp_path, capsys):
    from sitewatch.cli import main
    from sitewatch.config import parse_config
    from sitewatch.errors import ConfigError

    with pytest.raises(SystemExit) as exc:
        main(["run", "--sites", "x.geojson", "--stac", "c.json", "--start", "2024-06-03", "--end", "2024-06-09",
              "--language", "klingon"])
    assert exc.value.code == 2 and "no catalog for language 'klingon'" in capsys.readouterr().err
    raw = {"sites": "s.geojson", "db": "sw.db", "out": "out", "start": "2024-03-04"}
    assert parse_config({**raw, "language": "mn"}).language == "mn" and parse_config(raw).language == "en"
    (tmp_path / "unit.po").write_text('msgid ""\nmsgstr "Language: mn\\n"\n', encoding="utf-8")
    assert parse_config({**raw, "language": "unit.po"}, base=tmp_path).language == str(tmp_path / "unit.po")
    with pytest.raises(ConfigError, match="language: no catalog for language 'fr'"):
        parse_config({**raw, "language": "fr"})


def test_the_weekly_map_in_mongolian_escapes_and_generalises_as_in_english():
    from shapely.geometry import box

    from maps.weekly_map import weekly_map
    from sites import Site

    hostile = "<script>alert('x')</script>"
    sites = [Site("MN-0042", hostile, box(106.9, 47.9, 106.91, 47.91), 50.0, "restricted", "Töv"),
             Site("MN-0099", "Нууц", box(107.2, 47.7, 107.21, 47.71), 0.0, "secret", "Töv")]
    dets = [_det(n_looks=1), _det(detection_id="MN-0099-20240601-def456", site_id="MN-0099",
                                  geometry=Point(107.205, 47.705).buffer(0.0005))]
    html = page_text(weekly_map(sites, dets, "2024-W23", {"MN-0042": "all looks cloudy"}, "restricted",
                                words=words_for("mn")).get_root().render())
    for label in ("Илрүүлэлтийн итгэлийн түвшин", "Шинэ илрүүлэлтүүд (2024-W23 долоо хоног)", "Анх илэрсэн",
                  "хөрс ил гарсан", "(урьдчилсан: хоёр дахь зургийг хүлээж байна)", "ажиглагдаагүй (all looks cloudy)",
                  "Нууц (байршлыг ерөнхийлсөн)", "нууцалсан"):
        assert label in html or json.dumps(label)[1:-1] in html, label  # layer names are in JSON
    assert "<script>alert" not in html and "Detection confidence" not in html
    assert "107.205" not in html  # the secret site's dig: generalised in any language


def test_the_summary_page_in_mongolian_keeps_its_data_and_escapes_a_catalog(tmp_path):
    from pipelines.weekly import summary_html

    summary = {"week": "2024-W23", "period": {"start": "2024-06-03", "end": "2024-06-09"}, "access_level": "restricted",
               "sites_observed_this_week": 3, "sites": 5, "detections_shown": 1, "by_confidence": {"high": 1},
               "detections_new_this_week": 1, "detections_open": 1, "detections_to_visit": 1, "by_region": {"Töv": 1},
               "ranked": [{"detection_id": "MN-0042-20240601-abc123", "site_id": "MN-0042", "confidence": "high"}],
               "not_observed_this_week": [], "not_observed_not_named": 2, "blind_days": 32, "blind_sites": []}
    page = summary_html(summary, words_for("mn"))
    for said in ("<h1>sitewatch — 2024-W23 долоо хоног</h1>", "нууцлалын түвшин <b>хязгаарлагдмал</b>",
                 "1 илрүүлэлт харуулсан (өндөр: 1)", "<th>Илрүүлэлтийн код</th>", "<td>MN-0042-20240601-abc123</td>",
                 "мөн энэ гаралтын нууцлалын түвшнээс дээгүүр 2 дурсгалт газар", "<h2>Бүс нутгаар</h2><p>Töv: 1</p>"):
        assert said in page, said
    assert "Detections by priority" not in page and "detection_id" not in page.replace("MN-0042", "")
    po = tmp_path / "unit.po"
    po.write_text('msgid ""\nmsgstr "Language: mn\\n"\n\nmsgid "Per region"\nmsgstr "<script>alert(1)</script>"\n',
                  encoding="utf-8")
    page = summary_html(summary, words_for(str(po)))
    assert "<script>" not in page and "&lt;script&gt;" in page and "Detections by priority" in page


def test_what_sitewatch_says_is_english_text_that_a_page_says_in_its_readers_language(tmp_path):
    """A :class:`Said` is the English sentence (JSON, CSV, logs and comparisons see just that) and
    can be said again in a reader's language; the data inside it (a name, a provider's error) is
    never translated, and a unit catalog's broken field gives the English sentence."""
    import pickle

    from maps.language import Said, say

    cloudy = Said("{reason}; {n} acquisition(s) could not be read ({items})", reason=Said("all looks cloudy"), n=1,
                  items="LT05_<b>x</b>")
    assert cloudy == "all looks cloudy; 1 acquisition(s) could not be read (LT05_<b>x</b>)"
    assert json.loads(json.dumps({"reason": cloudy}))["reason"] == cloudy
    again = pickle.loads(pickle.dumps(cloudy))
    assert type(again) is Said and again.fields["reason"].message == "all looks cloudy"
    mn = words_for("mn")
    assert say(mn, again) == "бүх зураг үүлтэй; 1 зураг авалтыг уншиж чадсангүй (LT05_<b>x</b>)"
    assert say(mn, "a provider's error") == "a provider's error" and say(mn, 3) == 3
    po = tmp_path / "unit.po"
    po.write_text('msgid ""\nmsgstr "Language: mn\\n"\n\nmsgid "all looks cloudy"\nmsgstr "үүлтэй"\n\n'
                  'msgid "{reason}; {n} acquisition(s) could not be read ({items})"\nmsgstr "{reason}; {count} алга"\n',
                  encoding="utf-8")
    assert say(words_for(str(po)), cloudy) == "үүлтэй; 1 acquisition(s) could not be read (LT05_<b>x</b>)"


def test_a_site_not_observed_says_why_in_the_maps_language_and_its_data_escaped():
    from shapely.geometry import box

    from maps.language import Said
    from maps.weekly_map import weekly_map
    from sites import Site

    sites = [Site("MN-0042", "Хар бух", box(106.9, 47.9, 106.91, 47.91), 50.0, "restricted", "Töv")]
    why = Said("{reason}; {n} acquisition(s) could not be read ({items})", reason=Said("all looks cloudy"), n=1,
               items="<img src=x onerror=alert(1)>")
    html = page_text(weekly_map(sites, [], "2024-W23", {"MN-0042": why}, "restricted",
                                last_seen={"MN-0042": Said("{date} ({ago})", date="2024-06-01",
                                                           ago=Said("{days} days before the period's end", days=8))},
                                words=words_for("mn")).get_root().render())
    for said in ("бүх зураг үүлтэй; 1 зураг авалтыг уншиж чадсангүй (&lt;img src=x onerror=alert(1)&gt;)",
                 "2024-06-01 (хугацааны төгсгөлөөс 8 хоногийн өмнө)", "Нууцлалын ангилал", "хязгаарлагдмал"):
        assert said in html or json.dumps(said)[1:-1] in html, said
    assert "<img src=x" not in html and "all looks cloudy" not in html
