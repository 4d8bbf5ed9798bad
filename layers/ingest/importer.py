"""The import pipeline: file -> field map -> coercion and validation of every row -> one transaction.

    result = import_file("thua_dat.zip", "parcels", dsn, ImportOptions(crs="vn2000:ben-tre"))

If any row has an error nothing is written and `result.issues` (and the optional CSV report) says which
file, row, field and why, in Vietnamese or English. Otherwise all rows are written in ONE transaction with
COPY (geometry as hex EWKB), with `datso.actor = 'import:<user>'` set locally so the audit trigger records
who imported. Reading and reprojection are in `gis.io`, the checks in `layers.ingest.validation`.

A layer that declares a Registration (growing areas, packing houses) is imported through the registration
workflow by default, exactly as the upload endpoint does (`layers.ingest.registration`: new drafts without codes,
area, minimum, commune, province and overlaps under the layer's lock, all rows or none). `ImportOptions(bulk=True)`
(`datso import --bulk`) is the old path, for migrating legacy registers: statuses and codes as in the file, still
validated, scoped and audited, with a note in the result saying so; `--mode update|upsert` is only offered there.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import getpass
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from gis import geometry as geo
from gis.io import DataFileError, read_vector
from gis.writers import dbf_names
from layers.catalog.registry import LAYERS, SCOPE_GEOMETRY, Layer, UnknownLayer, get_layer
from layers.ingest import registration, upsert
from layers.ingest.rules import rule_for
from layers.ingest.validation import (
    Issue,
    IssueSummary,
    Prepared,
    decimal_separator,
    must_have,
    prepare_frame,
)
from layers.ingest.writes import Writer
from layers.store.connect import connect

CHUNK = 25_000
BULK_NOTE = ("NHẬP HÀNG LOẠT (--bulk): các dòng được ghi như trong tệp (trạng thái, mã), không qua quy trình đăng ký "
             "(bản nháp, diện tích tối thiểu, xã, tỉnh, chồng lấn); vẫn kiểm tra dữ liệu và ghi lịch sử. Chỉ dùng để "
             "chuyển sổ đăng ký cũ",
             "BULK IMPORT (--bulk): rows written as given (statuses, codes), bypassing the registration workflow "
             "(drafts, minimum area, commune, province, overlaps); still validated and audited. Only for migrating "
             "legacy registers")
REGISTERED_MODE_VI = ("--mode {mode}: lớp {layer} được đăng ký theo quy trình (bản nháp, cấp mã khi kích hoạt); nhập "
                      "lại theo mã chỉ có ở đường nhập hàng loạt (--bulk) của sổ đăng ký cũ; sửa từng vùng bằng PATCH")
REGISTERED_MODE_EN = ("--mode {mode}: layer {layer} is registered through its workflow (drafts, codes granted at "
                      "activation); a re-import by code is only the bulk path of legacy registers (--bulk); change "
                      "single features with PATCH")


@dataclass
class ImportOptions:
    crs: str | None = None
    field_map: dict[str, str] | str | None = None
    source_layer: str | None = None
    encoding: str | None = None
    swap_xy: bool | None = None
    x_field: str | None = None
    y_field: str | None = None
    wkt_field: str | None = None
    repair: bool = False
    user: str = field(default_factory=getpass.getuser)
    # who imports (layers.accounts.principal.Principal): every row must be inside their scope (else nothing is
    # written and the refused rows are named) and history records their name; None: the operator at the CLI,
    # recorded as 'import:<user>', no scope
    principal: Writer | None = None
    lang: str = "vi"
    report: Path | None = None
    progress: bool | None = None          # None: a progress bar when stderr is a terminal
    # A layer that declares a Registration (growing areas, packing houses) is imported as the upload endpoint
    # does: new drafts with every registration check (area, minimum, commune, province, overlaps). `bulk=True`
    # is the way around, for migrating legacy registers: rows (statuses, codes) written as given, still
    # validated and audited, with a note saying so. No effect on layers without a Registration.
    bulk: bool = False
    policy: Any = None                    # their registration.Policy (None: from the settings)
    mode: str = "insert"                  # insert | update | upsert by the business key (layers/ingest/upsert.py)
    decimal_separator: str | None = None  # "," or ".": how the file writes decimals (None: refuse ambiguous 1.250)


@dataclass
class ImportResult(IssueSummary):
    file: str
    layer: str
    rows_read: int = 0
    rows_written: int = 0
    rows_updated: int = 0                 # of rows_written, those that updated an existing feature
    issues: list[Issue] = field(default_factory=list)
    seconds: float = 0.0
    source_crs: str | None = None
    encoding: str | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else 0.0


def parse_field_map(text: str | dict[str, str] | None) -> dict[str, str]:
    """`"so_to=map_sheet, so_thua=parcel_no"` -> {"so_to": "map_sheet", "so_thua": "parcel_no"}."""
    if not text:
        return {}
    if isinstance(text, dict):
        return dict(text)
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(part.strip())
        src, dst = (p.strip() for p in part.split("=", 1))
        if not src or not dst:
            raise ValueError(part.strip())
        out[src] = dst
    return out


def map_columns(layer: Layer, columns: list[str], field_map: dict[str, str]) -> tuple[
        dict[str, str], list[str], list[Issue]]:
    """(file column -> field, ignored columns, issues). Besides the explicit map, columns match fields by
    name, case-insensitively, as the Shapefile name datso writes (`gis.writers.dbf_names`: 10 characters, `_1`
    on a clash) or as a Shapefile-truncated (10-character) prefix of exactly one field."""
    issues: list[Issue] = []
    names = set(layer.field_names)
    mapping: dict[str, str] = {}
    short = {v.lower(): k for k, v in dbf_names(layer.field_names).items() if v != k}
    for src, dst in field_map.items():
        if dst not in names:
            issues.append(Issue(None, dst, "field_map",
                                f"--field-map: lớp {layer.id} không có trường {dst!r}",
                                f"--field-map: layer {layer.id} has no field {dst!r}"))
        elif src not in columns:
            issues.append(Issue(None, src, "field_map", f"--field-map: tệp không có cột {src!r}",
                                f"--field-map: the file has no column {src!r}"))
        else:
            mapping[src] = dst
    for col in columns:
        if col in mapping:
            continue
        low = col.lower()
        exact = [f for f in layer.field_names if f == col] or [f for f in layer.field_names if f.lower() == low]
        prefix = [f for f in layer.field_names if len(col) == 10 and f.lower().startswith(low)]
        dbf = [short[low]] if len(col) <= 10 and low in short else []
        match = exact or dbf or (prefix if len(prefix) == 1 else [])
        if match and match[0] not in mapping.values():
            mapping[col] = match[0]
    targets: dict[str, str] = {}
    for src, dst in mapping.items():
        if dst in targets:
            issues.append(Issue(None, dst, "field_map",
                                f"hai cột {targets[dst]!r} và {src!r} cùng đổ vào trường {dst!r}",
                                f"columns {targets[dst]!r} and {src!r} both map to field {dst!r}"))
        targets[dst] = src
    ignored = [c for c in columns if c not in mapping]
    return mapping, ignored, issues


def _pg_array(items: Any) -> str | None:
    if items is None or (not isinstance(items, list | tuple) and pd.isna(items)):
        return None
    parts = []
    for x in items:
        s = str(x).replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'"{s}"')
    return "{" + ",".join(parts) + "}"


def _copy_frame(layer: Layer, prepared: Prepared, start: int, stop: int) -> bytes:
    import json

    part = prepared.frame.iloc[start:stop]
    out = pd.DataFrame(index=part.index)
    for f in layer.fields:
        if f.name not in part.columns:
            continue
        s = part[f.name]
        if f.type == "array":
            out[f.name] = [_pg_array(v) for v in s.to_numpy(dtype=object)]
        elif f.type == "object":
            out[f.name] = [None if v is None else json.dumps(v, ensure_ascii=False) for v in s.to_numpy(dtype=object)]
        elif f.type in ("date", "date-time"):
            out[f.name] = [None if v is None or v is pd.NaT else v.isoformat() for v in s.to_numpy(dtype=object)]
        else:
            out[f.name] = s
    geoms = prepared.geometry[start:stop]
    present = ~shapely.is_missing(geoms)
    hexes = np.full(len(geoms), None, dtype=object)
    if present.any():
        hexes[present] = shapely.to_wkb(shapely.set_srid(geoms[present], 4326), hex=True, include_srid=True)
    out[layer.geometry_column] = hexes
    return out.to_csv(header=False, index=False, lineterminator="\n").encode("utf-8")


def _progress(total: int, enabled: bool | None, label: str) -> Any:
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, disable=not show, unit=" rows", desc=label, file=sys.stderr, leave=False)


_COPY_LINE = re.compile(r"line (\d+)")
# The computed fields a registry entry may declare (`LayerField.computed`): how, and the note telling the user.
COMPUTED: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str, str]] = {
    "area_m2_from_geometry": (lambda geoms: np.round(geo.areas_m2(geoms), 2),
                              "Diện tích ({field}) tính từ hình học (trắc địa, ellipsoid WGS 84)",
                              "{field} computed from the geometry (geodesic, WGS 84 ellipsoid)"),
}


def _db_issue(exc: psycopg.Error, first_row: int, start: int) -> Issue:
    diag = exc.diag
    m = _COPY_LINE.search(diag.context or "")
    row = first_row + start + int(m.group(1)) - 1 if m else None
    rule = diag.constraint_name or ""
    col = diag.column_name
    if rule:
        known = rule_for(rule)
        if known:
            return Issue(row, known[0], "rule", known[1], known[2])
        return Issue(row, col, "db_constraint", f"vi phạm ràng buộc dữ liệu {rule}",
                     f"breaks the database rule {rule}")
    return Issue(row, col, "db_error", "cơ sở dữ liệu từ chối dòng này (kiểu hoặc giá trị không hợp lệ)",
                 "the database refused this row (invalid type or value)")


def write_prepared(conn: psycopg.Connection, layer: Layer, prepared: Prepared, actor: str,
                   progress: bool | None = None, first_row: int = 1) -> tuple[int, Issue | None]:
    """COPY every prepared row in the connection's current transaction (the caller commits or rolls
    back). Returns (rows written, None) or (0, the issue naming the row the database refused)."""
    conn.execute("SELECT set_config('datso.actor', %s, true)", [actor])
    cols = [f.name for f in layer.fields if f.name in prepared.frame.columns] + [layer.geometry_column]
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(layer.table), sql.SQL(", ").join(sql.Identifier(c) for c in cols))
    n = len(prepared.frame)
    start = 0
    bar = _progress(n, progress, layer.id)
    try:
        with conn.cursor() as cur, cur.copy(stmt) as cp:
            for start in range(0, n, CHUNK):
                stop = min(n, start + CHUNK)
                cp.write(_copy_frame(layer, prepared, start, stop))
                bar.update(stop - start)
    except psycopg.Error as exc:
        return 0, _db_issue(exc, first_row, 0)
    finally:
        bar.close()
    return n, None


def scope_issues(conn: psycopg.Connection, layer: Layer, prepared: Prepared, principal: Writer) -> list[Issue]:
    """One issue per row outside the principal's scope (one query for the whole batch)."""
    n = len(prepared.frame)
    f = layer.scope_key
    values = ([None if pd.isna(v) else v for v in prepared.frame[f]]
              if f is not None and f in prepared.frame.columns else [None] * n)
    geoms = list(prepared.geometry) if len(prepared.geometry) == n else [None] * n
    rows = [{**({f: v} if f is not None else {}), SCOPE_GEOMETRY: g} for v, g in zip(values, geoms, strict=True)]
    return [Issue(prepared.first_row + i, fname, "scope", vi, en)
            for i, fname, vi, en in principal.rows_outside(conn, layer, rows)]


def write_report(path: Path, file: str, issues: list[Issue], lang: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "row", "field", "severity", "code", "reason"] if lang != "vi"
                   else ["tệp", "dòng", "trường", "mức", "mã", "lý do"])
        for i in issues:
            w.writerow([file, "" if i.row is None else i.row, i.field or "", i.severity, i.code, i.message(lang)])


_GC_LOCK = threading.Lock()
_GC_HOLDERS = [0, False]         # imports running with the cyclic GC paused; whether it was enabled before


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while an import runs (reference counting still frees everything
    an import makes; it makes no cycles worth collecting). A 5,000-row import allocates enough small objects to
    trigger ~70 collections, and in a long-lived process (the API server, ~350,000 tracked objects) a full one
    took a fifth of the import (bench/registration.py). Re-enabled when the last concurrent import ends, and only
    if it was enabled."""
    with _GC_LOCK:
        if _GC_HOLDERS[0] == 0:
            _GC_HOLDERS[1] = gc.isenabled()
            gc.disable()
        _GC_HOLDERS[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_HOLDERS[0] -= 1
            if _GC_HOLDERS[0] == 0 and _GC_HOLDERS[1]:
                gc.enable()


def record_run(dsn: str, result: ImportResult, actor: str) -> None:
    """One row in `import_runs` (migration 0013) for this import and its outcome: ok, refused (the file or its
    rows) or database (unreachable). Best effort: an import whose database is gone cannot record itself, and a
    database not yet migrated to 0013 has nowhere to record it."""
    if result.layer not in LAYERS:      # a bounded label set: unknown layer names are not recorded
        return
    codes = {i.code for i in result.errors}
    outcome = "ok" if result.ok else "database" if "database" in codes else "refused"
    try:
        with connect("writer", dsn=dsn, connect_timeout=5) as conn:
            conn.execute("INSERT INTO import_runs (layer, outcome, rows_read, rows_written, seconds, actor) "
                         "VALUES (%s, %s, %s, %s, %s, %s)",
                         (result.layer, outcome, result.rows_read, result.rows_written, result.seconds, actor))
    except psycopg.Error:
        pass


def import_file(path: str | Path, layer_id: str, dsn: str, options: ImportOptions | None = None) -> ImportResult:
    """Import a file into a layer: everything or nothing (see module doc). Never raises for bad input."""
    with _cyclic_gc_paused():
        return _import_file(path, layer_id, dsn, options)


def _import_file(path: str | Path, layer_id: str, dsn: str, options: ImportOptions | None = None) -> ImportResult:
    opts = options or ImportOptions()
    t0 = time.perf_counter()
    p = Path(path)
    result = ImportResult(file=p.name, layer=layer_id)

    def done() -> ImportResult:
        result.seconds = time.perf_counter() - t0
        result.issues.sort(key=lambda i: (i.row is not None, i.row or 0))      # file-level first, then by row
        if opts.report:
            write_report(Path(opts.report), p.name, result.issues, opts.lang)
        record_run(dsn, result, opts.principal.actor if opts.principal is not None else f"import:{opts.user}")
        return result

    try:
        layer = get_layer(layer_id)
    except UnknownLayer as exc:
        result.issues.append(Issue(None, None, "unknown_layer",
                                   f"không có lớp {layer_id!r}; các lớp: {', '.join(LAYERS)}", str(exc)))
        return done()
    try:
        fmap = parse_field_map(opts.field_map)
    except ValueError as exc:
        result.issues.append(Issue(None, None, "field_map", f"--field-map sai cú pháp ở {exc}; dùng cot=truong,...",
                                   f"bad --field-map entry {exc}; use column=field,..."))
        return done()
    try:
        data = read_vector(p, crs=opts.crs, source_layer=opts.source_layer, encoding=opts.encoding,
                           swap=opts.swap_xy, x_field=opts.x_field, y_field=opts.y_field, wkt_field=opts.wkt_field,
                           geometry_optional=layer.geometry_nullable)
    except DataFileError as exc:
        result.issues.append(Issue(None, None, "file", exc.vi, exc.en))
        return done()
    result.rows_read = len(data)
    result.source_crs = data.source_crs.key
    result.encoding = data.encoding
    result.notes.extend(data.notes)
    for e in data.row_errors:
        result.issues.append(Issue(1 + e.row, e.field, "geometry_parse", e.vi, e.en))
    columns = [str(c) for c in data.frame.columns]
    mapping, ignored, issues = map_columns(layer, columns, fmap)
    result.issues.extend(issues)
    if ignored:
        result.notes.append((f"Bỏ qua các cột không thuộc lớp: {', '.join(ignored)}",
                             f"ignored columns that are not layer fields: {', '.join(ignored)}"))
    frame = data.frame[list(mapping)].rename(columns=mapping)
    geometry = data.geometry
    registering = layer.registration is not None and not opts.bulk
    if layer.registration is not None and opts.bulk:
        result.notes.append(BULK_NOTE)
    if registering and opts.repair:     # area and commune of the repaired shape
        geometry, repaired = registration.repair_batch(geometry)
        result.issues.extend(repaired)
    computed_areas = None          # reused by the registration checks
    for f in layer.fields:
        if f.computed is not None and f.name not in frame.columns and must_have(layer, f):
            compute, note_vi, note_en = COMPUTED[f.computed]
            values = compute(geometry)
            computed_areas = values if f.computed == "area_m2_from_geometry" else computed_areas
            frame = frame.assign(**{f.name: values})
            result.notes.append((note_vi.format(field=f.name), note_en.format(field=f.name)))
    if opts.mode not in upsert.MODES or opts.decimal_separator not in (None, ",", "."):
        result.issues.append(Issue(None, None, "options", "--mode là insert, update hoặc upsert; --decimal-separator "
                                   "là ',' hoặc '.'", "--mode is insert, update or upsert; --decimal-separator is "
                                   "',' or '.'"))
        return done()
    if registering and opts.mode != "insert":
        result.issues.append(Issue(None, "mode", "options", REGISTERED_MODE_VI.format(layer=layer.id, mode=opts.mode),
                                   REGISTERED_MODE_EN.format(layer=layer.id, mode=opts.mode)))
        return done()
    by_key = opts.mode != "insert"
    try:
        with connect("writer", dsn=dsn) as conn, decimal_separator(opts.decimal_separator):
            if registering:      # under the layer's registration lock until the COPY commits
                registration.lock(conn, layer)
                frame, pre, hits = registration.precheck_batch(conn, layer, frame, geometry)
                result.issues.extend(pre)
            prepared = prepare_frame(layer, frame, geometry, None if by_key else conn, first_row=1,
                                     repair=opts.repair, partial=opts.mode == "update")
            result.issues.extend(prepared.issues)
            if registering:          # also after other errors: the report names every problem at once
                result.issues.extend(registration.check_batch(
                    conn, layer, prepared.frame, prepared.geometry, opts.policy or registration.Policy.from_settings(),
                    hits=hits, areas=computed_areas))
            ids: list[int | None] = []
            if by_key and not result.errors:
                ids, more = upsert.plan(conn, layer, prepared, opts.mode, list(frame.columns))  # type: ignore[arg-type]
                result.issues.extend(more)
            if result.errors:
                conn.rollback()
                return done()
            if opts.principal is not None:
                result.issues.extend(scope_issues(conn, layer, prepared, opts.principal))
                if result.errors:
                    conn.rollback()
                    return done()
            actor = opts.principal.actor if opts.principal is not None else f"import:{opts.user}"
            if by_key:
                conn.execute("SELECT set_config('datso.actor', %s, true)", [actor])
                try:
                    result.rows_updated = upsert.write_updates(conn, layer, prepared, ids, list(frame.columns),
                                                               lambda p: _copy_frame(layer, p, 0, len(p.frame)))
                except psycopg.Error as exc:
                    conn.rollback()
                    result.issues.append(_db_issue(exc, 1, 0))
                    return done()
                prepared = upsert.subset(prepared, np.array([i is None for i in ids], dtype=bool))
            written, problem = write_prepared(conn, layer, prepared, actor, opts.progress)
            if problem is not None:
                conn.rollback()
                result.issues.append(problem)
                return done()
            conn.commit()
            result.rows_written = written + result.rows_updated
    except psycopg.OperationalError:
        result.issues.append(Issue(None, None, "database", "không kết nối được cơ sở dữ liệu",
                                   "cannot connect to the database"))
    return done()


__all__ = ["ImportOptions", "ImportResult", "import_file", "map_columns", "parse_field_map", "scope_issues",
           "write_prepared", "write_report"]
