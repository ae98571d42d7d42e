"""The police unit's weekly change map (folium).

Layers: site outlines (styled by sensitivity), this week's detections and older open detections
(coloured by confidence), another deployment's open detections (the radar watch beside the
optical one), sites not observed this week.  Every data string goes through
:func:`maps.escape.text`; no folium GeoJson popup/tooltip helper is used, because those put raw
property values into ``innerHTML``.

Each layer's shapes are one GeoJSON layer (:class:`Shapes`): every feature carries its own style
and its tooltip and popup, escaped here, which Leaflet binds as it adds the feature.  A national
map of thousands of sites is then a dozen layers, not thousands of folium elements, each with
its own script that branca compiles again as a template.
"""

from __future__ import annotations

from dataclasses import dataclass
from gettext import NullTranslations
from pathlib import Path

import folium
import shapely
from folium.plugins import Fullscreen, MarkerCluster, MeasureControl
from folium.utilities import JsCode
from shapely.geometry import Point, mapping
from shapely.geometry.base import BaseGeometry

from sites import Site

from .access import generalise, may_see_exact, scrub_location
from .escape import table, text
from .field_pack import to_mgrs
from .language import (
    ENGLISH_WORDS, access_words, confidence_words, kind_words, label_words, outcome_words, phrase, say,
    status_words,
)

CONFIDENCE_COLOURS = {"high": "#d7191c", "medium": "#fdae61", "low": "#ffd92f"}
SENSITIVITY_STYLE = {
    "public": {"color": "#2b83ba", "dashArray": None},
    "restricted": {"color": "#5e3c99", "dashArray": "6 4"},
    "secret": {"color": "#000000", "dashArray": "2 4"},
}


@dataclass(frozen=True)
class MapReport:
    """A community report as the map shows it: never with its reporter."""

    report_id: str
    lat: float
    lon: float
    observed_on: str
    text: str
    outcome: str
    site_id: str | None
    detail: str
    """Why the reconciliation came out so (:class:`maps.language.Said`, or plain English)."""
    action: str = ""
    """What to do about it, e.g. send a ranger (:data:`reports.reconcile.ACTIONS`)."""


VERDICT_COLOURS = {"looting": "#67001f", "bulldozing": "#67001f", "construction": "#b35806",
                   "agriculture": "#4d9221", "natural": "#4d9221", "cloud/shadow artefact": "#999999",
                   "no change": "#999999", "unsure": "#2166ac"}
REPORT_COLOURS = {"corroborated": "#1a9641", "report_without_detection": "#2c7bb6", "report_outside_sites": "#7b3294"}


@dataclass(frozen=True)
class MapDetection:
    detection_id: str
    site_id: str
    geometry: BaseGeometry
    """lon/lat"""
    first_seen: str
    last_seen: str
    confirmed_on: str
    score: float
    confidence: str
    area_m2: float
    kind_hint: str
    status: str
    new_this_week: bool
    n_looks: int = 0
    """Clear looks showing the change; 1 = provisional, awaiting a second look."""
    disturbed_before: str = ""
    """First date of an earlier disturbance on the same ground (a repeat dig), if any."""
    evidence: str = ""
    """What the detection rests on: each feature's median change against its seasonal baseline and
    how far from normal the region stands (:func:`pipelines.store.evidence_summary`)."""
    field_check: str = ""
    """A ranger's last check of the place, e.g. ``2024-06-12: looting``; empty where nobody has
    been.  Shown only to readers who may see the site exactly (when the rangers go is patrol
    knowledge)."""
    same_dig_as: str = ""
    """Another site's detection of the same dig whose waypoint in the field pack stands for this
    one (two sites see its ground), if any."""

    def repeat_rows(self, words: NullTranslations = ENGLISH_WORDS) -> list[tuple[str, str]]:
        """The popup / field-sheet row saying the ground was dug before, if it was."""
        if not self.disturbed_before:
            return []
        return [(words.gettext("Repeat"),
                 phrase(words, "ground disturbed before (first seen {date})", date=self.disturbed_before))]


DRAWN_DEGREES = 1e-6
"""Outlines are drawn to a millionth of a degree (about 0.1 m): a site or a dig needs no more,
and the sixteen digits a reprojected outline carried made up most of map.html."""


def _drawn(geom: BaseGeometry) -> dict:
    fine = shapely.set_precision(geom, DRAWN_DEGREES)
    return mapping(fine if not fine.is_empty else geom)


def _at(point) -> list[float]:
    """A marker's [lat, lon], drawn as outlines are."""
    return [round(point.y, 6), round(point.x, 6)]


def _popup(rows: list[tuple[str, object]], extra_html: str = "") -> folium.Popup:
    return folium.Popup(table(rows) + extra_html, max_width=380)


BIND = JsCode("""function (feature, layer) {
    var p = feature.properties;
    if (p.popup) { layer.bindPopup(p.popup, {maxWidth: 380}); }
    if (p.tip) { layer.bindTooltip(p.tip, {sticky: true}); }
}""")


class Shapes:
    """Outlines and circle markers drawn as one ``folium.GeoJson``: each feature with its style, its
    tooltip (escaped text) and its popup (escaped rows, and chips made by sitewatch)."""

    def __init__(self):
        self.features: list[dict] = []

    def outline(self, geom: BaseGeometry, style: dict, tip: str = "", popup: str = "") -> None:
        self._add(_drawn(geom), style, tip, popup)

    def circle(self, point, style: dict, tip: str = "", popup: str = "") -> None:
        """A circle marker; filled in its own colour (the marker it is made from has a blue fill)."""
        lat, lon = _at(point)
        self._add({"type": "Point", "coordinates": [lon, lat]}, {"fillColor": style["color"], **style}, tip, popup)

    def _add(self, geometry: dict, style: dict, tip: str, popup: str) -> None:
        props = {"style": {k: v for k, v in style.items() if v is not None}}
        if tip:
            props["tip"] = tip
        if popup:
            props["popup"] = popup
        self.features.append({"type": "Feature", "geometry": geometry, "properties": props})

    def add_to(self, parent) -> None:
        if self.features:
            folium.GeoJson({"type": "FeatureCollection", "features": self.features}, on_each_feature=BIND,
                           marker=folium.CircleMarker()).add_to(parent)


def _line(colour: str, dash: str | None = None, fill: float = 0.1) -> dict:
    return {"color": colour, "weight": 2, "fillOpacity": fill, "dashArray": dash}


def weekly_map(
    sites: list[Site],
    detections: list[MapDetection],
    week_label: str,
    unobserved: dict[str, str] | None = None,
    access: str = "restricted",
    chips: dict[str, str] | None = None,
    reports: list[MapReport] | None = None,
    overviews: list | None = None,
    offline: bool = False,
    verdicts: list[tuple[MapDetection, str, str]] | None = None,
    last_seen: dict[str, str] | None = None,
    companions: dict[str, list[MapDetection]] | None = None,
    words: NullTranslations = ENGLISH_WORDS,
) -> folium.Map:
    """Build the map; ``chips`` maps detection id → HTML ``<img>`` snippet made by sitewatch;
    ``last_seen`` says per site when it last had a clear look (site popups, not-observed markers);
    ``companions`` are other deployments' open detections (label → detections: the radar watch
    on the optical map), each a layer of its own, at this map's access level.

    ``overviews`` (:class:`maps.chips.Overview`) are the sites' own latest clear looks, added as
    image layers; with ``offline=True`` they are the only base layer (no web tiles, no CDN plugins).
    ``words``: the language of the map's labels (:mod:`maps.language`), and of what sitewatch says
    about the data (why a site was not observed, the evidence, how a report was reconciled: each a
    :class:`maps.language.Said`); what the data is (a site's name, a report's text, a provider's
    error) is shown as it is.
    """
    _ = words.gettext
    unobserved = unobserved or {}
    last_seen = last_seen or {}
    chips = chips or {}
    by_id = {s.site_id: s for s in sites}
    # Centre on what this reader may see: never on a secret site's exact position.
    shown = [s.geometry if may_see_exact(s.sensitivity, access) else generalise(s.geometry) for s in sites]
    centre = shown[0].centroid if shown else None
    m = folium.Map(location=[centre.y, centre.x] if centre else [0, 0], zoom_start=14, tiles=None, control_scale=True)
    m.options["maxZoom"] = 19  # MarkerCluster needs it when there is no tile layer
    if not offline:
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap", max_zoom=19).add_to(m)
    for ov in overviews or []:
        lon0, lat0, lon1, lat1 = ov.bounds
        folium.raster_layers.ImageOverlay(ov.data_uri(), bounds=[[lat0, lon0], [lat1, lon1]], opacity=1.0 if offline else 0.85,
                                          name=text(phrase(words, "Site imagery {site} ({date})", site=ov.site_id,
                                                           date=ov.date)), interactive=False,
                                          show=True).add_to(m)
    title = phrase(words, "sitewatch — week {week} — access: {access}", week=week_label,
                   access=access_words(words, access))
    m.get_root().html.add_child(folium.Element(
        f"<div id='sitewatch-title' style='position:fixed;top:8px;left:50px;z-index:1000;background:white;"
        f"padding:4px 8px;border:1px solid #999;font:14px sans-serif'>{text(title)}</div>"))

    site_layer = folium.FeatureGroup(name=text(_("Sites")), show=True)
    unobs_layer = folium.FeatureGroup(name=text(_("Not observed this week")), show=True)
    site_shapes, unobs_shapes = Shapes(), Shapes()
    for s in sites:
        style = SENSITIVITY_STYLE[s.sensitivity]
        rows = [(_("Site"), s.name), (_("Site id"), s.site_id), (_("Sensitivity"), access_words(words, s.sensitivity)),
                (_("Buffer"), f"{s.buffer_m:.0f} m")]
        if s.site_id in unobserved:
            rows.append((_("This week"), say(words, unobserved[s.site_id])))
        if s.site_id in last_seen:
            rows.append((_("Last clear look"), say(words, last_seen[s.site_id])))
        if may_see_exact(s.sensitivity, access):
            if s.buffer_m > 0:
                from sites.geo import buffer_m

                site_shapes.outline(buffer_m(s.geometry, s.buffer_m),
                                    {"color": style["color"], "weight": 1, "fillOpacity": 0.0, "dashArray": "2 6"},
                                    tip=text(phrase(words, "{site}: {metres} m buffer", site=s.name,
                                                    metres=round(s.buffer_m))))
            site_shapes.outline(s.geometry, _line(style["color"], style["dashArray"]), tip=text(s.name),
                                popup=table(rows))
        else:
            site_shapes.circle(generalise(s.geometry), {"radius": 8, "color": style["color"], "fill": False},
                               tip=text(phrase(words, "{site} (location generalised)", site=s.name)),
                               popup=table(rows + [(_("Location"), _("generalised to a 0.1° cell"))]))
        if s.site_id in unobserved:
            c = s.geometry.centroid if may_see_exact(s.sensitivity, access) else generalise(s.geometry)
            unobs_shapes.circle(c, {"radius": 14, "color": "#888888", "dashArray": "4 4", "fill": False},
                                tip=text(phrase(words, "{site}: not observed ({why})", site=s.name,
                                                why=say(words, unobserved[s.site_id]))
                                         + (phrase(words, "; last clear look {when}",
                                                   when=say(words, last_seen[s.site_id]))
                                            if s.site_id in last_seen else "")))
    site_shapes.add_to(site_layer)
    unobs_shapes.add_to(unobs_layer)
    site_layer.add_to(m)

    layers = {
        True: folium.FeatureGroup(name=text(phrase(words, "New detections (week {week})", week=week_label)), show=True),
        False: folium.FeatureGroup(name=text(_("Older open detections")), show=True),
    }
    clusters = {k: MarkerCluster(disable_clustering_at_zoom=13).add_to(v) for k, v in layers.items()}
    outlines, markers = {k: Shapes() for k in layers}, {k: Shapes() for k in layers}
    for d in detections:
        site = by_id.get(d.site_id)
        exact = site is not None and may_see_exact(site.sensitivity, access)
        c = d.geometry.centroid if exact else generalise(d.geometry)
        colour = CONFIDENCE_COLOURS.get(d.confidence, "#999999")
        popup = table(_detection_rows(d, site, exact, c, words)) + (chips.get(d.detection_id, "") if exact else "")
        tip = text(f"{d.detection_id} · {confidence_words(words, d.confidence)} · "
                   + phrase(words, "first seen {date}", date=d.first_seen))
        if exact:
            outlines[d.new_this_week].outline(d.geometry, _line(colour, None, 0.45), tip, popup)
        markers[d.new_this_week].circle(c, {"radius": 6, "color": colour, "fill": True, "fillOpacity": 0.9},
                                        tip, popup)
    for k, layer in layers.items():
        outlines[k].add_to(layer)
        markers[k].add_to(clusters[k])
        layer.add_to(m)
    for label, others in (companions or {}).items():
        # another deployment's open detections (radar beside optical): outlines dashed, markers hollow
        c_layer = folium.FeatureGroup(name=text(phrase(words, "{label}: open detections", label=label)), show=True)
        shapes = Shapes()
        for d in others:
            site = by_id.get(d.site_id)
            exact = site is not None and may_see_exact(site.sensitivity, access)
            c = d.geometry.centroid if exact else generalise(d.geometry)
            colour = CONFIDENCE_COLOURS.get(d.confidence, "#999999")
            popup = table([(_("Source"), label), *_detection_rows(d, site, exact, c, words)])
            tip = text(f"{label}: {d.detection_id} · {confidence_words(words, d.confidence)} · "
                       + phrase(words, "first seen {date}", date=d.first_seen))
            if exact:
                shapes.outline(d.geometry, _line(colour, "5 5", 0.15), tip, popup)
            shapes.circle(c, {"radius": 7, "color": colour, "weight": 3, "fill": False, "dashArray": "3 3"},
                          tip, popup)
        shapes.add_to(c_layer)
        c_layer.add_to(m)
    unobs_layer.add_to(m)
    if verdicts:
        v_layer = folium.FeatureGroup(name=text(_("Reviews and field verdicts")), show=True)
        for d, label, author in verdicts:
            site = by_id.get(d.site_id)
            if site is None or not may_see_exact(site.sensitivity, access):
                continue
            c = d.geometry.representative_point()
            colour = VERDICT_COLOURS.get(label, "#666666")
            folium.RegularPolygonMarker(
                _at(c), number_of_sides=4, radius=7, color=colour, fill=True, fill_opacity=0.9,
                popup=_popup([(_("Detection"), d.detection_id), (_("Verdict"), label_words(words, label)),
                              (_("By"), author),
                              (_("Status"), status_words(words, d.status))]),
                tooltip=folium.Tooltip(text(f"{d.detection_id}: {label_words(words, label)}"))).add_to(v_layer)
        v_layer.add_to(m)
    if reports:
        rep_layer = folium.FeatureGroup(name=text(_("Community reports (reconciled)")), show=True)
        for r in reports:
            site = by_id.get(r.site_id) if r.site_id else None
            exact = access != "public" and (site is None or may_see_exact(site.sensitivity, access))
            p = (r.lat, r.lon) if exact else (generalise(Point(r.lon, r.lat)).y, generalise(Point(r.lon, r.lat)).x)
            rows = [(_("Report"), r.report_id), (_("Observed"), r.observed_on),
                    (_("Outcome"), outcome_words(words, r.outcome)), (_("Why"), say(words, r.detail)),
                    *([(_("Action"), say(words, r.action))] if r.action else []),
                    (_("Text"), r.text if exact else scrub_location(r.text))]
            folium.RegularPolygonMarker(list(p), number_of_sides=3, radius=8, color=REPORT_COLOURS.get(r.outcome, "#555"),
                                        fill=True, fill_opacity=0.8, popup=_popup(rows),
                                        tooltip=folium.Tooltip(text(phrase(words, "report {date}: {outcome}",
                                                                           date=r.observed_on,
                                                                           outcome=outcome_words(words, r.outcome))))
                                        ).add_to(rep_layer)
        rep_layer.add_to(m)

    legend = "".join(
        f"<div><span style='display:inline-block;width:12px;height:12px;background:{c};margin-right:4px'></span>"
        f"{text(confidence_words(words, k))}</div>"
        for k, c in CONFIDENCE_COLOURS.items()
    )
    heading, ring = _("Detection confidence"), _("dashed grey ring: site not observed this week")
    m.get_root().html.add_child(folium.Element(
        "<div id='sitewatch-legend' style='position:fixed;bottom:24px;right:10px;z-index:1000;background:white;"
        f"padding:6px 8px;border:1px solid #999;font:12px sans-serif'><b>{text(heading)}</b>{legend}"
        f"<div style='margin-top:4px'>{text(ring)}</div></div>"))
    if not offline:  # these plugins come from CDNs only
        Fullscreen().add_to(m)
        MeasureControl(primary_length_unit="meters", primary_area_unit="sqmeters").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    exact = [s.geometry for s in sites if may_see_exact(s.sensitivity, access)]
    if shown:
        bounds = [g.bounds for g in (exact or shown)]  # frame the sites the reader may see exactly
        minx = min(b[0] for b in bounds); miny = min(b[1] for b in bounds)
        maxx = max(b[2] for b in bounds); maxy = max(b[3] for b in bounds)
        m.fit_bounds([_at(Point(minx, miny)), _at(Point(maxx, maxy))])
    return m


def _detection_rows(d: MapDetection, site: Site | None, exact: bool, c: Point,
                    words: NullTranslations = ENGLISH_WORDS) -> list[tuple[str, object]]:
    """A detection's popup rows; its position generalised and MGRS withheld where not ``exact``."""
    _ = words.gettext
    withheld = _("withheld")
    return [
        (_("Detection"), d.detection_id), (_("Site"), site.name if site else d.site_id),
        # where this reader may not see the site, when the satellites last saw the change is not said:
        # on an open detection under weeks of cloud it is when the site was last seen at all
        (_("First seen"), d.first_seen), (_("Last seen"), d.last_seen if exact else withheld),
        (_("Confirmed"), d.confirmed_on), (_("Area"), f"{d.area_m2:.0f} m²"), (_("Score"), f"{d.score:.2f}"),
        (_("Confidence"), confidence_words(words, d.confidence)),
        (_("Type hint"), kind_words(words, d.kind_hint)),
        (_("Status"), status_words(words, d.status)),
        *([(_("Clear looks"), f"{d.n_looks}" + (_(" (provisional: awaiting a second look)") if d.n_looks == 1 else ""))]
          if d.n_looks else []),
        *([(_("Evidence"), say(words, d.evidence))] if d.evidence else []),
        *d.repeat_rows(words),
        *([(_("Checked in the field"), say(words, d.field_check))] if d.field_check and exact else []),
        *([(_("Same dig as"), phrase(words, "{id} (seen from both sites; its waypoint in the field pack stands for "
                                           "both)", id=d.same_dig_as))]
          if d.same_dig_as and exact else []),
        (_("Lat, lon"), f"{c.y:.6f}, {c.x:.6f}" + ("" if exact else _(" (generalised)"))),
        ("MGRS", to_mgrs(c.y, c.x) if exact else withheld),
    ]


def save_map(m: folium.Map, path: str | Path, offline: bool = False) -> Path:
    """Write the page; ``offline=True`` inlines the vendored assets and drops every CDN reference."""
    from .offline import inline_assets

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = m.get_root().render()
    path.write_text(inline_assets(html) if offline else html, encoding="utf-8")
    return path
