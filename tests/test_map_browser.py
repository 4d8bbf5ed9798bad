"""The citizen map in headless Chromium (WebGL through SwiftShader) against the live server and the sample
province: it loads with no console error and no request leaving 127.0.0.1, draws plots, filters by status
(style) and commune (tiles), searches and flies, opens a plot's details with Vietnamese prices and dates,
keeps its state in the URL, switches to English, works on a 360 px phone and shows clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import LiveServer, free_port
from map_browser_util import PageLog, chromium, screenshot

pytestmark = pytest.mark.browser

READY = ("() => window.datsoReady === true && window.datsoMap.loaded() && window.datsoMap.areTilesLoaded()"
         " && !window.datsoMap.isMoving()")
RENDERED_PLOTS = """() => {
  const fs = window.datsoMap.queryRenderedFeatures({layers: ['auction-fill', 'auction-line']});
  const out = {};
  for (const f of fs) out[f.id] = f.properties.status;
  return out;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def live_server(sample_db: str, settings: Any) -> Iterator[LiveServer]:
    """A live server with its OWN app (and asyncpg pool): the session `app` is also driven by the TestClient
    on another event loop, and one asyncpg pool used from two loops crashes the process."""
    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


def open_map(browser: Any, live_server: Any, path: str = "/map", width: int = 1280, height: int = 800,
             locale: str = "vi-VN") -> tuple[Any, Any, PageLog]:
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    page = ctx.new_page()
    log = PageLog(page)
    page.goto(live_server.url + path)
    page.wait_for_function(READY, timeout=30000)
    page.wait_for_timeout(300)
    page.wait_for_function(READY, timeout=30000)
    return ctx, page, log


def settle(page: Any) -> None:
    page.wait_for_timeout(200)
    page.wait_for_function(READY, timeout=30000)


def click_map_centre(page: Any) -> None:
    """Wait until a plot is drawn under the map's centre (tiles of the new view loaded), then click there."""
    page.wait_for_function("""() => { const m = window.datsoMap;
        return !m.isMoving() && m.queryRenderedFeatures(m.project(m.getCenter()),
                                                        {layers: ['auction-fill']}).length > 0; }""",
                           timeout=30000)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def vnd(n: int) -> str:
    return f"{n:,}".replace(",", ".") + " ₫"


def test_map_loads_local_only_and_draws_plots(browser: Any, live_server: Any, conn: psycopg.Connection) -> None:
    ctx, page, log = open_map(browser, live_server)
    try:
        rendered = page.evaluate(RENDERED_PLOTS)
        all_ids = {str(r[0]) for r in conn.execute("SELECT id FROM auction_plots")}
        assert len(rendered) > 0
        assert set(rendered) <= all_ids
        assert page.evaluate("window.datsoMap.queryRenderedFeatures({layers: ['admin-commune']}).length") > 0
        assert page.evaluate("document.documentElement.lang") == "vi"
        assert page.inner_text("h1.title") == "Bản đồ đấu giá đất"
        assert page.locator("#status-filter label").count() == 6
        screenshot(page, "map_desktop.png")
        assert log.console_errors() == []
        assert log.external(live_server.url) == []
        assert any("/collections/auction_plots/tiles/WebMercatorQuad/" in u for u in log.requests)
    finally:
        ctx.close()


def test_status_filter_changes_rendering(browser: Any, live_server: Any) -> None:
    ctx, page, log = open_map(browser, live_server)
    try:
        before = page.evaluate(RENDERED_PLOTS)
        sold_before = {k for k, v in before.items() if v == "sold"}
        assert sold_before and len(sold_before) < len(before)
        for code in ("planned", "announced", "registration_open", "closed", "cancelled"):
            page.uncheck(f"#st-{code}")
        settle(page)
        after = page.evaluate(RENDERED_PLOTS)
        assert set(after) == sold_before
        assert set(after.values()) == {"sold"}
        assert "status=sold" in page.evaluate("location.hash")
        screenshot(page, "map_status_sold.png")
        page.click("#f-reset")
        settle(page)
        assert set(page.evaluate(RENDERED_PLOTS)) == set(before)
        assert log.console_errors() == []
    finally:
        ctx.close()


def test_commune_filter_goes_to_the_tiles(browser: Any, live_server: Any, conn: psycopg.Connection) -> None:
    commune = conn.execute("SELECT commune_code FROM auction_plots GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
                           ).fetchone()[0]
    ids = {str(r[0]) for r in conn.execute("SELECT id FROM auction_plots WHERE commune_code = %s", (commune,))}
    ctx, page, log = open_map(browser, live_server)
    try:
        page.select_option("#f-commune", commune)
        settle(page)
        page.wait_for_timeout(500)
        settle(page)
        after = page.evaluate(RENDERED_PLOTS)
        assert after and set(after) <= ids
        assert any(f"commune_code={commune}" in u for u in log.requests if "/auction_plots/tiles/" in u)
        assert f"commune={commune}" in page.evaluate("location.hash")
        assert log.console_errors() == []
    finally:
        ctx.close()


def test_search_flies_to_plot_and_opens_details(browser: Any, live_server: Any, conn: psycopg.Connection) -> None:
    pid, code, price, x1, y1, x2, y2 = conn.execute(
        "SELECT id, plot_code, starting_price_vnd, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
        "FROM auction_plots ORDER BY id LIMIT 1 OFFSET 42").fetchone()
    ctx, page, log = open_map(browser, live_server)
    try:
        zoom_before = page.evaluate("window.datsoMap.getZoom()")
        page.fill("#search-input", code.lower())
        page.press("#search-input", "Enter")
        page.wait_for_function("() => document.querySelector('#detail-title').textContent.startsWith('DG-')", timeout=15000)
        page.wait_for_timeout(1200)
        settle(page)
        center = page.evaluate("window.datsoMap.getCenter().toArray()")
        zoom = page.evaluate("window.datsoMap.getZoom()")
        margin = 0.001
        assert x1 - margin <= center[0] <= x2 + margin and y1 - margin <= center[1] <= y2 + margin
        assert zoom > zoom_before + 3
        assert page.inner_text("#detail-title") == code
        assert vnd(price) in page.inner_text("#detail-body")
        assert str(pid) in page.evaluate(RENDERED_PLOTS)
        assert f"plot={pid}" in page.evaluate("location.hash")
        screenshot(page, "map_search.png")
        # a parcel number finds the plot too
        sheet, parcel_no = conn.execute(
            "SELECT p.map_sheet, p.parcel_no FROM parcels p JOIN auction_plots a ON p.id = a.parcel_ids[1] "
            "WHERE a.id = %s", (pid,)).fetchone()
        page.fill("#search-input", f"tờ {sheet} thửa {parcel_no}")
        page.press("#search-input", "Enter")
        page.wait_for_selector("#search-results li", timeout=10000)
        assert code in page.inner_text("#search-results")
        # nothing found: a message, not an error
        page.fill("#search-input", "khongcodaunhe")
        page.press("#search-input", "Enter")
        page.wait_for_function("() => document.querySelector('#search-status').textContent.includes('Không tìm thấy')")
        assert log.console_errors() == []
        assert log.external(live_server.url) == []
    finally:
        ctx.close()


def test_click_plot_shows_price_and_dates(browser: Any, live_server: Any, conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT id, plot_code, starting_price_vnd, deposit_vnd, organiser, "
        "to_char(registration_end AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY'), "
        "to_char(auction_date AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY'), "
        "ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), land_use_code "
        "FROM auction_plots WHERE status = 'registration_open' ORDER BY id LIMIT 1").fetchone()
    pid, code, price, deposit, organiser, reg_end, auction_day, lon, lat, use = row
    ctx, page, log = open_map(browser, live_server, f"/map#18/{lat:.7f}/{lon:.7f}")
    try:
        click_map_centre(page)
        page.wait_for_function("() => document.querySelector('#detail-title').textContent.startsWith('DG-')", timeout=15000)
        body = page.inner_text("#detail-body")
        assert page.inner_text("#detail-title") == code
        assert vnd(price) in body and vnd(deposit) in body
        assert page.inner_text("#detail-body .reg-end") == reg_end
        assert page.inner_text("#detail-body .auction-date").startswith(auction_day)
        assert organiser in body
        assert use in body
        page.wait_for_selector("#linked-parcels button", timeout=10000)
        assert "Tờ" in page.inner_text("#linked-parcels")
        screenshot(page, "map_detail.png")
        # Esc closes the panel and the URL forgets the plot
        page.keyboard.press("Escape")
        assert page.locator("#detail").is_hidden()
        assert "plot=" not in page.evaluate("location.hash")
        assert log.console_errors() == []
    finally:
        ctx.close()


def test_shared_url_restores_view_filters_and_plot(browser: Any, live_server: Any, conn: psycopg.Connection) -> None:
    pid, code, lon, lat = conn.execute(
        "SELECT id, plot_code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM auction_plots "
        "WHERE status = 'sold' ORDER BY id LIMIT 1").fetchone()
    ctx, page, log = open_map(browser, live_server, f"/map#16/{lat:.6f}/{lon:.6f}?status=sold&plot={pid}&lang=en")
    try:
        page.wait_for_function("() => document.querySelector('#detail-title').textContent.startsWith('DG-')", timeout=15000)
        assert page.inner_text("#detail-title") == code
        assert abs(page.evaluate("window.datsoMap.getZoom()") - 16) < 0.01
        assert set(page.evaluate(RENDERED_PLOTS).values()) == {"sold"}
        assert not page.is_checked("#st-planned") and page.is_checked("#st-sold")
        assert page.inner_text("h1.title") == "Land auction map"
        assert "Starting price" in page.inner_text("#detail-body")
        page.click("#lang-switch")
        assert page.inner_text("h1.title") == "Bản đồ đấu giá đất"
        assert "lang=en" not in page.evaluate("location.hash")
        assert log.console_errors() == []
    finally:
        ctx.close()


def test_bad_values_in_shared_url_are_ignored_with_a_notice(browser: Any, live_server: Any) -> None:
    ctx, page, log = open_map(browser, live_server, "/map#12/10.1/106.3?status=nope&commune=zzz&pmin=-5")
    try:
        assert page.is_visible("#notice")
        text = page.inner_text("#notice")
        assert "status" in text and "commune" in text and "pmin" in text
        assert len(page.evaluate(RENDERED_PLOTS)) > 0          # not a blank map
        assert log.console_errors() == []
    finally:
        ctx.close()


def test_bad_filter_parameters_give_an_error_page(browser: Any, live_server: Any) -> None:
    ctx = browser.new_context(viewport={"width": 800, "height": 600}, locale="vi-VN")
    page = ctx.new_page()
    try:
        resp = page.goto(live_server.url + "/map?status=bogus&pmin=abc&from=2026-02-31")
        assert resp.status == 400
        text = page.inner_text("main")
        assert "Không thể hiển thị bản đồ" in text and "bogus" in text and "pmin" in text and "from" in text
        screenshot(page, "map_bad_filter.png")
        resp = page.goto(live_server.url + "/maps/auction_plots.html?filter=status%20%3D")
        assert resp.status == 400 and "CQL2" in page.inner_text("main")
    finally:
        ctx.close()


def test_mobile_360(browser: Any, live_server: Any, conn: psycopg.Connection) -> None:
    pid, code, price, lon, lat = conn.execute(
        "SELECT id, plot_code, starting_price_vnd, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
        "FROM auction_plots WHERE status = 'announced' ORDER BY id LIMIT 1").fetchone()
    ctx, page, log = open_map(browser, live_server, "/map", width=360, height=740)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360        # no horizontal scrolling
        assert page.locator("#sidebar").is_hidden()
        assert page.is_visible("#search-input") and page.is_visible("#panel-toggle")
        assert len(page.evaluate(RENDERED_PLOTS)) > 0
        screenshot(page, "map_mobile.png")
        page.click("#panel-toggle")
        assert page.is_visible("#sidebar") and page.is_visible("#st-sold")
        assert page.evaluate("document.activeElement.closest('#sidebar') !== null")     # focus moved in
        screenshot(page, "map_mobile_filters.png")
        page.keyboard.press("Escape")
        assert page.locator("#sidebar").is_hidden()
        page.evaluate(f"window.datsoMap.jumpTo({{center: [{lon:.7f}, {lat:.7f}], zoom: 18}})")
        settle(page)
        click_map_centre(page)
        page.wait_for_function("() => document.querySelector('#detail-title').textContent.startsWith('DG-')", timeout=15000)
        assert vnd(price) in page.inner_text("#detail-body")
        sheet = page.locator("#detail").bounding_box()
        assert sheet["width"] == pytest.approx(360, abs=1)                       # a bottom sheet
        assert sheet["y"] + sheet["height"] == pytest.approx(740, abs=1)
        screenshot(page, "map_mobile_detail.png")
        assert log.console_errors() == []
        assert log.external(live_server.url) == []
    finally:
        ctx.close()


def test_keyboard_controls_are_labelled_and_focusable(browser: Any, live_server: Any) -> None:
    ctx, page, log = open_map(browser, live_server)
    try:
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select')].filter(i =>
            !(i.labels && i.labels.length) && !i.getAttribute('aria-label')).map(i => i.id)""")
        assert unlabelled == []
        page.keyboard.press("Tab")      # the skip link
        page.keyboard.press("Enter")
        page.keyboard.type("DG-")
        assert page.evaluate("document.activeElement.id") == "search-input"
        page.keyboard.press("Enter")
        page.wait_for_selector("#search-results li button", timeout=10000)
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.closest('#search-results') !== null")
        page.keyboard.press("Escape")
        assert page.locator("#search-box").is_hidden()
        assert page.evaluate("document.activeElement.id") == "search-input"
    finally:
        ctx.close()


def test_auction_date_and_price_filters(browser: Any, live_server: Any, conn: psycopg.Connection) -> None:
    in_range = {str(r[0]) for r in conn.execute(
        "SELECT id FROM auction_plots WHERE (auction_date AT TIME ZONE 'Asia/Ho_Chi_Minh')::date "
        "BETWEEN '2026-11-01' AND '2026-11-30' AND starting_price_vnd >= 2000000000")}
    assert in_range
    ctx, page, log = open_map(browser, live_server)
    try:
        before = page.evaluate(RENDERED_PLOTS)
        page.fill("#f-from", "2026-11-01")
        page.fill("#f-to", "2026-11-30")
        page.fill("#f-pmin", "2")
        page.dispatch_event("#f-pmin", "change")
        page.wait_for_function("() => window.datsoDatesReady === true", timeout=15000)
        settle(page)
        after = page.evaluate(RENDERED_PLOTS)
        assert after and set(after) <= in_range and len(after) < len(before)
        assert "from=2026-11-01" in page.evaluate("location.hash") and "pmin=2000000000" in page.evaluate("location.hash")
        # an impossible range is refused with a message, the map keeps its filters
        page.fill("#f-to", "2026-10-01")
        page.dispatch_event("#f-to", "change")
        assert page.is_visible("#notice") and "sau ngày kết thúc" in page.inner_text("#notice")
        assert log.console_errors() == []
        assert log.external(live_server.url) == []
    finally:
        ctx.close()


def test_click_parcel_and_search_parcel_number(browser: Any, live_server: Any, conn: psycopg.Connection) -> None:
    from layers.catalog.formats import format_number

    pid, sheet, parcel_no, area, status, lon, lat = conn.execute(
        "SELECT p.id, p.map_sheet, p.parcel_no, p.area_m2, p.status, ST_X(ST_PointOnSurface(p.geom)), "
        "ST_Y(ST_PointOnSurface(p.geom)) FROM parcels p WHERE p.status = 'managed' AND NOT EXISTS "
        "(SELECT 1 FROM auction_plots a WHERE a.geom && ST_Expand(p.geom, 0.0005)) "
        "AND (SELECT count(*) FROM parcels q WHERE q.map_sheet = p.map_sheet AND q.parcel_no = p.parcel_no) = 1 "
        "ORDER BY p.id LIMIT 1").fetchone()
    ctx, page, log = open_map(browser, live_server, f"/map#18/{lat:.7f}/{lon:.7f}")
    try:
        page.wait_for_function("""() => { const m = window.datsoMap;
            return m.queryRenderedFeatures(m.project(m.getCenter()), {layers: ['parcels-fill']}).length > 0; }""",
                               timeout=30000)
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        title = f"Tờ {sheet} thửa {parcel_no}"
        page.wait_for_function(f"() => document.querySelector('#detail-title').textContent === {title!r}", timeout=15000)
        assert page.inner_text("#detail-body .parcel-area") == format_number(area) + " m²"
        assert "Đang quản lý" in page.inner_text("#detail-body")
        assert f"parcel={pid}" in page.evaluate("location.hash")
        page.keyboard.press("Escape")
        assert "parcel=" not in page.evaluate("location.hash")
        # the same parcel by its number, from far away
        page.evaluate("window.datsoMap.jumpTo({center: [106.3, 10.0], zoom: 9})")
        page.fill("#search-input", f"{sheet}/{parcel_no}")
        page.press("#search-input", "Enter")
        page.wait_for_function(f"() => document.querySelector('#detail-title').textContent === {title!r}", timeout=15000)
        page.wait_for_timeout(1200)
        assert page.evaluate("window.datsoMap.getZoom()") > 15
        screenshot(page, "map_parcel.png")
        assert log.console_errors() == []
    finally:
        ctx.close()
