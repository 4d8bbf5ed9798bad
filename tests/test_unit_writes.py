"""layers/ingest/writes.py as a unit: create / replace / update / delete called directly with a plain DSN on
the real test database. The lifecycle cases are read from the registry's declared lifecycles (not written out
here), refusals leave the tables untouched (row count + checksum), and every write leaves a history row with
its actor. Each test writes its own features and deletes them again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from conftest import table_fingerprint

from gis.crs import get_crs
from layers.catalog.registry import get_layer
from layers.ingest import writes
from layers.ingest.writes import WriteError

CRS84 = get_crs("OGC:CRS84")
# the generic write and lifecycle machinery, on growing areas without their registration declaration (drafts,
# checks and codes: tests/test_registration.py)
GA = replace(get_layer("growing_areas"), registration=None)
LC = GA.lifecycle
assert LC is not None and LC.transitions is not None and LC.reason_field is not None and LC.reason_states
SQUARE = {"type": "MultiPolygon", "coordinates": [[[[105.8, 21.0], [105.801, 21.0], [105.801, 21.001],
                                                    [105.8, 21.001], [105.8, 21.0]]]]}


def area(status: str | None = None, **props: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"code": f"UT-{uuid.uuid4().hex[:12]}", "crop": "pomelo", "owner": "Unit test",
                         "commune_code": "00001", "area_m2": 123.0, **props}
    if status is not None:
        p[LC.field] = status
        if status in LC.reason_states:
            p[LC.reason_field] = "kiểm tra"
    return {"type": "Feature", "geometry": SQUARE, "properties": p}


def fingerprints(dsn: str) -> tuple[tuple[int, str], tuple[int, str]]:
    return table_fingerprint(dsn, GA.table), table_fingerprint(dsn, "history")


def history(dsn: str, fid: int) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as c:
        return [(a, b) for a, b in c.execute(
            "SELECT action, actor FROM history WHERE layer = %s AND feature_id = %s ORDER BY id", [GA.table, fid])]


@pytest.fixture()
def feature(sample_db: str) -> Iterator[tuple[int, str]]:
    """A growing area of our own in its lifecycle's first state: (id, ETag); deleted afterwards."""
    fid, tag = writes.create(sample_db, GA, area(LC.codes[0]), CRS84, "unit-fixture")
    yield fid, tag
    with psycopg.connect(sample_db) as c:
        c.execute("DELETE FROM growing_areas WHERE id = %s", [fid])


def _status(dsn: str, fid: int) -> tuple[str, str | None]:
    with psycopg.connect(dsn) as c:
        row = c.execute(f"SELECT {LC.field}, {LC.reason_field} FROM growing_areas WHERE id = %s",  # noqa: S608
                        [fid]).fetchone()
    assert row is not None
    return row[0], row[1]


def test_create_writes_the_row_and_history(sample_db: str) -> None:
    body = area(LC.codes[0])
    fid, tag = writes.create(sample_db, GA, body, CRS84, "officer:unit")
    try:
        assert tag.startswith(f'"{fid}-') and tag.endswith('"')
        with psycopg.connect(sample_db) as c:
            row = c.execute("SELECT code, owner, area_m2, ST_AsText(geom) FROM growing_areas WHERE id = %s",
                            [fid]).fetchone()
        assert row is not None and row[0] == body["properties"]["code"] and row[1] == "Unit test"
        assert float(row[2]) == 123.0 and row[3].startswith("MULTIPOLYGON(((105.8 21")
        assert history(sample_db, fid) == [("insert", "officer:unit")]
    finally:
        writes.delete(sample_db, GA, fid, "officer:unit", tag)
    assert history(sample_db, fid) == [("insert", "officer:unit"), ("delete", "officer:unit")]


def test_create_refused_writes_nothing(sample_db: str) -> None:
    before = fingerprints(sample_db)
    bad = area(LC.codes[0], crop="not-a-crop")
    with pytest.raises(WriteError) as exc:
        writes.create(sample_db, GA, bad, CRS84, "officer:unit")
    assert exc.value.status == 422
    assert [(e["field"], e["code"]) for e in exc.value.errors] == [("crop", "enum")]
    with pytest.raises(WriteError) as exc:
        writes.create(sample_db, GA, {"type": "Feature", "geometry": SQUARE, "properties": {}, "extra": 1}, CRS84,
                      "officer:unit")
    assert exc.value.status == 400 and exc.value.message("en") == "Unknown members: extra"
    assert fingerprints(sample_db) == before


def test_if_match(sample_db: str, feature: tuple[int, str]) -> None:
    fid, tag = feature
    patch = {"properties": {"owner": "Người khác"}}
    before = fingerprints(sample_db)
    for header, status, en in [(None, 428, "An If-Match header with the feature's current ETag is required"),
                               ("*", 428, "If-Match: * is not accepted"),
                               ('"1-2"', 412, "ETag mismatch")]:
        with pytest.raises(WriteError) as exc:
            writes.update(sample_db, GA, fid, patch, CRS84, "officer:unit", header)
        assert exc.value.status == status and en in exc.value.message("en"), header
        assert exc.value.message("vi") != exc.value.message("en")
    with pytest.raises(WriteError) as exc:
        writes.delete(sample_db, GA, fid, "officer:unit", '"1-2"')
    assert exc.value.status == 412 and exc.value.errors == [{"current_etag": tag}]
    assert fingerprints(sample_db) == before
    new = writes.update(sample_db, GA, fid, patch, CRS84, "officer:unit", f'"nope", {tag}')   # one of a list
    assert new != tag
    with pytest.raises(WriteError) as exc:          # the old tag is stale now
        writes.update(sample_db, GA, fid, patch, CRS84, "officer:unit", tag)
    assert exc.value.status == 412
    assert history(sample_db, fid) == [("insert", "unit-fixture"), ("update", "officer:unit")]


def test_unknown_feature_is_404(sample_db: str) -> None:
    with pytest.raises(WriteError) as exc:
        writes.delete(sample_db, GA, 2**62, "officer:unit", '"x"')
    assert exc.value.status == 404 and "has no feature" in exc.value.message("en")


def test_replace_resets_fields_left_out(sample_db: str, feature: tuple[int, str]) -> None:
    fid, tag = feature
    writes.update(sample_db, GA, fid, {"properties": {"variety": "Da xanh"}}, CRS84, "a", tag)
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT variety, xmin::text FROM growing_areas WHERE id = %s", [fid]).fetchone()
    assert row is not None and row[0] == "Da xanh"
    body = area(LC.codes[0])
    writes.replace(sample_db, GA, fid, body, CRS84, "b", writes.etag(fid, row[1]))
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT variety, code FROM growing_areas WHERE id = %s", [fid]).fetchone()
    assert row is not None and row[0] is None and row[1] == body["properties"]["code"]
    assert [a for a, _ in history(sample_db, fid)] == ["insert", "update", "update"]
    assert [actor for _, actor in history(sample_db, fid)][1:] == ["a", "b"]


PAIRS = [(old, new, new in LC.transitions[old]) for old in LC.codes for new in LC.codes if new != old]


@pytest.mark.parametrize(("old", "new", "allowed"), PAIRS, ids=[f"{o}->{n}" for o, n, _ in PAIRS])
def test_lifecycle_transitions_as_declared(sample_db: str, old: str, new: str, allowed: bool) -> None:
    fid, tag = writes.create(sample_db, GA, area(old), CRS84, "officer:unit")
    try:
        patch: dict[str, Any] = {LC.field: new}
        if new in LC.reason_states:
            patch[LC.reason_field] = "lý do"       # type: ignore[index]
        before = fingerprints(sample_db)
        if allowed:
            tag = writes.update(sample_db, GA, fid, {"properties": patch}, CRS84, "officer:unit", tag)
            assert _status(sample_db, fid)[0] == new
            assert history(sample_db, fid)[-1] == ("update", "officer:unit")
        else:
            with pytest.raises(WriteError) as exc:
                writes.update(sample_db, GA, fid, {"properties": patch}, CRS84, "officer:unit", tag)
            assert exc.value.status == 409
            assert f"Status cannot change from '{old}' to '{new}'; allowed: " in exc.value.message("en")
            assert (", ".join(LC.transitions[old]) or "none (final state)") in exc.value.message("en")
            assert f"từ '{old}' sang '{new}'" in exc.value.message("vi")
            assert fingerprints(sample_db) == before
    finally:
        writes.delete(sample_db, GA, fid, "officer:unit", tag)


REASON_MOVES = [(old, new) for old in LC.codes for new in LC.transitions[old] if new in LC.reason_states]


@pytest.mark.parametrize(("old", "new"), REASON_MOVES, ids=[f"{o}->{n}" for o, n in REASON_MOVES])
def test_reason_required_states(sample_db: str, old: str, new: str) -> None:
    fid, tag = writes.create(sample_db, GA, area(old), CRS84, "officer:unit")
    try:
        before = fingerprints(sample_db)
        with pytest.raises(WriteError) as exc:
            writes.update(sample_db, GA, fid, {"properties": {LC.field: new, LC.reason_field: None}}, CRS84,
                          "officer:unit", tag)
        assert exc.value.status == 422
        assert [(e["field"], e["code"]) for e in exc.value.errors] == [(LC.reason_field, "rule")]
        assert fingerprints(sample_db) == before
        tag = writes.update(sample_db, GA, fid, {"properties": {LC.field: new, LC.reason_field: "sâu bệnh"}},
                            CRS84, "officer:unit", tag)
        assert _status(sample_db, fid) == (new, "sâu bệnh")
    finally:
        writes.delete(sample_db, GA, fid, "officer:unit", tag)


def test_layer_without_declared_transitions_allows_any_change(sample_db: str) -> None:
    parcels = get_layer("parcels")
    assert parcels.lifecycle is not None and parcels.lifecycle.transitions is None
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT id, status, xmin::text FROM parcels ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    fid, old, v = row
    new = next(s for s in parcels.lifecycle.codes if s != old)
    tag = writes.update(sample_db, parcels, fid, {"properties": {"status": new}}, CRS84, "officer:unit",
                        writes.etag(fid, v))
    writes.update(sample_db, parcels, fid, {"properties": {"status": old}}, CRS84, "officer:unit", tag)
    with psycopg.connect(sample_db) as c:
        acts = c.execute("SELECT action, actor, before->>'status', after->>'status' FROM history "
                         "WHERE layer = 'parcels' AND feature_id = %s ORDER BY id DESC LIMIT 2", [fid]).fetchall()
    assert acts == [("update", "officer:unit", new, old), ("update", "officer:unit", old, new)]
