"""Export a layer to gpkg | fgb | geojson | shp | csv | kml in any registry CRS (the writer path of the items
downloads: `layers.query.download`).

Filters are `field=value` pairs on the registry's queryables and an optional lon/lat bbox, read by the one
selection parser (`layers.query.selection`, the items API's rules) — never SQL from the user.
Geometries leave PostGIS as WKB in EPSG:4326 and are reprojected in Python with `gis.crs.transformer`, so
VN-2000 zones get the official Decision 05/2007 transformation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from gis.crs import get_crs
from gis.errors import BilingualError
from gis.io import DataFileError, resolve_crs
from gis.writers import FILE_FORMATS
from layers.catalog.registry import Layer, get_layer
from layers.query import download
from layers.query.cql2 import CqlError
from layers.query.selection import Selection, parse_selection, parse_where
from layers.store.connect import connect


class ExportError(BilingualError):
    """Export options or a selection that cannot be exported (`datso export`, Folium maps): `status` is the
    HTTP status (400 bad option or filter, 413 a selection too large)."""


@dataclass
class ExportResult:
    path: Path
    rows: int
    crs: str
    seconds: float


def fetch(conn: psycopg.Connection, sel: Selection, public_only: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """The selected rows (every field, or the public ones) ordered by id, and their geometries (EPSG:4326)."""
    layer = sel.layer
    cols = [f.name for f in (layer.public_fields if public_only else layer.fields)]
    tr = sel.translator(0, "t.", style="psycopg")
    where = sel.where(tr)
    geom = sql.Identifier(layer.geometry_column)
    query = sql.SQL("SELECT {id}, {cols}, ST_AsBinary({g}) FROM {table} t WHERE {where} ORDER BY {id}").format(
        id=sql.Identifier(layer.id_column), cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols), g=geom,
        table=sql.Identifier(layer.table), where=sql.SQL(where))   # type: ignore[arg-type]  # registry + cql2
    rows = conn.execute(query, tr.named_params()).fetchall()
    names = [layer.id_column, *cols]
    frame = pd.DataFrame([r[:-1] for r in rows], columns=names)
    for c in frame.columns:
        if len(frame) and frame[c].map(lambda v: type(v).__name__ == "Decimal").any():
            frame[c] = frame[c].map(lambda v: None if v is None else float(v))
    wkb = np.array([None if r[-1] is None else bytes(r[-1]) for r in rows], dtype=object)
    geoms = shapely.from_wkb(wkb) if len(wkb) else np.array([], dtype=object)
    return frame, np.asarray(geoms, dtype=object)


def cli_selection(layer: Layer, where: Sequence[str] = (), bbox: str | None = None) -> Selection:
    """The selection of `datso export` / `read_layer`: `--where field=value` pairs and a lon/lat `--bbox`,
    read by the one selection parser with the items API's rules (QueryError)."""
    return parse_selection(layer, bbox=bbox or None, equals=parse_where(list(where)))


def export_layer(dsn: str, layer_id: str, fmt: str, out: str | Path, *, crs: str | None = None,
                 where: Sequence[str] = (), bbox: str | None = None, public_only: bool = False) -> ExportResult:
    """Export a layer; raises ExportError (bilingual) for bad options, DataFileError for file problems.

    Every registry field is written (an administrator's export), or only the public ones with `public_only`.
    """
    t0 = time.perf_counter()
    layer = get_layer(layer_id)
    fmt = fmt.lower()
    if fmt not in FILE_FORMATS:
        raise ExportError(f"Định dạng không hỗ trợ: {fmt}; dùng {', '.join(FILE_FORMATS)}",
                          f"unsupported format {fmt}; use {', '.join(FILE_FORMATS)}")
    target = resolve_crs(crs) if crs else get_crs("OGC:CRS84")
    if fmt == "kml" and target.key not in ("OGC:CRS84", "EPSG:4326"):
        raise DataFileError("KML luôn dùng WGS 84: bỏ --crs hoặc chọn EPSG:4326",
                            "KML is always WGS 84: drop --crs or use EPSG:4326")
    try:
        sel = cli_selection(layer, where, bbox)
    except CqlError as exc:   # export_layer's contract: bad options are an ExportError
        raise ExportError(exc.vi, exc.en) from None
    d = download.Download(layer, None if sel.empty else sel,
                          list(layer.public_fields if public_only else layer.fields), target)
    with connect("reader", dsn=dsn) as conn:
        path, rows = download.export(conn, d, fmt, out)
    return ExportResult(Path(path), rows, target.key, time.perf_counter() - t0)


__all__ = ["ExportError", "ExportResult", "cli_selection", "export_layer", "fetch"]
