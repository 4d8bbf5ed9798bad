"""The sample province's administrative units: real codes and names, synthetic shapes.

- 2025 units (province 86 Vĩnh Long and its 124 communes and wards, Decision 19/2025/QĐ-TTg codes) come from
  the `vietnam-provinces` package; their approximate centres from `vietnamadminunits`.
- Pre-2025 units (the old provinces Bến Tre 83, Trà Vinh 84 and Vĩnh Long 86, their 26 districts and 354
  communes, wards and townships, Decision 124/2004 codes) and the old->new mapping come from
  `vietnamadminunits` (its converter data: which old units were merged into each new one, and which old
  units were divided between several new ones).
- The shapes are synthetic (admin_units.synthetic = true): a Voronoi diagram of the real unit centres
  (jittered by the seed) clipped to a province outline drawn around them; each new unit is then divided
  among the old units merged into it, so every old unit is the union of its pieces and the crosswalk's area
  shares add up to exactly 1 per old unit.
- A division in the package's data whose target lies more than MAX_SPLIT_DEG from the old unit's centre is
  dropped (it joins two same-named units far apart, e.g. Mỹ An of Mang Thít and Thạnh Phú of Cầu Kè).
- Each old unit carries the VN-2000 TM-3 zone of its old province (`tm3_srid`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

NEW_PROVINCE = ("86", "Vĩnh Long")
# old province code -> (name, converter key, TM-3 zone EPSG code; domain notes: Bến Tre 105°45′, the others 105°30′)
OLD_PROVINCES: dict[str, tuple[str, str, int]] = {
    "83": ("Bến Tre", "tinhbentre", 9210), "84": ("Trà Vinh", "tinhtravinh", 9209),
    "86": ("Vĩnh Long", "tinhvinhlong", 9209),
}
NEW_PROVINCE_KEY = "tinhvinhlong"
MAX_SPLIT_DEG = 0.15
KINDS = {"Phường": "ward", "Xã": "commune", "Thị trấn": "township", "Đặc khu": "special_zone",
         "Thành phố": "city", "Thị xã": "town", "Huyện": "district", "Quận": "urban_district"}


@dataclass(frozen=True)
class NewUnit:
    code: str
    name: str          # "Phường Phú Khương"
    short: str         # "Phú Khương"
    kind: str          # ward / commune
    lon: float
    lat: float
    key: str           # the converter's key ("phuongphukhuong")


@dataclass(frozen=True)
class OldUnit:
    code: str
    name: str
    short: str
    kind: str          # ward / commune / township
    district_code: str
    district_name: str
    district_kind: str
    province_code: str
    lon: float
    lat: float
    key: str           # "tinhbentre_thanhphobentre_phuongphukhuong"


def _kind(name: str) -> str:
    for prefix, kind in KINDS.items():
        if name.startswith(prefix + " "):
            return kind
    return "commune"


def _short(name: str) -> str:
    for prefix in KINDS:
        if name.startswith(prefix + " "):
            return name[len(prefix) + 1:]
    return name


def _vau_dir() -> Path:
    import vietnamadminunits

    return Path(vietnamadminunits.__file__).parent / "data"


def _query(sql: str, *args: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(_vau_dir() / "dataset.db") as c:
        return list(c.execute(sql, args).fetchall())


@lru_cache(maxsize=1)
def new_units() -> tuple[NewUnit, ...]:
    """The 124 communes and wards of Vĩnh Long (2025), codes and names from `vietnam-provinces`."""
    from vietnam_provinces import Ward

    rows = _query("SELECT wardCode, wardLon, wardLat, wardKey, ward FROM admin_units WHERE provinceCode = ?",
                  NEW_PROVINCE[0])
    where = {str(r[0]): (float(str(r[1])), float(str(r[2])), str(r[3])) for r in rows}
    by_name = {str(r[4]): (float(str(r[1])), float(str(r[2])), str(r[3])) for r in rows}
    out = []
    for w in Ward.iter_all():
        if int(w.province_code) != int(NEW_PROVINCE[0]):
            continue
        code = f"{int(w.code):05d}"
        # the two packages disagree on one code (Xã Song Phú: 29752 here, 29740 there): match it by name
        lon, lat, key = where[code] if code in where else by_name[w.name]
        out.append(NewUnit(code, w.name, _short(w.name), _kind(w.name), lon, lat, key))
    return tuple(sorted(out, key=lambda u: u.code))


@lru_cache(maxsize=1)
def old_units() -> tuple[OldUnit, ...]:
    """The 354 communes, wards and townships of Bến Tre, Trà Vinh and Vĩnh Long before 1 July 2025."""
    rows = _query(
        "SELECT wardCode, ward, districtCode, district, provinceCode, wardLon, wardLat, provinceKey, districtKey, "
        "wardKey FROM admin_units_legacy WHERE provinceCode IN (?, ?, ?) ORDER BY wardCode", *OLD_PROVINCES)
    return tuple(OldUnit(str(r[0]), str(r[1]), _short(str(r[1])), _kind(str(r[1])), str(r[2]), str(r[3]),
                         _kind(str(r[3])), str(r[4]), float(str(r[5])), float(str(r[6])),
                         f"{r[7]}_{r[8]}_{r[9]}") for r in rows)


@lru_cache(maxsize=1)
def old_to_new() -> dict[str, tuple[str, ...]]:
    """old unit code -> the new unit code(s) it went into (several when it was divided)."""
    data = json.loads((_vau_dir() / "converter_2025.json").read_text(encoding="utf-8"))
    new_by_key = {u.key: u for u in new_units()}
    old_by_key = {u.key: u for u in old_units()}
    out: dict[str, list[str]] = {}
    for new_key, old_keys in data["DICT_PROVINCE_WARD_NO_DIVIDED"][NEW_PROVINCE_KEY].items():
        for ok in old_keys:
            out.setdefault(old_by_key[ok].code, []).append(new_by_key[new_key].code)
    for ok, targets in data["DICT_PROVINCE_WARD_DIVIDED"].get(NEW_PROVINCE_KEY, {}).items():
        old = old_by_key[ok]
        near = [new_by_key[t["newWardKey"]] for t in targets if t["newWardKey"] in new_by_key]
        kept = [n.code for n in near if np.hypot(n.lon - old.lon, n.lat - old.lat) <= MAX_SPLIT_DEG]
        out[old.code] = kept or [min(near, key=lambda n: np.hypot(n.lon - old.lon, n.lat - old.lat)).code]
    return {k: tuple(dict.fromkeys(v)) for k, v in out.items()}


def province_outline() -> Polygon:
    """A smooth synthetic outline around every old and new unit centre."""
    pts = [(u.lon, u.lat) for u in new_units()] + [(u.lon, u.lat) for u in old_units()]
    hull = shapely.concave_hull(MultiPoint(pts), ratio=0.35)
    shape = hull.buffer(0.045, quad_segs=4).buffer(-0.015, quad_segs=4).simplify(0.004)
    if isinstance(shape, MultiPolygon):
        shape = max(shape.geoms, key=lambda g: g.area)
    assert isinstance(shape, Polygon)
    return Polygon(shape.exterior)


def _cells(seeds: list[tuple[float, float]], clip: Polygon) -> list[BaseGeometry]:
    """The Voronoi cell of each seed (in order), clipped to `clip`."""
    if len(seeds) == 1:
        return [clip]
    diagram = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=clip, ordered=True)
    return [shapely.make_valid(cell.intersection(clip)) for cell in diagram.geoms]


def _largest(g: BaseGeometry) -> Polygon:
    polys = [p for p in getattr(g, "geoms", [g]) if isinstance(p, Polygon) and not p.is_empty]
    if not polys:
        raise ValueError("empty cell")
    return max(polys, key=lambda p: p.area)


def _seed_inside(poly: Polygon, x: float, y: float, rng: np.random.Generator) -> tuple[float, float]:
    """(x, y) if it lies well inside `poly`, else a seeded point inside it near (x, y)."""
    inner = poly.buffer(-0.002)
    if inner.is_empty:
        inner = poly
    p = Point(x, y)
    if inner.contains(p):
        return x, y
    minx, miny, maxx, maxy = inner.bounds
    best: tuple[float, float] | None = None
    for _ in range(200):
        q = (float(rng.uniform(minx, maxx)), float(rng.uniform(miny, maxy)))
        if inner.contains(Point(q)) and (best is None or np.hypot(q[0] - x, q[1] - y)
                                         < np.hypot(best[0] - x, best[1] - y)):
            best = q
    if best is None:
        rp = inner.representative_point()
        best = (rp.x, rp.y)
    return best


@dataclass
class AdminGeometry:
    outline: Polygon
    new: dict[str, Polygon]                          # new code -> cell
    old: dict[str, BaseGeometry]                     # old code -> union of its pieces
    pieces: dict[tuple[str, str], BaseGeometry]      # (old code, new code) -> piece


def build_geometry(seed: int) -> AdminGeometry:
    """Synthetic shapes for the real units (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    outline = province_outline()
    units = new_units()
    jitter = rng.uniform(-0.004, 0.004, size=(len(units), 2))
    seeds = [(u.lon + float(jitter[i, 0]), u.lat + float(jitter[i, 1])) for i, u in enumerate(units)]
    new = {u.code: _largest(c) for u, c in zip(units, _cells(seeds, outline), strict=True)}
    by_new: dict[str, list[OldUnit]] = {}
    olds = {u.code: u for u in old_units()}
    for ocode, targets in old_to_new().items():
        for ncode in targets:
            by_new.setdefault(ncode, []).append(olds[ocode])
    pieces: dict[tuple[str, str], BaseGeometry] = {}
    for ncode, members in sorted(by_new.items()):
        cell = new[ncode]
        seeds_n: list[tuple[float, float]] = []
        for o in members:
            s = _seed_inside(cell, o.lon, o.lat, rng)
            while s in seeds_n:
                s = (s[0] + 1e-4, s[1])
            seeds_n.append(s)
        for o, piece in zip(members, _cells(seeds_n, cell), strict=True):
            if not piece.is_empty and piece.area > 0:
                pieces[(o.code, ncode)] = piece
    old: dict[str, BaseGeometry] = {}
    for ocode in olds:
        parts = [g for (oc, _), g in pieces.items() if oc == ocode]
        old[ocode] = shapely.make_valid(shapely.union_all(parts))
    return AdminGeometry(outline, new, old, pieces)


def round_shares(areas: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """(old, new) -> area  =>  (old, new) -> share of the old unit's area, rounded to 5 decimals and adjusted so
    each old unit's shares add up to exactly 1."""
    out: dict[tuple[str, str], float] = {}
    by_old: dict[str, list[tuple[str, float]]] = {}
    for (oc, nc), a in sorted(areas.items()):
        by_old.setdefault(oc, []).append((nc, a))
    for oc, parts in by_old.items():
        total = sum(a for _, a in parts)
        rounded = [(nc, max(0.00001, round(a / total, 5))) for nc, a in parts]
        biggest = max(range(len(rounded)), key=lambda i: rounded[i][1])
        rest = sum(s for i, (_, s) in enumerate(rounded) if i != biggest)
        rounded[biggest] = (rounded[biggest][0], round(1 - rest, 5))
        out.update({(oc, nc): s for nc, s in rounded})
    return out


def shares(geom: AdminGeometry) -> dict[tuple[str, str], float]:
    """Old commune -> new commune shares (area of the piece / area of the old commune)."""
    return round_shares({k: g.area for k, g in geom.pieces.items()})


def district_shares(geom: AdminGeometry) -> dict[tuple[str, str], float]:
    """Old district -> new commune shares."""
    district = {u.code: u.district_code for u in old_units()}
    areas: dict[tuple[str, str], float] = {}
    for (oc, nc), g in geom.pieces.items():
        k = (district[oc], nc)
        areas[k] = areas.get(k, 0.0) + g.area
    return round_shares(areas)
