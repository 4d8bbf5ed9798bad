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

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
import orjson

from gis.crs import CrsDef, CrsError, get_crs, list_crs
from layers.catalog.registry import Layer, LayerField
from layers.query.cql2 import CqlError, Translator, parse

COUNT_CAP = 1_000
CRS84 = get_crs("OGC:CRS84")


class QueryError(CqlError):
    """A bad query parameter (bbox, datetime, crs, sortby, ...): becomes a 400 with a bilingual detail."""


def published_crs() -> list[CrsDef]:
    return list(list_crs())


def resolve_crs(text: str | None, param: str) -> CrsDef:
    """A CRS from the registry given as URI, URN, CURIE, EPSG code or datso alias; others are refused."""
    if text is None or text == "":
        return CRS84
    try:
        c = get_crs(text)
    except CrsError as exc:
        raise QueryError(f"{param}: hệ tọa độ '{text}' không được hỗ trợ ({exc})",
                         f"{param}: CRS '{text}' is not supported ({exc})") from None
    if c not in published_crs():
        raise QueryError(f"{param}: hệ tọa độ '{text}' không có trong danh sách của dịch vụ",
                         f"{param}: CRS '{text}' is not one of the CRSs this service publishes")
    return c


@dataclass
class ItemsQuery:
    limit: int = 10
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: CrsDef = CRS84
    datetime: tuple[dt.datetime | None, dt.datetime | None] | None = None
    properties_eq: dict[str, str] = field(default_factory=dict)
    filter: str | None = None
    filter_lang: str = "cql2-text"
    filter_crs: str | None = None
    sortby: list[tuple[str, bool]] = field(default_factory=list)   # (field, descending)
    properties: list[str] | None = None
    skip_geometry: bool = False
    crs: CrsDef = CRS84


# -- parsing of query-parameter values (pure functions; api/params.py calls them) -----------------------------

def parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise QueryError("bbox cần 4 (hoặc 6) số cách nhau bởi dấu phẩy: minx,miny,maxx,maxy",
                         "bbox needs 4 (or 6) comma-separated numbers: minx,miny,maxx,maxy")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise QueryError(f"bbox phải gồm các số: '{text[:80]}'", f"bbox values must be numbers: '{text[:80]}'") from None
    if any(n != n or n in (float("inf"), float("-inf")) for n in nums):
        raise QueryError("bbox phải gồm các số hữu hạn", "bbox values must be finite numbers")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    x1, y1, x2, y2 = nums
    if y1 > y2:
        raise QueryError("bbox: cạnh dưới lớn hơn cạnh trên", "bbox: the lower bound exceeds the upper bound")
    return x1, y1, x2, y2


def _instant(text: str, end: bool) -> dt.datetime | None:
    if text in ("..", ""):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = dt.date.fromisoformat(text)
            t = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
            return t + dt.timedelta(days=1) - dt.timedelta(microseconds=1) if end else t
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(f"datetime '{text[:60]}' không đúng RFC 3339 (vd. 2025-07-01 hoặc 2025-07-01T00:00:00Z)",
                         f"datetime '{text[:60]}' is not RFC 3339 (e.g. 2025-07-01 or 2025-07-01T00:00:00Z)") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_datetime(text: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    if "/" in text:
        a, _, b = text.partition("/")
        start, end = _instant(a, False), _instant(b, True)
        if start is None and end is None:
            raise QueryError("datetime '../..' không giới hạn gì", "datetime '../..' is not a valid interval")
        if start and end and start > end:
            raise QueryError("datetime: mốc đầu sau mốc cuối", "datetime: the start is after the end")
        return start, end
    if text == "..":
        raise QueryError("datetime '..' chỉ dùng được trong khoảng", "datetime '..' is only valid in an interval")
    return _instant(text, False), _instant(text, True)


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


def get_queryable(layer: Layer, name: str) -> LayerField:
    """The queryable `name` of `layer`, or a QueryError listing the ones there are."""
    for f in layer.queryables:
        if f.name == name:
            return f
    names = ", ".join(f.name for f in layer.queryables)
    raise QueryError(f"Tham số '{name[:40]}' không phải thuộc tính lọc được của lớp {layer.id}; "
                     f"có thể lọc theo: {names}",
                     f"'{name[:40]}' is not a queryable of layer {layer.id}; queryables: {names}")


def equality_filters(layer: Layer, query: Mapping[str, str],
                     skip: frozenset[str] | set[str]) -> list[tuple[LayerField, str, Any]]:
    """Every `?field=value` of `query` (names in `skip` are not filters), as (field, raw text, typed value),
    in name order; an unknown name or a bad value raises QueryError."""
    out = []
    for name in sorted(query):
        if name in skip:
            continue
        f = get_queryable(layer, name)
        out.append((f, query[name], coerce_value(f, query[name])))
    return out


INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
_INT_RE = re.compile(r"[+-]?[0-9]{1,25}")
_NUM_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")


def coerce_value(f: LayerField, text: str) -> Any:
    """A query-string value for `?field=value` converted to the field's type (an array field: its item type)
    and checked against the field's vocabulary. The one parser of equality filters: items, tiles
    (tiles/filters.py) and map exports (layers/maps/maps.py) all call it."""
    kind = f.item_type if f.type == "array" and f.item_type else f.type
    allowed = f.items_enum if f.type == "array" else f.enum
    bad = QueryError(f"Giá trị '{text[:60]}' không hợp với thuộc tính '{f.name}' ({kind})",
                     f"Value '{text[:60]}' does not fit property '{f.name}' ({kind})")
    try:
        if kind == "integer":
            # ASCII digits only ('¹' and '٣' are text, not numbers) and within bigint, the type the value is
            # cast to (a value beyond a narrower column's range then simply matches nothing)
            if not _INT_RE.fullmatch(text) or not INT8_MIN <= (i := int(text)) <= INT8_MAX:
                raise bad
            return i
        if kind == "number":
            if not _NUM_RE.fullmatch(text):
                raise bad
            d = Decimal(text)
            if not d.is_finite() or abs(d.adjusted()) > 1000:   # numeric's range is wide; 1e99999 is not a value
                raise bad
            return d
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise bad
            return text.lower() == "true"
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "date-time":
            t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    except (ValueError, InvalidOperation):
        raise bad from None
    if allowed is not None and text not in allowed:
        raise QueryError(f"Giá trị '{text[:60]}' của {f.name} không hợp lệ; chọn một trong: {', '.join(allowed)}",
                         f"Invalid value '{text[:60]}' for {f.name}; one of: {', '.join(allowed)}")
    return text


def sql_cast(f: LayerField) -> str:
    """The SQL type a `?field=value` parameter is cast to (an array field: its item type)."""
    return _CAST.get(f.item_type or "string", "text") if f.type == "array" else _CAST.get(f.type, "text")


_CAST = {"string": "text", "integer": "bigint", "number": "numeric", "boolean": "boolean", "date": "date",
         "date-time": "timestamptz"}


# -- SQL -----------------------------------------------------------------------------------------------------

def geometry_expr(layer: Layer, crs: CrsDef, col: str = "t") -> str:
    g = f'{col}."{layer.geometry_column}"'
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
        chunks.append("jsonb_build_object(" + ", ".join(f"'{f.name}', {col}.\"{f.name}\"" for f in part) + ")")
    if len(chunks) == 1:
        return "json_build_object(" + ", ".join(
            f"'{f.name}', {col}.\"{f.name}\"" for f in fields) + ")::text"
    return "(" + " || ".join(chunks) + ")::text"


def select_feature(layer: Layer, q: ItemsQuery, col: str = "t") -> str:
    """SQL text of one GeoJSON Feature (as text) for a row of `layer`."""
    geom = "'null'" if q.skip_geometry else f"coalesce({geometry_expr(layer, q.crs, col)}, 'null')"
    return (f"'{{\"type\":\"Feature\",\"id\":' || {col}.\"{layer.id_column}\" || ',\"geometry\":' || {geom}"
            f" || ',\"properties\":' || {properties_expr(layer, q.properties, col)} || '}}'")


def where(layer: Layer, q: ItemsQuery, params: list[Any], col: str = "t") -> str:
    """The WHERE clause (without the keyword) for a query; appends its values to `params`."""
    parts: list[str] = []

    def p(v: Any, cast: str) -> str:
        params.append(v)
        return f"${len(params)}::{cast}"

    if q.bbox is not None:
        x1, y1, x2, y2 = q.bbox
        if q.bbox_crs.lat_first:
            x1, y1, x2, y2 = y1, x1, y2, x2
        env = f"ST_MakeEnvelope({p(x1, 'float8')}, {p(y1, 'float8')}, {p(x2, 'float8')}, {p(y2, 'float8')}, " \
              f"{int(q.bbox_crs.srid)})"
        g = f'{col}."{layer.geometry_column}"'
        if q.bbox_crs.srid != 4326:
            parts.append(f"ST_Intersects({g}, ST_Transform({env}, 4326))")
        else:
            # a feature whose box lies inside the (lon/lat-aligned) query box intersects it: skip the exact
            # test for those, which are most of the page (measured: -45 % at limit 1000 on 1M parcels)
            parts.append(f"({g} && {env} AND ({g} @ {env} OR ST_Intersects({g}, {env})))")
    if q.datetime is not None:
        if layer.temporal is None:
            raise QueryError(f"Lớp '{layer.id}' không có trường thời gian nên không lọc được theo datetime",
                             f"Collection '{layer.id}' has no temporal property; datetime cannot be used")
        start_f, end_f = layer.temporal
        s, e = q.datetime
        a = f'{col}."{start_f}"'
        b = f'{col}."{end_f}"' if end_f else a
        if s is not None:
            parts.append(f"coalesce({b}::timestamptz, 'infinity'::timestamptz) >= {p(s, 'timestamptz')}"
                         if end_f else f"{a} >= {p(s, 'timestamptz')}")
        if e is not None:
            parts.append(f"{a} <= {p(e, 'timestamptz')}")
        if s is None and e is None:
            parts.append(f"{a} IS NOT NULL")
    for name, text in q.properties_eq.items():
        f = layer.get_field(name)
        assert f is not None
        if f.type == "array":
            item = coerce_value(f, text)
            parts.append(f'{p(item, _CAST.get(f.item_type or "string", "text"))} = ANY({col}."{f.name}")')
        else:
            parts.append(f'{col}."{f.name}" = {p(coerce_value(f, text), _CAST.get(f.type, "text"))}')
    if q.filter is not None:
        tree = parse(q.filter, q.filter_lang)
        tr = Translator(layer, q.filter_crs, len(params), f"{col}.")
        parts.append(tr.predicate(tree))
        params.extend(tr.params)
    return " AND ".join(parts) if parts else "TRUE"


def order_by(layer: Layer, q: ItemsQuery, col: str = "t") -> str:
    keys = [f'{col}."{name}" {"DESC" if desc else "ASC"}' for name, desc in q.sortby]
    if not any(name == layer.id_column for name, _ in q.sortby):
        keys.append(f'{col}."{layer.id_column}"')
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
    tbl = f'"{layer.table}"'
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
    return f'EXPLAIN (FORMAT JSON) SELECT 1 FROM "{layer.table}" t WHERE {w}', params  # noqa: S608


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


def item_sql(layer: Layer, q: ItemsQuery) -> str:
    return (f"SELECT {select_feature(layer, q)} AS f, t.xmin::text AS v FROM \"{layer.table}\" t "  # noqa: S608
            f"WHERE t.\"{layer.id_column}\" = $1::bigint")


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
        f'(SELECT ST_Extent("{g}") FROM "{layer.table}")) e) s')
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
            f'SELECT (SELECT min("{a}") FROM "{layer.table}" WHERE "{a}" >= \'0001-01-03\')::timestamptz s, '  # noqa: S608
            f'(SELECT max("{e}") FROM "{layer.table}" WHERE "{e}" <= \'9999-12-29\')::timestamptz e')
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


def check_filter(layer: Layer, q: ItemsQuery) -> None:
    """Translate the query's CQL2 filter once, so a bad filter is refused before any database work."""
    if q.filter is not None:
        Translator(layer, q.filter_crs).predicate(parse(q.filter, q.filter_lang))
