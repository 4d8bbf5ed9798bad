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

from api import openapi as oas
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

_STR = {"type": "string"}
_ARR = {"type": "array", "items": _STR}
_EVENT = {"type": "object", "required": ["type", "eventTime", "eventTimeZoneOffset"],
          "properties": {"type": {"type": "string", "enum": ["ObjectEvent", "AggregationEvent", "TransactionEvent",
                                                             "TransformationEvent", "AssociationEvent"]},
                         "eventID": _STR, "eventTime": {"type": "string", "format": "date-time"},
                         "eventTimeZoneOffset": {"type": "string", "pattern": "^[+-][0-9]{2}:[0-9]{2}$"},
                         "action": {"type": "string", "enum": ["ADD", "OBSERVE", "DELETE"]}, "bizStep": _STR,
                         "disposition": _STR, "epcList": _ARR, "childEPCs": _ARR, "parentID": _STR,
                         "inputEPCList": _ARR, "outputEPCList": _ARR}}
_DOCUMENT = {"type": "object", "required": ["type", "epcisBody"], "properties": {
    "type": {"type": "string", "enum": ["EPCISDocument"]}, "schemaVersion": _STR,
    "epcisBody": {"type": "object", "required": ["eventList"],
                  "properties": {"eventList": {"type": "array", "items": _EVENT}}}}}
_RESULT = {"type": "object", "required": ["stored", "duplicates", "eventIDs", "lotsCreated"], "properties": {
    "stored": {"type": "integer"}, "duplicates": {"type": "integer"}, "eventIDs": _ARR, "lotsCreated": _ARR}}
_QUERY_DOCUMENT = {"type": "object", "required": ["@context", "type", "epcisBody"], "properties": {
    "@context": {"type": "array"}, "type": {"type": "string", "enum": ["EPCISQueryDocument"]},
    "schemaVersion": _STR, "creationDate": _STR,
    "epcisBody": {"type": "object", "properties": {"queryResults": {"type": "object", "properties": {
        "queryName": _STR, "resultsBody": {"type": "object", "properties": {
            "eventList": {"type": "array", "items": {"type": "object"}}}}}}}}}}


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
             dependencies=[Depends(bearer_scheme), Depends(api_key_scheme)], status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {
                 m: {"schema": _DOCUMENT} for m in ("application/ld+json", "application/json")}}},
             responses={201: {"description": "Events stored", "content": {"application/json": {"schema": _RESULT}}},
                        200: {"description": "Nothing new (every event already captured)",
                              "content": {"application/json": {"schema": _RESULT}}},
                        **oas.problems(400, 401, 403, 409, 413, 415, 429, 503)})
async def capture(request: Request, who: Principal = Depends(require_sender)) -> Response:
    settings: ApiSettings = request.app.state.api_settings
    lim = limits(settings)
    body = await _read(request, lim.max_bytes)
    result = await run_in_threadpool(capture_.capture, request.app.state.write_pool, body, who, lim)
    return Response(orjson.dumps(result.as_dict()), status_code=201 if result.stored else 200,
                    media_type="application/json", headers=EPCIS_HEADERS)


@router.get("/epcis/events", summary="Query EPCIS 2.0 events (SimpleEventQuery parameters)",
            description="EPCIS 2.0 common query parameters (several values: repeat or separate with commas): "
                        + ", ".join(sorted(query_.KNOWN - {"lang", "f"})) + ". An unknown parameter or a bad value "
                        "is a 400 QueryParameterException. Identifiers as EPC URNs or GS1 Digital Link URIs.",
            responses={**oas.ok_json(_QUERY_DOCUMENT, "An EPCISQueryDocument", media=("application/ld+json",)),
                       **oas.problems(400, 429, 503)})
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
