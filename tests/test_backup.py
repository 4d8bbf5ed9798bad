"""Backups with pg_dump/pg_restore and the restore drill: `datso db backup` then `datso db restore` into a new
database, and every table's row count and md5 of its ordered rows compared between source and restored."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from layers.settings import Settings
from layers.store import backup, pgcluster

ROOT = Path(__file__).resolve().parents[1]
DATSO = [sys.executable, "-m", "cli.main"]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it; stderr with rich's line wrapping undone."""
    r = subprocess.run([*DATSO, *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, **env, "COLUMNS": "200"}, timeout=300)
    r.stderr = " ".join(r.stderr.split())
    return r


@pytest.fixture()
def restored_name(settings: Settings) -> Iterator[str]:
    name = settings.db_name + "_restored"
    pgcluster.drop_database(settings, name)
    yield name
    pgcluster.drop_database(settings, name)


def test_restore_drill(sample_db: str, settings: Settings, tmp_path: Path, restored_name: str) -> None:
    env = {"DATABASE_URL": sample_db}
    archive = tmp_path / "datso.dump"
    r = run("db", "backup", "--out", str(archive), env=env)
    assert r.returncode == 0, r.stderr
    total = backup.count_tables(sample_db)
    assert total >= 5
    # progress: one line per table, the last one counting all of them
    assert f"dumped [{total}/{total}]" in r.stderr
    assert "public.parcels" in r.stderr or "parcels" in r.stderr
    assert archive.stat().st_size > 0 and not archive.with_name("datso.dump.partial").exists()
    assert backup.archive_tables(settings, archive) == total

    r = run("db", "restore", str(archive), "--db", restored_name, env=env)
    assert r.returncode == 0, r.stderr
    assert f"restored [{total}/{total}]" in r.stderr

    source, copy = backup.fingerprint(sample_db), backup.fingerprint(settings.dsn(restored_name))
    assert set(source) == set(copy)
    assert sum(n for n, _ in source.values()) > 100  # the sample province, not an empty schema
    for table in source:
        assert copy[table] == source[table], table
    assert backup.sequences(settings.dsn(restored_name)) == backup.sequences(sample_db)


def test_restore_refuses_existing_database_unless_force(sample_db: str, settings: Settings, tmp_path: Path,
                                                        restored_name: str) -> None:
    env = {"DATABASE_URL": sample_db}
    archive = tmp_path / "datso.dump"
    backup.backup(settings, sample_db, archive)
    # the default target is datso's own database: it exists, so nothing is touched
    before = backup.fingerprint(sample_db)
    r = run("db", "restore", str(archive), env=env)
    assert r.returncode == 1
    assert "already exists" in r.stderr and "--force" in r.stderr
    assert backup.fingerprint(sample_db) == before

    backup.restore(settings, archive, restored_name)
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.restore(settings, archive, restored_name)
    # --force replaces it (a row added to the copy is gone afterwards)
    with pgcluster.connect("writer", dsn=settings.dsn(restored_name)) as conn:
        conn.execute("DELETE FROM alembic_version")
    r = run("db", "restore", str(archive), "--db", restored_name, "--force", env=env)
    assert r.returncode == 0, r.stderr
    assert backup.fingerprint(settings.dsn(restored_name)) == before


def test_restore_rejects_bad_input(settings: Settings, tmp_path: Path, sample_db: str) -> None:
    env = {"DATABASE_URL": sample_db}
    r = run("db", "restore", str(tmp_path / "missing.dump"), "--db", "x_restore", env=env)
    assert r.returncode == 1 and "not found" in r.stderr
    junk = tmp_path / "junk.dump"
    junk.write_text("not an archive")
    r = run("db", "restore", str(junk), "--db", "x_restore", env=env)
    assert r.returncode == 1 and "not a pg_dump custom-format archive" in r.stderr
    assert not backup.database_exists(settings, "x_restore")
    r = run("db", "restore", str(junk), "--db", "bad; DROP", env=env)
    assert r.returncode == 1 and "invalid database name" in r.stderr
    r = run("db", "backup", "--out", str(tmp_path / "no" / "such" / "dir.dump"), env=env)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_restored_database_serves_the_api(sample_db: str, settings: Settings, tmp_path: Path,
                                          restored_name: str) -> None:
    from api.app import create_app

    archive = tmp_path / "datso.dump"
    backup.backup(settings, sample_db, archive)
    backup.restore(settings, archive, restored_name)
    dsn = settings.dsn(restored_name)
    s = settings.model_copy(update={"db_name": restored_name,
                                    "database_url": dsn if settings.database_url else None})
    with TestClient(create_app(settings=s, dsn=dsn)) as c:
        r = c.get("/collections/parcels/items", params={"limit": 3})
        assert r.status_code == 200, r.text
        assert len(r.json()["features"]) == 3
        assert r.json()["numberMatched"] == backup.fingerprint(dsn)["public.parcels"][0]
