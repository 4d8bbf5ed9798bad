"""Whole selections to files: ONE path for `datso export` and the items downloads
(`/collections/{id}/items?f=csv|gpkg|fgb|shp|kml`, `?f=geojson&download=true`).

    d = Download(layer, selection, fields, crs=get_crs("EPSG:9210"))
    with connect("reader", dsn=dsn) as conn:
        n = begin(conn, d, max_features)          # the matching count; past the ceiling: TooManyFeatures (413)
        write_file(batches(conn, d), columns(d), "out.gpkg", "gpkg", d.crs, layer.id, ...)

Rows are read with a server-side cursor in batches of `BATCH` (REPEATABLE READ, read only: the count and
the rows are one snapshot), geometries leave PostGIS as WKB in EPSG:4326 and are reprojected in Python with
`gis.crs.transformer` (official VN-2000 parameters), then `gis.writers` writes them typed from the registry.
Without `limit` a download is the whole selection; a given `limit`/`offset` is honoured.

`Download(labels="vi"|"en")` (CSV `labels=true`) is the same rows for people: column titles from the registry
in that language, values as `layers.catalog.formats` shows them (labels, names, dd/mm/yyyy, 1.234,5) and
references by the referenced features' own fields (`layers.query.refs.ref_sql`, in the rows' statement, so a
batch still bounds the memory); `datso export` and the other formats keep the machine columns.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql
from psycopg.types.datetime import DateLoader, TimestamptzLoader

from gis.crs import CrsDef, geojson_crs, get_crs
from gis.errors import BilingualError
from gis.io import DataFileError, reproject
from gis.writers import (
    FILE_FORMATS,
    STREAMED,
    WGS84_ONLY,
    Batch,
    Column,
    Kind,
    csv_chunks,
    dbf_names,
    geojson_chunks,
    write_file,
)
from layers.catalog.formats import readable_formatter, readable_title
from layers.catalog.registry import Layer, LayerField
from layers.query.refs import ref_sql
from layers.query.selection import Selection
from layers.store.connect import connect

BATCH = 5_000
CRS84 = get_crs("OGC:CRS84")


class TooManyFeatures(BilingualError):
    """A download past the configured ceiling (`DATSO_DOWNLOAD_MAX_FEATURES`): 413, before anything is written."""

    status = 413

    def __init__(self, matched: int, maximum: int) -> None:
        vi_n, en_n = f"{matched:,}".replace(",", "."), f"{matched:,}"
        vi_m, en_m = f"{maximum:,}".replace(",", "."), f"{maximum:,}"
        super().__init__(
            f"Vùng chọn có {vi_n} đối tượng, vượt giới hạn tải về {vi_m}. Hãy thu hẹp: thêm bbox=…, "
            "filter=… (CQL2), datetime=… hoặc trường=giá trị, hoặc tải từng phần với limit và offset.",
            f"The selection matches {en_n} features, more than the download limit of {en_m}. Narrow it with "
            "bbox=…, filter=… (CQL2), datetime=… or field=value, or download it in parts with limit and offset.")
        self.matched, self.maximum = matched, maximum

    def members(self) -> dict[str, Any]:
        return {"numberMatched": self.matched, "limit": self.maximum}


@dataclass
class Download:
    layer: Layer
    selection: Selection | None = None
    fields: list[LayerField] | None = None            # None: the public fields
    crs: CrsDef = CRS84
    order: list[tuple[str, bool]] = field(default_factory=list)   # (column, descending); id always last
    limit: int | None = None
    offset: int = 0
    feature_id: int | None = None                      # one feature (the item page's downloads)
    labels: str | None = None                          # "vi"/"en": readable titles and values (CSV labels=true)

    @property
    def out_fields(self) -> list[LayerField]:
        return list(self.layer.public_fields) if self.fields is None else self.fields


def _kind(f: LayerField) -> Kind:
    if f.type == "integer":
        return "int64" if f.int_range is None or f.int_range[1] > 2**31 - 1 else "int32"
    return {"number": "float", "boolean": "bool", "date": "date", "date-time": "datetime", "array": "json",
            "object": "json"}.get(f.type, "string")   # type: ignore[return-value]


def titles(d: Download) -> list[str]:
    """The fields' column titles: their names, or with `labels` their titles in that language (a title two
    fields share is told apart by the field's name)."""
    if d.labels is None:
        return [f.name for f in d.out_fields]
    out = [readable_title(f, d.labels) for f in d.out_fields]
    taken = {d.layer.id_column}
    for i, (f, title) in enumerate(zip(d.out_fields, out, strict=True)):
        if title in taken or out.count(title) > 1:
            out[i] = f"{title} [{f.name}]"
        taken.add(out[i])
    return out


def columns(d: Download) -> list[Column]:
    """The file's columns, typed from the registry: the id, then the fields (with `labels`: text)."""
    kinds = [_kind(f) if d.labels is None else "string" for f in d.out_fields]
    return [Column(d.layer.id_column, "int64"),
            *[Column(name, kind) for name, kind in zip(titles(d), kinds, strict=True)]]   # type: ignore[arg-type]


def dbf(d: Download) -> dict[str, str]:
    """Shapefile column names from the whole layer (a subset of fields keeps the names `datso import` reads)."""
    return dbf_names([d.layer.id_column, *d.layer.field_names])


def _where(d: Download) -> tuple[sql.Composable, dict[str, Any]]:
    where: sql.Composable = sql.SQL("TRUE")
    params: dict[str, Any] = {}
    if d.selection is not None:
        tr = d.selection.translator(0, "t.", style="psycopg")
        where = sql.SQL(d.selection.where(tr))   # type: ignore[arg-type]  # registry identifiers + placeholders
        params = tr.named_params()
    if d.feature_id is not None:
        where = sql.SQL("({}) AND t.{} = %(download_fid)s").format(where, sql.Identifier(d.layer.id_column))
        params["download_fid"] = d.feature_id
    return where, params


def _limit(d: Download) -> sql.Composable:
    return sql.SQL(" LIMIT {} OFFSET {}").format(
        sql.Literal(d.limit) if d.limit is not None else sql.SQL("ALL"), sql.Literal(int(d.offset)))


def count_sql(d: Download) -> tuple[sql.Composed, dict[str, Any]]:
    where, params = _where(d)
    inner = sql.SQL("SELECT 1 FROM {t} t WHERE {w}").format(t=sql.Identifier(d.layer.table), w=where)
    if d.limit is not None or d.offset:
        inner = sql.SQL("{}{}").format(inner, _limit(d))
    return sql.SQL("SELECT count(*) FROM ({}) c").format(inner), params


def rows_sql(d: Download) -> tuple[sql.Composed, dict[str, Any]]:
    where, params = _where(d)
    ident = sql.Identifier
    keys = [sql.SQL("t.{} {}").format(ident(name), sql.SQL("DESC" if desc else "ASC")) for name, desc in d.order]
    if not any(name == d.layer.id_column for name, _ in d.order):
        keys.append(sql.SQL("t.{}").format(ident(d.layer.id_column)))
    q = sql.SQL("SELECT t.{id}, {cols}, ST_AsBinary(t.{g}) FROM {t} t WHERE {w} ORDER BY {keys}{lim}").format(
        id=ident(d.layer.id_column), cols=sql.SQL(", ").join(_column_sql(d, f) for f in d.out_fields),
        g=ident(d.layer.geometry_column), t=ident(d.layer.table), w=where, keys=sql.SQL(", ").join(keys),
        lim=_limit(d) if d.limit is not None or d.offset else sql.SQL(""))
    return q, params


def _column_sql(d: Download, f: LayerField) -> sql.Composable:
    if d.labels is not None and f.ref is not None:     # the referenced features' declared fields (JSON)
        return sql.SQL(ref_sql(f, "t."))   # type: ignore[arg-type]  # registry identifiers only
    return sql.SQL("t.{}").format(sql.Identifier(f.name))


class _SafeDate(DateLoader):
    """A date Python cannot hold (BC, year > 9999) stays its text instead of failing the whole download."""

    def load(self, data: Any) -> Any:
        try:
            return super().load(data)
        except psycopg.DataError:
            return bytes(data).decode()


class _SafeTimestamptz(TimestamptzLoader):
    def load(self, data: Any) -> Any:
        try:
            return super().load(data)
        except psycopg.DataError:
            return bytes(data).decode()


def prepare(conn: psycopg.Connection) -> None:
    """Session set-up of a download connection: one read-only snapshot, safe date loaders, UTC instants."""
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    conn.adapters.register_loader("date", _SafeDate)
    conn.adapters.register_loader("timestamptz", _SafeTimestamptz)


def count(conn: psycopg.Connection, d: Download) -> int:
    q, params = count_sql(d)
    row = conn.execute(q, params).fetchone()
    return int(row[0]) if row else 0


def begin(conn: psycopg.Connection, d: Download, maximum: int | None) -> int:
    """The number of rows the download will hold; past `maximum`: TooManyFeatures, nothing written."""
    prepare(conn)
    n = count(conn, d)
    if maximum is not None and n > maximum:
        raise TooManyFeatures(n, maximum)
    return n


def batches(conn: psycopg.Connection, d: Download, size: int = BATCH) -> Iterator[Batch]:
    """The selected rows in batches (a server-side cursor), geometries reprojected to `d.crs`."""
    q, params = rows_sql(d)
    names = [c.name for c in columns(d)]
    shown = [] if d.labels is None else [(name, readable_formatter(f, d.labels))
                                         for name, f in zip(names[1:], d.out_fields, strict=True)]
    with conn.cursor(name="datso_download") as cur:
        cur.itersize = size
        cur.execute(q, params)
        while True:
            rows = cur.fetchmany(size)
            if not rows:
                break
            values = {name: [r[i] for r in rows] for i, name in enumerate(names)}
            for name, text in shown:
                values[name] = [text(v) for v in values[name]]
            wkb = np.array([None if r[-1] is None else bytes(r[-1]) for r in rows], dtype=object)
            geoms = shapely.from_wkb(wkb)
            yield Batch(values, reproject(geoms, CRS84, d.crs))


def _crs_member(d: Download) -> dict[str, Any]:
    """GDAL/geopandas read a non-CRS84 GeoJSON's CRS from the legacy `crs` member (gis.crs.geojson_crs)."""
    member = geojson_crs(d.crs)
    return {"crs": member} if member is not None else {}


def export(conn: psycopg.Connection, d: Download, fmt: str, out: str | Path,
           maximum: int | None = None, head: dict[str, Any] | None = None) -> tuple[Path, int]:
    """Write the download to `out` (any of `gis.writers.FILE_FORMATS`): (path written, rows)."""
    n = begin(conn, d, maximum)
    extra = {**_crs_member(d), "numberMatched": n, "numberReturned": n, **(head or {})} if fmt == "geojson" else None
    path = write_file(batches(conn, d), columns(d), out, fmt, d.crs, d.layer.id, d.layer.geometry_type,
                      d.layer.id_column, extra, dbf(d))
    return path, n


# -- the API's two ways: a temporary file (gpkg, fgb, shp, kml) or a stream (geojson, csv) ------------------

@dataclass
class Prepared:
    count: int
    media: str
    filename: str
    path: Path | None = None                 # a temporary file to send, then remove (`cleanup`)
    chunks: Iterator[bytes] | None = None    # a stream to send (closes its connection when exhausted)
    tmpdir: str | None = None

    def cleanup(self) -> None:
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def open_download(dsn: str, d: Download, fmt: str, maximum: int | None, statement_timeout_ms: int,
                  connect_timeout: int | None = None, head: dict[str, Any] | None = None) -> Prepared:
    """Count (413 past `maximum`), then write a temporary file or open a stream. Blocking: run it in a thread."""
    spec = FILE_FORMATS[fmt]
    if fmt in WGS84_ONLY and d.crs.key not in ("OGC:CRS84", "EPSG:4326"):
        raise DataFileError("KML luôn dùng WGS 84: bỏ tham số crs hoặc chọn EPSG:4326",
                            "KML is always WGS 84: drop the crs parameter or use EPSG:4326")
    filename = f"{d.layer.id}{spec.suffix}"
    stack = ExitStack()
    try:
        conn = stack.enter_context(connect("reader", dsn=dsn, statement_timeout_ms=statement_timeout_ms,
                                           connect_timeout=connect_timeout))
        n = begin(conn, d, maximum)
    except BaseException:
        stack.close()
        raise
    if fmt in STREAMED:
        extra = {**_crs_member(d), "numberMatched": n, "numberReturned": n, **(head or {})}

        def stream() -> Generator[bytes, None, None]:
            with stack:
                rows = batches(conn, d)
                yield from (csv_chunks(rows, columns(d)) if fmt == "csv"
                            else geojson_chunks(rows, columns(d), d.layer.id_column, extra))

        gen = stream()
        try:
            head_chunk = next(gen)      # started: closing it (or collecting it) closes the connection
        except BaseException:
            stack.close()
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield head_chunk
                yield from gen
            finally:
                gen.close()

        return Prepared(n, spec.media, filename, chunks=chunks())
    tmpdir = tempfile.mkdtemp(prefix="datso-dl-")
    try:
        with stack:
            path = write_file(batches(conn, d), columns(d), Path(tmpdir) / filename, fmt, d.crs, d.layer.id,
                              d.layer.geometry_type, d.layer.id_column, dbf=dbf(d))
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return Prepared(n, spec.media, filename, path=path, tmpdir=tmpdir)


__all__ = ["BATCH", "FILE_FORMATS", "Download", "Prepared", "TooManyFeatures", "batches", "begin", "columns", "count", "export",
           "open_download"]
