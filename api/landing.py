"""The landing page as people read it (`/` in HTML): the portal's front door. One card per registry layer (title,
description, feature count, extent, last update, links to the map, the data and the downloads) and how to
connect QGIS, GDAL and Python, with snippets built from the public base URL. The numbers come from ONE
statement for all layers (`layers.query.summary`), kept `SUMMARY_TTL` seconds per process.

The JSON landing page (OGC API – Features, `rel` links) is built in api/features.py and does not change; this
module only prepares what the HTML template (templates/features_landing.html) shows.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

from fastapi import Request

from api.map import MAP_LAYERS
from api.security import public_base_url
from layers.catalog.formats import VN_TZ
from layers.catalog.registry import LAYERS, Layer
from layers.query.summary import LayerSummary, layer_summaries

SUMMARY_TTL = 60.0      # seconds: same as the collections' extent cache (api/features.EXTENT_TTL)
# whole-layer downloads (the GeoJSON of `items` is a page unless `download=true`: i10-downloads)
DOWNLOADS = (("GeoPackage", "f=gpkg"), ("CSV", "f=csv"), ("GeoJSON", "f=geojson&download=true"))
EXAMPLE_LAYER = "parcels"   # the layer the connect snippets name (the first layer when it is not published)
_ANY = ("Điểm hoặc vùng", "Points or polygons")
_KINDS = {"Polygon": ("Vùng", "Polygons"), "MultiPolygon": ("Vùng", "Polygons"),
          "Point": ("Điểm", "Points"), "MultiPoint": ("Điểm", "Points"),
          "LineString": ("Đường", "Lines"), "MultiLineString": ("Đường", "Lines")}


async def summaries(request: Request) -> dict[str, LayerSummary]:
    state = request.app.state
    hit: tuple[float, dict[str, LayerSummary]] | None = getattr(state, "landing_summaries", None)
    if hit and time.monotonic() - hit[0] < SUMMARY_TTL:
        return hit[1]
    async with state.db.connection("read") as conn:
        out = await layer_summaries(conn, list(LAYERS.values()))
    state.landing_summaries = (time.monotonic(), out)
    return out


def _num(n: float, lang: str, decimals: int = 0) -> str:
    """1.234,56 (vi) / 1,234.56 (en), always `decimals` digits."""
    text = f"{n:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".") if lang == "vi" else text


def count_text(s: LayerSummary | None, lang: str) -> str:
    """'7.600' exact; 'khoảng 1.000.000' / 'about 1,000,000' from the planner (2 significant digits)."""
    if s is None or s.count is None:
        return "—"
    if not s.estimated:
        return _num(s.count, lang)
    digits = max(0, len(str(int(s.count))) - 2)
    rounded = round(s.count, -digits) if digits else s.count
    return ("khoảng " if lang == "vi" else "about ") + _num(rounded, lang)


def extent_text(bbox: tuple[float, float, float, float] | None, lang: str) -> str:
    """105,88–106,75° Đ · 9,58–10,36° B (vi) / 105.88–106.75° E · 9.58–10.36° N (en); W/S for negatives."""
    if bbox is None:
        return "—"
    x1, y1, x2, y2 = bbox
    vi = lang == "vi"

    def deg(v: float, pos: str, neg: str) -> tuple[str, str]:
        return _num(abs(v), lang, 2), pos if v >= 0 else neg

    (a, ha), (b, hb) = deg(x1, "Đ" if vi else "E", "T" if vi else "W"), deg(x2, "Đ" if vi else "E", "T" if vi else "W")
    (c, hc), (d, hd) = deg(y1, "B" if vi else "N", "N" if vi else "S"), deg(y2, "B" if vi else "N", "N" if vi else "S")
    nb = "\u00a0"     # no break before the hemisphere letter
    lon = f"{a}–{b}°{nb}{hb}" if ha == hb else f"{a}°{nb}{ha}–{b}°{nb}{hb}"
    lat = f"{c}–{d}°{nb}{hd}" if hc == hd else f"{c}°{nb}{hc}–{d}°{nb}{hd}"
    return f"{lon} · {lat}"


def updated_text(t: dt.datetime | None, lang: str) -> str:
    """dd/mm/yyyy HH:mm in Vietnam time (UTC+7); English: 29 Nov 2026 18:15."""
    if t is None:
        return "—"
    v = t.astimezone(VN_TZ)
    return v.strftime("%d/%m/%Y %H:%M") if lang == "vi" else v.strftime("%d %b %Y %H:%M")


def map_view(bbox: tuple[float, float, float, float] | None) -> str | None:
    """`#zoom/lat/lon` of the web map fitting the extent in a ~600 px wide view."""
    if bbox is None:
        return None
    x1, y1, x2, y2 = bbox
    span = max(x2 - x1, (y2 - y1) * 1.2, 1e-6)
    zoom = max(4.0, min(16.0, math.floor(math.log2(600 * 360 / 256 / span) * 4) / 4))
    return f"#{zoom:g}/{(y1 + y2) / 2:.5f}/{(x1 + x2) / 2:.5f}"


def _card(layer: Layer, s: LayerSummary | None, b: str, lang: str) -> dict[str, Any]:
    q = "" if lang == "vi" else "?lang=en"
    u = f"{b}/collections/{layer.id}"
    bbox = s.bbox if s else None
    if layer.id in MAP_LAYERS:
        view = map_view(bbox)
        map_url = f"{b}/map{q}{view or ''}"
    else:
        map_url = f"{u}/items?f=html{'&lang=en' if q else ''}"
    kind = _KINDS.get(layer.geometry_type, _ANY)
    return {
        "id": layer.id, "title": layer.title(lang),
        "description": layer.description_vi if lang == "vi" else layer.description_en,
        "kind": kind[0 if lang == "vi" else 1],
        "count": count_text(s, lang), "estimated": bool(s and s.estimated),
        "exact_count": s.count if s and not s.estimated else None,
        "extent": extent_text(bbox, lang), "bbox": bbox,
        "updated": updated_text(s.updated if s else None, lang),
        "updated_iso": s.updated.isoformat() if s and s.updated else None,
        "map_url": map_url, "on_web_map": layer.id in MAP_LAYERS,
        "collection_url": f"{u}?f=html{'&lang=en' if q else ''}",
        "items_url": f"{u}/items?f=html{'&lang=en' if q else ''}",
        "downloads": [(label, f"{u}/items?{query}") for label, query in DOWNLOADS],
    }


def connect_snippets(b: str, layer: Layer, lang: str) -> dict[str, str]:
    """The copyable commands of the "connect" section (README.md shows the same ones; its test runs them)."""
    vi = lang == "vi"
    lid = layer.id
    lc = layer.lifecycle
    # a server-side filter on the layer's lifecycle (its second state: the first is usually the default one)
    state = lc.codes[min(1, len(lc.codes) - 1)] if lc else None
    where = f"{lc.field} = '{state}'" if lc else None
    gdal = [("# các lớp dữ liệu của dịch vụ" if vi else "# the collections of the service"),
            f"ogrinfo OAPIF:{b}",
            ("# cả lớp vào một GeoPackage (GDAL tự đọc hết các trang)" if vi
             else "# a whole layer to a GeoPackage (GDAL reads every page)"),
            f"ogr2ogr -f GPKG {lid}.gpkg OAPIF:{b}/collections/{lid}"]
    if where:
        gdal += [("# chỉ những gì cần: bộ lọc chạy ở máy chủ" if vi else "# only what you need: filtered on the server"),
                 f'ogr2ogr -f GPKG {lid}_{state}.gpkg OAPIF:{b}/collections/{lid} -where "{where}"']
    zoom = max(layer.minzoom, min(layer.detail_zoom - 1, layer.maxzoom))     # a zoom the layer's tiles carry
    gdal += [(f"# ô vector ở mức thu phóng {zoom} (GDAL đọc metadata.json bên cạnh)" if vi
              else f"# vector tiles at zoom {zoom} (GDAL reads the metadata.json beside them)"),
             f"ogrinfo -so MVT:{b}/collections/{lid}/tiles/WebMercatorQuad/{zoom}"]
    python = ["import geopandas as gpd", "import pyogrio", "",
              "# cả lớp, một tệp GeoPackage" if vi else "# the whole layer, one GeoPackage",
              f'{lid} = gpd.read_file("{b}/collections/{lid}/items?f=gpkg")']
    if where:
        python += ["# lọc ở máy chủ qua OGC API – Features" if vi else "# filtered on the server through OGC API – Features",
                   f'{state} = pyogrio.read_dataframe("OAPIF:{b}/collections/{lid}", where="{where}")']
    return {"base": b, "layer": lid,
            "tiles": f"{b}/collections/{lid}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}",
            "style": f"{b}/collections/{lid}/style.json",
            "gdal": "\n".join(gdal), "python": "\n".join(python)}


async def context(request: Request, lang: str, doc: dict[str, Any]) -> dict[str, Any]:
    """What features_landing.html shows; `doc` is the JSON landing page (its links, with titles)."""
    b = public_base_url(request)
    sums = await summaries(request)
    cards = [_card(layer, sums.get(layer.id), b, lang) for layer in LAYERS.values()]
    known = [s for s in sums.values() if s.count is not None]
    total = LayerSummary(count=sum(s.count or 0 for s in known), estimated=any(s.estimated for s in known),
                         bbox=None, updated=None)
    latest = max((s.updated for s in sums.values() if s.updated), default=None)
    example = LAYERS.get(EXAMPLE_LAYER) or next(iter(LAYERS.values()))
    rels = {"service-doc", "service-desc", "conformance", "data",
            "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"}
    return {
        "cards": cards, "total": count_text(total, lang), "layer_count": len(cards),
        "latest": updated_text(latest, lang),
        "connect": connect_snippets(b, example, lang),
        "developer_links": [link for link in doc["links"] if link["rel"] in rels],
        "q": "" if lang == "vi" else "?lang=en",
    }
