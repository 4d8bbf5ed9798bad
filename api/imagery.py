"""Raster imagery tiles (`/imagery/{name}/{z}/{x}/{y}.png`) and their list (`/imagery`): thin routes over
`tiles.raster` (GeoTIFF/COG files registered in `DATSO_IMAGERY_DIR`, drawn by rio-tiler). The list is also the
web map's image choices (true colour, and NDVI where a raster has red and NIR bands)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import openapi as oas
from api.errors import request_lang
from api.security import public_base_url
from tiles.raster import list_imagery, open_imagery, render_tile

router = APIRouter(tags=["Ảnh nền / Imagery"])
CACHE = "public, max-age=3600"


def imagery_list(base: str) -> list[dict[str, Any]]:
    """Every raster layer for the map: its default (true colour) tiles, and NDVI tiles when it has red and nir
    bands (`ndvi`, for an overlay option: `/rasters/NAME/tiles/...?expression=...&colormap_name=rdylgn`)."""
    out = []
    for img in list_imagery():
        entry: dict[str, Any] = {"name": img.name, "bounds": list(img.bounds), "minzoom": img.minzoom,
                                 "maxzoom": img.maxzoom, "tiles": [f"{base}/imagery/{img.name}/{{z}}/{{x}}/{{y}}.png"],
                                 "synthetic": img.synthetic, "raster": f"{base}/rasters/{img.name}"}
        names = [n.lower() for n in img.band_names]
        if "red" in names and "nir" in names:
            r, n = names.index("red") + 1, names.index("nir") + 1
            q = urlencode({"expression": f"(b{n}-b{r})/(b{n}+b{r})", "rescale": "-1,1", "colormap_name": "rdylgn"})
            entry["ndvi"] = [f"{base}/rasters/{img.name}/tiles/{{z}}/{{x}}/{{y}}.png?{q}"]
        out.append(entry)
    return out


@router.get("/imagery", summary="Các lớp ảnh nền đã đăng ký / Registered imagery",
            responses=oas.ok_json(oas.IMAGERY))
async def imagery_index(request: Request) -> Response:
    items = await run_in_threadpool(imagery_list, public_base_url(request))
    return Response(orjson.dumps({"imagery": items}), media_type="application/json",
                    headers={"Content-Language": request_lang(request)})


@router.get("/imagery/{name}/{z}/{x}/{y}.png", summary="Ô ảnh PNG (WebMercatorQuad) / PNG imagery tile",
            response_class=Response, responses=oas.PNG_RESPONSES)
async def imagery_tile(name: str, z: int, x: int, y: int) -> Response:
    def work() -> bytes | None:
        return render_tile(open_imagery(name), z, x, y)

    png = await run_in_threadpool(work)     # an unknown layer or a tile outside it: ImageryError (404/400)
    if png is None:
        return Response(status_code=204, headers={"Cache-Control": CACHE})
    return Response(png, media_type="image/png", headers={"Cache-Control": CACHE})
