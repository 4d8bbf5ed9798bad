"""datso_client against a live server: every feature exactly once (one download and paged), filters, bbox, CRS
identity, aggregates, the service's problem detail on 4xx, and the README's lines run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
import shapely
from pyproj import Transformer

from datso_client import Client, DatsoError, aggregate, read_collection

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize("paged", [False, True])
def test_whole_layer_exactly_once(live_server: Any, conn: psycopg.Connection, paged: bool) -> None:
    gdf = read_collection(live_server.url, "parcels", paged=paged, page_size=500)
    ids = conn.execute("SELECT id FROM parcels ORDER BY id").fetchall()
    assert gdf.index.is_unique
    assert sorted(int(i) for i in gdf.index) == [i for (i,) in ids]
    assert gdf.crs.is_geographic and gdf.crs.datum.name.startswith("World Geodetic System 1984")
    minx, miny, maxx, maxy = gdf.total_bounds            # lon/lat, x = longitude
    assert 104 < minx < maxx < 108 and 8 < miny < maxy < 12


@pytest.mark.parametrize("paged", [False, True])
def test_filter_bbox_datetime_where(live_server: Any, conn: psycopg.Connection, paged: bool) -> None:
    c = Client(live_server.url)
    gdf = c.read("growing_areas", filter="crop = 'durian' AND area_m2 > 20000", bbox=(106.0, 9.9, 106.7, 10.5),
                 where={"status": "active"}, datetime="2024-01-01/..", paged=paged, page_size=7)
    expected = conn.execute(
        "SELECT id FROM growing_areas WHERE crop = 'durian' AND area_m2 > 20000 AND status = 'active' "
        "AND ST_Intersects(geom, ST_MakeEnvelope(106.0, 9.9, 106.7, 10.5, 4326)) "
        "AND (valid_to IS NULL OR valid_to >= '2024-01-01') ORDER BY id").fetchall()
    assert expected
    assert sorted(int(i) for i in gdf.index) == [i for (i,) in expected]
    assert set(gdf["crop"]) == {"durian"} and set(gdf["status"]) == {"active"}


@pytest.mark.parametrize("paged", [False, True])
def test_crs_identity_vn2000(live_server: Any, conn: psycopg.Connection, paged: bool) -> None:
    gdf = read_collection(live_server.url, "auction_plots", crs="EPSG:9210", paged=paged, page_size=50)
    assert gdf.crs.to_epsg() == 9210
    fid = int(gdf.index[0])
    wkb = conn.execute("SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM auction_plots WHERE id = %s",
                       (fid,)).fetchone()[0]
    p = shapely.from_wkb(bytes(wkb))
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:9210", always_xy=True).transform(p.x, p.y)
    assert gdf.geometry.loc[gdf.index == gdf.index[0]].iloc[0].distance(shapely.Point(x, y)) < 1.0   # metres
    assert 300_000 < x < 800_000 and 1_000_000 < y < 1_300_000


def test_aggregate_frame(live_server: Any, conn: psycopg.Connection) -> None:
    df = aggregate(live_server.url, "growing_areas", ["crop", "status"], sum="area_m2")
    truth = {(c, s): (n, float(a)) for c, s, n, a in conn.execute(
        "SELECT crop, status, count(*), sum(area_m2) FROM growing_areas GROUP BY 1, 2").fetchall()}
    got = {(r.crop, r.status): (r.count, r.sum_area_m2) for r in df.itertuples()}
    assert got.keys() == truth.keys()
    for k, (n, a) in truth.items():
        assert got[k][0] == n and got[k][1] == pytest.approx(a)
    assert list(df.columns) == ["crop", "status", "crop_label", "status_label", "count", "sum_area_m2"]
    months = Client(live_server.url, lang="en").aggregate("growing_areas", "valid_from:month", filter="crop='durian'")
    assert months["count"].sum() == conn.execute("SELECT count(*) FROM growing_areas WHERE crop='durian'").fetchone()[0]


@pytest.mark.parametrize(("call", "status", "words"), [
    (lambda u: read_collection(u, "parcels", filter="nope > 1", lang="en"), 400, ["nope"]),
    (lambda u: read_collection(u, "parcels", bbox=(1, 2, 0, 3), lang="en"), 400, ["bbox"]),
    (lambda u: read_collection(u, "parcels", crs="EPSG:2154", lang="en"), 400, ["crs"]),
    (lambda u: read_collection(u, "nope", lang="en"), 404, []),
    (lambda u: aggregate(u, "growing_areas", "synthetic", lang="en"), 400, ["group_by", "synthetic"]),
    (lambda u: aggregate(u, "growing_areas", "crop", sum="crop", lang="en"), 400, ["sum", "crop"]),
])
def test_errors_carry_the_problem_detail(live_server: Any, call: Any, status: int, words: list[str]) -> None:
    with pytest.raises(DatsoError) as info:
        call(live_server.url)
    assert info.value.status == status
    for w in words:
        assert w in info.value.detail and w in str(info.value)
    assert info.value.problem.get("status") == status


def test_readme_lines(live_server: Any, conn: psycopg.Connection) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python over HTTP"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    ns: dict[str, Any] = {}
    exec(code.group(1).replace("http://127.0.0.1:8000", live_server.url), ns)  # noqa: S102 - the README's own lines
    assert ns["gdf"].crs.to_epsg() == 9210
    assert len(ns["gdf"]) == conn.execute("SELECT count(*) FROM parcels WHERE status = 'leased'").fetchone()[0]
    assert ns["areas"]["count"].sum() == conn.execute("SELECT count(*) FROM growing_areas").fetchone()[0]


def test_transitions_frame(live_server: Any, conn: psycopg.Connection) -> None:
    df = Client(live_server.url, lang="en").transitions("growing_areas")
    assert list(df.columns) == ["period", "to", "label", "count"]
    n = conn.execute("SELECT count(*) FROM history WHERE layer = 'growing_areas' AND action IN ('insert', 'update') "
                     "AND (action = 'insert' OR before->>'status' IS DISTINCT FROM after->>'status')").fetchone()[0]
    assert int(df["count"].sum()) == n
    with pytest.raises(DatsoError) as info:
        Client(live_server.url, lang="en").transitions("growing_areas", period="week")
    assert info.value.status == 400 and "period" in info.value.detail
