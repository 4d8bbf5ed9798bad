"""Fuzz target: CQL2 (text and JSON) -> SQL over a layer's real queryables (issue 8).

Property: `to_sql` either raises `CqlError` (a 400 on every face) or returns SQL that PostgreSQL runs
(`SELECT count(*) FROM <200 rows of the table> t WHERE <sql>` with the parameters, through asyncpg like the API, in a
rolled-back transaction with a short statement_timeout). Nothing else: no other exception type, no
RecursionError, no crash of the process (a segfault in cql2-rs would end the test run).

Brief under `make test` (hypothesis profile "ci"); `HYPOTHESIS_PROFILE=fuzz` runs thousands of examples.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Iterator
from typing import Any

import asyncpg
import cql2 as native
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from layers.catalog.registry import LAYERS, Layer
from layers.query.cql2 import CqlError, to_sql
from layers.settings import FilterLimits

pytestmark = pytest.mark.fuzz
LIM = FilterLimits()
FUZZ_LAYERS = [LAYERS["parcels"], LAYERS["auction_plots"], LAYERS["growing_areas"]]


class Db:
    """One asyncpg connection on its own event loop (hypothesis calls the test synchronously)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(
            asyncpg.connect(dsn, server_settings={"statement_timeout": "3s", "jit": "off"}))

    def count(self, layer: Layer, sql: str, params: list[Any]) -> None:
        async def run() -> None:
            tr = self.conn.transaction()
            await tr.start()
            try:
                # the condition runs on real rows (a sample keeps the brief profile brief)
                await self.conn.fetchval(
                    f'SELECT count(*) FROM (SELECT * FROM "{layer.table}" LIMIT 200) t WHERE {sql}',  # noqa: S608
                    *params)
            finally:
                await tr.rollback()
        self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


@pytest.fixture(scope="module")
def db(sample_db: str) -> Iterator[Db]:
    d = Db(sample_db)
    yield d
    d.close()


# -- strategies ---------------------------------------------------------------------------------------------

HUGE_INTS = st.sampled_from([2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 10**400, -(10**400)])
NUMBERS = st.one_of(st.integers(-(10**6), 10**6), HUGE_INTS,
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e-308, 0.1]))
TEXTS = st.one_of(st.text(max_size=20), st.sampled_from(["", "\x00", "a\x00b", "'", "''", "%", "_", "\\",
                                                         "sold", "ODT", "¹", "٣", "\ud7ff", "𝔘"]))
DATES = st.one_of(st.dates().map(lambda d: {"date": d.isoformat()}),
                  st.datetimes().map(lambda t: {"timestamp": t.isoformat() + "Z"}),
                  st.sampled_from([{"date": "0000-01-01"}, {"timestamp": "9999-12-31T23:59:59+14:00"},
                                   {"date": "2025-02-30"}, {"timestamp": "x"}, {"date": 5}]))
POINTS = st.tuples(NUMBERS, NUMBERS).map(list)
GEOMS = st.one_of(
    POINTS.map(lambda c: {"type": "Point", "coordinates": c}),
    st.lists(POINTS, min_size=0, max_size=6).map(lambda cs: {"type": "LineString", "coordinates": cs}),
    st.lists(POINTS, min_size=0, max_size=6).map(lambda cs: {"type": "Polygon", "coordinates": [cs + cs[:1]]}),
    st.just({"type": "Polygon", "coordinates": [[[105.0, 10.0], [107.0, 10.0], [107.0, 11.0], [105.0, 10.0]]]}),
    st.lists(NUMBERS, min_size=3, max_size=7).map(lambda b: {"bbox": b}),
    st.sampled_from([{"type": "Nope", "coordinates": []}, {"type": "Point"}, {"type": "Point", "coordinates": "x"}]),
)
LITERALS = st.one_of(NUMBERS, TEXTS, st.booleans(), DATES, st.none())


def props(layer: Layer) -> st.SearchStrategy[dict[str, str]]:
    names = [f.name for f in layer.queryables] + ["geometry", "id", "nope", "certificate_no", "\x00", "t.x\"--"]
    return st.sampled_from(names).map(lambda n: {"property": n})


def scalar(layer: Layer) -> st.SearchStrategy[Any]:
    base = st.one_of(props(layer), LITERALS)
    return st.recursive(base, lambda inner: st.one_of(
        st.builds(lambda op, a, b: {"op": op, "args": [a, b]}, st.sampled_from(["+", "-", "*", "/", "%", "^"]),
                  inner, inner),
        st.builds(lambda op, a: {"op": op, "args": [a]}, st.sampled_from(["casei", "lower", "upper", "accenti"]),
                  inner),
    ), max_leaves=6)


def typed_value(kind: str | None) -> st.SearchStrategy[Any]:
    """A literal of the property's type, with its edge values (most filters people write are well-typed)."""
    if kind == "integer":
        return st.one_of(st.integers(-(2**31), 2**31), HUGE_INTS)
    if kind == "number":
        return NUMBERS
    if kind == "date":
        return st.one_of(st.dates().map(lambda d: {"date": d.isoformat()}),
                         st.sampled_from([{"date": "0000-01-01"}, {"date": "2025-02-30"}, {"date": 5}]))
    if kind == "date-time":
        return DATES
    if kind == "boolean":
        return st.booleans()
    return TEXTS


def typed_leaf(layer: Layer) -> st.SearchStrategy[Any]:
    def build(draw: st.DrawFn) -> Any:
        f = draw(st.sampled_from(layer.queryables))
        prop = {"property": f.name}
        if f.type == "array":
            op = draw(st.sampled_from(["a_contains", "a_overlaps", "a_equals", "a_containedby", "="]))
            vals = draw(st.lists(typed_value(f.item_type), min_size=1, max_size=3))
            return {"op": op, "args": [prop, vals[0] if op == "=" else vals]}
        v = typed_value(f.type)
        op = draw(st.sampled_from(["=", "<>", "<", ">=", "between", "in", "like", "isnull", "arith"]))
        if op == "between":
            return {"op": op, "args": [prop, draw(v), draw(v)]}
        if op == "in":
            return {"op": op, "args": [prop, draw(st.lists(v, min_size=1, max_size=4))]}
        if op == "isnull":
            return {"op": op, "args": [prop]}
        if op == "like":
            return {"op": op, "args": [{"op": "casei", "args": [prop]}, draw(TEXTS)]}
        if op == "arith":
            return {"op": ">", "args": [{"op": draw(st.sampled_from(["+", "-", "*", "/"])), "args": [prop, draw(v)]},
                                        draw(v)]}
        return {"op": op, "args": [prop, draw(v)]}
    return st.composite(build)()


def predicate(layer: Layer) -> st.SearchStrategy[Any]:
    s = scalar(layer)
    leaf = st.one_of(
        typed_leaf(layer), typed_leaf(layer), typed_leaf(layer),
        st.builds(lambda op, a, b: {"op": op, "args": [a, b]},
                  st.sampled_from(["=", "<>", "<", "<=", ">", ">=", "like"]), s, s),
        st.builds(lambda a, lo, hi: {"op": "between", "args": [a, lo, hi]}, s, s, s),
        st.builds(lambda a, vs: {"op": "in", "args": [a, vs]}, s, st.lists(LITERALS, max_size=4)),
        st.builds(lambda a: {"op": "isnull", "args": [a]}, s),
        st.builds(lambda op, a, b: {"op": op, "args": [a, b]},
                  st.sampled_from(["s_intersects", "s_within", "s_contains", "s_disjoint", "s_equals"]),
                  st.one_of(props(layer), GEOMS), st.one_of(props(layer), GEOMS)),
        st.builds(lambda op, a, b, d: {"op": op, "args": [a, b, d]}, st.sampled_from(["s_dwithin", "s_beyond"]),
                  st.one_of(props(layer), GEOMS), GEOMS, NUMBERS),
        st.builds(lambda op, a, b: {"op": op, "args": [a, b]},
                  st.sampled_from(["t_after", "t_before", "t_during", "t_intersects", "t_overlaps", "t_meets"]),
                  st.one_of(props(layer), DATES,
                            st.tuples(st.one_of(DATES.map(lambda d: next(iter(d.values()))), st.just("..")),
                                      st.one_of(DATES.map(lambda d: next(iter(d.values()))), st.just("..")))
                            .map(lambda iv: {"interval": list(iv)})),
                  st.one_of(props(layer), DATES)),
        st.builds(lambda op, a, vs: {"op": op, "args": [a, vs]},
                  st.sampled_from(["a_contains", "a_equals", "a_overlaps", "a_containedby"]), props(layer),
                  st.lists(LITERALS, max_size=4)),
        st.booleans(),
    )
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda op, xs: {"op": op, "args": xs}, st.sampled_from(["and", "or"]),
                  st.lists(inner, min_size=1, max_size=4)),
        st.builds(lambda a: {"op": "not", "args": [a]}, inner),
    ), max_leaves=8)


def deep(draw: st.DrawFn, layer: Layer) -> str:
    """Nesting near and beyond the limits, in the shapes that crashed or stalled cql2-rs."""
    n = draw(st.sampled_from([LIM.max_depth - 1, LIM.max_depth, LIM.max_depth + 1, LIM.max_groups,
                              LIM.max_groups + 1, 40, 300, 1600]))
    leaf = "area_m2 = 1"
    shape = draw(st.sampled_from(["paren", "not", "neg", "plus", "mixed", "unclosed", "json"]))
    if shape == "paren":
        return "(" * n + leaf + ")" * n
    if shape == "not":
        return "NOT " * n + leaf
    if shape == "neg":
        return "area_m2 = " + "-" * n + "1"
    if shape == "plus":
        return "area_m2 = " + "+".join(["1"] * n)
    if shape == "mixed":
        return "(NOT (area_m2 = 1 AND " * (n // 2) + "area_m2 = " + "))" * (n // 2)
    if shape == "unclosed":
        return "(" * n + leaf
    return '{"op":"not","args":[' * n + '{"op":"=","args":[{"property":"area_m2"},1]}' + "]}" * n


def check(db: Db, layer: Layer, filter_: Any, lang: str) -> None:
    try:
        sql, params = to_sql(layer, filter_, lang)
    except CqlError as exc:
        assert exc.vi and exc.en and exc.status == 400
        event("refused (CqlError)")
        return
    try:
        db.count(layer, sql, params)
        event("ran in PostgreSQL")
    except (asyncpg.exceptions.DataError, asyncpg.exceptions.InternalServerError) as exc:
        # a value PostgreSQL/PostGIS refuses (e.g. an invalid GeoJSON ring): the API answers 400 for these
        # (api/features.py, api/map.py); it must be the server's refusal, not a client-side encoding error
        assert getattr(exc, "sqlstate", None), f"client-side error for {filter_!r}: {exc!r} / {sql} / {params}"
        event(f"refused by PostgreSQL ({type(exc).__name__})")


# -- targets --------------------------------------------------------------------------------------------------

@given(data=st.data())
def test_fuzz_cql2_json_trees(db: Db, data: st.DataObject) -> None:
    layer = data.draw(st.sampled_from(FUZZ_LAYERS))
    tree = data.draw(predicate(layer))
    as_text = data.draw(st.booleans())
    check(db, layer, json.dumps(tree) if as_text and _dumpable(tree) else tree, "cql2-json")


@given(data=st.data())
def test_fuzz_cql2_text(db: Db, data: st.DataObject) -> None:
    layer = data.draw(st.sampled_from(FUZZ_LAYERS))
    tree = data.draw(predicate(layer))
    try:
        text = native.Expr(tree).to_text()
    except Exception:   # noqa: BLE001 - a tree cql2-rs cannot print: nothing to test as text
        assume(False)
        return
    mutate = data.draw(st.sampled_from(["none", "cut", "insert", "dup"]))
    if mutate == "cut" and text:
        text = text[: data.draw(st.integers(0, len(text) - 1))]
    elif mutate == "insert":
        i = data.draw(st.integers(0, len(text)))
        text = text[:i] + data.draw(st.text(alphabet=string.printable + "()[]'\"\x00¹", max_size=8)) + text[i:]
    elif mutate == "dup":
        text = f"({text}) AND NOT ({text})"
    check(db, layer, text, "cql2-text")


@given(data=st.data())
def test_fuzz_deep_and_raw_filters(db: Db, data: st.DataObject) -> None:
    layer = data.draw(st.sampled_from(FUZZ_LAYERS))
    which = data.draw(st.sampled_from(["deep", "raw", "rawjson"]))
    if which == "deep":
        text = deep(data.draw, layer)
        check(db, layer, text, "cql2-json" if text.startswith("{") else "cql2-text")
    elif which == "raw":
        check(db, layer, data.draw(st.text(max_size=200)), "cql2-text")
    else:
        check(db, layer, data.draw(st.text(alphabet='{}[]",:0123456789.-eEtruefalsnop ', max_size=200)),
              "cql2-json")


def _dumpable(tree: Any) -> bool:
    try:
        json.dumps(tree, allow_nan=False)
    except ValueError:
        return False
    return True


def test_found_by_fuzzing_between_property_bounds_of_another_type() -> None:
    """BETWEEN with property bounds skipped the type check: `numeric >= character varying` (a 500)."""
    layer = LAYERS["parcels"]
    for tree in ({"op": "between", "args": [0, {"property": "commune_code"}, {"property": "commune_code"}]},
                 {"op": "between", "args": [{"property": "commune_code"}, {"property": "commune_code"},
                                            {"property": "map_sheet"}]}):
        with pytest.raises(CqlError, match="BETWEEN"):
            to_sql(layer, tree, "cql2-json")
    with pytest.raises(CqlError, match="LIKE"):     # the same gap, found by reading
        to_sql(layer, "address LIKE map_sheet")


def test_found_by_fuzzing_unused_interval_bound(db: Db) -> None:
    """T_BEFORE(INTERVAL('2000-01-01', '..'), DATE(...)) left $1 out of the SQL: PostgreSQL could not type it
    (IndeterminateDatatypeError, a 500 on items)."""
    layer = LAYERS["auction_plots"]
    for tree in ({"op": "t_before", "args": [{"interval": ["2000-01-01", ".."]}, {"date": "2000-01-01"}]},
                 {"op": "t_meets", "args": [{"interval": ["2000-01-01", "2001-01-01"]},
                                            {"interval": ["2001-01-01", "2002-01-01"]}]},
                 {"op": "t_after", "args": [{"property": "auction_date"}, {"interval": ["..", "2020-01-01"]}]}):
        sql, params = to_sql(layer, tree, "cql2-json")
        db.count(layer, sql, params)
