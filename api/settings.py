"""API settings (environment, prefix DATSO_)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATSO_", env_file=".env", extra="ignore")

    title: str = "datso — đất số"
    default_lang: str = "vi"
    default_limit: int = 10
    max_limit: int = 10000
    cache_control: str = "public, max-age=60"
    tile_cache_control: str = "public, max-age=300"
    cors_origins: list[str] = ["*"]
    db_min_connections: int = 1
    db_max_connections: int = 10
    db_connect_timeout: float = 3.0
    max_body_bytes: int = 5_000_000
    public_url: str | None = None  # base URL for links when behind a proxy
    # writes (OGC API Part 4): a psycopg pool opened on first write, and bounds on written geometries
    write_pool_min_size: int = 0
    write_pool_max_size: int = 4
    write_statement_timeout_ms: int = 15_000
    max_geometry_vertices: int = 20_000
    max_geometry_bytes: int = 1_000_000


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
