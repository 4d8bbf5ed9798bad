"""Raster layers through rio-tiler: `datso raster add` (non-COG → COG, EPSG:4326 and VN-2000 EPSG:9210 with the
official shift), `/rasters` JSON, metadata, TileJSON, tiles decoded with Pillow against numpy on the source
(NDVI expression, rescale, colormap), georeferencing of a VN-2000 raster, and bad parameters (400/404/204)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from PIL import Image
from pyproj import Transformer
from rasterio.transform import from_bounds, from_origin

from gis.crs import towgs84_values, transformer
from layers.settings import ImagerySettings, get_imagery_settings
from layers.store.rasters import RasterError, add_raster, is_cog, open_raster

TMS = morecantile.tms.get("WebMercatorQuad")
TILE = TMS.tile(106.3, 10.0, 14)          # the NDVI raster is exactly this tile's grid
ROOT = Path(__file__).resolve().parent.parent


def red_nir() -> np.ndarray:
    """(2, 256, 256) uint16 red and NIR with NDVI spanning -0.6..0.9 (deterministic)."""
    rng = np.random.default_rng(3)
    red = rng.integers(200, 3000, size=(256, 256)).astype(np.uint16)
    nir = rng.integers(200, 5000, size=(256, 256)).astype(np.uint16)
    return np.stack([red, nir])


def write_plain(path: Path, data: np.ndarray, crs: str, transform: Any, nodata: float | None = None) -> Path:
    """A striped (not tiled, no overviews: not a COG) GeoTIFF."""
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(data)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    src = tmp_path_factory.mktemp("raster-src")
    reg = tmp_path_factory.mktemp("raster-reg")
    mp = pytest.MonkeyPatch()
    mp.setenv("DATSO_IMAGERY_DIR", str(reg))
    mp.setenv("DATSO_IMAGERY_MINZOOM", "0")
    mp.setenv("DATSO_IMAGERY_MAXZOOM", "22")
    get_imagery_settings.cache_clear()
    b = TMS.xy_bounds(TILE)
    ndvi = write_plain(src / "ndvi.tif", red_nir(), "EPSG:3857", from_bounds(b.left, b.bottom, b.right, b.top, 256, 256))
    add_raster(ndvi, "ndvi", band_names=["red", "nir"])
    grey = np.zeros((1, 1000, 1000), dtype=np.uint8)
    grey[0, 400:600, 400:600] = 200
    geo = write_plain(src / "geo.tif", grey, "EPSG:4326", from_origin(106.0, 10.0, 0.0001, 0.0001))
    assert not is_cog(geo)                   # striped, no overviews
    add_raster(geo, "geo")
    # VN-2000 TM-3 105°45' (EPSG:9210): a 10 m checkerboard of 8x8 m squares ... written as GDAL writes EPSG:9210
    board = ((np.add.outer(np.arange(60), np.arange(60)) % 2) * 200).astype(np.uint8)[None]
    write_plain(src / "vn.tif", board, "EPSG:9210", from_origin(600000, 1120000, 10, 10))
    add_raster(src / "vn.tif", "vn")
    try:
        yield src
    finally:
        mp.undo()
        get_imagery_settings.cache_clear()


@pytest.fixture(scope="module")
def rclient(folder: Path, sample_db: str, settings: Any) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(settings=settings, dsn=sample_db)) as c:
        yield c


def png(r: Any) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)))


# -- registration ------------------------------------------------------------------------------------------
def test_add_converts_to_cog_and_keeps_georeferencing(folder: Path) -> None:
    info = open_raster("ndvi")
    assert is_cog(info.path)
    with rasterio.open(info.path) as cog, rasterio.open(folder / "ndvi.tif") as src:
        assert cog.crs == src.crs and cog.transform.almost_equals(src.transform)
        assert np.array_equal(cog.read(), src.read())
    assert info.band_names == ("red", "nir") and info.crs == "EPSG:3857"
    assert is_cog(open_raster("geo").path)
    with rasterio.open(open_raster("geo").path) as cog, rasterio.open(folder / "geo.tif") as src:
        assert np.array_equal(cog.read(), src.read()) and cog.overviews(1) and not src.overviews(1)
    geo = open_raster("geo")
    assert geo.bounds == pytest.approx((106.0, 9.9, 106.1, 10.0))


def test_vn2000_raster_carries_the_official_shift(folder: Path) -> None:
    info = open_raster("vn")
    assert info.crs == "EPSG:9210"
    with rasterio.open(info.path) as ds:
        assert "TOWGS84" in ds.crs.to_wkt()
        x, y = ds.xy(5, 7)      # a pixel centre
        lon, lat = rasterio.warp.transform(ds.crs, "EPSG:4326", [x], [y])
    olon, olat = transformer("EPSG:9210", "EPSG:4326").transform(x, y)
    assert (lon[0], lat[0]) == pytest.approx((olon, olat), abs=1e-9)
    # PROJ's EPSG:9210 default is not the Decision 05/2007 shift: the point would land ~1 m away
    dlon, dlat = Transformer.from_crs(9210, 4326, always_xy=True).transform(x, y)
    assert abs(dlon - olon) * 109_000 + abs(dlat - olat) * 110_000 > 0.3
    assert len(towgs84_values()) == 7


def test_vn2000_tile_pixels_at_the_official_position(rclient: TestClient) -> None:
    """A z=20 tile over the VN-2000 checkerboard: every tile pixel centre taken back (pyproj inverse Web
    Mercator, then the official VN-2000 transformation) to the source grid gives the value seen in the tile."""
    lon, lat = transformer("EPSG:9210", "EPSG:4326").transform(600000 + 255, 1120000 - 255)
    t = TMS.tile(lon, lat, 20)
    img = png(rclient.get(f"/rasters/vn/tiles/20/{t.x}/{t.y}.png"))
    b = TMS.xy_bounds(t)
    xs = b.left + (np.arange(256) + 0.5) * (b.right - b.left) / 256
    ys = b.top - (np.arange(256) + 0.5) * (b.top - b.bottom) / 256
    mx, my = np.meshgrid(xs, ys)
    glon, glat = Transformer.from_crs(3857, 4326, always_xy=True).transform(mx, my)

    def expected(tr: Transformer) -> np.ndarray:
        ex, ey = tr.transform(glon, glat)
        col, row = np.floor((ex - 600000) / 10).astype(int), np.floor((1120000 - ey) / 10).astype(int)
        return ((row + col) % 2) * 200

    official = (np.abs(img[..., 0].astype(int) - expected(transformer("EPSG:4326", "EPSG:9210"))) < 50).mean()
    default = (np.abs(img[..., 0].astype(int) - expected(Transformer.from_crs(4326, 9210, always_xy=True)))
               < 50).mean()
    assert official > 0.97, official      # bilinear edges only
    assert default < official - 0.02, (default, official)


def test_bad_files_and_names(folder: Path, tmp_path: Path) -> None:
    s = ImagerySettings(imagery_dir=tmp_path / "reg")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    with pytest.raises(RasterError) as e:
        add_raster(junk, "junk", settings=s)
    assert e.value.status == 422 and "junk.tif" in e.value.en
    nocrs = write_plain(tmp_path / "nocrs.tif", np.zeros((1, 4, 4), np.uint8), None, from_origin(0, 4, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(RasterError) as e:
        add_raster(nocrs, "nocrs", settings=s)
    assert e.value.status == 422 and "CRS" in e.value.en
    with pytest.raises(RasterError) as e:
        add_raster(folder / "geo.tif", "Bad Name", settings=s)
    assert e.value.status == 400 and "name" in e.value.en
    add_raster(folder / "geo.tif", "geo", settings=s)
    with pytest.raises(RasterError) as e:
        add_raster(folder / "geo.tif", "geo", settings=s)
    assert e.value.status == 409
    assert not list((tmp_path / "reg").glob("junk*")) and not list((tmp_path / "reg").glob("nocrs*"))


def test_cli_raster_add(folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "DATSO_IMAGERY_DIR": str(tmp_path / "cli-reg")}
    ok = subprocess.run([sys.executable, "-m", "cli.main", "raster", "add", str(folder / "vn.tif"), "--name", "vn2"],
                        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "EPSG:9210" in ok.stderr and is_cog(tmp_path / "cli-reg" / "vn2.tif")
    listed = subprocess.run([sys.executable, "-m", "cli.main", "raster", "list"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert listed.stdout.startswith("vn2\tEPSG:9210")
    bad = subprocess.run([sys.executable, "-m", "cli.main", "raster", "add", str(folder / "vn.tif"), "--name",
                          "x y"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 1 and "name" in bad.stderr


# -- JSON documents ------------------------------------------------------------------------------------------
def test_rasters_list_and_metadata(rclient: TestClient) -> None:
    body = rclient.get("/rasters").json()
    names = [r["name"] for r in body["rasters"]]
    assert names == ["geo", "ndvi", "vn"]
    ndvi = next(r for r in body["rasters"] if r["name"] == "ndvi")
    assert ndvi["tiles"][0].endswith("/rasters/ndvi/tiles/{z}/{x}/{y}.png")
    assert [b["name"] for b in ndvi["bands"]] == ["red", "nir"]
    doc = rclient.get("/rasters/ndvi").json()
    assert doc["crs"] == "EPSG:3857" and doc["width"] == 256 and doc["dtype"] == "uint16"
    data = red_nir()
    assert doc["statistics"][0]["min"] == data[0].min() and doc["statistics"][1]["max"] == data[1].max()
    assert doc["bounds"] == pytest.approx(list(TMS.bounds(TILE)), abs=1e-9)


def test_tilejson(rclient: TestClient) -> None:
    tj = rclient.get("/rasters/ndvi/tilejson.json", params={"expression": "(b2-b1)/(b2+b1)", "rescale": "-1,1",
                                                             "colormap_name": "rdylgn"}).json()
    assert tj["tilejson"] == "3.0.0" and tj["minzoom"] == 0 and tj["maxzoom"] == 22
    url = tj["tiles"][0]
    assert "/rasters/ndvi/tiles/{z}/{x}/{y}.png?" in url and "colormap_name=rdylgn" in url
    assert "expression=%28b2-b1%29%2F%28b2%2Bb1%29" in url
    path = url.split("testserver", 1)[1].replace("{z}/{x}/{y}", f"{TILE.z}/{TILE.x}/{TILE.y}")
    assert rclient.get(path).status_code == 200


# -- tiles ------------------------------------------------------------------------------------------------
def expected_ndvi_bytes() -> np.ndarray:
    red, nir = red_nir().astype("float64")
    ndvi = (nir - red) / (nir + red)
    return ((np.clip(ndvi, -1, 1) + 1) / 2 * 255)


def test_ndvi_tile_matches_numpy(rclient: TestClient) -> None:
    img = png(rclient.get(f"/rasters/ndvi/tiles/{TILE.z}/{TILE.x}/{TILE.y}.png",
                          params={"expression": "(b2-b1)/(b2+b1)", "rescale": "-1,1"}))
    assert img.shape == (256, 256, 2)                       # grey + alpha
    assert (img[..., 1] == 255).all()
    diff = np.abs(img[..., 0].astype(float) - expected_ndvi_bytes())
    assert diff.max() <= 1.0, diff.max()


def test_colormap_tile(rclient: TestClient) -> None:
    from rio_tiler.colormap import cmap

    img = png(rclient.get(f"/rasters/ndvi/tiles/{TILE.z}/{TILE.x}/{TILE.y}.png",
                          params={"expression": "(b2-b1)/(b2+b1)", "rescale": "-1,1", "colormap_name": "rdylgn"}))
    assert img.shape == (256, 256, 4)
    lut = np.array([cmap.get("rdylgn")[i] for i in range(256)], dtype=int)
    plain = png(rclient.get(f"/rasters/ndvi/tiles/{TILE.z}/{TILE.x}/{TILE.y}.png",
                            params={"expression": "(b2-b1)/(b2+b1)", "rescale": "-1,1"}))[..., 0]
    assert np.array_equal(img[..., :3], lut[plain][..., :3])
    green = expected_ndvi_bytes() > 230                     # high NDVI is green in RdYlGn
    assert (img[green][:, 1] > img[green][:, 0]).all()


def test_band_tile_and_webp(rclient: TestClient) -> None:
    img = png(rclient.get(f"/rasters/ndvi/tiles/{TILE.z}/{TILE.x}/{TILE.y}.png", params={"bidx": "nir",
                                                                                          "rescale": "0,5000"}))
    expected = np.clip(red_nir()[1] / 5000 * 255, 0, 255)
    assert np.abs(img[..., 0] - expected).max() <= 1.0
    r = rclient.get(f"/rasters/ndvi/tiles/{TILE.z}/{TILE.x}/{TILE.y}.webp", params={"bidx": "1,2,1",
                                                                                     "rescale": "0,5000"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(r.content)).format == "WEBP"


def test_geo_raster_known_pixel(rclient: TestClient) -> None:
    """The bright 20×20 block of `geo` (lon 106.040–106.060, lat 9.940–9.960) is where a z=16 tile says."""
    for lon, lat, bright in ((106.05, 9.95, True), (106.03, 9.95, False), (106.05, 9.935, False)):
        t = TMS.tile(lon, lat, 16)
        b = TMS.bounds(t)
        img = png(rclient.get(f"/rasters/geo/tiles/16/{t.x}/{t.y}.png"))
        col = int((lon - b.left) / (b.right - b.left) * 256)
        merc = Transformer.from_crs(4326, 3857, always_xy=True)
        top, bottom, y = merc.transform(0, b.top)[1], merc.transform(0, b.bottom)[1], merc.transform(0, lat)[1]
        row = int((top - y) / (top - bottom) * 256)
        assert bool(img[row, col, 0] == 200) is bright, (lon, lat)


@pytest.mark.parametrize("params, needle", [
    ({"expression": "(b2-b1)/(b3+b1)"}, "b3"),
    ({"expression": "__import__('os')"}, "expression"),
    ({"expression": "b1 +"}, "expression"),
    ({"expression": ""}, "expression"),
    ({"colormap_name": "nope"}, "colormap_name"),
    ({"rescale": "1"}, "rescale"),
    ({"rescale": "5,1"}, "rescale"),
    ({"rescale": "a,b"}, "rescale"),
    ({"bidx": "7"}, "band"),
    ({"bidx": "1", "expression": "b1"}, "bidx"),
    ({"colormap_name": "viridis", "bidx": "1,2"}, "colormap_name"),
    ({"color": "red"}, "color"),
])
def test_bad_parameters_400(rclient: TestClient, params: dict[str, str], needle: str) -> None:
    r = rclient.get(f"/rasters/ndvi/tiles/{TILE.z}/{TILE.x}/{TILE.y}.png", params={**params, "lang": "en"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert needle in r.json()["detail"]


@pytest.mark.parametrize("path, status", [
    ("/rasters/nope", 404), ("/rasters/nope/tilejson.json", 404), ("/rasters/nope/tiles/14/1/1.png", 404),
    ("/rasters/ndvi/tiles/14/1/1.jpg", 404), ("/rasters/ndvi/tiles/30/1/1.png", 404),
    ("/rasters/ndvi/tiles/14/99999/1.png", 404), ("/rasters/ndvi/tiles/z/1/1.png", 400),
    ("/rasters/..%2F..%2Fetc%2Fpasswd", 404),
])
def test_unknown_and_bad_tiles(rclient: TestClient, path: str, status: int) -> None:
    r = rclient.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_tile_outside_is_204(rclient: TestClient) -> None:
    r = rclient.get(f"/rasters/ndvi/tiles/{TILE.z}/{TILE.x + 5}/{TILE.y}.png")
    assert r.status_code == 204 and not r.content


def test_imagery_routes_still_serve_rasters(rclient: TestClient) -> None:
    names = [i["name"] for i in rclient.get("/imagery").json()["imagery"]]
    assert names == ["geo", "ndvi", "vn"]
    img = png(rclient.get(f"/imagery/ndvi/{TILE.z}/{TILE.x}/{TILE.y}.png"))
    assert img.shape[:2] == (256, 256)


@pytest.mark.parametrize("path, status, needle", [
    ("/rasters/nope", 404, "nope"),
    ("/rasters/nope/tiles/14/1/1.png", 404, "nope"),
    ("/rasters/ndvi/tiles/30/1/1.png", 404, "Zoom 30"),
    ("/rasters/ndvi/tiles/14/99999/1.png", 404, "14/99999/1"),
    ("/rasters/ndvi/tiles/14/1/-1.png", 404, "14/1/-1"),
    ("/rasters/ndvi/tiles/z/1/1.png", 400, "z"),
    ("/rasters/ndvi/tiles/14/1/1.5.png", 400, "y"),
    ("/rasters/ndvi/tiles/14/1/1.gif", 404, "gif"),
])
def test_bad_tiles_say_what_is_wrong(rclient: TestClient, path: str, status: int, needle: str) -> None:
    """Unknown raster and bad z/x/y: a 4xx problem+json whose detail names the raster or the tile, in English
    on request and Vietnamese by default."""
    r = rclient.get(path, params={"lang": "en"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert needle in r.json()["detail"], r.json()
    vi = rclient.get(path)
    assert vi.status_code == status and vi.json()["detail"] != r.json()["detail"]


def test_unreadable_file_in_the_raster_folder(rclient: TestClient) -> None:
    """A damaged file in the raster folder: left out of /rasters, and asking for it by name is a 422
    problem+json saying the file cannot be read (not a 500)."""
    folder = get_imagery_settings().imagery_dir
    broken = folder / "broken.tif"
    broken.write_bytes(b"II*\x00" + b"\x00" * 64)          # a TIFF header and nothing else
    try:
        assert [r["name"] for r in rclient.get("/rasters").json()["rasters"]] == ["geo", "ndvi", "vn"]
        for path in ("/rasters/broken", "/rasters/broken/tilejson.json", "/rasters/broken/tiles/14/1/1.png"):
            r = rclient.get(path, params={"lang": "en"})
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "cannot be read" in r.json()["detail"]
    finally:
        broken.unlink()


def test_cli_raster_add_bad_file(tmp_path: Path) -> None:
    junk = tmp_path / "scan.tif"
    junk.write_bytes(b"not a tiff at all")
    env = {**os.environ, "DATSO_IMAGERY_DIR": str(tmp_path / "reg")}
    res = subprocess.run([sys.executable, "-m", "cli.main", "raster", "add", str(junk), "--name", "scan"], env=env,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 1 and "scan.tif" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "reg" / "scan.tif").exists()
