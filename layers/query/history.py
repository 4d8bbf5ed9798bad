"""The history of one feature, read back from the `history` table the audit triggers write (migrations 0002,
0004, 0008): who, when, which fields changed (before -> after, only the changed ones), why, and the geometry
before and after. One entry per transaction: the rows one transaction wrote for a feature (an update and its
sourcing links, a link change made of a DELETE and an INSERT) are merged, the earliest `before` and the latest
`after` of each field.

The public view shows the registry's public fields and relations (`LayerField.public`) and no actor; the full
view (officers, admins) every registry field and the actor. A reason the service wrote itself (a transition
without a reason, recorded as `draft → active`; an expiry, recorded as `valid_to < today`) is read back in words
with the lifecycle's labels (`reason_text`); the recorded text and the raw state codes stay available
(`Entry.reason`, `Entry.transition`). The history of a deleted feature is still served
(the ids of deleted features keep their history); an id that never existed is None (a 404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from layers.catalog.formats import format_value
from layers.catalog.registry import Layer
from layers.store.sql import quote_ident


@dataclass
class Change:
    name: str
    before: Any
    after: Any


@dataclass
class Entry:
    at: Any
    action: str                          # insert | update | delete
    actor: str | None
    reason: str | None
    changes: list[Change] = field(default_factory=list)
    geometry_changed: bool = False
    geometry_before: Any = None          # GeoJSON (dict) or None
    geometry_after: Any = None
    transition: tuple[str, Any, Any] | None = None     # (status field, before, after) when the status changed


@dataclass
class HistoryPage:
    feature_exists: bool
    entries: list[Entry]
    number_matched: int


_GROUPS = """
SELECT txid, min(id) AS first_id, count(*) OVER () AS n FROM history
WHERE layer = $1 AND feature_id = $2 GROUP BY txid ORDER BY min(id) DESC LIMIT $3 OFFSET $4
"""
_ROWS = """
SELECT id, txid, action, actor, reason, at, before, after,
       ST_AsGeoJSON(geom_before, 7) AS gb, ST_AsGeoJSON(geom_after, 7) AS ga
FROM history WHERE layer = $1 AND feature_id = $2 AND txid = ANY($3::bigint[]) ORDER BY id
"""


def _fields(layer: Layer, full: bool) -> list[str]:
    names = [f.name for f in layer.fields if full or f.public]
    return names + [r.name for r in layer.relations]


def _json(v: Any) -> Any:
    return orjson.loads(v) if isinstance(v, str | bytes) else v


def _merge(layer: Layer, rows: list[asyncpg.Record], full: bool) -> Entry:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    geom_before = geom_after = None
    saw_geom = False
    for r in rows:          # ascending id: the earliest before, the latest after of each field
        b, a = _json(r["before"]) or {}, _json(r["after"]) or {}
        for k, v in b.items():
            before.setdefault(k, v)
        if r["action"] == "delete":
            after = {k: None for k in after}
        after.update(a)
        is_link_row = set(b) | set(a) <= {rel.name for rel in layer.relations}
        if not is_link_row:
            if not saw_geom:
                geom_before = r["gb"]
                saw_geom = True
            geom_after = r["ga"]
    first, last = rows[0], rows[-1]
    action = "insert" if first["action"] == "insert" else "delete" if last["action"] == "delete" else "update"
    names = _fields(layer, full)
    changes = []
    for name in names:
        if name not in before and name not in after:
            continue
        old, new = before.get(name), after.get(name)
        if old != new:
            changes.append(Change(name, old, new))
    reason = next((r["reason"] for r in rows if r["reason"]), None)
    lc = layer.lifecycle
    if reason is None and lc is not None and lc.reason_field is not None and lc.reason_field in names:
        touched = {c.name for c in changes}
        if lc.field in touched or lc.reason_field in touched:
            reason = after.get(lc.reason_field) if action != "delete" else before.get(lc.reason_field)
    moved = next((c for c in changes if lc is not None and c.name == lc.field), None)
    return Entry(at=first["at"], action=action, actor=first["actor"] if full else None, reason=reason,
                 changes=changes, geometry_changed=saw_geom and geom_before != geom_after,
                 geometry_before=_json(geom_before), geometry_after=_json(geom_after),
                 transition=(moved.name, moved.before, moved.after) if moved is not None else None)


_MOVE = re.compile(r"^(\S+) → (\S+)$")          # registration.check_update: a transition without a reason
_PAST = re.compile(r"^(\w+) < today$")           # registration.expire_due: the validity end has passed


def state_label(layer: Layer, code: Any, lang: str) -> str:
    """A lifecycle state as people read it (its label), the code itself when it is not a state."""
    lc = layer.lifecycle
    state = next((st for st in lc.states if st.code == code), None) if lc is not None else None
    return state.label(lang) if state is not None else ("" if code is None else str(code))


def reason_text(layer: Layer, reason: str | None, lang: str) -> str | None:
    """The recorded reason in words: the service's own reasons (`draft → active`, `valid_to < today`) with the
    lifecycle's labels and the field's title in `lang`; a person's reason as written."""
    if not reason:
        return reason
    lc = layer.lifecycle
    m = _MOVE.match(reason)
    if m and lc is not None and m.group(1) in lc.codes and m.group(2) in lc.codes:
        return f"{state_label(layer, m.group(1), lang)} → {state_label(layer, m.group(2), lang)}"
    m = _PAST.match(reason)
    if m and layer.get_field(m.group(1)) is not None:
        name = title(layer, m.group(1), lang)
        return (f"Hết hiệu lực tự động: đã qua ngày “{name}”" if lang == "vi"
                else f"Expired automatically: the “{name}” date has passed")
    return reason


async def fetch_history(conn: asyncpg.Connection, layer: Layer, fid: int, *, full: bool, limit: int,
                        offset: int) -> HistoryPage | None:
    """A page of the feature's history, newest first; None when the id has neither a row nor a history."""
    exists = await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {quote_ident(layer.table)} WHERE {quote_ident(layer.id_column)} = $1)",  # noqa: S608
        fid)
    groups = await conn.fetch(_GROUPS, layer.table, fid, limit, offset)
    if not exists and not groups:
        has_any = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM history WHERE layer = $1 AND feature_id = $2)",
                                      layer.table, fid)
        if not has_any:
            return None
    total = int(groups[0]["n"]) if groups else await conn.fetchval(
        "SELECT count(DISTINCT txid) FROM history WHERE layer = $1 AND feature_id = $2", layer.table, fid)
    rows = await conn.fetch(_ROWS, layer.table, fid, [g["txid"] for g in groups]) if groups else []
    by_tx: dict[int, list[asyncpg.Record]] = {}
    for r in rows:
        by_tx.setdefault(int(r["txid"]), []).append(r)
    entries = [_merge(layer, by_tx[int(g["txid"])], full) for g in groups]
    return HistoryPage(bool(exists), entries, int(total or 0))


def shown(layer: Layer, name: str, value: Any, lang: str) -> str:
    """A value of a field (or a relation's list of ids) as people read it."""
    f = layer.get_field(name)
    if f is None:
        return ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))
    return format_value(f, value, lang)


def title(layer: Layer, name: str, lang: str) -> str:
    f = layer.get_field(name)
    if f is not None:
        return f.title_vi if lang == "vi" else f.title_en
    for r in layer.relations:
        if r.name == name:
            return r.title_vi if lang == "vi" else r.title_en
    return name


__all__ = ["Change", "Entry", "HistoryPage", "fetch_history", "reason_text", "shown", "state_label", "title"]
