"""The one selection: which features of a layer a request, an export or an analyst asks for.

Every face (items, tiles, Folium exports over HTTP and `datso map export`, `datso export`, `read_layer`) reads
its inputs with the parsers below, one per kind of input:

- `parse_bbox` (+ `resolve_crs` for bbox-crs): 4 or 6 finite numbers, west <= east, south <= north;
- `parse_datetime`: an RFC 3339 instant or date, or an interval a/b with open ends (..);
- `equality_filters` / `coerce_value`: `?field=value` on a queryable, strict (ASCII digits, bigint range,
  finite numbers, the field's vocabulary; an array field matches when it contains the value);
- CQL2 text or JSON with filter-crs: `layers.query.cql2.parse` (bounded parsing).

`parse_selection` combines them into a `Selection`, whose `tree()` is ONE CQL2-JSON expression (bbox ->
S_INTERSECTS with an envelope in the bbox CRS, datetime -> T_INTERSECTS on the layer's temporal field(s),
field=value -> `=`, and the filter) and whose `sql()` translates it with the one translator
(`layers.query.cql2.Translator`) into parameterised SQL for asyncpg (`$n`) or psycopg (`%(pn)s`). A bad input
raises `QueryError` (400) where it is detected, with the same message on every face.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from gis.crs import CrsDef, CrsError, get_crs, list_crs
from layers.catalog import labels
from layers.catalog.registry import Layer, LayerField
from layers.ingest.validation import AmbiguousNumber, CoercionError, read_number
from layers.query.cql2 import CqlError, Translator, parse

CRS84 = get_crs("OGC:CRS84")


class QueryError(CqlError):
    """A bad selection or query parameter (bbox, datetime, crs, field=value, sortby, ...): a 400."""


def published_crs() -> list[CrsDef]:
    return list(list_crs())


def resolve_crs(text: str | None, param: str) -> CrsDef:
    """A CRS from the registry given as URI, URN, CURIE, EPSG code or datso alias; others are refused."""
    if text is None or text == "":
        return CRS84
    try:
        c = get_crs(text)
    except CrsError as exc:
        raise QueryError(f"{param}: hệ tọa độ '{text}' không được hỗ trợ ({exc})",
                         f"{param}: CRS '{text}' is not supported ({exc})") from None
    if c not in published_crs():
        raise QueryError(f"{param}: hệ tọa độ '{text}' không có trong danh sách của dịch vụ",
                         f"{param}: CRS '{text}' is not one of the CRSs this service publishes")
    return c


# -- bbox ----------------------------------------------------------------------------------------------------

def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """minx,miny,maxx,maxy (or the 6-number 3D form) in the bbox's CRS axis order."""
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise QueryError("bbox cần 4 (hoặc 6) số cách nhau bởi dấu phẩy: minx,miny,maxx,maxy",
                         "bbox needs 4 (or 6) comma-separated numbers: minx,miny,maxx,maxy")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise QueryError(f"bbox phải gồm các số: '{text[:80]}'", f"bbox values must be numbers: '{text[:80]}'") from None
    if any(n != n or n in (float("inf"), float("-inf")) for n in nums):
        raise QueryError("bbox phải gồm các số hữu hạn", "bbox values must be finite numbers")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    x1, y1, x2, y2 = nums
    if y1 > y2:
        raise QueryError("bbox: cạnh dưới lớn hơn cạnh trên (vĩ độ nam lớn hơn vĩ độ bắc)",
                         "bbox: the lower bound exceeds the upper bound (south is north of north)")
    if x1 > x2:
        raise QueryError("bbox: cạnh trái lớn hơn cạnh phải (kinh độ tây lớn hơn kinh độ đông)",
                         "bbox: the left bound exceeds the right bound (west is east of east)")
    return x1, y1, x2, y2


# -- datetime ------------------------------------------------------------------------------------------------

def _instant(text: str, end: bool) -> dt.datetime | None:
    if text in ("..", ""):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = dt.date.fromisoformat(text)
            t = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
            # the last instant of the day (no `+ 1 day`: 9999-12-31 has no next day)
            return dt.datetime.combine(d, dt.time.max, tzinfo=dt.UTC) if end else t
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(f"datetime '{text[:60]}' không hợp lệ: không đúng RFC 3339 hoặc ngày giờ không tồn tại "
                         "(vd. 2025-07-01 hoặc 2025-07-01T00:00:00Z)",
                         f"datetime '{text[:60]}' is not RFC 3339 or does not exist "
                         "(e.g. 2025-07-01 or 2025-07-01T00:00:00Z)") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_datetime(text: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(start, end) of an instant (a date: the whole UTC day) or an interval; an open end is None."""
    if "/" in text:
        a, _, b = text.partition("/")
        start, end = _instant(a, False), _instant(b, True)
        if start is None and end is None:
            raise QueryError("datetime '../..' không giới hạn gì", "datetime '../..' is not a valid interval")
        if start and end and start > end:
            raise QueryError("datetime: mốc đầu sau mốc cuối", "datetime: the start is after the end")
        return start, end
    if text == "..":
        raise QueryError("datetime '..' chỉ dùng được trong khoảng", "datetime '..' is only valid in an interval")
    return _instant(text, False), _instant(text, True)


def _check_temporal(layer: Layer) -> None:
    if layer.temporal is None:
        raise QueryError(f"Lớp '{layer.id}' không có trường thời gian nên không lọc được theo datetime",
                         f"Collection '{layer.id}' has no temporal property; datetime cannot be used")


# -- field=value ---------------------------------------------------------------------------------------------

def get_queryable(layer: Layer, name: str) -> LayerField:
    """The queryable `name` of `layer`, or a QueryError listing the ones there are."""
    for f in layer.queryables:
        if f.name == name:
            return f
    names = ", ".join(f.name for f in layer.queryables)
    raise QueryError(f"Tham số '{name[:40]}' không phải thuộc tính lọc được của lớp {layer.id}; "
                     f"có thể lọc theo: {names}",
                     f"'{name[:40]}' is not a queryable of layer {layer.id}; queryables: {names}")


def equality_filters(layer: Layer, query: Mapping[str, str],
                     skip: frozenset[str] | set[str] = frozenset()) -> list[tuple[LayerField, str, Any]]:
    """Every `?field=value` of `query` (names in `skip` are not filters), as (field, raw text, typed value),
    in name order; an unknown name or a bad value raises QueryError."""
    out = []
    for name in sorted(query):
        if name in skip:
            continue
        f = get_queryable(layer, name)
        out.append((f, query[name], coerce_value(f, query[name], layer)))
    return out


INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
_INT_RE = re.compile(r"[+-]?[0-9]{1,25}")
_NUM_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")


def coerce_value(f: LayerField, text: str, layer: Layer | None = None) -> Any:
    """A `field=value` value converted to the field's type (an array field: its item type) and checked against
    the field's vocabulary: the one reading of equality filters on every face."""
    kind = f.item_type if f.type == "array" and f.item_type else f.type
    allowed = f.items_enum if f.type == "array" else f.enum
    bad = QueryError(f"Giá trị '{text[:60]}' không hợp với thuộc tính '{f.name}' ({kind})",
                     f"Value '{text[:60]}' does not fit property '{f.name}' ({kind})")
    if kind == "number" and ("," in text or "." in text):
        try:     # the one reading of written numbers: 1.250,5 -> 1250.5; an ambiguous 1.250 is refused
            text = read_number(text)
        except AmbiguousNumber as exc:
            raise QueryError(f"{f.name}: {exc.vi}", f"{f.name}: {exc.en}") from None
        except CoercionError:
            raise bad from None
    try:
        if kind == "integer":
            # ASCII digits only ('¹' and '٣' are text, not numbers) and within bigint, the type the value is
            # cast to (a value beyond a narrower column's range then simply matches nothing)
            if not _INT_RE.fullmatch(text) or not INT8_MIN <= (i := int(text)) <= INT8_MAX:
                raise bad
            return i
        if kind == "number":
            if not _NUM_RE.fullmatch(text):
                raise bad
            d = Decimal(text)
            if not d.is_finite() or abs(d.adjusted()) > 1000:   # numeric's range is wide; 1e99999 is not a value
                raise bad
            return d
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise bad
            return text.lower() == "true"
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "date-time":
            t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    except (ValueError, InvalidOperation):
        raise bad from None
    if allowed is not None and text not in allowed:
        code = labels.resolve(layer, f, text)      # a label, any case, with or without diacritics
        if code is None:
            names = ", ".join(labels.labels(layer, f).values())
            raise QueryError(f"Giá trị '{text[:60]}' của {f.name} không hợp lệ; chọn một trong: {', '.join(allowed)}"
                             + (f"; hoặc theo tên: {names}" if names else ""),
                             f"Invalid value '{text[:60]}' for {f.name}; one of: {', '.join(allowed)}"
                             + (f"; or by name: {names}" if names else ""))
        return code
    return text


def _literal(value: Any) -> Any:
    """A typed `field=value` value as a CQL2-JSON literal (numbers as text: no float rounding)."""
    if isinstance(value, dt.datetime):
        return {"timestamp": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return str(value)
    return value


def _iso(t: dt.datetime | None) -> str:
    return ".." if t is None else t.isoformat().replace("+00:00", "Z")


# -- the selection -------------------------------------------------------------------------------------------

@dataclass
class Selection:
    """A parsed, validated selection on one layer (build it with `parse_selection`)."""

    layer: Layer
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: CrsDef = CRS84
    datetime: tuple[dt.datetime | None, dt.datetime | None] | None = None
    datetime_text: str = ""
    equals: list[tuple[LayerField, str, Any]] = field(default_factory=list)
    filter: dict[str, Any] | None = None        # the parsed CQL2 filter (CQL2-JSON)
    filter_text: str = ""
    filter_lang: str = "cql2-text"
    filter_crs: str | None = None

    @property
    def empty(self) -> bool:
        return self.bbox is None and self.datetime is None and not self.equals and self.filter is None

    def _bbox_node(self) -> dict[str, Any]:
        assert self.bbox is not None
        return {"op": "s_intersects", "args": [{"property": self.layer.geometry_column}, {"bbox": list(self.bbox)}]}

    def _datetime_node(self) -> dict[str, Any]:
        assert self.datetime is not None and self.layer.temporal is not None
        start, end = self.layer.temporal
        target: Any = {"property": start} if end is None else {"interval": [{"property": start}, {"property": end}]}
        return {"op": "t_intersects", "args": [target, {"interval": [_iso(self.datetime[0]), _iso(self.datetime[1])]}]}

    def _equal_nodes(self) -> list[dict[str, Any]]:
        return [{"op": "=", "args": [{"property": f.name}, _literal(v)]} for f, _, v in self.equals]

    def tree(self) -> dict[str, Any] | None:
        """The whole selection as one CQL2-JSON expression (None: everything). The bbox envelope is in
        `bbox_crs` and the filter's geometries in `filter_crs`."""
        parts: list[dict[str, Any]] = []
        if self.bbox is not None:
            parts.append(self._bbox_node())
        if self.datetime is not None:
            parts.append(self._datetime_node())
        parts += self._equal_nodes()
        if self.filter is not None:
            parts.append(self.filter)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"op": "and", "args": parts}

    def translator(self, param_offset: int = 0, column_prefix: str = "t.", style: str = "asyncpg") -> Translator:
        return Translator(self.layer, None, param_offset, column_prefix, style)

    def where(self, tr: Translator) -> str:
        """The selection's SQL condition (without WHERE) written with `tr`, which collects the parameters.

        The one translator writes every part of `tree()`; the datetime node is written by
        `Translator.datetime_window` because the `datetime` parameter reads an interval layer's NULL end as
        "still valid" (a CQL2 T_INTERSECTS on the two properties would not match it)."""
        parts: list[str] = []
        if self.bbox is not None:
            tr.set_crs(self.bbox_crs.key)
            parts.append(tr.predicate(self._bbox_node()))
        if self.datetime is not None:
            parts.append(tr.datetime_window(*self.datetime))
        tr.set_crs(None)
        parts += [tr.predicate(node) for node in self._equal_nodes()]
        if self.filter is not None:
            tr.set_crs(self.filter_crs)
            parts.append(tr.predicate(self.filter))
        return " AND ".join(parts) if parts else "TRUE"

    def sql(self, param_offset: int = 0, column_prefix: str = "t.") -> tuple[str, list[Any]]:
        """(condition, parameters) for asyncpg, placeholders numbered from `param_offset + 1`."""
        tr = self.translator(param_offset, column_prefix)
        return self.where(tr), tr.params

    def description(self) -> str:
        """A human-readable summary (the title of a map export)."""
        desc = [f"{f.name}={raw}" for f, raw, _ in self.equals]
        if self.bbox is not None:
            desc.append("bbox=" + ",".join(f"{v:g}" for v in self.bbox))
        if self.datetime is not None:
            desc.append(f"datetime={self.datetime_text}")
        if self.filter is not None:
            desc.append(f"filter={self.filter_text[:200]}")
        return "; ".join(desc)


def parse_selection(layer: Layer, *, bbox: str | None = None, bbox_crs: str | None = None,
                    datetime: str | None = None, equals: Mapping[str, str] | None = None,
                    filter: str | None = None, filter_lang: str | None = None,  # noqa: A002 - the OGC name
                    filter_crs: str | None = None) -> Selection:
    """Parse and check every input of a selection (None: not given), in the order bbox, bbox-crs, datetime,
    filter (translated once here, so a bad filter fails before any database work), field=value."""
    sel = Selection(layer)
    if bbox is not None:
        sel.bbox = parse_bbox(bbox)
        sel.bbox_crs = resolve_crs(bbox_crs, "bbox-crs")
    elif bbox_crs is not None:
        raise QueryError("bbox-crs chỉ dùng kèm bbox", "bbox-crs needs bbox")
    if datetime is not None:
        _check_temporal(layer)
        sel.datetime = parse_datetime(datetime)
        sel.datetime_text = datetime
    if filter is not None:
        sel.filter_lang = filter_lang or "cql2-text"
        if filter_crs is not None:
            resolve_crs(filter_crs, "filter-crs")
        sel.filter_crs = filter_crs
        sel.filter_text = filter
        try:
            sel.filter = parse(filter, sel.filter_lang)
            Translator(layer, filter_crs).predicate(sel.filter)
        except CqlError as exc:     # the message names the parameter, like every other selection error
            raise QueryError(f"filter: {exc.vi}", f"filter: {exc.en}", exc.status) from None
    elif filter_lang is not None or filter_crs is not None:
        raise QueryError("filter-lang/filter-crs chỉ dùng kèm filter", "filter-lang/filter-crs need filter")
    if equals:
        sel.equals = equality_filters(layer, equals)
    return sel


def parse_where(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`field=value` pairs of the command line (`--where status=sold`, several joined by ';' allowed) as the
    query mapping `parse_selection(equals=...)` reads; a field given twice is refused like a repeated query
    parameter."""
    out: dict[str, str] = {}
    for pair in pairs:
        for part in [p for p in pair.split(";") if p.strip()]:
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise QueryError(f"--where sai cú pháp: {part!r} (dùng truong=gia_tri; expected queryable=value)",
                                 f"bad --where {part!r} (use field=value; expected queryable=value)")
            name = name.strip()
            if name in out:
                raise QueryError(f"Tham số '{name}' chỉ được dùng một lần", f"Parameter '{name}' may be given only once")
            out[name] = value.strip()
    return out
