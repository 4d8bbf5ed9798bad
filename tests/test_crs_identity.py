"""VN-2000 keeps its EPSG identity in every output (GeoDataFrame `.crs`, GeoPackage, Shapefile `.prj`,
FlatGeobuf, GeoJSON `crs` member, JSON-FG `coordRefSys`, OAPIF through GDAL) while its coordinates come from
the official Decision 05/2007 transformation: checked with pyproj, PostGIS's ST_Transform, GDAL 3.6 (Debian
`ogrinfo`, `gdaltransform`) and GDAL 3.12 (pyogrio). Also `read_layer(filter=, bbox=, datetime=, crs=)` and its
errors, and an ESRI-style VN-2000 `.prj` recognised on import."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import CRS, Geod, Transformer

from gis.crs import REGISTRY, frame_crs, get_crs, output_crs, postgis_proj4, prj_wkt, transformer
from gis.io import read_vector
from layers.analysis import ReadLayerError, read_layer
from layers.query.exporter import export_layer

ZONE = get_crs("EPSG:9210")
URI_9210 = "http://www.opengis.net/def/crs/EPSG/0/9210"
TOWGS84_TEXT = "TOWGS84[-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278]"
GEOD = Geod(ellps="WGS84")
FILTER = "status = 'leased' AND area_m2 > 500"


def max_metres(a: np.ndarray, b: np.ndarray) -> float:
    """Largest geodesic distance (m) between two (n, 2) lon/lat coordinate arrays."""
    _, _, d = GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    return float(np.max(np.abs(d))) if len(d) else 0.0


def db_geoms(dsn: str, sql: str, srid: int, *args: Any) -> dict[int, shapely.Geometry]:
    with psycopg.connect(dsn) as c:
        rows = c.execute(f"SELECT id, ST_AsBinary(ST_Transform(geom, {int(srid)})) FROM parcels WHERE {sql}",
                         args or None).fetchall()
    return {int(r[0]): shapely.from_wkb(bytes(r[1])) for r in rows}


def same_coords(got: dict[int, shapely.Geometry], want: dict[int, shapely.Geometry], tol: float) -> None:
    assert set(got) == set(want) and want
    for k, g in want.items():
        assert shapely.hausdorff_distance(got[k], g) < tol, k


def ogrinfo(path: str | Path, *extra: str) -> str:
    out = subprocess.run(["ogrinfo", "-so", "-al", "-ro", *extra, str(path)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


# -- one definition ---------------------------------------------------------------------------------------

def test_one_definition_serves_pyproj_files_and_postgis(conn: psycopg.Connection) -> None:
    """For every VN-2000 CRS: the file/GeoDataFrame CRS (EPSG code bound to the official Helmert), the PROJ
    string and PostGIS's custom SRID give the same WGS 84 position (< 1 mm), and the EPSG code is named."""
    for d in REGISTRY:
        if not d.vn2000:
            continue
        assert frame_crs(d).to_epsg() == d.epsg
        out = output_crs(d)
        assert out.is_bound and out.source_crs is not None and out.source_crs.to_epsg() == d.epsg
        wkt = prj_wkt(d)
        assert TOWGS84_TEXT in wkt and wkt.endswith(f'AUTHORITY["EPSG","{d.epsg}"]]')
        # points around the zone's meridian (or Vietnam for the geographic and UTM CRSs)
        lon0 = d.central_meridian or 106.0
        lonlat = np.array([[lon0 - 0.4, 9.2], [lon0, 10.4], [lon0 + 0.6, 16.1], [lon0 + 0.2, 21.7]])
        x, y = transformer("OGC:CRS84", d.key).transform(lonlat[:, 0], lonlat[:, 1])
        # compared one way (grid -> WGS 84): a 2D Helmert there and back is itself ~1 mm off at 21.7 N
        lonlat = np.column_stack(transformer(d.key, "OGC:CRS84").transform(x, y))
        via_out = Transformer.from_crs(out, "OGC:CRS84", always_xy=True).transform(x, y)
        via_frame = Transformer.from_crs(frame_crs(d), "OGC:CRS84", always_xy=True).transform(x, y)
        assert max_metres(np.column_stack(via_out), lonlat) < 0.001, d.key
        assert max_metres(np.column_stack(via_frame), lonlat) < 0.001, d.key
        pts = []
        for xi, yi in zip(x, y, strict=True):
            row = conn.execute("SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), %s), 4326) p",
                               [float(xi), float(yi), d.srid]).fetchone()
            assert row is not None
            pts.append(row)
        assert max_metres(np.array(pts), lonlat) < 0.001, d.key
        row = conn.execute("SELECT auth_name, proj4text FROM spatial_ref_sys WHERE srid = %s", [d.srid]).fetchone()
        assert row is not None and row[0] == "DATSO"
        assert CRS(row[1].strip()).equals(CRS(postgis_proj4(d))) and row[1].split() == postgis_proj4(d).split(), d.key


# -- read_layer -------------------------------------------------------------------------------------------

def test_read_layer_names_epsg_and_matches_postgis(sample_db: str) -> None:
    gdf = read_layer("parcels", filter=FILTER, crs="EPSG:9210", dsn=sample_db)
    assert gdf.crs.to_epsg() == 9210
    want = db_geoms(sample_db, "status = 'leased' AND area_m2 > 500", ZONE.srid)
    same_coords(dict(zip(gdf.index, gdf.geometry, strict=True)), want, 0.001)
    # the frame's own CRS takes it back to WGS 84 with the official shift (not PROJ's pick, 0.8 m off)
    back = gdf.to_crs(4326)
    stored = db_geoms(sample_db, "status = 'leased' AND area_m2 > 500", 4326)
    for k, g in stored.items():
        a = shapely.get_coordinates(back.geometry[k])
        assert max_metres(a, shapely.get_coordinates(g)) < 0.001
    # aliases and OGC URIs name the same code; default lon/lat is EPSG:4326
    assert read_layer("parcels", filter=FILTER, crs="vn2000:ben-tre", dsn=sample_db).crs.to_epsg() == 9210
    assert read_layer("parcels", filter=FILTER, crs=URI_9210, dsn=sample_db).crs.to_epsg() == 9210
    assert read_layer("parcels", filter=FILTER, dsn=sample_db).crs.to_epsg() == 4326


def count(dsn: str, where: str, *args: Any) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute(f"SELECT count(*) FROM parcels WHERE {where}", args or None).fetchone()
    assert row is not None
    return int(row[0])


def test_read_layer_filter_bbox_where_datetime(sample_db: str) -> None:
    assert len(read_layer("parcels", filter=FILTER, dsn=sample_db)) == count(
        sample_db, "status = 'leased' AND area_m2 > 500")
    env = "ST_Intersects(geom, ST_MakeEnvelope(106.2, 9.9, 106.5, 10.2, 4326))"
    got = read_layer("parcels", bbox=(106.2, 9.9, 106.5, 10.2), where=["status=leased"], dsn=sample_db)
    assert len(got) == count(sample_db, f"{env} AND status = 'leased'") > 0
    assert len(read_layer("parcels", bbox="106.2,9.9,106.5,10.2", where="status='leased'", dsn=sample_db)) == len(got)
    # bbox in VN-2000 metres (bbox_crs), and CQL2 spatial + array operators
    x1, y1 = transformer("OGC:CRS84", "EPSG:9210").transform(106.2, 9.9)
    x2, y2 = transformer("OGC:CRS84", "EPSG:9210").transform(106.5, 10.2)
    in_tm3 = read_layer("parcels", bbox=(x1, y1, x2, y2), bbox_crs="EPSG:9210", dsn=sample_db)
    assert abs(len(in_tm3) - count(sample_db, env)) <= count(sample_db, env) // 50 + 2   # envelope edges differ
    arr = read_layer("parcels", filter="A_CONTAINS(land_use_codes, ('ONT')) AND S_INTERSECTS(geom, "
                     "BBOX(106.2, 9.9, 106.5, 10.2))", dsn=sample_db)
    assert len(arr) == count(sample_db, f"'ONT' = ANY(land_use_codes) AND {env}")
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT count(*) FROM auction_plots WHERE auction_date >= '2024-01-01'").fetchone()
    assert row is not None
    assert len(read_layer("auction_plots", datetime="2024-01-01/..", dsn=sample_db)) == row[0]


@pytest.mark.parametrize("kwargs, starts", [
    ({"where": ["status=sold"]}, "where: "),
    ({"where": ["status"]}, "where: "),
    ({"filter": "nope = 1"}, "filter: "),
    ({"filter": "status = "}, "filter: "),
    ({"bbox": "1,2,3"}, "bbox: "),
    ({"bbox": (106.5, 10.0, 106.2, 10.2)}, "bbox: "),
    ({"bbox": "106,10,107,11", "bbox_crs": "EPSG:2154"}, "bbox_crs: "),
    ({"bbox_crs": "EPSG:9210"}, "bbox_crs: "),
    ({"datetime": "2024-01-01"}, "datetime: "),     # parcels have no temporal field
    ({"crs": "EPSG:99999"}, "crs: "),
    ({"crs": "EPSG:4240"}, "crs: "),                 # another datum: refused, not guessed
])
def test_read_layer_errors_name_the_argument(sample_db: str, kwargs: dict[str, Any], starts: str) -> None:
    with pytest.raises(ReadLayerError) as info:
        read_layer("parcels", dsn=sample_db, **kwargs)
    assert isinstance(info.value, ValueError)
    name = starts.rstrip(": ")
    assert re.match(rf"{name}[: ]", str(info.value)) and re.match(rf"{name}[: ]", info.value.vi), str(info.value)
    assert "--" not in str(info.value) and "--" not in info.value.vi
    assert "sold" in str(info.value) or "where" not in starts or "status" in str(info.value)


def test_filter_vocabulary_is_checked_like_field_equals(client: TestClient, sample_db: str) -> None:
    """`filter` names an unknown code of a vocabulary field, in read_layer and in the API (as `?status=`)."""
    with pytest.raises(ReadLayerError, match=r"^filter: unknown value 'sold' for status; one of: managed"):
        read_layer("parcels", filter="status = 'sold'", dsn=sample_db)
    with pytest.raises(ReadLayerError, match=r"^filter: unknown value 'XYZ' for land_use_codes"):
        read_layer("parcels", filter="A_CONTAINS(land_use_codes, ('XYZ'))", dsn=sample_db)
    r = client.get("/collections/parcels/items", params={"filter": "status IN ('leased', 'sold')", "lang": "en"})
    assert r.status_code == 400 and "unknown value 'sold' for status" in r.json()["detail"]


def test_read_layer_unknown_layer(sample_db: str) -> None:
    with pytest.raises(ReadLayerError, match=r"^layer: .*parcels"):
        read_layer("parcel", dsn=sample_db)


# -- files: datso export and the API downloads -------------------------------------------------------------

def _check_file(path: Path, want: dict[int, shapely.Geometry], id_col: str = "id") -> None:
    """pyogrio (GDAL 3.12) and ogrinfo (GDAL 3.6) both name EPSG:9210; coordinates match PostGIS."""
    assert pyogrio.read_info(path)["crs"] == "EPSG:9210"
    df = pyogrio.read_dataframe(path, fid_as_index=True)
    assert df.crs.to_epsg() == 9210
    ids = df[id_col] if id_col in df.columns else df.index     # GeoJSON: the feature id is GDAL's FID
    same_coords(dict(zip(ids.astype(int), df.geometry, strict=True)), want, 0.001)
    info = ogrinfo(path)
    assert re.search(r'ID\["EPSG",9210\]\]\s*$', info.split("Data axis")[0].strip() + "\n") \
        or 'ID["EPSG",9210]]' in info, info[-3000:]


@pytest.mark.parametrize("fmt, name", [("gpkg", "p.gpkg"), ("shp", "p.zip"), ("shp", "dir"), ("geojson", "p.geojson")])
def test_export_names_epsg_9210(sample_db: str, tmp_path: Path, fmt: str, name: str) -> None:
    res = export_layer(sample_db, "parcels", fmt, tmp_path / name, crs="EPSG:9210", where=["status=leased"],
                       bbox="106.2,9.9,106.5,10.2")
    path = res.path
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            zf.extractall(tmp_path / "unz")
            prj = zf.read("parcels.prj").decode()
        path = tmp_path / "unz" / "parcels.shp"
        assert TOWGS84_TEXT in prj
    want = db_geoms(sample_db, "status = 'leased' AND ST_Intersects(geom, ST_MakeEnvelope(106.2,9.9,106.5,10.2,4326))",
                    ZONE.srid)
    _check_file(path, want)
    if fmt == "gpkg":
        with sqlite3.connect(path) as db:
            org, code, definition = db.execute(
                "SELECT s.organization, s.organization_coordsys_id, s.definition FROM gpkg_spatial_ref_sys s "
                "JOIN gpkg_contents c ON c.srs_id = s.srs_id WHERE c.table_name = 'parcels'").fetchone()
        assert (org.upper(), code) == ("EPSG", 9210) and TOWGS84_TEXT in definition


def test_prj_carries_towgs84_and_gives_the_official_shift(sample_db: str, tmp_path: Path) -> None:
    """The .prj is OGC WKT1 with TOWGS84 + AUTHORITY: GDAL 3.6 and 3.12 name EPSG:9210 and see the Helmert;
    a CRS built from the .prj (pyproj, as QGIS does) and GDAL told to use the file's definition
    (OGR_CT_PREFER_OFFICIAL_SRS_DEF=NO) reproduce datso's WGS 84 coordinates to < 1 mm."""
    res = export_layer(sample_db, "parcels", "shp", tmp_path / "out", crs="EPSG:9210", where=["status=leased"])
    shp = res.path
    prj = shp.with_suffix(".prj").read_text()
    assert prj.startswith('PROJCS["VN-2000 / TM-3 105-45",GEOGCS["VN-2000",DATUM["Vietnam_2000"')
    assert TOWGS84_TEXT in prj and prj.endswith('AUTHORITY["EPSG","9210"]]')
    assert pyogrio.read_info(shp)["crs"] == "EPSG:9210"                      # GDAL 3.12
    info = ogrinfo(shp)                                                    # GDAL 3.6
    assert "BOUNDCRS[" in info and "ABRIDGEDTRANSFORMATION[" in info and "-191.90441429" in info
    assert 'ID["EPSG",9210]' in info
    gdal_srs = subprocess.run(["gdalsrsinfo", "-o", "epsg", str(shp.with_suffix(".prj"))], capture_output=True,
                              text=True, timeout=60, check=True).stdout
    assert "EPSG:9210" in gdal_srs
    df = pyogrio.read_dataframe(shp)
    stored = db_geoms(sample_db, "status = 'leased'", 4326)
    first = {int(i): g for i, g in zip(df["id"], df.geometry, strict=True)}
    # oriented alike: a Shapefile stores outer rings clockwise, PostGIS as given (normalize would pick each ring's
    # start by its coordinates, which differ between the two CRSs)
    def cw(g: shapely.Geometry) -> shapely.Geometry:
        return shapely.orient_polygons(g, exterior_cw=True)
    tm = np.vstack([shapely.get_coordinates(cw(first[k])) for k in sorted(stored)])
    wgs = np.vstack([shapely.get_coordinates(cw(stored[k])) for k in sorted(stored)])
    from_prj = Transformer.from_crs(CRS.from_wkt(prj), "OGC:CRS84", always_xy=True).transform(tm[:, 0], tm[:, 1])
    assert max_metres(np.column_stack(from_prj), wgs) < 0.001
    sample = tm[:: max(1, len(tm) // 50)]
    out = subprocess.run(["gdaltransform", "--config", "OGR_CT_PREFER_OFFICIAL_SRS_DEF", "NO", "-s_srs",
                          str(shp.with_suffix(".prj")), "-t_srs", "EPSG:4326", "-output_xy"],
                         input="\n".join(f"{x:.6f} {y:.6f}" for x, y in sample), capture_output=True, text=True,
                         timeout=60, check=True).stdout
    got = np.array([[float(v) for v in line.split()] for line in out.strip().splitlines()])
    assert max_metres(got, wgs[:: max(1, len(tm) // 50)]) < 0.001
    # the whole file through ogr2ogr -t_srs EPSG:4326 (GDAL 3.6), told to use the file's definition
    wgs_file = tmp_path / "wgs.gpkg"
    subprocess.run(["ogr2ogr", "--config", "OGR_CT_PREFER_OFFICIAL_SRS_DEF", "NO", "-t_srs", "EPSG:4326", "-f",
                    "GPKG", str(wgs_file), str(shp)], capture_output=True, text=True, timeout=120, check=True)
    conv = pyogrio.read_dataframe(wgs_file)
    byid = {int(i): g for i, g in zip(conv["id"], conv.geometry, strict=True)}
    a = np.vstack([shapely.get_coordinates(cw(byid[k])) for k in sorted(stored)])
    assert max_metres(a, wgs) < 0.001


@pytest.mark.parametrize("fmt", ["gpkg", "fgb"])
def test_api_download_names_epsg_9210(client: TestClient, sample_db: str, tmp_path: Path, fmt: str) -> None:
    r = client.get("/collections/parcels/items", params={"f": fmt, "crs": URI_9210, "status": "leased",
                                                        "bbox": "106.2,9.9,106.5,10.2", "limit": 10000})
    assert r.status_code == 200, r.text
    assert r.headers["content-crs"] == f"<{URI_9210}>"
    path = tmp_path / f"dl.{fmt}"
    path.write_bytes(r.content)
    want = db_geoms(sample_db, "status = 'leased' AND ST_Intersects(geom, ST_MakeEnvelope(106.2,9.9,106.5,10.2,4326))",
                    ZONE.srid)
    _check_file(path, want)


# -- ESRI .prj on import ---------------------------------------------------------------------------------------

ESRI_PRJ = [
    # as circulated in Vietnam for ArcGIS: VN_2000 names, the decision's (coordinate-frame) rotation signs
    'PROJCS["VN_2000_TM3_105_45",GEOGCS["GCS_VN_2000",DATUM["D_Vietnam_2000",SPHEROID["WGS_1984",6378137.0,'
    '298.257223563],TOWGS84[-191.90441429,-39.30318279,-111.45032835,-0.00928836,0.01975479,-0.00427372,'
    '0.252906278]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",105.75],'
    'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]',
    # "TM3" on a WGS 84-named datum, only the TOWGS84 says VN-2000
    'PROJCS["TM3",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563],'
    'TOWGS84[-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",105.75],'
    'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]',
]


@pytest.mark.parametrize("prj", ESRI_PRJ)
def test_esri_prj_is_read_as_the_tm3_zone(tmp_path: Path, prj: str) -> None:
    lonlat = [(106.31, 10.02), (106.52, 10.24)]
    pts = [shapely.Point(*transformer("OGC:CRS84", "EPSG:9210").transform(x, y)) for x, y in lonlat]
    shp = tmp_path / "thua.shp"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"so_thua": [1, 2]}, geometry=pts, crs=ZONE.output), shp,
                            driver="ESRI Shapefile")
    shp.with_suffix(".prj").write_text(prj)           # replaced by a .prj as desktop software writes it
    res = read_vector(shp)
    assert res.source_crs.key == "EPSG:9210"
    got = np.array([[g.x, g.y] for g in res.geometry])
    assert max_metres(got, np.array(lonlat)) < 0.001


def test_datso_prj_round_trips_on_import(sample_db: str, tmp_path: Path) -> None:
    res = export_layer(sample_db, "parcels", "shp", tmp_path / "o", crs="EPSG:9210", where=["status=leased"])
    back = read_vector(res.path)
    assert back.source_crs.key == "EPSG:9210"
    stored = db_geoms(sample_db, "status = 'leased'", 4326)
    same_coords(dict(zip(back.frame["id"].astype(int), back.geometry, strict=True)), stored, 1e-8)


# -- GeoJSON and JSON-FG ----------------------------------------------------------------------------------------

def test_geojson_in_9210_carries_its_crs(client: TestClient, sample_db: str, tmp_path: Path) -> None:
    r = client.get("/collections/parcels/items", params={"crs": URI_9210, "status": "leased", "limit": 10000})
    assert r.status_code == 200
    body = r.json()
    assert body["crs"] == {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::9210"}}
    path = tmp_path / "p.geojson"
    path.write_bytes(r.content)
    gdf = gpd.read_file(path, fid_as_index=True)       # GDAL makes the integer feature id the FID
    assert gdf.crs.to_epsg() == 9210
    assert 'ID["EPSG",9210]' in ogrinfo(path)           # GDAL 3.6 too
    same_coords(dict(zip(gdf.index.astype(int), gdf.geometry, strict=True)),
                db_geoms(sample_db, "status = 'leased'", ZONE.srid), 0.001)
    fid = int(gdf.index[0])
    one = client.get(f"/collections/parcels/items/{fid}", params={"crs": URI_9210})
    assert one.json()["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::9210"
    (tmp_path / "one.geojson").write_bytes(one.content)
    assert gpd.read_file(tmp_path / "one.geojson").crs.to_epsg() == 9210
    # CRS84 stays plain RFC 7946; latitude-first CRSs get no member (GDAL would read them as lon/lat)
    assert "crs" not in client.get("/collections/parcels/items", params={"limit": 1}).json()
    assert "crs" not in client.get("/collections/parcels/items",
                                   params={"limit": 1, "crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}).json()


def test_jsonfg_items_and_item(client: TestClient, sample_db: str, tmp_path: Path) -> None:
    r = client.get("/collections/parcels/items", params={"f": "jsonfg", "crs": URI_9210, "status": "leased",
                                                        "limit": 10000})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.ogc.fg+json")
    doc = r.json()
    assert doc["coordRefSys"] == URI_9210 and doc["featureType"] == "parcels"
    assert any("json-fg" in c for c in doc["conformsTo"])
    assert all(f["geometry"] is None and f["place"]["type"] for f in doc["features"])
    path = tmp_path / "p.fg.json"
    path.write_bytes(r.content)
    df = pyogrio.read_dataframe(path, fid_as_index=True)       # GDAL 3.12's JSONFG driver
    assert pyogrio.read_info(path)["driver"] == "JSONFG"
    assert df.crs.to_epsg() == 9210
    same_coords(dict(zip(df.index.astype(int), df.geometry, strict=True)),
                db_geoms(sample_db, "status = 'leased'", ZONE.srid), 0.001)
    # time from the layer's temporal field; CRS84: geometry, no place
    r = client.get("/collections/auction_plots/items", params={"f": "jsonfg", "limit": 5})
    fg = r.json()
    assert fg["coordRefSys"].endswith("/OGC/1.3/CRS84")
    f0 = fg["features"][0]
    assert f0["place"] is None and f0["geometry"]["type"]
    assert f0["time"] == {"timestamp": f0["properties"]["auction_date"].replace("+00:00", "Z")}   # timestamptz
    one = client.get(f"/collections/auction_plots/items/{f0['id']}", params={"f": "jsonfg", "crs": URI_9210})
    assert one.status_code == 200 and one.json()["coordRefSys"] == URI_9210 and one.json()["place"]
    assert one.json()["time"] == f0["time"]
    # an interval layer: [valid_from, valid_to], ".." for a still-valid area; a date field stays a date
    areas = client.get("/collections/growing_areas/items", params={"f": "jsonfg", "limit": 50}).json()["features"]
    for f in areas:
        start, end = f["properties"]["valid_from"], f["properties"]["valid_to"]
        assert f["time"] == {"interval": [start, ".." if end is None else end]}
    lots = client.get("/collections/trace_lots/items", params={"f": "jsonfg", "limit": 5}).json()["features"]
    assert lots and all(f["time"] == ({"date": f["properties"]["pack_date"]} if f["properties"]["pack_date"] else None)
                        for f in lots)     # a harvest lot has no pack date: no time
    # offered as an alternate and by Accept
    links = client.get("/collections/parcels/items", params={"limit": 1}).json()["links"]
    assert any(lk["type"] == "application/vnd.ogc.fg+json" and lk["rel"] == "alternate" for lk in links)
    acc = client.get("/collections/parcels/items?limit=1", headers={"Accept": "application/vnd.ogc.fg+json"})
    assert acc.headers["content-type"].startswith("application/vnd.ogc.fg+json")


# -- live clients --------------------------------------------------------------------------------------------

_CHILD = """
import json, sys
import pyogrio
import geopandas
a = json.loads(sys.argv[1])
url = a.pop("url")
if a.pop("geopandas", False):     # downloads the URL itself, then GDAL reads the bytes
    df = geopandas.read_file(url, fid_as_index=True, **a)
else:
    df = pyogrio.read_dataframe(url, fid_as_index=True, **a)
print(json.dumps({"epsg": df.crs.to_epsg() if df.crs else None, "n": len(df),
                  "ids": [int(i) for i in df.index], "wkt": [g.wkt for g in df.geometry]}))
"""


def child(**kwargs: Any) -> Any:
    """GDAL in a child process (pyogrio holds the GIL during GDAL's HTTP calls: the in-process server would
    freeze)."""
    env = {**os.environ, "GDAL_HTTP_MAX_RETRY": "0"}
    out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(kwargs)], capture_output=True, text=True,
                         timeout=180, check=False, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def own_server(sample_db: str, settings: Any) -> Iterator[Any]:
    from conftest import LiveServer, free_port

    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


def test_pyogrio_oapif_crs_open_option_gives_9210(own_server: Any, sample_db: str) -> None:
    got = child(url=f"OAPIF:{own_server.url}/collections/parcels", CRS="EPSG:9210", where="status = 'leased'")
    assert got["epsg"] == 9210
    want = db_geoms(sample_db, "status = 'leased'", ZONE.srid)
    assert got["n"] == len(want)
    same_coords({i: shapely.from_wkt(w) for i, w in zip(got["ids"], got["wkt"], strict=True)}, want, 0.001)


def test_live_geojson_and_jsonfg_urls_read_as_9210(own_server: Any, sample_db: str) -> None:
    base = f"{own_server.url}/collections/parcels/items?status=leased&limit=10000&crs={URI_9210}"
    want = db_geoms(sample_db, "status = 'leased'", ZONE.srid)
    for url in (base, base + "&f=jsonfg"):
        got = child(url=url, geopandas=True)
        assert got["epsg"] == 9210, url
        same_coords({i: shapely.from_wkt(w) for i, w in zip(got["ids"], got["wkt"], strict=True)}, want, 0.001)
