"""Tile matrix sets (morecantile) and z/x/y validation with bilingual errors.

Tiles are built with `ST_TileEnvelope`, i.e. on WebMercatorQuad; other matrix sets are listed only if
their tiles coincide with it, so `SUPPORTED` holds WebMercatorQuad alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import morecantile

from gis.errors import BilingualError

SUPPORTED: tuple[str, ...] = ("WebMercatorQuad",)
DEFAULT_TMS = "WebMercatorQuad"
# Earth circumference in EPSG:3857 metres; a "pixel" at zoom z is a 1/256 of a tile (the usual
# WebMercator resolution, 156543.03 m at z0).
WORLD = 2 * 20037508.342789244


class TileError(BilingualError):
    """A tile request that cannot be served: `status` 400 (not a tile) or 404 (no such tile/layer)."""

    def __init__(self, status: int, vi: str, en: str) -> None:
        super().__init__(vi, en, status)


@dataclass(frozen=True)
class TileID:
    z: int
    x: int
    y: int

    def __str__(self) -> str:
        return f"{self.z}/{self.x}/{self.y}"


@lru_cache(maxsize=8)
def _load(tms_id: str) -> tuple[morecantile.TileMatrixSet, tuple[tuple[int, int], ...]]:
    """The matrix set and (width, height) per zoom; morecantile builds a new object per get() (~0.4 ms)."""
    t = morecantile.tms.get(tms_id)
    sizes = tuple((t.matrix(z).matrixWidth, t.matrix(z).matrixHeight) for z in range(t.minzoom, t.maxzoom + 1))
    return t, sizes


def get_tms(tms_id: str) -> morecantile.TileMatrixSet:
    if tms_id not in SUPPORTED:
        raise TileError(404, f"Không có tập ma trận lưới {tms_id!r}; hỗ trợ: {', '.join(SUPPORTED)}",
                        f"Unknown tile matrix set {tms_id!r}; supported: {', '.join(SUPPORTED)}")
    return _load(tms_id)[0]


@lru_cache(maxsize=8)
def document(tms_id: str) -> dict[str, Any]:
    """The matrix set as OGC TMS 2.0 JSON (morecantile), with the TMS 1.0 members beside it (`type`,
    `identifier`, `supportedCRS`, `tileMatrix` with `topLeftCorner`): GDAL before 3.7 reads only TMS 1.0 and
    fails with "Invalid tiling matrix set name" otherwise; readers of 2.0 ignore the extra members."""
    doc: dict[str, Any] = get_tms(tms_id).model_dump(mode="json", exclude_none=True, by_alias=True)
    doc.update({
        "type": "TileMatrixSetType", "identifier": doc["id"], "supportedCRS": doc["crs"],
        "tileMatrix": [{"type": "TileMatrixType", "identifier": m["id"], "scaleDenominator": m["scaleDenominator"],
                        "topLeftCorner": m["pointOfOrigin"], "tileWidth": m["tileWidth"],
                        "tileHeight": m["tileHeight"], "matrixWidth": m["matrixWidth"],
                        "matrixHeight": m["matrixHeight"]} for m in doc["tileMatrices"]],
    })
    return doc


def validate(tms_id: str, z: int, x: int, y: int) -> TileID:
    """The tile, or TileError(400) when z/x/y is outside the matrix set."""
    tms = get_tms(tms_id)
    if not tms.minzoom <= z <= tms.maxzoom:
        raise TileError(400, f"Mức thu phóng z={z} nằm ngoài {tms.minzoom}–{tms.maxzoom} của {tms_id}",
                        f"Zoom z={z} is outside {tms.minzoom}-{tms.maxzoom} of {tms_id}")
    width, height = _load(tms_id)[1][z - tms.minzoom]
    if not (0 <= x < width and 0 <= y < height):
        raise TileError(400, f"Ô {z}/{x}/{y} không tồn tại: ở mức {z}, x phải từ 0 đến {width - 1}, "
                             f"y từ 0 đến {height - 1}",
                        f"Tile {z}/{x}/{y} does not exist: at zoom {z}, x must be 0-{width - 1} and y 0-{height - 1}")
    return TileID(z, x, y)


def pixel_size(z: int) -> float:
    """Metres (EPSG:3857) per pixel at zoom z, for 256-pixel tiles."""
    return WORLD / (256 * 2**z)


def tile_span(z: int) -> float:
    return WORLD / 2**z


def tile_range(bbox: tuple[float, float, float, float], z: int,
               margin: float = 0.0) -> tuple[int, int, int, int]:
    """(xmin, ymin, xmax, ymax) inclusive of the tiles at zoom z that `bbox` (EPSG:3857) touches, each tile
    grown by `margin` (a share of its side, the MVT buffer)."""
    n = 2**z
    span = tile_span(z)
    pad = margin * span
    half = WORLD / 2
    xmin = math.floor((bbox[0] - pad + half) / span)
    xmax = math.floor((bbox[2] + pad + half) / span)
    ymin = math.floor((half - (bbox[3] + pad)) / span)
    ymax = math.floor((half - (bbox[1] - pad)) / span)
    clamp = lambda v: min(max(v, 0), n - 1)  # noqa: E731
    return clamp(xmin), clamp(ymin), clamp(xmax), clamp(ymax)


def tiles_in_bbox(bbox: tuple[float, float, float, float], zooms: range) -> Iterator[TileID]:
    for z in zooms:
        x0, y0, x1, y1 = tile_range(bbox, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                yield TileID(z, x, y)


def lonlat_bbox_to_3857(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    tms = get_tms(DEFAULT_TMS)
    x0, y0 = tms.xy(bbox[0], bbox[1])
    x1, y1 = tms.xy(bbox[2], bbox[3])
    return (x0, y0, x1, y1)
