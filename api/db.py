"""The asyncpg pool used by read paths (items, tiles, search, pages, exports). Created lazily so the app starts
while the database is down and recovers by itself when it comes back. Its address and session settings come
from the database seam (layers/store/connect.py): the read URL (`DATSO_DATABASE_READ_URL`) when set. A second,
small pool on the primary (`pool("writer")`, the same pool when there is no read URL) serves the API-key
lookup, so a key just created or revoked counts at once whatever the replica's lag.

With a read replica the reads follow a policy (`ReplicaRouting`), so the API keeps answering when the replica
lags or is down: a replica that cannot be reached (its pool cannot be made, or a connection cannot be had)
sends reads to a fallback pool on the primary (`datso-reader-fallback`) for `DATSO_DB_READ_CHECK_INTERVAL`
seconds, then it is tried again; every check interval (and at once after a write of this process) one read
first asks the replica how far behind it is: reads go to the primary while it lags more than
`DATSO_DB_READ_MAX_LAG` seconds, and while it has not yet replayed this process's last write (read-your-writes
within a worker: a client that has just written reads what it wrote).

Every pooled session runs with the *read* `statement_timeout` (`DATSO_READ_STATEMENT_TIMEOUT`, server
setting of the pool); `connection("export")` raises it for one transaction (`SET LOCAL`, from
`DATSO_EXPORT_STATEMENT_TIMEOUT`) for Folium maps and file downloads. A statement the server cancels becomes
`QueryTimeout`, a database that cannot be reached `DatabaseUnavailable`: both are 503 problem+json with
`Retry-After` (api/errors.py), never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
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


# how far the replica is behind: its replay position and, when it has received WAL it has not replayed yet,
# the age of the last transaction it replayed (seconds; 0 when it is caught up with what it received)
_REPLICA_STATE = """SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS replayed,
  CASE WHEN NOT pg_is_in_recovery() THEN 0
       WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
       ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 1e9)
  END::float8 AS lag"""


class ReplicaRouting:
    """Where reads go when there is a replica, and why: the decision and its counters (for /metrics)."""

    def __init__(self, max_lag: float, check_interval: float) -> None:
        self.max_lag, self.check_interval = max_lag, check_interval
        self.use_replica = True
        self.reason = "replica"               # or "down", "lag", "read_your_writes"
        self.until = 0.0                      # the decision holds until then (monotonic)
        self.writes = 0                       # writes of this process (note_write)
        self.confirmed = 0                    # writes the replica is known to have replayed
        self.lag = 0.0                        # seconds, at the last check
        self.fallbacks: dict[str, int] = {"down": 0, "lag": 0, "read_your_writes": 0}
        self.lock = asyncio.Lock()

    def due(self, now: float) -> bool:
        return now >= self.until or (self.use_replica and self.writes > self.confirmed)

    def decide(self, use_replica: bool, reason: str, now: float) -> None:
        if not use_replica and (self.use_replica or reason != self.reason):
            log.warning("reads go to the primary: replica %s", reason)
        elif use_replica and not self.use_replica:
            log.warning("reads go to the replica again")
        self.use_replica, self.reason, self.until = use_replica, reason, now + self.check_interval


@asynccontextmanager
async def _acquired(pool: asyncpg.Pool, held: Any, timeout: float) -> AsyncIterator[asyncpg.Connection]:
    """`held` (a connection already taken from `pool`) or a new one from `pool`; given back at the end."""
    if held is None:
        async with pool.acquire(timeout=timeout) as conn:
            yield conn
        return
    try:
        yield held
    finally:
        await pool.release(held)


class Database:
    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 10, timeout: float = 3.0,
                 read_timeout: float = 5.0, export_timeout: float = 60.0, acquire_timeout: float = 10.0,
                 primary: str | None = None, max_lag: float = 30.0, check_interval: float = 2.0,
                 pooled: bool = False) -> None:
        self.dsn = dsn                       # where reads go
        self.primary = primary or dsn        # where the key lookup goes
        self.min_size, self.max_size, self.timeout = min_size, max_size, timeout
        self.acquire_timeout = acquire_timeout   # waiting for a free pooled connection (busy server)
        self.statement_timeouts: dict[str, float] = {"read": read_timeout, "export": export_timeout}
        self._pool: asyncpg.Pool | None = None
        self._primary_pool: asyncpg.Pool | None = None
        self._fallback_pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self.pooled = pooled                 # PgBouncer in transaction mode: timeouts per transaction
        self.routing = ReplicaRouting(max_lag, check_interval) if self.primary != self.dsn else None

    def note_write(self) -> None:
        """A write of this process committed on the primary: the next read checks that the replica has it."""
        if self.routing is not None:
            self.routing.writes += 1

    async def _init_conn(self, conn: asyncpg.Connection) -> None:
        import orjson

        for typ in ("json", "jsonb"):
            await conn.set_type_codec(typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
                                      schema="pg_catalog")

    async def pool(self, role: connect.Role = "reader") -> asyncpg.Pool:
        """The writer's pool (the primary), or where reads go now (the replica, or the primary when the replica
        is down or behind: see `ReplicaRouting`)."""
        if role == "writer" and self.primary != self.dsn:
            return await self._primary()
        if self.routing is not None:
            return await self._routed()
        return await self._replica()

    async def _replica(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._pool = await self._create("reader", self.dsn, self.min_size, self.max_size)
        return self._pool

    async def _fallback(self) -> asyncpg.Pool:
        """Reads on the primary while the replica cannot serve them (a pool of its own, as large as the read
        pool, opened on first need; `datso-reader-fallback` in pg_stat_activity)."""
        if self._fallback_pool is None:
            async with self._lock:
                if self._fallback_pool is None:
                    self._fallback_pool = await self._create("reader", self.primary, 0, self.max_size,
                                                             name="reader-fallback")
        return self._fallback_pool

    async def _routed(self) -> asyncpg.Pool:
        r = self.routing
        assert r is not None
        if r.due(time.monotonic()):
            async with r.lock:
                if r.due(time.monotonic()):
                    await self._check(r)
        return await self._replica() if r.use_replica else await self._fallback()

    async def _check(self, r: ReplicaRouting) -> None:
        """Ask the replica how far behind it is (and, after a write of this process, whether it has replayed
        the primary's current position); decide where reads go until the next check."""
        writes = r.writes
        now = time.monotonic()
        needed = None
        if writes > r.confirmed:
            try:
                async with (await self._primary()).acquire(timeout=self.timeout) as conn:
                    needed = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
            except (asyncpg.PostgresError, DatabaseUnavailable, *_CONNECT_ERRORS, *CLIENT_ERRORS) as exc:
                # the primary cannot say where it is: the replica is then the only place to read at all, and
                # these writes are not waited for (no check per read against a primary that is down)
                log.warning("primary unavailable for the read-your-writes check: %s", exc)
                r.confirmed = max(r.confirmed, writes)
        try:
            pool = await self._replica()
            async with pool.acquire(timeout=self.timeout) as conn:
                state = await conn.fetchrow(_REPLICA_STATE)
                caught_up = needed is None or not state["standby"] or await conn.fetchval(
                    "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", needed)
        except (asyncpg.PostgresError, DatabaseUnavailable, *_CONNECT_ERRORS, *CLIENT_ERRORS) as exc:
            log.warning("read replica unavailable: %s", exc)
            r.fallbacks["down"] += 1
            r.decide(False, "down", now)
            return
        r.lag = float(state["lag"])
        if caught_up:
            r.confirmed = max(r.confirmed, writes)
        if r.lag > r.max_lag:
            r.fallbacks["lag"] += 1
            r.decide(False, "lag", now)
        elif not caught_up:
            r.fallbacks["read_your_writes"] += 1
            r.decide(False, "read_your_writes", now)
        else:
            r.decide(True, "replica", now)

    def _replica_failed(self, exc: BaseException) -> None:
        """A read could not get a connection to the replica: reads go to the primary until the next check."""
        r = self.routing
        if r is not None and r.use_replica:
            log.warning("read replica unavailable: %s", exc)
            r.fallbacks["down"] += 1
            r.decide(False, "down", time.monotonic())

    async def _primary(self) -> asyncpg.Pool:
        if self._primary_pool is None:
            async with self._lock:
                if self._primary_pool is None:
                    self._primary_pool = await self._create("writer", self.primary, 0, 2)
        return self._primary_pool

    async def _create(self, role: connect.Role, dsn: str, min_size: int, max_size: int,
                      name: str | None = None) -> asyncpg.Pool:
        try:
            return await connect.async_pool(
                role, dsn=dsn, statement_timeout_ms=int(_ms(self.statement_timeouts["read"])),
                min_size=min_size, max_size=max_size, timeout=self.timeout, name=name,
                init=self._init_conn, max_inactive_connection_lifetime=300.0)
        except (asyncpg.PostgresError, *_CONNECT_ERRORS) as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    @asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A read connection from where reads go now (the replica, or the primary: `ReplicaRouting`; a replica
        that cannot give a connection sends this read and the next ones to the primary at once). Through a
        pooler in transaction mode (`DATSO_DATABASE_POOLER`, which drops the sessions' startup settings) the
        connection is inside a transaction that sets the read `statement_timeout` (`SET LOCAL`)."""
        wait = self.acquire_timeout if timeout is None else timeout
        try:
            pool = await self.pool()
        except DatabaseUnavailable as exc:    # the replica's pool could not be made: read on the primary
            if self.routing is None or not self.routing.use_replica:
                raise
            self._replica_failed(exc)
            pool = await self._fallback()
        held: Any = None
        if self.routing is not None and pool is self._pool and pool is not None:
            try:
                held = await pool.acquire(timeout=wait)
            except (*_CONNECT_ERRORS, *CLIENT_ERRORS) as exc:
                self._replica_failed(exc)
                pool = await self._fallback()
        async with _acquired(pool, held, wait) as conn:
            if self.pooled:
                async with conn.transaction():
                    await conn.execute(connect.LOCAL_TIMEOUT, _ms(self.statement_timeouts["read"]))
                    yield conn
            else:
                yield conn

    @asynccontextmanager
    async def connection(self, kind: RequestClass = "read") -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one request class. Unreachable database -> `DatabaseUnavailable`, a
        statement past the class's timeout -> `QueryTimeout`; other errors pass through."""
        seconds = self.statement_timeouts[kind]
        done = False
        try:
            async with self.acquire() as conn:
                if kind == "read":
                    yield conn
                else:
                    async with conn.transaction(readonly=True):
                        await conn.execute(connect.LOCAL_TIMEOUT, _ms(seconds))
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
        for pool in (self._pool, self._primary_pool, self._fallback_pool):
            if pool is not None:
                await pool.close()
        self._pool = self._primary_pool = self._fallback_pool = None
