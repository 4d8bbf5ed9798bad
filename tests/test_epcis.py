"""EPCIS 2.0 capture and query (issue 12): a valid document is stored whole and re-capture is idempotent; a
document with one bad event is refused whole with the event and field named and nothing stored; every query
parameter gives what an independent SQL statement gives; paging; roles (anonymous 401, a packer of another
house 403); the CLI; hostile JSON. Real HTTP (TestClient) on the real PostGIS test database."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from biip.checksums import gs1_standard_check_digit
from fastapi.testclient import TestClient

from gis import gs1
from layers.accounts.users import create_user
from layers.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = "application/problem+json"
CTX = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def _check(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


def new_gtin(rng: random.Random) -> str:
    return _check("0893" + "".join(rng.choice("0123456789") for _ in range(9)))


def new_sscc(rng: random.Random) -> str:
    return _check("1893" + "".join(rng.choice("0123456789") for _ in range(13)))


def uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def places(sample_db: str) -> dict[str, Any]:
    """Two active packing houses (A with a growing area it buys from, B another) from the sample province."""
    with psycopg.connect(sample_db) as c:
        rows = c.execute(
            "SELECT f.code, g.code, g.crop FROM packing_facilities f JOIN packing_facility_growing_areas l ON "
            "l.facility_id = f.id JOIN growing_areas g ON g.id = l.growing_area_id WHERE f.status = 'active' "
            "ORDER BY f.code, g.code").fetchall()
    assert rows, "the sample has packing houses with growing areas"
    fac_a, area, crop = rows[0]
    fac_b = next(r[0] for r in rows if r[0] != fac_a)
    return {"fac_a": fac_a, "fac_b": fac_b, "area": area, "crop": crop}


@pytest.fixture(scope="module")
def keys(sample_db: str, places: dict[str, Any]) -> dict[str, str]:
    """API keys: a national admin, a packer of house A, a packer of house B, a producer of the area."""
    return {
        "admin": create_user(sample_db, uid("epcis-admin-"), "admin", national=True).key,
        "packer_a": create_user(sample_db, uid("packer-a-"), "packer", facilities=[places["fac_a"]]).key,
        "packer_b": create_user(sample_db, uid("packer-b-"), "packer", facilities=[places["fac_b"]]).key,
        "producer": create_user(sample_db, uid("producer-"), "producer", areas=[places["area"]]).key,
    }


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/ld+json"}


def loc(kind: str, code: str) -> dict[str, str]:
    return {"id": f"urn:datso:loc:{kind}:{code}"}


def chain(places: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    """A coherent chain: harvest (commissioning ADD) at the area → packing (transformation, a new lot) at house A →
    aggregation onto an SSCC pallet → shipping the pallet → a transaction (PO) → an association."""
    rng = random.Random(seed if seed is not None else uuid.uuid4().int)
    g = new_gtin(rng)
    harvest_lot, packed_lot = uid("H"), uid("P")
    sscc = new_sscc(rng)
    cp = g[1:8]                                                 # a 7-digit company prefix, for the URN forms
    lgtin_urn = f"urn:epc:class:lgtin:{cp}.{g[0]}{g[8:13]}.{harvest_lot}"   # the harvest lot as an EPC URN
    packed = gs1.digital_link(g, packed_lot)
    area, fac = loc("growing_area", places["area"]), loc("packing_facility", places["fac_a"])
    ev = [
        {"type": "ObjectEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "ADD",
         "eventTime": "2025-06-01T06:00:00+07:00", "eventTimeZoneOffset": "+07:00",
         "bizStep": "commissioning", "disposition": "https://ref.gs1.org/cbv/Disp-active",
         "readPoint": area, "bizLocation": area, "epcList": [],
         "quantityList": [{"epcClass": lgtin_urn, "quantity": 1200.5, "uom": "KGM"}],
         "ilmd": {"datso:product": "Bưởi da xanh Bến Tre", "cbvmda:itemExpirationDate": "2025-08-01"}},
        {"type": "TransformationEvent", "eventID": f"urn:uuid:{uuid.uuid4()}",
         "eventTime": "2025-06-02T14:00:00+07:00", "eventTimeZoneOffset": "+07:00",
         "bizStep": "https://ref.gs1.org/cbv/BizStep-packing", "disposition": "in_progress",
         "readPoint": fac, "bizLocation": fac,
         "inputQuantityList": [{"epcClass": gs1.digital_link(g, harvest_lot), "quantity": 1200.5, "uom": "KGM"}],
         "outputQuantityList": [{"epcClass": packed, "quantity": 1150, "uom": "KGM"}]},
        {"type": "AggregationEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "ADD",
         "eventTime": "2025-06-02T16:00:00+07:00", "eventTimeZoneOffset": "+07:00", "bizStep": "packing",
         "readPoint": fac, "bizLocation": fac, "parentID": f"urn:epc:id:sscc:{sscc[1:8]}.{sscc[0]}{sscc[8:17]}",
         "childEPCs": [], "childQuantityList": [{"epcClass": packed, "quantity": 1150, "uom": "KGM"}]},
        {"type": "ObjectEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "OBSERVE",
         "eventTime": "2025-06-03T08:00:00+07:00", "eventTimeZoneOffset": "+07:00", "bizStep": "shipping",
         "disposition": "in_transit", "readPoint": fac, "bizLocation": fac,
         "epcList": [f"https://id.gs1.org/00/{sscc}"],
         "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:8935000000001:PO-1"}],
         "destinationList": [{"type": "owning_party", "destination": "https://id.gs1.org/417/9506000134352"}]},
        {"type": "TransactionEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "ADD",
         "eventTime": "2025-06-03T08:05:00+07:00", "eventTimeZoneOffset": "+07:00", "bizStep": "shipping",
         "readPoint": fac, "bizLocation": fac, "epcList": [], "quantityList": [{"epcClass": packed}],
         "bizTransactionList": [{"type": "https://ref.gs1.org/cbv/BTT-inv", "bizTransaction": "urn:x:inv:1"}]},
        {"type": "AssociationEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "ADD",
         "eventTime": "2025-06-03T08:10:00Z", "eventTimeZoneOffset": "+07:00", "bizStep": "loading",
         "readPoint": fac, "bizLocation": fac, "parentID": f"https://id.gs1.org/00/{sscc}",
         "childEPCs": [f"urn:epc:id:sgtin:{cp}.{g[0]}{g[8:13]}.SN1"], "ex:note": "kept as sent"},
    ]
    return {"@context": [CTX, {"ex": "https://example.org/ns/"}], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2025-06-03T09:00:00+07:00", "epcisBody": {"eventList": ev},
            "_gtin": g, "_lots": (harvest_lot, packed_lot), "_sscc": sscc}


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in doc.items() if not k.startswith("_")}).encode()


def ids_of(doc: dict[str, Any]) -> list[str]:
    return [e["eventID"] for e in doc["epcisBody"]["eventList"]]


def stored(dsn: str, event_ids: list[str]) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*) FROM trace_events WHERE event_id = ANY(%s)", [event_ids]).fetchone()
    assert row is not None
    return int(row[0])


def lots_with_gtin(dsn: str, g: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT lot_number, product, quantity, unit, origin_codes, packing_facility_code, "
                         "harvest_date, pack_date, expiry_date FROM trace_lots WHERE gtin = %s ORDER BY lot_number",
                         [g]).fetchall()


# -- capture --------------------------------------------------------------------------------------------------

def test_capture_stores_every_event_and_is_idempotent(client: TestClient, sample_db: str, keys: dict[str, str],
                                                      places: dict[str, Any]) -> None:
    doc = chain(places)
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"]))
    assert r.status_code == 201, r.text
    assert r.headers["GS1-EPCIS-Version"] == "2.0.0"
    out = r.json()
    assert out["stored"] == 6 and out["duplicates"] == 0 and out["eventIDs"] == ids_of(doc)
    g, (h, p) = doc["_gtin"], doc["_lots"]
    assert sorted(out["lotsCreated"]) == sorted([gs1.digital_link(g, h), gs1.digital_link(g, p)])
    assert stored(sample_db, ids_of(doc)) == 6
    # the stored forms: URNs became Digital Link URIs, CBV URIs short names; the lots were created coherently
    with psycopg.connect(sample_db) as c:
        rows = c.execute("SELECT event_type, biz_step, disposition, quantity_list, input_quantity_list, parent_id, "
                         "child_epcs, any_ids, lot_id IS NOT NULL, geom IS NOT NULL, captured_by, raw ? 'ex:note' "
                         "FROM trace_events WHERE event_id = ANY(%s) ORDER BY event_time", [ids_of(doc)]).fetchall()
    assert rows[0][:3] == ("ObjectEvent", "commissioning", "active")
    assert rows[0][3] == [{"epcClass": gs1.digital_link(g, h), "quantity": 1200.5, "uom": "KGM"}]
    assert rows[1][1] == "packing" and rows[1][4][0]["epcClass"] == gs1.digital_link(g, h)
    assert rows[2][5] == f"https://id.gs1.org/00/{doc['_sscc']}"
    assert gs1.digital_link(g, p) in rows[2][7] and rows[2][5] in rows[2][7]
    assert rows[5][6] == [f"https://id.gs1.org/01/{g}/21/SN1"] and rows[5][11] is True
    assert all(r_[9] for r_ in rows) and all(r_[8] for r_ in rows[:3])
    lots = {lot[0]: lot for lot in lots_with_gtin(sample_db, g)}
    assert lots[h][1] == "Bưởi da xanh Bến Tre" and float(lots[h][2]) == 1200.5 and lots[h][3] == "KGM"
    assert lots[h][4] == [places["area"]] and str(lots[h][6]) == "2025-06-01" and str(lots[h][8]) == "2025-08-01"
    assert lots[p][4] == [places["area"]] and lots[p][5] == places["fac_a"] and str(lots[p][7]) == "2025-06-02"
    assert str(lots[p][6]) == "2025-06-01" and lots[p][1] == "Bưởi da xanh Bến Tre"   # inherited from the input
    # again: nothing new, 200
    r2 = client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"]))
    assert r2.status_code == 200, r2.text
    assert r2.json()["stored"] == 0 and r2.json()["duplicates"] == 6
    assert stored(sample_db, ids_of(doc)) == 6 and len(lots_with_gtin(sample_db, g)) == 2


def test_events_without_event_id_are_idempotent_too(client: TestClient, sample_db: str, keys: dict[str, str],
                                                    places: dict[str, Any]) -> None:
    doc = chain(places)
    for e in doc["epcisBody"]["eventList"]:
        del e["eventID"]
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"]))
    assert r.status_code == 201 and r.json()["stored"] == 6
    assert all(i.startswith("urn:uuid:") for i in r.json()["eventIDs"])
    r2 = client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"]))
    assert r2.status_code == 200 and r2.json()["duplicates"] == 6
    assert stored(sample_db, r.json()["eventIDs"]) == 6


def test_same_event_id_with_other_content_is_refused(client: TestClient, sample_db: str, keys: dict[str, str],
                                                     places: dict[str, Any]) -> None:
    doc = chain(places)
    assert client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"])).status_code == 201
    changed = copy.deepcopy(doc)
    changed["epcisBody"]["eventList"][3]["disposition"] = "damaged"
    r = client.post("/epcis/capture", content=body(changed), headers=auth(keys["admin"]), params={"lang": "en"})
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    errs = r.json()["errors"]
    assert [(e["index"], e["field"], e["code"]) for e in errs] == [(3, "/epcisBody/eventList/3/eventID", "conflict")]
    assert errs[0]["eventID"] == ids_of(doc)[3] and "different content" in errs[0]["message"]
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT disposition FROM trace_events WHERE event_id = %s", [ids_of(doc)[3]]).fetchone()
    assert row == ("in_transit",)


def _set(doc: dict[str, Any], i: int, key: str, value: Any) -> None:
    if value is _DELETE:
        del doc["epcisBody"]["eventList"][i][key]
    else:
        doc["epcisBody"]["eventList"][i][key] = value


_DELETE = object()


@pytest.mark.parametrize(("index", "key", "value", "field", "words"), [
    (1, "eventTime", _DELETE, "/eventTime", "eventTime is missing"),
    (2, "action", _DELETE, "/action", "action is missing"),
    (0, "eventTimeZoneOffset", _DELETE, "/eventTimeZoneOffset", "eventTimeZoneOffset is missing"),
    (3, "bizStep", "harvesting", "/bizStep", "not a CBV 2.0 business step"),
    (3, "disposition", "https://ref.gs1.org/cbv/Disp-rotten", "/disposition", "not a CBV 2.0 disposition"),
    (1, "eventTime", "2025-06-02T14:00:00", "/eventTime", "with an offset"),
    (1, "eventTime", "02/06/2025 14:00", "/eventTime", "ISO 8601"),
    (2, "eventTimeZoneOffset", "+7", "/eventTimeZoneOffset", "±hh:mm"),
    (3, "epcList", ["https://id.gs1.org/00/106141412345678909"], "/epcList/0", "Invalid SSCC check digit"),
    (3, "epcList", ["https://id.gs1.org/01/08935000000012/21/X"], "/epcList/0", "Invalid GTIN check digit"),
    (3, "epcList", ["https://id.gs1.org/01/09506000134376/10/L1"], "/epcList/0", "belongs in a quantity list"),
    (2, "parentID", "urn:epc:id:sscc:0614141.1234567890X", "/parentID", "17 digits"),
    (3, "bizLocation", {"id": "urn:datso:loc:packing_facility:NO-SUCH-HOUSE"}, "/bizLocation/id",
     "unknown location"),
    (3, "readPoint", {"id": "https://id.gs1.org/414/9506000134352"}, "/readPoint/id", "unknown location"),
    (3, "bizLocation", {"id": "https://id.gs1.org/414/9506000134353"}, "/bizLocation/id", "Invalid GLN check digit"),
    (1, "inputQuantityList", [{"epcClass": "https://id.gs1.org/01/09506000134376/10/NOSUCHLOT", "quantity": 1}],
     "/inputQuantityList/0/epcClass", "unknown lot"),
    (1, "outputQuantityList", _DELETE, "/outputEPCList", "outputs are required"),
    (3, "type", "SensorEvent", "/type", "unknown event type"),
    (3, "colour", "green", "/colour", "not a member of ObjectEvent"),
    (2, "ilmd", {"a": 1}, "/ilmd", "ilmd belongs only"),
])
def test_a_bad_event_refuses_the_whole_document(client: TestClient, sample_db: str, keys: dict[str, str],
                                                places: dict[str, Any], index: int, key: str, value: Any,
                                                field: str, words: str) -> None:
    doc = chain(places)
    _set(doc, index, key, value)
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"]), params={"lang": "en"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    p = r.json()
    assert p["type"].endswith("#ValidationException") and "nothing stored" in p["detail"]
    mine = [e for e in p["errors"] if e["field"] == f"/epcisBody/eventList/{index}{field}"]
    assert mine and any(words in e["message"] for e in mine), p["errors"]
    assert mine[0]["index"] == index and mine[0]["message_vi"]
    if key != "eventID":
        assert mine[0]["eventID"] == ids_of(doc)[index]
    assert stored(sample_db, ids_of(doc)) == 0 and lots_with_gtin(sample_db, doc["_gtin"]) == []


def test_refusal_speaks_vietnamese_by_default(client: TestClient, keys: dict[str, str], places: dict[str, Any]) -> None:
    doc = chain(places)
    _set(doc, 3, "bizStep", "harvesting")
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"]))
    assert r.status_code == 400 and "không lưu gì" in r.json()["detail"]
    assert "không có trong CBV 2.0" in r.json()["errors"][0]["message_vi"]


# -- roles ----------------------------------------------------------------------------------------------------

def test_anonymous_capture_is_401(client: TestClient, sample_db: str, places: dict[str, Any]) -> None:
    doc = chain(places)
    r = client.post("/epcis/capture", content=body(doc), headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM)
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert stored(sample_db, ids_of(doc)) == 0


def test_packer_of_another_house_is_403_naming_the_location(client: TestClient, sample_db: str,
                                                            keys: dict[str, str], places: dict[str, Any]) -> None:
    doc = chain(places)
    doc["epcisBody"]["eventList"] = doc["epcisBody"]["eventList"][3:4]      # the shipping event at house A
    # the pallet (SSCC) needs no prior record; the event is at house A
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["packer_b"]), params={"lang": "en"})
    assert r.status_code == 403, r.text
    p = r.json()
    assert p["type"].endswith("#SecurityException")
    assert {e["code"] for e in p["errors"]} == {"scope"}
    assert places["fac_a"] in p["detail"] and "not one of your packing houses" in p["detail"]
    assert {e["field"] for e in p["errors"]} == {"/epcisBody/eventList/0/readPoint/id",
                                                 "/epcisBody/eventList/0/bizLocation/id"}
    assert stored(sample_db, ids_of(doc)) == 0
    # the packer of house A may; a producer may not write at a packing house
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["producer"]))
    assert r.status_code == 403 and places["fac_a"] in r.json()["detail"]
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["packer_a"]))
    assert r.status_code == 201, r.text
    assert stored(sample_db, ids_of(doc)) == 1


def test_producer_captures_harvest_at_own_area_only(client: TestClient, sample_db: str, keys: dict[str, str],
                                                    places: dict[str, Any]) -> None:
    doc = chain(places)
    doc["epcisBody"]["eventList"] = doc["epcisBody"]["eventList"][:1]
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["packer_a"]))
    assert r.status_code == 403 and places["area"] in r.json()["detail"]
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["producer"]))
    assert r.status_code == 201 and r.json()["stored"] == 1
    # an event with no location at all: a scoped sender cannot place it
    doc2 = chain(places)
    ev = doc2["epcisBody"]["eventList"][0]
    del ev["readPoint"], ev["bizLocation"]
    doc2["epcisBody"]["eventList"] = [ev]
    r = client.post("/epcis/capture", content=body(doc2), headers=auth(keys["producer"]), params={"lang": "en"})
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "/epcisBody/eventList/0/bizLocation"


# -- hostile input --------------------------------------------------------------------------------------------

def test_hostile_json_is_a_4xx(client: TestClient, sample_db: str, keys: dict[str, str],
                               places: dict[str, Any]) -> None:
    h = auth(keys["admin"])
    deep = b"[" * 200_000 + b"]" * 200_000
    r = client.post("/epcis/capture", content=deep, headers=h)
    assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM)
    nested: Any = {"x": 1}
    for _ in range(100):
        nested = {"x": nested}
    doc = chain(places)
    doc["epcisBody"]["eventList"][0]["ex:deep"] = nested          # valid JSON, too deep for the limit
    r = client.post("/epcis/capture", content=body(doc), headers=h, params={"lang": "en"})
    assert r.status_code == 400 and "nested too deep" in r.json()["detail"]
    r = client.post("/epcis/capture", content=b"{\"type\": \"EPCISDocument\", ", headers=h)
    assert r.status_code == 400
    r = client.post("/epcis/capture", content=b"[1, 2, 3]", headers=h)
    assert r.status_code == 400
    r = client.post("/epcis/capture", content=b'{"type": "EPCISDocument", "epcisBody": {"eventList": 5}}', headers=h)
    assert r.status_code == 400 and "eventList" in r.json()["errors"][0]["field"]
    r = client.post("/epcis/capture", content=b"{}", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 415
    many = {"type": "EPCISDocument", "epcisBody": {"eventList": [{}] * 20_001}}
    r = client.post("/epcis/capture", content=json.dumps(many).encode(), headers=h)
    assert r.status_code == 413 and r.json()["type"].endswith("#CaptureLimitExceededException")
    huge = b'{"type": "EPCISDocument", "pad": "' + b"x" * 20_000_001 + b'"}'
    r = client.post("/epcis/capture", content=huge, headers=h)
    assert r.status_code == 413
    odd = {"type": "EPCISDocument", "epcisBody": {"eventList": [1, "x", None, {"type": "ObjectEvent",
                                                                               "epcList": "nope"}]}}
    r = client.post("/epcis/capture", content=json.dumps(odd).encode(), headers=h)
    assert r.status_code == 400 and {e["index"] for e in r.json()["errors"]} == {0, 1, 2, 3}
    assert client.get("/epcis/events", params={"perPage": "1"}).status_code == 200   # still serving


# -- the CLI --------------------------------------------------------------------------------------------------

def test_cli_capture(tmp_path: Path, sample_db: str, settings: Settings, places: dict[str, Any]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.dsn()}
    bad = chain(places)
    _set(bad, 2, "bizStep", "harvesting")
    f = tmp_path / "bad.jsonld"
    f.write_bytes(body(bad))
    cli = subprocess.run([sys.executable, "-m", "cli.main", "trace", "capture", str(f)], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=180, check=False)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "event 2" in cli.stderr and "/epcisBody/eventList/2/bizStep" in cli.stderr
    assert stored(sample_db, ids_of(bad)) == 0
    good = chain(places)
    f.write_bytes(body(good))
    cli = subprocess.run([sys.executable, "-m", "cli.main", "trace", "capture", str(f)], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=180, check=False)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["stored"] == 6
    assert stored(sample_db, ids_of(good)) == 6
    with psycopg.connect(sample_db) as c:
        who = c.execute("SELECT DISTINCT captured_by FROM trace_events WHERE event_id = ANY(%s)",
                        [ids_of(good)]).fetchall()
    assert len(who) == 1 and who[0][0].startswith("cli:")
    # a packer made with `datso users create … --role packer --facility`, capturing `--as` them elsewhere: refused
    name = uid("cli-packer-")
    made = subprocess.run([sys.executable, "-m", "cli.main", "users", "create", name, "--role", "packer",
                           "--facility", places["fac_b"]], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=180, check=False)
    assert made.returncode == 0 and f"packing houses {places['fac_b']}" in made.stdout, made.stdout + made.stderr
    other = chain(places)
    f.write_bytes(body(other))
    cli = subprocess.run([sys.executable, "-m", "cli.main", "trace", "capture", str(f), "--as", name],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False)
    assert cli.returncode == 1 and "refused (403)" in cli.stderr and places["fac_a"] in cli.stderr, cli.stderr
    assert stored(sample_db, ids_of(other)) == 0
    bad_role = subprocess.run([sys.executable, "-m", "cli.main", "users", "create", uid("x-"), "--role", "packer",
                               "--facility", "NO-SUCH-HOUSE"], capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=180, check=False)
    assert bad_role.returncode == 1 and "NO-SUCH-HOUSE" in bad_role.stderr


# -- query ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def captured(client: TestClient, keys: dict[str, str], places: dict[str, Any]) -> dict[str, Any]:
    doc = chain(places, seed=12)
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"]))
    assert r.status_code in (200, 201), r.text
    return doc


def _all(client: TestClient, params: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get("/epcis/events", params={**params, "perPage": "1000"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/ld+json")
    d = r.json()
    assert d["type"] == "EPCISQueryDocument" and CTX in d["@context"]
    assert "Link" not in r.headers
    return list(d["epcisBody"]["queryResults"]["resultsBody"]["eventList"])


def _sql(dsn: str, where: str, *values: Any) -> list[str]:
    with psycopg.connect(dsn) as c:
        return [r[0] for r in c.execute(f"SELECT event_id FROM trace_events WHERE {where} ORDER BY event_time, id",
                                        list(values)).fetchall()]


def test_each_query_parameter_matches_sql(client: TestClient, sample_db: str, captured: dict[str, Any],
                                          places: dict[str, Any]) -> None:
    g, (h, p) = captured["_gtin"], captured["_lots"]
    sscc_dl = f"https://id.gs1.org/00/{captured['_sscc']}"
    sscc_urn = f"urn:epc:id:sscc:{captured['_sscc'][1:8]}.{captured['_sscc'][0]}{captured['_sscc'][8:17]}"
    packed, harvest = gs1.digital_link(g, p), gs1.digital_link(g, h)
    harvest_urn = f"urn:epc:class:lgtin:{g[1:8]}.{g[0]}{g[8:13]}.{h}"
    fac = f"urn:datso:loc:packing_facility:{places['fac_a']}"
    cases: list[tuple[dict[str, str], str, tuple[Any, ...]]] = [
        ({"eventType": "AggregationEvent"}, "event_type = %s", ("AggregationEvent",)),
        ({"eventType": "TransactionEvent,AssociationEvent"}, "event_type IN (%s, %s)",
         ("TransactionEvent", "AssociationEvent")),
        ({"EQ_action": "OBSERVE"}, "action = %s", ("OBSERVE",)),
        ({"EQ_bizStep": "https://ref.gs1.org/cbv/BizStep-loading"}, "biz_step = %s", ("loading",)),
        ({"EQ_bizStep": "shipping", "EQ_bizLocation": fac}, "biz_step = %s AND biz_location = %s",
         ("shipping", fac)),
        ({"EQ_disposition": "in_transit", "GE_eventTime": "2025-06-01T00:00:00+07:00"},
         "disposition = %s AND event_time >= %s", ("in_transit", "2025-06-01T00:00:00+07:00")),
        ({"MATCH_epc": sscc_urn}, "%s = ANY(epc_list) OR %s = ANY(child_epcs)", (sscc_dl, sscc_dl)),
        ({"MATCH_parentID": sscc_dl}, "parent_id = %s", (sscc_dl,)),
        ({"MATCH_anyEPC": sscc_dl}, "%s = ANY(epc_list || child_epcs || input_epcs || output_epcs) OR parent_id = %s",
         (sscc_dl, sscc_dl)),
        ({"MATCH_inputEPCClass": harvest_urn}, "input_quantity_list @> jsonb_build_array(jsonb_build_object("
         "'epcClass', %s::text))", (harvest,)),
        ({"MATCH_outputEPCClass": packed}, "output_quantity_list @> jsonb_build_array(jsonb_build_object("
         "'epcClass', %s::text))", (packed,)),
        ({"MATCH_epcClass": packed}, "quantity_list @> jsonb_build_array(jsonb_build_object('epcClass', %s::text))",
         (packed,)),
        ({"MATCH_anyEPCClass": packed}, "(quantity_list || input_quantity_list || output_quantity_list) @> "
         "jsonb_build_array(jsonb_build_object('epcClass', %s::text))", (packed,)),
        ({"EQ_readPoint": fac, "LT_eventTime": "2025-06-03T08:00:00+07:00"}, "read_point = %s AND event_time < %s",
         (fac, "2025-06-03T08:00:00+07:00")),
        ({"EQ_eventID": ids_of(captured)[1]}, "event_id = %s", (ids_of(captured)[1],)),
        ({"GE_recordTime": "2020-01-01T00:00:00Z", "MATCH_anyEPCClass": harvest},
         "record_time >= %s AND %s = ANY(any_ids)", ("2020-01-01T00:00:00Z", harvest)),
        ({"LT_recordTime": "2020-01-01T00:00:00Z"}, "record_time < %s", ("2020-01-01T00:00:00Z",)),
    ]
    for params, where, values in cases:
        got = [e["eventID"] for e in _all(client, params)]
        want = _sql(sample_db, where, *values)
        assert got == want, (params, got, want)
        if "LT_recordTime" not in params:
            assert got, params
    # the three MATCH_ of the trace chain on this document, by hand
    assert [e["type"] for e in _all(client, {"MATCH_anyEPCClass": packed})] == \
        ["TransformationEvent", "AggregationEvent", "TransactionEvent"]
    # the JSON of an event: stored identifiers, local time, CBV short names, extensions kept
    ev = _all(client, {"EQ_eventID": ids_of(captured)[5]})[0]
    assert ev["eventTime"] == "2025-06-03T15:10:00+07:00" and ev["eventTimeZoneOffset"] == "+07:00"
    assert ev["parentID"] == sscc_dl and ev["childEPCs"] == [f"https://id.gs1.org/01/{g}/21/SN1"]
    assert ev["ex:note"] == "kept as sent" and ev["bizStep"] == "loading" and "recordTime" in ev
    ev = _all(client, {"EQ_eventID": ids_of(captured)[0]})[0]
    assert ev["quantityList"] == [{"epcClass": harvest, "quantity": 1200.5, "uom": "KGM"}]
    assert ev["ilmd"]["cbvmda:itemExpirationDate"] == "2025-08-01"


def test_paging_follows_the_next_token(client: TestClient, sample_db: str, captured: dict[str, Any]) -> None:
    params = {"eventType": "ObjectEvent", "EQ_bizStep": "shipping,commissioning"}
    want = _sql(sample_db, "event_type = 'ObjectEvent' AND biz_step IN ('shipping', 'commissioning')")
    assert len(want) > 25
    got: list[str] = []
    r = client.get("/epcis/events", params={**params, "perPage": "10"})
    pages = 0
    while True:
        assert r.status_code == 200, r.text
        pages += 1
        got += [e["eventID"] for e in r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]
        link = r.headers.get("Link")
        if link is None:
            break
        url = link.split(";")[0].strip("<>")
        qs = parse_qs(urlsplit(url).query)
        assert qs["nextPageToken"] == [r.headers["GS1-Next-Page-Token"]] and qs["perPage"] == ["10"]
        r = client.get(urlsplit(url).path, params={k: v for k, v in qs.items()})
    assert got == want and pages == -(-len(want) // 10)
    # a token belongs to its query
    r = client.get("/epcis/events", params={**params, "perPage": "10"})
    token = r.headers["GS1-Next-Page-Token"]
    r = client.get("/epcis/events", params={"eventType": "AggregationEvent", "nextPageToken": token})
    assert r.status_code == 400 and r.json()["parameter"] == "nextPageToken"


@pytest.mark.parametrize(("params", "param"), [
    ({"EQ_colour": "green"}, "EQ_colour"),
    ({"MATCH_anyEPC": "https://id.gs1.org/00/106141412345678909"}, "MATCH_anyEPC"),
    ({"MATCH_anyEPC": "https://id.gs1.org/01/09506000134376/10/X"}, "MATCH_anyEPC"),
    ({"MATCH_epcClass": "https://id.gs1.org/00/106141412345678908"}, "MATCH_epcClass"),
    ({"EQ_bizStep": "harvesting"}, "EQ_bizStep"),
    ({"eventType": "SensorEvent"}, "eventType"),
    ({"GE_eventTime": "2025-06-01"}, "GE_eventTime"),
    ({"perPage": "0"}, "perPage"),
    ({"perPage": "100000"}, "perPage"),
    ({"nextPageToken": "garbage!"}, "nextPageToken"),
    ({"EQ_bizLocation": "https://id.gs1.org/00/106141412345678908"}, "EQ_bizLocation"),
])
def test_bad_query_parameters_are_400(client: TestClient, params: dict[str, str], param: str) -> None:
    r = client.get("/epcis/events", params=params)
    assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("#QueryParameterException") and r.json()["parameter"] == param


def test_sample_events_still_read_as_epcis(client: TestClient) -> None:
    """Events loaded before revision 0009 (no raw JSON) are answered from their columns."""
    evs = _all(client, {"EQ_bizStep": "commissioning", "LT_recordTime": "2100-01-01T00:00:00Z"})
    assert evs and all(e["type"] == "ObjectEvent" and e["eventTime"].endswith("+07:00") for e in evs)


# -- identifiers -----------------------------------------------------------------------------------------------

def test_identifiers_convert_both_ways() -> None:
    cases = {
        "urn:epc:id:sgtin:0614141.112345.400": "https://id.gs1.org/01/10614141123459/21/400",
        "urn:epc:class:lgtin:4012345.012345.998877": "https://id.gs1.org/01/04012345123456/10/998877",
        "urn:epc:id:sscc:0614141.1234567890": "https://id.gs1.org/00/106141412345678908",
        "urn:epc:id:sgln:0614141.00777.0": "https://id.gs1.org/414/0614141007776",
        "urn:epc:idpat:sgtin:4012345.012345.*": "https://id.gs1.org/01/04012345123456",
    }
    for urn, dl in cases.items():
        assert gs1.parse_uri(urn).uri == dl
        assert gs1.to_urn(dl) == urn
        assert gs1.parse_uri(dl).uri == dl
    i = gs1.parse_uri("https://resolver.example.vn/01/9506000134376/10/AB%2FC?17=261231")
    assert (i.kind, i.gtin, i.lot, str(i.expiry)) == ("lgtin", "09506000134376", "AB/C", "2026-12-31")
    assert i.uri == "https://id.gs1.org/01/09506000134376/10/AB%2FC"
    assert gs1.parse_uri("urn:datso:loc:growing_area:PUC-83-0001").kind == "growing_area"
    for bad in ("https://id.gs1.org/01/09506000134377", "urn:epc:id:sscc:0614141.123456789",
                "urn:datso:loc:parcel:1", "https://id.gs1.org/01/09506000134376/10/" + "X" * 21, "ftp://x"):
        with pytest.raises(gs1.IdentifierError):
            gs1.parse_uri(bad)
    assert gs1.expiry("250200").isoformat() == "2025-02-28"
    with pytest.raises(gs1.IdentifierError):
        gs1.expiry("251301")


def test_a_house_with_a_gln_is_found_by_it_and_stored_under_it(client: TestClient, sample_db: str,
                                                               keys: dict[str, str], places: dict[str, Any]) -> None:
    rng = random.Random()
    gln = _check("893" + "".join(rng.choice("0123456789") for _ in range(9)))
    fac = places["fac_b"]
    with psycopg.connect(sample_db) as c:
        c.execute("UPDATE packing_facilities SET gln = %s WHERE code = %s", [gln, fac])
    try:
        sscc = "https://id.gs1.org/00/" + new_sscc(rng)
        sgln = f"urn:epc:id:sgln:{gln[:7]}.{gln[7:12]}.0"

        def shipping(where: str) -> dict[str, Any]:
            return {"type": "ObjectEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "OBSERVE",
                    "eventTime": "2025-07-01T08:00:00+07:00", "eventTimeZoneOffset": "+07:00",
                    "bizStep": "shipping", "bizLocation": {"id": where}, "epcList": [sscc]}

        doc = {"type": "EPCISDocument", "schemaVersion": "2.0",
               "epcisBody": {"eventList": [shipping(sgln), shipping(f"urn:datso:loc:packing_facility:{fac}")]}}
        r = client.post("/epcis/capture", content=json.dumps(doc).encode(), headers=auth(keys["packer_a"]))
        assert r.status_code == 403 and fac in r.json()["detail"]
        r = client.post("/epcis/capture", content=json.dumps(doc).encode(), headers=auth(keys["packer_b"]))
        assert r.status_code == 201, r.text
        with psycopg.connect(sample_db) as c:
            places_stored = c.execute("SELECT DISTINCT biz_location FROM trace_events WHERE event_id = ANY(%s)",
                                      [ids_of(doc)]).fetchall()
        assert places_stored == [(f"https://id.gs1.org/414/{gln}",)]
        for name in (f"urn:datso:loc:packing_facility:{fac}", sgln, f"https://id.gs1.org/414/{gln}"):
            got = [e["eventID"] for e in _all(client, {"EQ_bizLocation": name, "MATCH_epc": sscc})]
            assert got == ids_of(doc), name
    finally:
        with psycopg.connect(sample_db) as c:
            c.execute("UPDATE packing_facilities SET gln = NULL WHERE code = %s", [fac])


def test_an_officer_captures_in_their_province(client: TestClient, sample_db: str, places: dict[str, Any]) -> None:
    key = create_user(sample_db, uid("epcis-officer-"), "officer", provinces=["86"]).key
    doc = chain(places)
    r = client.post("/epcis/capture", content=body(doc), headers=auth(key))
    assert r.status_code == 201, r.text
    assert stored(sample_db, ids_of(doc)) == 6


def test_an_event_id_twice_in_one_document(client: TestClient, sample_db: str, keys: dict[str, str],
                                           places: dict[str, Any]) -> None:
    doc = chain(places)
    evs = doc["epcisBody"]["eventList"]
    evs.append(copy.deepcopy(evs[3]))                      # the same event again: stored once
    r = client.post("/epcis/capture", content=body(doc), headers=auth(keys["admin"]))
    assert r.status_code == 201 and r.json()["stored"] == 6 and r.json()["duplicates"] == 1
    doc2 = chain(places)
    evs = doc2["epcisBody"]["eventList"]
    evs.append({**copy.deepcopy(evs[3]), "disposition": "damaged"})   # same eventID, other content: refused
    r = client.post("/epcis/capture", content=body(doc2), headers=auth(keys["admin"]))
    assert r.status_code == 409 and r.json()["errors"][0]["index"] == 6
    assert stored(sample_db, ids_of(doc2)) == 0
