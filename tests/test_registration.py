"""Registration of growing areas and packing houses over HTTP against the real PostGIS sample: drafts, the checks
(area, minimum, commune, province, overlap), code granting at activation, the lifecycle with reasons and history,
concurrent registrations, file uploads, codes never reused, expiry."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import psycopg
import pytest
import shapely
import shapely.affinity
from fastapi.testclient import TestClient
from shapely.geometry import Polygon, box, mapping, shape

from gis.geometry import area_m2
from layers.accounts.auth import create_key
from layers.ingest import registration
from layers.settings import ApiSettings, Settings
from tests.conftest import LiveServer, free_port, rows_removed_after, table_fingerprint

PROBLEM = "application/problem+json"
MERGE = "application/merge-patch+json"
CODE_RE = re.compile(r"^VN-86-(\d{5})-(\d{3})$")
PHC_RE = re.compile(r"^VN-86-(\d{5})-DG(\d{3})$")


@pytest.fixture(scope="module", autouse=True)
def _leave_the_sample_as_found(sample_db: str) -> Iterator[None]:
    """The areas and packing houses registered here are removed afterwards (other modules count the sample)."""
    with rows_removed_after(sample_db):
        yield


@pytest.fixture(scope="module")
def officer(sample_db: str) -> str:
    return create_key(sample_db, f"reg-officer-{uuid.uuid4().hex[:8]}", "officer")


def h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/geo+json", **extra}


def square(lon: float, lat: float, side_m: float, dx_m: float = 0.0) -> Polygon:
    kx = 111_320.0 * math.cos(math.radians(lat))
    x0 = lon + dx_m / kx
    return box(x0, lat, x0 + side_m / kx, lat + side_m / 110_574.0)


class Spots:
    """Free places in the sample province: inside one commune, away from every growing area."""

    def __init__(self, dsn: str) -> None:
        with psycopg.connect(dsn) as c:
            self.communes = c.execute(
                "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM admin_units "
                "WHERE level = 'commune' AND scheme = '2025') s ORDER BY code").fetchall()
        self.dsn, self.k = dsn, 0
        self.lock = threading.Lock()

    def take(self, side_m: float = 150.0) -> tuple[str, float, float]:
        """(commune, lon, lat) of a corner with 3 x side_m free around it inside the commune."""
        with self.lock, psycopg.connect(self.dsn) as c:
            while True:
                code, x, y = self.communes[self.k % len(self.communes)]
                ring = self.k // len(self.communes)
                self.k += 1
                lon, lat = x + 0.004 * (ring % 5 - 2), y + 0.004 * (ring // 5 - 2)
                area = square(lon - 0.002, lat - 0.002, side_m * 3 + 450)
                ok = c.execute("SELECT ST_Within(%(g)s::geometry, a.geom) AND NOT EXISTS (SELECT 1 FROM "
                               "growing_areas t WHERE ST_DWithin(t.geom, %(g)s::geometry, 0.001)) "
                               "FROM admin_units a WHERE a.code = %(c)s AND a.scheme = '2025'",
                               {"g": f"SRID=4326;{area.wkt}", "c": code}).fetchone()
                if ok and ok[0]:
                    return code, lon, lat


@pytest.fixture(scope="module")
def spots(sample_db: str) -> Spots:
    return Spots(sample_db)


def area_feature(poly: Polygon, **props: Any) -> dict[str, Any]:
    base = {"crop": "durian", "owner": "HTX thử nghiệm", "markets": ["VN", "CN"]}
    return {"type": "Feature", "geometry": mapping(poly), "properties": {**base, **props}}


def post(client: TestClient, key: str, body: dict[str, Any], layer: str = "growing_areas",
         **params: str) -> httpx.Response:
    return client.post(f"/collections/{layer}/items", content=json.dumps(body), headers=h(key),
                       params={"lang": "en", **params})


def patch(client: TestClient, key: str, url: str, props: dict[str, Any]) -> httpx.Response:
    tag = client.get(url).headers["etag"]
    return client.patch(url, content=json.dumps({"properties": props}), params={"lang": "en"},
                        headers=h(key, **{"Content-Type": MERGE, "If-Match": tag}))


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    return dict(r.json())


def props_of(client: TestClient, url: str) -> dict[str, Any]:
    r = client.get(url)
    assert r.status_code == 200, r.text
    return dict(r.json()["properties"])


def history(dsn: str, layer: str, fid: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT action, before->>'status', after->>'status', reason, actor FROM history "
                         "WHERE layer = %s AND feature_id = %s ORDER BY id", [layer, fid]).fetchall()


DECISION = {"decision_no": "123/QĐ-CCTTBVTV", "decision_date": dt.date.today().isoformat()}


# -- the lifecycle -----------------------------------------------------------------------------------------

def test_register_activate_suspend_reactivate_revoke(client: TestClient, sample_db: str, officer: str,
                                                     spots: Spots) -> None:
    commune, lon, lat = spots.take()
    poly = square(lon, lat, 120)                 # 1.44 ha, durian (perennial: 1 ha minimum)
    true_area = area_m2(poly)
    r = post(client, officer, area_feature(poly, area_m2=round(true_area * 1.10)))
    assert r.status_code == 201, r.text
    body = r.json()
    codes = {w["code"]: w for w in body["warnings"]}
    assert codes["area_mismatch"]["field"] == "area_m2" and "10.0%" in codes["area_mismatch"]["message"]
    assert commune in codes["commune_derived"]["message"]
    url = r.headers["location"].replace("http://testserver", "")
    fid = body["id"]
    p = props_of(client, url)
    assert p["status"] == "draft" and p["code"] is None and p["commune_code"] == commune
    assert abs(float(p["area_m2"]) - true_area) < 0.01          # the stored area is the computed one
    with psycopg.connect(sample_db) as c:
        pg = c.execute("SELECT ST_Area(geom::geography) FROM growing_areas WHERE id = %s", [fid]).fetchone()
    assert pg is not None and abs(float(pg[0]) - true_area) / true_area < 1e-4

    # activation needs the decision, and grants the code
    bad = problem(patch(client, officer, url, {"status": "active"}), 422)
    assert bad["field"] == "decision_no" and "decision_no" in bad["detail"]
    assert props_of(client, url)["code"] is None
    r = patch(client, officer, url, {"status": "active", **DECISION})
    assert r.status_code == 204, r.text
    p = props_of(client, url)
    m = CODE_RE.match(p["code"] or "")
    assert m and m.group(1) == commune, p["code"]
    assert p["status"] == "active" and p["decision_no"] == DECISION["decision_no"]
    assert p["decision_date"] == DECISION["decision_date"] and p["valid_from"] == DECISION["decision_date"]
    code = p["code"]
    # the code is granted, never typed
    assert problem(patch(client, officer, url, {"code": "VN-86-HAND-001"}), 422)["field"] == "code"

    # suspension needs a reason in the same request
    bad = problem(patch(client, officer, url, {"status": "suspended"}), 422)
    assert bad["field"] == "status_reason"
    assert patch(client, officer, url, {"status": "suspended", "status_reason": "Phát hiện ruồi đục quả"}
                 ).status_code == 204
    assert patch(client, officer, url, {"status": "active"}).status_code == 204      # reactivated: same code
    assert props_of(client, url)["code"] == code
    assert problem(patch(client, officer, url, {"status": "revoked"}), 422)["field"] == "status_reason"
    assert patch(client, officer, url, {"status": "revoked", "status_reason": "Không duy trì điều kiện"}
                 ).status_code == 204
    assert problem(patch(client, officer, url, {"status": "active"}), 409)       # revoked is final
    p = props_of(client, url)
    assert p["status"] == "revoked" and p["code"] == code

    rows = history(sample_db, "growing_areas", fid)
    assert [(a, b, c) for a, b, c, _, _ in rows] == [
        ("insert", None, "draft"), ("update", "draft", "active"), ("update", "active", "suspended"),
        ("update", "suspended", "active"), ("update", "active", "revoked")]
    assert rows[2][3] == "Phát hiện ruồi đục quả" and rows[4][3] == "Không duy trì điều kiện"
    assert rows[1][3] == "draft → active" and all(r[4].startswith("reg-officer-") for r in rows)   # the user's name


def test_post_as_active_or_with_code_refused(client: TestClient, sample_db: str, officer: str,
                                             spots: Spots) -> None:
    _, lon, lat = spots.take()
    before = table_fingerprint(sample_db, "growing_areas")
    body = problem(post(client, officer, area_feature(square(lon, lat, 120), status="active")), 422)
    assert body["field"] == "status" and body["value"] == "active" and "status" in body["detail"]
    body = problem(post(client, officer, area_feature(square(lon, lat, 120), code="VN-86-X-1")), 422)
    assert body["field"] == "code" and "VN-86-X-1" in body["detail"]
    vi = client.post("/collections/growing_areas/items", headers=h(officer),
                     content=json.dumps(area_feature(square(lon, lat, 120), status="active")))
    assert "nháp" in problem(vi, 422)["detail"]            # Vietnamese first
    assert table_fingerprint(sample_db, "growing_areas") == before


# -- the checks ----------------------------------------------------------------------------------------------

def test_overlap_refused_naming_code_and_m2(client: TestClient, sample_db: str, officer: str, spots: Spots) -> None:
    _, lon, lat = spots.take()
    a = square(lon, lat, 120)
    r = post(client, officer, area_feature(a))
    assert r.status_code == 201, r.text
    url = r.headers["location"].replace("http://testserver", "")
    assert patch(client, officer, url, {"status": "active", **DECISION}).status_code == 204
    code = props_of(client, url)["code"]
    b = square(lon, lat, 120, dx_m=70)           # overlaps a by 50 m x 120 m
    expected = area_m2(a.intersection(b))
    before = table_fingerprint(sample_db, "growing_areas")
    body = problem(post(client, officer, area_feature(b)), 409)
    assert code in body["detail"] and "m²" in body["detail"]
    m2 = float(re.search(re.escape(code) + r" \(([\d,]+) m²\)", body["detail"]).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert abs(m2 - expected) <= 1.0, (m2, expected)
    assert body["errors"][0]["code"] == "overlap" and body["field"] == "geometry"
    assert table_fingerprint(sample_db, "growing_areas") == before
    # a draft blocks too, named by its id; touching only (no shared area) is fine
    c = square(lon, lat, 120, dx_m=120 + 0.0)
    r = post(client, officer, area_feature(c))
    assert r.status_code == 201, r.text
    d = square(lon, lat, 120, dx_m=180)
    body = problem(post(client, officer, area_feature(d)), 409)
    assert f"#{r.json()['id']} (draft)" in body["detail"]


def test_concurrent_overlapping_registrations_exactly_one(sample_db: str, settings: Settings, officer: str,
                                                          spots: Spots) -> None:
    """20 parallel POSTs of mutually overlapping areas over real HTTP: exactly one 201, the rest 409."""
    from api.app import create_app

    _, lon, lat = spots.take()
    api = ApiSettings(write_pool_max_size=20, db_connect_timeout=60.0)
    with LiveServer(create_app(settings=settings, api_settings=api, dsn=sample_db), free_port()) as srv:
        bodies = [area_feature(square(lon, lat, 120, dx_m=i * 2.0)) for i in range(20)]
        results: list[int] = []
        gate = threading.Barrier(20)

        def one(body: dict[str, Any]) -> None:
            with httpx.Client(timeout=120) as hc:
                gate.wait()
                results.append(hc.post(f"{srv.url}/collections/growing_areas/items", content=json.dumps(body),
                                       headers=h(officer)).status_code)

        threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == [201] + [409] * 19, results
    with psycopg.connect(sample_db) as c:
        n = c.execute("SELECT count(*) FROM growing_areas WHERE ST_Intersects(geom, %s::geometry)",
                      [f"SRID=4326;{square(lon, lat, 160).wkt}"]).fetchone()
    assert n == (1,)


def test_below_minimum_refused(client: TestClient, sample_db: str, officer: str, spots: Spots) -> None:
    _, lon, lat = spots.take()
    before = table_fingerprint(sample_db, "growing_areas")
    body = problem(post(client, officer, area_feature(square(lon, lat, 70))), 422)     # 0.49 ha of durian
    assert body["field"] == "area_m2" and "1 ha" in body["detail"] and "durian" in body["detail"]
    body = problem(post(client, officer, area_feature(square(lon, lat, 25), crop="rice")), 422)  # 0.06 ha rice
    assert "0.1 ha" in body["detail"] and "annual" in body["detail"]
    assert table_fingerprint(sample_db, "growing_areas") == before
    r = post(client, officer, area_feature(square(lon, lat, 70), crop="rice"))   # 0.49 ha of rice: enough
    assert r.status_code == 201, r.text


def test_minimum_per_market_from_configuration(sample_db: str, spots: Spots) -> None:
    from gis.crs import get_crs
    from layers.catalog.registry import LAYERS
    from layers.ingest import writes

    _, lon, lat = spots.take()
    policy = registration.Policy(min_area_ha={"perennial": 1.0, "annual": 0.1, "durian:US": 2.0})
    layer = LAYERS["growing_areas"]
    with pytest.raises(registration.RegistrationError) as exc:
        writes.create(sample_db, layer, area_feature(square(lon, lat, 130), markets=["US"]), get_crs("OGC:CRS84"),
                      "test", "en", policy=policy)
    assert exc.value.status == 422 and "2 ha" in exc.value.en and "durian:US" in exc.value.en
    fid, _ = writes.create(sample_db, layer, area_feature(square(lon, lat, 130), markets=["CN"]),
                           get_crs("OGC:CRS84"), "test", "en", policy=policy)
    assert fid > 0


def test_outside_the_province_refused(client: TestClient, sample_db: str, officer: str, spots: Spots) -> None:
    before = table_fingerprint(sample_db, "growing_areas")
    body = problem(post(client, officer, area_feature(square(105.40, 10.05, 120))), 422)  # west of the province
    assert body["field"] == "geometry" and "outside the province" in body["detail"]
    # the service (or an officer) scoped to another province
    from gis.crs import get_crs
    from layers.catalog.registry import LAYERS
    from layers.ingest import writes

    _, lon, lat = spots.take()
    for policy, status in ((registration.Policy(provinces=("80",)), 422), (registration.Policy(scope=("79",)), 403)):
        with pytest.raises(registration.RegistrationError) as exc:
            writes.create(sample_db, LAYERS["growing_areas"], area_feature(square(lon, lat, 120)),
                          get_crs("OGC:CRS84"), "test", "en", policy=policy)
        assert exc.value.status == status and "province 86" in exc.value.en
    assert table_fingerprint(sample_db, "growing_areas") == before


def test_wrong_commune_refused(client: TestClient, sample_db: str, officer: str, spots: Spots) -> None:
    commune, lon, lat = spots.take()
    other = next(c for c, _, _ in spots.communes if c != commune)
    before = table_fingerprint(sample_db, "growing_areas")
    body = problem(post(client, officer, area_feature(square(lon, lat, 120), commune_code=other)), 422)
    assert body["field"] == "commune_code" and other in body["detail"] and commune in body["detail"]
    assert table_fingerprint(sample_db, "growing_areas") == before
    r = post(client, officer, area_feature(square(lon, lat, 120), commune_code=commune))
    assert r.status_code == 201, r.text
    assert "commune_derived" not in {w["code"] for w in r.json()["warnings"]}


def test_invalid_geometry_answered_with_the_repair(client: TestClient, sample_db: str, officer: str,
                                                   spots: Spots) -> None:
    _, lon, lat = spots.take()
    d = 0.0015
    bowtie = {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat + d], [lon + d, lat], [lon, lat + d],
                                                  [lon, lat]]]}
    body = {"type": "Feature", "geometry": bowtie, "properties": {"crop": "durian", "owner": "HTX"}}
    before = table_fingerprint(sample_db, "growing_areas")
    got = problem(post(client, officer, body), 422)
    assert got["field"] == "geometry" and "repair=true" in got["detail"] and "Self-intersection" in got["detail"]
    fixed = shape(got["repaired_geometry"])
    assert fixed.is_valid and fixed.geom_type in ("Polygon", "MultiPolygon")
    assert table_fingerprint(sample_db, "growing_areas") == before       # never silently repaired
    r = post(client, officer, body, repair="true")
    assert r.status_code == 201, r.text
    assert "geometry_repaired" in {w["code"] for w in r.json()["warnings"]}
    stored = client.get(r.headers["location"].replace("http://testserver", "")).json()["geometry"]
    assert abs(area_m2(shape(stored)) - got["repaired_area_m2"]) < 1.0


# -- uploads -----------------------------------------------------------------------------------------------

def _fc(polys: list[Polygon], **overrides: dict[str, Any]) -> bytes:
    feats = []
    for i, p in enumerate(polys):
        props = {"crop": "pomelo", "owner": f"Hộ {i + 1}", "markets": "VN,CN"}
        props.update(overrides.get(str(i), {}))
        feats.append({"type": "Feature", "geometry": mapping(p), "properties": props})
    return json.dumps({"type": "FeatureCollection", "features": feats}).encode()


def upload(client: TestClient, key: str, name: str, data: bytes, layer: str = "growing_areas",
           **fields: str) -> httpx.Response:
    return client.post(f"/collections/{layer}/imports", params={"lang": "en"},
                       headers={"Authorization": f"Bearer {key}"}, files={"file": (name, data)}, data=fields)


def test_upload_with_one_bad_row_writes_nothing(client: TestClient, sample_db: str, officer: str,
                                                spots: Spots) -> None:
    polys = [square(*spots.take()[1:], 120) for _ in range(3)]
    before = table_fingerprint(sample_db, "growing_areas")
    body = problem(upload(client, officer, "vung.geojson", _fc(polys, **{"1": {"crop": "chuoi"}})), 422)
    assert body["row"] == 2 and body["field"] == "crop" and "row 2" in body["detail"]
    assert table_fingerprint(sample_db, "growing_areas") == before
    # a row given as active, and two rows overlapping each other: all named, nothing written
    overlapping = [polys[0], polys[1], shapely.affinity.translate(polys[1], 0.0003, 0.0)]
    body = problem(upload(client, officer, "vung.geojson", _fc(overlapping, **{"0": {"status": "active"}})), 409)
    named = {(e["row"], e["code"]) for e in body["errors"]}
    assert (1, "not_draft") in named and (3, "overlap") in named
    assert any("row 2" in e["message"] for e in body["errors"] if e["code"] == "overlap")
    assert table_fingerprint(sample_db, "growing_areas") == before
    # the same file, fixed: three drafts without codes, communes derived, areas computed
    r = upload(client, officer, "vung.geojson", _fc(polys))
    assert r.status_code == 201, r.text
    assert r.json()["rows_written"] == 3
    with psycopg.connect(sample_db) as c:
        rows = c.execute("SELECT status, code, commune_code, area_m2, ST_Area(geom::geography) FROM growing_areas "
                         "WHERE owner LIKE 'Hộ %%' AND created_at > now() - interval '1 minute'").fetchall()
    assert len(rows) == 3
    assert all(s == "draft" and code is None and comm and abs(float(a) - g) < 0.01 for s, code, comm, a, g in rows)
    # the same boundaries again: overlap with the drafts just written
    assert problem(upload(client, officer, "vung.geojson", _fc(polys)), 409)["row"] == 1


def test_upload_zipped_shapefile_and_limits(client: TestClient, sample_db: str, officer: str, spots: Spots,
                                            tmp_path: Path) -> None:
    polys = [square(*spots.take()[1:], 110) for _ in range(2)]
    gdf = gpd.GeoDataFrame({"crop": ["coconut", "coconut"], "owner": ["HTX Dừa", "HTX Dừa"]}, geometry=polys,
                           crs="EPSG:4326").to_crs("EPSG:9210")         # VN-2000 / TM-3 105°45′ in the .prj
    gdf.to_file(tmp_path / "vung.shp", engine="pyogrio")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in tmp_path.glob("vung.*"):
            z.write(p, p.name)
    r = upload(client, officer, "vung.zip", buf.getvalue())
    assert r.status_code == 201, r.text
    assert r.json()["rows_written"] == 2
    assert problem(upload(client, officer, "vung.exe", b"MZ"), 422)["field"] == "file"
    assert problem(client.post("/collections/growing_areas/imports", files={"file": ("a.geojson", b"{}")}), 401)
    assert problem(client.post("/collections/growing_areas/imports", headers={"Authorization": f"Bearer {officer}"},
                               content=b"{}"), 415)


# -- codes --------------------------------------------------------------------------------------------------

def test_code_never_reused_after_revocation(client: TestClient, sample_db: str, officer: str, spots: Spots) -> None:
    commune, lon, lat = spots.take()
    granted = []
    for i in range(2):
        r = post(client, officer, area_feature(square(lon, lat, 120, dx_m=200 * i), commune_code=commune))
        assert r.status_code == 201, r.text
        url = r.headers["location"].replace("http://testserver", "")
        assert patch(client, officer, url, {"status": "active", **DECISION}).status_code == 204
        granted.append(props_of(client, url)["code"])
        assert patch(client, officer, url, {"status": "revoked", "status_reason": "thu hồi thử"}).status_code == 204
        if i == 0:       # even deleting the revoked area does not free its code
            tag = client.get(url).headers["etag"]
            assert client.delete(url, headers=h(officer, **{"If-Match": tag})).status_code == 204
    a, b = (CODE_RE.match(c) for c in granted)
    assert a and b and int(b.group(2)) == int(a.group(2)) + 1, granted


# -- packing houses ----------------------------------------------------------------------------------------

def test_packing_house_lifecycle(client: TestClient, sample_db: str, officer: str, spots: Spots) -> None:
    commune, lon, lat = spots.take()
    point = {"type": "Point", "coordinates": [lon + 0.0005, lat + 0.0005]}
    feat = {"type": "Feature", "geometry": point, "properties": {"name": "Cơ sở đóng gói thử", "owner": "Cty A"}}
    body = problem(post(client, officer, {**feat, "properties": {**feat["properties"], "status": "active"}},
                        "packing_facilities"), 422)
    assert body["field"] == "status"
    r = post(client, officer, feat, "packing_facilities")
    assert r.status_code == 201, r.text
    url = r.headers["location"].replace("http://testserver", "")
    p = props_of(client, url)
    assert p["status"] == "draft" and p["code"] is None and p["commune_code"] == commune
    assert problem(patch(client, officer, url, {"status": "active"}), 422)["field"] == "decision_no"
    assert patch(client, officer, url, {"status": "active", **DECISION}).status_code == 204
    code = props_of(client, url)["code"]
    assert PHC_RE.match(code) and PHC_RE.match(code).group(1) == commune, code    # type: ignore[union-attr]
    assert problem(patch(client, officer, url, {"status": "suspended"}), 422)["field"] == "status_reason"
    assert patch(client, officer, url, {"status": "suspended", "status_reason": "Vệ sinh không đạt"}).status_code == 204
    assert patch(client, officer, url, {"status": "active"}).status_code == 204
    assert patch(client, officer, url, {"status": "revoked", "status_reason": "Ngừng hoạt động"}).status_code == 204
    rows = history(sample_db, "packing_facilities", int(url.rsplit("/", 1)[1]))
    assert [(b, c) for _, b, c, _, _ in rows] == [(None, "draft"), ("draft", "active"), ("active", "suspended"),
                                                  ("suspended", "active"), ("active", "revoked")]
    assert rows[2][3] == "Vệ sinh không đạt"
    # a packing house is registered by upload as well
    pts = gpd.GeoDataFrame({"name": ["CS 1", "CS 2"]}, geometry=gpd.points_from_xy([lon + 0.001, lon + 0.0015],
                                                                                     [lat, lat]), crs="EPSG:4326")
    r = upload(client, officer, "cs.geojson", pts.to_json().encode(), "packing_facilities")
    assert r.status_code == 201, r.text


# -- expiry ------------------------------------------------------------------------------------------------

def test_published_status_never_contradicts_the_dates(client: TestClient, sample_db: str, officer: str,
                                                      spots: Spots) -> None:
    with psycopg.connect(sample_db) as c:
        bad = c.execute("SELECT count(*) FROM growing_areas WHERE (status IN ('active', 'suspended') AND "
                        "valid_to < current_date) OR (status = 'expired' AND valid_to >= current_date)").fetchone()
        n_active = c.execute("SELECT count(*) FROM growing_areas WHERE status = 'active'").fetchone()
    assert bad == (0,) and n_active is not None and n_active[0] > 100
    _, lon, lat = spots.take()
    r = post(client, officer, area_feature(square(lon, lat, 120)))
    url = r.headers["location"].replace("http://testserver", "")
    fid = r.json()["id"]
    future = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    assert patch(client, officer, url, {"status": "active", **DECISION, "valid_to": future}).status_code == 204
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    body = problem(patch(client, officer, url, {"valid_to": past}), 422)
    assert body["field"] == "valid_to" and past in body["detail"]
    with psycopg.connect(sample_db) as c:      # dates passing by (another writer): the expiry job catches up
        c.execute("UPDATE growing_areas SET valid_from = %s::date - 400, valid_to = %s WHERE id = %s",
                  [past, past, fid])
    counts = registration.expire_all(sample_db)
    assert counts["growing_areas"] == 1
    assert props_of(client, url)["status"] == "expired"
    last = history(sample_db, "growing_areas", fid)[-1]
    assert last[1:3] == ("active", "expired") and last[4] == "system:expiry" and "valid_to" in last[3]
    # renewal: expired -> active with a new end date
    assert patch(client, officer, url, {"status": "active", "valid_to": future}).status_code == 204


@pytest.fixture(autouse=True)
def _no_leak() -> Iterator[None]:
    yield


@pytest.mark.parametrize(("driver", "suffix"), [("GPKG", ".gpkg"), ("KML", ".kml")])
def test_upload_geopackage_and_kml(client: TestClient, sample_db: str, officer: str, spots: Spots, tmp_path: Path,
                                   driver: str, suffix: str) -> None:
    polys = [square(*spots.take()[1:], 110) for _ in range(2)]
    owner = f"HTX {driver} {uuid.uuid4().hex[:6]}"
    gdf = gpd.GeoDataFrame({"crop": ["longan", "longan"], "owner": [owner, owner]}, geometry=polys, crs="EPSG:4326")
    path = tmp_path / f"vung{suffix}"
    gdf.to_file(path, driver=driver, engine="pyogrio")
    r = upload(client, officer, path.name, path.read_bytes())
    assert r.status_code == 201, r.text
    with psycopg.connect(sample_db) as c:
        rows = c.execute("SELECT status, code FROM growing_areas WHERE owner = %s", [owner]).fetchall()
    assert rows == [("draft", None), ("draft", None)]


def test_upload_invalid_geometry_offers_the_repair(client: TestClient, sample_db: str, officer: str,
                                                   spots: Spots) -> None:
    _, lon, lat = spots.take()
    d = 0.0015
    bowtie = Polygon([(lon, lat), (lon + d, lat + d), (lon + d, lat), (lon, lat + d), (lon, lat)])
    data = _fc([square(*spots.take()[1:], 110), bowtie])
    before = table_fingerprint(sample_db, "growing_areas")
    body = problem(upload(client, officer, "vung.geojson", data), 422)
    assert body["row"] == 2 and "repair=true" in body["detail"]
    assert (2, "geometry", "geometry_invalid") in {(e["row"], e["field"], e["code"]) for e in body["errors"]}
    assert table_fingerprint(sample_db, "growing_areas") == before
    r = client.post("/collections/growing_areas/imports", params={"lang": "en", "repair": "true"},
                    headers={"Authorization": f"Bearer {officer}"}, files={"file": ("vung.geojson", data)})
    assert r.status_code == 201, r.text
    assert "geometry_repaired" in {w["code"] for w in r.json()["warnings"]}


def test_cli_areas_expire(sample_db: str) -> None:
    import subprocess
    import sys

    dbname = sample_db.rsplit("/", 1)[1]
    p = subprocess.run([sys.executable, "-m", "cli.main", "areas", "expire", "--db", dbname], capture_output=True,
                       text=True, timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(Path.cwd())})
    assert p.returncode == 0, p.stderr
    assert dict(line.split("\t") for line in p.stdout.strip().splitlines()) == {"growing_areas": "0",
                                                                               "packing_facilities": "0"}


def test_bulk_geodesic_areas_equal_the_one_by_one_path() -> None:
    """`gis.geometry.areas_m2` (rings out of GEOS in bulk) gives what `area_m2` gives per geometry and what pyproj
    gives for simple polygons; a hole is subtracted whatever its orientation."""
    from shapely.geometry import MultiPolygon, Point

    from gis.geometry import WGS84_GEOD, areas_m2

    holed = Polygon([(106, 10), (106.01, 10), (106.01, 10.01), (106, 10.01)],
                    [[(106.002, 10.002), (106.004, 10.002), (106.004, 10.004), (106.002, 10.004)]])
    geoms = [square(106.1 + i * 1e-3, 10.0, 90 + i) for i in range(50)] + [
        holed, holed.reverse(), MultiPolygon([box(106, 10, 106.001, 10.001), box(106.01, 10, 106.012, 10.001)]),
        None, Point(106, 10), shapely.GeometryCollection([box(106, 10, 106.001, 10.001)]), Polygon()]
    bulk = areas_m2(geoms)
    assert list(bulk) == [area_m2(g) for g in geoms]
    for g in geoms[:50]:
        assert area_m2(g) == pytest.approx(abs(WGS84_GEOD.geometry_area_perimeter(g)[0]), rel=1e-12)
    assert bulk[51] == bulk[50] and bulk[56] == 0.0 and bulk[54] == 0.0
    assert bulk[50] == pytest.approx(area_m2(box(106, 10, 106.01, 10.01)) - area_m2(box(106.002, 10.002, 106.004,
                                                                                          10.004)))


def test_upload_size_is_bounded(sample_db: str, settings: Settings, officer: str) -> None:
    from api.app import create_app

    app = create_app(settings=settings, api_settings=ApiSettings(registration_max_upload_bytes=2048), dsn=sample_db)
    with TestClient(app) as small:
        big = _fc([square(106.3 + i * 0.01, 10.0, 100) for i in range(40)])
        assert len(big) > 4096
        body = problem(upload(small, officer, "vung.geojson", big), 413)
        assert body["field"] == "file" and "2048" in body["detail"]


def test_bulk_import_cannot_store_an_active_area_without_code(sample_db: str, spots: Spots, tmp_path: Path) -> None:
    """The administrator's bulk path (--bulk) keeps statuses and codes from the file, but the database
    still refuses a non-draft without a code, naming the field."""
    from layers.ingest.importer import ImportOptions, import_file

    path = tmp_path / "bulk.geojson"
    path.write_bytes(_fc([square(*spots.take()[1:], 120)], **{"0": {"status": "active", "commune_code": "29000"}}))
    before = table_fingerprint(sample_db, "growing_areas")
    res = import_file(path, "growing_areas", sample_db, ImportOptions(lang="en", progress=False, bulk=True))
    assert res.rows_written == 0 and [(e.row, e.field, e.code) for e in res.errors] == [(1, "code", "rule")]
    assert "granted at activation" in res.errors[0].message("en")
    assert table_fingerprint(sample_db, "growing_areas") == before


def _datso_import(dsn: str, *args: str) -> Any:
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.run([str(Path(sys.executable).with_name("datso")), "import", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_import_registers_by_default(sample_db: str, spots: Spots, tmp_path: Path) -> None:
    """`datso import` of a registered layer runs the upload's registration path (drafts, every check, all or
    nothing, the row report); `--bulk` is the explicit, announced way around; other layers are unchanged."""
    polys = [square(*spots.take()[1:], 120) for _ in range(2)]
    # a file as an old register writes it: a status and a code on the first row -> refused, row and field named
    legacy = tmp_path / "legacy.geojson"
    legacy.write_bytes(_fc(polys, **{"0": {"status": "active", "code": "VN-86-OLD-001"}}))
    before = table_fingerprint(sample_db, "growing_areas")
    p = _datso_import(sample_db, str(legacy), "--layer", "growing_areas", "--lang", "en")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "row 1" in p.stderr and "status" in p.stderr and "code" in p.stderr and "draft" in p.stderr
    assert "Nothing was written" in p.stderr
    assert table_fingerprint(sample_db, "growing_areas") == before
    # an area overlapping the first row of the same file: the registration's overlap check names the row
    clash = tmp_path / "clash.geojson"
    clash.write_bytes(_fc([polys[0], shapely.affinity.translate(polys[0], 0.0003, 0)]))
    p = _datso_import(sample_db, str(clash), "--layer", "growing_areas", "--lang", "en")
    assert p.returncode == 1 and "row 2" in p.stderr and "overlaps row 1" in p.stderr, p.stderr
    assert table_fingerprint(sample_db, "growing_areas") == before
    # re-import by code is the bulk path only
    p = _datso_import(sample_db, str(legacy), "--layer", "growing_areas", "--mode", "update", "--lang", "en")
    assert p.returncode == 1 and "--bulk" in p.stderr and "mode" in p.stderr
    # the same file without status/code: drafts without codes, commune derived, area computed
    plain = tmp_path / "plain.geojson"
    plain.write_bytes(_fc(polys))
    p = _datso_import(sample_db, str(plain), "--layer", "growing_areas", "--user", "cli-reg")
    assert p.returncode == 0, p.stderr
    assert "hàng loạt" not in p.stdout + p.stderr
    with psycopg.connect(sample_db) as c:
        got = c.execute("SELECT status, code, commune_code, area_m2::float8, ST_Area(geom::geography) "
                        "FROM growing_areas WHERE id IN (SELECT feature_id FROM history WHERE layer = 'growing_areas' "
                        "AND actor = 'import:cli-reg') ORDER BY id").fetchall()
    assert [(s, code) for s, code, *_ in got] == [("draft", None), ("draft", None)]
    assert all(commune and abs(a - geog) < 0.01 for _, _, commune, a, geog in got)
    # --bulk: the legacy file is written as given, and the output says so (highlighted note and summary line)
    moved = [shapely.affinity.translate(p_, 0.0, 0.004) for p_ in polys]
    legacy.write_bytes(_fc(moved, **{"1": {"status": "active", "code": "VN-86-BULK-X", "commune_code": got[0][2]}}))
    before2 = table_fingerprint(sample_db, "growing_areas")
    p = _datso_import(sample_db, str(legacy), "--layer", "growing_areas", "--bulk", "--lang", "en")
    assert p.returncode == 1 and "row 1, field commune_code" in p.stderr       # still validated
    assert "BULK IMPORT (--bulk)" in p.stderr and table_fingerprint(sample_db, "growing_areas") == before2
    code = f"VN-86-BULK-{uuid.uuid4().hex[:4]}"
    legacy.write_bytes(_fc(moved, **{"0": {"status": "draft", "commune_code": got[0][2]},
                                     "1": {"status": "active", "code": code, "commune_code": got[0][2],
                                           "valid_from": "2026-01-01", "valid_to": "2031-01-01"}}))
    p = _datso_import(sample_db, str(legacy), "--layer", "growing_areas", "--bulk", "--lang", "en", "--user", "bulk")
    assert p.returncode == 0, p.stderr
    assert "BULK IMPORT (--bulk)" in p.stderr and "bypassing the registration workflow" in p.stderr
    assert "bulk (--bulk), not registered" in p.stdout
    with psycopg.connect(sample_db) as c:       # written as given, and audited with the actor
        assert c.execute("SELECT status FROM growing_areas WHERE code = %s", [code]).fetchall() == [("active",)]
        assert c.execute("SELECT count(*) FROM history WHERE layer = 'growing_areas' AND actor = 'import:bulk'"
                         ).fetchone() == (2,)
    p = _datso_import(sample_db, str(legacy), "--layer", "growing_areas", "--bulk", "--register")
    assert p.returncode == 2 and "--register" in p.stderr
