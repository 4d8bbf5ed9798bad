"""Output formats: `f=` and `Accept` negotiation. The downloads themselves (csv, gpkg, fgb, shp, kml, GeoJSON
with `download=true`) are written by `layers.query.download` (api/downloads.py sends them)."""

from __future__ import annotations

from fastapi import Request

from api.errors import Problem

MEDIA = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
    "fgb": "application/flatgeobuf",
    "shp": "application/zip",
    "kml": "application/vnd.google-earth.kml+xml",
    "schema": "application/schema+json",
    "jsonfg": "application/vnd.ogc.fg+json",
}
_ACCEPT = {
    "application/geo+json": "geojson", "application/json": "json", "text/html": "html",
    "application/xhtml+xml": "html", "text/csv": "csv", "application/geopackage+sqlite3": "gpkg",
    "application/flatgeobuf": "fgb", "application/schema+json": "schema", "application/vnd.ogc.fg+json": "jsonfg",
    "application/vnd.google-earth.kml+xml": "kml", "application/x-shapefile": "shp",
}
_ALIASES = {"geojson": "geojson", "json": "json", "html": "html", "csv": "csv", "gpkg": "gpkg",
            "geopackage": "gpkg", "fgb": "fgb", "flatgeobuf": "fgb", "shp": "shp", "shapefile": "shp",
            "kml": "kml", "schema": "schema", "jsonfg": "jsonfg", "json-fg": "jsonfg"}
DOCUMENT_FORMATS = ("json", "html")
DOWNLOADS = ("csv", "gpkg", "fgb", "shp", "kml")     # always a whole selection (or the given limit/offset)
ITEM_FORMATS = ("geojson", "json", "html", "jsonfg", *DOWNLOADS)
ITEMS_FORMATS = ("geojson", "json", "html", "jsonfg", *DOWNLOADS)


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
