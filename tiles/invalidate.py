"""Cache invalidation across processes: migration 0003 installs statement-level triggers on every layer
table that `pg_notify('datso_tiles', ...)` the EPSG:3857 boxes of the changed geometries (old and new rows)
at commit. Each process LISTENs on a dedicated asyncpg connection and drops the cached tiles those boxes
touch. While the connection is down nothing is cached (`live` is False) and on (re)connect the in-process
cache is cleared, so a missed notification can never leave a stale tile behind. The cache directory (shared
by the processes of one deployment) is kept if another process was listening meanwhile (it kept the
directory current), and cleared otherwise. One cache directory per database.

The LISTEN goes to the primary (layers.store.connect, role `writer`): the triggers notify there and a replica
does not relay NOTIFY. When tiles are read from a replica (`DATSO_DATABASE_READ_URL`), a tile built after a
notification may still predate the edit (replication lag): so each notification also records the primary's WAL
position, and a tile is cached only if the replica had replayed up to it before the tile was built (`fresh`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable

import asyncpg
import orjson

from layers.catalog.registry import LAYERS
from layers.store.connect import connect_async
from tiles.cache import Box, TileCache

log = logging.getLogger("datso.tiles")
CHANNEL = "datso_tiles"


def layers_of_table(table: str) -> list[str]:
    return [layer.id for layer in LAYERS.values() if layer.table == table]


class Invalidator:
    def __init__(self, dsn: str, cache: TileCache, margin: float, retry_seconds: float = 2.0,
                 replica: bool = False) -> None:
        self.dsn, self.cache, self.margin, self.retry = dsn, cache, margin, retry_seconds
        self.replica = replica              # tiles are built on a replica: mind its lag
        self.wal_needed: str | None = None  # the primary's WAL position after the last notification
        self._unsettled = 0                 # notifications whose WAL position is not known yet
        self._wal_lock = asyncio.Lock()
        self._settling: set[asyncio.Task[None]] = set()
        self.epochs: dict[str, int] = {}
        self.received = 0
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self.listeners: list[Callable[[str], None]] = []
        # listeners that maintain the same cache directory know each other by this name
        where = str(cache.directory.resolve()) if cache.directory is not None else f"memory-{os.getpid()}-{id(self)}"
        self.app_name = "datso-tiles-" + hashlib.blake2b(where.encode(), digest_size=6).hexdigest()

    @property
    def live(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def epoch(self, layer_ids: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(self.epochs.get(lid, 0) for lid in layer_ids)

    async def fresh(self, conn: asyncpg.Connection) -> bool:
        """Whether what `conn` (on the replica) reads now includes every edit notified so far. A reader that is
        not a standby (`pg_is_in_recovery()` false) is always current: a primary that went through crash
        recovery still reports the last LSN it replayed then, which must not count as lag."""
        if not self.replica:
            return True
        if self._unsettled:
            return False
        if self.wal_needed is None:
            return True
        return bool(await conn.fetchval(
            "SELECT NOT pg_is_in_recovery() "
            "OR coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), $1::text::pg_lsn) >= 0, true)", self.wal_needed))

    async def _settle(self, conn: asyncpg.Connection) -> None:
        try:
            async with self._wal_lock:      # one query at a time on the listening connection
                self.wal_needed = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
        except (OSError, asyncpg.PostgresError, asyncpg.exceptions.InterfaceError, TimeoutError) as exc:
            # the connection is going away: the listener clears the cache and stops caching meanwhile
            log.warning("tile invalidation: WAL position unknown: %s", exc)
        finally:
            self._unsettled -= 1

    async def start(self, wait: float = 3.0) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="datso-tile-invalidator")
        try:
            await asyncio.wait_for(self._ready.wait(), wait)
        except TimeoutError:
            log.warning("tile invalidation listener not connected yet; tiles are not cached meanwhile")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=2)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                conn.terminate()

    async def _run(self) -> None:
        while True:
            try:
                conn = await connect_async("writer", dsn=self.dsn, timeout=5, application_name=self.app_name)
                self._lost.clear()
                conn.add_termination_listener(lambda _c: self._lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                others = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND application_name = $1", self.app_name)
                # anything cached before we listened may be stale; the directory was kept current if
                # another process listened all along
                self.cache.clear(directory=not others)
                self._conn = conn
                self._ready.set()
                await self._lost.wait()
                log.warning("tile invalidation listener lost its connection; cache cleared, reconnecting")
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("tile invalidation listener cannot connect: %s", exc)
            self._conn = None
            self._ready.clear()
            self.cache.clear()
            await asyncio.sleep(self.retry)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.received += 1
        try:
            msg = orjson.loads(payload)
            table = str(msg["table"])
            boxes: list[Box] = [(float(b[0]), float(b[1]), float(b[2]), float(b[3]))
                                for b in msg.get("boxes") or []]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            log.error("bad tile invalidation payload %r: clearing the tile cache", payload)
            self.cache.clear()
            return
        for lid in layers_of_table(table):
            self.epochs[lid] = self.epochs.get(lid, 0) + 1
            if msg.get("all"):
                self.cache.clear(lid)
            else:
                self.cache.invalidate(lid, boxes, self.margin)
            for cb in self.listeners:
                cb(lid)
        if self.replica and isinstance(_conn, asyncpg.Connection):
            self._unsettled += 1
            task = asyncio.get_running_loop().create_task(self._settle(_conn))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
