"""The weekly map in a real browser (Debian's headless Chromium), with the network blocked.

`.ci/run` installs Chromium when it is missing.  Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from maps.offline import external_references
from pipelines.imagery.local_stac import LocalStacProvider
from pipelines.store import Store
from pipelines.weekly import run_period
from sites import Site, read_sites

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
HOSTILE = ("Mound <img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"> "
           "${document.body.setAttribute('data-pwned2','1')} {{ 7 * 6 }}")

OPEN_POPUP = """
<script>
window.addEventListener('load', function () {
  var opened = 'no';
  try {
    var m = null;
    for (var k in window) { try { if (window[k] instanceof L.Map) { m = window[k]; } } catch (e) {} }
    m.eachLayer(function (l) {
      if (opened === 'yes' || !(l instanceof L.CircleMarker) || !l.getPopup()) { return; }
      var c = l.getPopup().getContent();
      var t = (c && c.innerHTML !== undefined) ? c.innerHTML : String(c);
      if (/Detection/.test(t)) { l.openPopup(); opened = 'yes'; }
    });
  } catch (e) { opened = 'error ' + e; }
  document.body.setAttribute('data-popup-opened', opened);
});
</script>
"""
OPEN_SITE_POPUP = OPEN_POPUP.replace("/Detection/", "/Mound/").replace("L.CircleMarker", "L.Layer")


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing on CI: .ci/run should have installed it")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    return exe


def render(html_path: Path, shot: Path, tmp: Path) -> str:
    """Load the page with the network blocked; return the DOM after scripts ran; save a screenshot."""
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
             "--window-size=1200,800", "--virtual-time-budget=8000"]
    dom = subprocess.run([*flags, "--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=90)
    shot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*flags, f"--screenshot={shot}", html_path.as_uri()], capture_output=True, timeout=90)
    return dom.stdout


@pytest.fixture(scope="module")
def outputs(case_2011, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    sites = [s for s in read_sites(case_2011 / "sites.geojson").sites if s.site_id in ("S02-04", "S02-05")]
    sites = [Site(s.site_id, HOSTILE if s.site_id == "S02-05" else s.name, s.geometry, s.buffer_m, s.sensitivity,
                  s.region) for s in sites]
    run_period(Store(str(tmp / "sw.db")), sites, LocalStacProvider(case_2011 / "catalog"), "2011-03-01",
               "2011-09-30", tmp / "out")
    return tmp, tmp / "out"


def test_offline_map_renders_layers_and_a_popup_with_chips(outputs):
    tmp, out = outputs
    html = (out / "map_offline.html").read_text()
    assert external_references(html) == []  # nothing to fetch
    page = tmp / "page.html"
    page.write_text(html.replace("</body>", OPEN_POPUP + "</body>"))
    dom = render(page, ARTIFACTS / "map_offline.png", tmp)
    assert "leaflet-container" in dom, "Leaflet did not start with the network blocked"
    assert 'data-popup-opened="yes"' in dom
    popup = re.search(r'class="leaflet-popup-content"[^>]*>(.*?)</table>(.*?)</div>', dom, re.S)
    assert popup and "data:image/png;base64" in popup.group(2), "the popup must carry before/after chips"
    labels = re.findall(r'<span>\s*(.*?)\s*</span>', dom[dom.find("leaflet-control-layers-overlays"):])
    assert any("Sites" in x for x in labels) and any("New detections" in x or "Older" in x for x in labels)
    assert any("Site imagery" in x for x in labels)
    assert (ARTIFACTS / "map_offline.png").stat().st_size > 10_000


def test_hostile_site_name_stays_text_in_the_browser(outputs):
    tmp, out = outputs
    page = tmp / "online.html"
    page.write_text((out / "map_offline.html").read_text().replace("</body>", OPEN_POPUP + "</body>"))
    dom = render(page, ARTIFACTS / "map_hostile.png", tmp)
    assert "leaflet-container" in dom
    assert 'data-pwned="1"' not in dom and 'data-pwned2="1"' not in dom
    # the hostile site's own popup, opened: its name must show as the text it is
    site_page = tmp / "site.html"
    site_page.write_text(page.read_text().replace(OPEN_POPUP, OPEN_SITE_POPUP))
    dom = render(site_page, ARTIFACTS / "map_hostile_popup.png", tmp)
    assert 'data-popup-opened="yes"' in dom and 'data-pwned="1"' not in dom and 'data-pwned2="1"' not in dom
    popup = re.search(r'class="leaflet-popup-content"[^>]*>(.*?)</div>', dom, re.S).group(1)
    assert "Mound &lt;img src=x" in popup and "{{ 7 * 6 }}" in popup  # the site's popup shows its name as text
