"""Raster tiles through rio-tiler: a registered GeoTIFF/COG (layers.store.rasters) cut into WebMercatorQuad
PNG/WebP tiles, with band selection, band-math expressions (`(b2-b1)/(b2+b1)`), rescaling and colormaps.

rio-tiler reads only the window a tile needs (from the best COG overview) and warps it to the tile grid with
the raster's CRS as GDAL reads it: for a VN-2000 raster registered by `datso raster add` that CRS carries the
official `+towgs84` (see layers/store/rasters.py). A tile that does not touch the raster is `None` (the routes
answer 204 No Content). Bad parameters raise `RasterError` (400) naming the parameter.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

import morecantile
import numpy as np
from rio_tiler.colormap import cmap
from rio_tiler.errors import RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader

from layers.store.rasters import NAME, RasterError, RasterInfo, list_rasters, open_raster

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")
FORMATS = {"png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp")}
# band math: b1..bN, numbers, + - * / ( ) and a few numexpr functions; nothing else reaches numexpr
_EXPR_TOKEN = re.compile(r"\s*(?:b[0-9]{1,3}|[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?|\.[0-9]+|[-+*/()<>=!&|,]|"
                         r"where|sqrt|abs|log|exp|arctan2)\s*", re.I)

# compatibility names for the /imagery routes (api/imagery.py)
ImageryError = RasterError
Imagery = RasterInfo
open_imagery = open_raster
list_imagery = list_rasters


@dataclass(frozen=True)
class Render:
    """How to draw a tile: `indexes` or `expression`, `rescale` (one (min, max) or one per band), colormap."""

    indexes: tuple[int, ...] | None = None
    expression: str | None = None
    rescale: tuple[tuple[float, float], ...] | None = None
    colormap_name: str | None = None


def parse_expression(info: RasterInfo, text: str) -> str:
    """Check a band-math expression (bands `b1`…`bN`): only arithmetic on existing bands. 400 otherwise."""
    expr = text.strip()
    if not expr or len(expr) > 300:
        raise RasterError(400, "expression: biểu thức trống hoặc quá dài", "expression: empty or too long")
    pos = 0
    while pos < len(expr):
        m = _EXPR_TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise RasterError(400, f"expression: ký tự không hợp lệ ở vị trí {pos + 1}: '{expr[pos:pos + 10]}'",
                              f"expression: invalid text at position {pos + 1}: '{expr[pos:pos + 10]}'")
        pos = m.end()
    bands = {int(b) for b in re.findall(r"\bb([0-9]{1,3})\b", expr, re.I)}
    if not bands:
        raise RasterError(400, "expression: không dùng kênh nào (b1, b2, …)", "expression: uses no band (b1, b2, …)")
    bad = sorted(b for b in bands if not 1 <= b <= info.count)
    if bad:
        raise RasterError(400, f"expression: ảnh chỉ có {info.count} kênh (b1–b{info.count}), không có b{bad[0]}",
                          f"expression: the raster has {info.count} bands (b1-b{info.count}), not b{bad[0]}")
    if expr.count("(") != expr.count(")"):
        raise RasterError(400, "expression: ngoặc không cân", "expression: unbalanced parentheses")
    return expr.lower()


def parse_rescale(text: str) -> tuple[tuple[float, float], ...]:
    """`min,max` (several separated by `;` or repeated, one per band) → ranges; 400 naming `rescale`."""
    out = []
    for part in [p for p in re.split(r"[;|]", text) if p.strip()]:
        try:
            lo, hi = (float(v) for v in part.split(","))
        except ValueError:
            raise RasterError(400, f"rescale: cần 'min,max' (ví dụ -1,1), không phải '{part[:40]}'",
                              f"rescale: expected 'min,max' (e.g. -1,1), not '{part[:40]}'") from None
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
            raise RasterError(400, f"rescale: cần min < max: '{part[:40]}'", f"rescale: min must be < max: '{part[:40]}'")
        out.append((lo, hi))
    if not out:
        raise RasterError(400, "rescale: trống", "rescale: empty")
    return tuple(out)


def parse_colormap(text: str) -> str:
    name = text.strip().lower()
    if name not in cmap.list():
        raise RasterError(400, f"colormap_name: không có bảng màu '{text[:40]}' (ví dụ: rdylgn, viridis, greens)",
                          f"colormap_name: unknown colormap '{text[:40]}' (e.g. rdylgn, viridis, greens)")
    return name


def default_render(info: RasterInfo) -> Render:
    """What `/imagery/NAME/...` and an unparameterised tile show: true colour from the bands named red/green/blue
    (else the first three, or the first one), rescaled with the file's `DEFAULT_RESCALE` tag when not 8-bit."""
    names = [n.lower() for n in info.band_names]
    if all(c in names for c in ("red", "green", "blue")):
        idx: tuple[int, ...] = tuple(names.index(c) + 1 for c in ("red", "green", "blue"))
    else:
        idx = (1, 2, 3) if info.count >= 3 else (1,)
    rescale = None
    if info.dtype != "uint8":
        tag = info.tags.get("DEFAULT_RESCALE")
        rescale = parse_rescale(tag) if tag else (_stats_range(str(info.path), None, idx[0]),)
    return Render(indexes=idx, rescale=rescale)


@lru_cache(maxsize=128)
def _stats_range(path: str, expression: str | None, index: int) -> tuple[float, float]:
    """p2–p98 of a band or an expression over the whole raster (a small overview), for tiles without rescale."""
    with Reader(path) as r:
        st = r.statistics(expression=expression) if expression else r.statistics(indexes=index)
    b = next(iter(st.values()))
    lo, hi = float(b.percentile_2), float(b.percentile_98)
    return (lo, hi if hi > lo else lo + 1.0)


def check_tile(info: RasterInfo, z: int, x: int, y: int) -> None:
    if not info.minzoom <= z <= info.maxzoom:
        raise RasterError(404, f"Mức phóng {z} ngoài khoảng {info.minzoom}–{info.maxzoom}",
                          f"Zoom {z} is outside {info.minzoom}-{info.maxzoom}")
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise RasterError(404, f"Ô {z}/{x}/{y} không tồn tại", f"Tile {z}/{x}/{y} does not exist")


def render_tile(img: RasterInfo, z: int, x: int, y: int, tilesize: int = 256, render: Render | None = None,
                fmt: str = "png") -> bytes | None:
    """The PNG/WebP bytes of tile z/x/y of `img` drawn as `render` says, or None when the tile misses it."""
    check_tile(img, z, x, y)
    r = render or default_render(img)
    with Reader(str(img.path), tms=WEB_MERCATOR) as src:
        if not src.tile_exists(x, y, z):
            return None
        try:
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                data = src.tile(x, y, z, tilesize=tilesize, indexes=r.indexes if not r.expression else None,
                                expression=r.expression, resampling_method="bilinear")
        except TileOutsideBounds:
            return None
        except (RioTilerError, SyntaxError, KeyError, TypeError, ValueError) as exc:
            raise RasterError(400, f"expression: không tính được ({type(exc).__name__})",
                              f"expression: cannot be evaluated ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not data.mask.any():
        return None
    if r.expression:
        arr = data.array
        data.array = np.ma.masked_array(np.where(np.isfinite(arr.data), arr.data, 0), mask=arr.mask | ~np.isfinite(arr.data))
    rescale = r.rescale
    if rescale is None and (r.expression or data.data.dtype != np.uint8):
        rescale = (_stats_range(str(img.path), r.expression, (r.indexes or (1,))[0]),)
    if rescale is not None:
        if len(rescale) not in (1, data.count):
            raise RasterError(400, f"rescale: cần 1 hoặc {data.count} khoảng", f"rescale: 1 or {data.count} ranges needed")
        data.rescale(in_range=list(rescale) * (data.count if len(rescale) == 1 else 1))
    colormap = None
    if r.colormap_name:
        if data.count != 1:
            raise RasterError(400, "colormap_name: chỉ dùng với một kênh hoặc một biểu thức",
                              "colormap_name: needs a single band or an expression")
        colormap = cmap.get(r.colormap_name)
    driver, _ = FORMATS[fmt]
    return bytes(data.render(img_format=driver, colormap=colormap))


def overlay_png(img: RasterInfo, render: Render | None = None, max_size: int = 1024,
                bbox: tuple[float, float, float, float] | None = None) -> tuple[bytes, tuple[float, float, float, float]]:
    """One PNG of the raster (or of `bbox`, lon/lat) in Web Mercator, at most `max_size` pixels a side, and its
    lon/lat bounds: a Leaflet ImageOverlay (an offline Folium export) places it between those corners."""
    from pyproj import Transformer

    r = render or default_render(img)
    box = bbox or img.bounds
    with Reader(str(img.path)) as src, warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        data = src.part(box, dst_crs="EPSG:3857", bounds_crs="EPSG:4326", max_size=max_size,
                        indexes=r.indexes if not r.expression else None, expression=r.expression,
                        resampling_method="bilinear")
    rescale = r.rescale
    if rescale is None and (r.expression or data.data.dtype != np.uint8):
        rescale = (_stats_range(str(img.path), r.expression, (r.indexes or (1,))[0]),)
    if rescale is not None:
        data.rescale(in_range=list(rescale) * (data.count if len(rescale) == 1 else 1))
    colormap = cmap.get(r.colormap_name) if r.colormap_name and data.count == 1 else None
    w, s, e, n = data.bounds
    to_ll = Transformer.from_crs(3857, 4326, always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_ll.transform([w, e], [s, n])
    return bytes(data.render(img_format="PNG", colormap=colormap)), (lon0, lat0, lon1, lat1)


def overlay_name(info: RasterInfo, expression: str | None, lang: str) -> str:
    """The layer-control name of a raster in a map export: its name and expression, "(mô phỏng)" or
    "(synthetic)" when the raster is synthetic."""
    label = f"{info.name} {expression}" if expression else info.name
    return label + (" (mô phỏng)" if lang == "vi" else " (synthetic)") * info.synthetic


def export_render(info: RasterInfo, expression: str | None) -> Render:
    """How a map export draws a raster: an expression (NDVI and the like) rescaled -1..1 with RdYlGn, else the
    raster's true colour (`default_render`). A bad expression: RasterError 400."""
    if expression:
        return Render(expression=parse_expression(info, expression), rescale=((-1.0, 1.0),), colormap_name="rdylgn")
    return default_render(info)


def export_overlay(name: str, expression: str | None = None, lang: str = "vi",
                   bbox: tuple[float, float, float, float] | None = None, max_size: int = 1024) -> dict[str, object]:
    """A raster as ONE embedded PNG for an offline map export (no tile server behind an HTML file): the part
    under `bbox` (lon/lat, e.g. the exported features' extent; the whole raster without it), at most `max_size`
    pixels a side. {name, png, bounds}. Unknown raster 404, bad expression 400 (RasterError)."""
    info = open_raster(name)
    render = export_render(info, expression)
    box = info.bounds
    if bbox is not None:
        w, s, e, n = bbox
        pad = max(e - w, n - s) * 0.05 + 0.002
        cut = (max(w - pad, box[0]), max(s - pad, box[1]), min(e + pad, box[2]), min(n + pad, box[3]))
        if cut[0] < cut[2] and cut[1] < cut[3]:
            box = cut
    png, bounds = overlay_png(info, render, max_size=max_size, bbox=box)
    return {"name": overlay_name(info, expression, lang), "png": png, "bounds": bounds}


__all__ = ["export_overlay", "export_render", "overlay_name", "overlay_png", "FORMATS", "NAME", "Imagery", "ImageryError", "Render", "check_tile", "default_render", "list_imagery",
           "open_imagery", "parse_colormap", "parse_expression", "parse_rescale", "render_tile"]
