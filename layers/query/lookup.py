""""What applies here": everything the register knows at one point, in ONE SQL statement.

`lookup_sql()` asks every layer with a point-in-polygon index probe (`ST_Covers(geom, point)` on the GiST
indexes; each subquery reads one or a few index entries): the parcel (sheet, number, area, land use, address),
the commune now (2025 scheme) and before the 2025 reform (2004 scheme, with the crosswalk row that joins the two
and its area share), the planning zone, the land-price zone, and any auction plot or growing area there.
`describe()` turns the row into the JSON answer with labels in the request's language (land-use names, states,
formatted prices), so a citizen-facing client shows it as is.

A point outside every layer is not an error: the answer is 200 with empty members (`"inside": false`) - the
question "what applies here" has a true answer ("nothing on record"), and a map click just off the province
should not show an error. Bad coordinates are a `QueryError` (400).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import orjson

from gis.crs import transformer
from layers.catalog.formats import display_title, format_value, label, land_use_name
from layers.catalog.registry import Layer, get_layer
from layers.query.selection import CRS84, QueryError, resolve_crs

# The fields each member carries (raw values; `describe` adds the labels). Internal ids are kept as `id` for
# links (/collections/{layer}/items/{id}) but never shown as a label.
MEMBERS: dict[str, tuple[str, ...]] = {
    "parcels": ("commune_code", "old_commune_code", "map_sheet", "parcel_no", "address", "area_m2",
                "land_use_codes", "managing_body", "status"),
    "planning_zones": ("zone_code", "plan_class", "plan_period", "decision_no", "decision_date", "commune_code"),
    "land_price_zones": ("zone_code", "commune_code", "road_name", "segment", "position", "area_kind",
                         "price_residential_vnd", "price_commercial_vnd", "price_production_vnd",
                         "price_annual_crop_vnd", "price_perennial_crop_vnd", "price_aquaculture_vnd",
                         "decision_no", "decision_date", "price_year"),
    "auction_plots": ("plot_code", "address", "area_m2", "land_use_code", "starting_price_vnd",
                      "registration_end", "auction_date", "status", "result_price_vnd"),
    "growing_areas": ("code", "crop", "variety", "area_m2", "owner", "status", "valid_from", "valid_to"),
}
MANY = {"auction_plots", "growing_areas"}      # several may overlap a point (and history rows)


def _obj(layer_id: str) -> str:
    cols = ", ".join(f"'{c}', x.{c}" for c in ("id", *MEMBERS[layer_id]))
    return f"json_build_object({cols})"


def lookup_sql() -> str:
    """One statement, parameters $1 = lon, $2 = lat (EPSG:4326), $3 = the date the admin units must be valid."""
    def one(layer_id: str, extra: str = "") -> str:
        table = get_layer(layer_id).table
        return (f"(SELECT {_obj(layer_id)} FROM {table} x WHERE ST_Covers(x.geom, pt.g){extra} "  # noqa: S608
                f"ORDER BY x.id LIMIT 1)")

    def many(layer_id: str) -> str:
        table = get_layer(layer_id).table
        return (f"(SELECT coalesce(json_agg({_obj(layer_id)} ORDER BY x.id), '[]'::json) FROM (SELECT * FROM "  # noqa: S608
                f"{table} x WHERE ST_Covers(x.geom, pt.g) ORDER BY x.id LIMIT 20) x)")

    unit = ("json_build_object('code', u.code, 'name', u.name, 'scheme', u.scheme, 'valid_from', u.valid_from, "
            "'valid_to', u.valid_to, 'province', (SELECT p.name FROM admin_units p WHERE p.code = u.parent_code "
            "AND p.scheme = u.scheme AND p.level = 'province' ORDER BY p.valid_from DESC LIMIT 1))")
    return f"""
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint($1::float8, $2::float8), 4326) AS g),
now_unit AS (
  SELECT u.code, {unit} AS j FROM admin_units u, pt
  WHERE u.scheme = '2025' AND u.level NOT IN ('province', 'district') AND ST_Covers(u.geom, pt.g)
    AND u.valid_from <= $3::date AND (u.valid_to IS NULL OR u.valid_to > $3::date)
  ORDER BY u.valid_from DESC LIMIT 1),
old_unit AS (
  SELECT u.code, {unit} AS j FROM admin_units u, pt
  WHERE u.scheme = '2004' AND u.level NOT IN ('province', 'district') AND ST_Covers(u.geom, pt.g)
  ORDER BY u.valid_to DESC NULLS FIRST LIMIT 1)
SELECT json_build_object(
  'parcel', {one("parcels")},
  'commune', (SELECT j FROM now_unit),
  'old_commune', (SELECT j FROM old_unit),
  'crosswalk', (SELECT json_build_object('old_code', c.old_code, 'new_code', c.new_code, 'share', c.share,
                                         'effective', c.effective, 'legal_basis', c.legal_basis)
                FROM admin_crosswalk c WHERE c.old_code = (SELECT code FROM old_unit)
                  AND c.new_code = (SELECT code FROM now_unit) AND c.old_level NOT IN ('province', 'district')
                ORDER BY c.effective DESC LIMIT 1),
  'planning_zone', {one("planning_zones")},
  'land_price_zone', {one("land_price_zones")},
  'auction_plots', {many("auction_plots")},
  'growing_areas', {many("growing_areas")}
)::text FROM pt"""  # noqa: S608 - registry table names, no user text


LOOKUP_SQL = lookup_sql()


def parse_point(lon: str | None, lat: str | None, crs: str | None) -> tuple[float, float]:
    """lon/lat (or easting/northing in `crs`) -> (lon, lat) in EPSG:4326; a QueryError (400) names the bad one."""
    values: list[float] = []
    for name, text in (("lon", lon), ("lat", lat)):
        if text is None or text.strip() == "":
            raise QueryError(f"thiếu tham số {name}", f"the {name} parameter is required")
        try:
            v = float(text)
        except ValueError:
            raise QueryError(f"{name} phải là một số: '{text[:40]}'", f"{name} must be a number: '{text[:40]}'") from None
        if not math.isfinite(v):
            raise QueryError(f"{name} phải là một số hữu hạn", f"{name} must be a finite number")
        values.append(v)
    x, y = values
    c = resolve_crs(crs, "crs")
    if c != CRS84 and c.key != CRS84.key:
        x, y = transformer(c.key, CRS84.key).transform(x, y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise QueryError("crs: điểm nằm ngoài phạm vi của hệ tọa độ", "crs: the point is outside the CRS's area")
    if not -180 <= x <= 180:
        raise QueryError("lon phải nằm trong khoảng -180..180", "lon must be within -180..180")
    if not -90 <= y <= 90:
        raise QueryError("lat phải nằm trong khoảng -90..90", "lat must be within -90..90")
    return x, y


async def lookup(conn: Any, lon: float, lat: float, today: dt.date | None = None) -> dict[str, Any]:
    """The raw answer of `LOOKUP_SQL` at (lon, lat) on an asyncpg connection."""
    text = await conn.fetchval(LOOKUP_SQL, lon, lat, today or dt.date.today())
    out: dict[str, Any] = orjson.loads(text)
    return out


def _fields(layer: Layer, row: dict[str, Any], lang: str) -> dict[str, Any]:
    """`row`'s values formatted for people, keyed by field name: {"title": ..., "text": ...}."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        f = layer.get_field(name)
        if f is None or not f.public or value is None:
            continue
        out[name] = {"title": display_title(f, lang), "text": format_value(f, value, lang)}
    return out


def _member(layer_id: str, row: dict[str, Any] | None, lang: str, base: str) -> dict[str, Any] | None:
    if row is None:
        return None
    layer = get_layer(layer_id)
    fid = row.get("id")
    values = {k: v for k, v in row.items() if k != "id"}
    return {"layer": layer_id, "layer_title": layer.title(lang), "id": fid,
            "href": f"{base}/collections/{layer_id}/items/{fid}", "properties": values,
            "display": _fields(layer, values, lang)}


def _unit(u: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if u is None else {k: u.get(k) for k in ("code", "name", "province", "scheme", "valid_from",
                                                          "valid_to")}


def describe(raw: dict[str, Any], lon: float, lat: float, lang: str = "vi", base: str = "") -> dict[str, Any]:
    """The JSON answer: each member with its raw values, a link, and labels in `lang`."""
    parcel = _member("parcels", raw.get("parcel"), lang, base)
    if parcel is not None:
        p = parcel["properties"]
        parcel["land_use"] = [{"code": c, "name": land_use_name(c, lang)} for c in p.get("land_use_codes") or []]
        parcel["status_label"] = label(p.get("status"), lang)
        parcel["title"] = (f"Thửa {p['parcel_no']}, tờ {p['map_sheet']}" if lang == "vi"
                           else f"Parcel {p['parcel_no']}, sheet {p['map_sheet']}")
    plan = _member("planning_zones", raw.get("planning_zone"), lang, base)
    if plan is not None:
        code = plan["properties"]["plan_class"]
        plan["plan_class"] = {"code": code, "name": land_use_name(code, lang)}
        plan["title"] = f"{code} – {land_use_name(code, lang)} ({plan['properties']['plan_period']})"
    price = _member("land_price_zones", raw.get("land_price_zone"), lang, base)
    if price is not None:
        layer = get_layer("land_price_zones")
        pp = price["properties"]
        price["prices"] = [{"field": f.name, "land_type": display_title(f, lang), "vnd_per_m2": pp[f.name],
                            "text": format_value(f, pp[f.name], lang)}
                           for f in layer.fields if f.format == "vnd" and pp.get(f.name) is not None]
        road = pp.get("road_name") or ("Các vị trí còn lại" if lang == "vi" else "Other locations")
        price["title"] = (f"{road}, vị trí {pp['position']} ({pp['price_year']})" if lang == "vi"
                          else f"{road}, position {pp['position']} ({pp['price_year']})")
    auctions = [m for m in (_member("auction_plots", r, lang, base) for r in raw.get("auction_plots") or [])
                if m is not None]
    for a in auctions:
        a["status_label"] = label(a["properties"].get("status"), lang)
    growing = [m for m in (_member("growing_areas", r, lang, base) for r in raw.get("growing_areas") or [])
               if m is not None]
    for g in growing:
        g["status_label"] = label(g["properties"].get("status"), lang)
    commune, old = _unit(raw.get("commune")), _unit(raw.get("old_commune"))
    found = any(x for x in (parcel, plan, price, auctions, growing, commune, old))
    return {
        "point": {"type": "Point", "coordinates": [lon, lat]},
        "lang": lang,
        "inside": found,
        "parcel": parcel,
        "commune": commune,
        "old_commune": old,
        "crosswalk": raw.get("crosswalk"),
        "planning_zone": plan,
        "land_price_zone": price,
        "auction_plots": auctions,
        "growing_areas": growing,
    }
