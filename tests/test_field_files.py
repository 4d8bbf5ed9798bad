"""Files as they come from the field (issue 11), through the real CLI (`datso import`), `import_file` and HTTP
against the real PostGIS: Vietnamese labels with or without diacritics, Vietnamese number formats and the
ambiguous `1.250` (import and `?area_m2=`), re-imports that update by business key (audited, all or nothing,
lifecycle-checked), and broken files whose message carries neither GDAL's English nor a path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import table_fingerprint
from fastapi.testclient import TestClient

from layers.ingest.importer import ImportOptions, import_file

DATSO = str(Path(sys.executable).with_name("datso"))

PREFIXES = ["VN-FF-%", "VN-NUM-%", "VN-UPD-%"]

@pytest.fixture(scope="module", autouse=True)
def _leave_the_sample_as_found(sample_db: str) -> Iterator[None]:
    """The features these tests create are removed afterwards (other modules count the synthetic sample)."""
    yield
    with psycopg.connect(sample_db) as c:
        c.execute("DELETE FROM growing_areas WHERE NOT synthetic AND code LIKE ANY(%s)", [PREFIXES])
        for table in ("seasons", "inspections", "pest_observations"):
            c.execute(f"DELETE FROM {table} WHERE NOT synthetic")  # noqa: S608 - fixed names


def _env(dsn: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(Path(__file__).parent.parent)}


def _square(x: float, y: float, d: float = 0.002) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


def areas_file(path: Path, rows: list[dict[str, Any]], x0: float = 106.70) -> Path:
    feats = [{"type": "Feature", "geometry": _square(x0 + 0.003 * i, 9.70), "properties": r}
             for i, r in enumerate(rows)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False), "utf-8")
    return path


def area(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "crop": "durian", "owner": "HTX Hiện Trường", "commune_code": "86002", **extra}


def run(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DATSO, "import", *args], env=_env(dsn), capture_output=True, text=True, timeout=300)


def rows(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return list(c.execute(sql, params).fetchall())


def test_vietnamese_crop_labels_in_import_and_api(sample_db: str, tmp_path: Path, client: TestClient) -> None:
    tag = uuid.uuid4().hex[:6]
    path = areas_file(tmp_path / "vn.geojson", [area(f"VN-FF-{tag}-1", crop="Sầu riêng"),
                                                area(f"VN-FF-{tag}-2", crop="sau rieng"),
                                                area(f"VN-FF-{tag}-3", crop="SẦU RIÊNG"),
                                                area(f"VN-FF-{tag}-4", crop="Thanh Long", markets="VN; trung quoc")])
    p = run(sample_db, str(path), "--layer", "growing_areas", "--user", "field-test", "--bulk")
    assert p.returncode == 0, p.stderr
    got = rows(sample_db, "SELECT crop, markets FROM growing_areas WHERE code LIKE %s ORDER BY code", f"VN-FF-{tag}-%")
    assert got == [("durian", []), ("durian", []), ("durian", []), ("dragon_fruit", ["VN", "CN"])]
    # an unknown crop: the message lists codes and Vietnamese labels, nothing written
    bad = areas_file(tmp_path / "bad.geojson", [area(f"VN-FF-{tag}-5", crop="sầu đâu")])
    p = run(sample_db, str(bad), "--layer", "growing_areas", "--bulk")
    assert p.returncode == 1 and "durian (Sầu riêng)" in p.stderr and "dòng 1" in p.stderr
    assert not rows(sample_db, "SELECT 1 FROM growing_areas WHERE code = %s", f"VN-FF-{tag}-5")
    # the API: a query parameter by label, a write by label
    r = client.get("/collections/growing_areas/items?crop=Sau Rieng&limit=3")
    assert r.status_code == 200 and r.json()["features"]
    assert all(f["properties"]["crop"] == "durian" for f in r.json()["features"])
    r = client.get("/collections/growing_areas/items?status=tam dinh chi&limit=3")     # a lifecycle state's label
    assert r.status_code == 200 and all(f["properties"]["status"] == "suspended" for f in r.json()["features"])
    r = client.get("/collections/growing_areas/items?status=dang cho")
    assert r.status_code == 400 and "suspended" in r.json()["detail"] and "Tạm đình chỉ" in r.json()["detail"]


def test_number_formats_and_the_ambiguous_case(sample_db: str, tmp_path: Path, client: TestClient) -> None:
    tag = uuid.uuid4().hex[:6]
    ok = areas_file(tmp_path / "n.geojson", [area(f"VN-NUM-{tag}-1", area_m2="41.250,5", expected_yield_t="12,5"),
                                             area(f"VN-NUM-{tag}-2", area_m2="1.250.000"),
                                             area(f"VN-NUM-{tag}-3", area_m2="41,250.5")])
    p = run(sample_db, str(ok), "--layer", "growing_areas", "--bulk")
    assert p.returncode == 0, p.stderr
    got = rows(sample_db, "SELECT area_m2::float8, expected_yield_t::float8 FROM growing_areas WHERE code LIKE %s "
               "ORDER BY code", f"VN-NUM-{tag}-%")
    assert got == [(41250.5, 12.5), (1250000.0, None), (41250.5, None)]
    amb = areas_file(tmp_path / "a.geojson", [area(f"VN-NUM-{tag}-4", area_m2="41.250")])
    before = table_fingerprint(sample_db, "growing_areas")
    p = run(sample_db, str(amb), "--layer", "growing_areas", "--lang", "en", "--bulk")
    assert p.returncode == 1
    assert "'41.250' is ambiguous: 41250" in p.stderr and "41.25 " in p.stderr and "row 1" in p.stderr
    assert table_fingerprint(sample_db, "growing_areas") == before
    # declared: the file writes decimals with a comma, so 41.250 is 41250
    p = run(sample_db, str(amb), "--layer", "growing_areas", "--decimal-separator", ",", "--bulk")
    assert p.returncode == 0, p.stderr
    assert rows(sample_db, "SELECT area_m2::float8 FROM growing_areas WHERE code = %s",
                f"VN-NUM-{tag}-4") == [(41250.0,)]
    # ?area_m2= : the same reading
    r = client.get("/collections/growing_areas/items?area_m2=1.250")
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert "1250" in r.json()["detail"] and "1,25" in r.json()["detail"] and "area_m2" in r.json()["detail"]
    r = client.get("/collections/growing_areas/items?area_m2=1.250&lang=en")
    assert "1.25" in r.json()["detail"] and "ambiguous" in r.json()["detail"]
    r = client.get("/collections/growing_areas/items?area_m2=1.250.000")
    assert r.status_code == 200 and r.json()["numberMatched"] >= 1
    assert all(f["properties"]["area_m2"] == 1250000 for f in r.json()["features"])
    assert client.get("/collections/growing_areas/items?area_m2=41.250,5").json()["numberMatched"] >= 1
    assert client.get("/collections/growing_areas/items?area_m2=1.2.3").status_code == 400


def test_update_and_upsert_by_business_key(sample_db: str, tmp_path: Path, client: TestClient) -> None:
    tag = uuid.uuid4().hex[:6]
    codes = [f"VN-UPD-{tag}-{i}" for i in range(3)]
    first = areas_file(tmp_path / "f.geojson", [area(c, status="active") for c in codes[:2]], x0=106.75)
    assert import_file(first, "growing_areas", sample_db, ImportOptions(progress=False, user="t", bulk=True)).ok
    ids = dict(rows(sample_db, "SELECT code, id FROM growing_areas WHERE code LIKE %s", f"VN-UPD-{tag}-%"))
    # default insert: the re-import is refused as duplicates
    res = import_file(first, "growing_areas", sample_db, ImportOptions(progress=False, bulk=True))
    assert not res.ok and {i.code for i in res.errors} == {"duplicate_in_db"}
    # update: only the file's columns change (owner, a new boundary), audited with the actor
    upd = areas_file(tmp_path / "u.geojson", [{"code": codes[0], "owner": "Chủ mới"},
                                              {"code": codes[1], "owner": "Chủ mới 2"}], x0=106.751)
    p = run(sample_db, str(upd), "--layer", "growing_areas", "--mode", "update", "--user", "re-import", "--bulk")
    assert p.returncode == 0, p.stderr
    assert "2 dòng cập nhật" in p.stdout
    got = rows(sample_db, "SELECT owner, status, crop FROM growing_areas WHERE code = ANY(%s) ORDER BY code", codes)
    assert got == [("Chủ mới", "active", "durian"), ("Chủ mới 2", "active", "durian")]
    hist = client.get(f"/collections/growing_areas/items/{ids[codes[0]]}/history",
                      headers={"Authorization": "Bearer " + _officer(sample_db)}).json()
    top = hist["entries"][0]
    assert top["actor"] == "import:re-import" and top["geometryChanged"] is True
    assert {c["field"] for c in top["changes"]} >= {"owner"} and "status" not in {c["field"] for c in top["changes"]}
    # all or nothing: an unknown key in update mode, or a forbidden transition, refuses the whole file
    before = table_fingerprint(sample_db, "growing_areas")
    bad = areas_file(tmp_path / "b.geojson", [{"code": codes[0], "owner": "X"}, {"code": "VN-NO-SUCH", "owner": "Y"}])
    res = import_file(bad, "growing_areas", sample_db, ImportOptions(progress=False, mode="update", lang="en", bulk=True))
    assert [(i.row, i.code) for i in res.errors] == [(2, "not_found")]
    back = areas_file(tmp_path / "t.geojson", [{"code": codes[0], "status": "draft"}])
    res = import_file(back, "growing_areas", sample_db, ImportOptions(progress=False, mode="update", bulk=True))
    assert [(i.row, i.field, i.code) for i in res.errors] == [(1, "status", "transition")]
    assert "'active' sang 'draft'" in res.errors[0].message("vi")
    assert table_fingerprint(sample_db, "growing_areas") == before
    # upsert: the existing one updated, the new one inserted (the file is complete)
    ups = areas_file(tmp_path / "s.geojson", [area(codes[1], owner="Chủ ba"), area(codes[2])], x0=106.76)
    res = import_file(ups, "growing_areas", sample_db, ImportOptions(progress=False, mode="upsert", user="ups", bulk=True))
    assert res.ok, [i.describe("en") for i in res.errors]
    assert (res.rows_written, res.rows_updated) == (2, 1)
    assert rows(sample_db, "SELECT code, owner FROM growing_areas WHERE code = ANY(%s) ORDER BY code", codes[1:]) == \
        [(codes[1], "Chủ ba"), (codes[2], "HTX Hiện Trường")]
    actions = rows(sample_db, "SELECT action, actor FROM history WHERE layer = 'growing_areas' AND actor = 'import:ups' "
                   "ORDER BY id")
    assert sorted(actions) == [("insert", "import:ups"), ("update", "import:ups")]


def test_update_by_a_key_with_an_empty_optional_part(sample_db: str, tmp_path: Path) -> None:
    """Parcels are keyed by commune + old commune + sheet + number, the old commune optional: a re-import whose file
    has no old-commune column matches the parcels that have none (as the insert's duplicate check reads it)."""
    sheet = 900 + int(uuid.uuid4().hex[:4], 16) % 90
    commune = rows(sample_db, "SELECT commune_code FROM parcels LIMIT 1")[0][0]

    def parcels(body: str, numbers: list[int]) -> Path:
        feats = [{"type": "Feature", "geometry": _square(106.70 + 0.003 * i, 9.72),
                  "properties": {"commune_code": commune, "map_sheet": sheet, "parcel_no": n,
                                 "land_use_codes": "ONT", "managing_body": body}} for i, n in enumerate(numbers)]
        path = tmp_path / f"{body}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False), "utf-8")
        return path

    try:
        assert import_file(parcels("UBND", [1, 2]), "parcels", sample_db, ImportOptions(progress=False)).ok
        before = table_fingerprint(sample_db, "parcels")
        # one unknown number: nothing written, the row named
        res = import_file(parcels("UBND xã", [1, 3]), "parcels", sample_db, ImportOptions(progress=False, mode="update"))
        assert [(i.row, i.code) for i in res.errors] == [(2, "not_found")]
        assert table_fingerprint(sample_db, "parcels") == before
        res = import_file(parcels("UBND xã", [1, 2]), "parcels", sample_db,
                          ImportOptions(progress=False, mode="update", user="parcel-re"))
        assert res.ok and res.rows_updated == 2, [i.describe("en") for i in res.errors]
        assert rows(sample_db, "SELECT parcel_no, managing_body, old_commune_code FROM parcels WHERE map_sheet = %s "
                    "ORDER BY parcel_no", sheet) == [(1, "UBND xã", None), (2, "UBND xã", None)]
        assert rows(sample_db, "SELECT count(*) FROM history WHERE layer = 'parcels' AND actor = 'import:parcel-re'"
                    ) == [(2,)]
    finally:
        with psycopg.connect(sample_db) as c:
            c.execute("DELETE FROM parcels WHERE map_sheet = %s AND commune_code = %s", [sheet, commune])


def _officer(dsn: str) -> str:
    from layers.accounts.auth import create_key

    return create_key(dsn, f"ff-officer-{uuid.uuid4().hex[:8]}", "officer")


@pytest.mark.parametrize("name, content, needle", [
    ("cut.geojson", b'{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point",'
                    b'"coordinates":[1,', "GeoJSON không hợp lệ"),
    ("junk.gpkg", bytes(range(256)) * 8, "không nhận ra định dạng"),
    ("cut.kml", b"<kml><Document><Placemark><Point><coordinates>1,2", "KML không hợp lệ"),
    ("junk.zip", b"PK\x03\x04 not really a zip", "tệp nén .zip hỏng"),
])
def test_broken_file_message_has_no_gdal_english_nor_path(sample_db: str, tmp_path: Path, name: str,
                                                          content: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    p = run(sample_db, str(path), "--layer", "pest_observations", "--crs", "EPSG:4326")
    assert p.returncode == 1
    out = p.stderr + p.stdout
    assert needle in out and name in out
    for leak in (str(tmp_path), "/vsi", "not recognized", "Failed to read", "ERROR parsing", "Warning", "Traceback",
                 "It might help"):
        assert leak not in out, (leak, out)
    en = run(sample_db, str(path), "--layer", "pest_observations", "--lang", "en")
    assert "cannot read " + name in en.stderr and str(tmp_path) not in en.stderr


def test_reader_warnings_do_not_leak_paths(sample_db: str, tmp_path: Path) -> None:
    """A valid GeoPackage under another extension makes GDAL warn with the (temporary) path: the import goes on,
    and neither the warning's English nor the path reaches the output."""
    import geopandas as gpd
    import shapely

    gdf = gpd.GeoDataFrame({"growing_area_id": [9], "pest": ["Bọ trĩ"], "severity": ["nhe"],
                            "observed_on": ["20/10/2026"]}, geometry=[shapely.Point(106.35, 10.12)], crs="EPSG:4326")
    path = tmp_path / "sau_benh.gpkg"
    gdf.to_file(path, driver="GPKG", layer="sau_benh", engine="pyogrio")
    odd = path.rename(tmp_path / "sau_benh.dulieu")
    p = run(sample_db, str(odd), "--layer", "pest_observations", "--user", "warn-test")
    assert p.returncode == 0, p.stderr
    out = p.stderr + p.stdout
    assert str(tmp_path) not in out and "Warning" not in out and "application_id" not in out
    assert rows(sample_db, "SELECT pest, severity FROM pest_observations WHERE growing_area_id = 9 "
                "AND observed_on = '2026-10-20'") == [("thrips", "low")]
