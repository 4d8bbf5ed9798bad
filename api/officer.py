"""The officer page (`/officer`): registration, code granting, lifecycle, history and records of growing areas and
packing houses, for the officers of a provincial plant-protection sub-department.

A thin route: it renders api/templates/officer.html with a JSON configuration drawn from the registry (the
layers with a `registration`, their fields, lifecycle states, transitions and reason states, the record layers
that reference them) and the communes with their provinces. Everything else is static JS (api/static/officer/)
on MapLibre GL JS (vendored), talking to the public APIs: `POST /auth/login`, `GET /auth/me`, the features API
(`…/items`, PATCH under If-Match), `POST /collections/{id}/imports` and `…/items/{id}/history`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from api import offload
from api import openapi as oas
from api.errors import html_error_page
from api.map import db_conn, templates
from layers.catalog.formats import label
from layers.catalog.registry import LAYERS, Layer, LayerField
from layers.settings import get_map_settings, get_registration_settings
from layers.store import vocab

router = APIRouter(tags=["Bản đồ / Map"])

# never typed into a form: ids, codes granted at activation, status (moved by the lifecycle actions), the
# reason and decision (asked for by the action that needs them), validity dates (set at activation), flags
_NOT_IN_FORMS = ("synthetic", "status", "status_reason", "decision_no", "decision_date", "valid_from", "valid_to")


def _options(codes: tuple[str, ...] | None) -> list[dict[str, Any]] | None:
    if codes is None:
        return None
    out = []
    for c in codes:
        vi, en = label(c, "vi"), label(c, "en")
        if c in vocab.CROPS:          # crops carry their Vietnamese name only (layers/store/vocab.py)
            vi, en = vocab.CROPS[c], c.replace("_", " ").capitalize()
        out.append({"code": c, "vi": vi, "en": en})
    return out


def _field(f: LayerField) -> dict[str, Any]:
    return {"name": f.name, "vi": f.title_vi, "en": f.title_en, "type": f.type, "required": f.required,
            "enum": _options(f.enum), "items": _options(f.items_enum), "minimum": f.minimum,
            "computed": f.computed is not None, "references": f.references, "public": f.public,
            "maxLength": f.max_length}


def _registered(layer: Layer) -> dict[str, Any]:
    reg, lc = layer.registration, layer.lifecycle
    assert reg is not None and lc is not None
    form = [f for f in layer.fields if f.name not in _NOT_IN_FORMS and f.name != reg.code_field]
    return {
        "id": layer.id, "vi": layer.title_vi, "en": layer.title_en, "geometryType": layer.geometry_type,
        "fields": [_field(f) for f in layer.fields], "form": [f.name for f in form],
        "codeField": reg.code_field, "communeField": reg.commune_field, "areaField": reg.area_field,
        "cropField": reg.crop_field, "decisionFields": list(reg.decision_fields),
        "validityFields": list(reg.validity_fields or ()), "draftState": reg.draft_state,
        "activeState": reg.active_state,
        "status": {"field": lc.field, "reasonField": lc.reason_field, "reasonStates": list(lc.reason_states),
                   "states": [{"code": s.code, "vi": s.label_vi, "en": s.label_en, "colour": s.colour}
                              for s in lc.states],
                   "transitions": {k: list(v) for k, v in (lc.transitions or {}).items()}},
        "relations": [{"name": r.name, "vi": r.title_vi, "en": r.title_en, "target": r.target}
                      for r in layer.relations],
        "records": [_record(r) for r in LAYERS.values()
                    if any(f.references == layer.id for f in r.fields) and r.id != layer.id],
    }


def _record(layer: Layer) -> dict[str, Any]:
    link = next(f.name for f in layer.fields if f.references is not None)
    return {"id": layer.id, "vi": layer.title_vi, "en": layer.title_en, "link": link,
            "geometryRequired": not layer.geometry_nullable, "dateField": (layer.temporal or (None,))[0],
            "fields": [_field(f) for f in layer.fields if f.name not in ("synthetic", link)]}


async def _communes(request: Request) -> tuple[list[dict[str, Any]], list[float] | None]:
    async with db_conn(request) as conn:
        rows = await conn.fetch(
            "SELECT code, name, parent_code FROM admin_units WHERE level = 'commune' AND valid_to IS NULL "
            "AND scheme = (SELECT max(scheme) FROM admin_units) ORDER BY name")
        box = await conn.fetchrow(
            "SELECT ST_XMin(e) x1, ST_YMin(e) y1, ST_XMax(e) x2, ST_YMax(e) y2 FROM "
            "(SELECT ST_Extent(geom) e FROM admin_units WHERE level = 'province' AND valid_to IS NULL) s")
    bounds = [box["x1"], box["y1"], box["x2"], box["y2"]] if box and box["x1"] is not None else None
    return [{"code": r["code"], "name": r["name"], "province": r["parent_code"]} for r in rows], bounds


@router.get("/officer", response_class=HTMLResponse,
            summary="Trang cán bộ: đăng ký, cấp mã, đình chỉ, lịch sử vùng trồng / Officer page",
            responses={**oas.HTML_PAGE, **oas.problems(503, html=True)}, dependencies=[Depends(html_error_page)])
async def officer_page(request: Request) -> Response:
    lang = "en" if request.query_params.get("lang") == "en" else "vi"
    communes, bounds = await _communes(request)
    rs, ms = get_registration_settings(), get_map_settings()
    config = {
        "lang": lang, "bounds": bounds, "communes": communes,
        "layers": [_registered(layer) for layer in LAYERS.values() if layer.registration is not None],
        "cropClasses": dict(vocab.CROP_CLASSES), "minAreaHa": dict(rs.registration_min_area_ha),
        "tileMaxzoom": ms.map_tile_maxzoom,
        "basemap": ({"url": ms.basemap_url, "attribution": ms.basemap_attribution, "maxzoom": ms.basemap_maxzoom}
                    if ms.basemap_url else None),
    }
    return await offload.in_thread(templates.TemplateResponse, request, "officer.html", {
        "lang": lang, "config_json": orjson.dumps(config).decode().replace("</", "<\\/"),
    })
