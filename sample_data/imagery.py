"""A small synthetic "satellite image" (RGB GeoTIFF, tiled, with overviews — a cloud-optimised layout) over a
box, for the web map's optional imagery layer and its tests. Deterministic: fields in a checkerboard of
greens and browns with a blue river band; nothing is read from a real sensor.

    write_sample_imagery("imagery/sample.tif", (105.9, 9.55, 106.75, 10.35))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_bounds

FIELD_COLOURS = np.array([[86, 130, 60], [120, 160, 70], [150, 120, 80], [70, 110, 50]], dtype=np.uint8)
RIVER = np.array([60, 110, 170], dtype=np.uint8)


def sample_pixels(width: int, height: int, cells: int = 24, seed: int = 7) -> np.ndarray:
    """(3, height, width) uint8: a `cells` x `cells` checkerboard of field colours and a diagonal river."""
    rng = np.random.default_rng(seed)
    choice = rng.integers(0, len(FIELD_COLOURS), size=(cells, cells))
    rows = (np.arange(height) * cells // height)[:, None]
    cols = (np.arange(width) * cells // width)[None, :]
    rgb = FIELD_COLOURS[choice[rows, cols]]                       # (h, w, 3)
    yy, xx = np.mgrid[0:height, 0:width]
    river = np.abs((yy / height) - 0.3 - 0.4 * (xx / width)) < 0.012
    rgb[river] = RIVER
    return np.ascontiguousarray(np.moveaxis(rgb, 2, 0))


def write_sample_imagery(path: str | Path, bounds: tuple[float, float, float, float], width: int = 2048,
                         height: int | None = None, crs: str = "EPSG:4326") -> Path:
    """Write the synthetic image covering `bounds` (minx, miny, maxx, maxy in `crs`) to `path`."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if height is None:
        height = max(1, round(width * (bounds[3] - bounds[1]) / (bounds[2] - bounds[0])))
    data = sample_pixels(width, height)
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8", "crs": crs,
        "transform": from_bounds(*bounds, width, height), "tiled": True, "blockxsize": 256, "blockysize": 256,
        "compress": "deflate", "photometric": "RGB", "interleave": "pixel",
    }
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        dst.build_overviews([2, 4, 8, 16], Resampling.average)
        dst.update_tags(source="datso synthetic sample imagery (not a real image)")
    return out
