"""The synthetic multispectral image of the sample province: ONE generator, used by `datso sample load` (raster
layer `sample_s2`) and `datso map sample-imagery` (the same image at another size, box or path).

Sentinel-2-like bands blue, green, red and NIR whose NDVI follows the land use of the sample parcels and growing
areas, in UTM 48N, labelled synthetic in the file's tags; nothing is read from a real sensor.

    register_sample_s2(dsn)                                # .data/imagery/sample_s2.tif, a COG (30 m)
    write_sample_s2(dsn, "s2.tif", width=2048, bbox=(106.1, 9.9, 106.4, 10.2))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_bounds

from layers.settings import ImagerySettings
from layers.store.rasters import RasterInfo, add_raster

# -- the synthetic multispectral image of the sample province (`datso sample load`) --------------------------
# Sentinel-2-like surface reflectance × 10,000 (uint16) in bands blue, green, red, nir, in UTM 48N. Each land
# cover class has a typical reflectance, so NDVI = (nir - red) / (nir + red) follows the land use of the sample
# features: rice ≈ 0.78, orchards ≈ 0.68, annual crops ≈ 0.55, mixed vegetation ≈ 0.45, bare ≈ 0.2, built-up
# ≈ 0.12, water ≈ -0.3. Deterministic (seeded noise), labelled synthetic in the file's tags.
S2_BANDS = ["blue", "green", "red", "nir"]
S2_CLASSES: dict[str, tuple[int, int, int, int]] = {   # class: (blue, green, red, nir)
    "vegetation": (450, 800, 700, 1900),
    "rice": (350, 700, 380, 3100),
    "orchard": (380, 750, 460, 2400),
    "annual_crop": (500, 850, 620, 2150),
    "bare": (1100, 1300, 1500, 2250),
    "built_up": (1300, 1450, 1650, 2100),
    "water": (800, 700, 550, 300),
}
LAND_USE_CLASS = {"LUC": "rice", "LUK": "rice", "LUN": "rice", "CLN": "orchard", "HNK": "annual_crop",
                  "BHK": "annual_crop", "BCS": "bare", "MNC": "water", "SON": "water", "NTS": "water",
                  **{c: "built_up" for c in ("ONT", "ODT", "TMD", "SKC", "DGT", "TSC", "DGD", "DYT", "DVH", "DKH",
                                             "DTT", "TIN", "DSK", "DTL", "SKK", "DNL")}}
CROP_CLASS = {"rice": "rice", "durian": "orchard", "pomelo": "orchard", "coconut": "orchard",
              "dragon_fruit": "annual_crop"}
SAMPLE_RASTER = "sample_s2"


def ndvi_of(cls: str) -> float:
    b = S2_CLASSES[cls]
    return (b[3] - b[2]) / (b[3] + b[2])


def write_sample_s2(dsn: str, path: str | Path, resolution: float = 30.0, seed: int = 7, *,
                    width: int | None = None, height: int | None = None,
                    bbox: tuple[float, float, float, float] | None = None) -> Path:
    """Write the synthetic 4-band image of the sample province in the database at `dsn` to `path` (a tiled
    GeoTIFF in EPSG:32648; `datso raster add` / `register_sample_s2` make it a COG). It covers the province, or
    `bbox` (lon/lat) when given; `width` (pixels across; with `height`, pixels down too) overrides
    `resolution` (metres). Outside the province: nodata (0)."""
    import shapely
    from pyproj import Transformer
    from rasterio.features import rasterize

    from layers.store.connect import connect

    with connect("reader", dsn=dsn) as conn:
        outline = conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM admin_units WHERE level = 'province' "
                               "AND scheme = '2025'").fetchone()
        parcels = conn.execute("SELECT land_use_codes[1], ST_AsBinary(geom) FROM parcels ORDER BY id").fetchall()
        areas = conn.execute("SELECT crop, ST_AsBinary(geom) FROM growing_areas ORDER BY id").fetchall()
    if outline is None or outline[0] is None:
        raise ValueError("no sample province in the database (run `datso sample load` first)")
    to_utm = Transformer.from_crs(4326, 32648, always_xy=True)

    def utm(wkb: bytes) -> object:
        g = shapely.from_wkb(wkb)
        return shapely.transform(g, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))

    prov = utm(bytes(outline[0]))
    if bbox is not None:
        from rasterio.warp import transform_bounds

        minx, miny, maxx, maxy = transform_bounds("EPSG:4326", "EPSG:32648", *bbox, densify_pts=21)
    else:
        minx, miny, maxx, maxy = shapely.bounds(prov)
    if width is not None:
        resx = (maxx - minx) / width
        resy = (maxy - miny) / height if height is not None else resx
    else:
        resx = resy = resolution
        minx, miny = np.floor(minx / resolution) * resolution, np.floor(miny / resolution) * resolution
        width = int(np.ceil((maxx - minx) / resolution))
    if height is None:
        height = max(1, int(np.ceil((maxy - miny) / resy)))
    transform = from_bounds(minx, miny, minx + width * resx, miny + height * resy, width, height)
    names = list(S2_CLASSES)
    code = {c: i + 1 for i, c in enumerate(names)}
    shapes = [(utm(bytes(g)), code[LAND_USE_CLASS.get(u or "", "vegetation")]) for u, g in parcels if g]
    shapes += [(utm(bytes(g)), code[CROP_CLASS.get(c, "orchard")]) for c, g in areas if g]
    cls = rasterize(shapes, out_shape=(height, width), transform=transform, fill=code["vegetation"], dtype="uint8")
    inside = rasterize([(prov, 1)], out_shape=(height, width), transform=transform, fill=0, dtype="uint8")
    # a river across the province (placed in the province's frame, so any box or size shows the same river)
    px0, py0, px1, py1 = shapely.bounds(prov)
    xx = (minx + (np.arange(width) + 0.5) * resx - px0)[None, :] / (px1 - px0)
    yy = (miny + height * resy - (np.arange(height) + 0.5) * resy - py0)[:, None]
    yy = 1 - yy / (py1 - py0)
    river = np.abs(yy - 0.35 - 0.3 * xx - 0.04 * np.sin(xx * 12)) < 0.004
    cls[river & (cls == code["vegetation"])] = code["water"]
    table = np.array([[0, 0, 0, 0]] + [S2_CLASSES[n] for n in names], dtype=np.float32)      # (classes+1, 4)
    rng = np.random.default_rng(seed)
    noise = rng.random((height, width), dtype=np.float32)        # one factor for every band: NDVI unchanged
    noise *= 0.1
    noise += 0.95
    cls[inside == 0] = 0                                          # outside the province: nodata (0)
    data = np.empty((4, height, width), dtype=np.uint16)
    for b in range(4):
        data[b] = table[cls, b] * noise
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 4, "dtype": "uint16",
               "crs": "EPSG:32648", "transform": transform, "nodata": 0, "tiled": True, "blockxsize": 512,
               "blockysize": 512, "interleave": "pixel"}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        for i, n in enumerate(S2_BANDS, start=1):
            dst.set_band_description(i, n)
        dst.update_tags(SYNTHETIC="true", DEFAULT_RESCALE="0,1800",   # true colour: fields mid-green, roofs light
                        DESCRIPTION="datso synthetic Sentinel-2-like image of the sample province (not a real "
                                    "image): NDVI follows the land use of the sample parcels and growing areas",
                        DESCRIPTION_VI="Ảnh mô phỏng kiểu Sentinel-2 của tỉnh mẫu (không phải ảnh thật)")
    return out


def register_sample_s2(dsn: str, resolution: float = 30.0, seed: int = 7, settings: ImagerySettings | None = None,
                       *, name: str = SAMPLE_RASTER, width: int | None = None, height: int | None = None,
                       bbox: tuple[float, float, float, float] | None = None) -> RasterInfo:
    """Generate the synthetic image and register it as the raster layer `name` (default `sample_s2`; a COG in
    the raster folder of `settings`, replaced)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = write_sample_s2(dsn, Path(tmp) / "s2.tif", resolution, seed, width=width, height=height, bbox=bbox)
        return add_raster(src, name, force=True, settings=settings)
