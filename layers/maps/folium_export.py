"""A self-contained Folium (Leaflet) HTML map of one layer's features.

The layer is styled from its registry `style` (colour by a field), with a tooltip (label and status) and a
popup listing the public fields with their Vietnamese (or English) titles and values formatted as each field
declares (`layers.catalog.formats`: 1.250.000.000 ₫, dd/mm/yyyy). A legend, a layer control, a scale and the view fitted to the
data are added.

Folium loads Leaflet, jQuery, Bootstrap and Font Awesome from CDNs by default. Only Leaflet is needed here
(no icon markers), so the page lists Leaflet alone: with `offline=True` its JS and CSS (and the CSS images)
are inlined as data: URIs from the copy vendored from the npm package (`layers/maps/vendor/leaflet`), and the
resulting file makes no network request at all; otherwise they are linked from `asset_url` (datso's own
`/static/vendor/leaflet/`) or, without one, from jsDelivr.

Raster layers (`overlays`): an online export draws the server's raster tiles (`/rasters/NAME/tiles/...`, sharp
at every zoom, but only while that server is reachable). An offline file cannot carry a tile pyramid: it embeds
ONE PNG of at most 1024 pixels a side over the exported features' extent (base64, typically a few hundred KB),
so zooming in past that resolution shows blurred pixels, and the image is frozen as it was at export time.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import folium
from branca.element import Element, Figure, MacroElement
from jinja2 import Template

from layers.catalog.formats import display_title, format_value, label
from layers.catalog.registry import Layer, LayerField

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"
LEAFLET_CDN = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/"
_URL = re.compile(r"""(?:src|href)=["'](https?:)?//""", re.I)


class OfflineAssetsMissing(RuntimeError):
    pass


def _title(f: LayerField, lang: str) -> str:
    return display_title(f, lang)     # values carry their unit: "Diện tích: 1.234,5 m²"


def popup_order(layer: Layer, fields: list[LayerField]) -> list[LayerField]:
    """The important fields first, so a phone shows them without scrolling: the label, the styled (status)
    field, the `summary` fields, then the rest in registry order."""
    by = str(layer.style.get("by", ""))

    def rank(f: LayerField) -> int:
        return 0 if f.name == layer.label_field else 1 if f.name == by else 2 if f.summary else 3

    return sorted(fields, key=rank)     # stable: registry order within a rank


def display_collection(layer: Layer, fc: dict[str, Any], lang: str,
                       compact: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Features whose properties are the formatted public fields (keys = field names) plus `_style`.
    `compact` keeps the label, the styled field, the fields tiles carry at low zoom and the `summary` ones, with
    codes instead of long vocabulary names (large selections)."""
    by = str(layer.style.get("by", ""))
    fields = popup_order(layer, [f for f in layer.public_fields if f.name != "synthetic"])
    if compact:
        keep = {layer.label_field, by, *(f.name for f in fields if f.lowzoom or f.summary)}
        fields = [f for f in fields if f.name in keep]
    used: set[str] = set()
    out = []
    for feat in fc.get("features", []):
        p = feat.get("properties") or {}
        props: dict[str, Any] = {"_style": p.get(by)}
        for f in fields:
            value = p.get(f.name)
            text = (", ".join(value) if compact and f.type == "array" and f.ref is None and isinstance(value, list)
                    else format_value(f, value, lang))
            props[f.name] = html.escape(text)
            if text:
                used.add(f.name)
        out.append({"type": "Feature", "id": feat.get("id"), "geometry": feat.get("geometry"), "properties": props})
    return {"type": "FeatureCollection", "features": out}, [f.name for f in fields if f.name in used]


def bounds_of(fc: dict[str, Any]) -> list[list[float]] | None:
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if isinstance(c, list) and c and isinstance(c[0], int | float):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        elif isinstance(c, list):
            for item in c:
                walk(item)

    for feat in fc.get("features", []):
        g = feat.get("geometry") or {}
        walk(g.get("coordinates"))
    if not xs:
        return None
    return [[min(ys), min(xs)], [max(ys), max(xs)]]


@lru_cache(maxsize=4)
def _data_uri(path: str, mime: str) -> str:
    data = Path(path).read_bytes()
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@lru_cache(maxsize=2)
def inline_leaflet(vendor_dir: str) -> tuple[str, str]:
    """(js, css) data: URIs of the vendored Leaflet, with the CSS images inlined too."""
    base = Path(vendor_dir) / "leaflet"
    js, css_file = base / "leaflet.js", base / "leaflet.css"
    if not js.is_file() or not css_file.is_file():
        raise OfflineAssetsMissing(f"Leaflet is not vendored in {base} (see layers/maps/vendor/README.md)")
    css = css_file.read_text(encoding="utf-8")

    def _img(m: re.Match[str]) -> str:
        img = base / m.group(1)
        if not img.is_file():
            return "url(data:,)"
        return "url(" + _data_uri(str(img), "image/png") + ")"

    css = re.sub(r"url\(\s*['\"]?(images/[^'\")]+)['\"]?\s*\)", _img, css)
    css_uri = "data:text/css;base64," + base64.b64encode(css.encode()).decode()
    return _data_uri(str(js), "text/javascript"), css_uri


_LEGEND = Template("""
{% macro html(this, kwargs) %}
<div class="datso-legend" role="region" aria-label="{{ this.heading }}">
  <div class="datso-legend-title">{{ this.heading }}</div>
  {% for colour, text, count in this.items %}
  <div class="datso-legend-row"><span class="datso-swatch datso-{{ this.kind }}" style="background:{{ colour }}"></span>
    {{ text }}{% if count is not none %} <span class="datso-count">({{ count }})</span>{% endif %}</div>
  {% endfor %}
  {% if this.note %}<div class="datso-legend-note">{{ this.note }}</div>{% endif %}
</div>
<style>
.datso-legend{position:fixed;bottom:24px;right:10px;z-index:1000;background:#fff;padding:8px 10px;
  border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.35);font:13px/1.4 system-ui,sans-serif;max-width:260px}
.datso-legend-title{font-weight:600;margin-bottom:4px}
.datso-swatch{display:inline-block;width:14px;height:14px;margin-right:6px;vertical-align:-2px;
  border:1px solid rgba(0,0,0,.4)}
.datso-swatch.datso-line{height:3px;vertical-align:3px;border:0}
.datso-swatch.datso-circle{border-radius:50%}
.datso-count{color:#555}
.datso-legend-note{margin-top:6px;color:#8a4b00;font-size:12px}
.datso-title{position:fixed;top:10px;left:54px;z-index:1000;background:#fff;padding:6px 10px;border-radius:6px;
  box-shadow:0 1px 4px rgba(0,0,0,.35);font:14px/1.3 system-ui,sans-serif;max-width:60vw}
.datso-title small{display:block;color:#555;font-size:12px}
</style>
{% endmacro %}
""")


class Legend(MacroElement):
    _template = _LEGEND

    def __init__(self, heading: str, kind: str, items: Sequence[tuple[str, str, int | None]], note: str = "") -> None:
        super().__init__()
        self._name = "DatsoLegend"
        self.heading, self.kind, self.items, self.note = heading, kind, items, note


def build_map(layer: Layer, fc: dict[str, Any], *, lang: str = "vi", offline: bool = False,
              asset_url: str | None = None, vendor_dir: Path = VENDOR_DIR, basemap_url: str | None = None,
              basemap_attribution: str = "", subtitle: str = "", note: str = "",
              boundaries: dict[str, Any] | None = None, compact: bool = False,
              overlays: list[dict[str, Any]] | None = None) -> str:
    """The HTML of a Folium map of `fc` (a GeoJSON FeatureCollection of `layer`'s public fields); `overlays`:
    raster layers under the features: {name, png (bytes, embedded: works offline), bounds (w, s, e, n)} or
    {name, tiles (an XYZ URL of the server's raster tiles), bounds, maxzoom, attribution}."""
    display, shown = display_collection(layer, fc, lang, compact)
    bounds = bounds_of(fc)
    # many features: Leaflet's canvas renderer instead of one SVG path each (46,000 parcels open in 17 s, not 21)
    m = folium.Map(location=[16.0, 106.0], zoom_start=6, tiles=None, control_scale=True, prefer_canvas=compact)
    if offline:
        js, css = inline_leaflet(str(vendor_dir))
    else:
        base = asset_url if asset_url is not None else LEAFLET_CDN
        js, css = base + "leaflet.js", base + "leaflet.css"
    # instance attributes: the class lists are shared by every Map
    m.default_js = [("leaflet", js)]
    m.default_css = [("leaflet_css", css)]
    if basemap_url and not offline:
        folium.TileLayer(basemap_url, attr=basemap_attribution or "basemap", name="Bản đồ nền" if lang == "vi"
                         else "Basemap", overlay=False, control=True).add_to(m)
    if boundaries is not None and boundaries.get("features") and layer.boundaries_under:
        admin = {"province": (2.5, "#37474f"), "commune": (1.0, "#78909c")}
        folium.GeoJson(
            boundaries, name="Ranh giới hành chính" if lang == "vi" else "Administrative boundaries",
            style_function=lambda f: {"color": admin.get(f["properties"].get("level"), (1.0, "#78909c"))[1],
                                      "weight": admin.get(f["properties"].get("level"), (1.0, "#78909c"))[0],
                                      "fill": False, "dashArray": "4 3"
                                      if f["properties"].get("level") == "commune" else None},
            interactive=False, control=True, zoom_on_click=False,
        ).add_to(m)
    for ov in overlays or []:
        w, s_, e, n = ov["bounds"]
        if "tiles" in ov:         # the server's raster tiles (online: sharp at every zoom)
            folium.raster_layers.TileLayer(
                ov["tiles"], attr=str(ov.get("attribution", "datso")), name=ov["name"], overlay=True, control=True,
                opacity=float(ov.get("opacity", 0.85)), max_zoom=22, max_native_zoom=int(ov.get("maxzoom", 18)),
                bounds=[[s_, w], [n, e]]).add_to(m)
            continue
        # an embedded PNG (data: URL): works offline, no tile server needed
        folium.raster_layers.ImageOverlay(
            "data:image/png;base64," + base64.b64encode(ov["png"]).decode("ascii"), bounds=[[s_, w], [n, e]],
            name=ov["name"], opacity=float(ov.get("opacity", 0.85)), interactive=False, cross_origin=False,
            zindex=1, overlay=True, control=True).add_to(m)
    style = layer.style
    colours: dict[str, str] = dict(style.get("colours", {}))
    default = str(style.get("default", "#3388ff"))
    kind = str(style.get("kind", "fill"))

    def style_fn(feature: dict[str, Any]) -> dict[str, Any]:
        colour = colours.get(str(feature["properties"].get("_style")), default)
        if kind == "line":
            return {"color": colour, "weight": 2, "fill": False}
        # the outline in the fill colour keeps small plots visible as dots when zoomed out
        return {"color": colour, "weight": 3, "opacity": 0.9, "fillColor": colour, "fillOpacity": 0.6}

    def highlight_fn(feature: dict[str, Any]) -> dict[str, Any]:
        return {"weight": 3, "color": "#000000"}

    titles = {f.name: _title(f, lang) for f in layer.public_fields}
    tip_fields = [n for n in dict.fromkeys([layer.label_field or "", str(style.get("by", ""))]) if n in shown]
    marker = folium.CircleMarker(radius=6, fill=True) if layer.geometry_type in ("Point", "MultiPoint",
                                                                                  "Geometry") else None
    gj = folium.GeoJson(
        display, name=layer.title(lang), style_function=style_fn, highlight_function=highlight_fn,
        marker=marker, zoom_on_click=False,
        tooltip=folium.GeoJsonTooltip(fields=tip_fields, aliases=[titles[n] for n in tip_fields], sticky=True)
        if tip_fields else None,
        # 280 px wide and scrolling inside: fits a 360 px phone with the map's margins
        popup=folium.GeoJsonPopup(fields=shown, aliases=[titles[n] for n in shown], max_width=280,
                                  style="max-height:45vh;overflow-y:auto;font-size:13px")
        if shown else None,
    )
    gj.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    if bounds is not None:
        if bounds[0] == bounds[1]:
            m.location, m.options["zoom"] = bounds[0], 16
        m.fit_bounds(bounds, padding=(20, 20))
    counts: dict[str, int] = {}
    for feat in display["features"]:
        key = str(feat["properties"].get("_style"))
        counts[key] = counts.get(key, 0) + 1
    items = [(c, label(code, lang), counts.get(code, 0)) for code, c in colours.items()]
    if not items or sum(counts.get(code, 0) for code in colours) < len(display["features"]):
        items.append((default, "Khác" if lang == "vi" else "Other",
                      len(display["features"]) - sum(counts.get(code, 0) for code in colours)))
    by_field = layer.get_field(str(style.get("by", "")))
    heading = f"{layer.title(lang)} – {_title(by_field, lang)}" if by_field else layer.title(lang)
    n = len(display["features"])
    count_text = (f"{n:,} đối tượng".replace(",", ".") if lang == "vi" else f"{n:,} features")
    if n == 0:
        count_text = "Không có đối tượng nào khớp bộ lọc" if lang == "vi" else "No feature matches the filter"
    root = m.get_root()
    assert isinstance(root, Figure)
    root.add_child(Legend(heading, kind if kind in ("line", "circle") else "fill", items, note))
    title_html = (f'<div class="datso-title" role="heading" aria-level="1"><strong>{html.escape(layer.title(lang))}'
                  f"</strong> — {html.escape(count_text)}"
                  f"{'<small>' + html.escape(subtitle) + '</small>' if subtitle else ''}</div>")
    root.html.add_child(Element(title_html))
    root.header.add_child(Element(f"<title>{html.escape(layer.title(lang))} — datso</title>"))
    out: str = root.render()
    out = out.replace('<html>', f'<html lang="{lang}">', 1) if '<html>' in out else out
    if offline and _URL.search(out):
        raise OfflineAssetsMissing("the offline map still links an external resource")
    return out
