"""The asyncpg pool used by read paths (items, tiles, search, pages, exports). Created lazily so the app starts
while the database is down and recovers by itself when it comes back. Its address and session settings come
from the database seam (layers/store/connect.py): the read URL (`DATSO_DATABASE_READ_URL`) when set. A second,
small pool on the primary (`pool("writer")`, the same pool when there is no read URL) serves the API-key
lookup, so a key just created or revoked counts at once whatever the replica's lag.

Every pooled session runs with the *read* `statement_timeout` (`DATSO_READ_STATEMENT_TIMEOUT`, server
setting of the pool); `connection("export")` raises it for one transaction (`SET LOCAL`, from
`DATSO_EXPORT_STATEMENT_TIMEOUT`) for Folium maps and file downloads. A statement the server cancels becomes
`QueryTimeout`, a database that cannot be reached `DatabaseUnavailable`: both are 503 problem+json with
`Retry-After` (api/errors.py), never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import asyncpg

from layers.store import connect

RequestClass = Literal["read", "export"]
log = logging.getLogger("datso.api")

# errors that mean "the database cannot answer now" (unreachable, restarting, shutting down, out of
# connections), as opposed to a bad statement or a bug
DB_DOWN: tuple[type[Exception], ...] = (
    TimeoutError, ConnectionError, asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError, asyncpg.exceptions.TooManyConnectionsError,
)
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (OSError, *DB_DOWN)
# what asyncpg raises when a connection dies under it in the middle of something: InternalClientError
# ("cannot switch to state N; another operation is in progress": the server's FATAL shutdown notice arrived
# while the protocol was busy; a request never shares its connection, so this is not a usage bug) is always a
# database fault; InterfaceError only when one of DB_DOWN caused it (otherwise it is a bug, or DataError)
CLIENT_ERRORS: tuple[type[Exception], ...] = (asyncpg.exceptions.InternalClientError,
                                                  asyncpg.exceptions.InterfaceError)


def database_fault(exc: BaseException) -> BaseException | None:
    """The database error behind `exc` (itself, or its cause/context chain), if it is one: a cancelled
    statement, a broken protocol state or one of DB_DOWN. None for anything else (a bug, bad input)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (asyncpg.exceptions.QueryCanceledError, asyncpg.exceptions.InternalClientError,
                          *_CONNECT_ERRORS)):
            return e
        e = e.__cause__ or e.__context__
    return None


class DatabaseUnavailable(RuntimeError):
    pass


class QueryTimeout(DatabaseUnavailable):
    """The server cancelled a statement that ran past the request class's `statement_timeout`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"statement timeout ({seconds:g} s)")
        self.seconds = seconds


def _ms(seconds: float) -> str:
    return str(max(0, round(seconds * 1000)))


class Database:
    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 10, timeout: float = 3.0,
                 read_timeout: float = 5.0, export_timeout: float = 60.0, acquire_timeout: float = 10.0,
                 primary: str | None = None) -> None:
        self.dsn = dsn                       # where reads go
        self.primary = primary or dsn        # where the key lookup goes
        self.min_size, self.max_size, self.timeout = min_size, max_size, timeout
        self.acquire_timeout = acquire_timeout   # waiting for a free pooled connection (busy server)
        self.statement_timeouts: dict[str, float] = {"read": read_timeout, "export": export_timeout}
        self._pool: asyncpg.Pool | None = None
        self._primary_pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _init_conn(self, conn: asyncpg.Connection) -> None:
        import orjson

        for typ in ("json", "jsonb"):
            await conn.set_type_codec(typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
                                      schema="pg_catalog")

    async def pool(self, role: connect.Role = "reader") -> asyncpg.Pool:
        if role == "writer" and self.primary != self.dsn:
            return await self._primary()
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._pool = await self._create("reader", self.dsn, self.min_size, self.max_size)
        return self._pool

    async def _primary(self) -> asyncpg.Pool:
        if self._primary_pool is None:
            async with self._lock:
                if self._primary_pool is None:
                    self._primary_pool = await self._create("writer", self.primary, 0, 2)
        return self._primary_pool

    async def _create(self, role: connect.Role, dsn: str, min_size: int, max_size: int) -> asyncpg.Pool:
        try:
            return await connect.async_pool(
                role, dsn=dsn, statement_timeout_ms=int(_ms(self.statement_timeouts["read"])),
                min_size=min_size, max_size=max_size, timeout=self.timeout,
                init=self._init_conn, max_inactive_connection_lifetime=300.0)
        except (asyncpg.PostgresError, *_CONNECT_ERRORS) as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    @asynccontextmanager
    async def connection(self, kind: RequestClass = "read") -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one request class. Unreachable database -> `DatabaseUnavailable`, a
        statement past the class's timeout -> `QueryTimeout`; other errors pass through."""
        seconds = self.statement_timeouts[kind]
        pool = await self.pool()
        done = False
        try:
            async with pool.acquire(timeout=self.acquire_timeout) as conn:
                if kind == "read":
                    yield conn
                else:
                    async with conn.transaction(readonly=True):
                        await conn.execute("SELECT set_config('statement_timeout', $1, true)", _ms(seconds))
                        yield conn
                done = True
        except (asyncpg.exceptions.QueryCanceledError, *_CONNECT_ERRORS, *CLIENT_ERRORS) as exc:
            if done:
                # the request's work succeeded; resetting the connection on its way back to the pool failed
                # (the server went away meanwhile): asyncpg has terminated it, the pool opens a new one
                log.warning("pooled connection dropped on release: %s", exc)
                return
            fault = database_fault(exc)
            if fault is None:
                raise
            if isinstance(fault, asyncpg.exceptions.QueryCanceledError):
                raise QueryTimeout(seconds) from exc
            raise DatabaseUnavailable(str(fault) or type(fault).__name__) from exc

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(sql, *args)

    async def close(self) -> None:
        for pool in (self._pool, self._primary_pool):
            if pool is not None:
                await pool.close()
        self._pool = self._primary_pool = None
