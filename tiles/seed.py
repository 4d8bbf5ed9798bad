"""Seeding: build the tiles of some layers over a bbox and zoom range into one PMTiles or MBTiles file.

The tiles are the live tiles byte for byte (same SQL, same gzip), built over a few connections, written in
tile-id order; empty tiles are left out (a reader answers 204 for them).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from layers.config import API_SESSION_SETTINGS
from layers.registry import Layer
from tiles import mvt, tms
from tiles.cache import make_entry
from tiles.settings import TileSettings
from tiles.tilejson import bounds_sql, tilejson

Bounds = tuple[float, float, float, float]


class SeedError(ValueError):
    pass


@dataclass
class SeedReport:
    path: Path
    tiles: int        # tiles visited
    written: int      # non-empty tiles stored
    bytes: int
    largest: int


def parse_zooms(text: str) -> range:
    lo, _, hi = text.partition("-")
    try:
        zmin, zmax = int(lo), int(hi or lo)
    except ValueError:
        raise SeedError(f"zooms must look like 8-16, not {text!r}") from None
    if not 0 <= zmin <= zmax <= 24:
        raise SeedError(f"zooms must be within 0-24 and ascending, not {text!r}")
    return range(zmin, zmax + 1)


def parse_bbox(text: str) -> Bounds:
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise SeedError(f"bbox must be west,south,east,north in degrees, not {text!r}") from None
    if not (-180 <= w < e <= 180 and -85.06 <= s < n <= 85.06):
        raise SeedError(f"bbox {text!r} is not west<east, south<north within the WebMercator world")
    return (w, s, e, n)


def tile_list(layers: Sequence[Layer], zooms: range, bbox: Bounds) -> list[tms.TileID]:
    box = tms.lonlat_bbox_to_3857(bbox)
    out: list[tms.TileID] = []
    for z in zooms:
        if not mvt.layers_at(layers, z):
            continue
        out.extend(tms.tiles_in_bbox(box, range(z, z + 1)))
    out.sort(key=lambda t: zxy_to_tileid(t.z, t.x, t.y))
    return out


async def data_bounds(conn: asyncpg.Connection, layers: Sequence[Layer]) -> Bounds | None:
    boxes = []
    for layer in layers:
        row = await conn.fetchrow(bounds_sql(layer).replace(
            f"coalesce(ST_EstimatedExtent('public', '{layer.table}', '{layer.geometry_column}'), ", "coalesce("))
        if row is not None and row["xmin"] is not None:
            boxes.append((row["xmin"], row["ymin"], row["xmax"], row["ymax"]))
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


async def _built(dsn: str, layers: Sequence[Layer], tiles: list[tms.TileID], settings: TileSettings,
                 workers: int, progress: Callable[[int], None]) -> Iterator[tuple[tms.TileID, bytes]]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=workers, server_settings=dict(API_SESSION_SETTINGS))
    out: list[tuple[tms.TileID, bytes]] = []
    try:
        async def one(tile: tms.TileID) -> tuple[tms.TileID, bytes]:
            async with pool.acquire() as conn:
                data = await mvt.build(conn, layers, tile, settings)
            progress(1)
            return tile, make_entry(data, settings.gzip_level).gz
        chunk = max(workers * 8, 32)
        for i in range(0, len(tiles), chunk):
            out.extend(await asyncio.gather(*(one(t) for t in tiles[i:i + chunk])))
    finally:
        await pool.close()
    return iter(out)


async def seed(dsn: str, layers: Sequence[Layer], zooms: range, out: Path, bbox: Bounds | None = None,
               settings: TileSettings | None = None, workers: int = 4,
               progress: Callable[[int], None] = lambda n: None,
               total: Callable[[int], None] = lambda n: None) -> SeedReport:
    if out.suffix not in (".pmtiles", ".mbtiles"):
        raise SeedError(f"output must end in .pmtiles or .mbtiles, not {out.name!r}")
    s = settings or TileSettings()
    if bbox is None:
        conn = await asyncpg.connect(dsn)
        try:
            bbox = await data_bounds(conn, layers)
        finally:
            await conn.close()
        if bbox is None:
            raise SeedError("the layers are empty: nothing to seed (give --bbox to seed empty tiles anyway)")
    tiles = tile_list(layers, zooms, bbox)
    total(len(tiles))
    built = await _built(dsn, layers, tiles, s, workers, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = tilejson(layers, "", bbox, "vi", minzoom=zooms.start, maxzoom=zooms.stop - 1)
    meta.pop("tiles")
    meta["datso:layers"] = [layer.id for layer in layers]
    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)
    if out.suffix == ".pmtiles":
        report = _write_pmtiles(tmp, built, meta, bbox, zooms)
    else:
        report = _write_mbtiles(tmp, built, meta, bbox, zooms)
    tmp.replace(out)
    report.path = out
    report.tiles = len(tiles)
    return report


def _write_pmtiles(path: Path, built: Iterator[tuple[tms.TileID, bytes]], meta: dict[str, object], bbox: Bounds,
                   zooms: range) -> SeedReport:
    report = SeedReport(path, 0, 0, 0, 0)
    with open(path, "wb") as f:
        w = Writer(f)
        for tile, gz in built:
            if gz:
                w.write_tile(zxy_to_tileid(tile.z, tile.x, tile.y), gz)
                report.written += 1
                report.bytes += len(gz)
                report.largest = max(report.largest, len(gz))
        if not report.written:
            raise SeedError("every tile is empty: no archive written")
        cz = max(zooms.start, min(zooms.stop - 1, 12))
        w.finalize({
            "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
            "min_lon_e7": int(bbox[0] * 1e7), "min_lat_e7": int(bbox[1] * 1e7),
            "max_lon_e7": int(bbox[2] * 1e7), "max_lat_e7": int(bbox[3] * 1e7),
            "center_zoom": cz, "center_lon_e7": int((bbox[0] + bbox[2]) / 2 * 1e7),
            "center_lat_e7": int((bbox[1] + bbox[3]) / 2 * 1e7)}, meta)
    return report


def _write_mbtiles(path: Path, built: Iterator[tuple[tms.TileID, bytes]], meta: dict[str, object], bbox: Bounds,
                   zooms: range) -> SeedReport:
    report = SeedReport(path, 0, 0, 0, 0)
    con = sqlite3.connect(path)
    try:
        con.executescript("CREATE TABLE metadata (name text, value text);"
                          "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, "
                          "tile_data blob);"
                          "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);")
        for tile, gz in built:
            if gz:
                con.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (tile.z, tile.x, (1 << tile.z) - 1 - tile.y, gz))
                report.written += 1
                report.bytes += len(gz)
                report.largest = max(report.largest, len(gz))
        rows = {"name": str(meta["name"]), "format": "pbf", "type": "overlay", "version": "1.0.0",
                "description": str(meta.get("description", "")), "attribution": str(meta.get("attribution", "")),
                "minzoom": str(zooms.start), "maxzoom": str(zooms.stop - 1),
                "bounds": ",".join(str(v) for v in bbox),
                "center": f"{(bbox[0] + bbox[2]) / 2},{(bbox[1] + bbox[3]) / 2},{max(zooms.start, min(zooms.stop - 1, 12))}",
                "json": json.dumps({"vector_layers": meta["vector_layers"], "datso:layers": meta["datso:layers"]})}
        con.executemany("INSERT INTO metadata VALUES (?, ?)", list(rows.items()))
        con.commit()
    finally:
        con.close()
    return report
