"""History of every layer over HTTP against the real PostGIS (issue 11): after a sequence of edits (create, PATCH
of fields, a boundary change, a suspension with its reason, delete) `GET /collections/{id}/items/{fid}/history`
answers who, when, which fields changed (before -> after, only those), the reason and the previous geometry;
public view without actor nor non-public fields; HTML page with the old and new boundary; 404 for an unknown id;
the history of a deleted feature still served; paging."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from layers.accounts.auth import create_key
from layers.catalog.registry import LAYERS


@pytest.fixture(scope="module")
def officer(sample_db: str) -> str:
    return create_key(sample_db, f"hist-officer-{uuid.uuid4().hex[:8]}", "officer")


def h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def square(x: float, y: float, d: float = 0.003) -> dict[str, Any]:
    return {"type": "MultiPolygon", "coordinates": [[[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]]}


def _area(client: TestClient, officer: str) -> tuple[int, str]:
    code = f"VN-86-HIST-{uuid.uuid4().hex[:6]}"
    body = {"type": "Feature", "geometry": square(106.61, 10.11),
            "properties": {"code": code, "crop": "durian", "area_m2": 100000, "owner": "HTX Lịch Sử",
                           "commune_code": "86001", "status": "draft"}}
    r = client.post("/collections/growing_areas/items", json=body, headers=h(officer))
    assert r.status_code == 201, r.text
    return int(r.headers["Location"].rsplit("/", 1)[1]), r.headers["ETag"]


def _patch(client: TestClient, officer: str, fid: int, tag: str, body: dict[str, Any]) -> str:
    r = client.patch(f"/collections/growing_areas/items/{fid}", json=body,
                     headers=h(officer, **{"If-Match": tag, "Content-Type": "application/merge-patch+json"}))
    assert r.status_code == 204, r.text
    return r.headers["ETag"]


def test_history_after_a_sequence_of_edits(client: TestClient, officer: str) -> None:
    fid, tag = _area(client, officer)
    tag = _patch(client, officer, fid, tag, {"properties": {"owner": "HTX Mới", "variety": "Ri6"}})
    tag = _patch(client, officer, fid, tag, {"geometry": square(106.612, 10.112)})
    tag = _patch(client, officer, fid, tag, {"properties": {"status": "active"}})
    tag = _patch(client, officer, fid, tag, {"properties": {"status": "suspended",
                                                             "status_reason": "Phát hiện ruồi đục quả"}})
    full = client.get(f"/collections/growing_areas/items/{fid}/history", headers=h(officer)).json()
    assert full["view"] == "full" and full["numberMatched"] == 5 and not full["deleted"]
    suspend, activate, moved, edited, created = full["entries"]
    assert created["action"] == "insert" and created["actor"].startswith("officer:hist-officer-")
    assert {c["field"]: (c["before"], c["after"]) for c in edited["changes"]} == {
        "owner": ("HTX Lịch Sử", "HTX Mới"), "variety": (None, "Ri6")}     # only the changed fields
    assert edited["geometryChanged"] is False and "geometryBefore" not in edited
    assert moved["geometryChanged"] is True and moved["changes"] == []
    assert moved["geometryBefore"]["coordinates"][0][0][0] == [106.61, 10.11]
    assert moved["geometryAfter"]["coordinates"][0][0][0] == [106.612, 10.112]
    assert [(c["field"], c["before"], c["after"]) for c in activate["changes"]] == [("status", "draft", "active")]
    assert {c["field"]: c["after"] for c in suspend["changes"]} == {"status": "suspended",
                                                                   "status_reason": "Phát hiện ruồi đục quả"}
    assert suspend["reason"] == "Phát hiện ruồi đục quả"
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
    assert "Phát hiện ruồi đục quả" in text and "Ranh giới đã thay đổi" in text and "106.61" in text
    assert "history.js" in text and "officer:" not in text
    en = client.get(f"/collections/growing_areas/items/{fid}/history?f=html&lang=en", headers=h(officer)).text
    assert "Change history" in en and "The boundary changed" in en and "officer:hist-officer-" in en
    # the item links to its history
    links = client.get(f"/collections/growing_areas/items/{fid}").json()["links"]
    assert any(link["rel"] == "version-history" for link in links)


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


def test_unknown_and_deleted_features(client: TestClient, officer: str) -> None:
    for layer in LAYERS:
        r = client.get(f"/collections/{layer}/items/987654321/history")
        assert r.status_code == 404, layer
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/collections/growing_areas/items/abc/history").status_code == 404
    assert client.get("/collections/growing_areas/items/1/history?nope=1").status_code == 400
    assert client.get("/collections/growing_areas/items/1/history", headers=h("wrong")).status_code == 401
    # a sample feature loaded without audit: it exists, no history yet
    r = client.get("/collections/parcels/items/1/history")
    assert r.status_code == 200 and r.json()["entries"] == [] and r.json()["deleted"] is False
    fid, tag = _area(client, officer)
    r = client.delete(f"/collections/growing_areas/items/{fid}", headers=h(officer, **{"If-Match": tag}))
    assert r.status_code == 204
    assert client.get(f"/collections/growing_areas/items/{fid}").status_code == 404
    gone = client.get(f"/collections/growing_areas/items/{fid}/history", headers=h(officer)).json()
    assert gone["deleted"] is True and [e["action"] for e in gone["entries"]] == ["delete", "insert"]
    assert gone["entries"][0]["geometryBefore"]["type"] == "MultiPolygon"
    assert client.get(f"/collections/growing_areas/items/{fid}/history?f=html").status_code == 200


def test_history_page_in_chromium(live_server: Any, officer: str) -> None:
    """The history page on a 360 px phone: offline (no request leaves the server), no script error, the old
    (dashed red) and new (green) boundary drawn on the small map."""
    import httpx
    from map_browser_util import PageLog, chromium, screenshot

    base = live_server.url
    with httpx.Client(base_url=base) as c:
        code = f"VN-86-HPG-{uuid.uuid4().hex[:6]}"
        r = c.post("/collections/growing_areas/items", headers=h(officer), json={
            "type": "Feature", "geometry": square(106.63, 10.13),
            "properties": {"code": code, "crop": "pomelo", "area_m2": 100000, "owner": "HTX Bưởi Da Xanh",
                           "commune_code": "86001", "status": "draft"}})
        assert r.status_code == 201, r.text
        fid, tag = r.headers["Location"].rsplit("/", 1)[1], r.headers["ETag"]
        for body in ({"geometry": square(106.631, 10.1305, 0.004)},
                     {"properties": {"status": "active", "owner": "HTX Bưởi Da Xanh Mỏ Cày"}},
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
