"""Bounded filter parsing (issue 8): a hostile CQL2 filter never reaches the native parser (cql2-rs overflows
its stack and kills the process on deep nesting, and backtracks exponentially on nested parentheses around
a syntax error); it is refused with a 400 problem+json naming the limit, on every face. Unicode digits and
oversized numbers in `?field=value` filters and CRS names are 400s too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from layers.catalog.registry import get_layer
from layers.query.cql2 import CqlError, check_json_text, check_text, check_tree, parse, to_sql
from layers.settings import FilterLimits, get_filter_limits
from tests.conftest import table_fingerprint

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = "application/problem+json"
LIM = FilterLimits()

# the requests of the issue: each killed the process (segfault in cql2-rs) before the limits
KILLERS = {
    "parens-1600": "(" * 1600 + "status = 'sold'" + ")" * 1600,
    "not-8000": "NOT " * 8000 + "status = 'sold'",
    "plus-12000": "area_m2 = " + "+".join(["1"] * 12000),
    # small enough for the byte limit, deep enough to crash cql2-rs on a 2 MiB thread stack
    "not-2000-compact": "NOT(" * 2000 + "status='sold'" + ")" * 2000,
    "json-3000": '{"op":"not","args":[' * 3000 + '{"op":"=","args":[{"property":"status"},"sold"]}' + "]}" * 3000,
    # exponential backtracking in cql2-rs: 17 s at 20 levels, hours at 30
    "backtrack-30": "(NOT (area_m2 = 1 AND " * 15 + "status = " + "))" * 15,
    "unclosed-40": "(" * 40 + "status = 'sold'",
}


def _lang(text: str) -> str:
    return "cql2-json" if text.startswith("{") else "cql2-text"


def _refused(text: str) -> CqlError:
    with pytest.raises(CqlError) as exc:
        parse(text, _lang(text))
    return exc.value


@pytest.mark.parametrize("name", sorted(KILLERS))
def test_killer_filters_are_refused_before_the_native_parser(name: str) -> None:
    err = _refused(KILLERS[name])
    assert err.status == 400
    assert err.vi != err.en and err.vi and err.en


def test_each_limit_is_named_with_its_value() -> None:
    cases = {
        "MAX_BYTES": "status = '" + "x" * LIM.max_bytes + "'",
        "MAX_DEPTH": "NOT " * (LIM.max_depth + 1) + "status = 'sold'",
        "MAX_GROUPS": "(" * (LIM.max_groups + 1) + "status = 'sold'" + ")" * (LIM.max_groups + 1),
        "MAX_TERMS": " AND ".join(["area_m2 > 1"] * LIM.max_terms),
    }
    for env, text in cases.items():
        err = _refused(text)
        value = getattr(LIM, env.lower())
        for msg in (err.vi, err.en):
            assert f"DATSO_FILTER_{env}" in msg and str(value) in msg, msg
    # unary signs chain like NOT; so does arithmetic once parsed (one tree level per operator)
    assert "MAX_DEPTH" in _refused("area_m2 = " + "-" * (LIM.max_depth + 1) + "1").en
    assert "arithmetic" in _refused("area_m2 = " + "+".join(["1"] * (2 * LIM.max_depth + 4))).en


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATSO_FILTER_MAX_BYTES", "40")
    monkeypatch.setenv("DATSO_FILTER_MAX_DEPTH", "3")
    lim = FilterLimits()
    assert (lim.max_bytes, lim.max_depth, lim.max_groups) == (40, 3, 8)
    with pytest.raises(CqlError, match="MAX_BYTES"):
        check_text("status = 'sold' AND area_m2 > 500 AND area_m2 < 900", lim)
    with pytest.raises(CqlError, match="at most 3"):
        check_text("NOT NOT NOT NOT status = 'x'", lim)
    check_text("NOT NOT status = 'x'", lim)


@pytest.mark.parametrize("text", [
    "status = 'sold'",
    "((status = 'sold') AND (area_m2 > 500 OR NOT (land_use_code = 'ODT')))",
    "status = '((((((((((((' AND address LIKE '%))%'",          # brackets in strings do not count
    "status = 'it''s (' AND \"status\" = 'x'",
    "S_INTERSECTS(geometry, GEOMETRYCOLLECTION(MULTIPOLYGON(((105 10, 106 10, 106 11, 105 10)))))",
    "area_m2 > -5 AND area_m2 < 1e6 AND area_m2 <> -(3)",
    "NOT " * 10 + "status = 'sold'",
    "status IN (" + ",".join(f"'s{i}'" for i in range(600)) + ")",    # literals do not count as terms
    "area_m2 = 1+2+3+4+5+6+7+8+9+10",
])
def test_real_filters_pass_the_limits(text: str) -> None:
    check_text(text)
    assert isinstance(parse(text), dict)


def test_unbalanced_and_unterminated_text_is_refused_with_a_position() -> None:
    assert "line 1, column 1" in _refused("(status = 'sold'").en
    assert "line 2, column 5" in _refused("status = 'sold'\nAND ) area_m2 > 1").en
    assert "not closed" in _refused("status = 'sold").en
    assert "line 1, column 17" in _refused("status IN ([1, 2)").en
    assert "invalid" in _refused("status = '\udcff'").en      # a lone surrogate from a URL


def test_json_limits_on_text_and_on_dicts() -> None:
    with pytest.raises(CqlError, match="MAX_DEPTH"):
        check_json_text("[" * 10_000)                          # json.loads would recurse
    check_json_text('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"["}')  # in a string
    deep: dict[str, Any] = {"op": "=", "args": [{"property": "status"}, "sold"]}
    for _ in range(5000):
        deep = {"op": "not", "args": [deep]}
    with pytest.raises(CqlError, match="MAX_DEPTH"):
        parse(deep, "cql2-json")
    loop: list[Any] = []
    loop.append(loop)                                          # a cycle is merely too deep
    with pytest.raises(CqlError):
        check_tree({"op": "in", "args": [{"property": "status"}, loop]})
    wide = {"op": "and", "args": [{"op": "=", "args": [{"property": "status"}, "x"]}] * (LIM.max_terms + 1)}
    with pytest.raises(CqlError, match="MAX_TERMS"):
        parse(wide, "cql2-json")


def _run_with_frames_left(frames: int, fn: Any) -> Any:
    """Run fn with only `frames` Python frames of head-room (as deep inside a framework's call stack)."""
    def depth() -> int:
        f, n = sys._getframe(), 0
        while f is not None:
            f, n = f.f_back, n + 1      # type: ignore[assignment]
        return n
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth() + frames)
    try:
        return fn()
    finally:
        sys.setrecursionlimit(old)


def test_translator_never_raises_recursion_error_within_the_limits() -> None:
    layer = get_layer("auction_plots")
    deepest_text = [
        "NOT " * (LIM.max_depth - 1) + "(status = 'sold')",
        "(" * (LIM.max_groups - 1) + "NOT " * (LIM.max_depth - LIM.max_groups) + "(area_m2 > 1)"
        + ")" * (LIM.max_groups - 1),
        "area_m2 = " + "+".join(["1"] * (LIM.max_depth + 2)),
        "area_m2 = " + "-" * LIM.max_depth + "1",
    ]
    for text in deepest_text:
        sql, _ = _run_with_frames_left(150, lambda t=text: to_sql(layer, t))
        assert sql
    tree: dict[str, Any] = {"op": "=", "args": [{"property": "status"}, "sold"]}
    for _ in range(LIM.max_depth):
        tree = {"op": "not", "args": [tree]}
    assert _run_with_frames_left(150, lambda: to_sql(layer, tree, "cql2-json"))[0].count("NOT") == LIM.max_depth
    for _ in range(5):      # cql2-json: 2 * max_depth + 8 nested objects/arrays, i.e. ~4 levels of slack
        tree = {"op": "not", "args": [tree]}
    with pytest.raises(CqlError, match="MAX_DEPTH"):
        _run_with_frames_left(150, lambda: to_sql(layer, json.dumps(tree), "cql2-json"))


# -- every face ---------------------------------------------------------------------------------------------

def _faces() -> list[tuple[str, dict[str, str]]]:
    from tiles.tms import get_tms  # noqa: PLC0415

    t = get_tms("WebMercatorQuad").tile(106.3, 10.2, 12)
    return [
        ("/collections/auction_plots/items", {}),
        ("/collections/auction_plots/items", {"f": "html"}),
        ("/collections/auction_plots/items", {"f": "csv"}),
        (f"/collections/auction_plots/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}", {}),
        (f"/tiles/{t.z}/{t.x}/{t.y}.mvt", {"layers": "auction_plots"}),
        ("/maps/auction_plots.html", {}),
    ]


def _fits_a_url(text: str) -> bool:
    return len(httpx.QueryParams({"filter": text}).__str__()) < 60_000


def _assert_problem(r: httpx.Response, *needles: str) -> dict[str, Any]:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    for n in needles:
        assert n in body["detail"], body["detail"]
    return dict(body)


def test_every_face_refuses_the_killers_with_a_400(client: TestClient, sample_db: str) -> None:
    before = {t: table_fingerprint(sample_db, t) for t in ("auction_plots", "history")}
    for url, extra in _faces():
        for name, text in KILLERS.items():
            if not _fits_a_url(text):
                continue          # httpx refuses to send it (parse() is tested with it above)
            r = client.get(url, params={**extra, "filter": text, "filter-lang": _lang(text), "lang": "en"})
            body = _assert_problem(r)
            assert "filter" in body["detail"].lower(), (url, name, body["detail"])
        if "layers" not in extra:         # the multi-layer tile refuses any filter
            r = client.get(url, params={**extra, "filter": "NOT " * 40 + "status = 'sold'"})
            _assert_problem(r, "DATSO_FILTER_MAX_DEPTH", "16")         # Vietnamese by default
    assert client.get("/health").status_code == 200
    assert {t: table_fingerprint(sample_db, t) for t in ("auction_plots", "history")} == before


def test_cli_map_export_refuses_a_killer_filter(sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "x.html"
    env = {**os.environ, "DATABASE_URL": sample_db}
    res = subprocess.run([sys.executable, "-m", "cli.main", "map", "export", "--layer", "auction_plots",
                          "--filter", KILLERS["not-2000-compact"], "--out", str(out)], env=env,
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2, (res.returncode, res.stderr[-500:])   # bad input (was -11, SIGSEGV)
    assert "DATSO_FILTER_MAX" in res.stdout + res.stderr
    assert not out.exists()


def test_a_served_process_survives_the_killer_requests(sample_db: str) -> None:
    """`datso serve` in its own process: the requests that segfaulted it get 400s and it keeps answering."""
    port = 8101
    env = {**os.environ, "DATABASE_URL": sample_db, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(300):
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                time.sleep(0.1)
            for url, extra in _faces():
                for name, text in KILLERS.items():
                    if not _fits_a_url(text):
                        continue
                    r = http.get(url, params={**extra, "filter": text, "filter-lang": _lang(text)})
                    # 400 from the app; a request head over h11's 16 KB is refused by uvicorn (also a 400)
                    assert r.status_code == 400, (url, name, r.status_code, r.text[:200])
                    assert proc.poll() is None, f"the server died on {name} at {url}"
            assert http.get("/health").status_code == 200
            r = http.get("/collections/auction_plots/items", params={"filter": "status = 'sold'", "limit": 1})
            assert r.status_code == 200 and r.json()["type"] == "FeatureCollection"
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- numbers and CRS names in query strings --------------------------------------------------------------

@pytest.mark.parametrize("value", ["¹", "٣", "9" * 30, str(2**63), "1_000", " 1", "1e3"])
def test_integer_equality_filters_are_400_on_items_tiles_and_exports(client: TestClient, value: str) -> None:
    for url, extra in _faces():
        if "f" in extra or "layers" in extra:      # the multi-layer tile takes no filters at all
            continue
        r = client.get(url.replace("auction_plots", "parcels"),
                       params={**extra, "map_sheet": value, "lang": "en"})
        _assert_problem(r, "map_sheet")


def test_big_integers_within_bigint_are_no_match_not_500(client: TestClient) -> None:
    for url, extra in _faces():
        if "f" in extra or "layers" in extra:      # the multi-layer tile takes no filters at all
            continue
        url = url.replace("auction_plots", "parcels")
        r = client.get(url, params={**extra, "map_sheet": str(2**40)})
        assert r.status_code in (200, 204), (url, r.status_code, r.text[:200])


@pytest.mark.parametrize("value", ["1e99999", "NaN", "-Infinity", "١٢", "1e"])
def test_number_equality_filters_are_400(client: TestClient, value: str) -> None:
    r = client.get("/collections/parcels/items", params={"area_m2": value, "lang": "en"})
    _assert_problem(r, "area_m2")


@pytest.mark.parametrize("param", ["crs", "bbox-crs", "filter-crs"])
@pytest.mark.parametrize("value", ["¹", "EPSG:¹", "http://www.opengis.net/def/crs/EPSG/0/²", "٤٣٢٦"])
def test_unicode_digits_in_crs_names_are_400(client: TestClient, param: str, value: str) -> None:
    params = {param: value, "lang": "en"}
    if param == "bbox-crs":
        params["bbox"] = "0,0,1,1"
    if param == "filter-crs":
        params["filter"] = "S_INTERSECTS(geometry, POINT(0 0))"
    r = client.get("/collections/parcels/items", params=params)
    _assert_problem(r)


def test_get_crs_unicode_digits() -> None:
    from gis.crs import CrsError, get_crs  # noqa: PLC0415

    for text in ("¹", "EPSG:¹²", "urn:ogc:def:crs:EPSG::³", "٤٣٢٦"):
        with pytest.raises(CrsError):
            get_crs(text)
    assert get_crs("EPSG:4326").srid == 4326


def test_module_limits_reads_environment_once() -> None:
    assert get_filter_limits() is get_filter_limits()


@pytest.mark.parametrize("text", ["area_m2 / 0 > 1", "S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))"])
def test_a_filter_value_postgresql_refuses_is_400_on_every_face(client: TestClient, text: str) -> None:
    """Division by zero reached the tile endpoint as a 500 (items and exports already said 400)."""
    for url, extra in _faces():
        if "layers" in extra:
            continue
        r = client.get(url, params={**extra, "filter": text, "lang": "en"})
        assert r.status_code in (400, 200, 204), (url, text, r.status_code, r.text[:200])
        if r.status_code == 400:
            assert r.headers["content-type"].startswith(PROBLEM)
    r = client.get(_faces()[3][0], params={"filter": "area_m2 / 0 > 1", "lang": "en"})
    _assert_problem(r, "refused")
