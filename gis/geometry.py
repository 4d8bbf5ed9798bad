"""Geometry helpers: validity (reported, repaired only on request), 2D forcing, Polygon -> MultiPolygon,
true area (geodesic, on the WGS 84 ellipsoid) and the "inside Vietnam" envelope check.

Functions take shapely geometries or numpy arrays of them; the array forms are vectorised (shapely 2) so an
import of hundreds of thousands of features does not loop in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

# A generous envelope around Vietnam, including Hoàng Sa and Trường Sa: lon 102.0-117.9, lat 6.0-23.5.
VN_BOUNDS: tuple[float, float, float, float] = (102.0, 6.0, 117.9, 23.5)
WGS84_GEOD = Geod(ellps="WGS84")

POLYGONAL = ("Polygon", "MultiPolygon")


def as_array(geoms: Any) -> np.ndarray:
    """An object array of shapely geometries (None allowed) from a sequence, GeoSeries or single geometry."""
    if isinstance(geoms, BaseGeometry):
        return np.array([geoms], dtype=object)
    if hasattr(geoms, "values") and not isinstance(geoms, np.ndarray):
        geoms = geoms.values
    arr = np.asarray(geoms, dtype=object)
    return arr.reshape(-1)


def validity_reasons(geoms: Any) -> np.ndarray:
    """GEOS `explain_validity` reason per geometry, or None where the geometry is valid (or missing)."""
    arr = as_array(geoms)
    out = np.full(len(arr), None, dtype=object)
    present = ~shapely.is_missing(arr)
    if not present.any():
        return out
    valid = np.ones(len(arr), dtype=bool)
    valid[present] = shapely.is_valid(arr[present])
    bad = np.flatnonzero(~valid)
    if len(bad):
        out[bad] = shapely.is_valid_reason(arr[bad])
    return out


def explain_validity(geom: BaseGeometry) -> str | None:
    """The reason a geometry is invalid (e.g. 'Self-intersection[106.3 10.2]'), or None when it is valid."""
    return validity_reasons(geom)[0]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Repair:
    """What `make_valid` did to one geometry: the caller decides whether a changed shape is acceptable."""

    geometry: BaseGeometry
    reason: str | None            # why the input was invalid (None: it was valid, nothing done)
    shape_changed: bool           # area or type changed by more than rounding
    area_before: float
    area_after: float


def repair(geom: BaseGeometry, *, keep_polygons: bool = True) -> Repair:
    """Repair an invalid geometry with GEOS `make_valid` and say how much the shape changed.

    A valid geometry is returned untouched. With `keep_polygons` the polygonal parts of a repaired polygon
    are kept (make_valid can return a collection with stray lines/points).
    """
    reason = explain_validity(geom)
    a0 = float(geom.area)
    if reason is None:
        return Repair(geom, None, False, a0, a0)
    fixed = shapely.make_valid(geom)
    if keep_polygons and geom.geom_type in POLYGONAL and fixed.geom_type not in POLYGONAL:
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in POLYGONAL]
        fixed = shapely.union_all(parts) if parts else shapely.MultiPolygon()
    a1 = float(fixed.area)
    changed = fixed.geom_type.replace("Multi", "") != geom.geom_type.replace("Multi", "") or (
        abs(a1 - a0) > 1e-9 * max(a0, a1, 1e-30))
    # a bow-tie has signed area 0: any non-empty repair of it changed the shape
    changed = changed or a0 == 0.0 or not shapely.equals(shapely.normalize(fixed), shapely.normalize(geom))
    return Repair(fixed, reason, bool(changed), a0, a1)


def force_2d(geoms: Any) -> np.ndarray:
    """Drop Z/M from every geometry (vectorised)."""
    arr = as_array(geoms)
    if not shapely.has_z(arr).any():
        return arr
    return shapely.force_2d(arr)  # type: ignore[no-any-return]


def to_multipolygon(geoms: Any) -> np.ndarray:
    """Polygon -> MultiPolygon (MultiPolygons and other types are returned unchanged)."""
    arr = as_array(geoms).copy()
    types = shapely.get_type_id(arr)
    poly = types == shapely.GeometryType.POLYGON
    if poly.any():
        arr[poly] = shapely.multipolygons(arr[poly][:, np.newaxis])
    return arr


_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
               6: "MultiPolygon", 7: "GeometryCollection"}


def geom_types(geoms: Any) -> np.ndarray:
    """GeoJSON type name per geometry ('' for a missing one)."""
    ids = shapely.get_type_id(as_array(geoms))
    return np.array([_TYPE_NAMES.get(int(i), "") for i in ids], dtype=object)


def area_m2(geom: BaseGeometry | None) -> float:
    """True (geodesic) area in square metres of a lon/lat (WGS 84) geometry, on the WGS 84 ellipsoid: each
    polygon's exterior ring minus its holes, whatever their orientation (pyproj's signed sum added a hole wound
    like its exterior)."""
    if geom is None or geom.is_empty:
        return 0.0
    return float(areas_m2([geom])[0])


def area_ha(geom: BaseGeometry | None) -> float:
    return area_m2(geom) / 10_000.0


def areas_m2(geoms: Any) -> np.ndarray:
    """Geodesic areas (m²) for an array of lon/lat geometries (see `area_m2`), the rings taken out of GEOS in
    bulk; lines and points have none, a collection sums its polygons."""
    arr = as_array(geoms)
    out = np.zeros(len(arr), dtype=float)
    if not len(arr):
        return out
    types = shapely.get_type_id(arr)
    poly = np.isin(types, (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)) & \
        ~shapely.is_empty(arr)
    other = np.flatnonzero(~poly & (types == shapely.GeometryType.GEOMETRYCOLLECTION) & ~shapely.is_empty(arr))
    for i in other:                                          # rare: the parts one by one
        out[i] = float(areas_m2(shapely.get_parts(arr[i])).sum())
    idx = np.flatnonzero(poly)
    if not len(idx):
        return out
    parts, part_of = shapely.get_parts(arr[idx], return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    bounds = np.searchsorted(coord_of, np.arange(len(rings) + 1))
    total = np.zeros(len(idx), dtype=float)
    owner = part_of[ring_of]
    exterior = np.ones(len(rings), dtype=bool)            # the first ring of each polygon; the others are holes
    exterior[1:] = ring_of[1:] != ring_of[:-1]
    for r in range(len(rings)):
        a, b = bounds[r], bounds[r + 1]
        area, _ = WGS84_GEOD.polygon_area_perimeter(coords[a:b, 0], coords[a:b, 1])
        total[owner[r]] += abs(area) if exterior[r] else -abs(area)
    out[idx] = np.abs(total)
    return out


def inside_vietnam(geoms: Any, bounds: Sequence[float] = VN_BOUNDS) -> np.ndarray:
    """True where the whole geometry lies inside the Vietnam envelope (lon/lat); missing -> True."""
    arr = as_array(geoms)
    b = shapely.bounds(arr)
    minx, miny, maxx, maxy = bounds
    with np.errstate(invalid="ignore"):
        ok = (b[:, 0] >= minx) & (b[:, 2] <= maxx) & (b[:, 1] >= miny) & (b[:, 3] <= maxy)
    return ok | shapely.is_missing(arr) | shapely.is_empty(arr)


def looks_projected(geoms: Any) -> np.ndarray:
    """True where coordinates cannot be degrees (|x| > 180 or |y| > 90): metres given as lon/lat."""
    b = shapely.bounds(as_array(geoms))
    with np.errstate(invalid="ignore"):
        return (np.abs(b) > 180).any(axis=1) | (np.abs(b[:, [1, 3]]) > 90).any(axis=1)
