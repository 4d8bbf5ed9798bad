"""OGC Features and Geometries JSON (JSON-FG, draft 0.2) for items and item: `f=jsonfg`.

JSON-FG says what GeoJSON cannot: the CRS of the coordinates (`coordRefSys`, a URI), in that CRS's axis order
(`place`), the feature type and the feature's time. With the default CRS84 the geometry stays in `geometry`
and `place` is null; in any other CRS (`crs=`, e.g. VN-2000 EPSG:9210) the coordinates go to `place` and
`geometry` is null (the spec allows null when no WGS 84 geometry is given). `time` comes from the layer's
declared temporal field(s) (`Layer.temporal`): a date, a timestamp, or an interval with ".." for an open end.
GDAL >= 3.8 reads it with its JSONFG driver (the CRS from `coordRefSys`).
"""

from __future__ import annotations

from typing import Any

import orjson

from gis.crs import CrsDef
from layers.catalog.registry import Layer

MEDIA = "application/vnd.ogc.fg+json"
CONFORMS_TO = ["http://www.opengis.net/spec/json-fg-1/0.2/conf/core"]
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def _instant(value: Any) -> dict[str, str] | None:
    if value is None or value == "":
        return None
    text = str(value)
    return {"date": text} if len(text) == 10 else {"timestamp": text.replace("+00:00", "Z")}


def _time(layer: Layer, props: dict[str, Any] | None) -> dict[str, Any] | None:
    if layer.temporal is None or not props:
        return None
    start_name, end_name = layer.temporal
    if start_name not in props and (end_name is None or end_name not in props):
        return None                     # not among the requested properties
    start = props.get(start_name)
    if end_name is None:
        return _instant(start)
    end = props.get(end_name)
    if start is None and end is None:
        return None
    return {"interval": [".." if start is None else str(start).replace("+00:00", "Z"),
                         ".." if end is None else str(end).replace("+00:00", "Z")]}


def feature(layer: Layer, feat: dict[str, Any], crs: CrsDef) -> dict[str, Any]:
    """A GeoJSON feature (coordinates in `crs`, its axis order) as a JSON-FG feature."""
    out: dict[str, Any] = {"type": "Feature"}
    if "id" in feat:
        out["id"] = feat["id"]
    out["featureType"] = layer.id
    out["time"] = _time(layer, feat.get("properties"))
    geom = feat.get("geometry")
    if crs.uri == CRS84_URI:
        out["place"], out["geometry"] = None, geom
    else:
        out["place"], out["geometry"] = geom, None
    out["properties"] = feat.get("properties")
    if "links" in feat:
        out["links"] = feat["links"]
    return out


def _head(layer: Layer, crs: CrsDef) -> dict[str, Any]:
    return {"conformsTo": CONFORMS_TO, "coordRefSys": crs.uri, "featureType": layer.id}


def collection(layer: Layer, body: bytes, crs: CrsDef) -> bytes:
    """The items page (GeoJSON FeatureCollection bytes) as a JSON-FG FeatureCollection."""
    data = orjson.loads(body)
    out: dict[str, Any] = {"type": "FeatureCollection", **_head(layer, crs)}
    out["features"] = [feature(layer, f, crs) for f in data.get("features", [])]
    for k, v in data.items():
        if k not in ("type", "features"):
            out[k] = v
    return orjson.dumps(out)


def single(layer: Layer, body: bytes, crs: CrsDef) -> bytes:
    """One item (GeoJSON Feature bytes) as a JSON-FG Feature."""
    data = orjson.loads(body)
    return orjson.dumps({**{"type": "Feature"}, **_head(layer, crs), **feature(layer, data, crs)})


__all__ = ["CONFORMS_TO", "MEDIA", "collection", "feature", "single"]
