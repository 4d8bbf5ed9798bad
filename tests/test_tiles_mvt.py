"""MVT tiles built from the registry: decoding (mapbox-vector-tile and GDAL), content against SQL,
generalisation, caps, multi-layer tiles, filters, and problem+json for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest
from fastapi.testclient import TestClient
from tiles_support import MVT, WMQ, features, get_tile, sql_rows, tile_client, tile_of

from layers.catalog.registry import get_layer
from layers.settings import Settings
from tiles.mvt import tile_fields
from tiles.tms import pixel_size

BUF = 64 / 4096
# a point on a parcel in the densest neighbourhood (the most parcels within 500 m)
DENSE = ("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(p.geom) c, (SELECT count(*) FROM parcels n "
         "WHERE n.geom_3857 && ST_Expand(p.geom_3857, 500)) k FROM parcels p WHERE p.id %% 25 = 0 "
         "ORDER BY k DESC, p.id LIMIT 1) s")
# the densest spot among parcels of more than a z12 pixel (38 m: ~1,460 m²): both kept and dropped parcels around it
MIXED = ("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(p.geom) c, (SELECT count(*) FROM parcels n "
         "WHERE n.geom_3857 && ST_Expand(p.geom_3857, 500)) k FROM parcels p WHERE ST_Area(p.geom_3857) > 1500 "
         "ORDER BY k DESC, p.id LIMIT 1) s")


@pytest.fixture(scope="module")
def client(sample_db: str, settings: Settings) -> Iterator[TestClient]:
    with tile_client(settings, sample_db, cache_enabled=False) as c:
        yield c


def _url(layer: str, t: object) -> str:
    return f"/collections/{layer}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"  # type: ignore[attr-defined]


def test_tile_decodes_with_mapbox_vector_tile_and_gdal(client: TestClient, sample_db: str, tmp_path: Path) -> None:
    t = tile_of(sample_db, DENSE, 15)
    r = get_tile(client, _url("parcels", t))
    assert r.status_code == 200
    assert r.headers["content-type"] == MVT
    feats = features(r.content, "parcels")
    assert len(feats) > 5
    # GDAL's MVT driver georeferences a tile from its z/x/y path
    path = tmp_path / str(t.z) / str(t.x) / f"{t.y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(r.content)
    assert [name for name, _ in pyogrio.list_layers(path)] == ["parcels"]
    df = pyogrio.read_dataframe(path, layer="parcels", CLIP="NO")  # keep features in the buffer too
    assert len(df) == len(feats)
    assert set(df["mvt_id"].astype(int)) == set(feats)
    # GDAL puts the features back where they are: each lies in the tile or its buffer (EPSG:3857)
    assert df.crs.to_epsg() == 3857
    bb = WMQ.xy_bounds(t)
    pad = (bb.right - bb.left) * BUF * 1.01
    cx = df.geometry.centroid
    assert ((cx.x > bb.left - pad) & (cx.x < bb.right + pad) & (cx.y > bb.bottom - pad) & (cx.y < bb.top + pad)).all()
    # and reads the same attributes
    first = next(iter(feats))
    row = df.set_index(df["mvt_id"].astype(int)).loc[first]
    assert row["status"] == feats[first]["status"] and int(row["parcel_no"]) == feats[first]["parcel_no"]



def test_features_and_attributes_match_sql(client: TestClient, sample_db: str) -> None:
    layer = get_layer("parcels")
    z = 16
    t = tile_of(sample_db, DENSE, z)
    feats = features(get_tile(client, _url("parcels", t)).content, "parcels")
    # every feature in the tile is a parcel whose box meets the buffered envelope ...
    near = {r[0] for r in sql_rows(sample_db, "SELECT id FROM parcels WHERE geom_3857 && "
                                              "ST_TileEnvelope(%s, %s, %s, margin => %s)", z, t.x, t.y, BUF)}
    assert set(feats) <= near
    # ... and every parcel that covers > 1 m2 of the tile itself is in it
    inside = {r[0] for r in sql_rows(
        sample_db, "SELECT id FROM parcels WHERE ST_Area(ST_Intersection(geom_3857, ST_TileEnvelope(%s, %s, %s)))"
                   " > 1", z, t.x, t.y)}
    assert inside and inside <= set(feats)
    # attributes: the detail-zoom set, with the values in the table
    names = [f.name for f in tile_fields(layer, detail=True)]
    assert "certificate_no" not in names and "synthetic" not in names
    rows = sql_rows(sample_db, "SELECT id, commune_code, old_commune_code, map_sheet, parcel_no, address, "
                               "area_m2::float8, array_to_string(land_use_codes, ','), managing_body, status "
                               "FROM parcels WHERE id = ANY(%s)", list(feats))
    assert len(rows) == len(feats)
    for row in rows:
        props = feats[row[0]]
        expected = dict(zip(["commune_code", "old_commune_code", "map_sheet", "parcel_no", "address", "area_m2",
                             "land_use_codes", "managing_body", "status"], row[1:], strict=True))
        assert props == {k: v for k, v in expected.items() if v is not None}


def test_low_zoom_carries_the_lowzoom_fields_only(client: TestClient, sample_db: str) -> None:
    layer = get_layer("parcels")
    low = {f.name for f in tile_fields(layer, detail=False)}
    assert low == {f.name for f in layer.fields if f.lowzoom}
    t = tile_of(sample_db, DENSE, layer.detail_zoom - 1)
    feats = features(get_tile(client, _url("parcels", t)).content, "parcels")
    assert feats
    assert set().union(*(p.keys() for p in feats.values())) <= low
    t = tile_of(sample_db, DENSE, layer.detail_zoom)
    feats = features(get_tile(client, _url("parcels", t)).content, "parcels")
    assert "parcel_no" in set().union(*(p.keys() for p in feats.values()))


def test_generalisation_keeps_every_feature_of_at_least_a_pixel(client: TestClient, sample_db: str) -> None:
    layer = get_layer("parcels")
    assert layer.min_pixel_area == 1.0
    for z in (12, 13):
        t = tile_of(sample_db, MIXED, z)
        feats = features(get_tile(client, _url("parcels", t)).content, "parcels")
        px2 = pixel_size(z) ** 2
        big = {r[0] for r in sql_rows(
            sample_db, "SELECT id FROM parcels WHERE ST_Area(geom_3857) >= %s AND "
                       "ST_Area(ST_Intersection(geom_3857, ST_TileEnvelope(%s, %s, %s))) > 0", px2, z, t.x, t.y)}
        small = {r[0] for r in sql_rows(
            sample_db, "SELECT id FROM parcels WHERE ST_Area(Box2D(geom_3857)::geometry) < %s AND "
                       "geom_3857 && ST_TileEnvelope(%s, %s, %s)", px2, z, t.x, t.y)}
        assert big, f"no parcel of >= 1 pixel at z{z}: the test data cannot show anything"
        assert big <= set(feats)
        assert not (small & set(feats))
        if z == 12:
            assert small, "z12 should drop sub-pixel parcels"


def test_feature_cap_keeps_the_largest_and_size_cap_holds(sample_db: str, settings: Settings) -> None:
    t = tile_of(sample_db, DENSE, 13)
    with tile_client(settings, sample_db, cache_enabled=False, max_features=25) as c:
        feats = features(get_tile(c, _url("parcels", t)).content, "parcels")
    assert len(feats) == 25
    areas = dict(sql_rows(sample_db, "SELECT id, ST_Area(Box2D(geom_3857)::geometry) FROM parcels WHERE "
                                     "geom_3857 && ST_TileEnvelope(13, %s, %s, margin => %s)", t.x, t.y, BUF))
    kept = sorted(areas[i] for i in feats)
    dropped = [a for i, a in areas.items() if i not in feats]
    assert min(kept) >= max(dropped) - 1e-6
    with tile_client(settings, sample_db, cache_enabled=False, max_tile_bytes=10_000) as c:
        r = get_tile(c, _url("parcels", tile_of(sample_db, DENSE, 15)))
    assert r.status_code == 200 and 0 < len(r.content) <= 10_000


def test_multi_layer_tile_concatenates_the_single_layer_tiles(client: TestClient, sample_db: str) -> None:
    t = tile_of(sample_db, "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c FROM auction_plots "
                           "ORDER BY id LIMIT 1) q", 14)
    r = get_tile(client, f"/tiles/{t.z}/{t.x}/{t.y}.mvt?layers=parcels,auction_plots,admin_units")
    assert r.status_code == 200
    for layer in ("parcels", "auction_plots", "admin_units"):
        single = get_tile(client, _url(layer, t))
        assert features(r.content, layer) == features(single.content if single.status_code == 200 else b"", layer)
    assert features(r.content, "auction_plots")
    # a layer outside its zooms is left out of a multi-layer tile; alone it is a 404
    t9 = tile_of(sample_db, DENSE, 9)
    r9 = get_tile(client, f"/tiles/9/{t9.x}/{t9.y}.mvt?layers=parcels,admin_units")
    assert r9.status_code == 200 and "parcels" not in features(r9.content, "parcels") and \
        features(r9.content, "admin_units")
    p9 = get_tile(client, _url("parcels", t9))
    assert p9.status_code == 404 and p9.headers["content-type"] == "application/problem+json"


def test_property_filters(client: TestClient, sample_db: str) -> None:
    t = tile_of(sample_db, DENSE, 14)
    base = features(get_tile(client, _url("parcels", t)).content, "parcels")
    status = sorted({p["status"] for p in base.values()})[0]
    only = features(get_tile(client, _url("parcels", t) + f"?status={status}").content, "parcels")
    assert only and only == {i: p for i, p in base.items() if p["status"] == status}
    code = next(iter(base.values()))["land_use_codes"].split(",")[0]
    member = features(get_tile(client, _url("parcels", t) + f"?land_use_codes={code}").content, "parcels")
    assert member == {i: p for i, p in base.items() if code in p["land_use_codes"].split(",")}


@pytest.mark.parametrize(("path", "status", "needle"), [
    ("/collections/parcels/tiles/WebMercatorQuad/15/0/40000", 400, "15/0/40000"),
    ("/collections/parcels/tiles/WebMercatorQuad/25/0/0", 400, "z=25"),
    ("/collections/parcels/tiles/WebMercatorQuad/-1/0/0", 400, "z=-1"),
    ("/collections/parcels/tiles/WebMercatorQuad/15/x/0", 400, "x"),
    ("/collections/parcels/tiles/WebMercatorQuad/9/400/240", 404, "10-22"),
    ("/collections/nothing/tiles/WebMercatorQuad/15/0/0", 404, "nothing"),
    ("/collections/parcels/tiles/NoSuchTMS/15/0/0", 404, "NoSuchTMS"),
    ("/collections/parcels/tiles/WebMercatorQuad/15/0/0?status=bogus", 400, "bogus"),
    ("/collections/parcels/tiles/WebMercatorQuad/15/0/0?stauts=managed", 400, "stauts"),
    ("/collections/parcels/tiles/WebMercatorQuad/15/0/0?map_sheet=abc", 400, "map_sheet"),
    ("/tiles/15/0/0.mvt?layers=parcels,nothing", 404, "nothing"),
    ("/tiles/15/0/0.mvt?layers=,", 400, "layers"),
])
def test_bad_input_gives_problem_json(client: TestClient, path: str, status: int, needle: str) -> None:
    r = get_tile(client, path + ("&" if "?" in path else "?") + "lang=en")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and needle in body["detail"]
    vi = get_tile(client, path)
    assert vi.json()["detail"] != body["detail"] or needle in vi.json()["detail"]
    assert vi.headers["content-language"] == "vi"


def test_empty_tile_is_204(client: TestClient) -> None:
    r = get_tile(client, "/collections/parcels/tiles/WebMercatorQuad/15/0/0")
    assert r.status_code == 204 and r.content == b""


def test_cql2_filters(client: TestClient, sample_db: str) -> None:
    t = tile_of(sample_db, DENSE, 16)
    base = features(get_tile(client, _url("parcels", t)).content, "parcels")
    assert len(base) > 5
    status = sorted({p["status"] for p in base.values()})[0]
    area = sorted(p["area_m2"] for p in base.values())[len(base) // 2]
    text = f"area_m2 > {area} AND status <> '{status}'"
    r = client.get(_url("parcels", t), params={"filter": text}, headers={"accept-encoding": "identity"})
    expected = {i: p for i, p in base.items() if p["area_m2"] > area and p["status"] != status}
    got = features(r.content, "parcels") if r.status_code == 200 else {}
    assert got == expected and (expected or r.status_code == 204)
    as_json = {"op": "and", "args": [{"op": ">", "args": [{"property": "area_m2"}, area]},
                                     {"op": "<>", "args": [{"property": "status"}, status]}]}
    import json

    rj = client.get(_url("parcels", t), params={"filter": json.dumps(as_json), "filter-lang": "cql2-json"},
                    headers={"accept-encoding": "identity"})
    assert rj.status_code == r.status_code and rj.content == r.content
    # CQL2 and property filters together
    both = client.get(_url("parcels", t), params={"filter": f"area_m2 > {area}", "status": status},
                      headers={"accept-encoding": "identity"})
    assert features(both.content, "parcels") == {i: p for i, p in base.items()
                                                  if p["area_m2"] > area and p["status"] == status}


@pytest.mark.parametrize(("params", "needle"), [
    ({"filter": "status = "}, "CQL2"),
    ({"filter": "nope = 1"}, "nope"),
    ({"filter": "{not json", "filter-lang": "cql2-json"}, "JSON"),
    ({"filter-lang": "cql2-text"}, "filter"),
])
def test_bad_cql2_gives_problem_json(client: TestClient, params: dict[str, str], needle: str) -> None:
    r = client.get("/collections/parcels/tiles/WebMercatorQuad/15/26000/15400", params={**params, "lang": "en"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert needle in r.json()["detail"]


def test_multi_layer_tiles_refuse_filters(client: TestClient) -> None:
    r = client.get("/tiles/15/26000/15400.mvt", params={"layers": "parcels", "filter": "status = 'leased'",
                                                        "lang": "en"})
    assert r.status_code == 400 and "filter" in r.json()["detail"]
    r = client.get("/tiles/15/26000/15400.mvt", params={"layers": "parcels", "status": "leased"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


def test_database_down_gives_503_problem(settings: Settings) -> None:
    """No database behind the app (nothing listens on port 1): a tile is a 503 problem+json, not a 500."""
    with tile_client(settings, "postgresql://postgres@127.0.0.1:1/nothing") as c:
        r = c.get("/collections/parcels/tiles/WebMercatorQuad/15/26000/15400?lang=en")
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        assert "database" in r.json()["detail"] and "5433" not in r.text
        assert c.get("/collections/parcels/tiles/WebMercatorQuad/15/26000/15400").status_code == 503
