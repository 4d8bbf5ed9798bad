"""Reading and writing vector files (Shapefile, zipped Shapefile, GeoPackage, GeoJSON, KML, CSV) with
geopandas/pyogrio, with the CRS mapped onto datso's registry so VN-2000 always goes through the official
transformation (`gis.crs.transformer`), never a pipeline PROJ or GDAL picks.

`read_vector` returns attributes (a pandas DataFrame, raw values), geometries already in lon/lat WGS 84
(EPSG:4326, x = lon), the CRS it came from and notes about what was detected. Problems with the file as a
whole raise `DataFileError` (bilingual); problems with single rows (an unparseable WKT cell) are returned
in `row_errors` so the caller can report every row at once.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError as PyprojCRSError

from gis import encoding as enc
from gis.crs import CrsDef, CrsError, crs_for_zone, get_crs, transformer
from gis.errors import BilingualError
from gis.geometry import as_array, force_2d

WGS84_KEYS = ("OGC:CRS84", "EPSG:4326")
FORMATS = ("gpkg", "geojson", "shp", "csv", "kml")
WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "shape")
XY_COLUMNS = (("x", "y"), ("lon", "lat"), ("lng", "lat"), ("long", "lat"), ("longitude", "latitude"),
              ("easting", "northing"), ("kinh_do", "vi_do"), ("kinhdo", "vido"), ("toa_do_x", "toa_do_y"))


class DataFileError(BilingualError):
    """A file datso cannot read as a whole (format, CRS, encoding): message in Vietnamese and English."""


@dataclass
class RowError:
    row: int        # 0-based position in the file
    field: str
    vi: str
    en: str


@dataclass
class ReadResult:
    frame: pd.DataFrame                 # attributes, one row per feature, raw values
    geometry: np.ndarray                # shapely geometries in lon/lat (EPSG:4326), None where missing
    source_crs: CrsDef
    driver: str
    encoding: str | None = None
    swapped: bool = False
    notes: list[tuple[str, str]] = field(default_factory=list)    # (vi, en)
    row_errors: list[RowError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)


# ---------------------------------------------------------------------------------------------- CRS
def _norm(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").lower())


def _is_vn2000(crs: CRS) -> bool:
    names = [crs.name]
    if crs.datum is not None:
        names.append(crs.datum.name)
    if crs.geodetic_crs is not None:
        names.append(crs.geodetic_crs.name)
    if any("vn2000" in _norm(n) or "vietnam2000" in _norm(n) for n in names):
        return True
    # a CRS carrying the official shift (either rotation sign) is VN-2000 whatever it is called
    op = crs.coordinate_operation if crs.is_bound else None
    if op is not None:
        vals = {p.name.lower(): p.value for p in op.params}
        dx = next((v for k, v in vals.items() if "x-axis translation" in k), None)
        return dx is not None and abs(float(dx) + 191.904) < 0.01
    return False


def crs_from_metadata(text: str) -> CrsDef:
    """Map a file's CRS (EPSG code, WKT from a .prj or GeoPackage) onto the registry.

    A VN-2000 Transverse Mercator with k = 0.9999 and false easting 500 000 becomes the registry's TM-3 zone
    with that central meridian, so the official Decision 05/2007 parameters are used whatever the .prj says.
    """
    try:
        crs = CRS.from_user_input(text)
    except PyprojCRSError as exc:
        raise DataFileError(f"Không đọc được hệ tọa độ của tệp: {text[:80]}",
                            f"cannot parse the file's CRS: {text[:80]}") from exc
    base = crs.source_crs if crs.is_bound and crs.source_crs is not None else crs
    if _is_vn2000(crs):
        if base.is_geographic:
            return get_crs("EPSG:4756")
        op = base.coordinate_operation
        params = {p.name.lower(): float(p.value) for p in op.params} if op is not None else {}
        method = (op.method_name if op is not None else "").lower()
        lon0 = params.get("longitude of natural origin")
        k = params.get("scale factor at natural origin")
        fe = params.get("false easting")
        if "transverse mercator" in method and lon0 is not None and k is not None:
            if abs(k - 0.9999) < 1e-9 and fe is not None and abs(fe - 500000) < 1e-6:
                try:
                    return crs_for_zone(lon0)
                except CrsError as exc:
                    raise DataFileError(
                        f"Tệp dùng VN-2000 TM-3 kinh tuyến trục {lon0:g}° — không có múi này trong danh mục",
                        f"the file uses VN-2000 TM-3 with central meridian {lon0:g}°, which is not a known zone",
                    ) from exc
            if abs(k - 0.9996) < 1e-9 and abs(lon0 - 105) < 1e-9:
                return get_crs("EPSG:3405")
            if abs(k - 0.9996) < 1e-9 and abs(lon0 - 111) < 1e-9:
                return get_crs("EPSG:3406")
        raise DataFileError(f"Hệ tọa độ VN-2000 không xác định được múi chiếu: {crs.name}; hãy chỉ rõ --crs",
                            f"VN-2000 CRS with an unrecognised projection: {crs.name}; pass --crs")
    epsg = crs.to_epsg(min_confidence=70)
    if epsg is None:
        raise DataFileError(f"Không nhận ra hệ tọa độ của tệp ({crs.name}); hãy chỉ rõ --crs",
                            f"unrecognised CRS in the file ({crs.name}); pass --crs")
    if epsg == 4326:
        return get_crs("OGC:CRS84")     # GDAL hands out lon/lat order for EPSG:4326
    try:
        return get_crs(epsg)
    except CrsError as exc:
        raise DataFileError(f"Hệ tọa độ của tệp không được hỗ trợ: {exc}", f"unsupported CRS in the file: {exc}") \
            from exc


def resolve_crs(text: str) -> CrsDef:
    try:
        return get_crs(text)
    except CrsError as exc:
        raise DataFileError(f"Hệ tọa độ không hợp lệ: {exc}", f"invalid CRS: {exc}") from exc


def _apply_xy(arr: np.ndarray, fn: Any) -> np.ndarray:
    present = ~shapely.is_missing(arr)
    out = arr.copy()
    if present.any():
        out[present] = shapely.transform(arr[present], fn)
    return out


def reproject(geoms: Any, src: CrsDef, dst: CrsDef) -> np.ndarray:
    """Reproject (x = lon/easting order) with the registry's transformer: official VN-2000 parameters."""
    arr = as_array(geoms)
    if src.key == dst.key or (src.key in WGS84_KEYS and dst.key in WGS84_KEYS):
        return arr
    tr = transformer(src.key, dst.key)

    def fn(c: np.ndarray) -> np.ndarray:
        x, y = tr.transform(c[:, 0], c[:, 1])
        return np.column_stack([x, y])

    return _apply_xy(arr, fn)


def swap_xy(geoms: Any) -> np.ndarray:
    return _apply_xy(as_array(geoms), lambda c: c[:, ::-1].copy())


def detect_swapped(geoms: Any, crs: CrsDef) -> bool:
    """True when the coordinates are obviously (northing, easting) / (lat, lon): surveyors' X = northing."""
    coords = shapely.get_coordinates(as_array(geoms))
    if len(coords) == 0:
        return False
    x, y = coords[:, 0], coords[:, 1]

    def within(v: np.ndarray, lo: float, hi: float) -> bool:
        return bool(((v >= lo) & (v <= hi)).all())

    if crs.geographic:
        return within(x, 6.0, 23.5) and within(y, 102.0, 117.9) and not within(x, 102.0, 117.9)
    # projected metres (TM-3 / UTM): easting 100-900 km, northing in Vietnam 660-2700 km
    northing_x = within(x, 600_000, 2_700_000) and float(np.median(x)) > 1_000_000
    easting_y = within(y, 100_000, 900_000)
    normal = within(x, 100_000, 900_000) and within(y, 600_000, 2_700_000)
    return northing_x and easting_y and not normal


# ---------------------------------------------------------------------------------------------- reading
# GDAL's (English) error texts -> what went wrong, said in Vietnamese and English without the library's text or any
# path: (pattern in the error, vi, en); the first match wins.
_READ_FAILURES: tuple[tuple[str, str, str], ...] = (
    ("zip", "tệp nén .zip hỏng hoặc không đọc được", "the .zip archive is damaged or unreadable"),
    (".shx", "thiếu hoặc hỏng tệp .shx đi kèm Shapefile", "the Shapefile's .shx file is missing or damaged"),
    (".dbf", "thiếu hoặc hỏng tệp .dbf đi kèm Shapefile", "the Shapefile's .dbf file is missing or damaged"),
    ("geojson", "GeoJSON không hợp lệ (JSON lỗi hoặc bị cắt cụt)", "invalid GeoJSON (broken or truncated JSON)"),
    ("json", "GeoJSON không hợp lệ (JSON lỗi hoặc bị cắt cụt)", "invalid GeoJSON (broken or truncated JSON)"),
    ("kml", "KML không hợp lệ (XML lỗi hoặc bị cắt cụt)", "invalid KML (broken or truncated XML)"),
    ("xml", "KML không hợp lệ (XML lỗi hoặc bị cắt cụt)", "invalid KML (broken or truncated XML)"),
    ("sqlite", "GeoPackage hỏng", "the GeoPackage is damaged"),
    ("malformed", "GeoPackage hỏng", "the GeoPackage is damaged"),
    ("not recognized as being in a supported file format",
     "không nhận ra định dạng (không phải Shapefile, GeoPackage, GeoJSON, KML, CSV, hoặc tệp đã hỏng)",
     "format not recognised (not a Shapefile, GeoPackage, GeoJSON, KML or CSV, or the file is damaged)"),
)
_AT_LINE = re.compile(r"line (\d+)(?:, (?:character|column) (\d+))?", re.IGNORECASE)


def _fail_read(path: Path, exc: Exception) -> DataFileError:
    """A file GDAL cannot read, said without GDAL's English text or any path (issue 11)."""
    text = str(exc)
    low = text.lower()
    vi, en = "tệp hỏng hoặc sai định dạng", "corrupted or not a supported format"
    for pattern, p_vi, p_en in _READ_FAILURES:
        if pattern in low or (pattern == "zip" and isinstance(exc, zipfile.BadZipFile)):
            vi, en = p_vi, p_en
            break
    m = _AT_LINE.search(text)
    if m:
        vi += f" ở dòng {m.group(1)}" + (f", ký tự {m.group(2)}" if m.group(2) else "")
        en += f" at line {m.group(1)}" + (f", character {m.group(2)}" if m.group(2) else "")
    return DataFileError(f"Không đọc được tệp {path.name}: {vi}", f"cannot read {path.name}: {en}")


# Warnings the reading libraries raise (English, often with a /vsizip/ or /tmp path) -> a bilingual note or None
# (nothing worth saying).
_WARNINGS: tuple[tuple[str, tuple[str, str] | None], ...] = (
    ("non conformant file extension", None),
    ("laundered", ("Tên cột đã được chuẩn hóa khi đọc", "column names were normalised while reading")),
    ("measured", ("Bỏ giá trị M (đo) của hình học", "dropped the geometries' M (measure) values")),
)


def _warning_notes(caught: list[warnings.WarningMessage], notes: list[tuple[str, str]]) -> None:
    for w in caught:
        text = str(w.message).lower()
        note: tuple[str, str] | None = ("Thư viện đọc tệp báo một cảnh báo kỹ thuật (đã bỏ qua)",
                                        "the file reader raised a technical warning (ignored)")
        for pattern, known in _WARNINGS:
            if pattern in text:
                note = known
                break
        if note is not None and note not in notes:
            notes.append(note)


def _zip_members(path: Path, source_layer: str | None) -> tuple[str, str | None]:
    """(GDAL path of the dataset inside a .zip, .cpg text or None)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            shps = [n for n in names if n.lower().endswith(".shp")]
            if source_layer:
                shps = [n for n in shps if Path(n).stem == source_layer] or shps
            if len(shps) > 1:
                raise DataFileError(
                    f"Tệp nén có nhiều lớp Shapefile ({', '.join(Path(s).stem for s in shps)}); chọn --source-layer",
                    f"the zip holds several Shapefiles ({', '.join(Path(s).stem for s in shps)}); "
                    "choose one with --source-layer")
            if shps:
                stem = shps[0][:-4]
                cpg = next((n for n in names if n.lower() == (stem + ".cpg").lower()), None)
                text = zf.read(cpg).decode("ascii", errors="replace") if cpg else None
                return f"/vsizip/{path.resolve()}/{shps[0]}", text
            others = [n for n in names if n.lower().endswith((".gpkg", ".geojson", ".json", ".kml"))]
            if others:
                return f"/vsizip/{path.resolve()}/{others[0]}", None
    except zipfile.BadZipFile as exc:
        raise _fail_read(path, exc) from exc
    raise DataFileError(f"Tệp nén {path.name} không chứa Shapefile", f"{path.name} contains no Shapefile")


def _decode_legacy(frame: pd.DataFrame, encoding: str | None) -> tuple[pd.DataFrame, str]:
    """Re-decode string columns read as ISO-8859-1 (= raw bytes) with the given or detected encoding."""
    str_cols = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype) in ("str", "string")]
    raw_cols = {c: [v.encode("latin-1") if isinstance(v, str) else v for v in frame[c]] for c in str_cols}
    names = {c: str(c).encode("latin-1", errors="replace") for c in frame.columns}
    if encoding is None:
        sample = [v for vals in raw_cols.values() for v in vals[:5000] if isinstance(v, bytes)]
        encoding = enc.detect(sample + list(names.values()))
    out = frame.copy()
    for c, vals in raw_cols.items():
        out[c] = pd.Series([enc.decode(v, encoding) if isinstance(v, bytes) else v for v in vals],
                           index=frame.index, dtype=object)
    out.columns = [enc.decode(names[c], encoding) for c in frame.columns]
    return out, encoding


def _pick_encoding(option: str | None, cpg: str | None) -> str | None:
    for name in (option, cpg):
        if name and name.strip():
            try:
                return enc.normalise_encoding(name)
            except ValueError:
                raise DataFileError(f"Bảng mã không hỗ trợ: {name.strip()}",
                                    f"unsupported text encoding: {name.strip()}") from None
    return None


def _read_ogr(path: Path, source_layer: str | None, encoding: str | None,
              notes: list[tuple[str, str]], row_errors: list[RowError]) -> tuple[gpd.GeoDataFrame, str | None, str, str | None]:
    """(frame, CRS text from metadata, driver, encoding used)."""
    target: str = str(path)
    cpg: str | None = None
    is_shp = path.suffix.lower() in (".shp", ".dbf")
    if path.suffix.lower() == ".zip":
        target, cpg = _zip_members(path, source_layer)
        is_shp = target.lower().endswith(".shp")
        if is_shp:
            source_layer = None
    elif is_shp:
        cpg_path = path.with_suffix(".cpg")
        cpg = cpg_path.read_text(errors="replace") if cpg_path.exists() else None
    layer = source_layer
    try:
        if not is_shp:
            layers = [str(x[0]) for x in pyogrio.list_layers(target)]
            if layer is not None and layer not in layers:
                raise DataFileError(f"Tệp không có lớp {layer!r}; các lớp: {', '.join(layers)}",
                                    f"the file has no layer {layer!r}; layers: {', '.join(layers)}")
            if layer is None and len(layers) > 1:
                raise DataFileError(f"Tệp có nhiều lớp ({', '.join(layers)}); chọn --source-layer",
                                    f"the file has several layers ({', '.join(layers)}); "
                                    "choose one with --source-layer")
        info = pyogrio.read_info(target, layer=layer)
        kw: dict[str, Any] = {"encoding": "ISO-8859-1"} if is_shp else {}
        try:
            frame = pyogrio.read_dataframe(target, layer=layer, **kw)
        except shapely.errors.GEOSException:
            # one geometry GEOS cannot build (e.g. a ring with NaN coordinates) must not hide the others:
            # read them all leniently and name the rows whose geometry could not be decoded
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                frame = pyogrio.read_dataframe(target, layer=layer, on_invalid="ignore", **kw)
            _, _, wkb, _ = pyogrio.raw.read(target, layer=layer, columns=[], **kw)[:4]
            for i, (raw, g) in enumerate(zip(wkb, frame.geometry.values, strict=True)):
                if raw is not None and g is None:
                    row_errors.append(RowError(i, "geometry", "không đọc được hình học (tọa độ không hợp lệ)",
                                               "the geometry cannot be read (invalid coordinates)"))
    except DataFileError:
        raise
    except Exception as exc:  # pyogrio raises DataSourceError/DataLayerError/FieldError...
        raise _fail_read(path, exc) from exc
    used: str | None = None
    if is_shp:
        chosen = _pick_encoding(encoding, cpg)
        frame_attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        decoded, used = _decode_legacy(frame_attrs, chosen)
        how = "chỉ định" if encoding else (".cpg" if cpg else "tự nhận")
        how_en = "given" if encoding else (".cpg" if cpg else "detected")
        notes.append((f"Bảng mã {used} ({how})", f"text encoding {used} ({how_en})"))
        frame = gpd.GeoDataFrame(decoded, geometry=frame.geometry.values)
    return frame, info.get("crs"), str(info.get("driver")), used


def _read_csv(path: Path, encoding: str | None, notes: list[tuple[str, str]]) -> tuple[pd.DataFrame, str]:
    data = path.read_bytes()
    if not data.strip():
        raise DataFileError(f"Tệp {path.name} rỗng", f"{path.name} is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        chosen: str | None = "utf-8"
    else:
        chosen = _pick_encoding(encoding, None)
    used = chosen or enc.detect([data[:200_000]])
    text = enc.decode(data, used)
    if used != "utf-8" or encoding:
        notes.append((f"Bảng mã {used}", f"text encoding {used}"))
    header = text.split("\n", 1)[0]
    sep = max((",", ";", "\t", "|"), key=header.count)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise _fail_read(path, exc) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, used


def _csv_geometry(frame: pd.DataFrame, wkt_field: str | None, x_field: str | None, y_field: str | None,
                  row_errors: list[RowError], optional: bool = False) -> tuple[pd.DataFrame, np.ndarray | None]:
    lower = {c.lower(): c for c in frame.columns}

    def col(name: str) -> str:
        if name in frame.columns:
            return name
        if name.lower() in lower:
            return lower[name.lower()]
        raise DataFileError(f"Tệp CSV không có cột {name!r}", f"the CSV has no column {name!r}")

    if wkt_field or not (x_field or y_field):
        wcol = col(wkt_field) if wkt_field else next((lower[w] for w in WKT_COLUMNS if w in lower), None)
        if wcol is not None:
            texts = frame[wcol].astype(object).where(frame[wcol].astype(str).str.strip() != "", None)
            geoms = shapely.from_wkt(texts.to_numpy(dtype=object), on_invalid="ignore")
            for i in np.flatnonzero(shapely.is_missing(geoms) & texts.notna().to_numpy()):
                row_errors.append(RowError(int(i), wcol, f"WKT không hợp lệ: {str(texts.iloc[i])[:60]}",
                                           f"invalid WKT: {str(texts.iloc[i])[:60]}"))
            return frame.drop(columns=[wcol]), geoms
    if not (x_field and y_field):
        pair = next(((lower[a], lower[b]) for a, b in XY_COLUMNS if a in lower and b in lower), None)
        if pair is None and optional:
            return frame, None
        if pair is None:
            raise DataFileError(
                "Tệp CSV không có cột hình học: cần cột WKT (--wkt-field) hoặc cột tọa độ (--x-field, --y-field)",
                "the CSV has no geometry: give a WKT column (--wkt-field) or coordinate columns "
                "(--x-field, --y-field)")
        xc, yc = pair
    else:
        xc, yc = col(x_field), col(y_field)
    xs = pd.to_numeric(frame[xc].astype(str).str.strip().str.replace(",", ".", regex=False), errors="coerce")
    ys = pd.to_numeric(frame[yc].astype(str).str.strip().str.replace(",", ".", regex=False), errors="coerce")
    bad = xs.isna() | ys.isna()
    for i in np.flatnonzero(bad.to_numpy()):
        c = xc if pd.isna(xs.iloc[i]) else yc
        row_errors.append(RowError(int(i), c, f"tọa độ không phải số: {frame[c].iloc[i]!r}",
                                   f"coordinate is not a number: {frame[c].iloc[i]!r}"))
    geoms = shapely.points(xs.fillna(0).to_numpy(), ys.fillna(0).to_numpy()).astype(object)
    geoms[bad.to_numpy()] = None
    return frame.drop(columns=[xc, yc]), geoms


def read_vector(path: str | Path, *, crs: str | None = None, source_layer: str | None = None,
                encoding: str | None = None, swap: bool | None = None, x_field: str | None = None,
                y_field: str | None = None, wkt_field: str | None = None,
                geometry_optional: bool = False) -> ReadResult:
    """Read a vector file into attributes + lon/lat geometries (see module doc).

    `crs` overrides the file's metadata; a file without CRS metadata and without `crs` is refused.
    `swap` True/False forces the X/Y swap (surveyors' X = northing); None detects it for CSV files.
    `geometry_optional`: a CSV without geometry columns is read as attributes only (no CRS needed).
    """
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"Không tìm thấy tệp {p}", f"file not found: {p}")
    if p.is_file() and p.stat().st_size == 0:
        raise DataFileError(f"Tệp {p.name} rỗng", f"{p.name} is empty")
    notes: list[tuple[str, str]] = []
    row_errors: list[RowError] = []
    meta_crs: str | None = None
    used_enc: str | None = None
    if p.suffix.lower() in (".csv", ".txt", ".tsv"):
        frame, used_enc = _read_csv(p, encoding, notes)
        attrs, maybe = _csv_geometry(frame, wkt_field, x_field, y_field, row_errors, geometry_optional)
        driver = "CSV"
        if maybe is None:
            if len(attrs) == 0:
                raise DataFileError(f"Tệp {p.name} không có đối tượng nào", f"{p.name} contains no features")
            notes.append(("Tệp CSV không có cột hình học: chỉ nhập thuộc tính",
                          "the CSV has no geometry columns: attributes only"))
            src = resolve_crs(crs) if crs else get_crs("OGC:CRS84")
            return ReadResult(attrs.reset_index(drop=True), np.full(len(attrs), None, dtype=object), src, driver,
                              used_enc, False, notes, row_errors)
        geoms = maybe
    else:
        with warnings.catch_warnings(record=True) as caught:      # never GDAL's English with paths on stderr
            warnings.simplefilter("always")
            gdf, meta_crs, driver, used_enc = _read_ogr(p, source_layer, encoding, notes, row_errors)
        _warning_notes(caught, notes)
        geoms = as_array(gdf.geometry.values)
        attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        if driver in ("KML", "LIBKML"):
            meta_crs = meta_crs or "EPSG:4326"
    if len(attrs) == 0:
        raise DataFileError(f"Tệp {p.name} không có đối tượng nào", f"{p.name} contains no features")
    if crs:
        src = resolve_crs(crs)
        if meta_crs:
            notes.append((f"Dùng hệ tọa độ chỉ định {src.key} thay cho siêu dữ liệu tệp",
                          f"using the given CRS {src.key} instead of the file's metadata"))
    elif meta_crs:
        src = crs_from_metadata(meta_crs)
    else:
        raise DataFileError(
            f"Tệp {p.name} không có thông tin hệ tọa độ; hãy chỉ rõ --crs (ví dụ vn2000:ben-tre, EPSG:4326)",
            f"{p.name} has no CRS information; pass --crs (e.g. vn2000:ben-tre or EPSG:4326)")
    notes.append((f"Hệ tọa độ nguồn: {src.key} ({src.name})", f"source CRS: {src.key} ({src.name})"))
    geoms = force_2d(geoms)
    swapped = bool(swap) if swap is not None else (driver == "CSV" and detect_swapped(geoms, src))
    if swapped:
        geoms = swap_xy(geoms)
        notes.append(("Đã đổi chỗ X/Y (quy ước trắc địa VN-2000: X = hướng Bắc)",
                      "swapped X/Y (VN-2000 surveyors' convention: X = northing)"))
    lonlat = reproject(geoms, src, get_crs("OGC:CRS84"))
    attrs = attrs.reset_index(drop=True)
    return ReadResult(attrs, lonlat, src, driver, used_enc, swapped, notes, row_errors)


# ---------------------------------------------------------------------------------------------- writing
def crs_metadata(crs: CrsDef) -> str:
    """What to write as a file's CRS (`gis.crs.output_crs` as OGC WKT1): the EPSG code, and for VN-2000 the
    official TOWGS84 with it."""
    return crs.output_wkt


__all__ = ["DataFileError", "ReadResult", "RowError", "crs_from_metadata", "detect_swapped", "read_vector",
           "reproject", "resolve_crs", "swap_xy"]
