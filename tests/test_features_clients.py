"""Real clients against a running server: OWSLib and GDAL's OAPIF driver (through pyogrio) read collections and
items with bbox, crs and filter; their counts match SQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from owslib.ogcapi.features import Features

from gis.crs import transformer
from layers.catalog.registry import LAYERS


@pytest.fixture(scope="module")
def own_server(sample_db: str, settings: Any) -> Iterator[Any]:
    """A live server over its own app (own asyncpg pool): the session `app` may already have its pool bound to
    the TestClient's event loop, and asyncpg connections must not be shared between event loops."""
    from conftest import LiveServer, free_port

    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


def count(dsn: str, query: str, *args: Any) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute(query, args or None).fetchone()
    assert row is not None
    return int(row[0])


def test_owslib_reads_collections_and_items(own_server: Any, sample_db: str) -> None:
    w = Features(own_server.url)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in w.conformance()["conformsTo"]
    ids = [c["id"] for c in w.collections()["collections"]]
    assert ids == list(LAYERS)
    fc = w.collection_items("auction_plots", limit=1000)
    assert fc["numberMatched"] == count(sample_db, "SELECT count(*) FROM auction_plots")
    assert len(fc["features"]) == fc["numberReturned"]
    fc = w.collection_items("parcels", bbox=[106.2, 9.9, 106.35, 10.05], limit=10000)
    assert len(fc["features"]) == count(
        sample_db, "SELECT count(*) FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(106.2,9.9,106.35,10.05,4326))")
    fc = w.collection_items("auction_plots", filter="status = 'sold'", limit=1000)
    assert len(fc["features"]) == count(sample_db, "SELECT count(*) FROM auction_plots WHERE status = 'sold'")
    q = w.collection_queryables("auction_plots")
    assert "status" in q["properties"]
    one = w.collection_item("auction_plots", str(fc["features"][0]["id"]))
    assert one["properties"]["status"] == "sold"


_GDAL_SCRIPT = """
import json, sys
import pyogrio
args = json.loads(sys.argv[1])
url = args.pop("url")
if "bbox" in args:
    args["bbox"] = tuple(args["bbox"])
if args.pop("list", False):
    print(json.dumps([row[0] for row in pyogrio.list_layers(url)]))
else:
    df = pyogrio.read_dataframe(url, **args)
    pts = df[df.geometry.geom_type == "Point"]
    first = [pts.geometry.iloc[0].x, pts.geometry.iloc[0].y] if len(pts) else None
    print(json.dumps({"n": len(df), "status": sorted(set(df["status"])) if "status" in df else [], "point": first}))
"""


def gdal(**kwargs: Any) -> Any:
    """Run GDAL's OAPIF driver in a child process: pyogrio holds the GIL during GDAL's HTTP calls, which would
    freeze the in-process live server."""
    out = subprocess.run([sys.executable, "-c", _GDAL_SCRIPT, json.dumps(kwargs)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_gdal_oapif_reads_layers_with_bbox_crs_filter(own_server: Any, sample_db: str) -> None:
    url = "OAPIF:" + own_server.url
    assert set(LAYERS) <= set(gdal(url=url, list=True))
    got = gdal(url=url, layer="auction_plots")
    assert got["n"] == count(sample_db, "SELECT count(*) FROM auction_plots")
    # bbox (GDAL turns it into the bbox parameter)
    got = gdal(url=url, layer="parcels", bbox=[106.2, 9.9, 106.35, 10.05])
    assert got["n"] == count(
        sample_db, "SELECT count(*) FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(106.2,9.9,106.35,10.05,4326))")
    # attribute filter (GDAL translates the OGR SQL where into a CQL2 filter for the server)
    got = gdal(url=url, layer="auction_plots", where="status = 'sold'")
    assert got["n"] == count(sample_db, "SELECT count(*) FROM auction_plots WHERE status = 'sold'")
    assert got["status"] == ["sold"]
    # a VN-2000 output CRS through the CRS open option
    got = gdal(url=url, layer="packing_facilities", CRS="http://www.opengis.net/def/crs/EPSG/0/9210")
    assert got["n"] == count(sample_db, "SELECT count(*) FROM packing_facilities")
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT ST_X(geom), ST_Y(geom) FROM packing_facilities "
                        "WHERE GeometryType(geom) = 'POINT' ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    e, n = transformer("OGC:CRS84", "EPSG:9210").transform(row[0], row[1])
    assert abs(got["point"][0] - e) < 0.01 and abs(got["point"][1] - n) < 0.01
