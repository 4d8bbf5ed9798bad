"""Imagery tiles: a synthetic GeoTIFF registered in DATSO_IMAGERY_DIR is served as WebMercatorQuad PNG tiles
(rio-tiler); pixels are checked against an independent computation (pyproj inverse Web Mercator +
the image's own pixel array); bad requests give problem+json; the web map shows the layer."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import morecantile
import numpy as np
import pytest
import rasterio
from conftest import LiveServer, free_port
from fastapi.testclient import TestClient
from map_browser_util import PageLog, chromium, screenshot
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

from layers.settings import get_imagery_settings

BOUNDS = (105.85, 9.55, 106.75, 10.35)
WIDTH = 1800
TMS = morecantile.tms.get("WebMercatorQuad")
FIELD_COLOURS = np.array([[86, 130, 60], [120, 160, 70], [150, 120, 80], [70, 110, 50]], dtype=np.uint8)
RIVER = np.array([60, 110, 170], dtype=np.uint8)


def sample_pixels(width: int, height: int, cells: int = 24, seed: int = 7) -> np.ndarray:
    """(3, height, width) uint8: a `cells` x `cells` checkerboard of field colours and a diagonal river (a test
    image whose every pixel is known; the sample province's own image is sample_data/imagery.py)."""
    rng = np.random.default_rng(seed)
    choice = rng.integers(0, len(FIELD_COLOURS), size=(cells, cells))
    rows = (np.arange(height) * cells // height)[:, None]
    cols = (np.arange(width) * cells // width)[None, :]
    rgb = FIELD_COLOURS[choice[rows, cols]]                       # (h, w, 3)
    yy, xx = np.mgrid[0:height, 0:width]
    river = np.abs((yy / height) - 0.3 - 0.4 * (xx / width)) < 0.012
    rgb[river] = RIVER
    return np.ascontiguousarray(np.moveaxis(rgb, 2, 0))


def write_sample_imagery(path: Path, bounds: tuple[float, float, float, float], width: int) -> Path:
    """The checkerboard as an RGB GeoTIFF in EPSG:4326 (tiled, with overviews) covering `bounds`."""
    height = max(1, round(width * (bounds[3] - bounds[1]) / (bounds[2] - bounds[0])))
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8",
               "crs": "EPSG:4326", "transform": from_bounds(*bounds, width, height), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "photometric": "RGB"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(sample_pixels(width, height))
        dst.build_overviews([2, 4, 8, 16], Resampling.average)
    return path


@pytest.fixture(scope="module")
def make_app(tmp_path_factory: pytest.TempPathFactory, sample_db: str, settings: Any) -> Iterator[Any]:
    """Apps seeing a folder with one synthetic image (one app per event loop: TestClient, live server)."""
    folder = tmp_path_factory.mktemp("imagery")
    write_sample_imagery(folder / "sample.tif", BOUNDS, width=WIDTH)
    (folder / "notes.txt").write_text("not an image")
    mp = pytest.MonkeyPatch()
    mp.setenv("DATSO_IMAGERY_DIR", str(folder))
    get_imagery_settings.cache_clear()
    from api.app import create_app

    try:
        yield lambda: create_app(settings=settings, dsn=sample_db)
    finally:
        mp.undo()
        get_imagery_settings.cache_clear()


@pytest.fixture(scope="module")
def img_client(make_app: Any) -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


def decode_png(data: bytes) -> np.ndarray:
    with warnings.catch_warnings(), MemoryFile(data) as mem:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)     # a PNG tile has no georeferencing
        with mem.open() as src:
            return np.asarray(src.read())


def expected_tile(z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """(rgb (3,256,256), inside mask) by inverse-projecting every pixel centre with pyproj."""
    b = TMS.xy_bounds(morecantile.Tile(x, y, z))
    size = 256
    xs = b.left + (np.arange(size) + 0.5) * (b.right - b.left) / size
    ys = b.top - (np.arange(size) + 0.5) * (b.top - b.bottom) / size
    mx, my = np.meshgrid(xs, ys)
    lon, lat = Transformer.from_crs(3857, 4326, always_xy=True).transform(mx, my)
    height = round(WIDTH * (BOUNDS[3] - BOUNDS[1]) / (BOUNDS[2] - BOUNDS[0]))
    col = np.floor((lon - BOUNDS[0]) / (BOUNDS[2] - BOUNDS[0]) * WIDTH).astype(int)
    row = np.floor((BOUNDS[3] - lat) / (BOUNDS[3] - BOUNDS[1]) * height).astype(int)
    inside = (col >= 0) & (col < WIDTH) & (row >= 0) & (row < height)
    src = sample_pixels(WIDTH, height)
    rgb = src[:, np.clip(row, 0, height - 1), np.clip(col, 0, WIDTH - 1)]
    return rgb, inside


@pytest.mark.parametrize("z, lon, lat", [(14, 106.3, 10.0), (12, 105.9, 10.3), (9, 106.3, 9.9)])
def test_tile_pixels_match_the_image(img_client: TestClient, z: int, lon: float, lat: float) -> None:
    t = TMS.tile(lon, lat, z)
    r = img_client.get(f"/imagery/sample/{z}/{t.x}/{t.y}.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    arr = decode_png(r.content)
    assert arr.shape == (4, 256, 256)
    rgb, inside = expected_tile(z, t.x, t.y)
    alpha = arr[3] > 0
    # transparency follows the image's footprint (edges may differ by a pixel)
    assert (alpha == inside).mean() > 0.98
    both = alpha & inside
    close = (np.abs(arr[:3].astype(int) - rgb.astype(int)) <= 12).all(axis=0)
    assert both.sum() > 1000
    assert close[both].mean() > 0.9          # bilinear blends only along the cell edges


def test_tile_outside_image_is_204(img_client: TestClient) -> None:
    t = TMS.tile(100.0, 20.0, 10)
    r = img_client.get(f"/imagery/sample/10/{t.x}/{t.y}.png")
    assert r.status_code == 204 and r.content == b""


def test_imagery_list(img_client: TestClient) -> None:
    body = img_client.get("/imagery").json()
    assert [i["name"] for i in body["imagery"]] == ["sample"]
    assert body["imagery"][0]["bounds"] == pytest.approx(list(BOUNDS))
    assert body["imagery"][0]["tiles"][0].endswith("/imagery/sample/{z}/{x}/{y}.png")


@pytest.mark.parametrize("path, status, needle", [
    ("/imagery/nope/12/3257/1933.png", 404, "nope"),
    ("/imagery/notes/12/3257/1933.png", 404, "notes"),
    ("/imagery/sample/3/6/3.png", 404, "Mức phóng 3"),
    ("/imagery/sample/25/1/1.png", 404, "Mức phóng 25"),
    ("/imagery/sample/12/99999/1933.png", 404, "không tồn tại"),
    ("/imagery/sample/12/-1/1933.png", 404, "không tồn tại"),
    ("/imagery/sample/twelve/1/1.png", 400, "z"),
    ("/imagery/..%2F..%2Fetc%2Fpasswd/12/1/1.png", 404, None),
])
def test_bad_tile_requests(img_client: TestClient, path: str, status: int, needle: str | None) -> None:
    r = img_client.get(path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    if needle:
        assert needle in r.json()["detail"]


def test_map_shows_imagery_offline(make_app: Any) -> None:
    with LiveServer(make_app(), free_port()) as srv, chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        log = PageLog(page)
        page.goto(srv.url + "/map#12/10.0/106.3")
        page.wait_for_function("() => window.datsoReady === true && window.datsoMap.areTilesLoaded()", timeout=30000)
        page.wait_for_timeout(500)
        assert page.is_checked("#layer-imagery")
        tiles = [u for u in log.requests if "/imagery/sample/" in u]
        assert tiles and all(u.startswith(srv.url) for u in tiles)
        screenshot(page, "map_imagery.png")
        page.uncheck("#layer-imagery")
        assert page.evaluate("window.datsoMap.getLayoutProperty('imagery', 'visibility')") == "none"
        assert "hide=imagery" in page.evaluate("location.hash")
        assert log.console_errors() == []
        assert log.external(srv.url) == []


def test_cli_sample_imagery(sample_db: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`datso map sample-imagery` writes the sample province's multi-band image (the generator of `datso sample
    load`: blue, green, red, NIR, NDVI following the land use), here 1,024 px across, as a COG."""
    import os
    import subprocess
    import sys

    from rasterio.warp import transform_bounds

    from layers.store.rasters import is_cog
    from sample_data.imagery import S2_BANDS

    out = tmp_path_factory.mktemp("cli") / "prov.tif"
    env = {**os.environ, "DATABASE_URL": sample_db}
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-m", "cli.main", "map", "sample-imagery", "--out", str(out), "--width",
                          "1024"], env=env, capture_output=True, text=True, timeout=120, cwd=root)
    assert res.returncode == 0, res.stderr
    import psycopg

    with psycopg.connect(sample_db) as c:
        x1, y1, x2, y2 = c.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                                   "ST_Extent(geom) e FROM admin_units WHERE level = 'province' "
                                   "AND valid_to IS NULL) s").fetchone()
    with rasterio.open(out) as src:
        assert src.count == 4 and list(src.descriptions) == S2_BANDS and src.width == 1024 and src.overviews(1)
        assert src.tags()["SYNTHETIC"] == "true" and src.dtypes[0] == "uint16"
        b = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        assert b[0] <= x1 + 0.01 and b[1] <= y1 + 0.01 and b[2] >= x2 - 0.01 and b[3] >= y2 - 0.01
        red, nir = src.read(3).astype(float), src.read(4).astype(float)
    assert is_cog(out)
    ndvi = (nir - red)[red > 0] / (nir + red)[red > 0]
    assert ndvi.min() < 0 < 0.6 < ndvi.max()              # water and dense vegetation both there
    bad = subprocess.run([sys.executable, "-m", "cli.main", "map", "sample-imagery", "--out", str(out), "--bbox",
                          "1,2"], env=env, capture_output=True, text=True, timeout=60, cwd=root)
    assert bad.returncode == 2 and "bbox" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "cli.main", "map", "sample-imagery", "--out", str(out.with_suffix(
        ".png"))], env=env, capture_output=True, text=True, timeout=60, cwd=root)
    assert bad.returncode == 2 and "--out" in bad.stderr


def test_cli_sample_imagery_default_is_the_sample_raster(sample_db: str, tmp_path: Path) -> None:
    """Without --out the command (re)makes the raster layer `sample_s2` in DATSO_IMAGERY_DIR, as `datso sample
    load` does: the same generator, the same name, served at /rasters/sample_s2."""
    import os
    import subprocess
    import sys

    from layers.settings import ImagerySettings
    from layers.store.rasters import open_raster

    env = {**os.environ, "DATABASE_URL": sample_db, "DATSO_IMAGERY_DIR": str(tmp_path / "reg")}
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-m", "cli.main", "map", "sample-imagery", "--width", "300"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=root)
    assert res.returncode == 0, res.stderr
    info = open_raster("sample_s2", ImagerySettings(imagery_dir=tmp_path / "reg"))
    assert info.band_names == ("blue", "green", "red", "nir") and info.synthetic and info.width == 300
    assert "/rasters/sample_s2" in res.stderr
