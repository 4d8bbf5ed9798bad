"""Zonal statistics of a raster layer per feature, with partial-pixel coverage, by exactextract.

Each feature (stored in EPSG:4326) is reprojected into the raster's CRS with pyproj from the CRS GDAL reads
in the file (for a VN-2000 raster registered by `datso raster add`: the official `+towgs84`), and exactextract
weighs every pixel by the fraction of it the polygon covers: `count` is the sum of those fractions (covered
pixels), `mean`/`std` are coverage-weighted, `min`/`max` over the pixels touched, `p10`/`p50`/`p90` the
coverage-weighted quantiles. A band-math `expression` (`(b2-b1)/(b2+b1)`) is evaluated by rio-tiler's
expression code on the window the features cover, then measured the same way.

The API (`/collections/{id}/items/{fid}/stats`, `/collections/{id}/stats`) and `datso stats` call `zonal()`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from psycopg import sql
from pyproj import CRS, Transformer
from rasterio.io import MemoryFile
from rasterio.windows import Window, from_bounds

from gis.errors import BilingualError
from layers.catalog.registry import Layer
from layers.query.selection import Selection
from layers.store.connect import connect
from layers.store.rasters import RasterError, RasterInfo

STATS = ("count", "mean", "min", "max", "std", "p10", "p50", "p90")
_OPS = ["count", "mean", "min", "max", "stdev", "quantile(q=0.1)", "quantile(q=0.5)", "quantile(q=0.9)"]
MAX_WINDOW_PIXELS = 30_000_000     # an expression window (float64): about 240 MB at most


class TooManyFeatures(BilingualError):
    status = 413


@dataclass(frozen=True)
class What:
    """What is measured: one band (1-based) or an expression over bands b1…bN."""

    band: int = 1
    expression: str | None = None

    @property
    def label(self) -> str:
        return self.expression or f"b{self.band}"


def fetch_features(dsn: str, layer: Layer, sel: Selection | None, limit: int,
                   feature_id: int | None = None, offset: int = 0,
                   paged: bool = False) -> tuple[list[int], np.ndarray, bool]:
    """(ids, EPSG:4326 geometries, whether more follow) of the selection (or of one feature), ordered by id.

    Unpaged, more than `limit` features is TooManyFeatures (413) before any raster is read; `paged`: the page of
    at most `limit` features from `offset`, and whether another page follows."""
    params: dict[str, Any] = {}
    where: sql.Composable
    if feature_id is not None:
        where = sql.SQL("t.{id} = %(fid)s").format(id=sql.Identifier(layer.id_column))
        params["fid"] = feature_id
    elif sel is not None:
        tr = sel.translator(0, "t.", style="psycopg")
        where = sql.SQL(sel.where(tr))   # type: ignore[arg-type]  # registry + cql2 (parameterised)
        params.update(tr.named_params())
    else:
        where = sql.SQL("TRUE")
    query = sql.SQL("SELECT t.{id}, ST_AsBinary(t.{g}) FROM {table} t WHERE {where} ORDER BY t.{id} "
                    "LIMIT {n} OFFSET {o}").format(
        id=sql.Identifier(layer.id_column), g=sql.Identifier(layer.geometry_column),
        table=sql.Identifier(layer.table), where=where, n=sql.Literal(limit + 1), o=sql.Literal(offset))
    with connect("reader", dsn=dsn) as conn:
        rows = conn.execute(query, params).fetchall()
    more = len(rows) > limit
    if more and not paged:
        raise TooManyFeatures(f"Quá nhiều đối tượng cho thống kê (tối đa {limit}); hãy lọc bớt (filter=, bbox=) "
                              "hoặc lấy từng trang (limit=, offset=)",
                              f"Too many features for statistics (at most {limit}); narrow the selection "
                              "(filter=, bbox=) or take it page by page (limit=, offset=)")
    rows = rows[:limit]
    ids = [int(r[0]) for r in rows]
    wkb = np.array([None if r[1] is None else bytes(r[1]) for r in rows], dtype=object)
    geoms = shapely.from_wkb(wkb) if len(wkb) else np.array([], dtype=object)
    return ids, np.asarray(geoms, dtype=object), more


def to_raster_crs(info: RasterInfo, geoms: np.ndarray) -> np.ndarray:
    """EPSG:4326 geometries in the raster's CRS (as GDAL reads the file: VN-2000 with the official shift)."""
    tr = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_wkt(info.crs_wkt), always_xy=True)
    return np.asarray(shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))),
                      dtype=object)


def _expression_raster(info: RasterInfo, expression: str, bounds: tuple[float, float, float, float]) -> MemoryFile:
    """A single-band float64 in-memory GeoTIFF: `expression` over the window covering `bounds` (nodata NaN)."""
    from rio_tiler.expression import apply_expression, get_expression_blocks, parse_expression

    with rasterio.open(info.path) as src:
        w = from_bounds(*bounds, transform=src.transform)
        c0, r0 = max(0, math.floor(w.col_off) - 1), max(0, math.floor(w.row_off) - 1)
        c1 = min(src.width, math.ceil(w.col_off + w.width) + 1)
        r1 = min(src.height, math.ceil(w.row_off + w.height) + 1)
        win = Window(c0, r0, max(1, c1 - c0), max(1, r1 - r0))   # outside the raster: one pixel, no cover
        if win.width * win.height > MAX_WINDOW_PIXELS:
            raise TooManyFeatures("Vùng thống kê quá lớn cho một biểu thức; hãy lọc bớt",
                                  "The area is too large for an expression; narrow the selection")
        idx = sorted(set(parse_expression(expression)))
        data = src.read(indexes=idx, window=win, masked=True).astype("float64")
        transform, crs = src.window_transform(win), src.crs
    full = np.ma.masked_all((info.count, data.shape[1], data.shape[2]), dtype="float64")
    for k, i in enumerate(idx):
        full[i - 1] = data[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = apply_expression(get_expression_blocks(expression), [f"b{i}" for i in range(1, info.count + 1)],
                               full.filled(np.nan))
    arr = out[0].astype("float64")
    arr[~np.isfinite(arr) | np.ma.getmaskarray(full[idx[0] - 1])] = np.nan
    mem = MemoryFile()
    with mem.open(driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype="float64", crs=crs,
                  transform=transform, nodata=float("nan")) as dst:
        dst.write(arr, 1)
    return mem


def zonal(info: RasterInfo, ids: Sequence[int], geoms: np.ndarray, what: What) -> list[dict[str, Any]]:
    """One dict per feature: `id` and STATS (None where the feature covers no valid pixel)."""
    from exactextract import exact_extract

    if not len(ids):
        return []
    if what.expression is None and not 1 <= what.band <= info.count:
        raise RasterError(400, f"band: ảnh có {info.count} kênh", f"band: the raster has {info.count} bands")
    local = to_raster_crs(info, geoms)
    frame = gpd.GeoDataFrame({"fid": list(ids)}, geometry=list(local), crs=CRS.from_wkt(info.crs_wkt))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if what.expression is not None:
            # features grouped by the 512-pixel block their centre falls in: one window per group, so a few
            # areas spread over a province do not evaluate the whole province, and many do not open many windows
            cell = 512 * max(info.resolution)
            centre = shapely.centroid(local)
            key = np.floor(shapely.get_x(centre) / cell) * 1e6 + np.floor(shapely.get_y(centre) / cell)
            out = []
            for k in np.unique(key):
                part = frame.iloc[np.flatnonzero(key == k)]
                pb = part.total_bounds
                with _expression_raster(info, what.expression, (pb[0], pb[1], pb[2], pb[3])) as mem, \
                        mem.open() as ds:
                    out.append(pd.DataFrame(exact_extract(ds, part, _OPS, include_cols=["fid"], output="pandas")))
            res = pd.concat(out, ignore_index=True)
        else:
            from exactextract.raster import RasterioRasterSource

            with rasterio.open(info.path) as ds:
                res = exact_extract(RasterioRasterSource(ds, band_idx=what.band), frame, _OPS,
                                    include_cols=["fid"], output="pandas")
    by_id = {int(r["fid"]): r for r in pd.DataFrame(res).to_dict("records")}
    return [_row(by_id.get(int(i), {"fid": i})) for i in ids]   # no row: no pixel


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _row(r: dict[str, Any]) -> dict[str, Any]:
    count = _num(r.get("count")) or 0.0
    empty = count == 0
    return {"id": int(r["fid"]), "count": count,
            **{k: None if empty else _num(r.get(c)) for k, c in
               (("mean", "mean"), ("min", "min"), ("max", "max"), ("std", "stdev"), ("p10", "quantile_10"),
                ("p50", "quantile_50"), ("p90", "quantile_90"))}}
