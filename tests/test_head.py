"""HEAD on every GET route family, over real HTTP (uvicorn): the same status and headers as the GET - Content-Type,
ETag, Content-Length, Cache-Control, Content-Crs - and no body. Errors too: a 400/404 problem answers HEAD with
its status and problem+json type."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tiles_support import tile_of

DENSE = "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) AS c FROM parcels ORDER BY id LIMIT 1) s"
# headers that describe the representation; Date, X-Cache (a GET fills the tile cache the HEAD then hits) and
# per-response security nonces may differ
SAME = ("content-type", "etag", "content-length", "content-encoding", "cache-control", "content-crs",
        "content-language", "content-disposition", "vary")


def families(sample_db: str) -> list[str]:
    t = tile_of(sample_db, DENSE, 15)
    tile = f"{t.z}/{t.x}/{t.y}"
    return [
        "/", "/?f=html", "/conformance", "/collections", "/collections?f=html",
        "/collections/parcels", "/collections/parcels?f=html",
        "/collections/parcels/items", "/collections/parcels/items?status=leased&limit=5",
        "/collections/parcels/items?f=html&limit=3", "/collections/parcels/items?f=csv&limit=5",
        "/collections/parcels/items/1", "/collections/parcels/items/1?f=html",
        "/collections/parcels/queryables", "/collections/parcels/schema",
        "/tileMatrixSets", "/tileMatrixSets/WebMercatorQuad", "/collections/parcels/tiles",
        "/collections/parcels/tiles/WebMercatorQuad", f"/collections/parcels/tiles/WebMercatorQuad/{tile}",
        f"/collections/parcels/tiles/WebMercatorQuad/{tile}.pbf", f"/tiles/{tile}.mvt",
        "/collections/parcels/tiles/WebMercatorQuad/tilejson.json", "/tiles/tilejson.json",
        "/collections/parcels/tiles/WebMercatorQuad/metadata.json",
        "/collections/parcels/style.json", "/styles/default.json",
        "/map", "/health", "/api", "/api.html", "/static/map/map.js", "/static/map/map.css",
    ]


def compare(base: str, path: str, **headers: str) -> tuple[httpx.Response, httpx.Response]:
    with httpx.Client(base_url=base, timeout=60) as c:
        get = c.get(path, headers=headers)
        head = c.head(path, headers=headers)
    assert head.status_code == get.status_code, (path, head.status_code, get.status_code)
    for h in SAME:
        assert head.headers.get(h) == get.headers.get(h), (path, h, head.headers.get(h), get.headers.get(h))
    assert head.content == b"", path
    return get, head


def test_head_matches_get_on_every_route_family(live_server: Any, sample_db: str) -> None:
    for path in families(sample_db):
        get, head = compare(live_server.url, path)
        assert get.status_code == 200, (path, get.text[:300])
        assert get.content, path
        assert head.headers["content-type"], path
        if "content-length" in get.headers:
            assert int(head.headers["content-length"]) == len(get.content) or "content-encoding" in get.headers


@pytest.mark.parametrize("encoding", ["identity", "gzip", "br"])
def test_head_of_a_tile_and_a_compressed_document(live_server: Any, sample_db: str, encoding: str) -> None:
    """The tile fast path (cached tiles answered before routing) and the compression middleware answer HEAD
    like GET, for each Accept-Encoding."""
    t = tile_of(sample_db, DENSE, 15)
    for path in (f"/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}", "/collections"):
        get, head = compare(live_server.url, path, **{"accept-encoding": encoding})
        assert get.status_code == 200 and int(head.headers["content-length"]) > 0


def test_head_conditional_and_errors(live_server: Any, sample_db: str) -> None:
    t = tile_of(sample_db, DENSE, 15)
    for path in (f"/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}", "/collections/parcels/items/1"):
        with httpx.Client(base_url=live_server.url) as c:
            etag = c.get(path).headers["etag"]
        get, head = compare(live_server.url, path, **{"if-none-match": etag})
        assert get.status_code == head.status_code == 304
    for path, status in [("/collections/parcels/items?foo=1", 400), ("/collections/nope", 404),
                         ("/collections/parcels/items/999999999", 404),
                         ("/collections/parcels/tiles/WebMercatorQuad/99/0/0", 400), ("/nope", 404)]:
        get, head = compare(live_server.url, path)
        assert get.status_code == status
        assert head.headers["content-type"] == "application/problem+json", path


def test_head_in_process_client(client: Any) -> None:
    """The TestClient (ASGI in process) sees the same: HEAD is handled by the app, not by the server."""
    for path in ("/health", "/map", "/collections/parcels/items?limit=2"):
        get, head = client.get(path), client.head(path)
        assert (head.status_code, head.headers["content-type"]) == (get.status_code, get.headers["content-type"])
        assert head.content == b""
    # a data endpoint still refuses an unknown parameter, on HEAD as on GET
    r = client.head("/collections/parcels/items", params={"foo": "1"})
    assert (r.status_code, r.headers["content-type"], r.content) == (400, "application/problem+json", b"")


def test_options_answers_allow_like_qgis_needs(live_server: Any) -> None:
    """QGIS's OAPIF provider sends OPTIONS to /items and /items/{id} and enables editing from `Allow`."""
    with httpx.Client(base_url=live_server.url) as c:
        r = c.options("/collections/parcels/items")
        assert r.status_code == 204 and r.content == b""
        assert {"GET", "HEAD", "OPTIONS", "POST"} <= {m.strip() for m in r.headers["allow"].split(",")}
        assert "PUT" not in r.headers["allow"]
        r = c.options("/collections/parcels/items/1")
        assert r.status_code == 204
        assert {"GET", "HEAD", "PUT", "PATCH", "DELETE"} <= {m.strip() for m in r.headers["allow"].split(",")}
        r = c.options("/health")
        assert r.status_code == 204 and {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD",
                                                                                               "OPTIONS"}
        assert r.headers["x-content-type-options"] == "nosniff"     # the security headers still apply
        assert c.options("/nope").status_code == 404
        # a method the path does not have is still 405 with its Allow
        r = c.put("/collections/parcels/items", content=b"{}")
        assert r.status_code == 405 and "POST" in r.headers["allow"]
