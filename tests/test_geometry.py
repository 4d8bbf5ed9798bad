"""Geometry helpers: validity reported (repair only on request, saying the shape changed), 2D, Multi, true
area (checked against PostGIS geography), the Vietnam envelope."""

from __future__ import annotations

import numpy as np
import psycopg
import shapely
from pyproj import CRS, Transformer

from gis import geometry as geo

BOWTIE = shapely.from_wkt("POLYGON((106.3 10.2,106.301 10.201,106.301 10.2,106.3 10.201,106.3 10.2))")
SQUARE = shapely.box(106.3, 10.2, 106.301, 10.201)


def test_validity_is_explained_not_changed() -> None:
    assert geo.explain_validity(SQUARE) is None
    reason = geo.explain_validity(BOWTIE)
    assert reason is not None and reason.startswith("Self-intersection")
    reasons = geo.validity_reasons([SQUARE, BOWTIE, None])
    assert reasons[0] is None and reasons[1] == reason and reasons[2] is None


def test_repair_reports_shape_change() -> None:
    r = geo.repair(BOWTIE)
    assert r.reason is not None and r.shape_changed and r.geometry.is_valid
    assert r.geometry.geom_type in ("Polygon", "MultiPolygon") and r.area_after > 0
    same = geo.repair(SQUARE)
    assert same.reason is None and not same.shape_changed and same.geometry is SQUARE


def test_force_2d_and_multipolygon() -> None:
    z = shapely.from_wkt("POLYGON Z((106.3 10.2 5,106.301 10.2 5,106.301 10.201 5,106.3 10.2 5))")
    flat = geo.force_2d([z])[0]
    assert not flat.has_z and flat.equals(shapely.force_2d(z))
    multi = geo.to_multipolygon([SQUARE, shapely.MultiPolygon([SQUARE]), shapely.Point(106.3, 10.2)])
    assert [g.geom_type for g in multi] == ["MultiPolygon", "MultiPolygon", "Point"]
    assert multi[0].equals(SQUARE)


def test_true_area_matches_postgis_geography(empty_db: str) -> None:
    # a 100 m x 100 m square on the VN-2000 TM-3 grid of Bến Tre, as lon/lat (pure TM, the area is a
    # property of the shape on the ellipsoid, whatever the datum shift)
    tm = Transformer.from_crs(CRS.from_proj4("+proj=tmerc +lon_0=105.75 +k=0.9999 +x_0=500000 +ellps=WGS84"),
                              CRS.from_proj4("+proj=longlat +ellps=WGS84"), always_xy=True)
    x0, y0 = 560_000.0, 1_128_000.0
    ring = [(x0, y0), (x0 + 100, y0), (x0 + 100, y0 + 100), (x0, y0 + 100), (x0, y0)]
    poly = shapely.Polygon([tm.transform(x, y) for x, y in ring])
    with psycopg.connect(empty_db) as c:
        row = c.execute("SELECT ST_Area(ST_GeomFromText(%s, 4326)::geography, true)", [poly.wkt]).fetchone()
    assert row is not None
    assert abs(geo.area_m2(poly) - row[0]) < 0.01
    # grid area / k² within TM distortion (60 km from the meridian): ~ 10 000 m², not 1e-8 degrees
    assert abs(geo.area_m2(poly) - 10_000 / 0.9999**2) < 10
    assert abs(geo.area_ha(poly) - geo.area_m2(poly) / 10_000) < 1e-12
    assert np.allclose(geo.areas_m2([poly, None]), [geo.area_m2(poly), 0.0])


def test_inside_vietnam_envelope() -> None:
    hanoi = shapely.Point(105.85, 21.03)
    bangkok = shapely.Point(100.5, 13.75)
    truong_sa = shapely.Point(114.3, 8.65)
    hoang_sa = shapely.Point(111.6, 16.5)
    across = shapely.box(101.5, 21.0, 102.5, 21.5)
    ok = geo.inside_vietnam([hanoi, bangkok, truong_sa, hoang_sa, across, None])
    assert ok.tolist() == [True, False, True, True, False, True]
    assert geo.looks_projected([shapely.Point(560000, 1128000), hanoi]).tolist() == [True, False]
