"""OGC API – Features Part 4 (create/replace/update/delete) with API keys, ETags, audit and lifecycles.

Every refused write is checked to leave the tables unchanged (row count + md5 of all rows)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from conftest import table_fingerprint
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gis.crs import transformer
from layers.accounts.auth import create_key

PROBLEM = "application/problem+json"
GEO = "application/geo+json"


@pytest.fixture(scope="module")
def own_server(sample_db: str, settings: Any) -> Iterator[Any]:
    """A live server over its own app (own asyncpg pool): the session `app` may already have its pool bound to
    the TestClient's event loop, and asyncpg connections must not be shared between event loops."""
    from conftest import LiveServer, free_port

    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


@pytest.fixture(scope="module")
def officer(sample_db: str) -> str:
    return create_key(sample_db, f"officer-{uuid.uuid4().hex[:8]}", "officer")


@pytest.fixture(scope="module")
def admin(sample_db: str) -> str:
    return create_key(sample_db, f"admin-{uuid.uuid4().hex[:8]}", "admin")


def h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": GEO, **extra}


def new_plot(client: TestClient, **props: Any) -> dict[str, Any]:
    base = client.get("/collections/auction_plots/items", params={"limit": 1, "status": "planned"}).json()
    f = base["features"][0]
    p = dict(f["properties"])
    p.update({"plot_code": f"TEST-{uuid.uuid4().hex[:10]}", "status": "planned", "result_price_vnd": None})
    p.update(props)
    return {"type": "Feature", "geometry": f["geometry"], "properties": p}


def post(client: TestClient, key: str, body: Any, layer: str = "auction_plots", **headers: str) -> httpx.Response:
    return client.post(f"/collections/{layer}/items", content=json.dumps(body), headers=h(key, **headers))


def create_plot(client: TestClient, key: str, **props: Any) -> tuple[str, str]:
    r = post(client, key, new_plot(client, **props))
    assert r.status_code == 201, r.text
    return r.headers["location"].replace("http://testserver", ""), r.headers["etag"]


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["detail"]
    return dict(body)


def test_auth_401_403(client: TestClient, sample_db: str, officer: str) -> None:
    before = table_fingerprint(sample_db, "auction_plots")
    body = new_plot(client)
    r = client.post("/collections/auction_plots/items", content=json.dumps(body), headers={"Content-Type": GEO})
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    assert_problem(post(client, "datso_wrong", body), 401)
    r = client.post("/collections/auction_plots/items", content=json.dumps(body),
                    headers={"X-API-Key": "nope", "Content-Type": GEO})
    assert_problem(r, 401)
    # admin units are admin-only
    au = client.get("/collections/admin_units/items", params={"limit": 1}).json()["features"][0]
    assert_problem(post(client, officer, au, layer="admin_units"), 403)
    assert table_fingerprint(sample_db, "auction_plots") == before


def test_create_read_audit(client: TestClient, sample_db: str, officer: str) -> None:
    body = new_plot(client)
    r = client.post("/collections/auction_plots/items", content=json.dumps(body),
                    headers={"X-API-Key": officer, "Content-Type": GEO})
    assert r.status_code == 201, r.text
    url = r.headers["location"].replace("http://testserver", "")
    got = client.get(url)
    assert got.headers["etag"] == r.headers["etag"]
    assert got.json()["properties"]["plot_code"] == body["properties"]["plot_code"]
    fid = int(url.rsplit("/", 1)[1])
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT action, actor FROM history WHERE layer = 'auction_plots' AND feature_id = %s",
                        [fid]).fetchone()
        # issue 11: the actor is the name of the key's user (it was "officer:<key name>")
        name = c.execute("SELECT u.name FROM api_keys k JOIN users u ON u.id = k.user_id "
                         "WHERE k.key_hash = encode(sha256(%s::bytea), 'hex')", [officer.encode()]).fetchone()
    assert row is not None and name is not None
    assert row == ("insert", name[0])


BAD_BODIES: list[tuple[str, Any, int]] = [
    ("not a feature", {"type": "FeatureCollection", "features": []}, 400),
    ("array", [1, 2], 400),
    ("unknown member", {"type": "Feature", "geometry": None, "properties": {}, "evil": 1}, 400),
    ("bad geometry object", {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": "x"},
                             "properties": {}}, 400),
]


def test_create_refuses_bad_input_and_writes_nothing(client: TestClient, sample_db: str, officer: str) -> None:
    tables = ("auction_plots", "history")
    before = {t: table_fingerprint(sample_db, t) for t in tables}
    for _name, body, status in BAD_BODIES:
        assert_problem(post(client, officer, body), status)
    good = new_plot(client)
    cases: list[tuple[dict[str, Any], int]] = []
    for props in ({"plot_code": None}, {"land_use_code": "XYZ"}, {"area_m2": -5}, {"status": "bogus"},
                  {"starting_price_vnd": "nhiều tiền"}, {"nosuch_field": 1}, {"deposit_pct": 250},
                  {"status": "sold", "result_price_vnd": None}):
        b = json.loads(json.dumps(good))
        b["properties"].update(props)
        cases.append((b, 422))
    dup = json.loads(json.dumps(good))
    dup["properties"]["plot_code"] = client.get("/collections/auction_plots/items/1").json()["properties"]["plot_code"]
    cases.append((dup, 422))
    outside = json.loads(json.dumps(good))
    outside["geometry"] = {"type": "Polygon", "coordinates": [[[2, 48], [2.01, 48], [2.01, 48.01], [2, 48]]]}
    cases.append((outside, 422))
    bowtie = json.loads(json.dumps(good))
    bowtie["geometry"] = {"type": "Polygon", "coordinates": [[[106.3, 10.0], [106.31, 10.01], [106.31, 10.0],
                                                              [106.3, 10.01], [106.3, 10.0]]]}
    cases.append((bowtie, 422))
    missing_geom = json.loads(json.dumps(good))
    missing_geom["geometry"] = None
    cases.append((missing_geom, 422))
    for body, status in cases:
        body_ = assert_problem(post(client, officer, body), status)
        assert body_.get("errors") or status != 422
    # transport-level refusals
    r = client.post("/collections/auction_plots/items", content=b"{not json", headers=h(officer))
    assert_problem(r, 400)
    r = client.post("/collections/auction_plots/items", content=json.dumps(good),
                    headers=h(officer, **{"Content-Type": "text/plain"}))
    assert_problem(r, 415)
    big = b'{"type":"Feature","properties":{"address":"' + b"x" * (client.app.state.api_settings.max_body_bytes + 10) + b'"}}'  # type: ignore[attr-defined]
    assert_problem(client.post("/collections/auction_plots/items", content=big, headers=h(officer)), 413)
    assert_problem(post(client, officer, good, **{"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/99999>"}),
                   400)
    assert {t: table_fingerprint(sample_db, t) for t in tables} == before


def test_if_match_required_412_and_update(client: TestClient, sample_db: str, officer: str) -> None:
    url, tag = create_plot(client, officer)
    patch = {"properties": {"address": "Số 1, đường Thử nghiệm"}}
    before = table_fingerprint(sample_db, "auction_plots")
    ct = {"Content-Type": "application/merge-patch+json"}
    assert_problem(client.patch(url, content=json.dumps(patch), headers=h(officer, **ct)), 428)
    assert_problem(client.patch(url, content=json.dumps(patch), headers=h(officer, **ct, **{"If-Match": '"1-1"'})), 412)
    assert_problem(client.delete(url, headers=h(officer)), 428)
    assert_problem(client.put(url, content=json.dumps(new_plot(client)), headers=h(officer)), 428)
    assert table_fingerprint(sample_db, "auction_plots") == before
    r = client.patch(url, content=json.dumps(patch), headers=h(officer, **ct, **{"If-Match": tag}))
    assert r.status_code == 204, r.text
    new_tag = r.headers["etag"]
    assert new_tag != tag
    got = client.get(url)
    assert got.headers["etag"] == new_tag
    assert got.json()["properties"]["address"] == "Số 1, đường Thử nghiệm"
    # the old ETag is now stale
    assert_problem(client.patch(url, content=json.dumps(patch), headers=h(officer, **ct, **{"If-Match": tag})), 412)
    # PUT replaces everything
    full = new_plot(client, plot_code=got.json()["properties"]["plot_code"], address=None)
    r = client.put(url, content=json.dumps(full), headers=h(officer, **{"If-Match": new_tag}))
    assert r.status_code == 204, r.text
    assert client.get(url).json()["properties"]["address"] is None


def test_concurrent_patch_with_stale_etag_gets_412(own_server: Any, client: TestClient, officer: str,
                                                   sample_db: str) -> None:
    url, tag = create_plot(client, officer)
    results: list[int] = []
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        with httpx.Client(base_url=own_server.url, timeout=30) as hc:
            barrier.wait()
            r = hc.patch(url, content=json.dumps({"properties": {"address": f"writer {i}"}}),
                         headers=h(officer, **{"Content-Type": "application/merge-patch+json", "If-Match": tag}))
            results.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [204, 412, 412, 412, 412, 412]
    fid = int(url.rsplit("/", 1)[1])
    with psycopg.connect(sample_db) as c:
        n = c.execute("SELECT count(*) FROM history WHERE layer = 'auction_plots' AND feature_id = %s "
                      "AND action = 'update'", [fid]).fetchone()
    assert n == (1,)


def test_lifecycle_transitions(client: TestClient, sample_db: str, officer: str) -> None:
    url, tag = create_plot(client, officer)
    ct = {"Content-Type": "application/merge-patch+json"}
    before = table_fingerprint(sample_db, "auction_plots")
    body = assert_problem(client.patch(url, content=json.dumps({"properties": {"status": "sold",
                                                                                 "result_price_vnd": 10 ** 12}}),
                                       headers=h(officer, **ct, **{"If-Match": tag}), params={"lang": "en"}), 409)
    assert "planned" in body["detail"] and "announced" in body["detail"]
    assert table_fingerprint(sample_db, "auction_plots") == before
    r = client.patch(url, content=json.dumps({"properties": {"status": "announced"}}),
                     headers=h(officer, **ct, **{"If-Match": tag}))
    assert r.status_code == 204, r.text
    # growing areas: revoked is final
    ga = client.get("/collections/growing_areas/items", params={"limit": 1, "status": "revoked"}).json()["features"]
    if ga:
        gurl = f"/collections/growing_areas/items/{ga[0]['id']}"
        gtag = client.get(gurl).headers["etag"]
        assert_problem(client.patch(gurl, content=json.dumps({"properties": {"status": "active"}}),
                                    headers=h(officer, **ct, **{"If-Match": gtag})), 409)


def test_delete_and_content_crs(client: TestClient, sample_db: str, officer: str) -> None:
    # create with coordinates in VN-2000 / TM-3 105-45 (Content-Crs) and compare with pyproj
    body = new_plot(client)
    ring = body["geometry"]["coordinates"][0][0]
    tr = transformer("OGC:CRS84", "EPSG:9210")
    body["geometry"] = {"type": "MultiPolygon", "coordinates": [[[list(tr.transform(x, y)) for x, y in ring]]]}
    r = post(client, officer, body, **{"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/9210>"})
    assert r.status_code == 201, r.text
    url, tag = r.headers["location"].replace("http://testserver", ""), r.headers["etag"]
    fid = int(url.rsplit("/", 1)[1])
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1) p "
                        "FROM auction_plots WHERE id = %s) s", [fid]).fetchone()
    assert row is not None
    assert abs(row[0] - ring[0][0]) < 1e-8 and abs(row[1] - ring[0][1]) < 1e-8
    r = client.delete(url, headers=h(officer, **{"If-Match": tag}))
    assert r.status_code == 204, r.text
    assert_problem(client.get(url), 404)
    assert_problem(client.delete(url, headers=h(officer, **{"If-Match": tag})), 404)
    with psycopg.connect(sample_db) as c:
        acts = [a for (a,) in c.execute("SELECT action FROM history WHERE layer = 'auction_plots' AND feature_id = %s "
                                        "ORDER BY id", [fid]).fetchall()]
    assert acts == ["insert", "delete"]


def test_cli_keys_create_list_revoke(client: TestClient, sample_db: str, settings: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app

    name = f"cli-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    res = runner.invoke(app, ["keys", "create", "--name", name, "--role", "officer", "--db", settings.db_name])
    assert res.exit_code == 0, res.output
    secret = res.stdout.strip().splitlines()[-1]
    assert secret.startswith("datso_")
    with psycopg.connect(sample_db) as c:
        stored = c.execute("SELECT key_hash FROM api_keys WHERE name = %s", [name]).fetchone()
    assert stored is not None and secret not in stored[0]
    res = runner.invoke(app, ["keys", "list", "--db", settings.db_name])
    assert res.exit_code == 0 and name in res.output and secret not in res.output
    res = runner.invoke(app, ["keys", "create", "--name", name, "--role", "officer", "--db", settings.db_name])
    assert res.exit_code == 1 and "already exists" in res.output
    res = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "king", "--db", settings.db_name])
    assert res.exit_code == 1 and "role" in res.output
    assert post(client, secret, new_plot(client)).status_code == 201
    res = runner.invoke(app, ["keys", "revoke", name, "--db", settings.db_name])
    assert res.exit_code == 0, res.output
    assert_problem(post(client, secret, new_plot(client)), 401)
    res = runner.invoke(app, ["keys", "revoke", name, "--db", settings.db_name])
    assert res.exit_code == 1


def test_update_and_replace_refuse_bad_input(client: TestClient, sample_db: str, officer: str) -> None:
    url, tag = create_plot(client, officer)
    tables = ("auction_plots", "history")
    before = {t: table_fingerprint(sample_db, t) for t in tables}
    ct = {"Content-Type": "application/merge-patch+json", "If-Match": tag}
    for patch in ({"properties": {"area_m2": "abc"}}, {"properties": {"land_use_code": "XYZ"}},
                  {"properties": {"nosuch": 1}}, {"properties": {"status": "bogus"}},
                  {"geometry": {"type": "Point", "coordinates": [106.3, 10.0]}},
                  {"properties": {"result_price_vnd": 1}}):   # only a sold plot has a result price (DB rule)
        r = client.patch(url, content=json.dumps(patch), headers=h(officer, **ct))
        assert r.status_code in (400, 409, 422), (patch, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    bad = new_plot(client)
    bad["properties"]["starting_price_vnd"] = -1
    assert_problem(client.put(url, content=json.dumps(bad), headers=h(officer, **{"If-Match": tag})), 422)
    assert_problem(client.put(url, content=b"[1,2", headers=h(officer, **{"If-Match": tag})), 400)
    assert_problem(client.put("/collections/auction_plots/items/999999999", content=json.dumps(bad),
                              headers=h(officer, **{"If-Match": tag})), 404)
    assert {t: table_fingerprint(sample_db, t) for t in tables} == before
    # the untouched ETag still works
    r = client.patch(url, content=json.dumps({"properties": {"address": "ok"}}), headers=h(officer, **ct))
    assert r.status_code == 204, r.text
