"""Vector tile routes, generated from the layer registry: OGC API – Tiles, a multi-layer endpoint,
TileJSON 3.0 and MapLibre styles. Thin: parsing and rendering here, the work in `tiles/`.

Tile paths are `{z}/{x}/{y}` (column x, row y of WebMercatorQuad, as TiPg and XYZ clients use).
An empty tile is `204 No Content`; a tile outside the matrix set is 400, a zoom outside the layer's
range 404, an unknown layer 404, a bad filter 400 (all problem+json).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api import openapi as oas
from api.conditional import etag_matches
from api.errors import Problem, request_lang
from api.security import public_base_url
from layers.catalog.registry import LAYERS, Layer
from layers.settings import TileSettings, get_tile_settings
from layers.store import connect
from tiles import styles, tilejson, tms
from tiles.archive import TileArchive
from tiles.cache import CacheKey
from tiles.filters import NON_FILTER_PARAMS, TileFilter, parse_filters
from tiles.service import TileResult, TileService

MVT = "application/vnd.mapbox-vector-tile"
TILE_SUFFIXES = ("pbf", "mvt")
# OGC API – Tiles 1.0 and TMS 2.0 classes these routes implement (listed by /conformance)
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/tilesetmetadata",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilesetmetadata",
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await service(app)
    yield
    svc: TileService | None = getattr(app.state, "tile_service", None)
    if svc is not None:
        await svc.stop()
        app.state.tile_service = None
    arch: TileArchive | None = getattr(app.state, "tile_archive", None)
    if arch is not None:
        arch.close()
        app.state.tile_archive = None


router = APIRouter(tags=["tiles"], lifespan=lifespan)


def tile_settings(app: FastAPI) -> TileSettings:
    s = getattr(app.state, "tile_settings", None)
    if s is None:
        s = app.state.tile_settings = get_tile_settings()
    return s  # type: ignore[no-any-return]


async def service(app: FastAPI) -> TileService:
    svc: TileService | None = getattr(app.state, "tile_service", None)
    if svc is not None:
        return svc
    lock: asyncio.Lock | None = getattr(app.state, "tile_lock", None)
    if lock is None:
        lock = app.state.tile_lock = asyncio.Lock()
    async with lock:
        svc = getattr(app.state, "tile_service", None)
        if svc is None:
            db = app.state.db
            # tiles read from the read pool; the invalidation LISTEN goes to the primary, where the triggers'
            # NOTIFYs are sent (a replica does not relay them)
            svc = TileService(connect.listen_url(db.primary), db.acquire, tile_settings(app),
                              replica=db.dsn != db.primary)
            await svc.start()
            app.state.tile_service = svc
    return svc


def _layer(layer_id: str) -> Layer:
    layer = LAYERS.get(layer_id)
    if layer is None:
        known = ", ".join(LAYERS)
        raise Problem(404, f"Không có lớp dữ liệu {layer_id!r}; các lớp: {known}",
                      f"Unknown layer {layer_id!r}; layers: {known}")
    return layer


def _layers_param(value: str | None) -> list[Layer]:
    if not value:
        return list(LAYERS.values())
    ids = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not ids:
        raise Problem(400, "Tham số layers rỗng", "Empty layers parameter")
    return [_layer(i) for i in ids]


def _json(body: Any, request: Request, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), media_type=media_type,
                    headers={"Cache-Control": request.app.state.api_settings.cache_control,
                             "Content-Language": request_lang(request)})


def _identity_etag(etag: str) -> str:
    return etag[:-1] + '-i"'


def _not_modified(if_none_match: str | None, result: TileResult) -> bool:
    # both encodings carry the same tile: either tag makes a 304
    return etag_matches(if_none_match, result.etag, _identity_etag(result.etag))


def tile_response(request: Request, result: TileResult, cache_state: str) -> Response:
    settings = tile_settings(request.app)
    gzip_ok = "gzip" in request.headers.get("accept-encoding", "")
    # one ETag per representation: the MVT hash for gzip, with "-i" for identity
    etag = result.etag if gzip_ok else _identity_etag(result.etag)
    headers = {"ETag": etag, "Cache-Control": settings.cache_control, "Vary": "Accept-Encoding",
               "X-Cache": cache_state}
    if _not_modified(request.headers.get("if-none-match"), result):
        return Response(status_code=304, headers=headers)
    if result.empty:
        return Response(status_code=204, headers=headers)
    if gzip_ok:
        headers["Content-Encoding"] = "gzip"
        return Response(result.gzipped(settings.gzip_level), media_type=MVT, headers=headers)
    return Response(result.identity(), media_type=MVT, headers=headers)


async def serve_tile(request: Request, layers: Sequence[Layer], tile: tms.TileID,
                     tile_filter: TileFilter | None) -> Response:
    active = [layer for layer in layers if layer.minzoom <= tile.z <= layer.maxzoom]
    if not active:
        lo, hi = min(la.minzoom for la in layers), max(la.maxzoom for la in layers)
        names = ", ".join(la.id for la in layers)
        raise Problem(404, f"Lớp {names} chỉ có ô ở mức thu phóng {lo}–{hi} (yêu cầu z={tile.z})",
                      f"Layer {names} has tiles at zooms {lo}-{hi} only (asked z={tile.z})")
    svc = await service(request.app)
    # the database down (503) or a filter value PostgreSQL/PostGIS refuses (400): api/errors.py answers
    result = await svc.tile(layers, tile, tile_filter)
    state = "HIT" if result.cached else ("MISS" if svc.caching else "OFF")
    return tile_response(request, result, state)


# --- tile matrix sets -------------------------------------------------------------------------------
@router.get("/tileMatrixSets", summary="Tile matrix sets", responses=oas.ok_json(oas.TMS_LIST))
async def tile_matrix_sets(request: Request) -> Response:
    base = public_base_url(request)
    sets = [{"id": t, "title": tms.get_tms(t).title, "uri": tms.get_tms(t).uri,
             "links": [{"rel": "self", "type": "application/json", "href": f"{base}/tileMatrixSets/{t}"}]}
            for t in tms.SUPPORTED]
    return _json({"tileMatrixSets": sets}, request)


@router.get("/tileMatrixSets/{tms_id}", summary="A tile matrix set", responses={**oas.ok_json(oas.TMS), **oas.problems(404)})
async def tile_matrix_set(request: Request, tms_id: str) -> Response:
    return _json(tms.document(tms_id), request)


# --- per collection -------------------------------------------------------------------------------
@router.get("/collections/{collection_id}/tiles", summary="Tilesets of a collection",
            responses={**oas.ok_json(oas.TILESETS), **oas.problems(404)})
async def collection_tilesets(request: Request, collection_id: str) -> Response:
    layer = _layer(collection_id)
    base = public_base_url(request)
    sets = [tilejson.ogc_tileset_summary(layer, base, t) for t in tms.SUPPORTED]
    links = [{"rel": "self", "type": "application/json", "href": f"{base}/collections/{layer.id}/tiles"}]
    return _json({"links": links, "tilesets": sets}, request)


@router.get("/collections/{collection_id}/tiles/{tms_id}", summary="Tileset metadata",
            responses={**oas.ok_json(oas.TILESET), **oas.problems(404, 503)})
async def collection_tileset(request: Request, collection_id: str, tms_id: str) -> Response:
    layer = _layer(collection_id)
    tms.get_tms(tms_id)
    bounds = await layer_bounds(request, [layer])
    return _json(tilejson.ogc_tileset(layer, public_base_url(request), tms_id, bounds, request_lang(request)), request)


@router.get("/collections/{collection_id}/tiles/{tms_id}/tilejson.json", summary="TileJSON 3.0 of a layer",
            responses={**oas.ok_json(oas.TILEJSON), **oas.problems(404, 503)})
async def collection_tilejson(request: Request, collection_id: str, tms_id: str) -> Response:
    layer = _layer(collection_id)
    tms.validate(tms_id, 0, 0, 0)
    bounds = await layer_bounds(request, [layer])
    url = f"{public_base_url(request)}/collections/{layer.id}/tiles/{tms_id}/{{z}}/{{x}}/{{y}}"
    return _json(tilejson.tilejson([layer], url, bounds, request_lang(request)), request)


@router.get("/collections/{collection_id}/tiles/{tms_id}/metadata.json",
            summary="MBTiles metadata of a layer (for GDAL's MVT driver on a tile directory)",
            responses={**oas.ok_json(oas.MBTILES_METADATA), **oas.problems(404, 503)})
async def collection_tile_metadata(request: Request, collection_id: str, tms_id: str) -> Response:
    layer = _layer(collection_id)
    tms.validate(tms_id, 0, 0, 0)
    bounds = await layer_bounds(request, [layer])
    return _json(tilejson.mbtiles_metadata([layer], bounds, request_lang(request)), request)


@router.get("/collections/{collection_id}/tiles/{tms_id}/{z}/{x}/{y}.{ext}",
            summary="A vector tile (MVT) of one layer, with a file suffix (.pbf, .mvt)",
            description="The same tile as without suffix: for clients that know a tile by its extension "
                        "(GDAL's MVT driver: `MVT:…/{z}/{x}/{y}.pbf`, or a tile directory `MVT:…/{tms}/{z}`).",
            response_class=Response, responses=oas.TILE_RESPONSES)
async def collection_tile_file(request: Request, collection_id: str, tms_id: str, z: int, x: int, y: int,
                               ext: str) -> Response:
    if ext not in TILE_SUFFIXES:
        raise Problem(404, f"Đuôi tệp ô '.{ext[:10]}' không hỗ trợ; dùng .pbf hoặc .mvt",
                      f"Tile suffix '.{ext[:10]}' is not served; use .pbf or .mvt")
    return await collection_tile(request, collection_id, tms_id, z, x, y)


@router.get("/collections/{collection_id}/tiles/{tms_id}/{z}/{x}/{y}",
            summary="A vector tile (MVT) of one layer",
            description="Filters: `?<queryable>=<value>` (equality; for list fields, membership). "
                        "204 when the tile is empty.",
            response_class=Response, responses=oas.TILE_RESPONSES)
async def collection_tile(request: Request, collection_id: str, tms_id: str, z: int, x: int, y: int) -> Response:
    layer = _layer(collection_id)
    tile = tms.validate(tms_id, z, x, y)
    tile_filter = parse_filters(layer, dict(request.query_params))
    return await serve_tile(request, [layer], tile, tile_filter)


@router.get("/collections/{collection_id}/style.json", summary="MapLibre style of a layer",
            responses={**oas.ok_json(oas.STYLE), **oas.problems(404, 503)})
async def collection_style(request: Request, collection_id: str) -> Response:
    layer = _layer(collection_id)
    base = public_base_url(request)
    bounds = await layer_bounds(request, [layer])
    return _json(styles.style([layer], f"{base}/collections/{layer.id}/tiles/{tms.DEFAULT_TMS}/tilejson.json",
                              bounds, request_lang(request)), request)


# --- multi-layer ------------------------------------------------------------------------------------
@router.get("/tiles/tilejson.json", summary="TileJSON 3.0 of several layers in one tile",
            responses={**oas.ok_json(oas.TILEJSON), **oas.problems(400, 404, 503)})
async def multi_tilejson(request: Request, layers: str | None = Query(None, description="a,b,...")) -> Response:
    chosen = _layers_param(layers)
    ids = ",".join(la.id for la in chosen)
    bounds = await layer_bounds(request, chosen)
    url = f"{public_base_url(request)}/tiles/{{z}}/{{x}}/{{y}}.mvt?layers={ids}"
    return _json(tilejson.tilejson(chosen, url, bounds, request_lang(request)), request)


@router.get("/tiles/metadata.json", summary="MBTiles metadata of several layers (GDAL's MVT driver: `MVT:…/tiles/{z}`)",
            responses={**oas.ok_json(oas.MBTILES_METADATA), **oas.problems(400, 404, 503)})
async def multi_tile_metadata(request: Request, layers: str | None = Query(None, description="a,b,...")) -> Response:
    chosen = _layers_param(layers)
    bounds = await layer_bounds(request, chosen)
    return _json(tilejson.mbtiles_metadata(chosen, bounds, request_lang(request)), request)


@router.get("/tiles/{z}/{x}/{y}.pbf", summary="A vector tile with several layers (.pbf, as tile directories name it)",
            response_class=Response, responses=oas.TILE_RESPONSES)
@router.get("/tiles/{z}/{x}/{y}.mvt", summary="A vector tile with several layers", response_class=Response,
            responses=oas.TILE_RESPONSES)
async def multi_tile(request: Request, z: int, x: int, y: int,
                     layers: str | None = Query(None, description="layer ids, comma-separated; default all")
                     ) -> Response:
    chosen = _layers_param(layers)
    tile = tms.validate(tms.DEFAULT_TMS, z, x, y)
    extra = sorted(k for k in request.query_params if k not in NON_FILTER_PARAMS or k.startswith("filter"))
    if extra:
        raise Problem(400, f"Ô nhiều lớp không nhận bộ lọc ({', '.join(extra)}); lọc từng lớp tại "
                           "/collections/{id}/tiles/WebMercatorQuad/{z}/{x}/{y}",
                      f"Multi-layer tiles take no filters ({', '.join(extra)}); filter one layer at "
                      "/collections/{id}/tiles/WebMercatorQuad/{z}/{x}/{y}")
    return await serve_tile(request, chosen, tile, None)


@router.get("/styles/default.json", summary="MapLibre style with every layer",
            responses={**oas.ok_json(oas.STYLE), **oas.problems(503)})
async def default_style(request: Request) -> Response:
    chosen = list(LAYERS.values())
    ids = ",".join(la.id for la in chosen)
    bounds = await layer_bounds(request, chosen)
    return _json(styles.style(chosen, f"{public_base_url(request)}/tiles/tilejson.json?layers={ids}", bounds,
                              request_lang(request)), request)


# --- a seeded archive -------------------------------------------------------------------------------
def _archive(request: Request) -> TileArchive:
    arch: TileArchive | None = getattr(request.app.state, "tile_archive", None)
    if arch is None:
        path = tile_settings(request.app).archive
        if path is None or not path.exists():
            raise Problem(404, "Máy chủ không phục vụ gói ô dựng sẵn (DATSO_TILE_ARCHIVE)",
                          "No seeded tile archive is configured (DATSO_TILE_ARCHIVE)")
        arch = request.app.state.tile_archive = TileArchive.open(path)
    return arch


@router.get("/tiles/archive/tilejson.json", summary="TileJSON of the seeded archive",
            responses={**oas.ok_json(oas.TILEJSON), **oas.problems(404)})
async def archive_tilejson(request: Request) -> Response:
    arch = _archive(request)
    url = f"{public_base_url(request)}/tiles/archive/{{z}}/{{x}}/{{y}}.mvt"
    chosen = [_layer(i) for i in arch.layers]
    return _json(tilejson.tilejson(chosen, url, arch.bounds, request_lang(request),
                                   minzoom=arch.minzoom, maxzoom=arch.maxzoom), request)


@router.get("/tiles/archive/{z}/{x}/{y}.mvt", summary="A tile of the seeded archive (PMTiles/MBTiles)",
            response_class=Response, responses=oas.TILE_RESPONSES)
async def archive_tile(request: Request, z: int, x: int, y: int) -> Response:
    arch = _archive(request)
    tile = tms.validate(tms.DEFAULT_TMS, z, x, y)
    if not arch.minzoom <= z <= arch.maxzoom:
        raise Problem(404, f"Gói ô chỉ có mức {arch.minzoom}–{arch.maxzoom}",
                      f"The archive holds zooms {arch.minzoom}-{arch.maxzoom} only")
    return tile_response(request, TileResult.of_entry(arch.get(tile)), "ARCHIVE")


# --- bounds -----------------------------------------------------------------------------------------
_BOUNDS: dict[str, tuple[float, tuple[float, float, float, float] | None]] = {}
BOUNDS_TTL = 60.0


async def layer_bounds(request: Request, layers: Sequence[Layer]) -> tuple[float, float, float, float] | None:
    """Union of the layers' extents (lon/lat), cached a minute per layer; None when all are empty."""
    out: list[tuple[float, float, float, float]] = []
    db = request.app.state.db
    for layer in layers:
        cached = _BOUNDS.get(f"{db.dsn}|{layer.id}")
        if cached is None or time.monotonic() - cached[0] > BOUNDS_TTL:
            row = await db.fetchrow(tilejson.bounds_sql(layer))
            box = None if row is None or row["xmin"] is None else \
                (float(row["xmin"]), float(row["ymin"]), float(row["xmax"]), float(row["ymax"]))
            cached = _BOUNDS[f"{db.dsn}|{layer.id}"] = (time.monotonic(), box)
        if cached[1] is not None:
            out.append(cached[1])
    if not out:
        return None
    return (min(b[0] for b in out), min(b[1] for b in out), max(b[2] for b in out), max(b[3] for b in out))


# --- the cached-tile fast path ----------------------------------------------------------------------
_FAST_SINGLE = re.compile(r"^/collections/([a-z_]+)/tiles/WebMercatorQuad/(\d+)/(\d+)/(\d+)(?:\.pbf|\.mvt)?$")
_FAST_MULTI = re.compile(r"^/tiles/(\d+)/(\d+)/(\d+)\.(?:mvt|pbf)$")
_ALL_LAYERS = tuple(LAYERS)


class TileFastPath:
    """Pure-ASGI middleware (outermost) for the hot path: a GET of a tile without filters is answered
    here, from the cache or built (the same `TileService.tile` the routes call), without routing,
    dependency injection and the other middlewares. Anything unusual - a filter, an invalid tile or
    layer, a zoom outside the layers' range, an origin the CORS settings must judge, an error - falls
    through to the routes above, which answer it (problem+json included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            key = self._key(scope)
            owner = scope.get("app")
            svc: TileService | None = getattr(getattr(owner, "state", None), "tile_service", None)
            if key is not None and svc is not None and await self._serve(scope, send, owner, svc, key):
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _key(scope: Scope) -> CacheKey | None:
        path: str = scope["path"]
        qs: bytes = scope.get("query_string", b"")
        m = _FAST_SINGLE.match(path)
        if m is not None:
            if qs:
                return None
            return CacheKey((m[1],), "", int(m[2]), int(m[3]), int(m[4]))
        m = _FAST_MULTI.match(path)
        if m is None:
            return None
        if not qs:
            ids = _ALL_LAYERS
        elif qs.startswith(b"layers=") and b"&" not in qs:
            ids = tuple(dict.fromkeys(v for v in unquote(qs[7:].decode("latin-1")).split(",") if v))
            if not ids:
                return None
        else:
            return None
        return CacheKey(ids, "", int(m[1]), int(m[2]), int(m[3]))

    @staticmethod
    async def _serve(scope: Scope, send: Send, app: Any, svc: TileService, key: CacheKey) -> bool:
        accept, inm, origin = b"", None, None
        for k, v in scope["headers"]:
            if k == b"accept-encoding":
                accept = v
            elif k == b"if-none-match":
                inm = v.decode("latin-1")
            elif k == b"origin":
                origin = v
        if origin is not None and "*" not in app.state.api_settings.cors_origins:
            return False     # the CORS middleware decides
        entry = svc.cache.get(key, count_miss=False) if svc.cache is not None and svc.caching else None
        if entry is not None:
            result, state = TileResult.of_entry(entry), b"HIT"
        else:
            if any(lid not in LAYERS for lid in key.layers):
                return False
            layers = [LAYERS[lid] for lid in key.layers]
            try:
                tile = tms.validate(tms.DEFAULT_TMS, key.z, key.x, key.y)
            except tms.TileError:
                return False
            if not any(la.minzoom <= key.z <= la.maxzoom for la in layers):
                return False
            try:
                result = await svc.tile(layers, tile, None)
            except Exception:   # noqa: BLE001 - the route redoes it and reports the error properly
                return False
            state = b"MISS" if svc.caching else b"OFF"
        settings = svc.settings
        gz = b"gzip" in accept
        etag = result.etag if gz else _identity_etag(result.etag)
        headers = [(b"etag", etag.encode()), (b"cache-control", settings.cache_control.encode()),
                   (b"vary", b"Accept-Encoding"), (b"x-cache", state)]
        if origin is not None:
            headers += [(b"access-control-allow-origin", b"*"),
                        (b"access-control-expose-headers", b"ETag, Content-Crs, Link")]
        if _not_modified(inm, result):
            status, body = 304, b""
        elif result.empty:
            status, body = 204, b""
        else:
            status = 200
            body = result.gzipped(settings.gzip_level) if gz else result.identity()
            headers += [(b"content-type", MVT.encode()), (b"content-length", str(len(body)).encode())]
            if gz:
                headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True
