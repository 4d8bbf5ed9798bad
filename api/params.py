"""Query-parameter dependencies for the features API.

Each dependency declares its parameters (so they appear in the OpenAPI document), refuses unknown ones with a
400 (OGC API – Features /req/core/query-param-unknown), and turns the values into a plain
`layers.features.ItemsQuery` with the parsing functions of `layers.features`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import Query, Request

from api.errors import Problem
from api.settings import ApiSettings
from layers import features as feat
from layers.cql2 import CqlError
from layers.registry import Layer

COMMON = frozenset({"f", "lang"})
ITEMS = frozenset({"limit", "offset", "bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs",
                   "sortby", "properties", "skipGeometry", "crs"})
ITEM = frozenset({"crs", "properties", "skipGeometry"})


def check_unknown(request: Request, allowed: Iterable[str]) -> None:
    allowed = set(allowed) | COMMON
    unknown = sorted({k for k in request.query_params if k not in allowed})
    if unknown:
        names = ", ".join(unknown)
        raise Problem(400, f"Tham số không được hỗ trợ: {names}. Tham số hợp lệ: {', '.join(sorted(allowed))}",
                      f"Unknown query parameter(s): {names}. Allowed: {', '.join(sorted(allowed))}")


def only_common(request: Request) -> None:
    """For pages that take no parameter besides f and lang."""
    check_unknown(request, ())


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
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
        v = int(text)
    except ValueError:
        raise Problem(400, f"'{name}' phải là số nguyên: '{text[:40]}'",
                      f"'{name}' must be an integer: '{text[:40]}'") from None
    if v < minimum:
        raise Problem(400, f"'{name}' phải ≥ {minimum}", f"'{name}' must be >= {minimum}")
    if maximum is not None and v > maximum:
        raise Problem(400, f"'{name}' tối đa là {maximum}", f"'{name}' must be <= {maximum}")
    return v


def items_query_dependency(layer: Layer, settings: ApiSettings) -> Callable[..., feat.ItemsQuery]:
    """The dependency of `/collections/{layer}/items` (parameters documented for OpenAPI)."""
    allowed = ITEMS | {f.name for f in layer.queryables}

    def dependency(
        request: Request,
        limit: int | None = Query(None, ge=1, le=settings.max_limit,
                                  description=f"Số đối tượng mỗi trang / page size (default "
                                              f"{settings.default_limit}, max {settings.max_limit})"),
        offset: int | None = Query(None, ge=0, description="Bỏ qua N đối tượng đầu / skip N features"),
        bbox: str | None = Query(None, description="minx,miny,maxx,maxy (in bbox-crs, default CRS84)"),
        bbox_crs: str | None = Query(None, alias="bbox-crs"),
        datetime: str | None = Query(None, description="RFC 3339 instant or interval (a/b, ../b, a/..)"),
        filter: str | None = Query(None, description="CQL2 filter"),
        filter_lang: str | None = Query(None, alias="filter-lang", description="cql2-text (default) | cql2-json"),
        filter_crs: str | None = Query(None, alias="filter-crs"),
        sortby: str | None = Query(None, description="e.g. -area_m2,id"),
        properties: str | None = Query(None, description="comma-separated property names"),
        skip_geometry: str | None = Query(None, alias="skipGeometry"),
        crs: str | None = Query(None, description="output CRS (see the collection's `crs` list)"),
    ) -> feat.ItemsQuery:
        check_unknown(request, allowed)
        qp = request.query_params
        for name in ("limit", "offset", "bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs",
                     "sortby", "properties", "crs", "skipGeometry"):
            _single(request, name)
        try:
            q = feat.ItemsQuery(
                limit=_int("limit", qp.get("limit"), settings.default_limit, 1, settings.max_limit),
                offset=_int("offset", qp.get("offset"), 0, 0),
                crs=feat.resolve_crs(crs, "crs"),
                skip_geometry=_bool("skipGeometry", skip_geometry),
            )
            if bbox is not None:
                q.bbox = feat.parse_bbox(bbox)
                q.bbox_crs = feat.resolve_crs(bbox_crs, "bbox-crs")
            elif bbox_crs is not None:
                raise feat.QueryError("bbox-crs chỉ dùng kèm bbox", "bbox-crs needs bbox")
            if datetime is not None:
                q.datetime = feat.parse_datetime(datetime)
            if filter is not None:
                q.filter = filter
                q.filter_lang = filter_lang or "cql2-text"
                if filter_crs is not None:
                    feat.resolve_crs(filter_crs, "filter-crs")
                q.filter_crs = filter_crs
                # parse now so that syntax errors are 400 before touching the database
                feat.check_filter(layer, q)
            elif filter_lang is not None or filter_crs is not None:
                raise feat.QueryError("filter-lang/filter-crs chỉ dùng kèm filter",
                                      "filter-lang/filter-crs need filter")
            if sortby:
                q.sortby = feat.parse_sortby(layer, sortby)
            if properties is not None:
                q.properties = feat.parse_properties(layer, properties)
            for f in layer.queryables:
                v = _single(request, f.name)
                if v is not None:
                    feat.coerce_value(f, v)
                    q.properties_eq[f.name] = v
        except CqlError as exc:
            raise Problem(400, exc.message("vi"), exc.message("en")) from None
        return q

    return dependency


def item_query_dependency(layer: Layer) -> Callable[..., feat.ItemsQuery]:
    def dependency(
        request: Request,
        crs: str | None = Query(None, description="output CRS"),
        properties: str | None = Query(None),
        skip_geometry: str | None = Query(None, alias="skipGeometry"),
    ) -> feat.ItemsQuery:
        check_unknown(request, ITEM)
        try:
            q = feat.ItemsQuery(crs=feat.resolve_crs(crs, "crs"), skip_geometry=_bool("skipGeometry", skip_geometry))
            if properties is not None:
                q.properties = feat.parse_properties(layer, properties)
        except CqlError as exc:
            raise Problem(400, exc.message("vi"), exc.message("en")) from None
        return q

    return dependency
