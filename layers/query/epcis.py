"""EPCIS 2.0 query: the standard's common query parameters → one parameterised SQL statement on trace_events →
an EPCISQueryDocument (JSON-LD), paged by a keyset token.

    q = parse_query(params, default_per_page=100, max_per_page=1000)   # QueryParameterError (400) when bad
    events, token = await find_events(asyncpg_conn, q)                 # or find_events_sync(psycopg_conn, q)
    doc = query_document(events)

Parameters (names as in EPCIS 2.0 §8.2.7.1; several values: repeat the parameter or separate with commas):
eventType, EQ_action, EQ_bizStep, EQ_disposition (CBV short names or URIs), EQ_eventID, MATCH_epc (epcList,
childEPCs), MATCH_parentID, MATCH_inputEPC, MATCH_outputEPC, MATCH_anyEPC, MATCH_epcClass (quantityList,
childQuantityList), MATCH_inputEPCClass, MATCH_outputEPCClass, MATCH_anyEPCClass, GE_eventTime, LT_eventTime,
GE_recordTime, LT_recordTime, EQ_bizLocation, EQ_readPoint, perPage, nextPageToken. Identifiers may be given in
any form gis.gs1 reads (EPC URN or Digital Link); they are matched in their stored form. EPC arrays use GIN
indexes (any_ids holds them all). Events come in eventTime order (then capture order).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import psycopg

from gis import gs1
from gis.errors import BilingualError
from layers.ingest.epcis import EXCEPTION_BASE, cbv_short, parse_time
from layers.store import vocab

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EPC_PARAMS = {       # parameter → (column, instance or class, where)
    "MATCH_epc": ("epc_list|child_epcs", "instance"),
    "MATCH_parentID": ("parent_id", "instance"),
    "MATCH_inputEPC": ("input_epcs", "instance"),
    "MATCH_outputEPC": ("output_epcs", "instance"),
    "MATCH_anyEPC": ("any_ids", "instance"),
    "MATCH_epcClass": ("quantity_list", "class"),
    "MATCH_inputEPCClass": ("input_quantity_list", "class"),
    "MATCH_outputEPCClass": ("output_quantity_list", "class"),
    "MATCH_anyEPCClass": ("any_ids", "class"),
}
TIME_PARAMS = {"GE_eventTime": ("event_time", ">="), "LT_eventTime": ("event_time", "<"),
               "GE_recordTime": ("record_time", ">="), "LT_recordTime": ("record_time", "<")}
OTHER_PARAMS = ("eventType", "EQ_action", "EQ_bizStep", "EQ_disposition", "EQ_eventID", "EQ_bizLocation",
                "EQ_readPoint", "perPage", "nextPageToken")
IGNORED = ("lang", "f")       # the service's own (error language), not filters
KNOWN = frozenset((*EPC_PARAMS, *TIME_PARAMS, *OTHER_PARAMS, *IGNORED))


class QueryParameterError(BilingualError):
    """A query parameter the standard does not know or whose value is wrong (EPCIS QueryParameterException)."""

    status = 400

    def __init__(self, param: str, vi: str, en: str) -> None:
        super().__init__(f"{param}: {vi}", f"{param}: {en}")
        self.param = param

    def members(self) -> dict[str, Any]:
        return {"type": EXCEPTION_BASE + "QueryParameterException", "parameter": self.param}


@dataclass
class EventQuery:
    """A parsed query: SQL conditions with their values (in order), the page size and the keyset position."""

    conditions: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    per_page: int = 100
    after: tuple[dt.datetime, int] | None = None
    fingerprint: str = ""

    def add(self, sql: str, *values: Any) -> None:
        """`sql` with `?` for each value, in order (numbered when the statement is built)."""
        self.conditions.append(sql)
        self.values.extend(values)


def _values(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    out: list[str] = []
    for v in params.get(name, ()):
        out.extend(p.strip() for p in v.split(",") if p.strip())
    if not out:
        raise QueryParameterError(name, "cần một giá trị", "a value is required")
    if len(out) > 100:
        raise QueryParameterError(name, "tối đa 100 giá trị", "at most 100 values")
    return out


def _ids(name: str, values: list[str], want: str) -> list[str]:
    out = []
    for v in values:
        try:
            ident = gs1.parse_uri(v)
        except gs1.IdentifierError as exc:
            raise QueryParameterError(name, exc.vi, exc.en) from None
        ok = ident.is_instance if want == "instance" else ident.is_class if want == "class" else ident.is_location
        if not ok:
            kind_vi = {"instance": "định danh cá thể (SGTIN, SSCC)", "class": "lớp (LGTIN, GTIN)",
                       "location": "địa điểm (GLN, urn:datso:loc:…)"}[want]
            kind_en = {"instance": "an instance identifier (SGTIN, SSCC)", "class": "a class (LGTIN, GTIN)",
                       "location": "a location (GLN, urn:datso:loc:…)"}[want]
            raise QueryParameterError(name, f"'{v}' không phải {kind_vi}", f"'{v}' is not {kind_en}")
        out.append(ident.uri)
    return out


_OTHER_NAME = ("SELECT 'urn:datso:loc:growing_area:' || code FROM growing_areas WHERE gln = ANY(?::text[]) "
               "UNION ALL SELECT 'urn:datso:loc:packing_facility:' || code FROM packing_facilities "
               "WHERE gln = ANY(?::text[]) "
               "UNION ALL SELECT 'https://id.gs1.org/414/' || gln FROM growing_areas WHERE gln IS NOT NULL "
               "AND code = ANY(?::text[]) "
               "UNION ALL SELECT 'https://id.gs1.org/414/' || gln FROM packing_facilities WHERE gln IS NOT NULL "
               "AND code = ANY(?::text[])")


def parse_query(params: Mapping[str, Sequence[str]], default_per_page: int = 100,
                max_per_page: int = 1000) -> EventQuery:
    """Query parameters (name → values, as from a query string) → an EventQuery; QueryParameterError when bad."""
    unknown = sorted(k for k in params if k not in KNOWN)
    if unknown:
        raise QueryParameterError(unknown[0], "tham số không được hỗ trợ; dùng: " + ", ".join(sorted(KNOWN - set(IGNORED))),
                                  "unsupported query parameter; use: " + ", ".join(sorted(KNOWN - set(IGNORED))))
    q = EventQuery(per_page=default_per_page)
    if "eventType" in params:
        types = _values(params, "eventType")
        bad = [t for t in types if t not in vocab.EPCIS_EVENT_TYPES]
        if bad:
            raise QueryParameterError("eventType", f"'{bad[0]}' không phải loại sự kiện EPCIS",
                                      f"'{bad[0]}' is not an EPCIS event type")
        q.add("event_type = ANY(?::text[])", types)
    if "EQ_action" in params:
        acts = _values(params, "EQ_action")
        if any(a not in vocab.EPCIS_ACTIONS for a in acts):
            raise QueryParameterError("EQ_action", "dùng ADD, OBSERVE hoặc DELETE", "use ADD, OBSERVE or DELETE")
        q.add("action = ANY(?::text[])", acts)
    for name, col, kind in (("EQ_bizStep", "biz_step", "BizStep"), ("EQ_disposition", "disposition", "Disp")):
        if name in params:
            vals = []
            for v in _values(params, name):
                s = cbv_short(v, kind)
                if s is None:
                    raise QueryParameterError(name, f"'{v}' không có trong CBV 2.0", f"'{v}' is not in CBV 2.0")
                vals.append(s)
            q.add(f"{col} = ANY(?::text[])", vals)
    if "EQ_eventID" in params:
        q.add("event_id = ANY(?::text[])", _values(params, "EQ_eventID"))
    for name, col in (("EQ_bizLocation", "biz_location"), ("EQ_readPoint", "read_point")):
        if name in params:
            # a place answers to both its names (its GLN when it has one, and its datso URI)
            locs = [gs1.parse_uri(u) for u in _ids(name, _values(params, name), "location")]
            glns = [i.gln for i in locs if i.gln and not i.extension]
            q.add(f"{col} = ANY(?::text[] || ARRAY(" + _OTHER_NAME + "))", [i.uri for i in locs], glns, glns,
                  [i.code for i in locs if i.kind == "growing_area"],
                  [i.code for i in locs if i.kind == "packing_facility"])
    for name, (col, want) in EPC_PARAMS.items():
        if name not in params:
            continue
        ids = _ids(name, _values(params, name), want)
        if col == "epc_list|child_epcs":
            q.add("(epc_list && ?::text[] OR child_epcs && ?::text[])", ids, ids)
        elif col == "parent_id":
            q.add("parent_id = ANY(?::text[])", ids)
        elif col.endswith("quantity_list"):
            # any_ids (GIN) narrows, the quantity list decides
            q.add(f"any_ids && ?::text[] AND EXISTS (SELECT 1 FROM jsonb_array_elements({col}) AS qe "  # noqa: S608
                  "WHERE qe ->> 'epcClass' = ANY(?::text[]))", ids, ids)
        else:
            q.add(f"{col} && ?::text[]", ids)
    for name, (col, op) in TIME_PARAMS.items():
        if name in params:
            tvals = params[name]
            t = parse_time(tvals[0]) if len(tvals) == 1 else None
            if t is None:
                raise QueryParameterError(name, "một thời điểm ISO 8601 có múi giờ, ví dụ 2025-06-01T00:00:00+07:00",
                                          "one ISO 8601 date-time with an offset, e.g. 2025-06-01T00:00:00+07:00")
            q.add(f"{col} {op} ?::timestamptz", t)
    if "perPage" in params:
        pvals = params["perPage"]
        if len(pvals) != 1 or not re.fullmatch(r"[0-9]{1,7}", pvals[0]) or not 1 <= int(pvals[0]) <= max_per_page:
            raise QueryParameterError("perPage", f"một số nguyên 1…{max_per_page}", f"an integer 1…{max_per_page}")
        q.per_page = int(pvals[0])
    q.fingerprint = _fingerprint(params)
    if "nextPageToken" in params:
        q.after = _read_token(params["nextPageToken"], q.fingerprint)
        q.add("(event_time, id) > (?::timestamptz, ?::bigint)", *q.after)
    return q


def _fingerprint(params: Mapping[str, Sequence[str]]) -> str:
    items = sorted((k, tuple(v)) for k, v in params.items() if k not in ("nextPageToken", *IGNORED))
    return hashlib.sha256(orjson.dumps(items)).hexdigest()[:12]


def _make_token(t: dt.datetime, i: int, fingerprint: str) -> str:
    raw = f"{t.isoformat()}|{i}|{fingerprint}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(vals: Sequence[str], fingerprint: str) -> tuple[dt.datetime, int]:
    bad = QueryParameterError("nextPageToken", "không hợp lệ hoặc không thuộc truy vấn này",
                              "invalid, or not a token of this query")
    if len(vals) != 1 or len(vals[0]) > 200:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(vals[0] + "=" * (-len(vals[0]) % 4)).decode()
        t_s, i_s, fp = raw.split("|")
        t = parse_time(t_s)
        if t is None or fp != fingerprint:
            raise ValueError(raw)
        return t, int(i_s)
    except (ValueError, UnicodeDecodeError):
        raise bad from None


_COLUMNS = ("id, event_id, event_type, action, biz_step, disposition, event_time, event_timezone_offset, record_time, "
            "read_point, biz_location, epc_list, parent_id, child_epcs, input_epcs, output_epcs, "
            "quantity_list::text, input_quantity_list::text, output_quantity_list::text, ilmd::text, "
            "biz_transaction_list::text, source_list::text, destination_list::text, sensor_element_list::text, "
            "raw::text")


def events_sql(q: EventQuery) -> tuple[str, list[Any]]:
    """The statement (asyncpg `$n` placeholders) and its values; one row more than a page is read."""
    where = " AND ".join(f"({c})" for c in q.conditions) or "true"
    sql = f"SELECT {_COLUMNS} FROM trace_events WHERE {where} ORDER BY event_time, id LIMIT ?"   # noqa: S608
    n = 0

    def number(_: re.Match[str]) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return re.sub(r"\?", number, sql), [*q.values, q.per_page + 1]


def _json(v: Any) -> Any:
    return orjson.loads(v) if isinstance(v, str | bytes) else v


def event_json(row: Sequence[Any]) -> dict[str, Any]:
    """An EPCIS 2.0 JSON event from a row of `_COLUMNS` (stored identifiers, CBV short names, local time)."""
    (_id, event_id, etype, action, step, disp, t, offset, rec, rp, loc, epcs, parent, children, ins, outs, qty,
     in_q, out_q, ilmd, btl, src, dst, sensors, raw) = row
    sign = 1 if offset[0] == "+" else -1
    tz = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    ev: dict[str, Any] = {"type": etype, "eventID": event_id, "eventTime": t.astimezone(tz).isoformat(),
                          "eventTimeZoneOffset": offset, "recordTime": rec.isoformat()}
    if action:
        ev["action"] = action
    if etype == "AggregationEvent" or etype == "AssociationEvent":
        if parent:
            ev["parentID"] = parent
        ev["childEPCs"] = list(children or [])
        if _json(qty):
            ev["childQuantityList"] = [_q(x) for x in _json(qty)]
    elif etype == "TransformationEvent":
        ev["inputEPCList"], ev["outputEPCList"] = list(ins or []), list(outs or [])
        if _json(in_q):
            ev["inputQuantityList"] = [_q(x) for x in _json(in_q)]
        if _json(out_q):
            ev["outputQuantityList"] = [_q(x) for x in _json(out_q)]
    else:
        if parent:
            ev["parentID"] = parent
        ev["epcList"] = list(epcs or [])
        if _json(qty):
            ev["quantityList"] = [_q(x) for x in _json(qty)]
    if step:
        ev["bizStep"] = step
    if disp:
        ev["disposition"] = disp
    if rp:
        ev["readPoint"] = {"id": rp}
    if loc:
        ev["bizLocation"] = {"id": loc}
    for key, val in (("bizTransactionList", btl), ("sourceList", src), ("destinationList", dst),
                     ("sensorElementList", sensors)):
        if _json(val):
            ev[key] = _json(val)
    if _json(ilmd):
        ev["ilmd"] = _json(ilmd)
    original = _json(raw) or {}
    for key, val in original.items():     # what datso does not model: kept as sent (extensions too)
        if key in ("certificationInfo", "errorDeclaration", "persistentDisposition") or ":" in key:
            ev[key] = val
    return ev


def _q(x: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in x.items() if k in ("epcClass", "quantity", "uom")}


def _page(rows: Sequence[Sequence[Any]], q: EventQuery) -> tuple[list[dict[str, Any]], str | None]:
    more = len(rows) > q.per_page
    rows = rows[:q.per_page]
    token = _make_token(rows[-1][6], int(rows[-1][0]), q.fingerprint) if more and rows else None
    return [event_json(r) for r in rows], token


async def find_events(conn: asyncpg.Connection, q: EventQuery) -> tuple[list[dict[str, Any]], str | None]:
    """A page of events (EPCIS JSON) and the next page's token (None on the last page)."""
    sql, values = events_sql(q)
    rows = await conn.fetch(sql, *values)
    return _page([tuple(r) for r in rows], q)


def find_events_sync(conn: psycopg.Connection, q: EventQuery) -> tuple[list[dict[str, Any]], str | None]:
    """The same with psycopg (CLI, scripts, tests, the trace chain)."""
    sql, values = events_sql(q)
    rows = conn.execute(re.sub(r"\$[0-9]+", "%s", sql), values).fetchall()   # type: ignore[call-overload]
    return _page(rows, q)


def query_document(events: list[dict[str, Any]], query_name: str = "SimpleEventQuery") -> dict[str, Any]:
    """The EPCISQueryDocument (JSON-LD) holding `events`."""
    return {"@context": [CONTEXT], "type": "EPCISQueryDocument", "schemaVersion": "2.0",
            "creationDate": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "epcisBody": {"queryResults": {"queryName": query_name, "resultsBody": {"eventList": events}}}}


__all__ = ["CONTEXT", "KNOWN", "EventQuery", "QueryParameterError", "event_json", "events_sql", "find_events",
           "find_events_sync", "parse_query", "query_document"]
