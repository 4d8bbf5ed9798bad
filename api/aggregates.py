"""`/collections/{id}/aggregate` (counts, sums, means, minima, maxima per group over any selection, JSON or
CSV) and `/collections/{id}/transitions` (status changes per month from the audit history): thin routes over
`layers.query.aggregate`, with the items' selection parameters (`api.params`, `layers.query.selection`)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api import formats
from api import openapi as oas
from api.errors import Problem, request_lang
from api.params import check_unknown
from layers.catalog.registry import Layer, UnknownLayer, get_layer
from layers.query import aggregate as agg
from layers.query import selection

router = APIRouter(tags=["Aggregates"])


def _param(name: str, description: str) -> dict[str, object]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": description}


_AGG_PARAMS = [
    _param("group_by", "fields to group by, comma-separated; a date by period: valid_from:month (year|month|day)"),
    _param("count", "count is always given; count=f1,f2 adds the non-empty values of each field"),
    _param("sum", "numeric fields to sum"), _param("avg", "numeric fields to average"),
    _param("min", "numeric or date fields"), _param("max", "numeric or date fields"),
    _param("bbox", "minx,miny,maxx,maxy (as on items)"), _param("bbox-crs", "CRS of bbox"),
    _param("datetime", "RFC 3339 instant or interval (as on items)"), _param("filter", "CQL2 filter (as on items)"),
    _param("filter-lang", "cql2-text | cql2-json"), _param("filter-crs", "CRS of the filter's geometries"),
    _param("f", "json (default) | csv"),
]
_AGG_OK = oas.ok("Groups with their keys, labels and values (docs/aggregates.md)",
                 {"application/json": {"schema": {"type": "object", "required": ["groups"]}},
                  "text/csv": {"schema": {"type": "string"}}})
_TRANSITIONS_OK = oas.ok_json({"type": "object", "required": ["transitions"]})
SELECTION = ("bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs")
AGGREGATE = frozenset({*SELECTION, "group_by", *agg.OPS})


def _layer(collection_id: str) -> Layer:
    try:
        return get_layer(collection_id)
    except UnknownLayer:
        raise Problem(404, f"Không có lớp dữ liệu '{collection_id[:60]}'",
                      f"No collection '{collection_id[:60]}'") from None


def _one(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(set(values)) > 1:
        raise Problem(400, f"Tham số '{name}' chỉ được dùng một lần", f"Parameter '{name}' may be given only once")
    return values[0] if values else None


def _selection(request: Request, layer: Layer) -> selection.Selection | None:
    get = {n: _one(request, n) for n in SELECTION}
    equals = {f.name: v for f in layer.queryables if (v := _one(request, f.name)) is not None}
    sel = selection.parse_selection(layer, bbox=get["bbox"], bbox_crs=get["bbox-crs"], datetime=get["datetime"],
                                    equals=equals, filter=get["filter"], filter_lang=get["filter-lang"],
                                    filter_crs=get["filter-crs"])
    return None if sel.empty else sel


@router.get("/collections/{collection_id}/aggregate", summary="Aggregates per group over a selection",
            responses={**_AGG_OK, **oas.problems(400, 404, 406, 413, 503)},
            openapi_extra={"parameters": _AGG_PARAMS})
async def aggregate(request: Request, collection_id: str) -> Response:
    """group_by=f1,f2 (a date as f:year|month|day), count[=f,…], sum=…, avg=…, min=…, max=…; the items'
    selection parameters (bbox, datetime, filter, ?field=value); f=json (default) or f=csv."""
    layer = _layer(collection_id)
    # `count` and `sum`… are also field names of no layer; a queryable named like an operation would be shadowed
    check_unknown(request, AGGREGATE | {f.name for f in layer.queryables})
    fmt = formats.negotiate(request, ("json", "csv"))
    lang = request_lang(request)
    q = agg.parse_aggregate(layer, group_by=_one(request, "group_by"), count=_one(request, "count"),
                            sum=_one(request, "sum"), avg=_one(request, "avg"), min=_one(request, "min"),
                            max=_one(request, "max"))
    sel = _selection(request, layer)
    limit = request.app.state.api_settings.aggregate_max_groups
    async with request.app.state.db.connection("read") as conn:
        result = await agg.aggregate(conn, layer, sel, q, limit)
    headers = {"Cache-Control": request.app.state.api_settings.cache_control, "Content-Language": lang}
    if fmt == "csv":
        header, rows = result.rows(lang)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)
        headers["Content-Disposition"] = f'attachment; filename="{layer.id}-aggregate.csv"'
        return Response(("\ufeff" + buf.getvalue()).encode(), media_type=formats.MEDIA["csv"], headers=headers)
    return Response(orjson.dumps(result.document(lang)), media_type="application/json", headers=headers)


def _instant(name: str, text: str | None) -> dt.datetime | None:
    if text is None or text in ("", ".."):
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(400, f"'{name}' phải là ngày hoặc thời điểm RFC 3339: '{text[:40]}'",
                      f"'{name}' must be an RFC 3339 date or instant: '{text[:40]}'") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@router.get("/collections/{collection_id}/transitions", summary="Status changes per period (audit history)",
            responses={**_TRANSITIONS_OK, **oas.problems(400, 404, 406, 503)},
            openapi_extra={"parameters": [_param("period", "year | month (default) | day"),
                                          _param("datetime", "a/b: the window (either end open with ..)")]})
async def transitions(request: Request, collection_id: str) -> Response:
    """How many features entered each status per `period` (year|month|day, default month), from the audit
    history; `datetime=a/b` (either end open with ..) limits the window."""
    layer = _layer(collection_id)
    check_unknown(request, {"period", "datetime"})
    formats.negotiate(request, ("json",))
    start, _, end = (_one(request, "datetime") or "").partition("/")
    window = (_instant("datetime", start), _instant("datetime", end or None))
    async with request.app.state.db.connection("read") as conn:
        doc = await agg.transitions(conn, layer, _one(request, "period") or "month", window, request_lang(request))
    return Response(orjson.dumps(doc), media_type="application/json",
                    headers={"Cache-Control": request.app.state.api_settings.cache_control})
