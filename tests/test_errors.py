"""The one error path (issue 9): every exception class of the error table (api/errors.ERRORS) and every
`BilingualError` kind is answered with its status, as problem+json in Vietnamese or English (or as the
HTML error page for browsers on the routes that ask for it); and the one If-None-Match rule
(api/conditional.py) on documents, items, tiles and the tile fast path. All through real HTTP on the real
app and database."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from tiles_support import get_tile, tile_of

from api.app import create_app
from api.conditional import etag_matches
from api.db import CLIENT_ERRORS, DB_DOWN, DatabaseUnavailable, QueryTimeout
from api.errors import ERRORS, PROBLEM, TITLES, Problem, html_error_page
from gis.errors import BilingualError
from gis.io import DataFileError
from layers.accounts.auth import ApiKeyError
from layers.ingest.validation import CoercionError, LimitError
from layers.ingest.writes import DatabaseDown, WriteError
from layers.maps.folium_export import OfflineAssetsMissing
from layers.query.cql2 import CqlError
from layers.query.exporter import ExportError
from layers.query.features import QueryError
from layers.query.search import SearchError
from layers.settings import Settings
from tiles.filters import FilterError
from tiles.raster import ImageryError
from tiles.tms import TileError

VI, EN = "thông điệp tiếng Việt", "the English message"
ISSUES = [{"field": "status", "code": "enum", "message": "not a status"}]


def _bilingual() -> list[tuple[str, Callable[[], Exception], int, dict[str, Any]]]:
    """(name, factory, status, problem members) for every kind of bad input: the status travels with it."""
    return [
        ("BilingualError", lambda: BilingualError(VI, EN), 400, {}),
        ("Problem", lambda: Problem(409, VI, EN, hint="x"), 409, {"hint": "x"}),
        ("CqlError", lambda: CqlError(VI, EN), 400, {}),
        ("QueryError", lambda: QueryError(VI, EN), 400, {}),
        ("FilterError", lambda: FilterError(VI, EN), 400, {}),
        ("TileError", lambda: TileError(404, VI, EN), 404, {}),
        ("ImageryError", lambda: ImageryError(404, VI, EN), 404, {}),
        ("SearchError", lambda: SearchError(VI, EN), 400, {}),
        ("ExportError", lambda: ExportError(VI, EN), 400, {}),
        ("ExportError413", lambda: ExportError(VI, EN, status=413), 413, {}),
        ("DataFileError", lambda: DataFileError(VI, EN), 400, {}),
        ("CoercionError", lambda: CoercionError(VI, EN), 400, {}),
        ("LimitError", lambda: LimitError("too_long", VI, EN), 400, {}),
        ("ApiKeyError", lambda: ApiKeyError(VI, EN), 400, {}),
        ("WriteError", lambda: WriteError(422, VI, EN, ISSUES), 422, {"errors": ISSUES}),
        ("WriteError412", lambda: WriteError(412, VI, EN), 412, {}),
    ]


def _interface_after_reset() -> Exception:
    try:
        raise ConnectionResetError("reset by peer")
    except ConnectionResetError as exc:
        try:
            raise asyncpg.exceptions.InterfaceError("connection is closed") from exc
        except asyncpg.exceptions.InterfaceError as outer:
            return outer


# (name, factory, status, words of the English detail): database faults and values the database refuses
FAULTS: list[tuple[str, Callable[[], Exception], int, str]] = [
    ("DatabaseUnavailable", lambda: DatabaseUnavailable("down"), 503, "database is unavailable"),
    ("QueryTimeout", lambda: QueryTimeout(2.5), 503, "time limit (2.5 s)"),
    ("asyncpg.QueryCanceledError", lambda: asyncpg.exceptions.QueryCanceledError("canceled"), 503, "time limit"),
    ("psycopg.OperationalError", lambda: psycopg.OperationalError("down"), 503, "database is unavailable"),
    ("DatabaseDown", lambda: DatabaseDown("down"), 503, "database is unavailable"),
    *[(f"DB_DOWN.{cls.__name__}", (lambda c=cls: c("down")), 503, "database is unavailable") for cls in DB_DOWN],
    ("InternalClientError", lambda: asyncpg.exceptions.InternalClientError("cannot switch to state 12"), 503,
     "database is unavailable"),
    ("InterfaceError after a reset", _interface_after_reset, 503, "database is unavailable"),
    ("asyncpg.DataError", lambda: asyncpg.exceptions.DivisionByZeroError("division by zero"), 400,
     "database refused a value"),
    ("asyncpg.InternalServerError", lambda: asyncpg.exceptions.InternalServerError("parse error"), 400,
     "database refused a value"),
    ("psycopg.DataError", lambda: psycopg.errors.DivisionByZero("division by zero"), 400,
     "database refused a value"),
    ("OfflineAssetsMissing", lambda: OfflineAssetsMissing("no leaflet.js"), 503, "Leaflet is missing"),
]
NOT_OURS: list[tuple[str, Callable[[], Exception]]] = [
    ("InterfaceError misuse", lambda: asyncpg.exceptions.InterfaceError("connection has been released")),
    ("RuntimeError", lambda: RuntimeError("a bug")),
]
CASES: dict[str, Callable[[], Exception]] = {
    **{n: f for n, f, _, _ in _bilingual()}, **{n: f for n, f, _, _ in FAULTS}, **dict(NOT_OURS)}


@pytest.fixture(scope="module")
def errors_client(settings: Settings, sample_db: str) -> Iterator[TestClient]:
    app = create_app(settings=settings, dsn=sample_db)

    async def boom(name: str) -> None:
        raise CASES[name]()

    app.add_api_route("/__test/raise/{name}", boom, methods=["GET", "POST"])
    app.add_api_route("/__test/page/{name}", boom, dependencies=[Depends(html_error_page)])
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.request.url, r.status_code, r.text[:300])
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["type"] == "about:blank" and body["status"] == status
    assert body["instance"] == r.request.url.path
    return body


def test_every_class_of_the_table_is_covered_here() -> None:
    """A class added to the table gets a case in this file (its status is asserted below)."""
    raised = {type(f()) for f in CASES.values()}
    for cls in ERRORS:
        assert any(issubclass(r, cls) for r in raised), cls
    assert set(CLIENT_ERRORS) <= set(ERRORS) and set(DB_DOWN) <= set(ERRORS)


@pytest.mark.parametrize(("name", "status", "members"), [(n, s, m) for n, _, s, m in _bilingual()])
def test_bad_input_carries_its_status_in_both_languages(errors_client: TestClient, name: str, status: int,
                                                        members: dict[str, Any]) -> None:
    vi = _problem(errors_client.get(f"/__test/raise/{name}"), status)
    assert vi["detail"] == VI and vi["title"] == TITLES[status][0]
    assert {k: vi[k] for k in members} == members
    assert set(vi) == {"type", "title", "status", "detail", "instance", *members}
    r = errors_client.get(f"/__test/raise/{name}", params={"lang": "en"})
    en = _problem(r, status)
    assert en["detail"] == EN and en["title"] == TITLES[status][1] and r.headers["content-language"] == "en"
    by_header = errors_client.get(f"/__test/raise/{name}", headers={"accept-language": "en-GB,en;q=0.8"})
    assert _problem(by_header, status)["detail"] == EN
    assert "retry-after" not in r.headers


@pytest.mark.parametrize(("name", "status", "words"), [(n, s, w) for n, _, s, w in FAULTS])
def test_database_faults_and_refused_values(errors_client: TestClient, name: str, status: int, words: str) -> None:
    r = errors_client.get(f"/__test/raise/{name}", params={"lang": "en"})
    body = _problem(r, status)
    assert words in body["detail"], body
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    # never the driver's text
    assert not any(w in body["detail"].lower() for w in ("asyncpg", "psycopg", "division", "canceled", "down"))
    if status == 503:
        assert r.headers["retry-after"] == "5"
    vi = _problem(errors_client.get(f"/__test/raise/{name}"), status)
    assert vi["detail"] != body["detail"] and vi["title"] == TITLES[status][0]


def test_a_database_fault_during_a_write_says_nothing_was_written(errors_client: TestClient) -> None:
    for name in ("DatabaseDown", "DatabaseUnavailable", "psycopg.OperationalError"):
        body = _problem(errors_client.post(f"/__test/raise/{name}", params={"lang": "en"}), 503)
        assert "nothing was written" in body["detail"]
        assert "chưa ghi gì" in _problem(errors_client.post(f"/__test/raise/{name}"), 503)["detail"]


@pytest.mark.parametrize("name", [n for n, _ in NOT_OURS])
def test_anything_else_is_the_last_resort_500(errors_client: TestClient, name: str) -> None:
    body = _problem(errors_client.get(f"/__test/raise/{name}"), 500)
    assert body["detail"] == "Lỗi không mong đợi" and len(body["request_id"]) == 32


HTML = {"accept": "text/html,application/xhtml+xml"}


@pytest.mark.parametrize(("name", "status"), [("ExportError413", 413), ("TileError", 404),
                                              ("DatabaseUnavailable", 503), ("asyncpg.DataError", 400)])
def test_routes_that_ask_for_it_give_browsers_the_html_error_page(errors_client: TestClient, name: str,
                                                                  status: int) -> None:
    r = errors_client.get(f"/__test/page/{name}", headers=HTML, params={"lang": "en"})
    assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    assert f"HTTP {status}" in r.text and "The map cannot be shown" in r.text
    assert ("retry-after" in r.headers) == (status == 503)
    # a client that is not a browser, or asks for JSON, gets the same error as problem+json
    _problem(errors_client.get(f"/__test/page/{name}"), status)
    _problem(errors_client.get(f"/__test/page/{name}", headers=HTML, params={"f": "json"}), status)
    # other routes never answer with the page
    _problem(errors_client.get(f"/__test/raise/{name}", headers=HTML), status)


def test_map_and_folium_errors_are_pages_for_browsers(client: TestClient) -> None:
    for url, status in (("/maps/nope.html", 404), ("/maps/parcels.html?offline=maybe", 400),
                        ("/map?status=nope", 400), ("/maps/parcels.html?filter=(((", 400)):
        page = client.get(url, headers=HTML)
        assert page.status_code == status and page.headers["content-type"].startswith("text/html"), url
        assert "Không thể hiển thị bản đồ" in page.text
        problem = _problem(client.get(url), status)
        assert problem["detail"] in html.unescape(page.text), url


# -- If-None-Match: one rule ------------------------------------------------------------------------------

def _variants(tag: str) -> dict[str, bool]:
    """If-None-Match values and whether they match `tag` (a strong tag)."""
    return {tag: True, f"W/{tag}": True, f'"nope", {tag}': True, f'W/"nope",W/{tag} ': True, "*": True,
            " * ": True, tag.strip('"'): True, '"nope"': False, "": False,
            f'"nope", "{tag.strip(chr(34))}x"': False}


@pytest.mark.parametrize("path", ["/collections", "/collections/parcels?f=html",
                                  "/collections/parcels/items?limit=2", "/collections/parcels/items/1",
                                  "/collections/parcels/queryables"])
def test_documents_and_items_answer_304_by_the_one_rule(client: TestClient, path: str) -> None:
    first = client.get(path)
    assert first.status_code == 200
    tag = first.headers["etag"]
    for inm, match in _variants(tag).items():
        r = client.get(path, headers={"if-none-match": inm} if inm else {})
        assert r.status_code == (304 if match else 200), (path, inm)
        assert r.headers["etag"] == tag
        if match:
            assert r.content == b"" and r.headers["cache-control"] == first.headers["cache-control"]


PARCEL = "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c FROM parcels WHERE id = %s) s"


def test_tiles_and_the_fast_path_answer_304_by_the_one_rule(client: TestClient, sample_db: str) -> None:
    t = tile_of(sample_db, PARCEL, 16, 40)
    fast = f"/collections/parcels/tiles/WebMercatorQuad/16/{t.x}/{t.y}"
    route = fast + "?lang=vi"                 # a query string: the route, not the fast path
    for path in (fast, route, fast):          # a miss, then hits
        identity = get_tile(client, path)
        gz = client.get(path, headers={"accept-encoding": "gzip"})
        assert identity.status_code == gz.status_code == 200
        assert identity.headers["etag"] == gz.headers["etag"][:-1] + '-i"'
        for tag in (identity.headers["etag"], gz.headers["etag"]):
            for inm, match in _variants(tag).items():
                for enc in ("identity", "gzip"):   # either encoding's tag names the same tile
                    r = client.get(path, headers={"accept-encoding": enc, **({"if-none-match": inm} if inm else {})})
                    assert r.status_code == (304 if match else 200), (path, inm, enc)


@pytest.mark.parametrize(("header", "tag", "same", "expected"), [
    (None, '"a"', (), False), ("*", '"a"', (), True), ('"a"', '"a"', (), True), ('W/"a"', '"a"', (), True),
    ('"b", W/"a"', '"a"', (), True), ('"b"', '"a"', (), False), ('"a-i"', '"a"', ('"a-i"',), True),
    ('"a-i"', '"a"', (), False), ('"a", *', '"b"', (), False),
])
def test_etag_matches_table(header: str | None, tag: str, same: tuple[str, ...], expected: bool) -> None:
    assert etag_matches(header, tag, *same) is expected
