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
    # faults (docs/reliability.md): statement_timeout per request class, in seconds
    read_statement_timeout: float = 5.0      # items, tiles, search, pages, metadata
    export_statement_timeout: float = 60.0   # Folium maps, csv/gpkg/fgb downloads
    db_acquire_timeout: float = 10.0         # s waiting for a free pooled connection before a 503
    export_concurrency: int = 2              # exports rendered at once per worker (others wait)
    export_processes: bool = True            # Folium maps in worker processes (false: threads)
    export_nice: int = 10                    # CPU priority of those processes (tiles first)
    retry_after: int = 5                     # Retry-After (s) of a 503 while the database cannot answer


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
