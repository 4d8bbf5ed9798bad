#!/usr/bin/env python3
"""Race datso's vector tiles against TiPg, the raw PostGIS floor and a static file server.

Wraps the shared harness (`--harness DIR` holding tile_race.py/racecore.py, default ../shared/bench):
1. size/latency pass: every tile of the list once, sequentially, from datso with its cache off
   (largest tile, tiles > 250 ms at z >= 10);
2. uncached race: datso (cache off) vs TiPg vs the SQL floor, concurrency 1 and 16, by zoom;
3. cached race: datso (cache on, warmed) vs nginx serving the same gzip bytes from disk (gzip_static),
   both with Accept-Encoding: gzip, concurrency 1 and 16.
Servers are started by you (see docs/benchmarks.md, section "Tiles"); this script starts nginx itself
when `--nginx-port` is given. Run it with a Python that has aiohttp (+ uvloop) and psycopg 3, e.g. the
benchmark venv that holds TiPg.

  python bench/tiles_vs_tipg.py --dsn postgresql://postgres@127.0.0.1:5433/datso_large \\
    --datso-cold http://127.0.0.1:8202 --datso-warm http://127.0.0.1:8203 --tipg http://127.0.0.1:8201 \\
    --nginx-port 8210 --zooms 10-16 --count 300 --out /tmp/tiles-bench
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DATSO_TILE = "{base}/collections/parcels/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
TIPG_TILE = "{base}/collections/public.parcels/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}?geom-column=geom_3857"
NGINX_CONF = """daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 100000;
  types {{ application/vnd.mapbox-vector-tile mvt; }} gzip_static on;
  server {{ listen 127.0.0.1:{port}; root {root};
    location / {{ try_files $uri =404; add_header Cache-Control "public, max-age=300"; }} }} }}
"""


def run(cmd: list[str], log: Path) -> str:
    print("$", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    log.write_text(out.stdout + "\n--- stderr\n" + out.stderr)
    return out.stdout


def fetch(url: str, gz: bool = False) -> tuple[int, bytes, float]:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip" if gz else "identity"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            body = r.read()
            return r.status, body, time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.perf_counter() - t0


def size_pass(template: str, tiles: list[tuple[int, int, int]]) -> dict[str, object]:
    worst: list[tuple[float, str, int]] = []
    largest = (0, "")
    slow = 0
    for z, x, y in tiles:
        url = template.format(z=z, x=x, y=y)
        status, body, dt = fetch(url)
        assert status in (200, 204), (url, status, body[:200])
        if len(body) > largest[0]:
            largest = (len(body), f"{z}/{x}/{y}")
        if z >= 10 and dt > 0.25:
            slow += 1
        worst.append((dt, f"{z}/{x}/{y}", len(body)))
    worst.sort(reverse=True)
    return {"tiles": len(tiles), "largest_bytes": largest[0], "largest_tile": largest[1],
            "over_250ms_z10plus": slow, "slowest": [{"ms": round(d * 1000, 1), "tile": t, "bytes": b}
                                                   for d, t, b in worst[:5]]}


def materialise(base: str, tiles: list[tuple[int, int, int]], root: Path) -> None:
    """The bytes datso serves, on disk for nginx: y.mvt (identity) and y.mvt.gz (the gzip datso stores)."""
    for z, x, y in tiles:
        url = DATSO_TILE.format(base=base).format(z=z, x=x, y=y)
        status, raw, _ = fetch(url)
        path = root / str(z) / str(x) / f"{y}.mvt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw if status == 200 else b"")
        if status == 200:
            req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(req) as r:
                gz = r.read()          # urllib does not decode: the stored gzip bytes
            assert gzip.decompress(gz) == raw
            (path.parent / f"{y}.mvt.gz").write_bytes(gz)


def ratios(text: str) -> list[dict[str, object]]:
    out = []
    for m in re.finditer(r"^RATIO (\S+)/(\S+) rps=([\d.]+) p50=([\d.]+) c=(\d+)", text, re.M):
        out.append({"server": m[1], "baseline": m[2], "rps": float(m[3]), "p50": float(m[4]), "c": int(m[5])})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--harness", default=str(Path(__file__).resolve().parents[2] / "shared" / "bench"))
    p.add_argument("--dsn", required=True, help="the database all contestants read (floor connects here)")
    p.add_argument("--datso-cold", required=True, help="datso base URL with DATSO_TILE_CACHE_ENABLED=false")
    p.add_argument("--datso-warm", required=True, help="datso base URL with its tile cache on")
    p.add_argument("--tipg", required=True, help="TiPg base URL (table public.parcels)")
    p.add_argument("--nginx-port", type=int, help="start nginx here for the cached comparison")
    p.add_argument("--zooms", default="10-16")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bbox", default="105.86,9.55,106.80,10.38", help="the parcels' extent")
    p.add_argument("--floor-columns", default="id,commune_code,status")
    p.add_argument("--floor-limit", type=int, default=20000, help="datso's per-tile cap")
    p.add_argument("--out", default="/tmp/tiles-bench")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    race = [sys.executable, str(Path(args.harness) / "tile_race.py")]
    tiles_file = out / "tiles.txt"
    floor_dsn = args.dsn + ("&" if "?" in args.dsn else "?") + \
        "options=-c%20jit%3Doff%20-c%20max_parallel_workers_per_gather%3D0"
    common = ["--tiles", str(tiles_file), "--rounds", str(args.rounds), "--concurrency", "1",
              "--concurrency", "16", "--by-zoom"]
    # the tile list (the harness's generator), saved once and replayed by every race
    sys.path.insert(0, args.harness)
    from tile_race import make_tiles  # the harness's generator: same arguments, same list
    zmin, _, zmax = args.zooms.partition("-")
    items = make_tiles([float(v) for v in args.bbox.split(",")], int(zmin), int(zmax or zmin), args.count, 1, 0.5)
    tiles_file.write_text("".join(f"{t['z']}/{t['x']}/{t['y']}\n" for t in items))
    tiles = [(t["z"], t["x"], t["y"]) for t in items]
    report: dict[str, object] = {"tiles": len(tiles)}

    report["size_pass"] = size_pass(DATSO_TILE.format(base=args.datso_cold), tiles)  # type: ignore[arg-type]
    print(json.dumps(report["size_pass"], indent=1), file=sys.stderr)

    cold = run(race + common + [
        "--baseline", "tipg", "--server", "datso=" + DATSO_TILE.format(base=args.datso_cold),
        "--server", "tipg=" + TIPG_TILE.format(base=args.tipg),
        "--sql-floor", floor_dsn, "--sql-table", "public.parcels", "--sql-geom", "geom_3857",
        "--sql-columns", args.floor_columns, "--sql-limit", str(args.floor_limit),
        "--json", str(out / "cold.json")], out / "cold.out")
    report["cold"] = ratios(cold)
    floor = run(race + common + [
        "--baseline", "sql-floor", "--server", "datso=" + DATSO_TILE.format(base=args.datso_cold),
        "--sql-floor", floor_dsn, "--sql-table", "public.parcels", "--sql-geom", "geom_3857",
        "--sql-columns", args.floor_columns, "--sql-limit", str(args.floor_limit),
        "--json", str(out / "floor.json")], out / "floor.out")
    report["floor"] = ratios(floor)

    if args.nginx_port:
        root = out / "static"
        shutil.rmtree(root, ignore_errors=True)
        materialise(args.datso_warm, tiles, root)  # type: ignore[arg-type]
        conf = out / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=out, port=args.nginx_port, root=root))
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(out)])
        try:
            time.sleep(1)
            warm = run(race + common + [
                "--baseline", "nginx", "--accept-encoding", "gzip",
                "--server", "datso-warm=" + DATSO_TILE.format(base=args.datso_warm),
                "--server", "nginx=" + f"http://127.0.0.1:{args.nginx_port}/{{z}}/{{x}}/{{y}}.mvt",
                "--json", str(out / "warm.json")], out / "warm.out")
            report["warm"] = ratios(warm)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    print(f"raw outputs: {out}/*.out", file=sys.stderr)
    os.sync()


if __name__ == "__main__":
    main()
