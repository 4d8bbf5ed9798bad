"""`GET /lookup` ("what applies here") against SQL, and the planning / land-price layers through every face
(items, item pages, tiles, CSV/GeoPackage exports, Folium maps, styles), and the sample's consistency."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import jsonschema
import psycopg
import pyogrio
import pytest

from gis.crs import transformer
from tests.tiles_support import WMQ, features, get_tile

COVER = "ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))"


def _expected(conn: psycopg.Connection, lon: float, lat: float) -> dict[str, Any]:
    """What SQL says is at the point (the lookup's answer must agree)."""
    def first(sql: str) -> Any:
        row = conn.execute(sql, (lon, lat)).fetchone()
        return row[0] if row else None

    def ids(table: str) -> list[int]:
        return [r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE {COVER} ORDER BY id", (lon, lat))]

    return {
        "parcel": first(f"SELECT id FROM parcels WHERE {COVER} ORDER BY id LIMIT 1"),
        "planning_zone": first(f"SELECT id FROM planning_zones WHERE {COVER} ORDER BY id LIMIT 1"),
        "land_price_zone": first(f"SELECT id FROM land_price_zones WHERE {COVER} ORDER BY id LIMIT 1"),
        "commune": first(f"SELECT code FROM admin_units WHERE scheme = '2025' AND level NOT IN ('province', "
                         f"'district') AND "
                         f"(valid_to IS NULL OR valid_to > now()) AND {COVER}"),
        "old_commune": first(f"SELECT code FROM admin_units WHERE scheme = '2004' AND level NOT IN ('province', "
                             f"'district') AND {COVER}"),
        "auction_plots": ids("auction_plots"),
        "growing_areas": ids("growing_areas"),
    }


def _got(body: dict[str, Any]) -> dict[str, Any]:
    def mid(m: dict[str, Any] | None) -> Any:
        return None if m is None else m["id"]

    return {
        "parcel": mid(body["parcel"]), "planning_zone": mid(body["planning_zone"]),
        "land_price_zone": mid(body["land_price_zone"]),
        "commune": body["commune"] and body["commune"]["code"],
        "old_commune": body["old_commune"] and body["old_commune"]["code"],
        "auction_plots": [a["id"] for a in body["auction_plots"]],
        "growing_areas": [g["id"] for g in body["growing_areas"]],
    }


def _points(conn: psycopg.Connection, sql: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in conn.execute(sql)]


POINT_SETS = {
    "in parcels": "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM parcels "
                  "ORDER BY id % 997, id LIMIT 12) s",
    "in auction plots": "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM auction_plots "
                        "ORDER BY id LIMIT 6) s",
    "in growing areas": "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM growing_areas "
                        "ORDER BY id LIMIT 6) s",
    "in planning zones without parcels": "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(z.geom) p "
        "FROM planning_zones z WHERE NOT EXISTS (SELECT 1 FROM parcels x WHERE ST_Intersects(x.geom, z.geom)) "
        "ORDER BY z.id LIMIT 6) s",
    "in position-1 price zones": "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                                 "FROM land_price_zones WHERE position = 1 ORDER BY id LIMIT 6) s",
}


@pytest.mark.parametrize("kind", list(POINT_SETS))
def test_lookup_agrees_with_sql(client, conn: psycopg.Connection, kind: str) -> None:
    points = _points(conn, POINT_SETS[kind])
    assert len(points) >= 5
    for lon, lat in points:
        r = client.get("/lookup", params={"lon": lon, "lat": lat})
        assert r.status_code == 200, r.text
        body = r.json()
        want = _expected(conn, lon, lat)
        assert _got(body) == want, (kind, lon, lat)
        assert body["inside"] is True
        # every point of the province has a planning zone, a price zone and a commune now and before
        assert want["planning_zone"] and want["land_price_zone"] and want["commune"] and want["old_commune"]


def test_lookup_members_carry_sql_values(client, conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT id, map_sheet, parcel_no, area_m2, land_use_codes, ST_X(ST_PointOnSurface(geom)), "
                       "ST_Y(ST_PointOnSurface(geom)) FROM parcels WHERE cardinality(land_use_codes) = 2 "
                       "ORDER BY id LIMIT 1").fetchone()
    pid, sheet, no, area, uses, lon, lat = row
    body = client.get("/lookup", params={"lon": lon, "lat": lat}).json()
    p = body["parcel"]
    assert p["id"] == pid and p["properties"]["map_sheet"] == sheet and p["properties"]["parcel_no"] == no
    assert p["properties"]["area_m2"] == pytest.approx(float(area))
    assert [u["code"] for u in p["land_use"]] == uses and all(u["name"] for u in p["land_use"])
    assert p["title"] == f"Thửa {no}, tờ {sheet}"
    assert p["href"].endswith(f"/collections/parcels/items/{pid}")
    z = conn.execute(f"SELECT plan_class, plan_period FROM planning_zones WHERE {COVER}", (lon, lat)).fetchone()
    assert body["planning_zone"]["plan_class"]["code"] == z[0]
    assert body["planning_zone"]["properties"]["plan_period"] == z[1]
    pz = conn.execute(f"SELECT position, price_residential_vnd, price_year, decision_no FROM land_price_zones "
                      f"WHERE {COVER}", (lon, lat)).fetchone()
    lp = body["land_price_zone"]
    assert (lp["properties"]["position"], lp["properties"]["price_residential_vnd"],
            lp["properties"]["price_year"], lp["properties"]["decision_no"]) == pz
    res = next(x for x in lp["prices"] if x["field"] == "price_residential_vnd")
    assert res["vnd_per_m2"] == pz[1] and res["text"].endswith("₫/m²")
    cw = conn.execute("SELECT share FROM admin_crosswalk WHERE old_code = %s AND new_code = %s",
                      (body["old_commune"]["code"], body["commune"]["code"])).fetchone()
    assert cw is not None and body["crosswalk"]["share"] == pytest.approx(float(cw[0]))
    assert body["old_commune"]["valid_to"] == "2025-07-01" and body["commune"]["scheme"] == "2025"


def test_lookup_english_labels(client, conn: psycopg.Connection) -> None:
    lon, lat = _points(conn, POINT_SETS["in parcels"])[0]
    body = client.get("/lookup", params={"lon": lon, "lat": lat, "lang": "en"}).json()
    assert body["lang"] == "en"
    assert body["parcel"]["title"].startswith("Parcel ")
    code = body["planning_zone"]["plan_class"]["code"]
    from layers.store.vocab import LAND_USE_NAMES_EN
    assert body["planning_zone"]["plan_class"]["name"] == LAND_USE_NAMES_EN[code]
    price = body["land_price_zone"]["prices"][0]["text"]
    assert price.endswith("VND/m²") and "." not in price.split()[0]      # 1,500,000 VND/m²


def test_lookup_in_a_vn2000_crs(client, conn: psycopg.Connection) -> None:
    """`crs=` reads the point in another registry CRS (VN-2000 TM-3 105°30′, official parameters)."""
    lon, lat = _points(conn, POINT_SETS["in parcels"])[1]
    x, y = transformer("OGC:CRS84", "EPSG:9209").transform(lon, lat)
    a = client.get("/lookup", params={"lon": lon, "lat": lat}).json()
    b = client.get("/lookup", params={"lon": x, "lat": y, "crs": "EPSG:9209"}).json()
    assert b["parcel"]["id"] == a["parcel"]["id"]
    assert b["point"]["coordinates"] == pytest.approx(a["point"]["coordinates"], abs=1e-8)


@pytest.mark.parametrize("lon, lat", [(0.0, 0.0), (105.0, 10.0), (106.5, 11.5), (-75.0, -40.0)])
def test_lookup_outside_the_province_is_empty(client, conn: psycopg.Connection, lon: float, lat: float) -> None:
    r = client.get("/lookup", params={"lon": lon, "lat": lat})
    assert r.status_code == 200
    body = r.json()
    assert _expected(conn, lon, lat) == _got(body)
    assert body["inside"] is False and body["parcel"] is None and body["planning_zone"] is None
    assert body["land_price_zone"] is None and body["auction_plots"] == [] and body["commune"] is None


@pytest.mark.parametrize("params, needle", [
    ({"lat": "10"}, "lon"), ({"lon": "106"}, "lat"), ({"lon": "abc", "lat": "10"}, "lon"),
    ({"lon": "106", "lat": "x1"}, "lat"), ({"lon": "nan", "lat": "10"}, "lon"), ({"lon": "106", "lat": "inf"}, "lat"),
    ({"lon": "181", "lat": "10"}, "lon"), ({"lon": "106", "lat": "-91"}, "lat"), ({"lon": "", "lat": "10"}, "lon"),
    ({"lon": "106", "lat": "10", "crs": "EPSG:99999"}, "crs"), ({"lon": "106", "lat": "10", "bbox": "1"}, "bbox"),
    ({"lon": "106", "lat": "10", "f": "xml"}, "f"), ({"lon": "1e400", "lat": "10"}, "lon"),
])
def test_lookup_bad_parameters(client, params: dict[str, str], needle: str) -> None:
    for lang in ("vi", "en"):
        r = client.get("/lookup", params={**params, "lang": lang})
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert needle in r.json()["detail"]
    assert "must" in r.json()["detail"] or "required" in r.json()["detail"] or "supported" in r.json()["detail"]


def test_lookup_html_and_openapi(client, conn: psycopg.Connection) -> None:
    lon, lat = _points(conn, POINT_SETS["in auction plots"])[0]
    r = client.get("/lookup", params={"lon": lon, "lat": lat, "f": "html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    plot = conn.execute(f"SELECT plot_code FROM auction_plots WHERE {COVER} ORDER BY id", (lon, lat)).fetchone()[0]
    assert plot in r.text and "Quy hoạch sử dụng đất" in r.text and "₫/m²" in r.text
    en = client.get("/lookup", params={"lon": lon, "lat": lat, "f": "html", "lang": "en"}).text
    assert "Land-use plan" in en and "VND/m²" in en
    doc = client.get("/api").json()
    op = doc["paths"]["/lookup"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"lon", "lat", "crs"}
    schema = doc["components"]["schemas"]["Lookup"]
    body = client.get("/lookup", params={"lon": lon, "lat": lat}).json()
    jsonschema.validate(body, schema)
    jsonschema.validate(client.get("/lookup", params={"lon": 0, "lat": 0}).json(), schema)


# -- the new layers through every face ----------------------------------------------------------------------

@pytest.mark.parametrize("layer", ["planning_zones", "land_price_zones"])
def test_new_layers_items_and_pages(client, conn: psycopg.Connection, layer: str) -> None:
    n = conn.execute(f"SELECT count(*) FROM {layer}").fetchone()[0]
    assert n > 100
    assert layer in {c["id"] for c in client.get("/collections").json()["collections"]}
    r = client.get(f"/collections/{layer}/items", params={"limit": 5})
    assert r.status_code == 200 and r.json()["numberMatched"] == n and len(r.json()["features"]) == 5
    fid = r.json()["features"][0]["id"]
    page = client.get(f"/collections/{layer}/items/{fid}", params={"f": "html"})
    assert page.status_code == 200 and "mô phỏng" in page.text
    assert client.get(f"/collections/{layer}/queryables").status_code == 200


def test_new_layers_filter_and_tiles(client, conn: psycopg.Connection) -> None:
    n = conn.execute("SELECT count(*) FROM land_price_zones WHERE position = 1 AND area_kind = 'urban'").fetchone()[0]
    r = client.get("/collections/land_price_zones/items", params={"position": 1, "area_kind": "urban", "limit": 1})
    assert r.json()["numberMatched"] == n > 0
    lon, lat, zid, pos = conn.execute(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), id, position FROM land_price_zones "
        "ORDER BY id LIMIT 1").fetchone()
    t = WMQ.tile(lon, lat, 14)
    tile = get_tile(client, f"/collections/land_price_zones/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}")
    assert tile.status_code == 200
    got = features(tile.content, "land_price_zones")
    assert got[zid]["position"] == pos and "price_residential_vnd" in got[zid]
    zid2, cls = conn.execute(f"SELECT id, plan_class FROM planning_zones WHERE {COVER}", (lon, lat)).fetchone()
    tile = get_tile(client, f"/collections/planning_zones/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}")
    assert features(tile.content, "planning_zones")[zid2]["plan_class"] == cls
    style = client.get("/styles/default.json").json()
    assert {"planning_zones", "land_price_zones"} <= {ly.get("source-layer") for ly in style["layers"]}


def test_new_layers_exports(client, conn: psycopg.Connection, tmp_path) -> None:
    commune = conn.execute("SELECT commune_code FROM land_price_zones ORDER BY id LIMIT 1").fetchone()[0]
    n = conn.execute("SELECT count(*) FROM land_price_zones WHERE commune_code = %s", (commune,)).fetchone()[0]
    r = client.get("/collections/land_price_zones/items", params={"commune_code": commune, "f": "gpkg",
                                                                  "limit": 1000})
    assert r.status_code == 200
    path = tmp_path / "prices.gpkg"
    path.write_bytes(r.content)
    gdf = pyogrio.read_dataframe(path)
    assert len(gdf) == n and (gdf["price_residential_vnd"] > 0).all()
    r = client.get("/collections/planning_zones/items", params={"commune_code": commune, "f": "csv", "limit": 1000})
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    m = conn.execute("SELECT count(*) FROM planning_zones WHERE commune_code = %s", (commune,)).fetchone()[0]
    assert len(rows) == m and all(row["plan_period"] == "2021-2030" for row in rows)
    page = client.get("/maps/land_price_zones.html", params={"commune_code": commune})
    assert page.status_code == 200 and "Bảng giá đất" in page.text
    assert json.dumps("₫/m²")[1:-1] in page.text                  # popup values (JSON in the page's script)


# -- the sample: planning and prices agree with the parcels --------------------------------------------------

def test_sample_zones_cover_every_parcel_once(conn: psycopg.Connection) -> None:
    for table in ("planning_zones", "land_price_zones"):
        bad = conn.execute(f"""
            SELECT count(*) FROM parcels p
            WHERE (SELECT count(*) FROM {table} z WHERE ST_Covers(z.geom, ST_PointOnSurface(p.geom))) <> 1
        """).fetchone()[0]
        assert bad == 0, table
        overlaps = conn.execute(f"""
            SELECT count(*) FROM {table} a JOIN {table} b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)
            WHERE ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1.0""").fetchone()[0]
        assert overlaps == 0, table
    communes, zones = conn.execute("""
        SELECT (SELECT sum(ST_Area(geom::geography)) FROM admin_units WHERE scheme = '2025' AND valid_to IS NULL
                   AND level NOT IN ('province', 'district')),
               (SELECT sum(ST_Area(geom::geography)) FROM planning_zones)""").fetchone()
    assert zones == pytest.approx(communes, rel=0.005)


def test_sample_plan_class_is_the_parcels_land_use(conn: psycopg.Connection) -> None:
    """A zone with parcels is planned for the land use covering most of their area."""
    rows = conn.execute("""
        WITH v AS (SELECT z.id, z.plan_class, p.land_use_codes[1] AS code, sum(p.area_m2) AS a
                   FROM planning_zones z JOIN parcels p ON ST_Covers(z.geom, ST_PointOnSurface(p.geom))
                   GROUP BY 1, 2, 3)
        SELECT id, plan_class, (array_agg(code ORDER BY a DESC, code))[1] FROM v GROUP BY 1, 2""").fetchall()
    assert len(rows) > 50
    assert [r for r in rows if r[1] != r[2]] == []
    # zones without parcels: rural classes or urban residential near a town
    others = {r[0] for r in conn.execute("""
        SELECT DISTINCT plan_class FROM planning_zones
        WHERE id NOT IN (SELECT z.id FROM parcels p JOIN planning_zones z
                         ON ST_Covers(z.geom, ST_PointOnSurface(p.geom)))""")}
    assert others <= {"LUC", "CLN", "NTS", "ODT"}
    assert conn.execute("SELECT bool_and(synthetic) AND bool_and(plan_period = '2021-2030') "
                        "FROM planning_zones").fetchone()[0]


def test_sample_prices_are_plausible(conn: psycopg.Connection) -> None:
    # a better position is never cheaper, on the same road in the same commune
    worse = conn.execute("""
        SELECT count(*) FROM land_price_zones a JOIN land_price_zones b
          ON a.commune_code = b.commune_code AND a.road_name = b.road_name AND a.area_kind = b.area_kind
         AND a.position < b.position
        WHERE a.price_residential_vnd < b.price_residential_vnd""").fetchone()[0]
    assert worse == 0
    row = conn.execute("""
        SELECT min(price_residential_vnd), max(price_residential_vnd),
               bool_and(price_commercial_vnd <= price_residential_vnd),
               bool_and(price_production_vnd <= price_commercial_vnd),
               bool_and(price_annual_crop_vnd < price_residential_vnd),
               min(price_annual_crop_vnd), max(price_perennial_crop_vnd),
               bool_and(synthetic), min(price_year), max(price_year), count(DISTINCT position)
        FROM land_price_zones""").fetchone()
    lo, hi, com_ok, prod_ok, agri_ok, agri_lo, agri_hi, synthetic, y0, y1, positions = row
    assert 100_000 <= lo < 1_000_000 and 5_000_000 < hi <= 60_000_000       # ₫/m², Mekong-delta tables
    assert com_ok and prod_ok and agri_ok and synthetic
    assert 30_000 <= agri_lo and agri_hi <= 400_000
    assert y0 == y1 == 2026 and positions == 4
    urban, rural = conn.execute("""
        SELECT avg(price_residential_vnd) FILTER (WHERE area_kind = 'urban' AND position = 1),
               avg(price_residential_vnd) FILTER (WHERE area_kind = 'rural' AND position = 1)
        FROM land_price_zones""").fetchone()
    assert urban > 2 * rural
