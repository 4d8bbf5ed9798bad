"""MVT for one tile: ONE SQL statement built from the registry entries of the requested layers.

Per layer the statement clips with `ST_AsMVTGeom` against `ST_TileEnvelope`, filters with `&&` on the stored,
GiST-indexed `geom_3857`, and generalises by zoom:
- layers are left out of tiles outside their `minzoom`-`maxzoom`;
- below `layer.detail_zoom` only the fields marked `lowzoom` are carried, and polygons/lines are simplified
  to half a tile unit before clipping (ST_AsMVTGeom then snaps to the `extent` grid);
- features whose bounding box covers less than `layer.min_pixel_area` pixels (1 pixel = 1/256 of the tile
  side) are dropped; as a box is never smaller than its shape, every feature of >= that area is kept;
- at most `max_features` features per layer (below detail zoom the largest are kept); a tile still above
  `max_tile_bytes` is rebuilt with a quarter of the cap, largest features first, until it fits.
The MVT feature id is the row id. Several layers are concatenated in one MVT (`||` of their ST_AsMVT).
Parameters: $1 z, $2 x, $3 y, $4 the feature cap, then the filter's parameters; the zoom-dependent
thresholds are constants in the SQL text (one prepared statement per zoom and layer set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg

from layers.catalog.registry import Layer, LayerField, get_layer
from layers.settings import TileSettings
from layers.store.sql import quote_ident as q
from tiles.filters import TileFilter
from tiles.tms import WORLD, TileID, pixel_size

POINT_TYPES = ("Point", "MultiPoint")


def layers_at(layers: Sequence[Layer], z: int) -> list[Layer]:
    return [layer for layer in layers if layer.minzoom <= z <= layer.maxzoom]


def tile_fields(layer: Layer, detail: bool) -> tuple[LayerField, ...]:
    return tuple(f for f in layer.fields if f.public and f.in_tiles and (detail or f.lowzoom))


def _value(f: LayerField) -> str:
    col = "t." + q(f.name)
    if f.type in ("integer", "boolean"):
        return col
    if f.type == "number":
        return f"{col}::float8"
    if f.type in ("date", "date-time"):
        return f"to_json({col}) #>> '{{}}'"
    if f.type == "array":
        return f"array_to_string({col}, ',')"
    return f"{col}::text"


def _layer_sql(layer: Layer, z: int, detail: bool, ordered: bool, extent: int, buffer: int, where: str) -> str:
    g = "t." + q(layer.tile_geometry_column)
    env = "ST_TileEnvelope($1::int, $2::int, $3::int)"
    margin = f"ST_TileEnvelope($1::int, $2::int, $3::int, margin => {buffer / extent!r})"
    geom = g
    if not detail and layer.geometry_type not in POINT_TYPES:
        geom = f"ST_Simplify({g}, {WORLD / 2**z / (2 * extent)!r}, true)"
    cols = "".join(f", {_value(f)} AS {q(f.name)}" for f in tile_fields(layer, detail))
    box_area = f"((ST_XMax({g}) - ST_XMin({g})) * (ST_YMax({g}) - ST_YMin({g})))"
    conds = [f"{g} && {margin}"]
    if layer.min_pixel_area > 0:
        # a constant per zoom, so the planner can use the box-area index (migration 0003) when few pass
        conds.append(f"{box_area} >= {layer.min_pixel_area * pixel_size(z) ** 2!r}")
    if where:
        conds.append(f"({where})")
    order = f" ORDER BY {box_area} DESC, t.{q(layer.id_column)}" if ordered or not detail else ""
    # identifiers come from the registry (checked by q/_literal), values are $n parameters
    return (f"SELECT ST_AsMVT(m, {_literal(layer.id)}, {extent}, 'geom', 'id') FROM ("  # noqa: S608
            f"SELECT t.{q(layer.id_column)} AS id, ST_AsMVTGeom({geom}, {env}, {extent}, {buffer}, true) AS geom"
            f"{cols} FROM {q(layer.table)} t WHERE {' AND '.join(conds)}{order} LIMIT $4::int) m "
            f"WHERE m.geom IS NOT NULL")


def _literal(text: str) -> str:
    assert text.replace("_", "").isalnum(), text
    return "'" + text + "'"


@lru_cache(maxsize=512)
def tile_sql(parts: tuple[tuple[str, bool], ...], z: int, ordered: bool, extent: int, buffer: int,
             where: tuple[str, ...]) -> str:
    """The statement for these (layer id, detail) parts; `where[i]` filters part i (SQL over $5...)."""
    selects = [f"coalesce(({_layer_sql(get_layer(lid), z, detail, ordered, extent, buffer, w)}), ''::bytea)"
               for (lid, detail), w in zip(parts, where, strict=True)]
    return "SELECT " + " || ".join(selects)


@dataclass(frozen=True)
class TilePlan:
    """What one tile needs: the SQL and its parameters (after the z/x/y/cap ones)."""

    parts: tuple[tuple[str, bool], ...]
    where: tuple[str, ...]
    params: tuple[Any, ...]


def plan(layers: Sequence[Layer], z: int, tile_filter: TileFilter | None) -> TilePlan:
    active = layers_at(layers, z)
    parts = tuple((layer.id, z >= layer.detail_zoom) for layer in active)
    if tile_filter is None:
        return TilePlan(parts, tuple("" for _ in parts), ())
    where = tuple(tile_filter.sql(layer) for layer in active)
    return TilePlan(parts, where, tile_filter.params)


async def build(conn: asyncpg.Connection, layers: Sequence[Layer], tile: TileID, settings: TileSettings,
                tile_filter: TileFilter | None = None) -> bytes:
    """The MVT bytes of `tile` (b"" when no layer has a feature there)."""
    p = plan(layers, tile.z, tile_filter)
    if not p.parts:
        return b""
    cap, ordered = settings.max_features, False
    while True:
        sql = tile_sql(p.parts, tile.z, ordered, settings.extent, settings.buffer, p.where)
        data: bytes = await conn.fetchval(sql, tile.z, tile.x, tile.y, cap, *p.params)
        if len(data) <= settings.max_tile_bytes or cap <= 1:
            return data
        cap, ordered = max(1, cap // 4), True
