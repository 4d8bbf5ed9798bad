"""Trace speed on a large event table: `/trace/{lot}` (one step, and the whole chain) and the trace page
(`/01/{gtin}/10/{lot}`, HTML) over real HTTP (uvicorn in a thread, httpx), p50/p95/max in milliseconds.

A scratch database gets the small sample, then N synthetic chains written by ONE INSERT … SELECT over
generate_series (no Python loop): per chain 2 harvest lots (ObjectEvent ADD commissioning at a sample growing
area) → TransformationEvent (a packed lot) → AggregationEvent onto an SSCC → shipping and departing the SSCC,
i.e. 6 events and 3 lots per chain; --events 1000000 → 166,667 chains. The GIN indexes are rebuilt after the
load, then ANALYZE.

    DATSO_RATE_LIMIT_ENABLED=false .venv/bin/python bench/trace_speed.py [--events 1000000] [--db bench_trace]
        [--requests 300] [--port 8113] [--keep] [--reuse]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import threading
import time

import httpx
import psycopg
import uvicorn

from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster

GTIN = "08934567890120"
DL = "https://id.gs1.org"
GIN = ("epc_list", "child_epcs", "input_epcs", "output_epcs", "any_ids")

LOAD_SQL = f"""
WITH areas AS (SELECT array_agg(code ORDER BY id) AS codes, count(*) AS n FROM growing_areas WHERE status = 'active'),
houses AS (SELECT array_agg(code ORDER BY id) AS codes, count(*) AS n FROM packing_facilities WHERE status = 'active'),
chains AS (
  SELECT k, a.codes[1 + k %% a.n] AS a1, a.codes[1 + (k * 7) %% a.n] AS a2, h.codes[1 + k %% h.n] AS house,
         timestamptz '2025-01-01 06:00+07' + (k %% 600) * interval '1 day' / 2 + (k %% 97) * interval '1 minute' AS t,
         '{DL}/01/{GTIN}/10/BH' || k || 'a' AS h1, '{DL}/01/{GTIN}/10/BH' || k || 'b' AS h2,
         '{DL}/01/{GTIN}/10/BP' || k AS p, '{DL}/00/0893456' || lpad(k::text, 11, '0') AS sscc
  FROM generate_series(1, %(chains)s) k, areas a, houses h
)
INSERT INTO trace_events (event_id, event_type, action, biz_step, disposition, event_time, read_point, biz_location,
                          epc_list, parent_id, input_quantity_list, output_quantity_list, quantity_list, any_ids,
                          ilmd, captured_by, synthetic)
SELECT 'urn:uuid:bench-' || c.k || '-' || e.n, e.type, e.action, e.step, e.disp, c.t + e.dt, e.loc, e.loc, e.epcs,
       e.parent, e.inq, e.outq, e.q, e.ids, e.ilmd, 'bench', true
FROM chains c CROSS JOIN LATERAL (VALUES
  (1, 'ObjectEvent', 'ADD', 'commissioning', 'active', interval '0', 'urn:datso:loc:growing_area:' || c.a1,
   '{{}}'::text[], NULL, '[]'::jsonb, '[]'::jsonb, jsonb_build_array(jsonb_build_object('epcClass', c.h1,
   'quantity', 700, 'uom', 'KGM')), ARRAY[c.h1], '{{"datso:product": "Bưởi da xanh"}}'::jsonb),
  (2, 'ObjectEvent', 'ADD', 'commissioning', 'active', interval '40 minutes', 'urn:datso:loc:growing_area:' || c.a2,
   '{{}}', NULL, '[]', '[]', jsonb_build_array(jsonb_build_object('epcClass', c.h2, 'quantity', 500, 'uom', 'KGM')),
   ARRAY[c.h2], '{{"datso:product": "Bưởi da xanh"}}'),
  (3, 'TransformationEvent', NULL, 'packing', 'in_progress', interval '8 hours',
   'urn:datso:loc:packing_facility:' || c.house, '{{}}', NULL,
   jsonb_build_array(jsonb_build_object('epcClass', c.h1, 'quantity', 700, 'uom', 'KGM'),
                     jsonb_build_object('epcClass', c.h2, 'quantity', 500, 'uom', 'KGM')),
   jsonb_build_array(jsonb_build_object('epcClass', c.p, 'quantity', 1140, 'uom', 'KGM')), '[]', ARRAY[c.h1, c.h2, c.p],
   '{{}}'),
  (4, 'AggregationEvent', 'ADD', 'packing', 'in_progress', interval '10 hours',
   'urn:datso:loc:packing_facility:' || c.house, '{{}}', c.sscc, '[]', '[]',
   jsonb_build_array(jsonb_build_object('epcClass', c.p, 'quantity', 1140, 'uom', 'KGM')), ARRAY[c.sscc, c.p], '{{}}'),
  (5, 'ObjectEvent', 'OBSERVE', 'shipping', 'in_transit', interval '20 hours',
   'urn:datso:loc:packing_facility:' || c.house, ARRAY[c.sscc], NULL, '[]', '[]', '[]', ARRAY[c.sscc], '{{}}'),
  (6, 'ObjectEvent', 'OBSERVE', 'departing', 'in_transit', interval '21 hours',
   'urn:datso:loc:packing_facility:' || c.house, ARRAY[c.sscc], NULL, '[]', '[]', '[]', ARRAY[c.sscc], '{{}}')
) AS e(n, type, action, step, disp, dt, loc, epcs, parent, inq, outq, q, ids, ilmd)
"""  # noqa: S608 - fixed text; the only value is a bound parameter

LOTS_SQL = f"""
WITH areas AS (SELECT array_agg(code ORDER BY id) AS codes, count(*) AS n FROM growing_areas WHERE status = 'active'),
houses AS (SELECT array_agg(code ORDER BY id) AS codes, count(*) AS n FROM packing_facilities WHERE status = 'active')
INSERT INTO trace_lots (gtin, lot_number, product, producer, quantity, origin_codes, packing_facility_code,
                        harvest_date, pack_date, expiry_date, synthetic)
SELECT '{GTIN}', l.lot, 'Bưởi da xanh', 'HTX bench', l.q, l.origin, l.house, l.d, l.pd, l.pd + 60, true
FROM generate_series(1, %(chains)s) k, areas a, houses h,
LATERAL (SELECT ((timestamptz '2025-01-01 06:00+07' + (k %% 600) * interval '1 day' / 2)
                 AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS d) day
CROSS JOIN LATERAL (VALUES
  ('BH' || k || 'a', 700, ARRAY[a.codes[1 + k %% a.n]], NULL, day.d, NULL::date),
  ('BH' || k || 'b', 500, ARRAY[a.codes[1 + (k * 7) %% a.n]], NULL, day.d, NULL),
  ('BP' || k, 1140, ARRAY[a.codes[1 + k %% a.n], a.codes[1 + (k * 7) %% a.n]], h.codes[1 + k %% h.n], day.d, day.d)
) AS l(lot, q, origin, house, d, pd)
"""  # noqa: S608 - fixed text; the only value is a bound parameter


def load(dsn: str, events: int) -> int:
    chains = max(1, events // 6)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET datso.audit = 'off'")
        c.execute("SET synchronous_commit = off")
        c.execute("SET maintenance_work_mem = '256MB'")
        for col in GIN:
            c.execute(f"DROP INDEX IF EXISTS ix_trace_events_{col}")
        t = time.perf_counter()
        c.execute(LOTS_SQL, {"chains": chains})
        c.execute(LOAD_SQL, {"chains": chains})
        t_rows = time.perf_counter() - t
        t = time.perf_counter()
        for col in GIN:
            c.execute(f"CREATE INDEX ix_trace_events_{col} ON trace_events USING gin ({col})")
        c.execute("ANALYZE trace_events")
        c.execute("ANALYZE trace_lots")
        n = c.execute("SELECT count(*) FROM trace_events").fetchone()
        print(f"loaded {chains:,} chains in {t_rows:.1f} s, GIN indexes + ANALYZE in {time.perf_counter() - t:.1f} s;"
              f" trace_events now holds {n[0] if n else 0:,} rows")
    return chains


def pct(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[max(0, int(round(0.95 * len(xs))) - 1)]
    return f"p50 {statistics.median(xs):6.1f} ms  p95 {p95:6.1f} ms  max {xs[-1]:6.1f} ms  (n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--db", default="bench_trace")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--port", type=int, default=8113)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="measure on an existing --db (loaded by a --keep run)")
    args = ap.parse_args()
    os.environ.setdefault("DATSO_RATE_LIMIT_ENABLED", "false")
    from api.app import create_app
    from sample_data.generate import load_sample

    base = Settings()
    s = base.model_copy(update={"db_name": args.db})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(args.db)})
    dsn = s.dsn()
    if not args.reuse:
        pgcluster.drop_database(s, args.db)
        pgcluster.ensure_database(s, args.db)
        dbmod.migrate(s)
        load_sample(dsn, size="small", seed=7, force=True)
        chains = load(dsn, args.events)
    else:
        with psycopg.connect(dsn) as c:
            row = c.execute("SELECT count(*) FROM trace_lots WHERE lot_number LIKE 'BP%'").fetchone()
            chains = int(row[0]) if row else 0
    config = uvicorn.Config(create_app(settings=s, dsn=dsn), host="127.0.0.1", port=args.port, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    th = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    rng = random.Random(3)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=30) as http:
            cases = {
                "/trace/{packed} (one step)": lambda k: f"/trace/BP{k}?gtin={GTIN}",
                "/trace/{harvest}?all=true": lambda k: f"/trace/BH{k}a?gtin={GTIN}&all=true",
                "/01/{gtin}/10/{packed} (HTML page)": lambda k: f"/01/{GTIN}/10/BP{k}",
            }
            for url in (f(1) for f in cases.values()):           # warm the pool and the caches once
                assert http.get(url).status_code == 200, url
            for name, f in cases.items():
                times = []
                for _ in range(args.requests):
                    url = f(rng.randint(1, chains))
                    t = time.perf_counter()
                    r = http.get(url, headers={"Accept": "text/html"} if "HTML" in name else {})
                    times.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, (url, r.status_code, r.text[:200])
                print(f"{name:38s} {pct(times)}")
    finally:
        server.should_exit = True
        th.join(10)
        if not args.keep:
            pgcluster.drop_database(s, args.db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
