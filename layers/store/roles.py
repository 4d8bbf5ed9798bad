"""Least-privilege database roles, opt-in (`datso db roles --create`): the embedded cluster's default stays a
trusted superuser; an operator who wants the API to run with less creates these and points the URLs at them.

- `<prefix>_reader`: CONNECT, USAGE on `public`, SELECT on every table (now and later: default privileges).
  For `DATSO_DATABASE_READ_URL` (items, tiles, search, exports).
- `<prefix>_writer`: the reader's rights plus INSERT/UPDATE/DELETE on every table and USAGE/SELECT on the
  sequences. Owns nothing, so it cannot ALTER or DROP a table (and the append-only history stays guarded by its
  triggers). For `DATABASE_URL` of the API and imports.
- migrations keep running as the owner of the tables (the role that ran `datso db migrate`, the cluster
  superuser by default; `--owner` hands every table and sequence to a `<prefix>_owner` role made for that).

Passwords are stored as SCRAM-SHA-256 (`password_encryption`, PostgreSQL's default since 14); whether the server
asks for them is pg_hba.conf's job (`host ... scram-sha-256`, as a new embedded cluster has for 127.0.0.1).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from layers.store.connect import connect

_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class RolesError(RuntimeError):
    """The roles could not be created (the message says why)."""


def _login_role(conn: psycopg.Connection, name: str, password: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute("SET password_encryption = 'scram-sha-256'")
    conn.execute(sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
        sql.Identifier(name), sql.Literal(password)))


def create_roles(dsn: str, prefix: str = "datso", owner: bool = False) -> dict[str, str]:
    """Create (or reset the passwords of) the roles on the database of `dsn`; {role: libpq URL with password}."""
    if not _PREFIX.match(prefix):
        raise RolesError(f"invalid role prefix {prefix!r}: lower-case letters, digits and _ only")
    info = conninfo_to_dict(dsn)
    db = str(info.get("dbname") or "")
    names = {kind: f"{prefix}_{kind}" for kind in ("reader", "writer", *(("owner",) if owner else ()))}
    passwords = {kind: secrets.token_urlsafe(18) for kind in names}
    r, w = sql.Identifier(names["reader"]), sql.Identifier(names["writer"])
    d = sql.Identifier(db)
    with connect("writer", dsn=dsn) as conn:
        for kind, name in names.items():
            _login_role(conn, name, passwords[kind])
        for role in (r, w):
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(d, role))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
            conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(role))
        conn.execute(sql.SQL("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(w))
        conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(w))
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT INSERT, UPDATE, DELETE ON TABLES "
                             "TO {}").format(w))
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES "
                             "TO {}").format(w))
        if owner:
            o = sql.Identifier(names["owner"])
            conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(d, o))
            conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(o))
            rows = conn.execute("SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm') "
                                "AND c.relname <> 'spatial_ref_sys' AND NOT EXISTS (SELECT 1 FROM pg_depend dep "
                                "WHERE dep.objid = c.oid AND dep.deptype IN ('e', 'a', 'i'))").fetchall()
            for rel, kind in rows:
                what = "SEQUENCE" if kind == "S" else "TABLE"
                conn.execute(sql.SQL("ALTER " + what + " {} OWNER TO {}").format(sql.Identifier(rel), o))
    base = {k: v for k, v in info.items() if k not in ("user", "password")}
    return {kind: _url(base, names[kind], passwords[kind]) for kind in names}


def _url(base: dict[str, Any], user: str, password: str) -> str:
    host, port, db = base.get("host", "127.0.0.1"), base.get("port", "5432"), base.get("dbname", "")
    return f"postgresql://{user}:{password}@{host}:{port}/{db}"


def drop_roles(dsn: str, prefix: str = "datso") -> None:
    """Drop the roles (and their grants) again."""
    if not _PREFIX.match(prefix):
        raise RolesError(f"invalid role prefix {prefix!r}")
    with connect("writer", dsn=dsn, autocommit=True) as conn:
        for kind in ("reader", "writer", "owner"):
            name = f"{prefix}_{kind}"
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))

