"""One-line GeoDataFrames for analysts (Jupyter):

    from layers.analysis import read_layer
    parcels = read_layer("parcels", where=["status=managed"], crs="vn2000:ben-tre")

Filters are the same whitelisted `field=value` pairs and lon/lat bbox as `datso export` (the one selection
parser, layers/query/selection.py); VN-2000 output goes
through the official transformation (gis.crs), never PROJ's own pick.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd

from gis.crs import get_crs
from gis.io import reproject, resolve_crs
from layers.catalog.registry import get_layer
from layers.query.exporter import cli_selection, fetch
from layers.store.connect import connect


def read_layer(layer_id: str, *, where: Sequence[str] = (), bbox: str | None = None, crs: str | None = None,
               dsn: str | None = None) -> gpd.GeoDataFrame:
    """The layer as a GeoDataFrame indexed by feature id, in `crs` (default OGC:CRS84 lon/lat)."""
    layer = get_layer(layer_id)
    target = resolve_crs(crs) if crs else get_crs("OGC:CRS84")
    sel = cli_selection(layer, where, bbox)     # a bad filter: QueryError, with the items API's message
    with connect("reader", dsn=dsn) as conn:   # DATSO_DATABASE_READ_URL when set, else the primary
        frame, geoms = fetch(conn, sel)
    out = reproject(geoms, get_crs("OGC:CRS84"), target)
    gdf = gpd.GeoDataFrame(frame, geometry=list(out), crs=target.pyproj)
    return gdf.set_index(layer.id_column)
