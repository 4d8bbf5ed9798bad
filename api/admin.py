"""`GET /admin/crosswalk`: the 2025 reform's old->new and new->old administrative units, and old addresses
converted. Thin route: the work is in `layers.query.admin`."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.errors import request_lang
from api.map import db_conn
from layers.query.admin import convert_address, crosswalk

router = APIRouter(tags=["Đơn vị hành chính / Administrative units"])


@router.get("/admin/crosswalk", summary="Chuyển đổi đơn vị hành chính cũ ↔ mới (2025) / Old ↔ new units",
            response_class=Response)
async def crosswalk_route(
    request: Request,
    old: str | None = Query(None, description="mã đơn vị cũ (trước 01/07/2025), vd. 28756"),
    new: str | None = Query(None, description="mã đơn vị mới (từ 01/07/2025), vd. 28756"),
    address: str | None = Query(None, description="địa chỉ viết theo đơn vị cũ, để chuyển sang đơn vị mới"),
) -> Response:
    lang = request_lang(request)
    body: dict[str, Any]
    if address is not None and old is None and new is None:
        body = convert_address(address)
    else:
        async with db_conn(request) as conn:
            body = await crosswalk(conn, old, new)   # bad or unknown code: CrosswalkError (400/404)
    return Response(orjson.dumps(body), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=300", "Content-Language": lang})
