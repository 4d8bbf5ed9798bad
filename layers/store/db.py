"""Migrations: upgrade and downgrade the schema with Alembic (`migrations/`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from layers.settings import Settings
from layers.store.connect import sqlalchemy_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(settings: Settings | None = None, dbname: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(sqlalchemy_url(settings, dbname)), revision)


def downgrade(settings: Settings | None = None, dbname: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(sqlalchemy_url(settings, dbname)), revision)
