"""OGC API – Features Parts 1-3 reading paths over the sample province: one test (or more) per conformance
class declared in /conformance, every expected value computed independently with SQL or pyproj."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import psycopg
import pytest
from conftest import table_fingerprint
from fastapi.testclient import TestClient

from api.features import CONFORMANCE
from gis.crs import get_crs, transformer
from layers.catalog.registry import LAYERS
from layers.query import features as feat

PROBLEM = "application/problem+json"


def sql_one(dsn: str, query: str, *args: Any) -> Any:
    with psycopg.connect(dsn) as c:
        row = c.execute(query, args or None).fetchone()
    assert row is not None
    return row[0]


def sql_ids(dsn: str, query: str, *args: Any) -> list[int]:
    with psycopg.connect(dsn) as c:
        return [int(r[0]) for r in c.execute(query, args or None).fetchall()]


def items(client: TestClient, layer: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/collections/{layer}/items", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def problem(client: TestClient, url: str, status: int, params: dict[str, Any] | None = None,
            **kw: Any) -> dict[str, Any]:
    r = client.get(url, params={**(params or {}), **kw})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["detail"]
    return dict(body)


# -- Part 1 core ---------------------------------------------------------------------------------------------

def test_core_landing_conformance_collections(client: TestClient) -> None:
    landing = client.get("/").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = client.get("/conformance").json()["conformsTo"]
    assert conf == CONFORMANCE
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    cols = client.get("/collections").json()["collections"]
    assert [c["id"] for c in cols] == list(LAYERS)
    for c in cols:
        assert any(link["rel"] == "items" for link in c["links"])
        assert c["itemType"] == "feature"


def test_core_items_counts_match_sql_for_every_layer(client: TestClient, sample_db: str) -> None:
    for layer in LAYERS.values():
        fc = items(client, layer.id, limit=5)
        n = sql_one(sample_db, f"SELECT count(*) FROM {layer.table}")
        if n < feat.COUNT_CAP:
            assert fc["numberMatched"] == n
            assert "numberMatchedEstimated" not in fc
        else:   # past the cap the count is the planner's estimate, and the response says so
            assert fc["numberMatchedEstimated"] is True
            assert fc["numberMatched"] >= feat.COUNT_CAP
            assert abs(fc["numberMatched"] - n) < 0.5 * n
        assert fc["numberReturned"] == len(fc["features"]) == min(5, n)
        expected_ids = sql_ids(sample_db, f"SELECT id FROM {layer.table} ORDER BY id LIMIT 5")
        assert [f["id"] for f in fc["features"]] == expected_ids
        # only public fields are published
        hidden = {f.name for f in layer.fields if not f.public}
        for f in fc["features"]:
            assert not hidden & set(f["properties"])


def test_core_bbox_matches_postgis(client: TestClient, sample_db: str) -> None:
    bbox = (106.2, 9.9, 106.35, 10.05)
    fc = items(client, "parcels", bbox=",".join(map(str, bbox)), limit=10000)
    ids = sql_ids(sample_db, "SELECT id FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(%s,%s,%s,%s,4326)) "
                             "ORDER BY id", *bbox)
    assert ids, "the test bbox must select something"
    assert [f["id"] for f in fc["features"]] == ids
    assert fc["numberMatched"] == len(ids)


def test_core_paging_walks_whole_collection(client: TestClient, sample_db: str) -> None:
    seen: list[int] = []
    url: str | None = "/collections/auction_plots/items?limit=37"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        fc = r.json()
        seen += [f["id"] for f in fc["features"]]
        nxt = [link["href"] for link in fc["links"] if link["rel"] == "next"]
        prev = [link["href"] for link in fc["links"] if link["rel"] == "prev"]
        assert bool(prev) == (pages > 0)
        url = nxt[0].replace("http://testserver", "") if nxt else None
        pages += 1
    assert seen == sql_ids(sample_db, "SELECT id FROM auction_plots ORDER BY id")
    assert len(seen) == len(set(seen))


def test_core_paging_edges(client: TestClient, sample_db: str) -> None:
    n = sql_one(sample_db, "SELECT count(*) FROM auction_plots")
    # a last page that is exactly full has no next link
    last = items(client, "auction_plots", limit=10, offset=n - 10)
    assert last["numberReturned"] == 10 and not [x for x in last["links"] if x["rel"] == "next"]
    assert last["numberMatched"] == n
    one_before = items(client, "auction_plots", limit=10, offset=n - 11)
    assert [x for x in one_before["links"] if x["rel"] == "next"]
    # past the end: empty page, no next, a count that does not pretend to know more than it does
    past = items(client, "auction_plots", limit=10, offset=n + 50)
    assert past["numberReturned"] == 0 and past["features"] == []
    assert past["numberMatched"] == n and not [x for x in past["links"] if x["rel"] == "next"]
    big = sql_one(sample_db, "SELECT count(*) FROM parcels")
    assert big > feat.COUNT_CAP
    far = items(client, "parcels", limit=10, offset=10 * big)
    assert far["numberReturned"] == 0 and far["numberMatchedEstimated"] is True
    assert far["numberMatched"] <= 10 * big


def test_core_datetime_on_temporal_field(client: TestClient, sample_db: str) -> None:
    fc = items(client, "auction_plots", datetime="2026-12-01T00:00:00Z/..", limit=10000)
    n = sql_one(sample_db, "SELECT count(*) FROM auction_plots WHERE auction_date >= '2026-12-01T00:00:00Z'")
    assert fc["numberMatched"] == n > 0
    fc = items(client, "auction_plots", datetime="../2026-12-01", limit=10000)
    n = sql_one(sample_db, "SELECT count(*) FROM auction_plots WHERE auction_date < '2026-12-02T00:00:00Z'")
    assert fc["numberMatched"] == n
    # interval layer: validity overlaps the query
    fc = items(client, "growing_areas", datetime="2026-01-01/2026-01-31", limit=10000)
    n = sql_one(sample_db, "SELECT count(*) FROM growing_areas WHERE valid_from <= '2026-01-31' "
                           "AND coalesce(valid_to, 'infinity') > '2026-01-01'")  # the end is exclusive
    assert fc["numberMatched"] == n


def test_core_property_equality_from_queryables(client: TestClient, sample_db: str) -> None:
    fc = items(client, "auction_plots", limit=10000, **{"status": "sold"})
    n = sql_one(sample_db, "SELECT count(*) FROM auction_plots WHERE status = 'sold'")
    assert fc["numberMatched"] == n > 0
    assert {f["properties"]["status"] for f in fc["features"]} == {"sold"}
    fc = items(client, "parcels", land_use_codes="ONT", limit=10000)
    n = sql_one(sample_db, "SELECT count(*) FROM parcels WHERE 'ONT' = ANY(land_use_codes)")
    assert fc["numberMatched"] == n


def test_core_errors_are_problem_json(client: TestClient) -> None:
    problem(client, "/collections/nope", 404)
    problem(client, "/collections/nope/items", 404)
    problem(client, "/collections/parcels/items/99999999", 404)
    problem(client, "/collections/parcels/items/abc", 404)
    problem(client, "/collections/parcels/items", 400, bbox="1,2,3")
    problem(client, "/collections/parcels/items", 400, bbox="a,b,c,d")
    problem(client, "/collections/parcels/items", 400, limit="0")
    problem(client, "/collections/parcels/items", 400, limit="100000000")
    problem(client, "/collections/parcels/items", 400, limit="-5")
    problem(client, "/collections/auction_plots/items", 400, datetime="yesterday")
    problem(client, "/collections/parcels/items", 400, datetime="2025-01-01")   # no temporal field
    problem(client, "/collections/parcels/items", 400, crs="http://www.opengis.net/def/crs/EPSG/0/99999")
    problem(client, "/collections/parcels/items", 400, foo="bar")
    problem(client, "/collections/parcels/items", 400, sortby="nosuch")
    problem(client, "/collections/parcels/items", 400, {"status": "managed", "f": "xml"})
    problem(client, "/collections/parcels/items", 400, map_sheet="abc")
    body = problem(client, "/conformance", 400, lang="en", x="1")
    assert "Unknown query parameter" in body["detail"]
    r = client.get("/collections/parcels/items", headers={"Accept": "application/xml"})
    assert r.status_code == 406 and r.headers["content-type"].startswith(PROBLEM)


def test_core_etag_304_and_cache_control(client: TestClient) -> None:
    r = client.get("/collections/parcels/items", params={"limit": 3})
    assert r.headers["cache-control"] == client.app.state.api_settings.cache_control  # type: ignore[attr-defined]
    etag = r.headers["etag"]
    time.sleep(1.1)   # the body's timeStamp changes; the ETag (content) does not
    r2 = client.get("/collections/parcels/items", params={"limit": 3}, headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b""
    r5 = client.get("/collections/parcels/items", params={"limit": 4}, headers={"If-None-Match": etag})
    assert r5.status_code == 200 and r5.headers["etag"] != etag
    r3 = client.get("/collections/parcels/items/1")
    r4 = client.get("/collections/parcels/items/1", headers={"If-None-Match": r3.headers["etag"]})
    assert r4.status_code == 304


def test_core_gzip(client: TestClient) -> None:
    r = client.get("/collections/parcels/items", params={"limit": 200}, headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"
    assert r.json()["numberReturned"] == 200


def test_openapi_is_valid_31(client: TestClient) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/api").json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    for layer in LAYERS:
        assert f"/collections/{layer}/items" in doc["paths"]


# -- GeoJSON / HTML / downloads ------------------------------------------------------------------------------

def test_geojson_media_type_and_structure(client: TestClient) -> None:
    r = client.get("/collections/packing_facilities/items", params={"limit": 2})
    assert r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    for f in fc["features"]:
        assert f["type"] == "Feature" and isinstance(f["id"], int) and "properties" in f
    one = client.get(f"/collections/packing_facilities/items/{fc['features'][0]['id']}").json()
    assert one["type"] == "Feature" and any(link["rel"] == "collection" for link in one["links"])


def test_html_pages_vietnamese_and_english(client: TestClient) -> None:
    for url in ("/", "/collections", "/collections/auction_plots", "/collections/auction_plots/items",
                "/collections/auction_plots/items/1", "/collections/auction_plots/queryables", "/conformance"):
        r = client.get(url, headers={"Accept": "text/html"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), url
    vi = client.get("/collections/auction_plots/items?f=html&limit=3").text
    en = client.get("/collections/auction_plots/items?f=html&limit=3&lang=en").text
    assert "Lô đất đấu giá" in vi and "Auction plots" in en
    assert "/static/vendor/leaflet/leaflet.js" in vi and 'id="map"' in vi
    assert "unpkg" not in vi and "cdn" not in vi.lower()


def test_downloads_csv_gpkg_fgb(client: TestClient, sample_db: str, tmp_path: Any) -> None:
    import pyogrio

    n = sql_one(sample_db, "SELECT count(*) FROM packing_facilities")
    r = client.get("/collections/packing_facilities/items", params={"f": "csv", "limit": 10000})
    assert r.headers["content-type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == n + 1 and lines[0].startswith("id,")
    for fmt in ("gpkg", "fgb"):
        r = client.get("/collections/packing_facilities/items", params={"f": fmt, "limit": 10000})
        assert r.status_code == 200, r.text
        path = tmp_path / f"x.{fmt}"
        path.write_bytes(r.content)
        df = pyogrio.read_dataframe(path)
        assert len(df) == n
        x = sql_one(sample_db, "SELECT ST_X(ST_PointOnSurface(geom)) FROM packing_facilities ORDER BY id LIMIT 1")
        assert 102 < x < 110 and 102 < df.geometry.iloc[0].representative_point().x < 110


# -- Part 2 CRS ----------------------------------------------------------------------------------------------

def test_crs_list_and_content_crs(client: TestClient) -> None:
    c = client.get("/collections/parcels").json()
    for code in ("OGC/1.3/CRS84", "EPSG/0/4326", "EPSG/0/3857", "EPSG/0/4756", "EPSG/0/3405", "EPSG/0/3406",
                 "EPSG/0/9210", "EPSG/0/5897", "EPSG/0/9218"):
        assert f"http://www.opengis.net/def/crs/{code}" in c["crs"]
    assert c["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    r = client.get("/collections/parcels/items", params={"limit": 1, "crs": "http://www.opengis.net/def/crs/EPSG/0/3857"})
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/3857>"
    r = client.get("/collections/parcels/items", params={"limit": 1})
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"


def _first_vertex(feature: dict[str, Any]) -> tuple[float, float]:
    g = feature["geometry"]
    c = g["coordinates"]
    while isinstance(c[0], list):
        c = c[0]
    return float(c[0]), float(c[1])


def test_crs_vn2000_matches_registry_to_a_millimetre(client: TestClient, sample_db: str) -> None:
    with psycopg.connect(sample_db) as c:
        stored = {int(r[0]): (float(r[1]), float(r[2])) for r in c.execute(
            "SELECT id, ST_X(p), ST_Y(p) FROM (SELECT id, ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1) p "
            "FROM parcels ORDER BY id LIMIT 20) s").fetchall()}
    for zone in ("http://www.opengis.net/def/crs/EPSG/0/9210", "http://www.opengis.net/def/crs/EPSG/0/5897",
                 "http://www.opengis.net/def/crs/EPSG/0/9218", "http://www.opengis.net/def/crs/EPSG/0/3405"):
        out = items(client, "parcels", limit=20, crs=zone)["features"]
        tr = transformer("OGC:CRS84", get_crs(zone).key)
        assert [f["id"] for f in out] == list(stored)
        for f in out:
            e, n = tr.transform(*stored[f["id"]])
            x, y = _first_vertex(f)
            assert math.hypot(x - e, y - n) < 0.001, (zone, f["id"], x - e, y - n)


def test_crs_axis_order_for_lat_first_crs(client: TestClient) -> None:
    a = items(client, "parcels", limit=3)["features"]
    b = items(client, "parcels", limit=3, crs="http://www.opengis.net/def/crs/EPSG/0/4326")["features"]
    for fa, fb in zip(a, b, strict=True):
        lon, lat = _first_vertex(fa)
        y, x = _first_vertex(fb)
        assert (round(x, 7), round(y, 7)) == (round(lon, 7), round(lat, 7))
        assert 8 < y < 24 and 102 < x < 110


def test_crs_bbox_crs_projected_and_lat_first(client: TestClient, sample_db: str) -> None:
    bbox = (106.2, 9.9, 106.35, 10.05)
    ref = items(client, "parcels", bbox=",".join(map(str, bbox)), limit=10000)["numberMatched"]
    # the same box in EPSG:4326 axis order (lat, lon)
    lat_first = items(client, "parcels", bbox=f"{bbox[1]},{bbox[0]},{bbox[3]},{bbox[2]}",
                      **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}, limit=10000)
    assert lat_first["numberMatched"] == ref
    # a box in VN-2000 / TM-3 105-45 metres, checked against PostGIS with the custom SRID
    tr = transformer("OGC:CRS84", "EPSG:9210")
    x1, y1 = tr.transform(bbox[0], bbox[1])
    x2, y2 = tr.transform(bbox[2], bbox[3])
    got = items(client, "parcels", bbox=f"{x1},{y1},{x2},{y2}",
                **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/9210"}, limit=10000)
    n = sql_one(sample_db, "SELECT count(*) FROM parcels WHERE ST_Intersects(geom, "
                           "ST_Transform(ST_MakeEnvelope(%s,%s,%s,%s,989210), 4326))", x1, y1, x2, y2)
    assert got["numberMatched"] == n > 0


# -- Part 3 queryables and filtering ---------------------------------------------------------------------------

def test_queryables_documents(client: TestClient) -> None:
    for layer in LAYERS.values():
        q = client.get(f"/collections/{layer.id}/queryables")
        assert q.headers["content-type"] == "application/schema+json"
        props = q.json()["properties"]
        assert set(props) == {"geometry", "id", *[f.name for f in layer.queryables]}
        assert not {f.name for f in layer.fields if not f.public} & set(props)
        s = client.get(f"/collections/{layer.id}/schema").json()
        assert set(s["properties"]) == {"geometry", "id", *[f.name for f in layer.public_fields]}
    enum = client.get("/collections/auction_plots/queryables").json()["properties"]["status"]["enum"]
    assert "sold" in enum


def test_queryables_query_parameters(client: TestClient, sample_db: str) -> None:
    code = sql_one(sample_db, "SELECT commune_code FROM parcels GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    fc = items(client, "parcels", commune_code=code, limit=1, **{"status": "managed"})
    n = sql_one(sample_db, "SELECT count(*) FROM parcels WHERE commune_code = %s AND status = 'managed'", code)
    assert fc["numberMatched"] == n


CQL_CASES = [
    ("auction_plots", "status = 'sold' AND area_m2 > 500", "status = 'sold' AND area_m2 > 500"),
    ("auction_plots", "status IN ('sold', 'closed')", "status IN ('sold', 'closed')"),
    ("auction_plots", "status NOT IN ('sold', 'closed')", "status NOT IN ('sold', 'closed')"),
    ("auction_plots", "plot_code LIKE 'DG-2027%'", "plot_code LIKE 'DG-2027%'"),
    ("auction_plots", "starting_price_vnd BETWEEN 1000000000 AND 3000000000",
     "starting_price_vnd BETWEEN 1000000000 AND 3000000000"),
    ("auction_plots", "result_price_vnd IS NULL", "result_price_vnd IS NULL"),
    ("auction_plots", "result_price_vnd IS NOT NULL", "result_price_vnd IS NOT NULL"),
    ("auction_plots", "CASEI(status) = casei('SOLD')", "lower(status) = 'sold'"),
    ("auction_plots", "auction_date > TIMESTAMP('2026-12-01T00:00:00Z')", "auction_date > '2026-12-01T00:00:00Z'"),
    ("auction_plots", "T_AFTER(auction_date, TIMESTAMP('2026-12-01T00:00:00Z'))",
     "auction_date > '2026-12-01T00:00:00Z'"),
    ("auction_plots", "T_DURING(auction_date, INTERVAL('2026-10-01T00:00:00Z', '..'))",
     "auction_date > '2026-10-01T00:00:00Z'"),
    ("auction_plots", "result_price_vnd > starting_price_vnd * 1.1", "result_price_vnd > starting_price_vnd * 1.1"),
    ("parcels", "A_CONTAINS(land_use_codes, ('ONT'))", "land_use_codes @> ARRAY['ONT']::varchar[]"),
    ("parcels", "S_INTERSECTS(geometry, POLYGON((106.2 9.9, 106.35 9.9, 106.35 10.05, 106.2 10.05, 106.2 9.9)))",
     "ST_Intersects(geom, ST_MakeEnvelope(106.2, 9.9, 106.35, 10.05, 4326))"),
    ("parcels", "S_WITHIN(geometry, ENVELOPE(106.2, 9.9, 106.35, 10.05))",
     "ST_Within(geom, ST_MakeEnvelope(106.2, 9.9, 106.35, 10.05, 4326))"),
    ("parcels", "S_DWITHIN(geometry, POINT(106.3 10.0), 2000, meters)",
     "ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(106.3, 10.0), 4326)::geography, 2000)"),
    ("packing_facilities", "NOT (status = 'active') OR capacity_t_per_day >= 10",
     "NOT (status = 'active') OR capacity_t_per_day >= 10"),
]


@pytest.mark.parametrize(("layer", "cql", "where"), CQL_CASES)
def test_filter_cql2_text_counts_match_sql(client: TestClient, sample_db: str, layer: str, cql: str,
                                          where: str) -> None:
    fc = items(client, layer, filter=cql, limit=10000)
    ids = sql_ids(sample_db, f"SELECT id FROM {layer} WHERE {where} ORDER BY id")
    assert [f["id"] for f in fc["features"]] == ids
    assert fc["numberMatched"] == len(ids)


def test_filter_cql2_json_and_filter_crs(client: TestClient, sample_db: str) -> None:
    f = {"op": "and", "args": [{"op": "=", "args": [{"property": "status"}, "sold"]},
                               {"op": ">", "args": [{"property": "area_m2"}, 500]}]}
    fc = items(client, "auction_plots", filter=json.dumps(f), **{"filter-lang": "cql2-json"}, limit=10000)
    assert fc["numberMatched"] == sql_one(sample_db, "SELECT count(*) FROM auction_plots WHERE status = 'sold' "
                                                     "AND area_m2 > 500")
    # the same box given in VN-2000 metres through filter-crs
    tr = transformer("OGC:CRS84", "EPSG:9210")
    x1, y1 = tr.transform(106.2, 9.9)
    x2, y2 = tr.transform(106.35, 10.05)
    cql = f"S_INTERSECTS(geometry, ENVELOPE({x1}, {y1}, {x2}, {y2}))"
    fc = items(client, "parcels", filter=cql, **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/9210"},
               limit=10000)
    n = sql_one(sample_db, "SELECT count(*) FROM parcels WHERE ST_Intersects(geom, "
                           "ST_Transform(ST_MakeEnvelope(%s,%s,%s,%s,989210), 4326))", x1, y1, x2, y2)
    assert fc["numberMatched"] == n > 0
    # lat/lon order in filter-crs EPSG:4326
    fc = items(client, "parcels", filter="S_INTERSECTS(geometry, POINT(10.0 106.3))",
               **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}, limit=10)
    n = sql_one(sample_db, "SELECT count(*) FROM parcels WHERE ST_Intersects(geom, "
                           "ST_SetSRID(ST_MakePoint(106.3, 10.0), 4326))")
    assert fc["numberMatched"] == n


def test_filter_errors_and_injection(client: TestClient, sample_db: str) -> None:
    before = {t: table_fingerprint(sample_db, t) for t in ("parcels", "auction_plots", "history")}
    url = "/collections/auction_plots/items"
    body = problem(client, url, 400, filter="status = 'sold' AND (", lang="en")
    assert "line 1, column" in body["detail"]
    body = problem(client, url, 400, filter="nosuch = 1", lang="en")
    assert "nosuch" in body["detail"]
    body = problem(client, url, 400, filter="certificate_no = 'x'", lang="en")   # not public
    problem(client, "/collections/parcels/items", 400, filter="certificate_no = 'x'")
    body = problem(client, url, 400, filter="pg_sleep(5) = 1", lang="en")
    assert "pg_sleep" in body["detail"]
    problem(client, url, 400, filter='"status; DROP TABLE parcels; --" = 1')
    problem(client, url, 400, filter="status = 'x'; DROP TABLE auction_plots; --")
    problem(client, url, 400, filter="area_m2 = 'abc'")
    problem(client, url, 400, filter="{not json", **{"filter-lang": "cql2-json"})
    problem(client, url, 400, filter="status = 'sold'", **{"filter-lang": "sql"})
    problem(client, url, 400, filter="S_INTERSECTS(geometry, POINT(1 2))",
            **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/99999"})
    # a quote inside a literal is just data
    fc = items(client, "auction_plots", filter="plot_code = 'x'') OR 1=1; DROP TABLE auction_plots; --'")
    assert fc["numberMatched"] == 0
    # on a field with a vocabulary the value is refused; on free text it is only a value
    body = problem(client, url, 400, params={"status": "sold' OR '1'='1"})
    assert "sold, cancelled" in body["detail"]
    fc = items(client, "auction_plots", **{"address": "x' OR '1'='1"})
    assert fc["numberMatched"] == 0
    after = {t: table_fingerprint(sample_db, t) for t in before}
    assert after == before


def test_sortby_properties_skipgeometry(client: TestClient, sample_db: str) -> None:
    fc = items(client, "auction_plots", sortby="-starting_price_vnd,id", limit=15, properties="plot_code,status")
    ids = sql_ids(sample_db, "SELECT id FROM auction_plots ORDER BY starting_price_vnd DESC, id LIMIT 15")
    assert [f["id"] for f in fc["features"]] == ids
    assert all(set(f["properties"]) == {"plot_code", "status"} for f in fc["features"])
    fc = items(client, "auction_plots", skipGeometry="true", limit=3)
    assert all(f["geometry"] is None for f in fc["features"])
    problem(client, "/collections/auction_plots/items", 400, properties="certificate_no")
    problem(client, "/collections/parcels/items", 400, properties="certificate_no")
    problem(client, "/collections/auction_plots/items", 400, skipGeometry="maybe")


def test_number_matched_estimated_beyond_cap(sample_db: str) -> None:
    import asyncio

    import asyncpg

    from layers.query import features as feat

    async def run() -> tuple[feat.ItemsPage, bool]:
        conn = await asyncpg.connect(sample_db)
        try:
            return await feat.fetch_items(conn, LAYERS["parcels"], feat.ItemsQuery(limit=10), count_cap=50)
        finally:
            await conn.close()

    page, has_next = asyncio.run(run())
    assert page.estimated and has_next and page.number_returned == 10
    assert page.number_matched >= 50


# Each conformance class declared in /conformance and the test(s) that exercise it.
CLASS_TESTS = {
    "ogcapi-features-1/1.0/conf/core": ["test_core_landing_conformance_collections",
                                        "test_core_items_counts_match_sql_for_every_layer",
                                        "test_core_bbox_matches_postgis", "test_core_paging_walks_whole_collection",
                                        "test_core_datetime_on_temporal_field", "test_core_errors_are_problem_json"],
    "ogcapi-features-1/1.0/conf/geojson": ["test_geojson_media_type_and_structure"],
    "ogcapi-features-1/1.0/conf/html": ["test_html_pages_vietnamese_and_english"],
    "ogcapi-features-2/1.0/conf/crs": ["test_crs_list_and_content_crs", "test_crs_vn2000_matches_registry_to_a_millimetre",
                                       "test_crs_axis_order_for_lat_first_crs", "test_crs_bbox_crs_projected_and_lat_first"],
    "ogcapi-features-3/1.0/conf/queryables": ["test_queryables_documents"],
    "ogcapi-features-3/1.0/conf/queryables-query-parameters": ["test_queryables_query_parameters",
                                                                "test_core_property_equality_from_queryables"],
    "ogcapi-features-3/1.0/conf/filter": ["test_filter_cql2_text_counts_match_sql", "test_filter_errors_and_injection"],
    "ogcapi-features-3/1.0/conf/features-filter": ["test_filter_cql2_text_counts_match_sql",
                                                   "test_filter_cql2_json_and_filter_crs"],
    "cql2/1.0/conf/cql2-text": ["test_filter_cql2_text_counts_match_sql"],
    "cql2/1.0/conf/cql2-json": ["test_filter_cql2_json_and_filter_crs"],
    "cql2/1.0/conf/basic-cql2": ["test_filter_cql2_text_counts_match_sql"],
    "cql2/1.0/conf/advanced-comparison-operators": ["test_filter_cql2_text_counts_match_sql"],   # LIKE/BETWEEN/IN
    "cql2/1.0/conf/case-insensitive-comparison": ["test_filter_cql2_text_counts_match_sql"],     # CASEI
    "cql2/1.0/conf/basic-spatial-functions": ["test_filter_cql2_text_counts_match_sql"],         # S_INTERSECTS
    "cql2/1.0/conf/spatial-functions": ["test_filter_cql2_text_counts_match_sql"],               # S_WITHIN, S_DWITHIN
    "cql2/1.0/conf/temporal-functions": ["test_filter_cql2_text_counts_match_sql"],              # T_AFTER, T_DURING
    "cql2/1.0/conf/array-functions": ["test_filter_cql2_text_counts_match_sql"],                 # A_CONTAINS
    "cql2/1.0/conf/arithmetic": ["test_filter_cql2_text_counts_match_sql"],
    "cql2/1.0/conf/property-property": ["test_filter_cql2_text_counts_match_sql"],
    "ogcapi-features-4/1.0/conf/create-replace-delete": ["test_features_write.test_create_read_audit",
                                                          "test_features_write.test_delete_and_content_crs",
                                                          "test_features_write.test_if_match_required_412_and_update"],
    "ogcapi-features-4/1.0/conf/update": ["test_features_write.test_if_match_required_412_and_update",
                                          "test_features_write.test_concurrent_patch_with_stale_etag_gets_412"],
    "ogcapi-features-4/1.0/conf/features": ["test_features_write.test_create_refuses_bad_input_and_writes_nothing"],
    "ogcapi-features-5/1.0/conf/schemas": ["test_queryables_documents", "test_schema_roles"],
    "ogcapi-features-5/1.0/conf/core-roles-features": ["test_schema_roles"],
    # OGC API – Tiles and TMS 2.0 (api/tiles.py)
    "ogcapi-tiles-1/1.0/conf/core": ["test_tiles_mvt.test_features_and_attributes_match_sql",
                                     "test_tiles_mvt.test_bad_input_gives_problem_json"],
    "ogcapi-tiles-1/1.0/conf/tileset": ["test_tiles_tilejson.test_ogc_tiles_documents",
                                        "test_gdal_clients.test_ogcapi_driver_lists_tile_layers"],
    "ogcapi-tiles-1/1.0/conf/tilesets-list": ["test_tiles_tilejson.test_ogc_tiles_documents"],
    "ogcapi-tiles-1/1.0/conf/geodata-tilesets": ["test_gdal_clients.test_ogcapi_driver_lists_tile_layers"],
    "ogcapi-tiles-1/1.0/conf/mvt": ["test_tiles_mvt.test_tile_decodes_with_mapbox_vector_tile_and_gdal",
                                    "test_gdal_clients.test_mvt_driver_reads_a_tile_url"],
    "tms/2.0/conf/tilematrixset": ["test_gdal_clients.test_tilematrixset_is_readable_as_tms_1_and_2"],
    "tms/2.0/conf/json-tilematrixset": ["test_gdal_clients.test_tilematrixset_is_readable_as_tms_1_and_2"],
    "tms/2.0/conf/tilesetmetadata": ["test_tiles_tilejson.test_ogc_tiles_documents"],
    "tms/2.0/conf/json-tilesetmetadata": ["test_tiles_tilejson.test_ogc_tiles_documents"],
}


def test_schema_roles(client: TestClient) -> None:
    s = client.get("/collections/auction_plots/schema").json()["properties"]
    assert s["geometry"]["x-ogc-role"] == "primary-geometry" and s["id"]["x-ogc-role"] == "id"
    assert s["auction_date"]["x-ogc-role"] == "primary-instant"
    g = client.get("/collections/growing_areas/schema").json()["properties"]
    assert g["valid_from"]["x-ogc-role"] == "primary-interval-start"
    assert g["valid_to"]["x-ogc-role"] == "primary-interval-end"


def test_every_declared_conformance_class_has_tests() -> None:
    import importlib

    declared = {c.split("/spec/", 1)[1] for c in CONFORMANCE}
    assert declared == set(CLASS_TESTS)
    for names in CLASS_TESTS.values():
        for name in names:
            module, _, fn = name.rpartition(".")
            mod = importlib.import_module(module) if module else importlib.import_module(__name__)
            assert callable(getattr(mod, fn)), name


ODD_FILTERS: list[tuple[str, str]] = [
    ("cql2-text", "S_INTERSECTS(geometry, POLYGON((1 2, 3 4)))"), ("cql2-text", "area_m2 / 0 > 1"),
    ("cql2-text", "auction_date > TIMESTAMP('2025-13-45T00:00:00Z')"), ("cql2-text", "status LIKE 5"),
    ("cql2-text", "status IN ()"), ("cql2-text", "BBOX(geometry, 1,2,3)"),
    ("cql2-text", "S_DWITHIN(geometry, POINT(106 10), -5, meters)"), ("cql2-text", "T_AFTER(status, DATE('2025-01-01'))"),
    ("cql2-text", "geometry = 1"), ("cql2-text", "id = 'x'"), ("cql2-text", '"area_m2" > 1e400'),
    ("cql2-text", "x" * 5000 + " = 1"), ("cql2-text", "(" * 300 + "status = 'x'" + ")" * 300),
    ("cql2-json", '{"op": "=", "args": [{"property": "status"}]}'), ("cql2-json", '{"op": "=", "args": "x"}'),
    ("cql2-json", '{"op": "=", "args": [{"function": {"name": "pg_sleep", "args": [5]}}, 1]}'),
    ("cql2-json", "[1, 2]"), ("cql2-json", '"x"'), ("cql2-json", '{"op": "and", "args": [true]}'),
    ("cql2-json", '{"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates": [[[0, 0]]]}]}'),
]


@pytest.mark.parametrize(("lang", "text"), ODD_FILTERS)
def test_filter_odd_input_never_500(client: TestClient, sample_db: str, lang: str, text: str) -> None:
    before = table_fingerprint(sample_db, "auction_plots")
    r = client.get("/collections/auction_plots/items", params={"filter": text, "filter-lang": lang, "lang": "en"})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.headers["content-type"].startswith(PROBLEM)
        detail = r.json()["detail"]
        assert "syntax error at or near" not in detail and "psycopg" not in detail and "asyncpg" not in detail
    assert table_fingerprint(sample_db, "auction_plots") == before


def test_landing_and_collections_link_map_tiles_and_exports(client: TestClient) -> None:
    links = client.get("/").json()["links"]
    by_href = {link["href"].split("testserver", 1)[-1]: link for link in links}
    assert by_href["/map"]["rel"] == "related"
    assert client.get("/map").status_code == 200
    col = client.get("/collections/auction_plots").json()["links"]
    hrefs = [link["href"].split("testserver", 1)[-1] for link in col]
    assert "/collections/auction_plots/tiles" in hrefs and "/maps/auction_plots.html" in hrefs
    for h in ("/collections/auction_plots/tiles", "/tileMatrixSets"):
        assert client.get(h).status_code == 200, h


def test_responses_compressed_br_or_gzip(client: TestClient) -> None:
    for accept, expected in (("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br"), ("identity", None)):
        r = client.get("/collections/parcels/items", params={"limit": 100}, headers={"accept-encoding": accept})
        assert r.status_code == 200 and r.headers.get("content-encoding") == expected, accept
        assert len(r.json()["features"]) == 100


def test_html_pages_format_prices_and_dates_the_vietnamese_way(client: TestClient, sample_db: str) -> None:
    pid, price, when = sql_one(sample_db, "SELECT row(id, starting_price_vnd, "
                                          "to_char(auction_date AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY')) "
                                          "FROM auction_plots ORDER BY id LIMIT 1")
    price_vi = f"{int(price):,}".replace(",", ".") + " ₫"
    for url, params in ((f"/collections/auction_plots/items/{pid}", {}), ("/collections/auction_plots/items",
                                                                         {"limit": 5, "sortby": "id"})):
        r = client.get(url, params={"f": "html", "lang": "vi", **params})
        assert r.status_code == 200 and price_vi in r.text and when in r.text, url
