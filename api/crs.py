"""`GET /crs`: the definitions of the CRSs this service publishes (`?crs=` one, in any form the items' `crs`
takes: URI, EPSG code, alias such as vn2000:ben-tre), so a client reprojects with the official VN-2000 shift
(`datso_client.Client.crs`) - a thin route over `gis.crs.definition`."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api import openapi as oas
from api.params import check_unknown
from gis.crs import definition
from layers.query.selection import published_crs, resolve_crs

router = APIRouter()
CRS_LIST = oas.component("CrsDefinitions", {
    "type": "object", "required": ["crs"],
    "properties": {"crs": {"type": "array", "items": {
        "type": "object", "required": ["key", "uri", "wkt"],
        "properties": {"key": {"type": "string"}, "uri": {"type": "string"}, "name": {"type": "string"},
                       "epsg": {"type": ["integer", "null"]}, "boundToWgs84": {"type": "boolean"},
                       "wkt": {"type": "string"}, "proj": {"type": "string"}}}}}})


@router.get("/crs", summary="Định nghĩa hệ tọa độ / CRS definitions", response_class=Response,
            description="Các hệ tọa độ dịch vụ công bố, kèm WKT2 (VN-2000 gắn với WGS 84 theo tham số chính thức "
                        "của Quyết định 05/2007) để chuyển đổi đúng như dịch vụ. / The CRSs this service "
                        "publishes with their WKT2 (VN-2000 bound to WGS 84 by the official Decision 05/2007 "
                        "Helmert), so a client reprojects exactly as the service does.",
            responses={**oas.ok_json(CRS_LIST), **oas.problems(400, 429)})
async def crs_route(request: Request, crs: str | None = Query(None, description="một hệ tọa độ (URI, EPSG:…, "
                                                                               "vn2000:…) / one CRS")) -> Response:
    check_unknown(request, ("crs", "f"))
    chosen = [resolve_crs(crs, "crs")] if crs is not None else published_crs()
    body = {"crs": [definition(d) for d in chosen]}
    return Response(orjson.dumps(body), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=86400"})
