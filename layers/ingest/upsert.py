"""`datso import --mode update|upsert`: a re-import updates the existing rows found by the layer's business key
(`code_field`, else `unique_together`, from the registry) instead of refusing them as duplicates.

- `update`: every row must match an existing feature; only the columns the file carries are written (a missing
  geometry leaves the boundary as it is); required fields are not required again.
- `upsert`: rows that match are updated, the others inserted; the file must be complete (as for an insert).

Everything in one transaction with the importer's actor (the audit triggers write one history row per changed
feature, with the actor), all rows or none; a row whose status change the layer's lifecycle does not allow is
refused with its row number. The matched rows are locked (`FOR UPDATE`) from the check to the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from layers.catalog.registry import Layer
from layers.ingest.validation import Issue, Prepared, _py, business_keys, check_db_keys

Mode = Literal["insert", "update", "upsert"]
MODES: tuple[str, ...] = ("insert", "update", "upsert")
_PG = {"string": "text[]", "integer": "int8[]", "number": "numeric[]", "date": "date[]",
       "date-time": "timestamptz[]", "boolean": "bool[]"}


def key_of(layer: Layer) -> tuple[str, ...] | None:
    keys = business_keys(layer)
    return keys[0] if keys else None


def _optional_parts(layer: Layer, key: tuple[str, ...]) -> set[str]:
    """The parts of a composite key that may be empty (alongside required ones; a key of optional parts alone
    is a plain UNIQUE whose empty values never match)."""
    optional = {k for k in key if (f := layer.get_field(k)) is not None and not f.required}
    return optional if len(optional) < len(key) else set()


def match_rows(conn: psycopg.Connection, layer: Layer, frame: pd.DataFrame,
               key: tuple[str, ...]) -> tuple[list[int | None], dict[int, str | None]]:
    """(per row: the id of the existing feature with the row's key, or None; {id: current lifecycle state}),
    the matched rows locked FOR UPDATE."""
    n = len(frame)
    optional = _optional_parts(layer, key)
    required = [k for k in key if k not in optional] or list(key)
    complete = frame[required].notna().all(axis=1).to_numpy() if n else np.array([], dtype=bool)
    idx = [int(i) for i in np.flatnonzero(complete)]
    out: list[int | None] = [None] * n
    states: dict[int, str | None] = {}
    if not idx:
        return out, states
    fields = [layer.get_field(k) for k in key]
    values = {k: frame[k].to_numpy(dtype=object) for k in key}
    arrays = [[_py(values[k][i]) for i in idx] for k in key]
    cols = [sql.Identifier(f"k{j}") for j in range(len(key))]
    state = layer.lifecycle.field if layer.lifecycle is not None else None
    q = sql.SQL("SELECT t.{id}, u.ord, {state} FROM unnest({arrays}) WITH ORDINALITY AS u({cols}, ord) "
                "JOIN {t} t ON {cond} FOR UPDATE OF t").format(
        id=sql.Identifier(layer.id_column),
        state=sql.SQL("t.{}").format(sql.Identifier(state)) if state else sql.SQL("NULL"),
        arrays=sql.SQL(", ").join(sql.SQL("%s::" + _PG.get(f.type if f else "string", "text[]")) for f in fields),
        cols=sql.SQL(", ").join(cols), t=sql.Identifier(layer.table),
        cond=sql.SQL(" AND ").join(
            # an empty optional part (a parcel without an old commune) matches an empty one, like the insert's
            # NULLS NOT DISTINCT check; the `=` parts keep the join hashable
            sql.SQL("(t.{k} = u.{c} OR (t.{k} IS NULL AND u.{c} IS NULL))" if k in optional else "t.{k} = u.{c}")
            .format(k=sql.Identifier(k), c=c) for k, c in zip(key, cols, strict=True)))
    for fid, ordinal, st in conn.execute(q, arrays).fetchall():
        out[idx[int(ordinal) - 1]] = int(fid)
        states[int(fid)] = st
    return out, states


def plan(conn: psycopg.Connection, layer: Layer, prepared: Prepared, mode: Mode, columns: list[str],
         first_row: int = 1) -> tuple[list[int | None], list[Issue]]:
    """The existing id per row and the issues of the re-import (unknown keys in update mode, lifecycle);
    `columns`: the fields the file carries (only those are written to an existing row)."""
    key = key_of(layer)
    if key is None:
        return [], [Issue(None, None, "mode", f"lớp {layer.id} không có khóa nghiệp vụ: chỉ nhập mới được (--mode insert)",
                          f"layer {layer.id} has no business key: only --mode insert is possible")]
    issues: list[Issue] = []
    optional = _optional_parts(layer, key)
    missing = [k for k in key if k not in prepared.frame.columns and k not in optional]
    if missing:
        return [], [Issue(None, k, "required", f"--mode {mode}: thiếu cột khóa {k}",
                          f"--mode {mode}: the key column {k} is missing") for k in missing]
    # an optional key part the file does not carry is empty in every row (as the insert's duplicate check reads it)
    frame = prepared.frame.assign(**{k: None for k in key if k not in prepared.frame.columns})
    ids, states = match_rows(conn, layer, frame, key)
    label = " + ".join(key)
    keys = frame[list(key)].to_numpy(dtype=object)
    for i, fid in enumerate(ids):
        if fid is None and mode == "update":
            val = ", ".join(str(_py(v)) for v in keys[i])
            issues.append(Issue(first_row + i, label, "not_found",
                                f"không có đối tượng với khóa {label} = {val} để cập nhật",
                                f"no feature with key {label} = {val} to update"))
    lc = layer.lifecycle
    if lc is not None and lc.field in prepared.frame.columns and lc.field in columns:
        new_states = prepared.frame[lc.field].to_numpy(dtype=object)
        for i, fid in enumerate(ids):
            new = new_states[i]
            if fid is None or new is None or (isinstance(new, float) and np.isnan(new)):
                continue
            old = states.get(fid)
            allowed = lc.allowed(old)
            if allowed is not None and new != old and new not in allowed:
                ok = ", ".join(allowed) or "—"
                issues.append(Issue(first_row + i, lc.field, "transition",
                                    f"không thể chuyển trạng thái từ '{old}' sang '{new}'; được phép: {ok}",
                                    f"status cannot change from '{old}' to '{new}'; allowed: {ok}"))
    issues.extend(check_db_keys(layer, prepared, conn, ids, first_row))
    return ids, issues


def write_updates(conn: psycopg.Connection, layer: Layer, prepared: Prepared, ids: list[int | None],
                  columns: list[str], copy_csv: Callable[[Prepared], bytes]) -> int:
    """UPDATE the matched rows with the given columns (and the geometry, where the row has one) in ONE statement:
    the rows are COPYed (`copy_csv`: the importer's CSV of a Prepared) into a temporary table first, so the audit
    and tile triggers run once for the whole file."""
    rows = np.array([fid is not None for fid in ids], dtype=bool)
    if not rows.any():
        return 0
    part = subset(prepared, rows)
    names = [f.name for f in layer.fields if f.name in columns and f.name in part.frame.columns]  # copy_csv's order
    part.frame = part.frame[names]
    geom = sql.Identifier(layer.geometry_column)
    cols = [sql.Identifier(c) for c in names]
    conn.execute(sql.SQL("CREATE TEMP TABLE datso_reimport ON COMMIT DROP AS SELECT {cols} FROM {t} WITH NO DATA").format(
        cols=sql.SQL(", ").join([*cols, geom]), t=sql.Identifier(layer.table)))
    conn.execute("ALTER TABLE datso_reimport ADD COLUMN datso_ord bigserial")
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY datso_reimport ({}) FROM STDIN (FORMAT csv)").format(
            sql.SQL(", ").join([*cols, geom]))) as cp:
        cp.write(copy_csv(part))
    conn.execute("CREATE TEMP TABLE datso_reimport_ids ON COMMIT DROP AS "
                 "SELECT fid, ord FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(fid, ord)",
                 [[fid for fid in ids if fid is not None]])
    conn.execute("ANALYZE datso_reimport")           # row counts for the planner: a hash join, not a nested loop
    conn.execute("ANALYZE datso_reimport_ids")
    sets = [sql.SQL("{c} = s.{c}").format(c=c) for c in cols]
    sets.append(sql.SQL("{g} = coalesce(s.{g}, t.{g})").format(g=geom))     # no geometry in the file: unchanged
    conn.execute(sql.SQL("UPDATE {t} t SET {sets} FROM (SELECT r.*, u.fid FROM datso_reimport r JOIN "
                         "datso_reimport_ids u ON u.ord = r.datso_ord) s "
                         "WHERE t.{id} = s.fid").format(t=sql.Identifier(layer.table), sets=sql.SQL(", ").join(sets),
                                                        id=sql.Identifier(layer.id_column)))
    conn.execute("DROP TABLE datso_reimport, datso_reimport_ids")
    return int(rows.sum())


def subset(prepared: Prepared, mask: np.ndarray) -> Prepared:
    """The rows of `mask` as a Prepared of their own (the inserts of an upsert)."""
    return Prepared(prepared.layer, prepared.frame[mask].reset_index(drop=True), prepared.geometry[mask], [],
                    prepared.first_row, 0)


__all__ = ["MODES", "Mode", "match_rows", "plan", "subset", "write_updates"]
