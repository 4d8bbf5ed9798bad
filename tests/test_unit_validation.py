"""layers/ingest/validation.py as a unit: `prepare_records` / `validate_records` / `coerce_value` called
directly with records for registry layers; every issue is checked by field, code and its vi/en message.
Only the duplicate-key check needs a database connection (the real test database)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import psycopg
import pytest
from shapely.geometry import Point, shape

from layers.catalog.registry import get_layer
from layers.ingest.validation import (
    CoercionError,
    LimitError,
    coerce_value,
    prepare_records,
    validate_records,
)

SQUARE = shape({"type": "MultiPolygon", "coordinates": [[[[105.8, 21.0], [105.801, 21.0], [105.801, 21.001],
                                                          [105.8, 21.001], [105.8, 21.0]]]]})
GA = get_layer("growing_areas")
PARCELS = get_layer("parcels")
EVENTS = get_layer("trace_events")
GOOD_AREA = {"code": "VN-UT-0001", "crop": "pomelo", "owner": "Nguyễn Văn A", "commune_code": "00001",
             "area_m2": 100}
GOOD_EVENT = {"event_id": "e-unit-1", "event_type": "ObjectEvent", "event_time": "2024-01-01T10:00:00+07:00"}
HERE = Point(105.8, 21.0)
DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]


def issues(layer: Any, props: dict[str, Any], geom: Any = SQUARE, **kw: Any) -> list[tuple[str | None, str]]:
    return [(i.field, i.code) for i in validate_records(layer, [(props, geom)], **kw)]


def only(layer: Any, props: dict[str, Any], geom: Any = SQUARE, **kw: Any) -> Any:
    found = validate_records(layer, [(props, geom)], **kw)
    assert len(found) == 1, [(i.field, i.code, i.message_en) for i in found]
    return found[0]


def test_good_records_have_no_issues_and_are_coerced() -> None:
    p = prepare_records(GA, [(GOOD_AREA, SQUARE)])
    assert p.ok and p.issues == []
    rec = p.records()[0]
    assert rec["area_m2"] == 100.0 and rec["code"] == "VN-UT-0001"
    e = prepare_records(EVENTS, [(GOOD_EVENT, HERE)]).records()[0]
    assert e["event_time"] == dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    parcel = {"commune_code": "1", "map_sheet": "1", "parcel_no": 1.0, "area_m2": "10", "land_use_codes": "ONT;CLN"}
    r = prepare_records(PARCELS, [(parcel, SQUARE)]).records()[0]
    assert r["map_sheet"] == 1 and r["parcel_no"] == 1 and r["land_use_codes"] == ["ONT", "CLN"]
    assert r["status"] == "managed"    # the column's server default, filled in


# (layer, change to a good record, field, code, fragment of the English message, fragment of the Vietnamese one)
CASES: list[tuple[Any, dict[str, Any], str, str, str, str]] = [
    (GA, {"area_m2": "abc"}, "area_m2", "type", "must be a number, not 'abc'", "phải là số"),
    (GA, {"crop": "xx"}, "crop", "enum", "has an unknown value 'xx'; allowed: coconut", "không hợp lệ: 'xx'"),
    (GA, {"markets": ["XX"]}, "markets", "enum", "has an unknown code 'XX'; allowed: VN", "mã không hợp lệ: 'XX'"),
    (GA, {"markets": ["VNXXX"]}, "markets", "too_long", "longer than 4 characters", "dài quá 4 ký tự"),
    (GA, {"owner": "a\x00b"}, "owner", "nul", "contains a NUL character", "chứa ký tự NUL"),
    (GA, {"expected_yield_t": float("inf")}, "expected_yield_t", "type", "must be a finite number, not 'inf'",
     "phải là số hữu hạn"),
    (GA, {"area_m2": "1e400"}, "area_m2", "type", "must be a finite number", "phải là số hữu hạn"),
    (GA, {"area_m2": float("nan")}, "area_m2", "required", "Area (m²) (area_m2) is required", "bắt buộc"),
    (GA, {"valid_from": "0001-01-01"}, "valid_from", "date_range",
     "outside the accepted range 1900-01-01 – 2200-12-31: 0001-01-01", "ngoài khoảng cho phép 01/01/1900"),
    (GA, {"code": "x" * 300}, "code", "too_long", "is longer than 40 characters", "dài quá 40 ký tự"),
    (GA, {"area_m2": 0}, "area_m2", "minimum", "must be ≥ 0.01 (got 0)", "phải ≥ 0.01"),
    (GA, {"harvest_months": [1, 2**40]}, "harvest_months", "too_large",
     "outside the column's integer range (-2147483648 … 2147483647): 1099511627776", "vượt phạm vi số nguyên"),
    (GA, {"zz": 1}, "zz", "unknown_field", "field 'zz' is not part of layer growing_areas", "không có trong lớp"),
    (PARCELS, {"map_sheet": 2**31}, "map_sheet", "too_large", "(-2147483648 … 2147483647): 2147483648",
     "vượt phạm vi"),
    (PARCELS, {"parcel_no": "3.5"}, "parcel_no", "type", "must be an integer, not '3.5'", "số nguyên"),
    (PARCELS, {"land_use_codes": ["ZZZ"]}, "land_use_codes", "enum", "has an unknown code 'ZZZ'", "ZZZ"),
    (EVENTS, {"lot_id": 2**64}, "lot_id", "too_large", "(-9223372036854775808 … 9223372036854775807)",
     "vượt phạm vi"),
    (EVENTS, {"event_time": "yesterday"}, "event_time", "type", "not a valid date/time: 'yesterday'", "yesterday"),
    (EVENTS, {"event_type": "Nope"}, "event_type", "enum", "unknown value 'Nope'; allowed: ObjectEvent", "Nope"),
    (EVENTS, {"ilmd": {"a": DEEP}}, "ilmd", "too_deep", "is nested deeper than 32", "lồng sâu quá 32 cấp"),
    (EVENTS, {"ilmd": {"a\x00": 1}}, "ilmd", "nul", "has a key that contains a NUL character", "có một khóa"),
    (EVENTS, {"ilmd": {"a": ["x\x00"]}}, "ilmd", "nul", "has a value that contains a NUL", "có một giá trị"),
    (EVENTS, {"ilmd": {"a": float("nan")}}, "ilmd", "type", "has a non-finite number (nan)", "không hữu hạn"),
    (EVENTS, {"ilmd": "{not json"}, "ilmd", "type", "invalid JSON: '{not json'", "JSON không hợp lệ"),
]
GOOD = {id(GA): GOOD_AREA, id(PARCELS): {"commune_code": "1", "map_sheet": 1, "parcel_no": 1, "area_m2": 10,
                                         "land_use_codes": ["ONT"]}, id(EVENTS): GOOD_EVENT}


@pytest.mark.parametrize(("layer", "change", "field", "code", "en", "vi"), CASES,
                         ids=[f"{c[0].id}-{c[2]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_one_bad_value_one_issue(layer: Any, change: dict[str, Any], field: str, code: str, en: str,
                                 vi: str) -> None:
    geom = HERE if layer is EVENTS else SQUARE
    issue = only(layer, {**GOOD[id(layer)], **change}, geom)
    row = None if code == "unknown_field" else 1     # an unknown column concerns the batch, not a row
    assert (issue.field, issue.code, issue.row, issue.is_error) == (field, code, row, True)
    assert en in issue.message_en
    assert vi in issue.message_vi
    assert issue.as_dict("en")["message"] == issue.message_en and issue.as_dict()["message"] == issue.message_vi


def test_required_fields_are_named() -> None:
    found = validate_records(GA, [({"code": "x"}, SQUARE)])
    assert {(i.field, i.code) for i in found} == {(f.name, "required") for f in GA.fields
                                                  if f.required and f.name != "code"}
    crop = next(i for i in found if i.field == "crop")
    assert crop.message_en == "required column Crop (crop) is missing"
    assert crop.message_vi == "thiếu cột bắt buộc Cây trồng (crop)"
    assert issues(GA, {"code": "x"}, SQUARE, partial=True) == []    # PATCH: absent fields are not required


def test_declared_computed_field_is_still_required_here() -> None:
    """`area_m2` is declared `computed="area_m2_from_geometry"`: the importer fills it in before validation;
    validation itself does not invent it, and says it is missing."""
    assert GA.get_field("area_m2").computed == "area_m2_from_geometry"   # type: ignore[union-attr]
    without = {k: v for k, v in GOOD_AREA.items() if k != "area_m2"}
    assert issues(GA, without) == [("area_m2", "required")]


def test_geometry_type_and_place() -> None:
    found = {(i.field, i.code): i for i in validate_records(PARCELS, [(GOOD[id(PARCELS)], Point(1, 2))])}
    assert set(found) == {("geometry", "geometry_type"), ("geometry", "outside_vietnam")}
    assert "geometry type Point does not fit layer parcels" in found["geometry", "geometry_type"].message_en
    assert "check the CRS or the X/Y order" in found["geometry", "outside_vietnam"].message_en


def test_rows_are_numbered_from_first_row() -> None:
    recs = [(GOOD_AREA, SQUARE), ({**GOOD_AREA, "code": "VN-UT-0002", "crop": "xx"}, SQUARE)]
    found = validate_records(GA, recs, first_row=10)
    assert [(i.row, i.field, i.code) for i in found] == [(11, "crop", "enum")]
    assert found[0].describe("en").startswith("row 11, field crop: ")
    assert found[0].describe("vi").startswith("dòng 11, trường crop: ")


def test_duplicate_business_key_against_the_database(sample_db: str) -> None:
    with psycopg.connect(sample_db) as conn:
        row = conn.execute("SELECT id, code FROM growing_areas ORDER BY id LIMIT 1").fetchone()
        assert row is not None
        fid, code = row
        dup = [(i.field, i.code) for i in validate_records(GA, [({**GOOD_AREA, "code": code}, SQUARE)], conn)]
        assert len(dup) == 1 and dup[0][0] == "code"
        # the row that is being replaced does not collide with itself
        assert validate_records(GA, [({**GOOD_AREA, "code": code}, SQUARE)], conn, replaces=[fid]) == []
    twice = validate_records(GA, [(GOOD_AREA, SQUARE), (GOOD_AREA, SQUARE)])
    assert [(i.row, i.field) for i in twice] == [(2, "code")]


INT2 = dataclasses.replace(PARCELS.get_field("map_sheet"), int_range=(-(2**15), 2**15 - 1))  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "want"), [(32767, 32767), (-32768, -32768), ("12", 12), ("1.0", 1), (None, None),
                                             ("", None)])
def test_coerce_value_int2_accepts(value: Any, want: Any) -> None:
    assert coerce_value(INT2, value) == want


@pytest.mark.parametrize(("value", "code", "en"), [
    (32768, "too_large", "outside the column's integer range (-32768 … 32767): 32768"),
    (-32769, "too_large", "(-32768 … 32767): -32769"),
    ("1.5", "type", "must be an integer, not '1.5'"),
    (True, "type", "must be an integer"),
    ([1], "type", "must be a single value, not an object or a list"),
])
def test_coerce_value_int2_refuses(value: Any, code: str, en: str) -> None:
    with pytest.raises(CoercionError) as exc:
        coerce_value(INT2, value)
    assert exc.value.code == code and en in exc.value.message("en")
    assert isinstance(exc.value, LimitError) == (code != "type")


def test_coerce_value_arrays_and_dates() -> None:
    months = GA.get_field("harvest_months")
    assert months is not None
    assert coerce_value(months, "1; 2;3") == [1, 2, 3]
    assert coerce_value(months, [4, "5"]) == [4, 5]
    vf = GA.get_field("valid_from")
    assert vf is not None
    assert coerce_value(vf, "2024-02-29") == dt.date(2024, 2, 29)
    assert coerce_value(vf, "29/02/2024") == dt.date(2024, 2, 29)
    with pytest.raises(CoercionError) as exc:
        coerce_value(vf, "2300-01-01")
    assert exc.value.code == "date_range"
