"""Migrations: upgrade and downgrade the schema with Alembic (`migrations/`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from layers.settings import Settings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


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
