"""The API through PgBouncer (Debian package) in transaction mode: a local PgBouncer in front of the test
cluster, DATABASE_URL pointing at it, `DATSO_DATABASE_POOLER` on (no server-side prepared statements), the
tile-invalidation LISTEN on a direct connection (`DATSO_DATABASE_LISTEN_URL`). A representative set of the
suite's HTTP checks runs through it: items, one item, a CQL2 filter, tiles (and their invalidation by an edit), a
write with If-Match (and a stale one refused), and an import."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from fastapi.testclient import TestClient

from layers.accounts.auth import create_key
from layers.ingest.importer import ImportOptions, import_file
from layers.settings import Settings, get_settings
from layers.store import db as dbmod
from layers.store import pgcluster

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
pytestmark = pytest.mark.skipif(not Path(PGBOUNCER).exists(), reason="pgbouncer (Debian package) not installed")
PORT = int(os.environ.get("DATSO_TEST_PGBOUNCER_PORT", "6433"))


def _via(dsn: str, port: int) -> str:
    """`dsn` with its host:port replaced by PgBouncer's."""
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    return f"postgresql://{user}@127.0.0.1:{port}{parts.path}"


@pytest.fixture(scope="module")
def pgbouncer(sample_db: str) -> Iterator[int]:
    """PgBouncer in transaction mode on 127.0.0.1:PORT, every database forwarded to the test cluster."""
    target = urlsplit(sample_db)
    with tempfile.TemporaryDirectory(prefix="datso-pgbouncer-") as tmp:
        yield from _run_pgbouncer(Path(tmp), target)


def _run_pgbouncer(d: Path, target: Any) -> Iterator[int]:
    d.chmod(0o755)     # PgBouncer runs as postgres when the tests run as root; pytest's tmp dirs are 0700
    # a server that asks for a password (the embedded cluster's scram-sha-256 over TCP): PgBouncer logs in with
    # the auth_file's plain-text password of the client's user; clients authenticate to PgBouncer itself (trust,
    # 127.0.0.1 only)
    secret = unquote(target.password) if target.password else ""
    (d / "userlist.txt").write_text(f'"postgres" "{secret}"\n')
    (d / "userlist.txt").chmod(0o600)
    (d / "pgbouncer.ini").write_text(f"""[databases]
* = host={target.hostname} port={target.port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {PORT}
unix_socket_dir =
auth_type = trust
auth_file = {d / 'userlist.txt'}
admin_users = postgres
logfile = {d / 'pgbouncer.log'}
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
; PgBouncer 1.18 refuses other startup parameters; the session settings are then the database's own
ignore_startup_parameters = extra_float_digits,options,jit,max_parallel_workers_per_gather,statement_timeout
""")
    cmd = [PGBOUNCER, str(d / "pgbouncer.ini")]
    if os.geteuid() == 0:     # PgBouncer refuses to run as root
        shutil.chown(d, "postgres")
        for f in d.iterdir():
            shutil.chown(f, "postgres")
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log = d / "pgbouncer.log"
                raise RuntimeError(f"pgbouncer did not start: {log.read_text() if log.exists() else ''}") from None
            time.sleep(0.1)
    try:
        yield PORT
    finally:
        proc.terminate()
        proc.wait(10)


def _admin(port: int, command: str) -> list[dict[str, str]]:
    """A PgBouncer console command (simple query protocol: psql)."""
    psql = str(pgcluster.find_pg_bin(Settings()) / "psql")
    out = subprocess.run([psql, "-X", "-A", "-F", "\t", "-P", "footer=off", "-h", "127.0.0.1", "-p", str(port),  # noqa: S603
                          "-U", "postgres", "pgbouncer", "-c", command],
                         capture_output=True, text=True, check=True, timeout=10).stdout.splitlines()
    head = out[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=False)) for line in out[1:]]


def _queries(port: int, db: str) -> int:
    return sum(int(r["total_query_count"]) for r in _admin(port, "SHOW STATS") if r["database"] == db)


@pytest.fixture(scope="module")
def pooled(pgbouncer: int, sample_db: str, settings: Settings) -> Iterator[tuple[TestClient, str]]:
    """A TestClient over an app whose DATABASE_URL is PgBouncer (env as an operator sets it)."""
    from api.app import create_app

    via = _via(sample_db, pgbouncer)
    env = {"DATABASE_URL": via, "DATSO_DATABASE_POOLER": "true", "DATSO_DATABASE_LISTEN_URL": sample_db}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        s = Settings()
        assert s.database_pooler and s.dsn() == via
        with TestClient(create_app(settings=s, dsn=via)) as c:
            yield c, via
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


def test_reads_through_pgbouncer(pooled: tuple[TestClient, str], pgbouncer: int, settings: Settings) -> None:
    c, _ = pooled
    before = _queries(pgbouncer, settings.db_name)
    for _ in range(3):     # more than once: a prepared-statement clash shows up on reuse of server connections
        r = c.get("/collections/parcels/items", params={"limit": 5})
        assert r.status_code == 200, r.text
        assert len(r.json()["features"]) == 5
        fid = r.json()["features"][0]["id"]
        one = c.get(f"/collections/parcels/items/{fid}")
        assert one.status_code == 200 and one.json()["id"] == fid and one.headers["etag"]
        f = c.get("/collections/parcels/items", params={"filter": "area_m2 > 500 AND status = 'managed'",
                                                       "limit": 3})
        assert f.status_code == 200, f.text
        assert all(x["properties"]["area_m2"] > 500 for x in f.json()["features"])
    assert _queries(pgbouncer, settings.db_name) > before      # the reads really went through PgBouncer


def _tile_of(c: TestClient, layer: str) -> tuple[str, dict[str, Any]]:
    """A z14 tile URL covering the first feature of `layer` (and that feature)."""
    import morecantile

    f = c.get(f"/collections/{layer}/items", params={"limit": 1}).json()["features"][0]
    xs = [p[0] for p in _coords(f["geometry"])]
    ys = [p[1] for p in _coords(f["geometry"])]
    t = morecantile.tms.get("WebMercatorQuad").tile((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, 14)
    return f"/collections/{layer}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}", f


def _coords(geom: dict[str, Any]) -> list[list[float]]:
    out: list[list[float]] = []

    def walk(x: Any) -> None:
        if isinstance(x, list) and x and isinstance(x[0], (int, float)):
            out.append(x)
        elif isinstance(x, list):
            for y in x:
                walk(y)
    walk(geom["coordinates"])
    return out


def test_write_with_if_match_and_tile_invalidation(pooled: tuple[TestClient, str], sample_db: str) -> None:
    c, via = pooled
    key = create_key(via, f"pgb-{uuid.uuid4().hex[:8]}", "officer")      # key creation through PgBouncer too
    tile, f = _tile_of(c, "auction_plots")
    first = c.get(tile)
    assert first.status_code == 200, first.text
    etag_tile = first.headers["etag"]
    url = f"/collections/auction_plots/items/{f['id']}"
    got = c.get(url)
    tag = got.headers["etag"]
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/merge-patch+json"}
    # the edit moves the plot's geometry by a few metres: its tile must be rebuilt (NOTIFY → direct LISTEN)
    moved = json.loads(json.dumps(f["geometry"]))

    def shift(x: Any) -> None:
        if isinstance(x, list) and x and isinstance(x[0], (int, float)):
            x[0] += 0.00005
        elif isinstance(x, list):
            for y in x:
                shift(y)
    shift(moved["coordinates"])
    r = c.patch(url, content=json.dumps({"geometry": moved}), headers={**h, "If-Match": tag})
    assert r.status_code == 204, r.text
    stale = c.patch(url, content=json.dumps({"geometry": f["geometry"]}), headers={**h, "If-Match": tag})
    assert stale.status_code == 412
    deadline = time.monotonic() + 10
    while c.get(tile).headers["etag"] == etag_tile:
        assert time.monotonic() < deadline, "the edited tile was never invalidated"
        time.sleep(0.1)
    # put it back (If-Match with the new ETag)
    back = c.patch(url, content=json.dumps({"geometry": f["geometry"]}),
                   headers={**h, "If-Match": c.get(url).headers["etag"]})
    assert back.status_code == 204, back.text


def test_import_through_pgbouncer(pgbouncer: int, settings: Settings, tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    name = settings.db_name + "_pgb"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    dbmod.migrate(s)
    try:
        n = 40
        gdf = gpd.GeoDataFrame({
            "commune_code": ["86001"] * n, "map_sheet": [7] * n, "parcel_no": list(range(1, n + 1)),
            "address": ["Số 1 ấp Phú Hưng"] * n, "area_m2": [225.0] * n, "land_use_codes": ["ONT"] * n,
            "status": ["managed"] * n},
            geometry=[shapely.box(106.3 + i * 0.0002, 10.0, 106.3 + i * 0.0002 + 0.00015, 10.00015)
                      for i in range(n)], crs="EPSG:4326")
        path = tmp_path / "parcels.gpkg"
        gdf.to_file(path)
        via = _via(s.dsn(), pgbouncer)
        os.environ["DATSO_DATABASE_POOLER"] = "true"
        get_settings.cache_clear()
        try:
            res = import_file(path, "parcels", via, ImportOptions(progress=False, user="tester"))
        finally:
            os.environ.pop("DATSO_DATABASE_POOLER", None)
            get_settings.cache_clear()
        assert res.ok, [i.describe("en") for i in res.errors]
        assert res.rows_written == n
        with pgcluster.connect("writer", dsn=s.dsn()) as conn:
            row = conn.execute("SELECT count(*) FROM parcels").fetchone()
        assert row == (n,)
        assert _queries(pgbouncer, name) > 0
    finally:
        pgcluster.drop_database(s, name)


def test_no_prepared_statement_clashes_under_concurrency(pgbouncer: int, sample_db: str) -> None:
    """Six client sessions over two server connections, interleaved transactions: with the pooler setting no
    statement fails; without it asyncpg's named prepared statements land on the wrong server connection
    (the negative control shows the check can see the failure)."""
    import asyncio

    from layers.store import connect

    via = _via(sample_db, pgbouncer)

    async def run() -> int:
        conns = [await connect.connect_async("reader", dsn=via) for _ in range(6)]
        errors = 0

        async def work(c: Any) -> None:
            nonlocal errors
            for j in range(30):
                try:
                    async with c.transaction():
                        await c.fetchval("SELECT count(*) FROM parcels WHERE id > $1", j)
                        await asyncio.sleep(0.001)
                    await c.fetchval("SELECT count(*) FROM parcels WHERE id > $1", j)
                except Exception:  # noqa: BLE001 - counted
                    errors += 1
        try:
            await asyncio.gather(*(work(c) for c in conns))
        finally:
            for c in conns:
                await c.close()
        return errors

    def with_pooler(on: bool) -> int:
        os.environ["DATSO_DATABASE_POOLER"] = "true" if on else "false"
        get_settings.cache_clear()
        try:
            return asyncio.run(run())
        finally:
            os.environ.pop("DATSO_DATABASE_POOLER", None)
            get_settings.cache_clear()

    assert with_pooler(True) == 0
    assert with_pooler(False) > 0


def test_statement_timeouts_survive_pgbouncer(pgbouncer: int, sample_db: str, settings: Settings) -> None:
    """PgBouncer 1.18 drops the startup `options` that carry each request class's statement_timeout; with
    DATSO_DATABASE_POOLER the seam sets it per transaction instead (SET LOCAL). A read blocked past its limit
    (items, a tile, a raw pg_sleep) is cancelled: 503 problem+json with Retry-After, promptly, not hung."""
    import psycopg

    from api.app import create_app
    from layers.settings import ApiSettings

    via = _via(sample_db, pgbouncer)
    with psycopg.connect(via) as plain:        # the negative control: what a session gets through PgBouncer
        assert plain.execute("SHOW statement_timeout").fetchone() == ("0",)
    os.environ["DATSO_DATABASE_POOLER"] = "true"
    get_settings.cache_clear()
    try:
        s = Settings().model_copy(update={"database_url": via, "database_listen_url": sample_db})
        app = create_app(settings=s, dsn=via, api_settings=ApiSettings(read_statement_timeout=1.0, retry_after=3))

        async def slow() -> None:
            async with app.state.db.connection() as conn:
                await conn.execute("SELECT pg_sleep(30)")

        async def read_limit() -> str:
            async with app.state.db.connection() as conn:
                return str(await conn.fetchval("SHOW statement_timeout"))

        app.add_api_route("/__test/slow", slow)
        app.add_api_route("/__test/limit", read_limit)
        with TestClient(app) as c:
            assert c.get("/__test/limit").json() == "1s"
            with app.state.write_pool.connection() as conn:
                assert conn.execute("SHOW statement_timeout").fetchone() == ("15s",)
            tile, _ = _tile_of(c, "parcels")
            faces = ["/__test/slow", "/collections/parcels/items?limit=1&lang=en", tile]
            with psycopg.connect(sample_db) as lock:          # direct: hold parcels for the whole block
                lock.execute("LOCK TABLE parcels IN ACCESS EXCLUSIVE MODE")
                c.app.state.tile_service.cache.clear()  # type: ignore[attr-defined]
                for face in faces:
                    t0 = time.monotonic()
                    r = c.get(face)
                    took = time.monotonic() - t0
                    assert r.status_code == 503, (face, r.status_code, r.text[:300])
                    assert r.headers["content-type"].startswith("application/problem+json"), face
                    assert r.headers["retry-after"] == "3"
                    assert took < 10, (face, took)                  # cancelled at ~1 s, not held for 30
            assert "time limit" in c.get("/__test/slow", params={"lang": "en"}).json()["detail"]
            assert c.get("/collections/parcels/items", params={"limit": 1}).status_code == 200
    finally:
        os.environ.pop("DATSO_DATABASE_POOLER", None)
        get_settings.cache_clear()
