"""EPCIS capture speed: one EPCIS 2.0 document of N events (chains of harvest → packing → pallet → shipping →
arrival over the sample province's areas and packing houses) captured with `layers.ingest.epcis.capture` into
a scratch database with the small sample loaded; prints events/s for the first capture (everything new, lots
created) and for the re-capture (every event a duplicate).

    .venv/bin/python bench/epcis_capture.py [--n 5000] [--db bench_epcis] [--scoped] [--keep]

`--scoped` captures as an officer of province 86 created for the run (scope checks on, like the API);
default: the operator (no scope). The scratch database is dropped afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time
import uuid
from typing import Any

import psycopg
from biip.checksums import gs1_standard_check_digit

from gis import gs1
from layers.accounts.users import create_user, principal_for
from layers.ingest import epcis
from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster


def _check(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


def document(dsn: str, n: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    with psycopg.connect(dsn) as c:
        pairs = c.execute("SELECT f.code, g.code FROM packing_facilities f JOIN packing_facility_growing_areas l "
                          "ON l.facility_id = f.id JOIN growing_areas g ON g.id = l.growing_area_id").fetchall()
    gtin = _check("0893" + "".join(rng.choice("0123456789") for _ in range(9)))
    t0 = dt.datetime(2025, 3, 1, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    events: list[dict[str, Any]] = []
    i = 0
    while len(events) < n:
        fac, area = pairs[i % len(pairs)]
        a, f = {"id": f"urn:datso:loc:growing_area:{area}"}, {"id": f"urn:datso:loc:packing_facility:{fac}"}
        h, p = gs1.digital_link(gtin, f"BH{i:06d}"), gs1.digital_link(gtin, f"BP{i:06d}")
        sscc = "https://id.gs1.org/00/" + _check("1893" + f"{i:013d}")
        t = t0 + dt.timedelta(minutes=i)

        def ev(kind: str, minutes: int, t: dt.datetime = t, **kw: Any) -> dict[str, Any]:
            return {"type": kind, "eventID": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                    "eventTime": (t + dt.timedelta(minutes=minutes)).isoformat(), "eventTimeZoneOffset": "+07:00",
                    **kw}

        events += [
            ev("ObjectEvent", 0, action="ADD", bizStep="commissioning", disposition="active", readPoint=a,
               bizLocation=a, epcList=[], quantityList=[{"epcClass": h, "quantity": 800, "uom": "KGM"}],
               ilmd={"datso:product": "Bưởi da xanh"}),
            ev("TransformationEvent", 600, bizStep="packing", disposition="in_progress", readPoint=f, bizLocation=f,
               inputQuantityList=[{"epcClass": h, "quantity": 800, "uom": "KGM"}],
               outputQuantityList=[{"epcClass": p, "quantity": 760, "uom": "KGM"}]),
            ev("AggregationEvent", 660, action="ADD", bizStep="packing", readPoint=f, bizLocation=f, parentID=sscc,
               childEPCs=[], childQuantityList=[{"epcClass": p, "quantity": 760, "uom": "KGM"}]),
            ev("ObjectEvent", 1200, action="OBSERVE", bizStep="shipping", disposition="in_transit", readPoint=f,
               bizLocation=f, epcList=[sscc]),
            ev("ObjectEvent", 1260, action="OBSERVE", bizStep="departing", disposition="in_transit", readPoint=f,
               epcList=[sscc]),
        ]
        i += 1
    return {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"], "type": "EPCISDocument",
            "schemaVersion": "2.0", "creationDate": t0.isoformat(), "epcisBody": {"eventList": events[:n]}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--db", default="bench_epcis")
    ap.add_argument("--scoped", action="store_true", help="capture as a province officer (scope checks on)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    from sample_data.generate import load_sample

    base = Settings()
    s = base.model_copy(update={"db_name": args.db})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(args.db)})
    pgcluster.drop_database(s, args.db)
    pgcluster.ensure_database(s, args.db)
    dbmod.migrate(s)
    dsn = s.dsn()
    load_sample(dsn, size="small", seed=7, force=True)
    sender = None
    if args.scoped:
        create_user(dsn, "bench-officer", "officer", provinces=["86"])
        sender = principal_for(dsn, "bench-officer")
    doc = document(dsn, args.n)
    raw = json.dumps(doc).encode()
    try:
        t = time.perf_counter()
        r1 = epcis.capture(dsn, raw, sender, actor="bench")
        first = time.perf_counter() - t
        t = time.perf_counter()
        r2 = epcis.capture(dsn, raw, sender, actor="bench")
        again = time.perf_counter() - t
    finally:
        if not args.keep:
            pgcluster.drop_database(s, args.db)
    print(f"document: {args.n} events, {len(raw) / 1e6:.1f} MB; sender: {'officer (scoped)' if sender else 'operator'}")
    print(f"first capture: {r1.stored} stored, {len(r1.lots_created)} lots created in {first:.2f} s = "
          f"{r1.stored / first:,.0f} events/s")
    print(f"re-capture:    {r2.duplicates} duplicates in {again:.2f} s = {r2.duplicates / again:,.0f} events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
