"""Zonal statistics (exactextract, partial pixels): per feature and over a filtered selection, against independent
computations — rasterio's mask on a pixel-aligned polygon, and exact per-pixel coverage fractions from shapely
(the weights exactextract documents: the covered share of each pixel) for real sample features, in EPSG:4326
and in VN-2000 (official shift); the sample image's NDVI by land use; CSV and the `datso stats` CLI."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import rasterio
import rasterio.mask
import shapely
from fastapi.testclient import TestClient
from rasterio.transform import from_origin

from gis.crs import transformer
from layers.settings import get_imagery_settings
from layers.store.rasters import add_raster, open_raster

ROOT = Path(__file__).resolve().parent.parent
BOX = (106.15, 9.85, 106.55, 10.25)        # lon/lat box of the test rasters (inside the sample province)
RES = 0.0002                                # ≈ 22 m
VN_ORIGIN, VN_RES = (None, 20.0), 20.0


def values(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(100, 3000, size=shape), rng.integers(100, 6000, size=shape)]).astype(np.uint16)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, sample_db: str) -> Iterator[Path]:
    src = tmp_path_factory.mktemp("zonal-src")
    reg = tmp_path_factory.mktemp("zonal-reg")
    mp = pytest.MonkeyPatch()
    mp.setenv("DATSO_IMAGERY_DIR", str(reg))
    mp.setenv("DATSO_RASTER_STATS_MAX_FEATURES", "500")
    get_imagery_settings.cache_clear()
    w, h = round((BOX[2] - BOX[0]) / RES), round((BOX[3] - BOX[1]) / RES)
    with rasterio.open(src / "f.tif", "w", driver="GTiff", width=w, height=h, count=2, dtype="uint16",
                       crs="EPSG:4326", transform=from_origin(BOX[0], BOX[3], RES, RES)) as dst:
        dst.write(values((h, w), 1))
    add_raster(src / "f.tif", "field", band_names=["red", "nir"])
    # the same area in VN-2000 TM-3 105°45' (EPSG:9210 as GDAL writes it; registered with the official shift)
    x0, y1 = transformer("EPSG:4326", "EPSG:9210").transform(BOX[0], BOX[3])
    x1, y0 = transformer("EPSG:4326", "EPSG:9210").transform(BOX[2], BOX[1])
    vw, vh = int((x1 - x0) // VN_RES), int((y1 - y0) // VN_RES)
    with rasterio.open(src / "vn.tif", "w", driver="GTiff", width=vw, height=vh, count=2, dtype="uint16",
                       crs="EPSG:9210", transform=from_origin(round(x0), round(y1), VN_RES, VN_RES)) as dst:
        dst.write(values((vh, vw), 2))
    add_raster(src / "vn.tif", "vn")
    from sample_data.imagery import register_sample_s2

    register_sample_s2(sample_db)
    try:
        yield src
    finally:
        mp.undo()
        get_imagery_settings.cache_clear()


@pytest.fixture(scope="module")
def zclient(folder: Path, sample_db: str, settings: Any) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(settings=settings, dsn=sample_db)) as c:
        yield c


def areas_inside(dsn: str, n: int = 6) -> list[tuple[int, str, Any]]:
    """(id, crop, geometry) of growing areas well inside BOX."""
    env = shapely.box(BOX[0] + 0.01, BOX[1] + 0.01, BOX[2] - 0.01, BOX[3] - 0.01)
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT id, crop, ST_AsBinary(geom) FROM growing_areas WHERE ST_Within(geom, "
                         "ST_GeomFromText(%s, 4326)) ORDER BY id LIMIT %s", (env.wkt, n)).fetchall()
    assert len(rows) >= min(n, 3)
    return [(int(i), c, shapely.from_wkb(bytes(g))) for i, c, g in rows]


def exact_stats(path: Path, geom: Any, band: np.ndarray | None = None) -> dict[str, float]:
    """Coverage-weighted statistics computed independently: each pixel's weight is the area of its box covered
    by `geom` (shapely, in the raster's CRS) divided by the pixel's area."""
    with rasterio.open(path) as ds:
        arr = ds.read(1) if band is None else band
        t = ds.transform
        c0, r0 = (int(v) for v in np.floor(~t * (geom.bounds[0], geom.bounds[3])))
        c1, r1 = (int(v) for v in np.ceil(~t * (geom.bounds[2], geom.bounds[1])))
    rows, cols = np.mgrid[r0:r1, c0:c1]
    x0, y0 = t * (cols.ravel(), rows.ravel())
    boxes = shapely.box(x0, y0 + t.e, x0 + t.a, y0)
    w = shapely.area(shapely.intersection(boxes, geom)) / (t.a * -t.e)
    v = arr[rows.ravel(), cols.ravel()].astype("float64")
    keep = w > 0
    w, v = w[keep], v[keep]
    mean = float((w * v).sum() / w.sum())
    return {"count": float(w.sum()), "mean": mean, "min": float(v.min()), "max": float(v.max()),
            "std": float(np.sqrt((w * (v - mean) ** 2).sum() / w.sum()))}


def close(got: dict[str, Any], want: dict[str, float]) -> None:
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    assert got["min"] <= got["p10"] <= got["p50"] <= got["p90"] <= got["max"]


def test_pixel_aligned_polygon_equals_rasterio_mask(folder: Path) -> None:
    from layers.query.zonal import What, zonal

    info = open_raster("field")
    poly = shapely.box(BOX[0] + 100 * RES, BOX[3] - 140 * RES, BOX[0] + 130 * RES, BOX[3] - 110 * RES)
    poly = shapely.union(poly, shapely.box(BOX[0] + 130 * RES, BOX[3] - 120 * RES, BOX[0] + 150 * RES,
                                           BOX[3] - 110 * RES))
    with rasterio.open(info.path) as ds:
        masked, _ = rasterio.mask.mask(ds, [poly], crop=True, filled=False, indexes=2)
    (row,) = zonal(info, [1], np.array([poly], dtype=object), What(band=2))
    assert row["count"] == pytest.approx(masked.count(), rel=1e-9) == 30 * 30 + 20 * 10
    assert row["mean"] == pytest.approx(float(masked.mean()), rel=1e-9)
    assert (row["min"], row["max"]) == (masked.min(), masked.max())
    assert row["std"] == pytest.approx(float(masked.std()), rel=1e-9)


def test_feature_stats_partial_coverage(zclient: TestClient, sample_db: str) -> None:
    info = open_raster("field")
    for fid, _crop, geom in areas_inside(sample_db, 4):
        r = zclient.get(f"/collections/growing_areas/items/{fid}/stats", params={"raster": "field", "band": "nir"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == fid and body["raster"] == "field" and body["measure"] == "b2"
        close(body, exact_stats(info.path, geom, band=rasterio.open(info.path).read(2)))


def test_feature_stats_vn2000_raster(zclient: TestClient, sample_db: str) -> None:
    """A VN-2000 raster: the feature is taken into EPSG:9210 with the official transformation."""
    info = open_raster("vn")
    tr = transformer("EPSG:4326", "EPSG:9210")
    for fid, _crop, geom in areas_inside(sample_db, 3):
        local = shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
        body = zclient.get(f"/collections/growing_areas/items/{fid}/stats", params={"raster": "vn"}).json()
        assert body["crs"] == "EPSG:9210"
        close(body, exact_stats(info.path, local))


def test_expression_stats(zclient: TestClient, sample_db: str) -> None:
    info = open_raster("field")
    with rasterio.open(info.path) as ds:
        red, nir = ds.read(1).astype("float64"), ds.read(2).astype("float64")
    ndvi = (nir - red) / (nir + red)
    fid, _c, geom = areas_inside(sample_db, 1)[0]
    body = zclient.get(f"/collections/growing_areas/items/{fid}/stats",
                       params={"raster": "field", "expression": "(b2-b1)/(b2+b1)"}).json()
    assert body["measure"] == "(b2-b1)/(b2+b1)"
    close(body, exact_stats(info.path, geom, band=ndvi))


def test_batch_with_filters_equals_per_feature(zclient: TestClient, sample_db: str) -> None:
    box = ",".join(str(v) for v in BOX)
    params = {"raster": "field", "expression": "(b2-b1)/(b2+b1)", "bbox": box, "crop": "durian"}
    batch = zclient.get("/collections/growing_areas/stats", params=params).json()
    with psycopg.connect(sample_db) as c:
        ids = [r[0] for r in c.execute("SELECT id FROM growing_areas WHERE crop = 'durian' AND geom && "
                                       "ST_MakeEnvelope(%s, %s, %s, %s, 4326) ORDER BY id", BOX).fetchall()]
    assert [f["id"] for f in batch["features"]] == ids and batch["numberReturned"] == len(ids) > 0
    for f in batch["features"]:
        one = zclient.get(f"/collections/growing_areas/items/{f['id']}/stats",
                          params={"raster": "field", "expression": "(b2-b1)/(b2+b1)"}).json()
        assert one["id"] == f["id"]       # the batch reads one window for all: equal to float rounding
        assert {k: one[k] for k in f if k != "id"} == pytest.approx({k: v for k, v in f.items() if k != "id"},
                                                                     rel=1e-9)
    cql = zclient.get("/collections/growing_areas/stats", params={
        "raster": "field", "expression": "(b2-b1)/(b2+b1)", "filter": "crop = 'durian'", "bbox": box}).json()
    assert cql["features"] == batch["features"]
    text = zclient.get("/collections/growing_areas/stats", params={**params, "f": "csv"})
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [int(r["id"]) for r in rows] == ids
    assert [float(r["mean"]) for r in rows] == pytest.approx([f["mean"] for f in batch["features"]], rel=1e-12)


def test_sample_image_ndvi_follows_land_use(zclient: TestClient, sample_db: str) -> None:
    from layers.catalog.registry import get_layer
    from layers.query.zonal import What, fetch_features, zonal

    info = open_raster("sample_s2")
    assert info.synthetic and info.band_names == ("blue", "green", "red", "nir")
    expr = {"raster": "sample_s2", "expression": "(b4-b3)/(b4+b3)"}

    def area_mean(crops: str) -> float:
        body = zclient.get("/collections/growing_areas/stats", params={**expr, "filter": f"crop IN ({crops})"})
        assert body.status_code == 200, body.text
        f = [x for x in body.json()["features"] if x["count"]]
        return float(np.average([x["mean"] for x in f], weights=[x["count"] for x in f]))

    parcels = get_layer("parcels")

    def parcel_mean(codes: tuple[str, ...]) -> float:
        with psycopg.connect(sample_db) as c:
            ids = [r[0] for r in c.execute("SELECT id FROM parcels WHERE land_use_codes[1] = ANY(%s)",
                                           (list(codes),)).fetchall()]
        got, geoms, _ = fetch_features(sample_db, parcels, None, 100_000)
        pick = np.isin(got, ids)
        rows = zonal(info, list(np.array(got)[pick]), geoms[pick], What(expression="(b4-b3)/(b4+b3)"))
        f = [x for x in rows if x["count"]]
        return float(np.average([x["mean"] for x in f], weights=[x["count"] for x in f]))

    rice, orchard = area_mean("'rice'"), area_mean("'durian','pomelo','coconut'")
    built, water = parcel_mean(("ONT", "ODT", "TMD", "SKC")), parcel_mean(("MNC", "NTS"))
    assert rice > 0.7 and orchard > 0.6, (rice, orchard)
    assert min(rice, orchard) > built + 0.2 > water + 0.2, (rice, orchard, built, water)


@pytest.mark.parametrize("path, params, status, needle", [
    ("/collections/growing_areas/items/1/stats", {}, 400, "raster"),
    ("/collections/growing_areas/items/1/stats", {"raster": "nope"}, 404, "nope"),
    ("/collections/growing_areas/items/99999999/stats", {"raster": "field"}, 404, "99999999"),
    ("/collections/growing_areas/items/x1/stats", {"raster": "field"}, 404, "x1"),
    ("/collections/nope/stats", {"raster": "field"}, 404, "nope"),
    ("/collections/growing_areas/items/1/stats", {"raster": "field", "band": "swir"}, 400, "band"),
    ("/collections/growing_areas/items/1/stats", {"raster": "field", "expression": "b1/b7"}, 400, "b7"),
    ("/collections/growing_areas/items/1/stats", {"raster": "field", "band": "1", "expression": "b1"}, 400, "band"),
    ("/collections/growing_areas/stats", {"raster": "field", "filter": "crop ="}, 400, "CQL2"),
    ("/collections/growing_areas/stats", {"raster": "field", "colour": "red"}, 400, "colour"),
    ("/collections/growing_areas/stats", {"raster": "field", "f": "xml"}, 400, "f"),
    ("/collections/parcels/stats", {"raster": "field"}, 413, "500"),
])
def test_bad_requests(zclient: TestClient, path: str, params: dict[str, str], status: int, needle: str) -> None:
    r = zclient.get(path, params={**params, "lang": "en"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert needle in r.json()["detail"]


def test_cli_stats_csv_and_gpkg(zclient: TestClient, folder: Path, sample_db: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": sample_db, "DATSO_IMAGERY_DIR": os.environ["DATSO_IMAGERY_DIR"]}
    api = zclient.get("/collections/growing_areas/stats", params={
        "raster": "field", "band": "2", "filter": "crop = 'pomelo'",
        "bbox": ",".join(str(v) for v in BOX)}).json()["features"]
    for suffix in ("csv", "gpkg"):
        out = tmp_path / f"stats.{suffix}"
        res = subprocess.run([sys.executable, "-m", "cli.main", "stats", "--layer", "growing_areas", "--raster",
                              "field", "--band", "nir", "--filter", "crop = 'pomelo'", "--bbox",
                              ",".join(str(v) for v in BOX), "--out", str(out)],
                             env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert res.returncode == 0, res.stderr
        back = pd.read_csv(out) if suffix == "csv" else gpd.read_file(out)
        assert list(back["id"]) == [f["id"] for f in api]
        assert list(back["mean"]) == pytest.approx([f["mean"] for f in api], rel=1e-12)
        assert set(back["measure"]) == {"b2"}
        if suffix == "gpkg":
            assert back.crs.to_epsg() == 4326 and back.geometry.notna().all()
    bad = subprocess.run([sys.executable, "-m", "cli.main", "stats", "--layer", "growing_areas", "--raster", "field",
                          "--filter", "crop =", "--out", str(tmp_path / "x.csv")],
                         env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 1 and "filter" in bad.stderr and not (tmp_path / "x.csv").exists()


def test_map_config_offers_the_rasters(zclient: TestClient) -> None:
    import json
    import re

    page = zclient.get("/map").text
    config = json.loads(re.search(r'<script id="datso-config" type="application/json">(.*?)</script>', page,
                                  re.S).group(1))  # type: ignore[union-attr]
    s2 = next(i for i in config["imagery"] if i["name"] == "sample_s2")
    assert s2["synthetic"] is True and s2["tiles"][0].endswith("/imagery/sample_s2/{z}/{x}/{y}.png")
    ndvi = s2["ndvi"][0]
    assert "/rasters/sample_s2/tiles/{z}/{x}/{y}.png?" in ndvi and "colormap_name=rdylgn" in ndvi
    lon, lat = 106.3, 10.0
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 12)
    r = zclient.get(ndvi.split("testserver", 1)[1].replace("{z}/{x}/{y}", f"12/{t.x}/{t.y}"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_folium_export_with_raster_overlay_offline(zclient: TestClient, sample_db: str, tmp_path: Path) -> None:
    import base64
    import re

    from PIL import Image

    env = {**os.environ, "DATABASE_URL": sample_db, "DATSO_IMAGERY_DIR": os.environ["DATSO_IMAGERY_DIR"]}
    out = tmp_path / "rice.html"
    res = subprocess.run([sys.executable, "-m", "cli.main", "map", "export", "--layer", "growing_areas", "--filter",
                          "crop = 'rice'", "--raster", "sample_s2", "--raster-expression", "(b4-b3)/(b4+b3)",
                          "--offline", "--out", str(out)], env=env, capture_output=True, text=True, timeout=180,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    html = out.read_text(encoding="utf-8")
    m = re.search(r'"data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert m is not None and "imageOverlay" in html
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(m.group(1)))).convert("RGBA"))
    assert max(img.shape[:2]) == 1024
    seen = img[img[..., 3] > 0]
    assert len(seen) > 0.3 * img.shape[0] * img.shape[1]
    assert (seen[:, 1] > seen[:, 0]).mean() > 0.5          # RdYlGn: mostly green (vegetation)
    assert "sample_s2 (b4-b3)/(b4+b3) (m\\u00f4 ph\\u1ecfng)" in html   # the layer control (JSON-escaped)
    assert not re.search(r'(src|href)="https?://', html)     # offline: nothing fetched
    bad = subprocess.run([sys.executable, "-m", "cli.main", "map", "export", "--layer", "growing_areas",
                          "--raster", "nope", "--out", str(tmp_path / "x.html")], env=env, capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_folium_route_with_raster_tiles_and_offline_png(zclient: TestClient) -> None:
    """`/maps/{id}.html?raster=…`: online, a Leaflet tile layer of this server's raster tiles (which answer);
    offline, one embedded PNG over the features' extent and nothing fetched; bad raster/expression: 4xx."""
    import base64
    import re

    from PIL import Image

    params = {"filter": "crop = 'rice'", "raster": "sample_s2", "raster_expression": "(b4-b3)/(b4+b3)"}
    r = zclient.get("/maps/growing_areas.html", params=params)
    assert r.status_code == 200, r.text
    m = re.search(r'tileLayer\(\s*"(http://testserver/rasters/sample_s2/tiles/\{z\}/\{x\}/\{y\}\.png\?[^"]+)"',
                  r.text)
    assert m is not None and "colormap_name=rdylgn" in m.group(1)
    assert "sample_s2 (b4-b3)/(b4+b3) (m\\u00f4 ph\\u1ecfng)" in r.text          # named in the layer control
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(106.3, 10.0, 12)
    url = m.group(1).replace("\\u0026", "&")         # a JS string literal in the page: & written as \u0026
    tile = zclient.get(url.split("testserver", 1)[1].replace("{z}/{x}/{y}", f"12/{t.x}/{t.y}"))
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png", (url, tile.text)
    plain = zclient.get("/maps/growing_areas.html", params={"raster": "sample_s2", "lang": "en"})
    assert re.search(r'tileLayer\(\s*"http://testserver/rasters/sample_s2/tiles/\{z\}/\{x\}/\{y\}\.png"', plain.text)
    assert "sample_s2 (synthetic)" in plain.text

    off = zclient.get("/maps/growing_areas.html", params={**params, "offline": "true"})
    assert off.status_code == 200, off.text
    png = re.search(r'"data:image/png;base64,([A-Za-z0-9+/=]+)"', off.text)
    assert png is not None and "imageOverlay" in off.text and "tileLayer(" not in off.text
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(png.group(1)))).convert("RGBA"))
    assert max(img.shape[:2]) == 1024 and (img[..., 3] > 0).mean() > 0.3
    assert not re.search(r'(src|href)="https?://', off.text)

    for bad, status, needle in (({"raster": "nope"}, 404, "nope"),
                                ({"raster": "sample_s2", "raster_expression": "b9-b1"}, 400, "b9"),
                                ({"raster_expression": "b1"}, 400, "raster"),
                                ({"raster": "sample_s2", "raster_expression": "__import__('os')", "offline": "true"},
                                 400, "expression")):
        e = zclient.get("/maps/growing_areas.html", params={**bad, "lang": "en"})
        assert e.status_code == status, e.text
        assert e.headers["content-type"].startswith("application/problem+json") and needle in e.json()["detail"]
