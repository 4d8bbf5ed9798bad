#!/usr/bin/env python3
"""Stop the database under load and check what clients see (issue 8).

Runs `--concurrency` clients against a running datso (reads: items, one item, tiles, search; `--writers` of
them create auction plots with an officer key), stops the embedded PostgreSQL with `pg_ctl stop -m fast`
(as the postgres user when run as root), keeps it down `--outage` seconds, starts it again, and keeps the
load `--after` seconds more. Then it checks:

1. no 500 and no transport error at any time; no request slower than `--bound` seconds;
2. while the database is down, only 503 application/problem+json with Retry-After (a tile the cache
   still holds may answer 200: counted apart);
3. normal service within 5 s of the database's return (the last failure that *started* after the
   restart is at most 5 s after it);
4. nothing lost: every create that got 201 is in the table (creates answered 503 are reported too).

Use your OWN cluster: this stops it. Example (the sample on port 5499, server on 8104):

  export DATSO_DATA_DIR=/tmp/faults-data DATSO_PG_PORT=5499
  datso db start && datso db migrate && datso sample load
  KEY=$(datso keys create --name outage-bench --role officer)
  datso serve --workers 2 --port 8104 &
  python bench/outage.py --url http://127.0.0.1:8104 --key "$KEY" --data-dir /tmp/faults-data --pg-port 5499
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from layers.settings import Settings
from layers.store import pgcluster


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


@dataclass
class Rec:
    family: str
    start: float
    end: float
    status: int | str           # HTTP status or the transport error's name
    ctype: str = ""
    retry_after: bool = False
    cache: str = ""
    code: str = ""              # plot_code of a create


class Run:
    def __init__(self, args: argparse.Namespace, template: dict[str, Any], bbox: list[float], ids: list[int]):
        self.args, self.template, self.bbox, self.ids = args, template, bbox, ids
        self.recs: list[Rec] = []
        self.rng = random.Random(3)
        self.stop = False
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def read_path(self) -> tuple[str, str]:
        r = self.rng
        x1, y1, x2, y2 = self.bbox
        fam = r.choice(["items", "item", "tiles", "search"])
        if fam == "items":
            lon, lat = r.uniform(x1, x2), r.uniform(y1, y2)
            return fam, f"/collections/parcels/items?bbox={lon - .01:.5f},{lat - .01:.5f},{lon + .01:.5f},{lat + .01:.5f}&limit=20"
        if fam == "item":
            return fam, f"/collections/parcels/items/{r.choice(self.ids)}"
        if fam == "tiles":
            z = r.randint(12, 15)
            x, y = tile_of(r.uniform(x1, x2), r.uniform(y1, y2), z)
            return fam, f"/collections/parcels/tiles/WebMercatorQuad/{z}/{x}/{y}"
        return fam, f"/search?q={r.choice(['12/345', 'AP-', 'Vĩnh', 'thửa 7'])}"

    async def request(self, session: aiohttp.ClientSession, family: str, method: str, path: str,
                      body: bytes | None = None, code: str = "") -> None:
        start = self.now()
        headers = {"Accept-Encoding": "gzip"}
        if body is not None:
            headers |= {"Content-Type": "application/geo+json", "Authorization": f"Bearer {self.args.key}"}
        try:
            async with session.request(method, self.args.url + path, data=body, headers=headers) as r:
                await r.read()
                self.recs.append(Rec(family, start, self.now(), r.status, r.headers.get("Content-Type", ""),
                                     "Retry-After" in r.headers, r.headers.get("X-Cache", ""), code))
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.recs.append(Rec(family, start, self.now(), type(exc).__name__, code=code))
            await asyncio.sleep(0.05)

    async def reader(self, session: aiohttp.ClientSession) -> None:
        while not self.stop:
            fam, path = self.read_path()
            await self.request(session, fam, "GET", path)

    async def writer(self, session: aiohttp.ClientSession) -> None:
        while not self.stop:
            code = f"OUTAGE-{uuid.uuid4().hex[:12]}"
            feature = json.loads(json.dumps(self.template))
            feature["properties"]["plot_code"] = code
            await self.request(session, "create", "POST", "/collections/auction_plots/items",
                               json.dumps(feature).encode(), code)


def pg(args: argparse.Namespace) -> Settings:
    return Settings(data_dir=Path(args.data_dir), pg_port=args.pg_port)


async def prepare(args: argparse.Namespace) -> tuple[dict[str, Any], list[float], list[int]]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{args.url}/collections/auction_plots/items?limit=1&status=planned") as r:
            f = (await r.json())["features"][0]
        async with s.get(f"{args.url}/collections/parcels") as r:
            bbox = (await r.json())["extent"]["spatial"]["bbox"][0]
        async with s.get(f"{args.url}/collections/parcels/items?limit=300&skipGeometry=true") as r:
            ids = [int(x["id"]) for x in (await r.json())["features"]]
    props = dict(f["properties"])
    props.update({"status": "planned", "result_price_vnd": None})
    return {"type": "Feature", "geometry": f["geometry"], "properties": props}, bbox, ids


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8104")
    ap.add_argument("--key", required=True, help="an officer key (datso keys create --role officer)")
    ap.add_argument("--data-dir", required=True, help="DATSO_DATA_DIR of the cluster to stop (yours!)")
    ap.add_argument("--pg-port", type=int, required=True)
    ap.add_argument("--db-name", default="datso")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--outage", type=float, default=10.0)
    ap.add_argument("--after", type=float, default=15.0)
    ap.add_argument("--bound", type=float, default=15.0, help="no request may take longer (s)")
    ap.add_argument("--keep", action="store_true", help="keep the OUTAGE-* plots (deleted by default)")
    ap.add_argument("--out", help="write every request record as JSON here")
    args = ap.parse_args()
    args.url = args.url.rstrip("/")
    settings = pg(args)
    template, bbox, ids = await prepare(args)
    run = Run(args, template, bbox, ids)
    timeout = aiohttp.ClientTimeout(total=args.bound + 30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency),
                                     timeout=timeout) as session:
        tasks = [asyncio.create_task(run.writer(session) if i < args.writers else run.reader(session))
                 for i in range(args.concurrency)]
        await asyncio.sleep(args.warmup)
        t_stop = run.now()
        await asyncio.to_thread(pgcluster.stop, settings)
        t_down = run.now()
        print(f"database stopped at {t_stop:.1f}-{t_down:.1f} s", file=sys.stderr)
        await asyncio.sleep(args.outage)
        t_restart = run.now()
        await asyncio.to_thread(pgcluster.start, settings)
        t_up = run.now()
        print(f"database started at {t_restart:.1f}-{t_up:.1f} s", file=sys.stderr)
        await asyncio.sleep(args.after)
        run.stop = True
        await asyncio.gather(*tasks)

    recs = run.recs
    problems: list[str] = []
    in_outage = [r for r in recs if r.start >= t_down and r.end <= t_restart]
    outage_ok = Counter[str]()
    for r in in_outage:
        if r.status == 503 and r.ctype.startswith("application/problem+json") and r.retry_after:
            outage_ok["503 problem+json"] += 1
        elif r.family == "tiles" and r.status in (200, 204) and r.cache == "HIT":
            outage_ok["tile from cache"] += 1
        else:
            problems.append(f"during the outage: {r.family} {r.status} {r.ctype} retry-after={r.retry_after}")
    for r in recs:
        if r.status == 500 or isinstance(r.status, str):
            problems.append(f"{r.family} {r.status} at {r.start:.1f} s")
        if r.end - r.start > args.bound:
            problems.append(f"{r.family} took {r.end - r.start:.1f} s (> {args.bound} s) at {r.start:.1f} s")
    failing_after = [r for r in recs if r.start >= t_up and not (isinstance(r.status, int) and r.status < 400)]
    recovery = max((r.start for r in failing_after), default=t_up) - t_up
    if recovery > 5.0:
        problems.append(f"normal service {recovery:.1f} s after the database's return (> 5 s)")

    created = [r.code for r in recs if r.family == "create" and r.status == 201]
    refused = [r.code for r in recs if r.family == "create" and r.status != 201]
    dsn = settings.dsn(args.db_name)
    with psycopg.connect(dsn) as c:
        found = {row[0] for row in c.execute("SELECT plot_code FROM auction_plots WHERE plot_code = ANY(%s)",
                                             (created + refused,))}
        lost = [code for code in created if code not in found]
        if not args.keep:
            c.execute("DELETE FROM auction_plots WHERE plot_code LIKE 'OUTAGE-%%'")
    if lost:
        problems.append(f"{len(lost)} creates answered 201 are not in the table: {lost[:5]}")

    def summary(rs: list[Rec]) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for r in rs:
            out.setdefault(r.family, Counter())[str(r.status)] += 1
        return {k: dict(v) for k, v in sorted(out.items())}

    lat = sorted(r.end - r.start for r in recs)
    print(f"{len(recs)} requests in {run.now():.0f} s; database down {t_down:.1f}-{t_restart:.1f} s "
          f"(stop took {t_down - t_stop:.1f} s, start {t_up - t_restart:.1f} s)")
    print("before:", summary([r for r in recs if r.end < t_stop]))
    print("stopping:", summary([r for r in recs if r.start < t_down and r.end >= t_stop]))
    print("outage:", summary(in_outage), dict(outage_ok))
    print("after:", summary([r for r in recs if r.start >= t_up]))
    print(f"max latency {lat[-1]:.2f} s, p99 {lat[int(len(lat) * .99)]:.2f} s")
    print(f"recovery: last failure started {recovery:.2f} s after the database was back")
    print(f"creates: {len(created)} answered 201, all {len(created) - len(lost)} found in the table; "
          f"{len(refused)} refused ({sum(1 for c in refused if c in found)} of those committed anyway)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"t_stop": t_stop, "t_down": t_down, "t_restart": t_restart, "t_up": t_up,
                       "records": [asdict(r) for r in recs]}, f)
    for p in Counter(problems).most_common(20):
        print("PROBLEM:", p)
    print("OK" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
