"""Raster layers (`/rasters`, `/rasters/{name}`, TileJSON, PNG/WebP tiles through rio-tiler) and zonal statistics
of a raster per feature (`/collections/{id}/items/{fid}/stats`, `/collections/{id}/stats` over any selection):
thin routes over `layers.store.rasters`, `tiles.raster` and `layers.query.zonal`.

Tile parameters: `bidx` (band indexes, `1,2,3`), `expression` (band math on b1…bN, e.g. `(b4-b3)/(b4+b3)`),
`rescale` (`min,max`, one or one per band), `colormap_name` (a rio-tiler colormap, e.g. `rdylgn`). A tile that
misses the raster answers 204 No Content (as `/imagery`); a bad parameter 400 naming it; an unknown raster 404.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import openapi as oas
from api.errors import Problem, request_lang
from api.params import _int, check_unknown
from api.security import public_base_url
from layers.catalog.registry import LAYERS, Layer
from layers.query import selection, zonal
from layers.settings import get_imagery_settings
from layers.store.rasters import RasterError, RasterInfo, list_rasters, open_raster
from tiles.raster import FORMATS, Render, parse_colormap, parse_expression, parse_rescale, render_tile

router = APIRouter(tags=["Ảnh / Rasters"])
CACHE = "public, max-age=3600"
TILE_PARAMS = frozenset({"bidx", "expression", "rescale", "colormap_name"})
STATS_PARAMS = frozenset({"raster", "band", "expression"})
PAGE_PARAMS = frozenset({"limit", "offset"})
SELECTION_PARAMS = frozenset({"bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs"})


def _json(request: Request, body: Any, cache: str | None = None) -> Response:
    headers = {"Content-Language": request_lang(request)}
    if cache:
        headers["Cache-Control"] = cache
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def _links(base: str, info: RasterInfo) -> dict[str, Any]:
    r = f"{base}/rasters/{info.name}"
    return {"tiles": [f"{r}/tiles/{{z}}/{{x}}/{{y}}.png"], "links": [
        {"rel": "self", "href": r, "type": "application/json"},
        {"rel": "tilejson", "href": f"{r}/tilejson.json", "type": "application/json"},
        {"rel": "item", "href": f"{r}/tiles/{{z}}/{{x}}/{{y}}.png", "type": "image/png", "templated": True}]}


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise Problem(400, f"{name}: chỉ được cho một lần", f"{name}: give it once")
    return values[0] if values else None


def parse_render(request: Request, info: RasterInfo) -> Render:
    check_unknown(request, TILE_PARAMS)
    expr, bidx = _single(request, "expression"), _single(request, "bidx")
    rescale, cmap_name = _single(request, "rescale"), _single(request, "colormap_name")
    if expr is not None and bidx is not None:
        raise RasterError(400, "bidx: không dùng cùng expression", "bidx: not together with expression")
    indexes = None
    if bidx is not None:
        indexes = tuple(info.band_index(b) for b in bidx.split(",") if b.strip())
        if not indexes or len(indexes) > 4:
            raise RasterError(400, "bidx: cần 1 đến 4 kênh", "bidx: 1 to 4 bands")
    return Render(indexes=indexes, expression=None if expr is None else parse_expression(info, expr),
                  rescale=None if rescale is None else parse_rescale(rescale),
                  colormap_name=None if cmap_name is None else parse_colormap(cmap_name))


@lru_cache(maxsize=32)
def _band_stats(path: str, mtime: float) -> list[dict[str, Any]]:
    from rio_tiler.io import Reader

    with Reader(path) as r:
        stats = r.statistics(max_size=512)
    return [{"band": k, **{n: getattr(v, n) for n in ("min", "max", "mean", "std", "percentile_2", "percentile_98",
                                                       "valid_percent")}} for k, v in stats.items()]


@router.get("/rasters", summary="Các lớp ảnh / Raster layers", responses={**oas.ok_json(oas.RASTERS),
                                                                              **oas.problems(400)})
async def rasters_index(request: Request) -> Response:
    check_unknown(request, ())
    base = public_base_url(request)
    items = await run_in_threadpool(list_rasters)
    return _json(request, {"rasters": [{**i.to_json(), **_links(base, i)} for i in items]})


@router.get("/rasters/{name}", summary="Mô tả lớp ảnh / Raster metadata",
            responses={**oas.ok_json(oas.RASTER), **oas.problems(400, 404)})
async def raster_doc(request: Request, name: str) -> Response:
    check_unknown(request, ())

    def work() -> dict[str, Any]:
        info = open_raster(name)
        return {**info.to_json(), "statistics": _band_stats(str(info.path), info.path.stat().st_mtime),
                **_links(public_base_url(request), info)}

    return _json(request, await run_in_threadpool(work))


TILE_QUERY: dict[str, Any] = {
    "bidx": Query(None, description="band indexes or names, comma separated (e.g. 3,2,1 or nir)"),
    "expression": Query(None, description="band math on b1…bN, e.g. (b4-b3)/(b4+b3)"),
    "rescale": Query(None, description="min,max (one range, or one per band separated by ;)"),
    "colormap_name": Query(None, description="a rio-tiler colormap for one band (e.g. rdylgn, viridis)")}


@router.get("/rasters/{name}/tilejson.json", summary="TileJSON của lớp ảnh / Raster TileJSON",
            responses={**oas.ok_json(oas.RASTER), **oas.problems(400, 404)})
async def raster_tilejson(request: Request, name: str, bidx: str | None = TILE_QUERY["bidx"],
                          expression: str | None = TILE_QUERY["expression"],
                          rescale: str | None = TILE_QUERY["rescale"],
                          colormap_name: str | None = TILE_QUERY["colormap_name"]) -> Response:
    info = await run_in_threadpool(open_raster, name)
    parse_render(request, info)
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k in TILE_PARAMS])
    url = f"{public_base_url(request)}/rasters/{name}/tiles/{{z}}/{{x}}/{{y}}.png" + (f"?{query}" if query else "")
    b = info.bounds
    return _json(request, {"tilejson": "3.0.0", "name": info.name, "tiles": [url], "bounds": list(b),
                           "center": [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, max(info.minzoom, 10)],
                           "minzoom": info.minzoom, "maxzoom": info.maxzoom, "scheme": "xyz",
                           "attribution": "datso (synthetic)" if info.synthetic else "datso"})


@router.get("/rasters/{name}/tiles/{z}/{x}/{y}.{ext}", summary="Ô ảnh PNG/WebP (WebMercatorQuad) / Raster tile",
            response_class=Response, responses=oas.PNG_RESPONSES)
async def raster_tile(request: Request, name: str, z: int, x: int, y: int, ext: str,
                      bidx: str | None = TILE_QUERY["bidx"], expression: str | None = TILE_QUERY["expression"],
                      rescale: str | None = TILE_QUERY["rescale"],
                      colormap_name: str | None = TILE_QUERY["colormap_name"]) -> Response:
    fmt = ext
    if fmt not in FORMATS:
        raise RasterError(404, f"Định dạng '{fmt[:10]}' không có (png, webp)", f"No format '{fmt[:10]}' (png, webp)")

    def work() -> bytes | None:
        info = open_raster(name)
        return render_tile(info, z, x, y, render=parse_render(request, info), fmt=fmt)

    data = await run_in_threadpool(work)
    if data is None:
        return Response(status_code=204, headers={"Cache-Control": CACHE})
    return Response(data, media_type=FORMATS[fmt][1], headers={"Cache-Control": CACHE})


# -- zonal statistics ------------------------------------------------------------------------------------------
STATS_QUERY: dict[str, Any] = {
    "raster": Query(..., description="the raster layer (see /rasters)"),
    "band": Query(None, description="band index or name (default 1)"),
    "expression": Query(None, description="band math on b1…bN instead of a band, e.g. (b4-b3)/(b4+b3)"),
    "f": Query(None, description="json (default) or csv")}


def _layer(collection_id: str) -> Layer:
    layer = LAYERS.get(collection_id)
    if layer is None:
        raise Problem(404, f"Không có lớp dữ liệu '{collection_id[:60]}'", f"No collection '{collection_id[:60]}'")
    return layer


def _what(request: Request) -> tuple[RasterInfo, zonal.What]:
    raster = _single(request, "raster")
    if not raster:
        raise RasterError(400, "raster: thiếu tên lớp ảnh (ví dụ raster=sample_s2)",
                          "raster: missing the raster name (e.g. raster=sample_s2)")
    info = open_raster(raster)
    band, expr = _single(request, "band"), _single(request, "expression")
    if band is not None and expr is not None:
        raise RasterError(400, "band: không dùng cùng expression", "band: not together with expression")
    if expr is not None:
        return info, zonal.What(expression=parse_expression(info, expr))
    return info, zonal.What(band=info.band_index(band) if band is not None else 1)


def _check_f(f: str | None) -> None:
    if f is not None and f not in ("json", "csv"):
        raise Problem(400, f"f: định dạng '{f[:10]}' không có (json, csv)", f"f: no format '{f[:10]}' (json, csv)")


def _stats_response(request: Request, body: dict[str, Any], rows: list[dict[str, Any]],
                    headers: dict[str, str] | None = None) -> Response:
    f = request.query_params.get("f")
    if f == "csv":
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=["id", *zonal.STATS], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="stats-{body["raster"]}.csv"',
                                 **(headers or {})})
    r = _json(request, body)
    r.headers.update(headers or {})
    return r


@router.get("/collections/{collection_id}/items/{feature_id}/stats",
            summary="Thống kê ảnh trong một đối tượng / Zonal statistics of a feature",
            responses={**oas.ok_json(oas.ZONAL), **oas.problems(400, 404)})
async def feature_stats(request: Request, collection_id: str, feature_id: str,
                        raster: str = STATS_QUERY["raster"], band: str | None = STATS_QUERY["band"],
                        expression: str | None = STATS_QUERY["expression"],
                        f: str | None = STATS_QUERY["f"]) -> Response:
    layer = _layer(collection_id)
    check_unknown(request, STATS_PARAMS)
    _check_f(f)
    if not (feature_id.isascii() and feature_id.isdigit()) or len(feature_id) > 18:
        raise Problem(404, f"Lớp '{layer.id}' không có đối tượng '{feature_id[:40]}'",
                      f"Collection '{layer.id}' has no feature '{feature_id[:40]}'")
    fid = int(feature_id)
    dsn = request.app.state.db.dsn

    def work() -> tuple[RasterInfo, zonal.What, list[dict[str, Any]]]:
        info, what = _what(request)
        ids, geoms, _ = zonal.fetch_features(dsn, layer, None, 1, feature_id=fid)
        if not ids:
            raise Problem(404, f"Lớp '{layer.id}' không có đối tượng '{fid}'", f"Collection '{layer.id}' has no "
                          f"feature '{fid}'")
        return info, what, zonal.zonal(info, ids, geoms, what)

    info, what, rows = await run_in_threadpool(work)
    body = {"collection": layer.id, "raster": info.name, "measure": what.label, "crs": info.crs,
            "synthetic": info.synthetic, **rows[0]}
    return _stats_response(request, body, rows)


@router.get("/collections/{collection_id}/stats",
            summary="Thống kê ảnh theo từng đối tượng đã chọn / Zonal statistics of a selection",
            responses={**oas.ok_json(oas.ZONAL), **oas.problems(400, 404, 413)})
async def selection_stats(request: Request, collection_id: str,
                          raster: str = STATS_QUERY["raster"], band: str | None = STATS_QUERY["band"],
                          expression: str | None = STATS_QUERY["expression"],
                          f: str | None = STATS_QUERY["f"],
                          limit: str | None = Query(None, description="a page of at most this many features, "
                                                    "ordered by id (at most DATSO_RASTER_STATS_MAX_FEATURES); "
                                                    "without it the whole selection or 413"),
                          offset: str | None = Query(None, description="with limit: the page's first feature "
                                                     "(0-based); the answer links the next page")) -> Response:
    layer = _layer(collection_id)
    check_unknown(request, STATS_PARAMS | SELECTION_PARAMS | PAGE_PARAMS | {q.name for q in layer.queryables})
    _check_f(f)
    get = {n: _single(request, n) for n in SELECTION_PARAMS}
    equals = {q.name: v for q in layer.queryables if (v := _single(request, q.name)) is not None}
    sel = selection.parse_selection(layer, bbox=get["bbox"], bbox_crs=get["bbox-crs"], datetime=get["datetime"],
                                    equals=equals, filter=get["filter"], filter_lang=get["filter-lang"],
                                    filter_crs=get["filter-crs"])
    dsn = request.app.state.db.dsn
    most = get_imagery_settings().raster_stats_max_features
    # without limit: the whole selection or 413; with limit (at most the ceiling): a page, ordered by id
    paged = _single(request, "limit") is not None
    if not paged and _single(request, "offset") is not None:
        raise Problem(400, "offset: chỉ dùng kèm limit", "offset: needs limit")
    size = _int("limit", _single(request, "limit"), most, 1, most)
    start = _int("offset", _single(request, "offset"), 0, 0, 1_000_000_000)

    def work() -> tuple[RasterInfo, zonal.What, list[dict[str, Any]], bool]:
        info, what = _what(request)
        ids, geoms, more = zonal.fetch_features(dsn, layer, None if sel.empty else sel, size, offset=start,
                                                paged=paged)
        return info, what, zonal.zonal(info, ids, geoms, what), more

    info, what, rows, more = await run_in_threadpool(work)
    body: dict[str, Any] = {"collection": layer.id, "raster": info.name, "measure": what.label, "crs": info.crs,
                            "synthetic": info.synthetic, "numberReturned": len(rows), "features": rows}
    headers: dict[str, str] = {}
    if paged:
        u = f"{public_base_url(request)}/collections/{layer.id}/stats"
        pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        links = [{"rel": "self", "type": "application/json", "href": f"{u}?{urlencode(request.query_params.multi_items())}"}]
        if more:
            nxt = f"{u}?{urlencode([*pairs, ('offset', str(start + size))])}"
            links.append({"rel": "next", "type": "application/json", "href": nxt})
            headers["Link"] = f'<{nxt}>; rel="next"'
        body["links"] = links
    return _stats_response(request, body, rows, headers)
