"""The tile cache: an in-process LRU bounded in bytes, plus an optional directory shared by processes.

Tiles are stored once, gzip-encoded (mtime 0, so equal tiles give equal bytes), with an ETag that is a hash
of those bytes; an empty tile is stored as b"". Keys are (layer ids, filter key, z, x, y) and an index by
zoom -> (x, y) makes invalidation by bounding box cheap: for each cached zoom the tile range of the box is
computed and only those tiles are visited.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tiles.tms import tile_range

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class CacheKey:
    layers: tuple[str, ...]
    filter_key: str
    z: int
    x: int
    y: int


@dataclass(frozen=True)
class Entry:
    gz: bytes          # gzip-encoded MVT; b"" for an empty tile
    etag: str          # quoted strong ETag: a hash of the MVT bytes

    @property
    def empty(self) -> bool:
        return not self.gz

    def raw(self) -> bytes:
        return gzip.decompress(self.gz) if self.gz else b""

    @property
    def size(self) -> int:
        return len(self.gz) + 200


def make_entry(mvt: bytes, level: int = 6) -> Entry:
    return Entry(gzip_bytes(mvt, level), etag_of(mvt))


def gzip_bytes(mvt: bytes, level: int = 6) -> bytes:
    return gzip.compress(mvt, compresslevel=level, mtime=0) if mvt else b""


def entry_from_gzip(gz: bytes) -> Entry:
    return Entry(gz, etag_of(gzip.decompress(gz) if gz else b""))


def etag_of(mvt: bytes) -> str:
    return '"' + hashlib.blake2b(mvt, digest_size=12).hexdigest() + '"'


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stores: int = 0
    invalidated: int = 0
    lru_evicted: int = 0
    clears: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class TileCache:
    max_bytes: int
    directory: Path | None = None
    stats: CacheStats = field(default_factory=CacheStats)

    def __post_init__(self) -> None:
        self._lru: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._by_zoom: dict[int, dict[tuple[int, int], set[CacheKey]]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    # -- lookup / store -------------------------------------------------------------------------------
    def get(self, key: CacheKey, count_miss: bool = True) -> Entry | None:
        with self._lock:
            entry = self._lru.get(key)
            if entry is not None:
                self._lru.move_to_end(key)
                self.stats.hits += 1
                return entry
        entry = self._disk_get(key)
        with self._lock:
            if entry is None:
                if count_miss:
                    self.stats.misses += 1
                return None
            self.stats.hits += 1
            self._put_memory(key, entry)
        return entry

    def put(self, key: CacheKey, entry: Entry) -> None:
        with self._lock:
            self.stats.stores += 1
            self._put_memory(key, entry)
        self._disk_put(key, entry)

    def _put_memory(self, key: CacheKey, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        old = self._lru.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._lru[key] = entry
        self._bytes += entry.size
        self._by_zoom.setdefault(key.z, {}).setdefault((key.x, key.y), set()).add(key)
        while self._bytes > self.max_bytes and self._lru:
            k, e = self._lru.popitem(last=False)
            self._forget(k, e)
            self.stats.lru_evicted += 1

    def _forget(self, key: CacheKey, entry: Entry) -> None:
        self._bytes -= entry.size
        tiles = self._by_zoom.get(key.z)
        if tiles is not None:
            keys = tiles.get((key.x, key.y))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del tiles[(key.x, key.y)]

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def bytes(self) -> int:
        return self._bytes

    # -- invalidation -------------------------------------------------------------------------------
    def invalidate(self, layer_id: str, boxes: Iterable[Box], margin: float) -> int:
        """Drop every cached tile of a layer set containing `layer_id` that a box touches (tiles grown by
        `margin`, the buffer as a share of the side), at every zoom. Returns how many were dropped."""
        boxes = list(boxes)
        dropped = 0
        with self._lock:
            for z, tiles in self._by_zoom.items():
                for box in boxes:
                    x0, y0, x1, y1 = tile_range(box, z, margin)
                    if (x1 - x0 + 1) * (y1 - y0 + 1) <= len(tiles):
                        cells: Iterable[tuple[int, int]] = [(x, y) for x in range(x0, x1 + 1)
                                                            for y in range(y0, y1 + 1) if (x, y) in tiles]
                    else:
                        cells = [c for c in tiles if x0 <= c[0] <= x1 and y0 <= c[1] <= y1]
                    for cell in cells:
                        for key in [k for k in tiles.get(cell, ()) if layer_id in k.layers]:
                            entry = self._lru.pop(key)
                            self._forget(key, entry)
                            dropped += 1
        dropped += self._disk_invalidate(layer_id, boxes, margin)
        with self._lock:   # counted once memory and directory are both done
            self.stats.invalidated += dropped
        return dropped

    def clear(self, layer_id: str | None = None, directory: bool = True) -> None:
        with self._lock:
            for key in [k for k in self._lru if layer_id is None or layer_id in k.layers]:
                self._forget(key, self._lru.pop(key))
            self.stats.clears += 1
        if directory and self.directory is not None and self.directory.exists():
            for set_dir in self.directory.iterdir():
                if layer_id is None or layer_id in set_dir.name.split("+"):
                    _rmtree(set_dir)

    # -- directory ------------------------------------------------------------------------------------
    def _path(self, key: CacheKey) -> Path:
        assert self.directory is not None
        return self.directory / "+".join(key.layers) / (key.filter_key or "_") / str(key.z) / str(key.x) / \
            f"{key.y}.mvt.gz"

    def _disk_get(self, key: CacheKey) -> Entry | None:
        if self.directory is None:
            return None
        try:
            gz = self._path(key).read_bytes()
        except OSError:
            return None
        return entry_from_gzip(gz)

    def _disk_put(self, key: CacheKey, entry: Entry) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(entry.gz)
        os.replace(tmp, path)

    def _disk_invalidate(self, layer_id: str, boxes: list[Box], margin: float) -> int:
        if self.directory is None or not self.directory.exists():
            return 0
        dropped = 0
        for set_dir in self.directory.iterdir():
            if layer_id not in set_dir.name.split("+"):
                continue
            for zoom_dir in (d for f in set_dir.iterdir() for d in f.iterdir()):
                z = int(zoom_dir.name)
                for box in boxes:
                    x0, y0, x1, y1 = tile_range(box, z, margin)
                    for x_dir in zoom_dir.iterdir():
                        if not x0 <= int(x_dir.name) <= x1:
                            continue
                        for f in x_dir.glob("*.mvt.gz"):
                            if y0 <= int(f.name.split(".")[0]) <= y1:
                                f.unlink(missing_ok=True)
                                dropped += 1
        return dropped


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
