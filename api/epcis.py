"""EPCIS 2.0 over HTTP: `POST /epcis/capture` (a producer, packer, officer or admin sends an EPCISDocument) and
`GET /epcis/events` (anyone queries events back as an EPCISQueryDocument). Thin: the work is
`layers.ingest.epcis.capture` (in a thread, on the write pool) and `layers.query.epcis` (on the read pool).

Capture answers 201 with what was stored (200 when every event was already captured: re-sending a document
is harmless), 401 anonymous, 403 when the sender may not write at an event's location (the location is named),
400 with a per-event, per-field `errors` array, 413 past `DATSO_EPCIS_MAX_DOCUMENT_BYTES`, 415 for a body that is
not JSON / JSON-LD. Query answers 400 (EPCIS QueryParameterException) for an unknown or bad parameter, and
pages with `perPage` + `nextPageToken` (a `Link: <…>; rel="next"` header and the `GS1-Next-Page-Token` header).
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import api_key_scheme, bearer_scheme, require_roles
from api.errors import Problem
from api.security import public_base_url
from layers.accounts.principal import ALL_ROLES, Principal
from layers.ingest import epcis as capture_
from layers.query import epcis as query_
from layers.settings import ApiSettings

router = APIRouter(tags=["EPCIS 2.0"])
EPCIS_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}
_TYPES = ("application/json", "application/ld+json")
require_sender = require_roles(ALL_ROLES)


def limits(settings: ApiSettings) -> capture_.CaptureLimits:
    return capture_.CaptureLimits(settings.epcis_max_document_bytes, settings.epcis_max_events,
                                  settings.epcis_max_depth, settings.epcis_max_list)


async def _read(request: Request, limit: int) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in _TYPES:
        raise Problem(415, f"Kiểu nội dung '{ctype or '(trống)'}' không được hỗ trợ; dùng application/json hoặc "
                           "application/ld+json", f"Content type '{ctype or '(none)'}' is not supported; use "
                                                  "application/json or application/ld+json")
    declared = request.headers.get("content-length")
    too_big = Problem(413, f"Tài liệu EPCIS vượt quá {limit} byte", f"The EPCIS document exceeds {limit} bytes",
                      type=capture_.EXCEPTION_BASE + "CaptureLimitExceededException")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/epcis/capture", summary="Capture an EPCIS 2.0 document (all events or none)",
             dependencies=[Depends(bearer_scheme), Depends(api_key_scheme)],
             responses={201: {"description": "events stored"}, 200: {"description": "nothing new (all duplicates)"},
                        400: {"description": "refused: per-event, per-field errors"},
                        401: {"description": "sign-in required"}, 403: {"description": "location outside scope"},
                        409: {"description": "an eventID already captured with other content"},
                        413: {"description": "too large"}, 415: {"description": "not JSON"}})
async def capture(request: Request, who: Principal = Depends(require_sender)) -> Response:
    settings: ApiSettings = request.app.state.api_settings
    lim = limits(settings)
    body = await _read(request, lim.max_bytes)
    result = await run_in_threadpool(capture_.capture, request.app.state.write_pool, body, who, lim)
    return Response(orjson.dumps(result.as_dict()), status_code=201 if result.stored else 200,
                    media_type="application/json", headers=EPCIS_HEADERS)


@router.get("/epcis/events", summary="Query EPCIS 2.0 events (SimpleEventQuery parameters)",
            responses={200: {"description": "an EPCISQueryDocument", "content": {"application/ld+json": {}}},
                       400: {"description": "QueryParameterException"}})
async def events(request: Request) -> Response:
    settings: ApiSettings = request.app.state.api_settings
    params: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        params.setdefault(k, []).append(v)
    q = query_.parse_query(params, settings.epcis_default_per_page, settings.epcis_max_per_page)
    async with request.app.state.db.connection("read") as conn:
        found, token = await query_.find_events(conn, q)
    headers = dict(EPCIS_HEADERS)
    if token is not None:
        keep = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
        nxt = f"{public_base_url(request)}/epcis/events?{urlencode([*keep, ('nextPageToken', token)])}"
        headers["Link"] = f'<{nxt}>; rel="next"'
        headers["GS1-Next-Page-Token"] = token
    return Response(orjson.dumps(query_.query_document(found)), media_type="application/ld+json", headers=headers)
