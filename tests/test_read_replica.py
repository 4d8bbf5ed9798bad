"""The database seam (layers/store/connect.py): reads go to `DATSO_DATABASE_READ_URL` when it is set, writes
always to the primary. A second database on the same cluster stands in for the replica: a copy of the primary
(`CREATE DATABASE ... TEMPLATE`) in which one parcel's `managing_body` reads `REPLICA-MARK`, so every answer
says which database it came from. Real PostGIS, real HTTP (TestClient and the `datso` command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from layers.settings import Settings, get_settings
from layers.store import connect, pgcluster
from layers.store import db as dbmod
from layers.store.sql import quote_ident

MARK = "REPLICA-MARK"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dbs(settings: Settings) -> dict[str, Any]:
    """{primary, replica: DSNs, settings: Settings on the primary, parcel: (id, lon, lat)}."""
    from sample_data.generate import load_sample

    primary_name, replica_name = settings.db_name + "_primary", settings.db_name + "_replica"
    s = settings.model_copy(update={"db_name": primary_name, "database_read_url": None})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(primary_name)})
    pgcluster.drop_database(s, replica_name)
    pgcluster.drop_database(s, primary_name)
    pgcluster.ensure_database(s, primary_name)
    dbmod.migrate(s)
    primary = s.dsn()
    load_sample(primary, size="small", seed=7, force=True)
    with connect.connect("writer", settings=s, dbname="postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {quote_ident(replica_name)} TEMPLATE {quote_ident(primary_name)}")
    replica = s.dsn(replica_name)
    with psycopg.connect(replica) as c:
        row = c.execute("SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM parcels "
                        "ORDER BY id LIMIT 1").fetchone()
        assert row is not None
        c.execute("UPDATE parcels SET managing_body = %s WHERE id = %s", [MARK, row[0]])
    return {"primary": primary, "replica": replica, "settings": s, "parcel": row}


@pytest.fixture(scope="module")
def replica_client(dbs: dict[str, Any]) -> Iterator[TestClient]:
    """The API with DATSO_DATABASE_READ_URL pointing at the replica."""
    from api.app import create_app

    s = dbs["settings"].model_copy(update={"database_read_url": dbs["replica"]})
    with TestClient(create_app(settings=s, dsn=dbs["primary"])) as c:
        yield c


@pytest.fixture(scope="module")
def primary_client(dbs: dict[str, Any]) -> Iterator[TestClient]:
    """The same API without the setting: everything on the primary."""
    from api.app import create_app

    with TestClient(create_app(settings=dbs["settings"], dsn=dbs["primary"])) as c:
        yield c


def datso(dbs: dict[str, Any], *args: str, read_url: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dbs["primary"]}
    env.pop("DATSO_DATABASE_READ_URL", None)
    if read_url:
        env["DATSO_DATABASE_READ_URL"] = dbs["replica"]
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def rows(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(query, list(params)).fetchall()


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
    return t.x, t.y


def test_url_roles(dbs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s = dbs["settings"]
    assert connect.url("reader", s) == connect.url("writer", s) == dbs["primary"]
    r = s.model_copy(update={"database_read_url": dbs["replica"].replace("postgresql://", "postgresql+psycopg://")})
    assert connect.url("reader", r) == dbs["replica"]                    # normalised like DATABASE_URL
    assert connect.url("writer", r) == dbs["primary"]
    assert connect.url("reader", r, dbname="other").endswith("/other")
    assert connect.sqlalchemy_url(r).startswith("postgresql+psycopg://") and \
        connect.sqlalchemy_url(r).endswith("/" + s.db_name)               # migrations: the primary
    monkeypatch.setenv("DATABASE_URL", dbs["primary"])
    monkeypatch.setenv("DATSO_DATABASE_READ_URL", dbs["replica"])
    env = Settings(_env_file=None)  # type: ignore[call-arg]
    assert env.database_read_url == dbs["replica"] and connect.url("reader", env) == dbs["replica"]


def test_sessions_carry_the_settings(dbs: dict[str, Any]) -> None:
    import asyncio

    with connect.connect("reader", dsn=dbs["primary"], statement_timeout_ms=4321) as c:
        assert c.execute("SHOW jit").fetchone() == ("off",)
        assert c.execute("SHOW max_parallel_workers_per_gather").fetchone() == ("0",)
        assert c.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
    # options already in the DSN are kept, ours added after them
    with connect.connect("writer", dsn=dbs["primary"] + "?options=-c%20work_mem%3D7MB") as c:
        assert c.execute("SHOW work_mem").fetchone() == ("7MB",)
        assert c.execute("SHOW jit").fetchone() == ("off",)

    async def check() -> tuple[str, str]:
        conn = await connect.connect_async("reader", dsn=dbs["primary"], application_name="seam-test")
        try:
            return (await conn.fetchval("SHOW jit"), await conn.fetchval("SHOW application_name"))
        finally:
            await conn.close()

    assert asyncio.run(check()) == ("off", "seam-test")


def test_items_read_the_replica(dbs: dict[str, Any], replica_client: TestClient,
                                primary_client: TestClient) -> None:
    pid = dbs["parcel"][0]
    on_replica = replica_client.get(f"/collections/parcels/items/{pid}").json()
    on_primary = primary_client.get(f"/collections/parcels/items/{pid}").json()
    assert on_replica["properties"]["managing_body"] == MARK
    assert on_primary["properties"]["managing_body"] != MARK
    r = replica_client.get("/collections/parcels/items", params={"managing_body": MARK})
    assert r.status_code == 200 and [f["id"] for f in r.json()["features"]] == [pid]
    r = primary_client.get("/collections/parcels/items", params={"managing_body": MARK})
    assert r.status_code == 200 and r.json()["features"] == []
    csv = replica_client.get("/collections/parcels/items", params={"managing_body": MARK, "f": "csv"}).text
    assert MARK in csv


def test_tiles_read_the_replica(dbs: dict[str, Any], replica_client: TestClient,
                                primary_client: TestClient) -> None:
    _, lon, lat = dbs["parcel"]
    x, y = _tile(lon, lat, 16)
    url = f"/collections/parcels/tiles/WebMercatorQuad/16/{x}/{y}"
    on_replica, on_primary = replica_client.get(url), primary_client.get(url)
    assert on_replica.status_code == on_primary.status_code == 200
    assert MARK.encode() in on_replica.content
    assert MARK.encode() not in on_primary.content and len(on_primary.content) > 0


def test_folium_export_reads_the_replica(dbs: dict[str, Any], replica_client: TestClient,
                                         primary_client: TestClient) -> None:
    _, lon, lat = dbs["parcel"]
    box = f"{lon - 0.0005},{lat - 0.0005},{lon + 0.0005},{lat + 0.0005}"
    on_replica = replica_client.get("/maps/parcels.html", params={"bbox": box})
    on_primary = primary_client.get("/maps/parcels.html", params={"bbox": box})
    assert on_replica.status_code == on_primary.status_code == 200
    assert MARK in on_replica.text and MARK not in on_primary.text


def test_read_layer_reads_the_replica(dbs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from layers.analysis import read_layer

    monkeypatch.setenv("DATABASE_URL", dbs["primary"])
    monkeypatch.setenv("DATSO_DATABASE_READ_URL", dbs["replica"])
    get_settings.cache_clear()
    try:
        gdf = read_layer("parcels", where=[f"managing_body={MARK}"])
        assert list(gdf.index) == [dbs["parcel"][0]]
        monkeypatch.delenv("DATSO_DATABASE_READ_URL")
        get_settings.cache_clear()
        assert len(read_layer("parcels", where=[f"managing_body={MARK}"])) == 0   # no setting: the primary
    finally:
        get_settings.cache_clear()


def test_cli_exports_read_the_replica(dbs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "mark.geojson"
    p = datso(dbs, "export", "--layer", "parcels", "--format", "geojson", "--where", f"managing_body={MARK}",
              "--out", str(out))
    assert p.returncode == 0, p.stderr
    features = json.loads(out.read_text())["features"]
    assert [f["properties"]["managing_body"] for f in features] == [MARK]
    p = datso(dbs, "export", "--layer", "parcels", "--format", "geojson", "--where", f"managing_body={MARK}",
              "--out", str(tmp_path / "none.geojson"), read_url=False)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "none.geojson").read_text())["features"] == []
    _, lon, lat = dbs["parcel"]
    box = f"{lon - 0.0005},{lat - 0.0005},{lon + 0.0005},{lat + 0.0005}"
    html = tmp_path / "map.html"
    p = datso(dbs, "map", "export", "--layer", "parcels", "--bbox", box, "--out", str(html))
    assert p.returncode == 0, p.stderr
    assert MARK in html.read_text(encoding="utf-8")
    p = datso(dbs, "map", "export", "--layer", "parcels", "--bbox", box, "--out", str(html), read_url=False)
    assert p.returncode == 0, p.stderr
    assert MARK not in html.read_text(encoding="utf-8")


def test_keys_and_writes_go_to_the_primary(dbs: dict[str, Any], replica_client: TestClient) -> None:
    name = f"seam-{uuid.uuid4().hex[:8]}"
    p = datso(dbs, "keys", "create", "--name", name, "--role", "officer")
    assert p.returncode == 0, p.stderr
    secret = next(w for w in p.stdout.split() if w.startswith("datso_"))
    assert rows(dbs["primary"], "SELECT role FROM api_keys WHERE name = %s", name) == [("officer",)]
    assert rows(dbs["replica"], "SELECT role FROM api_keys WHERE name = %s", name) == []
    # the key is looked up on the primary: the API accepts it although the replica never saw it
    base = replica_client.get("/collections/auction_plots/items", params={"limit": 1, "status": "planned"}).json()
    f = base["features"][0]
    props = {**f["properties"], "plot_code": f"SEAM-{uuid.uuid4().hex[:8]}", "status": "planned",
             "result_price_vnd": None}
    body = {"type": "Feature", "geometry": f["geometry"], "properties": props}
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/geo+json"}
    r = replica_client.post("/collections/auction_plots/items", content=json.dumps(body), headers=headers)
    assert r.status_code == 201, r.text
    code = props["plot_code"]
    assert len(rows(dbs["primary"], "SELECT id FROM auction_plots WHERE plot_code = %s", code)) == 1
    assert rows(dbs["replica"], "SELECT id FROM auction_plots WHERE plot_code = %s", code) == []
    # revoked on the primary: refused at once (no replica lag on a revocation)
    p = datso(dbs, "keys", "revoke", name)
    assert p.returncode == 0, p.stderr
    props["plot_code"] = f"SEAM-{uuid.uuid4().hex[:8]}"
    r = replica_client.post("/collections/auction_plots/items", content=json.dumps(body | {"properties": props}),
                            headers=headers)
    assert r.status_code == 401, r.text


def test_imports_go_to_the_primary(dbs: dict[str, Any], tmp_path: Path) -> None:
    code = f"VN-BT-SEAM-{uuid.uuid4().hex[:6]}"
    gdf = gpd.GeoDataFrame({"code": [code], "crop": ["coconut"], "owner": ["HTX Seam"], "commune_code": ["86001"],
                            "markets": ["CN"], "standard": ["VietGAP"], "status": ["active"],
                            "valid_from": ["01/07/2025"]},
                           geometry=[shapely.box(106.40, 10.10, 106.405, 10.105)], crs="EPSG:4326")
    path = tmp_path / "vung.geojson"
    gdf.to_file(path, driver="GeoJSON")
    p = datso(dbs, "import", str(path), "--layer", "growing_areas", "--user", "seam-test", "--bulk")
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(rows(dbs["primary"], "SELECT id FROM growing_areas WHERE code = %s", code)) == 1
    assert rows(dbs["replica"], "SELECT id FROM growing_areas WHERE code = %s", code) == []


def test_tile_invalidation_listens_on_the_primary(dbs: dict[str, Any], replica_client: TestClient) -> None:
    """NOTIFY is sent by the triggers on the primary and not relayed by a replica: the listener must be there."""
    _, lon, lat = dbs["parcel"]
    x, y = _tile(lon, lat, 16)
    assert replica_client.get(f"/collections/parcels/tiles/WebMercatorQuad/16/{x}/{y}").status_code == 200
    svc = replica_client.app.state.tile_service  # type: ignore[attr-defined]
    assert svc.invalidator is not None
    deadline = time.monotonic() + 10
    while not svc.invalidator.live and time.monotonic() < deadline:
        time.sleep(0.05)
    assert svc.invalidator.live
    before = svc.invalidator.received
    with psycopg.connect(dbs["primary"]) as c:      # an edit on the primary, nothing on the replica
        c.execute("UPDATE parcels SET address = address WHERE id = %s", [dbs["parcel"][0]])
    deadline = time.monotonic() + 10
    while svc.invalidator.received == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert svc.invalidator.received > before
    # with a replica, the notification also records the primary's WAL position, and a tile is cached only once
    # the reader has replayed it (the stand-in is no standby: always current, so caching goes on)
    assert svc.invalidator.replica
    while (svc.invalidator._unsettled or svc.invalidator.wal_needed is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert svc.invalidator._unsettled == 0 and svc.invalidator.wal_needed
    svc.cache.clear()
    url = f"/collections/parcels/tiles/WebMercatorQuad/16/{x}/{y}"
    first = replica_client.get(url)
    assert first.status_code == 200 and MARK.encode() in first.content
    assert len(svc.cache) == 1


def test_primary_only_app_listens_without_replica_checks(primary_client: TestClient, dbs: dict[str, Any]) -> None:
    _, lon, lat = dbs["parcel"]
    x, y = _tile(lon, lat, 16)
    assert primary_client.get(f"/collections/parcels/tiles/WebMercatorQuad/16/{x}/{y}").status_code == 200
    svc = primary_client.app.state.tile_service  # type: ignore[attr-defined]
    assert svc.invalidator is not None and not svc.invalidator.replica
