"""The CRS registry: EPSG codes datso publishes and every VN-2000 TM-3 provincial zone.

VN-2000 <-> WGS84 always goes through the official 7-parameter transformation of Decision 05/2007/QĐ-BTNMT
(= EPSG:6960). The decision writes rotations in the coordinate-frame convention; PROJ's `+towgs84` uses the
position-vector convention, so the rotation signs are flipped here (a common 0.5-0.75 m bug otherwise).
Every VN-2000 CRS is defined by an explicit PROJ string carrying those parameters, in Python (pyproj) and in
PostGIS (custom `spatial_ref_sys` rows, see `postgis_srid`), so PROJ never picks another transformation.

What leaves datso names the EPSG code AND carries the same shift (`output_crs`): the EPSG definition bound to
WGS 84 by the official Helmert (`BOUNDCRS`, OGC WKT1 `TOWGS84[...]` + `AUTHORITY["EPSG","9210"]`). Every file
writer (GeoPackage, Shapefile `.prj` via `prj_wkt`, FlatGeobuf, GeoJSON) and every GeoDataFrame (`frame_crs`)
gets it from here; `tests/test_crs_identity.py` checks it against the PROJ strings and PostGIS's ST_Transform.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import pyproj
from pyproj import CRS, Transformer

# Decision 05/2007/QĐ-BTNMT, coordinate-frame convention (as printed in the decision).
OFFICIAL_HELMERT_CF = {
    "dx": -191.90441429, "dy": -39.30318279, "dz": -111.45032835,
    "rx": -0.00928836, "ry": 0.01975479, "rz": -0.00427372,  # arc-seconds
    "ds": 0.252906278,  # ppm
}
# PROJ +towgs84 = position-vector convention: rotations negated.
TOWGS84 = ",".join(
    repr(v) for v in (
        OFFICIAL_HELMERT_CF["dx"], OFFICIAL_HELMERT_CF["dy"], OFFICIAL_HELMERT_CF["dz"],
        -OFFICIAL_HELMERT_CF["rx"], -OFFICIAL_HELMERT_CF["ry"], -OFFICIAL_HELMERT_CF["rz"],
        OFFICIAL_HELMERT_CF["ds"],
    )
)
VN2000_GEOG = f"+proj=longlat +ellps=WGS84 +towgs84={TOWGS84} +no_defs +type=crs"
OGC_URI = "http://www.opengis.net/def/crs/{auth}/{version}/{code}"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

# Custom PostGIS SRIDs for VN-2000 CRSs: 980000 + (EPSG code mod 10000); 4756 -> 984756, 9210 -> 989210.
DATSO_SRID_BASE = 980000


class CrsError(ValueError):
    """A CRS that datso does not know or will not transform silently."""


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn").lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


@dataclass(frozen=True)
class CrsDef:
    key: str                       # canonical datso key, e.g. "EPSG:9210" or "vn2000:tm3:105.75"
    name: str
    proj: str                      # PROJ string used for every transformation
    epsg: int | None               # the EPSG code it corresponds to, if any
    srid: int                      # the SRID used inside PostGIS (custom for VN-2000)
    uri: str                       # OGC URI
    lat_first: bool = False        # authority axis order is lat/lon or northing/easting
    geographic: bool = False
    aliases: tuple[str, ...] = field(default=())
    vn2000: bool = False
    central_meridian: float | None = None
    provinces: tuple[str, ...] = field(default=())

    @property
    def pyproj(self) -> CRS:
        return _crs(self.proj)

    @property
    def output(self) -> CRS:
        """What files and GeoDataFrames carry: see `output_crs`."""
        return _output(self.key)

    @property
    def output_wkt(self) -> str:
        """OGC WKT1 (as GDAL writes it) of `output`: TOWGS84 + AUTHORITY for VN-2000."""
        return self.output.to_wkt("WKT1_GDAL")


@lru_cache(maxsize=256)
def _crs(proj: str) -> CRS:
    return CRS.from_user_input(proj)


# TM-3 zones: central meridian, EPSG code, old (pre-2025) provinces using it (Circular 973/2001/TT-TCĐC).
TM3_ZONES: list[tuple[float, int, tuple[str, ...]]] = [
    (103.0, 9205, ("Lai Châu", "Điện Biên")),
    (104.0, 9206, ("Sơn La",)),
    (104.5, 9207, ("Kiên Giang", "Cà Mau")),
    (104.75, 9208, ("Lào Cai", "Yên Bái", "Phú Thọ", "Nghệ An", "An Giang")),
    (105.0, 5897, ("Hà Nội", "Vĩnh Phúc", "Hà Nam", "Đồng Tháp", "Ninh Bình", "Thanh Hóa", "Cần Thơ",
                   "Hậu Giang", "Bạc Liêu")),
    (105.5, 9209, ("Hà Giang", "Bắc Ninh", "Hải Dương", "Hưng Yên", "Nam Định", "Thái Bình", "Hà Tĩnh",
                   "Tây Ninh", "Vĩnh Long", "Trà Vinh", "Sóc Trăng")),
    (105.75, 9210, ("TP HCM", "Bến Tre", "Bình Dương", "Long An", "Tiền Giang", "Hải Phòng", "Cao Bằng")),
    (106.0, 9211, ("Tuyên Quang", "Hòa Bình", "Quảng Bình")),
    (106.25, 9212, ("Quảng Trị", "Bình Phước")),
    (106.5, 9213, ("Bắc Kạn", "Thái Nguyên")),
    (107.0, 9214, ("Bắc Giang", "Thừa Thiên Huế")),
    (107.25, 9215, ("Lạng Sơn",)),
    (107.5, 9216, ("Kon Tum",)),
    (107.75, 5899, ("Bà Rịa-Vũng Tàu", "Đồng Nai", "Lâm Đồng", "Quảng Ninh", "Đà Nẵng", "Quảng Nam")),
    (108.0, 5898, ("Quảng Ngãi",)),
    (108.25, 9217, ("Bình Định", "Khánh Hòa", "Ninh Thuận")),
    (108.5, 9218, ("Đắk Lắk", "Đắk Nông", "Gia Lai", "Phú Yên", "Bình Thuận")),
]
# Extra spellings people type for old provinces.
_PROVINCE_ALIASES = {"tp-hcm": ("ho-chi-minh", "hcm", "tphcm", "sai-gon"), "ba-ria-vung-tau": ("brvt",),
                     "thua-thien-hue": ("hue",)}


def _tm3_proj(lon0: float) -> str:
    return (f"+proj=tmerc +lat_0=0 +lon_0={lon0} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
            f"+towgs84={TOWGS84} +units=m +no_defs +type=crs")


def _meridian_text(lon0: float) -> tuple[str, str]:
    deg, minutes = int(lon0), round((lon0 - int(lon0)) * 60)
    return f"{deg}-{minutes:02d}", f"{lon0:g}"


def _build() -> list[CrsDef]:
    defs = [
        CrsDef("OGC:CRS84", "WGS 84 (lon/lat)", "+proj=longlat +datum=WGS84 +no_defs +type=crs", None, 4326,
               CRS84_URI, geographic=True, aliases=("CRS84", "OGC:1.3:CRS84")),
        CrsDef("EPSG:4326", "WGS 84 (lat/lon)", "+proj=longlat +datum=WGS84 +no_defs +type=crs", 4326, 4326,
               OGC_URI.format(auth="EPSG", version=0, code=4326), lat_first=True, geographic=True,
               aliases=("WGS84",)),
        CrsDef("EPSG:3857", "WGS 84 / Pseudo-Mercator",
               "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m "
               "+nadgrids=@null +wktext +no_defs +type=crs", 3857, 3857,
               OGC_URI.format(auth="EPSG", version=0, code=3857), aliases=("WebMercator",)),
        CrsDef("EPSG:4756", "VN-2000 (lat/lon)", VN2000_GEOG, 4756, DATSO_SRID_BASE + 4756,
               OGC_URI.format(auth="EPSG", version=0, code=4756), lat_first=True, geographic=True,
               aliases=("vn2000", "vn2000:geographic"), vn2000=True),
    ]
    for zone, epsg in ((48, 3405), (49, 3406)):
        defs.append(CrsDef(
            f"EPSG:{epsg}", f"VN-2000 / UTM zone {zone}N",
            f"+proj=utm +zone={zone} +ellps=WGS84 +towgs84={TOWGS84} +units=m +no_defs +type=crs", epsg,
            DATSO_SRID_BASE + epsg, OGC_URI.format(auth="EPSG", version=0, code=epsg),
            aliases=(f"vn2000:utm{zone}", f"vn2000:utm:{zone}"), vn2000=True))
    for lon0, epsg, provinces in TM3_ZONES:
        dash, dec = _meridian_text(lon0)
        slugs = tuple(f"vn2000:{_slug(p)}" for p in provinces)
        extra = tuple(f"vn2000:{a}" for p in provinces for a in _PROVINCE_ALIASES.get(_slug(p), ()))
        defs.append(CrsDef(
            f"EPSG:{epsg}", f"VN-2000 / TM-3 {dash}", _tm3_proj(lon0), epsg, DATSO_SRID_BASE + epsg % 10000,
            OGC_URI.format(auth="EPSG", version=0, code=epsg),
            aliases=(f"vn2000:tm3:{dec}", f"vn2000:tm3:{dash}", *slugs, *extra), vn2000=True,
            central_meridian=lon0, provinces=provinces))
    return defs


REGISTRY: tuple[CrsDef, ...] = tuple(_build())
_INDEX: dict[str, CrsDef] = {}
for _d in REGISTRY:
    for _k in (_d.key, _d.uri, *_d.aliases):
        _INDEX[_k.lower()] = _d
    if _d.epsg:
        _INDEX[str(_d.epsg)] = _INDEX.get(str(_d.epsg), _d)
_INDEX["4326"] = _INDEX["epsg:4326"]

_URI_RE = re.compile(r"^https?://www\.opengis\.net/def/crs/(?P<auth>[A-Za-z]+)/[^/]+/(?P<code>[^/]+)$")
_URN_RE = re.compile(r"^urn:ogc:def:crs:(?P<auth>[A-Za-z]+):[^:]*:(?P<code>[^:]+)$", re.I)
_CURIE_RE = re.compile(r"^\[(?P<auth>[A-Za-z]+):(?P<code>[^\]]+)\]$")


def list_crs() -> Iterable[CrsDef]:
    return REGISTRY


def get_crs(text: str | int) -> CrsDef:
    """Resolve a CRS given as a datso key/alias, EPSG code, OGC URI, URN or safe CURIE.

    EPSG codes outside the registry are accepted only when their datum is WGS 84 (no datum shift can be
    chosen for them); any other datum is refused rather than transformed with a guessed pipeline.
    """
    raw = str(text).strip()
    if not raw:
        raise CrsError("empty CRS")
    key = raw.lower()
    if key in _INDEX:
        return _INDEX[key]
    m = _URI_RE.match(raw) or _URN_RE.match(raw) or _CURIE_RE.match(raw)
    if m:
        key = f"{m.group('auth')}:{m.group('code')}".lower()
        if key in _INDEX:
            return _INDEX[key]
    if key.startswith("vn2000:"):
        raise CrsError(f"unknown VN-2000 zone or province {raw!r}; known: "
                       + ", ".join(sorted(a for d in REGISTRY if d.vn2000 for a in d.aliases if "tm3:" in a
                                          and "-" not in a.split(":")[-1])))
    code = key.split(":", 1)[1] if key.startswith("epsg:") else key
    if not (code.isascii() and code.isdigit()):   # int("¹") fails although "¹".isdigit()
        raise CrsError(f"unknown CRS {raw!r}")
    try:
        crs = CRS.from_epsg(int(code))
    except pyproj.exceptions.CRSError as exc:
        raise CrsError(f"unknown CRS {raw!r}") from exc
    datum = (crs.datum.name if crs.datum else "") or ""
    if "VN-2000" in datum or "VN-2000" in crs.name:
        raise CrsError(f"EPSG:{code} ({crs.name}) is VN-2000 but not in datso's registry; use a TM-3 zone "
                       "(e.g. vn2000:tm3:105.75) so the official transformation is applied")
    if "World Geodetic System 1984" not in datum and "WGS 84" not in datum and "WGS84" not in datum:
        raise CrsError(f"EPSG:{code} ({crs.name}, datum {datum}) would need a datum transformation datso "
                       "does not choose silently")
    axes = [a.direction for a in crs.axis_info]
    return CrsDef(f"EPSG:{code}", crs.name, crs.to_wkt(), int(code), int(code),
                  OGC_URI.format(auth="EPSG", version=0, code=code),
                  lat_first=bool(axes) and axes[0] in ("north", "south"), geographic=crs.is_geographic)


def crs_for_zone(central_meridian: float) -> CrsDef:
    for d in REGISTRY:
        if d.central_meridian is not None and abs(d.central_meridian - central_meridian) < 1e-9:
            return d
    raise CrsError(f"no VN-2000 TM-3 zone with central meridian {central_meridian}")


@lru_cache(maxsize=512)
def transformer(src_key: str, dst_key: str) -> Transformer:
    """A lon/lat-ordered (always_xy) transformer between two registry CRSs (keys or aliases)."""
    src, dst = get_crs(src_key), get_crs(dst_key)
    return Transformer.from_crs(_crs(src.proj), _crs(dst.proj), always_xy=True)


def postgis_srid(text: str | int) -> int:
    return get_crs(text).srid


# ------------------------------------------------------------------------------------- output identity
def towgs84_values() -> tuple[float, ...]:
    """The 7 `+towgs84` numbers (position-vector convention, arc-seconds, ppm)."""
    return tuple(float(v) for v in TOWGS84.split(","))


@lru_cache(maxsize=64)
def _output(key: str) -> CRS:
    d = get_crs(key)
    if d.key in ("OGC:CRS84", "EPSG:4326"):
        return CRS.from_epsg(4326)        # files: GDAL's traditional lon/lat order for EPSG:4326
    if not d.vn2000 or d.epsg is None:
        return CRS.from_epsg(d.epsg) if d.epsg else _crs(d.proj)
    from pyproj.crs import BoundCRS
    from pyproj.crs.coordinate_operation import ToWGS84Transformation

    source = CRS.from_epsg(d.epsg)
    return BoundCRS(source_crs=source, target_crs="EPSG:4326",
                    transformation=ToWGS84Transformation(source.geodetic_crs, *towgs84_values()))


def output_crs(text: str | int | CrsDef) -> CRS:
    """The CRS every writer puts in a file: the EPSG definition, and for VN-2000 the same definition bound
    to WGS 84 by the official Decision 05/2007 Helmert (pyproj BoundCRS; WKT1 `TOWGS84` + `AUTHORITY`).

    Give it to pyogrio/geopandas as is (geopandas' `to_file` then writes `to_wkt("WKT1_GDAL")`: GeoPackage
    srs organization EPSG / code 9210 with the TOWGS84 in its definition, FlatGeobuf EPSG 9210, GeoJSON's
    `urn:ogc:def:crs:EPSG::9210`). Shapefiles need `prj_wkt` written over GDAL's ESRI `.prj`, which has no
    TOWGS84.

    GDAL itself (ogr2ogr, gdaltransform) replaces a CRS that has an EPSG code by the EPSG definition when it
    transforms (OGR_CT_PREFER_OFFICIAL_SRS_DEF=YES by default) and then lets PROJ pick a shift: for VN-2000
    PROJ picks EPSG:6959 "VN-2000 to WGS 84 (1)", ~0.8 m off the official EPSG:6960. Readers that build the
    CRS from the WKT (pyproj) use the TOWGS84; with GDAL add `--config OGR_CT_PREFER_OFFICIAL_SRS_DEF NO`
    (Shapefile: measured 0.13 mm from datso's coordinates, 814 mm without). GDAL's GeoPackage, FlatGeobuf and
    GeoJSON readers load an EPSG-named CRS from GDAL's own EPSG database whatever the stored definition says,
    so for those only `-s_srs` with `prj_wkt` (or a .prj) brings the official shift back.
    """
    d = text if isinstance(text, CrsDef) else get_crs(text)
    return d.output


def prj_wkt(text: str | int | CrsDef) -> str:
    """The Shapefile `.prj` text: OGC WKT1 as GDAL writes it, with TOWGS84 and AUTHORITY for VN-2000."""
    return output_crs(text).to_wkt("WKT1_GDAL")


class EpsgBoundCRS(CRS):
    """A GeoDataFrame's CRS for VN-2000 output (`frame_crs`): the BoundCRS of `output_crs`, so `gdf.to_crs()`
    uses the official shift, whose `to_epsg()` / `to_authority()` answer the EPSG code of its source CRS.

    Plain pyproj answers None for every BoundCRS; a GeoDataFrame labelled plain `EPSG:9210` instead would
    make `to_crs(4326)` use PROJ's pick (EPSG:6959, ~0.8 m off).
    """

    def to_epsg(self, min_confidence: int = 70) -> int | None:
        src = self.source_crs
        return src.to_epsg(min_confidence) if self.is_bound and src is not None else super().to_epsg(min_confidence)

    def to_authority(self, auth_name: str | None = None, min_confidence: int = 70) -> tuple[str, str] | None:
        src = self.source_crs
        if self.is_bound and src is not None:
            return src.to_authority(auth_name, min_confidence)
        return super().to_authority(auth_name, min_confidence)


def frame_crs(text: str | int | CrsDef) -> CRS:
    """The `.crs` of a GeoDataFrame datso hands out (read_layer): `output_crs`, with `to_epsg()` the code."""
    out = output_crs(text)
    return EpsgBoundCRS(out.to_wkt()) if out.is_bound else out


def definition(d: CrsDef) -> dict[str, object]:
    """What a client needs to reproject exactly as datso does (`GET /crs`): the identifiers and the WKT2 of
    `output_crs` - for VN-2000 bound to WGS 84 by the official Helmert, so pyproj/geopandas `to_crs()` with it
    is the official shift, not PROJ's pick (EPSG:6959, ~0.8 m off in the south)."""
    out = output_crs(d)
    return {"key": d.key, "uri": d.uri, "name": d.name, "epsg": d.epsg, "boundToWgs84": bool(out.is_bound),
            "wkt": out.to_wkt("WKT2_2019"), "proj": d.proj}


def geojson_crs(d: CrsDef) -> dict[str, object] | None:
    """The legacy GeoJSON (2008) `crs` member for output in `d`, the one GDAL/geopandas read
    (`{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::9210"}}`); None for CRS84 (RFC 7946's
    default) and for latitude-first CRSs (EPSG:4326, 4756): GDAL reads GeoJSON coordinates as x = longitude
    whatever the member says, so naming them would swap the axes (those clients should ask for JSON-FG)."""
    if d.key == "OGC:CRS84" or d.lat_first or d.epsg is None:
        return None
    return {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{d.epsg}"}}


def postgis_proj4(d: CrsDef) -> str:
    """The `proj4text` of `d`'s row in PostGIS's spatial_ref_sys (custom SRID `d.srid` for VN-2000): the same
    PROJ string as pyproj's. Migrations keep a frozen copy; tests check the database against this."""
    return d.proj.replace(" +type=crs", "")
