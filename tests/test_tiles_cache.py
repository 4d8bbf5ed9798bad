"""The tile cache: ETag/304, gzip, Cache-Control, LRU bound, the directory cache, and invalidation by
edits (SQL or another app/process) of exactly the tiles the old and new geometries touch."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from tiles_support import WMQ, features, get_tile, tile_client, tile_of, wait_for

from layers.settings import Settings
from tiles.cache import CacheKey, TileCache, make_entry

PARCEL = "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c FROM parcels WHERE id = %s) s"
ZOOMS = (12, 14, 16)


def url(z: int, x: int, y: int, layer: str = "parcels") -> str:
    return f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"


@pytest.fixture(scope="module")
def client(sample_db: str, settings: Settings) -> Iterator[TestClient]:
    # CORS is off by default; this app allows cross-origin reads from anywhere (DATSO_CORS_ORIGINS=*), as a
    # deployment whose tiles other sites' maps use would, so the fast path's CORS answer is checked too
    from layers.settings import ApiSettings

    with tile_client(settings, sample_db, api_settings=ApiSettings(cors_origins=["*"])) as c:
        yield c


def stats(client: TestClient) -> dict[str, int]:
    return client.app.state.tile_service.cache.stats.as_dict()  # type: ignore[attr-defined,no-any-return]


def test_etag_304_gzip_and_cache_control(client: TestClient, sample_db: str) -> None:
    t = tile_of(sample_db, PARCEL, 15, 100)
    first = get_tile(client, url(15, t.x, t.y))
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    assert first.headers["cache-control"] == client.app.state.tile_settings.cache_control  # type: ignore[attr-defined]
    etag = first.headers["etag"]
    again = get_tile(client, url(15, t.x, t.y))
    assert again.headers["x-cache"] == "HIT" and again.content == first.content and again.headers["etag"] == etag
    not_modified = get_tile(client, url(15, t.x, t.y), **{"if-none-match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    other = get_tile(client, url(15, t.x, t.y), **{"if-none-match": '"something-else"'})
    assert other.status_code == 200
    # the browser path: the stored gzip bytes, their own ETag, same tile inside
    gz = client.get(url(15, t.x, t.y), headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and "Accept-Encoding" in gz.headers["vary"]
    assert gz.content == first.content        # httpx decoded it
    assert gz.headers["etag"] != etag
    assert get_tile(client, url(15, t.x, t.y), **{"if-none-match": gz.headers["etag"]}).status_code == 304


def test_cache_off_setting(sample_db: str, settings: Settings) -> None:
    t = tile_of(sample_db, PARCEL, 15, 100)
    with tile_client(settings, sample_db, cache_enabled=False) as c:
        for _ in range(2):
            r = get_tile(c, url(15, t.x, t.y))
            assert r.status_code == 200 and r.headers["x-cache"] == "OFF"
        assert c.app.state.tile_service.cache is None  # type: ignore[attr-defined]


def test_lru_is_bounded_in_bytes() -> None:
    cache = TileCache(max_bytes=20_000)
    entry = make_entry(os.urandom(3000))
    for i in range(30):
        cache.put(CacheKey(("parcels",), "", 16, i, 0), entry)
    assert cache.bytes <= 20_000
    assert cache.stats.lru_evicted == 30 - len(cache)
    assert cache.get(CacheKey(("parcels",), "", 16, 29, 0)) is not None   # newest kept
    assert cache.get(CacheKey(("parcels",), "", 16, 0, 0)) is None        # oldest gone


def _move_sql(dx: float) -> str:
    return f"UPDATE parcels SET geom = ST_Multi(ST_Translate(geom, {dx}, 0)) WHERE id = %s"


@pytest.fixture()
def moved_parcel(sample_db: str) -> Iterator[int]:
    """A parcel id; whatever the test does to it is undone afterwards."""
    pid = 123
    with psycopg.connect(sample_db) as c:
        before = c.execute("SELECT geom FROM parcels WHERE id = %s", (pid,)).fetchone()
    yield pid
    with psycopg.connect(sample_db) as c:
        c.execute("UPDATE parcels SET geom = %s WHERE id = %s", (before[0], pid))  # type: ignore[index]


def test_edit_invalidates_exactly_the_old_and_new_tiles(client: TestClient, sample_db: str,
                                                        moved_parcel: int) -> None:
    pid = moved_parcel
    dx = 0.2   # ~22 km east: a different tile at z12 and above
    old = {z: tile_of(sample_db, PARCEL, z, pid) for z in ZOOMS}
    far = tile_of(sample_db, PARCEL, 16, 4000)
    # the new place: same point moved by dx
    with psycopg.connect(sample_db) as c:
        lon, lat = c.execute("SELECT ST_X(c) + %s, ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c FROM parcels "
                             "WHERE id = %s) s", (dx, pid)).fetchone()  # type: ignore[misc]
    new = {z: WMQ.tile(lon, lat, z) for z in ZOOMS}
    assert all(old[z] != new[z] for z in ZOOMS) and far not in old.values()
    urls = [url(t.z, t.x, t.y) for t in (*old.values(), *new.values(), far)]
    before = {u: get_tile(client, u) for u in urls}
    assert all(get_tile(client, u).headers["x-cache"] == "HIT" for u in urls)
    assert pid in features(before[url(16, old[16].x, old[16].y)].content, "parcels")
    assert pid not in features(before[url(16, new[16].x, new[16].y)].content, "parcels")
    s0 = stats(client)
    with psycopg.connect(sample_db) as c:   # a direct SQL edit, not through the API
        c.execute(_move_sql(dx), (pid,))
    wait_for(lambda: stats(client)["invalidated"] >= s0["invalidated"] + 2 * len(ZOOMS))
    after = {u: get_tile(client, u) for u in urls}
    for z in ZOOMS:
        for t in (old[z], new[z]):
            r = after[url(z, t.x, t.y)]
            assert r.headers["x-cache"] == "MISS", (z, t)
    assert pid not in features(after[url(16, old[16].x, old[16].y)].content, "parcels")
    assert pid in features(after[url(16, new[16].x, new[16].y)].content, "parcels")
    assert after[url(16, far.x, far.y)].headers["x-cache"] == "HIT"      # untouched tile stays cached
    assert after[url(16, far.x, far.y)].content == before[url(16, far.x, far.y)].content
    s1 = stats(client)
    assert s1["misses"] - s0["misses"] == 2 * len(ZOOMS)
    assert s1["clears"] == s0["clears"]                                   # never the whole cache


def test_attribute_edit_and_filter_variants_are_invalidated(client: TestClient, sample_db: str) -> None:
    pid = 200
    t = tile_of(sample_db, PARCEL, 16, pid)
    with psycopg.connect(sample_db) as c:
        status = c.execute("SELECT status FROM parcels WHERE id = %s", (pid,)).fetchone()[0]  # type: ignore[index]
    new_status = "leased" if status != "leased" else "managed"
    plain, filtered = url(16, t.x, t.y), url(16, t.x, t.y) + f"?status={new_status}"
    get_tile(client, plain), get_tile(client, filtered)
    assert pid not in features(get_tile(client, filtered).content, "parcels")
    s0 = stats(client)
    try:
        with psycopg.connect(sample_db) as c:
            c.execute("UPDATE parcels SET status = %s WHERE id = %s", (new_status, pid))
        wait_for(lambda: stats(client)["invalidated"] >= s0["invalidated"] + 2)
        r = get_tile(client, filtered)
        assert r.headers["x-cache"] == "MISS" and pid in features(r.content, "parcels")
        assert features(get_tile(client, plain).content, "parcels")[pid]["status"] == new_status
    finally:
        with psycopg.connect(sample_db) as c:
            c.execute("UPDATE parcels SET status = %s WHERE id = %s", (status, pid))


def test_rolled_back_edit_invalidates_nothing(client: TestClient, sample_db: str) -> None:
    t = tile_of(sample_db, PARCEL, 16, 300)
    get_tile(client, url(16, t.x, t.y))
    received = client.app.state.tile_service.invalidator.received  # type: ignore[attr-defined]
    with psycopg.connect(sample_db) as c:
        c.execute(_move_sql(0.01), (300,))
        c.rollback()
        c.execute("SELECT pg_notify('datso_tiles', 'probe-not-json-from-test')")   # a marker, after it
        c.commit()
    wait_for(lambda: client.app.state.tile_service.invalidator.received > received)  # type: ignore[attr-defined]
    assert client.app.state.tile_service.invalidator.received == received + 1  # type: ignore[attr-defined]


def test_directory_cache_is_shared_and_invalidated(sample_db: str, settings: Settings, tmp_path: Path,
                                                    moved_parcel: int) -> None:
    pid = moved_parcel
    t = tile_of(sample_db, PARCEL, 16, pid)
    u = url(16, t.x, t.y)
    with tile_client(settings, sample_db, cache_dir=tmp_path) as a:
        first = get_tile(a, u)
        assert first.headers["x-cache"] == "MISS"
        stored = list(tmp_path.rglob("*.mvt.gz"))
        assert len(stored) == 1 and gzip.decompress(stored[0].read_bytes()) == first.content
        # another process on the same directory (empty memory) finds the tile there: `a` keeps it current
        with tile_client(settings, sample_db, cache_dir=tmp_path) as b:
            r = get_tile(b, u)
            assert r.headers["x-cache"] == "HIT" and r.content == first.content
            s0 = stats(b)
            with psycopg.connect(sample_db) as conn:
                conn.execute(_move_sql(0.001), (pid,))
            wait_for(lambda: stats(b)["invalidated"] > s0["invalidated"])
            assert not list(tmp_path.rglob("*.mvt.gz"))
            r = get_tile(b, u)
            assert r.headers["x-cache"] == "MISS" and r.content != first.content
            assert list(tmp_path.rglob("*.mvt.gz"))
    # nobody listened for this directory meanwhile: a process starting now cannot trust it and clears it
    with tile_client(settings, sample_db, cache_dir=tmp_path) as c:
        assert not list(tmp_path.rglob("*.mvt.gz"))
        assert get_tile(c, u).headers["x-cache"] == "MISS"


def test_directory_hit_without_memory(sample_db: str, settings: Settings, tmp_path: Path) -> None:
    t = tile_of(sample_db, PARCEL, 16, 500)
    u = url(16, t.x, t.y)
    with tile_client(settings, sample_db, cache_dir=tmp_path, cache_bytes=0) as c:
        assert get_tile(c, u).headers["x-cache"] == "MISS"
        assert c.app.state.tile_service.cache.bytes == 0  # type: ignore[attr-defined]
        r = get_tile(c, u)
        assert r.headers["x-cache"] == "HIT"


def _free_port() -> int:
    for port in range(8200, 8300):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8200-8299")


@pytest.fixture()
def other_process(sample_db: str) -> Iterator[str]:
    """datso in another process (uvicorn, 2 workers) on the same database."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": sample_db, "DATSO_TILE_CACHE_ENABLED": "true"}
    proc = subprocess.Popen([sys.executable, "-c", f"from api.server import run; run(port={port}, workers=2)"],
                            env=env, cwd=Path(__file__).parent.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("datso did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_edit_through_one_app_evicts_in_other_processes(other_process: str, sample_db: str, settings: Settings,
                                                        moved_parcel: int) -> None:
    pid = moved_parcel
    t = tile_of(sample_db, PARCEL, 16, pid)
    path = url(16, t.x, t.y)
    with httpx.Client(headers={"accept-encoding": "identity"}) as h:
        # two workers: ask until both have answered from their cache
        hits = [h.get(other_process + path).headers["x-cache"] for _ in range(20)]
        assert hits.count("HIT") >= 10
        before = h.get(other_process + path).content
        assert pid in features(before, "parcels")
        # the edit: SQL straight on the shared database (an import or another app would do the same)
        with psycopg.connect(sample_db) as c:
            c.execute(_move_sql(0.01), (pid,))
        with tile_client(settings, sample_db, cache_enabled=False) as fresh:
            expected = get_tile(fresh, path).content
        assert expected != before and pid not in features(expected, "parcels")
        wait_for(lambda: all(h.get(other_process + path).content == expected for _ in range(6)))
        states = [h.get(other_process + path).headers["x-cache"] for _ in range(10)]
        assert "HIT" in states      # cached again, with the new bytes


def test_fast_path_answers_like_the_routes(client: TestClient, sample_db: str) -> None:
    """Tiles without filters are served by the ASGI fast path; with another query parameter by the route:
    same bytes, ETag and headers, both for a miss and for a hit."""
    t = tile_of(sample_db, PARCEL, 16, 700)
    fast_url = f"/tiles/16/{t.x}/{t.y}.mvt?layers=parcels"
    route_url = fast_url + "&lang=vi"
    for i in range(2):   # a miss (fast path) then a hit (route); then hits on both
        fast, route = get_tile(client, fast_url), get_tile(client, route_url)
        assert fast.status_code == route.status_code == 200
        assert fast.content == route.content
        for h in ("etag", "cache-control", "content-type"):
            assert fast.headers[h] == route.headers[h], h
        assert (fast.headers["x-cache"], route.headers["x-cache"]) == (("MISS", "HIT") if i == 0 else ("HIT", "HIT"))
    cors = get_tile(client, fast_url, origin="https://map.example")
    assert cors.headers["access-control-allow-origin"] == "*" and "ETag" in cors.headers["access-control-expose-headers"]
