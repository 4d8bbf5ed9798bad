"""The citizen web map (`/map`), its server-side search (`/search`) and Folium exports (`/maps/{id}.html`).

Thin routes: parsing and rendering here, the work in `layers.query.search`, `layers.maps.maps` and
`layers.maps.folium_export`. The page itself is static JS (api/static/map/) on MapLibre GL JS vendored in
api/static/vendor, reading the vector tiles of `api/tiles.py` and the items of the features API.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api import offload
from api import openapi as oas
from api.db import RequestClass
from api.errors import Problem, html_error_page, request_lang
from api.imagery import imagery_list
from api.security import public_base_url
from layers.catalog.formats import label
from layers.catalog.registry import LAYERS, get_layer
from layers.maps.folium_export import bounds_of, build_map
from layers.maps.maps import (
    build_selection,
    communes,
    context_boundaries_json,
    select_features_json,
)
from layers.query.auctions import upcoming
from layers.query.exporter import ExportError
from layers.query.search import search
from layers.settings import get_export_settings, get_map_settings
from layers.store import vocab
from layers.store.rasters import open_raster
from tiles.raster import export_overlay, export_render, overlay_name

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(tags=["Bản đồ / Map"])

MAP_LAYERS = ("admin_units", "parcels", "auction_plots")
SEARCH_LAYERS = "auction_plots,parcels,growing_areas,admin_units"


def db_conn(request: Request, kind: RequestClass = "read") -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A pooled connection of request class `kind` (its statement_timeout); an unreachable database or a
    statement past its timeout is a 503 and a value PostGIS refuses (e.g. a filter geometry it cannot read)
    a 400 (api/errors.py), never a 500 with database text."""
    return request.app.state.db.connection(kind)  # type: ignore[no-any-return]


# -- the page ----------------------------------------------------------------------------------------------

def _map_filters(q: dict[str, str]) -> dict[str, Any]:
    """Initial filters given as query parameters (the page keeps its state in the URL hash too)."""
    out: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    if "status" in q:
        values = q["status"].split(",") if q["status"] else []
        if not all(v in vocab.AUCTION_STATUSES for v in values):
            bad.append((f"status '{q['status'][:60]}' phải là danh sách các trạng thái: "
                        f"{', '.join(vocab.AUCTION_STATUSES)}",
                        f"status '{q['status'][:60]}' must list statuses among: {', '.join(vocab.AUCTION_STATUSES)}"))
        out["status"] = values
    if q.get("commune"):
        if not re.fullmatch(r"[0-9]{2,5}", q["commune"]):
            bad.append((f"Mã xã '{q['commune'][:20]}' không hợp lệ (2–5 chữ số)",
                        f"Invalid commune code '{q['commune'][:20]}' (2-5 digits)"))
        out["commune"] = q["commune"]
    if q.get("use"):
        if q["use"] not in vocab.LAND_USE_CODES:
            bad.append((f"Mục đích sử dụng '{q['use'][:20]}' không có trong danh mục đất (TT 08/2024)",
                        f"Land use '{q['use'][:20]}' is not a land-use code (Circular 08/2024)"))
        out["use"] = q["use"]
    for key in ("pmin", "pmax"):
        if q.get(key):
            if not re.fullmatch(r"[0-9]{1,16}", q[key]):
                bad.append((f"{key} phải là số tiền (đồng), không âm: '{q[key][:30]}'",
                            f"{key} must be an amount in VND, not negative: '{q[key][:30]}'"))
            else:
                out[key] = int(q[key])
    if "pmin" in out and "pmax" in out and out["pmin"] > out["pmax"]:
        bad.append(("Giá tối thiểu lớn hơn giá tối đa", "The minimum price is above the maximum price"))
    for key in ("from", "to"):
        if q.get(key):
            try:
                out[key] = dt.date.fromisoformat(q[key]).isoformat()
            except ValueError:
                bad.append((f"{key}: ngày '{q[key][:30]}' không hợp lệ (YYYY-MM-DD)",
                            f"{key}: invalid date '{q[key][:30]}' (YYYY-MM-DD)"))
    if "from" in out and "to" in out and out["from"] > out["to"]:
        bad.append(("Ngày bắt đầu sau ngày kết thúc", "The start date is after the end date"))
    if bad:
        raise Problem(400, "; ".join(b[0] for b in bad), "; ".join(b[1] for b in bad))
    return out


def _lifecycle_codes(layer_ids: Iterable[str]) -> list[str]:
    return [c for lid in layer_ids if (lc := get_layer(lid).lifecycle) is not None for c in lc.codes]


def _layer_config(lang: str) -> list[dict[str, Any]]:
    out = []
    for lid in MAP_LAYERS:
        layer = get_layer(lid)
        colours = dict(layer.style.get("colours", {}))
        out.append({
            "id": layer.id, "title": {"vi": layer.title_vi, "en": layer.title_en},
            "minzoom": layer.minzoom, "maxzoom": layer.maxzoom, "detail_zoom": layer.detail_zoom,
            "kind": layer.style.get("kind", "fill"), "by": layer.style.get("by"),
            "default": layer.style.get("default", "#607d8b"),
            "classes": [{"code": c, "colour": col, "label": {"vi": label(c, "vi"), "en": label(c, "en")}}
                        for c, col in colours.items()],
        })
    return out


@router.get("/map", response_class=HTMLResponse, summary="Bản đồ đấu giá đất cho người dân / Citizen auction map",
            responses={**oas.HTML_PAGE, **oas.problems(400, 503, html=True)},
            dependencies=[Depends(html_error_page)])
async def map_page(request: Request) -> Response:
    # Vietnamese unless asked otherwise with ?lang=en (or the page's own switch): not the browser's locale
    lang = "en" if request.query_params.get("lang") == "en" else "vi"
    initial = _map_filters(dict(request.query_params))
    ms = get_map_settings()
    async with db_conn(request) as conn:
        commune_list = await communes(conn)
        row = await conn.fetchrow(
            "SELECT ST_XMin(e) x1, ST_YMin(e) y1, ST_XMax(e) x2, ST_YMax(e) y2, n FROM "
            "(SELECT ST_Extent(geom) e, min(name) n FROM admin_units WHERE level = 'province' AND valid_to IS NULL) s")
    bounds = [row["x1"], row["y1"], row["x2"], row["y2"]] if row and row["x1"] is not None else None
    imagery = await run_in_threadpool(imagery_list, public_base_url(request))
    config = {
        "lang": lang, "initial": initial, "bounds": bounds, "layers": _layer_config(lang),
        "tileMaxzoom": ms.map_tile_maxzoom,
        "basemap": ({"url": ms.basemap_url, "attribution": ms.basemap_attribution, "maxzoom": ms.basemap_maxzoom}
                    if ms.basemap_url else None),
        "satellite": ({"url": ms.satellite_url, "attribution": ms.satellite_attribution,
                       "maxzoom": ms.satellite_maxzoom} if ms.satellite_url else None),
        "imagery": imagery,
        "communes": commune_list,
        "landUses": [{"code": c, "name": n} for c, n in vocab.LAND_USE_CODES.items()],
        "searchLayers": SEARCH_LAYERS,
        "statusLabels": {c: {"vi": label(c, "vi"), "en": label(c, "en")}   # the map's lifecycles, auctions first
                         for c in (*_lifecycle_codes(reversed(MAP_LAYERS)), "long_term")},
    }
    return await offload.in_thread(templates.TemplateResponse, request, "map.html", {
        "lang": lang, "province": row["n"] if row else None, "config_json": orjson.dumps(config).decode().replace("</", "<\\/"),
    })


# -- auctions people can follow ------------------------------------------------------------------------------

def _commune_param(commune: str | None) -> str | None:
    if commune and not re.fullmatch(r"[0-9]{2,5}", commune):
        raise Problem(400, f"commune: mã xã '{commune[:20]}' không hợp lệ (2–5 chữ số)",
                      f"commune: invalid commune code '{commune[:20]}' (2-5 digits)")
    return commune or None


def _plot_links(base: str, item: dict[str, Any], lang: str) -> dict[str, str]:
    suffix = "&lang=en" if lang == "en" else ""
    return {"notice": f"{base}/collections/auction_plots/items/{item['id']}?f=html{suffix}",
            "map": f"{base}/map#17/{item['point'][1]:.6f}/{item['point'][0]:.6f}?plot={item['id']}{suffix}"}


@router.get("/auctions/upcoming", summary="Các phiên đấu giá sắp tới / Upcoming auctions", response_class=Response,
            description="Lô đất đang nhận hoặc sắp nhận hồ sơ, hạn đăng ký gần nhất trước; trạng thái suy ra từ "
                        "ngày tháng (không lô nào 'đang nhận hồ sơ' sau hạn đăng ký). / Plots whose registration is "
                        "open or ahead, soonest registration deadline first; the status is derived from the dates.",
            responses={**oas.ok_json({"type": "object", "required": ["count", "auctions"], "properties": {
                "generated": {"type": "string", "format": "date-time"}, "count": {"type": "integer"},
                "auctions": {"type": "array", "items": {"type": "object", "required": [
                    "id", "plot_code", "status", "registration_end", "days_left", "links"]}}}}),
                       **oas.problems(400, 503)})
async def upcoming_auctions(
    request: Request,
    commune: str | None = Query(None, description="mã xã / commune code"),
    limit: int = Query(200, ge=1, le=1000, description="1-1000"),
) -> Response:
    lang = request_lang(request)
    now = dt.datetime.now(dt.UTC)
    async with db_conn(request) as conn:
        items = await upcoming(conn, now, _commune_param(commune), limit, lang)
    base = public_base_url(request)
    for it in items:
        it["links"] = _plot_links(base, it, lang)
        it.pop("updated")
    body = {"generated": now.isoformat(), "count": len(items), "auctions": items,
            "links": [{"rel": "self", "href": str(request.url)},
                      {"rel": "alternate", "type": "application/atom+xml", "href": f"{base}/auctions.atom"}]}
    return Response(orjson.dumps(body), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=60", "Content-Language": lang})


ATOM = "http://www.w3.org/2005/Atom"


def _atom(items: list[dict[str, Any]], base: str, self_url: str, lang: str, now: dt.datetime) -> bytes:
    vi = lang == "vi"
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": lang})

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        e = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            e.text = text
        return e

    sub(feed, "id", f"{base}/auctions.atom")
    sub(feed, "title", "Đấu giá đất sắp tới" if vi else "Upcoming land auctions")
    sub(feed, "subtitle", "Lô đất đang nhận hoặc sắp nhận hồ sơ đăng ký (dữ liệu mẫu mô phỏng)" if vi else
        "Plots whose registration is open or ahead (synthetic sample data)")
    updated = max((it["updated"] for it in items), default=now)
    sub(feed, "updated", updated.isoformat())
    sub(sub(feed, "author"), "name", "datso")
    sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    sub(feed, "link", rel="alternate", type="text/html", href=f"{base}/map")
    for it in items:
        e = sub(feed, "entry")
        sub(e, "id", f"{base}/collections/auction_plots/items/{it['id']}")
        sub(e, "title", f"{it['plot_code']} – {it['address'] or it['commune_name'] or ''}".strip(" –"))
        sub(e, "updated", it["updated"].isoformat())
        links = _plot_links(base, it, lang)
        sub(e, "link", rel="alternate", type="text/html", href=links["notice"])
        sub(e, "link", rel="related", type="text/html", href=links["map"])
        reg_end = dt.datetime.fromisoformat(it["registration_end"]).astimezone(VN_TZ) if it["registration_end"] else None
        auction = dt.datetime.fromisoformat(it["auction_date"]).astimezone(VN_TZ) if it["auction_date"] else None
        price = f"{it['starting_price_vnd']:,}".replace(",", "." if vi else ",")
        if vi:
            text = (f"{it['status_label']}. Hạn đăng ký: {reg_end:%d/%m/%Y %H:%M} (còn {it['days_left']} ngày). "
                    if reg_end else f"{it['status_label']}. ")
            text += f"Ngày đấu giá: {auction:%d/%m/%Y %H:%M}. " if auction else ""
            text += f"Giá khởi điểm: {price} ₫. Diện tích: {it['area_m2']:g} m². Xã: {it['commune_name'] or ''}."
        else:
            text = (f"{it['status_label']}. Registration deadline: {reg_end:%Y-%m-%d %H:%M} "
                    f"({it['days_left']} day{'' if it['days_left'] == 1 else 's'} left). " if reg_end else f"{it['status_label']}. ")
            text += f"Auction: {auction:%Y-%m-%d %H:%M}. " if auction else ""
            text += f"Starting price: {price} ₫. Area: {it['area_m2']:g} m². Commune: {it['commune_name'] or ''}."
        sub(e, "summary", text)
        sub(e, "category", term=it["status"], label=it["status_label"])
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)


VN_TZ = dt.timezone(dt.timedelta(hours=7))


@router.get("/auctions.atom", summary="Nguồn tin Atom các phiên đấu giá sắp tới / Atom feed of upcoming auctions",
            response_class=Response,
            responses={**oas.ok_json({"type": "string"}, "Atom 1.0 (RFC 4287)", media=("application/atom+xml",)),
                       **oas.problems(400, 503)})
async def auctions_feed(
    request: Request,
    commune: str | None = Query(None, description="mã xã / commune code"),
) -> Response:
    lang = request_lang(request)
    now = dt.datetime.now(dt.UTC)
    async with db_conn(request) as conn:
        items = await upcoming(conn, now, _commune_param(commune), 200, lang)
    body = _atom(items, public_base_url(request), str(request.url), lang, now)
    return Response(body, media_type="application/atom+xml; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300", "Content-Language": lang})


# -- search -------------------------------------------------------------------------------------------------

@router.get("/search", summary="Tìm lô đất, địa chỉ, số tờ/số thửa, mã vùng trồng / Search",
            response_class=Response,
            responses={**oas.ok_json(oas.SEARCH_RESULTS, media=("application/geo+json",)),
                       **oas.problems(400, 429, 503)})
async def search_route(
    request: Request,
    q: str | None = Query(None, description="mã lô, địa chỉ, 'tờ 12 thửa 345' hoặc '12/345', mã vùng trồng"),
    layers: str | None = Query(None, description="comma-separated layer ids (default: every searchable layer)"),
    limit: int = Query(10, ge=1, le=50, description="1-50"),
) -> Response:
    lang = request_lang(request)
    async with db_conn(request) as conn:
        body = await search(conn, q, layers, limit, lang)    # a search it cannot run: SearchError (400)
    return Response(orjson.dumps(body), media_type="application/geo+json",
                    headers={"Cache-Control": "public, max-age=30", "Content-Language": lang})


# -- Folium exports -----------------------------------------------------------------------------------------

def render_folium(layer_id: str, fc_json: str | bytes, boundaries_json: str | bytes,
                  raster: tuple[str, str | None] | None = None, **kwargs: Any) -> str:
    """`build_map` from picklable arguments (runs in an export process, see api/offload.py); `raster` (name,
    expression) is drawn as one embedded PNG over the features' extent (an offline export)."""
    fc = orjson.loads(fc_json)
    if raster is not None:
        b = bounds_of(fc)
        kwargs["overlays"] = [export_overlay(raster[0], raster[1], kwargs.get("lang", "vi"),
                                             bbox=(b[0][1], b[0][0], b[1][1], b[1][0]) if b else None)]
    return build_map(get_layer(layer_id), fc, boundaries=orjson.loads(boundaries_json), **kwargs)


def _raster_layer(query: dict[str, str], offline: bool, base: str, lang: str) -> tuple[
        tuple[str, str | None] | None, list[dict[str, Any]] | None]:
    """`raster` (+ `raster_expression`) of a map export, checked before any work (404 unknown raster, 400 bad
    expression): online, a tile layer of this server's raster tiles; offline, (name, expression) for an
    embedded PNG made in the export process."""
    name, expr = query.get("raster"), query.get("raster_expression")
    if not name:
        if expr:
            raise ExportError("raster_expression: cần raster", "raster_expression: needs raster")
        return None, None
    info = open_raster(name)
    render = export_render(info, expr or None)
    if offline:
        return (name, expr or None), None
    q = {} if not render.expression else {"expression": render.expression, "rescale": "-1,1",
                                          "colormap_name": render.colormap_name}
    url = f"{base}/rasters/{name}/tiles/{{z}}/{{x}}/{{y}}.png" + (f"?{urlencode(q)}" if q else "")
    return None, [{"name": overlay_name(info, expr or None, lang), "tiles": url, "bounds": info.bounds,
                   "maxzoom": info.maxzoom, "attribution": "datso (synthetic)" if info.synthetic else "datso"}]


def _truthy(value: str | None, name: str) -> bool:
    if value is None or value == "":
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ExportError(f"{name} phải là true hoặc false", f"{name} must be true or false")


@router.get("/maps/{collection_id}.html", response_class=HTMLResponse,
            summary="Bản đồ Folium (HTML tự chứa) của một lớp / Self-contained Folium map of a layer",
            responses={**oas.HTML_PAGE, **oas.problems(400, 404, 413, 429, 503, html=True)},
            dependencies=[Depends(html_error_page)])
async def folium_map(request: Request, collection_id: str) -> Response:
    lang = request_lang(request)
    layer = LAYERS.get(collection_id)
    if layer is None:
        raise Problem(404, f"Không có lớp '{collection_id[:60]}'; các lớp: {', '.join(LAYERS)}",
                      f"No layer '{collection_id[:60]}'; layers: {', '.join(LAYERS)}")
    query = dict(request.query_params)
    offline = _truthy(query.get("offline"), "offline")
    sel = build_selection(layer, query)
    base = public_base_url(request)
    raster, overlays = await run_in_threadpool(_raster_layer, query, offline, base, lang)
    async with db_conn(request, "export") as conn:
        fc_json, plan = await select_features_json(conn, sel, get_export_settings())
        boundaries_json = await context_boundaries_json(conn)
    ms = get_map_settings()
    # Folium builds the page in pure Python (~0.6-0.9 s for a big layer): an export process (or thread),
    # never the event loop; the features travel as JSON bytes. Leaflet missing for an offline export:
    # OfflineAssetsMissing, a 503 (api/errors.py)
    page = await offload.export_process(
        request, render_folium, layer.id, fc_json, boundaries_json, lang=lang,
        offline=offline, asset_url=f"{base}/static/vendor/leaflet/", basemap_url=ms.basemap_url,
        basemap_attribution=ms.basemap_attribution, subtitle=sel.description(),
        note=plan.note_vi if lang == "vi" else plan.note_en, compact=plan.compact, raster=raster, overlays=overlays)
    headers = {"Content-Language": lang}
    if query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="{layer.id}.html"'
    return HTMLResponse(page, headers=headers)
