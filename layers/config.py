"""Settings shared by every face of datso (CLI, API, tiles), read from the environment.

`DATABASE_URL` (or `DATSO_DATABASE_URL`) points datso at an existing PostGIS; when it is unset datso uses
its own embedded cluster in `DATSO_DATA_DIR` (default `.data`), listening on 127.0.0.1:`DATSO_PG_PORT`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Sessions that serve reads run without parallel query and JIT: measured on this project's machines,
# parallel workers add 35-55 ms to small queries and JIT ~86 ms to a dense tile query.
API_SESSION_SETTINGS: dict[str, str] = {"jit": "off", "max_parallel_workers_per_gather": "0"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATSO_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "DATSO_DATABASE_URL")
    )
    database_read_url: str | None = Field(default=None, validation_alias="DATSO_DATABASE_READ_URL", description="reads go here when set; writes always to DATABASE_URL")
    data_dir: Path = Path(".data")
    pg_port: int = 5433
    pg_bin: Path | None = None
    db_name: str = "datso"

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pg_data(self) -> Path:
        return (self.data_dir / "pg").resolve()

    def dsn(self, dbname: str | None = None) -> str:
        """A libpq URL (postgresql://...) for asyncpg/psycopg."""
        if self.database_url:
            url = self.database_url
            for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://", "postgres://"):
                if url.startswith(prefix):
                    url = "postgresql://" + url[len(prefix) :]
            if dbname:
                base, _, query = url.partition("?")
                url = base.rsplit("/", 1)[0] + "/" + dbname + (("?" + query) if query else "")
            return url
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{dbname or self.db_name}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
