"""`datso db ...` and `datso sample load` as a user runs them (subprocess, real cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from layers.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATSO = [sys.executable, "-m", "cli.main"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DATSO, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_db_url_and_status(settings: Settings) -> None:
    r = run("db", "url")
    assert r.returncode == 0 and r.stdout.strip().startswith("postgresql://")
    r = run("db", "status")
    assert r.returncode == 0, r.stderr


def test_external_database_url_starts_nothing(settings: Settings, empty_db: str) -> None:
    env = {"DATABASE_URL": settings.dsn(), "DATSO_DATA_DIR": str(ROOT / ".data" / "never-created")}
    r = run("db", "start", env=env)
    assert r.returncode == 0, r.stderr
    assert "DATABASE_URL is set" in r.stderr
    assert not (ROOT / ".data" / "never-created").exists()
    r = run("db", "url", env=env)
    assert r.stdout.strip() == settings.dsn()


def test_sample_load_refuses_unknown_size() -> None:
    r = run("sample", "load", "--size", "huge")
    assert r.returncode == 1 and "unknown size" in r.stderr
