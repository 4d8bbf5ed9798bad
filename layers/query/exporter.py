"""Export a layer to gpkg | geojson | shp | csv | kml in any registry CRS.

Filters are simple `field=value` pairs on the registry's queryables (values coerced with the field's type;
an array field matches when it contains the value) and an optional lon/lat bbox — never SQL from the user.
Geometries leave PostGIS as WKB in EPSG:4326 and are reprojected in Python with `gis.crs.transformer`, so
VN-2000 zones get the official Decision 05/2007 transformation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from gis.crs import get_crs
from gis.errors import BilingualError
from gis.io import FORMATS, DataFileError, reproject, resolve_crs, write_vector
from layers.catalog.registry import Layer, get_layer
from layers.ingest.validation import CoercionError, coerce_value


class ExportError(BilingualError):
    """Export options or a selection that cannot be exported (`datso export`, Folium maps): `status` is the
    HTTP status (400 bad option or filter, 413 a selection too large)."""


@dataclass
class ExportResult:
    path: Path
    rows: int
    crs: str
    seconds: float


def parse_where(layer: Layer, pairs: Sequence[str]) -> list[tuple[str, Any, bool]]:
    """["status=managed", "commune_code=86001"] -> [(field, coerced value, is_array)], checked against the
    layer's queryables."""
    out: list[tuple[str, Any, bool]] = []
    names = {f.name: f for f in layer.queryables}
    for pair in pairs:
        for part in [p for p in pair.split(";") if p.strip()]:
            if "=" not in part:
                raise ExportError(f"--where sai cú pháp: {part!r} (dùng truong=gia_tri)",
                                  f"bad --where {part!r} (use field=value)")
            name, value = (x.strip() for x in part.split("=", 1))
            f = names.get(name)
            if f is None:
                raise ExportError(f"--where: {name!r} không phải trường lọc được của lớp {layer.id}; dùng: "
                                  f"{', '.join(names)}",
                                  f"--where: {name!r} is not a queryable of layer {layer.id}; use one of: "
                                  f"{', '.join(names)}")
            try:
                if f.type == "array":
                    items = coerce_value(f, value)
                    v: Any = items[0] if items else None
                else:
                    v = coerce_value(f, value)
            except CoercionError as exc:
                raise ExportError(f"--where {name}: {exc.vi}", f"--where {name}: {exc.en}") from None
            allowed = f.enum or f.items_enum
            if allowed is not None and v not in allowed:
                raise ExportError(f"--where {name}: giá trị {v!r} không có; cho phép: {', '.join(allowed)}",
                                  f"--where {name}: unknown value {v!r}; allowed: {', '.join(allowed)}")
            out.append((name, v, f.type == "array"))
    return out


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    try:
        vals = [float(x) for x in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4 or vals[0] >= vals[2] or vals[1] >= vals[3]:
        raise ExportError("--bbox phải là minLon,minLat,maxLon,maxLat", "--bbox must be minLon,minLat,maxLon,maxLat")
    return vals[0], vals[1], vals[2], vals[3]


def fetch(conn: psycopg.Connection, layer: Layer, where: list[tuple[str, Any, bool]],
          bbox: tuple[float, float, float, float] | None, public_only: bool = False
          ) -> tuple[pd.DataFrame, np.ndarray]:
    cols = [f.name for f in (layer.public_fields if public_only else layer.fields)]
    conds: list[sql.Composable] = []
    params: list[Any] = []
    for name, value, is_array in where:
        if is_array:
            conds.append(sql.SQL("%s = ANY({})").format(sql.Identifier(name)))
        else:
            conds.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
        params.append(value)
    geom = sql.Identifier(layer.geometry_column)
    if bbox:
        conds.append(sql.SQL("{} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)").format(geom))
        params.extend(bbox)
    query = sql.SQL("SELECT {id}, {cols}, ST_AsBinary({g}) FROM {table}{where} ORDER BY {id}").format(
        id=sql.Identifier(layer.id_column), cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols), g=geom,
        table=sql.Identifier(layer.table),
        where=(sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds)) if conds else sql.SQL(""))
    rows = conn.execute(query, params).fetchall()
    names = [layer.id_column, *cols]
    frame = pd.DataFrame([r[:-1] for r in rows], columns=names)
    for c in frame.columns:
        if len(frame) and frame[c].map(lambda v: type(v).__name__ == "Decimal").any():
            frame[c] = frame[c].map(lambda v: None if v is None else float(v))
    wkb = np.array([None if r[-1] is None else bytes(r[-1]) for r in rows], dtype=object)
    geoms = shapely.from_wkb(wkb) if len(wkb) else np.array([], dtype=object)
    return frame, np.asarray(geoms, dtype=object)


def export_layer(dsn: str, layer_id: str, fmt: str, out: str | Path, *, crs: str | None = None,
                 where: Sequence[str] = (), bbox: str | None = None, public_only: bool = False) -> ExportResult:
    """Export a layer; raises ExportError (bilingual) for bad options, DataFileError for file problems.

    Every registry field is written (an administrator's export), or only the public ones with `public_only`.
    """
    t0 = time.perf_counter()
    layer = get_layer(layer_id)
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportError(f"Định dạng không hỗ trợ: {fmt}; dùng {', '.join(FORMATS)}",
                          f"unsupported format {fmt}; use {', '.join(FORMATS)}")
    target = resolve_crs(crs) if crs else get_crs("OGC:CRS84")
    if fmt == "kml" and target.key not in ("OGC:CRS84", "EPSG:4326"):
        raise DataFileError("KML luôn dùng WGS 84: bỏ --crs hoặc chọn EPSG:4326",
                            "KML is always WGS 84: drop --crs or use EPSG:4326")
    conds = parse_where(layer, where)
    box = parse_bbox(bbox)
    with psycopg.connect(dsn) as conn:
        frame, geoms = fetch(conn, layer, conds, box, public_only)
    out_geoms = reproject(geoms, get_crs("OGC:CRS84"), target)
    path = write_vector(frame, out_geoms, out, fmt, target, layer.id)
    return ExportResult(Path(path), len(frame), target.key, time.perf_counter() - t0)


__all__ = ["ExportError", "ExportResult", "export_layer", "fetch", "parse_bbox", "parse_where"]
