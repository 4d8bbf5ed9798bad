"""Selecting a layer's features for a map export (Folium HTML), with the same filters as the items API:
`bbox` (CRS84), `filter` (CQL2 text or JSON), `datetime` (an instant or an interval on the layer's temporal
field) and equality on queryables (`status=sold`). Everything is turned into ONE CQL2-JSON tree and
translated by `layers.query.cql2` into parameterised SQL over registry identifiers: user text never reaches SQL.

Large selections: above `simplify_above` features the geometries are simplified (a tolerance in metres)
and coordinates rounded; above `max_features` the export is refused with a message asking to narrow the
filter. Only public fields are exported.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from layers.catalog.registry import Layer
from layers.query import cql2
from layers.query.exporter import ExportError
from layers.query.features import QueryError, equality_filters
from layers.store.sql import quote_ident as _q

# Status labels shown in legends, popups and the web map (codes are in layers/store/vocab.py).
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "planned": ("Dự kiến", "Planned"), "announced": ("Đã thông báo", "Announced"),
    "registration_open": ("Đang nhận hồ sơ", "Registration open"), "closed": ("Đã kết thúc đăng ký", "Closed"),
    "sold": ("Đã trúng đấu giá", "Sold"), "cancelled": ("Đã hủy", "Cancelled"),
    "managed": ("Đang quản lý", "Managed"), "leased": ("Cho thuê", "Leased"), "allocated": ("Giao đất", "Allocated"),
    "planned_for_auction": ("Dự kiến đấu giá", "Planned for auction"),
    "auctioned": ("Đã đấu giá", "Auctioned"), "encroached": ("Bị lấn chiếm", "Encroached"),
    "draft": ("Nháp", "Draft"), "active": ("Còn hiệu lực", "Active"), "suspended": ("Tạm đình chỉ", "Suspended"),
    "revoked": ("Đã thu hồi", "Revoked"), "expired": ("Hết hiệu lực", "Expired"),
    "province": ("Tỉnh", "Province"), "district": ("Huyện", "District"), "commune": ("Xã", "Commune"),
    "long_term": ("Lâu dài", "Long-term"),
}

NON_FILTER_PARAMS = frozenset({"bbox", "filter", "filter-lang", "filter-crs", "datetime", "lang", "f", "offline",
                               "limit", "title", "download"})


def label(code: str | None, lang: str = "vi") -> str:
    if code is None:
        return ""
    pair = STATUS_LABELS.get(code)
    return code if pair is None else pair[0 if lang == "vi" else 1]


class ExportSettings(BaseSettings):
    """Limits for map exports (environment, prefix `DATSO_MAP_`)."""

    model_config = SettingsConfigDict(env_prefix="DATSO_MAP_", env_file=".env", extra="ignore")

    simplify_above: int = Field(default=20_000, ge=1)      # more features than this: simplify
    max_features: int = Field(default=50_000, ge=1)        # more than this: refuse, ask for a narrower filter
    simplify_tolerance_m: float = Field(default=2.0, gt=0)  # tolerance used when simplifying
    precision: int = Field(default=7, ge=4, le=9)           # decimals of exported coordinates


@lru_cache
def get_export_settings() -> ExportSettings:
    return ExportSettings()


@dataclass(frozen=True)
class Selection:
    """A parsed, validated selection on one layer: SQL WHERE fragment over `t.` and its parameters."""

    layer: Layer
    where: str
    params: tuple[Any, ...]
    description: str          # human-readable summary (shown in the export's title)


def parse_bbox(raw: str) -> list[float]:
    parts = [p.strip() for p in raw.split(",")]
    bad = ExportError(f"bbox '{raw[:80]}' không hợp lệ: cần 4 số 'kinh độ tây,vĩ độ nam,kinh độ đông,vĩ độ bắc' (WGS84)",
                      f"Invalid bbox '{raw[:80]}': expected 4 numbers 'minlon,minlat,maxlon,maxlat' (WGS84)")
    if len(parts) not in (4, 6):
        raise bad
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise bad from None
    if not all(math.isfinite(n) for n in nums):
        raise bad
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    x1, y1, x2, y2 = nums
    if not (-180 <= x1 <= 180 and -180 <= x2 <= 180 and -90 <= y1 <= 90 and -90 <= y2 <= 90) or y1 > y2:
        raise ExportError(f"bbox '{raw[:80]}' nằm ngoài phạm vi kinh độ/vĩ độ hoặc vĩ độ nam lớn hơn vĩ độ bắc",
                          f"bbox '{raw[:80]}' is out of lon/lat range or its south edge is north of its north edge")
    return nums


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def _instant(raw: str) -> str:
    text = raw.strip()
    if not _INSTANT.match(text):
        raise ExportError(f"Mốc thời gian '{raw[:40]}' không hợp lệ (dùng YYYY-MM-DD hoặc RFC 3339)",
                          f"Invalid time '{raw[:40]}' (use YYYY-MM-DD or RFC 3339)")
    try:
        if "T" in text or " " in text:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.isoformat().replace("+00:00", "Z")
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ExportError(f"Ngày giờ '{raw[:40]}' không tồn tại", f"The date/time '{raw[:40]}' does not exist") from None


def datetime_tree(layer: Layer, raw: str) -> dict[str, Any]:
    if layer.temporal is None:
        raise ExportError(f"Lớp {layer.id} không có thuộc tính thời gian để lọc theo datetime",
                          f"Layer {layer.id} has no temporal property to filter by datetime")
    start, end = layer.temporal
    if "/" in raw:
        a, _, b = raw.partition("/")
        lo = ".." if a.strip() in ("", "..") else _instant(a)
        hi = ".." if b.strip() in ("", "..") else _instant(b)
        if lo == ".." and hi == "..":
            raise ExportError("Khoảng thời gian phải có ít nhất một đầu mốc", "The interval needs at least one bound")
        if lo != ".." and hi != ".." and lo > hi:
            raise ExportError("Khoảng thời gian: mốc đầu sau mốc cuối", "Interval: the start is after the end")
        value: dict[str, Any] = {"interval": [lo, hi]}
    else:
        t = _instant(raw)
        value = {"interval": [t, t]}
    target: Any = {"property": start} if end is None else {"interval": [{"property": start}, {"property": end}]}
    return {"op": "t_intersects", "args": [target, value]}


def _cql2_literal(value: Any) -> Any:
    """A typed `?field=value` value as a CQL2-JSON literal."""
    if isinstance(value, dt.datetime):
        return {"timestamp": value.isoformat().replace("+00:00", "Z")}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return float(value)
    return value


def build_selection(layer: Layer, query: Mapping[str, str]) -> Selection:
    """Validate `query` (bbox, filter, filter-lang, datetime, queryable=value) into a `Selection`."""
    parts: list[dict[str, Any]] = []
    desc: list[str] = []
    try:
        pairs = equality_filters(layer, query, NON_FILTER_PARAMS)
    except QueryError as exc:
        raise ExportError(exc.vi, exc.en) from None
    for f, raw, value in pairs:
        parts.append({"op": "=", "args": [{"property": f.name}, _cql2_literal(value)]})
        desc.append(f"{f.name}={raw}")
    if query.get("bbox"):
        box = parse_bbox(query["bbox"])
        parts.append({"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": box}]})
        desc.append("bbox=" + ",".join(f"{v:g}" for v in box))
    if query.get("datetime"):
        parts.append(datetime_tree(layer, query["datetime"]))
        desc.append(f"datetime={query['datetime']}")
    if query.get("filter"):
        lang = query.get("filter-lang") or "cql2-text"
        try:
            parts.append(cql2.parse(query["filter"], lang))
        except cql2.CqlError as exc:
            raise ExportError(exc.vi, exc.en) from None
        desc.append(f"filter={query['filter'][:200]}")
    if not parts:
        return Selection(layer, "TRUE", (), "")
    tree = parts[0] if len(parts) == 1 else {"op": "and", "args": parts}
    try:
        sql, params = cql2.to_sql(layer, tree, "cql2-json", filter_crs=query.get("filter-crs") or None,
                                  param_offset=0, column_prefix="t.")
    except cql2.CqlError as exc:
        raise ExportError(exc.vi, exc.en) from None
    return Selection(layer, sql, tuple(params), "; ".join(desc))


def count_sql(sel: Selection) -> str:
    return f"SELECT count(*) FROM {_q(sel.layer.table)} t WHERE {sel.where}"  # noqa: S608 - registry + cql2


def features_sql(sel: Selection, simplify_deg: float | None, precision: int) -> str:
    """One statement returning a GeoJSON FeatureCollection (public fields, EPSG:4326, ordered by id)."""
    layer = sel.layer
    g = f"t.{_q(layer.geometry_column)}"
    if simplify_deg:
        g = f"ST_SimplifyPreserveTopology({g}, {float(simplify_deg)!r})"
    props = ", ".join(f"'{f.name}', t.{_q(f.name)}" for f in layer.public_fields)
    feature = (f"json_build_object('type', 'Feature', 'id', t.{_q(layer.id_column)}, "
               f"'geometry', ST_AsGeoJSON({g}, {int(precision)})::json, 'properties', json_build_object({props}))")
    return (f"SELECT json_build_object('type', 'FeatureCollection', 'features', "  # noqa: S608 - registry + cql2
            f"coalesce(json_agg({feature} ORDER BY t.{_q(layer.id_column)}), '[]'::json))::text "
            f"FROM {_q(layer.table)} t WHERE ({sel.where}) AND {_q(layer.geometry_column)} IS NOT NULL")


@dataclass(frozen=True)
class ExportPlan:
    count: int
    simplify_deg: float | None
    precision: int
    note_vi: str
    note_en: str
    compact: bool = False     # popups keep the key fields only (large selections)


def _vi_int(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def plan_export(count: int, settings: ExportSettings | None = None) -> ExportPlan:
    """Decide how to export `count` features: as they are, simplified, or refused (ExportError 413)."""
    s = settings or get_export_settings()
    if count > s.max_features:
        raise ExportError(
            f"Lựa chọn có {_vi_int(count)} đối tượng, vượt giới hạn {_vi_int(s.max_features)} của bản đồ xuất ra; "
            "hãy thu hẹp bộ lọc (bbox, filter, datetime)",
            f"The selection has {count:,} features, above the export limit of {s.max_features:,}; "
            "narrow the filter (bbox, filter, datetime)", status=413)
    if count > s.simplify_above:
        deg = s.simplify_tolerance_m / 111_320.0
        return ExportPlan(count, deg, min(s.precision, 5),
                          f"Đã đơn giản hóa hình dạng (dung sai {s.simplify_tolerance_m:g} m) và rút gọn thông tin "
                          f"vì có hơn {_vi_int(s.simplify_above)} đối tượng",
                          f"Shapes simplified (tolerance {s.simplify_tolerance_m:g} m) and popups shortened: "
                          f"more than {s.simplify_above:,} features", compact=True)
    return ExportPlan(count, None, s.precision, "", "")


async def select_features(conn: Any, sel: Selection, settings: ExportSettings | None = None
                          ) -> tuple[dict[str, Any], ExportPlan]:
    """Run the selection on an asyncpg connection: (GeoJSON FeatureCollection, the plan used)."""
    import orjson

    count = int(await conn.fetchval(count_sql(sel), *sel.params))
    plan = plan_export(count, settings)
    text = await conn.fetchval(features_sql(sel, plan.simplify_deg, plan.precision), *sel.params)
    return orjson.loads(text), plan


async def communes(conn: Any) -> list[dict[str, str]]:
    """Current communes (code, name) for the map's filter, from the admin units layer."""
    rows = await conn.fetch(
        "SELECT code, name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL "
        "AND scheme = (SELECT max(scheme) FROM admin_units) ORDER BY name")
    return [{"code": r["code"], "name": r["name"]} for r in rows]


async def context_boundaries(conn: Any, tolerance_deg: float = 0.0002) -> dict[str, Any]:
    """Current province and commune boundaries (simplified, ~20 m) as GeoJSON: context for map exports."""
    import orjson

    text = await conn.fetchval(
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object("
        "'type', 'Feature', 'id', id, 'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, $1), 6)::json, "
        "'properties', json_build_object('code', code, 'name', name, 'level', level)) ORDER BY level, code), "
        "'[]'::json))::text FROM admin_units WHERE valid_to IS NULL AND geom IS NOT NULL "
        "AND scheme = (SELECT max(scheme) FROM admin_units) AND level IN ('province', 'commune')", tolerance_deg)
    return orjson.loads(text)
