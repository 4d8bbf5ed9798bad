"""Validation of records for a registry layer — the one place where values are coerced and checked, used by
the file importer and by the OGC API transactions.

A record is `(properties, geometry)`: a dict keyed by registry field names and a shapely geometry in lon/lat
(EPSG:4326). Checks: unknown fields, required fields, types (with coercion: "12" -> 12, "01/07/2025" ->
date, "ONT,CLN" -> ["ONT", "CLN"]), text length, enums and array-item enums (legacy land-use codes mapped
with a warning), minimum values, numeric precision, geometry (present, valid — or repaired on request with
a warning saying the shape changed —, of the layer's type, inside Vietnam, lon/lat not metres, SRID 4326),
business keys (code_field / unique_together) duplicated inside the batch or already in the database.

    issues = validate_records(layer, [(props, geom)], conn)          # list[Issue]
    prepared = prepare_records(layer, [(props, geom)], conn)          # coerced values + geometries + issues
    prepared.records()  # -> [dict] ready to write (MultiPolygon-normalised geometry in prepared.geometry)

The column-wise `prepare_frame` does the work (vectorised: an import of 200k rows does not loop in Python
per check); the record functions wrap it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Numeric

from gis import geometry as geo
from gis.errors import BilingualError
from layers.catalog import labels
from layers.catalog.registry import Layer, LayerField
from layers.store import vocab

Severity = Literal["error", "warning"]
VN_TZ = dt.timezone(dt.timedelta(hours=7))
MAX_ROW_ISSUES = 100_000


@dataclass(frozen=True)
class Issue:
    """One problem with one row (row None: the whole batch) and field (None: the record/geometry)."""

    row: int | None
    field: str | None
    code: str
    message_vi: str
    message_en: str
    severity: Severity = "error"

    def message(self, lang: str = "vi") -> str:
        return self.message_vi if lang == "vi" else self.message_en

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def as_dict(self, lang: str = "vi") -> dict[str, Any]:
        """JSON-friendly form (e.g. for a problem+json `errors` member)."""
        return {"row": self.row, "field": self.field, "code": self.code, "severity": self.severity,
                "message": self.message(lang)}

    def describe(self, lang: str = "vi") -> str:
        where = []
        if self.row is not None:
            where.append(("dòng " if lang == "vi" else "row ") + str(self.row))
        if self.field:
            where.append(("trường " if lang == "vi" else "field ") + self.field)
        return (", ".join(where) + ": " if where else "") + self.message(lang)


class CoercionError(BilingualError):
    """A value that does not fit its field's type."""

    code = "type"


class LimitError(CoercionError):
    """A value of the right type outside what its column can hold or the field accepts (issue code `code`)."""

    def __init__(self, code: str, vi: str, en: str) -> None:
        super().__init__(vi, en)
        self.code = code


INT64 = (-(2**63), 2**63 - 1)
MAX_JSON_DEPTH = 32     # nesting of a JSON (jsonb) field's value


def _nul(where_vi: str = "", where_en: str = "") -> LimitError:
    return LimitError("nul", f"{where_vi} chứa ký tự NUL (\\u0000)".strip(),
                      f"{where_en} contains a NUL character (\\u0000)".strip())


# ------------------------------------------------------------------------------------- value coercion
_TRUE = {"true", "t", "1", "yes", "y", "có", "co", "x", "đúng"}
_FALSE = {"false", "f", "0", "no", "n", "không", "khong", "sai"}
_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$", re.ASCII)


def _is_na(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip() == ""


# The decimal separator a file declares (`datso import --decimal-separator`), for the numbers read while it is set
# (`decimal_separator()`); None: decided per value, an ambiguous value is refused.
DECIMAL_SEPARATOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("datso_decimal", default=None)
_GROUPED = {".": re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+", re.ASCII), ",": re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+", re.ASCII)}
_PLAIN = re.compile(r"[+-]?[0-9.,]+", re.ASCII)


@contextlib.contextmanager
def decimal_separator(sep: str | None) -> Iterator[None]:
    """Numbers read inside the block take `sep` ("," or ".") as their decimal separator."""
    if sep not in (None, ",", "."):
        raise ValueError(sep)
    token = DECIMAL_SEPARATOR.set(sep)
    try:
        yield
    finally:
        DECIMAL_SEPARATOR.reset(token)


class AmbiguousNumber(CoercionError):
    """`1.250`: a thousands separator (1250) or a decimal one (1.25)? Refused rather than guessed."""

    code = "ambiguous_number"


def read_number(text: str, decimal: str | None = None) -> str:
    """A number as people write it -> its plain form for Decimal(): `1.250,5` and `1,250.5` -> "1250.5",
    `1.250.000` -> "1250000", `12,5` -> "12.5", `0.250` -> "0.250". A single separator followed by exactly three
    digits after 1-3 leading digits (`1.250`, `100,000`) is ambiguous unless `decimal` (or the file's declared
    separator) says which it is: AmbiguousNumber names both readings."""
    t = text.strip().replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    if not t.isascii():
        # Unicode digits are text: Decimal("١٢٣") would read 123, int("¹") fails in other places
        raise CoercionError(f"phải là số viết bằng chữ số 0-9, không phải {text[:40]!r}",
                            f"must be a number written with the digits 0-9, not {text[:40]!r}")
    if not _PLAIN.fullmatch(t) or ("," not in t and "." not in t):
        return t                      # digits, exponents, nan...: Decimal() decides
    decimal = decimal or DECIMAL_SEPARATOR.get()
    sign = t[0] if t[0] in "+-" else ""
    body = t[len(sign):]
    last = max(body.rfind(","), body.rfind("."))
    sep = body[last]
    other = "." if sep == "," else ","
    bad = CoercionError(f"không đọc được số {text[:40]!r}", f"cannot read the number {text[:40]!r}")
    if other in body:                 # both: the last one is the decimal separator, the other groups thousands
        head, tail = body[:last], body[last + 1:]
        if body.count(sep) != 1 or not _GROUPED[other].fullmatch(head) or not tail.isdigit() \
                or (decimal is not None and decimal != sep):
            raise bad
        return sign + head.replace(other, "") + "." + tail
    if body.count(sep) > 1:           # 1.250.000: thousands only
        if not _GROUPED[sep].fullmatch(body) or decimal == sep:
            raise bad
        return sign + body.replace(sep, "")
    head, tail = body[:last], body[last + 1:]
    if not tail.isdigit() and not (tail == "" and head.isdigit()):
        raise bad
    if decimal == sep or (decimal is None and not (len(tail) == 3 and 1 <= len(head) <= 3 and head.isdigit()
                                                   and head[0] != "0")):
        return sign + (head or "0") + "." + (tail or "0")
    if decimal is not None:           # the other separator was declared decimal: this one groups thousands
        if not _GROUPED[sep].fullmatch(body):
            raise bad
        return sign + head + tail
    thousands, fraction = f"{sign}{head}{tail}", format(Decimal(f"{sign}{head}.{tail}").normalize(), "f")
    fraction_vi = fraction.replace(".", ",")
    raise AmbiguousNumber(
        f"số {text[:40]!r} không rõ nghĩa: {thousands} (dấu '{sep}' phân cách hàng nghìn) hay {fraction_vi} "
        f"(dấu '{sep}' thập phân)? Hãy viết {thousands} hoặc {fraction_vi} "
        "(nhập tệp: hoặc khai báo dấu thập phân, --decimal-separator)",
        f"the number {text[:40]!r} is ambiguous: {thousands} ('{sep}' separating thousands) or {fraction} "
        f"('{sep}' as the decimal point)? Write {thousands} or {fraction} "
        "(file import: or declare the decimal separator, --decimal-separator)")


def _number_text(v: str) -> str:
    return read_number(v)


def _int_range(n: int, bounds: tuple[int, int] = INT64) -> int:
    if not bounds[0] <= n <= bounds[1]:
        shown = str(n) if len(str(n)) <= 40 else f"{str(n)[:20]}…({len(str(n))} chữ số)"
        raise LimitError("too_large", f"vượt phạm vi số nguyên của cột ({bounds[0]} … {bounds[1]}): {shown}",
                         f"is outside the column's integer range ({bounds[0]} … {bounds[1]}): {shown}")
    return n


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise CoercionError("phải là số nguyên", "must be an integer")
    if isinstance(v, int | np.integer):
        return _int_range(int(v))
    if isinstance(v, float | Decimal | np.floating):
        if not math.isfinite(float(v)):
            raise CoercionError(f"phải là số nguyên hữu hạn, không phải {v}", f"must be a finite integer, not {v}")
        if abs(float(v)) >= 2.0**64:
            raise LimitError("too_large", f"vượt phạm vi số nguyên 64 bit: {v}", f"is beyond a 64-bit integer: {v}")
        if float(v) != int(v):
            raise CoercionError(f"phải là số nguyên, không phải {v}", f"must be an integer, not {v}")
        return _int_range(int(v))
    text = _number_text(str(v))
    try:
        d = Decimal(text)
    except ArithmeticError:
        raise CoercionError(f"phải là số nguyên, không phải {str(v)[:40]!r}",
                            f"must be an integer, not {str(v)[:40]!r}") from None
    if not d.is_finite():
        raise CoercionError(f"phải là số nguyên hữu hạn, không phải {str(v)[:40]!r}",
                            f"must be a finite integer, not {str(v)[:40]!r}")
    if d.adjusted() > 19:           # before int(): "1e999999999" would build a billion-digit integer
        raise LimitError("too_large", f"vượt phạm vi số nguyên 64 bit: {str(v)[:40]!r}",
                         f"is beyond a 64-bit integer: {str(v)[:40]!r}")
    if d != d.to_integral_value():
        raise CoercionError(f"phải là số nguyên, không phải {str(v)[:40]!r}", f"must be an integer, not {str(v)[:40]!r}")
    return _int_range(int(d))


def _to_number(v: Any) -> float:
    if isinstance(v, bool):
        raise CoercionError("phải là số", "must be a number")
    try:
        x = float(v) if isinstance(v, int | float | Decimal | np.number) else float(Decimal(_number_text(str(v))))
    except CoercionError:
        raise
    except (ArithmeticError, ValueError, OverflowError):   # OverflowError: float() of an int past 1e308
        raise CoercionError(f"phải là số, không phải {str(v)[:40]!r}",
                            f"must be a number, not {str(v)[:40]!r}") from None
    if not math.isfinite(x):
        raise CoercionError(f"phải là số hữu hạn, không phải {str(v)[:40]!r}",
                            f"must be a finite number, not {str(v)[:40]!r}")
    return x


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    t = str(v).strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise CoercionError(f"phải là đúng/sai, không phải {v!r}", f"must be true/false, not {v!r}")


def _to_datetime(v: Any) -> dt.datetime:
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, dt.datetime):
        d = v
    elif isinstance(v, dt.date):
        d = dt.datetime(v.year, v.month, v.day)
    else:
        t = str(v).strip()
        m = _DMY.match(t)
        try:
            if m:
                day, mon, year, hh, mm, ss = m.groups()
                d = dt.datetime(int(year), int(mon), int(day), int(hh or 0), int(mm or 0), int(ss or 0))
            else:
                d = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            raise CoercionError(f"không phải ngày giờ hợp lệ: {t[:40]!r} (dùng YYYY-MM-DD hoặc dd/mm/yyyy)",
                                f"not a valid date/time: {t[:40]!r} (use YYYY-MM-DD or dd/mm/yyyy)") from None
    return d if d.tzinfo else d.replace(tzinfo=VN_TZ)


def _to_date(v: Any) -> dt.date:
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    d = _to_datetime(v)
    if (d.hour, d.minute, d.second, d.microsecond) != (0, 0, 0, 0):
        raise CoercionError(f"phải là ngày (không có giờ): {v!r}", f"must be a date without time: {v!r}")
    return d.date()


_SPLIT = re.compile(r"[,;|]")


def _split_text(t: str) -> list[str]:
    """The common case of an array cell: 'ONT,CLN' / 'ONT; CLN' / '{ONT,CLN}' (not JSON)."""
    if t[:1] in ("[", "{") or '"' in t:
        return [str(x) for x in _split_array(t)]
    return [p for p in (x.strip() for x in _SPLIT.split(t)) if p]


def _split_array(v: Any) -> list[Any]:
    if isinstance(v, list | tuple | np.ndarray):
        return [x for x in v if not _is_na(x)]
    t = str(v).strip()
    if t.startswith("["):
        try:
            parsed = orjson.loads(t)    # refuses NaN/Infinity/1e999 and nesting past 1024 (json: RecursionError)
        except orjson.JSONDecodeError:
            raise CoercionError(f"danh sách không hợp lệ: {t[:40]!r}", f"invalid list: {t[:40]!r}") from None
        if not isinstance(parsed, list):
            raise CoercionError(f"danh sách không hợp lệ: {t[:40]!r}", f"invalid list: {t[:40]!r}")
        return [x for x in parsed if not _is_na(x)]
    if t.startswith("{") and t.endswith("}"):
        t = t[1:-1]
    return [p.strip().strip('"') for p in _SPLIT.split(t) if p.strip().strip('"')]


def _scalar(kind: str, v: Any) -> Any:
    if kind == "string":
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()
    if kind == "integer":
        return _to_int(v)
    if kind == "number":
        return _to_number(v)
    if kind == "boolean":
        return _to_bool(v)
    if kind == "date":
        return _to_date(v)
    if kind == "date-time":
        return _to_datetime(v)
    if kind == "object":
        if isinstance(v, dict | list):
            return v
        try:
            return orjson.loads(str(v))     # refuses NaN/Infinity/1e999, lone surrogates, nesting past 1024
        except orjson.JSONDecodeError:
            raise CoercionError(f"JSON không hợp lệ: {str(v)[:40]!r}", f"invalid JSON: {str(v)[:40]!r}") from None
    return v


def _check_json(v: Any) -> None:
    """A jsonb value PostgreSQL (and every reader) can hold: finite numbers, no NUL, bounded nesting."""
    stack: list[tuple[Any, int]] = [(v, 0)]
    while stack:
        x, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise LimitError("too_deep", f"lồng sâu quá {MAX_JSON_DEPTH} cấp", f"is nested deeper than {MAX_JSON_DEPTH}")
        if isinstance(x, dict):
            for k, item in x.items():
                if not isinstance(k, str):
                    raise CoercionError("có khóa không phải chuỗi", "has a key that is not a string")
                if "\x00" in k:
                    raise _nul("có một khóa", "has a key that")
                stack.append((item, depth + 1))
        elif isinstance(x, list | tuple):
            stack.extend((item, depth + 1) for item in x)
        elif isinstance(x, str):
            if "\x00" in x:
                raise _nul("có một giá trị", "has a value that")
        elif isinstance(x, float):
            if not math.isfinite(x):
                raise CoercionError(f"có số không hữu hạn ({x})", f"has a non-finite number ({x})")
        elif isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**300:
            raise LimitError("too_large", "có số quá lớn", "has a number that is too large")
        elif x is not None and not isinstance(x, bool | int | Decimal):
            raise CoercionError("có giá trị không phải JSON", "has a value that is not JSON")


def check_limits(f: LayerField, kind: str, v: Any) -> None:
    """LimitError when a coerced scalar `v` of type `kind` does not fit field `f` (NUL in text, varchar(n),
    int2/int4 range, the field's date range, jsonb content)."""
    if v is None:
        return
    if kind == "string" and isinstance(v, str):
        if "\x00" in v:
            raise _nul()
        # a vocabulary's label may be longer than its code (`Liên minh châu Âu` for EU): not too long when it is one
        if f.max_length is not None and len(v) > f.max_length and labels.resolve(None, f, v) is None:
            raise LimitError("too_long", f"dài quá {f.max_length} ký tự: {v[:40]!r}",
                             f"is longer than {f.max_length} characters: {v[:40]!r}")
    elif kind == "integer" and f.int_range is not None:
        _int_range(int(v), f.int_range)
    elif kind in ("date", "date-time") and f.date_range is not None:
        d = v.date() if isinstance(v, dt.datetime) else v      # the calendar date as written, in its own offset
        lo, hi = f.date_range
        if not lo <= d <= hi:
            raise LimitError("date_range", f"ngoài khoảng cho phép {lo:%d/%m/%Y} – {hi:%d/%m/%Y}: {v.isoformat()}",
                             f"is outside the accepted range {lo.isoformat()} – {hi.isoformat()}: {v.isoformat()}")
    elif kind == "object":
        _check_json(v)


def _single(v: Any) -> Any:
    if isinstance(v, dict | list | tuple):
        raise CoercionError("phải là một giá trị đơn, không phải đối tượng/danh sách",
                            "must be a single value, not an object or a list")
    return v


def coerce_value(f: LayerField, v: Any) -> Any:
    """Coerce one value to the field's type (None for an empty value); CoercionError when impossible,
    LimitError (a CoercionError) when it does not fit the column or the field's range."""
    if not isinstance(v, list | tuple | np.ndarray | dict) and _is_na(v):
        return None
    if f.type == "array":
        kind = f.item_type or "string"
        items = [_scalar(kind, _single(x)) for x in _split_array(v)]
        for x in items:
            check_limits(f, kind, x)
        return items
    out = _scalar(f.type, v if f.type == "object" else _single(v))
    check_limits(f, f.type, out)
    return out


def _mask(bad: dict[int, Any], n: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    if bad:
        m[list(bad)] = True
    return m


def _limit_rows(f: LayerField, kind: str, s: pd.Series, flagged: np.ndarray, bad: dict[int, CoercionError]) -> None:
    """The LimitError of each flagged row (found vectorised) into `bad`."""
    values = s.to_numpy(dtype=object)
    for i in np.flatnonzero(flagged):
        try:
            check_limits(f, kind, _py(values[i]))
        except CoercionError as exc:
            bad[int(i)] = exc


def _coerce_column(f: LayerField, s: pd.Series) -> tuple[pd.Series, dict[int, CoercionError]]:
    """Coerce a column; fast paths for columns that already have the right numeric dtype."""
    bad: dict[int, CoercionError] = {}
    if f.type == "integer" and pd.api.types.is_integer_dtype(s.dtype):
        out_i = s.astype("Int64")
        if f.int_range is not None and f.int_range != INT64:
            lo, hi = f.int_range
            _limit_rows(f, "integer", out_i, ((out_i < lo) | (out_i > hi)).fillna(False).to_numpy(dtype=bool), bad)
        return out_i.mask(_mask(bad, len(s))), bad
    if f.type == "number" and pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        out = s.astype("Float64")
        for i in _rows(~np.isfinite(s.to_numpy(dtype=float, na_value=0.0))):
            bad[int(i)] = CoercionError("phải là số hữu hạn", "must be a finite number")
        return out, bad
    values = s.to_numpy(dtype=object)
    is_str = np.fromiter((type(v) is str for v in values), dtype=bool, count=len(values))
    if f.type == "string" and len(values) and is_str.all():
        stripped = pd.Series(values, index=s.index, dtype=object).str.strip()
        flagged = stripped.str.contains("\x00", regex=False).to_numpy(dtype=bool, copy=True)
        if f.max_length is not None:
            flagged = flagged | (stripped.str.len() > f.max_length).to_numpy(dtype=bool)
        _limit_rows(f, "string", stripped, flagged, bad)
        return stripped.where((stripped != "") & ~_mask(bad, len(s)), None).astype(object), bad
    if f.type == "array" and (f.item_type or "string") == "string" and len(values) and is_str.all():
        fast: list[list[str]] = []
        for i, v in enumerate(values):
            try:
                fast.append(_split_text(v))
            except CoercionError as exc:       # '[1e999]', '[[[...' : a JSON-looking cell that is not a list
                bad[i] = exc
                fast.append([])
        n = f.max_length
        for i, items in enumerate(fast):
            if any("\x00" in x or (n is not None and len(x) > n) for x in items):
                try:
                    for x in items:
                        check_limits(f, "string", x)
                except CoercionError as exc:
                    bad[i] = exc
        return pd.Series(fast, index=s.index, dtype=object).where(
            pd.Series([bool(v.strip()) for v in values], index=s.index) & ~_mask(bad, len(s)), None), bad
    out_vals: list[Any] = [None] * len(values)
    for i, v in enumerate(values):
        try:
            out_vals[i] = coerce_value(f, v)
        except CoercionError as exc:
            bad[i] = exc
    if f.type == "integer":
        return pd.Series(out_vals, index=s.index, dtype="Int64"), bad
    if f.type == "number":
        return pd.Series(out_vals, index=s.index, dtype="Float64"), bad
    if f.type == "boolean":
        return pd.Series(out_vals, index=s.index, dtype="boolean"), bad
    return pd.Series(out_vals, index=s.index, dtype=object), bad


# ------------------------------------------------------------------------------------- the checks
class IssueSummary:
    """`errors`, `warnings` and `ok` over an `issues` list (a batch, an import result)."""

    issues: list[Issue]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if not i.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Prepared(IssueSummary):
    """Coerced values, normalised geometries and the issues found, for one batch."""

    layer: Layer
    frame: pd.DataFrame
    geometry: np.ndarray
    issues: list[Issue]
    first_row: int = 1
    mapped_legacy: int = 0

    def records(self) -> list[dict[str, Any]]:
        cols = list(self.frame.columns)
        out = []
        for row in self.frame.itertuples(index=False, name=None):
            out.append({c: (None if not isinstance(v, list | dict) and _is_na(v) else _py(v))
                        for c, v in zip(cols, row, strict=True)})
        return out


def _py(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _rows(mask: Any) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.asarray(mask))]


def _label(f: LayerField) -> tuple[str, str]:
    return f"{f.title_vi} ({f.name})", f"{f.title_en} ({f.name})"


def _column(layer: Layer, name: str) -> Any:
    return layer.model.__table__.c[name]  # type: ignore[attr-defined]


def server_default(layer: Layer, f: LayerField) -> Any:
    """The column's server default as a Python value of the field's type (None when there is none)."""
    col = _column(layer, f.name)
    if col.server_default is None or not hasattr(col.server_default, "arg"):
        return None
    arg = col.server_default.arg
    text = arg if isinstance(arg, str) else str(getattr(arg, "text", arg))
    if f.type == "array":
        return [] if text.strip() in ("{}", "[]") else coerce_value(f, text)
    try:
        return coerce_value(f, text)
    except CoercionError:
        return None


def must_have(layer: Layer, f: LayerField) -> bool:
    col = _column(layer, f.name)
    return f.required or (not col.nullable and col.server_default is None)


def allowed_geometry_types(layer: Layer) -> tuple[str, ...]:
    t = layer.geometry_type
    if t == "Geometry":
        return ("Point", "Polygon", "MultiPolygon")     # as the packing_facilities geom_kind CHECK
    if t.startswith("Multi"):
        return (t, t[len("Multi"):])
    return (t,)


def _is_land_use(f: LayerField) -> bool:
    codes = f.enum or f.items_enum
    return codes is not None and set(codes) == set(vocab.LAND_USE_CODES)


class _Collector:
    def __init__(self, first_row: int) -> None:
        self.first_row = first_row
        self.issues: list[Issue] = []

    def add(self, i: int | None, field_name: str | None, code: str, vi: str, en: str,
            severity: Severity = "error") -> None:
        if len(self.issues) < MAX_ROW_ISSUES:
            row = None if i is None else self.first_row + int(i)
            self.issues.append(Issue(row, field_name, code, vi, en, severity))


def _check_field(layer: Layer, f: LayerField, s: pd.Series, out: _Collector, partial: bool,
                 present: bool) -> tuple[pd.Series, int]:
    lvi, len_ = _label(f)
    legacy = 0
    coerced, bad = _coerce_column(f, s)
    for i, exc in bad.items():
        out.add(i, f.name, exc.code, f"{lvi} {exc.vi}", f"{len_} {exc.en}")
    bad_mask = np.zeros(len(s), dtype=bool)
    if bad:
        bad_mask[list(bad)] = True
    na = coerced.isna().to_numpy() if f.type != "array" else np.array(
        [v is None for v in coerced.to_numpy(dtype=object)], dtype=bool)
    default = server_default(layer, f)
    if must_have(layer, f) and (present or not partial):
        for i in _rows(na & ~bad_mask):
            out.add(i, f.name, "required", f"thiếu {lvi} (bắt buộc)", f"{len_} is required")
    elif default is not None and na.any():
        fill = na & ~bad_mask
        if isinstance(default, list):
            filled = coerced.to_numpy(dtype=object).copy()
            for i in _rows(fill):
                filled[i] = list(default)
            coerced = pd.Series(filled, index=coerced.index, dtype=object)
        else:
            coerced = coerced.mask(pd.Series(fill, index=coerced.index), default)
    ok = ~na & ~bad_mask
    col = _column(layer, f.name)
    # text length, NUL, integer and date ranges were checked while coercing (check_limits)
    if f.type in ("number", "integer"):
        vals = coerced.to_numpy(dtype=float, na_value=np.nan)
        if f.minimum is not None:
            with np.errstate(invalid="ignore"):
                low = ok & (vals < f.minimum)
            for i in _rows(low):
                out.add(i, f.name, "minimum", f"{lvi} phải ≥ {f.minimum:g} (đang là {vals[i]:g})",
                        f"{len_} must be ≥ {f.minimum:g} (got {vals[i]:g})")
        if isinstance(col.type, Numeric) and col.type.precision and col.type.scale is not None:
            limit = 10.0 ** (col.type.precision - col.type.scale)
            with np.errstate(invalid="ignore"):
                big = ok & (np.abs(vals) >= limit)
            for i in _rows(big):
                out.add(i, f.name, "too_large", f"{lvi} quá lớn: {vals[i]:g}", f"{len_} is too large: {vals[i]:g}")
    changed = False
    enum_bad: set[int] = set()
    vals_o = coerced.to_numpy(dtype=object).copy()
    if f.enum is not None:
        allowed = set(f.enum)
        for i in _rows(ok):
            v = vals_o[i]
            if v in allowed:
                continue
            if (code := labels.resolve(layer, f, v)) is not None:     # a label or another spelling of a code
                vals_o[i] = code
                changed = True
                continue
            if _is_land_use(f) and v in vocab.LEGACY_LAND_USE:
                vals_o[i] = vocab.LEGACY_LAND_USE[v]
                changed = True
                legacy += 1
                out.add(i, f.name, "legacy_code", f"mã cũ {v} được đổi thành {vocab.LEGACY_LAND_USE[v]}",
                        f"legacy code {v} mapped to {vocab.LEGACY_LAND_USE[v]}", "warning")
                continue
            ok_vi, ok_en = labels.allowed_text(layer, f)
            out.add(i, f.name, "enum", f"{lvi} không hợp lệ: {v!r}; giá trị cho phép: {ok_vi}",
                    f"{len_} has an unknown value {v!r}; allowed: {ok_en}")
    if f.items_enum is not None:
        allowed = set(f.items_enum)
        land = _is_land_use(f)
        for i in _rows(ok):
            items = vals_o[i]
            if not isinstance(items, list) or all(x in allowed for x in items):
                continue
            fixed = []
            for x in items:
                if x in allowed:
                    fixed.append(x)
                elif (code := labels.resolve(layer, f, x)) is not None:
                    fixed.append(code)
                elif land and x in vocab.LEGACY_LAND_USE:
                    fixed.append(vocab.LEGACY_LAND_USE[x])
                    legacy += 1
                    out.add(i, f.name, "legacy_code", f"mã cũ {x} được đổi thành {vocab.LEGACY_LAND_USE[x]}",
                            f"legacy code {x} mapped to {vocab.LEGACY_LAND_USE[x]}", "warning")
                else:
                    enum_bad.add(i)
                    ok_vi, ok_en = labels.allowed_text(layer, f, 12)
                    out.add(i, f.name, "enum", f"{lvi} có mã không hợp lệ: {x!r}; mã cho phép: {ok_vi}",
                            f"{len_} has an unknown code {x!r}; allowed: {ok_en}")
            vals_o[i] = list(dict.fromkeys(fixed))
            changed = True
    if changed:
        coerced = pd.Series(vals_o, index=coerced.index, dtype=object)
    if f.type == "array" and must_have(layer, f):
        for i in _rows(ok):
            if i not in enum_bad and isinstance(vals_o[i], list) and not vals_o[i]:
                out.add(i, f.name, "required", f"{lvi} phải có ít nhất một giá trị",
                        f"{len_} needs at least one value")
    return coerced, legacy


def _check_geometry(layer: Layer, geoms: np.ndarray, out: _Collector, repair: bool, srid: int,
                    partial: bool = False) -> np.ndarray:
    if srid != 4326:
        out.add(None, "geometry", "srid", f"hình học phải ở EPSG:4326 (nhận SRID {srid})",
                f"geometry must be in EPSG:4326 (got SRID {srid})")
    arr = geo.force_2d(geoms)
    missing = shapely.is_missing(arr) | shapely.is_empty(arr)
    if not layer.geometry_nullable and not partial:      # PATCH: a missing geometry means "unchanged"
        for i in _rows(missing):
            out.add(i, "geometry", "geometry_required", "thiếu hình học", "geometry is missing")
    present = ~missing
    types = geo.geom_types(arr)
    allowed = allowed_geometry_types(layer)
    wrong_type = present & ~np.isin(types, allowed)
    for i in _rows(wrong_type):
        out.add(i, "geometry", "geometry_type",
                f"loại hình học {types[i]} không hợp với lớp {layer.id} (cần {' / '.join(allowed)})",
                f"geometry type {types[i]} does not fit layer {layer.id} (expected {' / '.join(allowed)})")
    metres = present & geo.looks_projected(arr)
    for i in _rows(metres):
        out.add(i, "geometry", "srid",
                "tọa độ vượt phạm vi kinh độ/vĩ độ (±180/±90), có vẻ là mét: sai hoặc thiếu hệ tọa độ (--crs), "
                "hoặc X/Y bị đảo",
                "coordinates exceed lon/lat range (±180/±90), they look like metres: wrong or missing CRS (--crs), "
                "or X/Y swapped")
    outside = present & ~metres & ~geo.inside_vietnam(arr)
    if outside.any():
        b = shapely.bounds(arr)
        for i in _rows(outside):
            x, y = (b[i, 0] + b[i, 2]) / 2, (b[i, 1] + b[i, 3]) / 2
            out.add(i, "geometry", "outside_vietnam",
                    f"hình học nằm ngoài Việt Nam (quanh {x:.4f}, {y:.4f}): kiểm tra hệ tọa độ hoặc thứ tự X/Y",
                    f"geometry lies outside Vietnam (around {x:.4f}, {y:.4f}): check the CRS or the X/Y order")
    reasons = geo.validity_reasons(arr)
    arr = arr.copy()
    for i in _rows(present & ~wrong_type & np.array([r is not None for r in reasons], dtype=bool)):
        if repair:
            r = geo.repair(arr[i])
            if r.geometry.is_empty:
                out.add(i, "geometry", "geometry_invalid", f"hình học không hợp lệ, không sửa được: {r.reason}",
                        f"invalid geometry that cannot be repaired: {r.reason}")
                continue
            arr[i] = r.geometry
            change = (f"; hình dạng đã thay đổi (diện tích {r.area_before:.3g} → {r.area_after:.3g} độ²)"
                      if r.shape_changed else "")
            change_en = (f"; the shape changed (area {r.area_before:.3g} → {r.area_after:.3g} deg²)"
                         if r.shape_changed else "")
            out.add(i, "geometry", "geometry_repaired", f"đã sửa hình học không hợp lệ ({r.reason}){change}",
                    f"repaired an invalid geometry ({r.reason}){change_en}", "warning")
        else:
            out.add(i, "geometry", "geometry_invalid", f"hình học không hợp lệ: {reasons[i]}",
                    f"invalid geometry: {reasons[i]}")
    if layer.geometry_type.startswith("Multi"):
        arr = geo.to_multipolygon(arr) if layer.geometry_type == "MultiPolygon" else arr
    return arr


_PG_ARRAY = {"string": "text[]", "integer": "int8[]", "number": "numeric[]", "date": "date[]",
             "date-time": "timestamptz[]", "boolean": "bool[]"}


def business_keys(layer: Layer) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    if layer.code_field:
        keys.append((layer.code_field,))
    if layer.unique_together:
        keys.append(tuple(layer.unique_together))
    return keys


def _check_keys(layer: Layer, frame: pd.DataFrame, out: _Collector, conn: psycopg.Connection | None,
                replaces: Sequence[int | None] | None) -> None:
    for key in business_keys(layer):
        # a key part that may be empty (a parcel's old commune) counts as NULL, one value (NULLS NOT DISTINCT)
        optional = {k for k in key if (f := layer.get_field(k)) is not None and not f.required}
        if not all(k in frame.columns or k in optional for k in key):
            continue
        sub = pd.DataFrame({k: frame[k] if k in frame.columns else pd.Series([None] * len(frame), index=frame.index,
                                                                             dtype=object) for k in key})
        # ... alongside required parts only: a key of optional parts alone (a draft's code) is a plain UNIQUE, whose
        # empty values never collide
        required = [k for k in key if k not in optional]
        if not required:
            optional = set()
        complete = sub[required or list(key)].notna().all(axis=1).to_numpy()
        label = " + ".join(key)
        if complete.any():
            dup = sub.astype(str).duplicated(keep=False).to_numpy() & complete
            if dup.any():
                hashable = sub.astype(object).where(sub.notna(), None)
                tuples = [tuple(r) for r in hashable.itertuples(index=False, name=None)]
                first: dict[tuple[Any, ...], int] = {}
                for i in _rows(dup):
                    t = tuples[i]
                    if t in first:
                        val = ", ".join(str(v) for v in t)
                        out.add(i, label, "duplicate_in_batch",
                                f"trùng khóa {label} = {val} với dòng {out.first_row + first[t]}",
                                f"duplicate key {label} = {val}, same as row {out.first_row + first[t]}")
                    else:
                        first[t] = int(i)
        if conn is None or not complete.any():
            continue
        idx = _rows(complete)
        fields = [layer.get_field(k) for k in key]
        types = [_PG_ARRAY.get(f.type if f else "string", "text[]") for f in fields]
        columns = {k: sub[k].to_numpy(dtype=object) for k in key}
        arrays = [[_py(columns[k][i]) for i in idx] for k in key]
        cols = [sql.Identifier(f"k{j}") for j in range(len(key))]
        query = sql.SQL(
            "SELECT t.{id}, u.ord FROM unnest({arrays}) WITH ORDINALITY AS u({cols}, ord) "
            "JOIN {table} t ON {cond}").format(
            id=sql.Identifier(layer.id_column),
            arrays=sql.SQL(", ").join(sql.SQL("%s::" + t) for t in types),  # types from a fixed whitelist
            cols=sql.SQL(", ").join(cols), table=sql.Identifier(layer.table),
            cond=sql.SQL(" AND ").join(sql.SQL("t.{} IS NOT DISTINCT FROM u.{}" if k in optional else "t.{} = u.{}")
                                       .format(sql.Identifier(k), c)
                                       for k, c in zip(key, cols, strict=True)))
        for db_id, ordinal in conn.execute(query, arrays).fetchall():
            i = int(idx[int(ordinal) - 1])
            rep = replaces[i] if replaces is not None else None
            if rep is not None and int(rep) == int(db_id):
                continue
            val = ", ".join(str(_py(columns[k][i])) for k in key)
            out.add(i, label, "duplicate_in_db", f"khóa {label} = {val} đã có trong cơ sở dữ liệu (id {db_id})",
                    f"key {label} = {val} already exists in the database (id {db_id})")


def check_db_keys(layer: Layer, prepared: Prepared, conn: psycopg.Connection,
                  replaces: Sequence[int | None], first_row: int = 1) -> list[Issue]:
    """The business-key checks against the database for rows that replace the features `replaces` names (a
    re-import by key: `layers.ingest.upsert`)."""
    out = _Collector(first_row)
    _check_keys(layer, prepared.frame, out, conn, replaces)
    return [i for i in out.issues if i.code == "duplicate_in_db"]


def prepare_frame(layer: Layer, frame: pd.DataFrame, geometry: Any, conn: psycopg.Connection | None = None,
                  *, first_row: int = 1, partial: bool = False, replaces: Sequence[int | None] | None = None,
                  repair: bool = False, srid: int = 4326) -> Prepared:
    """Coerce and check a batch given column-wise (columns = registry field names).

    `partial`: PATCH semantics, absent fields (and a None geometry) are not required. `replaces`: per row, the id of the feature
    the row replaces (excluded from the duplicate check against the database). `repair`: repair invalid
    geometries with make_valid (a warning says whether the shape changed) instead of refusing them.
    """
    out = _Collector(first_row)
    known = set(layer.field_names)
    for c in frame.columns:
        if c not in known:
            out.add(None, str(c), "unknown_field", f"trường {c!r} không có trong lớp {layer.id}",
                    f"field {c!r} is not part of layer {layer.id}")
    frame = frame.reset_index(drop=True)
    n = len(frame)
    coerced: dict[str, pd.Series] = {}
    legacy = 0
    for f in layer.fields:
        present = f.name in frame.columns
        if not present and partial:
            continue
        s = frame[f.name] if present else pd.Series([None] * n, dtype=object)
        if not present and not must_have(layer, f) and server_default(layer, f) is None:
            continue
        if not present and must_have(layer, f) and n:
            lvi, len_ = _label(f)
            out.add(None, f.name, "required", f"thiếu cột bắt buộc {lvi}", f"required column {len_} is missing")
            continue
        coerced[f.name], k = _check_field(layer, f, s, out, partial, present)
        legacy += k
    result = pd.DataFrame(coerced, index=pd.RangeIndex(n))
    geoms = _check_geometry(layer, geo.as_array(geometry) if n else np.array([], dtype=object), out, repair, srid,
                            partial)
    if len(geoms) != n:
        raise ValueError("geometry and attribute rows differ in length")
    _check_keys(layer, result, out, conn, replaces)
    return Prepared(layer, result, geoms, out.issues, first_row, legacy)


def prepare_records(layer: Layer, records: Sequence[tuple[dict[str, Any], BaseGeometry | None]],
                    conn: psycopg.Connection | None = None, **kwargs: Any) -> Prepared:
    """`prepare_frame` for a list of `(properties, geometry)` records (API writes)."""
    names: list[str] = []
    for props, _ in records:
        for k in props:
            if k not in names:
                names.append(k)
    frame = pd.DataFrame({k: pd.Series([p.get(k) for p, _ in records], dtype=object) for k in names},
                         index=pd.RangeIndex(len(records)))
    geoms = np.array([g for _, g in records], dtype=object)
    return prepare_frame(layer, frame, geoms, conn, **kwargs)


def validate_records(layer: Layer, records: Sequence[tuple[dict[str, Any], BaseGeometry | None]],
                     conn: psycopg.Connection | None = None, **kwargs: Any) -> list[Issue]:
    """All issues (errors and warnings) for a batch of records; see `prepare_frame` for the options."""
    return prepare_records(layer, records, conn, **kwargs).issues


__all__ = ["AmbiguousNumber", "CoercionError", "check_db_keys", "decimal_separator", "read_number", "Issue", "Prepared", "allowed_geometry_types", "business_keys", "coerce_value",
           "must_have", "prepare_frame", "prepare_records", "server_default", "validate_records"]
