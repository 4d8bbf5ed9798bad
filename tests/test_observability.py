"""Observability: every database session of the service names itself (`application_name` starting with
`datso`), seen from PostgreSQL's own `pg_stat_activity`."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

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


def _samples(client: TestClient) -> dict[str, list[Any]]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def test_request_id_in_and_out_and_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        r = client.get("/collections/parcels/items", params={"limit": 1}, headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "abc-123"
    lines = [rec.msg for rec in caplog.records if isinstance(rec.msg, dict) and rec.msg.get("event") == "request"]
    mine = [line for line in lines if line.get("request_id") == "abc-123"]
    assert len(mine) == 1, lines
    assert mine[0]["method"] == "GET" and mine[0]["route"] == "/collections/{collectionId}/items"
    assert mine[0]["status"] == 200 and mine[0]["family"] == "items" and mine[0]["duration_ms"] >= 0
    # none given, or not a sane token: one is made (and differs per request)
    a, b = client.get("/collections"), client.get("/collections", headers={"X-Request-ID": "bad id\\n" * 20})
    assert re.fullmatch(r"[0-9a-f]{32}", a.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", b.headers["X-Request-ID"])
    assert a.headers["X-Request-ID"] != b.headers["X-Request-ID"]
    # a problem response carries it too
    bad = client.get("/collections/nope/items", headers={"X-Request-ID": "req-404"})
    assert bad.status_code == 404 and bad.headers["X-Request-ID"] == "req-404"


def test_metrics_by_route_template_pool_and_tile_cache(client: TestClient) -> None:
    before = _samples(client)

    def count(samples: dict[str, list[Any]], route: str, family: str) -> float:
        return sum(s.value for s in samples.get("datso_http_request_duration_seconds_count", [])
                   if s.labels["route"] == route and s.labels["family"] == family)

    items = "/collections/{collectionId}/items"
    for fid in ("parcels", "auction_plots"):
        assert client.get(f"/collections/{fid}/items", params={"limit": 1}).status_code == 200
    tile = "/collections/parcels/tiles/WebMercatorQuad/10/815/464"
    first, second = client.get(tile), client.get(tile)
    assert first.status_code in (200, 204) and second.status_code == first.status_code
    after = _samples(client)
    # two raw paths, one template: the label set does not grow with ids
    assert count(after, items, "items") - count(before, items, "items") == 2
    routes = {s.labels["route"] for s in after["datso_http_request_duration_seconds_count"]}
    assert not any("parcels" in r for r in routes), routes
    assert any(s.labels["family"] == "tiles" for s in after["datso_http_request_duration_seconds_count"])
    buckets = [s for s in after["datso_http_request_duration_seconds_bucket"]
               if s.labels["route"] == items and s.labels["le"] == "+Inf"]
    assert buckets and buckets[0].value >= 2
    pools = {s.labels["pool"]: s.value for s in after["datso_db_pool_connections"]}
    idle = {s.labels["pool"]: s.value for s in after["datso_db_pool_idle"]}
    assert pools["read"] >= 1 and 0 <= idle["read"] <= pools["read"]
    hits = after["datso_tile_cache_hits_total"][0].value
    misses = after["datso_tile_cache_misses_total"][0].value
    assert hits >= 1 and hits + misses >= 2       # the second fetch of the same tile came from the cache
    ratio = after["datso_tile_cache_hit_ratio"][0].value
    assert abs(ratio - hits / (hits + misses)) < 1e-9


def test_metrics_count_rows_inserted_per_layer_table(client: TestClient, conn: psycopg.Connection) -> None:
    after = _samples(client)
    inserted = {s.labels["table"]: s.value for s in after["datso_table_rows_inserted"]}
    live = {s.labels["table"]: s.value for s in after["datso_table_rows"]}
    assert {"parcels", "auction_plots", "growing_areas"} <= set(inserted) and set(live) == set(inserted)
    row = conn.execute("SELECT count(*) FROM parcels").fetchone()
    assert row is not None and row[0] > 0
    # the sample load's COPY counts as inserts (imports use the same COPY path)
    assert inserted["parcels"] >= row[0]


def _value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_count_imports_of_every_process(client: TestClient, sample_db: str, tmp_path: Path) -> None:
    """Import counts come from the import_runs table, so an upload through the API (this process) and a
    `datso import` in another process are both counted, by layer and outcome, rows and runs."""
    import json
    import os
    import subprocess
    import sys
    import uuid

    import geopandas as gpd
    import shapely

    from layers.accounts.auth import create_key
    from tests.conftest import rows_removed_after

    before = _samples(client)
    n = 4
    gdf = gpd.GeoDataFrame({
        "commune_code": ["86001"] * n, "map_sheet": [9871] * n, "parcel_no": list(range(1, n + 1)),
        "address": ["Số 2 ấp Phú Hưng"] * n, "area_m2": [225.0] * n, "land_use_codes": ["ONT"] * n,
        "status": ["managed"] * n},
        geometry=[shapely.box(106.3 + i * 0.0002, 10.0, 106.3 + i * 0.0002 + 0.00015, 10.00015)
                  for i in range(n)], crs="EPSG:4326")
    path = tmp_path / "thua.gpkg"
    gdf.to_file(path)
    key = create_key(sample_db, f"metrics-{uuid.uuid4().hex[:8]}", "officer")
    bad = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.3, 10.0]},
         "properties": {"crop": "pomelo", "owner": "Hộ thử"}}] * 3}     # points, where polygons are required
    root = Path(__file__).resolve().parents[1]
    with rows_removed_after(sample_db, ("parcels",)):
        env = {**os.environ, "DATABASE_URL": sample_db, "PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, "-m", "cli.main", "import", str(path), "--layer", "parcels"],
                              env=env, cwd=root, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        refused = client.post("/collections/growing_areas/imports", params={"lang": "en"},
                              headers={"Authorization": f"Bearer {key}"},
                              files={"file": ("vung.geojson", json.dumps(bad).encode())})
        assert refused.status_code == 422, refused.text
    after = _samples(client)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("datso_import_runs_total", layer="parcels", outcome="ok") == 1          # the CLI's process
    assert moved("datso_import_rows_written_total", layer="parcels", outcome="ok") == n
    assert moved("datso_import_rows_read_total", layer="parcels", outcome="ok") == n
    assert moved("datso_import_runs_total", layer="growing_areas", outcome="refused") == 1  # this process
    assert moved("datso_import_rows_written_total", layer="growing_areas", outcome="refused") == 0
    assert moved("datso_import_rows_read_total", layer="growing_areas", outcome="refused") == 3


def test_metrics_write_pool(client: TestClient, sample_db: str) -> None:
    """The write pool (psycopg, opened by the first write) is reported next to the read pool."""
    import uuid

    from layers.accounts.auth import create_key

    key = create_key(sample_db, f"metrics-{uuid.uuid4().hex[:8]}", "officer")
    r = client.get("/collections/auction_plots/items", params={"limit": 1})
    fid = r.json()["features"][0]["id"]
    url = f"/collections/auction_plots/items/{fid}"
    got = client.get(url)
    address = got.json()["properties"]["address"]          # written back unchanged: a write all the same
    same = client.patch(url, json={"properties": {"address": address}}, headers={"Authorization": f"Bearer {key}", "If-Match": got.headers["etag"],
                                               "Content-Type": "application/merge-patch+json"})
    assert same.status_code in (200, 204), same.text
    after = _samples(client)
    pools = {s.labels["pool"]: s.value for s in after["datso_db_pool_connections"]}
    cap = {s.labels["pool"]: s.value for s in after["datso_db_pool_max"]}
    assert "read" in pools and "write" in pools
    assert pools["write"] >= 1 and cap["write"] == client.app.state.api_settings.write_pool_max_size  # type: ignore[attr-defined]
    assert _value(after, "datso_db_pool_waiting", pool="write") == 0
