"""datso_client's whole interface against a live server and the real PostGIS sample: reads in a VN-2000 alias CRS
(every feature once, one download and paged), officers' writes all or nothing (a bad row names its row and frame
label, nothing written; no key, nothing written), zonal statistics (covered pixels = the polygon's area in the
raster's CRS / pixel area; batch = per feature; band names = b-indexes), a lot's trace as frames (origins =
the growing areas' rows and shapes), lookup (= ST_Covers in SQL) and the bad inputs."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Polygon, box

from datso_client import Client, DatsoError, Trace
from gis.crs import transformer
from layers.accounts.auth import create_key
from layers.settings import get_imagery_settings
from tests.conftest import rows_removed_after, table_fingerprint

NDVI = "(b4-b3)/(b4+b3)"


@pytest.fixture(scope="module")
def imagery(tmp_path_factory: pytest.TempPathFactory, sample_db: str) -> Iterator[Any]:
    """The synthetic sample image registered in a folder of this module (the live server reads it per request)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DATSO_IMAGERY_DIR", str(tmp_path_factory.mktemp("client-imagery")))
    get_imagery_settings.cache_clear()
    from sample_data.imagery import register_sample_s2

    try:
        yield register_sample_s2(sample_db)
    finally:
        mp.undo()
        get_imagery_settings.cache_clear()


@pytest.fixture(scope="module")
def officer(sample_db: str) -> str:
    return create_key(sample_db, f"client-officer-{uuid.uuid4().hex[:8]}", "officer")


@pytest.fixture(scope="module", autouse=True)
def _leave_the_sample_as_found(sample_db: str) -> Iterator[None]:
    with rows_removed_after(sample_db):
        yield


# -- reads ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("paged", [False, True])
def test_read_vn2000_alias_every_feature_once(live_server: Any, conn: psycopg.Connection, paged: bool) -> None:
    gdf = Client(live_server.url).read("growing_areas", crs="vn2000:ben-tre", paged=paged, page_size=37,
                                       where={"status": "active"})
    ids = [i for (i,) in conn.execute("SELECT id FROM growing_areas WHERE status = 'active' ORDER BY id")]
    assert len(ids) > 37 and gdf.index.is_unique
    assert sorted(int(i) for i in gdf.index) == ids
    assert gdf.crs.to_epsg() == 9210
    # one area's shape, projected independently with the official VN-2000 shift, is where the client says
    fid = ids[len(ids) // 2]
    wkb = conn.execute("SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM growing_areas WHERE id = %s",
                       (fid,)).fetchone()[0]
    p = shapely.from_wkb(bytes(wkb))
    x, y = transformer("EPSG:4326", "EPSG:9210").transform(p.x, p.y)     # the official Decision 05/2007 shift
    assert gdf.geometry[gdf.index.astype(int) == fid].iloc[0].distance(shapely.Point(x, y)) < 1.0
    # the frame carries the service's definition (/crs): back to WGS 84 with it is exact (plain EPSG:9210: 0.8 m)
    assert gdf.crs.is_bound
    wkb = conn.execute("SELECT ST_AsBinary(geom) FROM growing_areas WHERE id = %s", (fid,)).fetchone()[0]
    back = gdf[gdf.index.astype(int) == fid].to_crs(4326).geometry.iloc[0]
    assert shapely.hausdorff_distance(back, shapely.from_wkb(bytes(wkb))) < 1e-8     # degrees: ~1 mm


def test_crs_definitions_give_the_official_shift(live_server: Any) -> None:
    """`/crs` publishes every CRS the service takes with its WKT2; VN-2000 is bound to WGS 84 by the official
    Helmert, so a client reprojecting with it agrees with the service to 1 mm, where plain EPSG:9210 is ~0.8 m
    off. `Client.crs` is that definition, with `to_epsg()` answering the code."""
    import json

    from layers.query.selection import published_crs

    with urllib.request.urlopen(f"{live_server.url}/crs", timeout=60) as r:  # noqa: S310 - the test server
        listed = json.loads(r.read())["crs"]
    assert [d["uri"] for d in listed] == [c.uri for c in published_crs()]
    api = Client(live_server.url, lang="en")
    official = api.crs("vn2000:ben-tre")
    assert official.is_bound and official.to_epsg() == 9210 and api.crs("EPSG:9210").to_epsg() == 9210
    lon, lat = 106.3, 10.2
    want = transformer("EPSG:4326", "EPSG:9210").transform(lon, lat)
    got = Transformer.from_crs(CRS.from_epsg(4326), official, always_xy=True).transform(lon, lat)
    plain = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_epsg(9210), always_xy=True).transform(lon, lat)
    assert math.dist(got, want) < 1e-3 and math.dist(plain, want) > 0.5
    assert not api.crs("EPSG:4326").is_bound
    for bad, status in (("crs=EPSG:2154", 400), ("crs=nope", 400), ("other=1", 400)):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{live_server.url}/crs?{bad}&lang=en", timeout=60)  # noqa: S310
        assert info.value.code == status and info.value.headers["content-type"].startswith("application/problem")
    with pytest.raises(DatsoError) as err:
        api.crs("EPSG:2154")
    assert err.value.status == 400 and "crs" in str(err.value)


# -- writes --------------------------------------------------------------------------------------------------

def _free_squares(dsn: str, n: int, side_m: float = 120.0) -> list[Polygon]:
    """`n` squares, each inside a 2025 commune and at least ~100 m from every growing area and parcel."""
    out: list[Polygon] = []
    with psycopg.connect(dsn) as c:
        communes = c.execute("SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p "
                             "FROM admin_units WHERE level = 'commune' AND scheme = '2025') s ORDER BY code").fetchall()
        for code, x, y in communes:
            for k in range(9):
                lon, lat = x + 0.004 * (k % 3 - 1), y + 0.004 * (k // 3 - 1)
                kx = 111_320.0 * math.cos(math.radians(lat))
                sq = box(lon, lat, lon + side_m / kx, lat + side_m / 110_574.0)
                ok = c.execute(
                    "SELECT ST_Within(ST_Buffer(%(g)s::geometry, 0.002), a.geom) AND NOT EXISTS (SELECT 1 FROM "
                    "growing_areas t WHERE ST_DWithin(t.geom, %(g)s::geometry, 0.001)) AND NOT EXISTS (SELECT 1 "
                    "FROM parcels t WHERE ST_DWithin(t.geom, %(g)s::geometry, 0.001)) "
                    "FROM admin_units a WHERE a.code = %(c)s AND a.scheme = '2025'",
                    {"g": f"SRID=4326;{sq.wkt}", "c": code}).fetchone()
                if ok and ok[0]:
                    out.append(sq)
                    break
            if len(out) == n:
                return out
    raise AssertionError("no free place in the sample province")


def test_write_all_or_nothing(live_server: Any, sample_db: str, officer: str) -> None:
    owner = f"Hộ thử {uuid.uuid4().hex[:6]}"
    squares = _free_squares(sample_db, 3)
    gdf = gpd.GeoDataFrame({"crop": ["pomelo", "chuoi", "durian"], "owner": [owner] * 3,
                            "markets": ["VN,CN"] * 3}, geometry=squares, crs="EPSG:4326").to_crs("EPSG:9210")
    gdf.index = ["thua-a", "thua-b", "thua-c"]
    api = Client(live_server.url, key=officer, lang="en")
    before = table_fingerprint(sample_db, "growing_areas")
    with pytest.raises(DatsoError) as info:
        api.write("growing_areas", gdf)
    err = info.value
    assert err.status == 422 and err.rows == [2] and err.index == ["thua-b"]
    assert "row 2" in err.detail and "crop" in err.detail and "chuoi" in err.detail
    assert {(e["row"], e["field"]) for e in err.errors} == {(2, "crop")}
    assert table_fingerprint(sample_db, "growing_areas") == before
    # no key: refused before anything is read, nothing written
    with pytest.raises(DatsoError) as info:
        Client(live_server.url, lang="en").write("growing_areas", gdf.assign(crop="pomelo"))
    assert info.value.status == 401
    assert table_fingerprint(sample_db, "growing_areas") == before
    # a layer without imports: a clear 404 naming it, nothing written
    with pytest.raises(DatsoError) as info:
        api.write("parcels", gdf)
    assert info.value.status == 404 and "parcels" in info.value.detail
    # fixed: every row written once, as drafts, where the VN-2000 frame put them
    report = api.write("growing_areas", gdf.assign(crop="pomelo"))
    assert report["rows_read"] == 3 and report["rows_written"] == 3
    with psycopg.connect(sample_db) as c:
        rows = c.execute("SELECT status, crop, ST_AsBinary(geom) FROM growing_areas WHERE owner = %s ORDER BY id",
                         (owner,)).fetchall()
    assert [(s, crop) for s, crop, _ in rows] == [("draft", "pomelo")] * 3
    # a file in EPSG:9210 is read with the official Decision 05/2007 shift: back in 9210 by that same shift,
    # the stored shapes are the frame's to the millimetre
    official = transformer("EPSG:4326", "EPSG:9210")
    for (_, _, wkb), sent in zip(rows, gdf.geometry, strict=True):
        got = shapely.transform(shapely.from_wkb(bytes(wkb)),
                                lambda xy: np.column_stack(official.transform(xy[:, 0], xy[:, 1])))
        assert got.symmetric_difference(sent).area < 0.1 and got.hausdorff_distance(sent) < 0.001   # m², m
    # a frame as `read` gives it (lists in array fields) with the cooperative's own column names, mapped
    other = gpd.GeoDataFrame({"cay_trong": ["coconut"], "chu_vuon": [owner + " bis"], "markets": [["VN", "JP"]]},
                             geometry=_free_squares(sample_db, 1), crs="EPSG:4326")   # clear of the drafts too
    report = api.write("growing_areas", other, field_map={"cay_trong": "crop", "chu_vuon": "owner"})
    assert report["rows_written"] == 1
    with psycopg.connect(sample_db) as c:
        assert c.execute("SELECT crop, markets FROM growing_areas WHERE owner = %s",
                         (owner + " bis",)).fetchall() == [("coconut", ["VN", "JP"])]
    # a WGS 84 frame the analyst reprojects with the service's definition (Client.crs) lands where it was, to
    # ~1 mm (with plain to_crs("EPSG:9210") it would land ~0.8 m away)
    here = _free_squares(sample_db, 1)
    local = gpd.GeoDataFrame({"crop": ["pomelo"], "owner": [owner + " ter"]}, geometry=here, crs="EPSG:4326")
    assert api.write("growing_areas", local.to_crs(api.crs("vn2000:ben-tre")))["rows_written"] == 1
    with psycopg.connect(sample_db) as c:
        (wkb,) = c.execute("SELECT ST_AsBinary(geom) FROM growing_areas WHERE owner = %s", (owner + " ter",)).fetchone()
    assert shapely.hausdorff_distance(shapely.from_wkb(bytes(wkb)), here[0]) < 1e-8
    with pytest.raises(ValueError, match="CRS"):
        api.write("growing_areas", gpd.GeoDataFrame({"crop": ["rice"]}, geometry=squares[:1]))
    # the same squares again overlap the drafts just written: refused, every row named, nothing more written
    after = table_fingerprint(sample_db, "growing_areas")
    with pytest.raises(DatsoError) as info:
        api.write("growing_areas", gdf.assign(crop="pomelo"))
    assert info.value.status == 409 and 1 in info.value.rows and info.value.index[0] == "thua-a"
    assert table_fingerprint(sample_db, "growing_areas") == after


# -- zonal statistics ----------------------------------------------------------------------------------------

def test_stats_selection_and_one_feature(live_server: Any, conn: psycopg.Connection, imagery: Any) -> None:
    api = Client(live_server.url, lang="en")
    df = api.stats("growing_areas", "sample_s2", expression="(nir-red)/(nir+red)", where={"crop": "durian"},
                   filter="area_m2 > 20000")
    ids = [i for (i,) in conn.execute(
        "SELECT id FROM growing_areas WHERE crop = 'durian' AND area_m2 > 20000 ORDER BY id")]
    assert ids and list(df.index) == ids
    assert list(df.columns) == ["count", "mean", "min", "max", "std", "p10", "p50", "p90"]
    assert df.attrs["measure"] == NDVI and df.attrs["synthetic"] is True and df.attrs["crs"] == "EPSG:32648"
    assert ((df["min"] <= df["mean"]) & (df["mean"] <= df["max"]) & (df["p10"] <= df["p90"])).all()
    assert df["mean"].between(-1, 1).all()
    # covered pixels = the polygon's area in the raster's CRS over one pixel's area (independent: pyproj+shapely)
    to_utm = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_wkt(imagery.crs_wkt), always_xy=True)
    pixel = imagery.resolution[0] * imagery.resolution[1]
    for fid in ids[:5]:
        wkb = conn.execute("SELECT ST_AsBinary(geom) FROM growing_areas WHERE id = %s", (fid,)).fetchone()[0]
        local = shapely.transform(shapely.from_wkb(bytes(wkb)),
                                  lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
        assert df.loc[fid, "count"] == pytest.approx(local.area / pixel, rel=1e-6)
        one = api.stats("growing_areas", "sample_s2", fid, expression=NDVI)
        assert list(one.index) == [fid]
        for col in df.columns:
            assert one.loc[fid, col] == pytest.approx(df.loc[fid, col], rel=1e-9, abs=1e-12)
    # a band by name = by index; features=True: the features themselves, with their shapes, joined
    by_name = api.stats("growing_areas", "sample_s2", band="nir", where={"crop": "durian"}, features=True)
    by_index = api.stats("growing_areas", "sample_s2", band=4, where={"crop": "durian"})
    assert isinstance(by_name, gpd.GeoDataFrame) and by_name.crs.is_geographic
    assert sorted(int(i) for i in by_name.index) == sorted(by_index.index)
    assert set(by_name["crop"]) == {"durian"} and by_name.geometry.notna().all()
    assert by_name["mean"].to_numpy() == pytest.approx(by_index.loc[by_name.index.astype(int), "mean"].to_numpy())


@pytest.mark.parametrize(("call", "status", "words"), [
    (lambda a: a.stats("nope", "sample_s2"), 404, ["nope"]),
    (lambda a: a.stats("growing_areas", "no_such_raster"), 404, ["no_such_raster"]),
    (lambda a: a.stats("growing_areas", "sample_s2", filter="nope > 1"), 400, ["nope"]),
    (lambda a: a.stats("growing_areas", "sample_s2", expression="(b9-b3)/(b9+b3)"), 400, ["expression", "b9"]),
    (lambda a: a.stats("growing_areas", "sample_s2", expression="(swir-red)"), 400, ["expression"]),
    (lambda a: a.stats("growing_areas", "sample_s2", band=7), 400, ["band"]),
    (lambda a: a.stats("growing_areas", "sample_s2", 999_999_999), 404, []),
    (lambda a: a.read("growing_areas", filter="crop = "), 400, ["CQL2"]),
    (lambda a: a.trace("KHONG-CO-LO-NAY"), 404, ["KHONG-CO-LO-NAY"]),
    (lambda a: a.lookup(200.0, 10.0), 400, ["lon"]),
    (lambda a: a.lookup(106.3, 10.2, crs="EPSG:2154"), 400, ["crs"]),
])
def test_bad_inputs_carry_the_problem(live_server: Any, imagery: Any, call: Any, status: int,
                                      words: list[str]) -> None:
    with pytest.raises(DatsoError) as info:
        call(Client(live_server.url, lang="en"))
    assert info.value.status == status
    assert info.value.problem.get("status") == status and info.value.detail
    for w in words:
        assert w in info.value.detail


# -- trace and lookup ----------------------------------------------------------------------------------------

def test_trace_frames(live_server: Any, conn: psycopg.Connection) -> None:
    lot, gtin, origin_codes = conn.execute(
        "SELECT lot_number, gtin, origin_codes FROM trace_lots WHERE cardinality(origin_codes) > 0 "
        "AND packing_facility_code IS NULL ORDER BY lot_number LIMIT 1").fetchone()
    t = Client(live_server.url).trace(lot, gtin=gtin)
    assert isinstance(t, Trace) and t.lot["lot"] == lot and t.lot["gtin"] == gtin
    assert sorted(t.origins["code"]) == sorted(origin_codes)
    assert t.origins.crs.is_geographic
    for row in t.origins.itertuples():   # the trace draws shapes simplified to 0.00003° (about 3 m)
        wkb = conn.execute("SELECT ST_AsBinary(geom) FROM growing_areas WHERE code = %s", (row.code,)).fetchone()[0]
        truth = shapely.from_wkb(bytes(wkb))
        assert row.geometry.hausdorff_distance(truth) < 0.00004
        assert row.geometry.symmetric_difference(truth).area / truth.area < 0.01
    # the lot at depth 0, the lots after it at positive depths, each of them a registered lot (SQL)
    lots = t.lots
    assert (lots["depth"] == 0).sum() == 1 and lots.loc[lots["depth"] == 0, "lot"].iloc[0] == lot
    known = {r for (r,) in conn.execute("SELECT lot_number FROM trace_lots")}
    forward_lots = set(t.forward["lot"].dropna()) if "lot" in t.forward else set()
    assert forward_lots and forward_lots <= known and (t.forward["depth"] > 0).all()
    assert len(t.events) >= 1 and {"eventID", "bizStep"} <= set(t.events.columns)
    assert set(t.packing_houses["code"]) <= {r for (r,) in conn.execute("SELECT code FROM packing_facilities")}


def test_lookup_matches_sql(live_server: Any, conn: psycopg.Connection) -> None:
    fid, code, lon, lat = conn.execute(
        "SELECT id, code, ST_X(p), ST_Y(p) FROM (SELECT id, code, ST_PointOnSurface(geom) p FROM growing_areas "
        "WHERE status = 'active' ORDER BY id LIMIT 1) s").fetchone()
    here = Client(live_server.url).lookup(lon, lat)
    assert here["inside"] is True
    assert fid in [g["id"] for g in here["growing_areas"]]
    assert code in [g["properties"]["code"] for g in here["growing_areas"]]
    commune = conn.execute("SELECT code FROM admin_units WHERE level = 'commune' AND scheme = '2025' AND "
                           "ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))", (lon, lat)).fetchone()[0]
    assert here["commune"]["code"] == commune
    # the same point in VN-2000 TM-3 metres
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:9210", always_xy=True).transform(lon, lat)
    assert Client(live_server.url).lookup(x, y, crs="EPSG:9210")["commune"]["code"] == commune
    off = Client(live_server.url).lookup(100.0, 20.0)
    assert off["inside"] is False and off["growing_areas"] == []



@pytest.mark.parametrize(("layer", "field"), [("auction_plots", "parcel_ids"), ("growing_areas", "markets"),
                                              ("trace_lots", "origin_codes")])
def test_arrays_are_lists_on_both_paths(live_server: Any, conn: psycopg.Connection, layer: str, field: str) -> None:
    api = Client(live_server.url)
    one, paged = api.read(layer), api.read(layer, paged=True, page_size=500)
    truth = dict(conn.execute(f"SELECT id, {field} FROM {layer}").fetchall())
    for frame in (one, paged):
        got = {int(i): v for i, v in frame[field].items()}
        assert got == {i: (list(v) if v is not None else None) for i, v in truth.items()}


def test_read_above_the_download_ceiling_follows_pages(sample_db: str, settings: Any,
                                                       conn: psycopg.Connection) -> None:
    """A service whose one-download ceiling is below the selection (413): the client pages instead, every
    feature once, the CRS kept."""
    from api.app import create_app
    from layers.settings import ApiSettings
    from tests.conftest import LiveServer, free_port

    app = create_app(settings=settings, api_settings=ApiSettings(download_max_features=100), dsn=sample_db)
    with LiveServer(app, free_port()) as srv:
        with pytest.raises(urllib.error.HTTPError) as info:     # the ceiling is real
            urllib.request.urlopen(f"{srv.url}/collections/auction_plots/items?f=fgb", timeout=60)  # noqa: S310
        assert info.value.code == 413
        gdf = Client(srv.url).read("auction_plots", crs="EPSG:9209")
    ids = [i for (i,) in conn.execute("SELECT id FROM auction_plots ORDER BY id")]
    assert len(ids) > 100 and gdf.index.is_unique and sorted(int(i) for i in gdf.index) == ids
    assert gdf.crs.to_epsg() == 9209


def test_stats_above_the_ceiling_come_in_pages(live_server: Any, sample_db: str, conn: psycopg.Connection,
                                               imagery: Any) -> None:
    """Above DATSO_RASTER_STATS_MAX_FEATURES the whole selection is a 413 that says how to page; the service's
    `limit`/`offset` pages give every feature once in id order with `next` links; the client follows them, and its
    table equals the in-process statistics of the whole layer."""
    import json

    from layers.catalog.registry import get_layer
    from layers.query.zonal import What, fetch_features, zonal

    ceiling = 40
    mp = pytest.MonkeyPatch()
    mp.setenv("DATSO_RASTER_STATS_MAX_FEATURES", str(ceiling))
    get_imagery_settings.cache_clear()
    base = f"{live_server.url}/collections/growing_areas/stats?raster=sample_s2&band=4"
    try:
        ids = [i for (i,) in conn.execute("SELECT id FROM growing_areas ORDER BY id")]
        assert len(ids) > 2 * ceiling
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}&lang=en", timeout=60)  # noqa: S310 - the test server
        assert info.value.code == 413 and "limit=" in json.loads(info.value.read())["detail"]
        url: str | None = f"{base}&limit={ceiling}"
        paged: list[int] = []
        pages = 0
        while url is not None:
            with urllib.request.urlopen(url, timeout=120) as r:  # noqa: S310
                doc = json.loads(r.read())
            assert doc["numberReturned"] == len(doc["features"]) <= ceiling
            paged += [f["id"] for f in doc["features"]]
            url = next((ln["href"] for ln in doc["links"] if ln["rel"] == "next"), None)
            pages += 1
        assert paged == ids and pages == math.ceil(len(ids) / ceiling)
        for bad, param in (("limit=0", "limit"), (f"limit={ceiling + 1}", "limit"), ("limit=abc", "limit"),
                           ("offset=5", "offset"), ("limit=5&offset=-1", "offset")):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(f"{base}&{bad}&lang=en", timeout=60)  # noqa: S310
            assert info.value.code == 400, bad
            assert param in json.loads(info.value.read())["detail"], bad
        df = Client(live_server.url).stats("growing_areas", "sample_s2", band=4, page_size=ceiling)
    finally:
        mp.undo()
        get_imagery_settings.cache_clear()
    assert list(df.index) == ids
    whole_ids, geoms, more = fetch_features(sample_db, get_layer("growing_areas"), None, 1_000_000)
    truth = {r["id"]: r for r in zonal(imagery, whole_ids, geoms, What(band=4))}
    assert not more and set(truth) == set(ids)
    for fid in ids:
        for col in ("count", "mean", "max"):
            want = truth[fid][col]
            assert (want is None and math.isnan(df.loc[fid, col])) or df.loc[fid, col] == pytest.approx(want, rel=1e-9)
