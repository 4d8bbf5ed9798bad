#!/usr/bin/env python3
"""`GET /lookup` latency on a large database (the 1,000,000-parcel sample with planning and price zones).

Starts `datso serve` (this checkout, one worker) on `--port` against `--dsn`, then asks `--n` deterministic
points one at a time over HTTP (keep-alive): two thirds on parcels (a parcel's point-on-surface, parcels drawn
by a seeded random id), one third uniform in the province's bounding box (many fall between parcels, some
outside the province). Prints p50/p95/p99/max of the HTTP round trip and of the statement alone
(`layers.query.lookup.LOOKUP_SQL` through psycopg, same points), and checks every answer agrees with the
statement's parcel id. A benchmark, not a test: results go to docs/benchmarks.md by hand.

  DATABASE_URL=postgresql://postgres@127.0.0.1:5433/datso_large_lookup PYTHONPATH=$PWD \\
      /work/main/.venv/bin/python bench/lookup_speed.py --n 2000 --port 8110
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from layers.query.lookup import LOOKUP_SQL  # noqa: E402


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _summary(name: str, ms: list[float]) -> str:
    return (f"{name:<14} n={len(ms):>5}  p50={_pct(ms, 50):6.2f} ms  p95={_pct(ms, 95):6.2f} ms  "
            f"p99={_pct(ms, 99):6.2f} ms  max={max(ms):7.2f} ms  mean={statistics.fmean(ms):6.2f} ms")


def points(dsn: str, n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    with psycopg.connect(dsn) as c:
        max_id = c.execute("SELECT max(id) FROM parcels").fetchone()[0]
        ids = [rng.randint(1, max_id) for _ in range(2 * n // 3)]
        on = c.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM parcels "
                       "WHERE id = ANY(%s)) s", (ids,)).fetchall()
        box = c.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e "
                        "FROM admin_units WHERE level = 'province') s").fetchone()
    pts = [(float(x), float(y)) for x, y in on]
    while len(pts) < n:
        pts.append((rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])))
    rng.shuffle(pts)
    return pts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--port", type=int, default=8110)
    ap.add_argument("--warmup", type=int, default=200)
    args = ap.parse_args()
    if not args.dsn:
        raise SystemExit("give --dsn or DATABASE_URL")
    pts = points(args.dsn, args.n + args.warmup, args.seed)
    today = dt.date.today()
    # the statement alone
    sql_ms: list[float] = []
    expected: list[int | None] = []
    with psycopg.connect(args.dsn, cursor_factory=psycopg.RawCursor) as c:     # $1 placeholders, as asyncpg
        for i, (x, y) in enumerate(pts):
            t = time.perf_counter()
            body = json.loads(c.execute(LOOKUP_SQL, (x, y, today), prepare=True).fetchone()[0])
            if i >= args.warmup:
                sql_ms.append((time.perf_counter() - t) * 1000)
            expected.append(body["parcel"] and body["parcel"]["id"])
    env = {**os.environ, "DATABASE_URL": args.dsn, "PYTHONPATH": str(ROOT),
           "DATSO_RATE_LIMIT_SEARCH": "1000000/minute"}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port",
                               str(args.port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        while True:
            try:
                conn.request("GET", "/health")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start") from None
                time.sleep(0.3)
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        http_ms: list[float] = []
        inside = mismatched = 0
        for i, (x, y) in enumerate(pts):
            path = "/lookup?" + urllib.parse.urlencode({"lon": repr(x), "lat": repr(y)})
            t = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            data = resp.read()
            ms = (time.perf_counter() - t) * 1000
            if resp.status != 200:
                raise SystemExit(f"{path}: {resp.status} {data[:200]!r}")
            body = json.loads(data)
            got = body["parcel"] and body["parcel"]["id"]
            mismatched += got != expected[i]
            if i >= args.warmup:
                http_ms.append(ms)
                inside += bool(body["parcel"])
    finally:
        server.terminate()
        server.wait(10)
    with psycopg.connect(args.dsn) as c:
        n_parcels = c.execute("SELECT count(*) FROM parcels").fetchone()[0]
        n_zones = c.execute("SELECT (SELECT count(*) FROM planning_zones), (SELECT count(*) FROM land_price_zones)"
                            ).fetchone()
    print(f"database: {n_parcels:,} parcels, {n_zones[0]:,} planning zones, {n_zones[1]:,} price zones; "
          f"{len(http_ms)} points ({inside} on a parcel), {args.warmup} warm-up")
    print(_summary("SQL statement", sql_ms))
    print(_summary("HTTP /lookup", http_ms))
    print(f"answers disagreeing with the statement: {mismatched}")


if __name__ == "__main__":
    main()
