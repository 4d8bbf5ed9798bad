"""Raster layers: GeoTIFF/COG files kept in one folder (`DATSO_IMAGERY_DIR`), which *is* the registry.

`NAME.tif` in the folder is the raster layer NAME (served at `/rasters/NAME/...` and `/imagery/NAME/...`);
`add_raster` puts a file there as a Cloud-Optimised GeoTIFF (rio-cogeo), whatever its layout and CRS. Band
names, the "synthetic" label and the CRS the file was given in travel inside the GeoTIFF (band descriptions
and tags), so there is no second place to keep in step with the files.

VN-2000: GDAL reads a GeoTIFF tagged EPSG:9210 (or any VN-2000 code) with PROJ's default VN-2000 → WGS 84
operation, which is not the official Decision 05/2007/QĐ-BTNMT shift (about a metre apart). `add_raster`
therefore rewrites the CRS of a VN-2000 file as datso's own definition (`gis.crs`, `+towgs84` with the official
7 parameters, which a GeoTIFF keeps in its GeogTOWGS84 key); rio-tiler's warps and the zonal statistics then
use the official shift, and the EPSG code is kept in the `SOURCE_CRS` tag for display.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import RasterioIOError
from rasterio.warp import transform_bounds

from gis.crs import CrsError, get_crs
from gis.errors import BilingualError
from layers.settings import ImagerySettings, get_imagery_settings

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SUFFIXES = (".tif", ".tiff")
CRS_TAG = "SOURCE_CRS"


class RasterError(BilingualError):
    """A raster that cannot be registered or served (404 unknown, 400/422 bad file or parameter)."""

    def __init__(self, status: int, vi: str, en: str) -> None:
        super().__init__(vi, en, status)


@dataclass(frozen=True)
class RasterInfo:
    name: str
    path: Path
    bounds: tuple[float, float, float, float]          # lon/lat (WGS 84)
    native_bounds: tuple[float, float, float, float]   # in the raster's CRS
    crs: str                                           # as registered, e.g. "EPSG:9210"
    crs_wkt: str                                       # what GDAL reads (VN-2000: with the official TOWGS84)
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    resolution: tuple[float, float]
    band_names: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    minzoom: int = 0
    maxzoom: int = 24

    @property
    def synthetic(self) -> bool:
        return self.tags.get("SYNTHETIC", "").lower() in ("1", "true", "yes")

    def band_index(self, text: str) -> int:
        """A band given as `1`, `b1` or its name (`nir`) → its 1-based index (RasterError 400 otherwise)."""
        t = text.strip().lower()
        if t.startswith("b") and t[1:].isascii() and t[1:].isdigit():
            t = t[1:]
        if t.isascii() and t.isdigit() and 1 <= int(t) <= self.count:
            return int(t)
        for i, n in enumerate(self.band_names, start=1):
            if n.lower() == t:
                return i
        names = ", ".join(f"b{i} ({n})" for i, n in enumerate(self.band_names, start=1))
        raise RasterError(400, f"band: không có kênh '{text[:30]}' (có: {names})",
                          f"band: no band '{text[:30]}' (bands: {names})")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "bounds": list(self.bounds), "crs": self.crs,
                "native_bounds": list(self.native_bounds), "width": self.width, "height": self.height,
                "resolution": list(self.resolution), "dtype": self.dtype, "nodata": self.nodata,
                "bands": [{"index": i, "name": n, "expression_name": f"b{i}"}
                          for i, n in enumerate(self.band_names, start=1)],
                "synthetic": self.synthetic, "description": self.tags.get("DESCRIPTION", ""),
                "minzoom": self.minzoom, "maxzoom": self.maxzoom}


def _find(directory: Path, name: str) -> Path | None:
    for suffix in SUFFIXES:
        p = directory / (name + suffix)
        if p.is_file():
            return p
    return None


def open_raster(name: str, settings: ImagerySettings | None = None) -> RasterInfo:
    s = settings or get_imagery_settings()
    path = _find(s.imagery_dir, name) if NAME.match(name) else None
    if path is None:
        raise RasterError(404, f"Không có lớp ảnh '{name[:64]}'", f"No raster named '{name[:64]}'")
    return _describe(str(path), path.stat().st_mtime, s.imagery_minzoom, s.imagery_maxzoom)


def list_rasters(settings: ImagerySettings | None = None) -> list[RasterInfo]:
    s = settings or get_imagery_settings()
    if not s.imagery_dir.is_dir():
        return []
    out = []
    for p in sorted(s.imagery_dir.iterdir()):
        if p.suffix.lower() in SUFFIXES and NAME.match(p.stem):
            try:
                out.append(open_raster(p.stem, s))
            except RasterError:
                continue
    return out


@lru_cache(maxsize=64)
def _describe(path: str, mtime: float, minzoom: int, maxzoom: int) -> RasterInfo:
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise RasterError(422, "Ảnh không có hệ tọa độ", "The image has no CRS")
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
            tags = {k.upper(): v for k, v in src.tags().items()}
            crs_text = tags.get(CRS_TAG) or (f"EPSG:{src.crs.to_epsg()}" if src.crs.to_epsg() else "custom")
            names = tuple(d or f"b{i}" for i, d in enumerate(src.descriptions, start=1))
            return RasterInfo(
                Path(path).stem, Path(path), (bounds[0], bounds[1], bounds[2], bounds[3]),
                (src.bounds.left, src.bounds.bottom, src.bounds.right, src.bounds.top), crs_text,
                src.crs.to_wkt(), src.width, src.height, src.count, src.dtypes[0],
                None if src.nodata is None else float(src.nodata), (abs(src.res[0]), abs(src.res[1])), names,
                tags, minzoom, maxzoom)
    except RasterioIOError:
        raise RasterError(422, "Không đọc được tệp ảnh", "The image file cannot be read") from None


def official_crs(crs: rasterio.crs.CRS | None) -> tuple[str, str] | None:
    """(the EPSG key, the PROJ definition with the official shift) for a VN-2000 CRS GDAL read from an EPSG
    code; None for any other CRS (kept as is)."""
    if crs is None:
        return None
    code = crs.to_epsg()
    if code is None:
        return None
    try:
        d = get_crs(f"EPSG:{code}")
    except CrsError:
        return None
    return (d.key, d.proj) if d.vn2000 else None


def add_raster(source: str | Path, name: str, *, force: bool = False, settings: ImagerySettings | None = None,
               tags: dict[str, str] | None = None, band_names: list[str] | None = None) -> RasterInfo:
    """Register `source` (a GeoTIFF/COG in any CRS) as the raster layer `name`: written as a COG (deflate,
    internal overviews) into the raster folder, VN-2000 bound to the official shift. Returns its description.
    Raises RasterError naming what is wrong (name, file, CRS); nothing is written then."""
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    s = settings or get_imagery_settings()
    if not NAME.match(name):
        raise RasterError(400, f"name: tên '{name[:64]}' không hợp lệ (chữ thường, số, - và _)",
                          f"name: invalid name '{name[:64]}' (lower-case letters, digits, - and _)")
    dest = s.imagery_dir / f"{name}.tif"
    if (_find(s.imagery_dir, name) is not None) and not force:
        raise RasterError(409, f"name: đã có lớp ảnh '{name}' (dùng --force để thay)",
                          f"name: raster '{name}' exists (use --force to replace)")
    try:
        with rasterio.open(source) as src:
            if src.crs is None:
                raise RasterError(422, f"{Path(source).name}: ảnh không có hệ tọa độ",
                                  f"{Path(source).name}: the image has no CRS")
            count = src.count
            fix = official_crs(src.crs)
    except RasterioIOError:
        raise RasterError(422, f"{Path(source).name}: không phải GeoTIFF đọc được",
                          f"{Path(source).name}: not a readable GeoTIFF") from None
    if band_names is not None and len(band_names) != count:
        raise RasterError(400, f"bands: cần {count} tên kênh", f"bands: {count} band names needed")
    s.imagery_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=s.imagery_dir) as tmp:
        work = Path(tmp) / "src.tif"
        shutil.copyfile(source, work)
        with rasterio.open(work, "r+") as ds:   # a plain copy: its CRS/tags/descriptions may be rewritten
            extra = dict(tags or {})
            if fix is not None:
                ds.crs = rasterio.crs.CRS.from_string(fix[1])
                extra[CRS_TAG] = fix[0]
            elif ds.crs.to_epsg():
                extra.setdefault(CRS_TAG, f"EPSG:{ds.crs.to_epsg()}")
            ds.update_tags(**extra)
            for i, n in enumerate(band_names or [], start=1):
                ds.set_band_description(i, n)
        out = Path(tmp) / "cog.tif"
        profile = dict(cog_profiles.get("deflate"), zlevel=1)  # level 1: 5x faster than 6, files ~25% larger
        cog_translate(str(work), str(out), profile, forward_band_tags=True, overview_resampling="average",
                      quiet=True, in_memory=False, temporary_compression="NONE")
        out.replace(dest)
    for other in s.imagery_dir.glob(f"{name}.tiff"):
        other.unlink()
    _describe.cache_clear()
    return open_raster(name, s)


def is_cog(path: str | Path) -> bool:
    from rio_cogeo.cogeo import cog_validate

    return bool(cog_validate(str(path), strict=True, quiet=True)[0])
