"""Database access helpers: engines, migrations, and the per-session settings every connection uses."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine

from layers.config import API_SESSION_SETTINGS, Settings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def session_options() -> str:
    return " ".join(f"-c {k}={v}" for k, v in API_SESSION_SETTINGS.items())


def make_engine(settings: Settings | None = None, dbname: str | None = None) -> Engine:
    s = settings or get_settings()
    return create_engine(s.sqlalchemy_url(dbname), pool_pre_ping=True,
                         connect_args={"options": session_options()})


@lru_cache
def engine() -> Engine:
    return make_engine()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(settings: Settings | None = None, dbname: str | None = None, revision: str = "head") -> None:
    s = settings or get_settings()
    command.upgrade(alembic_config(s.sqlalchemy_url(dbname)), revision)


def downgrade(settings: Settings | None = None, dbname: str | None = None, revision: str = "base") -> None:
    s = settings or get_settings()
    command.downgrade(alembic_config(s.sqlalchemy_url(dbname)), revision)
