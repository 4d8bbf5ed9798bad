"""Tile settings (environment, prefix `DATSO_TILE_`): cache, MVT geometry parameters, caps, archive."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TileSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATSO_TILE_", env_file=".env", extra="ignore")

    cache_enabled: bool = True                   # DATSO_TILE_CACHE_ENABLED=false: every request builds its tile
    cache_bytes: int = Field(default=256 * 1024 * 1024, ge=0)  # in-process LRU bound (gzip bytes + keys)
    cache_dir: Path | None = None                # optional persistent cache shared by processes on one host
    cache_control: str = "public, max-age=300"
    extent: int = Field(default=4096, ge=256, le=16384)
    buffer: int = Field(default=64, ge=0, le=1024)   # in tile units (of `extent`)
    max_features: int = Field(default=20000, ge=1)   # per layer and tile; the largest features are kept
    max_tile_bytes: int = Field(default=500_000, ge=10_000)  # a tile above this is rebuilt with a lower cap
    archive: Path | None = None                  # a seeded .pmtiles/.mbtiles served at /tiles/archive/...
    listen: bool = True                          # LISTEN for edits (invalidation); without it nothing is cached
    gzip_level: int = Field(default=6, ge=1, le=9)


@lru_cache
def get_tile_settings() -> TileSettings:
    return TileSettings()
