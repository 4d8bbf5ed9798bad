"""Synthetic planning zones and land-price zones for the sample province (deterministic, labelled synthetic).

Both are built from what is already in the database (the 2025 communes and the parcels loaded by
`sample_data.generate`), so they agree with whatever admin units and parcels the sample has:

- planning zones (`planning_zones`): each commune is cut into Voronoi cells of about 1 km² (seeded); a cell's
  plan class is the land use covering the largest parcel area in it (the parcels whose point-on-surface falls in
  the cell), and cells without parcels take a rural class from where they are (rice in the west, aquaculture
  near the coast, perennial orchards elsewhere, urban residential in a town). Plan period 2021-2030, approved by
  a (synthetic) decision of the old province the cell lies in.
- land-price zones (`land_price_zones`): national roads between the towns (QL57, QL60, QL53), provincial roads to
  the market towns and one inter-commune road per commune; positions 1-3 are bands 0-30 m, 30-100 m and
  100-200 m from a road (a better road wins where bands overlap), position 4 is the rest of the commune. Prices
  per m² (2026 table, decision 35/2025/QĐ-UBND, synthetic) fall with the road class, the position and the
  distance to a town, in the range of the Mekong-delta provinces' tables: up to ~20 million ₫/m² for
  residential land on a national road in town, a few hundred thousand at rural position 4, 60,000-200,000 ₫/m²
  for agricultural land.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

M_PER_DEG_LAT = 110_574.0
PLAN_PERIOD = "2021-2030"
TOWNS = [(106.375, 10.240), (105.967, 10.253), (106.343, 9.935), (106.60, 10.05), (106.15, 10.10)]
# (name, class, from town index, to town index): road classes 0 national, 1 provincial
MAIN_ROADS = [("Quốc lộ 57", 0, 1, 0), ("Quốc lộ 60", 0, 0, 2), ("Quốc lộ 53", 0, 1, 2),
              ("Đường tỉnh 885", 1, 0, 3), ("Đường tỉnh 902", 1, 1, 4), ("Đường tỉnh 911", 1, 4, 2)]
ROAD_BASE = (6_000_000, 3_500_000, 1_500_000)     # residential ₫/m², position 1, rural, by road class
BANDS_M = (30.0, 100.0, 200.0)                     # outer edge of positions 1, 2, 3
POSITION_FACTOR = (1.0, 0.55, 0.35, 0.2)
AGRI_FACTOR = (1.0, 0.85, 0.72, 0.6)
PRICE_DECISION = ("35/2025/QĐ-UBND (mô phỏng)", dt.date(2025, 12, 20), 2026)
PLAN_DECISIONS = {"83": ("1420/QĐ-UBND (mô phỏng)", dt.date(2022, 6, 28)),
                  "84": ("1136/QĐ-UBND (mô phỏng)", dt.date(2022, 5, 17)),
                  "86": ("1875/QĐ-UBND (mô phỏng)", dt.date(2022, 8, 9))}


class _Frame:
    """A local equirectangular frame in metres (good to ~0.1 % over the province) for buffers and areas."""

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.kx = 111_320.0 * math.cos(math.radians(lat0))

    def to_m(self, g: BaseGeometry) -> BaseGeometry:
        return shapely.transform(g, lambda c: np.column_stack([(c[:, 0] - self.lon0) * self.kx,
                                                               (c[:, 1] - self.lat0) * M_PER_DEG_LAT]))

    def to_deg(self, g: BaseGeometry) -> BaseGeometry:
        return shapely.transform(g, lambda c: np.column_stack([c[:, 0] / self.kx + self.lon0,
                                                               c[:, 1] / M_PER_DEG_LAT + self.lat0]))


def _polygons(g: BaseGeometry) -> MultiPolygon | None:
    g = shapely.make_valid(g)
    polys = [g] if isinstance(g, Polygon) else [p for p in getattr(g, "geoms", []) if isinstance(p, Polygon)]
    polys = [p for p in polys if p.area > 0]
    return MultiPolygon(polys) if polys else None


def _hex(g: BaseGeometry) -> str:
    return str(shapely.to_wkb(g, hex=True))


def _communes(cur: psycopg.Cursor[Any]) -> list[tuple[str, str, BaseGeometry]]:
    # communes and wards (whatever the level below the province is called), valid now
    rows = cur.execute("SELECT code, name, ST_AsBinary(geom) FROM admin_units WHERE scheme = '2025' "
                       "AND level NOT IN ('province', 'district') AND valid_to IS NULL AND geom IS NOT NULL "
                       "ORDER BY code").fetchall()
    return [(str(c), str(n), shapely.from_wkb(bytes(w))) for c, n, w in rows]


def _old_provinces(cur: psycopg.Cursor[Any]) -> list[tuple[str, BaseGeometry]]:
    rows = cur.execute("SELECT code, ST_AsBinary(geom) FROM admin_units WHERE scheme = '2004' "
                       "AND level = 'province' AND geom IS NOT NULL ORDER BY code").fetchall()
    return [(str(c), shapely.from_wkb(bytes(w))) for c, w in rows]


def _town_km(frame: _Frame, p: Point) -> float:
    pm = frame.to_m(p)
    return min(pm.distance(frame.to_m(Point(x, y))) for x, y in TOWNS) / 1000.0


def _rural_class(frame: _Frame, p: Point) -> str:
    if _town_km(frame, p) < 1.5:
        return "ODT"
    if p.x > 106.55:
        return "NTS"
    return "LUC" if p.x < 106.12 else "CLN"


def load_planning(cur: psycopg.Cursor[Any], seed: int) -> dict[str, int]:
    """Write the planning and land-price zones of the sample (after admin units and parcels)."""
    rng = np.random.default_rng(seed + 97)
    communes = _communes(cur)
    if not communes:
        return {"planning_zones": 0, "land_price_zones": 0}
    allg = shapely.union_all([g for _, _, g in communes])
    minx, miny, maxx, maxy = allg.bounds
    frame = _Frame((minx + maxx) / 2, (miny + maxy) / 2)
    old = _old_provinces(cur)
    plan_rows = _planning_rows(rng, frame, communes, old)
    with cur.copy("COPY planning_zones (zone_code, plan_class, plan_period, decision_no, decision_date, "
                  "commune_code, area_m2, synthetic, geom) FROM STDIN") as cp:
        for row in plan_rows:
            cp.write_row(row)
    # the plan class of a cell with parcels: the land use covering the largest parcel area in it
    cur.execute("""
        UPDATE planning_zones z SET plan_class = v.code
        FROM (SELECT DISTINCT ON (zid) zid, code FROM (
                SELECT z2.id AS zid, p.land_use_codes[1] AS code, sum(p.area_m2) AS a
                FROM parcels p JOIN planning_zones z2 ON ST_Covers(z2.geom, ST_PointOnSurface(p.geom))
                GROUP BY 1, 2) s
              ORDER BY zid, a DESC, code) v
        WHERE z.id = v.zid AND z.plan_class <> v.code""")
    price_rows = _price_rows(rng, frame, communes)
    with cur.copy("COPY land_price_zones (zone_code, commune_code, road_name, segment, position, area_kind, "
                  "price_residential_vnd, price_commercial_vnd, price_production_vnd, price_annual_crop_vnd, "
                  "price_perennial_crop_vnd, price_aquaculture_vnd, decision_no, decision_date, price_year, "
                  "synthetic, geom) FROM STDIN") as cp:
        for row in price_rows:
            cp.write_row(row)
    return {"planning_zones": len(plan_rows), "land_price_zones": len(price_rows)}


def _planning_rows(rng: np.random.Generator, frame: _Frame, communes: Sequence[tuple[str, str, BaseGeometry]],
                   old: Sequence[tuple[str, BaseGeometry]]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    old_tree = shapely.STRtree([g for _, g in old]) if old else None
    for code, _name, geom in communes:
        gm = frame.to_m(geom)
        n = max(1, int(round(gm.area / 1_000_000)))      # about one zone per km²
        x0, y0, x1, y1 = gm.bounds
        pts: list[Point] = []
        tries = 0
        while len(pts) < n and tries < 50 * n:
            tries += 1
            p = Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
            if gm.contains(p):
                pts.append(p)
        cells = [gm] if len(pts) < 2 else list(shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=gm).geoms)
        k = 0
        for cell in cells:
            piece = _polygons(cell.intersection(gm))
            if piece is None:
                continue
            deg = _polygons(frame.to_deg(piece))
            if deg is None:
                continue
            centre = deg.representative_point()
            prov = "86"
            if old_tree is not None:
                hit = old_tree.query(centre, predicate="intersects")
                if len(hit):
                    prov = old[int(hit[0])][0]
            decision, day = PLAN_DECISIONS.get(prov, PLAN_DECISIONS["86"])
            k += 1
            rows.append((f"QH-{code}-{k:04d}", _rural_class(frame, centre), PLAN_PERIOD, decision, day, code,
                         round(piece.area, 2), True, _hex(deg)))
    return rows


def _roads(rng: np.random.Generator, frame: _Frame,
           communes: Sequence[tuple[str, str, BaseGeometry]]) -> list[tuple[str, int, BaseGeometry]]:
    """(name, class, line in metres) in priority order: national, provincial, then one road per commune."""
    out: list[tuple[str, int, BaseGeometry]] = []
    for name, cls, a, b in MAIN_ROADS:
        (ax, ay), (bx, by) = TOWNS[a], TOWNS[b]
        mid = ((ax + bx) / 2 + float(rng.uniform(-0.03, 0.03)), (ay + by) / 2 + float(rng.uniform(-0.03, 0.03)))
        out.append((name, cls, frame.to_m(LineString([(ax, ay), mid, (bx, by)]))))
    for _code, name, geom in communes:
        gm = frame.to_m(geom)
        c = gm.representative_point()
        theta = float(rng.uniform(0, math.pi))
        r = math.sqrt(gm.area) * 1.5
        line = LineString([(c.x - r * math.cos(theta), c.y - r * math.sin(theta)),
                           (c.x + r * math.cos(theta), c.y + r * math.sin(theta))])
        out.append((f"Đường liên xã {name}", 2, line.intersection(gm)))
    return out


def _round(v: float, step: int) -> int:
    return max(step, int(round(v / step)) * step)


def _prices(cls: int, position: int, urban: bool, town_km: float) -> tuple[int, ...]:
    near = 1.0 + 1.5 * math.exp(-town_km / 4.0)
    res = ROAD_BASE[cls] * POSITION_FACTOR[position - 1] * near * (3.0 if urban else 1.0)
    res = _round(res, 10_000)
    agri = AGRI_FACTOR[position - 1] * (1.0 + 0.5 * math.exp(-town_km / 6.0)) * (1.3 if urban else 1.0)
    return (res, _round(res * 0.8, 10_000), _round(res * 0.6, 10_000), _round(90_000 * agri, 1_000),
            _round(110_000 * agri, 1_000), _round(85_000 * agri, 1_000))


def _price_rows(rng: np.random.Generator, frame: _Frame,
                communes: Sequence[tuple[str, str, BaseGeometry]]) -> list[tuple[Any, ...]]:
    roads = _roads(rng, frame, communes)
    decision, day, year = PRICE_DECISION
    rows: list[tuple[Any, ...]] = []
    for code, name, geom in communes:
        gm = shapely.make_valid(frame.to_m(geom))
        ward = name.startswith("Phường")

        def where(g: BaseGeometry, ward: bool = ward) -> tuple[bool, float, str]:
            km = _town_km(frame, g.representative_point())
            urban = ward or km < 3.0          # a ward, or within 3 km of a town centre
            return urban, km, "urban" if urban else "rural"

        covered: BaseGeometry = Polygon()
        k = 0
        for road, cls, line in roads:
            if line.is_empty or line.distance(gm) > BANDS_M[-1]:
                continue
            inner: BaseGeometry = Polygon()
            for pos, outer_m in enumerate(BANDS_M, start=1):
                band = line.buffer(outer_m, quad_segs=4)
                piece = _polygons(band.difference(inner).difference(covered).intersection(gm))
                inner = band
                if piece is None or piece.area < 1.0:
                    continue
                deg = _polygons(frame.to_deg(piece))
                if deg is None:
                    continue
                k += 1
                segment = f"Đoạn qua {name}" if cls < 2 else None
                urban, town_km, kind = where(deg)
                rows.append((f"BG-{code}-{k:03d}", code, road, segment, pos, kind,
                             *_prices(cls, pos, urban, town_km), decision, day, year, True, _hex(deg)))
            covered = covered.union(inner) if not covered.is_empty else inner
        rest = _polygons(gm.difference(covered))
        deg = _polygons(frame.to_deg(rest)) if rest is not None and rest.area >= 1.0 else None
        if deg is not None:
            k += 1
            urban, town_km, kind = where(deg)
            rows.append((f"BG-{code}-{k:03d}", code, None, "Các vị trí còn lại", 4, kind,
                         *_prices(2, 4, urban, town_km), decision, day, year, True, _hex(deg)))
    return rows
