"""`GET /lookup?lon=&lat=`: what applies at a point (parcel, commune now and before 2025, planning zone,
land-price zone, auction plots, growing areas) - a thin route over `layers.query.lookup` (one SQL statement)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api import openapi as oas
from api.errors import request_lang
from api.features import render
from api.map import db_conn
from api.security import public_base_url
from layers.query.lookup import describe, lookup, parse_point
from layers.query.selection import QueryError

router = APIRouter()
ALLOWED = frozenset({"lon", "lat", "crs", "f", "lang"})


@router.get("/lookup", summary="Thông tin tại một điểm / What applies here", response_class=Response,
            description="Thửa đất, xã hiện nay và trước 01/07/2025, khu quy hoạch, khu vực giá đất, lô đấu giá và "
                        "vùng trồng tại một điểm, trong một câu trả lời. / The parcel, the commune now and before "
                        "the 2025 reform, the planning zone, the land-price zone, auction plots and growing areas "
                        "at a point, in one answer. A point outside every layer: 200 with empty members.",
            responses={**oas.ok_json(oas.LOOKUP, html=True), **oas.problems(400, 429, 503)})
async def lookup_route(
    request: Request,
    lon: str = Query(..., description="kinh độ (hoặc tọa độ X/easting trong `crs`) / longitude"),
    lat: str = Query(..., description="vĩ độ (hoặc tọa độ Y/northing trong `crs`) / latitude"),
    crs: str | None = Query(None, description="hệ tọa độ của điểm (mặc định CRS84), vd. vn2000:vinh-long / "
                                              "the point's CRS (default CRS84), e.g. EPSG:9209"),
    f: str | None = Query(None, description="json (default) | html"),
) -> Response:
    unknown = sorted(set(request.query_params) - ALLOWED)
    if unknown:
        raise QueryError(f"tham số không được hỗ trợ: {', '.join(unknown)}",
                         f"unsupported parameter(s): {', '.join(unknown)}")
    if f not in (None, "", "json", "html"):
        raise QueryError("f phải là json hoặc html", "f must be json or html")
    x, y = parse_point(lon, lat, crs)
    lang = request_lang(request)
    async with db_conn(request) as conn:
        raw = await lookup(conn, x, y)
    body = describe(raw, x, y, lang, public_base_url(request))
    headers = {"Cache-Control": "public, max-age=60", "Content-Language": lang, "Vary": "Accept-Language"}
    if f == "html":
        return await render(request, "lookup.html", title="Thông tin tại điểm" if lang == "vi" else "What applies here",
                            r=body)
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
