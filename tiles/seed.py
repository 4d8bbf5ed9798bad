"""Seeding: build the tiles of some layers over a bbox and zoom range into one PMTiles or MBTiles file.

The tiles are the live tiles byte for byte (same SQL, same gzip), built over a few connections, written in
tile-id order; empty tiles are left out (a reader answers 204 for them).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from layers.catalog.registry import Layer
from layers.query.selection import parse_bbox as parse_selection_bbox
from layers.settings import TileSettings
from layers.store.connect import async_pool
from tiles import mvt, tms
from tiles.cache import make_entry
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
    """A lon/lat bbox read by the one selection parser (QueryError), which must also lie within the WebMercator
    world (SeedError)."""
    w, s, e, n = parse_selection_bbox(text)
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


class _Archive:
    """Receives tiles in tile-id order; `finish` writes metadata and closes."""

    def __init__(self, path: Path) -> None:
        self.report = SeedReport(path, 0, 0, 0, 0)

    def add(self, tile: tms.TileID, gz: bytes) -> None:
        if not gz:
            return
        self._add(tile, gz)
        self.report.written += 1
        self.report.bytes += len(gz)
        self.report.largest = max(self.report.largest, len(gz))

    def _add(self, tile: tms.TileID, gz: bytes) -> None:
        raise TypeError("use PMTilesArchive or MBTilesArchive")

    def finish(self, meta: dict[str, Any], bbox: Bounds, zooms: range) -> None:
        raise TypeError("use PMTilesArchive or MBTilesArchive")

    def abort(self) -> None:
        """Release the file after a failure."""


class PMTilesArchive(_Archive):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.file = open(path, "wb")  # noqa: SIM115 - closed in finish/abort
        self.writer = Writer(self.file)

    def _add(self, tile: tms.TileID, gz: bytes) -> None:
        self.writer.write_tile(zxy_to_tileid(tile.z, tile.x, tile.y), gz)

    def finish(self, meta: dict[str, Any], bbox: Bounds, zooms: range) -> None:
        try:
            if not self.report.written:
                raise SeedError("every tile is empty: no archive written")
            cz = max(zooms.start, min(zooms.stop - 1, 12))
            self.writer.finalize({
                "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
                "min_lon_e7": int(bbox[0] * 1e7), "min_lat_e7": int(bbox[1] * 1e7),
                "max_lon_e7": int(bbox[2] * 1e7), "max_lat_e7": int(bbox[3] * 1e7),
                "center_zoom": cz, "center_lon_e7": int((bbox[0] + bbox[2]) / 2 * 1e7),
                "center_lat_e7": int((bbox[1] + bbox[3]) / 2 * 1e7)}, meta)
        finally:
            self.file.close()

    def abort(self) -> None:
        self.file.close()


class MBTilesArchive(_Archive):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.con = sqlite3.connect(path)
        self.con.executescript("CREATE TABLE metadata (name text, value text);"
                               "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, "
                               "tile_data blob);"
                               "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);")

    def _add(self, tile: tms.TileID, gz: bytes) -> None:
        # MBTiles rows count from the south (TMS)
        self.con.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (tile.z, tile.x, (1 << tile.z) - 1 - tile.y, gz))

    def finish(self, meta: dict[str, Any], bbox: Bounds, zooms: range) -> None:
        try:
            cz = max(zooms.start, min(zooms.stop - 1, 12))
            rows = {"name": str(meta["name"]), "format": "pbf", "type": "overlay", "version": "1.0.0",
                    "description": str(meta.get("description", "")),
                    "attribution": str(meta.get("attribution", "")),
                    "minzoom": str(zooms.start), "maxzoom": str(zooms.stop - 1),
                    "bounds": ",".join(str(v) for v in bbox),
                    "center": f"{(bbox[0] + bbox[2]) / 2},{(bbox[1] + bbox[3]) / 2},{cz}",
                    "json": json.dumps({"vector_layers": meta["vector_layers"],
                                        "datso:layers": meta["datso:layers"]})}
            self.con.executemany("INSERT INTO metadata VALUES (?, ?)", list(rows.items()))
            self.con.commit()
        finally:
            self.con.close()

    def abort(self) -> None:
        self.con.close()


async def seed(dsn: str, layers: Sequence[Layer], zooms: range, out: Path, bbox: Bounds | None = None,
               settings: TileSettings | None = None, workers: int = 4,
               progress: Callable[[int], None] = lambda n: None,
               total: Callable[[int], None] = lambda n: None) -> SeedReport:
    """Build and write the archive; tiles are built a chunk at a time and written in tile-id order, so
    memory stays bounded whatever the zoom range."""
    if out.suffix not in (".pmtiles", ".mbtiles"):
        raise SeedError(f"output must end in .pmtiles or .mbtiles, not {out.name!r}")
    s = settings or TileSettings()
    pool = await async_pool("reader", dsn=dsn, min_size=1, max_size=workers)
    try:
        if bbox is None:
            async with pool.acquire() as conn:
                bbox = await data_bounds(conn, layers)
            if bbox is None:
                raise SeedError("the layers are empty: nothing to seed (give --bbox to seed empty tiles anyway)")
        tiles = tile_list(layers, zooms, bbox)
        total(len(tiles))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.unlink(missing_ok=True)
        archive: _Archive = PMTilesArchive(tmp) if out.suffix == ".pmtiles" else MBTilesArchive(tmp)

        async def one(tile: tms.TileID) -> bytes:
            async with pool.acquire() as conn:
                data = await mvt.build(conn, layers, tile, s)
            progress(1)
            return make_entry(data, s.gzip_level).gz

        try:
            chunk = max(workers * 8, 32)
            for i in range(0, len(tiles), chunk):
                part = tiles[i:i + chunk]
                for tile, gz in zip(part, await asyncio.gather(*(one(t) for t in part)), strict=True):
                    archive.add(tile, gz)
            meta: dict[str, Any] = tilejson(layers, "", bbox, "vi", minzoom=zooms.start, maxzoom=zooms.stop - 1)
            meta.pop("tiles")
            meta["datso:layers"] = [layer.id for layer in layers]
            archive.finish(meta, bbox, zooms)
        except BaseException:
            archive.abort()
            tmp.unlink(missing_ok=True)
            raise
    finally:
        await pool.close()
    tmp.replace(out)
    report = archive.report
    report.path, report.tiles = out, len(tiles)
    return report
