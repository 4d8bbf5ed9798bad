"""Who is writing, and where they may write: the `Principal` and the ONE scope rule.

A `Principal` is a signed-in user (an API key or a session token resolves to one; api/auth.py) or the system
itself (the CLI run by the operator, `Principal.system()`). Its scope is a set of provinces (2-digit codes of
the 2025 scheme), optionally narrowed to communes (5-digit codes), or national (admins only, in practice).

`check_scope(conn, principal, layer, old_row, new_row)` is the rule every write path applies (the write seam
`layers.ingest.writes` and the importer call it through the principal): a row is inside the scope when its
place is. A row's place is declared per layer in the registry:

- `Layer.scope_field` (e.g. `commune_code`): the commune's province is `admin_units.parent_code` of that
  commune (2025 scheme); a commune unknown to `admin_units` is outside every province scope;
- `Layer.national_only`: only national principals write the layer (administrative units);
- otherwise the geometry: covered by one of the scope's province (or commune) polygons in `admin_units`; a
  row without geometry is outside every province scope.

Anything outside the scope is a `ScopeError` (403). Rows are plain dicts of field values, with the geometry
(shapely, lon/lat) under the key `GEOMETRY`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from shapely import wkb
from shapely.geometry.base import BaseGeometry

from gis.errors import BilingualError
from layers.catalog.registry import SCOPE_GEOMETRY, Layer, get_layer

ROLES = ("officer", "admin")                      # may write layers (within their province scope)
TRACE_ROLES = ("producer", "packer")              # may only capture EPCIS events at their own areas / houses
ALL_ROLES = ROLES + TRACE_ROLES
GEOMETRY = SCOPE_GEOMETRY      # the key of a row's geometry in the rows given to check_scope
PROVINCE_SCHEME = "2025"


class ScopeError(BilingualError):
    """A write outside the principal's scope (or a role that may not write at all)."""

    status = 403

    def __init__(self, vi: str, en: str, row: int | None = None, field_name: str | None = None) -> None:
        super().__init__(vi, en, 403)
        self.row, self.field_name = row, field_name

    def members(self) -> dict[str, Any]:
        return {"errors": [{"row": self.row, "field": self.field_name, "code": "scope", "message": self.en}]}


class UnknownReference(BilingualError):
    """A row placed by the feature it refers to (`Layer.scope_via`) that refers to no feature: a 422 naming the
    field (its place, hence the scope, cannot be told; the reference itself is the error)."""

    status = 422

    def __init__(self, vi: str, en: str, field_name: str) -> None:
        super().__init__(vi, en, 422)
        self.field_name = field_name

    def members(self) -> dict[str, Any]:
        return {"errors": [{"field": self.field_name, "code": "unknown_reference", "message": self.en}]}


@dataclass(frozen=True)
class Principal:
    """A user as the write paths see it. `actor` is what `history.actor` records (the user's name)."""

    name: str
    role: str
    provinces: frozenset[str] = frozenset()
    communes: frozenset[str] = frozenset()
    national: bool = False
    display_name: str | None = None
    via: str = "key"                 # how they signed in: key | session | system
    areas: frozenset[str] = frozenset()        # producer: growing-area codes they capture events for
    facilities: frozenset[str] = frozenset()   # packer: packing-house codes they capture events for

    @property
    def actor(self) -> str:
        return self.name

    @classmethod
    def system(cls, name: str) -> Principal:
        """The operator at the command line: national admin (no scope applies)."""
        return cls(name=name, role="admin", national=True, via="system")

    def scope_text(self, lang: str = "vi") -> str:
        if self.national:
            return "toàn quốc" if lang == "vi" else "national"
        if self.role == "producer":
            return ("vùng trồng " if lang == "vi" else "growing areas ") + ", ".join(sorted(self.areas))
        if self.role == "packer":
            return ("cơ sở đóng gói " if lang == "vi" else "packing houses ") + ", ".join(sorted(self.facilities))
        text = ("tỉnh " if lang == "vi" else "province ") + ", ".join(sorted(self.provinces))
        if self.communes:
            text += ("; xã " if lang == "vi" else "; communes ") + ", ".join(sorted(self.communes))
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name, "role": self.role,
                "scope": {"national": self.national, "provinces": sorted(self.provinces),
                          "communes": sorted(self.communes),
                          **({"areas": sorted(self.areas)} if self.role == "producer" else {}),
                          **({"facilities": sorted(self.facilities)} if self.role == "packer" else {})}}

    # the write seam calls these two through its protocol (layers.ingest.writes.Writer)
    def check_scope(self, conn: psycopg.Connection, layer: Layer, old_row: dict[str, Any] | None,
                    new_row: dict[str, Any] | None) -> None:
        check_scope(conn, self, layer, old_row, new_row)

    def rows_outside(self, conn: psycopg.Connection, layer: Layer, rows: Sequence[dict[str, Any]]
                     ) -> list[tuple[int, str | None, str, str]]:
        return rows_outside(conn, self, layer, rows)


def _communes_of(conn: psycopg.Connection, codes: Iterable[str]) -> dict[str, str]:
    """commune code -> province code for the given codes (2025 scheme; the newest row of each code)."""
    codes = sorted({c for c in codes if c})
    if not codes:
        return {}
    rows = conn.execute("SELECT DISTINCT ON (code) code, parent_code FROM admin_units "
                        "WHERE level = 'commune' AND scheme = %s AND code = ANY(%s) "
                        "ORDER BY code, valid_from DESC", [PROVINCE_SCHEME, codes]).fetchall()
    return {r[0]: r[1] for r in rows if r[1]}


def _covered(conn: psycopg.Connection, principal: Principal, geoms: Sequence[BaseGeometry | None]) -> list[bool]:
    """For each geometry: covered by one of the principal's communes (if any) or provinces?"""
    out = [False] * len(geoms)
    idx = [i for i, g in enumerate(geoms) if g is not None and not g.is_empty]
    if not idx:
        return out
    level, codes = (("commune", sorted(principal.communes)) if principal.communes
                    else ("province", sorted(principal.provinces)))
    rows = conn.execute(
        "SELECT g.i FROM unnest(%s::bytea[], %s::int[]) AS g(w, i) WHERE EXISTS ("
        " SELECT 1 FROM admin_units a WHERE a.level = %s AND a.scheme = %s AND a.code = ANY(%s)"
        " AND a.geom IS NOT NULL AND ST_Covers(a.geom, ST_SetSRID(ST_GeomFromWKB(g.w), 4326)))",
        [[wkb.dumps(geoms[i]) for i in idx], idx, level, PROVINCE_SCHEME, codes]).fetchall()
    for (i,) in rows:
        out[int(i)] = True
    return out


def rows_outside(conn: psycopg.Connection, principal: Principal, layer: Layer, rows: Sequence[dict[str, Any]]
                 ) -> list[tuple[int, str | None, str, str]]:
    """(index, field, vi, en) for every row outside the principal's scope (none for a national principal).
    One query for all rows: the importer checks a whole file with it."""
    if principal.national:
        return []
    scope_vi, scope_en = principal.scope_text("vi"), principal.scope_text("en")
    if principal.role not in ROLES:
        return [(i, None, f"vai trò '{principal.role}' không được ghi dữ liệu",
                 f"role '{principal.role}' may not write") for i in range(len(rows))]
    if layer.national_only:
        return [(i, None, f"chỉ quản trị viên toàn quốc được sửa lớp '{layer.id}' (phạm vi của bạn: {scope_vi})",
                 f"only national administrators may edit '{layer.id}' (your scope: {scope_en})")
                for i in range(len(rows))]
    out: list[tuple[int, str | None, str, str]] = []
    if layer.scope_via is not None:
        return _outside_via(conn, principal, layer, rows)
    if layer.scope_field is not None:
        f = layer.scope_field
        parents = _communes_of(conn, (str(r.get(f)) for r in rows if r.get(f) is not None))
        for i, r in enumerate(rows):
            code = r.get(f)
            code = None if code is None else str(code)
            prov = parents.get(code) if code is not None else None
            if code is None or prov is None:
                out.append((i, f, f"không xác định được tỉnh của {f} '{code}' (không có trong đơn vị hành chính "
                                  f"2025); ngoài phạm vi của bạn ({scope_vi})",
                            f"the province of {f} '{code}' is unknown (not a 2025 administrative unit); outside "
                            f"your scope ({scope_en})"))
            elif prov not in principal.provinces:
                out.append((i, f, f"{f} '{code}' thuộc tỉnh {prov}, ngoài phạm vi của bạn ({scope_vi})",
                            f"{f} '{code}' is in province {prov}, outside your scope ({scope_en})"))
            elif principal.communes and code not in principal.communes:
                out.append((i, f, f"{f} '{code}' ngoài các xã trong phạm vi của bạn ({scope_vi})",
                            f"{f} '{code}' is not one of your communes ({scope_en})"))
        return out
    geoms = [r.get(GEOMETRY) for r in rows]
    covered = _covered(conn, principal, geoms)
    for i, ok in enumerate(covered):
        if not ok:
            out.append((i, "geometry", f"vị trí nằm ngoài phạm vi của bạn ({scope_vi})" if geoms[i] is not None
                        else f"đối tượng không có vị trí: chỉ quản trị viên toàn quốc được ghi (phạm vi của bạn: "
                             f"{scope_vi})",
                        f"the location is outside your scope ({scope_en})" if geoms[i] is not None
                        else f"a feature without a location: only national administrators may write it (your "
                             f"scope: {scope_en})"))
    return out


def _outside_via(conn: psycopg.Connection, principal: Principal, layer: Layer, rows: Sequence[dict[str, Any]]
                 ) -> list[tuple[int, str | None, str, str]]:
    """Rows placed by the feature they refer to (`Layer.scope_via`): that feature's place decides; a row that
    refers to no feature is outside every scope."""
    f, ref, ids, found = _referenced(conn, layer, rows)
    key = ref.scope_key
    ref_rows: list[dict[str, Any]] = []
    for i in ids:
        hit = found.get(i)
        place: dict[str, Any] = {GEOMETRY: wkb.loads(bytes(hit[2])) if hit is not None and hit[2] is not None
                                 else None}
        if key:
            place[key] = hit[1] if hit is not None else None
        ref_rows.append(place)
    out: list[tuple[int, str | None, str, str]] = []
    for i, _fname, vi, en in rows_outside(conn, principal, ref, ref_rows):
        if ids[i] not in found:
            vi, en = (f"không có {ref.title_vi.lower()} này; ngoài phạm vi của bạn ({principal.scope_text('vi')})",
                      f"no such {ref.title_en.lower()}; outside your scope ({principal.scope_text('en')})")
        out.append((i, f, f"{f} = {ids[i] if ids[i] >= 0 else rows[i].get(f)}: {vi}",
                    f"{f} = {ids[i] if ids[i] >= 0 else rows[i].get(f)}: {en}"))
    return out


def _referenced(conn: psycopg.Connection, layer: Layer, rows: Sequence[dict[str, Any]]
                ) -> tuple[str, Layer, list[int], dict[int, Any]]:
    """(field, referenced layer, the id each row refers to (-1: none or not an id), the referenced features
    found: id -> (id, scope value, geometry WKB)), in one query."""
    assert layer.scope_via is not None
    f, ref_id = layer.scope_via
    ref = get_layer(ref_id)
    ids: list[int] = []
    for r in rows:
        try:
            ids.append(int(r[f]) if r.get(f) is not None else -1)
        except (TypeError, ValueError):
            ids.append(-1)
    wanted = sorted({i for i in ids if 0 <= i < 2**63})
    key = ref.scope_key
    q = sql.SQL("SELECT {id}, {key}, {geom} FROM {t} WHERE {id} = ANY(%s)").format(
        id=sql.Identifier(ref.id_column), t=sql.Identifier(ref.table),
        key=sql.Identifier(key) if key else sql.SQL("NULL"),
        geom=sql.SQL("NULL") if key else sql.SQL("ST_AsBinary({})").format(sql.Identifier(ref.geometry_column)))
    found = {int(r[0]): r for r in conn.execute(q, [wanted]).fetchall()} if wanted else {}
    return f, ref, ids, found


def check_scope(conn: psycopg.Connection, principal: Principal, layer: Layer, old_row: dict[str, Any] | None,
                new_row: dict[str, Any] | None) -> None:
    """Raise ScopeError (403) unless both the row as it was (update, delete) and as it will be (create,
    update) are inside the principal's scope. National principals pass."""
    if principal.national:
        return
    if new_row is not None and layer.scope_via is not None:
        f, ref, ids, found = _referenced(conn, layer, [new_row])
        if ids[0] not in found:     # no place to judge: the reference is the error (as the foreign key would say)
            shown = new_row.get(f)
            raise UnknownReference(f"Dữ liệu không hợp lệ: {f} = {shown}: không có {ref.title_vi.lower()} này",
                                   f"Invalid feature: {f} = {shown}: no such {ref.title_en.lower()}", f)
    for which, row in (("old", old_row), ("new", new_row)):
        if row is None:
            continue
        bad = rows_outside(conn, principal, layer, [row])
        if bad:
            _, fname, vi, en = bad[0]
            if which == "old":
                vi, en = "Đối tượng hiện có: " + vi, "The existing feature: " + en
            raise ScopeError(f"Không có quyền: {vi}", f"Forbidden: {en}", None, fname)


__all__ = ["ALL_ROLES", "GEOMETRY", "ROLES", "TRACE_ROLES", "Principal", "ScopeError", "UnknownReference",
           "check_scope", "rows_outside"]
