"""Tile filters: property equality on a layer's queryables (`?status=sold&crop=buoi`) and CQL2
(`?filter=...&filter-lang=cql2-text|cql2-json&filter-crs=...`), read by the one selection parser
(`layers.query.selection`) and translated by the one translator, like the features API.

Values are parsed by the field's type and vocabulary and passed as SQL parameters; column names come
from the registry. A bad filter raises `QueryError` (-> 400) where it is detected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gis.errors import BilingualError
from layers.catalog.registry import Layer
from layers.query.selection import parse_selection

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
    """The selection of a tile request: `field=value` on the queryables and a CQL2 filter, read by the one
    selection parser (`layers.query.selection`); unknown parameter names are refused (QueryError, 400)."""
    equals = {k: v for k, v in query.items() if k not in NON_FILTER_PARAMS}
    sel = parse_selection(layer, equals=equals, filter=query.get("filter"), filter_lang=query.get("filter-lang"),
                          filter_crs=query.get("filter-crs"))
    if sel.empty:
        return None
    where, params = sel.sql(FIRST_PARAM - 1, "t.")
    key_parts = [f"{f.name}={raw}" for f, raw, _ in sel.equals]
    if sel.filter is not None:
        key_parts.append(f"filter={sel.filter_text}&filter-lang={sel.filter_lang}&filter-crs={sel.filter_crs or ''}")
    key = hashlib.blake2b("&".join(key_parts).encode(), digest_size=8).hexdigest()
    return TileFilter(layer.id, where, tuple(params), key)
