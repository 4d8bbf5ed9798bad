"""Aggregates over any selection: counts, sums, means, minima and maxima grouped by whitelisted fields.

`GET /collections/{id}/aggregate?group_by=commune_code,crop&sum=area_m2&avg=area_m2&count=expected_yield_t`
reads the same selection as items (bbox, datetime, CQL2 filter, ?field=value: `layers.query.selection`) and
answers one row per group. The syntax (docs/aggregates.md):

- `group_by`: comma-separated queryable fields of a scalar type (text, code, integer, boolean, date); a date or
  timestamp may be grouped by period with a suffix: `valid_from:year`, `valid_from:month`, `auction_date:day`
  (timestamps in Vietnam time). The key of a period is its ISO text (`2025`, `2025-03`, `2025-03-01`).
- `count` is always given (rows per group); `count=f1,f2` adds the number of non-empty values of each field.
- `sum`, `avg`: numeric fields; `min`, `max`: numeric or date fields. A result is named `<op>_<field>`.
- at most `DATSO_AGGREGATE_MAX_GROUPS` groups (more: 413 naming the setting: narrow the selection).

Every identifier comes from the registry (`quote_ident`); values are parameters of the selection's one
translation. `transitions()` counts a lifecycle layer's status changes per period from the audit `history`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from layers.catalog.formats import format_value
from layers.catalog.registry import Layer, LayerField
from layers.query.selection import QueryError, Selection
from layers.store.sql import quote_ident

OPS = ("count", "sum", "avg", "min", "max")
PERIODS = ("year", "month", "day")
_PERIOD_FORMAT = {"year": "YYYY", "month": "YYYY-MM", "day": "YYYY-MM-DD"}
_GROUPABLE = ("string", "integer", "boolean", "date", "date-time")
_NUMERIC = ("integer", "number")
_ORDERED = ("integer", "number", "date", "date-time")
VN_TZ = "Asia/Ho_Chi_Minh"
MAX_GROUP_FIELDS = 4


class AggregateError(QueryError):
    """A bad aggregate parameter (unknown or non-whitelisted field, wrong type for the operation): a 400."""


class TooManyGroups(QueryError):
    status = 413


@dataclass(frozen=True)
class GroupKey:
    field: LayerField
    period: str | None = None

    @property
    def name(self) -> str:
        return self.field.name if self.period is None else f"{self.field.name}:{self.period}"


@dataclass
class AggregateQuery:
    group_by: list[GroupKey] = field(default_factory=list)
    measures: list[tuple[str, LayerField]] = field(default_factory=list)   # (op, field); count(*) always

    def columns(self) -> list[str]:
        return ["count"] + [f"{op}_{f.name}" for op, f in self.measures]


def _field(layer: Layer, param: str, name: str) -> LayerField:
    f = layer.get_field(name)
    if f is None or not f.public:
        names = ", ".join(x.name for x in layer.queryables)
        raise AggregateError(f"{param}: '{name[:60]}' không phải thuộc tính của lớp {layer.id} (có: {names})",
                             f"{param}: '{name[:60]}' is not a field of {layer.id} (fields: {names})")
    return f


def _names(param: str, text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise AggregateError(f"{param}: danh sách thuộc tính có phần tử rỗng", f"{param}: an empty field name")
    if len(set(names)) != len(names):
        raise AggregateError(f"{param}: một thuộc tính được nêu hai lần", f"{param}: a field is named twice")
    return names


def parse_aggregate(layer: Layer, *, group_by: str | None = None, count: str | None = None,
                    sum: str | None = None, avg: str | None = None,  # noqa: A002 - the parameter names
                    min: str | None = None, max: str | None = None) -> AggregateQuery:  # noqa: A002
    """Check every name against the registry; a bad one is a 400 naming the parameter and the field."""
    q = AggregateQuery()
    if group_by:
        names = _names("group_by", group_by)
        if len(names) > MAX_GROUP_FIELDS:
            raise AggregateError(f"group_by: tối đa {MAX_GROUP_FIELDS} thuộc tính",
                                 f"group_by: at most {MAX_GROUP_FIELDS} fields")
        for name in names:
            base, _, period = name.partition(":")
            f = _field(layer, "group_by", base)
            if not f.queryable or f.type not in _GROUPABLE:
                raise AggregateError(f"group_by: không nhóm được theo '{base}' (chỉ thuộc tính truy vấn được, "
                                     "kiểu chữ, số nguyên, đúng/sai hoặc ngày)",
                                     f"group_by: cannot group by '{base}' (only queryable text, integer, boolean "
                                     "or date fields)")
            if period:
                if f.type not in ("date", "date-time") or period not in PERIODS:
                    raise AggregateError(f"group_by: '{name[:60]}': chỉ trường ngày nhóm theo "
                                         f"{'/'.join(PERIODS)}", f"group_by: '{name[:60]}': only a date field "
                                         f"may be grouped by {'/'.join(PERIODS)}")
            q.group_by.append(GroupKey(f, period or None))
    for op, text in (("count", count), ("sum", sum), ("avg", avg), ("min", min), ("max", max)):
        if text is None:
            continue
        if text == "" and op == "count":
            continue
        for name in _names(op, text):
            f = _field(layer, op, name)
            allowed = {"count": None, "sum": _NUMERIC, "avg": _NUMERIC, "min": _ORDERED, "max": _ORDERED}[op]
            if allowed is not None and f.type not in allowed:
                kind_vi = "số" if allowed is _NUMERIC else "số hoặc ngày"
                kind_en = "numeric" if allowed is _NUMERIC else "numeric or date"
                raise AggregateError(f"{op}: '{name}' không phải trường {kind_vi}",
                                     f"{op}: '{name}' is not a {kind_en} field")
            q.measures.append((op, f))
    return q


def _key_sql(k: GroupKey) -> str:
    col = "t." + quote_ident(k.field.name)
    if k.period is None:
        return col
    if k.field.type == "date-time":
        col = f"({col} AT TIME ZONE '{VN_TZ}')"
    return f"to_char(date_trunc('{k.period}', {col}), '{_PERIOD_FORMAT[k.period]}')"


def _measure_sql(op: str, f: LayerField) -> str:
    col = "t." + quote_ident(f.name)
    if op == "count":
        return f"count({col})"
    return f"{op}({col})"


def aggregate_sql(layer: Layer, sel: Selection | None, q: AggregateQuery, max_groups: int) -> tuple[str, list[Any]]:
    """ONE statement: the groups (at most `max_groups` + 1, to tell "more"), ordered by their keys."""
    params: list[Any] = []
    where = "TRUE"
    if sel is not None:
        where, params = sel.sql()
    keys = [_key_sql(k) for k in q.group_by]
    cols = [f"{k} AS k{i}" for i, k in enumerate(keys)] + ["count(*) AS m0"]
    cols += [f"{_measure_sql(op, f)} AS m{i + 1}" for i, (op, f) in enumerate(q.measures)]
    sql = f"SELECT {', '.join(cols)} FROM {quote_ident(layer.table)} t WHERE {where}"  # noqa: S608
    if keys:
        order = ", ".join(f"{i + 1} NULLS LAST" for i in range(len(keys)))
        sql += f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))} ORDER BY {order}"
    params.append(max_groups + 1)
    sql += f" LIMIT ${len(params)}::int"
    return sql, params


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() and abs(v) < 2**53 else float(v)
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return v


@dataclass
class AggregateResult:
    layer: Layer
    query: AggregateQuery
    groups: list[dict[str, Any]]

    def document(self, lang: str = "vi") -> dict[str, Any]:
        out = []
        for g in self.groups:
            keys = g["key"]
            labels = {k.name: (format_value(k.field, keys[k.name], lang) if k.period is None and
                               keys[k.name] is not None else keys[k.name]) for k in self.query.group_by}
            out.append({"key": keys, "label": labels, "values": g["values"]})
        return {"collection": self.layer.id, "group_by": [k.name for k in self.query.group_by],
                "values": self.query.columns(),
                "titles": {k.name: (k.field.title_vi if lang == "vi" else k.field.title_en)
                           for k in self.query.group_by},
                "numberGroups": len(out), "groups": out}

    def rows(self, lang: str = "vi") -> tuple[list[str], list[list[Any]]]:
        """A table for CSV: key columns, their labels (for coded fields), then the values."""
        labelled = [k for k in self.query.group_by if k.period is None and k.field.format in
                    ("label", "crop", "land_use", "boolean")]
        header = [k.name for k in self.query.group_by] + [f"{k.name}_label" for k in labelled] + self.query.columns()
        doc = self.document(lang)["groups"]
        rows = [[g["key"][k.name] for k in self.query.group_by] + [g["label"][k.name] for k in labelled]
                + [g["values"][c] for c in self.query.columns()] for g in doc]
        return header, rows


async def aggregate(conn: asyncpg.Connection, layer: Layer, sel: Selection | None, q: AggregateQuery,
                    max_groups: int) -> AggregateResult:
    sql, params = aggregate_sql(layer, sel, q, max_groups)
    records = await conn.fetch(sql, *params)
    if len(records) > max_groups:
        raise TooManyGroups(f"Quá nhiều nhóm: hơn {max_groups} (DATSO_AGGREGATE_MAX_GROUPS); hãy thu hẹp lựa chọn "
                            "hoặc nhóm theo ít thuộc tính hơn",
                            f"Too many groups: more than {max_groups} (DATSO_AGGREGATE_MAX_GROUPS); narrow the "
                            "selection or group by fewer fields")
    cols = q.columns()
    groups = [{"key": {k.name: _plain(r[f"k{i}"]) for i, k in enumerate(q.group_by)},
               "values": {c: _plain(r[f"m{i}"]) for i, c in enumerate(cols)}} for r in records]
    return AggregateResult(layer, q, groups)


# -- status transitions from the audit history --------------------------------------------------------------

def transitions_sql(layer: Layer, period: str) -> str:
    """Per period and new status: how many features of `layer` entered that status (an insert with it, or an
    update that changed it), from `history` (written by the audit triggers). $1: layer id, $2/$3: the window,
    $4: the status field."""
    assert layer.lifecycle is not None and period in PERIODS
    return (f"SELECT to_char(date_trunc('{period}', h.at AT TIME ZONE '{VN_TZ}'), "  # noqa: S608 - whitelisted
            f"'{_PERIOD_FORMAT[period]}') AS p, h.after->>$4 AS s, count(*) AS n FROM history h "
            "WHERE h.layer = $1 AND h.action IN ('insert', 'update') AND h.after ? $4 "
            "AND (h.action = 'insert' OR h.before->>$4 IS DISTINCT FROM h.after->>$4) "
            "AND ($2::timestamptz IS NULL OR h.at >= $2) AND ($3::timestamptz IS NULL OR h.at <= $3) "
            "GROUP BY 1, 2 ORDER BY 1, 2")


async def transitions(conn: asyncpg.Connection, layer: Layer, period: str = "month",
                      window: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
                      lang: str = "vi") -> dict[str, Any]:
    if layer.lifecycle is None:
        raise AggregateError(f"Lớp {layer.id} không có vòng đời trạng thái", f"Layer {layer.id} has no status lifecycle")
    if period not in PERIODS:
        raise AggregateError(f"period phải là một trong {', '.join(PERIODS)}", f"period must be one of {', '.join(PERIODS)}")
    st = layer.lifecycle.field
    rows = await conn.fetch(transitions_sql(layer, period), layer.id, window[0], window[1], st)
    labels = {s.code: (s.label_vi if lang == "vi" else s.label_en) for s in layer.lifecycle.states}
    return {"collection": layer.id, "period": period, "field": st,
            "transitions": [{"period": r["p"], "to": r["s"], "label": labels.get(r["s"], r["s"]), "count": r["n"]}
                            for r in rows]}
