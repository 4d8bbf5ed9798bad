"""The citizen map offers every registered raster (true colour, and NDVI with the RdYlGn colormap where the raster
has red and NIR bands), labelled "ảnh tổng hợp (synthetic)" where synthetic, switchable in the layer control, in
headless Chromium with every request leaving the live server aborted: switching to NDVI loads the NDVI tiles from
the local server and they paint (the canvas pixels change, to RdYlGn colours); the auction plots stay drawn over
the image; the choice survives in the URL; Vietnamese first, English on request; a 360 px phone."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import rasterio
from conftest import LiveServer, free_port
from map_browser_util import PageLog, chromium, screenshot
from PIL import Image
from rasterio.transform import from_bounds

from layers.settings import get_imagery_settings

pytestmark = pytest.mark.browser

READY = ("() => window.datsoReady === true && window.datsoMap.loaded() && window.datsoMap.areTilesLoaded()"
         " && !window.datsoMap.isMoving()")
VIEW = "#15/10.29/105.97"                 # inside the sample province, auction plots in view
ORTHO_BOX = (105.93, 10.26, 106.01, 10.32)  # a second, non-synthetic RGB raster over part of the view


@pytest.fixture(scope="module")
def make_app(tmp_path_factory: pytest.TempPathFactory, sample_db: str, settings: Any) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("map-rasters")
    src = tmp_path_factory.mktemp("map-rasters-src") / "ortho.tif"
    w, h = 600, 500
    ramp = np.linspace(40, 220, w, dtype=np.float64)[None, None, :].repeat(h, axis=1)
    data = np.concatenate([ramp, ramp[:, ::-1] * 0.8, np.full((1, h, w), 90.0)]).astype(np.uint8)
    with rasterio.open(src, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:4326",
                       transform=from_bounds(*ORTHO_BOX, w, h)) as dst:
        dst.write(data)
    mp = pytest.MonkeyPatch()
    mp.setenv("DATSO_IMAGERY_DIR", str(folder))
    get_imagery_settings.cache_clear()
    from layers.store.rasters import add_raster
    from sample_data.imagery import register_sample_s2

    add_raster(src, "ortho", band_names=["red", "green", "blue"])
    register_sample_s2(sample_db, resolution=60.0)
    from api.app import create_app

    try:
        yield lambda: create_app(settings=settings, dsn=sample_db)
    finally:
        mp.undo()
        get_imagery_settings.cache_clear()


@pytest.fixture(scope="module")
def server(make_app: Any) -> Iterator[LiveServer]:
    with LiveServer(make_app(), free_port()) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def open_page(browser: Any, srv: LiveServer, path: str, width: int, height: int) -> tuple[Any, Any, PageLog, list]:
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN")
    page = ctx.new_page()
    aborted: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith(srv.url):
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    log = PageLog(page)
    responses: list[tuple[str, int]] = []
    page.on("response", lambda r: responses.append((r.url, r.status)))
    page.goto(srv.url + path)
    settle(page)
    assert aborted == []
    return ctx, page, log, responses


def settle(page: Any) -> None:
    page.wait_for_function(READY, timeout=45000)
    page.wait_for_timeout(400)
    page.wait_for_function(READY, timeout=45000)


def map_pixels(page: Any) -> np.ndarray:
    """The map element as RGB pixels (what a person sees)."""
    return np.asarray(Image.open(io.BytesIO(page.locator("#map").screenshot())).convert("RGB")).astype(int)


def hide_vectors(page: Any) -> None:
    """Plots, parcels and boundaries off: what remains is the image (or the plain background)."""
    for k in ("auction_plots", "parcels", "admin_units"):
        page.uncheck(f"#layer-{k}")
    settle(page)


def test_every_raster_is_a_choice_and_ndvi_paints(browser: Any, server: LiveServer) -> None:
    ctx, page, log, responses = open_page(browser, server, "/map" + VIEW, 1280, 800)
    try:
        choices = page.locator("input[name=imagery-choice]")
        assert choices.count() == 3                       # ortho (true colour), sample_s2 true colour and NDVI
        labels = [page.locator(f"label:has(#{choices.nth(i).get_attribute('id')})").inner_text()
                  for i in range(3)]
        assert labels[0].startswith("Ảnh màu thực – ortho") and "synthetic" not in labels[0]
        assert labels[1].startswith("Ảnh màu thực – sample_s2") and "ảnh tổng hợp (synthetic)" in labels[1]
        assert labels[2].startswith("Chỉ số thực vật NDVI – sample_s2") and "ảnh tổng hợp (synthetic)" in labels[2]
        assert choices.nth(0).is_checked() and page.is_checked("#layer-imagery")
        # the auction plots are drawn over every image layer
        order = page.evaluate("window.datsoMap.getStyle().layers.map(l => l.id)")
        images = [i for i, lid in enumerate(order) if lid.startswith("imagery")]
        assert len(images) == 3 and max(images) < order.index("auction-fill") < order.index("auction-line")
        plots_before = page.evaluate("window.datsoMap.queryRenderedFeatures({layers: ['auction-fill']}).length")
        assert plots_before > 0
        screenshot(page, "map_rasters_desktop_truecolour.png")

        page.check("#img-sample_s2-ndvi")
        settle(page)
        ndvi_tiles = [u for u in log.requests if "/rasters/sample_s2/tiles/" in u]
        assert ndvi_tiles and all(u.startswith(server.url) for u in ndvi_tiles)
        assert all("expression=" in u and "colormap_name=rdylgn" in u for u in ndvi_tiles)
        assert {s for u, s in responses if u in ndvi_tiles} <= {200, 204} and any(
            s == 200 for u, s in responses if u in ndvi_tiles)
        vis = page.evaluate("window.datsoMap.getStyle().layers.filter(l => l.id.startsWith('imagery'))"
                            ".map(l => [l.id, (l.layout || {}).visibility])")
        assert [v for _, v in vis] == ["none", "none", "visible"]
        assert "img=sample_s2.ndvi" in page.evaluate("location.hash")
        assert page.is_visible(".ndvi-legend")
        assert page.evaluate("window.datsoMap.queryRenderedFeatures({layers: ['auction-fill']}).length") == plots_before
        screenshot(page, "map_rasters_desktop_ndvi.png")

        # the NDVI tiles paint: compared with no image at all, most of the map changes, to RdYlGn colours
        hide_vectors(page)
        with_ndvi = map_pixels(page)
        page.uncheck("#layer-imagery")
        settle(page)
        without = map_pixels(page)
        changed = (np.abs(with_ndvi - without).max(axis=2) > 40)
        assert changed.mean() > 0.5, changed.mean()
        r, g, b = with_ndvi[..., 0], with_ndvi[..., 1], with_ndvi[..., 2]
        green = changed & (g > r + 40) & (g > b + 20)      # RdYlGn's greens: the sample's vegetation
        assert green.mean() > 0.25, green.mean()
        page.check("#layer-imagery")
        page.check("#img-sample_s2")                       # back to true colour: a different picture
        settle(page)
        true_colour = map_pixels(page)
        assert (np.abs(true_colour - with_ndvi).max(axis=2) > 40).mean() > 0.3
        assert log.console_errors() == []
        assert log.external(server.url) == []
    finally:
        ctx.close()


def test_choice_from_the_link_on_a_phone_in_english(browser: Any, server: LiveServer) -> None:
    ctx, page, log, _ = open_page(browser, server, "/map" + VIEW + "?img=sample_s2.ndvi&lang=en", 360, 740)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert [v for v in page.evaluate(
            "window.datsoMap.getStyle().layers.filter(l => l.id.startsWith('imagery'))"
            ".map(l => (l.layout || {}).visibility)")] == ["none", "none", "visible"]
        assert any("/rasters/sample_s2/tiles/" in u for u in log.requests)
        screenshot(page, "map_rasters_phone_ndvi.png")
        page.click("#panel-toggle")
        page.wait_for_timeout(300)
        page.locator("#imagery-choices").scroll_into_view_if_needed()
        assert page.is_checked("#img-sample_s2-ndvi")
        label = page.locator("label:has(#img-sample_s2-ndvi)")
        assert label.inner_text().startswith("Vegetation index (NDVI) – sample_s2") and "synthetic image" in \
            label.inner_text()
        box = label.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
        screenshot(page, "map_rasters_phone_choices.png")
        page.check("#img-ortho")
        assert "img=" not in page.evaluate("location.hash")      # the default choice is not written
        assert log.console_errors() == []
        assert log.external(server.url) == []
    finally:
        ctx.close()


def test_unknown_image_in_the_link_is_ignored_with_a_notice(browser: Any, server: LiveServer) -> None:
    ctx, page, log, _ = open_page(browser, server, "/map" + VIEW + "?img=nope", 1000, 700)
    try:
        assert page.is_checked("#img-ortho")
        assert "img" in page.inner_text("#notice")
        assert log.external(server.url) == []
    finally:
        ctx.close()

