"""/dashboard in headless Chromium with every outside request aborted: the charts are drawn with the data of
the aggregates (compared with SQL), the commune maps hold a path per commune, nothing leaves the service, no
console error; the phone layout (360 px) has no horizontal scroll; the English switch; a print stylesheet."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from map_browser_util import PageLog, chromium, screenshot

pytestmark = pytest.mark.browser


def _open(browser: Any, base: str, width: int, height: int, query: str = "") -> tuple[Any, PageLog]:
    page = browser.new_page(viewport={"width": width, "height": height})
    log = PageLog(page)
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
               else route.abort())
    page.goto(f"{base}/dashboard{query}")
    page.wait_for_selector("body[data-ready]", timeout=30_000)
    return page, log


CHART_DATA = """id => { const c = Chart.getChart(document.getElementById(id));
  return c ? {labels: c.data.labels, data: c.data.datasets.map(d => d.data)} : null; }"""


def test_dashboard_offline_with_data(live_server: Any, conn: psycopg.Connection) -> None:
    base = live_server.url
    with chromium() as browser:
        page, log = _open(browser, base, 1280, 900)
        assert page.evaluate("document.body.dataset.ready") == "true"
        assert log.external(base) == [], "an outside request was attempted"
        assert log.console_errors() == []
        assert page.locator("html").get_attribute("lang") == "vi"
        assert page.locator("h1").inner_text().startswith("Bảng điều hành")
        for cid in ("chart-crops", "chart-codes", "chart-auctions", "chart-prices", "chart-outcomes"):
            d = page.evaluate(CHART_DATA, cid)
            assert d is not None and d["labels"], cid
            assert any(v for series in d["data"] for v in series), cid
        # crops x status: hectares as in SQL
        crops = page.evaluate(CHART_DATA, "chart-crops")
        truth = conn.execute("SELECT sum(area_m2) / 10000 FROM growing_areas").fetchone()[0]
        assert sum(v for s in crops["data"] for v in s) == pytest.approx(float(truth))
        assert "Sầu riêng" in crops["labels"]
        # auctions by status: counts as in SQL
        auctions = page.evaluate(CHART_DATA, "chart-auctions")
        n = conn.execute("SELECT count(*) FROM auction_plots").fetchone()[0]
        assert sum(auctions["data"][0]) == n
        # price per m2 of the commune at the top of the chart
        prices = page.evaluate(CHART_DATA, "chart-prices")
        best = conn.execute(
            "SELECT a.name, sum(result_price_vnd) / sum(area_m2) / 1e6 FROM auction_plots p JOIN admin_units a "
            "ON a.code = p.commune_code AND a.level = 'commune' AND a.valid_to IS NULL WHERE result_price_vnd "
            "IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1").fetchone()
        assert prices["labels"][0] == best[0]
        assert prices["data"][0][0] == pytest.approx(float(best[1]))
        communes = conn.execute("SELECT count(*) FROM admin_units WHERE level = 'commune' AND valid_to IS NULL "
                                "AND scheme = (SELECT max(scheme) FROM admin_units)").fetchone()[0]
        for mid in ("map-prices", "map-areas"):
            assert page.locator(f"#{mid} svg path.commune").count() == communes
            assert page.locator(f"#{mid} .legend i").count() == 5
        assert page.locator(".kpi:not([hidden])").count() == 5
        screenshot(page, "dashboard-1280.png")
        # printable: a print stylesheet hides the buttons
        page.emulate_media(media="print")
        assert page.locator("#print").is_hidden()
        page.close()


def test_dashboard_phone_and_english(live_server: Any) -> None:
    base = live_server.url
    with chromium() as browser:
        page, log = _open(browser, base, 360, 780, "?lang=en")
        assert log.external(base) == [] and log.console_errors() == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert page.locator("h1").inner_text().startswith("Operations dashboard")
        assert "Active" in page.evaluate(CHART_DATA.replace("labels: c.data.labels",
                                                            "labels: c.data.datasets.map(d => d.label)"),
                                         "chart-crops")["labels"]
        box = page.locator("#card-crops").bounding_box()
        assert box is not None and box["width"] <= 360
        screenshot(page, "dashboard-360.png")
        page.close()
