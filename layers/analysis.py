"""One-line GeoDataFrames for analysts (Jupyter):

    from layers.analysis import read_layer, ReadLayerError
    parcels = read_layer("parcels", filter="status = 'leased' AND area_m2 > 500", crs="EPSG:9210")
    parcels.crs.to_epsg()      # 9210

`filter` (CQL2 text), `bbox`, `bbox_crs`, `datetime` and `where` (`field=value` pairs) are read by the items
API's selection parser (layers/query/selection.py, layers/query/cql2.py): the same rules and the same
whitelist. VN-2000 output goes through the official transformation (gis.crs), and the frame's `.crs` names the
EPSG code (`gis.crs.frame_crs`) while `to_crs()` keeps the official shift. A bad argument raises
`ReadLayerError` (a `ValueError`) whose message starts with the argument's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import geopandas as gpd

from gis.crs import CrsError, frame_crs, get_crs
from gis.errors import BilingualError
from gis.io import reproject
from layers.catalog.registry import get_layer
from layers.query.cql2 import CqlError
from layers.query.exporter import fetch
from layers.query.selection import QueryError, Selection, parse_selection
from layers.store.connect import connect


class ReadLayerError(QueryError):
    """A bad argument of `read_layer` (layer, filter, bbox, bbox_crs, datetime, where, crs). It is a
    `ValueError` (and the API's `QueryError`); `str(exc)` is English, `exc.vi` Vietnamese, and both start with
    the argument's name; the rest is the items API's message for the same input."""


def _arg(name: str, exc: BilingualError) -> ReadLayerError:
    """The parser's message (the items API's), prefixed with the argument's name unless it starts with it."""
    def named(text: str) -> str:
        return text if re.match(rf"{re.escape(name)}[: ]", text) else f"{name}: {text}"
    return ReadLayerError(named(exc.vi), named(exc.en))


def _where(pairs: Sequence[str] | str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in [pairs] if isinstance(pairs, str) else pairs:
        for part in [p for p in pair.split(";") if p.strip()]:
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise ReadLayerError(f"where: cú pháp sai: {part!r} (dùng 'truong=gia_tri', hoặc filter= cho CQL2)",
                                     f"where: bad pair {part!r} (use 'field=value', or filter= for CQL2)")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]       # where=["status='leased'"] means the value leased
            if name.strip() in out:
                raise ReadLayerError(f"where: trường '{name.strip()}' có hai lần", f"where: field '{name.strip()}' given twice")
            out[name.strip()] = value
    return out


def selection(layer_id: str, *, filter: str | None = None,  # noqa: A002 - the OGC parameter's name
              bbox: str | Sequence[float] | None = None, bbox_crs: str | None = None, datetime: str | None = None,
              where: Sequence[str] | str = ()) -> Selection:
    """The `Selection` read_layer reads (each argument checked on its own so an error names it)."""
    try:
        layer = get_layer(layer_id)
    except (KeyError, BilingualError) as exc:
        msg = getattr(exc, "en", str(exc))
        raise ReadLayerError(f"layer: không có lớp '{layer_id}'", f"layer: {msg}") from None
    bbox_text = bbox if bbox is None or isinstance(bbox, str) else ",".join(repr(float(v)) for v in bbox)
    args: list[tuple[str, dict[str, object]]] = [
        ("bbox", {"bbox": bbox_text}), ("bbox_crs", {"bbox": bbox_text, "bbox_crs": bbox_crs}),
        ("datetime", {"datetime": datetime}), ("filter", {"filter": filter})]
    for name, kwargs in args:
        if all(v is None for v in kwargs.values()) or (name == "bbox_crs" and bbox_crs is None):
            continue
        if name == "bbox_crs" and bbox_text is None:
            raise ReadLayerError("bbox_crs: chỉ dùng kèm bbox", "bbox_crs: needs bbox")
        try:
            parse_selection(layer, **kwargs)  # type: ignore[arg-type]
        except CqlError as exc:
            raise _arg(name, exc) from None
    try:
        equals = _where(where)
        parse_selection(layer, equals=equals)
    except CqlError as exc:
        raise _arg("where", exc) from None
    return parse_selection(layer, bbox=bbox_text, bbox_crs=bbox_crs, datetime=datetime, filter=filter,
                           equals=equals)


def read_layer(layer_id: str, *, filter: str | None = None,  # noqa: A002 - the OGC parameter's name
               bbox: str | Sequence[float] | None = None, crs: str | int | None = None,
               where: Sequence[str] | str = (), datetime: str | None = None, bbox_crs: str | None = None,
               dsn: str | None = None) -> gpd.GeoDataFrame:
    """The layer (or the selected features) as a GeoDataFrame indexed by feature id.

    - `filter`: CQL2 text, as the API's `filter=` (e.g. `"status = 'leased' AND area_m2 > 500"`,
      `"S_INTERSECTS(geom, POLYGON((...)))"`, `"valid_from > DATE('2024-01-01')"`);
    - `bbox`: `"minx,miny,maxx,maxy"` or 4 numbers, lon/lat unless `bbox_crs` says otherwise;
    - `datetime`: an RFC 3339 instant or interval on the layer's temporal fields;
    - `where`: `field=value` pairs (as `datso export --where`);
    - `crs`: EPSG code, OGC URI or datso alias (`9210`, `"EPSG:9210"`, `"vn2000:ben-tre"`); default lon/lat
      WGS 84. `result.crs.to_epsg()` is that code; VN-2000 coordinates come from the official transformation.

    Raises `ReadLayerError` (a ValueError) naming the bad argument.
    """
    sel = selection(layer_id, filter=filter, bbox=bbox, bbox_crs=bbox_crs, datetime=datetime, where=where)
    layer = sel.layer
    try:
        target = get_crs(crs) if crs is not None and str(crs).strip() else get_crs("OGC:CRS84")
    except CrsError as exc:
        raise ReadLayerError(f"crs: hệ tọa độ không hợp lệ ({exc})", f"crs: {exc}") from None
    with connect("reader", dsn=dsn) as conn:   # DATSO_DATABASE_READ_URL when set, else the primary
        frame, geoms = fetch(conn, sel)
    out = reproject(geoms, get_crs("OGC:CRS84"), target)
    gdf = gpd.GeoDataFrame(frame, geometry=list(out), crs=frame_crs(target))
    return gdf.set_index(layer.id_column)


__all__ = ["ReadLayerError", "read_layer", "selection"]
