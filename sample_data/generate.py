"""The synthetic sample province: deterministic, labelled synthetic, in the real geography around
Bến Tre / Trà Vinh / Vĩnh Long (merged into the new Vĩnh Long province, code 86, on 1 July 2025).

`load_sample(dsn, size="small"|"large", seed=N)` writes:
- admin units: the new province and its communes (2025 scheme), the three old provinces and their old
  communes (2004 scheme, valid until 2025-07-01), and the many-to-many old->new crosswalk with area shares;
- public-land parcels (small >= 7,500; large >= 1,000,000) in blocks of rotated lots, denser near towns;
- auction plots at every lifecycle stage, built from parcels planned for auction;
- growing areas (coconut, durian, pomelo, dragon fruit, rice) with codes, packing facilities linked to them,
  traceability lots with EPCIS-style event chains.

Geometry is generated with numpy/shapely in vectorised form and written with COPY, so the large sample
(1M parcels) loads in minutes.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from layers.query.auctions import advance_statuses
from layers.store.connect import connect
from sample_data import names

SIZES = {"small": {"parcels": 7_600, "communes": 40, "old_communes": 96, "auctions": 300,
                   "growing": 420, "facilities": 40, "lots": 300},
         "large": {"parcels": 1_000_000, "communes": 120, "old_communes": 300, "auctions": 600,
                   "growing": 3_000, "facilities": 200, "lots": 2_000}}
PROVINCE_OUTLINE = [(105.86, 10.30), (106.10, 10.38), (106.45, 10.35), (106.80, 10.20), (106.76, 9.95),
                    (106.56, 9.56), (106.30, 9.55), (106.05, 9.80), (105.86, 10.05), (105.86, 10.30)]
TOWNS = [(106.375, 10.240, 2500.0), (105.967, 10.253, 2200.0), (106.343, 9.935, 2000.0),
         (106.60, 10.05, 1500.0), (106.15, 10.10, 1500.0)]  # Bến Tre, Vĩnh Long, Trà Vinh, two market towns
OLD_PROVINCES = [("83", "Bến Tre"), ("84", "Trà Vinh"), ("86", "Vĩnh Long")]
NEW_PROVINCE = ("86", "Vĩnh Long")
REFORM_DATE = dt.date(2025, 7, 1)
REFERENCE_DATE = dt.date(2026, 11, 1)  # the sample's "today": auction dates are placed around it
M_PER_DEG_LAT = 110_574.0
CROP_SPECS = {  # crop: (min ha, max ha, varieties, yield t/ha, harvest months)
    "coconut": (1.0, 12.0, ["Dừa xiêm xanh", "Dừa sáp", "Dừa ta"], 12.0, list(range(1, 13))),
    "durian": (1.0, 8.0, ["Ri6", "Monthong", "Musang King"], 15.0, [5, 6, 7]),
    "pomelo": (1.0, 10.0, ["Bưởi da xanh", "Bưởi Năm Roi"], 18.0, [8, 9, 10, 11]),
    "dragon_fruit": (1.0, 6.0, ["Ruột đỏ", "Ruột trắng"], 25.0, [4, 5, 6, 7, 8]),
    "rice": (0.5, 30.0, ["ST25", "OM5451", "Đài thơm 8"], 6.5, [3, 7, 11]),
}


@dataclass
class Province:
    outline: Polygon
    communes: list[tuple[str, str, Polygon]] = field(default_factory=list)      # (code, name, polygon)
    old_communes: list[tuple[str, str, str, Polygon]] = field(default_factory=list)  # (code, name, prov, poly)


def _lon_scale(lat: float) -> float:
    return 111_320.0 * float(np.cos(np.radians(lat)))


def _voronoi_cells(rng: np.random.Generator, outline: Polygon, n: int) -> list[Polygon]:
    minx, miny, maxx, maxy = outline.bounds
    pts: list[Point] = []
    while len(pts) < n:
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if outline.contains(p):
            pts.append(p)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=outline)
    out = []
    for cell in cells.geoms:
        clipped = cell.intersection(outline)
        if clipped.is_empty:
            continue
        if clipped.geom_type == "MultiPolygon":
            clipped = max(clipped.geoms, key=lambda g: g.area)
        out.append(shapely.make_valid(clipped.buffer(0)))
    out.sort(key=lambda g: (-round(g.centroid.y, 3), round(g.centroid.x, 3)))
    return out


def build_province(seed: int, n_communes: int, n_old: int) -> Province:
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    outline = Polygon(PROVINCE_OUTLINE)
    prov = Province(outline)
    for i, (cell, name) in enumerate(zip(_voronoi_cells(rng, outline, n_communes),
                                         names.place_names(prng, n_communes), strict=True)):
        prov.communes.append((f"{29000 + 3 * i:05d}", name, cell))
    old_names = names.place_names(random.Random(seed + 1), n_old)
    for i, cell in enumerate(_voronoi_cells(rng, outline, n_old)):
        c = cell.centroid
        # old provinces split the area: Vĩnh Long west, Bến Tre north-east, Trà Vinh south-east
        old_prov = "86" if c.x < 106.12 else ("83" if c.y > 10.02 else "84")
        prov.old_communes.append((f"{28000 + 2 * i:05d}", old_names[i], old_prov, cell))
    return prov


def _mp(g: BaseGeometry) -> MultiPolygon:
    if isinstance(g, MultiPolygon):
        return g
    if isinstance(g, Polygon):
        return MultiPolygon([g])
    polys = [p for p in getattr(g, "geoms", []) if isinstance(p, Polygon)]
    return MultiPolygon(polys)


# --- parcels ---------------------------------------------------------------------------------------------

def generate_parcel_geometries(seed: int, n: int, outline: Polygon,
                               exclude: Sequence[Polygon] = ()) -> np.ndarray:
    """`n` non-overlapping quadrilateral lots in rotated blocks (one block per grid cell), denser near towns.

    Returns an array of shapely Polygons (EPSG:4326)."""
    rng = np.random.default_rng(seed + 11)
    dense = n > 100_000
    cell_m = 300.0 if dense else 450.0
    minx, miny, maxx, maxy = outline.bounds
    lat0 = (miny + maxy) / 2
    kx = _lon_scale(lat0)
    nx = int((maxx - minx) * kx / cell_m)
    ny = int((maxy - miny) * M_PER_DEG_LAT / cell_m)
    cx = minx + (np.arange(nx) + 0.5) * cell_m / kx
    cy = miny + (np.arange(ny) + 0.5) * cell_m / M_PER_DEG_LAT
    gx, gy = np.meshgrid(cx, cy)
    gx, gy = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(shapely.buffer(outline, -cell_m / kx), gx, gy)
    gx, gy = gx[inside], gy[inside]
    if exclude:  # keep blocks out of cells that touch an excluded area (growing areas)
        half_x, half_y = cell_m / 2 / kx, cell_m / 2 / M_PER_DEG_LAT
        boxes = shapely.box(gx - half_x, gy - half_y, gx + half_x, gy + half_y)
        hit = shapely.STRtree(list(exclude)).query(boxes, predicate="intersects")[0]
        keep = np.ones(gx.size, dtype=bool)
        keep[hit] = False
        gx, gy = gx[keep], gy[keep]
    weight = np.full(gx.shape, 0.15)
    for tx, ty, sigma in TOWNS:
        d2 = ((gx - tx) * kx) ** 2 + ((gy - ty) * M_PER_DEG_LAT) ** 2
        weight += np.exp(-d2 / (2 * (sigma * (3 if dense else 2)) ** 2))
    order = rng.choice(gx.size, size=gx.size, replace=False, p=weight / weight.sum())
    polys: list[np.ndarray] = []
    total = 0
    max_side = cell_m * 0.95
    for idx in order:
        if total >= n:
            break
        w = rng.uniform(10, 22) if dense else rng.uniform(14, 34)
        d = rng.uniform(18, 34) if dense else rng.uniform(22, 60)
        cols = int(rng.integers(4, 13))
        rows = int(rng.integers(2, 9))
        # the block may have any rotation: keep its diagonal inside the cell so blocks never overlap
        while np.hypot(cols * w, rows * d) > max_side and (cols > 1 or rows > 1):
            if cols * w >= rows * d and cols > 1:
                cols -= 1
            else:
                rows -= 1
        theta = rng.uniform(0, np.pi / 2)
        # lot corners in block-local metres, 0.6 m gaps so lots never touch
        ii, jj = np.meshgrid(np.arange(cols), np.arange(rows))
        x0 = (ii.ravel() - cols / 2) * w + 0.3
        y0 = (jj.ravel() - rows / 2) * d + 0.3
        ww, dd = w - 0.6, d - 0.6
        jitter = rng.uniform(-0.25, 0.25, size=(x0.size, 4, 2))  # metres; gaps are 0.6 m
        corners = np.stack([np.stack([x0, y0], -1), np.stack([x0 + ww, y0], -1),
                            np.stack([x0 + ww, y0 + dd], -1), np.stack([x0, y0 + dd], -1)], axis=1)
        corners = corners + jitter
        c, s = np.cos(theta), np.sin(theta)
        rx = corners[..., 0] * c - corners[..., 1] * s
        ry = corners[..., 0] * s + corners[..., 1] * c
        lon = gx[idx] + rx / kx
        lat = gy[idx] + ry / M_PER_DEG_LAT
        ring = np.stack([lon, lat], -1)
        ring = np.concatenate([ring, ring[:, :1, :]], axis=1)
        polys.append(ring)
        total += ring.shape[0]
    if total < n:
        raise RuntimeError(f"province too small for {n} parcels ({total} generated)")
    rings = np.concatenate(polys)[:n]
    return shapely.polygons(rings)


PUBLIC_USES = ["TSC", "DGD", "DYT", "DVH", "DTT", "DKH", "DSK", "TMD", "SKC", "DGT", "DTL", "MNC", "PNK",
               "BCS", "NTS", "CLN", "LUC", "HNK", "ONT", "ODT", "TIN"]
USE_WEIGHTS = np.array([6, 5, 2, 2, 2, 1, 3, 4, 3, 5, 4, 3, 3, 8, 6, 10, 9, 6, 12, 6, 1], dtype=float)
PARCEL_STATUS = ["managed", "leased", "allocated", "planned_for_auction", "auctioned", "encroached"]
STATUS_WEIGHTS = np.array([60, 14, 12, 6, 5, 3], dtype=float)
MANAGERS = ["UBND xã", "Trung tâm Phát triển quỹ đất tỉnh", "Sở Nông nghiệp và Môi trường",
            "Sở Giáo dục và Đào tạo", "Sở Y tế", "Công an tỉnh", "Ban quản lý dự án tỉnh"]


def _copy_rows(cur: psycopg.Cursor[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    n = 0
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:  # noqa: S608 - fixed names
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def _pg_array(values: Sequence[Any]) -> str:
    return "{" + ",".join(str(v) for v in values) + "}"


def _parcel_rows(seed: int, polys: np.ndarray, prov: Province, start: int,
                 progress: Callable[[int], None] | None) -> Iterable[tuple[Any, ...]]:
    rng = np.random.default_rng(seed + 23)
    n = polys.size
    cent = shapely.centroid(polys)
    tree = shapely.STRtree([c[2] for c in prov.communes])
    pi, ci = tree.query(cent, predicate="within")
    commune_idx = np.full(n, -1)
    commune_idx[pi] = ci
    missing = commune_idx < 0
    if missing.any():  # centroids on a boundary: nearest commune
        commune_idx[missing] = tree.nearest(cent[missing])
    old_tree = shapely.STRtree([c[3] for c in prov.old_communes])
    opi, oci = old_tree.query(cent, predicate="within")
    old_idx = np.full(n, -1)
    old_idx[opi] = oci
    uses = rng.choice(len(PUBLIC_USES), size=n, p=USE_WEIGHTS / USE_WEIGHTS.sum())
    second = rng.random(n) < 0.08
    uses2 = rng.choice(len(PUBLIC_USES), size=n, p=USE_WEIGHTS / USE_WEIGHTS.sum())
    status = rng.choice(len(PARCEL_STATUS), size=n, p=STATUS_WEIGHTS / STATUS_WEIGHTS.sum())
    managers = rng.integers(0, len(MANAGERS), size=n)
    lat = shapely.get_y(cent)
    kx = 111_320.0 * np.cos(np.radians(lat))
    # planar area in a local equirectangular frame (metres), good to ~0.1 % for lots this small
    coords = shapely.get_coordinates(polys).reshape(n, 5, 2)
    xm, ym = coords[..., 0] * kx[:, None], coords[..., 1] * M_PER_DEG_LAT
    area = 0.5 * np.abs(np.sum(xm[:, :-1] * ym[:, 1:] - xm[:, 1:] * ym[:, :-1], axis=1))
    chunk = 50_000
    wkb: np.ndarray | None = None
    sheet_counter: dict[tuple[int, int], int] = {}
    prng = random.Random(seed + 29)
    for k in range(n):
        c = int(commune_idx[k])
        code, cname, _ = prov.communes[c]
        # map sheets: 1 sheet per ~0.02 deg cell inside a commune; parcels numbered within a sheet
        sheet = 1 + (int((cent[k].x - 105.8) / 0.02) * 31 + int((cent[k].y - 9.5) / 0.02)) % 180
        key = (c, sheet)
        sheet_counter[key] = sheet_counter.get(key, 0) + 1
        codes = [PUBLIC_USES[uses[k]]]
        if second[k] and uses2[k] != uses[k]:
            codes.append(PUBLIC_USES[uses2[k]])
        if k % chunk == 0:
            part = polys[k : k + chunk]
            wkb = shapely.to_wkb(shapely.multipolygons(part, indices=np.arange(part.size)), hex=True)
        assert wkb is not None
        geom_hex = wkb[k % chunk]
        old_code = prov.old_communes[int(old_idx[k])][0] if old_idx[k] >= 0 else None
        yield (start + k, code, old_code, sheet, sheet_counter[key], names.address(prng, cname),
               round(float(area[k]), 2), _pg_array(codes), MANAGERS[managers[k]], PARCEL_STATUS[status[k]],
               None, True, geom_hex)
        if progress and k % 10_000 == 0:
            progress(k)


PARCEL_COLUMNS = ("id", "commune_code", "old_commune_code", "map_sheet", "parcel_no", "address", "area_m2",
                  "land_use_codes", "managing_body", "status", "certificate_no", "synthetic", "geom")


def _gtin(rng: random.Random) -> str:
    body = "0893" + "".join(str(rng.randint(0, 9)) for _ in range(9))
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def _ewkb(g: BaseGeometry) -> str:
    return str(shapely.to_wkb(g, hex=True))


@dataclass
class LoadReport:
    counts: dict[str, int]
    seconds: float
    skipped: bool = False


def _counts(cur: psycopg.Cursor[Any]) -> dict[str, int]:
    out = {}
    for t in ("admin_units", "admin_crosswalk", "parcels", "auction_plots", "growing_areas",
              "packing_facilities", "trace_lots", "trace_events"):
        row = cur.execute(f"SELECT count(*) FROM {t}").fetchone()  # noqa: S608 - fixed names
        out[t] = int(row[0]) if row else 0
    return out


LAYER_TABLES = ("trace_events", "trace_lots", "packing_facility_growing_areas", "packing_facilities",
                "growing_areas", "auction_plots", "parcels", "admin_crosswalk", "admin_units")


def load_sample(dsn: str, size: str = "small", seed: int = 7, force: bool = False,
                progress: Callable[[str, int, int], None] | None = None) -> LoadReport:
    """Generate and load the sample province into the (migrated) database at `dsn`.

    Skips (and says so) when the layer tables already hold data, unless `force` empties them first."""
    if size not in SIZES:
        raise ValueError(f"unknown sample size {size!r}; use one of {', '.join(SIZES)}")
    spec = SIZES[size]
    t0 = time.perf_counter()
    with connect("writer", dsn=dsn) as conn, conn.cursor() as cur:
        existing = _counts(cur)
        if any(existing.values()) and not force:
            return LoadReport(existing, time.perf_counter() - t0, skipped=True)
        cur.execute("SET LOCAL datso.audit = 'off'")  # synthetic bulk load: no per-row audit trail
        cur.execute("SET LOCAL synchronous_commit = off")
        if force:
            cur.execute("TRUNCATE " + ", ".join(LAYER_TABLES) + " RESTART IDENTITY CASCADE")
        prov = build_province(seed, spec["communes"], spec["old_communes"])
        _load_admin(cur, prov)
        n = spec["parcels"]

        def tick(k: int) -> None:
            if progress:
                progress("parcels", k, n)

        growing = place_growing_areas(seed, spec["growing"], prov)
        polys = generate_parcel_geometries(seed, n, prov.outline, exclude=[g[0] for g in growing])
        _copy_rows(cur, "parcels", PARCEL_COLUMNS, _parcel_rows(seed, polys, prov, 1, tick))
        if progress:
            progress("parcels", n, n)
        cur.execute("SELECT setval(pg_get_serial_sequence('parcels', 'id'), (SELECT max(id) FROM parcels))")
        _load_auctions(cur, seed, spec["auctions"], prov)
        # a safety net (a load that straddles a registration deadline): the statuses the dates imply now
        advance_statuses(cur, dt.datetime.now(dt.UTC))
        ga_ids = _load_growing_areas(cur, seed, growing, prov)
        fac = _load_facilities(cur, seed, spec["facilities"], prov, ga_ids)
        _load_trace(cur, seed, spec["lots"], fac)
        counts = _counts(cur)
        conn.commit()
    with connect("writer", dsn=dsn, autocommit=True) as conn:
        for t in ("parcels", "auction_plots", "growing_areas", "admin_units"):
            conn.execute(f"ANALYZE {t}")  # noqa: S608 - fixed names
    return LoadReport(counts, time.perf_counter() - t0)


def _load_admin(cur: psycopg.Cursor[Any], prov: Province) -> None:
    rows: list[tuple[Any, ...]] = [(NEW_PROVINCE[0], "2025", "province", NEW_PROVINCE[1] + " (mô phỏng)", None,
                                    REFORM_DATE, None, True, _ewkb(_mp(prov.outline)))]
    for code, name, poly in prov.communes:
        rows.append((code, "2025", "commune", f"Xã {name}", NEW_PROVINCE[0], REFORM_DATE, None, True,
                     _ewkb(_mp(poly))))
    old_geoms: dict[str, list[Polygon]] = {}
    for _code, _name, p, poly in prov.old_communes:
        old_geoms.setdefault(p, []).append(poly)
    for pcode, pname in OLD_PROVINCES:
        union = shapely.union_all(old_geoms.get(pcode, []))
        rows.append((pcode, "2004", "province", pname, None, dt.date(2004, 1, 1), REFORM_DATE, True,
                     _ewkb(_mp(shapely.make_valid(union)))))
    for code, name, p, poly in prov.old_communes:
        rows.append((code, "2004", "commune", f"Xã {name}", p, dt.date(2004, 1, 1), REFORM_DATE, True,
                     _ewkb(_mp(poly))))
    _copy_rows(cur, "admin_units", ("code", "scheme", "level", "name", "parent_code", "valid_from", "valid_to",
                                    "synthetic", "geom"), rows)
    cw: list[tuple[Any, ...]] = []
    new_tree = shapely.STRtree([c[2] for c in prov.communes])
    for ocode, oname, _p, opoly in prov.old_communes:
        for j in new_tree.query(opoly, predicate="intersects"):
            ncode, nname, npoly = prov.communes[int(j)]
            share = opoly.intersection(npoly).area / opoly.area
            if share >= 0.02:
                cw.append((ocode, "2004", f"Xã {oname}", "commune", ncode, "2025", f"Xã {nname}",
                           round(share, 5), REFORM_DATE, "Nghị quyết 202/2025/QH15 (mô phỏng)"))
    for pcode, pname in OLD_PROVINCES:
        cw.append((pcode, "2004", pname, "province", NEW_PROVINCE[0], "2025", NEW_PROVINCE[1], 1, REFORM_DATE,
                   "Nghị quyết 202/2025/QH15"))
    _copy_rows(cur, "admin_crosswalk", ("old_code", "old_scheme", "old_name", "old_level", "new_code",
                                        "new_scheme", "new_name", "share", "effective", "legal_basis"), cw)


def _load_auctions(cur: psycopg.Cursor[Any], seed: int, n: int, prov: Province) -> None:
    rng = random.Random(seed + 41)
    rows = cur.execute(
        "SELECT id, commune_code, address, area_m2, land_use_codes[1], ST_AsBinary(geom) FROM parcels "
        "WHERE status IN ('planned_for_auction', 'auctioned') ORDER BY id LIMIT %s", (n,)).fetchall()
    names_by_code = {c[0]: c[1] for c in prov.communes}
    statuses = ["planned", "announced", "registration_open", "closed", "sold", "cancelled"]
    # dates agree with statuses on the day the sample is loaded: plots still ahead (planned, announced, open)
    # are placed around today (or REFERENCE_DATE if later), finished ones around REFERENCE_DATE (or today if
    # earlier), so every stage is present and none is "registration open" after its registration end
    today = dt.date.today()
    ahead, behind = max(REFERENCE_DATE, today), min(REFERENCE_DATE, today)
    out = []
    for i, (pid, commune, addr, area, use, wkb) in enumerate(rows):
        status = statuses[i % len(statuses)] if i < 60 else rng.choices(statuses, [15, 20, 25, 10, 25, 5])[0]
        use = use if use in ("ONT", "ODT", "TMD", "SKC", "CLN") else rng.choice(["ONT", "ODT", "TMD"])
        per_m2 = rng.choice([3, 4, 5, 6, 8, 10, 12, 15, 20, 25]) * 1_000_000 if use in ("ONT", "ODT") \
            else rng.choice([1, 2, 3, 5]) * 1_000_000
        price = int(round(float(area) * per_m2, -6))
        pct = rng.choice([10, 15, 20]) if REFERENCE_DATE.year < 2026 or status in ("sold", "closed") \
            else rng.choice([10, 20, 30, 50])
        offset = {"planned": 90, "announced": 40, "registration_open": 12, "closed": -3, "sold": -30,
                  "cancelled": rng.choice([-20, 20])}[status] + rng.randint(-6, 6)
        anchor = ahead if status in ("planned", "announced", "registration_open") else behind
        auction_day = anchor + dt.timedelta(days=offset)
        auction_at = dt.datetime.combine(auction_day, dt.time(8, 30), tzinfo=dt.timezone(dt.timedelta(hours=7)))
        reg_start = auction_at - dt.timedelta(days=30)
        reg_end = auction_at - dt.timedelta(days=3, hours=-8)
        result = int(price * rng.uniform(1.0, 1.8) // 1_000_000 * 1_000_000) if status == "sold" else None
        if result is not None and result < price:
            result = price
        cname = names_by_code.get(commune, "")
        out.append((
            f"DG-{auction_day.year}-{commune}-{i + 1:04d}", commune, addr, _pg_array([pid]), area, use,
            "long_term" if use in ("ONT", "ODT") else "50 năm", price, max(1_000_000, price // 100 // 1_000_000
                                                                            * 1_000_000),
            price * pct // 100, pct, "Luật Đấu giá tài sản 2016, sửa đổi 2024; Điều 39 (mô phỏng)",
            rng.choice([200_000, 500_000, 1_000_000]), reg_start, reg_end,
            reg_start.date() + dt.timedelta(days=5), reg_start.date() + dt.timedelta(days=8), auction_at,
            f"Hội trường UBND xã {cname}", rng.choice(["Đấu giá trực tiếp bằng lời nói", "Bỏ phiếu gián tiếp",
                                                       "Đấu giá trực tuyến"]),
            rng.choice(["Trung tâm Dịch vụ đấu giá tài sản tỉnh", "Công ty Đấu giá hợp danh Nam Bộ (mô phỏng)"]),
            "Trung tâm Phát triển quỹ đất tỉnh", status, result, True, bytes(wkb).hex()))
    cols = ("plot_code", "commune_code", "address", "parcel_ids", "area_m2", "land_use_code", "term",
            "starting_price_vnd", "bid_step_vnd", "deposit_vnd", "deposit_pct", "deposit_legal_basis",
            "dossier_fee_vnd", "registration_start", "registration_end", "viewing_start", "viewing_end",
            "auction_date", "auction_place", "auction_form", "organiser", "asset_owner", "status",
            "result_price_vnd", "synthetic", "geom")
    # geometry came back as WKB of a MultiPolygon: COPY accepts hex WKB
    _copy_rows(cur, "auction_plots", cols, out)


def place_growing_areas(seed: int, n: int, prov: Province) -> list[tuple[Polygon, str, float]]:
    """`n` non-overlapping growing-area polygons (polygon, crop, hectares), placed before the parcels so
    that parcel blocks can keep out of them."""
    rng = random.Random(seed + 53)
    nrng = np.random.default_rng(seed + 53)
    minx, miny, maxx, maxy = prov.outline.bounds
    crops = list(CROP_SPECS)
    placed: list[tuple[Polygon, str, float]] = []
    grid: dict[tuple[int, int], list[Polygon]] = {}
    cell = 0.01  # ~1 km buckets for the overlap check
    attempts = 0
    while len(placed) < n and attempts < n * 50:
        attempts += 1
        x, y = nrng.uniform(minx, maxx), nrng.uniform(miny, maxy)
        crop = crops[len(placed) % len(crops)] if len(placed) < 50 else rng.choice(crops)
        lo, hi = CROP_SPECS[crop][0], CROP_SPECS[crop][1]
        ha = rng.uniform(lo, hi)
        w = (ha * 10_000) ** 0.5 * rng.uniform(0.6, 1.6)
        h = ha * 10_000 / w
        kx = _lon_scale(y)
        theta = rng.uniform(0, np.pi / 2)
        local = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2 * 0.95, h / 2], [-w / 2, h / 2 * 1.05]])
        c, s = np.cos(theta), np.sin(theta)
        rot = np.stack([local[:, 0] * c - local[:, 1] * s, local[:, 0] * s + local[:, 1] * c], -1)
        poly = Polygon(np.stack([x + rot[:, 0] / kx, y + rot[:, 1] / M_PER_DEG_LAT], -1))
        if not prov.outline.contains(poly):
            continue
        bx0, by0, bx1, by1 = poly.bounds
        keys = [(i, j) for i in range(int(bx0 / cell), int(bx1 / cell) + 1)
                for j in range(int(by0 / cell), int(by1 / cell) + 1)]
        if any(poly.intersects(q) for k in keys for q in grid.get(k, ())):
            continue
        for k in keys:
            grid.setdefault(k, []).append(poly)
        placed.append((poly, crop, ha))
    return placed


def _load_growing_areas(cur: psycopg.Cursor[Any], seed: int, placed: list[tuple[Polygon, str, float]],
                        prov: Province) -> list[tuple[int, str, str]]:
    rng = random.Random(seed + 59)
    rows: list[tuple[Any, ...]] = []
    communes = prov.communes
    c_tree = shapely.STRtree([c[2] for c in communes])
    seq: dict[str, int] = {}
    for poly, crop, ha in placed:
        _lo, _hi, varieties, yld, months = CROP_SPECS[crop]
        hits = c_tree.query(poly.centroid, predicate="within")
        code_c, cname, _ = communes[int(hits[0]) if len(hits) else int(c_tree.nearest(poly.centroid))]
        seq[code_c] = seq.get(code_c, 0) + 1
        status = "active" if len(rows) % 10 < 7 else ["draft", "suspended", "revoked", "expired"][len(rows) % 4]
        reason = {"suspended": "Phát hiện sinh vật gây hại thuộc diện kiểm dịch (mô phỏng)",
                  "revoked": "Không duy trì điều kiện theo TCCS 774:2020/BVTV (mô phỏng)"}.get(status)
        valid_from = dt.date(2022 + len(rows) % 4, 1 + len(rows) % 12, 1)
        yy = valid_from.year % 100
        markets = ["VN"] + rng.sample(["CN", "US", "EU", "JP", "KR", "AU"], rng.randint(0, 3))
        rows.append((f"VN-86-{code_c}-{seq[code_c]:03d}-{yy:02d}", crop, rng.choice(varieties),
                     round(ha * 10_000, 2), names.person(rng), rng.choice([None, f"HTX Nông nghiệp {cname}"]),
                     code_c, _pg_array(markets), rng.choice(["VietGAP", "VietGAP", "GlobalGAP", "Organic"]),
                     status, reason, round(ha * yld, 2), _pg_array(months), valid_from,
                     valid_from + dt.timedelta(days=3 * 365), True, _ewkb(MultiPolygon([poly]))))
    cols = ("code", "crop", "variety", "area_m2", "owner", "cooperative", "commune_code", "markets", "standard",
            "status", "status_reason", "expected_yield_t", "harvest_months", "valid_from", "valid_to",
            "synthetic", "geom")
    _copy_rows(cur, "growing_areas", cols, rows)
    return [(int(r[0]), str(r[1]), str(r[2]))
            for r in cur.execute("SELECT id, code, crop FROM growing_areas ORDER BY id").fetchall()]


def _load_facilities(cur: psycopg.Cursor[Any], seed: int, n: int, prov: Province,
                     growing: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    rng = random.Random(seed + 67)
    communes = prov.communes
    out = []
    for i in range(n):
        code_c, cname, poly = communes[i % len(communes)]
        p = poly.representative_point()
        status = "active" if i % 8 else rng.choice(["draft", "suspended"])
        geom: BaseGeometry = p
        if i % 5 == 0:  # some facilities have a footprint polygon
            d = 0.0004
            geom = MultiPolygon([Polygon([(p.x - d, p.y - d), (p.x + d, p.y - d), (p.x + d, p.y + d),
                                          (p.x - d, p.y + d)])])
        out.append({"code": f"VN-86-PH-{i + 1:04d}", "name": f"Cơ sở đóng gói {cname} {i + 1}",
                    "owner": names.person(rng), "commune_code": code_c,
                    "address": names.address(rng, cname),
                    "markets": _pg_array(["VN"] + rng.sample(["CN", "US", "EU", "JP", "KR"], rng.randint(1, 3))),
                    "status": status, "capacity": rng.choice([5, 10, 20, 40]), "point": p,
                    "geom": _ewkb(geom)})
    cols = ("code", "name", "owner", "commune_code", "address", "markets", "status", "capacity_t_per_day",
            "synthetic", "geom")
    _copy_rows(cur, "packing_facilities", cols,
               [(f["code"], f["name"], f["owner"], f["commune_code"], f["address"], f["markets"], f["status"],
                 f["capacity"], True, f["geom"]) for f in out])
    ids = [int(r[0]) for r in cur.execute("SELECT id FROM packing_facilities ORDER BY id").fetchall()]
    links: list[tuple[int, int]] = []
    for f, fid in zip(out, ids, strict=True):
        f["id"] = fid
        chosen = rng.sample(growing, min(len(growing), rng.randint(2, 6)))
        f["growing"] = chosen
        links.extend((fid, g[0]) for g in chosen)
    _copy_rows(cur, "packing_facility_growing_areas", ("facility_id", "growing_area_id"), sorted(set(links)))
    return out


PRODUCTS = {"coconut": "Dừa tươi", "durian": "Sầu riêng", "pomelo": "Bưởi da xanh",
            "dragon_fruit": "Thanh long", "rice": "Gạo ST25"}


def _load_trace(cur: psycopg.Cursor[Any], seed: int, n: int, facilities: list[dict[str, Any]]) -> None:
    rng = random.Random(seed + 79)
    tz = dt.timezone(dt.timedelta(hours=7))
    gtins = {crop: _gtin(rng) for crop in PRODUCTS}
    lots = []
    active = [f for f in facilities if f["status"] == "active"] or facilities
    for i in range(n):
        fac = active[i % len(active)]
        origin = rng.sample(fac["growing"], min(len(fac["growing"]), rng.randint(1, 2)))
        crop = origin[0][2]
        harvest = REFERENCE_DATE - dt.timedelta(days=rng.randint(1, 300))
        pack = harvest + dt.timedelta(days=rng.randint(0, 2))
        shelf = {"rice": 365, "coconut": 45, "durian": 10, "pomelo": 60, "dragon_fruit": 30}[crop]
        lot_no = f"L{pack:%y%m%d}-{i + 1:04d}"
        p = fac["point"]
        lots.append((gtins[crop], lot_no, PRODUCTS[crop], fac["name"], round(rng.uniform(200, 5000), 3), "KGM",
                     _pg_array([o[1] for o in origin]), fac["code"], harvest, pack,
                     pack + dt.timedelta(days=shelf), True, _ewkb(p), origin, crop))
    _copy_rows(cur, "trace_lots", ("gtin", "lot_number", "product", "producer", "quantity", "unit",
                                   "origin_codes", "packing_facility_code", "harvest_date", "pack_date",
                                   "expiry_date", "synthetic", "geom"), [lot[:13] for lot in lots])
    lot_ids = [int(r[0]) for r in cur.execute("SELECT id FROM trace_lots ORDER BY id").fetchall()]
    ga_points = {r[0]: r[1] for r in cur.execute(
        "SELECT code, ST_AsHexEWKB(ST_PointOnSurface(geom)) FROM growing_areas").fetchall()}
    events = []
    for lid, lot in zip(lot_ids, lots, strict=True):
        gtin, lot_no, harvest, pack, fac_geom, origin = lot[0], lot[1], lot[8], lot[9], lot[12], lot[13]
        epc = f"https://id.gs1.org/01/{gtin}/10/{lot_no}"
        qty = [{"epcClass": epc, "quantity": float(lot[4]), "uom": "KGM"}]
        t_h = dt.datetime.combine(harvest, dt.time(6, 0), tzinfo=tz)
        t_p = dt.datetime.combine(pack, dt.time(14, 0), tzinfo=tz)
        gcode = origin[0][1]
        chain = [
            ("ObjectEvent", "ADD", "commissioning", "active", t_h, f"urn:datso:vungtrong:{gcode}", gcode,
             {"harvestDate": harvest.isoformat(), "growingAreaCodes": [o[1] for o in origin]},
             [], [], ga_points.get(gcode)),
            ("TransformationEvent", None, "packing", "in_progress", t_p, f"urn:datso:cssdg:{lot[7]}", lot[7], {},
             [epc], [epc], fac_geom),
            ("ObjectEvent", "OBSERVE", "shipping", "in_transit", t_p + dt.timedelta(hours=20),
             f"urn:datso:cssdg:{lot[7]}", lot[7], {}, [], [], fac_geom),
        ]
        for etype, action, step, disp, when, rp, loc, ilmd, ins, outs, geom in chain:
            events.append((f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}", etype, action, step,
                           disp, when, "+07:00", rp, loc, lid, _pg_array([epc]) if etype != "TransformationEvent"
                           else "{}", _pg_array(ins), _pg_array(outs), _json(qty), _json(ilmd), True, geom))
    cols = ("event_id", "event_type", "action", "biz_step", "disposition", "event_time", "event_timezone_offset",
            "read_point", "biz_location", "lot_id", "epc_list", "input_epcs", "output_epcs", "quantity_list",
            "ilmd", "synthetic", "geom")
    _copy_rows(cur, "trace_events", cols, events)


def _json(v: Any) -> str:
    import orjson

    return orjson.dumps(v).decode()
