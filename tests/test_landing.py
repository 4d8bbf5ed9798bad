"""The landing page `/`: in HTML the portal's front door (Vietnamese first, English by ?lang=en or
Accept-Language), a card per registry layer with its exact feature count, extent and last update read from the
database, links to the map, the data and the downloads, and how to connect QGIS / GDAL / Python built from the
public base URL; in JSON the OGC API – Features landing page, unchanged. In Chromium at 360 px and 1280 px, in
both languages: no outside request, no console error, nothing wider than the screen, copy buttons that copy."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import asyncpg
import lxml.html
import psycopg
import pytest
from fastapi.testclient import TestClient
from map_browser_util import PageLog, chromium, screenshot

from api import landing
from layers.catalog.registry import LAYERS
from layers.query import summary

VN = dt.timezone(dt.timedelta(hours=7))
OGC_REL = "http://www.opengis.net/def/rel"


def _xpath(selector: str) -> str:
    """The few CSS selectors these tests use (`tag.class#id`, descendants) as XPath (no cssselect installed)."""
    steps = []
    for part in selector.split():
        m = re.fullmatch(r"([a-z0-9]*)((?:[.#][\w-]+)*)", part)
        assert m, part
        conds = []
        for kind, name in re.findall(r"([.#])([\w-]+)", m.group(2)):
            conds.append(f"@id='{name}'" if kind == "#" else f"contains(concat(' ', @class, ' '), ' {name} ')")
        steps.append((m.group(1) or "*") + "".join(f"[{c}]" for c in conds))
    return ".//" + "//".join(steps)


def css(el: Any, selector: str) -> list[Any]:
    return list(el.xpath(_xpath(selector)))


def _page(client: TestClient, query: str = "", **headers: str) -> Any:
    r = client.get(f"/{query}", headers={"Accept": "text/html", **headers})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    return r, lxml.html.fromstring(r.text)


def _truth(conn: psycopg.Connection) -> dict[str, tuple[int, dt.datetime | None]]:
    out = {}
    for layer in LAYERS.values():
        cols = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (layer.table,))}
        upd = "max(updated_at)" if "updated_at" in cols else "NULL::timestamptz"
        row = conn.execute(f'SELECT count(*), {upd} FROM "{layer.table}"').fetchone()  # noqa: S608 - registry
        assert row is not None
        out[layer.id] = (row[0], row[1])
    return out


def _one(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()  # type: ignore[call-overload]
    assert row is not None
    return int(row[0])


def test_json_landing_keeps_its_ogc_structure(client: TestClient) -> None:
    doc = client.get("/?f=json").json()
    assert set(doc) == {"title", "description", "links"}
    rels = {link["rel"] for link in doc["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= rels
    for link in doc["links"]:
        assert link["href"].startswith("http") and link["type"] and link["title"]
    assert client.get("/", headers={"Accept": "application/json"}).json() == doc


def test_cards_show_each_layer_from_the_database(client: TestClient, conn: psycopg.Connection) -> None:
    truth = _truth(conn)
    r, html = _page(client)
    assert r.headers["content-language"] == "vi" and html.get("lang") == "vi"
    cards = css(html, "article.card")
    assert [c.get("data-layer") for c in cards] == list(LAYERS)
    for card in cards:
        layer = LAYERS[card.get("data-layer")]
        n, updated = truth[layer.id]
        assert css(card, "h3")[0].text_content().strip() == layer.title_vi
        assert layer.description_vi in card.text_content()
        # exact counts on the sample, Vietnamese separators (7.600)
        assert css(card, ".count")[0].text_content() == f"{n:,}".replace(",", ".")
        shown = css(card, ".updated")[0].text_content()
        if updated is None:
            assert shown == "—"
        else:
            assert shown == updated.astimezone(VN).strftime("%d/%m/%Y %H:%M")
            assert css(card, ".updated time")[0].get("datetime") == updated.isoformat()
        extent = css(card, ".extent")[0].text_content()
        if n and layer.geometry_nullable and extent == "—":     # records without points: no extent to show
            row = conn.execute(f"SELECT count(geom) FROM {layer.table}").fetchone()  # noqa: S608
            assert row is not None and row[0] == 0, layer.id
            continue
        assert re.fullmatch(r"\d+,\d\d–\d+,\d\d°\u00a0Đ · \d+,\d\d–\d+,\d\d°\u00a0B", extent), extent
        hrefs = [a.get("href") for a in css(card, "a")]
        base = "http://testserver"
        assert f"{base}/collections/{layer.id}?f=html" in hrefs
        assert f"{base}/collections/{layer.id}/items?f=html" in hrefs
        for query in ("f=gpkg", "f=csv", "f=geojson&download=true"):
            assert f"{base}/collections/{layer.id}/items?{query}" in hrefs
        assert any(h.startswith((f"{base}/map", f"{base}/collections/{layer.id}/items")) for h in hrefs)
    total = sum(n for n, _ in truth.values())
    assert css(html, "#total-count")[0].text_content() == f"{total:,}".replace(",", ".")


def test_extent_matches_the_collection_and_the_map_link_centres_on_it(client: TestClient) -> None:
    _, html = _page(client)
    for layer_id in ("parcels", "auction_plots"):
        bbox = client.get(f"/collections/{layer_id}").json()["extent"]["spatial"]["bbox"][0]
        card = css(html, f"#layer-{layer_id}")[0]
        lo = [f"{v:.2f}".replace(".", ",") for v in bbox]
        assert css(card, ".extent")[0].text_content() == (
            f"{lo[0]}–{lo[2]}°\u00a0Đ · {lo[1]}–{lo[3]}°\u00a0B")
        href = css(card, "a.btn.primary")[0].get("href")
        m = re.fullmatch(r"http://testserver/map#([\d.]+)/([\d.]+)/([\d.]+)", href)
        assert m, href
        z, lat, lon = (float(v) for v in m.groups())
        assert bbox[1] < lat < bbox[3] and bbox[0] < lon < bbox[2] and 6 <= z <= 14


def test_no_raw_rel_uri_for_humans(client: TestClient) -> None:
    r, html = _page(client)
    assert OGC_REL not in html.text_content()
    assert OGC_REL not in r.text                # not even in attributes: links are titled
    dev = [a.text_content() for a in css(html, ".devlinks a")]
    assert "Tài liệu API" in dev and "Các lớp dữ liệu" in dev and "Các lớp phù hợp chuẩn" in dev


def test_connect_snippets_use_the_public_base_url(client: TestClient, settings: Any, sample_db: str) -> None:
    _, html = _page(client)
    gdal = css(html, "#gdal-snippet")[0].text_content()
    python = css(html, "#python-snippet")[0].text_content()
    assert "ogr2ogr -f GPKG parcels.gpkg OAPIF:http://testserver/collections/parcels" in gdal
    assert "ogrinfo -so MVT:http://testserver/collections/parcels/tiles/WebMercatorQuad/14" in gdal
    assert 'gpd.read_file("http://testserver/collections/parcels/items?f=gpkg")' in python
    assert 'pyogrio.read_dataframe("OAPIF:http://testserver/collections/parcels"' in python
    assert css(html, "#qgis-url")[0].text_content() == "http://testserver"
    # behind a proxy: DATSO_PUBLIC_URL, not the Host header
    from api.app import create_app
    from layers.settings import ApiSettings

    public = "https://gis.example.vn/datso"
    api = ApiSettings(public_url=public)
    with TestClient(create_app(settings=settings, api_settings=api, dsn=sample_db)) as other:
        _, html = _page(other)
    assert css(html, "#qgis-url")[0].text_content() == public
    assert f"OAPIF:{public}/collections/parcels" in css(html, "#gdal-snippet")[0].text_content()
    assert all(a.get("href").startswith((public, "#", "?")) for a in css(html, "main a"))


def test_english_by_query_and_by_accept_language(client: TestClient, conn: psycopg.Connection) -> None:
    truth = _truth(conn)
    for query, headers in (("?lang=en", {}), ("", {"Accept-Language": "en-GB,en;q=0.9"})):
        r, html = _page(client, query, **headers)
        assert r.headers["content-language"] == "en" and html.get("lang") == "en"
        card = css(html, "#layer-parcels")[0]
        assert css(card, "h3")[0].text_content().strip() == LAYERS["parcels"].title_en
        assert css(card, ".count")[0].text_content() == f"{truth['parcels'][0]:,}"     # 7,600
        assert "Connect from QGIS / GDAL / Python" in html.text_content()
        assert re.fullmatch(r"\d+\.\d\d–\d+\.\d\d°\u00a0E · \d+\.\d\d–\d+\.\d\d°\u00a0N",
                            css(card, ".extent")[0].text_content())
        updated = truth["parcels"][1]
        assert updated is not None
        assert css(card, ".updated")[0].text_content() == updated.astimezone(VN).strftime("%d %b %Y %H:%M")


def test_large_layers_say_about(sample_db: str, conn: psycopg.Connection) -> None:
    """Above the limit the count is the planner's estimate, labelled 'khoảng'/'about'; no table is scanned."""
    conn.execute("ANALYZE parcels")
    conn.commit()
    n = _one(conn, "SELECT count(*) FROM parcels")

    async def run() -> dict[str, summary.LayerSummary]:
        c = await asyncpg.connect(sample_db)
        try:
            return await summary.layer_summaries(c, list(LAYERS.values()), exact_up_to=n - 1)
        finally:
            await c.close()

    sums = asyncio.run(run())
    s = sums["parcels"]
    assert s.estimated and s.updated is None and s.bbox is not None
    assert s.count is not None and abs(s.count - n) <= n * 0.05
    assert landing.count_text(s, "vi").startswith("khoảng ")
    assert landing.count_text(s, "en").startswith("about ")
    small = sums["auction_plots"]
    assert not small.estimated and small.count == _one(conn, "SELECT count(*) FROM auction_plots")
    assert landing.count_text(summary.LayerSummary(1_234_567, True, None, None), "vi") == "khoảng 1.200.000"
    assert landing.count_text(summary.LayerSummary(1_234_567, True, None, None), "en") == "about 1,200,000"


# -- in Chromium ----------------------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_landing_in_chromium_offline_phone_and_desktop(live_server: Any, lang: str) -> None:
    url = live_server.url + ("/" if lang == "vi" else "/?lang=en")
    aborted: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(live_server.url + "/"):
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    with chromium() as browser:
        for width, height in ((360, 740), (1280, 800)):
            ctx = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN")
            ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
            page = ctx.new_page()
            page.route("**/*", only_local)
            log = PageLog(page)
            page.goto(url, wait_until="networkidle")
            assert page.locator("article.card").count() == len(LAYERS)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            # every card fits the screen
            for box in page.locator("article.card").evaluate_all(
                    "els => els.map(e => e.getBoundingClientRect().right)"):
                assert box <= width
            screenshot(page, f"landing-{lang}-{width}.png")
            page.screenshot(path=str(screenshot(page, f"landing-{lang}-{width}-full.png")), full_page=True)
            # the copy button copies the GDAL commands
            button = page.locator("button[data-copy='gdal-snippet']")
            assert button.is_visible()
            button.click()
            copied = page.evaluate("navigator.clipboard.readText()")
            assert copied == page.locator("#gdal-snippet").inner_text()
            assert f"OAPIF:{live_server.url}/collections/parcels" in copied
            ctx.close()
            assert log.console_errors() == []
            assert log.external(live_server.url + "/") == [] and aborted == []
