"""Streamed, typed writers of vector files: batches of rows in, a file (GeoPackage, FlatGeobuf, zipped
Shapefile, KML) or byte chunks (GeoJSON, CSV) out, with memory bounded by one batch.

The column types come from a schema (`Column(name, kind)`), never from the data, so an all-empty column keeps
its type and an integer stays an integer. What each format can hold, and how what it cannot is written, is
in docs/formats.md; in short:

| kind      | GPKG / FGB            | Shapefile                 | KML          | GeoJSON        | CSV           |
|-----------|-----------------------|---------------------------|--------------|----------------|---------------|
| date      | Date (FGB: DateTime 00:00) | Date                 | ISO text     | "YYYY-MM-DD"   | ISO text      |
| datetime  | DateTime with offset  | ISO 8601 text             | ISO text     | ISO 8601       | ISO 8601      |
| int32/64  | Integer / Integer64   | Integer / Integer64       | Integer/text | number         | text          |
| json      | JSON text             | JSON text (254 chars max) | JSON text    | native array   | JSON text     |

Arrays and objects are written as JSON text (`["ONT","CLN"]`, `[12,15]`) wherever the format has no native
list: GDAL's StringList/IntegerList are not portable (GPKG and Shapefile have none; GDAL turns them into text
in its own formats), JSON text is read back by every client and by `datso import`.

The file's CRS is set in ONE place (`_file_crs`), from `gis.io.crs_metadata`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pyogrio
import shapely
from pyogrio.raw import write as ogr_write

from gis.crs import CrsDef, prj_wkt
from gis.io import DataFileError, crs_metadata

Kind = Literal["int32", "int64", "float", "bool", "date", "datetime", "string", "json"]
VN_TZ = dt.timezone(dt.timedelta(hours=7))


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


@dataclass
class Batch:
    """Rows as Python values per column (date, aware datetime, Decimal, list, dict, str, None...) and their
    geometries (shapely, already in the output CRS, x = lon/easting)."""
    values: dict[str, list[Any]]
    geoms: np.ndarray

    def __len__(self) -> int:
        return len(self.geoms)


@dataclass(frozen=True)
class FileFormat:
    key: str
    media: str
    suffix: str
    driver: str | None          # OGR driver; None: written here as text chunks
    label: str


FILE_FORMATS: dict[str, FileFormat] = {
    "geojson": FileFormat("geojson", "application/geo+json", ".geojson", None, "GeoJSON"),
    "csv": FileFormat("csv", "text/csv; charset=utf-8", ".csv", None, "CSV"),
    "gpkg": FileFormat("gpkg", "application/geopackage+sqlite3", ".gpkg", "GPKG", "GeoPackage"),
    "fgb": FileFormat("fgb", "application/flatgeobuf", ".fgb", "FlatGeobuf", "FlatGeobuf"),
    "shp": FileFormat("shp", "application/zip", ".zip", "ESRI Shapefile", "Shapefile (.zip)"),
    "kml": FileFormat("kml", "application/vnd.google-earth.kml+xml", ".kml", "KML", "KML"),
}
STREAMED = ("geojson", "csv")
KML_ID = "feature_id"     # the id column's name in KML (LIBKML reads a field `id` as the Placemark's id)
WGS84_ONLY = ("kml",)
_TYPE_NAMES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon"}
OGR_GEOMETRY = {"Point": "Point", "MultiPoint": "MultiPoint", "LineString": "LineString",
                "MultiLineString": "MultiLineString", "Polygon": "Polygon", "MultiPolygon": "MultiPolygon"}


def _file_crs(crs: CrsDef) -> str:
    """The CRS written into a file (GeoPackage srs, .prj, FlatGeobuf header): one call, one home."""
    return crs_metadata(crs)


# ------------------------------------------------------------------------------------------- values
def _iso(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return (v.astimezone(VN_TZ) if v.tzinfo else v).isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _json_default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    raise TypeError(type(v).__name__)


def json_text(v: Any) -> str | None:
    return None if v is None else orjson.dumps(v, default=_json_default).decode()


def text_cell(kind: Kind, v: Any) -> str:
    """A value as CSV text: ISO dates, JSON arrays, true/false; '' for null."""
    if v is None:
        return ""
    if kind == "json":
        return json_text(v) or ""
    if kind == "bool":
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return str(float(v)) if kind == "float" else str(v)
    return str(_iso(v))


def dbf_names(names: Iterable[str]) -> dict[str, str]:
    """Shapefile (dBase) field names: at most 10 characters, unique. The first name of a truncated group
    keeps the plain 10-character prefix (what GDAL writes); the next ones end in _1, _2... `datso import`
    reads them back with the same function."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        short = name[:10]
        i = 1
        while short.lower() in used:
            suffix = f"_{i}"
            short = name[:10 - len(suffix)] + suffix
            i += 1
        used.add(short.lower())
        out[name] = short
    return out


def _ogr_fields(batch: Batch, columns: list[Column], fmt: str) -> tuple[list[np.ndarray], list[Any],
                                                                      dict[str, np.ndarray]]:
    text_times = fmt in ("shp", "kml")          # no date-time type (Shapefile) or a lossy one (KML)
    text_dates = fmt == "kml"
    data: list[np.ndarray] = []
    masks: list[Any] = []
    offsets: dict[str, np.ndarray] = {}
    for c in columns:
        vals = batch.values[c.name]
        n = len(vals)
        missing = np.fromiter((v is None for v in vals), dtype=bool, count=n)
        if c.kind in ("int32", "int64"):
            arr = np.array([0 if v is None else int(v) for v in vals], dtype=c.kind)
            data.append(arr)
            masks.append(missing)
        elif c.kind == "float":
            data.append(np.array([np.nan if v is None else float(v) for v in vals], dtype="float64"))
            masks.append(missing)
        elif c.kind == "bool":
            data.append(np.array([bool(v) for v in vals], dtype=bool))
            masks.append(missing)
        elif c.kind == "date" and not text_dates:
            # a value outside Python's calendar (read as text, e.g. a BC date) is written as null here
            data.append(np.array([v if isinstance(v, dt.date) else None for v in vals], dtype="datetime64[D]"))
            masks.append(None)
        elif c.kind == "datetime" and not text_times:
            # in UTC (GDAL's time-zone flag 100): GeoPackage requires it, FlatGeobuf keeps the same instant
            utc = [v.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(v, dt.datetime) else None for v in vals]
            data.append(np.array(utc, dtype="datetime64[ms]"))
            offsets[c.name] = np.full(n, 100, dtype=np.int64)
            masks.append(None)
        elif c.kind == "json":
            data.append(np.array([json_text(v) for v in vals], dtype=object))
            masks.append(None)
        else:
            data.append(np.array([None if v is None else str(_iso(v)) for v in vals], dtype=object))
            masks.append(None)
    return data, masks, offsets


# ------------------------------------------------------------------------------------------- OGR files
class _OgrFile:
    """One layer written batch by batch (the first batch creates it, the next ones append)."""

    def __init__(self, path: Path, fmt: str, columns: list[Column], crs: CrsDef, layer_name: str,
                 geometry_type: str, dbf: dict[str, str] | None = None, id_name: str | None = None) -> None:
        self.path, self.fmt, self.columns, self.crs, self.layer_name = path, fmt, columns, crs, layer_name
        self.geometry_type = OGR_GEOMETRY.get(geometry_type, "Unknown")
        self.mixed = self.geometry_type == "Unknown"
        self.names = [c.name for c in columns]
        if fmt == "shp":
            short = {**dbf_names(self.names), **(dbf or {})}
            self.names = [short[n] for n in self.names]
        if fmt == "kml" and id_name in self.names:
            # LIBKML takes a field called `id` for the Placemark's own id (renumbered): ours keeps its value
            self.names[self.names.index(id_name)] = KML_ID
        self.driver = FILE_FORMATS[fmt].driver
        if fmt == "kml" and "LIBKML" in pyogrio.list_drivers(write=True):
            self.driver = "LIBKML"
        self.created = False

    def _single_type(self, geoms: np.ndarray) -> str | None:
        """The one geometry type of a batch (a Shapefile holds one), None without geometries."""
        present = geoms[~shapely.is_missing(geoms)]
        kinds = set(shapely.get_type_id(present).tolist()) if len(present) else set()
        if len(kinds) > 1 or (self.created and kinds and self.geometry_type != _TYPE_NAMES.get(kinds.copy().pop())):
            raise DataFileError("Shapefile chỉ chứa một loại hình học; vùng chọn này có nhiều loại (điểm và vùng): "
                                "hãy tải GeoPackage (f=gpkg) hoặc lọc một loại",
                                "a Shapefile holds one geometry type and this selection mixes several (points "
                                "and areas): download a GeoPackage (f=gpkg) or filter one type")
        return _TYPE_NAMES.get(kinds.pop(), "Unknown") if kinds else None

    def write(self, batch: Batch) -> None:
        if self.created and len(batch) == 0:
            return
        data, masks, offsets = _ogr_fields(batch, self.columns, self.fmt)
        geoms = np.asarray(batch.geoms, dtype=object)
        if self.fmt == "shp" and self.mixed:
            single = self._single_type(geoms)
            if single and not self.created:
                self.geometry_type = single
        wkb = shapely.to_wkb(geoms) if len(geoms) else np.array([], dtype=object)
        kw: dict[str, Any] = {"encoding": "UTF-8"} if self.fmt == "shp" else {}
        if self.fmt == "fgb" and not self.created and shapely.is_missing(geoms).any():
            # FlatGeobuf's spatial index refuses features without geometry (records, lots): no index then
            kw["layer_options"] = {"SPATIAL_INDEX": "NO"}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Nn]ormalized/laundered field name.*")
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            ogr_write(str(self.path), wkb, field_data=data, fields=self.names, field_mask=masks,
                      layer=self.layer_name, driver=self.driver, geometry_type=self.geometry_type,
                      crs=_file_crs(self.crs), append=self.created, gdal_tz_offsets=offsets,
                      promote_to_multi=self.geometry_type.startswith("Multi") or None, **kw)
        self.created = True


def write_file(batches: Iterable[Batch], columns: list[Column], path: str | Path, fmt: str, crs: CrsDef,
               layer_name: str, geometry_type: str = "Unknown", id_name: str | None = None,
               head: dict[str, Any] | None = None, dbf: dict[str, str] | None = None) -> Path:
    """Write every batch to `path` (see the module doc). shp: `path` ending in .zip is a zipped Shapefile
    (UTF-8 with a .cpg), otherwise a folder or a .shp path; `dbf` names its columns (default `dbf_names` of
    the columns: give the whole layer's so that a subset keeps the same names). Returns the path written."""
    out = Path(path)
    fmt = fmt.lower()
    spec = FILE_FORMATS.get(fmt)
    if spec is None:
        raise DataFileError(f"Định dạng không hỗ trợ: {fmt}; dùng {', '.join(FILE_FORMATS)}",
                            f"unsupported format: {fmt}; use {', '.join(FILE_FORMATS)}")
    if fmt in WGS84_ONLY and crs.key not in ("OGC:CRS84", "EPSG:4326"):
        raise DataFileError("KML luôn dùng WGS 84: bỏ --crs hoặc chọn EPSG:4326",
                            "KML is always WGS 84: drop --crs or use EPSG:4326")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt in STREAMED:
        chunks = csv_chunks(batches, columns) if fmt == "csv" else geojson_chunks(batches, columns, id_name, head)
        with out.open("wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        return out
    if fmt == "shp":
        if out.suffix.lower() == ".zip":
            with tempfile.TemporaryDirectory(prefix="datso-shp-") as tmp:
                shp = Path(tmp) / f"{layer_name}.shp"
                _write_ogr(batches, columns, shp, fmt, crs, layer_name, geometry_type, dbf, id_name)
                with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
                    for f in sorted(Path(tmp).iterdir()):
                        zf.write(f, f.name)
            return out
        shp = out if out.suffix.lower() == ".shp" else out / f"{layer_name}.shp"
        shp.parent.mkdir(parents=True, exist_ok=True)
        for old in shp.parent.glob(shp.stem + ".*"):
            old.unlink()
        _write_ogr(batches, columns, shp, fmt, crs, layer_name, geometry_type, dbf, id_name)
        return shp
    if out.exists():
        out.unlink()
    _write_ogr(batches, columns, out, fmt, crs, layer_name, geometry_type, dbf, id_name)
    return out


def regroup(batches: Iterable[Batch], size: int) -> Iterator[Batch]:
    """Batches of about `size` rows made of smaller ones."""
    pending: list[Batch] = []
    n = 0
    for batch in batches:
        pending.append(batch)
        n += len(batch)
        if n >= size:
            yield _concat(pending)
            pending, n = [], 0
    if pending:
        yield _concat(pending)


def _concat(parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    values = {k: [v for p in parts for v in p.values[k]] for k in parts[0].values}
    return Batch(values, np.concatenate([np.asarray(p.geoms, dtype=object) for p in parts]))


# GDAL's FlatGeobuf writer rewrites the file on every append (the cost grows with the square of the number of
# appends): FlatGeobuf is written in fewer, larger appends (memory: about this many rows)
FGB_ROWS_PER_WRITE = 50_000


def _write_ogr(batches: Iterable[Batch], columns: list[Column], path: Path, fmt: str, crs: CrsDef,
               layer_name: str, geometry_type: str, dbf: dict[str, str] | None = None,
               id_name: str | None = None) -> None:
    w = _OgrFile(path, fmt, columns, crs, layer_name, geometry_type, dbf, id_name)
    if fmt == "fgb":
        batches = regroup(batches, FGB_ROWS_PER_WRITE)
    for batch in batches:
        w.write(batch)
    if not w.created:    # an empty selection: the file still has the layer and its fields
        w.write(Batch({c.name: [] for c in columns}, np.array([], dtype=object)))
    if fmt == "shp" and not path.with_suffix(".cpg").exists():
        path.with_suffix(".cpg").write_text("UTF-8")
    if fmt == "shp":    # GDAL writes an ESRI .prj without TOWGS84: the official VN-2000 shift goes in ours
        path.with_suffix(".prj").write_text(prj_wkt(crs))


# ------------------------------------------------------------------------------------------- text chunks
def csv_chunks(batches: Iterable[Batch], columns: list[Column]) -> Iterator[bytes]:
    """CSV, UTF-8 with BOM (Excel reads Vietnamese), the geometry as full-precision WKT in a `wkt` column."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.name for c in columns] + ["wkt"])
    yield ("\ufeff" + buf.getvalue()).encode("utf-8")
    for batch in batches:
        buf.seek(0)
        buf.truncate()
        wkt = shapely.to_wkt(np.asarray(batch.geoms, dtype=object), rounding_precision=-1)
        cols = [(c.kind, batch.values[c.name]) for c in columns]
        for i in range(len(batch)):
            w.writerow([text_cell(kind, vals[i]) for kind, vals in cols] + [wkt[i] or ""])
        yield buf.getvalue().encode("utf-8")


def geojson_chunks(batches: Iterable[Batch], columns: list[Column], id_name: str | None = None,
                   head: dict[str, Any] | None = None) -> Iterator[bytes]:
    """A GeoJSON FeatureCollection: `head` members first (numberMatched...), arrays as JSON arrays, dates as
    ISO text; `id_name` is the column given as the feature's id."""
    yield b'{"type":"FeatureCollection",' + (orjson.dumps(head)[1:-1] + b"," if head else b"") + b'"features":['
    first = True
    props_cols = [c for c in columns if c.name != id_name]
    for batch in batches:
        geo = shapely.to_geojson(np.asarray(batch.geoms, dtype=object))
        parts = []
        for i in range(len(batch)):
            props = {c.name: _iso(batch.values[c.name][i]) for c in props_cols}
            fid = orjson.dumps(batch.values[id_name][i]) if id_name else b"null"
            g = geo[i]
            parts.append(b'{"type":"Feature","id":' + fid + b',"geometry":' + (g.encode() if g else b"null")
                         + b',"properties":' + orjson.dumps(props, default=_json_default) + b"}")
        if parts:
            yield (b"" if first else b",") + b",".join(parts)
            first = False
    yield b"]}"


__all__ = ["FILE_FORMATS", "STREAMED", "Batch", "Column", "FileFormat", "csv_chunks", "dbf_names",
           "geojson_chunks", "text_cell", "write_file"]
