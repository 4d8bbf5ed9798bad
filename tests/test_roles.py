"""Least-privilege roles (opt-in, `datso db roles --create`): the reader cannot write, the writer cannot alter or
drop tables; both do what the API needs. Real PostgreSQL, real grants."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from layers.settings import Settings
from layers.store import roles

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def role_urls(sample_db: str, settings: Settings) -> Iterator[dict[str, str]]:
    prefix = settings.db_name + "_r"         # roles are cluster-wide: named after the test database
    roles.drop_roles(sample_db, prefix)
    r = subprocess.run([sys.executable, "-m", "cli.main", "db", "roles", "--create", "--prefix", prefix],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "DATABASE_URL": sample_db},
                       timeout=120)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split("=", 1) for line in r.stdout.splitlines() if line and not line.startswith("#"))
    assert set(lines) == {"DATABASE_URL", "DATSO_DATABASE_READ_URL"}
    yield {"writer": lines["DATABASE_URL"], "reader": lines["DATSO_DATABASE_READ_URL"], "prefix": prefix}
    roles.drop_roles(sample_db, prefix)


def test_reader_reads_but_cannot_write(role_urls: dict[str, str]) -> None:
    with psycopg.connect(role_urls["reader"]) as c:
        assert c.execute("SELECT current_user").fetchone() == (role_urls["prefix"] + "_reader",)
        row = c.execute("SELECT count(*) FROM parcels").fetchone()
        assert row is not None and row[0] > 0
    for stmt in ("UPDATE parcels SET address = address WHERE id = (SELECT min(id) FROM parcels)",
                 "DELETE FROM auction_plots WHERE false", "INSERT INTO history (layer) VALUES ('x')",
                 "ALTER TABLE parcels ADD COLUMN x int", "CREATE TABLE nope (x int)"):
        with psycopg.connect(role_urls["reader"]) as c, pytest.raises(errors.InsufficientPrivilege):
            c.execute(stmt)


def test_writer_writes_but_cannot_alter(role_urls: dict[str, str], sample_db: str) -> None:
    with psycopg.connect(role_urls["writer"]) as c:
        assert c.execute("SELECT current_user").fetchone() == (role_urls["prefix"] + "_writer",)
        n = c.execute("UPDATE parcels SET address = address WHERE id = (SELECT min(id) FROM parcels)").rowcount
        assert n == 1
        c.rollback()
    for stmt in ("ALTER TABLE parcels ADD COLUMN x int", "DROP TABLE auction_plots", "TRUNCATE parcels",
                 "ALTER TABLE history DISABLE TRIGGER ALL", "CREATE INDEX ON parcels (address)"):
        with psycopg.connect(role_urls["writer"]) as c, pytest.raises(errors.InsufficientPrivilege):
            c.execute(stmt)
    # nothing changed
    with psycopg.connect(sample_db) as c:
        cols = c.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'parcels' "
                         "AND column_name = 'x'").fetchone()
        assert cols == (0,)
        assert c.execute("SELECT to_regclass('auction_plots')").fetchone() != (None,)


def test_roles_passwords_are_scram(role_urls: dict[str, str], sample_db: str) -> None:
    with psycopg.connect(sample_db) as c:
        rows = c.execute("SELECT rolname, left(rolpassword, 14), rolsuper FROM pg_authid WHERE rolname LIKE %s",
                         (role_urls["prefix"] + "_%",)).fetchall()
    assert {r[0] for r in rows} == {role_urls["prefix"] + "_reader", role_urls["prefix"] + "_writer"}
    assert all(r[1] == "SCRAM-SHA-256$" and r[2] is False for r in rows)


def test_roles_needs_create_flag(sample_db: str) -> None:
    r = subprocess.run([sys.executable, "-m", "cli.main", "db", "roles"], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "DATABASE_URL": sample_db}, timeout=60)
    assert r.returncode == 1 and "--create" in r.stderr


def test_owner_role_owns_the_tables_and_may_alter(settings: Settings) -> None:
    from layers.store import db as dbmod
    from layers.store import pgcluster

    name = settings.db_name + "_roles"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    dbmod.migrate(s)
    prefix = name + "_o"
    try:
        urls = roles.create_roles(s.dsn(), prefix=prefix, owner=True)
        with psycopg.connect(s.dsn()) as c:
            owners = dict(c.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' "
                                    "AND tablename IN ('parcels', 'history', 'alembic_version')").fetchall())
        assert owners == {t: prefix + "_owner" for t in ("parcels", "history", "alembic_version")}
        with psycopg.connect(urls["owner"]) as c:
            c.execute("ALTER TABLE parcels ADD COLUMN x int")
            c.rollback()
        with psycopg.connect(urls["writer"]) as c, pytest.raises(errors.InsufficientPrivilege):
            c.execute("ALTER TABLE parcels ADD COLUMN x int")
    finally:
        roles.drop_roles(s.dsn(), prefix)
        pgcluster.drop_database(s, name)
