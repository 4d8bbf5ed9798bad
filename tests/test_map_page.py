"""`/map` without a browser: the page's configuration (layers and colours from the registry, communes from the
database, basemap from settings), its initial-filter validation, and the vendored assets it needs."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from layers.catalog.registry import get_layer
from layers.settings import get_map_settings


def page_config(html: str) -> dict:  # type: ignore[type-arg]
    m = re.search(r'<script id="datso-config" type="application/json">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


def test_page_config_from_registry_and_database(client, conn: psycopg.Connection) -> None:
    r = client.get("/map")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    cfg = page_config(r.text)
    assert cfg["lang"] == "vi" and cfg["basemap"] is None
    auction = next(layer for layer in cfg["layers"] if layer["id"] == "auction_plots")
    colours = {c["code"]: c["colour"] for c in auction["classes"]}
    assert colours == get_layer("auction_plots").style["colours"]
    assert auction["minzoom"] == get_layer("auction_plots").minzoom
    communes = [r[0] for r in conn.execute(
        "SELECT code FROM admin_units WHERE level = 'commune' AND valid_to IS NULL AND scheme = '2025' ORDER BY name")]
    assert [c["code"] for c in cfg["communes"]] == communes
    x1, y1, x2, y2 = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM admin_units "
        "WHERE level = 'province' AND valid_to IS NULL) s").fetchone()
    assert cfg["bounds"] == pytest.approx([x1, y1, x2, y2])
    assert '<html lang="vi">' in r.text and "/static/vendor/maplibre-gl/maplibre-gl.js" in r.text
    assert "unpkg" not in r.text and "cdn" not in r.text.lower()


def test_initial_filters_and_english(client) -> None:
    r = client.get("/map", params={"status": "sold,closed", "commune": "29057", "use": "ODT", "pmin": "1000000000",
                                   "from": "2026-11-01", "lang": "en"})
    assert r.status_code == 200
    cfg = page_config(r.text)
    assert cfg["lang"] == "en"
    assert cfg["initial"] == {"status": ["sold", "closed"], "commune": "29057", "use": "ODT", "pmin": 1000000000,
                              "from": "2026-11-01"}


@pytest.mark.parametrize("params, needle", [
    ({"status": "sold,bogus"}, "bogus"),
    ({"commune": "abc"}, "Mã xã"),
    ({"use": "XYZ"}, "XYZ"),
    ({"pmin": "-1"}, "pmin"),
    ({"pmin": "5", "pmax": "4"}, "Giá tối thiểu"),
    ({"from": "2026-02-30"}, "from"),
    ({"from": "2026-12-01", "to": "2026-11-01"}, "Ngày bắt đầu"),
])
def test_bad_initial_filters(client, params: dict[str, str], needle: str) -> None:
    r = client.get("/map", params=params)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json" and needle in r.json()["detail"]
    r = client.get("/map", params=params, headers={"Accept": "text/html"})
    assert r.status_code == 400 and "Không thể hiển thị bản đồ" in r.text and needle in r.text


def test_basemap_setting(client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATSO_BASEMAP_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    monkeypatch.setenv("DATSO_BASEMAP_ATTRIBUTION", "© OpenStreetMap")
    get_map_settings.cache_clear()
    try:
        cfg = page_config(client.get("/map").text)
        assert cfg["basemap"] == {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                                  "attribution": "© OpenStreetMap", "maxzoom": 19}
    finally:
        monkeypatch.undo()
        get_map_settings.cache_clear()
    assert page_config(client.get("/map").text)["basemap"] is None


@pytest.mark.parametrize("path, media", [
    ("/static/vendor/maplibre-gl/maplibre-gl.js", "javascript"),
    ("/static/vendor/maplibre-gl/maplibre-gl.css", "text/css"),
    ("/static/vendor/maplibre-gl/LICENSE.txt", "text/plain"),
    ("/static/vendor/leaflet/leaflet.js", "javascript"),
    ("/static/vendor/leaflet/LICENSE", None),
    ("/static/map/map.js", "javascript"),
    ("/static/map/map.css", "text/css"),
])
def test_assets_are_served(client, path: str, media: str | None) -> None:
    r = client.get(path)
    assert r.status_code == 200 and len(r.content) > 100
    if media:
        assert media in r.headers["content-type"]


def test_map_js_has_no_external_urls(client) -> None:
    js = client.get("/static/map/map.js").text
    assert not re.search(r"https?://", js)


def test_database_down_is_503_not_500(settings) -> None:  # type: ignore[no-untyped-def]
    from conftest import free_port
    from fastapi.testclient import TestClient

    from api.app import create_app

    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"      # nothing listens there
    with TestClient(create_app(settings=settings, dsn=dead)) as c:
        for path in ("/map", "/search?q=abc", "/maps/auction_plots.html"):
            r = c.get(path)
            assert r.status_code == 503, (path, r.status_code)
            assert r.headers["content-type"] == "application/problem+json"
            assert "Cơ sở dữ liệu tạm thời không truy cập được" in r.json()["detail"]
        r = c.get("/map", headers={"Accept": "text/html"})
        assert r.status_code == 503 and "Không thể hiển thị bản đồ" in r.text
