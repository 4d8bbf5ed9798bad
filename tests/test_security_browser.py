"""The pages under their Content-Security-Policy in headless Chromium: /map (MapLibre: blob: worker, WebGL),
the features HTML pages (Leaflet) and a Folium export (sandboxed) load and draw with no CSP violation reported
(`securitypolicyviolation` events, recorded from before any page script runs) and no console error; the map
also on a 360 px phone (screenshot in test-artifacts/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import LiveServer, free_port
from map_browser_util import PageLog, chromium, screenshot

pytestmark = pytest.mark.browser

# added before any script of the page (DevTools protocol, not subject to the page's CSP)
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  [e.violatedDirective, e.blockedURI, e.sourceFile + ':' + e.lineNumber].join(' ')));
"""
MAP_READY = ("() => window.datsoReady === true && window.datsoMap.loaded() && window.datsoMap.areTilesLoaded()"
             " && !window.datsoMap.isMoving()")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def live_server(sample_db: str, settings: Any) -> Iterator[LiveServer]:
    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


def open_page(browser: Any, url: str, width: int = 1280, height: int = 800) -> tuple[Any, Any, PageLog]:
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN")
    ctx.add_init_script(RECORD_VIOLATIONS)
    page = ctx.new_page()
    log = PageLog(page)
    response = page.goto(url)
    assert response is not None and response.ok, url
    assert "content-security-policy" in response.headers
    return ctx, page, log


def no_violation(page: Any, log: PageLog) -> None:
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__csp") == []
    assert [e for e in log.console_errors() if "Content Security Policy" in e or "Refused" in e] == []
    assert log.console_errors() == []


@pytest.mark.parametrize("width", [1280, 360])
def test_map_under_csp(browser: Any, live_server: Any, width: int, conn: psycopg.Connection) -> None:
    code = conn.execute("SELECT plot_code FROM auction_plots ORDER BY id LIMIT 1 OFFSET 7").fetchone()[0]
    ctx, page, log = open_page(browser, live_server.url + "/map", width=width, height=740)
    try:
        page.wait_for_function(MAP_READY, timeout=30000)
        drawn = page.evaluate("() => window.datsoMap.queryRenderedFeatures({layers: ['auction-fill']}).length")
        assert drawn > 0
        # the detail panel's status badges are coloured by script (no style attribute under the CSP)
        page.fill("#search-input", code.lower())
        page.press("#search-input", "Enter")
        page.wait_for_function("() => document.querySelector('#detail-title').textContent.startsWith('DG-')",
                               timeout=15000)
        badge = page.locator("#detail-body .status-badge").first
        assert badge.evaluate("b => getComputedStyle(b).backgroundColor") not in ("", "rgba(0, 0, 0, 0)")
        no_violation(page, log)
        screenshot(page, f"map_csp_{width}.png")
        # control: the policy is enforced and the recorder hears it (an injected inline script is refused)
        page.evaluate("""() => { const s = document.createElement('script');
                                 s.textContent = 'window.__injected = 1'; document.body.appendChild(s); }""")
        page.wait_for_timeout(200)
        assert page.evaluate("() => window.__injected") is None
        assert any(v.startswith("script-src") for v in page.evaluate("() => window.__csp"))
    finally:
        ctx.close()


@pytest.mark.parametrize("path", ["/collections/auction_plots/items?f=html&limit=20",
                                  "/collections/parcels/items?f=html&limit=5",
                                  "/collections/auction_plots/items/1?f=html", "/collections?f=html"])
def test_features_pages_under_csp(browser: Any, live_server: Any, path: str) -> None:
    ctx, page, log = open_page(browser, live_server.url + path)
    try:
        if "/items" in path:   # Leaflet drew the features from the JSON block (features.js, no inline script)
            page.wait_for_function("() => document.querySelectorAll('#map path.leaflet-interactive').length > 0",
                                   timeout=15000)
        no_violation(page, log)
    finally:
        ctx.close()


def test_items_page_popup_links_to_the_item(browser: Any, live_server: Any) -> None:
    ctx, page, log = open_page(browser, live_server.url + "/collections/auction_plots/items?f=html&limit=5&lang=en")
    try:
        page.wait_for_function("() => document.querySelectorAll('#map path.leaflet-interactive').length > 0",
                               timeout=15000)
        page.locator("#map path.leaflet-interactive").first.click(force=True)
        link = page.locator(".leaflet-popup-content a")
        link.wait_for(timeout=5000)
        href = link.get_attribute("href")
        assert href is not None and "/collections/auction_plots/items/" in href and href.endswith("?f=html&lang=en")
        assert link.inner_text().startswith("#")
        no_violation(page, log)
    finally:
        ctx.close()


def test_folium_export_runs_sandboxed(browser: Any, live_server: Any) -> None:
    ctx, page, log = open_page(browser, live_server.url + "/maps/auction_plots.html?status=sold")
    try:
        page.wait_for_function("() => document.querySelectorAll('.leaflet-container path').length > 0",
                               timeout=15000)
        assert page.evaluate("() => window.origin") == "null"   # an opaque origin: nothing of this site reachable
        no_violation(page, log)
    finally:
        ctx.close()
