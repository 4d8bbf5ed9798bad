"""Query-parameter dependencies for the features API.

Each dependency declares its parameters (so they appear in the OpenAPI document), refuses unknown ones with a
400 (OGC API – Features /req/core/query-param-unknown), and turns the values into a plain
`layers.query.features.ItemsQuery` with the parsing functions of `layers.query.features` and the one
selection parser (`layers.query.selection`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Query, Request

from api.errors import Problem
from layers.catalog.registry import LAYERS, Layer
from layers.query import features as feat
from layers.query import selection
from layers.query.cql2 import FILTER_LANGS
from layers.settings import ApiSettings

COMMON = frozenset({"f", "lang"})
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
MAX_OFFSET = 1_000_000_000   # the SQL OFFSET parameter is an int4
ITEMS = frozenset({"limit", "offset", "bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs",
                   "sortby", "properties", "skipGeometry", "crs", "download", "labels"})
ITEM = frozenset({"crs", "properties", "skipGeometry", "download"})
# OGC parameters that clients forward to every request, metadata documents included: GDAL's OAPIF driver
# appends the query of its connection URL (`OAPIF:…/collections/parcels?crs=…`) to /, /api, /collections/{id}
# and /queryables; QGIS and OWSLib add crs/bbox-crs/limit to the collection documents. Metadata endpoints accept
# them and answer the same document (a CRS list, not data); data endpoints still refuse unknown parameters.
METADATA = ITEMS | {"datetime", "filter", "filter-lang", "filter-crs"}


def check_unknown(request: Request, allowed: Iterable[str], forwarded: bool = False) -> None:
    """400 naming the unknown parameters; `forwarded`: a metadata document, whose message names f and lang and
    says that the forwarded OGC parameters are ignored (rather than listing every queryable)."""
    allowed = set(allowed) | COMMON
    unknown = sorted({k for k in request.query_params if k not in allowed})
    if unknown:
        names = ", ".join(unknown)
        listed = ", ".join(sorted(COMMON if forwarded else allowed))
        vi_more = " (crs, bbox-crs, limit… và thuộc tính truy vấn được chấp nhận, bỏ qua)" if forwarded else ""
        en_more = " (crs, bbox-crs, limit… and queryables are accepted and ignored)" if forwarded else ""
        raise Problem(400, f"Tham số không được hỗ trợ: {names}. Tham số hợp lệ: {listed}{vi_more}",
                      f"Unknown query parameter(s): {names}. Allowed: {listed}{en_more}")


def _forwarded(layers: Iterable[Layer]) -> frozenset[str]:
    return METADATA | {f.name for layer in layers for f in layer.queryables}


_FORWARDED_ANY = _forwarded(LAYERS.values())


async def only_common(request: Request) -> None:
    """For metadata documents: f and lang, and what a client forwards from its connection URL to every request
    (the OGC items parameters, a queryable's `?field=value`), ignored; anything else is refused."""
    check_unknown(request, _FORWARDED_ANY, forwarded=True)


def metadata_dependency(layer: Layer) -> Callable[[Request], Awaitable[None]]:
    """`only_common` for one collection's documents (its own queryables only)."""
    allowed = _forwarded([layer])

    async def dependency(request: Request) -> None:
        check_unknown(request, allowed, forwarded=True)

    return dependency


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    # the same value twice counts once: GDAL appends its connection URL's query (`?crs=…`) to every request,
    # the `next` links included, which already carry it
    if len(set(values)) > 1:
        raise Problem(400, f"Tham số '{name}' chỉ được dùng một lần", f"Parameter '{name}' may be given only once")
    return values[0] if values else None


def _bool(name: str, text: str | None) -> bool:
    if text is None:
        return False
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise Problem(400, f"'{name}' phải là true hoặc false", f"'{name}' must be true or false")


def _int(name: str, text: str | None, default: int, minimum: int, maximum: int | None = None) -> int:
    if text is None:
        return default
    try:
        if not _INTEGER.fullmatch(text):   # int() would also read "1_0", " 1" and Unicode digits ("𝟙", "١")
            raise ValueError(text)
        v = int(text)
    except ValueError:
        raise Problem(400, f"'{name}' phải là số nguyên: '{text[:40]}'",
                      f"'{name}' must be an integer: '{text[:40]}'") from None
    if v < minimum:
        raise Problem(400, f"'{name}' phải ≥ {minimum}", f"'{name}' must be >= {minimum}")
    if maximum is not None and v > maximum:
        raise Problem(400, f"'{name}' tối đa là {maximum}", f"'{name}' must be <= {maximum}")
    return v


def items_openapi_parameters(layer: Layer, settings: ApiSettings) -> list[dict[str, Any]]:
    """The OpenAPI description of the `/items` query parameters (the dependency reads them itself: declaring
    a dozen FastAPI `Query` parameters costs ~0.4 ms per request in validation alone)."""
    def param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema or {"type": "string"},
                "description": description}

    out = [
        param("limit", f"Số đối tượng mỗi trang / page size (default {settings.default_limit})",
              {"type": "integer", "minimum": 1, "maximum": settings.max_limit}),
        param("offset", "Bỏ qua N đối tượng đầu / skip N features",
              {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}),
        param("bbox", "minx,miny,maxx,maxy (in bbox-crs, default CRS84)"),
        param("bbox-crs", "CRS of bbox (URI)"),
        param("datetime", "RFC 3339 instant or interval (a/b, ../b, a/..)"),
        param("filter", "CQL2 filter"),
        param("filter-lang", "cql2-text (default) | cql2-json", {"type": "string", "enum": list(FILTER_LANGS)}),
        param("filter-crs", "CRS of the filter's geometries (URI)"),
        param("sortby", "e.g. -area_m2,id"),
        param("properties", "comma-separated property names"),
        param("skipGeometry", "true: no geometry", {"type": "boolean"}),
        param("crs", "output CRS (see the collection's `crs` list)"),
        param("download", "true: the whole selection as a file (f=geojson); f=csv|gpkg|fgb|shp|kml always are "
              "(without limit: every matching feature, up to DATSO_DOWNLOAD_MAX_FEATURES)", {"type": "boolean"}),
        param("labels", "f=csv: true = tiêu đề cột và giá trị dễ đọc theo ngôn ngữ (lang) / readable column titles "
              "and values in the request's language (labels, names, dates; lists as 'a; b')", {"type": "boolean"}),
    ]
    out += [param(f.name, f"{f.title_vi} / {f.title_en} (=)") for f in layer.queryables]
    return out


def items_query_dependency(layer: Layer, settings: ApiSettings) -> Callable[[Request], Awaitable[feat.ItemsQuery]]:
    """The dependency of `/collections/{layer}/items`: the selection parsed by layers/query/selection.py, the
    rest by layers/query/features.py."""
    allowed = ITEMS | {f.name for f in layer.queryables}

    async def dependency(request: Request) -> feat.ItemsQuery:   # async: no threadpool hop per request
        check_unknown(request, allowed)
        qp = request.query_params
        get = {name: _single(request, name) for name in ITEMS}
        q = feat.ItemsQuery(
            limit=_int("limit", get["limit"], settings.default_limit, 1, settings.max_limit),
            offset=_int("offset", get["offset"], 0, 0, MAX_OFFSET),
            crs=selection.resolve_crs(get["crs"], "crs"),
            skip_geometry=_bool("skipGeometry", get["skipGeometry"]),
        )
        _bool("download", get["download"])     # read by api/downloads.py; checked here
        equals = {}
        if len(qp) > len([k for k in qp if k in ITEMS or k in COMMON]):
            for f in layer.queryables:
                v = _single(request, f.name)
                if v is not None:
                    equals[f.name] = v
        sel = selection.parse_selection(layer, bbox=get["bbox"], bbox_crs=get["bbox-crs"], datetime=get["datetime"],
                                        equals=equals, filter=get["filter"], filter_lang=get["filter-lang"],
                                        filter_crs=get["filter-crs"])
        q.selection = None if sel.empty else sel
        if get["sortby"]:
            q.sortby = feat.parse_sortby(layer, get["sortby"])
        if get["properties"] is not None:
            q.properties = feat.parse_properties(layer, get["properties"])
        return q

    return dependency


def item_query_dependency(layer: Layer) -> Callable[..., Awaitable[feat.ItemsQuery]]:
    async def dependency(
        request: Request,
        crs: str | None = Query(None, description="output CRS"),
        properties: str | None = Query(None),
        skip_geometry: str | None = Query(None, alias="skipGeometry"),
        download: str | None = Query(None, description="true: this feature as a GeoJSON file (f=csv|gpkg|fgb|shp|kml "
                                     "always are)"),
    ) -> feat.ItemsQuery:
        check_unknown(request, ITEM)
        _bool("download", download)
        q = feat.ItemsQuery(crs=selection.resolve_crs(crs, "crs"), skip_geometry=_bool("skipGeometry", skip_geometry))
        if properties is not None:
            q.properties = feat.parse_properties(layer, properties)
        return q

    return dependency
