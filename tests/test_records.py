"""Season, inspection and pest records (issue 11) over HTTP against the real PostGIS: collections like every other
layer (items, writes by an officer with history, vocabularies with Vietnamese labels, exports, tiles), linked from
their growing area; the packing houses' source growing areas read and replaced by an officer, audited."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pyogrio
import pytest
from fastapi.testclient import TestClient
from tiles_support import features, get_tile, tile_of

from layers.accounts.auth import create_key

PREFIXES: list[str] = []
OFFICER = f"rec-officer-{uuid.uuid4().hex[:8]}"

@pytest.fixture(scope="module", autouse=True)
def _leave_the_sample_as_found(sample_db: str) -> Iterator[None]:
    """The features these tests create are removed afterwards (other modules count the synthetic sample)."""
    yield
    with psycopg.connect(sample_db) as c:
        c.execute("DELETE FROM growing_areas WHERE NOT synthetic AND code LIKE ANY(%s)", [PREFIXES])
        for table in ("seasons", "inspections", "pest_observations"):
            c.execute(f"DELETE FROM {table} WHERE NOT synthetic")  # noqa: S608 - fixed names


@pytest.fixture(scope="module")
def officer(sample_db: str) -> str:
    return create_key(sample_db, OFFICER, "officer")


def h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def test_sample_has_records_for_every_growing_area(sample_db: str) -> None:
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT (SELECT count(*) FROM growing_areas g WHERE g.synthetic AND NOT EXISTS (SELECT 1 FROM seasons s "
                        "WHERE s.growing_area_id = g.id)), (SELECT count(*) FROM growing_areas g WHERE g.synthetic AND NOT EXISTS "
                        "(SELECT 1 FROM inspections s WHERE s.growing_area_id = g.id)), "
                        "(SELECT count(*) FROM pest_observations)").fetchone()
    assert row is not None and row[0] == 0 and row[1] == 0 and row[2] > 100


def test_records_are_collections(client: TestClient) -> None:
    ids = {c["id"] for c in client.get("/collections").json()["collections"]}
    assert {"seasons", "inspections", "pest_observations"} <= ids
    for layer in ("seasons", "inspections", "pest_observations"):
        r = client.get(f"/collections/{layer}/items?limit=3")
        assert r.status_code == 200 and r.json()["numberReturned"] == 3, layer
        assert client.get(f"/collections/{layer}/queryables").json()["properties"]["growing_area_id"]
    pest = client.get("/collections/pest_observations/items?limit=1").json()["features"][0]
    assert pest["geometry"]["type"] == "Point"
    season = client.get("/collections/seasons/items?limit=1").json()["features"][0]
    assert season["geometry"] is None                          # null geometry, as OGC API Features allows
    insp = client.get("/collections/inspections/items?limit=1").json()["features"][0]
    assert "inspector" not in insp["properties"] and insp["properties"]["result"] in ("pass", "conditional", "fail")
    # Vietnamese label in a query parameter
    r = client.get("/collections/pest_observations/items?pest=ruoi duc qua&limit=5")
    assert r.status_code == 200 and all(f["properties"]["pest"] == "fruit_fly" for f in r.json()["features"])
    bad = client.get("/collections/pest_observations/items?pest=chuot")
    assert bad.status_code == 400 and "Ruồi đục quả" in bad.json()["detail"]


def sample_areas(dsn: str, n: int) -> list[int]:
    """Ids of n active sample areas (other test modules may delete or edit some)."""
    with psycopg.connect(dsn) as c:
        return [int(r[0]) for r in c.execute("SELECT id FROM growing_areas WHERE synthetic AND status = 'active' "
                                             "ORDER BY id DESC LIMIT %s", [n])]


def test_growing_area_links_to_its_records(client: TestClient, sample_db: str) -> None:
    [g] = sample_areas(sample_db, 1)
    item = client.get(f"/collections/growing_areas/items/{g}").json()
    related = {link["href"].split("/collections/")[1] for link in item["links"] if link["rel"] == "related"}
    assert related == {f"seasons/items?growing_area_id={g}", f"inspections/items?growing_area_id={g}",
                       f"pest_observations/items?growing_area_id={g}"}
    for link in item["links"]:
        if link["rel"] == "related":
            got = client.get(link["href"]).json()
            assert all(f["properties"]["growing_area_id"] == g for f in got["features"])
    assert client.get(f"/collections/seasons/items?growing_area_id={g}").json()["numberMatched"] >= 1


def test_officer_writes_records_with_labels_and_history(client: TestClient, officer: str, sample_db: str) -> None:
    [area] = sample_areas(sample_db, 1)             # a growing area of the officer's province
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.3, 10.1]},
            "properties": {"growing_area_id": area, "pest": "Rầy nâu", "severity": "NẶNG", "observed_on": "15/10/2026",
                           "affected_area_m2": "1.250,5"}}
    assert client.post("/collections/pest_observations/items", json=body).status_code == 401
    r = client.post("/collections/pest_observations/items", json=body, headers=h(officer))
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    got = client.get(url).json()["properties"]
    assert (got["pest"], got["severity"], got["observed_on"], got["affected_area_m2"]) == \
        ("brown_planthopper", "high", "2026-10-15", 1250.5)
    amb = dict(body, properties={**body["properties"], "affected_area_m2": "1.250", "observed_on": "17/10/2026"})
    r = client.post("/collections/pest_observations/items", json=amb, headers=h(officer))
    assert r.status_code == 422 and "1250" in r.json()["detail"] and "1,25" in r.json()["detail"]
    assert r.json()["errors"][0]["field"] == "affected_area_m2"
    bad = dict(body, properties={**body["properties"], "pest": "sâu lạ", "observed_on": "16/10/2026"})
    r = client.post("/collections/pest_observations/items", json=bad, headers=h(officer))
    assert r.status_code == 422 and "brown_planthopper (Rầy nâu)" in r.json()["detail"]
    season = {"type": "Feature", "geometry": None,
              "properties": {"growing_area_id": area, "crop": "sau rieng", "variety": "Ri6", "planting_date": "2026-01-10",
                             "expected_harvest_date": "2026-06-10", "expected_yield_t": 12, "actual_yield_t": 10.5}}
    r = client.post("/collections/seasons/items", json=season, headers=h(officer))
    assert r.status_code == 201, r.text
    sid = r.headers["Location"].rsplit("/", 1)[1]
    tag = r.headers["ETag"]
    assert client.get(f"/collections/seasons/items/{sid}").json()["properties"]["crop"] == "durian"
    r = client.patch(f"/collections/seasons/items/{sid}", json={"properties": {"actual_yield_t": 11}},
                     headers=h(officer, **{"If-Match": tag, "Content-Type": "application/merge-patch+json"}))
    assert r.status_code == 204
    hist = client.get(f"/collections/seasons/items/{sid}/history", headers=h(officer)).json()
    assert [(c["field"], c["before"], c["after"]) for c in hist["entries"][0]["changes"]] == \
        [("actual_yield_t", 10.5, 11)]
    # a harvest before planting is refused by the declared rule
    wrong = dict(season, properties={**season["properties"], "planting_date": "2026-02-01",
                                     "expected_harvest_date": "2026-01-01"})
    assert client.post("/collections/seasons/items", json=wrong, headers=h(officer)).status_code == 422
    # an unknown growing area is refused, naming the field, nothing written
    orphan = dict(season, properties={**season["properties"], "growing_area_id": 99999999})
    r = client.post("/collections/seasons/items", json=orphan, headers=h(officer))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "growing_area_id", r.text


def test_records_export_and_tiles(client: TestClient, sample_db: str) -> None:
    r = client.get("/collections/pest_observations/items?f=gpkg&limit=50")
    assert r.status_code == 200
    gdf = pyogrio.read_dataframe(io.BytesIO(r.content))
    assert len(gdf) == 50 and set(gdf["pest"]) <= {"brown_planthopper", "stem_borer", "anthracnose", "fruit_fly",
                                                    "blast", "leaf_blight", "mealybug", "red_palm_weevil",
                                                    "coconut_caterpillar", "phytophthora", "stem_canker",
                                                    "golden_apple_snail", "thrips"}
    for fmt in ("gpkg", "fgb"):      # seasons: features without geometry
        r = client.get(f"/collections/seasons/items?f={fmt}&limit=20")
        assert r.status_code == 200, fmt
        got = pyogrio.read_dataframe(io.BytesIO(r.content))
        assert len(got) == 20 and got.geometry.isna().all() and "planting_date" in got.columns
    assert client.get("/maps/pest_observations.html").status_code == 200
    csv = client.get("/collections/seasons/items?f=csv&limit=10")
    assert csv.status_code == 200 and "planting_date" in csv.text.splitlines()[0]
    t = tile_of(sample_db, "SELECT ST_X(geom), ST_Y(geom) FROM pest_observations ORDER BY id LIMIT 1", 14)
    tile = get_tile(client, f"/collections/pest_observations/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}")
    assert tile.status_code == 200
    feats = features(tile.content, "pest_observations")
    assert feats and all("pest" in p and "severity" in p for p in feats.values())
    assert client.get("/collections/inspections/tiles/WebMercatorQuad/14/13000/7700").status_code in (200, 204)


def test_sources_read_and_write_audited(client: TestClient, officer: str, sample_db: str) -> None:
    r = client.get("/collections/packing_facilities/items/2/sources")
    assert r.status_code == 200
    before = r.json()["ids"]
    assert before and all(i["href"].endswith(f"/growing_areas/items/{i['id']}") for i in r.json()["items"])
    item = client.get("/collections/packing_facilities/items/2").json()
    assert any(link["href"].endswith("/items/2/sources") for link in item["links"])
    a, b = [x for x in sample_areas(sample_db, 10) if x not in before][:2]
    with psycopg.connect(sample_db) as c:
        codes = [r[0] for r in c.execute("SELECT code FROM growing_areas WHERE id IN (%s, %s) ORDER BY id", [a, b])]
    new = [before[0], *codes]                       # keep one, add two by code, drop the others
    assert client.put("/collections/packing_facilities/items/2/sources", json=new).status_code == 401
    r = client.put("/collections/packing_facilities/items/2/sources", json={"ids": new}, headers=h(officer))
    assert r.status_code == 200, r.text
    want = sorted({before[0], a, b})
    assert r.json()["ids"] == want
    assert client.get("/collections/packing_facilities/items/2/sources").json()["ids"] == want
    hist = client.get("/collections/packing_facilities/items/2/history", headers=h(officer)).json()
    top = hist["entries"][0]                        # one entry, although a DELETE and an INSERT ran
    assert top["actor"] == OFFICER                  # the user's name
    assert top["changes"] == [{"field": "sources", "title": "Vùng trồng cung cấp", "before": sorted(before),
                               "after": want}]
    # unknown ids/codes: refused, nothing changed
    r = client.put("/collections/packing_facilities/items/2/sources", json=[a, "VN-NO-SUCH"], headers=h(officer))
    assert r.status_code == 422 and "VN-NO-SUCH" in r.json()["detail"]
    assert client.get("/collections/packing_facilities/items/2/sources").json()["ids"] == want
    assert client.put("/collections/packing_facilities/items/999999/sources", json=[a],
                      headers=h(officer)).status_code == 404
    assert client.get("/collections/packing_facilities/items/999999/sources").status_code == 404
    assert client.put("/collections/packing_facilities/items/2/sources", json={"x": 1},
                      headers=h(officer)).status_code == 400
    # a direct SQL change is audited as well (the trigger, not the route)
    with psycopg.connect(sample_db) as c:
        c.execute("SELECT set_config('datso.actor', 'psql:test', true)")
        c.execute("DELETE FROM packing_facility_growing_areas WHERE facility_id = 2 AND growing_area_id = %s", [a])
    top: dict[str, Any] = client.get("/collections/packing_facilities/items/2/history",
                                     headers=h(officer)).json()["entries"][0]
    assert top["actor"] == "psql:test" and top["changes"][0]["after"] == sorted(set(want) - {a})
    # back to the sample's links
    r = client.put("/collections/packing_facilities/items/2/sources", json=before, headers=h(officer))
    assert r.status_code == 200 and r.json()["ids"] == sorted(before)


def test_item_page_links_to_records_and_history(client: TestClient, sample_db: str) -> None:
    [g] = sample_areas(sample_db, 1)
    page = client.get(f"/collections/growing_areas/items/{g}?f=html").text
    for text in ("Mùa vụ", "Kiểm tra vùng trồng", "Sinh vật gây hại", "Lịch sử thay đổi"):
        assert text in page
    assert f"/collections/seasons/items?growing_area_id={g}&amp;f=html" in page
    assert client.get(f"/collections/seasons/items?growing_area_id={g}&f=html").status_code == 200
    facility = client.get("/collections/packing_facilities/items/2?f=html&lang=en").text
    assert "Source growing areas" in facility and "/items/2/history?f=html" in facility
