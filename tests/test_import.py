"""`datso import`: every format on a real PostGIS (own scratch database), and bad input refused with the row
and field named and every table unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely
from pyproj import CRS, Transformer

from gis import encoding as enc
from gis.crs import get_crs
from gis.io import crs_metadata
from layers.ingest.importer import ImportOptions, ImportResult, import_file
from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster

try:
    from conftest import table_fingerprint
except ImportError:  # tests/ made a package
    from tests.conftest import table_fingerprint

ZONE = get_crs("vn2000:ben-tre")          # TM-3 105°45'
ADDRESS = "Số 12 ấp Phú Hưng, xã Phú Hưng, Bến Tre"
OWNER = "Hợp tác xã Dừa Thạnh Phú"


@pytest.fixture(scope="module")
def io_db(settings: Settings) -> Any:
    name = settings.db_name + "_import"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    dbmod.migrate(s)
    yield s.dsn()
    pgcluster.drop_database(s, name)


def tm_squares(n: int, sheet: int, x0: float = 560_000.0, y0: float = 1_128_000.0) -> list[shapely.Polygon]:
    """n 15 m squares on the Bến Tre TM-3 grid (VN-2000 metres), one row per map sheet."""
    return [shapely.box(x0 + 20 * i, y0 + 20 * sheet, x0 + 20 * i + 15, y0 + 20 * sheet + 15) for i in range(n)]


def parcels(n: int, sheet: int, **extra: Any) -> pd.DataFrame:
    df = pd.DataFrame({
        "commune_code": ["86001"] * n, "map_sheet": [sheet] * n, "parcel_no": list(range(1, n + 1)),
        "address": [ADDRESS] * n, "area_m2": [225.0] * n, "land_use_codes": ["ONT,CLN"] * n,
        "status": ["managed"] * n})
    for k, v in extra.items():
        df[k] = v
    return df


def write(df: pd.DataFrame, geoms: list[Any], path: Path, crs: str | None = None, **kw: Any) -> Path:
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=crs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Normalized/laundered field name")   # shp: 10-char names
        warnings.filterwarnings("ignore", message="'crs' was not provided")            # on purpose
        pyogrio.write_dataframe(gdf, path, **kw)
    return path


def fingerprints(dsn: str, table: str) -> tuple[Any, Any]:
    return table_fingerprint(dsn, table), table_fingerprint(dsn, "history")


def refused(dsn: str, table: str, path: Path, layer: str | None = None, **opts: Any) -> ImportResult:
    before = fingerprints(dsn, table)
    res = import_file(path, layer or table, dsn, ImportOptions(progress=False, user="tester", **opts))
    assert not res.ok and res.rows_written == 0
    assert fingerprints(dsn, table) == before
    return res


def imported(dsn: str, layer: str, path: Path, **opts: Any) -> ImportResult:
    res = import_file(path, layer, dsn, ImportOptions(progress=False, user="tester", **opts))
    assert res.ok, [i.describe("en") for i in res.errors]
    assert res.rows_written == res.rows_read > 0
    return res


def max_grid_error_mm(dsn: str, sheet: int, squares: list[shapely.Polygon]) -> float:
    """Distance between the stored parcels, taken back to the TM-3 grid by PostGIS (custom SRID, official
    parameters), and the input squares."""
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT parcel_no, ST_AsText(ST_Transform(geom, %s)) FROM parcels "
                         "WHERE commune_code = '86001' AND map_sheet = %s ORDER BY parcel_no",
                         [ZONE.srid, sheet]).fetchall()
    assert len(rows) == len(squares)
    return max(shapely.hausdorff_distance(shapely.from_wkt(w), squares[no - 1]) for no, w in rows) * 1000


def history_actors(dsn: str, table: str) -> set[str]:
    with psycopg.connect(dsn) as c:
        return {r[0] for r in c.execute("SELECT DISTINCT actor FROM history WHERE layer = %s", [table])}


# ------------------------------------------------------------------------------------------- happy paths
@pytest.mark.parametrize("legacy", ["cp1258", "tcvn3"])
def test_zipped_shapefile_legacy_encoding_detected(io_db: str, tmp_path: Path, legacy: str) -> None:
    sheet = 11 if legacy == "cp1258" else 12
    squares = tm_squares(5, sheet)
    df = parcels(5, sheet)
    df["address"] = [enc.encode(ADDRESS, legacy).decode("latin-1")] * 5     # raw legacy bytes in the DBF
    folder = tmp_path / "shp"
    folder.mkdir()
    write(df, squares, folder / "thua.shp", crs=crs_metadata(ZONE), encoding="ISO-8859-1")
    (folder / "thua.cpg").unlink(missing_ok=True)                           # no .cpg: must detect
    zpath = tmp_path / "thua.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)
    res = imported(io_db, "parcels", zpath)
    assert res.encoding == legacy and res.source_crs == "EPSG:9210"
    with psycopg.connect(io_db) as c:
        addrs = {r[0] for r in c.execute("SELECT address FROM parcels WHERE map_sheet = %s", [sheet])}
    assert addrs == {ADDRESS}
    assert max_grid_error_mm(io_db, sheet, squares) < 1.0
    assert "import:tester" in history_actors(io_db, "parcels")


def test_shapefile_cpg_honoured_and_encoding_option(io_db: str, tmp_path: Path) -> None:
    squares = tm_squares(3, 13)
    df = parcels(3, 13)
    df["address"] = [enc.encode(ADDRESS, "cp1258").decode("latin-1")] * 3
    shp = write(df, squares, tmp_path / "a.shp", crs=crs_metadata(ZONE), encoding="ISO-8859-1")
    (tmp_path / "a.cpg").write_text("1258")
    res = imported(io_db, "parcels", shp)
    assert res.encoding == "cp1258"
    # a TCVN3 file whose .cpg lies is fixed with --encoding
    df2 = parcels(3, 14)
    df2["address"] = [enc.encode(ADDRESS, "tcvn3").decode("latin-1")] * 3
    shp2 = write(df2, tm_squares(3, 14), tmp_path / "b.shp", crs=crs_metadata(ZONE), encoding="ISO-8859-1")
    (tmp_path / "b.cpg").write_text("UTF-8")
    imported(io_db, "parcels", shp2, encoding="tcvn3")
    with psycopg.connect(io_db) as c:
        addrs = {r[0] for r in c.execute("SELECT address FROM parcels WHERE map_sheet IN (13, 14)")}
    assert addrs == {ADDRESS}


def test_geopackage_source_layer(io_db: str, tmp_path: Path) -> None:
    gpkg = tmp_path / "two.gpkg"
    write(parcels(4, 15), tm_squares(4, 15), gpkg, crs=crs_metadata(ZONE), layer="thua_dat")
    write(parcels(2, 16), tm_squares(2, 16), gpkg, crs=crs_metadata(ZONE), layer="khac", append=False)
    res = refused(io_db, "parcels", gpkg)
    assert "--source-layer" in res.errors[0].message("en")
    res = imported(io_db, "parcels", gpkg, source_layer="thua_dat")
    assert res.rows_written == 4
    assert max_grid_error_mm(io_db, 15, tm_squares(4, 15)) < 1.0


def test_geojson_lonlat_growing_areas(io_db: str, tmp_path: Path) -> None:
    geoms = [shapely.box(106.40 + 0.01 * i, 10.10, 106.405 + 0.01 * i, 10.105) for i in range(3)]
    df = pd.DataFrame({"code": [f"VN-BT-GJ-{i}" for i in range(3)], "crop": "coconut", "owner": OWNER,
                       "commune_code": "86001", "markets": "CN;US", "standard": "VietGAP", "status": "active",
                       "valid_from": "01/07/2025"})
    path = write(df, geoms, tmp_path / "vung.geojson", crs="EPSG:4326", driver="GeoJSON")
    res = imported(io_db, "growing_areas", path, bulk=True)
    assert any("area_m2" in en for _, en in res.notes)         # computed (geodesic) when the file has none
    with psycopg.connect(io_db) as c:
        rows = c.execute("SELECT code, markets, valid_from::text, owner, area_m2::float8, "
                         "ST_Area(geom::geography) FROM growing_areas WHERE code LIKE 'VN-BT-GJ-%%' ORDER BY code"
                         ).fetchall()
    assert [r[0] for r in rows] == ["VN-BT-GJ-0", "VN-BT-GJ-1", "VN-BT-GJ-2"]
    for _, markets, valid_from, owner, area, geog_area in rows:
        assert markets == ["CN", "US"] and valid_from == "2025-07-01" and owner == OWNER
        assert abs(area - geog_area) < 0.01


def test_kml_points_packing_facilities(io_db: str, tmp_path: Path) -> None:
    pts = [shapely.Point(106.37 + 0.001 * i, 10.24) for i in range(3)]
    df = pd.DataFrame({"code": [f"PHC-KML-{i}" for i in range(3)], "name": ["Cơ sở đóng gói Mỏ Cày"] * 3,
                       "commune_code": "86001", "status": "active"})
    path = write(df, pts, tmp_path / "phc.kml", crs="EPSG:4326", driver="KML")
    imported(io_db, "packing_facilities", path, bulk=True)
    with psycopg.connect(io_db) as c:
        rows = c.execute("SELECT code, name, ST_X(geom), ST_Y(geom) FROM packing_facilities "
                         "WHERE code LIKE 'PHC-KML-%%' ORDER BY code").fetchall()
    assert [r[1] for r in rows] == ["Cơ sở đóng gói Mỏ Cày"] * 3
    for (_, _, x, y), p in zip(rows, pts, strict=True):
        assert abs(x - p.x) < 1e-8 and abs(y - p.y) < 1e-8


def test_csv_wkt_with_field_map(io_db: str, tmp_path: Path) -> None:
    squares = tm_squares(3, 17)
    df = pd.DataFrame({"ma_xa": "86001", "so_to": 17, "so_thua": [1, 2, 3], "dien_tich": ["225,5"] * 3,
                       "muc_dich": ["ONT"] * 3, "wkt": [g.wkt for g in squares]})
    path = tmp_path / "thua.csv"
    df.to_csv(path, index=False)
    res = imported(io_db, "parcels", path, crs="vn2000:tm3:105.75",
                   field_map="ma_xa=commune_code,so_to=map_sheet,so_thua=parcel_no,dien_tich=area_m2,"
                             "muc_dich=land_use_codes")
    assert not res.warnings
    assert max_grid_error_mm(io_db, 17, squares) < 1.0
    with psycopg.connect(io_db) as c:
        areas = {r[0] for r in c.execute("SELECT area_m2::float8 FROM parcels WHERE map_sheet = 17")}
    assert areas == {225.5}


def test_csv_xy_swapped_vn2000_points(io_db: str, tmp_path: Path) -> None:
    """Surveyors' convention: X = northing, Y = easting. Detected from the values, or forced."""
    east = np.array([560_100.0, 560_250.5, 561_000.25])
    north = np.array([1_128_100.0, 1_128_300.75, 1_129_000.5])
    df = pd.DataFrame({"code": [f"PHC-XY-{i}" for i in range(3)], "name": "Kho", "commune_code": "86001",
                       "X": north, "Y": east})
    path = tmp_path / "toa_do.csv"
    df.to_csv(path, index=False, sep=";")
    bad = refused(io_db, "packing_facilities", path, crs="vn2000:ben-tre", swap_xy=False, bulk=True)
    assert {i.code for i in bad.errors} == {"outside_vietnam"} and bad.errors[0].row == 1
    res = imported(io_db, "packing_facilities", path, crs="vn2000:ben-tre", bulk=True)
    assert any("X/Y" in en for _, en in res.notes)
    with psycopg.connect(io_db) as c:
        rows = c.execute("SELECT ST_X(ST_Transform(geom, %s)), ST_Y(ST_Transform(geom, %s)) FROM "
                         "packing_facilities WHERE code LIKE 'PHC-XY-%%' ORDER BY code",
                         [ZONE.srid, ZONE.srid]).fetchall()
    got = np.array(rows)
    assert np.hypot(got[:, 0] - east, got[:, 1] - north).max() < 0.001


def test_legacy_land_use_code_mapped_with_warning(io_db: str, tmp_path: Path) -> None:
    path = write(parcels(2, 18, land_use_codes=["BHK", "LUN,ONT"]), tm_squares(2, 18), tmp_path / "l.gpkg",
                 crs=crs_metadata(ZONE))
    res = imported(io_db, "parcels", path)
    assert {w.code for w in res.warnings} == {"legacy_code"}
    with psycopg.connect(io_db) as c:
        codes = [r[0] for r in c.execute("SELECT land_use_codes FROM parcels WHERE map_sheet = 18 ORDER BY parcel_no")]
    assert codes == [["HNK"], ["LUK", "ONT"]]


# ------------------------------------------------------------------------------------------- bad input
def test_self_intersecting_geometry_refused_or_repaired(io_db: str, tmp_path: Path) -> None:
    squares = tm_squares(3, 21)
    x, y = 560_000.0, 1_128_000.0 + 20 * 21
    squares[1] = shapely.from_wkt(f"POLYGON(({x} {y},{x+15} {y+15},{x+15} {y},{x} {y+15},{x} {y}))")
    path = write(parcels(3, 21), squares, tmp_path / "bow.gpkg", crs=crs_metadata(ZONE))
    res = refused(io_db, "parcels", path, report=tmp_path / "report.csv", lang="en")
    assert [(e.row, e.field, e.code) for e in res.errors] == [(2, "geometry", "geometry_invalid")]
    assert "Self-intersection" in res.errors[0].message("en")
    report = pd.read_csv(tmp_path / "report.csv", encoding="utf-8-sig")
    assert report.iloc[0]["row"] == 2 and report.iloc[0]["field"] == "geometry"
    assert report.iloc[0]["file"] == "bow.gpkg" and "invalid geometry" in report.iloc[0]["reason"]
    res = imported(io_db, "parcels", path, repair=True)
    assert [w.code for w in res.warnings] == ["geometry_repaired"]
    assert "shape changed" in res.warnings[0].message("en")


def test_missing_crs_refused(io_db: str, tmp_path: Path) -> None:
    shp = write(parcels(2, 22), tm_squares(2, 22), tmp_path / "noprj.shp")
    res = refused(io_db, "parcels", shp)
    assert res.errors[0].code == "file" and "--crs" in res.errors[0].message("en")
    assert "hệ tọa độ" in res.errors[0].message("vi")


def test_wrong_crs_refused(io_db: str, tmp_path: Path) -> None:
    shp = write(parcels(2, 23), tm_squares(2, 23), tmp_path / "m.shp", crs=crs_metadata(ZONE))
    res = refused(io_db, "parcels", shp, crs="EPSG:4326")
    assert {(e.row, e.field, e.code) for e in res.errors} == {(1, "geometry", "srid"), (2, "geometry", "srid")}
    res = refused(io_db, "parcels", shp, crs="EPSG:4269")             # NAD83: refused, not guessed
    assert res.errors[0].code == "file"
    res = refused(io_db, "parcels", shp, crs="vn2000:atlantis")
    assert "atlantis" in res.errors[0].message("en")


def test_outside_vietnam_refused(io_db: str, tmp_path: Path) -> None:
    geoms = [shapely.box(106.3, 10.2, 106.3001, 10.2001), shapely.box(100.5, 13.7, 100.5001, 13.7001)]
    path = write(parcels(2, 24), geoms, tmp_path / "bkk.geojson", crs="EPSG:4326", driver="GeoJSON")
    res = refused(io_db, "parcels", path)
    assert [(e.row, e.field, e.code) for e in res.errors] == [(2, "geometry", "outside_vietnam")]


def test_missing_required_field_refused(io_db: str, tmp_path: Path) -> None:
    df = parcels(3, 25).drop(columns=["land_use_codes"])
    path = write(df, tm_squares(3, 25), tmp_path / "req.gpkg", crs=crs_metadata(ZONE))
    res = refused(io_db, "parcels", path)
    assert [(e.row, e.field, e.code) for e in res.errors] == [(None, "land_use_codes", "required")]
    df = parcels(3, 25)
    df.loc[2, "commune_code"] = None
    path = write(df, tm_squares(3, 25), tmp_path / "req2.gpkg", crs=crs_metadata(ZONE))
    res = refused(io_db, "parcels", path, lang="vi")
    assert [(e.row, e.field, e.code) for e in res.errors] == [(3, "commune_code", "required")]
    assert "bắt buộc" in res.errors[0].message("vi")


def test_unknown_enum_and_bad_types_refused(io_db: str, tmp_path: Path) -> None:
    df = parcels(4, 26)
    df["status"] = ["managed", "stolen", "managed", "managed"]
    df["land_use_codes"] = ["ONT", "ONT", "XYZ", "ONT"]
    df["area_m2"] = ["225", "225", "225", "-3"]
    path = write(df, tm_squares(4, 26), tmp_path / "enum.gpkg", crs=crs_metadata(ZONE))
    res = refused(io_db, "parcels", path)
    got = {(e.row, e.field, e.code) for e in res.errors}
    assert got == {(2, "status", "enum"), (3, "land_use_codes", "enum"), (4, "area_m2", "minimum")}
    assert "stolen" in next(e for e in res.errors if e.code == "enum" and e.row == 2).message("en")


def test_duplicate_codes_in_file_and_in_database_refused(io_db: str, tmp_path: Path) -> None:
    df = parcels(3, 27)
    df["parcel_no"] = [1, 2, 1]
    path = write(df, tm_squares(3, 27), tmp_path / "dup.gpkg", crs=crs_metadata(ZONE))
    res = refused(io_db, "parcels", path)
    assert [(e.row, e.code) for e in res.errors] == [(3, "duplicate_in_batch")]
    assert "row 1" in res.errors[0].message("en")
    ok = write(parcels(2, 28), tm_squares(2, 28), tmp_path / "once.gpkg", crs=crs_metadata(ZONE))
    imported(io_db, "parcels", ok)
    res = refused(io_db, "parcels", ok)
    assert [(e.row, e.code) for e in res.errors] == [(1, "duplicate_in_db"), (2, "duplicate_in_db")]
    # a single code_field layer too
    gdf = pd.DataFrame({"code": ["PHC-DUP", "PHC-DUP"], "name": "a", "commune_code": "86001"})
    p2 = write(gdf, [shapely.Point(106.3, 10.2), shapely.Point(106.31, 10.2)], tmp_path / "d.geojson",
               crs="EPSG:4326", driver="GeoJSON")
    res = refused(io_db, "packing_facilities", p2, bulk=True)
    assert [(e.row, e.field, e.code) for e in res.errors] == [(2, "code", "duplicate_in_batch")]


def test_corrupted_and_empty_files_refused(io_db: str, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gpkg"
    bad.write_bytes(b"SQLite format 3\x00" + os.urandom(2000))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="GPKG: bad application_id")
        assert refused(io_db, "parcels", bad).errors[0].code == "file"
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    assert "empty" in refused(io_db, "parcels", empty).errors[0].message("en")
    header_only = tmp_path / "h.csv"
    header_only.write_text("commune_code,map_sheet,parcel_no,wkt\n")
    assert refused(io_db, "parcels", header_only, crs="EPSG:4326").errors[0].code == "file"
    zbad = tmp_path / "x.zip"
    zbad.write_bytes(b"PK\x03\x04 not really a zip")
    assert refused(io_db, "parcels", zbad).errors[0].code == "file"
    bad_wkt = tmp_path / "w.csv"
    pd.DataFrame({"commune_code": ["86001"], "map_sheet": [29], "parcel_no": [1], "area_m2": [1],
                  "land_use_codes": ["ONT"], "wkt": ["POLYGON((1 2, 3"]}).to_csv(bad_wkt, index=False)
    res = refused(io_db, "parcels", bad_wkt, crs="EPSG:4326")
    assert (res.errors[0].row, res.errors[0].field) == (1, "wkt")


def test_wrong_layer_name_refused(io_db: str, tmp_path: Path) -> None:
    path = write(parcels(1, 30), tm_squares(1, 30), tmp_path / "l.gpkg", crs=crs_metadata(ZONE))
    res = refused(io_db, "parcels", path, layer="parcelz")
    assert res.errors[0].code == "unknown_layer" and "parcels" in res.errors[0].message("en")


def test_cli_exit_code_and_messages(io_db: str, tmp_path: Path) -> None:
    datso = str(Path(sys.executable).with_name("datso"))
    env = {**os.environ, "DATABASE_URL": io_db}
    df = parcels(2, 31)
    df["status"] = ["managed", "stolen"]
    path = write(df, tm_squares(2, 31), tmp_path / "cli.gpkg", crs=crs_metadata(ZONE))
    before = fingerprints(io_db, "parcels")
    p = subprocess.run([datso, "import", str(path), "--layer", "parcels", "--lang", "en"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert "row 2" in p.stderr and "status" in p.stderr and "Nothing was written" in p.stderr
    assert fingerprints(io_db, "parcels") == before
    df["status"] = "managed"
    write(df, tm_squares(2, 31), path, crs=crs_metadata(ZONE))
    p = subprocess.run([datso, "import", str(path), "--layer", "parcels", "--user", "cli-test"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "import:cli-test" in history_actors(io_db, "parcels")
    assert fingerprints(io_db, "parcels")[0][0] == before[0][0] + 2


def test_transform_reference_independent_of_datso(io_db: str) -> None:
    """The TM squares used above, through PostGIS and pure pyproj+Helmert agree (guards the helper itself)."""
    tm = Transformer.from_crs(CRS.from_user_input(ZONE.proj), CRS.from_epsg(4326), always_xy=True)
    lon, lat = tm.transform(560_000.0, 1_128_000.0)
    with psycopg.connect(io_db) as c:
        row = c.execute("SELECT ST_X(g), ST_Y(g) FROM ST_Transform(ST_SetSRID(ST_MakePoint(560000, 1128000), %s), "
                        "4326) g", [ZONE.srid]).fetchone()
    assert row is not None and abs(row[0] - lon) < 1e-9 and abs(row[1] - lat) < 1e-9


def test_cross_field_database_rule_names_row_and_field(io_db: str, tmp_path: Path) -> None:
    geoms = [shapely.box(106.40 + 0.01 * i, 10.20, 106.405 + 0.01 * i, 10.205) for i in range(3)]
    df = pd.DataFrame({"code": [f"VN-BT-RULE-{i}" for i in range(3)], "crop": "durian", "owner": OWNER,
                       "commune_code": "86001", "status": ["active", "active", "suspended"]})
    path = write(df, geoms, tmp_path / "rule.geojson", crs="EPSG:4326", driver="GeoJSON")
    res = refused(io_db, "growing_areas", path, bulk=True)
    assert [(e.row, e.field, e.code) for e in res.errors] == [(3, "status_reason", "rule")]
    assert "lý do" in res.errors[0].message("vi")


def test_validate_records_api(io_db: str, tmp_path: Path) -> None:
    """The function API the OGC API transactions use: same checks, PATCH (partial) and PUT (replaces)."""
    from layers.catalog.registry import get_layer
    from layers.ingest.validation import prepare_records, validate_records

    layer = get_layer("packing_facilities")
    pt = shapely.Point(106.38, 10.25)
    rec = {"code": "PHC-API-1", "name": "Kho Giồng Trôm", "commune_code": "86001", "markets": ["CN", "EU"]}
    with psycopg.connect(io_db) as c:
        assert validate_records(layer, [(rec, pt)], c) == []
        prepared = prepare_records(layer, [(rec, pt)], c)
        assert prepared.records()[0]["markets"] == ["CN", "EU"] and prepared.records()[0]["status"] == "draft"
    path = write(pd.DataFrame([rec | {"markets": "CN,EU"}]), [pt], tmp_path / "one.geojson", crs="EPSG:4326",
                 driver="GeoJSON")
    imported(io_db, "packing_facilities", path, bulk=True)
    with psycopg.connect(io_db) as c:
        row = c.execute("SELECT id FROM packing_facilities WHERE code = 'PHC-API-1'").fetchone()
        assert row is not None
        dup = validate_records(layer, [(rec, pt)], c)
        assert [(i.row, i.field, i.code) for i in dup] == [(1, "code", "duplicate_in_db")]
        assert validate_records(layer, [(rec, pt)], c, replaces=[row[0]]) == []
        assert validate_records(layer, [({"status": "active"}, pt)], c, partial=True) == []
        assert validate_records(layer, [({"status": "active"}, None)], c, partial=True) == []
        assert [i.code for i in validate_records(layer, [(rec, None)], c, replaces=[row[0]])] == ["geometry_required"]
        missing = validate_records(layer, [({"status": "active"}, pt)], c)
        # issue 11: a packing house's code is granted at activation (drafts have none): no longer required
        assert {i.field for i in missing if i.code == "required"} == {"name", "commune_code"}
        bad = validate_records(layer, [({**rec, "code": "PHC-API-2", "status": "open"},
                                        shapely.LineString([(106.3, 10.2), (106.4, 10.3)]))], c)
        assert {(i.field, i.code) for i in bad} == {("status", "enum"), ("geometry", "geometry_type")}
        assert all(i.message("vi") != i.message("en") for i in bad)


def test_csv_types_dates_json_and_attributes_only(io_db: str, tmp_path: Path) -> None:
    """Layers whose geometry is optional take a CSV without geometry; values are coerced per registry type
    (GTIN keeps its leading zero, dd/mm/yyyy dates, naive times are Vietnam time, JSON and lists)."""
    lots = tmp_path / "lots.csv"
    pd.DataFrame({"gtin": ["08934567000012", "08934567000012"], "lot_number": ["CSV-01", "CSV-02"],
                  "product": "Bưởi da xanh", "quantity": ["1250,5", "300"], "origin_codes": ["VN-BT-001;VN-BT-002", ""],
                  "pack_date": ["15/08/2025", "2025-08-16"]}).to_csv(lots, index=False)
    imported(io_db, "trace_lots", lots)
    events = tmp_path / "events.csv"
    pd.DataFrame({"event_id": ["urn:uuid:csv-1"], "event_type": ["ObjectEvent"], "action": ["ADD"],
                  "event_time": ["2025-08-15T07:30:00"], "epc_list": ['["urn:epc:id:sgtin:0893456.700001.1"]'],
                  "quantity_list": ['[{"epcClass": "x", "quantity": 12.5, "uom": "KGM"}]'],
                  "lon": [106.37], "lat": [10.24]}).to_csv(events, index=False)
    imported(io_db, "trace_events", events, crs="EPSG:4326")
    with psycopg.connect(io_db) as c:
        lot = c.execute("SELECT gtin, quantity::float8, origin_codes, pack_date::text, geom IS NULL FROM trace_lots "
                        "WHERE lot_number = 'CSV-01'").fetchone()
        ev = c.execute("SELECT to_char(event_time AT TIME ZONE 'UTC', 'HH24:MI'), epc_list, quantity_list, "
                       "ST_X(geom) FROM trace_events WHERE event_id = 'urn:uuid:csv-1'").fetchone()
    assert lot == ("08934567000012", 1250.5, ["VN-BT-001", "VN-BT-002"], "2025-08-15", True)
    assert ev is not None and ev[0] == "00:30" and ev[1] == ["urn:epc:id:sgtin:0893456.700001.1"]
    assert ev[2] == [{"epcClass": "x", "quantity": 12.5, "uom": "KGM"}] and abs(ev[3] - 106.37) < 1e-12
    # a polygon layer still refuses a CSV without geometry
    no_geom = tmp_path / "p.csv"
    pd.DataFrame({"commune_code": ["86001"], "map_sheet": [40], "parcel_no": [1]}).to_csv(no_geom, index=False)
    res = refused(io_db, "parcels", no_geom, crs="EPSG:4326")
    assert res.errors[0].code == "file" and "--wkt-field" in res.errors[0].message("en")


def test_import_pauses_the_cyclic_gc_and_restores_it(tmp_path: Path) -> None:
    """import_file runs with Python's cyclic GC paused (a full collection in a long-lived server process was a
    fifth of a 5,000-row registration import) and restores it as it was, also when the import is refused."""
    import gc

    seen: list[bool] = []

    class Probe(dict):  # type: ignore[type-arg]
        def keys(self) -> Any:       # read by parse_field_map (dict(...)) while the import runs
            seen.append(gc.isenabled())
            return super().keys()

        def __iter__(self) -> Any:   # (so that dict() takes the keys() path)
            return iter(super().keys())

    missing = tmp_path / "none.geojson"
    assert gc.isenabled()
    res = import_file(missing, "parcels", "postgresql://unused", ImportOptions(field_map=Probe(a="b"), progress=False))
    assert not res.ok and res.errors[0].code == "file"
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        import_file(missing, "parcels", "postgresql://unused", ImportOptions(field_map=Probe(a="b"), progress=False))
        assert seen == [False, False] and not gc.isenabled()          # left disabled, as it was
    finally:
        gc.enable()
