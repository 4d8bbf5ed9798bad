"""`datso export`: every format, VN-2000 output through the official transformation, filters from the
registry only, and export -> import round trips that keep geometry within 1 mm and the attributes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely

from gis.crs import get_crs
from gis.io import DataFileError, crs_metadata
from layers.ingest.importer import ImportOptions, import_file
from layers.query.exporter import ExportError, export_layer
from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster

ZONE = get_crs("vn2000:ben-tre")
ATTRS = ("commune_code", "map_sheet", "parcel_no", "address", "area_m2", "land_use_codes", "status")


@pytest.fixture(scope="module")
def ex_db(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Any:
    name = settings.db_name + "_export"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    dbmod.migrate(s)
    # 12 parcels in VN-2000 (triangles and squares, with holes-free odd coordinates), two statuses
    n = 12
    x0, y0 = 560_123.456, 1_128_987.654
    geoms = [shapely.Polygon([(x0 + 30 * i, y0), (x0 + 30 * i + 17.3, y0 + 0.7), (x0 + 30 * i + 11.1, y0 + 19.9)])
             if i % 2 else shapely.box(x0 + 30 * i, y0, x0 + 30 * i + 20.25, y0 + 20.5) for i in range(n)]
    df = pd.DataFrame({"commune_code": ["86001"] * 6 + ["86002"] * 6, "map_sheet": 5,
                       "parcel_no": list(range(1, n + 1)), "address": "Xã Thạnh Phú, \"Bến Tre\"; tổ 3",
                       "area_m2": [round(200 + i * 1.25, 2) for i in range(n)],
                       "land_use_codes": ["ONT,CLN" if i % 3 == 0 else "DGD" for i in range(n)],
                       "status": ["managed" if i % 2 else "leased" for i in range(n)]})
    src = tmp_path_factory.mktemp("src") / "src.gpkg"
    pyogrio.write_dataframe(gpd.GeoDataFrame(df, geometry=geoms, crs=crs_metadata(ZONE)), src)
    res = import_file(src, "parcels", s.dsn(), ImportOptions(progress=False))
    assert res.ok, [i.describe("en") for i in res.errors]
    yield s.dsn()
    pgcluster.drop_database(s, name)


def snapshot(dsn: str) -> dict[tuple[str, int, int], tuple[Any, ...]]:
    """Attributes and the geometry taken to the TM-3 grid by PostGIS (official parameters), by business key."""
    with psycopg.connect(dsn) as c:
        rows = c.execute(f"SELECT {', '.join(ATTRS)}, ST_AsBinary(ST_Transform(geom, %s)) FROM parcels "
                         "ORDER BY commune_code, map_sheet, parcel_no", [ZONE.srid]).fetchall()
    return {(r[0], r[1], r[2]): (*r[3:-1], shapely.from_wkb(bytes(r[-1]))) for r in rows}


@pytest.mark.parametrize("fmt, name, crs", [
    ("gpkg", "out.gpkg", "vn2000:ben-tre"),
    ("geojson", "out.geojson", None),
    ("shp", "out.zip", "vn2000:tm3:105.75"),
    ("shp", "folder", "EPSG:9210"),
    ("csv", "out.csv", "vn2000:ben-tre"),
    ("kml", "out.kml", None),
])
def test_export_import_round_trip(ex_db: str, tmp_path: Path, fmt: str, name: str, crs: str | None) -> None:
    before = snapshot(ex_db)
    res = export_layer(ex_db, "parcels", fmt, tmp_path / name, crs=crs)
    assert res.rows == len(before) == 12
    with psycopg.connect(ex_db) as c:
        c.execute("DELETE FROM parcels")
    # csv carries no CRS: say which one it was written in
    back = import_file(res.path, "parcels", ex_db,
                       ImportOptions(progress=False, crs=crs if fmt == "csv" else None))
    assert back.ok, [i.describe("en") for i in back.errors]
    if crs:
        assert back.source_crs == get_crs(crs).key          # the file says VN-2000 TM-3, in the right zone
    after = snapshot(ex_db)
    assert after.keys() == before.keys()
    for key, old in before.items():
        new = after[key]
        assert new[:-1] == old[:-1], key
        assert shapely.hausdorff_distance(new[-1], old[-1]) < 0.001, key     # metres on the TM-3 grid


def test_vn2000_export_coordinates_match_postgis(ex_db: str, tmp_path: Path) -> None:
    res = export_layer(ex_db, "parcels", "gpkg", tmp_path / "vn.gpkg", crs="vn2000:ben-tre",
                       where=["commune_code=86001"])
    gdf = pyogrio.read_dataframe(res.path)
    assert pyogrio.read_info(res.path)["crs"] == "EPSG:9210"
    with psycopg.connect(ex_db) as c:
        rows = dict(c.execute("SELECT parcel_no, ST_AsText(ST_Transform(geom, %s)) FROM parcels "
                              "WHERE commune_code = '86001'", [ZONE.srid]).fetchall())
    assert len(gdf) == len(rows) == 6
    for no, g in zip(gdf["parcel_no"], gdf.geometry, strict=True):
        assert shapely.hausdorff_distance(g, shapely.from_wkt(rows[int(no)])) < 0.001


def test_where_and_bbox_filters(ex_db: str, tmp_path: Path) -> None:
    res = export_layer(ex_db, "parcels", "geojson", tmp_path / "f.geojson",
                       where=["status=managed", "land_use_codes=DGD"])
    with psycopg.connect(ex_db) as c:
        n = c.execute("SELECT count(*) FROM parcels WHERE status = 'managed' AND 'DGD' = ANY(land_use_codes)"
                      ).fetchone()
        ext = c.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                        "(SELECT ST_Extent(geom) e FROM parcels WHERE parcel_no <= 3) s").fetchone()
        assert n is not None and ext is not None
        bbox = ",".join(str(v) for v in ext)
        nb = c.execute("SELECT count(*) FROM parcels WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
                       list(ext)).fetchone()
    assert res.rows == n[0] > 0
    gdf = pyogrio.read_dataframe(res.path)
    assert set(gdf["status"]) == {"managed"} and all("DGD" in v for v in gdf["land_use_codes"])
    res = export_layer(ex_db, "parcels", "csv", tmp_path / "b.csv", bbox=bbox)
    assert nb is not None and res.rows == nb[0] >= 3


@pytest.mark.parametrize("kwargs, text", [
    ({"where": ["certificate_no=1"]}, "queryable"),            # not public -> not a queryable
    ({"where": ["status=stolen"]}, "stolen"),
    ({"where": ["map_sheet=abc"]}, "integer"),
    ({"where": ["status"]}, "field=value"),
    ({"where": ["1=1; DROP TABLE parcels"]}, "queryable"),
    ({"bbox": "106,10,105,11"}, "bbox"),
])
def test_bad_filters_refused(ex_db: str, tmp_path: Path, kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ExportError) as err:
        export_layer(ex_db, "parcels", "gpkg", tmp_path / "x.gpkg", **kwargs)
    assert text in err.value.message("en")
    assert not (tmp_path / "x.gpkg").exists()


def test_kml_must_be_wgs84_and_unknown_format(ex_db: str, tmp_path: Path) -> None:
    with pytest.raises(DataFileError):
        export_layer(ex_db, "parcels", "kml", tmp_path / "x.kml", crs="vn2000:ben-tre")
    with pytest.raises(ExportError):
        export_layer(ex_db, "parcels", "dxf", tmp_path / "x.dxf")


def test_cli_export(ex_db: str, tmp_path: Path) -> None:
    datso = str(Path(sys.executable).with_name("datso"))
    env = {**os.environ, "DATABASE_URL": ex_db}
    out = tmp_path / "cli.zip"
    p = subprocess.run([datso, "export", "--layer", "parcels", "--format", "shp", "--crs", "vn2000:ben-tre",
                        "--where", "status=leased", "--out", str(out)], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    gdf = pyogrio.read_dataframe(f"/vsizip/{out}/parcels.shp")
    assert set(gdf["status"]) == {"leased"} and len(gdf) == 6
    assert np.all(gdf.geometry.bounds["minx"] > 500_000)          # metres on the TM-3 grid
    p = subprocess.run([datso, "export", "--layer", "parcelz", "--format", "csv", "--out", str(tmp_path / "a.csv")],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "parcelz" in p.stderr


def test_public_only_export_hides_private_fields(ex_db: str, tmp_path: Path) -> None:
    full = pyogrio.read_dataframe(export_layer(ex_db, "parcels", "gpkg", tmp_path / "all.gpkg").path)
    public = pyogrio.read_dataframe(export_layer(ex_db, "parcels", "gpkg", tmp_path / "pub.gpkg",
                                                 public_only=True).path)
    assert "certificate_no" in full.columns and "certificate_no" not in public.columns
    assert len(full) == len(public) == 12
