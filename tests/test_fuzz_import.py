"""Fuzz target: `datso import` (gis/io.py read_vector + layers/ingest/importer.py import_file) on hostile files (issue 8).

Property: `import_file` never raises; it either imports every row (rows_written == rows_read) or refuses
with issues that say what is wrong (row and field where there is one), and then nothing is written (the
layer table and the audit history are byte-identical). Files: GeoJSON with random/huge/NaN/NUL values,
wrong types and broken geometries; CSV with WKT junk; truncated and mutated Shapefile/GeoPackage bytes.

Brief under `make test` (hypothesis profile "ci"); `HYPOTHESIS_PROFILE=fuzz` runs thousands of examples.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from hypothesis import event, given
from hypothesis import strategies as st

from layers.ingest.importer import ImportOptions, import_file
from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster
from tests.conftest import table_fingerprint

pytestmark = pytest.mark.fuzz
LAYER = "parcels"


@pytest.fixture(scope="module")
def fuzz_db(settings: Settings) -> Any:
    name = settings.db_name + "_fuzzimp"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    dbmod.migrate(s)
    yield s.dsn()
    pgcluster.drop_database(s, name)


def check_import(dsn: str, path: Path, **opts: Any) -> None:
    before = (table_fingerprint(dsn, LAYER), table_fingerprint(dsn, "history"))
    res = import_file(path, LAYER, dsn, ImportOptions(progress=False, user="fuzz", **opts))   # never raises
    if res.ok:
        assert res.rows_written == res.rows_read
        event("imported")
        return
    assert res.rows_written == 0
    assert (table_fingerprint(dsn, LAYER), table_fingerprint(dsn, "history")) == before, "refused but written"
    for issue in res.errors:
        assert issue.describe("en") and issue.describe("vi")
        assert issue.row is None or issue.row >= 1
    event("refused: " + ",".join(sorted({i.code for i in res.errors})))


# -- values -------------------------------------------------------------------------------------------------

HOSTILE = st.one_of(
    st.integers(), st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**40]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", "\x00", "a\x00b", "x" * 5000, "¹", "٣", "1e999", "NaN", "ONT,\x00", "{}", "[1,2]"]),
    st.booleans(), st.none(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                 max_size=2),
)
GOOD = {"commune_code": st.just("86001"), "map_sheet": st.integers(1, 50), "parcel_no": st.integers(1, 10**6),
        "address": st.text(max_size=40), "area_m2": st.floats(1, 10_000), "land_use_codes": st.just("ONT,CLN"),
        "status": st.just("managed")}


def properties() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: st.one_of(v, HOSTILE) for k, v in GOOD.items()},
                                 optional={"extra": HOSTILE, "\x00": HOSTILE})


COORD = st.one_of(st.floats(106.0, 106.8), st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                  st.sampled_from([1e308, 10**400]))
LAT = st.one_of(st.floats(9.8, 10.3), COORD)


def geometry() -> st.SearchStrategy[Any]:
    def square(x: float, y: float) -> dict[str, Any]:
        d = 0.0002
        return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}
    ring = st.lists(st.tuples(COORD, LAT).map(list), min_size=0, max_size=6)
    return st.one_of(
        st.tuples(st.floats(106.0, 106.8), st.floats(9.8, 10.3)).map(lambda p: square(*p)),
        ring.map(lambda r: {"type": "Polygon", "coordinates": [r]}),
        ring.map(lambda r: {"type": "MultiPolygon", "coordinates": [[r + r[:1]]]}),
        st.just({"type": "Polygon", "coordinates": [[[106.1, 10.0], [106.2, 10.1], [106.2, 10.0], [106.1, 10.1],
                                                     [106.1, 10.0]]]}),          # bow-tie
        st.tuples(COORD, LAT).map(lambda p: {"type": "Point", "coordinates": list(p)}),
        st.sampled_from([None, {}, {"type": "Polygon"}, {"type": "Polygon", "coordinates": "x"},
                         {"type": "GeometryCollection", "geometries": []}, {"type": "Nope", "coordinates": []}]),
    )


# -- targets ----------------------------------------------------------------------------------------------------

@given(features=st.lists(st.tuples(properties(), geometry()), min_size=0, max_size=5), raw=st.booleans())
def test_fuzz_geojson_import(fuzz_db: str, tmp_path_factory: pytest.TempPathFactory,
                             features: list[tuple[dict[str, Any], Any]], raw: bool) -> None:
    doc = {"type": "FeatureCollection",
           "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in features]}
    path = tmp_path_factory.mktemp("gj") / "f.geojson"
    text = json.dumps(doc, allow_nan=True, default=str)
    if raw:        # a truncated document
        text = text[: max(1, len(text) * 2 // 3)]
    path.write_text(text, encoding="utf-8")
    check_import(fuzz_db, path)


WKT = st.one_of(
    st.tuples(st.floats(106.0, 106.8), st.floats(9.8, 10.3)).map(
        lambda p: shapely.box(p[0], p[1], p[0] + 0.0002, p[1] + 0.0002).wkt),
    st.text(max_size=40),
    st.sampled_from(["POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))", "POLYGON EMPTY", "POINT(nan nan)", "POLYGON((1e400 0,",
                     "MULTIPOLYGON(((106 10, 106.1 10, 106.1 10.1, 106 10)))", "GEOMETRYCOLLECTION(POINT(1 2))",
                     "SRID=4326;POINT(1 2)", "\x00", "POLYGON((" + ", ".join(["106 10"] * 2000) + "))"]),
)


@given(rows=st.lists(st.tuples(properties(), WKT), min_size=1, max_size=5))
def test_fuzz_csv_wkt_import(fuzz_db: str, tmp_path_factory: pytest.TempPathFactory,
                             rows: list[tuple[dict[str, Any], str]]) -> None:
    buf = io.StringIO()
    names = list(GOOD) + ["wkt"]
    w = csv.writer(buf)
    w.writerow(names)
    for props_, wkt in rows:
        w.writerow([str(props_.get(n, "")) for n in GOOD] + [wkt])
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    check_import(fuzz_db, path, wkt_field="wkt", crs="EPSG:4326")


def _seed_files(folder: Path) -> dict[str, bytes]:
    """A valid GeoPackage and a valid zipped Shapefile of three parcels (the bytes the mutations start from)."""
    gdf = gpd.GeoDataFrame({"commune_code": ["86001"] * 3, "map_sheet": [90] * 3, "parcel_no": [1, 2, 3],
                            "address": ["Số 1"] * 3, "area_m2": [20.0] * 3, "land_use_codes": ["ONT"] * 3,
                            "status": ["managed"] * 3},
                           geometry=[shapely.box(106.3 + i * 0.001, 10.2, 106.3002 + i * 0.001, 10.2002)
                                     for i in range(3)], crs="EPSG:4326")
    out: dict[str, bytes] = {}
    gpkg = folder / "seed.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(gdf, gpkg)
        shp_dir = folder / "shp"
        shp_dir.mkdir()
        pyogrio.write_dataframe(gdf, shp_dir / "seed.shp")
    out["gpkg"] = gpkg.read_bytes()
    for f in shp_dir.iterdir():
        out[f.suffix] = f.read_bytes()
    return out


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _seed_files(tmp_path_factory.mktemp("seed"))


@given(which=st.sampled_from(["gpkg", ".shp", ".dbf", ".shx", ".prj"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8))
def test_fuzz_binary_formats(fuzz_db: str, seeds: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory,
                             which: str, cut: float, flips: list[tuple[float, int]]) -> None:
    data = bytearray(seeds[which])
    for pos, byte in flips:
        data[int(pos * (len(data) - 1))] = byte
    if cut < 0.5:                        # half of the cases truncated as well
        data = data[: int(len(data) * cut * 2)]
    folder = tmp_path_factory.mktemp("bin")
    if which == "gpkg":
        path = folder / "f.gpkg"
        path.write_bytes(bytes(data))
    else:
        path = folder / "f.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for suffix, content in seeds.items():
                if suffix.startswith("."):
                    zf.writestr("thua" + suffix, bytes(data) if suffix == which else content)
    check_import(fuzz_db, path)


def test_found_by_fuzzing_one_unreadable_geometry_names_its_row(fuzz_db: str, tmp_path: Path) -> None:
    """A ring with NaN coordinates made GEOS refuse the whole file ("cannot read ... corrupted"): now the
    row and field are named and the other rows are still checked; nothing is written."""
    good = {"type": "Polygon", "coordinates": [[[106.3, 10.2], [106.3002, 10.2], [106.3002, 10.2002],
                                                [106.3, 10.2]]]}
    bad = {"type": "Polygon", "coordinates": [[[float("nan"), 10.2], [106.3, 10.2], [106.3, 10.3],
                                               [float("nan"), 10.2]]]}
    props = {"commune_code": "86001", "map_sheet": 77, "address": "Số 1", "area_m2": 20.0,
             "land_use_codes": "ONT", "status": "managed"}
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {**props, "parcel_no": 1}, "geometry": good},
        {"type": "Feature", "properties": {**props, "parcel_no": 2}, "geometry": bad}]}
    path = tmp_path / "nan.geojson"
    path.write_text(json.dumps(doc, allow_nan=True), encoding="utf-8")
    before = table_fingerprint(fuzz_db, LAYER)
    res = import_file(path, LAYER, fuzz_db, ImportOptions(progress=False, user="fuzz", lang="en"))
    assert not res.ok and res.rows_written == 0 and res.rows_read == 2
    assert any(i.row == 2 and i.field == "geometry" for i in res.errors), [i.describe("en") for i in res.errors]
    assert table_fingerprint(fuzz_db, LAYER) == before
