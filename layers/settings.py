"""Every setting of datso, read from the environment (or a `.env` file) with pydantic-settings: one class per
concern, one cached `get_…()` accessor per class that a face reads on its own. `docs/settings.md` is generated
from these classes (`python -m layers.settings > docs/settings.md`) and tests/test_settings.py fails when it
is stale, so a setting cannot go undocumented.

| class | concern | prefix |
|---|---|---|
| `Settings` | the database and the embedded cluster (every face) | `DATSO_` (+ `DATABASE_URL`) |
| `ApiSettings` | the API: the union of the seven concern classes below, one object per app | `DATSO_` |
|   `HttpSettings` | titles, paging, caching, body size, public URL | `DATSO_` |
|   `SecuritySettings` | CORS, trusted hosts, referrer policy | `DATSO_` |
|   `RateLimitSettings` | per-IP limits on failed authentications and public lookups | `DATSO_RATE_LIMIT_…` |
|   `PoolSettings` | the API's asyncpg read pool | `DATSO_DB_…` |
|   `FaultSettings` | statement timeouts, export concurrency, Retry-After | `DATSO_` |
|   `WriteSettings` | transactions: the write pool and bounds on written geometries | `DATSO_` |
|   `AccountSettings` | sign-in sessions | `DATSO_` |
|   `RegistrationSettings` | registration checks, code patterns, uploads, expiry | `DATSO_REGISTRATION_…` |
| `ServerSettings` | `datso serve` (uvicorn) limits | `DATSO_` |
| `FilterLimits` | bounds on a CQL2 filter before any parser sees it | `DATSO_FILTER_` |
| `TileSettings` | vector tiles: cache, MVT parameters, caps, archive | `DATSO_TILE_` |
| `ImagerySettings` | raster imagery tiles | `DATSO_IMAGERY_…` |
| `MapSettings` | the web map page (basemap, zooms) | `DATSO_` |
| `ExportSettings` | Folium map exports (simplification, caps) | `DATSO_MAP_` |

`DATABASE_URL` (or `DATSO_DATABASE_URL`) points datso at an existing PostGIS; when it is unset datso uses
its own embedded cluster in `DATSO_DATA_DIR` (default `.data`), listening on 127.0.0.1:`DATSO_PG_PORT`.
Every environment variable name here is an interface: rename none.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Sessions that serve reads run without parallel query and JIT: measured on this project's machines,
# parallel workers add 35-55 ms to small queries and JIT ~86 ms to a dense tile query.
API_SESSION_SETTINGS: dict[str, str] = {"jit": "off", "max_parallel_workers_per_gather": "0"}

_CONFIG = SettingsConfigDict(env_prefix="DATSO_", env_file=".env", extra="ignore")


def _list(value: Any) -> Any:
    """A list setting from the environment: JSON (`["a","b"]`) or comma-separated (`a,b`)."""
    if isinstance(value, str):
        text = value.strip()
        return orjson.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    return value


# -- the database and the embedded cluster -----------------------------------------------------------------

class Settings(BaseSettings):
    """The database and the embedded cluster (every face: CLI, API, tiles)."""

    model_config = _CONFIG

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "DATSO_DATABASE_URL"),
        description="libpq URL of an existing PostGIS (writes, and reads too unless DATSO_DATABASE_READ_URL "
                    "is set); unset: datso starts its own embedded cluster")
    database_read_url: str | None = Field(default=None, description="reads go here when set; writes always to DATABASE_URL")
    database_listen_url: str | None = Field(default=None, description="the tile-invalidation LISTEN connects here: "
                                            "a DIRECT connection to the primary when DATABASE_URL goes through "
                                            "PgBouncer in transaction mode; unset: the primary's URL")
    database_pooler: bool = Field(default=False, description="the database URLs go through PgBouncer in transaction "
                                  "mode: no server-side prepared statements (asyncpg statement cache off, psycopg "
                                  "prepare_threshold off); see docs/operations.md")
    data_dir: Path = Field(default=Path(".data"), description="folder of the embedded cluster (`pg/` inside it)")
    pg_port: int = Field(default=5433, description="TCP port of the embedded cluster on 127.0.0.1")
    pg_bin: Path | None = Field(default=None, description="folder holding initdb/pg_ctl; unset: the newest "
                                                          "/usr/lib/postgresql/*/bin")
    db_name: str = Field(default="datso", description="database name on the embedded cluster")

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
        secret = self.pg_password()
        auth = f"postgres:{quote(secret, safe='')}" if secret else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.pg_port}/{dbname or self.db_name}"

    @property
    def pg_password_file(self) -> Path:
        """Where the embedded cluster keeps the superuser's password (0600, next to `pg/`)."""
        return (self.data_dir / "pg-password").resolve()

    def pg_password(self) -> str | None:
        """The embedded cluster's password (scram-sha-256 over TCP), or None for a cluster made before datso
        required one (it trusts 127.0.0.1; `datso db status` says how to switch)."""
        try:
            return self.pg_password_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None


@lru_cache
def get_settings() -> Settings:
    return Settings()


# -- the API (one ApiSettings object per app, made of the concerns below) ----------------------------------

class HttpSettings(BaseSettings):
    """The API's HTTP defaults: titles, paging, caching, request bodies and the public base URL."""

    model_config = _CONFIG

    title: str = Field(default="datso — đất số", description="title of the API (landing page, OpenAPI)")
    default_lang: str = Field(default="vi", description="not read: a response is in Vietnamese unless ?lang=en or "
                                                        "Accept-Language asks English")
    default_limit: int = Field(default=10, description="items per page when `limit` is not given")
    max_limit: int = Field(default=10000, description="largest `limit` accepted on items")
    download_max_features: int = Field(default=1_000_000, ge=1, description="most features in one download "
                                       "(items?f=csv|gpkg|fgb|shp|kml, f=geojson&download=true); more: 413 "
                                       "with the matching count")
    aggregate_max_groups: int = Field(default=5000, ge=1, description="most groups one /aggregate answers; more: "
                                      "413 (narrow the selection or group by fewer fields)")
    cache_control: str = Field(default="public, max-age=60",
                               description="Cache-Control of features, metadata and pages (tiles: DATSO_TILE_CACHE_CONTROL)")
    max_body_bytes: int = Field(default=5_000_000, description="largest request body accepted by a write, in bytes")
    public_url: str | None = Field(default=None, description="base URL of absolute links behind a proxy; unset: the "
                                                             "request's own scheme://host (when trusted)")


class SecuritySettings(BaseSettings):
    """Browser defaults (api/security.py): CORS from an allow-list, trusted Host names, Referrer-Policy."""

    model_config = _CONFIG

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=[], description="origins allowed cross-origin reads (comma-separated or JSON list); empty: CORS off")
    cors_allow_writes: bool = Field(default=False, description="also allow writes (with keys) from those origins; "
                                                               "needs named origins, not *")
    trusted_hosts: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Host names accepted (exact, *.suffix or *; comma-separated or JSON list); unset: "
                                  "localhost, 127.0.0.1, ::1 and the host of DATSO_PUBLIC_URL")
    referrer_policy: str = Field(default="strict-origin-when-cross-origin", description="Referrer-Policy header of "
                                                                                        "every response")

    _lists = field_validator("cors_origins", "trusted_hosts", mode="before")(_list)

    @model_validator(mode="after")
    def _cors_writes_need_named_origins(self) -> SecuritySettings:
        if self.cors_allow_writes and "*" in self.cors_origins:
            raise ValueError("DATSO_CORS_ALLOW_WRITES needs named origins in DATSO_CORS_ORIGINS, not '*'")
        return self


class RateLimitSettings(BaseSettings):
    """Per-client-IP rate limits (slowapi, moving windows; a 429 problem+json with Retry-After past them)."""

    model_config = _CONFIG

    rate_limit_enabled: bool = Field(default=True, description="false: no rate limit at all")
    rate_limit_storage_uri: str = Field(default="memory://", description="counters' storage: memory:// (per worker), "
                                                                        "redis://... or memcached://... (shared)")
    rate_limit_auth_failures: str = Field(default="10/minute", description="wrong API keys per client IP")
    rate_limit_search: str = Field(default="120/minute", description="/search requests per client IP")
    rate_limit_exports: str = Field(default="30/minute", description="Folium exports /maps/{id}.html per client IP")
    rate_limit_trace: str = Field(default="60/minute", description="public trace lookups (/trace, /01/…, /qr/…) "
                                                                  "per client IP")
    rate_limit_login: str = Field(default="5/minute;30/hour", description="sign-in attempts (POST /auth/login) per "
                                                                          "user name and client IP")


class PoolSettings(BaseSettings):
    """The API's asyncpg read pool (opened lazily: the service starts while the database is down)."""

    model_config = _CONFIG

    db_min_connections: int = Field(default=1, description="connections the read pool keeps open")
    db_max_connections: int = Field(default=10, description="largest size of the read pool per worker")
    db_connect_timeout: float = Field(default=3.0, description="seconds to connect to the database before a 503")
    db_read_max_lag: float = Field(default=30.0, ge=0, description="seconds a read replica "
                                   "(DATSO_DATABASE_READ_URL) may lag behind before reads go to the primary")
    db_read_check_interval: float = Field(default=2.0, gt=0, description="seconds between checks of the read "
                                          "replica's lag; reads stay on the primary this long after it failed")
    db_acquire_timeout: float = Field(default=10.0, description="seconds waiting for a free pooled connection "
                                                                "before a 503")


class FaultSettings(BaseSettings):
    """Faults and load: statement timeouts per request class, export concurrency, Retry-After of a 503."""

    model_config = _CONFIG

    read_statement_timeout: float = Field(default=5.0, description="statement_timeout (s) of items, tiles, search, "
                                                                   "pages and metadata")
    export_statement_timeout: float = Field(default=60.0, description="statement_timeout (s) of Folium maps and "
                                                                      "csv/gpkg/fgb downloads")
    export_concurrency: int = Field(default=2, description="exports rendered at once per worker (others wait)")
    export_processes: bool = Field(default=True, description="render Folium maps in worker processes (false: threads)")
    export_nice: int = Field(default=10, description="CPU priority (nice) of those processes, so tiles go first")
    retry_after: int = Field(default=5, description="Retry-After (s) of a 503 while the database cannot answer")


class WriteSettings(BaseSettings):
    """Transactions (OGC API Part 4): a psycopg pool opened on the first write, and bounds on written geometries."""

    model_config = _CONFIG

    write_pool_min_size: int = Field(default=0, description="connections the write pool keeps open")
    write_pool_max_size: int = Field(default=4, description="largest size of the write pool per worker")
    write_statement_timeout_ms: int = Field(default=15_000, description="statement_timeout of a write, in ms")
    max_geometry_vertices: int = Field(default=20_000, description="most vertices in one written geometry")
    max_geometry_bytes: int = Field(default=1_000_000, description="largest written geometry (GeoJSON), in bytes")


class AccountSettings(BaseSettings):
    """Sign-in sessions of the officer page (POST /auth/login; layers/accounts/users.py)."""

    model_config = _CONFIG

    session_lifetime_minutes: int = Field(default=480, ge=1, le=10_080, description="lifetime of a sign-in session "
                                                                                   "token, in minutes (not renewed)")


class EpcisSettings(BaseSettings):
    """EPCIS 2.0 capture and query (POST /epcis/capture, GET /epcis/events; layers/ingest/epcis.py)."""

    model_config = _CONFIG

    epcis_max_document_bytes: int = Field(default=20_000_000, ge=1024, description="largest EPCIS document "
                                                                                   "captured, in bytes (413 above)")
    epcis_max_events: int = Field(default=20_000, ge=1, description="most events in one captured document")
    epcis_max_depth: int = Field(default=32, ge=4, le=512, description="deepest JSON nesting of a captured document")
    epcis_max_list: int = Field(default=10_000, ge=1, description="most identifiers in one list of one event")
    epcis_default_per_page: int = Field(default=100, ge=1, description="events per page of GET /epcis/events")
    epcis_max_per_page: int = Field(default=1000, ge=1, description="largest perPage of GET /epcis/events")
    trace_max_depth: int = Field(default=8, ge=1, le=32, description="steps walked back/forward by /trace?all=true "
                                                                     "and the trace page (largest ?depth=)")
    trace_max_events: int = Field(default=500, ge=10, description="most events listed in one trace")



class RegistrationSettings(BaseSettings):
    """Registration of growing areas and packing houses: checks, code patterns, uploads (layers/ingest/registration.py)."""

    model_config = _CONFIG

    registration_provinces: Annotated[list[str], NoDecode] = Field(
        default=[], description="province codes whose communes may be registered (empty: every province in "
                                "admin_units); an officer's own scope narrows it further")
    registration_overlap_tolerance_m2: float = Field(
        default=1.0, ge=0, description="overlap (m², geodesic) with a draft/active/suspended area that is tolerated")
    registration_area_warning_pct: float = Field(
        default=5.0, ge=0, description="a supplied area further than this (%) from the geodesic one is a warning")
    registration_min_area_ha: dict[str, float] = Field(
        default={"perennial": 1.0, "annual": 0.1},
        description="minimum area (ha) by crop class, crop or crop:market (JSON); the largest that applies wins")
    registration_commune_min_share: float = Field(
        default=0.5, gt=0, le=1, description="share of the area a given commune must hold (else refused)")
    registration_code_patterns: dict[str, str] = Field(
        default={"growing_area": "VN-{province}-{commune}-{seq:03d}",
                 "packing_house": "VN-{province}-{commune}-DG{seq:03d}"},
        description="code patterns (JSON) with {province}, {commune}, {yy}, {yyyy}, {seq}; {seq} counts per prefix")
    registration_max_upload_bytes: int = Field(default=50_000_000, ge=1024,
                                               description="largest uploaded file for POST /collections/{id}/imports")
    registration_expiry_interval_s: int = Field(
        default=3600, ge=0, description="the API expires areas past their valid_to this often (s; 0: never)")

    @field_validator("registration_provinces", mode="before")
    @classmethod
    def _provinces(cls, value: Any) -> Any:
        return _list(value)


@lru_cache
def get_registration_settings() -> RegistrationSettings:
    return RegistrationSettings()



class ApiSettings(HttpSettings, SecuritySettings, RateLimitSettings, PoolSettings, FaultSettings, WriteSettings,
                  AccountSettings, EpcisSettings, RegistrationSettings):
    """Everything the API reads, as one object per app (`create_app(api_settings=...)`)."""

    model_config = _CONFIG


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()


# -- `datso serve` -----------------------------------------------------------------------------------------

class ServerSettings(BaseSettings):
    """`datso serve` limits (uvicorn; api/server.py)."""

    model_config = _CONFIG

    header_timeout: float = Field(default=10.0, gt=0, description="seconds to send a complete request head")
    keep_alive_timeout: int = Field(default=5, ge=1, description="seconds an idle keep-alive connection is kept")
    max_head_bytes: int = Field(default=65536, ge=4096, description="largest request line + headers, in bytes")
    limit_concurrency: int = Field(default=1000, ge=1, description="open connections + running requests per worker "
                                                                   "(beyond: 503)")
    backlog: int = Field(default=2048, ge=16, description="listen queue of the server socket")
    graceful_shutdown_timeout: int = Field(default=30, ge=1, description="seconds running requests get on shutdown")
    # uvicorn's 5 s killed workers still importing on a busy 2-core machine, in a loop
    worker_healthcheck_timeout: int = Field(default=30, ge=1, description="seconds a new worker has to answer the "
                                                                          "supervisor's ping")


@lru_cache
def get_server_settings() -> ServerSettings:
    return ServerSettings()


# -- filters -----------------------------------------------------------------------------------------------

class FilterLimits(BaseSettings):
    """Bounds on a CQL2 filter, checked on the raw input before any native or recursive parser sees it.

    cql2-rs (the native parser) recurses once per nesting level and per chained operator and overflows its
    stack (a segfault that takes the whole process down) at ~1,550 nested parentheses, ~3,400 chained NOTs,
    ~9,000 `+` terms or ~16,000 `AND`s with an 8 MiB stack (a quarter of that on a 2 MiB thread stack); it
    also backtracks exponentially on nested bare parentheses around a syntax error (~2-3x per level: 12 ms
    at 10 levels, 17 s at 20). See docs/reliability.md for the measurement.
    - `max_bytes`: a CQL2-JSON object passed in by code is bounded by depth and object count instead.
    - `max_depth`: brackets plus chains of prefix operators (NOT, unary -) in cql2-text; logical levels in
      cql2-json and in the parsed tree (2 * max_depth + 8 nested objects/arrays; a chain of N arithmetic
      operators nests N levels).
    """

    model_config = SettingsConfigDict(env_prefix="DATSO_FILTER_", extra="ignore")   # no .env (as before)

    max_bytes: int = Field(default=16384, ge=1, description="length of the filter text in UTF-8 bytes")
    max_depth: int = Field(default=16, ge=1, description="nesting: brackets plus chains of NOT/unary minus "
                                                         "(cql2-text), logical levels (cql2-json)")
    max_groups: int = Field(default=8, ge=1, description="nesting of bare parentheses `( ... )` in cql2-text")
    max_terms: int = Field(default=500, ge=1, description="operators, functions and property names (cql2-text); "
                                                          "JSON objects (cql2-json)")

    @property
    def max_json_depth(self) -> int:
        return 2 * self.max_depth + 8


@lru_cache
def get_filter_limits() -> FilterLimits:
    return FilterLimits()


# -- tiles and imagery -------------------------------------------------------------------------------------

class TileSettings(BaseSettings):
    """Vector tiles (docs/tiles.md): cache, MVT geometry parameters, caps, a seeded archive."""

    model_config = SettingsConfigDict(env_prefix="DATSO_TILE_", env_file=".env", extra="ignore")

    cache_enabled: bool = Field(default=True, description="false: every request builds its tile")
    cache_bytes: int = Field(default=256 * 1024 * 1024, ge=0, description="bound of the in-process LRU (gzip bytes "
                                                                          "+ keys)")
    cache_dir: Path | None = Field(default=None, description="optional persistent cache shared by the processes "
                                                             "of one host")
    cache_control: str = Field(default="public, max-age=300", description="Cache-Control of tiles")
    extent: int = Field(default=4096, ge=256, le=16384, description="MVT extent (tile units per side)")
    buffer: int = Field(default=64, ge=0, le=1024, description="MVT buffer, in tile units (of the extent)")
    max_features: int = Field(default=20000, ge=1, description="features per layer and tile; the largest are kept")
    max_tile_bytes: int = Field(default=500_000, ge=10_000, description="a tile above this is rebuilt with a "
                                                                        "quarter of the cap")
    archive: Path | None = Field(default=None, description="a seeded .pmtiles/.mbtiles served at /tiles/archive/...")
    listen: bool = Field(default=True, description="LISTEN for edits (invalidation); false: nothing is cached")
    gzip_level: int = Field(default=6, ge=1, le=9, description="gzip level of built tiles")


@lru_cache
def get_tile_settings() -> TileSettings:
    return TileSettings()


class ImagerySettings(BaseSettings):
    """Raster imagery tiles (tiles/raster.py): every GeoTIFF/COG in a folder."""

    model_config = _CONFIG

    imagery_dir: Path = Field(default=Path(".data/imagery"), description="folder of the images: NAME.tif is "
                                                                         "served at /imagery/NAME/{z}/{x}/{y}.png")
    imagery_minzoom: int = Field(default=8, description="lowest zoom of imagery tiles")
    imagery_maxzoom: int = Field(default=19, description="highest zoom of imagery tiles")
    raster_stats_max_features: int = Field(default=5000, ge=1, description="most features one zonal-statistics "
                                           "request measures (/collections/{id}/stats; more: 413, or pages "
                                           "with limit= up to this and offset=)")


@lru_cache
def get_imagery_settings() -> ImagerySettings:
    return ImagerySettings()


# -- maps --------------------------------------------------------------------------------------------------

class MapSettings(BaseSettings):
    """The web map page (/map): offline by default (a vendored Natural Earth basemap); an OSM-style street basemap
    (`basemap_url`) and satellite/orthophoto imagery (`satellite_url`) are opt-in raster tile templates."""

    model_config = _CONFIG

    basemap_url: str | None = Field(default=None, description="an XYZ basemap template, e.g. "
                                                              "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    basemap_attribution: str = Field(default="", description="attribution shown with the basemap")
    basemap_maxzoom: int = Field(default=19, description="highest zoom of the basemap")
    satellite_url: str | None = Field(default=None, description="an XYZ satellite/orthophoto template offered as a "
                                                                "layer (off until chosen), e.g. https://server.arcgisonline"
                                                                ".com/ArcGIS/rest/services/World_Imagery/MapServer/tile/"
                                                                "{z}/{y}/{x}")
    satellite_attribution: str = Field(default="", description="attribution shown with the satellite imagery")
    satellite_maxzoom: int = Field(default=19, description="highest zoom of the satellite imagery")
    map_tile_maxzoom: int = Field(default=16, description="the map asks vector tiles up to this zoom and overzooms "
                                                          "beyond")


@lru_cache
def get_map_settings() -> MapSettings:
    return MapSettings()


class ExportSettings(BaseSettings):
    """Folium map exports (/maps/{id}.html, `datso map export`): simplification and caps."""

    model_config = SettingsConfigDict(env_prefix="DATSO_MAP_", env_file=".env", extra="ignore")

    simplify_above: int = Field(default=20_000, ge=1, description="more features than this: shapes are simplified")
    max_features: int = Field(default=50_000, ge=1, description="more features than this: the export is refused "
                                                                "(413, narrow the filter)")
    simplify_tolerance_m: float = Field(default=2.0, gt=0, description="simplification tolerance, in metres")
    precision: int = Field(default=7, ge=4, le=9, description="decimals of exported coordinates")


@lru_cache
def get_export_settings() -> ExportSettings:
    return ExportSettings()


# -- the generated table (docs/settings.md) ----------------------------------------------------------------

# In the order of the table; ApiSettings is documented through its parts.
DOCUMENTED: tuple[type[BaseSettings], ...] = (
    Settings, HttpSettings, SecuritySettings, RateLimitSettings, PoolSettings, FaultSettings, WriteSettings,
    AccountSettings, EpcisSettings, RegistrationSettings, ServerSettings, FilterLimits, TileSettings, ImagerySettings, MapSettings, ExportSettings,
)


def env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set `field` of `cls` (its aliases, else prefix + name)."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(a) for a in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [(str(cls.model_config.get("env_prefix", "")) + name).upper()]


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "empty" if not value else "`" + ",".join(map(str, value)) + "`"
    if value == "":
        return "empty"
    return f"`{value}`"


def _bounds(field: FieldInfo) -> str:
    """`≥ 1`, `≥ 256, ≤ 16384`, `> 0` from the field's constraints; empty when it has none."""
    low = high = ""
    for m in field.metadata:   # annotated_types.Ge/Gt/Le/Lt
        for attr, sign in (("ge", "≥"), ("gt", ">")):
            if getattr(m, attr, None) is not None:
                low = f"{sign} {getattr(m, attr)}"
        for attr, sign in (("le", "≤"), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                high = f"{sign} {getattr(m, attr)}"
    return ", ".join(b for b in (low, high) if b)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_markdown() -> str:
    """docs/settings.md: every environment variable, by concern, from the classes above."""
    out = ["# Settings", "",
           "<!-- generated by `python -m layers.settings > docs/settings.md` from layers/settings.py; do not "
           "edit (tests/test_settings.py fails when this file is stale) -->", "",
           "Environment variables (or a `.env` file in the working directory, except the filter limits), read "
           "with pydantic-settings by the classes of `layers/settings.py`, one per concern. The API reads "
           "`ApiSettings`, the union of the API concerns (HTTP, security, rate limits, pool, faults, writes, "
           "accounts). "
           "Lists take a comma-separated or a JSON value.", ""]
    for cls in DOCUMENTED:
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        out += [f"## {cls.__name__}", "", doc, "", "| variable | default | bounds | meaning |", "|---|---|---|---|"]
        for name, field in cls.model_fields.items():
            names = " or ".join(f"`{n}`" for n in env_names(cls, name, field))
            out.append(f"| {names} | {_cell(_default(field))} | {_bounds(field)} | {_cell(field.description or '')} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--markdown"]):
        print("usage: python -m layers.settings [--markdown] > docs/settings.md", file=sys.stderr)
        return 2
    sys.stdout.write(settings_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
