"""`GET /collections/{id}/items/{featureId}/history` for every layer, and the sourcing links of a layer's
relations (`GET/PUT /collections/{id}/items/{featureId}/{relation}`, e.g. a packing house's source growing areas).

History: JSON (`entries` newest first, `numberMatched`, `links` with next/prev) or an HTML page (Vietnamese first,
values formatted by layers/catalog/formats.py, the old and new boundary on a small offline Leaflet map). Anonymous
callers get the public fields without the actor; an officer's or admin's key the full history
(layers/query/history.py). Relations: the list of linked ids (public read), replaced by an officer's PUT in one
audited transaction (layers/ingest/relations.py; the link table's trigger writes the history).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from api import formats
from api import openapi as oas
from api.auth import api_key_scheme, bearer_scheme, bearer_secret, current_key, require_roles
from api.errors import Problem, request_lang
from api.features import _feature_id, _json, _link, _not_found_item, _write_target, read_body, render
from api.params import _int, _single, check_unknown
from api.security import public_base_url
from layers.accounts.principal import Principal
from layers.catalog.registry import LAYERS, Layer, Relation
from layers.ingest import relations as rel_writes
from layers.query import history as hist
from layers.settings import ApiSettings

FULL_ROLES = ("officer", "admin")
DEFAULT_LIMIT = 50
_ANY: dict[str, Any] = {}
HISTORY = oas.component("History", {"type": "object", "required": ["featureId", "entries", "numberMatched"],
                                    "properties": {
    "collection": {"type": "string"}, "featureId": {"type": "integer"}, "deleted": {"type": "boolean"},
    "view": {"type": "string", "enum": ["public", "full"]}, "numberMatched": {"type": "integer"},
    "numberReturned": {"type": "integer"}, "links": oas.LINKS,
    "entries": {"type": "array", "items": {"type": "object", "properties": {
        "at": {"type": "string"}, "action": {"type": "string", "enum": ["insert", "update", "delete"]},
        "actor": {"type": "string"}, "reason": {"type": ["string", "null"]}, "recordedReason": {"type": "string"},
        "transition": {"type": "object", "properties": {
            "field": {"type": "string"}, "from": {"type": ["string", "null"]}, "to": {"type": ["string", "null"]},
            "fromLabel": {"type": "string"}, "toLabel": {"type": "string"}}},
        "geometryChanged": {"type": "boolean"},
        "geometryBefore": _ANY, "geometryAfter": _ANY,
        "changes": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "title": {"type": "string"}, "before": _ANY, "after": _ANY}}}}}}}})
LINKED = oas.component("LinkedFeatures", {"type": "object", "required": ["featureId", "ids"], "properties": {
    "collection": {"type": "string"}, "featureId": {"type": "integer"}, "relation": {"type": "string"},
    "target": {"type": "string"}, "ids": {"type": "array", "items": {"type": "integer"}},
    "items": {"type": "array", "items": {"type": "object"}}, "links": oas.LINKS}})
HISTORY_RESPONSES = {**oas.ok_json(HISTORY, html=True, cached=True), **oas.problems(400, 401, 404, 406, 429, 503)}
LINKED_RESPONSES = {**oas.ok_json(LINKED, cached=True), **oas.problems(400, 404, 406, 503)}
LINK_WRITE_RESPONSES = {**oas.ok_json(LINKED), **oas.problems(400, 401, 403, 404, 413, 415, 422, 429, 503)}


async def _viewer(request: Request) -> Principal | None:
    """The officer/admin reading (full history), None for the public; a key that is not valid is a 401."""
    if bearer_secret(request) is None:
        return None
    key = await current_key(request)
    if key is None:
        vi = request_lang(request) == "vi"
        raise HTTPException(401, "Khóa API không hợp lệ hoặc đã bị thu hồi" if vi else "Invalid or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return key if key.role in FULL_ROLES else None


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.datetime | dt.date) else v


def _entry_json(layer: Layer, e: hist.Entry, lang: str) -> dict[str, Any]:
    d: dict[str, Any] = {"at": _iso(e.at), "action": e.action}
    if e.actor is not None:
        d["actor"] = e.actor
    d["reason"] = hist.reason_text(layer, e.reason, lang)        # in words, with the lifecycle's labels
    if e.reason != d["reason"]:
        d["recordedReason"] = e.reason                              # as stored (raw state codes)
    if e.transition is not None:
        fld, old, new = e.transition
        d["transition"] = {"field": fld, "from": old, "to": new, "fromLabel": hist.state_label(layer, old, lang),
                           "toLabel": hist.state_label(layer, new, lang)}
    d["changes"] = [{"field": c.name, "title": hist.title(layer, c.name, lang), "before": c.before,
                     "after": c.after} for c in e.changes]
    d["geometryChanged"] = e.geometry_changed
    if e.geometry_changed or e.action == "delete":
        d["geometryBefore"] = e.geometry_before
    if e.geometry_changed:
        d["geometryAfter"] = e.geometry_after
    return d


def _history_routes(router: APIRouter, layer: Layer, settings: ApiSettings) -> None:
    async def history(request: Request, feature_id: str) -> Response:
        check_unknown(request, ("limit", "offset"))
        fmt = formats.negotiate(request, formats.DOCUMENT_FORMATS)
        fid = _feature_id(layer, feature_id)
        limit = _int("limit", _single(request, "limit"), DEFAULT_LIMIT, 1, settings.max_limit)
        offset = _int("offset", _single(request, "offset"), 0, 0, 1_000_000_000)
        viewer = await _viewer(request)
        async with request.app.state.db.connection("read") as conn:
            page = await hist.fetch_history(conn, layer, fid, full=viewer is not None, limit=limit, offset=offset)
        if page is None:
            raise _not_found_item(layer, feature_id)
        lang = request_lang(request)
        b = public_base_url(request)
        u = f"{b}/collections/{layer.id}/items/{fid}/history"
        links = [_link(u, "self", "application/json"), _link(f"{u}?f=html", "alternate", "text/html"),
                 _link(f"{b}/collections/{layer.id}/items/{fid}", "about", "application/geo+json")]
        nxt = prv = None
        if offset + limit < page.number_matched:
            nxt = f"{u}?limit={limit}&offset={offset + limit}"
            links.append(_link(nxt, "next", "application/json"))
        if offset > 0:
            prv = f"{u}?limit={limit}&offset={max(0, offset - limit)}"
            links.append(_link(prv, "prev", "application/json"))
        doc = {"collection": layer.id, "featureId": fid, "deleted": not page.feature_exists,
               "view": "full" if viewer is not None else "public", "numberMatched": page.number_matched,
               "numberReturned": len(page.entries),
               "entries": [_entry_json(layer, e, lang) for e in page.entries], "links": links}
        if fmt == "html":
            maps = []
            for i, e in enumerate(page.entries):
                if e.geometry_changed:
                    maps.append({"id": f"m{i}", "before": e.geometry_before, "after": e.geometry_after})
            heading = "Lịch sử thay đổi" if lang == "vi" else "Change history"
            return await render(
                request, "features_history.html", title=f"{layer.title(lang)} #{fid}: {heading}",
                vn_tz=dt.timezone(dt.timedelta(hours=7)), layer=layer,
                fid=fid, doc=doc, entries=page.entries, shown=lambda n, v: hist.shown(layer, n, v, lang),
                reason=lambda r: hist.reason_text(layer, r, lang), state=lambda c: hist.state_label(layer, c, lang),
                field_title=lambda n: hist.title(layer, n, lang),
                maps_json=orjson.dumps(maps).decode().replace("</", "<\\/"),
                next=nxt and nxt + "&f=html", prev=prv and prv + "&f=html")
        return _json(request, doc)

    # public, with an optional key (officers see everything): no security requirement in the OpenAPI document
    router.add_api_route(f"/collections/{layer.id}/items/{{feature_id}}/history", history, methods=["GET"],
                         summary=f"{layer.title_en}: history of a feature (an officer's key: the full history)",
                         responses=HISTORY_RESPONSES)


def _relation_routes(router: APIRouter, layer: Layer, rel: Relation, settings: ApiSettings) -> None:
    target = LAYERS[rel.target]
    path = f"/collections/{layer.id}/items/{{feature_id}}/{rel.name}"

    async def read(request: Request, feature_id: str) -> Response:
        check_unknown(request, ())
        fid = _feature_id(layer, feature_id)
        async with request.app.state.db.connection("read") as conn:
            rows = await rel_writes.fetch_linked(conn, layer, rel, fid)
        if rows is None:
            raise _not_found_item(layer, feature_id)
        b = public_base_url(request)
        items = [{"id": r[0], "code": r[1], "href": f"{b}/collections/{target.id}/items/{r[0]}"} for r in rows]
        return _json(request, {"collection": layer.id, "featureId": fid, "relation": rel.name,
                               "target": target.id, "ids": [r[0] for r in rows], "items": items,
                               "links": [_link(f"{b}/collections/{layer.id}/items/{fid}/{rel.name}", "self",
                                               "application/json"),
                                         _link(f"{b}/collections/{layer.id}/items/{fid}", "about",
                                               "application/geo+json")]})

    async def write(request: Request, feature_id: str,
                    key: Principal = Depends(require_roles(layer.write_roles))) -> Response:
        check_unknown(request, ())
        fid = _feature_id(layer, feature_id)
        body = await read_body(request, settings)
        ids = await run_in_threadpool(rel_writes.replace_links, _write_target(request), layer, rel, fid, body,
                                      key)        # the Principal: the feature must be in its scope
        return _json(request, {"collection": layer.id, "featureId": fid, "relation": rel.name, "ids": ids})

    router.add_api_route(path, read, methods=["GET"], summary=f"{layer.title_en}: {rel.title_en}",
                         responses=LINKED_RESPONSES)
    router.add_api_route(path, write, methods=["PUT"], summary=f"{layer.title_en}: replace {rel.title_en}",
                         dependencies=[Depends(bearer_scheme), Depends(api_key_scheme)],
                         openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"oneOf": [{"type": "array", "items": {"type": ["integer", "string"]}},
                                                  {"type": "object", "properties": {"ids": {"type": "array"}}}]}}}}},
                         responses=LINK_WRITE_RESPONSES)


def create_router(settings: ApiSettings) -> APIRouter:
    router = APIRouter(tags=["History and records"])
    for layer in LAYERS.values():
        _history_routes(router, layer, settings)
        for r in layer.relations:
            _relation_routes(router, layer, r, settings)
    return router


__all__ = ["Problem", "create_router"]
