"""`GET /admin/crosswalk`: the 2025 reform's old->new and new->old administrative units, and old addresses
converted. Thin route: the work is in `layers.query.admin`."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import openapi as oas
from api.errors import request_lang
from api.map import db_conn
from layers.query.admin import convert_address, crosswalk

router = APIRouter(tags=["Đơn vị hành chính / Administrative units"])
_UNIT = {"type": "object", "required": ["code", "name"],
         "properties": {"code": {"type": "string"}, "scheme": {"type": "string"}, "name": {"type": "string"},
                        "level": {"type": "string"}, "share": {"type": ["number", "null"]}}}
CROSSWALK = oas.component("AdminCrosswalk", {
    "type": "object", "description": "old -> new units (`old`), new -> old units (`new`) or a converted address",
    "properties": {"old": {"anyOf": [_UNIT, {"type": "array", "items": _UNIT}]},
                   "new": {"anyOf": [_UNIT, {"type": "array", "items": _UNIT}, {"type": "object"}]},
                   "effective": {"type": "string", "format": "date"}, "legal_basis": {"type": ["string", "null"]},
                   "split": {"type": "boolean"}, "address": {"type": "string"}, "converted": {"type": "string"}},
})


@router.get("/admin/crosswalk", summary="Chuyển đổi đơn vị hành chính cũ ↔ mới (2025) / Old ↔ new units",
            response_class=Response,
            responses={**oas.ok_json(CROSSWALK), **oas.problems(400, 404, 429, 503)})
async def crosswalk_route(
    request: Request,
    old: str | None = Query(None, description="mã đơn vị cũ (trước 01/07/2025), vd. 28756",
                            json_schema_extra={"pattern": "^[0-9]{2,5}$"}),
    new: str | None = Query(None, description="mã đơn vị mới (từ 01/07/2025), vd. 28756",
                            json_schema_extra={"pattern": "^[0-9]{2,5}$"}),
    address: str | None = Query(None, description="địa chỉ viết theo đơn vị cũ, để chuyển sang đơn vị mới "
                                "(chỉ dùng một trong ba tham số old, new, address)",
                                json_schema_extra={"maxLength": 200}),
) -> Response:
    lang = request_lang(request)
    body: dict[str, Any]
    if address is not None and old is None and new is None:
        body = await run_in_threadpool(convert_address, address)   # the package's parser is plain Python
    else:
        async with db_conn(request) as conn:
            body = await crosswalk(conn, old, new)   # bad or unknown code: CrosswalkError (400/404)
    return Response(orjson.dumps(body), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=300", "Content-Language": lang})
