"""A project-local PostgreSQL + PostGIS cluster (`datso db start|stop|status|url`).

The cluster lives in `<data_dir>/pg` with its unix socket in the same folder and TCP on 127.0.0.1.
`initdb` and `pg_ctl` refuse to run as root, so as root they run as the `postgres` user (runuser).

A new cluster asks for a password over TCP (`scram-sha-256`): `init` generates one into
`<data_dir>/pg-password` (mode 0600) and `Settings.dsn()` puts it in the URL it derives, so nothing else changes.
The unix socket (in `<data_dir>/pg`, reachable only by who can enter that 0700 folder) stays `trust` for the
operator. A cluster made before this (no password file, `trust` on 127.0.0.1) keeps working unchanged;
`tcp_auth` tells which it is and `datso db status` says how to switch (docs/operations.md).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from layers.settings import Settings
from layers.store.connect import connect, url
from layers.store.sql import quote_ident


class ClusterError(RuntimeError):
    """The embedded cluster could not be created, started or reached."""


def find_pg_bin(settings: Settings) -> Path:
    if settings.pg_bin:
        return settings.pg_bin
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for c in reversed(candidates):
        if (Path(c) / "initdb").exists():
            return Path(c)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/install-system-deps.sh, "
        "set DATSO_PG_BIN, or set DATABASE_URL to use an existing PostGIS."
    )


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_as_owner(cmd), capture_output=True, text=True, check=False)


@dataclass
class Status:
    initialised: bool
    running: bool
    data_dir: Path
    port: int
    tcp_auth: str = ""   # pg_hba.conf's method for 127.0.0.1 ("scram-sha-256", "trust", ...); "" unknown
    standby: bool = False

    def __str__(self) -> str:
        state = "running" if self.running else ("stopped" if self.initialised else "not initialised")
        auth = f", TCP auth {self.tcp_auth}" if self.tcp_auth else ""
        kind = "embedded PostgreSQL hot standby" if self.standby else "embedded PostgreSQL"
        return f"{kind} {state}: data {self.data_dir}, port {self.port}{auth}"


def status(settings: Settings) -> Status:
    data = settings.pg_data
    initialised = (data / "PG_VERSION").exists()
    running = False
    if initialised:
        res = _run([str(find_pg_bin(settings) / "pg_ctl"), "-D", str(data), "status"])
        running = res.returncode == 0
    return Status(initialised, running, data, settings.pg_port, tcp_auth(data) if initialised else "",
                  is_standby(data))


_HBA_HOST = re.compile(r"^\s*host\S*\s+\S+\s+\S+\s+(127\.0\.0\.1/32|127\.0\.0\.1\s+255\S*)\s+(\S+)")


def tcp_auth(data: Path) -> str:
    """The authentication method pg_hba.conf gives TCP connections from 127.0.0.1 (its first matching line)."""
    try:
        text = (data / "pg_hba.conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        m = _HBA_HOST.match(line)
        if m:
            return m.group(2)
    return ""


def _prepare_dir(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for p in [data, *data.parents]:
            if p == Path("/"):
                break
            mode = p.stat().st_mode
            if not mode & 0o001:  # postgres must be able to traverse every parent folder
                os.chmod(p, mode | 0o011)
        os.chown(data, pw.pw_uid, pw.pw_gid)
    os.chmod(data, 0o700)


def _write_private(path: Path, text: str, owner_postgres: bool = False) -> None:
    """Write `text` to `path` readable by its owner only (0600 from the start, no window)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)
    if owner_postgres and os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def init(settings: Settings) -> None:
    data = settings.pg_data
    if (data / "PG_VERSION").exists():
        return
    _prepare_dir(data)
    secret = settings.pg_password()
    if secret is None:
        secret = secrets.token_urlsafe(24)
        _write_private(settings.pg_password_file, secret + "\n")
    pwfile = data.parent / "initdb-pwfile"   # initdb (as postgres) reads it; removed at once
    _write_private(pwfile, secret + "\n", owner_postgres=True)
    try:
        res = _run([str(find_pg_bin(settings) / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                    "-E", "UTF8", "--locale=C.UTF-8"])
    finally:
        pwfile.unlink(missing_ok=True)
    if res.returncode != 0:
        raise ClusterError(f"initdb failed:\n{res.stdout}\n{res.stderr}")
    with open(data / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write(
            "\n# datso defaults (see docs/architecture.md)\n"
            "jit = off\nmax_parallel_workers_per_gather = 0\nshared_buffers = 512MB\n"
            "work_mem = 32MB\nmaintenance_work_mem = 512MB\nmax_wal_size = 4GB\nfsync = on\n"
            "synchronous_commit = off\nmax_connections = 200\n"
        )


def start(settings: Settings) -> Status:
    if not settings.embedded:
        raise ClusterError("DATABASE_URL is set: datso uses that PostGIS and starts no local cluster.")
    init(settings)
    st = status(settings)
    if not st.running:
        data = settings.pg_data
        opts = f"-p {settings.pg_port} -k {data} -c listen_addresses=127.0.0.1"
        res = _run([str(find_pg_bin(settings) / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"),
                    "-w", "-t", "60", "-o", opts, "start"])
        if res.returncode != 0:
            log = (data / "server.log").read_text(errors="replace")[-2000:] if (data / "server.log").exists() else ""
            raise ClusterError(f"pg_ctl start failed:\n{res.stdout}\n{res.stderr}\n{log}")
    if is_standby(settings.pg_data):     # a replica is read-only: it has every database of its primary
        wait_ready(url("writer", settings, dbname="postgres"))
    else:
        ensure_database(settings, settings.db_name)
    return status(settings)


def is_standby(data: Path) -> bool:
    """A hot standby (made by `make_replica`: pg_basebackup -R wrote standby.signal)."""
    return (data / "standby.signal").exists()


def make_replica(primary: Settings, replica: Settings) -> None:
    """A streaming hot standby of the running embedded cluster `primary` in `replica`'s data folder, with
    `pg_basebackup -R` (PostgreSQL's own tool: it copies the cluster and writes `primary_conninfo` and
    `standby.signal`); the password file is copied too (the standby shares the primary's roles). Start it with
    `start(replica)` (its port: `replica.pg_port`)."""
    data = replica.pg_data
    if (data / "PG_VERSION").exists():
        raise ClusterError(f"{data} already holds a cluster")
    if not status(primary).running:
        raise ClusterError(f"the primary ({primary.pg_data}) is not running")
    if data.exists() and any(data.iterdir()):
        raise ClusterError(f"{data} is not empty")
    _prepare_dir(data)
    env = {**os.environ, "PGAPPNAME": "datso-basebackup"}
    secret = primary.pg_password()
    if secret:
        env["PGPASSWORD"] = secret
    cmd = [str(find_pg_bin(primary) / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-c", "fast",
           "-h", "127.0.0.1", "-p", str(primary.pg_port), "-U", "postgres", "--no-password"]
    res = subprocess.run(_as_owner(cmd), capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise ClusterError(f"pg_basebackup failed:\n{res.stdout}\n{res.stderr}")
    for leftover in ("server.log", "postmaster.opts"):
        (data / leftover).unlink(missing_ok=True)
    if secret and replica.pg_password_file != primary.pg_password_file:
        _write_private(replica.pg_password_file, secret + "\n")


def stop(settings: Settings) -> Status:
    st = status(settings)
    if st.running:
        res = _run([str(find_pg_bin(settings) / "pg_ctl"), "-D", str(settings.pg_data), "-m", "fast", "-w", "stop"])
        if res.returncode != 0:
            raise ClusterError(f"pg_ctl stop failed:\n{res.stdout}\n{res.stderr}")
    return status(settings)


def wait_ready(dsn: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with connect("writer", dsn=dsn, connect_timeout=3):
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.2)
    raise ClusterError(f"database not reachable at {dsn}: {last}")


def ensure_database(settings: Settings, name: str) -> None:
    """Create database `name` (with PostGIS) if missing. Name must be a plain identifier."""
    if not name.replace("_", "").isalnum():
        raise ClusterError(f"invalid database name {name!r}")
    wait_ready(url("writer", settings, dbname="postgres"))
    with connect("writer", settings=settings, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {quote_ident(name)}")  # noqa: S608 - name checked above
    with connect("writer", settings=settings, dbname=name, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def drop_database(settings: Settings, name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ClusterError(f"invalid database name {name!r}")
    with connect("writer", settings=settings, dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")  # noqa: S608 - name checked above
