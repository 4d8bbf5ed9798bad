"""The asyncpg pool used by read paths (items, tiles). Created lazily so the app starts while the database
is down and recovers by itself when it comes back."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from layers.config import API_SESSION_SETTINGS


class DatabaseUnavailable(RuntimeError):
    pass


class Database:
    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 10, timeout: float = 3.0) -> None:
        self.dsn = dsn
        self.min_size, self.max_size, self.timeout = min_size, max_size, timeout
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _init_conn(self, conn: asyncpg.Connection) -> None:
        import orjson

        for typ in ("json", "jsonb"):
            await conn.set_type_codec(typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
                                      schema="pg_catalog")

    async def pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=self.min_size, max_size=self.max_size, timeout=self.timeout,
                        server_settings=dict(API_SESSION_SETTINGS), init=self._init_conn,
                        max_inactive_connection_lifetime=300.0)
                except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                    raise DatabaseUnavailable(str(exc)) from exc
        return self._pool

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        pool = await self.pool()
        try:
            async with pool.acquire(timeout=self.timeout) as conn:
                return await conn.fetchrow(sql, *args)
        except (TimeoutError, OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
