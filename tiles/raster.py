"""Raster imagery tiles: a registered GeoTIFF/COG reprojected on the fly to WebMercatorQuad PNG tiles.

Images are registered by putting them in `DATSO_IMAGERY_DIR` (default `.data/imagery`): `NAME.tif` is served
as `/imagery/NAME/{z}/{x}/{y}.png`. Each tile is read through rasterio's WarpedVRT in EPSG:3857 (with an alpha
band, so pixels outside the image are transparent) over the tile's bounds from morecantile; overviews of a
COG are used by GDAL for low zooms. A tile outside the image is `None` (the route answers 204).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import morecantile
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from gis.errors import BilingualError
from layers.settings import ImagerySettings, get_imagery_settings

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SUFFIXES = (".tif", ".tiff")


class ImageryError(BilingualError):
    """An imagery request that cannot be served (400 bad tile, 404 unknown image)."""

    def __init__(self, status: int, vi: str, en: str) -> None:
        super().__init__(vi, en, status)


@dataclass(frozen=True)
class Imagery:
    name: str
    path: Path
    bounds: tuple[float, float, float, float]      # lon/lat
    minzoom: int
    maxzoom: int


def _find(directory: Path, name: str) -> Path | None:
    for suffix in SUFFIXES:
        p = directory / (name + suffix)
        if p.is_file():
            return p
    return None


def list_imagery(settings: ImagerySettings | None = None) -> list[Imagery]:
    s = settings or get_imagery_settings()
    if not s.imagery_dir.is_dir():
        return []
    out = []
    for p in sorted(s.imagery_dir.iterdir()):
        if p.suffix.lower() in SUFFIXES and NAME.match(p.stem):
            try:
                out.append(open_imagery(p.stem, s))
            except ImageryError:
                continue
    return out


def open_imagery(name: str, settings: ImagerySettings | None = None) -> Imagery:
    s = settings or get_imagery_settings()
    path = _find(s.imagery_dir, name) if NAME.match(name) else None
    if path is None:
        raise ImageryError(404, f"Không có lớp ảnh '{name[:64]}'", f"No imagery named '{name[:64]}'")
    return _describe(str(path), path.stat().st_mtime, s.imagery_minzoom, s.imagery_maxzoom)


@lru_cache(maxsize=64)
def _describe(path: str, mtime: float, minzoom: int, maxzoom: int) -> Imagery:
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise ImageryError(422, "Ảnh không có hệ tọa độ", "The image has no CRS")
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    except rasterio.errors.RasterioIOError:
        raise ImageryError(422, "Không đọc được tệp ảnh", "The image file cannot be read") from None
    return Imagery(Path(path).stem, Path(path), (bounds[0], bounds[1], bounds[2], bounds[3]), minzoom, maxzoom)


def _intersects(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def render_tile(img: Imagery, z: int, x: int, y: int, tilesize: int = 256) -> bytes | None:
    """The PNG bytes (RGBA) of tile z/x/y of `img`, or None when the tile does not touch the image."""
    if not img.minzoom <= z <= img.maxzoom:
        raise ImageryError(404, f"Mức phóng {z} ngoài khoảng {img.minzoom}–{img.maxzoom}",
                           f"Zoom {z} is outside {img.minzoom}-{img.maxzoom}")
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise ImageryError(404, f"Ô {z}/{x}/{y} không tồn tại", f"Tile {z}/{x}/{y} does not exist")
    ll = WEB_MERCATOR.bounds(morecantile.Tile(x, y, z))
    if not _intersects((ll.left, ll.bottom, ll.right, ll.top), img.bounds):
        return None
    xy = WEB_MERCATOR.xy_bounds(morecantile.Tile(x, y, z))
    grid = from_bounds(xy.left, xy.bottom, xy.right, xy.top, tilesize, tilesize)
    # the VRT *is* the tile grid: GDAL warps only these pixels, from the best overview
    with rasterio.open(img.path) as src, WarpedVRT(src, crs="EPSG:3857", transform=grid, width=tilesize,
                                                   height=tilesize, resampling=Resampling.bilinear,
                                                   add_alpha=True) as vrt:
        bands = list(range(1, min(3, src.count) + 1)) + [vrt.count]
        data = vrt.read(indexes=bands)
    if len(bands) == 2:                       # a grey image: grey, grey, grey, alpha
        data = data[[0, 0, 0, 1]]
    if not data[-1].any():
        return None
    with warnings.catch_warnings(), MemoryFile() as mem:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)    # a PNG tile carries no georeferencing
        with mem.open(driver="PNG", width=tilesize, height=tilesize, count=4, dtype="uint8") as dst:
            dst.write(data.astype("uint8"))
        return bytes(mem.read())
