"""Import speed: N simple polygons (parcels) in VN-2000 TM-3 (Bến Tre zone, 105°45') written to a GeoPackage,
then `datso import` into a scratch database; prints features/s.

    .venv/bin/python bench/import_speed.py [--n 200000] [--db bench_import]

The scratch database is created and migrated fresh on the cluster `datso db start` runs (or DATABASE_URL's
server) and dropped afterwards unless --keep.
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

from gis.crs import get_crs
from gis.io import crs_metadata
from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster


def make_gpkg(path: Path, n: int) -> None:
    """n squares of 12 x 12 m on a grid around (560000, 1128000) in VN-2000 / TM-3 105-45."""
    i = np.arange(n)
    x0 = 540_000 + (i % 700) * 15.0
    y0 = 1_110_000 + (i // 700) * 15.0
    gdf = gpd.GeoDataFrame({
        "commune_code": np.where(i % 2 == 0, "86001", "86002"),
        "map_sheet": (i // 1000 + 1).astype("int32"),
        "parcel_no": (i % 1000 + 1).astype("int32"),
        "area_m2": np.full(n, 144.0),
        "land_use_codes": np.where(i % 3 == 0, "ONT", "CLN,ONT"),
        "status": "managed",
    }, geometry=shapely.box(x0, y0, x0 + 12, y0 + 12), crs=crs_metadata(get_crs("vn2000:ben-tre")))
    pyogrio.write_dataframe(gdf, path, layer="parcels", driver="GPKG")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--db", default="bench_import")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    base = Settings()
    s = base.model_copy(update={"db_name": args.db})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(args.db)})
    pgcluster.drop_database(s, args.db)
    pgcluster.ensure_database(s, args.db)
    dbmod.migrate(s)
    with tempfile.TemporaryDirectory() as tmp:
        gpkg = Path(tmp) / "parcels_vn2000.gpkg"
        t = time.perf_counter()
        make_gpkg(gpkg, args.n)
        print(f"generated {args.n} polygons in {time.perf_counter() - t:.1f} s ({gpkg.stat().st_size >> 20} MiB)")
        datso = Path(sys.executable).with_name("datso")
        cmd = [str(datso), "import", str(gpkg), "--layer", "parcels"]
        env = {**os.environ, "DATABASE_URL": s.dsn()}
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        print(proc.stdout.strip())
        if proc.returncode != 0:
            print(proc.stderr.strip()[-2000:], file=sys.stderr)
            return proc.returncode
    print(f"datso import: {args.n} features in {wall:.1f} s wall (process start included) = "
          f"{args.n / wall:,.0f} features/s")
    if not args.keep:
        pgcluster.drop_database(s, args.db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
