"""History of every layer over HTTP against the real PostGIS (issue 11): after a sequence of edits (create, PATCH
of fields, a boundary change, a suspension with its reason, delete) `GET /collections/{id}/items/{fid}/history`
answers who, when, which fields changed (before -> after, only those), the reason and the previous geometry;
public view without actor nor non-public fields; HTML page with the old and new boundary; 404 for an unknown id;
the history of a deleted feature still served; paging."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.accounts.auth import create_key
from layers.catalog.registry import LAYERS

PREFIXES = ["VN-86-HIST-%", "VN-86-HPG-%"]
CREATED: list[int] = []          # growing areas made here (drafts have no code; a granted code is the pattern's)
DECISION = {"decision_no": "45/QĐ-CCTTBVTV", "decision_date": dt.date.today().isoformat()}
OFFICER = f"hist-officer-{uuid.uuid4().hex[:8]}"

@pytest.fixture(scope="module", autouse=True)
def _leave_the_sample_as_found(sample_db: str) -> Iterator[None]:
    """The features these tests create are removed afterwards (other modules count the synthetic sample)."""
    yield
    with psycopg.connect(sample_db) as c:
        c.execute("DELETE FROM growing_areas WHERE NOT synthetic AND (code LIKE ANY(%s) OR id = ANY(%s))",
                  [PREFIXES, CREATED])
        for table in ("seasons", "inspections", "pest_observations"):
            c.execute(f"DELETE FROM {table} WHERE NOT synthetic")  # noqa: S608 - fixed names


@pytest.fixture(scope="module")
def officer(sample_db: str) -> str:
    return create_key(sample_db, OFFICER, "officer")


def h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def square(x: float, y: float, d: float = 0.003) -> dict[str, Any]:
    return {"type": "MultiPolygon", "coordinates": [[[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]]}


def free_spot(dsn: str) -> tuple[str, float, float]:
    """(commune, lon, lat) of a place of the sample province with ~1 km free of growing areas around it: the
    squares drawn here (and moved by 0.002 degrees) are inside the commune and overlap nothing."""
    with psycopg.connect(dsn) as c:
        row = c.execute(
            "SELECT a.code, round(ST_X(p)::numeric, 3)::float8, round(ST_Y(p)::numeric, 3)::float8 "
            "FROM admin_units a, LATERAL (SELECT (ST_Dump(ST_GeneratePoints(a.geom, 30, %s))).geom AS p) pts "
            "WHERE a.level = 'commune' AND a.scheme = '2025' AND a.parent_code = '86' "
            "AND ST_Covers(a.geom, ST_Expand(p, 0.008)) "
            "AND NOT EXISTS (SELECT 1 FROM growing_areas g WHERE ST_DWithin(g.geom, p, 0.012)) LIMIT 1",
            [uuid.uuid4().int % 10**6]).fetchone()
    assert row is not None
    return str(row[0]), float(row[1]), float(row[2])


def _area(client: TestClient, officer: str, sample_db: str) -> tuple[int, str, float, float]:
    """A new draft (no code: it is granted at activation) at a free place: (id, ETag, lon, lat)."""
    commune, x, y = free_spot(sample_db)
    body = {"type": "Feature", "geometry": square(x, y),
            "properties": {"crop": "durian", "owner": "HTX Lịch Sử", "commune_code": commune, "status": "draft"}}
    r = client.post("/collections/growing_areas/items", json=body, headers=h(officer))
    assert r.status_code == 201, r.text
    CREATED.append(int(r.headers["Location"].rsplit("/", 1)[1]))
    return CREATED[-1], r.headers["ETag"], x, y


def _patch(client: TestClient, officer: str, fid: int, tag: str, body: dict[str, Any]) -> str:
    r = client.patch(f"/collections/growing_areas/items/{fid}", json=body,
                     headers=h(officer, **{"If-Match": tag, "Content-Type": "application/merge-patch+json"}))
    assert r.status_code == 204, r.text
    return r.headers["ETag"]


def test_history_after_a_sequence_of_edits(client: TestClient, officer: str, sample_db: str) -> None:
    fid, tag, x, y = _area(client, officer, sample_db)
    tag = _patch(client, officer, fid, tag, {"properties": {"owner": "HTX Mới", "variety": "Ri6"}})
    tag = _patch(client, officer, fid, tag, {"geometry": square(x + 0.002, y + 0.002)})
    tag = _patch(client, officer, fid, tag, {"properties": {"status": "active", **DECISION}})
    tag = _patch(client, officer, fid, tag, {"properties": {"status": "suspended",
                                                             "status_reason": "Phát hiện ruồi đục quả"}})
    full = client.get(f"/collections/growing_areas/items/{fid}/history", headers=h(officer)).json()
    assert full["view"] == "full" and full["numberMatched"] == 5 and not full["deleted"]
    suspend, activate, moved, edited, created = full["entries"]
    assert created["action"] == "insert" and created["actor"] == OFFICER     # the user's name
    assert {c["field"]: (c["before"], c["after"]) for c in edited["changes"]} == {
        "owner": ("HTX Lịch Sử", "HTX Mới"), "variety": (None, "Ri6")}     # only the changed fields
    assert edited["geometryChanged"] is False and "geometryBefore" not in edited
    # a new boundary: only the area computed from it may change with it
    assert moved["geometryChanged"] is True and {c["field"] for c in moved["changes"]} <= {"area_m2"}
    assert moved["geometryBefore"]["coordinates"][0][0][0] == [x, y]
    assert moved["geometryAfter"]["coordinates"][0][0][0] == pytest.approx([x + 0.002, y + 0.002], abs=1e-9)
    granted = {c["field"]: (c["before"], c["after"]) for c in activate["changes"]}
    assert granted["status"] == ("draft", "active")            # activation grants the code, with the decision
    assert granted["code"][0] is None and granted["code"][1].startswith("VN-86-")
    assert granted["decision_no"] == (None, DECISION["decision_no"])
    assert granted["decision_date"] == (None, DECISION["decision_date"])
    assert {c["field"]: c["after"] for c in suspend["changes"]} == {"status": "suspended",
                                                                   "status_reason": "Phát hiện ruồi đục quả"}
    assert suspend["reason"] == "Phát hiện ruồi đục quả"
    assert "recordedReason" not in suspend                    # a person's reason is served as written
    assert suspend["transition"] == {"field": "status", "from": "active", "to": "suspended", "fromLabel": "Còn hiệu lực",
                                     "toLabel": "Tạm đình chỉ"}
    assert full["entries"][0]["at"] >= full["entries"][-1]["at"]
    # the public view: public fields, the reason, no actor
    public = client.get(f"/collections/growing_areas/items/{fid}/history").json()
    assert public["view"] == "public" and public["numberMatched"] == 5
    assert all("actor" not in e for e in public["entries"])
    assert public["entries"][0]["reason"] == "Phát hiện ruồi đục quả"
    # paging
    p1 = client.get(f"/collections/growing_areas/items/{fid}/history?limit=2").json()
    assert p1["numberReturned"] == 2 and any(link["rel"] == "next" for link in p1["links"])
    p3 = client.get(f"/collections/growing_areas/items/{fid}/history?limit=2&offset=4").json()
    assert p3["numberReturned"] == 1 and p3["entries"][0]["action"] == "insert"
    # HTML: Vietnamese first, formatted values, the maps' data (old and new boundary)
    page = client.get(f"/collections/growing_areas/items/{fid}/history?f=html")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    text = page.text
    assert "Lịch sử thay đổi" in text and "Tạm đình chỉ" in text and "Nháp" in text
    assert "Phát hiện ruồi đục quả" in text and "Ranh giới đã thay đổi" in text and str(x) in text
    assert "history.js" in text and OFFICER not in text                     # the public page names nobody
    en = client.get(f"/collections/growing_areas/items/{fid}/history?f=html&lang=en", headers=h(officer)).text
    assert "Change history" in en and "The boundary changed" in en and OFFICER in en
    # the item links to its history
    links = client.get(f"/collections/growing_areas/items/{fid}").json()["links"]
    assert any(link["rel"] == "version-history" for link in links)


def test_transition_and_expiry_reasons_read_with_labels(client: TestClient, officer: str, sample_db: str) -> None:
    """The reasons the service writes itself (`draft → active` for a transition without a reason, `valid_to <
    today` for an expiry) are served in words with the lifecycle's labels, Vietnamese first and English with
    lang=en; the recorded text and the raw state codes keep their own fields; the HTML page shows the labels."""
    from layers.ingest.registration import expire_all

    fid, tag, _, _ = _area(client, officer, sample_db)
    tag = _patch(client, officer, fid, tag, {"properties": {"status": "active", **DECISION}})
    url = f"/collections/growing_areas/items/{fid}/history"
    vi = client.get(url, headers=h(officer)).json()["entries"][0]
    assert vi["reason"] == "Nháp → Còn hiệu lực" and vi["recordedReason"] == "draft → active"
    assert vi["transition"] == {"field": "status", "from": "draft", "to": "active", "fromLabel": "Nháp",
                                "toLabel": "Còn hiệu lực"}
    en = client.get(url + "?lang=en").json()["entries"][0]           # the public view too
    assert en["reason"] == "Draft → Active" and en["recordedReason"] == "draft → active"
    assert (en["transition"]["from"], en["transition"]["to"], en["transition"]["toLabel"]) == ("draft", "active",
                                                                                               "Active")
    # an expiry: the validity end moved to the past behind the API's back, then the expiry job
    with psycopg.connect(sample_db) as c:
        c.execute("UPDATE growing_areas SET valid_from = current_date - 30, valid_to = current_date - 1 "
                  "WHERE id = %s", [fid])
    assert expire_all(sample_db)["growing_areas"] >= 1
    vi = client.get(url, headers=h(officer)).json()["entries"][0]
    assert vi["actor"] == "system:expiry" and vi["recordedReason"] == "valid_to < today"
    assert vi["reason"] == "Hết hiệu lực tự động: đã qua ngày “Hiệu lực đến”"
    assert (vi["transition"]["from"], vi["transition"]["to"]) == ("active", "expired")
    en = client.get(url, params={"lang": "en"}, headers=h(officer)).json()["entries"][0]
    assert en["reason"] == "Expired automatically: the “Valid to” date has passed"
    assert en["transition"]["fromLabel"] == "Active" and en["transition"]["toLabel"] == "Expired"
    # the HTML page: labels, never the raw codes of an automatic reason
    page = client.get(url + "?f=html").text
    assert "Nháp → Còn hiệu lực" in page and "Còn hiệu lực → Hết hiệu lực" in page
    assert "Hết hiệu lực tự động: đã qua ngày “Hiệu lực đến”" in page
    assert "draft → active" not in page and "valid_to &lt; today" not in page and "valid_to < today" not in page
    page = client.get(url + "?f=html&lang=en").text
    assert "Draft → Active" in page and "Active → Expired" in page and "the “Valid to” date has passed" in page
    assert "draft → active" not in page and "valid_to &lt; today" not in page


def test_non_public_fields_only_for_officers(client: TestClient, officer: str, sample_db: str) -> None:
    fid = 1
    r = client.get("/collections/inspections/items/1")
    tag = client.get(f"/collections/inspections/items/{fid}", headers=h(officer)).headers["ETag"]
    assert r.status_code == 200 and "inspector" not in r.json()["properties"]
    r = client.patch(f"/collections/inspections/items/{fid}", json={"properties": {"inspector": "Võ Thị Hạnh",
                                                                                  "findings": "Đã khắc phục"}},
                     headers=h(officer, **{"If-Match": tag, "Content-Type": "application/merge-patch+json"}))
    assert r.status_code == 204, r.text
    full = client.get(f"/collections/inspections/items/{fid}/history", headers=h(officer)).json()
    fields = {c["field"] for c in full["entries"][0]["changes"]}
    assert fields == {"inspector", "findings"}
    public = client.get(f"/collections/inspections/items/{fid}/history").json()
    assert {c["field"] for c in public["entries"][0]["changes"]} == {"findings"}
    assert "Võ Thị Hạnh" not in str(public)


def test_unknown_and_deleted_features(client: TestClient, officer: str, sample_db: str) -> None:
    for layer in LAYERS:
        r = client.get(f"/collections/{layer}/items/987654321/history")
        assert r.status_code == 404, layer
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/collections/growing_areas/items/abc/history").status_code == 404
    assert client.get("/collections/growing_areas/items/1/history?nope=1").status_code == 400
    assert client.get("/collections/growing_areas/items/1/history", headers=h("wrong")).status_code == 401
    # a sample feature loaded without audit: it exists, no history yet
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT max(id) FROM parcels p WHERE NOT EXISTS (SELECT 1 FROM history h "
                        "WHERE h.layer = 'parcels' AND h.feature_id = p.id)").fetchone()
    assert row is not None
    r = client.get(f"/collections/parcels/items/{row[0]}/history")
    assert r.status_code == 200 and r.json()["entries"] == [] and r.json()["deleted"] is False
    fid, tag, _, _ = _area(client, officer, sample_db)
    r = client.delete(f"/collections/growing_areas/items/{fid}", headers=h(officer, **{"If-Match": tag}))
    assert r.status_code == 204
    assert client.get(f"/collections/growing_areas/items/{fid}").status_code == 404
    gone = client.get(f"/collections/growing_areas/items/{fid}/history", headers=h(officer)).json()
    assert gone["deleted"] is True and [e["action"] for e in gone["entries"]] == ["delete", "insert"]
    assert gone["entries"][0]["geometryBefore"]["type"] == "MultiPolygon"
    assert client.get(f"/collections/growing_areas/items/{fid}/history?f=html").status_code == 200


def test_history_page_in_chromium(live_server: Any, officer: str, sample_db: str) -> None:
    """The history page on a 360 px phone: offline (no request leaves the server), no script error, the old
    (dashed red) and new (green) boundary drawn on the small map."""
    import httpx
    from map_browser_util import PageLog, chromium, screenshot

    base = live_server.url
    commune, x, y = free_spot(sample_db)
    with httpx.Client(base_url=base) as c:
        r = c.post("/collections/growing_areas/items", headers=h(officer), json={
            "type": "Feature", "geometry": square(x, y),
            "properties": {"crop": "pomelo", "owner": "HTX Bưởi Da Xanh", "commune_code": commune,
                           "status": "draft"}})
        assert r.status_code == 201, r.text
        fid, tag = r.headers["Location"].rsplit("/", 1)[1], r.headers["ETag"]
        CREATED.append(int(fid))
        for body in ({"geometry": square(x + 0.001, y + 0.0005, 0.004)},
                     {"properties": {"status": "active", "owner": "HTX Bưởi Da Xanh Mỏ Cày", **DECISION}},
                     {"properties": {"status": "suspended", "status_reason": "Phát hiện ruồi đục quả"}}):
            r = c.patch(f"/collections/growing_areas/items/{fid}", json=body,
                        headers=h(officer, **{"If-Match": tag, "Content-Type": "application/merge-patch+json"}))
            assert r.status_code == 204, r.text
            tag = r.headers["ETag"]
    with chromium() as browser:
        for width, lang in ((360, "vi"), (1000, "en")):
            page = browser.new_page(viewport={"width": width, "height": 900})
            log = PageLog(page)
            page.goto(f"{base}/collections/growing_areas/items/{fid}/history?f=html&lang={lang}")
            page.wait_for_selector(".hmap .leaflet-overlay-pane path")
            paths = page.locator(".hmap").first.locator(".leaflet-overlay-pane path")   # the boundary change
            assert paths.count() == 2
            assert page.locator(".hmap").count() == 2      # and the first boundary, when the area was created
            assert "6 4" in (paths.nth(0).get_attribute("stroke-dasharray") or "")
            assert page.evaluate("document.documentElement.scrollWidth") <= width + 1   # no sideways scroll
            assert log.console_errors() == [] and log.external(base) == []
            assert ("Phát hiện ruồi đục quả" if lang == "vi" else "The boundary changed") in page.content()
            screenshot(page, f"history_{width}.png")
            page.close()
