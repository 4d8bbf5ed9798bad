"""OGC API – Features Part 4 writes: create, replace, update (merge patch) and delete one feature.

Every write validates with `layers.ingest.validation` (the same checks as the importer), runs in one transaction
that first locks the row (`SELECT ... FOR UPDATE`) and compares its version with the client's `If-Match`,
records who did it (`datso.actor`, read by the audit triggers that write `history`), and enforces the status
lifecycles declared in the registry (`Layer.lifecycle`). Nothing is written when anything is refused.

The version of a row (its ETag) is `"<id>-<xmin>"`: it changes with every committed update.

The functions take where to write as `target`: a libpq DSN (one connection per call: the CLI, tests) or a
`WritePool` (the API: a lazily opened psycopg pool, so the service starts while the database is down). A
database that cannot be reached raises `DatabaseDown` (the API answers 503 with Retry-After).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd
import psycopg
import psycopg_pool
import shapely
import shapely.geometry
from psycopg import sql
from psycopg.types.json import Jsonb
from shapely import wkb
from shapely.geometry.base import BaseGeometry

from gis.crs import CrsDef, transformer
from gis.errors import BilingualError
from gis.geometry import area_m2
from layers.catalog.registry import SCOPE_GEOMETRY, Layer
from layers.ingest import registration
from layers.ingest.rules import rule_for
from layers.ingest.validation import prepare_records
from layers.store import connect


class WriteError(BilingualError):
    """A refused write: HTTP status, bilingual detail, and the validation issues (as dicts) if any."""

    def __init__(self, status: int, vi: str, en: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(vi, en, status)
        self.errors = errors or []

    def members(self) -> dict[str, Any]:
        return {"errors": self.errors} if self.errors else {}


class DatabaseDown(RuntimeError):
    """The database could not be reached (or dropped the connection) during a write: nothing was written."""


class Writer(Protocol):
    """Who writes: `layers.accounts.principal.Principal` (a user, with a scope) satisfies it. A plain string
    actor (the CLI, scripts, tests) writes without a scope check. `check_scope` raises a 403 BilingualError
    when the row as it was (`old_row`, None on create) or as it will be (`new_row`, None on delete) is outside
    the writer's scope; rows are field values plus the geometry under `SCOPE_GEOMETRY`."""

    @property
    def actor(self) -> str: ...

    def check_scope(self, conn: psycopg.Connection, layer: Layer, old_row: dict[str, Any] | None,
                    new_row: dict[str, Any] | None) -> None: ...

    def rows_outside(self, conn: psycopg.Connection, layer: Layer, rows: Sequence[dict[str, Any]]
                     ) -> list[tuple[int, str | None, str, str]]: ...


Actor = str | Writer


def etag(feature_id: int, xmin: str) -> str:
    return f'"{feature_id}-{xmin}"'


# -- connections ----------------------------------------------------------------------------------------------

class WritePool:
    """A psycopg connection pool for the API's writes, opened on first use (the app starts while the database is
    down) and refilled by itself when the database comes back. Every connection runs with the API session
    settings and a `statement_timeout` for writes (layers.store.connect: always the primary)."""

    def __init__(self, dsn: str, min_size: int = 0, max_size: int = 4, timeout: float = 3.0,
                 statement_timeout_ms: int = 15_000, reconnect_timeout: float = 5.0,
                 on_write: Callable[[], None] | None = None) -> None:
        self.dsn, self.timeout = dsn, timeout
        # through PgBouncer in transaction mode the startup `options` are dropped: each use then opens its
        # transaction with the write statement_timeout (SET LOCAL)
        self.local_timeout = str(statement_timeout_ms) if connect.pooled() else None
        self.on_write = on_write     # told after each use that ended without error (a read replica's routing)
        self.writes = 0
        self._pool = connect.sync_pool("writer", dsn=dsn, min_size=min_size, max_size=max_size, timeout=timeout,
                                       statement_timeout_ms=statement_timeout_ms,
                                       reconnect_timeout=reconnect_timeout, name="datso-writes")
        self._lock = threading.Lock()
        self._opened = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self._pool.open(wait=False)
                    self._opened = True
        try:
            conn = self._pool.getconn(timeout=self.timeout)
        except psycopg_pool.PoolTimeout as exc:       # nothing to connect to within `timeout`
            raise DatabaseDown(str(exc)) from exc
        try:
            if self.local_timeout is None:
                yield conn
            else:
                # the transaction opened here is the caller's: its `with conn.transaction()` becomes a savepoint,
                # so it is committed here when the block ends without error (an explicit commit()/rollback()
                # of the caller has already ended it)
                conn.execute(connect.LOCAL_TIMEOUT_PSYCOPG, (self.local_timeout,))
                yield conn
                if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                    conn.commit()
        finally:
            self._pool.putconn(conn)     # rolled back if left in a transaction, dropped if broken
        self.writes += 1
        if self.on_write is not None:
            self.on_write()

    def stats(self) -> dict[str, int]:
        """psycopg_pool's counters (pool_size, pool_available, pool_max, requests_waiting, ...); {} before the
        first write opened the pool."""
        return self._pool.get_stats() if self._opened else {}

    def close(self) -> None:
        if self._opened:
            self._pool.close(timeout=5.0)
            self._opened = False


Target = str | WritePool


@contextmanager
def _connect(target: Target) -> Iterator[psycopg.Connection]:
    """A connection (in a transaction, committed when the block ends without error) from a DSN or a pool;
    DatabaseDown when the database cannot be reached or goes away meanwhile."""
    try:
        if isinstance(target, WritePool):
            with target.connection() as conn:
                yield conn
        else:
            with connect.connect("writer", dsn=target) as conn:
                yield conn
    except psycopg.OperationalError as exc:   # connection refused/lost, server shutting down, statement timeout
        raise DatabaseDown(str(exc)) from exc


@dataclass(frozen=True)
class GeometryLimits:
    """Bounds on a written geometry (settings DATSO_MAX_GEOMETRY_VERTICES / DATSO_MAX_GEOMETRY_BYTES)."""

    max_vertices: int = 20_000
    max_bytes: int = 1_000_000


# -- parsing of the request body ------------------------------------------------------------------------------

def _geometry_error(status: int, vi: str, en: str, code: str) -> WriteError:
    return WriteError(status, vi, en, [{"field": "geometry", "code": code, "message": en}])


def _geometry(layer: Layer, g: Any, crs: CrsDef, limits: GeometryLimits | None = None) -> BaseGeometry | None:
    if g is None:
        return None
    if not isinstance(g, dict) or "type" not in g:
        raise _geometry_error(400, "geometry phải là một đối tượng GeoJSON", "geometry must be a GeoJSON geometry object",
                              "geometry_type")
    limits = limits or GeometryLimits()
    size = len(orjson.dumps(g))
    if size > limits.max_bytes:
        raise _geometry_error(413, f"geometry dài {size} byte, vượt giới hạn {limits.max_bytes} byte",
                              f"geometry is {size} bytes, more than the limit of {limits.max_bytes} bytes",
                              "geometry_too_large")
    try:
        shape = shapely.geometry.shape(g)
    except Exception:  # shapely raises several types for malformed coordinates
        raise _geometry_error(400, "geometry GeoJSON không đọc được (kiểu hoặc tọa độ sai)",
                              "the GeoJSON geometry cannot be read (bad type or coordinates)", "geometry_invalid") from None
    if shape.is_empty:
        return None            # an empty geometry is no geometry (a PATCH stored EMPTY in NOT NULL columns)
    n = int(shapely.get_num_coordinates(shape))
    if n > limits.max_vertices:
        raise _geometry_error(413, f"geometry có {n} đỉnh, vượt giới hạn {limits.max_vertices} đỉnh",
                              f"geometry has {n} vertices, more than the limit of {limits.max_vertices}",
                              "geometry_too_large")
    if crs.lat_first:
        shape = shapely.transform(shape, lambda x, y: (y, x), interleaved=False)
    if crs.srid != 4326:
        tr = transformer(crs.key, "OGC:CRS84")
        shape = shapely.transform(shape, lambda x, y: tr.transform(x, y), interleaved=False)
    if not bool(shapely.is_empty(shape)) and not bool(np.isfinite(shapely.get_coordinates(shape)).all()):
        # huge values the transformation sends to infinity: PostGIS would refuse them (a 500 before)
        raise _geometry_error(400, "geometry có tọa độ không hữu hạn (ngoài miền của hệ tọa độ)",
                              "geometry has non-finite coordinates (outside the CRS's domain)", "geometry_invalid")
    return shape


def parse_feature(layer: Layer, body: Any, crs: CrsDef, partial: bool = False,
                  limits: GeometryLimits | None = None) -> tuple[dict[str, Any], BaseGeometry | None, bool]:
    """(properties, geometry in lon/lat, geometry given?) from a GeoJSON Feature (or a merge patch of one)."""
    if not isinstance(body, dict):
        raise WriteError(400, "Nội dung phải là một GeoJSON Feature", "The body must be a GeoJSON Feature")
    if not partial and body.get("type") != "Feature":
        raise WriteError(400, "Nội dung phải là GeoJSON có \"type\": \"Feature\"",
                         "The body must be GeoJSON with \"type\": \"Feature\"")
    unknown = set(body) - {"type", "id", "geometry", "properties", "links", "bbox"}
    if unknown:
        raise WriteError(400, f"Thành phần không hợp lệ: {', '.join(sorted(unknown))}",
                         f"Unknown members: {', '.join(sorted(unknown))}")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise WriteError(400, "properties phải là một đối tượng", "properties must be an object")
    return dict(props), _geometry(layer, body.get("geometry"), crs, limits), "geometry" in body


# -- the writes -----------------------------------------------------------------------------------------------

def _validate(conn: psycopg.Connection, layer: Layer, props: dict[str, Any], geom: BaseGeometry | None,
              partial: bool, replaces: int | None, lang: str) -> tuple[dict[str, Any], BaseGeometry | None]:
    prepared = prepare_records(layer, [(props, geom)], conn, partial=partial,
                               replaces=[replaces] if replaces is not None else None)
    if not prepared.ok:
        errs = prepared.errors
        first = errs[0].describe("vi").replace("dòng 1, ", "")
        first_en = errs[0].describe("en").replace("row 1, ", "")
        raise WriteError(422, f"Dữ liệu không hợp lệ: {first}" + (f" (và {len(errs) - 1} lỗi khác)" if len(errs) > 1
                                                                    else ""),
                         f"Invalid feature: {first_en}" + (f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""),
                         [i.as_dict(lang) for i in errs])
    rec = prepared.records()[0] if len(prepared.frame.columns) else {}
    if partial:
        rec = {k: v for k, v in rec.items() if k in props}
    g = prepared.geometry[0] if len(prepared.geometry) else None
    return rec, g


def _check_transition(layer: Layer, old: str | None, new: str | None) -> None:
    """Refuse a change of state the layer's lifecycle does not allow (none declared: any change)."""
    allowed = layer.lifecycle.allowed(old) if layer.lifecycle is not None else None
    if allowed is None or new is None or old == new:
        return
    if new not in allowed:
        ok_vi = ", ".join(allowed) if allowed else "không có (trạng thái cuối)"
        ok_en = ", ".join(allowed) if allowed else "none (final state)"
        raise WriteError(409, f"Không thể chuyển trạng thái từ '{old}' sang '{new}'; được phép: {ok_vi}",
                         f"Status cannot change from '{old}' to '{new}'; allowed: {ok_en}")


_REFUSED = (psycopg.errors.IntegrityError, psycopg.DataError)


def _db_error(exc: psycopg.Error) -> WriteError:
    rule = exc.diag.constraint_name or ""
    known = rule_for(rule)
    if known:
        return WriteError(422, f"Dữ liệu không hợp lệ: {known[1]}", f"Invalid feature: {known[2]}",
                          [{"field": known[0], "code": "rule", "message": known[2]}])
    prefix = f"ck_{exc.diag.table_name or ''}_"
    if rule.startswith(prefix) and rule.endswith("_range"):      # migration 0005: dates in a sane range
        col = rule[len(prefix):-len("_range")]
        return WriteError(422, f"Dữ liệu không hợp lệ: {col} nằm ngoài khoảng ngày cho phép",
                          f"Invalid feature: {col} is outside the accepted date range",
                          [{"field": col, "code": "date_range", "message": "outside the accepted date range"}])
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return WriteError(409, "Trùng khóa với một đối tượng đã có", "Duplicates the key of an existing feature")
    if isinstance(exc, psycopg.DataError):
        # a value the validation let through but the column cannot hold: still the client's input, never a 500
        return WriteError(422, "Cơ sở dữ liệu không chấp nhận một giá trị của đối tượng",
                          "The database cannot store a value of this feature",
                          [{"field": None, "code": "database", "message": "a value does not fit its column"}])
    return WriteError(422, "Cơ sở dữ liệu từ chối đối tượng này (vi phạm ràng buộc dữ liệu)",
                      f"The database refused this feature (rule {rule or 'unknown'})")


def _begin(conn: psycopg.Connection, actor: Actor) -> None:
    conn.execute("SELECT set_config('datso.actor', %s, true)", [actor if isinstance(actor, str) else actor.actor])


def _scoped(actor: Actor) -> Writer | None:
    return None if isinstance(actor, str) else actor


def _lock(conn: psycopg.Connection, layer: Layer, fid: int, if_match: str | None) -> dict[str, Any]:
    """Lock the row, check If-Match; returns its state and its place (`place`: the scope field's value and the
    geometry, for the scope check)."""
    cols = [layer.id_column, *([layer.lifecycle.field] if layer.lifecycle is not None else [])]
    q = sql.SQL("SELECT xmin::text AS v, {cols}{place} FROM {t} WHERE {id} = %s FOR UPDATE").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols), place=_place_sql(layer),
        t=sql.Identifier(layer.table), id=sql.Identifier(layer.id_column))
    row = conn.execute(q, [fid]).fetchone()
    if row is None:
        raise WriteError(404, f"Lớp '{layer.id}' không có đối tượng {fid}", f"Collection '{layer.id}' has no feature {fid}")
    current = etag(fid, row[0])
    if if_match is None:
        raise WriteError(428, f"Cần header If-Match với ETag hiện tại của đối tượng ({current})",
                         f"An If-Match header with the feature's current ETag is required ({current})")
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        # "*" matches any version: it would skip the lost-update check this header exists for
        raise WriteError(428, f"If-Match: * không được chấp nhận; gửi ETag hiện tại của đối tượng ({current})",
                         f"If-Match: * is not accepted; send the feature's current ETag ({current})")
    if current not in tags:
        raise WriteError(412, "Đối tượng đã bị người khác thay đổi (ETag không khớp); hãy tải lại rồi sửa",
                         "The feature was changed by someone else (ETag mismatch); reload it and retry",
                         [{"current_etag": current}])
    return {"state": row[2] if layer.lifecycle is not None else None, "place": _place_row(layer, row)}


def _place_sql(layer: Layer) -> sql.Composable:
    """`, scope_value, scope_geom` of a row: what the scope check reads (the geometry only where it decides)."""
    by_geometry = layer.scope_key is None and not layer.national_only     # else the geometry is not read
    return sql.SQL(", {} AS scope_value, {} AS scope_geom").format(
        sql.Identifier(layer.scope_key) if layer.scope_key else sql.SQL("NULL"),
        sql.SQL("ST_AsBinary({})").format(sql.Identifier(layer.geometry_column)) if by_geometry else sql.SQL("NULL"))


def _place_row(layer: Layer, row: Sequence[Any]) -> dict[str, Any]:
    place: dict[str, Any] = {SCOPE_GEOMETRY: wkb.loads(bytes(row[-1])) if row[-1] is not None else None}
    if layer.scope_key:
        place[layer.scope_key] = row[-2]
    return place


def lock_in_scope(conn: psycopg.Connection, layer: Layer, fid: int, actor: Actor) -> None:
    """Lock a feature whose dependants (links, ...) are written: 404 when it does not exist, 403 when a scoped
    writer may not write it (the same rule as editing the feature itself)."""
    q = sql.SQL("SELECT {id}{place} FROM {t} WHERE {id} = %s FOR UPDATE").format(
        id=sql.Identifier(layer.id_column), place=_place_sql(layer), t=sql.Identifier(layer.table))
    row = conn.execute(q, [fid]).fetchone()
    if row is None:
        raise WriteError(404, f"Lớp '{layer.id}' không có đối tượng {fid}", f"Collection '{layer.id}' has no feature {fid}")
    if (who := _scoped(actor)) is not None:
        who.check_scope(conn, layer, _place_row(layer, row), None)


def _new_place(layer: Layer, rec: dict[str, Any], geom: BaseGeometry | None, old: dict[str, Any] | None,
               geom_given: bool) -> dict[str, Any]:
    """The place of the row as it will be: given values over the old ones (a merge patch keeps the rest)."""
    place: dict[str, Any] = dict(old or {})
    if geom_given or old is None:
        place[SCOPE_GEOMETRY] = geom
    if layer.scope_key and (layer.scope_key in rec or old is None):
        place[layer.scope_key] = rec.get(layer.scope_key)
    return place


def _values(layer: Layer, rec: dict[str, Any], geom: BaseGeometry | None,
            with_geom: bool) -> tuple[list[str], list[sql.Composable], list[Any]]:
    names: list[str] = []
    exprs: list[sql.Composable] = []
    params: list[Any] = []
    for name, v in rec.items():
        if layer.get_field(name) is None:
            continue
        f = layer.get_field(name)
        names.append(name)
        exprs.append(sql.SQL("%s"))
        params.append(Jsonb(v) if f is not None and f.type == "object" else v)
    if with_geom:
        names.append(layer.geometry_column)
        if geom is None:
            exprs.append(sql.SQL("NULL"))
        else:
            exprs.append(sql.SQL("ST_SetSRID(ST_GeomFromWKB(%s), 4326)"))
            params.append(wkb.dumps(geom))
    return names, exprs, params


def create(target: Target, layer: Layer, body: Any, crs: CrsDef, actor: Actor, lang: str = "vi",
           limits: GeometryLimits | None = None, *, repair: bool = False,
           policy: registration.Policy | None = None, notes: list[dict[str, Any]] | None = None) -> tuple[int, str]:
    """Create a feature. A layer with a `registration` creates a draft and checks it (layers/ingest/registration.py):
    `repair` accepts the repair of an invalid geometry, `policy` the settings and the officer's scope, and
    `notes` (if given) receives the warnings (area far from the supplied one, commune derived, repair)."""
    props, geom, _ = parse_feature(layer, body, crs, limits=limits)
    reg = layer.registration
    warned: list[Any] = []
    if reg is not None:
        registration.precheck_new(layer, props)
        geom, repaired = registration.repair_or_offer(geom, repair)
        warned += [repaired] if repaired is not None else []
        if reg.area_field and props.get(reg.area_field) is None and geom is not None:
            props[reg.area_field] = round(area_m2(geom), 2)     # computed anyway: the stored area is the geodesic one
    with _connect(target) as conn, conn.transaction():
        _begin(conn, actor)
        hits = None
        if reg is not None:
            registration.lock(conn, layer)       # held until commit: overlapping registrations are serialised
            if props.get(reg.commune_field) in (None, "") and geom is not None:
                hits = registration.commune_hits(conn, np.array([geom], dtype=object))
                props[reg.commune_field] = hits[0][0].code if hits[0] else None
                if props[reg.commune_field] is None:
                    raise registration.RegistrationError(
                        422, "Hình học không nằm trong xã nào của tỉnh (ngoài tỉnh)",
                        "The geometry lies in no commune of the province (outside the province)", field="geometry")
                warned.append(registration.derived_issue(reg.commune_field, props[reg.commune_field]))
        rec, g = _validate(conn, layer, props, geom, False, None, lang)
        if reg is not None:
            frame = pd.DataFrame({k: pd.Series([v], dtype=object) for k, v in rec.items()})
            issues = registration.check_batch(conn, layer, frame, np.array([g], dtype=object),
                                              policy or registration.Policy.from_settings(), hits=hits)
            registration.raise_for(issues, lang)
            rec = {k: frame[k].iloc[0] if k in frame.columns else v for k, v in rec.items()}
            warned += [i for i in issues if not i.is_error]
            if notes is not None:
                notes.extend({k: v for k, v in i.as_dict(lang).items() if k != "row"} for i in warned)
        if (who := _scoped(actor)) is not None:     # the values as stored (coerced) decide
            who.check_scope(conn, layer, None, _new_place(layer, rec, g, None, True))
        names, exprs, params = _values(layer, rec, g, True)
        q = sql.SQL("INSERT INTO {t} ({cols}) VALUES ({vals}) RETURNING {id}, xmin::text").format(
            t=sql.Identifier(layer.table), cols=sql.SQL(", ").join(sql.Identifier(n) for n in names),
            vals=sql.SQL(", ").join(exprs), id=sql.Identifier(layer.id_column))
        try:
            with conn.transaction():
                row = conn.execute(q, params).fetchone()
        except _REFUSED as exc:
            raise _db_error(exc) from None
        assert row is not None
        return int(row[0]), etag(int(row[0]), row[1])


def _update(target: Target, layer: Layer, fid: int, body: Any, crs: CrsDef, actor: Actor, if_match: str | None,
            partial: bool, lang: str, limits: GeometryLimits | None,
            policy: registration.Policy | None = None) -> str:
    props, geom, geom_given = parse_feature(layer, body, crs, partial, limits)
    with _connect(target) as conn, conn.transaction():
        _begin(conn, actor)
        old = _lock(conn, layer, fid, if_match)
        if (who := _scoped(actor)) is not None:     # the feature as it is must be in scope before anything
            who.check_scope(conn, layer, old["place"], None)
        if partial and geom_given and geom is None and not layer.geometry_nullable:
            raise WriteError(422, "Dữ liệu không hợp lệ: thiếu hình học (lớp này bắt buộc có hình học)",
                             "Invalid feature: geometry is missing (this collection requires one)",
                             [{"field": "geometry", "code": "geometry_required", "message": "geometry is missing"}])
        rec, g = _validate(conn, layer, props, geom, partial, fid, lang)
        if not partial:
            # PUT replaces: fields left out go back to their defaults/NULL
            for f in layer.fields:
                if f.nullable and f.name not in rec:
                    rec[f.name] = None
        if who is not None:                         # ... and as it will be (moving it out of scope: 403)
            who.check_scope(conn, layer, None, _new_place(layer, rec, g, old["place"], geom_given or not partial))
        if layer.lifecycle is not None and layer.lifecycle.field in rec:
            _check_transition(layer, old["state"], rec[layer.lifecycle.field])
        if layer.registration is not None:     # codes granted, reasons, decisions, dates, a changed geometry
            registration.check_update(conn, layer, fid, rec, g, geom_given or not partial,
                                      policy or registration.Policy.from_settings(), lang, partial)
        with_geom = geom_given or not partial
        names, exprs, params = _values(layer, rec, g, with_geom)
        if not names:
            raise WriteError(400, "Không có gì để cập nhật", "Nothing to update")
        q = sql.SQL("UPDATE {t} SET {sets} WHERE {id} = %s RETURNING xmin::text").format(
            t=sql.Identifier(layer.table),
            sets=sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(n), e) for n, e in zip(names, exprs,
                                                                                                   strict=True)),
            id=sql.Identifier(layer.id_column))
        try:
            with conn.transaction():
                row = conn.execute(q, [*params, fid]).fetchone()
        except _REFUSED as exc:
            raise _db_error(exc) from None
        assert row is not None
        return etag(fid, row[0])


def replace(target: Target, layer: Layer, fid: int, body: Any, crs: CrsDef, actor: Actor, if_match: str | None,
            lang: str = "vi", limits: GeometryLimits | None = None,
            policy: registration.Policy | None = None) -> str:
    return _update(target, layer, fid, body, crs, actor, if_match, False, lang, limits, policy)


def update(target: Target, layer: Layer, fid: int, body: Any, crs: CrsDef, actor: Actor, if_match: str | None,
           lang: str = "vi", limits: GeometryLimits | None = None,
           policy: registration.Policy | None = None) -> str:
    """JSON merge patch (RFC 7396) of a feature: only the given properties (and geometry) change."""
    return _update(target, layer, fid, body, crs, actor, if_match, True, lang, limits, policy)


def delete(target: Target, layer: Layer, fid: int, actor: Actor, if_match: str | None) -> None:
    with _connect(target) as conn, conn.transaction():
        _begin(conn, actor)
        old = _lock(conn, layer, fid, if_match)
        if (who := _scoped(actor)) is not None:
            who.check_scope(conn, layer, old["place"], None)
        q = sql.SQL("DELETE FROM {t} WHERE {id} = %s").format(t=sql.Identifier(layer.table),
                                                               id=sql.Identifier(layer.id_column))
        try:
            with conn.transaction():
                conn.execute(q, [fid])
        except _REFUSED as exc:
            raise _db_error(exc) from None
