"""Logical backups with PostgreSQL's own tools (`datso db backup` / `datso db restore`).

`backup` runs `pg_dump --format=custom --verbose` and reports progress per table: the tables to dump are counted
first (`pg_class`), then each `dumping contents of table` line pg_dump writes to stderr advances the count.
`restore` creates a NEW database by name (refusing an existing one unless `force`, which drops it first) and
runs `pg_restore --exit-on-error --verbose`, counting `processing data for table` lines against the archive's
TABLE DATA entries (`pg_restore --list`). A failed restore drops the half-made database again.

`fingerprint` is the restore drill's check: per table of the user schemas, the row count and the md5 of the
rows ordered by their text form. Point-in-time recovery (WAL archiving) is the operators' job: docs/operations.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from layers.settings import Settings
from layers.store.connect import connect, url
from layers.store.pgcluster import find_pg_bin, wait_ready

Progress = Callable[[int, int, str], None]
"""progress(done, total, table): called after each table's data is dumped or restored."""

_DUMPING = re.compile(r'dumping contents of table "?([^"\s]+)"?')
_RESTORING = re.compile(r'processing data for table "?([^"\s]+)"?')
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%'"


class BackupError(RuntimeError):
    """A backup or restore could not be done (the message says why)."""


def _tool(settings: Settings, name: str) -> str:
    """pg_dump / pg_restore: next to the embedded cluster's binaries (same major version), else on PATH."""
    try:
        cand = find_pg_bin(settings) / name
        if cand.exists():
            return str(cand)
    except RuntimeError:
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools or set DATSO_PG_BIN")
    return found


def _stream(cmd: list[str], pattern: re.Pattern[str], total: int, progress: Progress | None) -> tuple[int, str]:
    """Run `cmd`, calling `progress` for each stderr line matching `pattern`; (return code, stderr tail)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # noqa: S603
    assert proc.stderr is not None
    done = 0
    tail: list[str] = []
    for line in proc.stderr:
        m = pattern.search(line)
        if m:
            done += 1
            if progress:
                progress(done, max(total, done), m.group(1))
        else:
            tail = (tail + [line.rstrip()])[-20:]
    return proc.wait(), "\n".join(tail)


def count_tables(dsn: str) -> int:
    """Tables (with data pg_dump will dump) in the user schemas of `dsn`."""
    with connect("writer", dsn=dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "  # noqa: S608 - constant
            f"WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMAS}").fetchone()
    return int(row[0]) if row else 0


def backup(settings: Settings, dsn: str, out: Path, progress: Progress | None = None) -> int:
    """Dump `dsn` to `out` (pg_dump custom format). Returns the number of tables whose data was dumped."""
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise BackupError(f"folder {out.parent} does not exist")
    total = count_tables(dsn)
    partial = out.with_name(out.name + ".partial")
    cmd = [_tool(settings, "pg_dump"), "--format=custom", "--verbose", "--file", str(partial), "--dbname", dsn]
    rc, err = _stream(cmd, _DUMPING, total, progress)
    if rc != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed (exit {rc}):\n{err}")
    partial.replace(out)
    return total


def archive_tables(settings: Settings, archive: Path) -> int:
    """TABLE DATA entries in a custom-format archive (`pg_restore --list`); raises when it is not one."""
    res = subprocess.run([_tool(settings, "pg_restore"), "--list", str(archive)],  # noqa: S603
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise BackupError(f"{archive} is not a pg_dump custom-format archive: {res.stderr.strip()}")
    return sum(1 for line in res.stdout.splitlines() if not line.startswith(";") and " TABLE DATA " in line)


def database_exists(settings: Settings, name: str) -> bool:
    with connect("writer", settings=settings, dbname="postgres") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def restore(settings: Settings, archive: Path, name: str, *, force: bool = False,
            progress: Progress | None = None) -> int:
    """Restore `archive` into a new database `name` on the primary. Returns the number of tables restored."""
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(f"file {archive} not found")
    if not _NAME.match(name):
        raise BackupError(f"invalid database name {name!r}: lower-case letters, digits and _ only")
    if name == "postgres" or name in ("template0", "template1"):
        raise BackupError(f"refusing to restore over the system database {name!r}")
    total = archive_tables(settings, archive)
    wait_ready(url("writer", settings, dbname="postgres"))
    ident = sql.Identifier(name)
    with connect("writer", settings=settings, dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            if not force:
                raise BackupError(f"database {name!r} already exists: choose another --db or add --force "
                                  "to replace it")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(ident))
    target = url("writer", settings, dbname=name)
    # materialized views are refreshed after the restore, in a normal session: pg_restore runs with an empty
    # search_path, in which a view's query (ts_stat's text naming tables, datso_fold) finds nothing
    toc = subprocess.run([_tool(settings, "pg_restore"), "--list", str(archive)], capture_output=True, text=True,
                         check=False)
    if toc.returncode != 0:
        raise BackupError(f"{archive} is not a pg_dump custom-format archive: {toc.stderr.strip()}")
    views = [ln.split()[-3:-1] for ln in toc.stdout.splitlines() if " MATERIALIZED VIEW DATA " in ln]
    listing = Path(tempfile.mkdtemp(prefix="datso-restore-")) / "toc.list"
    listing.write_text("\n".join(ln for ln in toc.stdout.splitlines() if " MATERIALIZED VIEW DATA " not in ln) + "\n")
    cmd = [_tool(settings, "pg_restore"), "--exit-on-error", "--verbose", "--use-list", str(listing),
           "--dbname", target, str(archive)]
    rc, err = _stream(cmd, _RESTORING, total, progress)
    shutil.rmtree(listing.parent, ignore_errors=True)
    if rc == 0 and views:
        try:
            with connect("writer", dsn=target, autocommit=True) as conn:
                for schema, view in views:
                    conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}.{}").format(sql.Identifier(schema),
                                                                                 sql.Identifier(view)))
        except psycopg.Error as exc:
            rc, err = 1, f"refreshing the materialized views: {exc}"
    if rc != 0:
        with connect("writer", settings=settings, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        raise BackupError(f"pg_restore failed (exit {rc}); database {name!r} removed again:\n{err}")
    return total


def fingerprint(dsn: str) -> dict[str, tuple[int, str]]:
    """{schema.table: (row count, md5 of its rows ordered by their text form)} for every user table."""
    out: dict[str, tuple[int, str]] = {}
    with connect("writer", dsn=dsn) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "  # noqa: S608
            f"WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMAS} ORDER BY 1, 2").fetchall()
        for schema, table in tables:
            q = sql.SQL("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                        "FROM {}.{} t").format(sql.Identifier(schema), sql.Identifier(table))
            row = conn.execute(q).fetchone()
            assert row is not None
            out[f"{schema}.{table}"] = (int(row[0]), str(row[1]))
    return out


def sequences(dsn: str) -> dict[str, int | None]:
    """{schema.sequence: last_value} so a restored database hands out the same next ids."""
    with connect("writer", dsn=dsn) as conn:
        rows = conn.execute("SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences "
                            "ORDER BY 1").fetchall()
    return {str(k): (int(v) if v is not None else None) for k, v in rows}
