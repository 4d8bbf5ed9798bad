"""Every layer at a glance (the landing page's cards): how many features, where, last changed. ONE statement for
all layers, cheap at any size.

- **count**: exact (`count(*)`) while the planner's row estimate (`pg_class.reltuples`, kept by ANALYZE) is at
  most `EXACT_UP_TO` rows, or the table was never analysed and is small on disk; above that, the estimate itself,
  marked `estimated=True` (pages say "khoảng" / "about"). A `count(*)` of 100,000 rows is ~10 ms; of 1,000,000
  ~100 ms, too much for a front page rendered on every cache miss.
- **updated**: the latest `updated_at` (the column of `models.Timestamps`, set by the audit trigger on every
  write) on the same condition; a layer without the column, or above the limit, has none (there is no index
  on `updated_at`: `max()` reads the whole table, 0.6 s on 1,000,000 parcels).
- **bbox**: the same extent as the collection document (`layers.query.features.extent`): PostGIS's estimated
  extent from the planner statistics, else the exact one on small tables.

The sub-selects are uncorrelated, so PostgreSQL runs them as InitPlans only when their CASE branch is taken:
a large table is never scanned. Identifiers come from the registry (`quote_ident`); names are parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from layers.catalog.registry import Layer
from layers.store.models import Timestamps
from layers.store.sql import quote_ident

EXACT_UP_TO = 100_000                 # rows (planner estimate) up to which counts and last updates are exact
UNANALYSED_EXACT_BYTES = 64 << 20     # a never-analysed table (reltuples = -1) is counted when this small
UPDATED = "updated_at"                # models.Timestamps


@dataclass(frozen=True)
class LayerSummary:
    count: int | None                 # None: unknown (never analysed and large)
    estimated: bool                   # True: `count` is the planner's estimate
    bbox: tuple[float, float, float, float] | None    # CRS84 (lon/lat)
    updated: dt.datetime | None


def _has_updated(layer: Layer) -> bool:
    return isinstance(layer.model, type) and issubclass(layer.model, Timestamps)


def summary_sql(layers: Sequence[Layer]) -> str:
    """Parameters: $1 the row limit, $2 the byte limit, then three per layer: 'public."table"' (its
    regclass), the table name and the geometry column name (for ST_EstimatedExtent)."""
    parts = []
    for i, layer in enumerate(layers):
        t, g = quote_ident(layer.table), quote_ident(layer.geometry_column)
        p = 3 + 3 * i
        small = "(c.reltuples BETWEEN 0 AND $1 OR (c.reltuples < 0 AND pg_relation_size(c.oid) <= $2))"
        updated = "NULL"
        if _has_updated(layer):
            updated = f"(SELECT max({quote_ident(UPDATED)}) FROM {t})"  # noqa: S608 - registry identifiers
        parts.append(
            f"SELECT {i} AS i, c.reltuples::bigint AS estimate, "  # noqa: S608 - registry identifiers
            f"CASE WHEN {small} THEN (SELECT count(*) FROM {t}) END AS exact, "
            f"CASE WHEN {small} THEN {updated}::timestamptz END AS updated, "
            f"ST_XMin(x.e) x1, ST_YMin(x.e) y1, ST_XMax(x.e) x2, ST_YMax(x.e) y2 "
            f"FROM pg_class c CROSS JOIN LATERAL (SELECT coalesce(ST_EstimatedExtent('public', ${p + 1}, ${p + 2}), "
            f"CASE WHEN {small} THEN (SELECT ST_Extent({g}) FROM {t}) END) e) x "
            f"WHERE c.oid = ${p}::regclass")
    return " UNION ALL ".join(parts)


async def layer_summaries(conn: asyncpg.Connection, layers: Sequence[Layer],
                          exact_up_to: int = EXACT_UP_TO) -> dict[str, LayerSummary]:
    """Each layer's summary by id (a table that does not exist yet is an error: the migrations made them)."""
    args: list[object] = [exact_up_to, UNANALYSED_EXACT_BYTES]
    for layer in layers:
        args += [f"public.{quote_ident(layer.table)}", layer.table, layer.geometry_column]
    rows = await conn.fetch(summary_sql(layers), *args)
    out: dict[str, LayerSummary] = {}
    for r in rows:
        layer = layers[r["i"]]
        exact = r["exact"]
        estimate = r["estimate"]
        count = exact if exact is not None else (estimate if estimate >= 0 else None)
        bbox = None if r["x1"] is None else (r["x1"], r["y1"], r["x2"], r["y2"])
        out[layer.id] = LayerSummary(count=count, estimated=exact is None and count is not None, bbox=bbox,
                                     updated=r["updated"])
    return out
