"""Shared fixtures: a real PostGIS test database (migrated), the sample province loaded into it, the app
over ASGI, and a live uvicorn server for clients that need a socket (OWSLib, GDAL, Chromium).

The database is `datso_test` (one per xdist worker) on the cluster `datso db start` runs, or on the
server `DATABASE_URL` names.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster

# property-based tests: a brief run in `make test` ("ci"), a long one in `make fuzz` (HYPOTHESIS_PROFILE=fuzz)
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
hypothesis_settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=_SLOW_OK,
                                     derandomize=True)
hypothesis_settings.register_profile("fuzz", max_examples=5000, deadline=None, suppress_health_check=_SLOW_OK)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# the TestClient's Host is `testserver`: trusted here (DATSO_TRUSTED_HOSTS defaults to the loopback names only)
os.environ.setdefault("DATSO_TRUSTED_HOSTS", "localhost,127.0.0.1,::1,testserver")
# the suite hammers /search, exports and wrong keys from one address: limits far above it (tests/test_security.py
# builds apps with strict limits of its own)
for _kind in ("AUTH_FAILURES", "SEARCH", "EXPORTS", "LOGIN", "TRACE"):
    os.environ.setdefault(f"DATSO_RATE_LIMIT_{_kind}", "100000/minute")


def _test_db_name() -> str:
    """`datso_test` (one per xdist worker); `DATSO_TEST_DB` names another, so two checkouts can test at once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return os.environ.get("DATSO_TEST_DB", "datso_test") + (f"_{worker}" if worker else "")


@pytest.fixture(scope="session")
def settings() -> Settings:
    base = Settings()
    if base.embedded:
        pgcluster.start(base)
    name = _test_db_name()
    s = base.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    return s


@pytest.fixture(scope="session")
def empty_db(settings: Settings) -> str:
    """A freshly created, migrated, empty test database; returns its libpq DSN."""
    name = settings.db_name
    pgcluster.drop_database(settings, name)
    pgcluster.ensure_database(settings, name)
    dbmod.migrate(settings)
    return settings.dsn()


@pytest.fixture(scope="session")
def sample_db(empty_db: str, settings: Settings) -> str:
    """The test database with the small synthetic sample province loaded (seed 7)."""
    from sample_data.generate import load_sample

    load_sample(empty_db, size="small", seed=7, force=True)
    return empty_db


@pytest.fixture()
def conn(sample_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(sample_db) as c:
        yield c


@pytest.fixture(scope="session")
def app(sample_db: str, settings: Settings):  # type: ignore[no-untyped-def]
    from api.app import create_app

    return create_app(settings=settings, dsn=sample_db)


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, app, port: int) -> None:  # type: ignore[no-untyped-def]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(sample_db: str, settings: Settings) -> Iterator[LiveServer]:
    """A real uvicorn on its own thread and event loop, with its own app (an asyncpg pool belongs to one
    event loop: sharing the TestClient's app between loops crashed)."""
    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


@contextlib.contextmanager
def rows_removed_after(dsn: str, tables: tuple[str, ...] = ("growing_areas", "packing_facilities")) -> Iterator[None]:
    """Remove, when the block ends, the rows of `tables` made inside it that are not part of the synthetic sample
    (their records and links go with them: ON DELETE CASCADE). Other modules count and read the sample."""
    assert all(t.isidentifier() for t in tables)
    with psycopg.connect(dsn) as c:
        tops = {t: int(c.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0])  # type: ignore[index]  # noqa: S608
                for t in tables}
    try:
        yield
    finally:
        with psycopg.connect(dsn) as c:
            for t, top in tops.items():
                c.execute(f"DELETE FROM {t} WHERE id > %s AND NOT synthetic", [top])  # noqa: S608


def table_fingerprint(dsn: str, table: str) -> tuple[int, str]:
    """(row count, md5 of all rows) — to assert that a refused write changed nothing."""
    assert table.isidentifier()
    with psycopg.connect(dsn) as c:
        row = c.execute(
            f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"  # noqa: S608
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])
