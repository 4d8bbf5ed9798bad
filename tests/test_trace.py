"""Issue 12 traceability: the trace chain (one step back / one step forward, transitively), the GS1 Digital Link
resolver, QR labels (decoded by zxing-cpp and followed over HTTP), the public trace page in Chromium on a
360 px phone with every outside request aborted, the status of origin areas on the harvest date, and the
coherence of the sample's chains (checked in SQL)."""
from __future__ import annotations

import datetime as dt
import io
import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from gis import gs1
from layers.ingest import epcis
from sample_data.trace import PRODUCTS
from tests.map_browser_util import ARTIFACTS, PageLog, chromium, screenshot

DAY = dt.date(2026, 6, 1)   # inside the validity of many sample areas
CTX = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"


def _check(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def _uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


def _loc(kind: str, code: str) -> dict[str, str]:
    return {"id": f"urn:datso:loc:{kind}:{code}"}


def _harvest(area: str, lot_class: str, qty: float, when: str) -> dict[str, Any]:
    return {"type": "ObjectEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "ADD", "eventTime": when,
            "eventTimeZoneOffset": "+07:00", "bizStep": "commissioning", "disposition": "active",
            "readPoint": _loc("growing_area", area), "bizLocation": _loc("growing_area", area), "epcList": [],
            "quantityList": [{"epcClass": lot_class, "quantity": qty, "uom": "KGM"}],
            "ilmd": {"datso:product": "Bưởi da xanh (kiểm thử)", "cbvmda:harvestStartDate": when[:10]}}


def _capture(dsn: str, events: list[dict[str, Any]]) -> None:
    doc = {"@context": [CTX], "type": "EPCISDocument", "schemaVersion": "2.0",
           "creationDate": "2026-06-03T09:00:00+07:00", "epcisBody": {"eventList": events}}
    epcis.capture(dsn, orjson.dumps(doc), None)


@pytest.fixture(scope="module")
def story(sample_db: str) -> Iterator[dict[str, Any]]:
    """Captured through EPCIS: two harvest lots from two areas of one crop (active and valid on DAY) →
    a TransformationEvent at an active packing house → one packed lot → an AggregationEvent onto an SSCC →
    shipping the SSCC."""
    with psycopg.connect(sample_db) as c:
        crop, a1, a2 = c.execute(
            "SELECT crop, (array_agg(code ORDER BY code))[1], (array_agg(code ORDER BY code))[2] FROM growing_areas "
            "WHERE status = 'active' AND valid_from <= %s AND %s < valid_to GROUP BY crop HAVING count(*) >= 2 "
            "ORDER BY crop LIMIT 1", (DAY, DAY)).fetchone()
        house = c.execute("SELECT code FROM packing_facilities WHERE status = 'active' ORDER BY code LIMIT 1"
                          ).fetchone()[0]
    rng = random.Random()
    g = _check("0893" + "".join(str(rng.randint(0, 9)) for _ in range(9)))
    sscc = _check("0" + "8934567" + "".join(str(rng.randint(0, 9)) for _ in range(9)))
    h1, h2, p = _uid("H"), _uid("H"), _uid("P")
    u1, u2, up = gs1.lot_uri(g, h1), gs1.lot_uri(g, h2), gs1.lot_uri(g, p)
    fac = _loc("packing_facility", house)
    _capture(sample_db, [
        _harvest(a1, u1, 700.0, "2026-06-01T06:00:00+07:00"),
        _harvest(a2, u2, 500.0, "2026-06-01T07:30:00+07:00"),
        {"type": "TransformationEvent", "eventID": f"urn:uuid:{uuid.uuid4()}",
         "eventTime": "2026-06-02T14:00:00+07:00", "eventTimeZoneOffset": "+07:00", "bizStep": "packing",
         "disposition": "in_progress", "readPoint": fac, "bizLocation": fac,
         "inputQuantityList": [{"epcClass": u1, "quantity": 700.0, "uom": "KGM"},
                               {"epcClass": u2, "quantity": 500.0, "uom": "KGM"}],
         "outputQuantityList": [{"epcClass": up, "quantity": 1140.0, "uom": "KGM"}],
         "ilmd": {"cbvmda:itemExpirationDate": "2026-08-01"}},
        {"type": "AggregationEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "ADD",
         "eventTime": "2026-06-02T16:00:00+07:00", "eventTimeZoneOffset": "+07:00", "bizStep": "packing",
         "readPoint": fac, "bizLocation": fac, "parentID": f"https://id.gs1.org/00/{sscc}", "childEPCs": [],
         "childQuantityList": [{"epcClass": up, "quantity": 1140.0, "uom": "KGM"}]},
        {"type": "ObjectEvent", "eventID": f"urn:uuid:{uuid.uuid4()}", "action": "OBSERVE",
         "eventTime": "2026-06-03T08:00:00+07:00", "eventTimeZoneOffset": "+07:00", "bizStep": "shipping",
         "disposition": "in_transit", "readPoint": fac, "bizLocation": fac,
         "epcList": [f"https://id.gs1.org/00/{sscc}"]},
    ])
    made: dict[str, Any] = {"gtin": g, "h1": h1, "h2": h2, "p": p, "u1": u1, "u2": u2, "up": up, "a1": a1,
                            "a2": a2, "house": house, "crop": crop, "sscc": f"https://id.gs1.org/00/{sscc}",
                            "areas": []}
    yield made
    # leave the shared sample as it was (other modules count and label its rows)
    with psycopg.connect(sample_db) as c:
        c.execute("SET LOCAL datso.audit = 'off'")
        c.execute("DELETE FROM trace_events WHERE any_ids && %s::text[] OR lot_id IN "
                  "(SELECT id FROM trace_lots WHERE gtin = %s)", ([made["sscc"]], g))
        c.execute("DELETE FROM trace_lots WHERE gtin = %s", (g,))
        c.execute("DELETE FROM growing_areas WHERE code = ANY(%s)", (made["areas"],))


def _ids(nodes: list[dict[str, Any]]) -> dict[str, int]:
    return {n["id"]: n["depth"] for n in nodes}


# -- the chain -------------------------------------------------------------------------------------------------

def test_chain_across_transformation_both_directions(client: TestClient, story: dict[str, Any]) -> None:
    g = story["gtin"]
    packed = client.get(f"/trace/{story['p']}", params={"gtin": g})
    assert packed.status_code == 200, packed.text
    t = packed.json()
    assert _ids(t["back"]) == {story["u1"]: 1, story["u2"]: 1}           # one step back: both harvest lots
    assert _ids(t["forward"]) == {story["sscc"]: 1}                       # one step forward: the pallet
    assert {o["code"]: (o["harvestDate"], o["validAtHarvest"], o["statusAtHarvest"]) for o in t["origins"]} == {
        story["a1"]: ("2026-06-01", True, "active"), story["a2"]: ("2026-06-01", True, "active")}
    assert not t["warning"] and [h["code"] for h in t["packingHouses"]] == [story["house"]]
    steps = [(e["type"], e["bizStep"], e["eventTime"]) for e in t["events"]]
    assert steps == [("ObjectEvent", "commissioning", "2026-06-01T06:00:00+07:00"),
                     ("ObjectEvent", "commissioning", "2026-06-01T07:30:00+07:00"),
                     ("TransformationEvent", "packing", "2026-06-02T14:00:00+07:00"),
                     ("AggregationEvent", "packing", "2026-06-02T16:00:00+07:00"),
                     ("ObjectEvent", "shipping", "2026-06-03T08:00:00+07:00")]
    assert t["lot"]["digitalLink"].endswith(f"/01/{g}/10/{story['p']}")

    one = client.get(f"/trace/{story['h1']}", params={"gtin": g}).json()
    assert one["back"] == [] and _ids(one["forward"]) == {story["up"]: 1}   # forward one step: the packed lot
    assert [o["code"] for o in one["origins"]] == [story["a1"]]
    whole = client.get(f"/trace/{story['h1']}", params={"gtin": g, "all": "true"}).json()
    assert _ids(whole["forward"]) == {story["up"]: 1, story["sscc"]: 2}    # transitively: lot, then pallet
    assert story["u2"] not in _ids(whole["back"]) | _ids(whole["forward"])  # a sibling is not one of its steps
    assert client.get(f"/trace/{story['h1']}", params={"gtin": g, "depth": 2}).json()["forward"] == whole["forward"]
    assert whole["forward"][0]["lot"]["lot"] == story["p"]


def test_aggregation_chain_to_sscc_matches_sql(client: TestClient, conn: psycopg.Connection) -> None:
    gtin, lot = conn.execute("SELECT gtin, lot_number FROM trace_lots WHERE pack_date IS NOT NULL AND synthetic "
                             "ORDER BY id LIMIT 1").fetchone()
    uri = gs1.lot_uri(gtin, lot)
    parents = {r[0] for r in conn.execute(
        "SELECT parent_id FROM trace_events WHERE event_type = 'AggregationEvent' AND quantity_list @> %s::jsonb",
        (orjson.dumps([{"epcClass": uri}]).decode(),))}
    inputs = {r[0] for r in conn.execute(
        "SELECT q->>'epcClass' FROM trace_events e, jsonb_array_elements(e.input_quantity_list) q "
        "WHERE e.event_type = 'TransformationEvent' AND e.output_quantity_list @> %s::jsonb",
        (orjson.dumps([{"epcClass": uri}]).decode(),))}
    t = client.get(f"/trace/{lot}", params={"gtin": gtin, "all": "true"}).json()
    assert len(parents) == 1 and _ids(t["forward"]) == {p: 1 for p in parents}
    assert t["forward"][0]["kind"] == "sscc" and gs1.sscc(t["forward"][0]["sscc"])
    assert set(_ids(t["back"])) == inputs and inputs
    shipped = [e for e in t["events"] if e["bizStep"] == "shipping"]
    assert shipped and shipped[0]["epcList"] == list(parents)
    times = [e["eventTime"] for e in t["events"]]
    assert times == sorted(times) and all(x.endswith("+07:00") for x in times)


def test_depth_bounds_and_identifier_errors(client: TestClient, story: dict[str, Any]) -> None:
    g, lot = story["gtin"], story["p"]
    r = client.get(f"/trace/{lot}", params={"gtin": g, "depth": 20})      # above DATSO_TRACE_MAX_DEPTH (8)
    assert r.status_code == 400 and r.json()["parameter"] == "depth"
    r = client.get(f"/trace/{lot}", params={"gtin": g, "depth": 99})      # above the schema's bound
    assert r.status_code == 400 and "depth" in r.text
    bad = g[:-1] + str((int(g[-1]) + 1) % 10)
    for url in (f"/01/{bad}/10/{lot}", f"/trace/{lot}?gtin={bad}", f"/qr/01/{bad}/10/{lot}.png", f"/01/{bad}"):
        r = client.get(url, headers={"Accept": "application/json", "Accept-Language": "en"})
        assert r.status_code == 400, url
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "check digit" in r.json()["detail"] and r.json()["parameter"] == "gtin"
    r = client.get(f"/01/{g}/10/{lot}x{'y' * 20}", headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["loc"] == ["path", "lot"]  # longer than AI 10's 20
    r = client.get(f"/01/{g}/10/L%23X", headers={"Accept": "application/json"})       # '#' is not in AI 10's set
    assert r.status_code == 400 and r.json()["parameter"] == "lot"
    for url in (f"/01/{g}/10/NO-SUCH-LOT", "/trace/NO-SUCH-LOT", f"/qr/01/{g}/10/NO-SUCH-LOT.svg"):
        r = client.get(url, headers={"Accept": "application/json"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), url
    assert client.get(f"/01/{_check('0893456700000')}", headers={"Accept": "application/json"}).status_code == 404


def test_resolver_negotiates_linkset_json_and_html(client: TestClient, story: dict[str, Any]) -> None:
    g, lot = story["gtin"], story["p"]
    ls = client.get(f"/01/{g}/10/{lot}", headers={"Accept": "application/linkset+json"})
    assert ls.status_code == 200 and ls.headers["content-type"].startswith("application/linkset+json")
    entry = ls.json()["linkset"][0]
    assert entry["anchor"] == f"http://testserver/01/{g}/10/{lot}"
    assert entry["https://gs1.org/voc/defaultLink"][0]["type"] == "text/html"
    trace_link = entry["https://gs1.org/voc/traceability"][0]["href"]
    assert client.get(trace_link.replace("http://testserver", "")).json()["lot"]["lot"] == lot
    assert client.get(f"/01/{g}/10/{lot}", params={"linkType": "all"}).json() == ls.json()
    js = client.get(f"/01/{g}/10/{lot}", headers={"Accept": "application/json"})
    assert js.json()["lot"]["lot"] == lot and 'rel="linkset"' in js.headers["link"]
    html = client.get(f"/01/{g}/10/{lot}", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.headers["content-type"].startswith("text/html") and lot in html.text
    assert "<svg" in html.text and "<script" not in html.text
    prod = client.get(f"/01/{g}", headers={"Accept": "application/json"}).json()
    assert {x["lot"] for x in prod["lots"]} >= {lot, story["h1"], story["h2"]}


# -- status on the harvest date --------------------------------------------------------------------------------

def test_status_on_harvest_date_comes_from_history(client: TestClient, sample_db: str,
                                                   story: dict[str, Any]) -> None:
    """An area active when the first lot was harvested and revoked before the second: the first lot's code was
    valid (and its page has no warning though the area is revoked today), the second shows the warning."""
    code = _uid("VN-86-T-")
    story["areas"].append(code)
    with psycopg.connect(sample_db) as c:
        c.execute("SET LOCAL datso.audit = 'off'")
        aid = c.execute(
            "INSERT INTO growing_areas (code, crop, area_m2, owner, cooperative, commune_code, standard, status, "
            "status_reason, valid_from, valid_to, synthetic, geom) SELECT %s, crop, area_m2, owner, cooperative, "
            "commune_code, 'GlobalGAP', 'revoked', 'Vi phạm (kiểm thử)', '2025-01-01', '2028-01-01', true, "
            "ST_Translate(geom, 0.002, 0.002) FROM growing_areas WHERE code = %s RETURNING id",
            (code, story["a1"])).fetchone()[0]
        state = {"code": code, "status": "active", "status_reason": None, "valid_from": "2025-01-01",
                 "valid_to": "2028-01-01"}
        c.execute("INSERT INTO history (layer, feature_id, action, actor, at, after) VALUES "
                  "('growing_areas', %s, 'insert', 'test', '2025-01-01T08:00:00+07:00', %s)", (aid, orjson.dumps(state).decode()))
        c.execute("INSERT INTO history (layer, feature_id, action, actor, reason, at, before, after) VALUES "
                  "('growing_areas', %s, 'update', 'test', 'Vi phạm (kiểm thử)', '2026-03-01T10:00:00+07:00', %s, %s)",
                  (aid, orjson.dumps(state).decode(),
                   orjson.dumps({**state, "status": "revoked", "status_reason": "Vi phạm (kiểm thử)"}).decode()))
    g = story["gtin"]
    ok_lot, bad_lot, early = _uid("H"), _uid("H"), _uid("H")
    _capture(sample_db, [_harvest(code, gs1.lot_uri(g, ok_lot), 100.0, "2026-02-27T06:00:00+07:00"),
                         _harvest(code, gs1.lot_uri(g, bad_lot), 100.0, "2026-03-02T06:00:00+07:00"),
                         _harvest(code, gs1.lot_uri(g, early), 100.0, "2024-12-30T06:00:00+07:00")])
    ok = client.get(f"/trace/{ok_lot}", params={"gtin": g}).json()["origins"][0]
    assert (ok["statusAtHarvest"], ok["validAtHarvest"], ok["warning"], ok["currentStatus"]) == \
        ("active", True, False, "revoked")
    assert ok["certifications"] == ["GlobalG.A.P."]
    bad = client.get(f"/trace/{bad_lot}", params={"gtin": g}).json()
    o = bad["origins"][0]
    assert (o["statusAtHarvest"], o["validAtHarvest"], o["warning"], bad["warning"]) == ("revoked", False, True, True)
    assert o["statusReasonAtHarvest"] == "Vi phạm (kiểm thử)"
    first = client.get(f"/trace/{early}", params={"gtin": g}).json()["origins"][0]
    assert (first["statusAtHarvest"], first["validAtHarvest"]) == ("unregistered", False)
    page_ok = client.get(f"/01/{g}/10/{ok_lot}").text
    page_bad = client.get(f"/01/{g}/10/{bad_lot}").text
    assert 'role="alert"' not in page_ok and "Bị thu hồi" in page_ok        # "today: revoked", no warning
    assert 'role="alert"' in page_bad and "không còn hiệu lực vào ngày thu hoạch" in page_bad
    assert "was not valid on the harvest date" in client.get(f"/01/{g}/10/{bad_lot}?lang=en").text


# -- QR labels ---------------------------------------------------------------------------------------------------

def test_qr_decodes_to_a_url_that_resolves_to_the_lot_page(live_server: Any, conn: psycopg.Connection) -> None:
    gtin, lot = conn.execute("SELECT gtin, lot_number FROM trace_lots WHERE pack_date IS NOT NULL ORDER BY id "
                             "LIMIT 1").fetchone()
    with httpx.Client(base_url=live_server.url, timeout=20) as http:
        for path in (f"/qr/01/{gtin}/10/{lot}.png", f"/01/{gtin}/10/{lot}/qr.png"):
            png = http.get(path)
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
            assert len(found) == 1 and found[0].format == zxingcpp.BarcodeFormat.QRCode
            url = found[0].text
            assert url == f"{live_server.url}/01/{gtin}/10/{lot}"
        svg = http.get(f"/qr/01/{gtin}/10/{lot}.svg")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.lstrip().startswith("<?xml") and "<svg" in svg.text
        page = http.get(url, headers={"Accept": "text/html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f"<b>{lot}</b>" in page.text and gtin in page.text
        assert len(page.content) < 30_000                                    # a small page for a 3G phone


# -- the page in a phone-sized Chromium ------------------------------------------------------------------------

def test_trace_page_on_a_360px_phone_offline(live_server: Any, conn: psycopg.Connection) -> None:
    good = conn.execute("SELECT l.gtin, l.lot_number FROM trace_lots l WHERE l.pack_date IS NOT NULL AND "
                        "cardinality(l.origin_codes) >= 2 ORDER BY l.id LIMIT 1").fetchone()
    warned = conn.execute(
        "SELECT l.gtin, l.lot_number FROM trace_lots l JOIN growing_areas g ON g.code = ANY(l.origin_codes) "
        "JOIN history h ON h.layer = 'growing_areas' AND h.feature_id = g.id AND h.actor = 'sample' "
        "WHERE l.pack_date IS NOT NULL").fetchone()
    assert good and warned
    shots = []
    with chromium() as browser:
        ctx = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="en-US")
        outside: list[str] = []

        def guard(route: Any) -> None:
            if route.request.url.startswith(live_server.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        ctx.route("**/*", guard)
        page = ctx.new_page()
        log = PageLog(page)
        for (gtin, lot), name in ((good, "trace_page_vi.png"), (warned, "trace_page_warning_vi.png")):
            page.goto(f"{live_server.url}/01/{gtin}/10/{lot}", wait_until="load")
            assert page.locator("html").get_attribute("lang") == "vi"       # Vietnamese by default
            assert page.locator("h1").inner_text()
            assert page.locator("svg.map polygon").count() >= 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 360   # nothing wider than the phone
            assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # the stylesheet loaded
            assert page.evaluate("document.querySelector('footer img').naturalWidth") > 0  # the QR code loaded
            shots.append(screenshot(page, name))
            page.screenshot(path=str(ARTIFACTS / name.replace(".png", "_full.png")), full_page=True)
        assert page.locator("[role=alert]").is_visible()                     # the warning lot
        page.click("a.lang")
        assert page.locator("html").get_attribute("lang") == "en"
        assert "was not valid on the harvest date" in page.locator("[role=alert]").inner_text()
        shots.append(screenshot(page, "trace_page_warning_en.png"))
        page.goto(f"{live_server.url}/01/{good[0]}/10/{good[1]}?lang=en", wait_until="load")
        assert page.locator("[role=alert]").count() == 0 and "Journey" in page.content()
        shots.append(screenshot(page, "trace_page_en.png"))
        page.screenshot(path=str(ARTIFACTS / "trace_page_en_full.png"), full_page=True)
        assert outside == [] and log.external(live_server.url) == [] and log.console_errors() == []
        ctx.close()
    assert all(p.stat().st_size > 10_000 for p in shots)


# -- the sample tells a true story -------------------------------------------------------------------------------

def test_sample_chains_are_coherent(conn: psycopg.Connection) -> None:
    crop_of = orjson.dumps({v: k for k, v in PRODUCTS.items()}).decode()
    wrong_crop = conn.execute(
        "SELECT count(*) FROM trace_lots l, unnest(l.origin_codes) c JOIN growing_areas g ON g.code = c "
        "WHERE l.synthetic AND g.crop IS DISTINCT FROM (%s::jsonb ->> l.product)", (crop_of,)).fetchone()[0]
    assert wrong_crop == 0
    missing = conn.execute("SELECT count(*) FROM trace_lots l, unnest(l.origin_codes) c WHERE l.synthetic AND "
                           "NOT EXISTS (SELECT 1 FROM growing_areas g WHERE g.code = c)").fetchone()[0]
    assert missing == 0
    # harvested while the code was active and valid; the one deliberate exception has its change in history
    outside = conn.execute(
        "SELECT l.lot_number, bool_or(h.id IS NOT NULL) FROM trace_lots l CROSS JOIN unnest(l.origin_codes) c "
        "JOIN growing_areas g ON g.code = c LEFT JOIN history h ON h.layer = 'growing_areas' AND h.feature_id = g.id "
        "AND h.actor = 'sample' AND h.at < l.harvest_date "
        "WHERE l.synthetic AND NOT (g.status = 'active' AND g.valid_from <= l.harvest_date "
        "AND l.harvest_date < g.valid_to) GROUP BY l.lot_number").fetchall()
    assert outside and all(explained for _lot, explained in outside)
    assert len(outside) == 2                                           # its harvest lot and its packed lot
    # commissioning at harvest: ObjectEvent ADD at the origin area with the lot in quantityList and ILMD
    bad_harvest = conn.execute(
        "SELECT count(*) FROM trace_lots l WHERE l.synthetic AND l.pack_date IS NULL AND NOT EXISTS ("
        " SELECT 1 FROM trace_events e WHERE e.event_type = 'ObjectEvent' AND e.action = 'ADD' "
        " AND e.biz_step = 'commissioning' AND e.biz_location = 'urn:datso:loc:growing_area:' || l.origin_codes[1] "
        " AND e.quantity_list @> jsonb_build_array(jsonb_build_object('epcClass', "
        "   'https://id.gs1.org/01/' || l.gtin || '/10/' || l.lot_number)) "
        " AND e.ilmd ? 'cbvmda:harvestStartDate' AND (e.event_time AT TIME ZONE 'Asia/Ho_Chi_Minh')::date = "
        "   l.harvest_date)").fetchone()[0]
    assert bad_harvest == 0
    # packing: distinct inputs and outputs; every packed lot is the output of exactly one transformation
    same = conn.execute(
        "SELECT count(*) FROM trace_events e WHERE e.synthetic AND e.event_type = 'TransformationEvent' AND EXISTS "
        "(SELECT 1 FROM jsonb_array_elements(e.input_quantity_list) i, jsonb_array_elements(e.output_quantity_list) o "
        " WHERE i->>'epcClass' = o->>'epcClass')").fetchone()[0]
    assert same == 0
    unpacked = conn.execute(
        "SELECT count(*) FROM trace_lots l WHERE l.synthetic AND l.pack_date IS NOT NULL AND 1 <> (SELECT count(*) "
        "FROM trace_events e WHERE e.event_type = 'TransformationEvent' AND e.output_quantity_list @> "
        "jsonb_build_array(jsonb_build_object('epcClass', 'https://id.gs1.org/01/' || l.gtin || '/10/' || "
        "l.lot_number)))").fetchone()[0]
    assert unpacked == 0
    # lot classes never sit in epcList (instances only: the shipped SSCCs); every pallet is a valid SSCC
    in_epclist = conn.execute("SELECT count(*) FROM trace_events e, unnest(e.epc_list) x WHERE e.synthetic AND "
                              "x LIKE '%%/10/%%'").fetchone()[0]
    assert in_epclist == 0
    pallets = [r[0] for r in conn.execute("SELECT parent_id FROM trace_events WHERE synthetic AND "
                                          "event_type = 'AggregationEvent'")]
    assert pallets and all(gs1.parse_uri(p).kind == "sscc" for p in pallets)
    shipped = conn.execute("SELECT count(*) FROM trace_events WHERE synthetic AND biz_step = 'shipping' AND NOT "
                           "(epc_list <@ %s::text[])", (pallets,)).fetchone()[0]
    assert shipped == 0
    # packed at an active house, in time order: harvest <= pack <= pallet <= ship
    order = conn.execute(
        "SELECT count(*) FROM trace_lots l JOIN packing_facilities f ON f.code = l.packing_facility_code "
        "WHERE l.synthetic AND (f.status <> 'active' OR l.pack_date < l.harvest_date)").fetchone()[0]
    assert order == 0


def test_public_lookups_are_rate_limited(settings: Any, sample_db: str, story: dict[str, Any]) -> None:
    from api.app import create_app
    from layers.settings import ApiSettings

    g, lot = story["gtin"], story["p"]
    app = create_app(settings=settings, api_settings=ApiSettings(rate_limit_trace="3/minute"), dsn=sample_db)
    with TestClient(app) as c:
        urls = [f"/trace/{lot}?gtin={g}", f"/01/{g}/10/{lot}", f"/qr/01/{g}/10/{lot}.svg"]
        assert [c.get(u).status_code for u in urls] == [200, 200, 200]
        r = c.get(f"/01/{g}/10/{lot}", headers={"Accept": "application/json"})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["content-type"].startswith("application/problem+json")
        assert c.get("/collections").status_code == 200                 # other paths are not counted
