"""OGC API – Features (Parts 1-4) routes, generated from the layer registry.

`create_router(settings)` builds: `/`, `/conformance`, `/collections`, and for every registry layer
`/collections/{id}`, `/items`, `/items/{featureId}`, `/queryables`, `/schema` (plus the Part 4 write routes).
Routes are thin: parse (api/params.py), call layers/query/features.py or layers/ingest/writes.py, render
(JSON assembled around the SQL-built GeoJSON, Jinja2 HTML, or a download from api/formats.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import Response

from api import downloads, formats, jsonfg, offload
from api import landing as landing_page
from api import openapi as oas
from api import tiles as tiles_api
from api.auth import api_key_scheme, bearer_scheme, require_roles
from api.conditional import content_etag, etag_matches
from api.db import RequestClass
from api.errors import Problem, request_lang
from api.params import (
    check_unknown,
    item_query_dependency,
    items_openapi_parameters,
    items_query_dependency,
    metadata_dependency,
    only_common,
)
from api.security import public_base_url
from gis.crs import CRS84_URI, geojson_crs
from gis.errors import BilingualError
from layers.accounts.principal import Principal
from layers.catalog.formats import display_title, format_value
from layers.catalog.registry import LAYERS, Layer
from layers.ingest import registration, writes
from layers.query import features as feat
from layers.query import selection
from layers.query.refs import resolve_refs
from layers.settings import ApiSettings, get_map_settings

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/core-roles-features",
    *tiles_api.CONFORMANCE,
]
GEOJSON = "application/geo+json"
EXTENT_TTL = 60.0
_TEMPLATES = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                         autoescape=select_autoescape(["html"]))


# -- response helpers ---------------------------------------------------------------------------------------

def _basemap() -> dict[str, object] | None:
    """The same configurable basemap as the web map (`DATSO_BASEMAP_URL`); none by default: works offline."""
    ms = get_map_settings()
    if not ms.basemap_url:
        return None
    return {"url": ms.basemap_url, "attribution": ms.basemap_attribution, "maxzoom": ms.basemap_maxzoom}


def respond(request: Request, body: bytes, media: str, headers: dict[str, str] | None = None,
            etag: str | None = None) -> Response:
    """A 200 with ETag + Cache-Control, or a 304 when If-None-Match matches."""
    s: ApiSettings = request.app.state.api_settings
    tag = etag or content_etag(body)
    h = {"ETag": tag, "Cache-Control": s.cache_control, "Content-Language": request_lang(request),
         "Vary": "Accept, Accept-Language", **(headers or {})}
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=h)
    return Response(body, media_type=media, headers=h)


def _query_with(request: Request, **changes: Any) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    pairs += [(k, str(v)) for k, v in changes.items() if v is not None]
    return urlencode(list(dict.fromkeys(pairs)))   # a parameter repeated with the same value once


def _labels(request: Request) -> bool:
    value = request.query_params.get("labels", "false").lower()
    if value not in ("true", "false", "1", "0"):     # an empty value too
        raise selection.QueryError("labels phải là true hoặc false", "labels must be true or false")
    return value in ("true", "1")


def _t(lang: str) -> Any:
    return lambda vi, en: vi if lang == "vi" else en


def _html_fields(layer: Layer, lang: str, selected: list[str] | None) -> list[dict[str, Any]]:
    return [{"name": f.name, "title": display_title(f, lang), "field": f}
            for f in layer.public_fields if selected is None or f.name in selected]


async def render(request: Request, template: str, **ctx: Any) -> Response:
    """A Jinja2 page, rendered in a worker thread (a page of 10,000 items takes a while)."""
    lang = request_lang(request)
    tpl = _TEMPLATES.get_template(template)
    text = await offload.in_thread(lambda: tpl.render(
        lang=lang, t=_t(lang), base=public_base_url(request),
        show=lambda f, value: format_value(f, value, lang),   # 1.250.000.000 ₫, dd/mm/yyyy, land-use names
        other_lang_query=_query_with(request, lang="en" if lang == "vi" else "vi"),
        json_query=_query_with(request, f="json"), **ctx))
    return respond(request, text.encode(), formats.MEDIA["html"])


def _json(request: Request, data: Any, media: str = "application/json",
          headers: dict[str, str] | None = None) -> Response:
    return respond(request, orjson.dumps(data), media, headers)


async def _conn_call(request: Request, fn: Any, *args: Any, kind: RequestClass = "read") -> Any:
    """`fn(conn, *args)` on a pooled connection of request class `kind` (its statement_timeout); a database
    that cannot answer, a statement past its timeout or a value the database refuses is answered by
    api/errors.py (503, 503, 400)."""
    async with request.app.state.db.connection(kind) as conn:
        return await fn(conn, *args)


# -- documents ----------------------------------------------------------------------------------------------

def _link(href: str, rel: str, type_: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"href": href, "rel": rel, "type": type_}
    if title:
        d["title"] = title
    d.update(extra)
    return d


async def _extent(request: Request, layer: Layer) -> dict[str, Any]:
    cache: dict[str, tuple[float, dict[str, Any]]] = request.app.state.__dict__.setdefault("features_extent", {})
    hit = cache.get(layer.id)
    if hit and time.monotonic() - hit[0] < EXTENT_TTL:
        return hit[1]
    ext = await _conn_call(request, feat.extent, layer)
    cache[layer.id] = (time.monotonic(), ext)
    return dict(ext)


async def _layer_count(request: Request, layer: Layer, cap: int) -> tuple[int, bool]:
    """The layer's feature count for its page (up to `cap`), cached like the extent."""
    cache: dict[str, tuple[float, tuple[int, bool]]] = request.app.state.__dict__.setdefault("features_count", {})
    hit = cache.get(layer.id)
    if hit and time.monotonic() - hit[0] < EXTENT_TTL:
        return hit[1]
    value = await _conn_call(request, feat.count_matches, layer, feat.ItemsQuery(), cap)
    cache[layer.id] = (time.monotonic(), value)
    return value


async def collection_doc(request: Request, layer: Layer, lang: str) -> dict[str, Any]:
    b = public_base_url(request)
    u = f"{b}/collections/{layer.id}"
    return {
        "id": layer.id, "title": layer.title(lang),
        "description": layer.description_vi if lang == "vi" else layer.description_en,
        "itemType": "feature",
        "crs": [c.uri for c in selection.published_crs()],
        "storageCrs": CRS84_URI,
        "extent": await _extent(request, layer),
        "links": [
            _link(u, "self", "application/json", layer.title(lang)),
            _link(f"{u}?f=html", "alternate", "text/html", layer.title(lang)),
            _link(f"{u}/items", "items", GEOJSON, layer.title(lang)),
            _link(f"{u}/items?f=html", "items", "text/html", layer.title(lang)),
            _link(f"{u}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                  "application/schema+json", "Queryables"),
            _link(f"{u}/schema", "http://www.opengis.net/def/rel/ogc/1.0/schema", "application/schema+json",
                  "Schema"),
            *[_link(d["href"], "enclosure", d["type"], d["title"]) for d in downloads.links(f"{u}/items", None, layer.id)],
            _link(f"{u}/tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "application/json",
                  "Vector tiles"),
            _link(f"{b}/maps/{layer.id}.html", "related", "text/html",
                  "Bản đồ HTML (Folium)" if lang == "vi" else "HTML map (Folium)"),
        ],
    }


# -- router -------------------------------------------------------------------------------------------------

def create_router(settings: ApiSettings) -> APIRouter:
    router = APIRouter(tags=["OGC API – Features"])

    @router.get("/", summary="Landing page", dependencies=[Depends(only_common)],
                responses={**oas.ok_json(oas.LANDING, html=True, cached=True), **oas.DOCUMENT_PROBLEMS})
    async def landing(request: Request) -> Response:
        fmt = formats.negotiate(request, formats.DOCUMENT_FORMATS)
        lang = request_lang(request)
        b = public_base_url(request)
        t = _t(lang)
        doc = {
            "title": settings.title,
            "description": t("Dữ liệu đất công, đấu giá, vùng trồng và truy xuất nguồn gốc của tỉnh theo chuẩn "
                             "OGC API – Features.",
                             "Provincial public land, auctions, growing areas and traceability as OGC API – "
                             "Features."),
            "links": [
                _link(f"{b}/", "self", "application/json", t("Trang này", "This document")),
                _link(f"{b}/?f=html", "alternate", "text/html", t("Trang này (HTML)", "This document (HTML)")),
                _link(f"{b}/api", "service-desc", "application/vnd.oai.openapi+json;version=3.1",
                      t("Tài liệu OpenAPI", "OpenAPI definition")),
                _link(f"{b}/api.html", "service-doc", "text/html", t("Tài liệu API", "API documentation")),
                _link(f"{b}/conformance", "conformance", "application/json",
                      t("Các lớp phù hợp chuẩn", "Conformance classes")),
                _link(f"{b}/collections", "data", "application/json", t("Các lớp dữ liệu", "Collections")),
                _link(f"{b}/map", "related", "text/html", t("Bản đồ đấu giá đất", "Land auction map")),
                _link(f"{b}/tileMatrixSets", "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                      "application/json", t("Lưới ô bản đồ", "Tile matrix sets")),
            ],
        }
        if fmt == "html":   # the portal's front door: a card per layer, downloads, connecting (api/landing.py)
            return await render(request, "features_landing.html", title=doc["title"], description=doc["description"],
                                **await landing_page.context(request, lang, doc))
        return _json(request, doc)

    @router.get("/conformance", summary="Conformance classes", dependencies=[Depends(only_common)],
                responses={**oas.ok_json(oas.CONFORMANCE, html=True, cached=True), **oas.DOCUMENT_PROBLEMS})
    async def conformance(request: Request) -> Response:
        if formats.negotiate(request, formats.DOCUMENT_FORMATS) == "html":
            lang = request_lang(request)
            return await render(request, "features_document.html", title=_t(lang)("Các lớp phù hợp chuẩn",
                                                                            "Conformance classes"),
                          items=[{"label": c} for c in CONFORMANCE], collection=None, table=None)
        return _json(request, {"conformsTo": CONFORMANCE})

    @router.get("/collections", summary="Collections", dependencies=[Depends(only_common)],
                responses={**oas.ok_json(oas.COLLECTIONS, html=True, cached=True), **oas.problems(400, 406, 503)})
    async def collections(request: Request) -> Response:
        fmt = formats.negotiate(request, formats.DOCUMENT_FORMATS)
        lang = request_lang(request)
        b = public_base_url(request)
        docs = [await collection_doc(request, layer, lang) for layer in LAYERS.values()]
        if fmt == "html":
            return await render(request, "features_collections.html", title=_t(lang)("Các lớp dữ liệu", "Collections"),
                          collections=docs)
        return _json(request, {
            "links": [_link(f"{b}/collections", "self", "application/json"),
                      _link(f"{b}/collections?f=html", "alternate", "text/html")],
            "collections": docs})

    for layer in LAYERS.values():
        _layer_routes(router, layer, settings)

    @router.get("/collections/{collection_id}", include_in_schema=False)
    @router.get("/collections/{collection_id}/items", include_in_schema=False)
    @router.get("/collections/{collection_id}/items/{feature_id}", include_in_schema=False)
    @router.get("/collections/{collection_id}/queryables", include_in_schema=False)
    @router.get("/collections/{collection_id}/schema", include_in_schema=False)
    async def unknown_collection(collection_id: str) -> Response:
        known = ", ".join(LAYERS)
        raise Problem(404, f"Không có lớp dữ liệu '{collection_id[:60]}'. Các lớp: {known}",
                      f"No collection '{collection_id[:60]}'. Collections: {known}")

    return router


def _not_found_item(layer: Layer, feature_id: str) -> Problem:
    return Problem(404, f"Lớp '{layer.id}' không có đối tượng '{feature_id[:40]}'",
                   f"Collection '{layer.id}' has no feature '{feature_id[:40]}'")


def _feature_id(layer: Layer, text: str) -> int:
    # ASCII digits only: str.isdigit() is also true for "¹" or "٣", which int() refuses or reads as a number
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise _not_found_item(layer, text)
    return int(text)


def record_links(base: str, layer: Layer, fid: int, lang: str) -> list[dict[str, Any]]:
    """Links from a feature to the records of the layers whose fields reference its layer (`LayerField.references`),
    to its relations and to its history (api/history.py)."""
    out = [_link(f"{base}/collections/{other.id}/items?{f.name}={fid}", "related", GEOJSON, other.title(lang))
           for other in LAYERS.values() for f in other.fields if f.references == layer.id]
    out += [_link(f"{base}/collections/{layer.id}/items/{fid}/{r.name}", "related", "application/json",
                  r.title_vi if lang == "vi" else r.title_en) for r in layer.relations]
    out.append(_link(f"{base}/collections/{layer.id}/items/{fid}/history", "version-history", "application/json",
                     "Lịch sử thay đổi" if lang == "vi" else "Change history"))
    return out


def _layer_routes(router: APIRouter, layer: Layer, settings: ApiSettings) -> None:
    path = f"/collections/{layer.id}"
    items_dep = items_query_dependency(layer, settings)
    item_dep = item_query_dependency(layer)
    items_params = items_openapi_parameters(layer, settings)
    metadata = [Depends(metadata_dependency(layer))]   # what clients forward from their URL is accepted

    async def collection(request: Request) -> Response:
        fmt = formats.negotiate(request, formats.DOCUMENT_FORMATS)
        lang = request_lang(request)
        doc = await collection_doc(request, layer, lang)
        if fmt == "html":
            n, more = await _layer_count(request, layer, settings.download_max_features)
            return await render(request, "features_collection.html", title=doc["title"], c=doc,
                          max_limit=settings.max_limit, count=downloads.count_text(n, lang, more),
                          downloads=downloads.links(f"{public_base_url(request)}{path}/items", None, layer.id))
        return _json(request, doc)

    async def items(request: Request, q: feat.ItemsQuery = Depends(items_dep)) -> Response:
        fmt = formats.negotiate(request, formats.ITEMS_FORMATS)
        labels = _labels(request)     # labels=true|false, else 400 (f=csv: readable titles and values)
        if downloads.wants_download(request, fmt):   # the whole selection (api/downloads.py)
            return await downloads.send(request, layer, q, fmt, labels=labels)
        if fmt == "html":
            # web maps always carry x = easting/longitude
            q.crs = dataclasses.replace(q.crs, lat_first=False)
        page, has_next = await _conn_call(request, feat.fetch_items, layer, q)
        b = public_base_url(request)
        u = f"{b}/collections/{layer.id}/items"
        links = [_link(f"{u}?{_query_with(request)}", "self", GEOJSON if fmt != "html" else "text/html"),
                 _link(f"{u}?{_query_with(request, f='html')}", "alternate", "text/html"),
                 _link(f"{u}?{_query_with(request, f='jsonfg')}", "alternate", jsonfg.MEDIA, "JSON-FG"),
                 _link(f"{b}/collections/{layer.id}", "collection", "application/json")]
        nxt = prv = None
        if has_next:
            nxt = f"{u}?{_query_with(request, offset=q.offset + q.limit)}"
            links.append(_link(nxt, "next", GEOJSON))
        if q.offset > 0:
            prv = f"{u}?{_query_with(request, offset=max(0, q.offset - q.limit))}"
            links.append(_link(prv, "prev", GEOJSON))
        meta: dict[str, Any] = {"numberMatched": page.number_matched, "numberReturned": page.number_returned}
        if page.estimated:
            meta["numberMatchedEstimated"] = True
        features = page.features.encode()
        # the ETag covers the content (features, counts, links), not the timeStamp, so If-None-Match can match
        tag = hashlib.md5(features, usedforsecurity=False)
        tag.update(orjson.dumps(meta) + orjson.dumps(links) + q.crs.uri.encode() + fmt.encode())
        etag = f'"{tag.hexdigest()}"'
        meta["timeStamp"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["links"] = links
        member = geojson_crs(q.crs)     # GDAL/geopandas read the CRS of non-CRS84 GeoJSON from it
        body = b'{"type":"FeatureCollection",' + (b'"crs":' + orjson.dumps(member) + b"," if member else b"") \
            + b'"features":[' + features + b"]," + orjson.dumps(meta)[1:]
        crs_header = {"Content-Crs": f"<{q.crs.uri}>"}
        if fmt == "jsonfg":
            fg = await offload.in_thread(jsonfg.collection, layer, body, q.crs)
            return respond(request, fg, jsonfg.MEDIA, crs_header, etag)
        if fmt == "html":
            lang = request_lang(request)
            data = await offload.in_thread(orjson.loads, body)
            await _conn_call(request, resolve_refs, layer, data["features"])   # parcels by sheet/number, not ids
            fields = _html_fields(layer, lang, q.properties)
            matched, more = page.number_matched, False
            if page.estimated:    # the download links say how many features the files will hold: exactly
                matched, more = await _conn_call(request, feat.count_matches, layer, q, settings.download_max_features)
            return await render(request, "features_items.html", title=layer.title(lang), layer=layer,
                          count=downloads.count_text(matched, lang, more), downloads=downloads.links(u, request, layer.id),
                          collection_title=layer.title(lang), features=data["features"], fields=fields,
                          number_returned=page.number_returned, number_matched=matched if not more else page.number_matched,
                          estimated=page.estimated and more, next=nxt and nxt.replace("f=json", "f=html"), prev=prv,
                          geojson=body.decode().replace("</", "<\\/"), basemap=_basemap(),
                          colour=layer.style.get("default", "#1b5e20"))
        return respond(request, body, GEOJSON if fmt == "geojson" else "application/json", crs_header, etag)

    async def item(request: Request, feature_id: str, q: feat.ItemsQuery = Depends(item_dep)) -> Response:
        fmt = formats.negotiate(request, formats.ITEM_FORMATS)
        fid = _feature_id(layer, feature_id)
        if downloads.wants_download(request, fmt):   # this one feature as a file
            if await _conn_call(request, feat.fetch_item, layer, fid, q) is None:
                raise _not_found_item(layer, feature_id)
            return await downloads.send(request, layer, q, fmt, feature_id=fid)
        if fmt == "html":
            q.crs = dataclasses.replace(q.crs, lat_first=False)
        found = await _conn_call(request, feat.fetch_item, layer, fid, q)
        if found is None:
            raise _not_found_item(layer, feature_id)
        text, version = found
        b = public_base_url(request)
        u = f"{b}/collections/{layer.id}/items/{fid}"
        links = [_link(u, "self", GEOJSON), _link(f"{u}?f=html", "alternate", "text/html"),
                 _link(f"{u}?f=jsonfg", "alternate", jsonfg.MEDIA, "JSON-FG"),
                 _link(f"{b}/collections/{layer.id}", "collection", "application/json"),
                 *record_links(b, layer, fid, request_lang(request))]
        member = geojson_crs(q.crs)
        body = text[:-1].encode() + (b',"crs":' + orjson.dumps(member) if member else b"") \
            + b',"links":' + orjson.dumps(links) + b"}"
        default_repr = fmt in ("json", "geojson") and q.crs == feat.CRS84 and q.properties is None \
            and not q.skip_geometry
        etag = f'"{version}"' if default_repr else None
        headers = {"Content-Crs": f"<{q.crs.uri}>"}
        if fmt == "html":
            lang = request_lang(request)
            data = orjson.loads(body)
            await _conn_call(request, resolve_refs, layer, [data])
            fields = _html_fields(layer, lang, q.properties)
            name = (data.get("properties") or {}).get(layer.label_field or "")   # the feature's own name, not its id
            lf = layer.get_field(layer.label_field or "")
            title = f"{layer.title(lang)} {format_value(lf, name, lang)}" if lf is not None and name else layer.title(lang)
            return await render(request, "features_item.html", title=title, layer=layer,
                          count=downloads.count_text(1, lang),
                          downloads=downloads.links(u, None, f"{layer.id}-{fid}"),
                          collection_title=layer.title(lang), feature=data, fields=fields,
                          geojson=body.decode().replace("</", "<\\/"), basemap=_basemap(),
                          colour=layer.style.get("default", "#1b5e20"))
        if fmt == "jsonfg":
            return respond(request, jsonfg.single(layer, body, q.crs), jsonfg.MEDIA, headers, etag)
        return respond(request, body, GEOJSON if fmt == "geojson" else "application/json", headers, etag)

    async def queryables(request: Request) -> Response:
        lang = request_lang(request)
        doc = feat.queryables(layer, lang)
        doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        doc["$id"] = f"{public_base_url(request)}/collections/{layer.id}/queryables"
        return await _schema_response(request, layer, doc, lang, "Thuộc tính truy vấn", "Queryables")

    async def schema(request: Request) -> Response:
        lang = request_lang(request)
        doc = feat.schema(layer, lang)
        doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        doc["$id"] = f"{public_base_url(request)}/collections/{layer.id}/schema"
        return await _schema_response(request, layer, doc, lang, "Lược đồ", "Schema")

    t = layer.title_en
    router.add_api_route(path, collection, methods=["GET"], summary=f"{t}: collection",
                         dependencies=metadata,
                         responses={**oas.ok_json(oas.COLLECTION, html=True, cached=True),
                                    **oas.problems(400, 406, 503)})
    router.add_api_route(f"{path}/items", items, methods=["GET"], summary=f"{t}: items",
                         openapi_extra={"parameters": items_params}, responses=oas.items_responses(layer))
    router.add_api_route(f"{path}/items/{{feature_id}}", item, methods=["GET"], summary=f"{t}: one feature",
                         responses=oas.item_responses(layer))
    router.add_api_route(f"{path}/queryables", queryables, methods=["GET"], summary=f"{t}: queryables",
                         dependencies=metadata, responses=oas.JSON_SCHEMA_RESPONSES)
    router.add_api_route(f"{path}/schema", schema, methods=["GET"], summary=f"{t}: schema",
                         dependencies=metadata, responses=oas.JSON_SCHEMA_RESPONSES)
    add_write_routes(router, layer, settings)


async def _schema_response(request: Request, layer: Layer, doc: dict[str, Any], lang: str, vi: str,
                     en: str) -> Response:
    if formats.negotiate(request, ("json", "html", "schema")) == "html":   # schema: application/schema+json
        rows = [[name, str(p.get("title", "")), str(p.get("type", p.get("format", ""))),
                 ", ".join(map(str, p.get("enum", [])))] for name, p in doc["properties"].items()]
        return await render(request, "features_document.html", title=f"{layer.title(lang)}: {_t(lang)(vi, en)}",
                      collection={"id": layer.id, "title": layer.title(lang)}, items=None,
                      table={"head": [_t(lang)("Tên", "Name"), _t(lang)("Nhãn", "Title"),
                                      _t(lang)("Kiểu", "Type"), _t(lang)("Giá trị", "Values")], "rows": rows})
    return _json(request, doc, "application/schema+json")



# -- Part 4: create / replace / update / delete ---------------------------------------------------------------

_WRITE_TYPES = ("application/geo+json", "application/json", "application/merge-patch+json")


async def read_body(request: Request, settings: ApiSettings) -> Any:
    """The JSON body, refused with 413 past `max_body_bytes`, 415 for other media types, 400 if not JSON."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in _WRITE_TYPES:
        raise Problem(415, f"Kiểu nội dung '{ctype or '(trống)'}' không được hỗ trợ; dùng application/geo+json",
                      f"Content type '{ctype or '(none)'}' is not supported; use application/geo+json")
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"Dữ liệu gửi lên vượt quá {limit} byte", f"The payload exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"Dữ liệu gửi lên vượt quá {limit} byte", f"The payload exceeds {limit} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"Nội dung không phải JSON hợp lệ: {exc}", f"The body is not valid JSON: {exc}") from None


def _content_crs(request: Request) -> Any:
    text = request.headers.get("content-crs")
    value = text.strip().strip("<>") if text else None
    if value is not None and not (value.isascii() and value.isprintable()):
        shown = value.encode("latin-1", "replace").decode("utf-8", "replace")[:60]
        raise Problem(400, f"Content-Crs: hệ tọa độ '{shown}' không hợp lệ (chỉ dùng URI, EPSG:xxxx hoặc bí danh ASCII)",
                      f"Content-Crs: '{shown}' is not a valid CRS (use a URI, EPSG:xxxx or an ASCII alias)")
    try:
        return selection.resolve_crs(value, "Content-Crs")
    except BilingualError:
        raise               # a CRS the service does not publish: rendered as it is
    except ValueError:      # a CRS text the registry's parser cannot read at all
        raise Problem(400, f"Content-Crs: hệ tọa độ '{str(value)[:60]}' không hợp lệ",
                      f"Content-Crs: '{str(value)[:60]}' is not a valid CRS") from None


def _write_target(request: Request) -> Any:
    """The app's write pool (api/app.py), on the primary."""
    return request.app.state.write_pool


def _limits(settings: ApiSettings) -> writes.GeometryLimits:
    return writes.GeometryLimits(settings.max_geometry_vertices, settings.max_geometry_bytes)


async def _write(request: Request, fn: Any, *args: Any) -> Any:
    # a refused write (WriteError, with its validation issues) or the database down (DatabaseDown: 503 with
    # Retry-After, nothing written) is answered by api/errors.py
    return await run_in_threadpool(fn, *args)


def add_write_routes(router: APIRouter, layer: Layer, settings: ApiSettings) -> None:
    if not layer.editable:
        return
    path = f"/collections/{layer.id}/items"
    auth = require_roles(layer.write_roles)   # the key lookup while the database is down: 503 (api/errors.py)
    security = [Depends(bearer_scheme), Depends(api_key_scheme)]
    body_doc = {"requestBody": {"required": True, "content": {
        "application/geo+json": {"schema": {"type": "object"}}}}}

    async def create(request: Request, who: Principal = Depends(auth)) -> Response:
        registered = layer.registration is not None
        check_unknown(request, ("repair",) if registered else ())
        body = await read_body(request, settings)
        notes: list[dict[str, Any]] = []
        registering = functools.partial(writes.create, notes=notes, policy=registration.Policy.from_settings(settings),
                                   repair=request.query_params.get("repair", "").lower() in ("1", "true", "yes"))
        fid, tag = await _write(request, registering if registered else writes.create, _write_target(request), layer,
                                body, _content_crs(request), who, request_lang(request), _limits(settings))
        headers = {"Location": f"{public_base_url(request)}{path}/{fid}", "ETag": tag}
        if registered:       # the draft's id and the registration's warnings (area far from the supplied one...)
            return Response(orjson.dumps({"id": fid, "warnings": notes}), status_code=201, headers=headers,
                            media_type="application/json")
        return Response(status_code=201, headers=headers)

    def editing(write: Callable[..., Any]) -> Callable[..., Awaitable[Response]]:
        """PUT (`writes.replace`) and PATCH (`writes.update`): the same request, under If-Match."""
        async def edit(request: Request, feature_id: str, who: Principal = Depends(auth)) -> Response:
            check_unknown(request, ())
            fid = _feature_id(layer, feature_id)
            body = await read_body(request, settings)
            tag = await _write(request, write, _write_target(request), layer, fid, body, _content_crs(request),
                               who, request.headers.get("if-match"), request_lang(request), _limits(settings))
            return Response(status_code=204, headers={"ETag": tag})
        return edit

    replace, update = editing(writes.replace), editing(writes.update)

    async def delete(request: Request, feature_id: str, who: Principal = Depends(auth)) -> Response:
        check_unknown(request, ())
        fid = _feature_id(layer, feature_id)
        await _write(request, writes.delete, _write_target(request), layer, fid, who,
                     request.headers.get("if-match"))
        return Response(status_code=204)

    t = layer.title_en
    created = oas.CREATE_RESPONSES if layer.registration is None else {
        **oas.CREATE_RESPONSES, **oas.problems(403), 201: {**oas.CREATE_RESPONSES[201], "content": {
            "application/json": {"schema": {"type": "object"}}}}}
    repair = [] if layer.registration is None else [{
        "name": "repair", "in": "query", "required": False, "schema": {"type": "boolean"},
        "description": "accept the repair (make_valid) of an invalid geometry offered by a previous 422"}]
    router.add_api_route(path, create, methods=["POST"], status_code=201, summary=f"{t}: create a feature",
                         dependencies=security, openapi_extra={**body_doc, "parameters": oas.CONTENT_CRS_PARAM + repair},
                         responses=created)
    router.add_api_route(f"{path}/{{feature_id}}", replace, methods=["PUT"], status_code=204, name="replace",
                         summary=f"{t}: replace a feature (If-Match required)", dependencies=security,
                         openapi_extra={**body_doc, "parameters": oas.IF_MATCH_PARAM + oas.CONTENT_CRS_PARAM},
                         responses=oas.UPDATE_RESPONSES)
    router.add_api_route(f"{path}/{{feature_id}}", update, methods=["PATCH"], status_code=204, name="update",
                         summary=f"{t}: update a feature (JSON merge patch, If-Match required)",
                         dependencies=security, openapi_extra={"requestBody": {"required": True, "content": {
                             "application/merge-patch+json": {"schema": {"type": "object"}}}},
                             "parameters": oas.IF_MATCH_PARAM + oas.CONTENT_CRS_PARAM},
                         responses=oas.UPDATE_RESPONSES)
    router.add_api_route(f"{path}/{{feature_id}}", delete, methods=["DELETE"], status_code=204,
                         summary=f"{t}: delete a feature (If-Match required)", dependencies=security,
                         openapi_extra={"parameters": oas.IF_MATCH_PARAM}, responses=oas.DELETE_RESPONSES)
