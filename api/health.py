"""`/health`: database reachability and PostGIS version (503 while the database is down)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api import openapi as oas
from api.db import Database, DatabaseUnavailable

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service and database health", responses=oas.HEALTH_RESPONSES)
async def health(request: Request) -> Response:
    db: Database = request.app.state.db
    try:
        row = await db.fetchrow("SELECT postgis_lib_version() AS postgis, current_setting('server_version') AS pg")
    except DatabaseUnavailable:
        body = {"status": "unavailable", "database": "unreachable"}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json",
                        headers={"Cache-Control": "no-store", "Retry-After": "5"})
    assert row is not None
    body = {"status": "ok", "database": "ok", "postgresql": row["pg"], "postgis": row["postgis"]}
    return Response(orjson.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"})
