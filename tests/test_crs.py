"""VN-2000 <-> WGS 84 against reference values computed here, independently, from the official parameters of
Decision 05/2007/QĐ-BTNMT (numpy 7-parameter Helmert, coordinate-frame convention, on ECEF; the TM-3 grid
with PROJ's pure `+proj=tmerc`, no datum). Both code paths must agree to < 1 mm: Python
(`gis.crs.transformer`) and PostGIS (`ST_Transform` with datso's custom SRIDs)."""

from __future__ import annotations

import math

import numpy as np
import psycopg
import pytest
from pyproj import CRS, Transformer

from gis.crs import CrsError, get_crs, transformer
from gis.io import crs_from_metadata

# Decision 05/2007/QĐ-BTNMT as printed (coordinate-frame rotations), see /work/shared/docs/domain.md.
DX, DY, DZ = -191.90441429, -39.30318279, -111.45032835
RX, RY, RZ = -0.00928836, 0.01975479, -0.00427372          # arc-seconds
DS = 0.252906278                                              # ppm
A, F = 6378137.0, 1 / 298.257223563
E2 = F * (2 - F)
ARCSEC = math.pi / (180 * 3600)

# (name, datso alias of the old province's zone, approximate lon, lat)
POINTS = [
    ("Hà Giang", "vn2000:ha-giang", 104.98, 22.82),
    ("Lào Cai", "vn2000:lao-cai", 103.97, 22.48),
    ("Huế", "vn2000:hue", 107.58, 16.46),
    ("Đà Nẵng", "vn2000:da-nang", 108.20, 16.05),
    ("Bến Tre", "vn2000:ben-tre", 106.37, 10.24),
    ("Cà Mau", "vn2000:ca-mau", 105.15, 9.18),
]


def geodetic_to_ecef(lon: np.ndarray, lat: np.ndarray, h: np.ndarray) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    n = A / np.sqrt(1 - E2 * np.sin(phi) ** 2)
    return np.stack([(n + h) * np.cos(phi) * np.cos(lam), (n + h) * np.cos(phi) * np.sin(lam),
                     (n * (1 - E2) + h) * np.sin(phi)])


def ecef_to_geodetic(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, z = xyz
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1 - E2))
    for _ in range(10):
        n = A / np.sqrt(1 - E2 * np.sin(lat) ** 2)
        h = p / np.cos(lat) - n
        lat = np.arctan2(z, p * (1 - E2 * n / (n + h)))
    n = A / np.sqrt(1 - E2 * np.sin(lat) ** 2)
    h = p / np.cos(lat) - n
    return np.degrees(lon), np.degrees(lat), h


def helmert_cf(xyz: np.ndarray, sign: float = 1.0) -> np.ndarray:
    """VN-2000 -> WGS 84, coordinate-frame convention (EPSG method 1032); sign=-1 applies the rotations
    with the wrong (position-vector) reading, to prove the test can see that bug."""
    rx, ry, rz = (sign * v * ARCSEC for v in (RX, RY, RZ))
    r = np.array([[1, rz, -ry], [-rz, 1, rx], [ry, -rx, 1]])
    return np.array([[DX], [DY], [DZ]]) + (1 + DS * 1e-6) * (r @ xyz)


def reference_vn2000_to_wgs84(lon0: float, e: np.ndarray, n: np.ndarray, sign: float = 1.0
                              ) -> tuple[np.ndarray, np.ndarray]:
    tm = Transformer.from_crs(
        CRS.from_proj4(f"+proj=tmerc +lat_0=0 +lon_0={lon0} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 +units=m"),
        CRS.from_proj4("+proj=longlat +ellps=WGS84"), always_xy=True)
    lon_v, lat_v = tm.transform(e, n)            # VN-2000 geographic (WGS 84 ellipsoid, no datum shift)
    lon_w, lat_w, _ = ecef_to_geodetic(helmert_cf(geodetic_to_ecef(np.asarray(lon_v), np.asarray(lat_v),
                                                                   np.zeros(len(e))), sign))
    return lon_w, lat_w


def reference_wgs84_to_vn2000(lon0: float, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse path, as PROJ/PostGIS do it for 2D points: WGS 84 (h = 0) -> ECEF -> inverse Helmert ->
    VN-2000 geographic -> TM-3 grid. (Heights are dropped on both ways, so a 2D round trip is not exactly
    the identity: ~1 mm, from the ~225 m shift tilting the ellipsoid normal.)"""
    rx, ry, rz = (v * ARCSEC for v in (RX, RY, RZ))
    r = (1 + DS * 1e-6) * np.array([[1, rz, -ry], [-rz, 1, rx], [ry, -rx, 1]])
    xyz = geodetic_to_ecef(np.asarray(lon), np.asarray(lat), np.zeros(len(lon)))
    vn = np.linalg.solve(r, xyz - np.array([[DX], [DY], [DZ]]))
    lon_v, lat_v, _ = ecef_to_geodetic(vn)
    tm = Transformer.from_crs(CRS.from_proj4("+proj=longlat +ellps=WGS84"), CRS.from_proj4(
        f"+proj=tmerc +lat_0=0 +lon_0={lon0} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 +units=m"), always_xy=True)
    e, n = tm.transform(lon_v, lat_v)
    return np.asarray(e), np.asarray(n)


def metres(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    phi = np.radians(lat1)
    m_lat = 111132.954 - 559.822 * np.cos(2 * phi)
    m_lon = 111412.84 * np.cos(phi)
    return np.hypot((np.asarray(lon2) - lon1) * m_lon, (np.asarray(lat2) - lat1) * m_lat)


def grid_points(alias: str, lon: float, lat: float) -> tuple[float, np.ndarray, np.ndarray]:
    """A few VN-2000 grid coordinates around the place (a 4 km cross), computed with the pure TM."""
    d = get_crs(alias)
    assert d.central_meridian is not None
    tm = Transformer.from_crs(CRS.from_proj4("+proj=longlat +ellps=WGS84"), CRS.from_proj4(
        f"+proj=tmerc +lat_0=0 +lon_0={d.central_meridian} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84"),
        always_xy=True)
    e0, n0 = tm.transform(lon, lat)
    e = np.round(np.array([e0, e0 + 2000, e0 - 2000, e0, e0]), 3)
    n = np.round(np.array([n0, n0, n0, n0 + 2000, n0 - 2000]), 3)
    return d.central_meridian, e, n


@pytest.mark.parametrize("name, alias, lon, lat", POINTS, ids=[p[0] for p in POINTS])
def test_python_path_matches_official_parameters(name: str, alias: str, lon: float, lat: float) -> None:
    lon0, e, n = grid_points(alias, lon, lat)
    ref_lon, ref_lat = reference_vn2000_to_wgs84(lon0, e, n)
    got_lon, got_lat = transformer(alias, "OGC:CRS84").transform(e, n)
    assert metres(ref_lon, ref_lat, got_lon, got_lat).max() < 0.001
    # and back: WGS 84 -> VN-2000 grid within 1 mm
    back_e, back_n = transformer("OGC:CRS84", alias).transform(ref_lon, ref_lat)
    ref_e, ref_n = reference_wgs84_to_vn2000(lon0, ref_lon, ref_lat)
    assert np.hypot(back_e - ref_e, back_n - ref_n).max() < 0.001
    assert np.hypot(back_e - e, back_n - n).max() < 0.002
    # the datum shift itself is large (~ hundreds of metres): a transformation without it would be caught
    tm = Transformer.from_crs(CRS.from_proj4(f"+proj=tmerc +lon_0={lon0} +k=0.9999 +x_0=500000 +ellps=WGS84"),
                              CRS.from_proj4("+proj=longlat +ellps=WGS84"), always_xy=True)
    raw_lon, raw_lat = tm.transform(e, n)
    assert metres(ref_lon, ref_lat, raw_lon, raw_lat).min() > 100


@pytest.mark.parametrize("name, alias, lon, lat", POINTS, ids=[p[0] for p in POINTS])
def test_postgis_path_matches_official_parameters(empty_db: str, name: str, alias: str, lon: float,
                                                  lat: float) -> None:
    lon0, e, n = grid_points(alias, lon, lat)
    ref_lon, ref_lat = reference_vn2000_to_wgs84(lon0, e, n)
    srid = get_crs(alias).srid
    with psycopg.connect(empty_db) as c:
        rows = c.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(x, y), %s), 4326) g "
            "FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS u(x, y, o) ORDER BY o) s",
            [srid, list(map(float, e)), list(map(float, n))]).fetchall()
        back = c.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(x, y), 4326), %s) g "
            "FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS u(x, y, o) ORDER BY o) s",
            [srid, list(map(float, ref_lon)), list(map(float, ref_lat))]).fetchall()
    got = np.array(rows)
    assert metres(ref_lon, ref_lat, got[:, 0], got[:, 1]).max() < 0.001
    b = np.array(back)
    ref_e, ref_n = reference_wgs84_to_vn2000(lon0, ref_lon, ref_lat)
    assert np.hypot(b[:, 0] - ref_e, b[:, 1] - ref_n).max() < 0.001


def test_sign_flipped_towgs84_is_detected() -> None:
    """Copying the decision's rotation signs straight into +towgs84 is off by > 0.3 m: the reference sees it."""
    lon0, e, n = grid_points("vn2000:hue", 107.58, 16.46)
    ref_lon, ref_lat = reference_vn2000_to_wgs84(lon0, e, n)
    wrong_lon, wrong_lat = reference_vn2000_to_wgs84(lon0, e, n, sign=-1.0)
    assert metres(ref_lon, ref_lat, wrong_lon, wrong_lat).min() > 0.3
    wrong = (f"+proj=tmerc +lat_0=0 +lon_0={lon0} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
             f"+towgs84={DX},{DY},{DZ},{RX},{RY},{RZ},{DS} +units=m +no_defs")
    tr = Transformer.from_crs(CRS.from_proj4(wrong), CRS.from_epsg(4326), always_xy=True)
    bad_lon, bad_lat = tr.transform(e, n)
    assert metres(ref_lon, ref_lat, bad_lon, bad_lat).min() > 0.3


@pytest.mark.parametrize("text, key", [
    ("vn2000:ben-tre", "EPSG:9210"),
    ("vn2000:tm3:105.75", "EPSG:9210"),
    ("vn2000:tm3:105-45", "EPSG:9210"),
    ("VN2000:Ben-Tre", "EPSG:9210"),
    ("EPSG:9210", "EPSG:9210"),
    ("9210", "EPSG:9210"),
    ("http://www.opengis.net/def/crs/EPSG/0/9210", "EPSG:9210"),
    ("urn:ogc:def:crs:EPSG::9210", "EPSG:9210"),
    ("[EPSG:9210]", "EPSG:9210"),
    ("vn2000:hue", "EPSG:9214"),
    ("vn2000:ca-mau", "EPSG:9207"),
    ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84"),
    ("EPSG:4756", "EPSG:4756"),
    ("EPSG:32648", "EPSG:32648"),
])
def test_alias_resolution(text: str, key: str) -> None:
    assert get_crs(text).key == key


def test_registry_srids_and_axis_order() -> None:
    d = get_crs("vn2000:ben-tre")
    assert d.srid == 989210 and d.vn2000 and d.central_meridian == 105.75
    assert get_crs("EPSG:4326").lat_first and not get_crs("OGC:CRS84").lat_first


@pytest.mark.parametrize("text", ["vn2000:atlantis", "vn2000:tm3:99.5", "EPSG:5896", "EPSG:4269", "EPSG:4267",
                                  "EPSG:999999", "not-a-crs"])
def test_unknown_vn2000_or_other_datums_refused(text: str) -> None:
    with pytest.raises(CrsError):
        get_crs(text)


def test_prj_naming_vn2000_tm3_maps_to_registry_zone() -> None:
    """An ESRI .prj as land offices ship it (no or wrong TOWGS84) -> the registry zone with official params."""
    prj = ('PROJCS["VN_2000_Ben_Tre_TM3",GEOGCS["GCS_VN_2000",DATUM["D_Vietnam_2000",'
           'SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],'
           'UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
           'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],'
           'PARAMETER["Central_Meridian",105.75],PARAMETER["Scale_Factor",0.9999],'
           'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]')
    assert crs_from_metadata(prj).key == "EPSG:9210"
    wrong_signs = (f"+proj=tmerc +lat_0=0 +lon_0=107 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
                   f"+towgs84={DX},{DY},{DZ},{RX},{RY},{RZ},{DS} +units=m +no_defs")
    assert crs_from_metadata(CRS.from_proj4(wrong_signs).to_wkt()).key == "EPSG:9214"
    assert crs_from_metadata("EPSG:4326").key == "OGC:CRS84"
    assert crs_from_metadata("EPSG:5899").key == "EPSG:5899"
