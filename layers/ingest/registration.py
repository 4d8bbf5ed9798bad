"""Registration of growing areas and packing houses: drafts, checks, overlap safety, code granting, expiry.

What a layer does is declared by its `Layer.registration` (`layers/catalog/lifecycle.py` `Registration`); the
thresholds, patterns and provinces come from `RegistrationSettings` (a `Policy` here). Every face calls these
functions: API create/update (`layers/ingest/writes.py`) and file imports (`layers/ingest/importer.py`, the
upload endpoint and `datso import`, which registers by default; `--bulk` is the way around).

- A new feature is a draft without a code: a status other than the draft state, or a code, is refused.
- `check_batch` checks new or changed geometries column-wise (an import of thousands of rows runs a handful of
  statements): the area is computed from the geometry (geodesic; a supplied value more than
  `area_warning_pct` % off is a warning and the computed one is stored), the crop's minimum area (by crop class,
  crop and crop:market), the commune (derived from the location when absent: the commune holding the largest
  share; refused when a given commune holds less than `commune_min_share` of it), the province (the commune's
  province must be allowed, and the area must not reach outside it), and overlaps with the features in the
  declared states and with the other rows of the batch (beyond `overlap_tolerance_m2`).
- Overlap safety: every registration (and every geometry change) of a layer takes the transaction-level
  advisory lock of that layer (`lock`) before it reads the existing geometries, and keeps it until it commits.
  Two overlapping registrations are therefore serialised: the second one reads after the first committed and
  sees it. One lock per layer (not per province): an area near a provincial boundary may touch the neighbour's
  areas, and a registration holds the lock for a few milliseconds only.
- Codes are granted at activation (`grant_code`) from the configured pattern, with a counter per prefix in
  `code_counters` that only ever increases (never max()+1 over live rows), so a code is never granted twice,
  also after revocation; a code already taken by hand-typed or legacy data is skipped.
- Expiry: `expire_due` moves features in the expiring states past their `valid_to` to the expired state (the
  API runs it at start and every `DATSO_REGISTRATION_EXPIRY_INTERVAL_S`, the CLI has `datso areas expire`,
  the sample loader runs it), and `check_update` refuses any write whose status contradicts its dates.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from shapely.geometry.base import BaseGeometry

from gis import geometry as geo
from gis.errors import BilingualError
from layers.catalog.lifecycle import Registration
from layers.catalog.registry import LAYERS, Layer
from layers.ingest.validation import Issue
from layers.settings import RegistrationSettings, get_registration_settings
from layers.store import models, vocab

LOCK_CLASS = 0x64617473          # 'dats': the advisory-lock namespace of registrations
ADMIN = models.AdminUnit.__tablename__


class RegistrationError(BilingualError):
    """A refused registration or transition: names the field and value; carries the issues and, for an invalid
    geometry, the repair offered."""

    def __init__(self, status: int, vi: str, en: str, *, field: str | None = None, value: Any = None,
                 errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(vi, en, status)
        self.field, self.value = field, value
        self.errors = errors if errors is not None else [{"field": field, "code": "registration", "message": en}]
        self.extra = extra

    def members(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "errors": self.errors, **self.extra}


@dataclass(frozen=True)
class Policy:
    """The settings a registration applies (`DATSO_REGISTRATION_*`), plus the caller's scope of provinces."""

    provinces: tuple[str, ...] = ()              # the service's provinces (empty: any)
    scope: tuple[str, ...] | None = None         # the officer's provinces (None: not restricted)
    overlap_tolerance_m2: float = 1.0
    area_warning_pct: float = 5.0
    min_area_ha: dict[str, float] = field(default_factory=lambda: {"perennial": 1.0, "annual": 0.1})
    commune_min_share: float = 0.5
    code_patterns: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, s: RegistrationSettings | None = None,
                      scope: Sequence[str] | None = None) -> Policy:
        s = s or get_registration_settings()
        return cls(tuple(s.registration_provinces), tuple(scope) if scope is not None else None,
                   s.registration_overlap_tolerance_m2, s.registration_area_warning_pct,
                   dict(s.registration_min_area_ha), s.registration_commune_min_share,
                   dict(s.registration_code_patterns))


def reg_of(layer: Layer) -> Registration:
    assert layer.registration is not None
    return layer.registration


def lock(conn: psycopg.Connection, layer: Layer) -> None:
    """The layer's registration lock, held until the transaction ends (see the module doc)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, zlib.crc32(layer.table.encode()) & 0x7FFFFFFF])


def _issue(row: int, fld: str | None, code: str, vi: str, en: str, severity: str = "error") -> Issue:
    return Issue(row, fld, code, vi, en, "warning" if severity == "warning" else "error")


# -- the checks -----------------------------------------------------------------------------------------------

def precheck_new(layer: Layer, props: dict[str, Any]) -> None:
    """A new feature is a draft without a code (API create): refused before anything else is read."""
    reg = reg_of(layer)
    lc = layer.lifecycle
    if lc is not None and props.get(lc.field) not in (None, reg.draft_state):
        v = props[lc.field]
        raise RegistrationError(
            422, f"Trường {lc.field} = {v!r}: đối tượng mới luôn được tạo ở trạng thái '{reg.draft_state}' (nháp); "
                 f"cấp mã bằng PATCH {lc.field}: {reg.active_state} kèm {', '.join(reg.decision_fields)}",
            f"Field {lc.field} = {v!r}: a new feature is always created as '{reg.draft_state}'; grant its code "
            f"with a PATCH of {lc.field}: {reg.active_state} and {', '.join(reg.decision_fields)}",
            field=lc.field, value=v)
    if props.get(reg.code_field) not in (None, ""):
        v = props[reg.code_field]
        raise RegistrationError(
            422, f"Trường {reg.code_field} = {v!r}: mã được cấp khi kích hoạt, bản nháp không có mã",
            f"Field {reg.code_field} = {v!r}: the code is granted at activation; a draft has none",
            field=reg.code_field, value=v)


def precheck_batch(conn: psycopg.Connection, layer: Layer, frame: pd.DataFrame, geoms: np.ndarray,
                   first_row: int = 1) -> tuple[pd.DataFrame, list[Issue], list[list[CommuneHit]] | None]:
    """`precheck_new` for an import, row by row, and the commune derived where the file has none (with the
    communes each valid geometry meets, for `check_batch`)."""
    reg = reg_of(layer)
    lc = layer.lifecycle
    issues: list[Issue] = []
    for col, allowed in ((lc.field if lc else None, (reg.draft_state, )), (reg.code_field, ())):
        if col is None or col not in frame.columns:
            continue
        for i, v in enumerate(frame[col].to_numpy(dtype=object)):
            if v is None or (isinstance(v, float) and np.isnan(v)) or v == "" or v in allowed:
                continue
            issues.append(_issue(first_row + i, col, "not_draft",
                                 f"{col} = {v!r}: đối tượng mới luôn là bản nháp ('{reg.draft_state}') không có mã; "
                                 "mã được cấp khi kích hoạt",
                                 f"{col} = {v!r}: a new feature is always a draft ('{reg.draft_state}') without a "
                                 "code; the code is granted at activation"))
    cf = reg.commune_field
    given = frame[cf].to_numpy(dtype=object) if cf in frame.columns else np.full(len(frame), None, dtype=object)
    empty = np.array([not (isinstance(v, str) and v.strip()) and not isinstance(v, int | np.integer) for v in given],
                     dtype=bool)
    hits = None
    if empty.any():
        arr = geo.force_2d(geo.as_array(geoms))
        valid = ~shapely.is_missing(arr) & ~shapely.is_empty(arr)
        valid[valid] = shapely.is_valid(arr[valid])
        sub = arr.copy()
        sub[~valid] = None
        hits = commune_hits(conn, sub)
        derived = [h[0].code if h else None for h in hits]
        filled = given.copy()
        for k in np.flatnonzero(empty):
            i = int(k)
            filled[i] = derived[i]
            if derived[i] is None and sub[i] is not None:
                issues.append(_issue(first_row + i, "geometry", "outside_province",
                                     "vị trí không thuộc xã nào của tỉnh (ngoài tỉnh)",
                                     "the location lies in no commune of the province (outside the province)"))
        frame = frame.assign(**{cf: filled})
    return frame, issues, hits


def repair_batch(geoms: Any, first_row: int = 1) -> tuple[np.ndarray, list[Issue]]:
    """An import's invalid geometries repaired up front (asked for with `repair`), each with a warning, so the
    area and the commune are computed from the repaired shape."""
    arr = geo.as_array(geoms).copy()
    issues: list[Issue] = []
    reasons = geo.validity_reasons(arr)
    for k in np.flatnonzero(np.array([r is not None for r in reasons], dtype=bool)):
        i = int(k)
        fixed = geo.repair(arr[i])
        if fixed.geometry.is_empty:
            continue                     # the validation reports it as invalid
        arr[i] = fixed.geometry
        issues.append(_issue(first_row + i, "geometry", "geometry_repaired",
                             f"đã sửa hình học theo yêu cầu ({reasons[i]})", f"geometry repaired on request ({reasons[i]})",
                             "warning"))
    return arr, issues


def repair_or_offer(geom: BaseGeometry | None, repair: bool) -> tuple[BaseGeometry | None, Issue | None]:
    """An invalid geometry is refused with the repaired one offered (`?repair=true` accepts it), never repaired
    silently. Returns (geometry to use, the warning saying it was repaired)."""
    if geom is None:
        return None, None
    reason = geo.explain_validity(geom)
    if reason is None:
        return geom, None
    fixed = geo.repair(geom)
    if fixed.geometry.is_empty:
        raise RegistrationError(422, f"Hình học không hợp lệ ({reason}) và không sửa được",
                                f"Invalid geometry ({reason}) that cannot be repaired", field="geometry", value=reason)
    if not repair:
        raise RegistrationError(
            422, f"Hình học không hợp lệ: {reason}. Bản sửa được đề xuất trong 'repaired_geometry' "
                 f"(diện tích {geo.area_m2(fixed.geometry):.0f} m²); gửi lại với ?repair=true để chấp nhận",
            f"Invalid geometry: {reason}. The repaired geometry is offered in 'repaired_geometry' "
            f"(area {geo.area_m2(fixed.geometry):.0f} m²); send again with ?repair=true to accept it",
            field="geometry", value=reason, repaired_geometry=shapely.geometry.mapping(fixed.geometry),
            repaired_area_m2=round(geo.area_m2(fixed.geometry), 2))
    return fixed.geometry, _issue(1, "geometry", "geometry_repaired", f"đã sửa hình học theo yêu cầu ({reason})",
                                  f"geometry repaired on request ({reason})", "warning")


def _min_area_ha(layer: Layer, policy: Policy, crop: Any, markets: Any) -> tuple[float, str] | None:
    """(threshold ha, which rule) for a crop and its markets: the largest of crop class, crop and crop:market."""
    if crop is None or (isinstance(crop, float) and np.isnan(crop)):
        return None
    rules = [(vocab.CROP_CLASSES.get(str(crop), ""), ), (str(crop), )]
    for m in markets if isinstance(markets, list | tuple | np.ndarray) else ():
        rules.append((f"{crop}:{m}", ))
    best: tuple[float, str] | None = None
    for (key, ) in rules:
        v = policy.min_area_ha.get(key)
        if v is not None and (best is None or v > best[0]):
            best = (float(v), key)
    return best


_COMMUNES = sql.SQL("""
WITH u AS MATERIALIZED (SELECT ord, ST_SetSRID(ST_GeomFromWKB(decode(h, 'hex')), 4326) AS geom
           FROM unnest(string_to_array(%s::text, ',')) WITH ORDINALITY AS u(h, ord))
SELECT u.ord, a.code, a.parent_code, a.name,
       CASE WHEN GeometryType(u.geom) NOT IN ('POLYGON', 'MULTIPOLYGON') THEN 0
            WHEN ST_CoveredBy(u.geom, a.geom) THEN ST_Area(u.geom::geography)
            ELSE ST_Area(ST_Intersection(u.geom, a.geom)::geography) END
FROM u JOIN {admin} a ON a.level = 'commune' AND a.scheme = '2025' AND a.valid_from <= current_date
     AND (a.valid_to IS NULL OR a.valid_to > current_date) AND ST_Intersects(a.geom, u.geom)
""").format(admin=sql.Identifier(ADMIN))


def geoms_param(geoms: np.ndarray) -> str:
    """A batch of geometries as ONE text parameter (hex WKB, comma-separated; the queries unnest it WITH
    ORDINALITY): psycopg dumps a list of 5,000 bytea values element by element in Python (a tenth of a 5,000-row
    import), a single string in no time."""
    return ",".join(shapely.to_wkb(geoms, hex=True)) if len(geoms) else ""


@dataclass
class CommuneHit:
    code: str
    province: str | None
    name: str
    m2: float


def commune_hits(conn: psycopg.Connection, geoms: np.ndarray) -> list[list[CommuneHit]]:
    """Per geometry, the communes (2025 scheme, in force today) it intersects, with the shared area (m²),
    largest first."""
    out: list[list[CommuneHit]] = [[] for _ in range(len(geoms))]
    idx = [i for i, g in enumerate(geoms) if g is not None and not g.is_empty]
    if not idx:
        return out
    wkbs = geoms_param(np.asarray([geoms[i] for i in idx], dtype=object))
    for ord_, code, parent, name, m2 in conn.execute(_COMMUNES, [wkbs], binary=True).fetchall():
        out[idx[int(ord_) - 1]].append(CommuneHit(code, parent, name, float(m2 or 0.0)))
    for hits in out:
        hits.sort(key=lambda h: -h.m2)
    return out


def derived_issue(field_name: str, code: str, row: int = 1) -> Issue:
    return _issue(row, field_name, "commune_derived", f"{field_name} lấy theo vị trí: {code}",
                  f"{field_name} derived from the location: {code}", "warning")


def derive_communes(conn: psycopg.Connection, geoms: np.ndarray) -> list[str | None]:
    """The commune holding the largest share of each geometry (None outside every commune)."""
    return [h[0].code if h else None for h in commune_hits(conn, geoms)]


def _overlaps(conn: psycopg.Connection, layer: Layer, states: tuple[str, ...], geoms: np.ndarray,
              idx: list[int], exclude: Sequence[int], tolerance: float) -> dict[int, list[tuple[str, float]]]:
    reg = reg_of(layer)
    lc = layer.lifecycle
    assert lc is not None
    q = sql.SQL("""
WITH u AS MATERIALIZED (SELECT ord, ST_SetSRID(ST_GeomFromWKB(decode(h, 'hex')), 4326) AS geom
           FROM unnest(string_to_array(%s::text, ',')) WITH ORDINALITY AS u(h, ord))
SELECT u.ord, t.{id}, t.{code}, t.{status}, m2 FROM u
JOIN {t} t ON ST_Intersects(t.{geom}, u.geom) AND t.{status} = ANY(%s) AND t.{id} <> ALL(%s)
CROSS JOIN LATERAL (SELECT ST_Area(ST_Intersection(t.{geom}, u.geom)::geography) AS m2) a
WHERE m2 > %s ORDER BY u.ord, m2 DESC""").format(
        id=sql.Identifier(layer.id_column), code=sql.Identifier(reg.code_field), status=sql.Identifier(lc.field),
        t=sql.Identifier(layer.table), geom=sql.Identifier(layer.geometry_column))
    out: dict[int, list[tuple[str, float]]] = {}
    rows = conn.execute(q, [geoms_param(geoms[idx]), list(states), [int(e) for e in exclude],
                            float(tolerance)], binary=True)
    for ord_, fid, code, status, m2 in rows.fetchall():
        name = code if code else f"#{fid} ({status})"
        out.setdefault(idx[int(ord_) - 1], []).append((name, float(m2)))
    return out


def _fmt_m2(v: float) -> str:
    return f"{v:,.0f}".replace(",", ".") + " m²"


def check_batch(conn: psycopg.Connection, layer: Layer, frame: pd.DataFrame, geoms: np.ndarray, policy: Policy,
                *, first_row: int = 1, exclude: Sequence[int] = (), check_overlap: bool = True,
                hits: list[list[CommuneHit]] | None = None, areas: np.ndarray | None = None) -> list[Issue]:
    """Check (and complete) rows to be registered, column-wise: `frame` (registry field names, coerced) gets the
    computed area and the derived commune. Returns errors and warnings by row; run under `lock`."""
    reg = reg_of(layer)
    n = len(frame)
    issues: list[Issue] = []
    arr = geo.as_array(geoms) if n else np.array([], dtype=object)
    present = ~(shapely.is_missing(arr) | shapely.is_empty(arr)) if n else np.array([], dtype=bool)
    ok = present.copy()
    if ok.any():
        ok[ok] = shapely.is_valid(arr[ok])
    idx = [int(i) for i in np.flatnonzero(ok)]
    given_areas = areas
    areas = np.zeros(n)
    if reg.area_field is not None and idx:
        areas[idx] = given_areas[idx] if given_areas is not None else geo.areas_m2(arr[idx])
        computed = np.round(areas, 2)
        if reg.area_field in frame.columns:
            supplied = pd.to_numeric(frame[reg.area_field], errors="coerce").to_numpy(dtype=float)
            for i in idx:
                s, a = supplied[i], areas[i]
                if np.isfinite(s) and a > 0 and abs(s - a) / a * 100 > policy.area_warning_pct:
                    pct = abs(s - a) / a * 100
                    issues.append(_issue(
                        first_row + i, reg.area_field, "area_mismatch",
                        f"diện tích khai báo {_fmt_m2(s)} lệch {pct:.1f}% so với diện tích tính từ hình học "
                        f"{_fmt_m2(a)} (trắc địa); lưu diện tích tính được",
                        f"the supplied area {s:,.0f} m² is {pct:.1f}% off the area computed from the geometry "
                        f"{a:,.0f} m² (geodesic); the computed area is stored", "warning"))
        values = frame[reg.area_field].to_numpy(dtype=object).copy() if reg.area_field in frame.columns \
            else np.full(n, None, dtype=object)
        for i in idx:
            values[i] = float(computed[i])
        frame[reg.area_field] = values
    if reg.crop_field is not None and reg.area_field is not None and reg.crop_field in frame.columns:
        crops = frame[reg.crop_field].to_numpy(dtype=object)
        markets = frame[reg.markets_field].to_numpy(dtype=object) if reg.markets_field in frame.columns \
            else np.full(n, None, dtype=object)
        for i in idx:
            rule = _min_area_ha(layer, policy, crops[i], markets[i])
            if rule is not None and areas[i] < rule[0] * 10_000:
                ha, key = rule
                issues.append(_issue(
                    first_row + i, reg.area_field, "below_minimum",
                    f"diện tích {_fmt_m2(areas[i])} ({areas[i] / 10_000:.2f} ha) nhỏ hơn mức tối thiểu {ha:g} ha "
                    f"cho {reg.crop_field} = {crops[i]!r} (quy định '{key}')",
                    f"area {areas[i]:,.0f} m² ({areas[i] / 10_000:.2f} ha) is below the minimum of {ha:g} ha for "
                    f"{reg.crop_field} = {crops[i]!r} (rule '{key}')"))
    # commune and province
    cf = reg.commune_field
    given = frame[cf].to_numpy(dtype=object) if cf in frame.columns else np.full(n, None, dtype=object)
    communes = given.copy()
    if hits is None:
        hits = commune_hits(conn, np.array([arr[i] if ok[i] else None for i in range(n)], dtype=object)) if n else []
    for i in idx:
        h = hits[i]
        g = given[i] if isinstance(given[i], str) and given[i] else None
        if not h:
            issues.append(_issue(first_row + i, "geometry", "outside_province",
                                 "vị trí không thuộc xã nào của tỉnh (ngoài tỉnh hoặc ngoài ranh giới hành chính)",
                                 "the location lies in no commune of the province (outside the province)"))
            continue
        best = h[0]
        total = areas[i] if reg.area_field is not None else 0.0
        if total <= 0 and arr[i].geom_type in geo.POLYGONAL:
            total = geo.area_m2(arr[i])
        if g is None:
            communes[i] = best.code
            issues.append(_issue(first_row + i, cf, "commune_derived",
                                 f"{cf} lấy theo vị trí: {best.code} ({best.name})",
                                 f"{cf} derived from the location: {best.code} ({best.name})", "warning"))
        else:
            mine = next((x for x in h if x.code == g), None)
            share = 1.0 if mine is not None and total <= 0 else (mine.m2 / total if mine is not None else 0.0)
            if share < policy.commune_min_share:
                issues.append(_issue(
                    first_row + i, cf, "wrong_commune",
                    f"{cf} = {g!r}: xã này không chứa vùng (chỉ {share * 100:.0f}% diện tích); vùng nằm ở xã "
                    f"{best.code} ({best.name})",
                    f"{cf} = {g!r}: that commune does not contain the area (only {share * 100:.0f}% of it); "
                    f"the area lies in commune {best.code} ({best.name})"))
                continue
            best = mine if mine is not None else best
        prov = best.province
        if policy.provinces and prov not in policy.provinces:
            issues.append(_issue(first_row + i, cf, "outside_province",
                                 f"xã {best.code} thuộc tỉnh {prov}, ngoài các tỉnh được đăng ký: "
                                 f"{', '.join(policy.provinces)}",
                                 f"commune {best.code} is in province {prov}, outside the provinces registered "
                                 f"here: {', '.join(policy.provinces)}"))
            continue
        if policy.scope is not None and prov not in policy.scope:
            issues.append(_issue(first_row + i, cf, "out_of_scope",
                                 f"xã {best.code} thuộc tỉnh {prov}, ngoài phạm vi của cán bộ "
                                 f"({', '.join(policy.scope) or 'không có'})",
                                 f"commune {best.code} is in province {prov}, outside the officer's scope "
                                 f"({', '.join(policy.scope) or 'none'})"))
            continue
        if total > 0:
            inside = sum(x.m2 for x in h if x.province == prov)
            outside = total - inside
            if outside > max(policy.overlap_tolerance_m2, total * 1e-6):
                issues.append(_issue(first_row + i, "geometry", "outside_province",
                                     f"{_fmt_m2(outside)} của vùng nằm ngoài tỉnh {prov}",
                                     f"{outside:,.0f} m² of the area lie outside province {prov}"))
    if cf in frame.columns or any(c is not None for c in communes):
        frame[cf] = communes
    # overlaps: with the database, then inside the batch
    if check_overlap and reg.overlap_states and idx:
        found = _overlaps(conn, layer, reg.overlap_states, arr, idx, exclude, policy.overlap_tolerance_m2)
        for i, conflicts in found.items():
            issues.append(_overlap_issue(first_row + i, conflicts))
        if len(idx) > 1:
            tree = shapely.STRtree(arr[idx])
            pairs = tree.query(arr[idx], predicate="intersects")
            seen: dict[int, list[tuple[str, float]]] = {}
            for a, b in zip(pairs[0], pairs[1], strict=True):
                if a >= b:
                    continue
                i, j = idx[int(a)], idx[int(b)]
                m2 = geo.area_m2(shapely.intersection(arr[i], arr[j]))
                if m2 > policy.overlap_tolerance_m2:
                    seen.setdefault(j, []).append((f"\0{first_row + i}", m2))     # a row of the batch
            for j, conflicts in seen.items():
                issues.append(_overlap_issue(first_row + j, conflicts))
    return issues


def _overlap_issue(row: int, conflicts: list[tuple[str, float]]) -> Issue:
    def name(c: str, lang: str) -> str:      # a code, a draft's "#id (draft)" or a row of the batch ("\0<row>")
        return (f"dòng {c[1:]}" if lang == "vi" else f"row {c[1:]}") if c.startswith("\0") else c

    vi = ", ".join(f"{name(c, 'vi')} ({_fmt_m2(m2)})" for c, m2 in conflicts)
    en = ", ".join(f"{name(c, 'en')} ({m2:,.0f} m²)" for c, m2 in conflicts)
    return _issue(row, "geometry", "overlap", f"chồng lấn với {vi}", f"overlaps {en}")


def raise_for(issues: list[Issue], lang: str) -> None:
    """Errors of a one-feature registration as ONE problem: 409 for overlaps, 403 outside the officer's scope,
    else 422; naming the field and the value."""
    errors = [i for i in issues if i.is_error]
    if not errors:
        return
    codes = {e.code for e in errors}
    status = 409 if "overlap" in codes else 403 if "out_of_scope" in codes else 422
    first = next((e for e in errors if e.code == "overlap"), errors[0])
    more_vi = f" (và {len(errors) - 1} lỗi khác)" if len(errors) > 1 else ""
    more_en = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise RegistrationError(status, f"Không đăng ký được: trường {first.field}: {first.message_vi}{more_vi}",
                            f"Cannot register: field {first.field}: {first.message_en}{more_en}",
                            field=first.field, errors=[{k: v for k, v in e.as_dict(lang).items() if k != "row"}
                                                       for e in errors])


# -- transitions and codes ------------------------------------------------------------------------------------

class _Marker:
    def __format__(self, spec: str) -> str:
        return "{seq}"


def _province_of(conn: psycopg.Connection, commune: str | None) -> str | None:
    if not commune:
        return None
    row = conn.execute(sql.SQL("SELECT parent_code FROM {a} WHERE code = %s AND level = 'commune' "
                               "ORDER BY (scheme = '2025') DESC, valid_from DESC LIMIT 1").format(
        a=sql.Identifier(ADMIN)), [commune]).fetchone()
    return str(row[0]) if row and row[0] else None


def grant_code(conn: psycopg.Connection, layer: Layer, policy: Policy, commune: str, when: dt.date) -> str:
    """The next code of the layer's pattern for this commune (see the module doc): unique, never reused."""
    reg = reg_of(layer)
    pattern = policy.code_patterns.get(reg.code_pattern) or \
        get_registration_settings().registration_code_patterns[reg.code_pattern]
    province = _province_of(conn, commune)
    if province is None:
        raise RegistrationError(422, f"Không cấp được mã: {reg.commune_field} = {commune!r} không phải mã xã đã biết",
                                f"Cannot grant a code: {reg.commune_field} = {commune!r} is not a known commune",
                                field=reg.commune_field, value=commune)
    ctx = {"province": province, "commune": commune, "yy": f"{when.year % 100:02d}", "yyyy": f"{when.year:04d}"}
    prefix = pattern.format(seq=_Marker(), **ctx)
    tables = [x for x in LAYERS.values() if x.registration is not None]
    taken = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT 1 FROM {t} WHERE {c} = %(code)s").format(t=sql.Identifier(x.table),
                                                                 c=sql.Identifier(reg_of(x).code_field))
        for x in tables)
    for _ in range(10_000):
        row = conn.execute("INSERT INTO code_counters (prefix, last) VALUES (%s, 1) ON CONFLICT (prefix) "
                           "DO UPDATE SET last = code_counters.last + 1 RETURNING last", [prefix]).fetchone()
        assert row is not None
        code = pattern.format(seq=int(row[0]), **ctx)
        if len(code) > 40:
            raise RegistrationError(422, f"Mẫu mã {pattern!r} cho mã quá dài: {code}",
                                    f"The code pattern {pattern!r} gives a code that is too long: {code}",
                                    field=reg.code_field, value=code)
        if conn.execute(taken, {"code": code}).fetchone() is None:
            return code
    raise RegistrationError(409, "Không tìm được mã còn trống", "No free code found", field=reg.code_field)


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def check_update(conn: psycopg.Connection, layer: Layer, fid: int, rec: dict[str, Any],
                 geom: BaseGeometry | None, geom_given: bool, policy: Policy, lang: str,
                 partial: bool = True) -> None:
    """Enforce registration on an update (PUT/PATCH), completing `rec`: the code is granted (never typed), a
    move into a reason state needs its reason in the same request (recorded in history), activation needs the
    decision and grants the code, the dates never contradict the status, a changed geometry is checked again
    (under the lock)."""
    reg = reg_of(layer)
    lc = layer.lifecycle
    assert lc is not None
    cols = [reg.code_field, lc.field, reg.commune_field, *reg.decision_fields,
            *(reg.validity_fields or ()), *([lc.reason_field] if lc.reason_field else [])]
    q = sql.SQL("SELECT {cols}, ST_AsBinary({g}) FROM {t} WHERE {id} = %s").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols), g=sql.Identifier(layer.geometry_column),
        t=sql.Identifier(layer.table), id=sql.Identifier(layer.id_column))
    row = conn.execute(q, [fid]).fetchone()
    assert row is not None
    cur = dict(zip(cols, row[:-1], strict=True))
    stored = shapely.from_wkb(row[-1]) if row[-1] is not None else None
    # the code: granted, never typed (a PUT that leaves it out keeps it)
    if reg.code_field in rec:
        if rec[reg.code_field] == cur[reg.code_field]:
            pass
        elif rec[reg.code_field] is None and not partial:     # a PUT that leaves the code out keeps it
            del rec[reg.code_field]
        else:
            v = rec[reg.code_field]
            raise RegistrationError(422, f"Trường {reg.code_field} = {v!r}: mã chỉ được cấp khi kích hoạt, không sửa tay",
                                    f"Field {reg.code_field} = {v!r}: the code is granted at activation, never set "
                                    "by hand", field=reg.code_field, value=v)
    old, new = cur[lc.field], rec.get(lc.field, cur[lc.field])
    final = {**cur, **rec}
    if new != old:
        if lc.reason_field and new in lc.reason_states and not _text(rec.get(lc.reason_field)):
            raise RegistrationError(
                422, f"Chuyển sang '{new}' cần lý do: trường {lc.reason_field} (trong cùng yêu cầu)",
                f"Moving to '{new}' needs a reason: field {lc.reason_field} (in the same request)",
                field=lc.reason_field, value=rec.get(lc.reason_field))
        if new == reg.active_state and not cur[reg.code_field]:
            missing = [f for f in reg.decision_fields if rec.get(f) in (None, "")]
            if missing:
                raise RegistrationError(
                    422, f"Cấp mã cần quyết định: thiếu trường {', '.join(missing)}",
                    f"Granting the code needs the decision: field {', '.join(missing)} is missing",
                    field=missing[0], value=None)
            when = rec[reg.decision_fields[1]]
            when = when if isinstance(when, dt.date) else dt.date.fromisoformat(str(when)[:10])
            rec[reg.code_field] = grant_code(conn, layer, policy, str(final[reg.commune_field]), when)
            if reg.validity_fields and final.get(reg.validity_fields[0]) is None:
                rec[reg.validity_fields[0]] = when
            final = {**cur, **rec}
        why = rec.get(lc.reason_field) if lc.reason_field else None
        conn.execute("SELECT set_config('datso.reason', %s, true)",
                     [str(why) if _text(why) else f"{old} → {new}"])
    elif lc.reason_field and _text(rec.get(lc.reason_field)):
        conn.execute("SELECT set_config('datso.reason', %s, true)", [str(rec[lc.reason_field])])
    _check_dates(layer, final, lc.field)
    if geom_given and geom is not None and (stored is None or not shapely.equals_exact(geom, stored, 1e-12)):
        lock(conn, layer)
        frame = pd.DataFrame({k: pd.Series([v], dtype=object) for k, v in final.items()
                              if k in (reg.commune_field, reg.crop_field, reg.markets_field, reg.area_field)
                              and k is not None})
        if reg.area_field and reg.area_field in rec:
            frame[reg.area_field] = [rec[reg.area_field]]
        issues = check_batch(conn, layer, frame, np.array([geom], dtype=object), policy, exclude=[fid],
                             check_overlap=final[lc.field] in reg.overlap_states)
        raise_for(issues, lang)
        if reg.area_field:
            rec[reg.area_field] = frame[reg.area_field].iloc[0]
        if reg.commune_field in frame.columns:
            rec[reg.commune_field] = frame[reg.commune_field].iloc[0]


def _check_dates(layer: Layer, final: dict[str, Any], status_field: str) -> None:
    reg = reg_of(layer)
    if not reg.validity_fields or reg.expired_state is None:
        return
    vt = final.get(reg.validity_fields[1])
    today = dt.date.today()
    status = final.get(status_field)
    f = reg.validity_fields[1]
    if vt is not None and not isinstance(vt, dt.date):
        vt = dt.date.fromisoformat(str(vt)[:10])
    if status in reg.expiring_states and vt is not None and vt < today:
        raise RegistrationError(422, f"Trường {f} = {vt.isoformat()} đã qua: trạng thái '{status}' mâu thuẫn với "
                                     f"ngày hết hiệu lực (gia hạn {f} hoặc để hết hiệu lực)",
                                f"Field {f} = {vt.isoformat()} has passed: status '{status}' contradicts it (extend "
                                f"{f}, or let it expire)", field=f, value=vt.isoformat())
    if status == reg.expired_state and (vt is None or vt >= today):
        raise RegistrationError(422, f"Trạng thái '{status}' cần {f} đã qua (đang là {vt})",
                                f"Status '{status}' needs {f} in the past (got {vt})", field=f,
                                value=None if vt is None else vt.isoformat())


# -- expiry ---------------------------------------------------------------------------------------------------

def expire_due(conn: psycopg.Connection, layer: Layer, actor: str = "system:expiry") -> int:
    """Move the layer's features in an expiring state past their `valid_to` to the expired state (audited,
    with the reason); returns how many. Run in the caller's transaction."""
    reg = layer.registration
    lc = layer.lifecycle
    if reg is None or lc is None or reg.validity_fields is None or reg.expired_state is None:
        return 0
    conn.execute("SELECT set_config('datso.actor', %s, true), set_config('datso.reason', %s, true)",
                 [actor, f"{reg.validity_fields[1]} < today"])
    q = sql.SQL("UPDATE {t} SET {s} = %s WHERE {s} = ANY(%s) AND {vt} < current_date").format(
        t=sql.Identifier(layer.table), s=sql.Identifier(lc.field), vt=sql.Identifier(reg.validity_fields[1]))
    return conn.execute(q, [reg.expired_state, list(reg.expiring_states)]).rowcount


def expire_all(dsn: str, actor: str = "system:expiry") -> dict[str, int]:
    """`expire_due` for every registered layer, one transaction."""
    from layers.store.connect import connect

    with connect("writer", dsn=dsn) as conn:
        out = {layer.id: expire_due(conn, layer, actor) for layer in LAYERS.values() if layer.registration}
        conn.commit()
    return out


__all__ = ["Policy", "RegistrationError", "check_batch", "check_update", "derive_communes", "expire_all",
           "expire_due", "grant_code", "lock", "precheck_new", "raise_for", "repair_or_offer"]
