"""A before/after swipe page per detection: drag the slider to compare the two clear looks.

A single self-contained HTML file (no scripts from the network), linked from the map popup.
"""

from __future__ import annotations

import base64
from gettext import NullTranslations
from pathlib import Path

from .escape import file_name, text
from .language import ENGLISH_WORDS, phrase


def swipe_page(detection_id: str, site_name: str, chips, words: NullTranslations = ENGLISH_WORDS) -> str:
    def uri(png: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(png).decode()

    title, before, after = words.gettext("sitewatch before/after"), words.gettext("before"), words.gettext("after")
    sides = phrase(words, "Left: before ({before}) · right: after ({after}) · {colour}", before=chips.before_date,
                   after=chips.after_date, colour=words.gettext(chips.colour))
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{text(title)}</title>
<style>
body{{font:14px sans-serif;margin:1em}} .pair{{position:relative;width:480px;height:480px}}
.pair img{{position:absolute;top:0;left:0;width:480px;height:480px;image-rendering:pixelated}}
#after{{clip-path:inset(0 0 0 50%)}} input{{width:480px}}
</style></head><body>
<h3>{text(detection_id)} — {text(site_name)}</h3>
<p>{text(sides)}</p>
<div class="pair"><img id="before" alt="{text(before)}" src="{uri(chips.before_png)}"><img id="after" alt="{text(after)}"
 src="{uri(chips.after_png)}"></div>
<input id="swipe" type="range" min="0" max="100" value="50" aria-label="swipe">
<script>
document.getElementById('swipe').addEventListener('input', function (e) {{
  document.getElementById('after').style.clipPath = 'inset(0 0 0 ' + e.target.value + '%)';
}});
</script></body></html>"""


def write_swipe(folder: Path, detection_id: str, site_name: str, chips, words: NullTranslations = ENGLISH_WORDS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_name(detection_id)}.html"
    path.write_text(swipe_page(detection_id, site_name, chips, words), encoding="utf-8")
    return path
