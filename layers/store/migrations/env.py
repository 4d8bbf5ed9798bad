from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from layers.store.connect import sqlalchemy_connect_args
from layers.store.migrations_filter import include_object
from layers.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    sa_url = config.get_main_option("sqlalchemy.url") or ""
    engine = create_engine(sa_url, poolclass=pool.NullPool, connect_args=sqlalchemy_connect_args(sa_url))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          include_object=include_object, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
