"""Coherent synthetic trace chains (issue 12): every story is one a trace page can tell truthfully.

For each packed lot: 1–3 harvest lots, each from a growing area that grows that crop, is `active` and whose code
is valid on the harvest day (valid_from <= day < valid_to), preferring areas the packing house is linked to and
whose harvest months include that day; each harvest is an ObjectEvent ADD, bizStep commissioning, at the area
(lot data in ILMD); packing is a TransformationEvent at an active packing house with the harvest lots as inputs
and the packed lot (a new lot number) as output; the packed lot goes onto a pallet (AggregationEvent ADD,
parentID = an SSCC) which is shipped (ObjectEvent OBSERVE, bizStep shipping, epcList = the SSCC).

One deliberate exception shows the warning: a lot harvested from an area that is revoked (or suspended) today,
after the day it was revoked; the change is written to `history` so that its status ON THE HARVEST DAY is known.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

VN = dt.timezone(dt.timedelta(hours=7))
PRODUCTS = {"coconut": "Dừa tươi", "durian": "Sầu riêng", "pomelo": "Bưởi da xanh",
            "dragon_fruit": "Thanh long", "rice": "Gạo ST25", "mango": "Xoài cát Hòa Lộc",
            "longan": "Nhãn", "rambutan": "Chôm chôm"}
SHELF_DAYS = {"rice": 365, "coconut": 45, "durian": 10, "pomelo": 60, "dragon_fruit": 30, "mango": 14,
              "longan": 14, "rambutan": 10}
DL = "https://id.gs1.org"
EVENT_COLS = ("event_id", "event_type", "action", "biz_step", "disposition", "event_time", "event_timezone_offset",
              "read_point", "biz_location", "lot_id", "epc_list", "parent_id", "child_epcs", "input_epcs",
              "output_epcs", "quantity_list", "input_quantity_list", "output_quantity_list", "any_ids", "ilmd",
              "captured_by", "synthetic", "geom")
LOT_COLS = ("gtin", "lot_number", "product", "producer", "quantity", "unit", "origin_codes", "packing_facility_code",
            "harvest_date", "pack_date", "expiry_date", "synthetic", "geom")


def _check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def _gtin(rng: random.Random) -> str:
    body = "0893" + "".join(str(rng.randint(0, 9)) for _ in range(9))
    return body + _check_digit(body)


def _sscc(n: int) -> str:
    body = "0" + "8934567" + f"{n:09d}"   # extension digit, company prefix, serial reference: 17 digits
    return body + _check_digit(body)


def _arr(values: Sequence[Any]) -> str:
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _j(v: Any) -> str:
    return orjson.dumps(v).decode()


def _area_uri(code: str) -> str:
    return f"urn:datso:loc:growing_area:{code}"


def _house_uri(code: str) -> str:
    return f"urn:datso:loc:packing_facility:{code}"


def _eligible(a: dict[str, Any], day: dt.date) -> bool:
    return (a["status"] == "active" and (a["valid_from"] is None or a["valid_from"] <= day)
            and (a["valid_to"] is None or day < a["valid_to"]))


def load_trace(cur: psycopg.Cursor[Any], seed: int, n: int, facilities: list[dict[str, Any]],
               today: dt.date) -> None:
    """`n` packed lots (with their harvest lots, pallets and events) into trace_lots / trace_events."""
    rng = random.Random(seed + 79)
    areas = [dict(zip(("id", "code", "crop", "status", "valid_from", "valid_to", "owner", "cooperative", "months",
                       "point", "reason"), r, strict=True))
             for r in cur.execute("SELECT id, code, crop, status, valid_from, valid_to, owner, cooperative, "
                                  "harvest_months, ST_AsHexEWKB(ST_PointOnSurface(geom)), status_reason "
                                  "FROM growing_areas ORDER BY id").fetchall()]
    by_code = {a["code"]: a for a in areas}
    gtins = {crop: _gtin(rng) for crop in PRODUCTS}
    houses = [f for f in facilities if f["status"] == "active"] or facilities
    lots: list[tuple[Any, ...]] = []
    events: list[dict[str, Any]] = []

    def event(etype: str, action: str | None, step: str, disp: str, when: dt.datetime, loc: str,
              geom: str | None, **kw: Any) -> None:
        ids = [*kw.get("epc_list", []), *kw.get("child_epcs", []), *kw.get("input_epcs", []),
               *kw.get("output_epcs", [])]
        ids += [kw["parent_id"]] if kw.get("parent_id") else []
        for k in ("quantity_list", "input_quantity_list", "output_quantity_list"):
            ids += [q["epcClass"] for q in kw.get(k, [])]
        events.append({"event_id": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                       "event_type": etype, "action": action, "biz_step": step, "disposition": disp,
                       "event_time": when, "read_point": loc, "biz_location": loc, "geom": geom,
                       "any_ids": list(dict.fromkeys(ids)), **kw})

    def harvest(i: int, k: int, area: dict[str, Any], crop: str, day: dt.date) -> tuple[str, float]:
        lot_no = f"H{day:%y%m%d}-{i + 1:04d}{'abc'[k]}"
        uri = f"{DL}/01/{gtins[crop]}/10/{lot_no}"
        qty = round(rng.uniform(300, 3000), 1)
        lots.append((gtins[crop], lot_no, PRODUCTS[crop], area["cooperative"] or area["owner"], qty, "KGM",
                     _arr([area["code"]]), None, day, None, None, True, area["point"]))
        t = dt.datetime.combine(day, dt.time(5 + k, 30), tzinfo=VN)
        event("ObjectEvent", "ADD", "commissioning", "active", t, _area_uri(area["code"]), area["point"],
              quantity_list=[{"epcClass": uri, "quantity": qty, "uom": "KGM"}],
              ilmd={"cbvmda:harvestStartDate": day.isoformat(), "cbvmda:countryOfOrigin": "VN",
                    "datso:growingAreaCode": area["code"], "datso:product": PRODUCTS[crop]})
        return uri, qty

    def pack(i: int, house: dict[str, Any], crop: str, origin: list[dict[str, Any]], day: dt.date) -> None:
        inputs = [harvest(i, k, a, crop, day) for k, a in enumerate(origin)]
        pack_day = day + dt.timedelta(days=rng.randint(0, 2))
        lot_no = f"L{pack_day:%y%m%d}-{i + 1:04d}"
        uri = f"{DL}/01/{gtins[crop]}/10/{lot_no}"
        qty = round(sum(q for _, q in inputs) * rng.uniform(0.9, 0.97), 1)
        geom = f"SRID=4326;{house['point'].wkt}"
        lots.append((gtins[crop], lot_no, PRODUCTS[crop], origin[0]["cooperative"] or origin[0]["owner"], qty,
                     "KGM", _arr([a["code"] for a in origin]), house["code"], day, pack_day,
                     pack_day + dt.timedelta(days=SHELF_DAYS[crop]), True, geom))
        t = dt.datetime.combine(pack_day, dt.time(14, 0), tzinfo=VN)
        here = _house_uri(house["code"])
        event("TransformationEvent", None, "packing", "in_progress", t, here, geom,
              input_quantity_list=[{"epcClass": u, "quantity": q, "uom": "KGM"} for u, q in inputs],
              output_quantity_list=[{"epcClass": uri, "quantity": qty, "uom": "KGM"}],
              ilmd={"cbvmda:itemExpirationDate": (pack_day + dt.timedelta(days=SHELF_DAYS[crop])).isoformat(),
                    "datso:product": PRODUCTS[crop]})
        sscc = f"{DL}/00/{_sscc(i + 1)}"
        event("AggregationEvent", "ADD", "packing", "in_progress", t + dt.timedelta(hours=2), here, geom,
              parent_id=sscc, quantity_list=[{"epcClass": uri, "quantity": qty, "uom": "KGM"}])
        event("ObjectEvent", "OBSERVE", "shipping", "in_transit", t + dt.timedelta(hours=18), here, geom,
              epc_list=[sscc])

    for i in range(n):
        house = houses[i % len(houses)]
        linked = {g[1] for g in house.get("growing", [])}
        day = today - dt.timedelta(days=rng.randint(1, 300))
        ok = [a for a in areas if _eligible(a, day) and a["crop"] in PRODUCTS]
        if not ok:
            continue
        season = [a for a in ok if day.month in (a["months"] or [])]
        pool = [a for a in season if a["code"] in linked] or [a for a in ok if a["code"] in linked] or season or ok
        crop = rng.choice(pool)["crop"]
        same = [a for a in pool if a["crop"] == crop]
        pack(i, house, crop, rng.sample(same, min(len(same), rng.randint(1, 3))), day)

    # the warning story: an area revoked (or suspended) today, harvested after it lost its code
    bad = next((a for a in areas if a["status"] in ("revoked", "suspended") and a["crop"] in PRODUCTS
                and a["valid_from"] is not None), None)
    if bad is not None:
        changed = max(bad["valid_from"] + dt.timedelta(days=30), today - dt.timedelta(days=120))
        day = changed + dt.timedelta(days=20)
        before = {"id": bad["id"], "code": bad["code"], "status": "active", "status_reason": None,
                  "valid_from": bad["valid_from"].isoformat(),
                  "valid_to": bad["valid_to"].isoformat() if bad["valid_to"] else None}
        after = {**before, "status": bad["status"], "status_reason": bad["reason"]}
        cur.execute("INSERT INTO history (layer, feature_id, action, actor, reason, at, before, after) "
                    "VALUES ('growing_areas', %s, 'update', 'sample', %s, %s, %s, %s)",
                    (bad["id"], bad["reason"], dt.datetime.combine(changed, dt.time(9, 0), tzinfo=VN),
                     _j(before), _j(after)))
        pack(n, houses[0], bad["crop"], [by_code[bad["code"]]], day)

    with cur.copy(f"COPY trace_lots ({', '.join(LOT_COLS)}) FROM STDIN") as cp:
        for row in lots:
            cp.write_row(row)
    lot_ids = {f"{DL}/01/{g}/10/{lo}": int(i) for i, g, lo in
               cur.execute("SELECT id, gtin, lot_number FROM trace_lots").fetchall()}
    with cur.copy(f"COPY trace_events ({', '.join(EVENT_COLS)}) FROM STDIN") as cp:
        for e in sorted(events, key=lambda e: e["event_time"]):
            first = next((x for x in e["any_ids"] if x in lot_ids), None)
            cp.write_row((e["event_id"], e["event_type"], e["action"], e["biz_step"], e["disposition"],
                          e["event_time"], "+07:00", e["read_point"], e["biz_location"],
                          lot_ids.get(first) if first else None, _arr(e.get("epc_list", [])), e.get("parent_id"),
                          _arr(e.get("child_epcs", [])), _arr(e.get("input_epcs", [])),
                          _arr(e.get("output_epcs", [])), _j(e.get("quantity_list", [])),
                          _j(e.get("input_quantity_list", [])), _j(e.get("output_quantity_list", [])),
                          _arr(e["any_ids"]), _j(e.get("ilmd", {})), "sample", True, e["geom"]))
