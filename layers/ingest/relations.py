"""Many-to-many links of a layer's features (`Layer.relations`, e.g. the growing areas a packing house sources
from): read as a list of ids, replaced as a whole by an officer in one transaction. Only the rows that change are
deleted or inserted; the link table's audit trigger (migration 0008) writes the feature's history with the actor
set here, so the change is audited whatever path made it."""

from __future__ import annotations

from typing import Any

import asyncpg
from psycopg import sql

from layers.catalog.registry import LAYERS, Layer, Relation
from layers.ingest.writes import Actor, Target, WriteError, _begin, _connect, lock_in_scope
from layers.store.sql import quote_ident

MAX_LINKS = 10_000


async def fetch_linked(conn: asyncpg.Connection, layer: Layer, rel: Relation, fid: int) -> list[tuple[int, Any]] | None:
    """(id, code) of the linked features, by id; None when the feature does not exist."""
    target = LAYERS[rel.target]
    exists = await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {quote_ident(layer.table)} WHERE {quote_ident(layer.id_column)} = $1)",  # noqa: S608
        fid)
    if not exists:
        return None
    code = quote_ident(target.code_field) if target.code_field else "NULL"
    rows = await conn.fetch(
        f"SELECT t.{quote_ident(target.id_column)}, t.{code} FROM {quote_ident(rel.table)} l "  # noqa: S608
        f"JOIN {quote_ident(target.table)} t ON t.{quote_ident(target.id_column)} = l.{quote_ident(rel.other_column)} "
        f"WHERE l.{quote_ident(rel.own_column)} = $1 ORDER BY 1", fid)
    return [(int(r[0]), r[1]) for r in rows]


def _wanted(body: Any) -> tuple[list[int], list[str]]:
    items = body.get("ids") if isinstance(body, dict) else body
    if isinstance(body, dict) and set(body) - {"ids"}:
        raise WriteError(400, f"Thành phần không hợp lệ: {', '.join(sorted(set(body) - {'ids'}))}; gửi {{\"ids\": [...]}}",
                         f"Unknown members: {', '.join(sorted(set(body) - {'ids'}))}; send {{\"ids\": [...]}}")
    if not isinstance(items, list):
        raise WriteError(400, "Nội dung phải là danh sách mã hoặc id, hoặc {\"ids\": [...]}",
                         "The body must be a list of ids or codes, or {\"ids\": [...]}")
    if len(items) > MAX_LINKS:
        raise WriteError(413, f"Quá {MAX_LINKS} liên kết", f"More than {MAX_LINKS} links")
    ids: list[int] = []
    codes: list[str] = []
    for x in items:
        if isinstance(x, int) and not isinstance(x, bool) and 0 < x < 2**63:
            ids.append(x)
        elif isinstance(x, str) and 0 < len(x) <= 200 and "\x00" not in x:
            codes.append(x.strip())
        else:
            raise WriteError(422, f"Giá trị không phải id hoặc mã: {str(x)[:40]!r}",
                             f"Not an id or a code: {str(x)[:40]!r}",
                             [{"field": "ids", "code": "type", "message": f"not an id or a code: {str(x)[:40]!r}"}])
    return ids, codes


def replace_links(target: Target, layer: Layer, rel: Relation, fid: int, body: Any, actor: Actor) -> list[int]:
    """Make the feature's links exactly the given ids (or codes) of the target layer; returns the ids, sorted.
    A scoped writer (a Principal) must be allowed to write the feature itself (403 otherwise); the linked
    features may lie anywhere (a packing house may source from areas of another province)."""
    other = LAYERS[rel.target]
    ids, codes = _wanted(body)
    t_id = sql.Identifier(other.id_column)
    with _connect(target) as conn, conn.transaction():
        _begin(conn, actor)
        lock_in_scope(conn, layer, fid, actor)      # 404, or 403 for a feature outside the writer's scope
        found: dict[Any, int] = {}
        if ids:
            for (i,) in conn.execute(sql.SQL("SELECT {id} FROM {t} WHERE {id} = ANY(%s)").format(
                    id=t_id, t=sql.Identifier(other.table)), [ids]).fetchall():
                found[int(i)] = int(i)
        if codes and other.code_field:
            for i, c in conn.execute(sql.SQL("SELECT {id}, {c} FROM {t} WHERE {c} = ANY(%s)").format(
                    id=t_id, c=sql.Identifier(other.code_field), t=sql.Identifier(other.table)), [codes]).fetchall():
                found[c] = int(i)
        missing = [str(x) for x in [*ids, *codes] if x not in found]
        if missing:
            shown = ", ".join(missing[:20])
            raise WriteError(422, f"Không có {other.title_vi.lower()} với id/mã: {shown}",
                             f"No {other.title_en.lower()} with id/code: {shown}",
                             [{"field": rel.name, "code": "unknown_reference", "message": f"unknown: {shown}"}])
        wanted = sorted(set(found.values()))
        own, oth, link = (sql.Identifier(rel.own_column), sql.Identifier(rel.other_column),
                          sql.Identifier(rel.table))
        current = {int(r[0]) for r in conn.execute(sql.SQL("SELECT {o} FROM {l} WHERE {w} = %s").format(
            o=oth, l=link, w=own), [fid]).fetchall()}
        removed = sorted(current - set(wanted))
        added = sorted(set(wanted) - current)
        if removed:
            conn.execute(sql.SQL("DELETE FROM {l} WHERE {w} = %s AND {o} = ANY(%s)").format(l=link, w=own, o=oth),
                         [fid, removed])
        if added:
            conn.execute(sql.SQL("INSERT INTO {l} ({w}, {o}) SELECT %s, unnest(%s::bigint[])").format(
                l=link, w=own, o=oth), [fid, added])
        return wanted


__all__ = ["fetch_linked", "replace_links"]
