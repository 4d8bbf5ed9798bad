"""The OpenAPI contract: shared response definitions for the route decorators, and `install(app)`.

Routes declare what they answer with `responses=` built here (`ok_json`, `ok_items`, `problems`, ...), so the
document names every status a route can return, its media types and a schema for each body; schemathesis'
status-code, content-type and response-schema checks then test something (tests/test_contract.py, make fuzz).

Component schemas are kept in `COMPONENTS` and added to the document by `install(app)`, which also drops the
422 FastAPI documents for every route with declared parameters: this API answers bad parameters with 400
(api/errors.py turns request validation errors into 400 problem+json); only writes answer 422, and they
declare it themselves.
"""

from __future__ import annotations

import re
from typing import Any

import geojson_pydantic as gj
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from geojson_pydantic.geometries import Geometry
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException
from starlette.responses import Response

from api.errors import PROBLEM, TITLES, problem_response

REF = "#/components/schemas/{model}"
COMPONENTS: dict[str, Any] = {}


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def component(name: str, schema: dict[str, Any]) -> dict[str, str]:
    """Register a schema under components/schemas (its `$defs` too) and return a `$ref` to it."""
    schema = dict(schema)
    for sub, s in schema.pop("$defs", {}).items():
        COMPONENTS.setdefault(sub, s)
    COMPONENTS[name] = schema
    return ref(name)


# -- shared schemas ------------------------------------------------------------------------------------------

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BINARY = {"type": "string", "format": "binary"}

PROBLEM_SCHEMA = component("Problem", {
    "type": "object", "description": "RFC 9457 problem details (title and detail in the caller's language)",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"}, "title": _STR,
        "status": {"type": "integer", "minimum": 400, "maximum": 599}, "detail": _STR, "instance": _STR,
        "errors": {"type": "array", "description": "the individual issues (parameters or fields)",
                   "items": {"type": "object"}},
    },
})
LINK = component("Link", {
    "type": "object", "required": ["href", "rel"],
    "properties": {"href": _STR, "rel": _STR, "type": _STR, "title": _STR, "templated": {"type": "boolean"}},
})
LINKS = {"type": "array", "items": LINK}
BBOX = {"type": "array", "items": _NUM, "minItems": 4, "maxItems": 6}

LANDING = component("LandingPage", {
    "type": "object", "required": ["title", "links"],
    "properties": {"title": _STR, "description": _STR, "links": LINKS},
})
CONFORMANCE = component("Conformance", {
    "type": "object", "required": ["conformsTo"],
    "properties": {"conformsTo": {"type": "array", "items": _STR}},
})
COLLECTION = component("Collection", {
    "type": "object", "required": ["id", "links"],
    "properties": {
        "id": _STR, "title": _STR, "description": _STR, "itemType": _STR,
        "crs": {"type": "array", "items": _STR}, "storageCrs": _STR, "links": LINKS,
        "extent": {"type": "object", "properties": {
            "spatial": {"type": "object", "properties": {"bbox": {"type": "array", "items": BBOX}, "crs": _STR}},
            "temporal": {"type": "object", "properties": {
                "interval": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                                          "items": {"type": ["string", "null"]}}},
                "trs": _STR}}}},
    },
})
COLLECTIONS = component("Collections", {
    "type": "object", "required": ["links", "collections"],
    "properties": {"links": LINKS, "collections": {"type": "array", "items": COLLECTION}},
})
JSON_SCHEMA_DOC = component("JsonSchemaDocument", {
    "type": "object", "description": "A JSON Schema (2020-12) of a collection's queryables or features",
    "required": ["type", "properties"],
    "properties": {"$schema": _STR, "$id": _STR, "type": {"const": "object"}, "title": _STR,
                   "properties": {"type": "object", "additionalProperties": {"type": "object"}},
                   "required": {"type": "array", "items": _STR}, "additionalProperties": {"type": "boolean"}},
})
_GEOMETRY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Geometry)  # type: ignore[arg-type]   # an Annotated union
ANY_GEOMETRY = component("Geometry", _GEOMETRY_ADAPTER.json_schema(ref_template=REF, mode="serialization"))
SEARCH_RESULTS = component("SearchResults", {
    "type": "object", "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"}, "query": {"type": ["string", "null"]},
        "numberReturned": _INT, "layers": {"type": "array", "items": _STR}, "bbox": {"type": ["array", "null"]},
        "features": {"type": "array", "items": {
            "type": "object", "required": ["type", "geometry", "properties"],
            "properties": {"type": {"const": "Feature"}, "id": {"type": ["string", "integer"]},
                           "geometry": {"anyOf": [ANY_GEOMETRY, {"type": "null"}]}, "bbox": BBOX,
                           "properties": {"type": "object", "required": ["layer"]}}}},
    },
})
_MEMBER = {"type": ["object", "null"], "required": ["layer", "id", "href", "properties", "display"],
           "properties": {"layer": _STR, "layer_title": _STR, "id": _INT, "href": _STR, "title": _STR,
                          "properties": {"type": "object", "description": "raw values, by field name"},
                          "display": {"type": "object", "description": "field name -> {title, text}: labels and "
                                      "formatted values in the request's language (units written once)"}}}
_UNIT = {"type": ["object", "null"], "properties": {"code": _STR, "name": _STR, "province": {"type": ["string", "null"]},
                                                   "scheme": _STR, "valid_from": _STR,
                                                   "valid_to": {"type": ["string", "null"]}}}
LOOKUP = component("Lookup", {
    "type": "object", "description": "What applies at a point: every member is null (or empty) where nothing is "
    "on record; `inside` is false when the point is outside every layer (still a 200).",
    "required": ["point", "inside", "parcel", "commune", "old_commune", "planning_zone", "land_price_zone",
                 "auction_plots", "growing_areas"],
    "properties": {
        "point": {"type": "object", "description": "the point asked, in CRS84 (lon, lat)"},
        "lang": _STR, "inside": {"type": "boolean"},
        "parcel": {**_MEMBER, "description": "the parcel: sheet/parcel, area, land use (`land_use`: code + name)"},
        "commune": {**_UNIT, "description": "the commune now (2025 scheme)"},
        "old_commune": {**_UNIT, "description": "the commune before the 1 July 2025 reform (2004 scheme)"},
        "crosswalk": {"type": ["object", "null"], "description": "the old->new crosswalk row (share of the old "
                      "commune's area that went to the new one)"},
        "planning_zone": {**_MEMBER, "description": "land-use plan class (`plan_class`: code + name), period"},
        "land_price_zone": {**_MEMBER, "description": "road/position, `prices`: VND per m² by land type, "
                            "decision and year"},
        "auction_plots": {"type": "array", "items": _MEMBER},
        "growing_areas": {"type": "array", "items": _MEMBER},
    },
})
TILEJSON = component("TileJSON", {
    "type": "object", "description": "TileJSON 3.0.0",
    "required": ["tilejson", "tiles", "vector_layers"],
    "properties": {
        "tilejson": {"const": "3.0.0"}, "name": _STR, "version": _STR, "scheme": _STR,
        "tiles": {"type": "array", "items": _STR, "minItems": 1}, "attribution": _STR,
        "minzoom": _INT, "maxzoom": _INT, "bounds": {"type": "array", "items": _NUM, "minItems": 4, "maxItems": 4},
        "center": {"type": "array", "items": _NUM, "minItems": 3, "maxItems": 3}, "description": _STR,
        "vector_layers": {"type": "array", "items": {"type": "object", "required": ["id", "fields"],
                                                      "properties": {"id": _STR, "fields": {"type": "object"},
                                                                     "minzoom": _INT, "maxzoom": _INT}}},
    },
})
STYLE = component("MapLibreStyle", {
    "type": "object", "description": "MapLibre style specification version 8",
    "required": ["version", "sources", "layers"],
    "properties": {"version": {"const": 8}, "name": _STR, "sources": {"type": "object"},
                   "layers": {"type": "array", "items": {"type": "object", "required": ["id", "type"]}}},
})
# MBTiles 1.3 / tippecanoe metadata.json, as GDAL's MVT driver reads it beside a tile directory
MBTILES_METADATA = component("MBTilesMetadata", {
    "type": "object", "required": ["format", "bounds", "minzoom", "maxzoom", "vector_layers"],
    "properties": {"name": _STR, "format": {"const": "pbf"}, "bounds": _STR, "center": _STR, "minzoom": _STR,
                   "maxzoom": _STR, "vector_layers": {"type": "array", "items": {
                       "type": "object", "required": ["id", "fields"],
                       "properties": {"id": _STR, "fields": {"type": "object", "additionalProperties": {
                           "enum": ["Number", "String", "Boolean"]}}}}},
                   "tilestats": {"type": "object"}},
})
TILESETS = component("TileSets", {
    "type": "object", "required": ["links", "tilesets"],
    "properties": {"links": LINKS, "tilesets": {"type": "array", "items": {"type": "object",
                                                                           "required": ["links"]}}},
})
TILESET = component("TileSet", {
    "type": "object", "required": ["dataType", "links"],
    "properties": {"title": _STR, "dataType": {"const": "vector"}, "crs": {}, "tileMatrixSetURI": _STR,
                   "links": LINKS},
})
TMS_LIST = component("TileMatrixSets", {
    "type": "object", "required": ["tileMatrixSets"],
    "properties": {"tileMatrixSets": {"type": "array", "items": {
        "type": "object", "required": ["id", "links"], "properties": {"id": _STR, "title": _STR, "uri": _STR,
                                                                      "links": LINKS}}}},
})
TMS = component("TileMatrixSet", {
    "type": "object", "description": "OGC Two Dimensional Tile Matrix Set 2.0",
    "required": ["crs", "tileMatrices"],
    "properties": {"id": _STR, "title": _STR, "uri": _STR, "crs": {},
                   "tileMatrices": {"type": "array", "items": {"type": "object", "required": ["id"]}}},
})
HEALTH = component("Health", {
    "type": "object", "required": ["status", "database"],
    "properties": {"status": {"enum": ["ok", "unavailable"]}, "database": {"enum": ["ok", "unreachable"]},
                   "postgresql": _STR, "postgis": _STR},
})
RASTER = component("Raster", {"type": "object", "required": ["name"], "additionalProperties": True,
                              "properties": {"name": _STR, "bounds": {"type": "array", "items": _NUM}}})
RASTERS = component("RasterList", {"type": "object", "required": ["rasters"],
                                   "properties": {"rasters": {"type": "array", "items": RASTER}}})
ZONAL = component("ZonalStatistics", {"type": "object", "required": ["raster"], "additionalProperties": True,
                                      "properties": {"raster": _STR, "measure": _STR,
                                                     "features": {"type": "array", "items": {"type": "object"}}}})
IMAGERY = component("ImageryList", {
    "type": "object", "required": ["imagery"],
    "properties": {"imagery": {"type": "array", "items": {
        "type": "object", "required": ["name", "tiles"],
        "properties": {"name": _STR, "bounds": {"type": "array", "items": _NUM}, "minzoom": _INT,
                       "maxzoom": _INT, "tiles": {"type": "array", "items": _STR}}}}},
})


# -- per-layer features --------------------------------------------------------------------------------------

_GEOMETRY_MODELS: dict[str, Any] = {
    "Point": gj.Point, "MultiPoint": gj.MultiPoint, "LineString": gj.LineString,
    "MultiLineString": gj.MultiLineString, "Polygon": gj.Polygon, "MultiPolygon": gj.MultiPolygon,
}


def _geometry(kind: str) -> dict[str, Any]:
    model = _GEOMETRY_MODELS.get(kind)
    if model is None:
        return ANY_GEOMETRY
    name = f"{kind}Geometry"
    if name not in COMPONENTS:
        component(name, TypeAdapter(model).json_schema(ref_template=REF, mode="serialization"))
    return ref(name)


# GeoJSON 2008 `crs` member, given when `crs=` is neither CRS84 nor latitude-first (gis.crs.geojson_crs)
CRS_MEMBER = {"type": "object", "properties": {"type": {"const": "name"}, "properties": {
    "type": "object", "properties": {"name": _STR}}}}


def feature_schemas(layer: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(`$ref` of the layer's Feature, `$ref` of its FeatureCollection), built from the registry: geometry
    type, and one property per public field with the type, enum and nullability `/schema` publishes."""
    from layers.query.features import field_schema

    name = "".join(p.capitalize() for p in layer.id.split("_"))
    if f"{name}Feature" in COMPONENTS:
        return ref(f"{name}Feature"), ref(f"{name}FeatureCollection")
    props: dict[str, Any] = {}
    for f in layer.public_fields:
        s = field_schema(f, "en")
        s.pop("title", None)
        if f.type == "object":      # a JSON(B) column holds any JSON value (lists of objects, too)
            props[f.name] = {}
            continue
        t = s.get("type")
        if f.nullable and t != "null" and not (isinstance(t, list) and "null" in t):
            s["type"] = [t, "null"] if isinstance(t, str) else t
        props[f.name] = s
    feature = component(f"{name}Feature", {
        "type": "object", "description": f"A feature of '{layer.id}' (GeoJSON)",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"const": "Feature"}, "id": {"type": ["integer", "string"]}, "crs": CRS_MEMBER,
            # skipGeometry=true gives null; a nullable geometry column too
            "geometry": {"anyOf": [_geometry(layer.geometry_type), {"type": "null"}]},
            "properties": {"type": ["object", "null"], "properties": props, "additionalProperties": False},
            "links": LINKS,
        },
    })
    collection = component(f"{name}FeatureCollection", {
        "type": "object", "description": f"Features of '{layer.id}' (GeoJSON FeatureCollection, OGC API – Features)",
        "required": ["type", "features"],
        "properties": {
            "type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": feature}, "crs": CRS_MEMBER,
            "numberMatched": {"type": "integer", "minimum": 0}, "numberReturned": {"type": "integer", "minimum": 0},
            "numberMatchedEstimated": {"type": "boolean"}, "timeStamp": {"type": "string", "format": "date-time"},
            "links": LINKS,
        },
    })
    return feature, collection


# -- response definitions for `responses=` -------------------------------------------------------------------

MVT = "application/vnd.mapbox-vector-tile"
HTML = "text/html"
ETAG = {"ETag": {"description": "entity tag of this representation", "schema": _STR}}
CONTENT_CRS = {"Content-Crs": {"description": "CRS of the coordinates, <URI>", "schema": _STR}}
Responses = dict[int | str, dict[str, Any]]


def problems(*codes: int, html: bool = False) -> Responses:
    """problem+json responses for these statuses (also text/html when the route answers browsers with a page)."""
    out: Responses = {}
    for code in codes:
        content: dict[str, Any] = {PROBLEM: {"schema": PROBLEM_SCHEMA}}
        if html:
            content[HTML] = {"schema": _STR}
        r: dict[str, Any] = {"description": TITLES.get(code, ("", "Error"))[1], "content": content}
        if code == 401:
            r["headers"] = {"WWW-Authenticate": {"schema": _STR, "required": True}}
        if code in (429, 503):
            r["headers"] = {"Retry-After": {"schema": _STR, "description": "seconds to wait"}}
        out[code] = r
    return out


def ok(description: str, content: dict[str, dict[str, Any]], headers: dict[str, Any] | None = None,
       code: int = 200) -> Responses:
    r: dict[str, Any] = {"description": description, "content": content}
    if headers:
        r["headers"] = headers
    return {code: r}


def ok_json(schema: dict[str, Any], description: str = "OK", html: bool = False,
            media: tuple[str, ...] = ("application/json",), cached: bool = False) -> Responses:
    """200 with a JSON schema (and a text/html alternative); `cached`: ETag, and 304 for If-None-Match."""
    content = {m: {"schema": schema} for m in media}
    if html:
        content[HTML] = {"schema": _STR}
    out = ok(description, content, ETAG if cached else None)
    if cached:
        out.update(NOT_MODIFIED)
    return out


NOT_MODIFIED: Responses = {304: {"description": "Not modified (If-None-Match matched the ETag)", "headers": ETAG}}
DOWNLOADS = {"text/csv": {"schema": _STR}, "application/geopackage+sqlite3": {"schema": _BINARY},
             "application/flatgeobuf": {"schema": _BINARY}, "application/zip": {"schema": _BINARY},
             "application/vnd.google-earth.kml+xml": {"schema": _STR}}
# OGC JSON-FG (api/jsonfg.py): coordinates in `place` (CRS of `coordRefSys`) or `geometry` (CRS84)
JSONFG = {"application/vnd.ogc.fg+json": {"schema": {
    "type": "object", "required": ["type", "conformsTo", "coordRefSys"],
    "properties": {"type": {"enum": ["Feature", "FeatureCollection"]}, "conformsTo": {"type": "array", "items": _STR},
                   "coordRefSys": _STR, "featureType": _STR}}}}


def items_responses(layer: Any) -> Responses:
    _, fc = feature_schemas(layer)
    out = ok("The features (GeoJSON; or a page; JSON-FG with f=jsonfg; the whole selection as a file with "
             "f=csv|gpkg|fgb|shp|kml or f=geojson&download=true)",
             {"application/geo+json": {"schema": fc}, "application/json": {"schema": fc}, HTML: {"schema": _STR},
              **DOWNLOADS, **JSONFG}, {**ETAG, **CONTENT_CRS})
    return {**out, **NOT_MODIFIED, **problems(400, 406, 413, 503)}    # 413: a download past its ceiling


def item_responses(layer: Any) -> Responses:
    feature, fc = feature_schemas(layer)
    out = ok("The feature (GeoJSON, JSON-FG, or a page, or a file with f=csv|gpkg|fgb|shp|kml)",
             {"application/geo+json": {"schema": {"anyOf": [feature, fc]}},   # fc: download=true
              "application/json": {"schema": feature}, HTML: {"schema": _STR}, **DOWNLOADS, **JSONFG},
             {**ETAG, **CONTENT_CRS})
    return {**out, **NOT_MODIFIED, **problems(400, 404, 406, 413, 503)}


DOCUMENT_PROBLEMS = problems(400, 406)          # unknown parameter or f=; an Accept we cannot answer
JSON_SCHEMA_RESPONSES: Responses = {
    **ok_json(JSON_SCHEMA_DOC, media=("application/schema+json",), html=True, cached=True), **DOCUMENT_PROBLEMS}

# 429: failed authentications are rate limited (issue 8); a key's writes are not
_WRITE_AUTH = problems(401, 403, 429)
CREATED: Responses = {201: {"description": "Created", "headers": {
    "Location": {"description": "URL of the new feature", "schema": _STR, "required": True},
    "ETag": {"description": "entity tag of the new feature (for If-Match)", "schema": _STR, "required": True}}}}
UPDATED: Responses = {204: {"description": "Replaced/updated", "headers": {
    "ETag": {"description": "the feature's new entity tag", "schema": _STR, "required": True}}}}
DELETED: Responses = {204: {"description": "Deleted"}}
# 400 bad JSON/ids/Content-Crs, 409 duplicate code, 413 too large, 415 media type, 422 validation issues
CREATE_RESPONSES: Responses = {**CREATED, **_WRITE_AUTH, **problems(400, 409, 413, 415, 422, 503)}
UPDATE_RESPONSES: Responses = {**UPDATED, **_WRITE_AUTH, **problems(400, 404, 409, 412, 413, 415, 422, 428, 503)}
DELETE_RESPONSES: Responses = {**DELETED, **_WRITE_AUTH, **problems(400, 404, 412, 428, 503)}

TILE_RESPONSES: Responses = {
    200: {"description": "A Mapbox Vector Tile", "content": {MVT: {"schema": _BINARY}},
          "headers": {**ETAG, "X-Cache": {"schema": _STR}}},
    204: {"description": "The tile is empty", "headers": ETAG},
    **NOT_MODIFIED,
    **problems(400, 404, 503),    # not a tile / bad filter; layer or zoom outside its range; database down
}
PNG_RESPONSES: Responses = {200: {"description": "A PNG tile", "content": {"image/png": {"schema": _BINARY}}},
                            204: {"description": "No imagery in this tile"}, **problems(400, 404)}
HEALTH_RESPONSES: Responses = {**ok_json(HEALTH, "The service and its database are up"),
                               503: {"description": "The database is unreachable", "headers": {
                                   "Retry-After": {"schema": _STR, "required": True}},
                                   "content": {"application/json": {"schema": HEALTH}}}}
IF_MATCH_PARAM = [{"name": "If-Match", "in": "header", "required": True, "schema": _STR,
                   "description": "the feature's ETag (a strong entity tag; `*` is refused)"}]
CONTENT_CRS_PARAM = [{"name": "Content-Crs", "in": "header", "required": False, "schema": _STR,
                      "description": "CRS of the body's coordinates, e.g. <http://www.opengis.net/def/crs/EPSG/0/3405>"}]
HTML_PAGE: Responses = ok("An HTML page", {HTML: {"schema": _STR}})


# -- the document --------------------------------------------------------------------------------------------

def install(app: FastAPI) -> None:
    """Serve the document with the shared component schemas and without FastAPI's unused 422s."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                          description=app.description, routes=app.routes)
        for ops in doc.get("paths", {}).values():
            for op in ops.values():
                for param in op.get("parameters", []):
                    if param.get("name") == "feature_id" and param.get("in") == "path":
                        # ids are integers; anything else is a 404 (a 4xx, as schemathesis expects of ids
                        # outside the schema)
                        param["schema"] = {"type": "string", "pattern": "^[0-9]{1,18}$", "examples": ["1"]}
                responses = op.get("responses", {})
                r422 = responses.get("422", {})
                if "HTTPValidationError" in str(r422.get("content", "")):
                    del responses["422"]
                for r in responses.values():
                    # FastAPI's default `application/json: {schema: {}}` for routes that answer other media
                    # (or no body at all): every body this API sends is documented with a schema here
                    content = r.get("content", {})
                    for media in [m for m, v in content.items() if v == {"schema": {}}]:
                        del content[media]
                    if "content" in r and not content:
                        del r["content"]
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.update(COMPONENTS)
        if not schemas:
            del doc["components"]["schemas"]
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]

    paths: list[tuple[re.Pattern[str], set[str]]] = []

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        # Starlette's Allow names only the first route of the path; each method here is a route of its own,
        # so Allow is read from the document: every method documented for the path
        if not paths:
            for template, ops in app.openapi()["paths"].items():
                rx = re.escape(template)
                rx = re.sub(r"\\\{[^}]*\\\}", "[^/]+", rx)
                paths.append((re.compile(f"^{rx}$"), {m.upper() for m in ops}))
        allowed = set().union(*[methods for rx, methods in paths if rx.match(request.url.path)])
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
        detail = exc.detail if isinstance(exc, HTTPException) else "Method not allowed"
        resp = problem_response(request, 405, detail)
        resp.headers.update(headers)
        return resp

    app.add_exception_handler(405, method_not_allowed)
