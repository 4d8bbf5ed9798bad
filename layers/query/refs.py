"""Reference fields (`LayerField.ref`): ids of another layer's features, shown to people by that layer's own
fields (an auction plot's parcels as "thửa 118, tờ 28", never as internal ids). One SQL expression per field,
from the registry; used by the HTML pages and the map exports."""

from __future__ import annotations

from typing import Any

from layers.catalog.registry import Layer, LayerField, get_layer
from layers.store.sql import quote_ident as _q


def ref_sql(f: LayerField, alias: str = "t.") -> str:
    """A JSON array of the referenced features' declared fields ([{"map_sheet": 28, "parcel_no": 118}])."""
    assert f.ref is not None
    target = get_layer(f.ref.layer)
    obj = ", ".join(f"'{n}', r.{_q(n)}" for n in f.ref.fields)
    col = f"{alias}{_q(f.name)}"
    key = f"r.{_q(target.id_column)}"
    cond = f"{key} = ANY({col})" if f.type == "array" else f"{key} = {col}"
    order = ", ".join(f"r.{_q(n)}" for n in f.ref.fields)
    return (f"(SELECT coalesce(json_agg(json_build_object({obj}) ORDER BY {order}), '[]'::json) "  # noqa: S608
            f"FROM {_q(target.table)} r WHERE {cond})")


def ref_fields(layer: Layer) -> list[LayerField]:
    return [f for f in layer.public_fields if f.ref is not None]


async def resolve_refs(conn: Any, layer: Layer, features: list[dict[str, Any]]) -> None:
    """Replace, in place, the ids of each reference field of `features` (GeoJSON features of `layer`) by the
    referenced features' declared fields: one statement for the page."""
    fields = [f for f in ref_fields(layer)
              if any(f.name in (feat.get("properties") or {}) for feat in features)]
    ids = [feat.get("id") for feat in features if isinstance(feat.get("id"), int)]
    if not fields or not ids:
        return
    cols = ", ".join(f"'{f.name}', {ref_sql(f)}" for f in fields)
    sql = (f"SELECT t.{_q(layer.id_column)}, json_build_object({cols})::text "  # noqa: S608 - registry names
           f"FROM {_q(layer.table)} t WHERE t.{_q(layer.id_column)} = ANY($1::bigint[])")
    import orjson

    resolved = {int(r[0]): orjson.loads(r[1]) for r in await conn.fetch(sql, ids)}
    for feat in features:
        props = feat.get("properties") or {}
        got = resolved.get(feat.get("id"))   # type: ignore[arg-type]
        if got is None:
            continue
        for f in fields:
            if f.name in props and props[f.name] is not None:
                props[f.name] = got[f.name]
