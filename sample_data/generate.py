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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from layers.catalog.registry import LAYERS
from layers.ingest.registration import expire_due
from layers.query.auctions import advance_statuses
from layers.store.connect import connect
from sample_data import admin, names
from sample_data.planning import load_planning
from sample_data.trace import load_trace

SIZES = {"small": {"parcels": 7_600, "auctions": 300, "growing": 420, "facilities": 40, "lots": 300},
         "large": {"parcels": 1_000_000, "auctions": 600, "growing": 3_000, "facilities": 200, "lots": 2_000}}
TOWNS = [(106.375, 10.240, 2500.0), (105.967, 10.253, 2200.0), (106.343, 9.935, 2000.0),
         (106.60, 10.05, 1500.0), (106.15, 10.10, 1500.0)]  # Bến Tre, Vĩnh Long, Trà Vinh, two market towns
NEW_PROVINCE = admin.NEW_PROVINCE
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
    communes: list[tuple[str, str, Polygon]] = field(default_factory=list)      # (code, short name, polygon)
    old_communes: list[tuple[str, str, str, Polygon]] = field(default_factory=list)  # (code, name, prov, poly)
    units: dict[str, Any] = field(default_factory=dict)       # code -> admin.NewUnit / admin.OldUnit
    geometry: admin.AdminGeometry | None = None

    def full_name(self, code: str) -> str:
        return str(self.units[code].name)

    def kind(self, code: str) -> str:
        return str(self.units[code].kind)


def _lon_scale(lat: float) -> float:
    return 111_320.0 * float(np.cos(np.radians(lat)))


def build_province(seed: int) -> Province:
    """The real units of Vĩnh Long (2025) and of the three old provinces, with synthetic shapes."""
    geo = admin.build_geometry(seed)
    prov = Province(geo.outline, geometry=geo)
    for u in admin.new_units():
        prov.communes.append((u.code, u.short, geo.new[u.code]))
        prov.units[u.code] = u
    for o in admin.old_units():
        g = geo.old[o.code]
        poly = g if isinstance(g, Polygon) else max(getattr(g, "geoms", [g]), key=lambda p: p.area)
        prov.old_communes.append((o.code, o.short, o.province_code, poly))
        prov.units["old:" + o.code] = o
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
    return generate_parcel_blocks(seed, n, outline, exclude)[0]


def generate_parcel_blocks(seed: int, n: int, outline: Polygon,
                           exclude: Sequence[Polygon] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(lots, residential): the lots of `generate_parcel_geometries` and whether each one lies in a residential
    block (street-front lots of 100–300 m², more of them near towns)."""
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
    town = weight - 0.15
    polys: list[np.ndarray] = []
    resid: list[np.ndarray] = []
    total = 0
    max_side = cell_m * 0.95
    for idx in order:
        if total >= n:
            break
        residential = bool(rng.random() < min(0.8, 0.2 + 0.6 * float(town[idx])))
        if residential:   # 5–10 m frontage, 20–28 m deep: 100–300 m² once the gaps are taken off
            w, d = rng.uniform(5.9, 10.3), rng.uniform(20.9, 28.0)
        else:
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
        j = 0.1 if residential else 0.25
        jitter = rng.uniform(-j, j, size=(x0.size, 4, 2))  # metres; gaps are 0.6 m
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
        resid.append(np.full(ring.shape[0], residential))
        total += ring.shape[0]
    if total < n:
        raise RuntimeError(f"province too small for {n} parcels ({total} generated)")
    rings = np.concatenate(polys)[:n]
    return shapely.polygons(rings), np.concatenate(resid)[:n]


PUBLIC_USES = ["TSC", "DGD", "DYT", "DVH", "DTT", "DKH", "DSK", "TMD", "SKC", "DGT", "DTL", "MNC", "PNK",
               "BCS", "NTS", "CLN", "LUC", "HNK", "TIN"]
USE_WEIGHTS = np.array([6, 5, 2, 2, 2, 1, 3, 4, 3, 5, 4, 3, 3, 8, 6, 10, 9, 6, 1], dtype=float)
PARCEL_STATUS = ["managed", "leased", "allocated", "planned_for_auction", "auctioned", "encroached"]
STATUS_WEIGHTS = np.array([62, 17, 14, 2, 2, 3], dtype=float)            # public land other than housing lots
RESIDENTIAL_STATUS_WEIGHTS = np.array([45, 2, 8, 25, 15, 5], dtype=float)  # housing lots: mostly for auction
# who manages public land of each use ({unit}: the commune or ward); 2025 department names
MANAGER_BY_USE = {
    "TSC": "UBND {unit}", "DGD": "Sở Giáo dục và Đào tạo", "DYT": "Sở Y tế",
    "DVH": "Sở Văn hóa, Thể thao và Du lịch", "DTT": "Sở Văn hóa, Thể thao và Du lịch",
    "DKH": "Sở Khoa học và Công nghệ", "DSK": "UBND {unit}", "TMD": "Trung tâm Phát triển quỹ đất tỉnh",
    "SKC": "Trung tâm Phát triển quỹ đất tỉnh", "DGT": "Sở Xây dựng", "DTL": "Sở Nông nghiệp và Môi trường",
    "MNC": "UBND {unit}", "PNK": "UBND {unit}", "BCS": "UBND {unit}", "NTS": "UBND {unit}", "CLN": "UBND {unit}",
    "LUC": "UBND {unit}", "HNK": "UBND {unit}", "TIN": "UBND {unit}", "ONT": "Trung tâm Phát triển quỹ đất tỉnh",
    "ODT": "Trung tâm Phát triển quỹ đất tỉnh",
}
SHEET_DEG = 0.008   # one cadastral map sheet per ~900 m square, numbered within each old commune


def managing_body(use: str, unit_name: str) -> str:
    kind, _, rest = unit_name.partition(" ")
    return MANAGER_BY_USE[use].format(unit=f"{kind.lower()} {rest}")


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
                 progress: Callable[[int], None] | None, residential: np.ndarray | None = None
                 ) -> Iterable[tuple[Any, ...]]:
    import pandas as pd

    rng = np.random.default_rng(seed + 23)
    n = polys.size
    if residential is None:
        residential = np.zeros(n, dtype=bool)
    geo = prov.geometry
    assert geo is not None
    cent = shapely.centroid(polys)
    # each lot lies in one piece (old commune x new commune): both its units at once
    keys = list(geo.pieces)
    tree = shapely.STRtree([geo.pieces[k] for k in keys])
    pi, gi = tree.query(cent, predicate="within")
    piece = np.full(n, -1)
    piece[pi] = gi
    missing = piece < 0
    if missing.any():  # centroids on a boundary: nearest piece
        piece[missing] = tree.nearest(cent[missing])
    old_code = np.array([keys[i][0] for i in piece])
    new_code = np.array([keys[i][1] for i in piece])
    # map sheets numbered within each old commune (north to south, west to east), parcels within a sheet
    x, y = shapely.get_x(cent), shapely.get_y(cent)
    frame = pd.DataFrame({"old": old_code, "cell": np.floor((10.6 - y) / SHEET_DEG) * 10_000
                          + np.floor((x - 105.5) / SHEET_DEG), "y": -y, "x": x})
    frame["sheet"] = frame.groupby("old")["cell"].rank(method="dense").astype(int)
    frame = frame.sort_values(["old", "sheet", "y", "x"])
    frame["no"] = frame.groupby(["old", "sheet"]).cumcount() + 1
    frame = frame.sort_index()
    sheets, numbers = frame["sheet"].to_numpy(), frame["no"].to_numpy()
    uses = rng.choice(len(PUBLIC_USES), size=n, p=USE_WEIGHTS / USE_WEIGHTS.sum())
    second = rng.random(n) < 0.08
    uses2 = rng.choice(len(PUBLIC_USES), size=n, p=USE_WEIGHTS / USE_WEIGHTS.sum())
    status = rng.choice(len(PARCEL_STATUS), size=n, p=STATUS_WEIGHTS / STATUS_WEIGHTS.sum())
    status_r = rng.choice(len(PARCEL_STATUS), size=n, p=RESIDENTIAL_STATUS_WEIGHTS / RESIDENTIAL_STATUS_WEIGHTS.sum())
    lat = shapely.get_y(cent)
    kx = 111_320.0 * np.cos(np.radians(lat))
    # planar area in a local equirectangular frame (metres), good to ~0.1 % for lots this small
    coords = shapely.get_coordinates(polys).reshape(n, 5, 2)
    xm, ym = coords[..., 0] * kx[:, None], coords[..., 1] * M_PER_DEG_LAT
    area = 0.5 * np.abs(np.sum(xm[:, :-1] * ym[:, 1:] - xm[:, 1:] * ym[:, :-1], axis=1))
    chunk = 50_000
    wkb: np.ndarray | None = None
    prng = random.Random(seed + 29)
    for k in range(n):
        code = str(new_code[k])
        unit = prov.full_name(code)
        if residential[k]:   # urban land in wards, rural land in communes; a garden on some rural lots
            codes = ["ODT" if prov.kind(code) == "ward" else "ONT"]
            if codes[0] == "ONT" and second[k]:
                codes.append("CLN")
            st = PARCEL_STATUS[status_r[k]]
        else:
            codes = [PUBLIC_USES[uses[k]]]
            if second[k] and uses2[k] != uses[k]:
                codes.append(PUBLIC_USES[uses2[k]])
            st = PARCEL_STATUS[status[k]]
        if k % chunk == 0:
            part = polys[k : k + chunk]
            wkb = shapely.to_wkb(shapely.multipolygons(part, indices=np.arange(part.size)), hex=True)
        assert wkb is not None
        geom_hex = wkb[k % chunk]
        yield (start + k, code, str(old_code[k]), int(sheets[k]), int(numbers[k]), names.address(prng, unit),
               round(float(area[k]), 2), _pg_array(codes), managing_body(codes[0], unit), st,
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
              "packing_facilities", "trace_lots", "trace_events", *RECORD_TABLES):
        row = cur.execute(f"SELECT count(*) FROM {t}").fetchone()  # noqa: S608 - fixed names
        out[t] = int(row[0]) if row else 0
    return out


RECORD_TABLES = ("seasons", "inspections", "pest_observations")
LAYER_TABLES = (*RECORD_TABLES, "land_price_zones", "planning_zones", "trace_events", "trace_lots", "packing_facility_growing_areas", "packing_facilities",
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
        prov = build_province(seed)
        _load_admin(cur, prov)
        n = spec["parcels"]

        def tick(k: int) -> None:
            if progress:
                progress("parcels", k, n)

        growing = place_growing_areas(seed, spec["growing"], prov)
        polys, residential = generate_parcel_blocks(seed, n, prov.outline, exclude=[g[0] for g in growing])
        _copy_rows(cur, "parcels", PARCEL_COLUMNS, _parcel_rows(seed, polys, prov, 1, tick, residential))
        if progress:
            progress("parcels", n, n)
        cur.execute("SELECT setval(pg_get_serial_sequence('parcels', 'id'), (SELECT max(id) FROM parcels))")
        _load_auctions(cur, seed, spec["auctions"], prov)
        # a safety net (a load that straddles a registration deadline): the statuses the dates imply now
        advance_statuses(cur, dt.datetime.now(dt.UTC))
        ga_ids = _load_growing_areas(cur, seed, growing, prov)
        fac = _load_facilities(cur, seed, spec["facilities"], prov, ga_ids)
        load_trace(cur, seed, spec["lots"], fac, REFERENCE_DATE)  # coherent chains (sample_data/trace.py)
        _load_records(cur, seed)
        load_planning(cur, seed)       # planning and land-price zones, from the communes and parcels above
        for layer in LAYERS.values():      # past their valid_to by the real today: expired, as the API does
            expire_due(conn, layer, "sample")
        counts = _counts(cur)
        conn.commit()
    with connect("writer", dsn=dsn, autocommit=True) as conn:
        for t in ("parcels", "auction_plots", "growing_areas", "admin_units", "planning_zones", "land_price_zones"):
            conn.execute(f"ANALYZE {t}")  # noqa: S608 - fixed names
        conn.execute("REFRESH MATERIALIZED VIEW search_words")   # the words search corrects typos to (0010)
    return LoadReport(counts, time.perf_counter() - t0)


ADMIN_COLUMNS = ("code", "scheme", "level", "kind", "name", "parent_code", "valid_from", "valid_to", "tm3_srid",
                 "synthetic", "geom")
OLD_FROM = dt.date(2004, 1, 1)
LEGAL_BASIS = ("Nghị quyết 202/2025/QH15; nghị quyết của UBTVQH về sắp xếp ĐVHC cấp xã tỉnh Vĩnh Long 2025 "
               "(danh sách theo dữ liệu vietnamadminunits; tỷ lệ diện tích tính trên ranh giới mô phỏng)")


def _load_admin(cur: psycopg.Cursor[Any], prov: Province) -> None:
    geo = prov.geometry
    assert geo is not None
    rows: list[tuple[Any, ...]] = [(NEW_PROVINCE[0], "2025", "province", "province", f"Tỉnh {NEW_PROVINCE[1]}", None,
                                    REFORM_DATE, None, None, True, _ewkb(_mp(prov.outline)))]
    for u in admin.new_units():
        rows.append((u.code, "2025", "commune", u.kind, u.name, NEW_PROVINCE[0], REFORM_DATE, None, None, True,
                     _ewkb(_mp(geo.new[u.code]))))
    olds = admin.old_units()
    for pcode, (pname, _key, srid) in admin.OLD_PROVINCES.items():
        union = shapely.union_all([geo.old[o.code] for o in olds if o.province_code == pcode])
        rows.append((pcode, "2004", "province", "province", f"Tỉnh {pname}", None, OLD_FROM, REFORM_DATE, srid, True,
                     _ewkb(_mp(shapely.make_valid(union)))))
    districts: dict[str, list[admin.OldUnit]] = {}
    for o in olds:
        districts.setdefault(o.district_code, []).append(o)
    for dcode, members in sorted(districts.items()):
        first = members[0]
        union = shapely.make_valid(shapely.union_all([geo.old[o.code] for o in members]))
        rows.append((dcode, "2004", "district", first.district_kind, first.district_name, first.province_code,
                     OLD_FROM, REFORM_DATE, admin.OLD_PROVINCES[first.province_code][2], True, _ewkb(_mp(union))))
    for o in olds:
        rows.append((o.code, "2004", "commune", o.kind, o.name, o.district_code, OLD_FROM, REFORM_DATE,
                     admin.OLD_PROVINCES[o.province_code][2], True, _ewkb(_mp(geo.old[o.code]))))
    _copy_rows(cur, "admin_units", ADMIN_COLUMNS, rows)
    new_names = {u.code: u.name for u in admin.new_units()}
    old_names = {o.code: o.name for o in olds}
    cw: list[tuple[Any, ...]] = []
    for (oc, nc), share in sorted(admin.shares(geo).items()):
        cw.append((oc, "2004", old_names[oc], "commune", nc, "2025", new_names[nc], share, REFORM_DATE, LEGAL_BASIS))
    for (dc, nc), share in sorted(admin.district_shares(geo).items()):
        cw.append((dc, "2004", districts[dc][0].district_name, "district", nc, "2025", new_names[nc], share,
                   REFORM_DATE, LEGAL_BASIS))
    for pcode, (pname, _key, _srid) in admin.OLD_PROVINCES.items():
        cw.append((pcode, "2004", f"Tỉnh {pname}", "province", NEW_PROVINCE[0], "2025", f"Tỉnh {NEW_PROVINCE[1]}", 1,
                   REFORM_DATE, "Nghị quyết 202/2025/QH15"))
    _copy_rows(cur, "admin_crosswalk", ("old_code", "old_scheme", "old_name", "old_level", "new_code",
                                        "new_scheme", "new_name", "share", "effective", "legal_basis"), cw)


def dossier_fee_cap(use: str, starting_price: int, area_m2: float) -> int:
    """The most an auction organiser may charge for a registration dossier (Circular 48/2017/TT-BTC, Art. 3(2)):
    land allocated to households and individuals (housing lots) by starting price, other land by area."""
    if use in ("ONT", "ODT"):
        return 100_000 if starting_price <= 200_000_000 else 200_000 if starting_price <= 500_000_000 else 500_000
    return 1_000_000 if area_m2 <= 5_000 else 3_000_000 if area_m2 <= 20_000 else 5_000_000


def _load_auctions(cur: psycopg.Cursor[Any], seed: int, n: int, prov: Province) -> None:
    rng = random.Random(seed + 41)
    housing = n * 4 // 5   # mostly housing lots, as provinces auction; the rest commercial and other land
    rows = cur.execute(
        "(SELECT id, commune_code, address, area_m2, land_use_codes[1], ST_AsBinary(geom) FROM parcels "
        " WHERE status IN ('planned_for_auction', 'auctioned') AND land_use_codes[1] IN ('ONT', 'ODT') "
        " ORDER BY id LIMIT %s) UNION ALL "
        "(SELECT id, commune_code, address, area_m2, land_use_codes[1], ST_AsBinary(geom) FROM parcels "
        " WHERE status IN ('planned_for_auction', 'auctioned') AND land_use_codes[1] NOT IN ('ONT', 'ODT') "
        " ORDER BY id LIMIT %s) ORDER BY 1", (housing, n - housing)).fetchall()
    names_by_code = {c[0]: prov.full_name(c[0]) for c in prov.communes}
    statuses = ["planned", "announced", "registration_open", "closed", "sold", "cancelled"]
    # dates agree with statuses on the day the sample is loaded: plots still ahead (planned, announced, open)
    # are placed around today (or REFERENCE_DATE if later), finished ones around REFERENCE_DATE (or today if
    # earlier), so every stage is present and none is "registration open" after its registration end
    today = dt.date.today()
    ahead, behind = max(REFERENCE_DATE, today), min(REFERENCE_DATE, today)
    out = []
    for i, (pid, commune, addr, area, use, wkb) in enumerate(rows):
        status = statuses[i % len(statuses)] if i < 60 else rng.choices(statuses, [15, 20, 25, 10, 25, 5])[0]
        use = use if use in ("ONT", "ODT", "TMD", "SKC", "CLN") else "TMD"   # other public land: commercial
        # starting prices per m² of the Mekong delta's 2025-2026 auctions: town lots 8-25 M, rural lots 2-8 M
        per_m2 = (rng.choice([8, 10, 12, 15, 18, 20, 25]) if use == "ODT" else rng.choice([2, 3, 4, 5, 6, 8]) if
                  use == "ONT" else rng.choice([1, 2, 3, 5])) * 1_000_000
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
            dossier_fee_cap(use, price, float(area)), reg_start, reg_end,
            reg_start.date() + dt.timedelta(days=5), reg_start.date() + dt.timedelta(days=8), auction_at,
            f"Hội trường UBND {cname[:1].lower()}{cname[1:]}", rng.choice(["Đấu giá trực tiếp bằng lời nói", "Bỏ phiếu gián tiếp",
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


def growing_area_code(prov: Province, poly: Polygon, commune: str, issued: dt.date, seq: dict[str, int]) -> str:
    """A code written with the units in force on its issue date (Decision 3156/QĐ-BNN-TT):
    `VN-<province>-<district>-<commune>-<nn>-<YY>` with the 2004 codes before 1 July 2025,
    `VN-<province>-<commune>-<nn>-<YY>` with the 2025 codes after it (no districts any more)."""
    yy = issued.year % 100
    if issued >= REFORM_DATE:
        key = f"VN-{NEW_PROVINCE[0]}-{commune}"
    else:
        geo = prov.geometry
        assert geo is not None
        c = poly.centroid
        old = min(((oc, g.distance(c)) for (oc, nc), g in geo.pieces.items() if nc == commune),
                  key=lambda t: t[1])[0]
        o = prov.units["old:" + old]
        key = f"VN-{o.province_code}-{o.district_code}-{o.code}"
    seq[key] = seq.get(key, 0) + 1
    return f"{key}-{seq[key]:02d}-{yy:02d}"


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
        status = "active" if len(rows) % 10 < 7 else ["draft", "suspended", "revoked", "expired"][len(rows) % 4]
        reason = {"suspended": "Phát hiện sinh vật gây hại thuộc diện kiểm dịch (mô phỏng)",
                  "revoked": "Không duy trì điều kiện theo TCCS 774:2020/BVTV (mô phỏng)"}.get(status)
        # the published status never contradicts the dates: active/suspended/draft areas are valid for five years
        # from 2022-2025 (past the sample's today), expired ones ended before it (load_sample expires the rest)
        k = len(rows)
        valid_from = dt.date((2019 if status == "expired" else 2022) + k % 4, 1 + k % 12, 1)
        years = 3 if status == "expired" else 5
        markets = ["VN"] + rng.sample(["CN", "US", "EU", "JP", "KR", "AU"], rng.randint(0, 3))
        rows.append((growing_area_code(prov, poly, code_c, valid_from, seq), crop, rng.choice(varieties),
                     round(ha * 10_000, 2), names.person(rng), rng.choice([None, f"HTX Nông nghiệp {cname}"]),
                     code_c, _pg_array(markets), rng.choice(["VietGAP", "VietGAP", "GlobalGAP", "Organic"]),
                     status, reason, round(ha * yld, 2), _pg_array(months), valid_from,
                     valid_from.replace(year=valid_from.year + years), f"{100 + k}/QĐ-CCTTBVTV (mô phỏng)",
                     valid_from, True, _ewkb(MultiPolygon([poly]))))
    cols = ("code", "crop", "variety", "area_m2", "owner", "cooperative", "commune_code", "markets", "standard",
            "status", "status_reason", "expected_yield_t", "harvest_months", "valid_from", "valid_to",
            "decision_no", "decision_date", "synthetic", "geom")
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
                    "address": names.address(rng, prov.full_name(code_c)),
                    "markets": _pg_array(["VN"] + rng.sample(["CN", "US", "EU", "JP", "KR"], rng.randint(1, 3))),
                    "status": status, "capacity": rng.choice([5, 10, 20, 40]), "point": p,
                    "geom": _ewkb(geom)})
    cols = ("code", "name", "owner", "commune_code", "address", "markets", "status", "status_reason",
            "capacity_t_per_day", "synthetic", "geom")
    why = {"suspended": "Không duy trì điều kiện theo TCCS 775:2020/BVTV (mô phỏng)"}
    _copy_rows(cur, "packing_facilities", cols,
               [(f["code"], f["name"], f["owner"], f["commune_code"], f["address"], f["markets"], f["status"],
                 why.get(f["status"]), f["capacity"], True, f["geom"]) for f in out])
    ids = [int(r[0]) for r in cur.execute("SELECT id FROM packing_facilities ORDER BY id").fetchall()]
    links: list[tuple[int, int]] = []
    for f, fid in zip(out, ids, strict=True):
        f["id"] = fid
        chosen = rng.sample(growing, min(len(growing), rng.randint(2, 6)))
        f["growing"] = chosen
        links.extend((fid, g[0]) for g in chosen)
    _copy_rows(cur, "packing_facility_growing_areas", ("facility_id", "growing_area_id"), sorted(set(links)))
    return out


CROP_PESTS = {"coconut": ["red_palm_weevil", "coconut_caterpillar"], "durian": ["phytophthora", "mealybug", "thrips"],
              "pomelo": ["fruit_fly", "anthracnose", "mealybug"], "dragon_fruit": ["stem_canker", "anthracnose", "thrips"],
              "rice": ["brown_planthopper", "stem_borer", "blast", "leaf_blight", "golden_apple_snail"]}
INSPECTORS = ["Nguyễn Văn Hùng", "Trần Thị Mai", "Lê Minh Tâm", "Phạm Thị Thu"]


def _load_records(cur: psycopg.Cursor[Any], seed: int) -> None:
    """A few season, inspection and pest records per growing area (deterministic)."""
    rng = random.Random(seed + 97)
    areas = cur.execute("SELECT id, crop, variety, expected_yield_t, ST_X(ST_PointOnSurface(geom)), "
                        "ST_Y(ST_PointOnSurface(geom)), status FROM growing_areas ORDER BY id").fetchall()
    seasons, inspections, pests = [], [], []
    for gid, crop, variety, yld, x, y, status in areas:
        _lo, _hi, _v, _y, months = CROP_SPECS[crop]
        for k in range(1 + gid % 2):
            planted = REFERENCE_DATE - dt.timedelta(days=120 + 180 * k + rng.randint(0, 60))
            harvest = planted + dt.timedelta(days=100 if crop == "rice" else 150)
            actual = round(float(yld) * rng.uniform(0.7, 1.1), 2) if harvest < REFERENCE_DATE and yld else None
            seasons.append((gid, crop, variety, planted, harvest, yld, actual, None, True, None))
        inspected = REFERENCE_DATE - dt.timedelta(days=rng.randint(10, 300))
        result = "fail" if status in ("suspended", "revoked") else rng.choice(["pass", "pass", "pass", "conditional"])
        findings = {"pass": "Đáp ứng yêu cầu", "conditional": "Cần bổ sung sổ ghi chép sử dụng thuốc BVTV",
                    "fail": "Phát hiện sinh vật gây hại thuộc diện kiểm dịch"}[result]
        inspections.append((gid, inspected, rng.choice(INSPECTORS), result, findings,
                             inspected + dt.timedelta(days=180), True, _ewkb(Point(x, y))))
        for k in range(gid % 3):
            p = Point(x + rng.uniform(-2e-4, 2e-4), y + rng.uniform(-2e-4, 2e-4))
            pests.append((gid, CROP_PESTS[crop][k % len(CROP_PESTS[crop])],
                          rng.choice(["low", "low", "medium", "high"]),
                          REFERENCE_DATE - dt.timedelta(days=30 * k + rng.randint(1, 25)),
                          round(rng.uniform(50, 2000), 2), None, True, _ewkb(p)))
    _copy_rows(cur, "seasons", ("growing_area_id", "crop", "variety", "planting_date", "expected_harvest_date",
                                "expected_yield_t", "actual_yield_t", "notes", "synthetic", "geom"), seasons)
    _copy_rows(cur, "inspections", ("growing_area_id", "inspection_date", "inspector", "result", "findings",
                                    "next_due_date", "synthetic", "geom"), inspections)
    _copy_rows(cur, "pest_observations", ("growing_area_id", "pest", "severity", "observed_on", "affected_area_m2",
                                          "notes", "synthetic", "geom"), pests)
