"""`/dashboard`: the operations centre's page (Vietnamese first, `?lang=en`): charts of the aggregates
(`/collections/{id}/aggregate`, `/transitions`) drawn by the vendored Chart.js and small commune maps drawn as
SVG from the current boundaries, all in the browser from this service's own endpoints (no CDN); printable."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from api import offload
from api import openapi as oas
from api.errors import html_error_page
from api.map import db_conn, templates
from layers.catalog.formats import label
from layers.catalog.registry import LAYERS
from layers.maps.maps import context_boundaries

router = APIRouter(tags=["Web pages"])


@router.get("/dashboard", response_class=HTMLResponse, summary="Bảng điều hành / Operations dashboard",
            responses={**oas.HTML_PAGE, **oas.problems(400, 503, html=True)},
            dependencies=[Depends(html_error_page)])
async def dashboard(request: Request) -> Response:
    lang = "en" if request.query_params.get("lang") == "en" else "vi"
    async with db_conn(request) as conn:
        bounds = await context_boundaries(conn, 0.0005)
    lifecycles = [lc for lc in (LAYERS[i].lifecycle for i in ("growing_areas", "auction_plots")) if lc]
    statuses = {c: {"vi": label(c, "vi"), "en": label(c, "en")} for lc in lifecycles for c in lc.codes}
    colours = {c: col for layer in ("growing_areas", "auction_plots")
               for c, col in LAYERS[layer].style.get("colours", {}).items()}
    config = {"lang": lang, "boundaries": bounds, "statuses": statuses, "colours": colours}
    return await offload.in_thread(templates.TemplateResponse, request, "dashboard.html", {
        "lang": lang, "config_json": orjson.dumps(config).decode().replace("</", "<\\/"),
    })
