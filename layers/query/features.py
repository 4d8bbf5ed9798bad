"""Reading features: SQL generated from the layer registry, one statement per page.

(All identifiers in the SQL below come from the registry, never from a request: hence the S608 waivers.)

The GeoJSON of a page is assembled inside PostgreSQL (ST_AsGeoJSON + json_build_object + string_agg), so
Python only glues a few kilobytes of envelope around one string. `numberMatched` is exact when the page is
not full (offset + returned) or when a count capped at `count_cap` rows stays under the cap; past the cap it
is the planner's estimate and the result says so (`estimated=True`). Identifiers come only from the registry;
every value is an asyncpg parameter.

One concern per function (cf. TiPg's `_select` / `_where` / `_sortby`): `select_feature`, `where`, `order_by`,
`items_sql`, `item_sql`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from gis.crs import CrsDef
from layers.catalog.registry import Layer, LayerField
from layers.query.selection import CRS84, QueryError, Selection
from layers.store.sql import quote_ident

COUNT_CAP = 1_000


@dataclass
class ItemsQuery:
    limit: int = 10
    offset: int = 0
    selection: Selection | None = None      # bbox, datetime, field=value, filter (None: every feature)
    sortby: list[tuple[str, bool]] = field(default_factory=list)   # (field, descending)
    properties: list[str] | None = None
    skip_geometry: bool = False
    crs: CrsDef = CRS84


# -- parsing of query-parameter values (pure functions; api/params.py calls them; the selection parameters
# are read by layers/query/selection.py) ---------------------------------------------------------------------

def parse_sortby(layer: Layer, text: str) -> list[tuple[str, bool]]:
    out = []
    for raw in text.split(","):
        item = raw.strip()
        desc = item.startswith("-")
        name = item.lstrip("+-").strip()
        if name == "id":
            out.append((layer.id_column, desc))
            continue
        f = layer.get_field(name)
        if f is None or not f.public or not f.queryable or f.type in ("array", "object"):
            raise QueryError(f"sortby: không sắp xếp được theo '{name}'",
                             f"sortby: cannot sort by '{name}'; use id or one of the queryables")
        out.append((f.name, desc))
    return out


def parse_properties(layer: Layer, text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    public = {f.name for f in layer.public_fields}
    for n in names:
        if n not in public:
            raise QueryError(f"properties: lớp '{layer.id}' không có thuộc tính '{n}'",
                             f"properties: collection '{layer.id}' has no property '{n}'")
    return names


# -- SQL -----------------------------------------------------------------------------------------------------

def geometry_expr(layer: Layer, crs: CrsDef, col: str = "t") -> str:
    g = f"{col}.{quote_ident(layer.geometry_column)}"
    if crs.srid != 4326:
        g = f"ST_Transform({g}, {int(crs.srid)})"
    if crs.lat_first:
        g = f"ST_FlipCoordinates({g})"
    digits = 8 if crs.geographic else 4
    return f"ST_AsGeoJSON({g}, {digits}, 0)"


def properties_expr(layer: Layer, names: list[str] | None, col: str = "t") -> str:
    fields = [f for f in layer.public_fields if names is None or f.name in names]
    if not fields:
        return "'{}'"
    chunks = []
    for i in range(0, len(fields), 50):   # json_build_object takes at most 100 arguments
        part = fields[i:i + 50]
        chunks.append("jsonb_build_object(" + ", ".join(f"'{f.name}', {col}.{quote_ident(f.name)}" for f in part) + ")")
    if len(chunks) == 1:
        return "json_build_object(" + ", ".join(
            f"'{f.name}', {col}.{quote_ident(f.name)}" for f in fields) + ")::text"
    return "(" + " || ".join(chunks) + ")::text"


def select_feature(layer: Layer, q: ItemsQuery, col: str = "t") -> str:
    """SQL text of one GeoJSON Feature (as text) for a row of `layer`."""
    geom = "'null'" if q.skip_geometry else f"coalesce({geometry_expr(layer, q.crs, col)}, 'null')"
    return (f"'{{\"type\":\"Feature\",\"id\":' || {col}.{quote_ident(layer.id_column)} || ',\"geometry\":' || {geom}"
            f" || ',\"properties\":' || {properties_expr(layer, q.properties, col)} || '}}'")


def where(layer: Layer, q: ItemsQuery, params: list[Any], col: str = "t") -> str:
    """The WHERE clause (without the keyword) for a query; appends its values to `params`."""
    if q.selection is None:
        return "TRUE"
    sql, values = q.selection.sql(len(params), f"{col}.")
    params.extend(values)
    return sql


def order_by(layer: Layer, q: ItemsQuery, col: str = "t") -> str:
    keys = [f'{col}.{quote_ident(name)} {"DESC" if desc else "ASC"}' for name, desc in q.sortby]
    if not any(name == layer.id_column for name, _ in q.sortby):
        keys.append(f"{col}.{quote_ident(layer.id_column)}")
    return ", ".join(keys)


def items_sql(layer: Layer, q: ItemsQuery, count_cap: int = COUNT_CAP) -> tuple[str, list[Any]]:
    """One statement returning (n, features, capped):

    - the page is read with LIMIT limit+1, so `n > limit` says exactly whether a next page exists; the extra
      row is not turned into GeoJSON, nor are the rows skipped by OFFSET (the page's rows are chosen first);
    - `capped` = count(*) of the matches, stopped at `count_cap` + 1 rows, computed only when it is needed and
      cheap: a next page exists (or the page is empty past the end) and offset + limit < count_cap. It is an
      InitPlan inside CASE, which PostgreSQL evaluates lazily.
    """
    params: list[Any] = []
    w = where(layer, q, params)
    params.append(q.limit)
    lim = f"${len(params)}::int"
    params.append(q.offset)
    off = f"${len(params)}::int"
    params.append(count_cap + 1)
    cap = f"${len(params)}::int"
    tbl = quote_ident(layer.table)
    sql = (f"WITH page AS MATERIALIZED (SELECT CASE WHEN t.rn <= {lim} THEN {select_feature(layer, q)} END AS f "  # noqa: S608
           f"FROM (SELECT t.*, row_number() OVER () AS rn FROM (SELECT * FROM {tbl} t WHERE {w} "
           f"ORDER BY {order_by(layer, q)} LIMIT {lim} + 1 OFFSET {off}) t) t) "
           f"SELECT s.n, s.features, CASE WHEN (s.n > {lim} OR ({off} > 0 AND s.n = 0)) "
           f"AND {off} + {lim} < {cap} - 1 THEN "
           f"(SELECT count(*) FROM (SELECT 1 FROM {tbl} t WHERE {w} LIMIT {cap}) c) END AS capped "
           f"FROM (SELECT count(*) AS n, string_agg(f, ',') AS features FROM page) s")
    return sql, params


def count_estimate_sql(layer: Layer, q: ItemsQuery) -> tuple[str, list[Any]]:
    params: list[Any] = []
    w = where(layer, q, params)
    return f'EXPLAIN (FORMAT JSON) SELECT 1 FROM {quote_ident(layer.table)} t WHERE {w}', params  # noqa: S608


@dataclass
class ItemsPage:
    features: str            # comma-separated GeoJSON Feature objects
    number_returned: int
    number_matched: int
    estimated: bool


async def fetch_items(conn: asyncpg.Connection, layer: Layer, q: ItemsQuery,
                      count_cap: int = COUNT_CAP) -> tuple[ItemsPage, bool]:
    """A page of features and whether a next page exists (exactly: one row more than the page is read)."""
    sql, params = items_sql(layer, q, count_cap)
    row = await conn.fetchrow(sql, *params)
    assert row is not None
    n, features, capped = int(row["n"]), row["features"] or "", row["capped"]
    has_next = n > q.limit
    returned = min(n, q.limit)
    estimated = False
    if not has_next and (returned > 0 or q.offset == 0):
        matched = q.offset + returned
    elif capped is not None and capped <= count_cap:
        matched = int(capped)
    else:
        esql, eparams = count_estimate_sql(layer, q)
        plan = await conn.fetchval(esql, *eparams)
        if isinstance(plan, str):
            plan = orjson.loads(plan)
        matched = int(plan[0]["Plan"]["Plan Rows"])
        if returned == 0:      # an empty page past the end proves there are at most `offset` matches
            matched = min(matched, q.offset)
        else:                  # a page proves at least offset + returned (+1 when a next page exists)
            matched = max(matched, q.offset + returned + (1 if has_next else 0), count_cap + 1 if capped else 0)
        estimated = True
    return ItemsPage(features, returned, matched, estimated), has_next


async def count_matches(conn: asyncpg.Connection, layer: Layer, q: ItemsQuery, cap: int) -> tuple[int, bool]:
    """The exact number of matches, counted up to `cap` rows: (count, True when there are more than `cap`).
    The HTML pages show it next to the download links (whose ceiling `cap` is)."""
    params: list[Any] = []
    w = where(layer, q, params)
    params.append(cap + 1)
    n = int(await conn.fetchval(f"SELECT count(*) FROM (SELECT 1 FROM {quote_ident(layer.table)} t "  # noqa: S608
                                f"WHERE {w} LIMIT ${len(params)}::int) c", *params))
    return min(n, cap), n > cap


def item_sql(layer: Layer, q: ItemsQuery) -> str:
    return (f"SELECT {select_feature(layer, q)} AS f, t.xmin::text AS v FROM {quote_ident(layer.table)} t "  # noqa: S608
            f"WHERE t.{quote_ident(layer.id_column)} = $1::bigint")


async def fetch_item(conn: asyncpg.Connection, layer: Layer, feature_id: int,
                     q: ItemsQuery) -> tuple[str, str] | None:
    """(feature GeoJSON text, version tag for the ETag) or None."""
    row = await conn.fetchrow(item_sql(layer, q), feature_id)
    if row is None:
        return None
    return str(row["f"]), f"{feature_id}-{row['v']}"


# -- extents, queryables, schema -----------------------------------------------------------------------------

async def extent(conn: asyncpg.Connection, layer: Layer) -> dict[str, Any]:
    g = layer.geometry_column
    row = await conn.fetchrow(
        f'SELECT ST_XMin(e) x1, ST_YMin(e) y1, ST_XMax(e) x2, ST_YMax(e) y2 FROM '  # noqa: S608
        f'(SELECT coalesce(ST_EstimatedExtent(\'public\', \'{layer.table}\', \'{g}\'), '
        f'(SELECT ST_Extent({quote_ident(g)}) FROM {quote_ident(layer.table)})) e) s')
    out: dict[str, Any] = {}
    if row is not None and row["x1"] is not None:
        out["spatial"] = {"bbox": [[row["x1"], row["y1"], row["x2"], row["y2"]]],
                          "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    if layer.temporal:
        a, b = layer.temporal
        e = b or a
        # only values Python can decode (a year-1-BC row, stored before the date ranges were enforced, made
        # asyncpg raise OverflowError and /collections answer 500 for everyone); min/max still use the index
        trow = await conn.fetchrow(
            f'SELECT (SELECT min({quote_ident(a)}) FROM {quote_ident(layer.table)} WHERE {quote_ident(a)} >= \'0001-01-03\')::timestamptz s, '  # noqa: S608
            f'(SELECT max({quote_ident(e)}) FROM {quote_ident(layer.table)} WHERE {quote_ident(e)} <= \'9999-12-29\')::timestamptz e')
        if trow is not None and trow["s"] is not None:
            out["temporal"] = {"interval": [[trow["s"].isoformat(), trow["e"].isoformat() if trow["e"] else None]],
                               "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return out


_JSON_FORMATS = {"date": "date", "date-time": "date-time"}


def field_schema(f: LayerField, lang: str) -> dict[str, Any]:
    s: dict[str, Any] = {"title": f.title_vi if lang == "vi" else f.title_en}
    if f.type in _JSON_FORMATS:
        s["type"], s["format"] = "string", _JSON_FORMATS[f.type]
    elif f.type == "array":
        s["type"] = "array"
        items: dict[str, Any] = {"type": "string" if f.item_type in (None, "date", "date-time")
                                 else f.item_type}
        if f.items_enum:
            items["enum"] = list(f.items_enum)
        s["items"] = items
    else:
        s["type"] = f.type
    if f.enum:
        s["enum"] = list(f.enum)
    if f.minimum is not None:
        s["minimum"] = f.minimum
    if f.nullable and not f.required:
        s["type"] = [s["type"], "null"]
    return s


_GEOMETRY_SCHEMAS = {"Point": "point", "MultiPolygon": "multipolygon", "Polygon": "polygon",
                     "LineString": "linestring", "MultiPoint": "multipoint", "MultiLineString": "multilinestring"}


def geometry_format(layer: Layer) -> str:
    return "geometry-" + _GEOMETRY_SCHEMAS.get(layer.geometry_type, "any")


def queryables(layer: Layer, lang: str) -> dict[str, Any]:
    props: dict[str, Any] = {"geometry": {"format": geometry_format(layer), "x-ogc-role": "primary-geometry"},
                             "id": {"type": "integer", "title": "id", "x-ogc-role": "id"}}
    for f in layer.queryables:
        props[f.name] = field_schema(f, lang)
    return {"type": "object", "title": layer.title(lang), "properties": props, "additionalProperties": False}


def schema(layer: Layer, lang: str) -> dict[str, Any]:
    props: dict[str, Any] = {"geometry": {"format": geometry_format(layer), "x-ogc-role": "primary-geometry"},
                             "id": {"type": "integer", "title": "id", "x-ogc-role": "id", "readOnly": True}}
    for f in layer.public_fields:
        props[f.name] = field_schema(f, lang)
    if layer.temporal:
        props[layer.temporal[0]]["x-ogc-role"] = "primary-instant" if layer.temporal[1] is None \
            else "primary-interval-start"
        if layer.temporal[1]:
            props[layer.temporal[1]]["x-ogc-role"] = "primary-interval-end"
    return {"type": "object", "title": layer.title(lang), "properties": props,
            "required": [f.name for f in layer.public_fields if f.required]}
