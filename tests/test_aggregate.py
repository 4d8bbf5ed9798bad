"""Aggregates (`/collections/{id}/aggregate`, `/transitions`) against SQL written here independently: several
groupings and selections, CSV, labels in the request language, bad and non-whitelisted fields, the group cap."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.catalog.formats import label
from layers.store import vocab


def truth(conn: psycopg.Connection, nkeys: int, sql: str, params: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = conn.execute(sql, params).fetchall()
    return {tuple(str(k) if k is not None else None for k in r[:nkeys]): tuple(r[nkeys:]) for r in rows}


def api_groups(doc: dict[str, Any]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {tuple(None if g["key"][k] is None else str(g["key"][k]) for k in doc["group_by"]):
            tuple(g["values"][c] for c in doc["values"]) for g in doc["groups"]}


def close(a: dict[tuple[Any, ...], tuple[Any, ...]], b: dict[tuple[Any, ...], tuple[Any, ...]]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        for x, y in zip(a[k], b[k], strict=True):
            if isinstance(y, dt.datetime):
                assert dt.datetime.fromisoformat(x) == y, k
            elif isinstance(y, Decimal | float):
                assert float(x) == pytest.approx(float(y), rel=1e-9), k
            else:
                assert str(x) == str(y), k


CASES = [
    ("growing_areas", "group_by=crop,status&sum=area_m2&avg=area_m2&min=area_m2&max=area_m2", 2,
     "SELECT crop, status, count(*), sum(area_m2), avg(area_m2), min(area_m2), max(area_m2) FROM growing_areas "
     "GROUP BY 1, 2", ()),
    ("growing_areas", "group_by=valid_from:month&status=active&sum=area_m2", 1,
     "SELECT to_char(date_trunc('month', valid_from), 'YYYY-MM'), count(*), sum(area_m2) FROM growing_areas "
     "WHERE status = 'active' GROUP BY 1", ()),
    ("growing_areas", "group_by=valid_from:year&count=expected_yield_t&filter=crop IN ('durian','pomelo')", 1,
     "SELECT extract(year FROM valid_from)::int::text, count(*), count(expected_yield_t) FROM growing_areas "
     "WHERE crop IN ('durian','pomelo') GROUP BY 1", ()),
    ("auction_plots", "group_by=commune_code&sum=area_m2,starting_price_vnd,result_price_vnd"
     "&filter=result_price_vnd IS NOT NULL", 1,
     "SELECT commune_code, count(*), sum(area_m2), sum(starting_price_vnd), sum(result_price_vnd) FROM auction_plots "
     "WHERE result_price_vnd IS NOT NULL GROUP BY 1", ()),
    ("auction_plots", "group_by=status&bbox=106.2,10.0,106.6,10.4&max=auction_date", 1,
     "SELECT status, count(*), max(auction_date) FROM auction_plots "
     "WHERE ST_Intersects(geom, ST_MakeEnvelope(106.2, 10.0, 106.6, 10.4, 4326)) GROUP BY 1", ()),
    ("parcels", "sum=area_m2&status=leased", 0,
     "SELECT count(*), sum(area_m2) FROM parcels WHERE status = 'leased'", ()),
    ("auction_plots", "group_by=auction_date:month&datetime=2026-01-01/2026-12-31", 1,
     "SELECT to_char(date_trunc('month', auction_date AT TIME ZONE 'Asia/Ho_Chi_Minh'), 'YYYY-MM'), count(*) "
     "FROM auction_plots WHERE auction_date >= '2026-01-01T00:00:00Z' AND auction_date < '2027-01-01T00:00:00Z' "
     "GROUP BY 1", ()),
]


@pytest.mark.parametrize(("layer", "query", "nkeys", "sql", "params"), CASES)
def test_aggregate_equals_sql(client: TestClient, conn: psycopg.Connection, layer: str, query: str, nkeys: int,
                              sql: str, params: tuple[Any, ...]) -> None:
    r = client.get(f"/collections/{layer}/aggregate?{query}")
    assert r.status_code == 200, r.text
    doc = r.json()
    expected = truth(conn, nkeys, sql, params)
    assert expected, "the case must select something"
    close(api_groups(doc), expected)
    assert doc["numberGroups"] == len(expected)


def test_labels_follow_the_language(client: TestClient) -> None:
    vi = client.get("/collections/growing_areas/aggregate?group_by=crop,status").json()
    en = client.get("/collections/growing_areas/aggregate?group_by=crop,status&lang=en").json()
    for g in vi["groups"]:
        assert g["label"]["crop"] == vocab.CROPS[g["key"]["crop"]]
        assert g["label"]["status"] == label(g["key"]["status"], "vi")
    assert vi["titles"] == {"crop": "Cây trồng", "status": "Trạng thái"}
    assert en["titles"] == {"crop": "Crop", "status": "Status"}
    assert {g["label"]["status"] for g in en["groups"]} == {label(g["key"]["status"], "en") for g in en["groups"]}
    assert "Active" in {g["label"]["status"] for g in en["groups"]} or en["groups"]


def test_csv(client: TestClient, conn: psycopg.Connection) -> None:
    r = client.get("/collections/growing_areas/aggregate?group_by=crop&sum=area_m2&f=csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0]) == ["crop", "crop_label", "count", "sum_area_m2"]
    expected = truth(conn, 1, "SELECT crop, count(*), sum(area_m2) FROM growing_areas GROUP BY 1")
    got = {(row["crop"],): (int(row["count"]), Decimal(row["sum_area_m2"])) for row in rows}
    close(got, expected)
    assert {row["crop_label"] for row in rows} == {vocab.CROPS[row["crop"]] for row in rows}


@pytest.mark.parametrize(("query", "names"), [
    ("group_by=nope", ["group_by", "nope"]),
    ("sum=crop", ["sum", "crop"]),
    ("avg=valid_from", ["avg", "valid_from"]),
    ("group_by=synthetic", ["group_by", "synthetic"]),          # not queryable: not whitelisted
    ("group_by=markets", ["group_by", "markets"]),              # an array
    ("group_by=crop:month", ["group_by", "crop:month"]),
    ("group_by=valid_from:week", ["group_by", "valid_from:week"]),
    ("group_by=crop,crop", ["group_by"]),
    ("median=area_m2", ["median"]),
    ("group_by=crop&filter=nope>1", ["nope"]),
    ("group_by=crop&bbox=1,2,3", ["bbox"]),
])
def test_bad_parameters_name_the_field(client: TestClient, query: str, names: list[str]) -> None:
    r = client.get(f"/collections/growing_areas/aggregate?{query}&lang=en")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    for n in names:
        assert n in r.json()["detail"]
    vi = client.get(f"/collections/growing_areas/aggregate?{query}")
    assert vi.status_code == 400 and vi.json()["detail"] != r.json()["detail"]


def test_private_field_refused(client: TestClient) -> None:
    r = client.get("/collections/parcels/aggregate?group_by=certificate_no&lang=en")
    assert r.status_code == 400 and "certificate_no" in r.json()["detail"]
    r = client.get("/collections/parcels/aggregate?certificate_no=1&lang=en")
    assert r.status_code == 400 and "certificate_no" in r.json()["detail"]


def test_unknown_collection(client: TestClient) -> None:
    assert client.get("/collections/nope/aggregate").status_code == 404


def test_too_many_groups_is_413(app: Any, client: TestClient, conn: psycopg.Connection) -> None:
    n = conn.execute("SELECT count(DISTINCT code) FROM growing_areas").fetchone()[0]
    old = app.state.api_settings.aggregate_max_groups
    app.state.api_settings.aggregate_max_groups = n - 1
    try:
        r = client.get("/collections/growing_areas/aggregate?group_by=code&lang=en")
        assert r.status_code == 413 and "DATSO_AGGREGATE_MAX_GROUPS" in r.json()["detail"]
        app.state.api_settings.aggregate_max_groups = n
        assert client.get("/collections/growing_areas/aggregate?group_by=code").json()["numberGroups"] == n
    finally:
        app.state.api_settings.aggregate_max_groups = old


def test_transitions_follow_the_history(client: TestClient, conn: psycopg.Connection) -> None:
    conn.autocommit = True
    base = conn.execute("SELECT to_char(date_trunc('month', at AT TIME ZONE 'Asia/Ho_Chi_Minh'), 'YYYY-MM'), "
                        "after->>'status', count(*) FROM history WHERE layer = 'growing_areas' AND "
                        "action IN ('insert','update') AND (action = 'insert' OR "
                        "before->>'status' IS DISTINCT FROM after->>'status') GROUP BY 1, 2").fetchall()
    # an officer's change through the history trigger: suspend one active area, then reinstate it
    fid = conn.execute("SELECT id FROM growing_areas WHERE status = 'active' ORDER BY id LIMIT 1").fetchone()[0]
    with conn.transaction():
        conn.execute("UPDATE growing_areas SET status = 'suspended', status_reason = 'kiểm tra' WHERE id = %s", (fid,))
        conn.execute("UPDATE growing_areas SET owner = owner WHERE id = %s", (fid,))     # no status change
    try:
        doc = client.get("/collections/growing_areas/transitions?lang=en").json()
        got = {(t["period"], t["to"]): t["count"] for t in doc["transitions"]}
        expected = {(p, s): n for p, s, n in base}
        month = conn.execute("SELECT to_char(now() AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM')").fetchone()[0]
        expected[(month, "suspended")] = expected.get((month, "suspended"), 0) + 1
        assert got == expected
        assert any(t["label"] == label("suspended", "en") for t in doc["transitions"])
        assert client.get("/collections/growing_areas/transitions?datetime=2000-01-01/2000-12-31").json()[
            "transitions"] == []
        assert client.get("/collections/admin_units/transitions").status_code == 400
        assert client.get("/collections/growing_areas/transitions?period=week").status_code == 400
    finally:
        with conn.transaction():
            conn.execute("UPDATE growing_areas SET status = 'active', status_reason = NULL WHERE id = %s", (fid,))
