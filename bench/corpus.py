"""A corpus of requests and their responses, to show that a change moved code without changing behaviour.

    .venv/bin/python bench/corpus.py record corpus-before.json   # before the change
    .venv/bin/python bench/corpus.py record corpus-after.json    # after it
    .venv/bin/python bench/corpus.py diff corpus-before.json corpus-after.json

Each run builds the database `datso_corpus` (or `DATSO_CORPUS_DB`) afresh (migrations + the small sample, seed 7) on the cluster
`datso db start` runs (or `DATABASE_URL`), drives the app in-process, and stores for every request its status,
media type, the headers that carry meaning and the body: JSON parsed (minus `timeStamp`), text as text,
binary as SHA-256. Nothing is timed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import Any

from fastapi.testclient import TestClient

from layers.catalog.registry import LAYERS

KEEP_HEADERS = ("content-type", "content-crs", "link", "location", "content-language", "retry-after",
                "www-authenticate", "allow", "content-disposition")
VOLATILE = ("timeStamp",)
# Folium's element ids (uuid4 hex) and the transaction ids inside feature ETags change from run to run
_VOLATILE_TEXT = re.compile(r"[0-9a-f]{32}|\"timeStamp\":\"[^\"]*\"|W/\"[0-9]+-[0-9]+\"|\"[0-9]+-[0-9a-f]+\"")


def requests() -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, headers) — reads in every format and CRS, tiles at several zooms, pages, errors."""
    out: list[tuple[str, str, dict[str, str]]] = []

    def get(path: str, **headers: str) -> None:
        out.append(("GET", path, headers))

    for p in ("/", "/conformance", "/collections", "/api", "/health", "/map", "/tileMatrixSets",
              "/tileMatrixSets/WebMercatorQuad", "/styles/default.json", "/imagery", "/?f=html",
              "/collections?f=html", "/conformance?f=html", "/?lang=en", "/nope", "/collections/nope",
              "/collections/nope/items"):
        get(p)
    for layer in LAYERS.values():
        c = f"/collections/{layer.id}"
        for p in (c, c + "?f=html", c + "/queryables", c + "/schema", c + "/items", c + "/items?f=html",
                  c + "/items?f=csv", c + "/items?limit=3&offset=2", c + "/items?limit=5&sortby=-id",
                  c + "/items?limit=2&skipGeometry=true", c + "/items?limit=2&crs=http://www.opengis.net/def/crs/EPSG/0/3857",
                  c + "/items?limit=2&crs=http://www.opengis.net/def/crs/EPSG/0/9210",
                  c + "/items?limit=2&crs=http://www.opengis.net/def/crs/EPSG/0/4326",
                  c + "/items?bbox=106.2,10.0,106.6,10.4&limit=4",
                  c + "/items?bbox=10.0,106.2,10.4,106.6&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4326&limit=4",
                  c + "/items?filter=id<20&limit=3", c + "/items?filter=id%20%3E%3D%205%20AND%20id%20%3C%209",
                  c + "/items?limit=0", c + "/items?limit=abc", c + "/items?bbox=1,2,3", c + "/items?filter=(((",
                  c + "/items?unknown=1", c + "/items/1", c + "/items/1?f=html", c + "/items/999999999",
                  c + "/items/abc", c + "/items/1?crs=http://www.opengis.net/def/crs/EPSG/0/3857",
                  c + "/tiles", c + "/tiles/WebMercatorQuad", c + "/tiles/WebMercatorQuad/tilejson.json",
                  c + "/style.json", f"/maps/{layer.id}.html?limit=50"):
            get(p)
        if layer.temporal is not None:
            get(c + "/items?datetime=2020-01-01T00:00:00Z/..&limit=3")
            get(c + "/items?datetime=bad")
        for f in layer.queryables[:3]:
            get(c + f"/items?{f.name}=x&limit=2")
    tiles = [(8, 202, 120), (10, 812, 482), (12, 3250, 1930), (14, 13000, 7722), (15, 26073, 15467),
             (16, 52146, 30934), (30, 1, 1), (3, 99, 99)]
    for z, x, y in tiles:
        for lid in ("parcels", "auction_plots", "admin_units"):
            get(f"/collections/{lid}/tiles/WebMercatorQuad/{z}/{x}/{y}")
        get(f"/tiles/{z}/{x}/{y}.mvt?layers=auction_plots,parcels")
    get("/collections/auction_plots/tiles/WebMercatorQuad/12/3250/1930?status=sold")
    get("/collections/auction_plots/tiles/WebMercatorQuad/12/3250/1930?filter=status='sold'")
    get("/collections/auction_plots/tiles/WebMercatorQuad/12/3250/1930?status=nope")
    get("/tiles/tilejson.json?layers=auction_plots,parcels")
    for q in ("Thới", "thoi", "tờ 12 thửa 345", "12/345", "AP-", "", "x" * 300, "Xã", "durian", "' OR 1=1 --"):
        get("/search?q=" + q)
    get("/maps/auction_plots.html?status=sold")
    get("/maps/auction_plots.html?filter=status='sold'&lang=en")
    get("/maps/nope.html")
    get("/collections/parcels/items", **{"accept": "text/html"})
    get("/collections/parcels/items?limit=2", **{"accept-language": "en"})
    get("/collections", **{"if-none-match": '"nope"'})
    return out


def normalise(resp: Any) -> dict[str, Any]:
    media = resp.headers.get("content-type", "")
    rec: dict[str, Any] = {"status": resp.status_code,
                           "headers": {h: resp.headers[h] for h in KEEP_HEADERS if h in resp.headers},
                           "etag": "etag" in resp.headers}
    if "json" in media:
        try:
            body = resp.json()
            if isinstance(body, dict):
                for k in VOLATILE:
                    body.pop(k, None)
            rec["json"] = body
            return rec
        except ValueError:
            pass
    if media.startswith("text/"):
        rec["text"] = _VOLATILE_TEXT.sub("…", resp.text)
    else:
        rec["sha256"] = hashlib.sha256(resp.content).hexdigest()
        rec["bytes"] = len(resp.content)
    return rec


def record(path: str) -> None:
    from sampledb import fresh_sample_db

    from api.app import create_app

    # the test suite's environment: the TestClient's Host `testserver` is trusted, rate limits out of the way
    os.environ.setdefault("DATSO_TRUSTED_HOSTS", "localhost,127.0.0.1,::1,testserver")
    for kind in ("AUTH_FAILURES", "SEARCH", "EXPORTS"):
        os.environ.setdefault(f"DATSO_RATE_LIMIT_{kind}", "100000/minute")
    s = fresh_sample_db(os.environ.get("DATSO_CORPUS_DB", "datso_corpus"))
    corpus = []
    with TestClient(create_app(settings=s, dsn=s.dsn())) as client:
        for method, url, headers in requests():
            resp = client.request(method, url, headers=headers)
            corpus.append({"request": f"{method} {url}", "headers": headers, "response": normalise(resp)})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(corpus, fh, ensure_ascii=False, indent=1, sort_keys=True)
    print(f"{len(corpus)} requests recorded in {path}")


def diff(a: str, b: str) -> int:
    with open(a, encoding="utf-8") as fa, open(b, encoding="utf-8") as fb:
        left = {(r["request"], json.dumps(r["headers"])): r["response"] for r in json.load(fa)}
        right = {(r["request"], json.dumps(r["headers"])): r["response"] for r in json.load(fb)}
    changed = 0
    for key in sorted(set(left) | set(right)):
        if left.get(key) != right.get(key):
            changed += 1
            lr, rr = left.get(key) or {}, right.get(key) or {}
            what = [k for k in sorted(set(lr) | set(rr)) if lr.get(k) != rr.get(k)]
            print(f"{key[0]} {key[1] if key[1] != '{}' else ''}: {', '.join(what)}")
            for k in what:
                print(f"    before {k}: {json.dumps(lr.get(k), ensure_ascii=False)[:300]}")
                print(f"    after  {k}: {json.dumps(rr.get(k), ensure_ascii=False)[:300]}")
    print(f"{changed} of {len(set(left) | set(right))} responses differ")
    return 1 if changed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        sys.exit(diff(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
