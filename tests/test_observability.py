"""Observability: every database session of the service names itself (`application_name` starting with
`datso`), seen from PostgreSQL's own `pg_stat_activity`."""

from __future__ import annotations

import asyncio

import psycopg
import sqlalchemy
from fastapi.testclient import TestClient

from layers.settings import Settings
from layers.store import connect


def _others(sample_db: str) -> list[tuple[str, str]]:
    """(application_name, backend_type) of every other client session on the test database."""
    with psycopg.connect(sample_db, application_name="test-observer") as c:
        rows = c.execute("SELECT application_name, backend_type FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                         "AND backend_type = 'client backend'").fetchall()
    return [(str(a), str(b)) for a, b in rows]


def test_every_api_session_names_itself(client: TestClient, sample_db: str) -> None:
    assert client.get("/collections/parcels/items", params={"limit": 2}).status_code == 200
    assert client.get("/collections/parcels/items", params={"filter": "area_m2 > 100", "limit": 1}).status_code in (200, 400)
    assert client.get("/collections/parcels/tiles/WebMercatorQuad/12/3263/1857").status_code in (200, 204, 404)
    sessions = _others(sample_db)
    assert sessions, "the app holds pooled sessions on the test database"
    assert all(name.startswith("datso") for name, _ in sessions), sessions


def test_seam_names_sessions(sample_db: str, settings: Settings) -> None:
    with connect.connect("writer", dsn=sample_db) as c:
        assert c.execute("SHOW application_name").fetchone() == ("datso-writer",)
    with connect.connect("reader", dsn=sample_db) as c:
        assert c.execute("SHOW application_name").fetchone() == ("datso-reader",)
    # a DSN that names its session keeps its name
    with connect.connect("reader", dsn=sample_db + "?application_name=datso-custom") as c:
        assert c.execute("SHOW application_name").fetchone() == ("datso-custom",)
    sa_url = connect.sqlalchemy_url(settings)  # as Alembic's env.py builds its engine
    engine = sqlalchemy.create_engine(sa_url, connect_args=connect.sqlalchemy_connect_args(sa_url))
    try:
        with engine.connect() as c:
            assert c.execute(sqlalchemy.text("SHOW application_name")).scalar() == "datso-migrate"
    finally:
        engine.dispose()


def test_async_seam_names_sessions(sample_db: str) -> None:
    async def names() -> tuple[str, str]:
        conn = await connect.connect_async("reader", dsn=sample_db)
        try:
            one = await conn.fetchval("SHOW application_name")
        finally:
            await conn.close()
        pool = await connect.async_pool("writer", dsn=sample_db, min_size=1, max_size=1)
        try:
            pooled = await pool.fetchval("SHOW application_name")
        finally:
            await pool.close()
        return str(one), str(pooled)

    assert asyncio.run(names()) == ("datso-reader", "datso-writer")
