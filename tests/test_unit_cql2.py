"""layers/query/cql2.py as a unit: parse -> Translator -> (SQL fragment, parameters), table-driven, on the
registry's growing_areas layer (text, number, date, array, geometry fields). A few fragments are run on the
real test database to check PostgreSQL accepts them as written."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from layers.catalog.registry import get_layer
from layers.query.cql2 import CqlError, Translator, parse, to_sql
from layers.settings import FilterLimits

GA = get_layer("growing_areas")
UTC = dt.UTC

# (cql2-text, expected SQL with column_prefix "t." and param_offset 0, expected parameters)
CASES: list[tuple[str, str, list[Any]]] = [
    ("crop = 'pomelo'", '(t."crop" = $1::text)', ["pomelo"]),
    ("crop <> 'pomelo'", '(t."crop" <> $1::text)', ["pomelo"]),
    ("area_m2 > 500", '(t."area_m2" > $1::numeric)', [Decimal("500")]),
    ("area_m2 <= 1.5", '(t."area_m2" <= $1::numeric)', [Decimal("1.5")]),
    ("id >= 3", '(t."id" >= $1::bigint)', [3]),
    ("owner LIKE 'Ng%'", '(t."owner" LIKE $1::text)', ["Ng%"]),
    ("area_m2 BETWEEN 10 AND 20", '(t."area_m2" BETWEEN $1::numeric AND $2::numeric)', [Decimal(10), Decimal(20)]),
    ("crop IN ('pomelo', 'durian')", '(t."crop" = ANY($1::text[]))', [["pomelo", "durian"]]),   # one array parameter
    ("variety IS NULL", None, []),
    ("NOT (crop = 'rice')", '(NOT (t."crop" = $1::text))', ["rice"]),
    ("crop = 'rice' AND area_m2 > 1", '((t."crop" = $1::text) AND (t."area_m2" > $2::numeric))', ["rice", Decimal(1)]),
    ("crop = 'rice' OR crop = 'mango'", '((t."crop" = $1::text) OR (t."crop" = $2::text))', ["rice", "mango"]),
    ("CASEI(owner) = CASEI('An')", '(lower(t."owner") = lower($1::text))', ["An"]),
    ("LOWER(owner) = 'an'", '(lower(t."owner") = $1::text)', ["an"]),
    ("UPPER(owner) = 'AN'", '(upper(t."owner") = $1::text)', ["AN"]),
    ("area_m2 * 2 > 100", '((t."area_m2" * $1::numeric) > $2::numeric)', [Decimal(2), Decimal(100)]),
    ("area_m2 + expected_yield_t < 7", '((t."area_m2" + t."expected_yield_t") < $1::numeric)', [Decimal(7)]),
    ("valid_from > DATE('2024-01-01')", '(t."valid_from" > $1::date)', [dt.date(2024, 1, 1)]),
    ("A_CONTAINS(markets, ('CN', 'US'))", '(t."markets"::text[] @> $1::text[])', [["CN", "US"]]),
    ("A_OVERLAPS(markets, ('CN'))", '(t."markets"::text[] && $1::text[])', [["CN"]]),
    ("A_CONTAINEDBY(markets, ('CN', 'EU'))", '(t."markets"::text[] <@ $1::text[])', [["CN", "EU"]]),
    ("A_EQUALS(markets, ('CN'))", '(t."markets"::text[] = $1::text[])', [["CN"]]),
    ("markets = 'CN'", '($1::text = ANY(t."markets"))', ["CN"]),
    ("S_INTERSECTS(geometry, BBOX(105, 20, 106, 21))",
     # an envelope is tested by the index first, and inside it (@) without the exact test
     '(t."geom" && ST_SetSRID(ST_MakeEnvelope($1::float8, $2::float8, $3::float8, $4::float8), 4326) AND '
     '(t."geom" @ ST_SetSRID(ST_MakeEnvelope($1::float8, $2::float8, $3::float8, $4::float8), 4326) OR '
     'ST_Intersects(t."geom", ST_SetSRID(ST_MakeEnvelope($1::float8, $2::float8, $3::float8, $4::float8), 4326))))',
     [105.0, 20.0, 106.0, 21.0]),
    ("S_WITHIN(geometry, POLYGON((105 20, 106 20, 106 21, 105 20)))",
     'ST_Within(t."geom", ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326))', None),
    ("S_DWITHIN(geometry, POINT(105.8 21), 2, kilometers)",
     'ST_DWithin(t."geom"::geography, ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326)::geography, $2::float8)',
     None),
    ("T_AFTER(valid_from, TIMESTAMP('2024-01-01T00:00:00Z'))",
     '(t."valid_from"::timestamptz > $1::timestamptz::timestamptz)', [dt.datetime(2024, 1, 1, tzinfo=UTC)]),
    ("T_INTERSECTS(INTERVAL(valid_from, valid_to), INTERVAL('2024-01-01', '..'))",
     "((t.\"valid_from\"::timestamptz <= 'infinity'::timestamptz AND "
     "t.\"valid_to\"::timestamptz >= $1::timestamptz))", [dt.date(2024, 1, 1)]),
]


@pytest.mark.parametrize(("text", "want_sql", "want_params"), CASES, ids=[c[0] for c in CASES])
def test_text_to_sql(text: str, want_sql: str | None, want_params: list[Any] | None) -> None:
    sql, params = to_sql(GA, text, "cql2-text", column_prefix="t.")
    if want_sql is not None:
        assert sql == want_sql
    if want_params is not None:
        assert params == want_params
    assert "'" not in sql.replace("'infinity'", "").replace("'-infinity'", "")   # no literal reached the SQL


def test_in_and_is_null_shapes() -> None:
    sql, params = to_sql(GA, "crop NOT IN ('pomelo', 'durian')", column_prefix="t.")
    assert 't."crop" = ANY($1::text[])' in sql and "NOT" in sql
    assert params == [["pomelo", "durian"]]
    sql, params = to_sql(GA, "variety IS NULL")
    assert '"variety" IS NULL' in sql and params == []


def test_dwithin_converts_units_and_json_means_the_same() -> None:
    _, params = to_sql(GA, "S_DWITHIN(geometry, POINT(105.8 21), 2, kilometers)")
    assert params[1] == 2000.0
    text = to_sql(GA, "crop = 'rice' AND area_m2 > 3")
    tree = parse("crop = 'rice' AND area_m2 > 3")
    assert to_sql(GA, tree, "cql2-json") == text
    assert to_sql(GA, '{"op": "=", "args": [{"property": "crop"}, "rice"]}', "cql2-json")[1] == ["rice"]


def test_param_offset_and_psycopg_style() -> None:
    sql, params = to_sql(GA, "crop = 'rice' AND area_m2 > 3", param_offset=4)
    assert "$5::text" in sql and "$6::numeric" in sql and params == ["rice", Decimal(3)]
    tr = Translator(GA, style="psycopg", param_offset=1)
    sql = tr.predicate(parse("crop = 'rice' AND area_m2 > 3"))
    assert sql == '(("crop" = %(p2)s::text) AND ("area_m2" > %(p3)s::numeric))'
    assert tr.named_params() == {"p2": "rice", "p3": Decimal(3)}
    with pytest.raises(ValueError, match="placeholder style"):
        Translator(GA, style="qmark")


def test_filter_crs_swaps_axes_and_transforms() -> None:
    sql, params = to_sql(GA, "S_INTERSECTS(geometry, BBOX(20, 105, 21, 106))",
                         filter_crs="http://www.opengis.net/def/crs/EPSG/0/4326")
    assert params == [105.0, 20.0, 106.0, 21.0]      # EPSG:4326 is lat/lon: swapped to x/y
    sql, _ = to_sql(GA, "S_INTERSECTS(geometry, BBOX(0, 0, 1, 1))",
                    filter_crs="http://www.opengis.net/def/crs/EPSG/0/3857")
    assert "ST_Transform(ST_SetSRID(" in sql and ", 3857), 4326)" in sql


REFUSALS: list[tuple[Any, str, str]] = [
    ("nope = 1", "cql2-text", "Unknown property 'nope' for collection 'growing_areas'"),
    ("crop = 5", "cql2-text", "Value 5.0 does not fit type string (literal)"),
    ("area_m2 = 'x'", "cql2-text", 'Value "x" does not fit type number'),
    ("owner LIKE 5", "cql2-text", "does not fit type string"),
    ("A_CONTAINS(crop, ('x'))", "cql2-text", "A_CONTAINS applies to array properties only"),
    ("S_INTERSECTS(crop, BBOX(1, 2, 3, 4))", "cql2-text", "S_INTERSECTS needs a geometry operand, got string"),
    ("S_DWITHIN(geometry, POINT(1 2), 5, parsecs)", "cql2-text", "Unsupported unit 'parsecs'"),
    ("FOO(owner) = 'x'", "cql2-text", "Unknown function 'FOO' (supported: CASEI, LOWER, UPPER)"),
    ("crop = 'a", "cql2-text", "The string or quoted name starting at line 1, column 8 is not closed"),
    ("(crop = 'a'", "cql2-text", "the bracket opened here is never closed"),
    ("", "cql2-text", "The filter is empty"),
    ("{", "cql2-json", "The cql2-json filter is not valid JSON (line 1, column 2)"),
    ("crop = 'a'", "cql2-xml", "filter-lang 'cql2-xml' is not supported"),
    ("owner = 'a\x00b'", "cql2-text", "does not fit type string"),
    ("area_m2 BETWEEN valid_from AND 3", "cql2-text", "BETWEEN: cannot compare a number with a date"),
    ("T_AFTER(owner, DATE('2024-01-01'))", "cql2-text", "Temporal operators need a date or timestamp, got string"),
    ("area_m2 * owner > 1", "cql2-text", "Arithmetic '*' needs numbers"),
]


@pytest.mark.parametrize(("flt", "lang", "en"), REFUSALS, ids=[r[0] or "empty" for r in REFUSALS])
def test_refusals_say_why(flt: Any, lang: str, en: str) -> None:
    with pytest.raises(CqlError) as exc:
        to_sql(GA, flt, lang)
    assert en in exc.value.message("en")
    assert exc.value.message("vi") and exc.value.message("vi") != exc.value.message("en")


def test_private_field_is_not_queryable() -> None:
    parcels = get_layer("parcels")
    with pytest.raises(CqlError) as exc:
        to_sql(parcels, "certificate_no = 'x'")
    assert "Unknown property 'certificate_no'" in exc.value.message("en")
    assert "certificate_no" not in exc.value.message("en").split("Queryables:")[1]


def test_limits_refuse_before_parsing() -> None:
    from layers.query.cql2 import check_text
    lim = FilterLimits(max_bytes=20, max_depth=3, max_terms=4, max_groups=10, max_json_depth=8)
    with pytest.raises(CqlError) as exc:
        check_text("owner = '" + "x" * 30 + "'", lim)
    assert "DATSO_FILTER_MAX_BYTES" in exc.value.message("en")
    with pytest.raises(CqlError) as exc:
        check_text("((((a = 1))))", lim)
    assert "nesting depth at most 3" in exc.value.message("en")
    with pytest.raises(CqlError) as exc:
        check_text("a=1 and b=2 and c=3", lim)
    assert "DATSO_FILTER_MAX_TERMS" in exc.value.message("en")


def test_datetime_window() -> None:
    tr = Translator(GA, column_prefix="t.")
    a = dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert tr.datetime_window(a, None) == \
        "coalesce(t.\"valid_to\"::timestamptz, 'infinity'::timestamptz) > $1::timestamptz"
    assert tr.datetime_window(None, a) == 't."valid_from" <= $2::timestamptz'
    assert tr.params == [a, a]
    with pytest.raises(CqlError) as exc:
        Translator(get_layer("parcels")).datetime_window(a, None)
    assert "has no temporal property" in exc.value.message("en")


RUN_ON_DB = ["crop IN ('pomelo', 'durian')", "CASEI(owner) LIKE CASEI('%a%')", "area_m2 * 2 > 100",
             "A_OVERLAPS(markets, ('CN', 'US'))", "markets = 'CN'",
             "S_DWITHIN(geometry, POINT(105.8 21), 2, kilometers)",
             "T_INTERSECTS(INTERVAL(valid_from, valid_to), INTERVAL('2024-01-01', '..'))",
             "T_AFTER(valid_from, TIMESTAMP('2024-01-01T00:00:00Z'))",
             "area_m2 BETWEEN 10 AND 20 OR NOT (variety IS NULL)"]


def test_fragments_run_on_postgresql(sample_db: str) -> None:
    with psycopg.connect(sample_db) as c:
        for text in RUN_ON_DB:
            tr = Translator(GA, column_prefix="t.", style="psycopg")
            where = tr.predicate(parse(text))
            n = c.execute(f"SELECT count(*) FROM growing_areas t WHERE {where}",  # noqa: S608
                          tr.named_params()).fetchone()
            assert n is not None and n[0] >= 0, text
        total = c.execute("SELECT count(*) FROM growing_areas").fetchone()
        tr = Translator(GA, style="psycopg")
        where = tr.predicate(parse("crop = 'pomelo' OR NOT (crop = 'pomelo') OR crop IS NULL"))
        every = c.execute(f"SELECT count(*) FROM growing_areas WHERE {where}", tr.named_params()).fetchone()  # noqa: S608
        assert total is not None and every is not None and every[0] == total[0] > 0
