"""The one database seam: every connection datso opens (sync psycopg, async asyncpg pools and connections, the
psycopg pool of the API's writes, Alembic's SQLAlchemy URL) gets its address and its session settings here.

Two roles:
- `reader`: items, tiles, search, collection metadata, exports, `read_layer`, `datso export`, `datso map
  export`, `datso tiles seed`. Goes to `DATSO_DATABASE_READ_URL` when it is set (a streaming replica), else to
  the primary.
- `writer`: API writes, imports, API keys (creation, revocation, listing and the lookup of a key on a write),
  the sample load, migrations, cluster administration, and the tile-invalidation LISTEN (replicas do not relay
  NOTIFY; the triggers fire on the primary). Always the primary: `DATABASE_URL` or the embedded cluster.

Every session names itself in `application_name` (`datso-reader`, `datso-writer`, `datso-migrate`, or a pool's
`name` prefixed with `datso-`) unless its DSN already sets one, so `pg_stat_activity` shows datso's sessions.
Through PgBouncer in transaction mode (`DATSO_DATABASE_POOLER`) no connection keeps server-side prepared
statements (a transaction's next statement may run on another server connection), and the LISTEN goes to
`listen_url()` (`DATSO_DATABASE_LISTEN_URL`, a direct connection; LISTEN needs one session).
Every session runs with `layers.settings.API_SESSION_SETTINGS` (jit off, no parallel workers) plus, when the
caller gives one, its request class's `statement_timeout`: as libpq `options` (psycopg) or asyncpg
`server_settings`. PgBouncer 1.18 drops those startup settings, so through it the API also sets its timeouts per
transaction (`LOCAL_TIMEOUT`: api/db.py for reads, the write pool of layers/ingest/writes.py for writes). A caller that already knows its address (a test's database, `--db`, the DSN handed to a
library function) passes it as `dsn`; the role then only documents intent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import asyncpg
import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict

from layers.settings import API_SESSION_SETTINGS, Settings, get_settings

Role = Literal["reader", "writer"]


def url(role: Role, settings: Settings | None = None, *, primary: str | None = None,
        dbname: str | None = None) -> str:
    """The libpq URL for `role`: the read URL for a reader when `DATSO_DATABASE_READ_URL` is set, else the
    primary (`primary` if given, else `DATABASE_URL` / the embedded cluster, on `dbname` if given)."""
    s = settings or get_settings()
    if role == "reader" and s.database_read_url:
        return s.model_copy(update={"database_url": s.database_read_url}).dsn(dbname)
    return primary or s.dsn(dbname)


def application_name(role: Role | str, dsn: str) -> str:
    """`datso-<role>` for a session, or the DSN's own `application_name` when it has one."""
    own = conninfo_to_dict(dsn).get("application_name")
    return str(own) if own else (role if str(role).startswith("datso") else f"datso-{role}")


def listen_url(primary: str, settings: Settings | None = None) -> str:
    """Where the tile-invalidation LISTEN connects: `DATSO_DATABASE_LISTEN_URL` (direct), else `primary`."""
    s = settings or get_settings()
    if s.database_listen_url:
        return s.model_copy(update={"database_url": s.database_listen_url}).dsn()
    return primary


def pooled(settings: Settings | None = None) -> bool:
    """Whether the database URLs go through PgBouncer in transaction mode (`DATSO_DATABASE_POOLER`)."""
    return (settings or get_settings()).database_pooler


_pooled = pooled


def sqlalchemy_url(settings: Settings | None = None, dbname: str | None = None) -> str:
    """Alembic's URL (migrations write: always the primary), for the psycopg driver."""
    return "postgresql+psycopg://" + url("writer", settings, dbname=dbname)[len("postgresql://"):]


def sqlalchemy_connect_args(sa_url: str) -> dict[str, str]:
    """Alembic's engine `connect_args`: the session named `datso-migrate` (unless its URL names one)."""
    return {"application_name": application_name("migrate", sa_url.replace("postgresql+psycopg://",
                                                                           "postgresql://", 1))}


# a statement_timeout for the current transaction only: what survives PgBouncer in transaction mode, which
# drops the startup `options` / `server_settings` that carry it otherwise (1.18: ignore_startup_parameters)
LOCAL_TIMEOUT = "SELECT set_config('statement_timeout', $1, true)"
LOCAL_TIMEOUT_PSYCOPG = "SELECT set_config('statement_timeout', %s, true)"


def session_settings(statement_timeout_ms: int | None = None) -> dict[str, str]:
    """The settings every session runs with, plus a `statement_timeout` (ms) when given."""
    out = dict(API_SESSION_SETTINGS)
    if statement_timeout_ms is not None:
        out["statement_timeout"] = str(max(0, int(statement_timeout_ms)))
    return out


def _options(dsn: str, statement_timeout_ms: int | None) -> str:
    """libpq `options` carrying the session settings, after any `options` the DSN already has."""
    ours = " ".join(f"-c {k}={v}" for k, v in session_settings(statement_timeout_ms).items())
    theirs = conninfo_to_dict(dsn).get("options")
    return f"{theirs} {ours}" if theirs else ours


@contextmanager
def connect(role: Role, *, dsn: str | None = None, settings: Settings | None = None, dbname: str | None = None,
            autocommit: bool = False, statement_timeout_ms: int | None = None,
            connect_timeout: int | None = None) -> Iterator[psycopg.Connection]:
    """A psycopg connection for `role` (or to `dsn`) with the session settings; committed when the block ends
    without error, rolled back otherwise, closed always."""
    target = dsn or url(role, settings, dbname=dbname)
    kwargs: dict[str, Any] = {"options": _options(target, statement_timeout_ms),
                              "application_name": application_name(role, target)}
    if _pooled(settings):
        kwargs["prepare_threshold"] = None
    if connect_timeout is not None:
        kwargs["connect_timeout"] = connect_timeout
    with psycopg.connect(target, autocommit=autocommit, **kwargs) as conn:
        yield conn


def sync_pool(role: Role, *, dsn: str | None = None, settings: Settings | None = None, min_size: int = 0,
              max_size: int = 4, timeout: float = 3.0, statement_timeout_ms: int | None = None,
              reconnect_timeout: float = 5.0, name: str | None = None) -> psycopg_pool.ConnectionPool:
    """A psycopg pool (not opened: `open=False`) whose connections carry the session settings."""
    target = dsn or url(role, settings)
    return psycopg_pool.ConnectionPool(
        target, min_size=min_size, max_size=max(max_size, 1, min_size), open=False, timeout=timeout,
        # a short reconnect_timeout: after an outage the pool gives up its backoff quickly and the next
        # caller tries again at once (psycopg_pool's backoff alone grows to 16 s and more)
        reconnect_timeout=reconnect_timeout, check=psycopg_pool.ConnectionPool.check_connection,
        kwargs={"connect_timeout": max(1, round(timeout)), "options": _options(target, statement_timeout_ms),
                "application_name": application_name(name or role, target),
                **({"prepare_threshold": None} if _pooled(settings) else {})},
        name=name)


async def connect_async(role: Role, *, dsn: str | None = None, settings: Settings | None = None,
                        timeout: float = 60.0, statement_timeout_ms: int | None = None,
                        **server_settings: str) -> asyncpg.Connection:
    """One asyncpg connection for `role` (or to `dsn`) with the session settings (+ `server_settings`)."""
    target = dsn or url(role, settings)
    named = {"application_name": application_name(role, target), **session_settings(statement_timeout_ms)}
    cache = {"statement_cache_size": 0} if _pooled(settings) else {}
    return await asyncpg.connect(target, timeout=timeout, server_settings={**named, **server_settings}, **cache)


async def async_pool(role: Role, *, dsn: str | None = None, settings: Settings | None = None,
                     statement_timeout_ms: int | None = None, name: str | None = None,
                     **kwargs: Any) -> asyncpg.Pool:
    """An asyncpg pool for `role` (or to `dsn`) with the session settings; `kwargs` go to
    `asyncpg.create_pool` (sizes, timeout, init, ...). `name` names its sessions (`datso-<name>`)."""
    target = dsn or url(role, settings)
    named = {"application_name": application_name(name or role, target),
             **session_settings(statement_timeout_ms)}
    if _pooled(settings):
        kwargs.setdefault("statement_cache_size", 0)
    return await asyncpg.create_pool(target, server_settings=named, **kwargs)
