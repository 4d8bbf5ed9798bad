#!/usr/bin/env python3
"""Mixed read load on a running datso (issue 8): tiles at several zooms, items (JSON and HTML), one item,
`/map`, `/search` and Folium exports, at a given concurrency for a given time. Prints errors and p50/p99
per route family (tiles also split by X-Cache: HIT vs built), and writes the raw numbers as JSON.

`--export-workers` of the `--concurrency` clients do nothing but Folium exports (one after the other), so
exports run during the whole measurement; the others draw requests from the weighted mix.

Start the server yourself on the sample (docs/benchmarks.md), e.g.:

  DATSO_DATA_DIR=/tmp/faults-data DATSO_PG_PORT=5499 datso serve --workers 2 --port 8104
  python bench/mixed_load.py --url http://127.0.0.1:8104 --concurrency 64 --duration 60 --out /tmp/mixed.json

The client runs on the same machine as the server unless you move it: its CPU use is part of the picture.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict

import aiohttp

MIX: list[tuple[str, int]] = [   # family, weight
    ("tiles", 60), ("items_json", 10), ("items_html", 5), ("item", 7), ("map", 3), ("search", 10),
    ("collection", 5),
]
SEARCHES = ["12/345", "tờ 3 thửa 17", "Mỹ Tho", "AP-", "thửa 120", "Vĩnh", "VT-0", "đấu giá"]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


class Load:
    def __init__(self, args: argparse.Namespace, bbox: list[float], ids: list[int]) -> None:
        self.args, self.bbox, self.ids = args, bbox, ids
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter[int | str]] = defaultdict(Counter)
        self.errors: list[str] = []
        self.rng = random.Random(args.seed)
        self.zooms = list(range(args.zmin, args.zmax + 1))
        # a fixed set of tiles (what a province's visitors ask again and again), warmed before the run
        self.tiles = [self.random_tile() for _ in range(args.tile_set)]

    def random_tile(self) -> str:
        r, (x1, y1, x2, y2) = self.rng, self.bbox
        z = r.choice(self.zooms)
        x, y = tile_of(r.uniform(x1, x2), r.uniform(y1, y2), z)
        if r.random() < 0.5:
            return f"/tiles/{z}/{x}/{y}.mvt"
        return f"/collections/parcels/tiles/WebMercatorQuad/{z}/{x}/{y}"

    async def warm(self, session: aiohttp.ClientSession) -> None:
        sem = asyncio.Semaphore(8)

        async def get(path: str) -> None:
            async with sem, session.get(self.args.url + path, headers={"Accept-Encoding": "gzip"}) as r:
                await r.read()

        # three rounds: each server worker has its own cache, and a round may land on either of them
        for _ in range(3):
            await asyncio.gather(*[get(p) for p in dict.fromkeys(self.tiles)])

    def pick(self, family: str) -> str:
        r, (x1, y1, x2, y2) = self.rng, self.bbox
        if family == "tiles" and self.tiles:
            return r.choice(self.tiles)
        if family == "tiles":
            z = r.choice(self.zooms)
            lon, lat = r.uniform(x1, x2), r.uniform(y1, y2)
            x, y = tile_of(lon, lat, z)
            if r.random() < 0.5:
                return f"/tiles/{z}/{x}/{y}.mvt"
            return f"/collections/parcels/tiles/WebMercatorQuad/{z}/{x}/{y}"
        if family == "items_json":
            lon, lat = r.uniform(x1, x2), r.uniform(y1, y2)
            d = 0.01
            return f"/collections/parcels/items?bbox={lon - d:.5f},{lat - d:.5f},{lon + d:.5f},{lat + d:.5f}&limit=50"
        if family == "items_html":
            return f"/collections/auction_plots/items?f=html&limit=20&offset={r.randrange(0, 280)}"
        if family == "item":
            return f"/collections/parcels/items/{r.choice(self.ids)}"
        if family == "map":
            return "/map"
        if family == "search":
            return f"/search?q={r.choice(SEARCHES)}"
        if family == "collection":
            return r.choice(["/collections", "/collections/parcels", "/collections/parcels/queryables"])
        if family == "export":
            return r.choice(["/maps/parcels.html", "/maps/auction_plots.html", "/maps/growing_areas.html"])
        raise ValueError(family)

    async def one(self, session: aiohttp.ClientSession, family: str) -> None:
        path = self.pick(family)
        t0 = time.perf_counter()
        try:
            async with session.get(self.args.url + path, headers={"Accept-Encoding": "gzip"}) as r:
                await r.read()
                dt = time.perf_counter() - t0
                status: int | str = r.status
                key = family
                if family == "tiles":
                    key = "tiles_hit" if r.headers.get("X-Cache") == "HIT" else "tiles_built"
                    self.lat["tiles"].append(dt)
                    self.status["tiles"][status] += 1
                self.lat[key].append(dt)
                self.status[key][status] += 1
                if status >= 400:
                    self.errors.append(f"{status} {path}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.status[family][type(exc).__name__] += 1
            self.errors.append(f"{type(exc).__name__} {path}")

    async def worker(self, session: aiohttp.ClientSession, deadline: float, export: bool) -> None:
        families = [f for f, _ in MIX]
        weights = [w for _, w in MIX]
        while time.monotonic() < deadline:
            family = "export" if export else self.rng.choices(families, weights)[0]
            await self.one(session, family)


async def discover(url: str) -> tuple[list[float], list[int]]:
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/collections/parcels") as r:
            doc = await r.json()
        async with s.get(url + "/collections/parcels/items?limit=500&skipGeometry=true") as r:
            items = await r.json()
    bbox = doc["extent"]["spatial"]["bbox"][0]
    return bbox, [int(f["id"]) for f in items["features"]]


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8104")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--export-workers", type=int, default=4, help="clients doing only Folium exports")
    ap.add_argument("--zmin", type=int, default=10)
    ap.add_argument("--zmax", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tile-set", type=int, default=1000,
                    help="draw tiles from this many (warmed first); 0 = a new random tile every time (cold)")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--out", help="write the raw figures as JSON here")
    args = ap.parse_args()
    args.url = args.url.rstrip("/")
    bbox, ids = await discover(args.url)
    load = Load(args, bbox, ids)
    conn = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        if load.tiles:
            t = time.monotonic()
            await load.warm(session)
            print(f"warmed {len(set(load.tiles))} tiles in {time.monotonic() - t:.1f} s", file=sys.stderr)
        t0 = time.monotonic()
        deadline = t0 + args.duration
        await asyncio.gather(*[load.worker(session, deadline, i < args.export_workers)
                               for i in range(args.concurrency)])
        elapsed = time.monotonic() - t0
    order = ["tiles", "tiles_hit", "tiles_built", "items_json", "items_html", "item", "collection", "search",
             "map", "export"]
    rows = []
    print(f"{args.url}: concurrency {args.concurrency} ({args.export_workers} on exports), {elapsed:.0f} s")
    print(f"{'family':<12} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for fam in order:
        v = load.lat.get(fam, [])
        if not v and not load.status.get(fam):
            continue
        row = {"family": fam, "requests": len(v), "rps": len(v) / elapsed, "p50_ms": pct(v, 50) * 1000,
               "p99_ms": pct(v, 99) * 1000, "max_ms": max(v) * 1000 if v else float("nan"),
               "statuses": {str(k): n for k, n in sorted(load.status[fam].items(), key=str)}}
        rows.append(row)
        print(f"{fam:<12} {row['requests']:>8} {row['rps']:>7.1f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
              f"{row['max_ms']:>8.1f}  {row['statuses']}")
    total = sum(len(load.lat[f]) for f in order if f not in ("tiles_hit", "tiles_built"))
    print(f"total {total} requests, {total / elapsed:.0f} req/s; errors: {len(load.errors)}")
    for e in Counter(load.errors).most_common(10):
        print("  ", e)
    tiles_p99 = pct(load.lat["tiles"], 99) * 1000
    print(f"tiles p99 {tiles_p99:.1f} ms while exports ran: {'under' if tiles_p99 < 100 else 'OVER'} 100 ms")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "elapsed_s": elapsed, "rows": rows, "errors": load.errors[:1000]}, f,
                      indent=1)
    return 1 if load.errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
