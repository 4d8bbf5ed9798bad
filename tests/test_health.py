"""/health against a real PostGIS, through a TCP proxy we can cut to simulate the database going away."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.settings import ApiSettings, Settings


class Proxy:
    """A loopback TCP proxy to the database that can be switched off (closing every connection) and on."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {w, uw}
        await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self.server:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.close()
        self.writers.clear()

    def on(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    def off(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)


@pytest.fixture()
def proxied_client(settings: Settings, sample_db: str) -> Iterator[tuple[TestClient, Proxy]]:
    db_port = int(sample_db.rsplit(":", 1)[1].split("/")[0]) if settings.embedded else 0
    if not settings.embedded:
        from urllib.parse import urlparse

        db_port = urlparse(sample_db).port or 5432
    proxy = Proxy(db_port)
    dsn = sample_db.replace(f":{db_port}/", f":{proxy.port}/")
    app = create_app(settings=settings, api_settings=ApiSettings(db_connect_timeout=1.0), dsn=dsn)
    with TestClient(app) as client:
        yield client, proxy
    proxy.off()


def test_health_ok_reports_postgis(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["postgis"].startswith("3.")
    assert r.headers["cache-control"] == "no-store"


def test_health_down_then_recovers(proxied_client: tuple[TestClient, Proxy]) -> None:
    client, proxy = proxied_client
    # database unreachable from the start: the app still starts and says 503
    r = client.get("/health")
    assert r.status_code == 503 and r.json()["database"] == "unreachable"
    proxy.on()
    r = client.get("/health")
    assert r.status_code == 200, r.text
    proxy.off()  # the database goes away while the pool holds connections
    r = client.get("/health")
    assert r.status_code == 503
    proxy.on()  # ... and comes back: no restart needed
    statuses = [client.get("/health").status_code for _ in range(3)]
    assert statuses[-1] == 200, statuses


def test_openapi_served(client: TestClient) -> None:
    r = client.get("/api")
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.")
    assert "/health" in r.json()["paths"]
