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

from typing import Any, Literal

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from psycopg.types.json import Jsonb
from shapely import wkb

from layers.catalog.registry import Layer
from layers.ingest.validation import Issue, Prepared, _py, business_keys, check_db_keys

Mode = Literal["insert", "update", "upsert"]
MODES: tuple[str, ...] = ("insert", "update", "upsert")
_PG = {"string": "text[]", "integer": "int8[]", "number": "numeric[]", "date": "date[]",
       "date-time": "timestamptz[]", "boolean": "bool[]"}


def key_of(layer: Layer) -> tuple[str, ...] | None:
    keys = business_keys(layer)
    return keys[0] if keys else None


def match_rows(conn: psycopg.Connection, layer: Layer, frame: pd.DataFrame,
               key: tuple[str, ...]) -> tuple[list[int | None], dict[int, str | None]]:
    """(per row: the id of the existing feature with the row's key, or None; {id: current lifecycle state}),
    the matched rows locked FOR UPDATE."""
    n = len(frame)
    complete = frame[list(key)].notna().all(axis=1).to_numpy() if n else np.array([], dtype=bool)
    idx = [int(i) for i in np.flatnonzero(complete)]
    out: list[int | None] = [None] * n
    states: dict[int, str | None] = {}
    if not idx:
        return out, states
    fields = [layer.get_field(k) for k in key]
    arrays = [[_py(frame[k].to_numpy(dtype=object)[i]) for i in idx] for k in key]
    cols = [sql.Identifier(f"k{j}") for j in range(len(key))]
    state = layer.lifecycle.field if layer.lifecycle is not None else None
    q = sql.SQL("SELECT t.{id}, u.ord, {state} FROM unnest({arrays}) WITH ORDINALITY AS u({cols}, ord) "
                "JOIN {t} t ON {cond} FOR UPDATE OF t").format(
        id=sql.Identifier(layer.id_column),
        state=sql.SQL("t.{}").format(sql.Identifier(state)) if state else sql.SQL("NULL"),
        arrays=sql.SQL(", ").join(sql.SQL("%s::" + _PG.get(f.type if f else "string", "text[]")) for f in fields),
        cols=sql.SQL(", ").join(cols), t=sql.Identifier(layer.table),
        cond=sql.SQL(" AND ").join(sql.SQL("t.{} = u.{}").format(sql.Identifier(k), c)
                                   for k, c in zip(key, cols, strict=True)))
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
    missing = [k for k in key if k not in prepared.frame.columns]
    if missing:
        return [], [Issue(None, k, "required", f"--mode {mode}: thiếu cột khóa {k}",
                          f"--mode {mode}: the key column {k} is missing") for k in missing]
    ids, states = match_rows(conn, layer, prepared.frame, key)
    label = " + ".join(key)
    keys = prepared.frame[list(key)].to_numpy(dtype=object)
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


def _value(layer: Layer, name: str, v: Any) -> Any:
    f = layer.get_field(name)
    if v is None or (not isinstance(v, list | dict) and pd.isna(v)):
        return None
    v = _py(v)
    return Jsonb(v) if f is not None and f.type == "object" else v


def write_updates(conn: psycopg.Connection, layer: Layer, prepared: Prepared, ids: list[int | None],
                  columns: list[str]) -> int:
    """UPDATE the matched rows with the given columns (and the geometry when the row has one)."""
    rows = [i for i, fid in enumerate(ids) if fid is not None]
    if not rows:
        return 0
    geoms = prepared.geometry
    has_geom = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) if len(geoms) else np.array([], dtype=bool)
    frame = prepared.frame
    for with_geom in (False, True):
        subset = [i for i in rows if bool(has_geom[i]) == with_geom]
        if not subset or (not columns and not with_geom):
            continue
        names = [c for c in columns if c in frame.columns]
        sets = [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in names]
        if with_geom:
            sets.append(sql.SQL("{} = ST_SetSRID(ST_GeomFromWKB(%s), 4326)").format(
                sql.Identifier(layer.geometry_column)))
        q = sql.SQL("UPDATE {t} SET {sets} WHERE {id} = %s").format(
            t=sql.Identifier(layer.table), sets=sql.SQL(", ").join(sets), id=sql.Identifier(layer.id_column))
        params = []
        for i in subset:
            p = [_value(layer, c, frame[c].iat[i]) for c in names]
            if with_geom:
                p.append(wkb.dumps(geoms[i]))
            p.append(ids[i])
            params.append(p)
        with conn.cursor() as cur:
            cur.executemany(q, params)
    return len(rows)


def subset(prepared: Prepared, mask: np.ndarray) -> Prepared:
    """The rows of `mask` as a Prepared of their own (the inserts of an upsert)."""
    return Prepared(prepared.layer, prepared.frame[mask].reset_index(drop=True), prepared.geometry[mask], [],
                    prepared.first_row, 0)


__all__ = ["MODES", "Mode", "match_rows", "plan", "subset", "write_updates"]
