"""Request ids, one structured log line per request and Prometheus metrics (`/metrics`, prometheus-client).

`RequestObservation` is a pure-ASGI middleware installed outermost, so it sees every request including the
tiles the fast path answers: it takes the client's `X-Request-ID` (when it is a sane token) or makes one, binds
it into structlog's context (every log record of the request carries `request_id`), passes it on to the inner
layers (the last-resort error handler reports the same id) and returns it in the `X-Request-ID` response
header. When the response ends it logs `request` (method, route template, status, duration_ms) and observes
the latency histogram by route *template* (never the raw path, so the label set stays bounded) and route family.

The metrics live in a registry per app (tests build many apps). Pool use and tile-cache counters are read at
scrape time from the app's state by a custom collector.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layers.catalog.registry import LAYERS

log = structlog.get_logger("datso.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_TILE_PATH = re.compile(r"/tiles/[^/]+/\d+/\d+/\d+$")
_COLLECTION = re.compile(r"^/collections/[^/{]+")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def route_family(method: str, template: str) -> str:
    """items, item, tiles, map, search, writes, auth, static, meta or other: what an operator groups by."""
    if method in _WRITES and not template.startswith("/auth"):
        return "writes"
    if "/tiles" in template:
        return "tiles"
    if template.endswith("/items"):
        return "items"
    if "/items/" in template:
        return "item"
    for prefix, family in (("/map", "map"), ("/search", "search"), ("/auth", "auth"), ("/admin", "auth"),
                           ("/static", "static"), ("/imagery", "imagery")):
        if template.startswith(prefix):
            return family
    if template in ("/", "/api", "/api.html", "/conformance", "/collections", "/collections/{collectionId}",
                    "/healthz", "/readyz", "/metrics", "/favicon.ico") or template.startswith("/health"):
        return "meta"
    return "other"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):      # the features router declares literal paths per collection
        return _COLLECTION.sub("/collections/{collectionId}", path)
    raw = str(scope.get("path", ""))
    if _TILE_PATH.search(raw):     # answered by the tile fast path, before routing
        return "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}" \
            if raw.startswith("/collections/") else "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
    if raw.startswith("/static/"):
        return "/static"
    return "unmatched"


class Metrics:
    """The app's Prometheus registry and the request metrics."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("datso_http_request_duration_seconds", "Request latency by route template",
                                 ["family", "route", "method"], buckets=BUCKETS, registry=self.registry)
        self.requests = Counter("datso_http_requests", "Requests by route template and status",
                                ["family", "route", "method", "status"], registry=self.registry)
        self.registry.register(_StateCollector(app))


class _StateCollector(Collector):
    """Pool sizes and tile-cache counters, read from the app's state at scrape time."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        size = GaugeMetricFamily("datso_db_pool_connections", "Database pool connections open (asyncpg read "
                                 "pools, psycopg write pool)", labels=["pool"])
        idle = GaugeMetricFamily("datso_db_pool_idle", "Database pool connections idle (free)", labels=["pool"])
        cap = GaugeMetricFamily("datso_db_pool_max", "Database pool maximum size", labels=["pool"])
        waiting = GaugeMetricFamily("datso_db_pool_waiting", "Requests waiting for a connection of the write pool",
                                    labels=["pool"])
        db = getattr(self.app.state, "db", None)
        for name, attr in (("read", "_pool"), ("primary", "_primary_pool"), ("read_fallback", "_fallback_pool")):
            pool = getattr(db, attr, None)
            if pool is not None:
                size.add_metric([name], pool.get_size())
                idle.add_metric([name], pool.get_idle_size())
                cap.add_metric([name], pool.get_max_size())
        writes = getattr(self.app.state, "write_pool", None)
        stats = writes.stats() if writes is not None else {}
        if stats:
            size.add_metric(["write"], stats.get("pool_size", 0))
            idle.add_metric(["write"], stats.get("pool_available", 0))
            cap.add_metric(["write"], stats.get("pool_max", 0))
            waiting.add_metric(["write"], stats.get("requests_waiting", 0))
        yield from (size, idle, cap, waiting)
        routing = getattr(db, "routing", None)
        if routing is not None:     # a read replica (DATSO_DATABASE_READ_URL): where reads go and why
            on = GaugeMetricFamily("datso_db_read_replica_in_use", "1 while reads go to the replica, 0 while they "
                                   "go to the primary", labels=["reason"])
            on.add_metric([routing.reason], 1.0 if routing.use_replica else 0.0)
            lag = GaugeMetricFamily("datso_db_read_replica_lag_seconds", "Replica lag at the last check")
            lag.add_metric([], routing.lag)
            falls = CounterMetricFamily("datso_db_read_fallbacks", "Checks that sent reads to the primary",
                                        labels=["reason"])
            for reason, n in routing.fallbacks.items():
                falls.add_metric([reason], n)
            yield from (on, lag, falls)
        svc = getattr(self.app.state, "tile_service", None)
        cache = getattr(svc, "cache", None)
        stats = getattr(cache, "stats", None)
        hits = CounterMetricFamily("datso_tile_cache_hits", "Tile cache hits")
        misses = CounterMetricFamily("datso_tile_cache_misses", "Tile cache misses")
        ratio = GaugeMetricFamily("datso_tile_cache_hit_ratio", "Tile cache hits / (hits + misses)")
        if stats is not None:
            hits.add_metric([], stats.hits)
            misses.add_metric([], stats.misses)
            total = stats.hits + stats.misses
            ratio.add_metric([], stats.hits / total if total else 0.0)
            for field in ("stores", "invalidated", "lru_evicted"):
                c = CounterMetricFamily(f"datso_tile_cache_{field}", f"Tile cache {field.replace('_', ' ')}")
                c.add_metric([], getattr(stats, field))
                yield c
        yield from (hits, misses, ratio)


class RequestObservation:
    """Outermost ASGI middleware: request id, request log line, latency metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        given = next((v.decode("latin-1") for k, v in headers if k == b"x-request-id"), "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        if rid != given:
            headers = [(k, v) for k, v in headers if k != b"x-request-id"] + [(b"x-request-id", rid.encode())]
            scope["headers"] = headers    # in place: routing writes scope["route"] into this same dict
        status = 500
        started = time.perf_counter()

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            await self.app(scope, receive, _send)
        finally:
            seconds = time.perf_counter() - started
            method = str(scope.get("method", ""))
            template = route_template(scope)
            family = route_family(method, template)
            self.metrics.latency.labels(family, template, method).observe(seconds)
            self.metrics.requests.labels(family, template, method, str(status)).inc()
            log.info("request", method=method, route=template, family=family, status=status,
                     duration_ms=round(seconds * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id")


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format (scrape from the internal network; the reverse proxy should not publish it)."""
    m: Metrics = request.app.state.metrics
    body = generate_latest(m.registry) + await _table_metrics(request)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


_TABLES = ("SELECT relname, n_tup_ins, n_live_tup FROM pg_stat_user_tables "
           "WHERE schemaname = 'public' AND relname = ANY($1::text[]) ORDER BY relname")

_IMPORTS = ("SELECT layer, outcome, count(*) AS runs, sum(rows_written) AS written, sum(rows_read) AS read "
            "FROM import_runs GROUP BY layer, outcome ORDER BY layer, outcome")


async def _table_metrics(request: Request) -> bytes:
    """Rows inserted (imports and API writes; PostgreSQL's statistics since their last reset, shared by every
    process) and live rows per published layer table. Nothing when the database cannot be reached: the
    process's own metrics are still served."""
    registry = CollectorRegistry(auto_describe=False)
    inserted = GaugeMetricFamily("datso_table_rows_inserted", "Rows inserted into each layer table (imports and "
                                 "writes, pg_stat_user_tables.n_tup_ins since the statistics reset)",
                                 labels=["table"])
    live = GaugeMetricFamily("datso_table_rows", "Live rows per layer table (estimate)", labels=["table"])
    runs = CounterMetricFamily("datso_import_runs", "Imports by layer and outcome (ok, refused, database), from "
                               "every process: the API's uploads and `datso import` (table import_runs)",
                               labels=["layer", "outcome"])
    written = CounterMetricFamily("datso_import_rows_written", "Rows written by imports, by layer and outcome",
                                  labels=["layer", "outcome"])
    read = CounterMetricFamily("datso_import_rows_read", "Rows read from imported files, by layer and outcome",
                               labels=["layer", "outcome"])
    try:
        async with request.app.state.db.connection() as conn:
            rows = await conn.fetch(_TABLES, sorted({layer.table for layer in LAYERS.values()}))
            imports = await conn.fetch(_IMPORTS) if await conn.fetchval(
                "SELECT to_regclass('public.import_runs') IS NOT NULL") else []
    except Exception:  # noqa: BLE001 - metrics must not fail because the database does
        return b""
    for r in rows:
        inserted.add_metric([r["relname"]], r["n_tup_ins"])
        live.add_metric([r["relname"]], r["n_live_tup"])
    for r in imports:
        runs.add_metric([r["layer"], r["outcome"]], r["runs"])
        written.add_metric([r["layer"], r["outcome"]], r["written"])
        read.add_metric([r["layer"], r["outcome"]], r["read"])

    class _Once(Collector):
        def collect(self) -> Iterator[Any]:
            yield from (inserted, live, runs, written, read)

    registry.register(_Once())
    return generate_latest(registry)


def install(app: FastAPI) -> None:
    """Add `/metrics` and the outermost request middleware (call after every other middleware)."""
    m = app.state.metrics = Metrics(app)
    app.include_router(router)
    app.add_middleware(RequestObservation, metrics=m)
