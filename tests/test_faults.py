"""Faults (issue 8): statement timeouts per request class, 503 problem+json with Retry-After on every read face
while the database is unreachable, an unexpected error that keeps the keep-alive connection, blocking work
(Folium, HTML pages) off the event loop, and the server's request-head timeout and size limit.

Everything runs against the real PostGIS and real sockets; ordering, not timings, is asserted."""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import LiveServer, free_port
from fastapi.testclient import TestClient
from test_health import Proxy

from api import features as features_api
from api import map as map_api
from api.app import create_app
from api.db import Database, QueryTimeout
from layers.settings import ApiSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _is_503_problem(r: httpx.Response, html_ok: bool = False) -> None:
    assert r.status_code == 503, (r.request.url, r.status_code, r.text[:300])
    assert r.headers["retry-after"].isdigit(), r.headers
    ctype = r.headers["content-type"]
    if html_ok and ctype.startswith("text/html"):
        return
    assert ctype.startswith("application/problem+json"), (r.request.url, ctype)
    body = r.json()
    assert body["status"] == 503 and body["detail"]
    assert "asyncpg" not in r.text and "psycopg" not in r.text and "postgres" not in r.text.lower()


# -- statement_timeout per request class ------------------------------------------------------------------

def test_read_connection_statement_timeout_is_query_timeout(sample_db: str) -> None:
    async def run() -> tuple[str, str]:
        db = Database(sample_db, read_timeout=0.2, export_timeout=7.5)
        try:
            async with db.connection() as conn:
                read = await conn.fetchval("SHOW statement_timeout")
            async with db.connection("export") as conn:
                export = await conn.fetchval("SHOW statement_timeout")
            with pytest.raises(QueryTimeout):
                async with db.connection() as conn:
                    await conn.execute("SELECT pg_sleep(5)")
            async with db.connection() as conn:   # the pool is still fine afterwards
                assert await conn.fetchval("SELECT 1") == 1
            return read, export
        finally:
            await db.close()

    read, export = asyncio.run(run())
    assert read == "200ms" and export == "7500ms"


def test_export_past_its_statement_timeout_is_503(settings: Settings, sample_db: str) -> None:
    # exports get their own (here absurdly short) limit; reads keep theirs
    app = create_app(settings=settings, dsn=sample_db,
                     api_settings=ApiSettings(export_statement_timeout=0.001, retry_after=7))
    with TestClient(app) as c:
        assert c.get("/collections/parcels/items", params={"limit": 5}).status_code == 200
        r = c.get("/collections/parcels/items", params={"f": "csv", "limit": 10000})
        _is_503_problem(r)
        assert r.headers["retry-after"] == "7"
        assert "time limit" in c.get("/collections/parcels/items", params={"f": "csv", "limit": 10000,
                                                                           "lang": "en"}).json()["detail"]
        r = c.get("/maps/parcels.html")
        _is_503_problem(r)
        r = c.get("/maps/parcels.html", headers=HTML)
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        assert c.get("/health").status_code == 200


def test_raw_query_cancel_is_503(settings: Settings, sample_db: str) -> None:
    """A statement cancelled on a connection taken straight from the pool (as the tile service does) is
    answered by the app-wide handler: 503 problem+json, not 500."""
    app = create_app(settings=settings, dsn=sample_db, api_settings=ApiSettings(read_statement_timeout=0.2))

    async def slow() -> None:
        pool = await app.state.db.pool()
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_sleep(5)")

    app.add_api_route("/__test/slow", slow)
    with TestClient(app) as c:
        _is_503_problem(c.get("/__test/slow"))


# -- the database unreachable: every read face says 503 ---------------------------------------------------

READ_FACES = [
    "/collections/parcels/items?limit=5",
    "/collections/parcels/items/1",
    "/collections/parcels/items?f=html&limit=5",
    "/collections/parcels/items?f=csv&limit=5",
    "/collections/parcels?f=json",
    "/collections",
    "/tiles/14/13000/7600.mvt",
    "/collections/parcels/tiles/WebMercatorQuad/14/13000/7600",
    "/collections/auction_plots/tiles/WebMercatorQuad/14/13000/7600?status=announced",
    "/collections/parcels/tiles/WebMercatorQuad/tilejson.json",
    "/styles/default.json",
    "/search?q=12/345",
    "/map",
    "/maps/auction_plots.html",
]


@pytest.fixture()
def down_client(settings: Settings, sample_db: str) -> Iterator[tuple[TestClient, Proxy]]:
    from urllib.parse import urlparse

    db_port = urlparse(sample_db).port or 5432
    proxy = Proxy(db_port)          # never switched on: the database is unreachable from the start
    app = create_app(settings=settings, api_settings=ApiSettings(db_connect_timeout=1.0),
                     dsn=sample_db.replace(f":{db_port}/", f":{proxy.port}/"))
    with TestClient(app) as client:
        yield client, proxy
    proxy.off()


@pytest.mark.parametrize("path", READ_FACES)
def test_every_read_face_is_503_while_the_database_is_down(down_client: tuple[TestClient, Proxy],
                                                          path: str) -> None:
    client, _ = down_client
    _is_503_problem(client.get(path))
    _is_503_problem(client.get(path, headers=HTML), html_ok=True)


def test_reads_recover_after_the_database_returns(down_client: tuple[TestClient, Proxy]) -> None:
    client, proxy = down_client
    _is_503_problem(client.get("/collections/parcels/items?limit=2"))
    proxy.on()
    assert client.get("/collections/parcels/items?limit=2").status_code == 200
    proxy.off()             # cut while the pool holds connections
    _is_503_problem(client.get("/search?q=12/345"))
    proxy.on()
    assert [client.get("/search?q=12/345").status_code for _ in range(3)][-1] == 200


# -- an unexpected error keeps the connection usable -------------------------------------------------------

@pytest.fixture()
def boom_server(settings: Settings, sample_db: str) -> Iterator[LiveServer]:
    app = create_app(settings=settings, dsn=sample_db)

    async def boom() -> None:
        raise RuntimeError("a bug the handlers do not know")

    app.add_api_route("/__test/boom", boom)
    with LiveServer(app, free_port()) as srv:
        yield srv


def test_unexpected_error_is_500_problem_and_keeps_the_connection(boom_server: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", boom_server.port, timeout=20)
    conn.request("GET", "/__test/boom", headers={"X-Request-ID": "req-42"})
    r = conn.getresponse()
    body = orjson.loads(r.read())
    assert r.status == 500 and r.getheader("content-type") == "application/problem+json"
    assert body["request_id"] == "req-42" and r.getheader("x-request-id") == "req-42"
    assert "RuntimeError" not in str(body) and "bug" not in str(body)
    assert (r.getheader("connection") or "").lower() != "close"
    local = conn.sock.getsockname()
    # the same TCP connection answers the next requests (http.client would silently reconnect otherwise)
    for path in ("/health", "/__test/boom", "/collections/parcels/items?limit=1"):
        conn.request("GET", path)
        r2 = conn.getresponse()
        r2.read()
        assert r2.status in (200, 500)
        assert conn.sock is not None and conn.sock.getsockname() == local
    conn.close()


def test_unexpected_error_request_id_generated(settings: Settings, sample_db: str) -> None:
    app = create_app(settings=settings, dsn=sample_db)

    async def boom() -> None:
        raise ValueError("x")

    app.add_api_route("/__test/boom", boom)
    with TestClient(app) as c:
        r = c.get("/__test/boom", headers={"X-Request-ID": "bad id with spaces"})
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
        assert len(r.json()["request_id"]) == 32 and r.headers["x-request-id"] == r.json()["request_id"]
        assert r.json()["detail"] == "Lỗi không mong đợi"


# -- blocking work runs off the event loop -----------------------------------------------------------------

class Gate:
    """Wraps a blocking function: the first call signals `entered` and then waits until `release`. If the
    function ran on the event loop, nothing else on that server could answer while it waits."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.entered, self.release = fn, threading.Event(), threading.Event()
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(30)
        return self.fn(*args, **kwargs)


def _during(live_server: LiveServer, gate: Gate, slow_path: str) -> list[str]:
    order: list[str] = []
    result: dict[str, httpx.Response] = {}

    def slow() -> None:
        result["slow"] = httpx.get(live_server.url + slow_path, timeout=60)
        order.append("slow")

    t = threading.Thread(target=slow)
    t.start()
    try:
        assert gate.entered.wait(30), "the slow request never reached its blocking work"
        # the blocking work is in progress right now: the same server must still answer
        for path in ("/health", "/collections/parcels/items?limit=1", "/tiles/10/812/475.mvt"):
            r = httpx.get(live_server.url + path, timeout=10)
            assert r.status_code in (200, 204), (path, r.status_code)
            order.append(path)
    finally:
        gate.release.set()
        t.join(60)
    assert result["slow"].status_code == 200
    return order


@pytest.fixture(scope="module")
def thread_server(settings: Settings, sample_db: str) -> Iterator[LiveServer]:
    """Folium exports in threads (DATSO_EXPORT_PROCESSES=false), so a gate in this process can hold one."""
    app = create_app(settings=settings, dsn=sample_db, api_settings=ApiSettings(export_processes=False))
    with LiveServer(app, free_port()) as srv:
        yield srv


def test_folium_export_does_not_block_other_requests(thread_server: LiveServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(map_api.build_map)
    monkeypatch.setattr(map_api, "build_map", gate)
    order = _during(thread_server, gate, "/maps/parcels.html")
    assert order[-1] == "slow" and order.index("/health") < order.index("slow")


def test_folium_export_in_a_process_matches_the_thread_export(live_server: LiveServer,
                                                              thread_server: LiveServer) -> None:
    """The default (an export process) and the thread fallback build the same page."""
    path = "/maps/auction_plots.html?status=announced&lang=en"
    a = httpx.get(live_server.url + path, timeout=120)
    b = httpx.get(thread_server.url + path, timeout=120)
    assert a.status_code == b.status_code == 200
    assert a.text.count('"_style":') == b.text.count('"_style":') > 0
    assert len(a.text) == len(b.text)


def test_html_page_rendering_does_not_block_other_requests(live_server: LiveServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(features_api.format_value)
    monkeypatch.setattr(features_api, "format_value", gate)
    order = _during(live_server, gate, "/collections/parcels/items?f=html&limit=20")
    assert order[-1] == "slow" and order.index("/health") < order.index("slow")


# -- the server: request-head timeout and size, no banner ---------------------------------------------------

@pytest.fixture(scope="module")
def served(sample_db: str) -> Iterator[str]:
    """`datso serve` in a subprocess (the real uvicorn configuration), header timeout 1 s."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": sample_db, "PYTHONPATH": str(ROOT), "DATSO_HEADER_TIMEOUT": "1",
           "DATSO_MAX_HEAD_BYTES": "8192"}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "datso serve exited")
            time.sleep(0.2)
        else:
            raise RuntimeError("datso serve did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_half_open_connections_are_closed_and_the_server_answers(served: str) -> None:
    port = _port(served)
    half = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"GET /collections/parcels/ite")          # half a request line, never finished
        half.append(s)
    silent = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(20)]  # nothing at all
    # meanwhile the server answers
    r = httpx.get(served + "/health", timeout=10)
    assert r.status_code == 200
    # and then closes every half-open connection: 408 for those that began a request, EOF for the others
    for s in half:
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 408"), data[:60]
        s.close()
    for s in silent:
        assert s.recv(4096) == b""
        s.close()
    assert httpx.get(served + "/collections/parcels/items?limit=1", timeout=10).status_code == 200


def test_slow_headers_on_a_keep_alive_connection_are_cut(served: str) -> None:
    """The limit applies to every request head, not only the first one of a connection."""
    with socket.create_connection(("127.0.0.1", _port(served)), timeout=30) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"}"):        # the whole first response (a JSON body)
            first += s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1")   # headers never finished
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 408")


def test_oversized_request_head_is_refused(served: str) -> None:
    with socket.create_connection(("127.0.0.1", _port(served)), timeout=30) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400")
    assert httpx.get(served + "/health", timeout=10).status_code == 200


def test_no_server_banner(served: str) -> None:
    r = httpx.get(served + "/health", timeout=10)
    assert "server" not in r.headers


def test_asyncpg_client_errors_are_503_only_when_the_database_failed(settings: Settings, sample_db: str) -> None:
    """A connection the server dropped mid-operation leaves asyncpg's protocol in a broken state
    (InternalClientError, seen in bench/outage.py during `pg_ctl stop -m fast`): 503. An InterfaceError with
    no database fault behind it is a bug: 500 from the last resort."""
    import asyncpg

    app = create_app(settings=settings, dsn=sample_db)

    async def broken_protocol() -> None:
        raise asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress")

    async def dropped() -> None:
        try:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        except asyncpg.exceptions.ConnectionDoesNotExistError as exc:
            raise asyncpg.exceptions.InterfaceError("connection is closed") from exc

    async def misuse() -> None:
        raise asyncpg.exceptions.InterfaceError("cannot call Connection.fetch(): connection has been released")

    app.add_api_route("/__test/broken", broken_protocol)
    app.add_api_route("/__test/dropped", dropped)
    app.add_api_route("/__test/misuse", misuse)
    with TestClient(app) as c:
        _is_503_problem(c.get("/__test/broken"))
        _is_503_problem(c.get("/__test/dropped"))
        r = c.get("/__test/misuse")
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"


def test_h11_protocol_has_the_same_head_timeout(settings: Settings, sample_db: str) -> None:
    """`datso serve` uses httptools; the h11 protocol class (DATSO's fallback) closes half-open heads too."""
    import uvicorn

    from api.server import config
    from layers.settings import ServerSettings

    port = free_port()
    cfg = config(app=create_app(settings=settings, dsn=sample_db), port=port, http="h11",
                 settings=ServerSettings(header_timeout=1, max_head_bytes=8192))
    cfg.log_level = "warning"
    server = uvicorn.Server(cfg)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started:
                break
            time.sleep(0.05)
        half = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(20)]
        for s in half:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert r.status_code == 200 and "server" not in r.headers
        for s in half:
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.1 408"), data[:60]
            s.close()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            # h11 bounds a head still incomplete past its limit (h11_max_incomplete_event_size)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000)
            assert s.recv(4096).startswith(b"HTTP/1.1 400")
    finally:
        server.should_exit = True
        thread.join(15)


def test_past_limit_concurrency_is_503_problem(settings: Settings, sample_db: str) -> None:
    """Past `DATSO_LIMIT_CONCURRENCY` (open connections + running requests per worker) uvicorn refuses new
    requests: with datso, as problem+json with Retry-After."""
    import uvicorn

    from api.server import config
    from layers.settings import ServerSettings

    port = free_port()
    cfg = config(app=create_app(settings=settings, dsn=sample_db), port=port,
                 settings=ServerSettings(limit_concurrency=3, header_timeout=30))
    cfg.log_level = "error"
    server = uvicorn.Server(cfg)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started:
                break
            time.sleep(0.05)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(3)]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert b"content-type: application/problem+json" in head and b"retry-after: 1" in head
        assert orjson.loads(body)["status"] == 503
        for s in idle:
            s.close()
    finally:
        server.should_exit = True
        thread.join(15)
