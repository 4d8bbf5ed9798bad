"""The app factory: `create_app()` builds the FastAPI service from settings and the layer registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from brotli_asgi import BrotliMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from api import errors, health
from api import features as features_api
from api import imagery as imagery_api
from api import map as map_api
from api import openapi as oas
from api import tiles as tiles_api
from api.db import Database
from api.settings import ApiSettings, get_api_settings
from layers.config import Settings, get_settings
from layers.logging import configure_logging


def create_app(settings: Settings | None = None, api_settings: ApiSettings | None = None,
               dsn: str | None = None) -> FastAPI:
    s = settings or get_settings()
    a = api_settings or get_api_settings()
    configure_logging()
    db = Database(dsn or s.dsn(), a.db_min_connections, a.db_max_connections, a.db_connect_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await db.close()

    app = FastAPI(title=a.title, version="0.1.0", openapi_url="/api", docs_url="/api.html", redoc_url=None,
                  lifespan=lifespan,
                  description="OGC API – Features and vector tiles for Vietnamese provincial land and "
                              "agriculture data (đất công, đấu giá, vùng trồng, truy xuất nguồn gốc).")
    app.state.db = db
    app.state.settings = s
    app.state.api_settings = a
    errors.install(app)
    # br for clients that ask for it, gzip otherwise (responses that are already encoded pass untouched)
    app.add_middleware(BrotliMiddleware, quality=4, minimum_size=1024, gzip_fallback=True)
    app.add_middleware(CORSMiddleware, allow_origins=a.cors_origins, allow_methods=["*"], allow_headers=["*"],
                       expose_headers=["ETag", "Content-Crs", "Link"])
    app.add_middleware(tiles_api.TileFastPath)   # outermost: cached tiles skip routing and middlewares
    app.include_router(health.router)
    app.include_router(map_api.router)
    app.include_router(imagery_api.router)
    app.mount("/static", StaticFiles(directory=map_api.HERE / "static"), name="static")
    app.include_router(features_api.create_router(a))
    app.include_router(tiles_api.router)
    oas.install(app)   # response schemas for every route, no unused 422s
    return app
