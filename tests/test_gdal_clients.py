"""GDAL as a GIS analyst runs it, against a live server: the Debian command-line tools (GDAL 3.6, /usr/bin/ogrinfo
and ogr2ogr) and pyogrio's bundled GDAL (3.12) through the OAPIF, MVT and OGCAPI drivers. Every read is compared
with SQL on the test database: a client that stops early, pages wrongly or loses a filter fails here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from tiles_support import WMQ, decode, sql_rows, tile_of

from gis.crs import transformer
from layers.catalog.registry import LAYERS

OGRINFO = shutil.which("ogrinfo") or "/usr/bin/ogrinfo"
OGR2OGR = shutil.which("ogr2ogr") or "/usr/bin/ogr2ogr"
VN2000_URI = "http://www.opengis.net/def/crs/EPSG/0/9210"
BBOX = (106.2, 9.9, 106.35, 10.05)
DENSE = "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) AS c FROM parcels ORDER BY id LIMIT 1) s"

pytestmark = pytest.mark.skipif(not Path(OGR2OGR).exists(), reason="Debian gdal-bin is not installed")


def gdal_cli(*args: str, timeout: int = 300) -> str:
    """A GDAL command-line tool in a child process (never in-process: the live server shares this interpreter)."""
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False,
                         env={"PATH": "/usr/bin:/bin", "GDAL_HTTP_TIMEOUT": "60"})
    assert out.returncode == 0, f"{' '.join(args)}\n{out.stdout[-1500:]}\n{out.stderr[-2500:]}"
    assert "ERROR" not in out.stderr, out.stderr[-2500:]
    return out.stdout


def sql_count(dsn: str, query: str, *args: Any) -> int:
    return int(sql_rows(dsn, query, *args)[0][0])


def gpkg(path: Path, layer: str) -> Any:
    return pyogrio.read_dataframe(path, layer=layer)   # a local file: no HTTP from this process


_PYOGRIO = """
import json, sys
import pyogrio
a = json.loads(sys.argv[1])
url, kind = a.pop("url"), a.pop("kind")
if "bbox" in a:
    a["bbox"] = tuple(a["bbox"])
if kind == "layers":
    print(json.dumps([[str(v) for v in row] for row in pyogrio.list_layers(url)]))
elif kind == "info":
    info = pyogrio.read_info(url, **a)
    print(json.dumps({"name": info["layer_name"], "crs": info["crs"], "fields": [str(f) for f in info["fields"]],
                      "bounds": list(info["total_bounds"])}))
else:
    df = pyogrio.read_dataframe(url, **a)
    col = next((c for c in ("mvt_id", "status") if c in df), None)
    print(json.dumps({"n": len(df), "epsg": df.crs.to_epsg() if df.crs else None,
                      "values": sorted({str(v) for v in df[col]}) if col else [],
                      "xy": [float(df.geometry.iloc[0].centroid.x), float(df.geometry.iloc[0].centroid.y)]
                      if len(df) else None}))
"""


def gdal312(**kwargs: Any) -> Any:
    """pyogrio (its bundled GDAL 3.12) in a child process: it holds the GIL during GDAL's HTTP calls, which would
    freeze the in-process live server."""
    out = subprocess.run([sys.executable, "-c", _PYOGRIO, json.dumps(kwargs)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2500:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- OAPIF: GDAL 3.6 command line ------------------------------------------------------------------------------

def test_ogrinfo_oapif_lists_every_collection(live_server: Any) -> None:
    out = gdal_cli(OGRINFO, "-ro", "-so", f"OAPIF:{live_server.url}/")
    listed = [line.split(":", 1)[1].split("(")[0].strip() for line in out.splitlines()
              if line[:1].isdigit() and ":" in line]
    assert listed == list(LAYERS)


def test_ogr2ogr_oapif_where_reads_every_row(live_server: Any, sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "leased.gpkg"
    gdal_cli(OGR2OGR, "-f", "GPKG", str(out), f"OAPIF:{live_server.url}/collections/parcels",
             "-where", "status = 'leased'")
    df = gpkg(out, "parcels")
    assert len(df) == sql_count(sample_db, "SELECT count(*) FROM parcels WHERE status = 'leased'") > 10
    assert set(df["status"]) == {"leased"}


def test_ogr2ogr_oapif_spat_reads_every_row(live_server: Any, sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "box.gpkg"
    gdal_cli(OGR2OGR, "-f", "GPKG", str(out), f"OAPIF:{live_server.url}/collections/parcels",
             "-spat", *map(str, BBOX))
    n = sql_count(sample_db, "SELECT count(*) FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(%s,%s,%s,%s,4326))",
                  *BBOX)
    assert len(gpkg(out, "parcels")) == n > 10


def test_ogr2ogr_oapif_to_vn2000_reads_every_row(live_server: Any, sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "vn2000.gpkg"
    gdal_cli(OGR2OGR, "-f", "GPKG", "-t_srs", "EPSG:9210", str(out),
             f"OAPIF:{live_server.url}/collections/auction_plots")
    df = gpkg(out, "auction_plots")
    assert len(df) == sql_count(sample_db, "SELECT count(*) FROM auction_plots") > 10
    assert df.crs.to_epsg() == 9210
    x, y = df.geometry.union_all().centroid.coords[0]
    assert 450_000 < x < 700_000 and 1_000_000 < y < 1_200_000     # TM-3 metres, not degrees


def test_gdal36_crs_in_the_connection_url(live_server: Any, sample_db: str, tmp_path: Path) -> None:
    """GDAL 3.6 has no CRS open option; a `?crs=` on the connection URL is appended to EVERY request it makes
    (/collections/{id}, /api, /queryables, each page): metadata endpoints accept it, and the pages it reads come in
    VN-2000 metres, every row of them."""
    url = f"{live_server.url}/collections/packing_facilities?crs={VN2000_URI}"
    out = tmp_path / "url_crs.gpkg"
    gdal_cli(OGR2OGR, "-f", "GPKG", str(out), f"OAPIF:{url}")
    df = gpkg(out, "packing_facilities")
    assert len(df) == sql_count(sample_db, "SELECT count(*) FROM packing_facilities") > 10
    lon, lat = sql_rows(sample_db, "SELECT ST_X(geom), ST_Y(geom) FROM packing_facilities "
                                   "WHERE GeometryType(geom) = 'POINT' ORDER BY id LIMIT 1")[0]
    e, n = transformer("OGC:CRS84", "EPSG:9210").transform(lon, lat)
    b = df.geometry.bounds     # GDAL 3.6 labels the layer CRS84 (it cannot know better); the numbers are metres
    assert (((b.minx - e).abs() < 0.01) & ((b.miny - n).abs() < 0.01)).any()


def test_metadata_endpoints_accept_forwarded_parameters_data_endpoints_refuse(client: Any) -> None:
    """What GDAL/QGIS/OWSLib forward to every request (crs, bbox-crs, limit, a queryable from the connection URL)
    is accepted by the metadata documents, which answer the same document; a parameter nobody defines is still a
    400 there, and data endpoints keep refusing anything unknown with a problem naming it."""
    forwarded = {"crs": VN2000_URI, "bbox-crs": VN2000_URI, "limit": "1000", "status": "leased", "f": "json"}
    for path in ("/", "/conformance", "/collections", "/collections/parcels", "/collections/parcels/queryables",
                 "/collections/parcels/schema"):
        plain = client.get(path)
        got = client.get(path, params=forwarded)
        assert got.status_code == 200, (path, got.text)
        assert got.json() == plain.json() or path == "/collections"   # /collections: extents are cached alike
        r = client.get(path, params={"nosuch": "1", "lang": "en"})
        assert r.status_code == 400 and "nosuch" in r.json()["detail"], path
    for path, params in [("/collections/parcels/items", {"nosuch": "1"}), ("/collections/parcels/items/1", {"limit": "5"}),
                         ("/collections/parcels/items", {"crs": "EPSG:99999"}),
                         ("/collections/parcels/items", [("crs", VN2000_URI), ("crs", "http://www.opengis.net/def/crs/OGC/1.3/CRS84")])]:
        r = client.get(path, params={**dict(params), "lang": "en"} if isinstance(params, dict) else params + [("lang", "en")])
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", (path, params)
        names = [k for k, _ in (params.items() if isinstance(params, dict) else params)]
        assert names[0] in r.json()["detail"], r.json()
    # the same value twice (GDAL's appended query beside the next link's own) counts once
    r = client.get("/collections/parcels/items", params=[("crs", VN2000_URI), ("crs", VN2000_URI), ("limit", "2")])
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{VN2000_URI}>"
    nxt = next(li["href"] for li in r.json()["links"] if li["rel"] == "next")
    assert nxt.count("crs=") == 1


# -- OAPIF: pyogrio (GDAL 3.12) -------------------------------------------------------------------------------

def test_pyogrio_oapif_vn2000_crs_where_and_bbox(live_server: Any, sample_db: str) -> None:
    url = f"OAPIF:{live_server.url}/collections/parcels"
    got = gdal312(url=url, kind="read", CRS="EPSG:9210", where="status = 'leased'")
    assert got["n"] == sql_count(sample_db, "SELECT count(*) FROM parcels WHERE status = 'leased'")
    assert got["epsg"] == 9210 and got["values"] == ["leased"]
    assert 450_000 < got["xy"][0] < 700_000
    # a spatial filter in the layer's CRS goes to the server as bbox + bbox-crs
    tr = transformer("OGC:CRS84", "EPSG:9210")
    x1, y1 = tr.transform(BBOX[0], BBOX[1])
    x2, y2 = tr.transform(BBOX[2], BBOX[3])
    got = gdal312(url=url, kind="read", CRS="EPSG:9210", bbox=[x1, y1, x2, y2])
    n = sql_count(sample_db, "SELECT count(*) FROM parcels WHERE ST_Intersects(geom, "
                             "ST_Transform(ST_MakeEnvelope(%s,%s,%s,%s,989210), 4326))", x1, y1, x2, y2)
    assert got["n"] == n > 10 and got["epsg"] == 9210


# -- MVT driver -------------------------------------------------------------------------------------------------

def _tile(sample_db: str) -> Any:
    return tile_of(sample_db, DENSE, 15)


def test_mvt_driver_reads_a_tile_url(live_server: Any, sample_db: str) -> None:
    """`MVT:…/{z}/{x}/{y}.pbf` (the driver knows a tile by its suffix and georeferences it from z/x/y): GDAL 3.6
    and 3.12 read the same features as the server's tile decoded by mapbox-vector-tile."""
    t = _tile(sample_db)
    base = f"{live_server.url}/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    import httpx

    ids = {f["id"] for f in decode(httpx.get(base, headers={"accept-encoding": "identity"}).content)["parcels"]
           ["features"]}
    assert len(ids) > 5
    out = gdal_cli(OGRINFO, "-ro", "-al", "-q", "-oo", "CLIP=NO", f"MVT:{base}.pbf")
    got = {int(line.split("=")[1]) for line in out.splitlines() if line.strip().startswith("mvt_id (Integer")}
    assert got == ids
    for suffix in (".pbf", ".mvt"):
        r = gdal312(url=f"MVT:{base}{suffix}", kind="read", CLIP="NO")
        assert r["n"] == len(ids) and {int(v) for v in r["values"]} == ids and r["epsg"] == 3857
        bb = WMQ.xy_bounds(t)
        span = bb.right - bb.left
        assert bb.left - span < r["xy"][0] < bb.right + span


def test_mvt_driver_reads_a_tile_directory_with_its_metadata(live_server: Any, sample_db: str) -> None:
    """`MVT:…/WebMercatorQuad/{z}`: the driver reads `metadata.json` beside it (field types, geometry, bounds)
    and the tiles as `{z}/{x}/{y}.pbf`; the TileJSON serves as its METADATA_FILE as well."""
    t = _tile(sample_db)
    tms = f"{live_server.url}/collections/parcels/tiles/WebMercatorQuad"
    bb = WMQ.xy_bounds(t)
    inner = [str(v) for v in (bb.left + 10, bb.bottom + 10, bb.right - 10, bb.top - 10)]
    out = gdal_cli(OGRINFO, "-ro", "-al", "-so", f"MVT:{tms}/{t.z}", "-spat", *inner)
    assert "Layer name: parcels" in out and "Multi Polygon" in out
    assert "parcel_no: Real" in out or "parcel_no: Integer" in out     # typed by metadata.json, not strings
    count = int(next(line for line in out.splitlines() if line.startswith("Feature Count")).split(":")[1])
    assert count > 5
    for meta in (f"{tms}/tilejson.json", f"{tms}/metadata.json"):
        listed = gdal_cli(OGRINFO, "-ro", "-so", "-oo", f"METADATA_FILE={meta}", f"MVT:{tms}/{t.z}")
        assert "1: parcels" in listed
    r = gdal312(url=f"MVT:{tms}/{t.z}", kind="layers")
    assert r == [["parcels", "MultiPolygon"]]
    # the multi-layer tiles as a directory: every layer, typed by its declared geometry
    listed = gdal_cli(OGRINFO, "-ro", "-so", f"MVT:{live_server.url}/tiles/{t.z}")
    for i, layer in enumerate(LAYERS.values(), 1):
        assert f"{i}: {layer.id}" in listed
    assert "trace_lots (Multi Point)" in listed or "trace_lots (Point)" in listed


def test_tile_suffix_routes_answer_like_the_plain_route(client: Any, sample_db: str) -> None:
    t = _tile(sample_db)
    base = f"/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    plain = client.get(base, headers={"accept-encoding": "identity"})
    for suffix in (".pbf", ".mvt"):
        r = client.get(base + suffix, headers={"accept-encoding": "identity"})
        assert (r.status_code, r.content, r.headers["etag"]) == (200, plain.content, plain.headers["etag"])
    r = client.get(base + ".png")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert ".pbf" in r.json()["detail"]
    meta = client.get("/collections/parcels/tiles/WebMercatorQuad/metadata.json").json()
    assert meta["vector_layers"][0]["id"] == "parcels" and meta["format"] == "pbf"
    assert meta["tilestats"]["layers"][0]["geometry"] == "Polygon"


# -- OGCAPI driver (vector tiles) -----------------------------------------------------------------------------

def test_ogcapi_driver_lists_tile_layers(live_server: Any, sample_db: str) -> None:
    """GDAL 3.12's OGCAPI driver follows collection → tilesets-vector → tileset → tiling-scheme (the TMS) and the
    item template, and makes one layer per zoom. Its vector-tile path reads the collection's extent as TMS
    coordinates, so the extent goes in EPSG:3857 through MINX.. (GDAL's open options)."""
    url = f"OGCAPI:{live_server.url}/collections/auction_plots"
    (xmin, ymin, xmax, ymax), = sql_rows(
        sample_db, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                   "(SELECT ST_Extent(geom_3857) AS e FROM auction_plots) s")
    box = {"MINX": xmin, "MINY": ymin, "MAXX": xmax, "MAXY": ymax}
    info = gdal312(url=url, kind="info", layer=0, API="TILES", **box)
    assert info["name"] == f"Zoom level {LAYERS['auction_plots'].minzoom}"
    assert info["crs"] == "EPSG:3857"
    assert {"plot_code", "status"} <= set(info["fields"])    # read from a real tile
    got = gdal312(url=url, kind="read", layer=f"Zoom level {LAYERS['auction_plots'].maxzoom - 10}", API="TILES",
                  **box)
    assert got["n"] > 0 and got["epsg"] == 3857


def test_tilematrixset_is_readable_as_tms_1_and_2(client: Any) -> None:
    """TMS 2.0 (morecantile) with the TMS 1.0 members beside it, which GDAL 3.6 needs."""
    doc = client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert doc["id"] == doc["identifier"] == "WebMercatorQuad"
    assert doc["crs"] == doc["supportedCRS"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert len(doc["tileMatrices"]) == len(doc["tileMatrix"]) > 20
    for m2, m1 in zip(doc["tileMatrices"], doc["tileMatrix"], strict=True):
        assert (m2["id"], m2["pointOfOrigin"], m2["matrixWidth"]) == (m1["identifier"], m1["topLeftCorner"],
                                                                     m1["matrixWidth"])
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conf
