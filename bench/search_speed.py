"""Search speed on a large database: p50/p95 of `layers.query.search.search` (the function behind `/search`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5433/datso PYTHONPATH=$PWD \\
        .venv/bin/python bench/search_speed.py [dbname] [--runs 40]

`dbname` (default `datso_large`) must be migrated to head (migration 0010: the trigram indexes) and hold a
sample (`datso sample load --size large`). The queries are taken from the data itself: an address without
accents, the same words reordered, a typo in it, a plot code, a growing-area code, a sheet/parcel pair, a
commune name, an old (abolished) commune name, and codes found nowhere (the slow case before: a sequential
scan of every address). Each query runs once to warm up, then `--runs` times; one connection, nothing else
running. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import unicodedata
from typing import Any

import asyncpg

from layers.query.search import search
from layers.settings import get_settings
from layers.store import connect


def _strip(text: str) -> str:
    nfd = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in nfd if not unicodedata.combining(c)).lower()


async def _queries(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    address = await conn.fetchval("SELECT address FROM parcels WHERE address ~ '^[0-9]+ .*, ' ORDER BY id "
                                  "OFFSET 500000 LIMIT 1")
    number_street, unit = address.split(", ", 1)
    folded = _strip(address)
    words = _strip(number_street).split(" ", 1)[1] + " " + _strip(unit).split(" ", 1)[1]
    reordered = _strip(unit) + " " + _strip(number_street)
    long_word = max(folded.replace(",", "").split(" "), key=len)          # a typo in its longest word
    typo = folded.replace(long_word, long_word[:2] + ("x" if long_word[2] != "x" else "z") + long_word[3:], 1)
    plot = await conn.fetchval("SELECT plot_code FROM auction_plots ORDER BY id OFFSET 100 LIMIT 1")
    growing = await conn.fetchval("SELECT code FROM growing_areas ORDER BY id OFFSET 100 LIMIT 1")
    sheet, parcel = await conn.fetchrow("SELECT map_sheet, parcel_no FROM parcels ORDER BY id OFFSET 400000 LIMIT 1")
    commune = await conn.fetchval("SELECT name FROM admin_units WHERE scheme = '2025' AND level = 'commune' "
                                  "ORDER BY code LIMIT 1")
    old = await conn.fetchval("SELECT name FROM admin_units WHERE scheme = '2004' AND level = 'commune' "
                              "ORDER BY code DESC LIMIT 1")
    return [
        ("address without accents", folded), ("words without number or prefix", words),
        ("words reordered", reordered), ("address with a typo", typo), ("plot code", plot.lower()),
        ("growing-area code", growing), ("sheet/parcel", f"{sheet}/{parcel}"),
        ("commune name", _strip(commune.split(" ", 1)[1])), ("old commune name", _strip(old.split(" ", 1)[1])),
        ("code found nowhere", "DG-2031-99999-0404"), ("words found nowhere", "zyxw qvbn"),
        ("growing-area code found nowhere", "VN-99-999-99999-01-22"),
    ]


async def main(dbname: str, runs: int) -> list[dict[str, Any]]:
    dsn = get_settings().dsn(dbname)       # DATABASE_URL, else the embedded cluster (with its password)
    conn = await connect.connect_async("reader", dsn=dsn)
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        parcels = await conn.fetchval("SELECT count(*) FROM parcels")
        out = []
        for label, q in await _queries(conn):
            first = await search(conn, q, None, 10)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                body = await search(conn, q, None, 10)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            out.append({"query": label, "q": q, "found": first["numberReturned"], "match": body["match"],
                        "p50": statistics.median(times), "p95": times[max(0, int(round(0.95 * runs)) - 1)],
                        "max": times[-1], "parcels": parcels})
        return out
    finally:
        await conn.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("dbname", nargs="?", default="datso_large")
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    rows = asyncio.run(main(args.dbname, args.runs))
    print(f"{rows[0]['parcels']:,} parcels, {args.runs} runs per query, limit 10, every searchable layer\n")
    print("| query | text | found | tier | p50 ms | p95 ms | max ms |")
    print("|---|---|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['query']} | `{r['q']}` | {r['found']} | {r['match'] or '-'} | {r['p50']:.1f} | {r['p95']:.1f} | "
              f"{r['max']:.1f} |")
    worst = max(r["p95"] for r in rows)
    print(f"\nworst p95: {worst:.1f} ms")
    sys.exit(0)
