"""TileJSON 3.0 and OGC API – Tiles tileset documents, built from registry entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layers.catalog.registry import Layer
from layers.store.sql import quote_ident as q
from tiles import tms
from tiles.mvt import tile_fields

Bounds = tuple[float, float, float, float]
WORLD_BOUNDS: Bounds = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
ATTRIBUTION = "datso — đất số (dữ liệu mẫu là mô phỏng / sample data is synthetic)"


def bounds_sql(layer: Layer) -> str:
    """Extent in lon/lat: planner statistics when present (fast on big tables), else computed."""
    t, g = q(layer.table).strip('"'), q(layer.geometry_column).strip('"')   # registry identifiers, checked
    return (f"SELECT ST_XMin(e) AS xmin, ST_YMin(e) AS ymin, ST_XMax(e) AS xmax, ST_YMax(e) AS ymax FROM "  # noqa: S608
            f"(SELECT coalesce(ST_EstimatedExtent('public', '{t}', '{g}'), "
            f"(SELECT ST_Extent(x.{q(g)}) FROM {q(t)} x)) AS e) s")


def _fields(layer: Layer, lang: str) -> dict[str, str]:
    """Every attribute a tile of this layer can carry (the full set from detail_zoom on)."""
    return {f.name: (f.title_vi if lang == "vi" else f.title_en) for f in tile_fields(layer, detail=True)}


def vector_layer(layer: Layer, lang: str) -> dict[str, Any]:
    low = [f.name for f in tile_fields(layer, detail=False)]
    desc = layer.description_vi if lang == "vi" else layer.description_en
    return {"id": layer.id, "description": desc, "minzoom": layer.minzoom, "maxzoom": layer.maxzoom,
            "fields": _fields(layer, lang),
            "datso:detail_zoom": layer.detail_zoom, "datso:lowzoom_fields": low,
            "geometry_type": layer.geometry_type}


def tilejson(layers: Sequence[Layer], url: str, bounds: Bounds | None, lang: str,
             minzoom: int | None = None, maxzoom: int | None = None) -> dict[str, Any]:
    b = _clip(bounds or WORLD_BOUNDS)
    lo = minzoom if minzoom is not None else min(la.minzoom for la in layers)
    hi = maxzoom if maxzoom is not None else max(la.maxzoom for la in layers)
    hi = min(hi, tms.get_tms(tms.DEFAULT_TMS).maxzoom)
    centre_zoom = max(lo, min(hi, 12))
    name = " + ".join(la.title(lang) for la in layers)
    return {
        "tilejson": "3.0.0", "name": name, "version": "1.0.0", "scheme": "xyz", "tiles": [url],
        "attribution": ATTRIBUTION, "minzoom": lo, "maxzoom": hi, "bounds": list(b),
        "center": [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, centre_zoom],
        "description": " ".join((la.description_vi if lang == "vi" else la.description_en) for la in layers),
        "vector_layers": [vector_layer(la, lang) for la in layers],
    }


def _clip(b: Bounds) -> Bounds:
    return (max(b[0], -180.0), max(b[1], WORLD_BOUNDS[1]), min(b[2], 180.0), min(b[3], WORLD_BOUNDS[3]))


def ogc_tileset_summary(layer: Layer, base: str, tms_id: str) -> dict[str, Any]:
    t = tms.get_tms(tms_id)
    href = f"{base}/collections/{layer.id}/tiles/{tms_id}"
    return {"title": f"{layer.title_vi} — {tms_id}", "dataType": "vector", "crs": t.model_dump(mode="json")["crs"],
            "tileMatrixSetURI": t.uri,
            "links": [{"rel": "self", "type": "application/json", "href": href},
                      {"rel": "item", "type": "application/vnd.mapbox-vector-tile", "templated": True,
                       "href": f"{href}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}"},
                      {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
                       "href": f"{base}/tileMatrixSets/{tms_id}"}]}


def ogc_tileset(layer: Layer, base: str, tms_id: str, bounds: Bounds | None, lang: str) -> dict[str, Any]:
    doc = ogc_tileset_summary(layer, base, tms_id)
    t = tms.get_tms(tms_id)
    b = _clip(bounds or WORLD_BOUNDS)
    limits = []
    for z in range(layer.minzoom, min(layer.maxzoom, t.maxzoom) + 1):
        box = tms.lonlat_bbox_to_3857(b)
        x0, y0, x1, y1 = tms.tile_range(box, z)
        limits.append({"tileMatrix": str(z), "minTileRow": y0, "maxTileRow": y1, "minTileCol": x0,
                       "maxTileCol": x1})
    href = f"{base}/collections/{layer.id}/tiles/{tms_id}"
    doc["links"] += [
        {"rel": "describedby", "type": "application/json", "title": "TileJSON", "href": f"{href}/tilejson.json"},
        {"rel": "stylesheet", "type": "application/vnd.mapbox.style+json",
         "href": f"{base}/collections/{layer.id}/style.json"},
        {"rel": "collection", "type": "application/json", "href": f"{base}/collections/{layer.id}"},
    ]
    doc["tileMatrixSetLimits"] = limits
    doc["boundingBox"] = {"lowerLeft": [b[0], b[1]], "upperRight": [b[2], b[3]],
                          "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    doc["layers"] = [{"id": layer.id, "title": layer.title(lang), "dataType": "vector",
                      "geometryDimension": _dimension(layer.geometry_type),
                      "minTileMatrix": str(layer.minzoom), "maxTileMatrix": str(min(layer.maxzoom, t.maxzoom)),
                      "propertiesSchema": {"type": "object", "properties": {
                          f.name: {"title": f.title_vi if lang == "vi" else f.title_en,
                                   "type": "string" if f.type in ("array", "date", "date-time", "object")
                                   else f.type}
                          for f in tile_fields(layer, detail=True)}}}]
    return doc


def _dimension(geometry_type: str) -> int | None:
    if "Polygon" in geometry_type:
        return 2
    if "Line" in geometry_type:
        return 1
    if "Point" in geometry_type:
        return 0
    return None


# MBTiles/tippecanoe metadata: what GDAL's MVT driver reads next to a tile directory (`{tms}/metadata.json`
# beside `{tms}/{z}/{x}/{y}.pbf`): vector_layers with field *types*, tilestats with the geometry, bounds as text.
_MVT_TYPE = {"integer": "Number", "number": "Number", "boolean": "Boolean"}
_TILESTATS_GEOMETRY = {0: "Point", 1: "LineString", 2: "Polygon"}


def mbtiles_metadata(layers: Sequence[Layer], bounds: Bounds | None, lang: str) -> dict[str, Any]:
    b = _clip(bounds or WORLD_BOUNDS)
    top = tms.get_tms(tms.DEFAULT_TMS).maxzoom
    lo, hi = min(la.minzoom for la in layers), min(max(la.maxzoom for la in layers), top)
    vector_layers, stats = [], []
    for layer in layers:
        fields = tile_fields(layer, detail=True)
        vector_layers.append({"id": layer.id, "description": layer.title(lang), "minzoom": layer.minzoom,
                              "maxzoom": min(layer.maxzoom, top),
                              "fields": {f.name: _MVT_TYPE.get(f.type, "String") for f in fields}})
        stat: dict[str, Any] = {"layer": layer.id, "attributeCount": len(fields),
                                "attributes": [{"attribute": f.name, "type": _stat_type(f.type)} for f in fields]}
        dim = _dimension(layer.geometry_type)
        if dim is not None:      # a layer of mixed geometries leaves it out (GDAL then reads it from the tiles)
            stat["geometry"] = _TILESTATS_GEOMETRY[dim]
        stats.append(stat)
    return {
        "name": " + ".join(la.title(lang) for la in layers),
        "description": " ".join((la.description_vi if lang == "vi" else la.description_en) for la in layers),
        "version": "2", "type": "overlay", "format": "pbf", "attribution": ATTRIBUTION,
        "minzoom": str(lo), "maxzoom": str(hi),
        "bounds": ",".join(f"{v:.7f}" for v in b),
        "center": f"{(b[0] + b[2]) / 2:.7f},{(b[1] + b[3]) / 2:.7f},{max(lo, min(hi, 12))}",
        "vector_layers": vector_layers,
        "tilestats": {"layerCount": len(layers), "layers": stats},
    }


def _stat_type(json_type: str) -> str:
    return {"integer": "number", "number": "number", "boolean": "boolean"}.get(json_type, "string")
