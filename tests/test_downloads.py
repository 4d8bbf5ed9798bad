"""Downloads of a whole selection (`/collections/{id}/items?f=csv|gpkg|fgb|shp|kml`, `f=geojson&download=true`):
every matching row (not a page), every filter of the items endpoint, read back by pyogrio/geopandas and by
GDAL's `ogrinfo`; the ceiling (413 with the count, nothing written); bad input (400, nothing written); the
links on the HTML pages; and export -> import -> export round trips that keep every field type."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pytest
from conftest import LiveServer
from fastapi.testclient import TestClient

from gis.writers import dbf_names
from layers.catalog.registry import get_layer
from layers.ingest.importer import ImportOptions, import_file
from layers.query.exporter import export_layer
from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster

FORMATS = ("geojson", "csv", "gpkg", "fgb", "shp", "kml")
SUFFIX = {"geojson": "geojson", "csv": "csv", "gpkg": "gpkg", "fgb": "fgb", "shp": "zip", "kml": "kml"}
BBOX = (106.2, 9.9, 106.5, 10.2)
# (layer, query parameters, the same selection in SQL)
CASES = {
    "field": ("parcels", {"status": "leased"}, "status = 'leased'"),
    "bbox": ("parcels", {"bbox": ",".join(map(str, BBOX))},
             "ST_Intersects(geom, ST_MakeEnvelope(106.2, 9.9, 106.5, 10.2, 4326))"),
    "cql2": ("parcels", {"filter": "area_m2 > 500 AND status IN ('leased','managed')"},
             "area_m2 > 500 AND status IN ('leased','managed')"),
    "datetime": ("auction_plots", {"datetime": "2026-06-01T00:00:00Z/.."},
                 "auction_date >= '2026-06-01T00:00:00Z'"),
    "bbox+field+cql2": ("parcels", {"bbox": ",".join(map(str, BBOX)), "status": "managed",
                                    "filter": "map_sheet >= 2"},
                        "ST_Intersects(geom, ST_MakeEnvelope(106.2, 9.9, 106.5, 10.2, 4326)) AND status = 'managed' "
                        "AND map_sheet >= 2"),
}


def truth(dsn: str, layer: str, where: str) -> list[int]:
    with psycopg.connect(dsn) as c:
        return [int(r[0]) for r in c.execute(f"SELECT id FROM {layer} WHERE {where} ORDER BY id").fetchall()]  # noqa: S608


def url_path(layer: str, fmt: str) -> str:
    return f"/collections/{layer}/items"


def params_for(fmt: str, extra: dict[str, str]) -> dict[str, str]:
    p = {"f": fmt, **extra}
    if fmt == "geojson":
        p["download"] = "true"
    return p


def save(content: bytes, folder: Path, fmt: str) -> Path:
    path = folder / f"dl.{SUFFIX[fmt]}"
    path.write_bytes(content)
    return path


def read_ids(path: Path, fmt: str) -> list[int]:
    """The ids in a downloaded file, read by geopandas (pyogrio); CSV with the csv module."""
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
        return sorted(int(r["id"]) for r in rows)
    if fmt == "geojson":
        fc = json.loads(path.read_bytes())
        gdf = gpd.read_file(path, engine="pyogrio")
        assert len(gdf) == len(fc["features"])
        return sorted(int(f["id"]) for f in fc["features"])
    target = f"zip://{path}" if fmt == "shp" else str(path)
    gdf = gpd.read_file(target, engine="pyogrio")
    if fmt == "kml":     # LIBKML keeps its own Placemark id; ours is `feature_id`
        return sorted(int(v) for v in gdf["feature_id"])
    return sorted(int(v) for v in gdf["id"])


def ogrinfo_count(path: Path, fmt: str) -> int:
    target = f"/vsizip/{path}" if fmt == "shp" else str(path)
    args = ["ogrinfo", "-ro", "-so", "-al", target]
    if fmt == "csv":
        args[1:1] = ["-oo", "GEOM_POSSIBLE_NAMES=wkt", "-oo", "KEEP_GEOM_COLUMNS=NO"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    counts = [int(line.split(":")[1]) for line in out.splitlines() if line.startswith("Feature Count:")]
    assert len(counts) == 1, out
    return counts[0]


@pytest.fixture()
def scratch_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The server's temporary files go here, so a test can see that a refused download wrote nothing."""
    folder = tmp_path / "server-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


# -- every format, the whole filtered selection ------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_download_holds_every_matching_feature(client: TestClient, sample_db: str, tmp_path: Path, fmt: str,
                                               case: str) -> None:
    layer, extra, where = CASES[case]
    expected = truth(sample_db, layer, where)
    assert len(expected) > 10, "the case must match more than a page"
    r = client.get(url_path(layer, fmt), params=params_for(fmt, extra))
    assert r.status_code == 200, r.text[:300]
    assert "attachment" in r.headers["content-disposition"]
    assert int(r.headers["x-total-count"]) == len(expected)
    path = save(r.content, tmp_path, fmt)
    assert read_ids(path, fmt) == expected                      # pyogrio / geopandas
    assert ogrinfo_count(path, fmt) == len(expected)            # GDAL 3.6 (Debian gdal-bin)


def test_no_limit_is_the_whole_layer_and_a_given_limit_is_honoured(client: TestClient, sample_db: str) -> None:
    everything = truth(sample_db, "parcels", "TRUE")
    assert len(everything) > 10
    r = client.get("/collections/parcels/items", params={"f": "csv"})
    lines = r.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == len(everything) + 1 and lines[0].startswith("id,") and lines[0].endswith(",wkt")
    r = client.get("/collections/parcels/items", params={"f": "csv", "limit": 7, "offset": 3, "status": "leased"})
    ids = [int(row["id"]) for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))]
    assert ids == truth(sample_db, "parcels", "status = 'leased'")[3:10]
    assert r.headers["x-total-count"] == "7"
    # sortby and properties apply too
    r = client.get("/collections/parcels/items", params={"f": "csv", "status": "leased", "sortby": "-id",
                                                         "properties": "parcel_no,status"})
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0]) == ["id", "parcel_no", "status", "wkt"]
    assert [int(x["id"]) for x in rows] == truth(sample_db, "parcels", "status = 'leased'")[::-1]


def test_geojson_download_is_a_whole_feature_collection(client: TestClient, sample_db: str) -> None:
    expected = truth(sample_db, "parcels", "status = 'leased'")
    r = client.get("/collections/parcels/items", params={"status": "leased"})     # the OGC page is unchanged
    assert len(r.json()["features"]) == 10 and "content-disposition" not in r.headers
    r = client.get("/collections/parcels/items", params={"status": "leased", "f": "geojson", "download": "true"})
    assert r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["numberMatched"] == fc["numberReturned"] == len(fc["features"]) == len(expected)
    one = fc["features"][0]
    assert isinstance(one["properties"]["land_use_codes"], list)        # arrays stay arrays in GeoJSON
    assert isinstance(one["properties"]["map_sheet"], int)


def test_vn2000_download_coordinates_and_file_crs(client: TestClient, sample_db: str, tmp_path: Path) -> None:
    r = client.get("/collections/parcels/items", params={"f": "gpkg", "status": "leased",
                                                         "crs": "http://www.opengis.net/def/crs/EPSG/0/9210"})
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/9210>"
    gdf = gpd.read_file(save(r.content, tmp_path, "gpkg"))
    with psycopg.connect(sample_db) as c:
        srid = c.execute("SELECT srid FROM spatial_ref_sys WHERE auth_name = 'DATSO' AND srid % 10000 = 9210").fetchone()
        assert srid is not None
        x, y = c.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(geom), %s) p "
                         "FROM parcels WHERE id = %s) s", [srid[0], int(gdf["id"].iloc[0])]).fetchone() or (0, 0)
    got = gdf.geometry.iloc[0].representative_point()
    assert 400_000 < got.x < 700_000 and 1_000_000 < got.y < 1_200_000
    with psycopg.connect(sample_db) as c:
        inside = c.execute("SELECT ST_Contains(ST_Transform(geom, %s), ST_SetSRID(ST_MakePoint(%s, %s), %s)) "
                           "FROM parcels WHERE id = %s", [srid[0], got.x, got.y, srid[0], int(gdf["id"].iloc[0])]
                           ).fetchone()
    assert inside is not None and inside[0] is True, (x, y, got)


def test_one_feature_download(client: TestClient, sample_db: str, tmp_path: Path) -> None:
    fid = truth(sample_db, "auction_plots", "TRUE")[3]
    for fmt in FORMATS:
        r = client.get(f"/collections/auction_plots/items/{fid}", params=params_for(fmt, {}))
        assert r.status_code == 200, (fmt, r.text[:200])
        assert f"auction_plots-{fid}" in r.headers["content-disposition"]
        assert read_ids(save(r.content, tmp_path, fmt), fmt) == [fid]
    r = client.get("/collections/auction_plots/items/999999999", params={"f": "gpkg"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


# -- the ceiling and bad input: a problem, nothing written -------------------------------------------------

def test_ceiling_answers_413_with_the_count(client: TestClient, sample_db: str, scratch_tmp: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    expected = len(truth(sample_db, "parcels", "status = 'leased'"))
    monkeypatch.setattr(client.app.state.api_settings, "download_max_features", 50)  # type: ignore[attr-defined]
    for fmt in FORMATS:
        r = client.get("/collections/parcels/items", params=params_for(fmt, {"status": "leased"}))
        assert r.status_code == 413, (fmt, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
        doc = r.json()
        assert doc["numberMatched"] == expected and doc["limit"] == 50
        assert f"{expected:,}".replace(",", ".") in doc["detail"] and "bbox" in doc["detail"]
        en = client.get("/collections/parcels/items", params={**params_for(fmt, {"status": "leased"}), "lang": "en"})
        assert en.status_code == 413 and f"{expected:,}" in en.json()["detail"]
        assert "Narrow" in en.json()["detail"] and "filter" in en.json()["detail"]
    assert list(scratch_tmp.iterdir()) == []                     # nothing written
    # within the ceiling: an explicit limit, or a narrower selection
    r = client.get("/collections/parcels/items", params={"f": "gpkg", "status": "leased", "limit": 50})
    assert r.status_code == 200 and r.headers["x-total-count"] == "50"


def test_download_runs_on_the_export_statement_timeout(client: TestClient, sample_db: str, scratch_tmp: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A download waiting past the export class's statement_timeout is a 503 problem, and nothing is kept."""
    monkeypatch.setitem(client.app.state.db.statement_timeouts, "export", 0.5)  # type: ignore[attr-defined]
    with psycopg.connect(sample_db) as c:
        c.execute("LOCK TABLE parcels IN ACCESS EXCLUSIVE MODE")     # the download's count must wait for it
        for fmt in ("gpkg", "csv"):
            r = client.get("/collections/parcels/items", params={"f": fmt, "status": "leased", "lang": "en"})
            assert r.status_code == 503, (fmt, r.status_code, r.text[:200])
            assert r.headers["content-type"] == "application/problem+json" and "time limit" in r.json()["detail"]
        c.rollback()
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.parametrize("params", [
    {"f": "xls"},
    {"f": "gpkg", "filter": "area_m2 >>> 5"},
    {"f": "csv", "filter": "nonsense = 1"},
    {"f": "shp", "bbox": "1,2,3"},
    {"f": "fgb", "datetime": "yesterday"},
    {"f": "geojson", "download": "maybe"},
    {"f": "kml", "crs": "http://www.opengis.net/def/crs/EPSG/0/9210"},
    {"f": "gpkg", "status": "sold"},
    {"f": "gpkg", "limit": "0"},
])
def test_bad_input_is_a_400_problem_and_nothing_is_written(client: TestClient, scratch_tmp: Path,
                                                           params: dict[str, str]) -> None:
    r = client.get("/collections/parcels/items", params=params)
    assert r.status_code == 400, (params, r.status_code, r.text[:200])
    assert r.headers["content-type"] == "application/problem+json"
    assert "content-disposition" not in r.headers
    assert r.json()["detail"]
    assert list(scratch_tmp.iterdir()) == []


def test_mixed_geometries_refused_for_shapefile(client: TestClient, sample_db: str, scratch_tmp: Path) -> None:
    with psycopg.connect(sample_db) as c:
        kinds = c.execute("SELECT count(DISTINCT GeometryType(geom)) FROM packing_facilities").fetchone()
    assert kinds is not None
    r = client.get("/collections/packing_facilities/items", params={"f": "shp"})
    if kinds[0] > 1:
        assert r.status_code == 400 and "GeoPackage" in client.get(
            "/collections/packing_facilities/items", params={"f": "shp", "lang": "en"}).json()["detail"]
        assert list(scratch_tmp.iterdir()) == []
    else:
        assert r.status_code == 200


# -- the HTML pages: a link per format with the filters and the count --------------------------------------

def test_html_pages_link_every_format_with_filters_and_count(client: TestClient, sample_db: str) -> None:
    n = len(truth(sample_db, "parcels", "status = 'leased'"))
    page = client.get("/collections/parcels/items", params={"f": "html", "status": "leased", "limit": 5}).text
    assert f"{n:,}".replace(",", ".") + " đối tượng" in page
    for fmt in FORMATS:
        extra = "&amp;download=true" if fmt == "geojson" else ""
        assert f"/collections/parcels/items?status=leased&amp;f={fmt}{extra}\"" in page, fmt
    en = client.get("/collections/parcels/items", params={"f": "html", "status": "leased", "lang": "en"}).text
    assert f"{n:,} features" in en
    total = len(truth(sample_db, "parcels", "TRUE"))
    coll = client.get("/collections/parcels", params={"f": "html"}).text
    assert f"{total:,}".replace(",", ".") + " đối tượng" in coll and "limit=" not in coll.split("downloads")[1]
    for fmt in FORMATS:
        assert f"/collections/parcels/items?f={fmt}" in coll
    fid = truth(sample_db, "parcels", "TRUE")[0]
    item = client.get(f"/collections/parcels/items/{fid}", params={"f": "html"}).text
    assert "1 đối tượng" in item
    for fmt in FORMATS:
        assert f"/collections/parcels/items/{fid}?f={fmt}" in item
    # the collection document lists them as enclosures
    links = client.get("/collections/parcels").json()["links"]
    enclosures = {link["href"].split("?")[1] for link in links if link["rel"] == "enclosure"}
    assert enclosures == {"f=geojson&download=true", "f=csv", "f=gpkg", "f=fgb", "f=shp", "f=kml"}


def test_links_followed_on_a_live_server(live_server: LiveServer, sample_db: str) -> None:
    """geopandas reading the download URL itself (the issue's `read_file('…/items?f=gpkg&status=leased')`),
    and GDAL 3.6's ogrinfo. In another process: GDAL holds the GIL while it fetches, and this server runs on
    a thread of the test process."""
    expected = truth(sample_db, "parcels", "status = 'leased'")
    for fmt in ("gpkg", "fgb", "geojson"):
        extra = "&download=true" if fmt == "geojson" else ""
        url = f"{live_server.url}/collections/parcels/items?f={fmt}&status=leased{extra}"
        code = "import sys, geopandas; print(len(geopandas.read_file(sys.argv[1], engine='pyogrio')))"
        out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-500:]
        assert int(out.stdout.strip().splitlines()[-1]) == len(expected), fmt
    out2 = subprocess.run(["ogrinfo", "-ro", "-so", "-al",
                           f"{live_server.url}/collections/parcels/items?f=geojson&download=true&status=leased"],
                          capture_output=True, text=True, timeout=120, check=True).stdout
    assert f"Feature Count: {len(expected)}" in out2


# -- type fidelity: export -> import -> export ---------------------------------------------------------------

@pytest.fixture(scope="module")
def scratch_db(settings: Settings, sample_db: str) -> Iterator[str]:
    """A second database with the same sample province (seed 7): the round trips import into it."""
    from sample_data.generate import load_sample

    name = settings.db_name + "_roundtrip"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    dbmod.migrate(s)
    load_sample(s.dsn(), size="small", seed=7, force=True)
    yield s.dsn()
    pgcluster.drop_database(s, name)


ROUND_TRIP_LAYERS = ("auction_plots", "growing_areas", "trace_lots")


def db_rows(dsn: str, layer_id: str) -> dict[Any, tuple[Any, ...]]:
    """Every field of every row, by business key, as the database returns them (Python types)."""
    layer = get_layer(layer_id)
    key = layer.code_field or "lot_number"
    names = [f.name for f in layer.fields]
    with psycopg.connect(dsn) as c:
        c.execute("SET TIME ZONE 'UTC'")
        rows = c.execute(f"SELECT {', '.join(names)} FROM {layer.table} ORDER BY {key}").fetchall()  # noqa: S608
    i = names.index(key)
    return {r[i]: tuple(r) for r in rows}


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return pyogrio.read_dataframe(f"/vsizip/{path}" if fmt == "shp" else path)


def ogr_types(path: Path, fmt: str) -> dict[str, str]:
    target = f"/vsizip/{path}" if fmt == "shp" else str(path)
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", target], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    types: dict[str, str] = {}
    for line in out.splitlines():
        if ": " in line and "(" in line and line.split(": ")[1].split(" ")[0] in (
                "Integer", "Integer64", "Real", "String", "Date", "DateTime", "Integer(Boolean)", "StringList"):
            types[line.split(": ")[0]] = line.split(": ")[1].split(" ")[0]
    return types


@pytest.mark.parametrize("layer_id", ROUND_TRIP_LAYERS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_every_type(sample_db: str, scratch_db: str, tmp_path: Path, fmt: str,
                                     layer_id: str) -> None:
    layer = get_layer(layer_id)
    before = db_rows(sample_db, layer_id)
    first = export_layer(sample_db, layer_id, fmt, tmp_path / f"a.{SUFFIX[fmt]}")
    assert first.rows == len(before) > 10
    with psycopg.connect(scratch_db) as c:
        c.execute(f"DELETE FROM {layer.table}")  # noqa: S608
    back = import_file(first.path, layer_id, scratch_db,
                       ImportOptions(progress=False, crs="OGC:CRS84" if fmt == "csv" else None,
                                     bulk=True))
    assert back.ok, [i.describe("en") for i in back.errors][:5]
    assert back.rows_written == len(before)
    after = db_rows(scratch_db, layer_id)
    assert after.keys() == before.keys()
    names = [f.name for f in layer.fields]
    for key, old in before.items():
        new = after[key]
        for name, a, b in zip(names, old, new, strict=True):
            if isinstance(a, float) or type(a).__name__ == "Decimal":
                assert b is not None and abs(float(a) - float(b)) < 1e-6, (fmt, key, name, a, b)
            else:
                assert a == b, (fmt, key, name, a, b)            # dates, instants, ints, arrays, enums
    # the second export is the first one again, column types included
    second = export_layer(scratch_db, layer_id, fmt, tmp_path / f"b.{SUFFIX[fmt]}")
    one, two = read_back(first.path, fmt), read_back(second.path, fmt)
    assert list(one.columns) == list(two.columns)
    assert (one.dtypes.astype(str) == two.dtypes.astype(str)).all()
    drop = ["id"] if "id" in one.columns else []
    key = layer.code_field or "lot_number"
    key = dbf_names([layer.id_column, *layer.field_names]).get(key, key) if fmt == "shp" else key
    a = one.drop(columns=drop).sort_values(key).reset_index(drop=True)
    b = two.drop(columns=drop).sort_values(key).reset_index(drop=True)
    if fmt == "kml":   # LIBKML's own columns (Placemark id, ...) are not ours
        a, b = a[[c for c in a.columns if c in names]], b[[c for c in b.columns if c in names]]
    pd.testing.assert_frame_equal(a.drop(columns="geometry", errors="ignore"),
                                  b.drop(columns="geometry", errors="ignore"))


@pytest.mark.parametrize("fmt", ("gpkg", "shp", "geojson"))
def test_http_download_imports_back(client: TestClient, sample_db: str, scratch_db: str, tmp_path: Path,
                                    fmt: str) -> None:
    """What a user downloads from the API imports back with `datso import` into the same values."""
    layer = get_layer("growing_areas")
    before = db_rows(sample_db, layer.id)
    r = client.get(f"/collections/{layer.id}/items", params=params_for(fmt, {}))
    assert r.status_code == 200
    path = save(r.content, tmp_path, fmt)
    with psycopg.connect(scratch_db) as c:
        c.execute(f"DELETE FROM {layer.table}")  # noqa: S608
    back = import_file(path, layer.id, scratch_db, ImportOptions(progress=False, bulk=True))
    assert back.ok, [i.describe("en") for i in back.errors][:5]
    after = db_rows(scratch_db, layer.id)
    public = {f.name for f in layer.public_fields}
    names = [f.name for f in layer.fields]
    assert after.keys() == before.keys()
    for key, old in before.items():
        for name, a, b in zip(names, old, after[key], strict=True):
            if name not in public:
                continue
            if isinstance(a, float) or type(a).__name__ == "Decimal":
                assert b is not None and abs(float(a) - float(b)) < 1e-6, (key, name, a, b)
            else:
                assert a == b, (fmt, key, name, a, b)


@pytest.mark.parametrize("fmt", ("gpkg", "fgb", "shp"))
def test_native_types_in_typed_formats(sample_db: str, tmp_path: Path, fmt: str) -> None:
    """Dates are dates, integers integers, instants instants where the format has them (see docs/formats.md)."""
    res = export_layer(sample_db, "auction_plots", fmt, tmp_path / f"t.{SUFFIX[fmt]}")
    types = ogr_types(res.path, fmt)
    short = dbf_names(["id", *get_layer("auction_plots").field_names]) if fmt == "shp" else {}
    t = {name: types[short.get(name, name)] for name in
         ("viewing_start", "auction_date", "starting_price_vnd", "area_m2", "parcel_ids", "status")}
    assert t["viewing_start"] == ("DateTime" if fmt == "fgb" else "Date")       # FlatGeobuf has no Date type
    assert t["auction_date"] == ("String" if fmt == "shp" else "DateTime")      # dBase has no date-time
    assert t["starting_price_vnd"] == "Integer64" and t["area_m2"] == "Real"
    assert t["parcel_ids"] == "String" and t["status"] == "String"
    df = read_back(res.path, fmt)
    ids_col = short.get("parcel_ids", "parcel_ids")
    with psycopg.connect(sample_db) as c:
        truth_ids = dict(c.execute("SELECT id, parcel_ids FROM auction_plots").fetchall())
    for fid, text in zip(df["id"], df[ids_col], strict=True):
        assert json.loads(text) == (truth_ids[int(fid)] or []) or (text is None and truth_ids[int(fid)] is None)
    if fmt == "shp":
        with zipfile.ZipFile(res.path) as zf:
            assert zf.read("auction_plots.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
    assert np.issubdtype(df["id"].dtype, np.integer)


def test_cli_export_writes_flatgeobuf(sample_db: str, tmp_path: Path) -> None:
    datso = str(Path(sys.executable).with_name("datso"))
    out = tmp_path / "g.fgb"
    p = subprocess.run([datso, "export", "--layer", "growing_areas", "--format", "fgb", "--out", str(out)],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "DATABASE_URL": sample_db})
    assert p.returncode == 0, p.stderr[-400:]
    assert len(pyogrio.read_dataframe(out)) == len(truth(sample_db, "growing_areas", "TRUE"))
