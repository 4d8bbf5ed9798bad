"""API settings (environment, prefix DATSO_)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import orjson
from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _list(value: Any) -> Any:
    """A list setting from the environment: JSON (`["a","b"]`) or comma-separated (`a,b`)."""
    if isinstance(value, str):
        text = value.strip()
        return orjson.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    return value


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATSO_", env_file=".env", extra="ignore")

    title: str = "datso — đất số"
    default_lang: str = "vi"
    default_limit: int = 10
    max_limit: int = 10000
    cache_control: str = "public, max-age=60"
    tile_cache_control: str = "public, max-age=300"
    # browser and HTTP defaults (api/security.py)
    cors_origins: Annotated[list[str], NoDecode] = []   # origins allowed cross-origin reads; none: CORS off
    cors_allow_writes: bool = False                      # also writes (with keys) from those origins; not with *
    trusted_hosts: Annotated[list[str] | None, NoDecode] = None   # Host names accepted (see api/security.py)
    referrer_policy: str = "strict-origin-when-cross-origin"
    rate_limit_enabled: bool = True
    rate_limit_storage_uri: str = "memory://"            # limits storage: memory://, redis://..., memcached://...
    rate_limit_auth_failures: str = "10/minute"          # wrong API keys per client IP
    rate_limit_search: str = "120/minute"                # /search per client IP
    rate_limit_exports: str = "30/minute"                # Folium exports /maps/{id}.html per client IP
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
    # writes (OGC API Part 4): a psycopg pool opened on first write, and bounds on written geometries
    write_pool_min_size: int = 0
    write_pool_max_size: int = 4
    write_statement_timeout_ms: int = 15_000
    max_geometry_vertices: int = 20_000
    max_geometry_bytes: int = 1_000_000

    _lists = field_validator("cors_origins", "trusted_hosts", mode="before")(_list)

    @model_validator(mode="after")
    def _cors_writes_need_named_origins(self) -> ApiSettings:
        if self.cors_allow_writes and "*" in self.cors_origins:
            raise ValueError("DATSO_CORS_ALLOW_WRITES needs named origins in DATSO_CORS_ORIGINS, not '*'")
        return self


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
