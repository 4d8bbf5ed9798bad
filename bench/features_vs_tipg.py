#!/usr/bin/env python3
"""Race datso's OGC API – Features `/items` against TiPg and the raw PostGIS floor on the same database.

Wraps the shared harness (`--harness DIR` with features_race.py + racecore.py, default ../shared/bench): the same
deterministic list of bbox requests (limit 100 and 1000, concurrency 1 and 16, interleaved rounds) goes to
datso, TiPg and the SQL floor (the FeatureCollection built in one PostGIS statement, no HTTP). By default this
script starts both servers itself (datso with `.venv`, TiPg from a separate venv given by `--tipg-venv`) on
ports 8101/8102 with the same database settings (`jit=off`, `max_parallel_workers_per_gather=0`), and stops
them at the end. Run it with a Python that has aiohttp (+ uvloop) and psycopg 3 (the TiPg venv has them):

  /work/bench-venv/bin/python bench/features_vs_tipg.py --dsn postgresql://postgres@127.0.0.1:5433/datso_large \\
      --tipg-venv /work/bench-venv --out /tmp/features-bench

Prints the harness tables and the RATIO lines, and a summary of datso/tipg and datso/sql-floor.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the public fields datso serves for parcels (layers/catalog/registry.py), so the floor returns the same columns
PARCEL_COLUMNS = ("id,commune_code,old_commune_code,map_sheet,parcel_no,address,area_m2,land_use_codes,"
                  "managing_body,status,synthetic")
SESSION = "jit=off&max_parallel_workers_per_gather=0"


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server at {url} did not come up")


def start_servers(args: argparse.Namespace, out: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    sep = "&" if "?" in args.dsn else "?"
    env = {**os.environ, "DATABASE_URL": args.dsn}
    procs.append(subprocess.Popen(
        [str(ROOT / ".venv/bin/datso"), "serve", "--host", "127.0.0.1", "--port", str(args.datso_port)],
        cwd=ROOT, env=env, stdout=open(out / "datso.log", "wb"), stderr=subprocess.STDOUT))
    tenv = {**os.environ, "DATABASE_URL": args.dsn + sep + SESSION, "TIPG_DB_TABLES": '["public.parcels"]',
            "TIPG_CATALOG_TTL": "0", "DB_MIN_CONN_SIZE": "1", "DB_MAX_CONN_SIZE": "10",
            "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    procs.append(subprocess.Popen(
        [str(Path(args.tipg_venv) / "bin/uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port",
         str(args.tipg_port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
        env=tenv, stdout=open(out / "tipg.log", "wb"), stderr=subprocess.STDOUT))
    wait_http(f"http://127.0.0.1:{args.datso_port}/collections/parcels/items?limit=1")
    wait_http(f"http://127.0.0.1:{args.tipg_port}/collections/public.parcels/items?limit=1")
    return procs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", required=True, help="database with the datso schema (e.g. datso_large)")
    p.add_argument("--harness", default=str(ROOT.parent / "shared/bench"))
    p.add_argument("--tipg-venv", default="/work/bench-venv")
    p.add_argument("--datso-port", type=int, default=8101)
    p.add_argument("--tipg-port", type=int, default=8102)
    p.add_argument("--no-start", action="store_true", help="servers are already running on the ports")
    p.add_argument("--bbox", default=None, help="request area W,S,E,N (default: the parcels' extent)")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="/tmp/features-bench")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    bbox = args.bbox
    if bbox is None:
        import psycopg

        with psycopg.connect(args.dsn) as c:
            row = c.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                            "(SELECT ST_Extent(geom) e FROM parcels) s").fetchone()
        assert row is not None and row[0] is not None, "no parcels in the database"
        bbox = ",".join(f"{v:.3f}" for v in row)

    procs = [] if args.no_start else start_servers(args, out)
    try:
        cmd = [sys.executable, str(Path(args.harness) / "features_race.py"), "--baseline", "tipg",
               "--limit", "100", "--limit", "1000", "--concurrency", "1", "--concurrency", "16",
               "--rounds", str(args.rounds), "--count", str(args.count), "--seed", str(args.seed), "--bbox", bbox,
               "--server", f"datso=http://127.0.0.1:{args.datso_port}/collections/parcels/items?bbox={{bbox}}"
                           "&limit={limit}",
               "--server", f"tipg=http://127.0.0.1:{args.tipg_port}/collections/public.parcels/items?bbox={{bbox}}"
                           "&limit={limit}&geom-column=geom",
               "--sql-floor", args.dsn, "--sql-table", "public.parcels", "--sql-columns", PARCEL_COLUMNS,
               "--sql-digits", "8", "--json", str(out / "race.json")]
        print("$", " ".join(cmd), file=sys.stderr)
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        (out / "race.txt").write_text(res.stdout + "\n--- stderr\n" + res.stderr)
        print(res.stdout)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            raise SystemExit(res.returncode)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)

    # datso relative to the floor, from the harness JSON (the RATIO lines refer to the baseline, TiPg)
    ratios = re.findall(r"^RATIO (\S+)/tipg rps=([\d.]+) p50=([\d.]+) c=(\d+) limit=(\d+)", res.stdout, re.M)
    summary = [{"server": s, "rps_vs_tipg": float(r), "p50_vs_tipg": float(p50), "c": int(c), "limit": int(lim)}
               for s, r, p50, c, lim in ratios]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    for row in summary:
        print(f"{row['server']:10s} c={row['c']:<3d} limit={row['limit']:<5d} req/s x{row['rps_vs_tipg']:.2f} of TiPg, "
              f"p50 x{row['p50_vs_tipg']:.2f} of TiPg")


if __name__ == "__main__":
    main()
