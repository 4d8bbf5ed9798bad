"""Selecting a layer's features for a map export (Folium HTML), with the same selection as the items API
(`layers.query.selection`: `bbox` + `bbox-crs`, `filter` (CQL2 text or JSON) + `filter-crs`, `datetime` and
equality on queryables such as `status=sold`), translated into parameterised SQL over registry identifiers:
user text never reaches SQL.

Large selections: above `simplify_above` features the geometries are simplified (a tolerance in metres)
and coordinates rounded; above `max_features` the export is refused with a message asking to narrow the
filter. Only public fields are exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from layers.catalog.registry import Layer
from layers.query.exporter import ExportError
from layers.query.refs import ref_sql
from layers.query.selection import Selection, parse_selection
from layers.settings import ExportSettings, get_export_settings
from layers.store.sql import quote_ident as _q

NON_FILTER_PARAMS = frozenset({"bbox", "bbox-crs", "filter", "filter-lang", "filter-crs", "datetime", "lang", "f", "offline",
                               "limit", "title", "download", "raster", "raster_expression"})


def build_selection(layer: Layer, query: Mapping[str, str]) -> Selection:
    """The selection of a map export's query (bbox, bbox-crs, datetime, filter, filter-lang, filter-crs,
    queryable=value), read by the one selection parser like the items API (a bad input: QueryError, 400)."""
    return parse_selection(layer, bbox=query.get("bbox"), bbox_crs=query.get("bbox-crs"),
                           datetime=query.get("datetime"),
                           equals={k: v for k, v in query.items() if k not in NON_FILTER_PARAMS},
                           filter=query.get("filter"), filter_lang=query.get("filter-lang"),
                           filter_crs=query.get("filter-crs"))


def count_sql(sel: Selection, where: str) -> str:
    return f"SELECT count(*) FROM {_q(sel.layer.table)} t WHERE {where}"  # noqa: S608 - registry + cql2


def features_sql(sel: Selection, where: str, simplify_deg: float | None, precision: int) -> str:
    """One statement returning a GeoJSON FeatureCollection (public fields, EPSG:4326, ordered by id)."""
    layer = sel.layer
    g = f"t.{_q(layer.geometry_column)}"
    if simplify_deg:
        g = f"ST_SimplifyPreserveTopology({g}, {float(simplify_deg)!r})"
    # reference fields carry the referenced features' own fields (a parcel's sheet and number), not ids
    props = ", ".join(f"'{f.name}', {ref_sql(f) if f.ref else 't.' + _q(f.name)}" for f in layer.public_fields)
    feature = (f"json_build_object('type', 'Feature', 'id', t.{_q(layer.id_column)}, "
               f"'geometry', ST_AsGeoJSON({g}, {int(precision)})::json, 'properties', json_build_object({props}))")
    return (f"SELECT json_build_object('type', 'FeatureCollection', 'features', "  # noqa: S608 - registry + cql2
            f"coalesce(json_agg({feature} ORDER BY t.{_q(layer.id_column)}), '[]'::json))::text "
            f"FROM {_q(layer.table)} t WHERE ({where}) AND {_q(layer.geometry_column)} IS NOT NULL")


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


async def select_features_json(conn: Any, sel: Selection, settings: ExportSettings | None = None
                               ) -> tuple[str, ExportPlan]:
    """Run the selection on an asyncpg connection: (the GeoJSON FeatureCollection as the database wrote it,
    the plan used). The server passes the text on to the export process untouched: parsing and
    re-serialising a large selection would hold the event loop."""
    where, params = sel.sql(0, "t.")
    count = int(await conn.fetchval(count_sql(sel, where), *params))
    plan = plan_export(count, settings)
    text = await conn.fetchval(features_sql(sel, where, plan.simplify_deg, plan.precision), *params)
    return str(text), plan


async def select_features(conn: Any, sel: Selection, settings: ExportSettings | None = None
                          ) -> tuple[dict[str, Any], ExportPlan]:
    """Run the selection on an asyncpg connection: (GeoJSON FeatureCollection, the plan used)."""
    import orjson

    text, plan = await select_features_json(conn, sel, settings)
    return orjson.loads(text), plan


async def communes(conn: Any) -> list[dict[str, Any]]:
    """Current communes (code, name, bbox, a label point inside) for the map's filter, zoom and name labels."""
    rows = await conn.fetch(
        "SELECT code, name, ST_XMin(geom) x1, ST_YMin(geom) y1, ST_XMax(geom) x2, ST_YMax(geom) y2, "
        "ST_X(ST_PointOnSurface(geom)) lx, ST_Y(ST_PointOnSurface(geom)) ly "
        "FROM admin_units WHERE level = 'commune' AND valid_to IS NULL "
        "AND scheme = (SELECT max(scheme) FROM admin_units) ORDER BY name")
    return [{"code": r["code"], "name": r["name"], "bbox": [round(r[k], 6) for k in ("x1", "y1", "x2", "y2")],
             "label": [round(r["lx"], 6), round(r["ly"], 6)]} for r in rows]


async def context_boundaries(conn: Any, tolerance_deg: float = 0.0002) -> dict[str, Any]:
    """Current province and commune boundaries (simplified, ~20 m) as GeoJSON: context for map exports."""
    import orjson

    return orjson.loads(await context_boundaries_json(conn, tolerance_deg))


async def context_boundaries_json(conn: Any, tolerance_deg: float = 0.0002) -> str:
    """`context_boundaries` as the database wrote the GeoJSON text."""
    text = await conn.fetchval(
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object("
        "'type', 'Feature', 'id', id, 'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, $1), 6)::json, "
        "'properties', json_build_object('code', code, 'name', name, 'level', level)) ORDER BY level, code), "
        "'[]'::json))::text FROM admin_units WHERE valid_to IS NULL AND geom IS NOT NULL "
        "AND scheme = (SELECT max(scheme) FROM admin_units) AND level IN ('province', 'commune')", tolerance_deg)
    return str(text)
