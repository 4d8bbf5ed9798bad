"""The long contract fuzz (`make fuzz`): schemathesis `--checks all` over every route of a live server.

1. (Re)creates a dedicated database (`DATSO_FUZZ_DB`, default `datso_fuzz`) with the small sample province,
   so writes under fuzz never touch the database other tests or a province use.
2. Creates an officer and an admin API key in it.
3. Starts `uvicorn api.main:app` on `--port` (default 8105) against that database.
4. Runs the schemathesis CLI twice (officer key, then admin key), each with `--max-examples` per operation and
   every phase (examples, coverage, fuzzing, stateful), writing JUnit and NDJSON reports to `--report-dir`.
5. Stops the server and exits non-zero when either run failed.

    python bench/fuzz_api.py --max-examples 200 --port 8105
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Values schemathesis would rarely draw by itself but that hurt services: Unicode digits (str.isdigit() is true,
# int() may refuse them), edge dates, numbers past int64/float, non-finite numbers, NUL and control characters,
# CQL2 and CRS shaped text. Bound (long run only) to the query and path parameters that parse text, and a
# Latin-1 subset (what an HTTP header can carry) to Content-Crs and If-Match.
HOSTILE = ["¹", "²³", "١٢٣", "𝟙𝟚", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0000-00-00",
           "1e999", "-1e999", "1e308", "NaN", "Infinity", "-0", "99999999999999999999999", "-9223372036854775809",
           "a\x00b", "\u202e", "' OR 1=1 --", "NOT NOT NOT a = 1", "((((((((((a=1))))))))))",
           "EPSG:¹", "urn:ogc:def:crs:EPSG::9999999999", "http://www.opengis.net/def/crs/EPSG/0/3405",
           "1,2,3,¹", "-180,-90,180,90", "0001-01-01/9999-12-31", "-area_m2,+id,¹", "x" * 5000]
HOSTILE_HEADERS = ["¹", "²³", "*", 'W/"1-1"', '"1-1", *', "EPSG:¹", "<http://www.opengis.net/def/crs/EPSG/0/¹>",
                   "urn:ogc:def:crs:EPSG::9999999999", "x" * 5000]
BOUND = {"query": ["crs", "bbox", "bbox-crs", "datetime", "filter", "filter-crs", "sortby", "properties", "q",
                   "layers", "limit", "offset"],
         "path": ["feature_id", "collection_id", "tms_id", "name"],
         "header": ["Content-Crs", "If-Match"]}


def fuzz_config(report: Path) -> Path:
    """schemathesis.toml plus the hostile dictionaries bound to the parameters that parse text."""
    import json

    text = (ROOT / "schemathesis.toml").read_text(encoding="utf-8")
    extra = [f"[dictionaries.hostile]\nvalues = [{', '.join(json.dumps(v, ensure_ascii=False) for v in HOSTILE)}]",
             f"[dictionaries.hostile_header]\nvalues = [{', '.join(json.dumps(v) for v in HOSTILE_HEADERS)}]",
             "[parameters]"]
    for location, names in BOUND.items():
        dictionary = "hostile_header" if location == "header" else "hostile"
        extra += [f'"{location}.{n}" = {{ dictionary = "{dictionary}", probability = 0.2 }}' for n in names]
    text = "\n".join(extra) + "\n\n" + text
    path = report / "schemathesis-fuzz.toml"
    path.write_text(text, encoding="utf-8")
    return path


def prepare_database(name: str) -> str:
    from sampledb import fresh_sample_db

    return fresh_sample_db(name).dsn()


def wait_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server at {url} did not come up")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=int(os.environ.get("FUZZ_PORT", "8105")))
    ap.add_argument("--db", default=os.environ.get("DATSO_FUZZ_DB", "datso_fuzz"))
    ap.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "200")))
    # 1: with 2, hypothesis' lambda-source cache raced on Python 3.11 ("AST constructor recursion depth
    # mismatch", a runtime error in one operation of the run)
    ap.add_argument("--workers", default=os.environ.get("FUZZ_WORKERS", "1"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--report-dir", default=str(ROOT / ".fuzz"))
    ap.add_argument("--roles", default="officer,admin", help="one schemathesis run per role")
    ap.add_argument("extra", nargs="*", help="more schemathesis options (after --)")
    args = ap.parse_args()

    from layers.accounts.auth import create_key

    print(f"fuzz: preparing database {args.db} (small sample)", flush=True)
    dsn = prepare_database(args.db)
    keys = {role: create_key(dsn, f"fuzz-{role}-{uuid.uuid4().hex[:8]}", role) for role in args.roles.split(",")}
    url = f"http://127.0.0.1:{args.port}"
    # one client address sends every case: raise the per-IP limits so cases reach the logic (429 itself is
    # documented and tested in tests/test_security.py)
    limits = {f"DATSO_RATE_LIMIT_{kind}": "1000000/minute" for kind in ("AUTH_FAILURES", "SEARCH", "EXPORTS")}
    env = {**os.environ, **limits, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
                               "--port", str(args.port), "--log-level", "warning", "--no-access-log"],
                              cwd=ROOT, env=env)
    status = 0
    try:
        wait_up(url)
        report = Path(args.report_dir)
        report.mkdir(parents=True, exist_ok=True)
        st = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
        config = fuzz_config(report)
        for role, key in keys.items():
            cmd = [st, "--config-file", str(config), "run", f"{url}/api", "--checks", "all", "--max-examples", str(args.max_examples),
                   "--workers", str(args.workers), "--header", f"Authorization: Bearer {key}",
                   "--suppress-health-check", "all", "--request-timeout", "60", "--continue-on-failure",
                   # a Folium export of a whole layer is a 60 s request class (DATSO_EXPORT_STATEMENT_TIMEOUT)
                   "--max-response-time", "60",
                   "--report", "junit,ndjson", "--report-dir", str(report / role), *args.extra]
            if args.seed is not None:
                cmd += ["--seed", str(args.seed)]
            print(f"fuzz: schemathesis as {role}: {' '.join(c if key not in c else 'Authorization: ***' for c in cmd)}",
                  flush=True)
            rc = subprocess.call(cmd, cwd=ROOT, env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
            print(f"fuzz: {role} run exited {rc}", flush=True)
            status = status or rc
            if server.poll() is not None:
                print(f"fuzz: the server died (exit {server.returncode})", flush=True)
                return 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    return status


if __name__ == "__main__":
    sys.exit(main())
