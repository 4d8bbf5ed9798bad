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


TRUST_HBA = """# made by initdb -A trust (a cluster from before scram)
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
"""


def test_an_old_trust_cluster_is_left_alone_and_status_says_how_to_switch(tmp_path: Path) -> None:
    """A cluster made before datso asked for a password (no pg-password, `trust` on 127.0.0.1): the derived URL
    has no password (it keeps working as it did), and `datso db status` names the TCP method and the way to
    scram-sha-256. Nothing is rewritten."""
    from layers.store import pgcluster

    data = tmp_path / "pg"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    (data / "pg_hba.conf").write_text(TRUST_HBA)
    s = Settings().model_copy(update={"database_url": None, "data_dir": tmp_path, "pg_port": 5999})
    assert pgcluster.tcp_auth(data) == "trust"
    assert s.pg_password() is None and s.dsn() == f"postgresql://postgres@127.0.0.1:5999/{s.db_name}"
    env = {"DATSO_DATA_DIR": str(tmp_path), "DATSO_PG_PORT": "5999"}
    r = subprocess.run([*DATSO, "db", "status"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={k: v for k, v in {**os.environ, **env}.items() if k != "DATABASE_URL"})
    assert r.returncode == 1                                   # not running (no server behind this folder)
    assert "TCP auth trust" in r.stdout
    assert "scram-sha-256" in r.stderr and str(tmp_path / "pg-password") in r.stderr.replace("\n", "")
    assert (data / "pg_hba.conf").read_text() == TRUST_HBA and not (tmp_path / "pg-password").exists()
    # the same folder with a password file: the URL carries it (quoted)
    (tmp_path / "pg-password").write_text("a/b c\n")
    assert s.dsn() == f"postgresql://postgres:a%2Fb%20c@127.0.0.1:5999/{s.db_name}"
    (data / "pg_hba.conf").write_text(TRUST_HBA.replace("127.0.0.1/32            trust",
                                                        "127.0.0.1/32            scram-sha-256"))
    assert pgcluster.tcp_auth(data) == "scram-sha-256"
