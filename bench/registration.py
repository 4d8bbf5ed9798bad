"""Registration speed: one registration with every check (area, minimum, commune, province, overlap under the
layer's lock) over HTTP with 100,000 existing growing areas, and a 5,000-area file import with all checks.

    PYTHONPATH=$PWD .venv/bin/python bench/registration.py [--existing 100000] [--posts 300] [--rows 5000]
                                                          [--port 8106] [--db bench_registration]

A scratch database gets the small sample province plus `--existing` synthetic areas (a grid of ~1 ha squares
with gaps, half active with codes, half drafts), so the overlap check has 100,000 candidates around. Then:
1. `--posts` sequential POST /collections/growing_areas/items of 1 ha rice areas in the gaps, through a real
   uvicorn on `--port` (every one 201, each one checked against the 100,000): p50/p95/p99 latency; and the same
   number of POSTs overlapping an existing area (409);
2. a GeoPackage of `--rows` areas in other gaps imported with the registration checks (`import_file(...)`,
   which registers by default, as the upload endpoint does): areas/s, and the same file through the upload endpoint.
Not a timed test: numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import geopandas as gpd
import httpx
import psycopg
import shapely
import uvicorn

from bench.sampledb import fresh_sample_db
from layers.accounts.auth import create_key
from layers.ingest.importer import ImportOptions, import_file

STEP, SIDE = 0.002, 0.0009          # grid step and square side (degrees): ~1 ha squares with ~120 m gaps

FILL = """
INSERT INTO growing_areas (code, crop, area_m2, owner, commune_code, status, valid_from, valid_to, geom)
SELECT CASE WHEN n %% 2 = 0 THEN 'BENCH-' || n END, 'rice', 10000, 'bench', '29000',
       CASE WHEN n %% 2 = 0 THEN 'active' ELSE 'draft' END, DATE '2026-01-01', DATE '2031-01-01', g
FROM (SELECT row_number() OVER () AS n, g FROM (
        SELECT ST_Multi(ST_MakeEnvelope(x, y, x + %(side)s, y + %(side)s, 4326)) AS g
        FROM generate_series(105.86::numeric, 106.80::numeric, %(step)s::numeric) x,
             generate_series(9.55::numeric, 10.38::numeric, %(step)s::numeric) y) c
      WHERE ST_Within(g, (SELECT geom FROM admin_units WHERE level = 'province' AND scheme = '2025'))
        AND NOT EXISTS (SELECT 1 FROM growing_areas t WHERE ST_Intersects(t.geom, c.g))
      LIMIT %(n)s) s
"""

# gap squares (offset by half a step on both axes) that are inside one commune and clear of every area
GAPS = """
SELECT ST_XMin(g), ST_YMin(g) FROM (
  SELECT ST_MakeEnvelope(x + %(off)s, y + %(off)s, x + %(off)s + %(side)s, y + %(off)s + %(side)s, 4326) AS g
  FROM generate_series(105.86::numeric, 106.80::numeric, %(step)s::numeric) x,
       generate_series(9.55::numeric, 10.38::numeric, %(step)s::numeric) y) c
WHERE EXISTS (SELECT 1 FROM admin_units a WHERE a.level = 'commune' AND a.scheme = '2025' AND ST_Within(c.g, a.geom))
  AND NOT EXISTS (SELECT 1 FROM growing_areas t WHERE ST_Intersects(t.geom, c.g))
ORDER BY md5(ST_XMin(g)::text || ST_YMin(g)::text) LIMIT %(n)s
"""


def square(x: float, y: float) -> shapely.Polygon:
    return shapely.box(x, y, x + SIDE, y + SIDE)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--existing", type=int, default=100_000)
    ap.add_argument("--posts", type=int, default=300)
    ap.add_argument("--rows", type=int, default=5_000)
    ap.add_argument("--port", type=int, default=8106)
    ap.add_argument("--db", default="bench_registration")
    args = ap.parse_args()

    t0 = time.perf_counter()
    s = fresh_sample_db(args.db)
    dsn = s.dsn()
    with psycopg.connect(dsn) as c:
        c.execute("SET LOCAL datso.audit = 'off'")
        c.execute(FILL, {"side": SIDE, "step": STEP, "n": args.existing})
        c.commit()
        c.autocommit = True
        c.execute("ANALYZE growing_areas")
        n_areas = c.execute("SELECT count(*) FROM growing_areas").fetchone()[0]  # type: ignore[index]
        gaps = c.execute(GAPS, {"off": STEP / 2, "side": SIDE, "step": STEP,
                                "n": args.posts + args.rows * 2}).fetchall()
    print(f"database ready in {time.perf_counter() - t0:.0f} s: {n_areas} growing areas, {len(gaps)} free gaps",
          file=sys.stderr)
    if len(gaps) < args.posts + args.rows * 2:
        print("not enough free gaps", file=sys.stderr)
        return 1
    posts, file_a, file_b = gaps[:args.posts], gaps[args.posts:args.posts + args.rows], gaps[args.posts + args.rows:]
    key = create_key(dsn, f"bench-{int(time.time())}", "officer")

    from api.app import create_app

    app = create_app(settings=s, dsn=dsn)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{args.port}"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/geo+json"}
    ok_ms: list[float] = []
    refused_ms: list[float] = []
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=60) as hc:
        for i, (x, y) in enumerate(posts):
            body = {"type": "Feature", "geometry": shapely.geometry.mapping(square(float(x), float(y))),
                    "properties": {"crop": "rice", "owner": f"bench {i}", "markets": ["VN"]}}
            t = time.perf_counter()
            r = hc.post(f"{url}/collections/growing_areas/items", content=json.dumps(body), headers=headers)
            ok_ms.append((time.perf_counter() - t) * 1000)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        for i, (x, y) in enumerate(posts):           # the same places again: each overlaps the area just made
            body = {"type": "Feature", "geometry": shapely.geometry.mapping(square(float(x) + SIDE / 3, float(y))),
                    "properties": {"crop": "rice", "owner": f"bench overlap {i}"}}
            t = time.perf_counter()
            r = hc.post(f"{url}/collections/growing_areas/items", content=json.dumps(body), headers=headers)
            refused_ms.append((time.perf_counter() - t) * 1000)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        with tempfile.TemporaryDirectory() as tmp:
            results = {}
            for name, cells in (("import_file", file_a), ("upload", file_b)):
                path = Path(tmp) / f"{name}.gpkg"
                gdf = gpd.GeoDataFrame({"crop": ["rice"] * len(cells), "owner": [f"HTX {i}" for i in range(len(cells))],
                                        "markets": ["VN,CN"] * len(cells)},
                                       geometry=[square(float(x), float(y)) for x, y in cells], crs="EPSG:4326")
                gdf.to_file(path, layer="vung_trong", engine="pyogrio")
                t = time.perf_counter()
                if name == "import_file":
                    res = import_file(path, "growing_areas", dsn, ImportOptions(progress=False,
                                                                                user="bench"))
                    written, errors = res.rows_written, len(res.errors)
                else:
                    r = hc.post(f"{url}/collections/growing_areas/imports",
                                headers={"Authorization": f"Bearer {key}"},
                                files={"file": (path.name, path.read_bytes())}, timeout=600)
                    written = r.json().get("rows_written", 0) if r.status_code == 201 else 0
                    errors = 0 if r.status_code == 201 else 1
                secs = time.perf_counter() - t
                results[name] = (written, errors, secs)
    server.should_exit = True
    thread.join(timeout=10)

    print(f"existing growing areas: {n_areas}")
    print(f"statuses: {statuses}")
    print(f"registration (201, {len(ok_ms)} POSTs): p50 {statistics.median(ok_ms):.1f} ms, "
          f"p95 {pct(ok_ms, 95):.1f} ms, p99 {pct(ok_ms, 99):.1f} ms, max {max(ok_ms):.1f} ms")
    print(f"overlap refused (409, {len(refused_ms)} POSTs): p50 {statistics.median(refused_ms):.1f} ms, "
          f"p95 {pct(refused_ms, 95):.1f} ms, p99 {pct(refused_ms, 99):.1f} ms")
    for name, (written, errors, secs) in results.items():
        print(f"{name}: {written} areas written ({errors} errors) in {secs:.2f} s = {written / secs:,.0f} areas/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
