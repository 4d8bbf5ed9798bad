"""Tile filters: property equality on a layer's queryables (`?status=sold&crop=buoi`) and CQL2
(`?filter=...&filter-lang=cql2-text|cql2-json&filter-crs=...`, translated by `layers.query.cql2.to_sql`, the
same translator the features API uses).

Values are parsed by the field's type and vocabulary and passed as SQL parameters; column names come
from the registry. A bad filter raises `FilterError` (-> 400).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gis.errors import BilingualError
from layers.catalog.registry import Layer
from layers.query.cql2 import CqlError, to_sql
from layers.query.features import QueryError, equality_filters, sql_cast

# Query parameters that are not filters: accepted and ignored (cache busters, language, format).
NON_FILTER_PARAMS = frozenset({"lang", "f", "nocache", "v", "layers", "filter", "filter-lang", "filter-crs"})


class FilterError(BilingualError):
    """A tile filter that cannot be used (400)."""


# The tile statement's own parameters are $1-$4 (z, x, y, feature cap); filters number theirs from $5.
FIRST_PARAM = 5


@dataclass(frozen=True)
class TileFilter:
    """A condition on one layer (SQL over the row alias `t` and $5...). `key` names it in the tile cache."""

    layer_id: str
    where: str
    params: tuple[Any, ...]
    key: str

    def sql(self, layer: Layer) -> str:
        if layer.id != self.layer_id:
            raise FilterError("Bộ lọc chỉ áp dụng cho một lớp", "A filter applies to one layer only")
        return self.where


def parse_filters(layer: Layer, query: Mapping[str, str]) -> TileFilter | None:
    """Property-equality filters from query parameters; unknown parameter names are refused."""
    conditions: list[str] = []
    params: list[Any] = []
    key_parts: list[str] = []
    try:
        pairs = equality_filters(layer, query, NON_FILTER_PARAMS)
    except QueryError as exc:
        raise FilterError(exc.vi, exc.en) from None
    for f, raw, value in pairs:
        name = f.name
        if f.type in ("object",):
            raise FilterError(f"Không lọc được theo {name}", f"Cannot filter on {name}")
        params.append(value)
        n = FIRST_PARAM + len(params) - 1
        ident = '"' + f.name + '"'
        # typed like the items query: without the cast asyncpg would type $n as the column (int4 for an
        # integer column) and refuse a larger value while encoding it (a 500 instead of no match)
        cast = sql_cast(f)
        conditions.append(f"${n}::{cast} = ANY(t.{ident})" if f.type == "array" else f"t.{ident} = ${n}::{cast}")
        key_parts.append(f"{name}={raw}")
    text = query.get("filter")
    if text is not None:
        lang, crs = query.get("filter-lang", "cql2-text"), query.get("filter-crs")
        try:
            sql, cql_params = to_sql(layer, text, lang, crs, param_offset=FIRST_PARAM - 1 + len(params),
                                     column_prefix="t.")
        except CqlError as exc:
            raise FilterError(exc.vi, exc.en) from None
        conditions.append(f"({sql})")
        params.extend(cql_params)
        key_parts.append(f"filter={text}&filter-lang={lang}&filter-crs={crs or ''}")
    elif "filter-lang" in query or "filter-crs" in query:
        raise FilterError("filter-lang/filter-crs cần có tham số filter", "filter-lang/filter-crs need a filter")
    if not conditions:
        return None
    key = hashlib.blake2b("&".join(key_parts).encode(), digest_size=8).hexdigest()
    return TileFilter(layer.id, " AND ".join(conditions), tuple(params), key)
