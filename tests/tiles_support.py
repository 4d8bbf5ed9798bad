"""Helpers shared by the tile tests (tests/test_tiles_*.py): apps with chosen tile settings, tile lookup
from SQL, MVT decoding, waiting for invalidation notifications."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mapbox_vector_tile
import morecantile
import psycopg
from fastapi.testclient import TestClient

from layers.settings import Settings, TileSettings

WMQ = morecantile.tms.get("WebMercatorQuad")
MVT = "application/vnd.mapbox-vector-tile"


@contextmanager
def tile_client(settings: Settings, dsn: str, api_settings: Any = None, **tile_settings: Any) -> Iterator[TestClient]:
    """A fresh app (own cache, own LISTEN connection) on `dsn` with these tile settings."""
    from api.app import create_app

    app = create_app(settings=settings, api_settings=api_settings, dsn=dsn)
    app.state.tile_settings = TileSettings(**tile_settings)
    with TestClient(app) as client:
        yield client


def tile_of(dsn: str, sql: str, z: int, *args: Any) -> morecantile.Tile:
    """The tile at zoom z holding the lon/lat point that `sql` (SELECT lon, lat ...) returns."""
    with psycopg.connect(dsn) as c:
        row = c.execute(sql, args).fetchone()
    assert row is not None, sql
    return WMQ.tile(float(row[0]), float(row[1]), z)


def decode(data: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(data) if data else {}


def features(data: bytes, layer: str) -> dict[int, dict[str, Any]]:
    """{feature id: properties} of one layer of a tile."""
    d = decode(data)
    return {f["id"]: f["properties"] for f in d.get(layer, {}).get("features", [])}


def sql_rows(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return list(c.execute(sql, args).fetchall())


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def get_tile(client: TestClient, path: str, **headers: str) -> Any:
    return client.get(path, headers={"accept-encoding": "identity", **headers})
