"""A real streaming read replica: the test builds its own scratch PRIMARY (an embedded cluster in a tmp folder on a
free port: scram-sha-256 over TCP, PostGIS, migrations, the small sample), makes a hot standby of it with
`pg_basebackup -R` (`datso db replica create` underneath: layers.store.pgcluster.make_replica) on another free
port, and runs the real API with DATABASE_URL = the primary and DATSO_DATABASE_READ_URL = the standby:

- reads go to the standby (its pg_stat_activity shows the API's `datso-reader` sessions), writes to the primary;
- a write through the API becomes visible on the standby (its replay position reaches the primary's);
- with replay paused (`pg_wal_replay_pause()`), a worker reads its own writes from the primary, and every worker
  reads from the primary once the standby lags more than DATSO_DB_READ_MAX_LAG (a worker with a huge limit
  shows the standby really is stale);
- with the standby stopped, reads keep answering (items, tiles, collections) from the primary, fast, no 5xx,
  and go back to the standby when it returns.
Both clusters are stopped and removed at the end. Skipped only when the PostgreSQL server binaries are absent."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.accounts.auth import create_key
from layers.settings import ApiSettings, Settings
from layers.store import db as dbmod
from layers.store import pgcluster
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def _binaries() -> str | None:
    try:
        pg_bin = pgcluster.find_pg_bin(Settings())
    except pgcluster.ClusterError as exc:
        return str(exc)
    missing = [b for b in ("initdb", "pg_ctl", "pg_basebackup") if not (pg_bin / b).exists()]
    return f"PostgreSQL server binaries missing in {pg_bin}: {', '.join(missing)}" if missing else None


pytestmark = pytest.mark.skipif(_binaries() is not None, reason=str(_binaries()))


def wait_for(what: str, check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting ({seconds:g} s): {what}"
        time.sleep(0.1)


def one(dsn: str, query: str, *params: Any) -> Any:
    with psycopg.connect(dsn, connect_timeout=5) as c:
        row = c.execute(query, list(params)).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def pair() -> Iterator[dict[str, Any]]:
    """{primary: Settings, replica: Settings, p: primary DSN, r: replica DSN, fid: an auction plot id}."""
    from sample_data.generate import load_sample

    root = Path(tempfile.mkdtemp(prefix="datso-replica-"))
    base = Settings().model_copy(update={"database_url": None, "database_read_url": None,
                                         "database_listen_url": None, "database_pooler": False,
                                         "db_name": os.environ.get("DATSO_TEST_DB", "datso_test") + "_streaming"})
    ps = base.model_copy(update={"data_dir": root / "primary", "pg_port": free_port()})
    rs = base.model_copy(update={"data_dir": root / "replica", "pg_port": free_port()})
    try:
        pgcluster.start(ps)
        dbmod.migrate(ps)
        load_sample(ps.dsn(), size="small", seed=7, force=True)
        # the standby as an operator makes it: `datso db replica create` in its own process
        env = {**os.environ, "DATSO_DATA_DIR": str(ps.data_dir), "DATSO_PG_PORT": str(ps.pg_port),
               "DATSO_DB_NAME": ps.db_name, "PYTHONPATH": str(ROOT)}
        for k in ("DATABASE_URL", "DATSO_DATABASE_URL", "DATSO_DATABASE_READ_URL"):
            env.pop(k, None)
        made = subprocess.run([sys.executable, "-m", "cli.main", "db", "replica", "create", "--data",
                               str(rs.data_dir), "--port", str(rs.pg_port)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert made.returncode == 0, made.stdout + made.stderr
        assert f"DATSO_DATABASE_READ_URL={rs.dsn()}" in made.stdout
        fid = one(ps.dsn(), "SELECT min(id) FROM auction_plots")
        yield {"primary": ps, "replica": rs, "p": ps.dsn(), "r": rs.dsn(), "fid": fid}
    finally:
        for s in (rs, ps):
            try:
                pgcluster.stop(s)
            except pgcluster.ClusterError:
                pass
        shutil.rmtree(root, ignore_errors=True)


def api(pair: dict[str, Any], **api: Any) -> TestClient:
    """The real API on the pair: DATABASE_URL = primary, DATSO_DATABASE_READ_URL = the standby."""
    from api.app import create_app

    s = pair["primary"].model_copy(update={"database_url": pair["p"], "database_read_url": pair["r"]})
    return TestClient(create_app(settings=s, dsn=pair["p"], api_settings=ApiSettings(**api)))


def sessions(dsn: str, app_name: str) -> int:
    return int(one(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", app_name))


def address(c: TestClient, fid: int) -> str:
    r = c.get(f"/collections/auction_plots/items/{fid}")
    assert r.status_code == 200, r.text
    return str(r.json()["properties"]["address"])


def stored(dsn: str, fid: int) -> str:
    return str(one(dsn, "SELECT address FROM auction_plots WHERE id = %s", fid))


def patch(c: TestClient, key: str, fid: int, value: str) -> None:
    url = f"/collections/auction_plots/items/{fid}"
    tag = c.get(url).headers["etag"]
    r = c.patch(url, json={"properties": {"address": value}},
                headers={"Authorization": f"Bearer {key}", "If-Match": tag,
                         "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 204, r.text


def replayed(pair: dict[str, Any]) -> bool:
    """The standby has replayed everything the primary has written so far."""
    target = one(pair["p"], "SELECT pg_current_wal_lsn()::text")
    return bool(one(pair["r"], "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target))


def test_scratch_primary_asks_for_scram_passwords(pair: dict[str, Any]) -> None:
    """A new embedded cluster: scram-sha-256 over TCP with a generated 0600 password file; the DSN the settings
    derive carries it; no password or a wrong one is refused."""
    ps: Settings = pair["primary"]
    assert pgcluster.status(ps).tcp_auth == "scram-sha-256"
    mode = stat.S_IMODE(ps.pg_password_file.stat().st_mode)
    assert mode == 0o600
    secret = ps.pg_password()
    assert secret and len(secret) >= 24 and secret in pair["p"]
    assert one(pair["p"], "SELECT current_user") == "postgres"
    plain = f"postgresql://postgres@127.0.0.1:{ps.pg_port}/{ps.db_name}"
    for dsn in (plain, f"postgresql://postgres:wrong-{uuid.uuid4().hex}@127.0.0.1:{ps.pg_port}/{ps.db_name}"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(dsn, connect_timeout=5, **({"password": ""} if dsn == plain else {})).close()
    # the operator's unix socket (inside the 0700 data folder) stays trust
    assert one(f"postgresql://postgres@/{ps.db_name}?host={ps.pg_data}&port={ps.pg_port}",
               "SELECT current_user") == "postgres"
    # the standby shares the roles: the same password, its own copy of the file
    assert pair["replica"].pg_password() == secret


def test_the_replica_is_a_streaming_hot_standby(pair: dict[str, Any]) -> None:
    assert one(pair["r"], "SELECT pg_is_in_recovery()") is True
    assert one(pair["p"], "SELECT pg_is_in_recovery()") is False
    wait_for("the standby streams from the primary",
             lambda: one(pair["p"], "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == 1)
    st = pgcluster.status(pair["replica"])
    assert st.running and st.standby and "hot standby" in str(st)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        with psycopg.connect(pair["r"]) as c:
            c.execute("UPDATE auction_plots SET address = address WHERE id = %s", [pair["fid"]])


def test_reads_on_the_replica_writes_on_the_primary_and_replicated(pair: dict[str, Any]) -> None:
    fid, p, r = pair["fid"], pair["p"], pair["r"]
    key = create_key(p, f"replica-{uuid.uuid4().hex[:8]}", "officer")
    with api(pair, db_read_check_interval=0.5, db_read_max_lag=30.0) as c:
        assert address(c, fid) == stored(p, fid)
        assert c.get("/collections/auction_plots/items", params={"limit": 3}).status_code == 200
        # (a) the reads' sessions are on the standby, none on the primary
        assert sessions(r, "datso-reader") >= 1
        assert sessions(p, "datso-reader") == 0 and sessions(p, "datso-reader-fallback") == 0
        # (b) a write through the API goes to the primary ...
        value = f"Số {uuid.uuid4().hex[:6]} ấp Bản Sao"
        patch(c, key, fid, value)
        assert stored(p, fid) == value
        assert sessions(p, "datso-writes") >= 1 and sessions(r, "datso-writes") == 0
        # ... and the standby replays it (bounded wait on its replay position)
        wait_for("the standby replays the write", lambda: replayed(pair), 30)
        assert stored(r, fid) == value
        assert address(c, fid) == value
        routing = c.app.state.db.routing  # type: ignore[attr-defined]
        wait_for("reads back on the standby", lambda: address(c, fid) == value and routing.use_replica, 10)
        assert routing.reason == "replica" and routing.confirmed == routing.writes >= 1


def test_a_lagging_replica(pair: dict[str, Any]) -> None:
    fid, p, r = pair["fid"], pair["p"], pair["r"]
    key = create_key(p, f"replica-{uuid.uuid4().hex[:8]}", "officer")
    wait_for("the standby is current", lambda: replayed(pair), 30)
    before = stored(r, fid)
    one(r, "SELECT pg_wal_replay_pause()::text")
    try:
        wait_for("replay paused", lambda: one(r, "SELECT pg_get_wal_replay_pause_state()") == "paused", 10)
        # read-your-writes: this worker wrote, so it reads from the primary until the standby has the write
        with api(pair, db_read_check_interval=0.3, db_read_max_lag=1e6) as c:
            mine = f"Số {uuid.uuid4().hex[:6]} ấp Đọc Lại"
            patch(c, key, fid, mine)
            assert address(c, fid) == mine
            assert stored(r, fid) == before                         # the standby has not replayed it
            routing = c.app.state.db.routing  # type: ignore[attr-defined]
            assert not routing.use_replica and routing.reason == "read_your_writes"
            assert sessions(p, "datso-reader-fallback") >= 1
        # an edit made elsewhere (another process, straight on the primary)
        theirs = f"Số {uuid.uuid4().hex[:6]} ấp Trễ"
        with psycopg.connect(p) as conn:
            conn.execute("UPDATE auction_plots SET address = %s WHERE id = %s", [theirs, fid])
        with api(pair, db_read_check_interval=0.3, db_read_max_lag=1e6) as stale, \
                api(pair, db_read_check_interval=0.3, db_read_max_lag=1.0) as c:
            # a worker that tolerates any lag still reads the standby: it really is behind
            assert address(stale, fid) == before
            assert stale.app.state.db.routing.use_replica  # type: ignore[attr-defined]
            # past DATSO_DB_READ_MAX_LAG every read goes to the primary and is current
            wait_for("the standby lags more than 1 s", lambda: float(one(
                r, "SELECT extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())")) > 1.5, 10)
            time.sleep(0.4)                                          # one check interval
            assert address(c, fid) == theirs
            routing = c.app.state.db.routing  # type: ignore[attr-defined]
            assert not routing.use_replica and routing.reason == "lag" and routing.lag > 1.0
            m = c.get("/metrics").text
            assert 'datso_db_read_fallbacks_total{reason="lag"}' in m
            assert 'datso_db_read_replica_in_use{reason="lag"} 0.0' in m
            one(r, "SELECT pg_wal_replay_resume()::text")
            wait_for("the standby catches up", lambda: replayed(pair), 30)
            wait_for("reads back on the standby", lambda: address(c, fid) == theirs and routing.use_replica, 10)
            assert address(stale, fid) == theirs
    finally:
        one(r, "SELECT pg_wal_replay_resume()::text")


def test_replica_down_then_back(pair: dict[str, Any]) -> None:
    fid, p, r = pair["fid"], pair["p"], pair["r"]
    wait_for("the standby is current", lambda: replayed(pair), 30)
    value = stored(p, fid)
    a = ApiSettings()
    with api(pair, db_read_check_interval=0.5, db_read_max_lag=30.0) as c:
        assert address(c, fid) == value and sessions(r, "datso-reader") >= 1
        lon, lat = one(p, "SELECT ARRAY[ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))] "
                          "FROM auction_plots WHERE id = %s", fid)
        import morecantile

        t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 15)
        tile = f"/collections/auction_plots/tiles/WebMercatorQuad/15/{t.x}/{t.y}"
        assert c.get(tile).status_code == 200
        c.app.state.tile_service.cache.clear()  # type: ignore[attr-defined]   # the tile must be built again
        pgcluster.stop(pair["replica"])
        try:
            routing = c.app.state.db.routing  # type: ignore[attr-defined]
            for path in [f"/collections/auction_plots/items/{fid}", tile, "/collections",
                         "/collections/auction_plots/items?limit=2"] * 3:
                t0 = time.monotonic()
                res = c.get(path)
                took = time.monotonic() - t0
                assert res.status_code == 200, (path, res.status_code, res.text[:300])
                assert took < a.db_connect_timeout + 5, (path, took)   # no stall past a connect timeout
            assert address(c, fid) == value
            assert not routing.use_replica and routing.reason == "down"
            assert sessions(p, "datso-reader-fallback") >= 1
            m = c.get("/metrics").text
            assert 'datso_db_read_replica_in_use{reason="down"} 0.0' in m
            assert 'datso_db_read_fallbacks_total{reason="down"}' in m
        finally:
            pgcluster.start(pair["replica"])
        wait_for("reads back on the standby",
                 lambda: c.get(f"/collections/auction_plots/items/{fid}").status_code == 200 and routing.use_replica,
                 30)
        assert address(c, fid) == value
        assert sessions(r, "datso-reader") >= 1
