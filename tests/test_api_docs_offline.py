"""`/api.html` works offline: Swagger UI is vendored (api/static/vendor/swagger-ui) and served by datso, so in
headless Chromium with EVERY request outside the server aborted it still renders one block per operation of the
OpenAPI document, with no console error and no attempt to reach another host. The favicon is served too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from map_browser_util import PageLog, chromium, screenshot

pytestmark = pytest.mark.browser

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_api_docs_render_every_operation_offline(live_server: Any) -> None:
    doc = httpx.get(f"{live_server.url}/api", timeout=30).json()
    operations = sum(1 for ops in doc["paths"].values() for m in ops if m in METHODS)
    assert operations > 20
    aborted: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith(live_server.url + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            aborted.append(url)
            route.abort()

    with chromium() as browser:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
        page = ctx.new_page()
        page.route("**/*", only_local)
        log = PageLog(page)
        page.goto(f"{live_server.url}/api.html")
        # the tag groups start collapsed (docExpansion none): every group is drawn, and opening each one in turn
        # draws each of its operations
        groups = len({(op.get("tags") or ["default"])[0] for ops in doc["paths"].values() for m, op in ops.items()
                      if m in METHODS})
        page.wait_for_function("(n) => document.querySelectorAll('.opblock-tag').length >= n", arg=groups,
                               timeout=60000)
        rendered = 0
        for i in range(page.locator(".opblock-tag").count()):
            section = page.locator(".opblock-tag-section").nth(i)
            section.locator(".opblock-tag").click()
            page.wait_for_function("(i) => document.querySelectorAll('.opblock-tag-section')[i]"
                                   ".querySelectorAll('.opblock').length > 0", arg=i, timeout=60000)
            rendered += section.locator(".opblock").count()
            section.locator(".opblock-tag").click()     # closed again: one group drawn at a time
        title = page.locator(".info .title").inner_text()
        screenshot(page, "api-docs-offline.png")
        # the favicon the page links is ours
        icon = page.eval_on_selector("link[rel~='icon']", "e => e.href")
        ctx.close()

    assert rendered == operations
    assert doc["info"]["title"] in title
    assert aborted == [] and log.external(live_server.url + "/") == []
    assert log.console_errors() == []
    assert icon.startswith(live_server.url + "/")
    # every asset came from /static/vendor/swagger-ui
    assert any(u.endswith("/static/vendor/swagger-ui/swagger-ui-bundle.js") for u in log.requests)
    assert any(u.endswith("/static/vendor/swagger-ui/swagger-ui.css") for u in log.requests)


def test_api_page_names_no_outside_host(live_server: Any) -> None:
    r = httpx.get(f"{live_server.url}/api.html", timeout=30)
    assert r.status_code == 200
    assert "http://" not in r.text.replace(live_server.url, "") and "https://" not in r.text
    csp = r.headers["content-security-policy"]
    assert "https:" not in csp and "http:" not in csp and "cdn" not in csp
    for path in ("/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/vendor/swagger-ui/swagger-ui.css",
                 "/static/vendor/swagger-ui/LICENSE"):
        assert httpx.get(live_server.url + path, timeout=30).status_code == 200, path


def test_favicon(live_server: Any) -> None:
    r = httpx.get(f"{live_server.url}/favicon.ico", timeout=30)
    assert r.status_code == 200 and r.content[:4] == b"\x00\x00\x01\x00"     # an ICO file
    assert r.headers["content-type"] in ("image/vnd.microsoft.icon", "image/x-icon")
    assert httpx.head(f"{live_server.url}/favicon.ico", timeout=30).status_code == 200
    svg = httpx.get(f"{live_server.url}/static/favicon.svg", timeout=30)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    # every HTML page links it
    for path in ("/?f=html", "/collections?f=html", "/collections/parcels?f=html", "/map",
                 "/collections/parcels/items?f=html&limit=1"):
        page = httpx.get(live_server.url + path, timeout=30, headers={"Accept": "text/html"}).text
        assert '/favicon.ico"' in page and '/static/favicon.svg"' in page, path
