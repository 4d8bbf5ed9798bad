"""Re-import speed (issue 11): N parcels imported, then the same file with a changed attribute re-imported with
`datso import --mode update` and `--mode upsert` (rows matched by the composite business key commune_code +
map_sheet + parcel_no, one UPDATE, audited); prints rows/s for each.

    .venv/bin/python bench/reimport.py [--n 50000] [--db bench_reimport]

The scratch database is created and migrated fresh and dropped afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from bench.sampledb import fresh_sample_db
from gis.crs import get_crs
from gis.io import crs_metadata
from layers.store import pgcluster


def make_gpkg(path: Path, n: int, body: str) -> None:
    i = np.arange(n)
    x0 = 540_000 + (i % 700) * 15.0
    y0 = 1_110_000 + (i // 700) * 15.0
    gdf = gpd.GeoDataFrame({
        "commune_code": np.where(i % 2 == 0, "86001", "86002"), "map_sheet": (i // 1000 + 1).astype("int32"),
        "parcel_no": (i % 1000 + 1).astype("int32"), "area_m2": np.full(n, 144.0),
        "land_use_codes": np.where(i % 3 == 0, "ONT", "CLN,ONT"), "managing_body": body,
    }, geometry=shapely.box(x0, y0, x0 + 12, y0 + 12), crs=crs_metadata(get_crs("vn2000:ben-tre")))
    pyogrio.write_dataframe(gdf, path, layer="parcels", driver="GPKG")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--db", default="bench_reimport")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    s = fresh_sample_db(args.db, sample=False)
    env = {**os.environ, "DATABASE_URL": s.dsn()}
    datso = str(Path(sys.executable).with_name("datso"))
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("insert", "update", "upsert"):
            gpkg = Path(tmp) / f"{mode}.gpkg"
            make_gpkg(gpkg, args.n, f"UBND xã ({mode})")
            t = time.perf_counter()
            proc = subprocess.run([datso, "import", str(gpkg), "--layer", "parcels", "--mode", mode], env=env,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t
            if proc.returncode != 0:
                print(proc.stderr.strip()[-2000:], file=sys.stderr)
                return proc.returncode
            print(f"--mode {mode}: {args.n} rows in {wall:.1f} s wall (process start included) = "
                  f"{args.n / wall:,.0f} rows/s")
    if not args.keep:
        pgcluster.drop_database(s, args.db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
