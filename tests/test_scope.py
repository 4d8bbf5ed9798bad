"""Province-scoped writes (issue 11): an officer of province A gets 403 problem+json on anything in province B,
on every write path (POST/PUT/PATCH/DELETE on every editable layer, moving a feature into B, imports), and
nothing is written; anonymous writes get 401; reads stay public. Over real HTTP (a live uvicorn) against the
real PostGIS test database.

Province A is the sample province (86). Province B (79, with one commune) is added for this module, east of
it, and removed again at the end."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import table_fingerprint

from layers.accounts.users import create_user
from layers.catalog.registry import LAYERS, Layer
from layers.ingest.importer import ImportOptions, import_file
from layers.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = "application/problem+json"
GEO = "application/geo+json"
A, B, B_COMMUNE = "86", "79", "26740"
C1, C2 = "28807", "28777"      # two communes of the sample province (real 2025 codes) with features of every layer
B_BOX = (106.95, 10.05, 107.25, 10.35)          # east of the sample province (which ends at 106.80)
B_AREA = (107.10, 10.10, 107.102, 10.102)       # a draft growing area of B: the records of B refer to it
EDITABLE = [layer for layer in LAYERS.values() if layer.editable]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def province_b(sample_db: str) -> Iterator[str]:
    box = "ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
    with psycopg.connect(sample_db) as c:
        c.execute(f"INSERT INTO admin_units (code, scheme, level, name, parent_code, valid_from, synthetic, geom) "  # noqa: S608
                  f"VALUES (%s, '2025', 'province', 'Tỉnh B (kiểm thử)', NULL, '2025-07-01', true, {box}), "
                  f"(%s, '2025', 'commune', 'Xã B (kiểm thử)', %s, '2025-07-01', true, {box})",
                  [B, *B_BOX, B_COMMUNE, B, *B_BOX])
        c.execute("INSERT INTO growing_areas (crop, area_m2, owner, commune_code, status, geom) "
                  "VALUES ('durian', 48000, 'HTX tỉnh B (kiểm thử)', %s, 'draft', "
                  "ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))", [B_COMMUNE, *B_AREA])
    yield B
    with psycopg.connect(sample_db) as c:
        for layer in EDITABLE:      # whatever a failing test may have left in B
            if layer.scope_field:
                c.execute(f"DELETE FROM {layer.table} WHERE {layer.scope_field} = %s", [B_COMMUNE])  # noqa: S608
        c.execute("DELETE FROM admin_units WHERE code IN (%s, %s) AND scheme = '2025'", [B, B_COMMUNE])


@pytest.fixture(scope="module")
def server(sample_db: str, settings: Settings, province_b: str) -> Iterator[Any]:
    from conftest import LiveServer, free_port

    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def users(sample_db: str, province_b: str) -> dict[str, tuple[str, str]]:
    """(name, key) of: officers of A and of B, an officer of one commune of A, an admin of A, a national admin."""
    specs: dict[str, dict[str, Any]] = {
        "officer_a": {"role": "officer", "provinces": [A]}, "officer_b": {"role": "officer", "provinces": [B]},
        "officer_commune": {"role": "officer", "provinces": [A], "communes": [C1]},
        "admin_a": {"role": "admin", "provinces": [A]}, "national": {"role": "admin", "national": True}}
    out = {}
    for who, spec in specs.items():
        name = uid(who.replace("_", "-"))
        out[who] = (name, create_user(sample_db, name, **spec).key)
    return out


def h(key: str | None, **extra: str) -> dict[str, str]:
    return {**({"Authorization": f"Bearer {key}"} if key else {}), "Content-Type": GEO, **extra}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"]
    return body


def feature_in_a(sample_db: str, http: httpx.Client, layer: Layer, commune: str | None = None) -> tuple[int, Any, str]:
    """(id, GeoJSON, ETag) of a feature of the sample province A (in `commune` when given)."""
    t, g = layer.table, layer.geometry_column
    with psycopg.connect(sample_db) as c:
        if layer.national_only:
            row = c.execute(f"SELECT id FROM {t} WHERE level = 'commune' AND parent_code = %s "  # noqa: S608
                            "ORDER BY id LIMIT 1", [A]).fetchone()
        elif layer.scope_via:            # a record: where the feature it refers to is
            f, ref = layer.scope_via[0], LAYERS[layer.scope_via[1]]
            row = c.execute(f"SELECT x.id FROM {t} x JOIN {ref.table} r ON r.id = x.{f} "  # noqa: S608
                            f"JOIN admin_units a ON a.code = r.{ref.scope_field} AND a.scheme = '2025' "
                            "AND a.parent_code = %s AND (%s::text IS NULL OR a.code = %s) ORDER BY x.id LIMIT 1",
                            [A, commune, commune]).fetchone()
        elif layer.scope_field:
            row = c.execute(f"SELECT id FROM {t} WHERE {layer.scope_field} = %s ORDER BY id LIMIT 1",  # noqa: S608
                            [commune or C1]).fetchone()
            if row is None and commune is None:
                row = c.execute(f"SELECT x.id FROM {t} x JOIN admin_units a ON a.code = x.{layer.scope_field} "  # noqa: S608
                                "AND a.scheme = '2025' AND a.parent_code = %s ORDER BY x.id LIMIT 1", [A]).fetchone()
        else:
            row = c.execute(f"SELECT x.id FROM {t} x JOIN admin_units a ON a.code = %s AND a.scheme = '2025' "  # noqa: S608
                            f"AND ST_Covers(a.geom, x.{g}) ORDER BY x.id LIMIT 1", [A]).fetchone()
    assert row is not None, layer.id
    r = http.get(f"/collections/{layer.id}/items/{row[0]}")
    assert r.status_code == 200
    return int(row[0]), r.json(), r.headers["etag"]


def place(sample_db: str, layer: Layer, commune: str, seed: int = 1) -> dict[str, Any]:
    """A new geometry inside `commune`, clear of growing areas: a ~130 m square, or a point."""
    with psycopg.connect(sample_db) as c:
        row = c.execute(
            "SELECT ST_AsGeoJSON(p), ST_AsGeoJSON(ST_Multi(ST_Expand(p, 0.0006))) FROM admin_units a, "
            "LATERAL (SELECT (ST_Dump(ST_GeneratePoints(a.geom, 60, %s))).geom AS p) pts "
            "WHERE a.code = %s AND a.scheme = '2025' AND ST_Covers(a.geom, ST_Expand(p, 0.0007)) "
            "AND NOT EXISTS (SELECT 1 FROM growing_areas g WHERE ST_DWithin(g.geom, p, 0.004)) LIMIT 1",
            [seed, commune]).fetchone()
    assert row is not None, commune
    point, square = json.loads(row[0]), json.loads(row[1])
    return point if layer.geometry_type in ("Point", "Geometry") else square


def area_in(sample_db: str, commune: str) -> int:
    """A growing area of `commune` (else of its province): what a new record in `commune` refers to."""
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT g.id FROM growing_areas g JOIN admin_units a ON a.code = g.commune_code "
                        "AND a.scheme = '2025' JOIN admin_units m ON m.code = %s AND m.scheme = '2025' "
                        "AND m.parent_code = a.parent_code ORDER BY g.commune_code <> %s, g.id LIMIT 1",
                        [commune, commune]).fetchone()
    assert row is not None, commune
    return int(row[0])


def new_body(sample_db: str, http: httpx.Client, layer: Layer, commune: str) -> dict[str, Any]:
    """A valid new feature of `layer` located in `commune` (copied from a sample feature, keys made unique)."""
    _, f, _ = feature_in_a(sample_db, http, layer)
    p = dict(f["properties"])
    n = uuid.uuid4().int
    if layer.scope_via:       # a record of a growing area of `commune`, on other days (its key holds a date)
        p[layer.scope_via[0]] = area_in(sample_db, commune)
        days = dt.timedelta(days=1 + n % 20_000)
        for fld in layer.fields:
            if fld.type == "date" and p.get(fld.name):
                p[fld.name] = (dt.date.fromisoformat(p[fld.name]) + days).isoformat()
    for fld in layer.fields:  # required fields the public copy does not show (an inspection's inspector)
        if fld.required and not fld.public and fld.type == "string" and p.get(fld.name) is None:
            p[fld.name] = "Cán bộ kiểm thử"
    if layer.national_only:
        p.update({"code": f"6{n % 10**4:04d}", "name": "Xã kiểm thử", "level": "commune", "parent_code": A})
    if layer.code_field:
        p[layer.code_field] = f"T-{uuid.uuid4().hex[:12]}"
    if layer.registration is not None:   # a registered layer's new feature is a draft: no code, no decision yet
        for k in (layer.registration.code_field, *layer.registration.decision_fields):
            p.pop(k, None)
    for k in layer.unique_together:
        fld = layer.get_field(k)
        if k == "parcel_no" or (fld is not None and fld.type == "integer" and k != layer.scope_key):
            p[k] = 100_000 + n % 800_000
        elif k == "lot_number":
            p[k] = f"T{n % 10**9}"
    if layer.scope_field:
        p[layer.scope_field] = commune
    if layer.lifecycle is not None:
        p[layer.lifecycle.field] = layer.lifecycle.codes[0]
        if layer.lifecycle.reason_field:
            p[layer.lifecycle.reason_field] = None
    for k in ("result_price_vnd", "valid_to"):
        if k in p:
            p[k] = None
    geom = place(sample_db, layer, commune) if commune != B_COMMUNE else (
        {"type": "Point", "coordinates": [107.1, 10.2]} if layer.geometry_type in ("Point", "Geometry") else
        {"type": "MultiPolygon", "coordinates": [[[[107.1, 10.2], [107.1012, 10.2], [107.1012, 10.2012],
                                                   [107.1, 10.2012], [107.1, 10.2]]]]})
    return {"type": "Feature", "geometry": geom, "properties": p}


def fingerprints(dsn: str, layer: Layer) -> dict[str, tuple[int, str]]:
    return {t: table_fingerprint(dsn, t) for t in (layer.table, "history")}


@pytest.mark.parametrize("layer", EDITABLE, ids=[layer.id for layer in EDITABLE])
def test_officer_of_another_province_gets_403_on_every_write(http: httpx.Client, sample_db: str, layer: Layer,
                                                             users: dict[str, tuple[str, str]]) -> None:
    fid, feature, tag = feature_in_a(sample_db, http, layer)
    url = f"/collections/{layer.id}/items"
    writer = "national" if layer.national_only else "officer_a"
    body = new_body(sample_db, http, layer, C1)
    before = fingerprints(sample_db, layer)
    outsiders = ["officer_b"] + (["admin_a"] if layer.national_only else [])
    for who in outsiders:
        key = users[who][1]
        b = problem(http.post(url, content=json.dumps(body), headers=h(key)), 403)
        assert b["detail"].startswith("Không có quyền") or "Vai trò" in b["detail"]
        problem(http.put(f"{url}/{fid}", content=json.dumps(feature), headers=h(key, **{"If-Match": tag})), 403)
        problem(http.patch(f"{url}/{fid}", content=json.dumps({"properties": {}}),
                           headers=h(key, **{"If-Match": tag, "Content-Type": "application/merge-patch+json"})), 403)
        problem(http.delete(f"{url}/{fid}", headers=h(key, **{"If-Match": tag})), 403)
        en = problem(http.delete(f"{url}/{fid}?lang=en", headers=h(key, **{"If-Match": tag})), 403)
        assert "outside your scope" in en["detail"] or "national administrators" in en["detail"] \
            or "may not" in en["detail"]
    # anonymous: 401, whatever the province
    problem(http.post(url, content=json.dumps(body), headers=h(None)), 401)
    problem(http.delete(f"{url}/{fid}", headers=h(None, **{"If-Match": tag})), 401)
    assert fingerprints(sample_db, layer) == before            # nothing written, not even history
    # the same body is fine for someone whose scope holds it: the 403s above were the scope, not the body
    ok = http.post(url, content=json.dumps(body), headers=h(users[writer][1]))
    assert ok.status_code == 201, ok.text
    new_url = ok.headers["location"].split(str(http.base_url).rstrip("/"))[-1]
    with psycopg.connect(sample_db) as c:
        actor = c.execute("SELECT actor FROM history WHERE layer = %s AND feature_id = %s AND action = 'insert'",
                          [layer.table, int(new_url.rsplit("/", 1)[1])]).fetchone()
    assert actor == (users[writer][0],)                        # history records the user's name
    gone = http.delete(new_url, headers=h(users[writer][1], **{"If-Match": ok.headers["etag"]}))
    assert gone.status_code == 204, gone.text


@pytest.mark.parametrize("layer", [la for la in EDITABLE if not la.national_only],
                         ids=[la.id for la in EDITABLE if not la.national_only])
def test_moving_or_creating_into_another_province_is_403(http: httpx.Client, sample_db: str, layer: Layer,
                                                         users: dict[str, tuple[str, str]]) -> None:
    key = users["officer_a"][1]
    fid, _, tag = feature_in_a(sample_db, http, layer)
    url = f"/collections/{layer.id}/items"
    before = fingerprints(sample_db, layer)
    into_b = new_body(sample_db, http, layer, B_COMMUNE)
    problem(http.post(url, content=json.dumps(into_b), headers=h(key)), 403)
    moves: list[dict[str, Any]] = (
        [{"properties": {layer.scope_field: B_COMMUNE}}, {"properties": {layer.scope_field: "99999"}}]
        if layer.scope_field else
        [{"properties": {layer.scope_via[0]: area_in(sample_db, B_COMMUNE)}}] if layer.scope_via else
        [{"geometry": into_b["geometry"]}])
    for move in moves:
        b = problem(http.patch(f"{url}/{fid}", content=json.dumps(move),
                               headers=h(key, **{"If-Match": tag, "Content-Type": "application/merge-patch+json"})),
                    403)
        assert b["errors"][0]["code"] == "scope"
    assert fingerprints(sample_db, layer) == before


def test_commune_scope(http: httpx.Client, sample_db: str, users: dict[str, tuple[str, str]]) -> None:
    layer = LAYERS["parcels"]
    key = users["officer_commune"][1]
    other, _, other_tag = feature_in_a(sample_db, http, layer, commune=C2)
    mine, _, my_tag = feature_in_a(sample_db, http, layer, commune=C1)
    patch = {"properties": {"address": "Ấp Kiểm Thử"}}
    mp = {"Content-Type": "application/merge-patch+json"}
    before = fingerprints(sample_db, layer)
    problem(http.patch(f"/collections/parcels/items/{other}", content=json.dumps(patch),
                       headers=h(key, **{"If-Match": other_tag, **mp})), 403)
    problem(http.patch(f"/collections/parcels/items/{mine}", content=json.dumps({"properties": {
        "commune_code": C2}}), headers=h(key, **{"If-Match": my_tag, **mp})), 403)
    assert fingerprints(sample_db, layer) == before
    r = http.patch(f"/collections/parcels/items/{mine}", content=json.dumps(patch),
                   headers=h(key, **{"If-Match": my_tag, **mp}))
    assert r.status_code == 204, r.text


def test_reads_stay_public(http: httpx.Client) -> None:
    for layer in EDITABLE:
        r = http.get(f"/collections/{layer.id}/items", params={"limit": 2})
        assert r.status_code == 200 and r.json()["features"], layer.id


# -- imports ---------------------------------------------------------------------------------------------------

def _parcel_file(tmp: Path, sample_db: str, http: httpx.Client, communes: list[str]) -> Path:
    feats = [new_body(sample_db, http, LAYERS["parcels"], c) for c in communes]
    for i, f in enumerate(feats):
        f["properties"]["parcel_no"] = 900_000 + uuid.uuid4().int % 90_000 + i
        f["properties"]["area_m2"] = 1500
        f["properties"].pop("status", None)
    path = tmp / "parcels.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    return path


def test_import_refuses_rows_outside_the_scope(tmp_path: Path, http: httpx.Client, sample_db: str,
                                               settings: Settings, users: dict[str, tuple[str, str]]) -> None:
    from layers.accounts.users import principal_for

    layer = LAYERS["parcels"]
    before = fingerprints(sample_db, layer)
    path = _parcel_file(tmp_path, sample_db, http, [C1, B_COMMUNE, C2])
    officer_a = principal_for(sample_db, users["officer_a"][0])
    res = import_file(path, "parcels", sample_db, ImportOptions(principal=officer_a, progress=False, lang="en"))
    assert res.rows_written == 0 and [(e.row, e.field, e.code) for e in res.errors] == [(2, "commune_code", "scope")]
    assert "province 79" in res.errors[0].message("en")
    officer_b = principal_for(sample_db, users["officer_b"][0])
    res = import_file(path, "parcels", sample_db, ImportOptions(principal=officer_b, progress=False))
    assert [e.row for e in res.errors] == [1, 3]
    assert fingerprints(sample_db, layer) == before
    # the CLI: `datso import … --as NAME`, the refused row named, nothing written
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.dsn()}
    cli = subprocess.run([sys.executable, "-m", "cli.main", "import", str(path), "--layer", "parcels", "--as",
                          users["officer_a"][0], "--lang", "en"], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=180, check=False)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "row 2, field commune_code" in cli.stderr.replace("\n", " ") and "Nothing was written" in cli.stderr
    assert fingerprints(sample_db, layer) == before
    # all rows inside: written, history names the user
    inside = _parcel_file(tmp_path, sample_db, http, [C1, C2])
    res = import_file(inside, "parcels", sample_db, ImportOptions(principal=officer_a, progress=False))
    assert res.ok and res.rows_written == 2
    with psycopg.connect(sample_db) as c:
        actors = c.execute("SELECT DISTINCT actor FROM history WHERE layer = 'parcels' AND action = 'insert' "
                           "AND at > now() - interval '1 hour' AND actor = %s", [officer_a.name]).fetchall()
    assert actors == [(officer_a.name,)]
    written = [(f["properties"]["commune_code"], f["properties"]["map_sheet"], f["properties"]["parcel_no"])
               for f in json.loads(inside.read_text(encoding="utf-8"))["features"]]
    with psycopg.connect(sample_db) as c:    # leave the sample as it was (other tests count synthetic rows)
        for key in written:
            c.execute("DELETE FROM parcels WHERE (commune_code, map_sheet, parcel_no) = (%s, %s, %s)", key)


def test_import_of_a_geometry_scoped_layer(tmp_path: Path, sample_db: str, http: httpx.Client,
                                           users: dict[str, tuple[str, str]]) -> None:
    from layers.accounts.users import principal_for

    layer = LAYERS["trace_lots"]
    before = fingerprints(sample_db, layer)
    feats = [new_body(sample_db, http, layer, c) for c in (C1, B_COMMUNE)]
    path = tmp_path / "lots.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    res = import_file(path, "trace_lots", sample_db, ImportOptions(
        principal=principal_for(sample_db, users["officer_a"][0]), progress=False))
    assert [(e.row, e.field, e.code) for e in res.errors] == [(2, "geometry", "scope")]
    assert fingerprints(sample_db, layer) == before


def test_scope_via_a_referenced_feature(sample_db: str, users: dict[str, tuple[str, str]]) -> None:
    """`Layer.scope_via`: records placed by the feature they refer to (season/inspection → growing area). Shown on
    trace events placed by their lot, through the write seam itself."""
    import dataclasses

    from gis.crs import get_crs
    from layers.accounts.principal import ScopeError, rows_outside
    from layers.accounts.users import principal_for
    from layers.ingest import writes

    layer = dataclasses.replace(LAYERS["trace_events"], scope_via=("lot_id", "trace_lots"))
    officer_a = principal_for(sample_db, users["officer_a"][0])
    officer_b = principal_for(sample_db, users["officer_b"][0])
    with psycopg.connect(sample_db) as c:
        ev = c.execute("SELECT id, lot_id, xmin::text FROM trace_events WHERE lot_id IS NOT NULL ORDER BY id "
                       "LIMIT 1").fetchone()
        assert ev is not None
        rows = [{"lot_id": ev[1]}, {"lot_id": 10**12}, {"lot_id": None}]
        assert [r[0:2] for r in rows_outside(c, officer_a, layer, rows)] == [(1, "lot_id"), (2, "lot_id")]
        assert [r[0] for r in rows_outside(c, officer_b, layer, rows)] == [0, 1, 2]
    before = fingerprints(sample_db, layer)
    patch = {"properties": {"read_point": "urn:test"}}
    with pytest.raises(ScopeError) as exc:
        writes.update(sample_db, layer, ev[0], patch, get_crs("OGC:CRS84"), officer_b, f'"{ev[0]}-{ev[2]}"')
    assert "lot_id" in exc.value.en and exc.value.status == 403
    assert fingerprints(sample_db, layer) == before
    tag = writes.update(sample_db, layer, ev[0], patch, get_crs("OGC:CRS84"), officer_a, f'"{ev[0]}-{ev[2]}"')
    assert tag.startswith(f'"{ev[0]}-')


def test_source_links_are_scoped(http: httpx.Client, sample_db: str, users: dict[str, tuple[str, str]]) -> None:
    """PUT …/items/{id}/sources (a packing house's source areas): the packing house must be in the writer's scope,
    like an edit of the packing house itself; nothing written otherwise."""
    layer = LAYERS["packing_facilities"]
    fid, _, _ = feature_in_a(sample_db, http, layer)
    url = f"/collections/{layer.id}/items/{fid}/sources"
    current = http.get(url).json()["ids"]
    wanted = [*current, area_in(sample_db, C1)]
    before = {t: table_fingerprint(sample_db, t) for t in ("packing_facility_growing_areas", "history")}
    json_h = {"Content-Type": "application/json"}
    b = problem(http.put(url, content=json.dumps(wanted), headers={**h(users["officer_b"][1]), **json_h}), 403)
    assert b["errors"][0]["code"] == "scope" and b["errors"][0]["field"] == layer.scope_field
    problem(http.put(url, content=json.dumps(wanted), headers={**h(None), **json_h}), 401)
    assert {t: table_fingerprint(sample_db, t) for t in before} == before
    ok = http.put(url, content=json.dumps(wanted), headers={**h(users["officer_a"][1]), **json_h})
    assert ok.status_code == 200, ok.text
    assert ok.json()["ids"] == sorted(set(wanted))
    back = http.put(url, content=json.dumps(current), headers={**h(users["officer_a"][1]), **json_h})
    assert back.status_code == 200 and back.json()["ids"] == sorted(current)
