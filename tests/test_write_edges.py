"""Edge values on writes (issue 8): each refused with a 4xx problem+json naming the field and nothing written;
values already stored outside the ranges stay readable by every face; If-Match: * refused; Unicode digits are
text; writes through the pool answer 503 + Retry-After while the database is down and work again after."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from conftest import free_port, table_fingerprint
from fastapi.testclient import TestClient
from test_features_write import PROBLEM, assert_problem, h, new_plot, post
from test_health import Proxy

from api.app import create_app
from layers.accounts.auth import create_key
from layers.catalog.registry import LAYERS
from layers.ingest import validation, writes
from layers.settings import ApiSettings

PATCH_CT = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def officer(sample_db: str) -> str:
    return create_key(sample_db, f"officer-{uuid.uuid4().hex[:8]}", "officer")


def _names_field(body: dict[str, Any], field: str) -> bool:
    return any(e.get("field") == field for e in body.get("errors", [])) or field in body["detail"]


def _created(r: httpx.Response) -> tuple[str, str]:
    assert r.status_code == 201, r.text
    return r.headers["location"].replace("http://testserver", ""), r.headers["etag"]


EDGE_PROPS: list[tuple[str, Any, int]] = [
    # dates: the year-1-BC value, far past/future, and just outside the default range
    ("auction_date", "0001-01-01T00:00:00+14:00", 422),
    ("auction_date", "9999-12-31T23:59:59-12:00", 422),
    ("auction_date", "1899-12-31T23:00:00+07:00", 422),
    ("registration_end", "2201-01-01T00:00:00Z", 422),
    ("viewing_start", "0001-01-01", 422),
    ("viewing_end", "01/01/2201", 422),
    # integers beyond the column (int8) and beyond int64, 1e308, non-finite
    ("starting_price_vnd", 2**63, 422),
    ("starting_price_vnd", 10**40, 422),
    ("starting_price_vnd", 1e308, 422),
    ("starting_price_vnd", "1e999999999", 422),
    ("deposit_vnd", "Infinity", 422),
    ("deposit_vnd", "NaN", 422),
    ("area_m2", "1e999", 422),
    ("area_m2", "-inf", 422),
    ("parcel_ids", [2**64], 422),
    ("parcel_ids", ["1e308"], 422),
    # NUL and lengths
    ("address", "Số 1\u0000đường", 422),
    ("plot_code", "A\u0000", 422),
    ("plot_code", "x" * 33, 422),
    ("term", "x" * 100_000, 422),
    # wrong shapes, Unicode digits
    ("address", {"nested": {"object": 1}}, 422),
    ("starting_price_vnd", "¹²³", 422),
    ("starting_price_vnd", [1, 2], 422),
]


@pytest.mark.parametrize(("field", "value", "status"), EDGE_PROPS, ids=[f"{f}={str(v)[:24]}" for f, v, _ in EDGE_PROPS])
def test_create_refuses_edge_values_naming_the_field(client: TestClient, sample_db: str, officer: str, field: str,
                                                     value: Any, status: int) -> None:
    before = {t: table_fingerprint(sample_db, t) for t in ("auction_plots", "history")}
    body = new_plot(client)
    body["properties"][field] = value
    problem = assert_problem(post(client, officer, body, **{"Accept-Language": "en"}), status)
    assert _names_field(problem, field), problem
    assert {t: table_fingerprint(sample_db, t) for t in ("auction_plots", "history")} == before


ARRAY_EDGES: list[tuple[str, str, Any]] = [
    ("trace_lots", "origin_codes", ["y" * 100_000]),       # varchar(40)[]: 100 KB items gave 500
    ("trace_lots", "origin_codes", ["ok", "a\u0000"]),
    ("trace_events", "input_epcs", "[1e999]"),            # a text cell that looks like JSON but is not a list
    ("growing_areas", "harvest_months", [2**31]),          # int4[]
    ("growing_areas", "markets", ["E" * 5]),               # varchar(4)[]
    ("trace_events", "ilmd", {"k\u0000": 1}),              # jsonb: NUL in a key
    ("trace_events", "ilmd", {"k": "v\u0000"}),
    ("trace_events", "ilmd", "1e999"),                     # jsonb given as text: non-finite
    ("trace_events", "quantity_list", "[1e999]"),
    ("trace_events", "quantity_list", "[" * 5000 + "]" * 5000),
    ("trace_events", "ilmd", json.loads('{"a":' * 40 + "1" + "}" * 40)),
    ("trace_events", "event_time", "0001-01-01T00:00:00+14:00"),
    ("trace_lots", "pack_date", "0044-03-15"),
    ("parcels", "map_sheet", 2**31),                       # int4
    ("parcels", "map_sheet", 1e308),
]


@pytest.mark.parametrize(("layer_id", "field", "value"), ARRAY_EDGES,
                         ids=[f"{layer}.{f}={str(v)[:20]}" for layer, f, v in ARRAY_EDGES])
def test_patch_refuses_edge_values_naming_the_field(client: TestClient, sample_db: str, admin_key: str,
                                                    layer_id: str, field: str, value: Any) -> None:
    layer = LAYERS[layer_id]
    fid = client.get(f"/collections/{layer_id}/items", params={"limit": 1}).json()["features"][0]["id"]
    url = f"/collections/{layer_id}/items/{fid}"
    tag = client.get(url).headers["etag"]
    before = {t: table_fingerprint(sample_db, t) for t in (layer.table, "history")}
    r = client.patch(url, content=json.dumps({"properties": {field: value}}),
                     headers=h(admin_key, **PATCH_CT, **{"If-Match": tag}))
    problem = assert_problem(r, 422)
    assert _names_field(problem, field), problem
    assert {t: table_fingerprint(sample_db, t) for t in (layer.table, "history")} == before


@pytest.fixture(scope="module")
def admin_key(sample_db: str) -> str:
    return create_key(sample_db, f"admin-{uuid.uuid4().hex[:8]}", "admin")


def test_importer_names_row_and_field_for_edge_values() -> None:
    """validation.py is shared with `datso import`: the same refusals, with the row."""
    layer = LAYERS["auction_plots"]
    recs = [({"auction_date": "0001-01-01T00:00:00+14:00"}, None), ({"starting_price_vnd": 10**30}, None),
            ({"address": "a\u0000"}, None), ({"parcel_ids": "[1e999]"}, None), ({"plot_code": "p" * 40}, None)]
    prepared = validation.prepare_records(layer, recs, partial=True)
    got = {(i.row, i.field, i.code) for i in prepared.errors}
    assert (1, "auction_date", "date_range") in got
    assert (2, "starting_price_vnd", "too_large") in got
    assert (3, "address", "nul") in got
    assert (4, "parcel_ids", "type") in got
    assert (5, "plot_code", "too_long") in got
    assert "dòng 1, trường auction_date" in next(i for i in prepared.errors if i.field == "auction_date").describe("vi")
    # the vectorised paths (a typed column, a text column, a text array column) apply the same limits
    import pandas as pd

    frame = pd.DataFrame({"map_sheet": pd.Series([1, 2**31], dtype="int64"),
                          "commune_code": ["12345", "1\u00002"], "land_use_codes": ["ONT", "ONT,XXXXXXXXX"]})
    p = validation.prepare_frame(LAYERS["parcels"], frame, [None, None], partial=True)
    got = {(i.row, i.field, i.code) for i in p.errors}
    assert {(2, "map_sheet", "too_large"), (2, "commune_code", "nul"), (2, "land_use_codes", "too_long")} <= got


def test_geometry_limits(client: TestClient, sample_db: str, officer: str) -> None:
    limits = client.app.state.api_settings  # type: ignore[attr-defined]
    before = table_fingerprint(sample_db, "auction_plots")
    body = new_plot(client)
    n = limits.max_geometry_vertices + 1
    ring = [[106.3 + 0.001 * i / n, 10.0] for i in range(n - 3)] + [[106.301, 10.001], [106.3, 10.001], [106.3, 10.0]]
    body["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    problem = assert_problem(post(client, officer, body), 413)
    assert problem["errors"][0]["field"] == "geometry" and str(limits.max_geometry_vertices) in problem["detail"]
    body["geometry"] = {"type": "Point", "coordinates": [106.3, 10.0], "pad": "x" * (limits.max_geometry_bytes + 1)}
    problem = assert_problem(post(client, officer, body), 413)
    assert problem["errors"][0]["field"] == "geometry"
    assert table_fingerprint(sample_db, "auction_plots") == before


def test_stored_out_of_range_dates_are_readable_by_every_face(settings: Any, sample_db: str) -> None:
    """A year-1-BC auction date (as the issue's PATCH stored it, before the date ranges) and a BC pack date,
    written with raw SQL past the NOT VALID constraints: every face answers, none 500s."""
    with psycopg.connect(sample_db, autocommit=True) as c:
        c.execute("ALTER TABLE auction_plots DROP CONSTRAINT ck_auction_plots_auction_date_range")
        c.execute("ALTER TABLE trace_lots DROP CONSTRAINT ck_trace_lots_pack_date_range")
        try:
            plot = c.execute(
                "INSERT INTO auction_plots (plot_code, commune_code, area_m2, land_use_code, starting_price_vnd, "
                "deposit_vnd, deposit_pct, auction_date, geom) SELECT 'BC-' || id, commune_code, area_m2, "
                "land_use_code, starting_price_vnd, deposit_vnd, deposit_pct, "
                "'0001-01-01T00:00:00+14:00'::timestamptz, geom FROM auction_plots ORDER BY id LIMIT 1 "
                "RETURNING id").fetchone()
            lot = c.execute("UPDATE trace_lots SET pack_date = '0044-03-15 BC', expiry_date = NULL WHERE id = "
                            "(SELECT min(id) FROM trace_lots) RETURNING id").fetchone()
        finally:
            c.execute("ALTER TABLE auction_plots ADD CONSTRAINT ck_auction_plots_auction_date_range CHECK "
                      "(auction_date >= TIMESTAMPTZ '1899-12-31T00:00:00Z' AND auction_date < "
                      "TIMESTAMPTZ '2201-01-02T00:00:00Z') NOT VALID")
            c.execute("ALTER TABLE trace_lots ADD CONSTRAINT ck_trace_lots_pack_date_range CHECK "
                      "(pack_date BETWEEN DATE '1900-01-01' AND DATE '2200-12-31') NOT VALID")
    assert plot is not None and lot is not None
    try:
        with TestClient(create_app(settings=settings, dsn=sample_db)) as c:   # a new app: no cached extents
            paths = ["/collections", "/collections?f=html", "/collections/auction_plots",
                     "/collections/auction_plots?f=html", "/collections/trace_lots",
                     f"/collections/auction_plots/items/{plot[0]}", f"/collections/auction_plots/items/{plot[0]}?f=html",
                     "/collections/auction_plots/items?f=html&limit=1000", "/collections/auction_plots/items?f=csv",
                     "/collections/auction_plots/items?f=gpkg&limit=1000", "/collections/auction_plots/items?limit=1000",
                     "/collections/trace_lots/items?f=html&limit=1000", f"/collections/trace_lots/items/{lot[0]}?f=html",
                     "/maps/auction_plots.html", "/maps/trace_lots.html", "/map", "/search?q=BC"]
            for p in paths:
                r = c.get(p)
                assert r.status_code == 200, (p, r.status_code, r.text[:300])
            html = c.get(f"/collections/auction_plots/items/{plot[0]}?f=html").text
            assert "BC" in html      # shown as stored, not hidden
            # a write touching such a row must fix the date: 422 naming it, not a 500
            officer = create_key(sample_db, f"o-{uuid.uuid4().hex[:8]}", "officer")
            url = f"/collections/auction_plots/items/{plot[0]}"
            r = c.patch(url, content=json.dumps({"properties": {"address": "x"}}),
                        headers=h(officer, **PATCH_CT, **{"If-Match": c.get(url).headers["etag"]}))
            assert_problem(r, 422)
            assert any(e["field"] == "auction_date" for e in r.json()["errors"])
            r = c.patch(url, content=json.dumps({"properties": {"auction_date": "2026-01-15T09:00:00+07:00"}}),
                        headers=h(officer, **PATCH_CT, **{"If-Match": c.get(url).headers["etag"]}))
            assert r.status_code == 204, r.text
    finally:
        with psycopg.connect(sample_db, autocommit=True) as c:
            c.execute("DELETE FROM auction_plots WHERE id = %s", plot)
            c.execute("UPDATE trace_lots SET pack_date = NULL WHERE id = %s", lot)


def test_if_match_star_refused_for_put_patch_delete(client: TestClient, sample_db: str, officer: str) -> None:
    body = new_plot(client)
    url, _tag = _created(post(client, officer, body))
    before = {t: table_fingerprint(sample_db, t) for t in ("auction_plots", "history")}
    for star in ("*", ' "x", * '):
        assert_problem(client.patch(url, content=json.dumps({"properties": {"address": "star"}}),
                                    headers=h(officer, **PATCH_CT, **{"If-Match": star})), 428)
        assert_problem(client.put(url, content=json.dumps(body), headers=h(officer, **{"If-Match": star})), 428)
        assert_problem(client.delete(url, headers=h(officer, **{"If-Match": star})), 428)
    assert {t: table_fingerprint(sample_db, t) for t in ("auction_plots", "history")} == before


@pytest.mark.parametrize("fid", ["¹", "²³", "٣", "𝟙", "1¹", "１"])
def test_unicode_digit_feature_ids_are_not_found(client: TestClient, officer: str, fid: str) -> None:
    url = f"/collections/parcels/items/{fid}"
    assert_problem(client.get(url), 404)
    for r in (client.put(url, content=b"{}", headers=h(officer, **{"If-Match": '"1-1"'})),
              client.patch(url, content=b"{}", headers=h(officer, **PATCH_CT, **{"If-Match": '"1-1"'})),
              client.delete(url, headers=h(officer, **{"If-Match": '"1-1"'}))):
        assert r.status_code in (400, 403, 404), r.text          # parcels: officer may write
        assert r.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize("crs", ["¹", "EPSG:¹", "http://www.opengis.net/def/crs/EPSG/0/¹",
                                 "http://www.opengis.net/def/crs/EPSG/0/٣٤٠٥", "EPSG:9210\u0001"])
def test_content_crs_unicode_digits_is_400_naming_the_header(client: TestClient, sample_db: str, officer: str,
                                                             crs: str) -> None:
    before = table_fingerprint(sample_db, "auction_plots")
    body = new_plot(client)
    r = client.post("/collections/auction_plots/items", content=json.dumps(body),
                    headers={**h(officer), "Content-Crs": crs.encode()})
    assert "Content-Crs" in assert_problem(r, 400)["detail"]
    assert table_fingerprint(sample_db, "auction_plots") == before


def test_writes_while_database_down_are_503_then_recover(client: TestClient, settings: Any, sample_db: str,
                                                         officer: str) -> None:
    """Through a TCP proxy we switch off: writes answer 503 problem+json with Retry-After (nothing written),
    and work again once the database is back, without a restart."""
    from urllib.parse import urlparse

    port = urlparse(sample_db).port or 5432
    proxy = Proxy(port)
    dsn = sample_db.replace(f":{port}/", f":{proxy.port}/")
    app = create_app(settings=settings, api_settings=ApiSettings(db_connect_timeout=1.0), dsn=dsn)
    try:
        with TestClient(app) as c:
            good = new_plot(client)
            before = table_fingerprint(sample_db, "auction_plots")
            # down from the start: the app starts, writes are 503
            for _ in range(2):
                r = c.post("/collections/auction_plots/items", content=json.dumps(good), headers=h(officer))
                assert r.status_code == 503, r.text
                assert r.headers["content-type"].startswith(PROBLEM) and int(r.headers["retry-after"]) > 0
            r = c.patch("/collections/auction_plots/items/1", content=b'{"properties":{}}',
                        headers=h(officer, **PATCH_CT, **{"If-Match": '"1-1"'}))
            assert r.status_code == 503, r.text
            assert table_fingerprint(sample_db, "auction_plots") == before
            proxy.on()
            url, tag = _created(c.post("/collections/auction_plots/items", content=json.dumps(good),
                                       headers=h(officer)))
            proxy.off()          # the database goes away while the pool holds a connection
            r = c.patch(url, content=json.dumps({"properties": {"address": "down"}}),
                        headers=h(officer, **PATCH_CT, **{"If-Match": tag}))
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            r = c.delete(url, headers=h(officer, **{"If-Match": tag}))
            assert r.status_code == 503, r.text
            proxy.on()           # back: the next write works
            r = c.patch(url, content=json.dumps({"properties": {"address": "up"}}),
                        headers=h(officer, **PATCH_CT, **{"If-Match": tag}))
            assert r.status_code == 204, r.text
    finally:
        proxy.off()


def test_write_pool_sessions_and_plain_dsn(sample_db: str) -> None:
    """The pool's connections carry the API session settings and a statement_timeout; the sync write functions
    still take a plain DSN (CLI, tests)."""
    pool = writes.WritePool(sample_db, 0, 2, 3.0, statement_timeout_ms=1234)
    try:
        with pool.connection() as conn:
            row = conn.execute("SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather'), "
                               "current_setting('statement_timeout')").fetchone()
        assert row == ("off", "0", "1234ms")
        with pool.connection() as conn, pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(3)")
    finally:
        pool.close()
    dead = writes.WritePool(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", 0, 1, 0.5)
    with pytest.raises(writes.DatabaseDown):
        writes.delete(dead, LAYERS["auction_plots"], 1, "test", '"1-1"')
    dead.close()
    with pytest.raises(writes.DatabaseDown):
        writes.delete(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", LAYERS["auction_plots"], 1, "t", "x")
