"""EPCIS 2.0 capture: an EPCISDocument (JSON / JSON-LD) → validated events → `trace_events`, all or nothing.

    result = capture(target, body_bytes, sender, limits)      # CaptureResult(stored, duplicates, event_ids)

1. `parse_document` reads the bytes within `CaptureLimits` (size, nesting depth, events, list lengths): hostile
   JSON is a 4xx, never a crash.
2. `check_events` checks every event and collects EVERY problem as an `EventProblem` (event index, eventID,
   JSON pointer of the field, vi/en message): structure per event type (EPCIS 2.0 §7 / JSON schema), CBV 2.0
   bizStep and disposition (short names or https://ref.gs1.org/cbv/… URIs), eventTime with its offset,
   identifiers (gis.gs1, biip), locations (readPoint/bizLocation: a GLN of an area or house, or
   urn:datso:loc:…) and lots (an lgtin class must be a known lot or be introduced in the document by an
   ObjectEvent ADD or a TransformationEvent output), the sender's right to write at each location, and
   eventIDs already captured (same content: a duplicate, skipped; other content: refused).
3. Any problem → `CaptureRefused` (400; 403 when every problem is the sender's scope; 409 when every problem
   is a changed eventID): nothing is written. Otherwise one transaction: new lots (trace_lots) first, then all
   events with one COPY; `datso.actor` = the sender for the audit history.

Stored form (see EPCIS_API.md): identifiers as gis.gs1 canonical URIs, bizStep/disposition as CBV short names,
`raw` = the event as received, `content_hash` = sha256 of the event's canonical JSON without recordTime; an
event without eventID gets `urn:uuid:<uuid5 of that hash>` (so re-sending it is idempotent too). AggregationEvent
and AssociationEvent childQuantityList go to `quantity_list`, parentID to `parent_id`, childEPCs to `child_epcs`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

import orjson
import psycopg

from gis import gs1
from gis.errors import BilingualError
from layers.ingest.writes import Target, _connect
from layers.store import vocab

EXCEPTION_BASE = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-exception#"
CBV_URI = "https://ref.gs1.org/cbv/"
_OFFSET = re.compile(r"^[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00)$")
_UOM = re.compile(r"^[A-Z0-9]{2,3}$")
_UUID_NS = uuid.UUID("5b0e7f52-2c1e-4f0e-9a43-6c0d5e1f7a10")      # datso's namespace for derived eventIDs

COMMON = ("type", "eventID", "eventTime", "eventTimeZoneOffset", "recordTime", "certificationInfo",
          "errorDeclaration", "bizStep", "disposition", "persistentDisposition", "readPoint", "bizLocation",
          "bizTransactionList", "sourceList", "destinationList", "sensorElementList", "@context")
MEMBERS: dict[str, frozenset[str]] = {
    "ObjectEvent": frozenset((*COMMON, "action", "epcList", "quantityList", "ilmd")),
    "AggregationEvent": frozenset((*COMMON, "action", "parentID", "childEPCs", "childQuantityList")),
    "TransactionEvent": frozenset((*COMMON, "action", "parentID", "epcList", "quantityList")),
    "TransformationEvent": frozenset((*COMMON, "inputEPCList", "inputQuantityList", "outputEPCList",
                                      "outputQuantityList", "transformationID", "ilmd")),
    "AssociationEvent": frozenset((*COMMON, "action", "parentID", "childEPCs", "childQuantityList")),
}


# -- limits, the sender, results and errors ----------------------------------------------------------------

@dataclass(frozen=True)
class CaptureLimits:
    """Bounds on a captured document (settings DATSO_EPCIS_*)."""

    max_bytes: int = 20_000_000
    max_events: int = 20_000
    max_depth: int = 32
    max_list: int = 10_000          # identifiers in one list of one event


class Sender(Protocol):
    """Who captures: `layers.accounts.principal.Principal` satisfies it."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def national(self) -> bool: ...
    @property
    def provinces(self) -> frozenset[str]: ...
    @property
    def communes(self) -> frozenset[str]: ...
    @property
    def areas(self) -> frozenset[str]: ...
    @property
    def facilities(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class EventProblem:
    index: int | None               # position in eventList (None: the document)
    event_id: str | None
    field: str                      # JSON pointer into the document
    vi: str
    en: str
    kind: str = "validation"        # validation | scope | conflict

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "eventID": self.event_id, "field": self.field, "message": self.en,
                "message_vi": self.vi, "code": self.kind}


class CaptureRefused(BilingualError):
    """The document is refused whole; `problems` names every event and field."""

    def __init__(self, problems: Sequence[EventProblem], status: int | None = None) -> None:
        self.problems = list(problems)
        kinds = {p.kind for p in self.problems}
        st = status or (403 if kinds == {"scope"} else 409 if kinds == {"conflict"} else 400)
        first = self.problems[0]
        where = f"sự kiện {first.index}" if first.index is not None else "tài liệu"
        where_en = f"event {first.index}" if first.index is not None else "the document"
        n = len(self.problems)
        super().__init__(f"Tài liệu EPCIS bị từ chối, không lưu gì ({n} lỗi); đầu tiên: {where}, {first.field}: "
                         f"{first.vi}",
                         f"EPCIS document refused, nothing stored ({n} problem{'s' if n > 1 else ''}); first: "
                         f"{where_en}, {first.field}: {first.en}", st)

    def members(self) -> dict[str, Any]:
        kind = {403: "SecurityException", 409: "ValidationException", 413: "CaptureLimitExceededException"}
        return {"type": EXCEPTION_BASE + kind.get(self.status, "ValidationException"),
                "errors": [p.as_dict() for p in self.problems[:1000]]}


def _refuse(field_: str, vi: str, en: str, status: int = 400) -> CaptureRefused:
    return CaptureRefused([EventProblem(None, None, field_, vi, en)], status)


@dataclass
class CaptureResult:
    stored: int
    duplicates: int
    event_ids: list[str]
    lots_created: list[str] = field(default_factory=list)     # Digital Link URIs of lots the document introduced

    def as_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "duplicates": self.duplicates, "eventIDs": self.event_ids,
                "lotsCreated": self.lots_created}


# -- bounded parsing -------------------------------------------------------------------------------------------

def parse_document(body: bytes | str, limits: CaptureLimits = CaptureLimits()) -> dict[str, Any]:
    """The document as a dict, or CaptureRefused (413 too big, 400 not JSON / too deep / not a document)."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > limits.max_bytes:
        raise _refuse("", f"Tài liệu quá lớn ({len(raw)} byte; tối đa {limits.max_bytes})",
                      f"Document too large ({len(raw)} bytes; at most {limits.max_bytes})", 413)
    try:
        doc = orjson.loads(raw)       # orjson: no recursion past 1024 levels, refused as invalid
    except orjson.JSONDecodeError as exc:
        raise _refuse("", f"Không phải JSON hợp lệ: {str(exc)[:200]}", f"Not valid JSON: {str(exc)[:200]}") from None
    _check_depth(doc, limits.max_depth)
    if not isinstance(doc, dict):
        raise _refuse("", "Tài liệu phải là một đối tượng EPCISDocument", "The document must be an EPCISDocument object")
    if doc.get("type") != "EPCISDocument":
        raise _refuse("/type", "type phải là 'EPCISDocument'", "type must be 'EPCISDocument'")
    ver = doc.get("schemaVersion")
    if "schemaVersion" in doc and not (isinstance(ver, str) and ver.startswith("2")):
        raise _refuse("/schemaVersion", "chỉ nhận EPCIS 2.x (schemaVersion '2.0')", "only EPCIS 2.x is accepted "
                                                                                    "(schemaVersion '2.0')")
    body_ = doc.get("epcisBody")
    events = body_.get("eventList") if isinstance(body_, dict) else None
    if not isinstance(events, list):
        raise _refuse("/epcisBody/eventList", "thiếu epcisBody.eventList (một mảng sự kiện)",
                      "epcisBody.eventList (an array of events) is missing")
    if len(events) > limits.max_events:
        raise _refuse("/epcisBody/eventList", f"quá nhiều sự kiện ({len(events)}; tối đa {limits.max_events})",
                      f"too many events ({len(events)}; at most {limits.max_events})", 413)
    return doc


def _check_depth(doc: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        v, d = stack.pop()
        if d > max_depth:
            raise _refuse("", f"JSON lồng quá sâu (tối đa {max_depth} mức)",
                          f"JSON nested too deep (at most {max_depth} levels)")
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v if isinstance(x, dict | list))


# -- vocabularies, times -------------------------------------------------------------------------------------

_BIZ_STEPS = frozenset(vocab.CBV_BIZ_STEPS)
_DISPOSITIONS = frozenset(vocab.CBV_DISPOSITIONS)


def cbv_short(value: Any, kind: str) -> str | None:
    """A CBV bizStep/disposition (short name, https://ref.gs1.org/cbv/BizStep-x URI or CBV 1.x URN) → short name,
    None when it is not in CBV 2.0. `kind` is "BizStep" or "Disp"."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    for prefix in (f"{CBV_URI}{kind}-", f"urn:epcglobal:cbv:{'bizstep' if kind == 'BizStep' else 'disp'}:",
                   f"cbv:{kind}-", f"gs1:{kind}-"):
        if v.startswith(prefix):
            v = v[len(prefix):]
            break
    known = _BIZ_STEPS if kind == "BizStep" else _DISPOSITIONS
    return v if v in known else None


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 date-time WITH an offset (Z or ±hh:mm), or None."""
    if not isinstance(value, str) or not 20 <= len(value) <= 40 or "T" not in value:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None and 1900 <= t.year <= 2200 else None


@lru_cache(maxsize=65536)
def _ident(value: str) -> gs1.Identifier:
    return gs1.parse_uri(value)


# -- one event -------------------------------------------------------------------------------------------------

@dataclass
class Event:
    """An event as checked, ready to store."""

    index: int
    event_id: str
    event_type: str
    action: str | None
    biz_step: str | None
    disposition: str | None
    event_time: dt.datetime
    offset: str
    read_point: str | None
    biz_location: str | None
    epc_list: list[str]
    parent_id: str | None
    child_epcs: list[str]
    input_epcs: list[str]
    output_epcs: list[str]
    quantity_list: list[dict[str, Any]]
    input_quantity_list: list[dict[str, Any]]
    output_quantity_list: list[dict[str, Any]]
    ilmd: dict[str, Any]
    biz_transaction_list: list[dict[str, Any]]
    source_list: list[dict[str, Any]]
    destination_list: list[dict[str, Any]]
    sensor_element_list: list[Any]
    raw: dict[str, Any]
    content_hash: str
    explicit_id: bool

    @property
    def any_ids(self) -> list[str]:
        ids = [*self.epc_list, *self.child_epcs, *self.input_epcs, *self.output_epcs,
               *([self.parent_id] if self.parent_id else [])]
        for q in (*self.quantity_list, *self.input_quantity_list, *self.output_quantity_list):
            ids.append(q["epcClass"])
        return list(dict.fromkeys(ids))

    def lot_classes(self) -> list[str]:
        return [q["epcClass"] for q in (*self.quantity_list, *self.input_quantity_list, *self.output_quantity_list)
                if _ident(q["epcClass"]).kind == "lgtin"]

    def introduced_lots(self) -> list[dict[str, Any]]:
        """Quantities that bring a lot into being: ObjectEvent ADD and TransformationEvent outputs."""
        if self.event_type == "ObjectEvent" and self.action == "ADD":
            qs = self.quantity_list
        elif self.event_type == "TransformationEvent":
            qs = self.output_quantity_list
        else:
            return []
        return [q for q in qs if _ident(q["epcClass"]).kind == "lgtin"]


class _Checker:
    def __init__(self, index: int, ev: dict[str, Any], limits: CaptureLimits) -> None:
        self.i, self.ev, self.limits = index, ev, limits
        self.problems: list[EventProblem] = []
        eid = ev.get("eventID")
        self.event_id = eid if isinstance(eid, str) else None

    def bad(self, member: str, vi: str, en: str, kind: str = "validation") -> None:
        self.problems.append(EventProblem(self.i, self.event_id, f"/epcisBody/eventList/{self.i}{member}", vi, en,
                                          kind))

    def epcs(self, member: str) -> list[str]:
        v = self.ev.get(member)
        if v is None:
            return []
        if not isinstance(v, list):
            self.bad(f"/{member}", f"{member} phải là một mảng định danh", f"{member} must be an array of identifiers")
            return []
        if len(v) > self.limits.max_list:
            self.bad(f"/{member}", f"quá nhiều định danh (tối đa {self.limits.max_list})",
                     f"too many identifiers (at most {self.limits.max_list})")
            return []
        out = []
        for j, x in enumerate(v):
            ident = self.identifier(f"/{member}/{j}", x)
            if ident is None:
                continue
            if not ident.is_instance:
                self.bad(f"/{member}/{j}", f"{member} chỉ chứa định danh cá thể (SGTIN, SSCC); lô hàng (LGTIN) "
                                           "thuộc quantityList",
                         f"{member} holds instance identifiers (SGTIN, SSCC); a lot class (LGTIN) belongs in a "
                         "quantity list")
                continue
            out.append(ident.uri)
        return list(dict.fromkeys(out))

    def identifier(self, member: str, value: Any) -> gs1.Identifier | None:
        if not isinstance(value, str):
            self.bad(member, "định danh phải là chuỗi URI", "an identifier must be a URI string")
            return None
        try:
            return _ident(value)
        except gs1.IdentifierError as exc:
            self.bad(member, exc.vi, exc.en)
            return None

    def quantities(self, member: str) -> list[dict[str, Any]]:
        v = self.ev.get(member)
        if v is None:
            return []
        if not isinstance(v, list) or len(v) > self.limits.max_list:
            self.bad(f"/{member}", f"{member} phải là một mảng (tối đa {self.limits.max_list} phần tử)",
                     f"{member} must be an array (at most {self.limits.max_list} elements)")
            return []
        out = []
        for j, q in enumerate(v):
            m = f"/{member}/{j}"
            if not isinstance(q, dict):
                self.bad(m, "phần tử phải là {epcClass, quantity, uom}", "an element is {epcClass, quantity, uom}")
                continue
            if "epcClass" not in q:
                self.bad(m + "/epcClass", "thiếu epcClass", "epcClass is missing")
                continue
            ident = self.identifier(m + "/epcClass", q["epcClass"])
            if ident is None:
                continue
            if not ident.is_class:
                self.bad(m + "/epcClass", "epcClass phải là một lớp (LGTIN: GTIN + lô, hoặc GTIN)",
                         "epcClass must be a class (LGTIN: GTIN + lot, or a GTIN)")
                continue
            item: dict[str, Any] = {"epcClass": ident.uri}
            if "quantity" in q:
                n = q["quantity"]
                if isinstance(n, bool) or not isinstance(n, int | float) or not 0 < n < 1e12:
                    self.bad(m + "/quantity", "quantity phải là một số dương", "quantity must be a positive number")
                    continue
                item["quantity"] = n
            if "uom" in q:
                if "quantity" not in q:
                    self.bad(m + "/uom", "uom cần kèm quantity", "uom needs a quantity")
                if not isinstance(q["uom"], str) or not _UOM.match(q["uom"]):
                    self.bad(m + "/uom", "uom phải là mã UN/ECE Rec. 20 (2–3 ký tự, ví dụ KGM)",
                             "uom must be a UN/ECE Rec. 20 code (2-3 characters, e.g. KGM)")
                    continue
                item["uom"] = q["uom"]
            if ident.expiry is not None:
                item["expiry"] = ident.expiry.isoformat()
            out.append(item)
        return out

    def location(self, member: str) -> str | None:
        v = self.ev.get(member)
        if v is None:
            return None
        if not isinstance(v, dict) or "id" not in v:
            self.bad(f"/{member}", f"{member} phải là {{\"id\": URI}}", f"{member} must be {{\"id\": URI}}")
            return None
        ident = self.identifier(f"/{member}/id", v["id"])
        if ident is None:
            return None
        if not ident.is_location:
            self.bad(f"/{member}/id", "không phải định danh địa điểm (GLN/SGLN hoặc urn:datso:loc:…)",
                     "not a location identifier (GLN/SGLN or urn:datso:loc:…)")
            return None
        return ident.uri

    def typed_list(self, member: str, key: str, types: Iterable[str]) -> list[dict[str, Any]]:
        v = self.ev.get(member)
        if v is None:
            return []
        allowed = set(types)
        if not isinstance(v, list) or len(v) > self.limits.max_list:
            self.bad(f"/{member}", f"{member} phải là một mảng", f"{member} must be an array")
            return []
        out = []
        for j, x in enumerate(v):
            if not isinstance(x, dict) or not isinstance(x.get(key), str) or not x[key]:
                self.bad(f"/{member}/{j}", f"phần tử cần '{key}' (chuỗi)", f"an element needs '{key}' (a string)")
                continue
            t = x.get("type")
            if t is not None:
                short = t.rsplit("-", 1)[-1] if isinstance(t, str) and t.startswith(CBV_URI) else t
                if short not in allowed and not (isinstance(t, str) and ":" in t):
                    self.bad(f"/{member}/{j}/type", f"loại '{t}' không có trong CBV 2.0", f"type '{t}' is not in CBV "
                                                                                          "2.0")
                    continue
            out.append(x)
        return out

    def check(self) -> Event | None:   # noqa: C901 - one flat list of the standard's rules
        ev = self.ev
        et = ev.get("type")
        if et not in MEMBERS:
            self.bad("/type", f"loại sự kiện '{et}' không hợp lệ; dùng: {', '.join(MEMBERS)}",
                     f"unknown event type '{et}'; use one of: {', '.join(MEMBERS)}")
            return None
        for k, v in ev.items():
            if v is None:       # EPCIS JSON has no nulls: a member is there with a value, or absent
                self.bad(f"/{k}", f"'{k}' không được là null (bỏ hẳn nếu không có)",
                         f"'{k}' may not be null (leave it out instead)")
            if k not in MEMBERS[et] and ":" not in k:     # prefixed members are extensions (kept in raw)
                self.bad(f"/{k}", f"thành phần '{k}' không thuộc {et} (mở rộng cần tiền tố, ví dụ 'ex:{k}')",
                         f"'{k}' is not a member of {et} (extensions take a prefix, e.g. 'ex:{k}')")
        if "eventID" in ev and (not isinstance(ev["eventID"], str) or not 1 <= len(ev["eventID"]) <= 512):
            self.bad("/eventID", "eventID phải là một URI (tối đa 512 ký tự)", "eventID must be a URI (512 chars max)")
        t = parse_time(ev.get("eventTime"))
        if "eventTime" not in ev:
            self.bad("/eventTime", "thiếu eventTime", "eventTime is missing")
        elif t is None:
            self.bad("/eventTime", "eventTime phải theo ISO 8601 có múi giờ, ví dụ 2025-06-01T06:00:00+07:00",
                     "eventTime must be ISO 8601 with an offset, e.g. 2025-06-01T06:00:00+07:00")
        elif t > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
            self.bad("/eventTime", "eventTime ở tương lai", "eventTime is in the future")
        off = ev.get("eventTimeZoneOffset")
        if off is None:
            self.bad("/eventTimeZoneOffset", "thiếu eventTimeZoneOffset (ví dụ +07:00)",
                     "eventTimeZoneOffset is missing (e.g. +07:00)")
        elif not isinstance(off, str) or not _OFFSET.match(off):
            self.bad("/eventTimeZoneOffset", "eventTimeZoneOffset phải có dạng ±hh:mm (-12:00…+14:00)",
                     "eventTimeZoneOffset must be ±hh:mm (-12:00…+14:00)")
        action = ev.get("action")
        if et == "TransformationEvent":
            if action is not None:
                self.bad("/action", "TransformationEvent không có action", "a TransformationEvent has no action")
        elif action is None:
            self.bad("/action", "thiếu action (ADD, OBSERVE hoặc DELETE)", "action is missing (ADD, OBSERVE or DELETE)")
        elif action not in vocab.EPCIS_ACTIONS:
            self.bad("/action", f"action '{action}' không hợp lệ (ADD, OBSERVE, DELETE)",
                     f"unknown action '{action}' (ADD, OBSERVE, DELETE)")
        step = disp = None
        if ev.get("bizStep") is not None:
            step = cbv_short(ev["bizStep"], "BizStep")
            if step is None:
                self.bad("/bizStep", f"bizStep '{ev['bizStep']}' không có trong CBV 2.0",
                         f"bizStep '{ev['bizStep']}' is not a CBV 2.0 business step")
        if ev.get("disposition") is not None:
            disp = cbv_short(ev["disposition"], "Disp")
            if disp is None:
                self.bad("/disposition", f"disposition '{ev['disposition']}' không có trong CBV 2.0",
                         f"disposition '{ev['disposition']}' is not a CBV 2.0 disposition")
        read_point, biz_location = self.location("readPoint"), self.location("bizLocation")
        epc_list = self.epcs("epcList")
        child_epcs = self.epcs("childEPCs")
        input_epcs, output_epcs = self.epcs("inputEPCList"), self.epcs("outputEPCList")
        qty = self.quantities("quantityList") + self.quantities("childQuantityList")
        in_q, out_q = self.quantities("inputQuantityList"), self.quantities("outputQuantityList")
        parent = None
        if ev.get("parentID") is not None:
            ident = self.identifier("/parentID", ev["parentID"])
            if ident is not None and not ident.is_instance:
                self.bad("/parentID", "parentID phải là định danh cá thể (SSCC, SGTIN)",
                         "parentID must be an instance identifier (SSCC, SGTIN)")
            elif ident is not None:
                parent = ident.uri
        ilmd = ev.get("ilmd") or {}
        if not isinstance(ilmd, dict):
            self.bad("/ilmd", "ilmd phải là một đối tượng", "ilmd must be an object")
            ilmd = {}
        elif ilmd and not (et == "TransformationEvent" or (et == "ObjectEvent" and action == "ADD")):
            self.bad("/ilmd", "ilmd chỉ có trong ObjectEvent ADD hoặc TransformationEvent",
                     "ilmd belongs only to an ObjectEvent ADD or a TransformationEvent")
        exp = ilmd.get("cbvmda:itemExpirationDate")
        if exp is not None:
            try:
                gs1.expiry(str(exp))
            except gs1.IdentifierError as e:
                self.bad("/ilmd/cbvmda:itemExpirationDate", e.vi, e.en)
        # what each type needs (EPCIS 2.0 §7.4)
        if et in ("ObjectEvent", "TransactionEvent") and not epc_list and not qty \
                and not ev.get("epcList") and not ev.get("quantityList"):
            self.bad("/epcList", "cần epcList hoặc quantityList (ít nhất một định danh)",
                     "epcList or quantityList (at least one identifier) is required")
        if et in ("AggregationEvent", "AssociationEvent"):
            if action in ("ADD", "DELETE") and "parentID" not in ev:
                self.bad("/parentID", f"{et} {action} cần parentID", f"an {et} {action} needs a parentID")
            if action in ("ADD", "OBSERVE") and not ev.get("childEPCs") and not ev.get("childQuantityList"):
                self.bad("/childEPCs", "cần childEPCs hoặc childQuantityList", "childEPCs or childQuantityList is "
                                                                               "required")
        if et == "TransactionEvent" and not ev.get("bizTransactionList"):
            self.bad("/bizTransactionList", "TransactionEvent cần bizTransactionList",
                     "a TransactionEvent needs a bizTransactionList")
        if et == "TransformationEvent":
            if not ev.get("inputEPCList") and not ev.get("inputQuantityList"):
                self.bad("/inputEPCList", "cần đầu vào (inputEPCList hoặc inputQuantityList)",
                         "inputs are required (inputEPCList or inputQuantityList)")
            if not ev.get("outputEPCList") and not ev.get("outputQuantityList"):
                self.bad("/outputEPCList", "cần đầu ra (outputEPCList hoặc outputQuantityList)",
                         "outputs are required (outputEPCList or outputQuantityList)")
            both = ({*input_epcs} & {*output_epcs}) | ({q["epcClass"] for q in in_q} & {q["epcClass"] for q in out_q})
            if both:
                self.bad("/outputQuantityList" if in_q else "/outputEPCList",
                         f"đầu ra trùng đầu vào ({sorted(both)[0]}): biến đổi phải tạo ra định danh mới",
                         f"an output equals an input ({sorted(both)[0]}): a transformation makes new identifiers")
        btl = self.typed_list("bizTransactionList", "bizTransaction", vocab.CBV_BIZ_TRANSACTION_TYPES)
        src = self.typed_list("sourceList", "source", vocab.CBV_SOURCE_DEST_TYPES)
        dst = self.typed_list("destinationList", "destination", vocab.CBV_SOURCE_DEST_TYPES)
        sensors = ev.get("sensorElementList") or []
        if not isinstance(sensors, list):
            self.bad("/sensorElementList", "sensorElementList phải là một mảng", "sensorElementList must be an array")
            sensors = []
        if self.problems or t is None:
            return None
        canon = {k: v for k, v in ev.items() if k not in ("recordTime", "@context")}
        digest = hashlib.sha256(orjson.dumps(canon, option=orjson.OPT_SORT_KEYS)).hexdigest()
        eid = self.event_id or f"urn:uuid:{uuid.uuid5(_UUID_NS, digest)}"
        return Event(self.i, eid, et, action if et != "TransformationEvent" else None, step, disp, t, str(off),
                     read_point, biz_location, epc_list, parent, child_epcs, input_epcs, output_epcs, qty, in_q, out_q,
                     ilmd, btl, src, dst, sensors, ev, digest, self.event_id is not None)


# -- the database side: locations, lots, scope, duplicates -------------------------------------------------

@dataclass(frozen=True)
class Location:
    uri: str
    kind: str                   # growing_area | packing_facility
    code: str
    name: str | None
    commune_code: str | None
    province: str | None
    status: str | None
    point_ewkb: str | None      # hex EWKB of a point on it (the event's geometry)


_LOCATIONS_SQL = """
SELECT 'growing_area', g.code, g.gln, coalesce(g.cooperative, g.owner), g.commune_code, g.status,
       ST_AsHexEWKB(ST_PointOnSurface(g.geom)),
       (SELECT a.parent_code FROM admin_units a WHERE a.level = 'commune' AND a.scheme = '2025'
        AND a.code = g.commune_code ORDER BY a.valid_from DESC NULLS LAST LIMIT 1)
FROM growing_areas g WHERE g.code = ANY(%(areas)s) OR g.gln = ANY(%(glns)s)
UNION ALL
SELECT 'packing_facility', f.code, f.gln, f.name, f.commune_code, f.status,
       ST_AsHexEWKB(ST_PointOnSurface(f.geom)),
       (SELECT a.parent_code FROM admin_units a WHERE a.level = 'commune' AND a.scheme = '2025'
        AND a.code = f.commune_code ORDER BY a.valid_from DESC NULLS LAST LIMIT 1)
FROM packing_facilities f WHERE f.code = ANY(%(houses)s) OR f.gln = ANY(%(glns)s)
"""


def resolve_locations(conn: psycopg.Connection, uris: Iterable[str]) -> dict[str, Location]:
    """Stored location URIs → the growing area / packing house they name (unknown ones are absent). One query."""
    idents = {u: _ident(u) for u in set(uris)}
    areas = [i.code for i in idents.values() if i.kind == "growing_area"]
    houses = [i.code for i in idents.values() if i.kind == "packing_facility"]
    glns = [i.gln for i in idents.values() if i.kind == "gln"]
    if not (areas or houses or glns):
        return {}
    by_code: dict[tuple[str, str], Location] = {}
    by_gln: dict[str, Location] = {}
    for kind, code, gln_, name, commune, status, ewkb, prov in conn.execute(
            _LOCATIONS_SQL, {"areas": areas, "houses": houses, "glns": glns}).fetchall():
        loc = Location(gs1.location_uri(kind, code, gln_), kind, code, name, commune, prov, status, ewkb)
        by_code[(kind, code)] = loc
        if gln_:
            by_gln[gln_] = loc
    out: dict[str, Location] = {}
    for u, i in idents.items():
        hit = by_gln.get(i.gln or "") if i.kind == "gln" else by_code.get((i.kind, i.code or ""))
        if hit is not None:
            out[u] = hit
    return out


def _scope_problem(sender: Sender, loc: Location) -> tuple[str, str] | None:
    if sender.national:
        return None
    what_vi = {"growing_area": "vùng trồng", "packing_facility": "cơ sở đóng gói"}[loc.kind]
    what_en = {"growing_area": "growing area", "packing_facility": "packing house"}[loc.kind]
    if sender.role == "producer":
        if loc.kind == "growing_area" and loc.code in sender.areas:
            return None
        return (f"{what_vi} {loc.code} không thuộc các vùng trồng của bạn ({', '.join(sorted(sender.areas))})",
                f"{what_en} {loc.code} is not one of your growing areas ({', '.join(sorted(sender.areas))})")
    if sender.role == "packer":
        if loc.kind == "packing_facility" and loc.code in sender.facilities:
            return None
        return (f"{what_vi} {loc.code} không thuộc các cơ sở đóng gói của bạn "
                f"({', '.join(sorted(sender.facilities))})",
                f"{what_en} {loc.code} is not one of your packing houses ({', '.join(sorted(sender.facilities))})")
    if sender.role in ("officer", "admin"):
        if loc.province in sender.provinces and (not sender.communes or loc.commune_code in sender.communes):
            return None
        return (f"{what_vi} {loc.code} (xã {loc.commune_code}, tỉnh {loc.province}) ngoài phạm vi của bạn",
                f"{what_en} {loc.code} (commune {loc.commune_code}, province {loc.province}) is outside your scope")
    return (f"vai trò '{sender.role}' không được ghi sự kiện", f"role '{sender.role}' may not capture events")


def check_events(conn: psycopg.Connection, doc: dict[str, Any], sender: Sender | None,
                 limits: CaptureLimits = CaptureLimits()) -> tuple[list[Event], list[EventProblem], dict[str, Location],
                                                                   set[str]]:
    """(new events, problems, locations, existing lots) of a parsed document; new events exclude duplicates."""
    raw_events = doc["epcisBody"]["eventList"]
    problems: list[EventProblem] = []
    events: list[Event] = []
    for i, ev in enumerate(raw_events):
        if not isinstance(ev, dict):
            problems.append(EventProblem(i, None, f"/epcisBody/eventList/{i}", "sự kiện phải là một đối tượng",
                                         "an event must be an object"))
            continue
        c = _Checker(i, ev, limits)
        e = c.check()
        problems.extend(c.problems)
        if e is not None:
            events.append(e)
    locations = resolve_locations(conn, [u for e in events for u in (e.read_point, e.biz_location) if u])
    # lots: known, or introduced by this document
    wanted = {c for e in events for c in e.lot_classes()}
    existing: set[str] = set()
    if wanted:
        pairs = [(_ident(c).gtin, _ident(c).lot) for c in wanted]
        rows = conn.execute("SELECT gtin, lot_number FROM trace_lots WHERE (gtin, lot_number) IN "
                            "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                            [[p[0] for p in pairs], [p[1] for p in pairs]]).fetchall()
        existing = {gs1.lot_uri(g, lt) for g, lt in rows}
    introduced = {q["epcClass"] for e in events for q in e.introduced_lots()}
    for ev_ in events:
        def bad(member: str, vi: str, en: str, kind: str = "validation", e: Event = ev_) -> None:
            problems.append(EventProblem(e.index, e.event_id if e.explicit_id else None,
                                         f"/epcisBody/eventList/{e.index}{member}", vi, en, kind))
        e = ev_
        locs = []
        for member, uri in (("readPoint", e.read_point), ("bizLocation", e.biz_location)):
            if uri is None:
                continue
            loc = locations.get(uri)
            if loc is None:
                bad(f"/{member}/id", f"địa điểm {uri} không có (không là vùng trồng hay cơ sở đóng gói nào)",
                    f"unknown location {uri} (no growing area or packing house has it)")
                continue
            locs.append((member, loc))
        if sender is not None and not sender.national:
            if not locs and e.read_point is None and e.biz_location is None:
                bad("/bizLocation", "sự kiện cần bizLocation hoặc readPoint là địa điểm bạn được ghi",
                    "the event needs a bizLocation or readPoint where you may write", "scope")
            for member, loc in locs:
                why = _scope_problem(sender, loc)
                if why is not None:
                    bad(f"/{member}/id", "không có quyền: " + why[0], "forbidden: " + why[1], "scope")
        for j, q in _lot_quantities(e):
            c = q["epcClass"]
            if c not in existing and c not in introduced:
                bad(j, f"lô {c} không có (chưa ghi nhận, và tài liệu không tạo nó bằng ObjectEvent ADD hay đầu ra "
                       "của TransformationEvent)",
                    f"unknown lot {c} (not recorded, and not introduced here by an ObjectEvent ADD or a "
                    "TransformationEvent output)")
    # eventIDs: duplicates (same content) are skipped, changed content refused
    seen: dict[str, str] = {}
    fresh: list[Event] = []
    ids = [e.event_id for e in events]
    stored: dict[str, str] = dict(conn.execute("SELECT event_id, coalesce(content_hash, '') FROM trace_events "
                               "WHERE event_id = ANY(%s)", [ids]).fetchall()) if ids else {}
    for e in events:
        prior = stored.get(e.event_id, seen.get(e.event_id))
        if prior is None:
            seen[e.event_id] = e.content_hash
            fresh.append(e)
        elif prior != e.content_hash:
            problems.append(EventProblem(e.index, e.event_id, f"/epcisBody/eventList/{e.index}/eventID",
                                         f"eventID {e.event_id} đã được ghi với nội dung khác; sự kiện đã ghi không "
                                         "sửa được (gửi một sự kiện sửa lỗi với errorDeclaration)",
                                         f"eventID {e.event_id} was already captured with different content; a "
                                         "captured event cannot change (send a correcting event with an "
                                         "errorDeclaration)", "conflict"))
    return fresh, problems, locations, existing


def _lot_quantities(e: Event) -> list[tuple[str, dict[str, Any]]]:
    out = []
    names = (("quantityList" if e.event_type in ("ObjectEvent", "TransactionEvent") else "childQuantityList",
              e.quantity_list), ("inputQuantityList", e.input_quantity_list),
             ("outputQuantityList", e.output_quantity_list))
    for name, qs in names:
        for j, q in enumerate(qs):
            if _ident(q["epcClass"]).kind == "lgtin":
                out.append((f"/{name}/{j}/epcClass", q))
    return out


# -- storing ---------------------------------------------------------------------------------------------------

_EVENT_COLUMNS = ("event_id", "event_type", "action", "biz_step", "disposition", "event_time",
                  "event_timezone_offset", "read_point", "biz_location", "lot_id", "epc_list", "parent_id",
                  "child_epcs", "input_epcs", "output_epcs", "quantity_list", "input_quantity_list",
                  "output_quantity_list", "any_ids", "ilmd", "biz_transaction_list", "source_list",
                  "destination_list", "sensor_element_list", "raw", "content_hash", "captured_by", "geom")


def _local_date(e: Event) -> dt.date:
    sign = 1 if e.offset[0] == "+" else -1
    h, m = int(e.offset[1:3]), int(e.offset[4:6])
    return e.event_time.astimezone(dt.timezone(sign * dt.timedelta(hours=h, minutes=m))).date()


def _create_lots(conn: psycopg.Connection, events: list[Event], locations: dict[str, Location],
                 existing: set[str]) -> dict[str, int]:
    """trace_lots rows for the lots this document introduces; returns Digital Link URI → id of every new lot."""
    new: dict[str, dict[str, Any]] = {}
    for e in events:
        loc = locations.get(e.biz_location or "") or locations.get(e.read_point or "")
        for q in e.introduced_lots():
            c = q["epcClass"]
            if c in existing:
                continue
            ident = _ident(c)
            lot = new.setdefault(c, {"gtin": ident.gtin, "lot": ident.lot, "quantity": Decimal(0), "unit": None,
                                     "origin": [], "facility": None, "harvest": None, "pack": None, "expiry": None,
                                     "product": None, "producer": None, "geom": None, "inputs": []})
            lot["quantity"] += Decimal(str(q.get("quantity", 0)))
            lot["unit"] = lot["unit"] or q.get("uom")
            if q.get("expiry"):
                lot["expiry"] = dt.date.fromisoformat(q["expiry"])
            exp = e.ilmd.get("cbvmda:itemExpirationDate")
            if exp is not None:
                lot["expiry"] = gs1.expiry(str(exp))
            for key in ("datso:product", "cbvmda:descriptionShort", "cbvmda:tradeItemDescription"):
                if isinstance(e.ilmd.get(key), str) and e.ilmd[key].strip():
                    lot["product"] = e.ilmd[key].strip()[:200]
                    break
            if loc is not None:
                lot["geom"] = lot["geom"] or loc.point_ewkb
                if loc.kind == "growing_area":
                    lot["origin"].append(loc.code)
                    lot["harvest"] = lot["harvest"] or _local_date(e)
                    lot["producer"] = lot["producer"] or loc.name
                else:
                    lot["facility"] = lot["facility"] or loc.code
                    lot["pack"] = lot["pack"] or _local_date(e)
                    lot["producer"] = lot["producer"] or loc.name
            lot["inputs"].extend(x["epcClass"] for x in e.input_quantity_list)
    if not new:
        return {}
    # what the inputs (known lots) say: origins, harvest date, product of the same GTIN
    inputs = sorted({i for lot in new.values() for i in lot["inputs"]})
    known: dict[str, tuple[list[str], dt.date | None, str, str | None]] = {}
    if inputs:
        for g, lt, origin, harvest, product, producer in conn.execute(
                "SELECT gtin, lot_number, origin_codes, harvest_date, product, producer FROM trace_lots "
                "WHERE (gtin, lot_number) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                [[_ident(i).gtin for i in inputs], [_ident(i).lot for i in inputs]]).fetchall():
            known[gs1.lot_uri(g, lt)] = (list(origin or []), harvest, product, producer)
    products: dict[str, str] = dict(conn.execute("SELECT DISTINCT ON (gtin) gtin, product FROM trace_lots WHERE gtin = ANY(%s) "
                                 "ORDER BY gtin, id DESC", [[lot["gtin"] for lot in new.values()]]).fetchall())
    rows = []
    for lot in new.values():
        for i in lot["inputs"]:
            if i in known:
                origin, harvest, product, _producer = known[i]
                lot["origin"].extend(origin)
                if harvest and (lot["harvest"] is None or harvest < lot["harvest"]):
                    lot["harvest"] = harvest
                lot["product"] = lot["product"] or product
            if i in new:      # an input introduced in the same document
                lot["origin"].extend(new[i]["origin"])
                h = new[i]["harvest"]
                if h and (lot["harvest"] is None or h < lot["harvest"]):
                    lot["harvest"] = h
                lot["product"] = lot["product"] or new[i]["product"]
        product = lot["product"] or products.get(lot["gtin"]) or f"GTIN {lot['gtin']}"
        rows.append((lot["gtin"], lot["lot"], product, lot["producer"], lot["quantity"] or None, lot["unit"] or "KGM",
                     sorted(set(lot["origin"])), lot["facility"], lot["harvest"], lot["pack"], lot["expiry"],
                     lot["geom"]))
    for r in rows:
        if r[4] is None:
            raise CaptureRefused([EventProblem(None, None, "/epcisBody/eventList",
                                               f"lô mới {gs1.lot_uri(r[0], r[1])} cần quantity (> 0)",
                                               f"the new lot {gs1.lot_uri(r[0], r[1])} needs a quantity (> 0)")])
    with conn.cursor().copy("COPY trace_lots (gtin, lot_number, product, producer, quantity, unit, origin_codes, "
                            "packing_facility_code, harvest_date, pack_date, expiry_date, geom) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)
    got = conn.execute("SELECT id, gtin, lot_number FROM trace_lots WHERE (gtin, lot_number) IN "
                       "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                       [[r[0] for r in rows], [r[1] for r in rows]]).fetchall()
    return {gs1.lot_uri(g, lt): int(i) for i, g, lt in got}


def _place(uri: str | None, locations: dict[str, Location]) -> str | None:
    """A location as stored: the area's / house's own URI (its GLN when it has one, else its datso URI), so one
    place has one name whichever form the sender used; a GLN with an extension (a sub-location) stays as sent."""
    if uri is None or uri not in locations or _ident(uri).extension:
        return uri
    return locations[uri].uri


def _j(v: Any) -> str:
    return orjson.dumps(v).decode()


def store_events(conn: psycopg.Connection, events: list[Event], locations: dict[str, Location],
                 existing: set[str], actor: str) -> list[str]:
    """Write new lots then the events (one COPY) inside the caller's transaction; returns new lots' URIs."""
    new_lots = _create_lots(conn, events, locations, existing)
    classes = sorted({c for e in events for c in e.lot_classes()} - set(new_lots))
    lot_ids = dict(new_lots)
    if classes:
        for g, lt, i in conn.execute(
                "SELECT gtin, lot_number, id FROM trace_lots WHERE (gtin, lot_number) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                [[_ident(c).gtin for c in classes], [_ident(c).lot for c in classes]]).fetchall():
            lot_ids[gs1.lot_uri(g, lt)] = int(i)
    with conn.cursor().copy(f"COPY trace_events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN") as cp:
        for e in events:
            loc = locations.get(e.biz_location or "") or locations.get(e.read_point or "")
            lots = e.lot_classes()
            # jsonb columns as JSON text (orjson), which COPY's text format hands to jsonb_in
            cp.write_row((e.event_id, e.event_type, e.action, e.biz_step, e.disposition, e.event_time, e.offset,
                          _place(e.read_point, locations), _place(e.biz_location, locations),
                          lot_ids.get(lots[0]) if lots else None, e.epc_list,
                          e.parent_id, e.child_epcs, e.input_epcs, e.output_epcs, _j(e.quantity_list),
                          _j(e.input_quantity_list), _j(e.output_quantity_list), e.any_ids, _j(e.ilmd),
                          _j(e.biz_transaction_list), _j(e.source_list), _j(e.destination_list),
                          _j(e.sensor_element_list), _j(e.raw), e.content_hash, actor,
                          loc.point_ewkb if loc is not None else None))
    return sorted(new_lots)


def capture(target: Target, body: bytes | str | dict[str, Any], sender: Sender | None,
            limits: CaptureLimits = CaptureLimits(), actor: str | None = None) -> CaptureResult:
    """Check and store an EPCIS document, all or nothing. `sender` None: the operator (no scope check).
    Raises CaptureRefused (4xx, every problem listed) and stores nothing then."""
    doc = body if isinstance(body, dict) else parse_document(body, limits)
    if isinstance(body, dict):
        _check_depth(doc, limits.max_depth)
    who = actor or (sender.name if sender is not None else "system")
    with _connect(target) as conn:
        # captures one at a time: two documents with one eventID cannot both pass the duplicate check
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('datso.epcis.capture'))")
        events, problems, locations, existing = check_events(conn, doc, sender, limits)
        if problems:
            conn.rollback()
            raise CaptureRefused(problems)
        n_all = len(doc["epcisBody"]["eventList"])
        if not events:
            conn.rollback()
            return CaptureResult(0, n_all, [])
        conn.execute("SELECT set_config('datso.actor', %s, true)", [who])
        lots = store_events(conn, events, locations, existing, who)
        conn.commit()
    return CaptureResult(len(events), n_all - len(events), [e.event_id for e in events], lots)


__all__ = ["EXCEPTION_BASE", "CaptureLimits", "CaptureRefused", "CaptureResult", "Event", "EventProblem", "Location",
           "Sender", "capture", "cbv_short", "check_events", "parse_document", "parse_time", "resolve_locations",
           "store_events"]
