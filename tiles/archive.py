"""Reading a seeded tile archive (PMTiles v3 or MBTiles) to serve it: tiles are stored gzip-encoded, so
the stored bytes are served as they are."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pmtiles.reader import MmapSource, Reader

from tiles.cache import Entry, entry_from_gzip
from tiles.tms import TileID


@dataclass
class TileArchive:
    path: Path
    layers: tuple[str, ...]
    minzoom: int
    maxzoom: int
    bounds: tuple[float, float, float, float] | None
    _reader: Any = None
    _file: Any = None
    _sqlite: sqlite3.Connection | None = None
    _lock: Any = None

    @classmethod
    def open(cls, path: Path) -> TileArchive:
        if path.suffix == ".mbtiles":
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            meta = dict(con.execute("SELECT name, value FROM metadata").fetchall())
            info = json.loads(meta.get("json", "{}"))
            b = [float(v) for v in meta["bounds"].split(",")] if meta.get("bounds") else None
            return cls(path, tuple(info.get("datso:layers", [])), int(meta["minzoom"]), int(meta["maxzoom"]),
                       (b[0], b[1], b[2], b[3]) if b else None, _sqlite=con, _lock=threading.Lock())
        f = open(path, "rb")  # noqa: SIM115 - kept open while served
        reader = Reader(MmapSource(f))
        h = reader.header()
        meta = reader.metadata()
        bounds = (h["min_lon_e7"] / 1e7, h["min_lat_e7"] / 1e7, h["max_lon_e7"] / 1e7, h["max_lat_e7"] / 1e7)
        return cls(path, tuple(meta.get("datso:layers", [])), h["min_zoom"], h["max_zoom"], bounds,
                   _reader=reader, _file=f)

    def get_gz(self, tile: TileID) -> bytes:
        if self._sqlite is not None:
            with self._lock:
                row = self._sqlite.execute(
                    "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                    (tile.z, tile.x, (1 << tile.z) - 1 - tile.y)).fetchone()
            return bytes(row[0]) if row else b""
        data = self._reader.get(tile.z, tile.x, tile.y)
        return bytes(data) if data else b""

    def get(self, tile: TileID) -> Entry:
        return entry_from_gzip(self.get_gz(tile))

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._file is not None:
            self._file.close()
