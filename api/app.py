"""The app factory: `create_app()` builds the FastAPI service from settings and the layer registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from brotli_asgi import BrotliMiddleware
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api import accounts, aggregates, dashboard, errors, health, observability, offload, security
from api import admin as admin_api
from api import crs as crs_api
from api import epcis as epcis_api
from api import features as features_api
from api import history as history_api
from api import imagery as imagery_api
from api import imports as imports_api
from api import lookup as lookup_api
from api import map as map_api
from api import officer as officer_api
from api import openapi as oas
from api import rasters as rasters_api
from api import tiles as tiles_api
from api import trace as trace_api
from api.db import Database
from api.head import HeadAndOptions
from layers.ingest.writes import WritePool
from layers.logging import configure_logging
from layers.maps.folium_export import VENDOR_DIR
from layers.settings import ApiSettings, Settings, get_api_settings, get_map_settings, get_settings
from layers.store import connect


def create_app(settings: Settings | None = None, api_settings: ApiSettings | None = None,
               dsn: str | None = None) -> FastAPI:
    s = settings or get_settings()
    a = api_settings or get_api_settings()
    configure_logging()
    primary = connect.url("writer", s, primary=dsn)    # `dsn`, else DATABASE_URL / the embedded cluster
    db = Database(connect.url("reader", s, primary=dsn), a.db_min_connections, a.db_max_connections,
                  a.db_connect_timeout, a.read_statement_timeout, a.export_statement_timeout, a.db_acquire_timeout,
                  primary=primary, max_lag=a.db_read_max_lag, check_interval=a.db_read_check_interval,
                  pooled=s.database_pooler)
    write_pool = WritePool(primary, a.write_pool_min_size, a.write_pool_max_size, a.db_connect_timeout,
                           a.write_statement_timeout_ms, on_write=db.note_write)    # opened by the first write

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        expiry = asyncio.create_task(imports_api.expiry_loop(primary, a.registration_expiry_interval_s))
        yield
        expiry.cancel()
        offload.shutdown(app)
        await db.close()
        await asyncio.to_thread(write_pool.close)

    app = FastAPI(title=a.title, version="0.1.0", openapi_url="/api", docs_url=None, redoc_url=None,
                  lifespan=lifespan,
                  description="OGC API – Features and vector tiles for Vietnamese provincial land and "
                              "agriculture data (đất công, đấu giá, vùng trồng, truy xuất nguồn gốc).")
    app.state.db = db
    app.state.write_pool = write_pool
    app.state.settings = s
    app.state.api_settings = a
    errors.install(app)
    # br for clients that ask for it, gzip otherwise (responses that are already encoded pass untouched)
    app.add_middleware(BrotliMiddleware, quality=4, minimum_size=1024, gzip_fallback=True)
    security.install_rate_limits(app, a)         # /search and Folium exports per client IP
    security.install_cors(app, a)                # only when DATSO_CORS_ORIGINS lists origins
    app.add_middleware(tiles_api.TileFastPath)   # cached tiles skip routing and the middlewares above
    # outermost: trusted Host (400 otherwise), security headers on every response; Swagger UI at /api.html
    security.install_headers(app, a, get_map_settings().basemap_url, "/api.html")
    app.add_middleware(HeadAndOptions)   # HEAD on every GET route (no body), OPTIONS answers Allow (QGIS editing)
    observability.install(app)           # outermost: X-Request-ID, request log line, /metrics
    app.include_router(health.router)
    app.include_router(map_api.router)
    app.include_router(admin_api.router)
    app.include_router(officer_api.router)         # /officer, the officer page
    app.include_router(imagery_api.router)
    app.include_router(lookup_api.router)         # GET /lookup: what applies at a point
    app.include_router(crs_api.router)            # GET /crs: the published CRSs' definitions (WKT2)
    app.include_router(dashboard.router)         # /dashboard
    app.include_router(rasters_api.router)       # /rasters, zonal /collections/{id}/stats
    # Leaflet is vendored next to the Folium export that inlines it; served at the same URL as the rest
    app.mount("/static/vendor/leaflet", StaticFiles(directory=VENDOR_DIR / "leaflet"), name="leaflet")
    app.mount("/static", StaticFiles(directory=map_api.HERE / "static"), name="static")

    @app.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
    async def favicon() -> FileResponse:     # what browsers ask for; pages also link /static/favicon.svg
        return FileResponse(map_api.HERE / "static" / "favicon.ico",
                            headers={"Cache-Control": "public, max-age=86400"})

    app.include_router(history_api.create_router(a))      # before the features router's unknown-collection catch-all
    app.include_router(features_api.create_router(a))
    app.include_router(imports_api.create_router(a))        # file uploads of registered layers
    app.include_router(tiles_api.router)
    app.include_router(aggregates.router)        # /collections/{id}/aggregate, /transitions
    app.include_router(accounts.router)          # /auth/login|logout|me, /admin/users
    app.include_router(epcis_api.router)         # POST /epcis/capture, GET /epcis/events (EPCIS 2.0)
    app.include_router(trace_api.router)         # /trace/{lot}, /01/{gtin}/10/{lot} (Digital Link), /qr/… (public)
    oas.install(app)   # response schemas for every route, no unused 422s
    return app
