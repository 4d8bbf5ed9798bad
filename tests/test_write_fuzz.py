"""Typed-body fuzz of the write path (issue 8): for every field of every layer in the registry, hostile values
(huge integers, 1e308, "1e999"/"NaN"/"inf" strings, NUL, long strings, long arrays and array items, wrong types,
nested objects, Unicode digits, far-past/far-future/BC dates, +14:00/-12:00 offsets) are PATCHed, PUT and
POSTed with an admin key. Asserted for every request: no 5xx; a 4xx is problem+json naming the field (or a
cross-field business rule); a refused write leaves the layer table and the audit history unchanged; an
accepted value is readable again as JSON and HTML.

`make test` runs the "ci" Hypothesis profile (a few examples per field); `HYPOTHESIS_PROFILE=fuzz` the long run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import table_fingerprint
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_features_write import PROBLEM

from layers.accounts.auth import create_key
from layers.catalog.registry import LAYERS, Layer, LayerField

pytestmark = pytest.mark.fuzz

FIELDS = [(layer.id, f.name) for layer in LAYERS.values() if layer.editable for f in layer.fields]
# examples per field: ci 2, fuzz profile 200; DATSO_FUZZ_PER_FIELD sets it for a run of a chosen length
PER_FIELD = int(os.environ.get("DATSO_FUZZ_PER_FIELD", 0)) or max(2, hsettings.default.max_examples // 25)
EXAMPLES = int(os.environ.get("DATSO_FUZZ_EXAMPLES", 0)) or hsettings.default.max_examples   # the other fuzz tests
STATUSES: Counter[int] = Counter()

_SPECIAL = ["1e999", "-1e999", "NaN", "nan", "Infinity", "-inf", "1e308", "-1e308", "99999999999999999999999",
            "9223372036854775808", "-9223372036854775809", "2147483648", "1e-999", "0x10", "1_000", "١٢٣", "¹", "²³",
            "𝟙𝟚", "Ⅻ", "0001-01-01T00:00:00+14:00", "0001-01-01", "0000-12-31", "-0001-01-01", "0044-03-15 BC",
            "10000-01-01", "9999-12-31T23:59:59-12:00", "1899-12-31", "2201-01-01", "2025-07-01T00:00:00+14:00",
            "2025-07-01T00:00:00-12:00", "31/02/2025", "01/07/2025 25:61", "infinity", "-infinity", "epoch",
            "\u0000", "a\u0000b", "x" * 100_000, "", " ", "true", "{}", "[]", "[1e999]", '{"a\\u0000": 1}',
            '{"a": NaN}', "[" * 5000 + "]" * 5000, "{ONT,\u0000}", "ONT,CLN", "ONT," * 2000, "null", "'; DROP TABLE x"]


def _offset_datetime(d: dt.datetime, minutes: int) -> str:
    return d.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes))).isoformat()


SCALARS = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200),
    st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 5e-324, 0.1, -0.0]),
    st.sampled_from(_SPECIAL),
    st.text(max_size=60),
    st.text(alphabet=st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=6),
    st.booleans(),
    st.none(),
    st.builds(_offset_datetime, st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
              st.integers(min_value=-14 * 60, max_value=14 * 60)),
    st.dates().map(dt.date.isoformat),
)
HOSTILE = st.one_of(
    SCALARS,
    st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                 max_leaves=8),
    st.lists(st.sampled_from(["ONT", "EU", "x" * 41, "y" * 100_000, "\u0000", "1", 1, None]), max_size=1200),
    st.lists(st.text(max_size=3), min_size=1000, max_size=3000),
)


@pytest.fixture(scope="module", autouse=True)
def _leave_the_sample_as_found(sample_db: str) -> Iterator[None]:
    """The fuzz writes hostile values into the first feature of every editable layer (a commune code '0', odd
    dates...) and POSTs copies: afterwards every row it touched is put back as it was (kept in temporary tables
    of one connection held for the module) and the copies removed, so the modules after it see the sample."""
    editable = [layer for layer in LAYERS.values() if layer.editable]
    with psycopg.connect(sample_db, autocommit=True) as c:
        saved: dict[str, tuple[int, list[str]]] = {}
        for n, layer in enumerate(editable):
            t, i = layer.table, layer.id_column
            cols = [r[0] for r in c.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = %s AND is_generated = 'NEVER' AND column_name <> %s ORDER BY ordinal_position",
                [t, i]).fetchall()]
            top = c.execute(f"SELECT coalesce(max({i}), 0) FROM {t}").fetchone()  # noqa: S608 - registry names
            assert top is not None
            c.execute(f"CREATE TEMP TABLE saved_{n} AS SELECT * FROM {t} ORDER BY {i} LIMIT 1")  # noqa: S608
            saved[layer.id] = (int(top[0]), cols)
        yield
        with c.transaction():
            c.execute("SELECT set_config('datso.actor', 'test:restore', true)")
            for n, layer in enumerate(editable):
                t, i = layer.table, layer.id_column
                top, cols = saved[layer.id]
                c.execute(f"DELETE FROM {t} WHERE {i} > %s", [top])  # noqa: S608 - the copies POSTed here
                names = ", ".join(cols)
                c.execute(f"UPDATE {t} x SET ({names}) = (SELECT {names} FROM saved_{n} s WHERE s.{i} = x.{i}) "  # noqa: S608
                          f"WHERE {i} IN (SELECT {i} FROM saved_{n})")


@pytest.fixture(scope="module")
def admin_key(sample_db: str) -> str:
    return create_key(sample_db, f"fuzz-{uuid.uuid4().hex[:8]}", "admin")


def _h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/geo+json", "Accept-Language": "en", **extra}


def _history(dsn: str, layer: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*), coalesce(max(id), 0) FROM history WHERE layer = %s", [layer]).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class Target:
    """A feature of the layer to PATCH/PUT, and whether an unchanged PUT / a POST of its copy is accepted."""

    def __init__(self, client: TestClient, key: str, layer: Layer, dsn: str) -> None:
        self.layer, self.dsn = layer, dsn
        feats = client.get(f"/collections/{layer.id}/items", params={"limit": 1}).json()["features"]
        self.url = f"/collections/{layer.id}/items/{feats[0]['id']}"
        feature = client.get(self.url).json()
        self.put_ok = client.put(self.url, content=json.dumps(self.body(feature)),
                                 headers=_h(key, **{"If-Match": client.get(self.url).headers["etag"]})).status_code < 300
        self.post_ok = layer.code_field is not None and \
            client.post(f"/collections/{layer.id}/items", content=json.dumps(self.new(feature)),
                        headers=_h(key)).status_code == 201
        self.refresh()

    def refresh(self) -> None:
        """The state a refused write must leave untouched (taken again after each accepted write)."""
        self.state = (table_fingerprint(self.dsn, self.layer.table), _history(self.dsn, self.layer.id))

    def body(self, feature: dict[str, Any]) -> dict[str, Any]:
        return {"type": "Feature", "geometry": feature["geometry"], "properties": dict(feature["properties"])}

    def new(self, feature: dict[str, Any]) -> dict[str, Any]:
        b = self.body(feature)
        assert self.layer.code_field
        b["properties"][self.layer.code_field] = f"FZ{uuid.uuid4().hex[:10].upper()}"
        return b


@pytest.fixture(scope="module")
def targets(client: TestClient, admin_key: str, sample_db: str) -> dict[str, Target]:
    return {layer.id: Target(client, admin_key, layer, sample_db) for layer in LAYERS.values() if layer.editable}


def _names(body: dict[str, Any], f: LayerField, text: str) -> bool:
    errors = body.get("errors", [])
    return (any(e.get("field") == f.name or e.get("code") == "rule" for e in errors)
            or f.name.lower() in str(body.get("detail", "")).lower() or f.name in text)


@pytest.mark.parametrize(("layer_id", "field_name"), FIELDS, ids=[f"{a}.{b}" for a, b in FIELDS])
def test_hostile_values_never_5xx(client: TestClient, sample_db: str, admin_key: str, targets: dict[str, Target],
                                  layer_id: str, field_name: str) -> None:
    layer = LAYERS[layer_id]
    f = layer.get_field(field_name)
    assert f is not None
    target = targets[layer_id]
    methods = ["PATCH", *(["PUT"] if target.put_ok else []), *(["POST"] if target.post_ok else [])]

    @hsettings(max_examples=PER_FIELD)
    @given(value=HOSTILE, method=st.sampled_from(methods))
    def run(value: Any, method: str) -> None:
        current = client.get(target.url)
        assert current.status_code == 200, current.text
        tag = current.headers["etag"]
        if method == "PATCH":
            r = client.patch(target.url, content=json.dumps({"properties": {field_name: value}}),
                             headers=_h(admin_key, **{"Content-Type": "application/merge-patch+json",
                                                      "If-Match": tag}))
        elif method == "PUT":
            body = target.body(current.json())
            body["properties"][field_name] = value
            r = client.put(target.url, content=json.dumps(body), headers=_h(admin_key, **{"If-Match": tag}))
        else:
            body = target.new(current.json())
            body["properties"][field_name] = value
            r = client.post(f"/collections/{layer_id}/items", content=json.dumps(body), headers=_h(admin_key))
        STATUSES[r.status_code] += 1
        shown = repr(value)[:120]
        assert r.status_code < 500, (method, field_name, shown, r.text[:300])
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith(PROBLEM), (method, field_name, shown)
            problem = r.json()
            assert _names(problem, f, r.text), (method, field_name, shown, problem)
            assert (table_fingerprint(sample_db, layer.table), _history(sample_db, layer_id)) == target.state, (method, shown)
        else:
            target.refresh()
            url = r.headers.get("location", "").replace("http://testserver", "") or target.url
            for fmt in ("json", "html"):
                got = client.get(url, params={"f": fmt})
                assert got.status_code == 200, (method, field_name, shown, fmt, got.text[:300])

    run()


COORD = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -1e308, 106.3, 10.0]),
                  st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=4), st.none())
POSITION = st.lists(COORD, min_size=0, max_size=4)
GEOMETRY = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["Point", "Polygon", "MultiPolygon", "LineString",
                                                    "GeometryCollection", "Feature", "", "\u0000", "polygon"]),
                           "coordinates": st.recursive(POSITION, lambda c: st.lists(c, max_size=4), max_leaves=12)}),
    st.builds(lambda x, y, n: {"type": "Polygon", "coordinates": [[[x, y], [x + 1e-4, y], [x, y + 1e-4]] * n + [[x, y]]]},
              st.floats(min_value=100, max_value=112), st.floats(min_value=7, max_value=24),
              st.integers(min_value=1, max_value=12_000)),
    st.fixed_dictionaries({"type": st.just("GeometryCollection"), "geometries": st.lists(st.just({"type": "Point"}))}),
    SCALARS,
)


@hsettings(max_examples=EXAMPLES)
@given(geometry=GEOMETRY, layer_id=st.sampled_from(["auction_plots", "packing_facilities", "trace_events"]),
       crs=st.sampled_from([None, "http://www.opengis.net/def/crs/EPSG/0/9210", "EPSG:4326"]))
def test_hostile_geometries_never_5xx(client: TestClient, admin_key: str, targets: dict[str, Target],
                                      geometry: Any, layer_id: str, crs: str | None) -> None:
    target = targets[layer_id]
    current = client.get(target.url)
    extra = {"If-Match": current.headers["etag"], "Content-Type": "application/merge-patch+json",
             **({"Content-Crs": f"<{crs}>"} if crs else {})}
    r = client.patch(target.url, content=json.dumps({"geometry": geometry}), headers=_h(admin_key, **extra))
    STATUSES[r.status_code] += 1
    assert r.status_code < 500, (repr(geometry)[:200], r.text[:300])
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith(PROBLEM)
        assert "geometry" in r.text.lower() or "Content-Crs" in r.text, (repr(geometry)[:300], crs, layer_id, r.text[:300])
    else:
        target.refresh()


@hsettings(max_examples=EXAMPLES)
@given(crs=st.one_of(st.text(max_size=40), st.sampled_from(["¹", "EPSG:¹", "EPSG:٣٤٠٥", "EPSG:99999999999999999999",
                                                          "http://www.opengis.net/def/crs/EPSG/0/¹", "<>", "<<x>>"])))
def test_hostile_content_crs_never_5xx(client: TestClient, admin_key: str, targets: dict[str, Target],
                                       crs: str) -> None:
    target = targets["auction_plots"]
    current = client.get(target.url)
    headers = {**_h(admin_key, **{"If-Match": current.headers["etag"],
                                  "Content-Type": "application/merge-patch+json"}),
               "Content-Crs": crs.encode("utf-8")}
    r = client.patch(target.url, content=b'{"properties": {"address": "crs"}}', headers=headers)  # type: ignore[arg-type]
    STATUSES[r.status_code] += 1
    assert r.status_code < 500, (crs, r.text[:300])
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith(PROBLEM) and "Content-Crs" in r.json()["detail"], r.text
    else:
        target.refresh()


@hsettings(max_examples=EXAMPLES)
@given(fid=st.one_of(st.text(min_size=1, max_size=24), st.sampled_from(["¹", "٣", "１", "0", "-1", "1e3",
                                                                        "9" * 19, "00000000000000000001"])),
       method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]))
def test_hostile_feature_ids_never_5xx(client: TestClient, admin_key: str, fid: str, method: str) -> None:
    from urllib.parse import quote

    url = f"/collections/parcels/items/{quote(fid, safe='')}"
    r = client.request(method, url, content=b'{"type": "Feature", "properties": {}}',
                       headers=_h(admin_key, **{"If-Match": '"0-0"', "Content-Type": "application/merge-patch+json"
                                                if method == "PATCH" else "application/geo+json"}))
    STATUSES[r.status_code] += 1
    assert r.status_code < 500, (method, fid, r.text[:300])
    assert r.status_code in (200, 400, 404, 405, 412, 422, 428) and r.headers["content-type"] != "text/plain", \
        (method, fid, r.status_code, r.text[:200])


def test_report_statuses() -> None:
    """Not an assertion about the service: prints the statuses the fuzz saw (for docs/reliability.md)."""
    print("write fuzz statuses:", dict(sorted(STATUSES.items())), "fields:", len(FIELDS), "per field:", PER_FIELD)
    assert all(s < 500 for s in STATUSES)
