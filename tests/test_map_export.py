"""Folium exports: `GET /maps/{collection}.html` and `datso map export`. Feature counts are compared with SQL;
the offline file is opened in Chromium with every non-file request aborted and must still draw its features;
bad parameters give a clear error (HTML page for browsers, problem+json otherwise); big selections are
simplified or refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import table_fingerprint
from map_browser_util import PageLog, chromium, screenshot

from layers.catalog.formats import format_date, format_number, format_vnd
from layers.settings import get_export_settings

HTML_ACCEPT = {"Accept": "text/html,application/xhtml+xml"}


def n_features(page: str) -> int:
    """Features embedded in a Folium page (each display feature carries one `_style` key)."""
    return len(re.findall(r'"_style":', page))


def test_formatting() -> None:
    assert format_vnd(1250000000) == "1.250.000.000 ₫"
    assert format_vnd(500) == "500 ₫"
    assert format_date("2026-11-07T01:30:00+00:00") == "07/11/2026"
    assert format_date("2026-11-06T17:30:00+00:00") == "07/11/2026"     # 00:30 in Vietnam
    assert format_date("2026-02-05") == "05/02/2026"
    assert format_number(1234.5) == "1.234,5"


def test_export_whole_layer_links_local_leaflet(client, conn: psycopg.Connection) -> None:
    n = conn.execute("SELECT count(*) FROM auction_plots").fetchone()[0]
    r = client.get("/maps/auction_plots.html")
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert n_features(page) == n
    assert "/static/vendor/leaflet/leaflet.js" in page
    assert "cdn.jsdelivr" not in page and "code.jquery.com" not in page and "bootstrap" not in page
    assert "Lô đất đấu giá" in page and "Đã trúng đấu giá" in page                 # title, legend
    assert json.dumps("Giá khởi điểm")[1:-1] in page                                 # popup alias (in JS)
    assert "datso-legend" in page and "L.control.layers" in page and "fitBounds" in page
    assert "certificate_no" not in client.get("/maps/parcels.html?commune_code=29057").text   # not public


@pytest.mark.parametrize("params, sql", [
    ({"status": "sold"}, "status = 'sold'"),
    ({"filter": "starting_price_vnd >= 5000000000 AND land_use_code = 'ODT'"},
     "starting_price_vnd >= 5000000000 AND land_use_code = 'ODT'"),
    ({"bbox": "106.0,9.9,106.4,10.3"},
     "ST_Intersects(geom, ST_MakeEnvelope(106.0, 9.9, 106.4, 10.3, 4326))"),
    # a date is the whole UTC day, as in the items API (layers/query/selection.py: one reading of datetime)
    ({"datetime": "2026-11-01/2026-11-30"},
     "auction_date >= '2026-11-01T00:00:00Z' AND auction_date < '2026-12-01T00:00:00Z'"),
    ({"datetime": "../2026-10-01"}, "auction_date < '2026-10-02T00:00:00Z'"),
])
def test_export_filters_match_sql(client, conn: psycopg.Connection, params: dict[str, str], sql: str) -> None:
    n = conn.execute(f"SELECT count(*) FROM auction_plots WHERE {sql}").fetchone()[0]
    assert n > 0
    r = client.get("/maps/auction_plots.html", params=params)
    assert r.status_code == 200, r.text[:300]
    assert n_features(r.text) == n


def test_export_english(client) -> None:
    r = client.get("/maps/auction_plots.html", params={"status": "sold", "lang": "en"})
    assert r.status_code == 200
    assert "Starting price" in r.text and "Auction plots" in r.text and '<html lang="en">' in r.text


def test_empty_selection_is_a_map_with_a_message(client) -> None:
    r = client.get("/maps/auction_plots.html", params={"filter": "starting_price_vnd < 0"})
    assert r.status_code == 200
    assert n_features(r.text) == 0 and "Không có đối tượng nào khớp bộ lọc" in r.text


@pytest.mark.parametrize("params, status, needle_vi", [
    ({"filter": "nonexistent = 1"}, 400, "nonexistent"),
    ({"filter": "status = "}, 400, "CQL2"),
    ({"bbox": "1,2,3"}, 400, "bbox"),
    ({"bbox": "106,10,107,9"}, 400, "vĩ độ"),
    ({"bbox": "a,b,c,d"}, 400, "bbox"),
    ({"datetime": "2026-13-45"}, 400, "không tồn tại"),
    ({"datetime": "yesterday"}, 400, "không hợp lệ"),
    ({"datetime": "2026-12-01/2026-11-01"}, 400, "mốc đầu sau mốc cuối"),
    ({"status": "bogus"}, 400, "bogus"),
    ({"area_m2": "big"}, 400, "area_m2"),
    ({"colour": "red"}, 400, "colour"),
    ({"offline": "maybe"}, 400, "offline"),
    ({"filter-lang": "sql", "filter": "1=1"}, 400, "filter-lang"),
])
def test_bad_export_parameters(client, sample_db: str, params: dict[str, str], status: int, needle_vi: str) -> None:
    before = table_fingerprint(sample_db, "auction_plots")
    r = client.get("/maps/auction_plots.html", params=params)
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"
    assert needle_vi in r.json()["detail"]
    # a browser gets an HTML error page saying the same, not a blank map
    r = client.get("/maps/auction_plots.html", params=params, headers=HTML_ACCEPT)
    assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    assert "Không thể hiển thị bản đồ" in r.text and needle_vi in r.text and "leaflet" not in r.text.lower()
    assert table_fingerprint(sample_db, "auction_plots") == before


def test_unknown_layer(client) -> None:
    r = client.get("/maps/nope.html")
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = client.get("/maps/%3Cscript%3E.html", headers=HTML_ACCEPT)
    assert r.status_code == 404 and "<script>" not in r.text


def test_large_selection_simplified_then_refused(client, conn: psycopg.Connection,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # the commune with the fewest parcels above 20 (derived from the sample, not hard-coded)
    commune, n = conn.execute("SELECT commune_code, count(*) FROM parcels GROUP BY 1 HAVING count(*) > 20 "
                              "ORDER BY 2, 1 LIMIT 1").fetchone()
    assert n > 20
    full = client.get("/maps/parcels.html", params={"commune_code": commune}).text
    assert '"managing_body"' in full and '"preferCanvas": false' in full
    monkeypatch.setenv("DATSO_MAP_SIMPLIFY_ABOVE", "10")
    monkeypatch.setenv("DATSO_MAP_MAX_FEATURES", str(n + 1))
    get_export_settings.cache_clear()
    try:
        r = client.get("/maps/parcels.html", params={"commune_code": commune})
        assert r.status_code == 200
        assert n_features(r.text) == n and "Đã đơn giản hóa" in r.text
        assert '"managing_body"' not in r.text and '"preferCanvas": true' in r.text   # compact, canvas
        r = client.get("/maps/parcels.html")
        assert r.status_code == 413
        assert "thu hẹp bộ lọc (bbox, filter, datetime)" in r.json()["detail"]
        r = client.get("/maps/parcels.html", params={"lang": "en"})
        assert "narrow the filter" in r.json()["detail"]
    finally:
        monkeypatch.undo()
        get_export_settings.cache_clear()


def _cli(args: list[str], dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn}
    return subprocess.run([sys.executable, "-m", "cli.main", "map", "export", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)


def test_cli_export_offline_renders_with_network_blocked(sample_db: str, conn: psycopg.Connection,
                                                         tmp_path: Path) -> None:
    n = conn.execute("SELECT count(*) FROM auction_plots WHERE status = 'sold' AND area_m2 > 500").fetchone()[0]
    assert n > 0
    out = tmp_path / "sold.html"
    res = _cli(["--layer", "auction_plots", "--where", "status=sold", "--filter", "area_m2 > 500", "--offline",
                "--out", str(out)], sample_db)
    assert res.returncode == 0, res.stderr
    page = out.read_text(encoding="utf-8")
    assert n_features(page) == n
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)        # nothing external
    with chromium() as browser:
        p = browser.new_page(viewport={"width": 1000, "height": 700})
        log = PageLog(p)
        blocked: list[str] = []

        def route(r):  # type: ignore[no-untyped-def]
            if r.request.url.startswith(("file:", "data:", "blob:")):
                return r.continue_()
            blocked.append(r.request.url)
            return r.abort()

        p.route("**/*", route)
        p.goto(out.as_uri())
        p.wait_for_selector("path.leaflet-interactive", state="attached", timeout=10000)
        drawn = p.evaluate("document.querySelectorAll('.leaflet-overlay-pane path.leaflet-interactive').length")
        boundaries = p.evaluate("document.querySelectorAll('.leaflet-overlay-pane path:not(.leaflet-interactive)').length")
        legend = p.inner_text(".datso-legend")
        screenshot(p, "folium_offline_sold.png")
        assert blocked == [] and log.external("file:") == []
        assert log.console_errors() == []
    assert drawn == n
    assert boundaries == conn.execute("SELECT count(*) FROM admin_units WHERE valid_to IS NULL AND scheme = '2025' "
                                      "AND level IN ('province', 'commune')").fetchone()[0]
    assert "Đã trúng đấu giá" in legend


def test_cli_export_popup_values(sample_db: str, conn: psycopg.Connection, tmp_path: Path) -> None:
    code, price, deposit = conn.execute(
        "SELECT plot_code, starting_price_vnd, deposit_vnd FROM auction_plots ORDER BY id LIMIT 1").fetchone()
    out = tmp_path / "one.html"
    res = _cli(["--layer", "auction_plots", "--where", f"plot_code={code}", "--offline", "--out", str(out)], sample_db)
    assert res.returncode == 0, res.stderr
    with chromium() as browser:
        p = browser.new_page(viewport={"width": 900, "height": 700})
        p.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
        p.goto(out.as_uri())
        p.wait_for_selector("path.leaflet-interactive", state="attached", timeout=10000)
        p.locator("path.leaflet-interactive").first.click(force=True)
        p.wait_for_selector(".leaflet-popup-content", timeout=5000)
        p.wait_for_timeout(400)   # the popup fades in
        text = p.inner_text(".leaflet-popup-content")
        screenshot(p, "folium_offline_popup.png")
    assert f"{price:,}".replace(",", ".") + " ₫" in text
    assert f"{deposit:,}".replace(",", ".") + " ₫" in text
    assert code in text and "Giá khởi điểm" in text


@pytest.mark.parametrize("args, needle", [
    (["--layer", "nope"], "unknown layer 'nope'"),
    (["--layer", "auction_plots", "--filter", "foo = 1"], "foo"),
    (["--layer", "auction_plots", "--where", "status"], "expected queryable=value"),
    (["--layer", "auction_plots", "--bbox", "1,2"], "bbox"),
    (["--layer", "auction_plots", "--lang", "fr"], "--lang"),
])
def test_cli_bad_input(sample_db: str, tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "bad.html"
    res = _cli([*args, "--out", str(out)], sample_db)
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle in " ".join(res.stderr.split())
    assert not out.exists()
