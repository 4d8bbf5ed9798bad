"""Output formats: `f=` and `Accept` negotiation, and the download encoders (CSV, GeoPackage, FlatGeobuf)."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import orjson
from fastapi import Request

from api.errors import Problem

MEDIA = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
    "fgb": "application/flatgeobuf",
    "schema": "application/schema+json",
}
_ACCEPT = {
    "application/geo+json": "geojson", "application/json": "json", "text/html": "html",
    "application/xhtml+xml": "html", "text/csv": "csv", "application/geopackage+sqlite3": "gpkg",
    "application/flatgeobuf": "fgb", "application/schema+json": "schema",
}
_ALIASES = {"geojson": "geojson", "json": "json", "html": "html", "csv": "csv", "gpkg": "gpkg",
            "geopackage": "gpkg", "fgb": "fgb", "flatgeobuf": "fgb",
            "schema": "schema"}
DOCUMENT_FORMATS = ("json", "html")
ITEM_FORMATS = ("geojson", "json", "html")
ITEMS_FORMATS = ("geojson", "json", "html", "csv", "gpkg", "fgb")


def negotiate(request: Request, allowed: tuple[str, ...]) -> str:
    """The output format for this request: `f=` wins, then `Accept` (with q-values), else the first allowed.

    An unknown `f` is a 400; an `Accept` header that matches nothing we can produce is a 406.
    """
    f = request.query_params.get("f")
    if f is not None:
        key = _ALIASES.get(f.lower())
        if key is None or key not in allowed:
            names = ", ".join(a for a in allowed if a != "geojson" or "json" not in allowed)
            raise Problem(400, f"Định dạng f={f[:30]} không được hỗ trợ ở đây; dùng: {names}",
                          f"Format f={f[:30]} is not supported here; use one of: {names}")
        return key
    accept = request.headers.get("accept", "")
    if not accept.strip():
        return allowed[0]
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        bits = [b.strip() for b in part.split(";")]
        media, q = bits[0].lower(), 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if media in ("*/*", "application/*"):
            choices.append((q, i, allowed[0]))
        elif media == "text/*":
            if "html" in allowed:
                choices.append((q, i, "html"))
        elif media in _ACCEPT and _ACCEPT[media] in allowed:
            choices.append((q, i, _ACCEPT[media]))
        elif media == "application/json" and "geojson" in allowed:
            choices.append((q, i, "geojson"))
    if not choices:
        offered = ", ".join(sorted({MEDIA[a].split(";")[0] for a in allowed}))
        raise Problem(406, f"Không có định dạng phù hợp với Accept: {accept[:80]}. Có: {offered}",
                      f"No representation matches Accept: {accept[:80]}. Available: {offered}")
    choices.sort(key=lambda c: (-c[0], c[1]))
    return choices[0][2]


def _frame(feature_collection: bytes):  # type: ignore[no-untyped-def]
    import geopandas as gpd

    data = orjson.loads(feature_collection)
    feats = data.get("features", [])
    if feats:
        gdf = gpd.GeoDataFrame.from_features(feats)
        gdf.insert(0, "id", [f.get("id") for f in feats])
    else:
        gdf = gpd.GeoDataFrame({"id": []}, geometry=gpd.GeoSeries([]))
    for col in gdf.columns:   # lists/dicts (arrays, JSON) are written as JSON text
        if col != "geometry" and gdf[col].dtype == object:
            gdf[col] = gdf[col].map(lambda v: orjson.dumps(v).decode() if isinstance(v, list | dict) else v)
    return gdf


def to_csv(feature_collection: bytes) -> bytes:
    """CSV with the properties and the geometry as WKT (UTF-8 with BOM so Excel reads Vietnamese)."""
    data = orjson.loads(feature_collection)
    feats = data.get("features", [])
    names: list[str] = []
    for feat in feats:
        for k in feat.get("properties") or {}:
            if k not in names:
                names.append(k)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", *names, "geometry_wkt"])
    import shapely.geometry

    for feat in feats:
        props = feat.get("properties") or {}
        g = feat.get("geometry")
        wkt = shapely.geometry.shape(g).wkt if g else ""
        w.writerow([feat.get("id"), *[_cell(props.get(n)) for n in names], wkt])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _cell(v: object) -> object:
    if isinstance(v, list | dict):
        return orjson.dumps(v).decode()
    if v is None:
        return ""
    return v


def to_file(feature_collection: bytes, fmt: str, layer_name: str, crs_wkt: str) -> bytes:
    """GeoPackage or FlatGeobuf bytes (written by pyogrio through geopandas)."""
    gdf = _frame(feature_collection)
    gdf = gdf.set_crs(crs_wkt, allow_override=True)
    driver = {"gpkg": "GPKG", "fgb": "FlatGeobuf"}[fmt]
    with tempfile.TemporaryDirectory(prefix="datso-dl-") as tmp:
        path = Path(tmp) / f"{layer_name}.{fmt}"
        # FlatGeobuf's spatial index refuses features without geometry (records, lots): no index then
        extra = {"SPATIAL_INDEX": "NO"} if fmt == "fgb" and gdf.geometry.isna().any() else {}
        gdf.to_file(path, driver=driver, layer=layer_name, engine="pyogrio", **extra)
        return path.read_bytes()
