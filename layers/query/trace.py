"""The trace chain of a lot (TCVN 12850:2019 = GS1 Global Traceability Standard: one step back, one step
forward; transitively on request, bounded).

Edges come from the stored EPCIS events (revision 0009): a TransformationEvent links each input (inputEPCList,
inputQuantityList classes) to each output; an AggregationEvent (ADD/OBSERVE) links each child (childEPCs,
childQuantityList classes) to its parent (e.g. a lot to the SSCC of its pallet). Going back follows edges
backwards (output → inputs, parent → children), going forward follows them forwards; siblings are not walked.
Both walks are ONE recursive CTE whose every step is a GIN lookup on `trace_events.any_ids`.

The origin growing areas are read with their state ON THE HARVEST DATE: the newest `history` row of the area
up to the end of that day (Vietnam time), else the `before` of the first change after it, else the current
row; a code is valid on day d when its status was `active` and valid_from <= d < valid_to.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from gis import gs1

VN = dt.timezone(dt.timedelta(hours=7))
CERTIFICATIONS = {"VietGAP": "VietGAP", "GlobalGAP": "GlobalG.A.P.", "Organic": "Organic"}
WARN_STATES = ("suspended", "revoked")

_CLASSES = "ARRAY(SELECT q->>'epcClass' FROM jsonb_array_elements({col}) q)"
_HAS_CLASS = "{col} @> jsonb_build_array(jsonb_build_object('epcClass', {id}))"

WALK_SQL = f"""
WITH RECURSIVE back(id, depth) AS (
  SELECT $1::text, 0
  UNION
  SELECT x.id, b.depth + 1
  FROM back b CROSS JOIN LATERAL (
    SELECT unnest(CASE WHEN e.event_type = 'TransformationEvent'
                       THEN e.input_epcs || {_CLASSES.format(col="e.input_quantity_list")}
                       ELSE e.child_epcs || {_CLASSES.format(col="e.quantity_list")} END) AS id
    FROM trace_events e
    WHERE e.any_ids @> ARRAY[b.id]
      AND ((e.event_type = 'TransformationEvent'
            AND (b.id = ANY(e.output_epcs) OR {_HAS_CLASS.format(col="e.output_quantity_list", id="b.id")}))
        OR (e.event_type = 'AggregationEvent' AND e.action <> 'DELETE' AND e.parent_id = b.id))
  ) x
  WHERE b.depth < $2 AND x.id IS NOT NULL
), fwd(id, depth) AS (
  SELECT $1::text, 0
  UNION
  SELECT x.id, f.depth + 1
  FROM fwd f CROSS JOIN LATERAL (
    SELECT unnest(CASE WHEN e.event_type = 'TransformationEvent'
                       THEN e.output_epcs || {_CLASSES.format(col="e.output_quantity_list")}
                       ELSE ARRAY[e.parent_id] END) AS id
    FROM trace_events e
    WHERE e.any_ids @> ARRAY[f.id]
      AND ((e.event_type = 'TransformationEvent'
            AND (f.id = ANY(e.input_epcs) OR {_HAS_CLASS.format(col="e.input_quantity_list", id="f.id")}))
        OR (e.event_type = 'AggregationEvent' AND e.action <> 'DELETE'
            AND (f.id = ANY(e.child_epcs) OR {_HAS_CLASS.format(col="e.quantity_list", id="f.id")})))
  ) x
  WHERE f.depth < $2 AND x.id IS NOT NULL
)
SELECT 'back' AS dir, id, min(depth) AS depth FROM back GROUP BY id
UNION ALL
SELECT 'forward', id, min(depth) FROM fwd GROUP BY id
ORDER BY 1, 3, 2
"""  # noqa: S608 - fixed fragments, no input

LOTS_SQL = """
SELECT l.gtin, l.lot_number, l.product, l.producer, l.quantity, l.unit, l.origin_codes, l.packing_facility_code,
       l.harvest_date, l.pack_date, l.expiry_date
FROM unnest($1::text[], $2::text[]) AS k(gtin, lot) JOIN trace_lots l ON l.gtin = k.gtin AND l.lot_number = k.lot
"""

# MATERIALIZED: the GIN lookup first, then the sort (with ORDER BY … LIMIT alone the planner may walk the
# event_time index through the whole table, filtering on any_ids)
EVENTS_SQL = """
WITH hit AS MATERIALIZED (
  SELECT id, event_id, event_type, action, biz_step, disposition, event_time, event_timezone_offset, read_point,
         biz_location, epc_list, parent_id, child_epcs, input_epcs, output_epcs, quantity_list,
         input_quantity_list, output_quantity_list, ilmd
  FROM trace_events WHERE any_ids && $1::text[])
SELECT * FROM hit ORDER BY event_time, id LIMIT $2
"""

# each origin code with the day it was harvested there → the area's state on that day
AREAS_SQL = """
SELECT g.code, o.d, g.crop, g.variety, g.owner, g.cooperative, g.commune_code, g.standard, g.status,
       g.status_reason, g.valid_from, g.valid_to, g.area_m2, g.gln,
       a.after AS state_after, b.before AS state_before, b.action AS next_action,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, 0.00003), 6) AS shape,
       (SELECT name FROM admin_units u WHERE u.code = g.commune_code AND u.level = 'commune'
        ORDER BY u.valid_to DESC NULLS FIRST LIMIT 1) AS commune
FROM unnest($1::text[], $2::date[]) AS o(code, d)
JOIN growing_areas g ON g.code = o.code
LEFT JOIN LATERAL (
  SELECT h.after FROM history h
  WHERE h.layer = 'growing_areas' AND h.feature_id = g.id AND h.action <> 'delete'
    AND h.at < ((o.d + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  ORDER BY h.at DESC, h.id DESC LIMIT 1) a ON true
LEFT JOIN LATERAL (
  SELECT h.before, h.action FROM history h
  WHERE h.layer = 'growing_areas' AND h.feature_id = g.id
    AND h.at >= ((o.d + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  ORDER BY h.at, h.id LIMIT 1) b ON true
"""

FACILITIES_SQL = """
SELECT code, name, owner, address, status, gln, commune_code,
       ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
FROM packing_facilities WHERE code = ANY($1::text[]) OR gln = ANY($2::text[])
"""

COMMUNES_SQL = """
SELECT code, name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.0004), 5) AS shape
FROM admin_units WHERE level = 'commune' AND code = ANY($1::text[]) AND valid_to IS NULL
"""

AREA_NAMES_SQL = "SELECT code, owner, gln FROM growing_areas WHERE code = ANY($1::text[]) OR gln = ANY($2::text[])"


@dataclass(frozen=True)
class LotKey:
    gtin: str
    lot: str

    @property
    def uri(self) -> str:
        return gs1.lot_uri(self.gtin, self.lot)


async def find_lots(conn: Any, lot: str, gtin: str | None) -> list[LotKey]:
    """The lots with this lot number (and GTIN-14 when given)."""
    if gtin is not None:
        rows = await conn.fetch("SELECT gtin, lot_number FROM trace_lots WHERE gtin = $1 AND lot_number = $2",
                                gtin, lot)
    else:
        rows = await conn.fetch("SELECT gtin, lot_number FROM trace_lots WHERE lot_number = $1 ORDER BY gtin "
                                "LIMIT 10", lot)
    return [LotKey(r["gtin"], r["lot_number"]) for r in rows]


def _iso(v: Any) -> str | None:
    return v.isoformat() if v is not None else None


def _lot_json(r: Any) -> dict[str, Any]:
    return {"gtin": r["gtin"], "lot": r["lot_number"], "id": gs1.lot_uri(r["gtin"], r["lot_number"]),
            "product": r["product"], "producer": r["producer"], "quantity": float(r["quantity"]),
            "unit": r["unit"], "originCodes": list(r["origin_codes"] or []),
            "packingFacilityCode": r["packing_facility_code"], "harvestDate": _iso(r["harvest_date"]),
            "packDate": _iso(r["pack_date"]), "expiryDate": _iso(r["expiry_date"])}


def _node(uri: str) -> dict[str, Any]:
    try:
        i = gs1.parse_uri(uri)
    except ValueError:
        return {"id": uri, "kind": "other"}
    out: dict[str, Any] = {"id": uri, "kind": i.kind}
    for k in ("gtin", "lot", "serial", "sscc"):
        if getattr(i, k, None):
            out[k] = getattr(i, k)
    return out


def _date(v: Any) -> dt.date | None:
    if v is None or isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


def area_state(r: Any) -> dict[str, Any]:
    """The area's status and validity on the harvest day `r["d"]`, and whether its code was valid then."""
    d: dt.date = r["d"]
    source = "current"
    state: dict[str, Any] | None
    if r["state_after"] is not None:
        state, source = _loads(r["state_after"]), "history"
    elif r["state_before"] is not None and r["next_action"] == "update":
        state, source = _loads(r["state_before"]), "history"
    elif r["next_action"] == "insert":
        state, source = None, "history"          # registered after the harvest
    else:
        state = {"status": r["status"], "valid_from": r["valid_from"], "valid_to": r["valid_to"],
                 "status_reason": r["status_reason"]}
    if state is None:
        return {"statusAtHarvest": "unregistered", "validAtHarvest": False, "stateSource": source,
                "statusReasonAtHarvest": None}
    status = str(state.get("status") or "draft")
    vf, vt = _date(state.get("valid_from")), _date(state.get("valid_to"))
    in_window = (vf is None or vf <= d) and (vt is None or d < vt)
    shown = status if status != "active" or in_window else ("expired" if vt is not None and d >= vt
                                                            else "not_yet_valid")
    return {"statusAtHarvest": shown, "validAtHarvest": status == "active" and in_window,
            "validFromAtHarvest": _iso(vf), "validToAtHarvest": _iso(vt), "stateSource": source,
            "statusReasonAtHarvest": state.get("status_reason")}


def _loads(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else orjson.loads(v)


def _classes(q: Any) -> list[str]:
    items = _loads_list(q)
    return [str(x.get("epcClass")) for x in items if isinstance(x, dict) and x.get("epcClass")]


def _loads_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else orjson.loads(v)


def _loc_key(uri: str | None) -> tuple[str, str] | None:
    if not uri:
        return None
    try:
        i = gs1.parse_uri(uri)
    except ValueError:
        return None
    if i.kind in ("growing_area", "packing_facility") and i.code:
        return (i.kind, i.code)
    if i.kind == "gln" and i.gln:
        return ("gln", i.gln)
    return None


async def chain(conn: Any, key: LotKey, depth: int, max_events: int = 500) -> dict[str, Any] | None:
    """The trace of one lot as a JSON-able dict (None when the lot is unknown)."""
    lot_rows = await conn.fetch(LOTS_SQL, [key.gtin], [key.lot])
    if not lot_rows:
        return None
    walk = await conn.fetch(WALK_SQL, key.uri, depth)
    nodes = {"back": [], "forward": []}  # type: dict[str, list[dict[str, Any]]]
    reached = 0
    for r in walk:
        if r["depth"] == 0:
            continue
        reached = max(reached, r["depth"])
        nodes[r["dir"]].append({**_node(r["id"]), "depth": r["depth"]})
    ids = [key.uri] + [n["id"] for d in ("back", "forward") for n in nodes[d]]
    lot_keys = [(n["gtin"], n["lot"]) for d in ("back", "forward") for n in nodes[d]
                if n["kind"] == "lgtin" and n.get("gtin") and n.get("lot")]
    other = await conn.fetch(LOTS_SQL, [g for g, _ in lot_keys], [lo for _, lo in lot_keys]) if lot_keys else []
    lots = {gs1.lot_uri(r["gtin"], r["lot_number"]): _lot_json(r) for r in [*lot_rows, *other]}
    for d in ("back", "forward"):
        for n in nodes[d]:
            if n["id"] in lots:
                n["lot"] = lots[n["id"]]
    me = lots[key.uri]
    # origins: each code with the harvest day of the furthest-back lot that names it
    harvest: dict[str, tuple[int, dt.date]] = {}
    back_lots = [(0, me)] + [(n["depth"], n["lot"]) for n in nodes["back"] if "lot" in n]
    for dep, lj in back_lots:
        hd = _date(lj.get("harvestDate"))
        for code in lj.get("originCodes") or []:
            if hd is not None and (code not in harvest or dep > harvest[code][0]):
                harvest[code] = (dep, hd)
    codes = sorted(harvest)
    area_rows = await conn.fetch(AREAS_SQL, codes, [harvest[c][1] for c in codes]) if codes else []
    origins = []
    for r in area_rows:
        st = area_state(r)
        origins.append({
            "code": r["code"], "crop": r["crop"], "variety": r["variety"], "owner": r["owner"],
            "cooperative": r["cooperative"], "communeCode": r["commune_code"], "commune": r["commune"],
            "areaHa": round(float(r["area_m2"]) / 10_000, 2), "standard": r["standard"],
            "certifications": [CERTIFICATIONS[r["standard"]]] if r["standard"] in CERTIFICATIONS else [],
            "harvestDate": r["d"].isoformat(), **st, "currentStatus": r["status"],
            "currentStatusReason": r["status_reason"], "warning": st["statusAtHarvest"] in WARN_STATES,
            "location": gs1.location_uri("growing_area", r["code"], r["gln"]),
            "geometry": orjson.loads(r["shape"]) if r["shape"] else None})
    events = await conn.fetch(EVENTS_SQL, ids, max_events)
    fac_codes = {lj["packingFacilityCode"] for lj in lots.values() if lj.get("packingFacilityCode")}
    locs = {k for e in events for k in (_loc_key(e["biz_location"]), _loc_key(e["read_point"])) if k}
    fac_codes |= {c for k, c in locs if k == "packing_facility"}
    glns = sorted({c for k, c in locs if k == "gln"})
    fac_rows = await conn.fetch(FACILITIES_SQL, sorted(fac_codes), glns)
    facilities = {r["code"]: r for r in fac_rows}
    area_codes = sorted({c for k, c in locs if k == "growing_area"} | set(codes))
    area_names = await conn.fetch(AREA_NAMES_SQL, area_codes, glns)
    names: dict[tuple[str, str], str] = {}
    for r in fac_rows:
        names[("packing_facility", r["code"])] = r["name"]
        if r["gln"]:
            names[("gln", r["gln"])] = r["name"]
    for r in area_names:
        names[("growing_area", r["code"])] = r["code"]
        if r["gln"]:
            names[("gln", r["gln"])] = r["code"]
    houses = [{"code": r["code"], "name": r["name"], "owner": r["owner"], "address": r["address"],
               "status": r["status"], "gln": r["gln"], "communeCode": r["commune_code"],
               "location": gs1.location_uri("packing_facility", r["code"], r["gln"]),
               "point": [round(float(r["lon"]), 6), round(float(r["lat"]), 6)] if r["lon"] is not None else None}
              for r in sorted(fac_rows, key=lambda r: r["code"])]
    out_events = []
    for e in events:
        k = _loc_key(e["biz_location"]) or _loc_key(e["read_point"])
        ev: dict[str, Any] = {
            "eventID": e["event_id"], "type": e["event_type"], "action": e["action"], "bizStep": e["biz_step"],
            "disposition": e["disposition"], "eventTime": e["event_time"].astimezone(VN).isoformat(),
            "eventTimeZoneOffset": e["event_timezone_offset"], "bizLocation": e["biz_location"],
            "readPoint": e["read_point"], "locationName": names.get(k) if k else None,
            "locationKind": (("packing_facility" if k[1] in facilities or k[0] == "packing_facility" else
                              "growing_area") if k else None)}
        for name, val in (("epcList", list(e["epc_list"] or [])), ("parentID", e["parent_id"]),
                          ("childEPCs", list(e["child_epcs"] or [])), ("inputEPCList", list(e["input_epcs"] or [])),
                          ("outputEPCList", list(e["output_epcs"] or [])), ("quantityList", _loads_list(e["quantity_list"])),
                          ("inputQuantityList", _loads_list(e["input_quantity_list"])),
                          ("outputQuantityList", _loads_list(e["output_quantity_list"]))):
            if val:
                ev[name] = val
        out_events.append(ev)
    return {"lot": me, "depth": depth, "complete": reached < depth,
            "back": nodes["back"], "forward": nodes["forward"], "origins": origins, "packingHouses": houses,
            "events": out_events, "eventsTruncated": len(events) >= max_events,
            "warning": any(o["warning"] for o in origins)}


async def commune_shapes(conn: Any, codes: list[str]) -> list[dict[str, Any]]:
    """Today's communes (simplified) around a trace's places: the context of the origin map."""
    rows = await conn.fetch(COMMUNES_SQL, sorted(set(codes))) if codes else []
    return [{"code": r["code"], "name": r["name"], "geometry": orjson.loads(r["shape"])} for r in rows if r["shape"]]
