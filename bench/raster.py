#!/usr/bin/env python3
"""Raster tiles and zonal statistics: datso against titiler and rasterstats on the same 10k x 10k COG.

1. A scratch database with the small sample (seed 7, `bench/sampledb.py`) and, from it, the sample province's
   synthetic blue/green/red/NIR image (`sample_data/imagery.py`, the generator of `datso sample load`) at
   `--size` x `--size` pixels (about 10 m), registered as a COG (rio-cogeo, deflate) in `--out`/imagery.
2. The peers live in their own venv, `bench/.peers/raster` (ignored by git; created here with
   `python3 -m venv` + `pip install titiler.application uvicorn rasterstats` when missing), NOT in the
   project's venv; they run as subprocesses.
3. Tiles: `datso serve` (this checkout, one worker) and titiler (`titiler.application`, uvicorn, one worker)
   on their own ports; the same seeded list of WebMercatorQuad tiles over the province at a zoom mix, in two
   renderings each server supports alike: NDVI (`expression=(b4-b3)/(b4+b3)`, `rescale=-1,1`,
   `colormap_name=rdylgn`) and true colour (`bidx=3,2,1`, `rescale=0,2500`), PNG, bilinear resampling.
   Before timing, every tile of the list is fetched from both and compared (decoded PNGs: same size, same
   transparent pixels, colours within a few levels). Then req/s at concurrency 1 and 16 (aiohttp, keep-alive),
   the two servers taking turns, after one warm-up pass each. Nothing is cached by either server.
4. Zonal statistics of `--areas` sample features (growing areas, then parcels) on band 4 (NIR): datso's
   exactextract path (`layers.query.zonal.zonal`, coverage-weighted, in this process) against rasterstats
   (`zonal_stats`, pixel-centre rasterization, in the peers' venv) with the same polygons (already in the
   raster's CRS for rasterstats; datso reprojects from EPSG:4326 itself) and the same statistics (count, mean,
   min, max, std, p10/p50/p90). The means are compared first (features of >= 50 pixels: each within 5 %, median
   under 1 %; the methods differ on boundary pixels).

A benchmark, not a test: results (JSON and a Markdown table) go to `--out`; docs/benchmarks.md by hand.

  DATABASE_URL=postgresql://postgres@127.0.0.1:5433/datso PYTHONPATH=$PWD \\
      /work/main/.venv/bin/python bench/raster.py --size 10000 --requests 200 --areas 1000 \\
      --datso-port 8231 --titiler-port 8232 --out /tmp/raster-bench
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
PEERS = ROOT / "bench" / ".peers" / "raster"
PEER_PACKAGES = ["titiler.application", "uvicorn", "rasterstats"]
NAME = "bench_s2"
NDVI = "(b4-b3)/(b4+b3)"
RENDERINGS: dict[str, dict[str, list[tuple[str, str]]]] = {
    # the same drawing asked of both servers (titiler takes repeated bidx/rescale; datso `3,2,1` and one range)
    "ndvi": {"datso": [("expression", NDVI), ("rescale", "-1,1"), ("colormap_name", "rdylgn")],
             "titiler": [("expression", NDVI), ("rescale", "-1,1"), ("colormap_name", "rdylgn"),
                         ("resampling", "bilinear")]},
    "rgb": {"datso": [("bidx", "3,2,1"), ("rescale", "0,2500")],
            "titiler": [("bidx", "3"), ("bidx", "2"), ("bidx", "1"), ("rescale", "0,2500"), ("rescale", "0,2500"),
                        ("rescale", "0,2500"), ("resampling", "bilinear")]},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# -- the peers' venv ---------------------------------------------------------------------------------------
def peers_python() -> Path:
    py = PEERS / "bin" / "python"
    if not py.exists():
        log(f"creating {PEERS} (python3 -m venv) and installing {' '.join(PEER_PACKAGES)}")
        subprocess.run(["python3", "-m", "venv", str(PEERS)], check=True)
    try:
        subprocess.run([str(py), "-c", "import titiler.application, rasterstats, uvicorn"], check=True,
                       capture_output=True)
    except subprocess.CalledProcessError:
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return py


def peer_versions(py: Path) -> dict[str, str]:
    code = ("import json, titiler.application as t, rasterstats, rio_tiler, rasterio, uvicorn; print(json.dumps("
            "{'titiler': t.__version__, 'rasterstats': rasterstats.__version__, 'rio_tiler': rio_tiler.__version__,"
            " 'rasterio': rasterio.__version__, 'gdal': rasterio.__gdal_version__, 'uvicorn': uvicorn.__version__}))")
    return dict(json.loads(subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True).stdout))


# -- data ----------------------------------------------------------------------------------------------------
def make_cog(dsn: str, folder: Path, size: int) -> Any:
    """The sample image at size x size pixels over a square of the province (UTM 48N), as a COG; reused when
    already there at that size."""
    import rasterio
    import shapely
    from pyproj import Transformer

    from layers.settings import ImagerySettings
    from layers.store.connect import connect
    from layers.store.rasters import open_raster
    from sample_data.imagery import register_sample_s2

    settings = ImagerySettings(imagery_dir=folder)
    path = folder / f"{NAME}.tif"
    if path.exists():
        with rasterio.open(path) as ds:
            if ds.width == size and ds.height == size:
                log(f"reusing {path}")
                return open_raster(NAME, settings)
    with connect("reader", dsn=dsn) as c:
        wkb = c.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM admin_units WHERE level = 'province' "
                        "AND scheme = '2025'").fetchone()[0]
    centre = shapely.centroid(shapely.from_wkb(bytes(wkb)))
    to_utm = Transformer.from_crs(4326, 32648, always_xy=True)
    to_ll = Transformer.from_crs(32648, 4326, always_xy=True)
    cx, cy = to_utm.transform(centre.x, centre.y)
    half = size * 10.0 / 2                                  # about 10 m pixels
    lon0, lat0 = to_ll.transform(cx - half, cy - half)
    lon1, lat1 = to_ll.transform(cx + half, cy + half)
    t0 = time.perf_counter()
    info = register_sample_s2(dsn, settings=settings, name=NAME, width=size, height=size,
                              bbox=(lon0, lat0, lon1, lat1))
    log(f"{path}: {info.width}x{info.height}, {path.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - t0:.0f} s")
    return info


def tile_list(info: Any, n: int, zooms: list[int], seed: int, dsn: str) -> list[tuple[int, int, int]]:
    """`n` distinct tiles at the zoom mix, each centred on a random point of the province inside the raster."""
    import morecantile
    import shapely

    from layers.store.connect import connect

    tms = morecantile.tms.get("WebMercatorQuad")
    with connect("reader", dsn=dsn) as c:
        wkb = c.execute("SELECT ST_AsBinary(ST_Intersection(ST_Union(geom), ST_MakeEnvelope(%s, %s, %s, %s, 4326))) "
                        "FROM admin_units WHERE level = 'province' AND scheme = '2025'", list(info.bounds)).fetchone()[0]
    area = shapely.from_wkb(bytes(wkb))
    rng = random.Random(seed)
    w, s, e, nn = shapely.bounds(area)
    out: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int, int]] = set()
    tries = 0
    while len(out) < n:
        lon, lat = rng.uniform(w, e), rng.uniform(s, nn)
        if not area.contains(shapely.Point(lon, lat)):
            continue
        z = zooms[len(out) % len(zooms)]
        t = tms.tile(lon, lat, z)
        tries += 1
        if (z, t.x, t.y) in seen and tries < 50:      # distinct tiles while a zoom has them (low zooms: few)
            continue
        tries = 0
        seen.add((z, t.x, t.y))
        out.append((z, t.x, t.y))
    return out


def urls(server: str, base: str, cog: Path, rendering: str, tiles: list[tuple[int, int, int]]) -> list[str]:
    from urllib.parse import urlencode

    q = list(RENDERINGS[rendering][server])
    if server == "datso":
        return [f"{base}/rasters/{NAME}/tiles/{z}/{x}/{y}.png?{urlencode(q)}" for z, x, y in tiles]
    q = [("url", str(cog)), *q]
    return [f"{base}/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?{urlencode(q)}" for z, x, y in tiles]


# -- servers ---------------------------------------------------------------------------------------------------
def wait_up(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.3)


def start_servers(args: argparse.Namespace, peer_py: Path, dsn: str, folder: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT), "DATSO_IMAGERY_DIR": str(folder),
           "DATSO_LOG_LEVEL": "WARNING"}
    datso = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port",
                              str(args.datso_port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=open(Path(args.out) / "datso.log", "wb"))  # noqa: SIM115
    titiler = subprocess.Popen([str(peer_py), "-m", "uvicorn", "titiler.application.main:app", "--host",
                                "127.0.0.1", "--port", str(args.titiler_port), "--workers", "1", "--log-level",
                                "warning", "--no-access-log"], cwd=str(Path(args.out)), stdout=subprocess.DEVNULL,
                               stderr=open(Path(args.out) / "titiler.log", "wb"))  # noqa: SIM115
    wait_up(f"http://127.0.0.1:{args.datso_port}/rasters", datso, "datso")
    wait_up(f"http://127.0.0.1:{args.titiler_port}/healthz", titiler, "titiler")
    return [datso, titiler]


# -- tiles: same answer, then speed ----------------------------------------------------------------------------
def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rgba(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(int)


def compare(d_urls: list[str], t_urls: list[str]) -> dict[str, Any]:
    """Both servers' answers for every tile: same status; for 200s, same size, same transparent pixels (edge
    pixels aside) and colours within a few levels where both draw."""
    worst_alpha, worst_diff, n200, n204 = 1.0, 0.0, 0, 0
    for du, tu in zip(d_urls, t_urls, strict=True):
        ds, db = fetch(du)
        ts, tb = fetch(tu)
        empty_t = ts == 204 or (ts == 200 and (rgba(tb)[..., 3] == 0).all())
        if ds == 204 and empty_t:
            n204 += 1
            continue
        if ds != 200 or ts != 200:
            raise SystemExit(f"different answers: datso {ds}, titiler {ts} for\n  {du}\n  {tu}\n{tb[:300]!r}")
        a, b = rgba(db), rgba(tb)
        if a.shape != b.shape:
            raise SystemExit(f"tile sizes differ: {a.shape} vs {b.shape} ({du})")
        both = (a[..., 3] > 0) & (b[..., 3] > 0)
        alpha_same = float(((a[..., 3] > 0) == (b[..., 3] > 0)).mean())
        diff = float(np.abs(a[..., :3] - b[..., :3]).max(axis=2)[both].mean()) if both.any() else 0.0
        worst_alpha, worst_diff = min(worst_alpha, alpha_same), max(worst_diff, diff)
        n200 += 1
    ok = worst_alpha > 0.97 and worst_diff < 8
    return {"tiles_200": n200, "tiles_empty": n204, "worst_alpha_agreement": round(worst_alpha, 4),
            "worst_mean_colour_diff": round(worst_diff, 2), "same_answer": ok}


async def race(urls_: list[str], concurrency: int) -> dict[str, Any]:
    import aiohttp

    lat: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(enumerate(urls_))
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=300)) as s:
        async def worker() -> None:
            while queue:
                _, u = queue.pop()
                t0 = time.perf_counter()
                async with s.get(u) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                lat.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"requests": len(urls_), "seconds": round(wall, 2), "rps": round(len(urls_) / wall, 2),
            "p50_ms": round(lat[len(lat) // 2], 1), "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
            "statuses": statuses}


# -- zonal statistics -------------------------------------------------------------------------------------------
RASTERSTATS = textwrap.dedent("""
    import json, sys, time
    from rasterstats import zonal_stats
    polys, raster, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
    feats = json.load(open(polys))["features"]
    stats = "count mean min max std percentile_10 percentile_50 percentile_90"
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = zonal_stats(feats, raster, band=4, stats=stats)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"times": times, "stats": out}))
""")


def areas(dsn: str, info: Any, n: int) -> tuple[list[int], Any]:
    """`n` sample features inside the raster: every growing area, then parcels (ids: areas positive, parcels
    negative), EPSG:4326."""
    import shapely

    from layers.store.connect import connect

    env = list(info.bounds)
    with connect("reader", dsn=dsn) as c:
        rows = c.execute("SELECT id, ST_AsBinary(geom) FROM growing_areas WHERE geom @ ST_MakeEnvelope(%s, %s, %s, "
                         "%s, 4326) ORDER BY id LIMIT %s", [*env, n]).fetchall()
        rows += [(-i, g) for i, g in c.execute(
            "SELECT id, ST_AsBinary(geom) FROM parcels WHERE geom @ ST_MakeEnvelope(%s, %s, %s, %s, 4326) "
            "ORDER BY id LIMIT %s", [*env, n - len(rows)]).fetchall()]
    return [int(r[0]) for r in rows], np.asarray(shapely.from_wkb([bytes(r[1]) for r in rows]), dtype=object)


def zonal_race(dsn: str, info: Any, n: int, peer_py: Path, out: Path, repeat: int) -> dict[str, Any]:
    import shapely

    from layers.query.zonal import What, to_raster_crs, zonal

    ids, geoms = areas(dsn, info, n)
    local = to_raster_crs(info, geoms)
    polys = out / "areas_utm.geojson"
    polys.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": i, "properties": {"id": i}, "geometry": json.loads(shapely.to_geojson(g))}
        for i, g in zip(ids, local, strict=True)]}))
    d_times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = zonal(info, ids, geoms, What(band=4))
        d_times.append(time.perf_counter() - t0)
    res = subprocess.run([str(peer_py), "-c", RASTERSTATS, str(polys), str(info.path), str(repeat)], check=True,
                         capture_output=True, text=True)
    peer = json.loads(res.stdout)
    checked, rel = 0, []
    for d, r in zip(rows, peer["stats"], strict=True):
        if d["mean"] is None or not r.get("count") or r["count"] < 50:
            continue
        checked += 1
        rel.append(abs(d["mean"] - r["mean"]) / abs(r["mean"]))
    # exactextract weighs boundary pixels by coverage, rasterstats counts pixel centres: the means differ a little
    agree = bool(rel) and max(rel) < 0.05 and statistics.median(rel) < 0.01
    return {"areas": len(ids), "growing_areas": sum(1 for i in ids if i > 0), "parcels": sum(1 for i in ids if i < 0),
            "datso_seconds": [round(t, 3) for t in d_times], "rasterstats_seconds": [round(t, 3) for t in peer["times"]],
            "compared_means": checked, "mean_rel_diff_median": round(statistics.median(rel), 5) if rel else None,
            "mean_rel_diff_max": round(max(rel), 5) if rel else None, "same_answer": agree,
            "pixels_median": statistics.median([r["count"] for r in peer["stats"] if r.get("count")] or [0])}


# -- main -------------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="datso_test_raster_bench", help="the scratch database (dropped and recreated)")
    ap.add_argument("--reuse-db", action="store_true", help="keep the scratch database when it holds the sample")
    ap.add_argument("--size", type=int, default=10000, help="pixels a side of the COG")
    ap.add_argument("--requests", type=int, default=200, help="tiles in the list (each timed run asks all)")
    ap.add_argument("--zooms", default="10,11,12,13,14", help="the zoom mix")
    ap.add_argument("--areas", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="zonal statistics runs each")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--datso-port", type=int, default=8231)
    ap.add_argument("--titiler-port", type=int, default=8232)
    ap.add_argument("--out", default="/tmp/raster-bench")
    ap.add_argument("--skip-tiles", action="store_true")
    ap.add_argument("--skip-zonal", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = out / "imagery"
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_start": load(),
                              "cpus": os.cpu_count(), "size": args.size}
    peer_py = peers_python()
    result["peers"] = peer_versions(peer_py)
    import exactextract
    import rasterio
    import rio_tiler

    result["datso_side"] = {"rio_tiler": rio_tiler.__version__, "rasterio": rasterio.__version__,
                            "gdal": rasterio.__gdal_version__, "exactextract": exactextract.__version__}
    from sampledb import fresh_sample_db

    from layers.settings import Settings

    if args.reuse_db:
        s = Settings()
        s = s.model_copy(update={"db_name": args.db, **({"database_url": s.dsn(args.db)} if s.database_url else {})})
    else:
        log(f"scratch database {args.db} with the small sample")
        s = fresh_sample_db(args.db)
    dsn = s.dsn()
    info = make_cog(dsn, folder, args.size)
    cog = info.path
    result["cog"] = {"path": str(cog), "width": info.width, "height": info.height, "bands": list(info.band_names),
                     "dtype": info.dtype, "crs": info.crs, "mb": round(cog.stat().st_size / 1e6, 1)}

    if not args.skip_tiles:
        zooms = [int(z) for z in args.zooms.split(",")]
        tiles = tile_list(info, args.requests, zooms, args.seed, dsn)
        servers = start_servers(args, peer_py, dsn, folder)
        try:
            d_base, t_base = f"http://127.0.0.1:{args.datso_port}", f"http://127.0.0.1:{args.titiler_port}"
            result["tiles"] = {"list": len(tiles), "zooms": zooms, "runs": {}}
            for rendering in RENDERINGS:
                du = urls("datso", d_base, cog, rendering, tiles)
                tu = urls("titiler", t_base, cog, rendering, tiles)
                log(f"{rendering}: comparing {len(tiles)} tiles")
                check = compare(du, tu)
                log(f"{rendering}: {check}")
                if not check["same_answer"]:
                    raise SystemExit(f"{rendering}: the servers do not draw the same tiles: {check}")
                run: dict[str, Any] = {"check": check}
                for conc in (1, 16):
                    for name, ulist in (("datso", du), ("titiler", tu)):
                        shuffled = ulist[:]
                        random.Random(args.seed + conc).shuffle(shuffled)
                        before = load()
                        r = asyncio.run(race(shuffled, conc))
                        r["load_before"] = before
                        run[f"{name}_c{conc}"] = r
                        log(f"{rendering} c={conc} {name}: {r['rps']} req/s p50 {r['p50_ms']} ms "
                            f"p95 {r['p95_ms']} ms (load {before})")
                    run[f"ratio_c{conc}"] = round(run[f"datso_c{conc}"]["rps"] / run[f"titiler_c{conc}"]["rps"], 2)
                result["tiles"]["runs"][rendering] = run
        finally:
            for p in servers:
                p.terminate()
                p.wait(20)

    if not args.skip_zonal:
        log(f"zonal statistics of {args.areas} areas")
        before = load()
        z = zonal_race(dsn, info, args.areas, peer_py, out, args.repeat)
        z["load_before"] = before
        if not z["same_answer"]:
            raise SystemExit(f"zonal statistics disagree: {z}")
        z["ratio_rasterstats_over_datso"] = round(min(z["rasterstats_seconds"]) / min(z["datso_seconds"]), 2)
        result["zonal"] = z
        log(f"zonal: {z}")
    result["load_end"] = load()
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    lines = [f"COG {r['cog']['width']} x {r['cog']['height']} ({', '.join(r['cog']['bands'])}, {r['cog']['dtype']}, "
             f"{r['cog']['crs']}, {r['cog']['mb']} MB); load average {r['load_start']} → {r['load_end']} on "
             f"{r['cpus']} cores", ""]
    if "tiles" in r:
        lines += ["| rendering | concurrency | datso req/s (p50 / p95 ms) | titiler req/s (p50 / p95 ms) | "
                  "datso / titiler |", "|---|---|---|---|---|"]
        for rendering, run in r["tiles"]["runs"].items():
            for c in (1, 16):
                d, t = run[f"datso_c{c}"], run[f"titiler_c{c}"]
                lines.append(f"| {rendering} | {c} | {d['rps']} ({d['p50_ms']} / {d['p95_ms']}) | {t['rps']} "
                             f"({t['p50_ms']} / {t['p95_ms']}) | {run[f'ratio_c{c}']} |")
        lines.append("")
    if "zonal" in r:
        z = r["zonal"]
        lines += ["| zonal statistics | areas | best of runs (s) | rasterstats / datso |", "|---|---|---|---|",
                  f"| datso (exactextract) | {z['areas']} | {min(z['datso_seconds'])} | "
                  f"{z['ratio_rasterstats_over_datso']} |",
                  f"| rasterstats | {z['areas']} | {min(z['rasterstats_seconds'])} | 1 |"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
