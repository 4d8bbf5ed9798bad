"""The tile service one process holds: cache lookup, build on miss (one SQL statement), store, and the
invalidation listener. The API and the seeder call it; it knows no HTTP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import asyncpg

from layers.catalog.registry import Layer
from layers.settings import TileSettings
from tiles import mvt
from tiles.cache import CacheKey, Entry, TileCache, etag_of, gzip_bytes, make_entry
from tiles.filters import TileFilter
from tiles.invalidate import Invalidator
from tiles.tms import TileID

# a read connection, given an acquire timeout (api.db.Database.acquire: routed to the replica or the primary)
Acquire = Callable[[float], AbstractAsyncContextManager[asyncpg.Connection]]


@dataclass
class TileResult:
    """A tile as built (`raw`) and/or as stored (`entry`, gzip)."""

    etag: str
    cached: bool
    raw: bytes | None = None
    entry: Entry | None = None

    @classmethod
    def of_entry(cls, entry: Entry, cached: bool = True) -> TileResult:
        return cls(entry.etag, cached, None, entry)

    @property
    def empty(self) -> bool:
        return self.raw == b"" if self.raw is not None else (self.entry is None or self.entry.empty)

    def identity(self) -> bytes:
        if self.raw is not None:
            return self.raw
        assert self.entry is not None
        return self.entry.raw()

    def gzipped(self, level: int = 6) -> bytes:
        if self.entry is not None:
            return self.entry.gz
        return gzip_bytes(self.raw or b"", level)


class TileService:
    def __init__(self, dsn: str, acquire: Acquire, settings: TileSettings, acquire_timeout: float = 10.0,
                 replica: bool = False) -> None:
        """`dsn`: the primary (the invalidation LISTEN); `acquire`: where tiles are read (`replica`: not the
        primary, so a tile is cached only once the replica has replayed every notified edit)."""
        self.settings = settings
        self._acquire = acquire
        self.acquire_timeout = acquire_timeout   # a busy pool: wait this long, then TimeoutError (503)
        self.cache: TileCache | None = None
        self.invalidator: Invalidator | None = None
        if settings.cache_enabled and settings.listen:
            self.cache = TileCache(settings.cache_bytes, settings.cache_dir)
            self.invalidator = Invalidator(dsn, self.cache, settings.buffer / settings.extent, replica=replica)

    async def start(self) -> None:
        if self.invalidator is not None:
            await self.invalidator.start()

    async def stop(self) -> None:
        if self.invalidator is not None:
            await self.invalidator.stop()

    @property
    def caching(self) -> bool:
        return self.cache is not None and self.invalidator is not None and self.invalidator.live

    async def tile(self, layers: Sequence[Layer], tile: TileID, tile_filter: TileFilter | None = None) -> TileResult:
        ids = tuple(layer.id for layer in layers)
        key = CacheKey(ids, tile_filter.key if tile_filter else "", tile.z, tile.x, tile.y)
        if self.cache is not None and self.caching:
            hit = self.cache.get(key)
            if hit is not None:
                return TileResult.of_entry(hit)
        epoch = self.invalidator.epoch(ids) if self.invalidator is not None else ()
        data: bytes | None = None
        fresh = True
        try:
            async with self._acquire(self.acquire_timeout) as conn:
                if self.invalidator is not None and self.invalidator.replica:
                    fresh = await self.invalidator.fresh(conn)
                data = await mvt.build(conn, layers, tile, self.settings, tile_filter)
        except (OSError, asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError,
                asyncpg.exceptions.InternalClientError):
            # the tile is built; only handing the connection back failed (the server went away meanwhile:
            # asyncpg has terminated it). Anything that failed before the tile was built goes up.
            if data is None:
                raise
        assert data is not None
        # store only if no edit of these layers was announced while the tile was being built
        if self.cache is not None and self.invalidator is not None and self.caching \
                and self.invalidator.epoch(ids) == epoch and fresh:
            entry = make_entry(data, self.settings.gzip_level)
            self.cache.put(key, entry)
            return TileResult(entry.etag, False, data, entry)
        return TileResult(etag_of(data), False, data)
