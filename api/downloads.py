"""Downloads of a whole selection: `/collections/{id}/items?f=csv|gpkg|fgb|shp|kml` and
`?f=geojson&download=true` (and the same on `/items/{featureId}` for one feature).

Every filter of the items endpoint applies (bbox/bbox-crs, datetime, `?field=value`, CQL2 filter, crs,
properties, sortby). Without `limit` a download is the whole selection; an explicit `limit`/`offset` is
honoured. The matching count is taken first, on the export request class's `statement_timeout`; past
`DATSO_DOWNLOAD_MAX_FEATURES` the answer is a 413 problem naming the count, before anything is written. The
rows are then read in batches (`layers.query.download`): GeoJSON and CSV are streamed, GeoPackage,
FlatGeobuf, Shapefile and KML written to a temporary file (their drivers need one) that is sent and removed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response, StreamingResponse

from api import formats, offload
from api.errors import request_lang
from layers.catalog.registry import Layer
from layers.query import download
from layers.query import features as feat
from layers.settings import ApiSettings


def wants_download(request: Request, fmt: str) -> bool:
    """A download: a file format, or GeoJSON with `download=true`."""
    return fmt in formats.DOWNLOADS or (fmt in ("geojson", "json")
                                         and request.query_params.get("download", "").lower() in ("true", "1"))


def selection_download(request: Request, layer: Layer, q: feat.ItemsQuery, feature_id: int | None = None,
                       labels: str | None = None) -> download.Download:
    qp = request.query_params
    fields = None if q.properties is None else [f for f in layer.public_fields if f.name in q.properties]
    return download.Download(layer, q.selection, fields, q.crs, list(q.sortby),
                             limit=q.limit if "limit" in qp else None, offset=q.offset, feature_id=feature_id,
                             labels=labels)


async def send(request: Request, layer: Layer, q: feat.ItemsQuery, fmt: str,
               feature_id: int | None = None, labels: bool = False) -> Response:
    """The download of this request's selection in format `fmt` (see the module doc); `labels` (CSV only, the
    other formats ignore it): readable column titles and values in the request's language."""
    settings: ApiSettings = request.app.state.api_settings
    db = request.app.state.db
    key = "geojson" if fmt in ("geojson", "json") else fmt
    d = selection_download(request, layer, q, feature_id, request_lang(request) if labels and key == "csv" else None)
    prepared: download.Prepared = await offload.export(
        request, download.open_download, db.dsn, d, key, settings.download_max_features,
        int(db.statement_timeouts["export"] * 1000), max(1, round(db.timeout)))
    name = prepared.filename if feature_id is None else prepared.filename.replace(".", f"-{feature_id}.", 1)
    headers: dict[str, Any] = {
        "Content-Disposition": f'attachment; filename="{name}"', "Content-Crs": f"<{q.crs.uri}>",
        "Cache-Control": settings.cache_control, "Content-Language": request_lang(request),
        "Vary": "Accept, Accept-Language", "X-Total-Count": str(prepared.count),
    }
    if prepared.chunks is not None:
        return StreamingResponse(prepared.chunks, media_type=prepared.media, headers=headers)
    assert prepared.path is not None
    return FileResponse(prepared.path, media_type=prepared.media, headers=headers,
                        background=BackgroundTask(prepared.cleanup))


# -- links (collection document, HTML pages) ------------------------------------------------------------------

_NOT_FILTERS = frozenset({"f", "download", "lang", "limit", "offset", "skipGeometry"})


def download_query(request: Request | None, fmt: str) -> str:
    """The query string of a download in `fmt` carrying the request's filters (not its page or language)."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in _NOT_FILTERS] if request else []
    pairs.append(("f", fmt))
    if fmt == "geojson":
        pairs.append(("download", "true"))
    return urlencode(pairs)


def count_text(n: int | None, lang: str, capped: bool = False) -> str:
    """'1.055 đối tượng' / '1,055 features' (n > the download ceiling: 'hơn …' / 'more than …')."""
    if n is None:
        return ""
    vi, en = f"{n:,}".replace(",", "."), f"{n:,}"
    if capped:
        return f"hơn {vi} đối tượng" if lang == "vi" else f"more than {en} features"
    return f"{vi} đối tượng" if lang == "vi" else (f"{en} feature" if n == 1 else f"{en} features")


def links(url: str, request: Request | None, name: str) -> list[dict[str, str]]:
    """One link per download format to `url` (an items or item URL) with the request's filters."""
    out = []
    for fmt in ("geojson", *formats.DOWNLOADS):
        spec = download.FILE_FORMATS[fmt]
        out.append({"href": f"{url}?{download_query(request, fmt)}", "type": spec.media.split(";")[0],
                    "title": f"{name}{spec.suffix}", "label": spec.label, "format": fmt})
    return out
