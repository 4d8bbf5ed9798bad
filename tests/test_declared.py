"""Declared, not keyed on names: field formats, computed fields and lifecycles come from the registry.

Test-only copies of registry entries (a lifecycle on another field, other transitions, another format, no
computed field) show that writes, formatting and import follow the declaration, against the real database.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gis.crs import CRS84_URI, get_crs
from layers.catalog import formats
from layers.catalog import registry as reg
from layers.catalog.lifecycle import Lifecycle, State
from layers.catalog.registry import LAYERS, Layer, LayerField
from layers.ingest import writes
from layers.ingest.importer import ImportOptions, import_file
from layers.store import vocab

CRS84 = get_crs(CRS84_URI)
BOX = {"type": "Polygon", "coordinates": [[[106.40, 10.10], [106.402, 10.10], [106.402, 10.102], [106.40, 10.102],
                                            [106.40, 10.10]]]}


def _standard_lifecycle_layer() -> Layer:
    """growing_areas with its lifecycle on `standard` (not `status`): VietGAP may only become GlobalGAP."""
    states = tuple(State(c, c, c, "#000000") for c in vocab.STANDARDS)
    lc = Lifecycle("standard", states, transitions={"VietGAP": ("GlobalGAP",), "GlobalGAP": (), "Organic": (),
                                                    "None": ()})
    return replace(LAYERS["growing_areas"], lifecycle=lc, registration=None)


def _etag(dsn: str, layer: Layer, fid: int) -> str:
    with psycopg.connect(dsn) as c:
        row = c.execute(f"SELECT xmin::text FROM {layer.table} WHERE id = %s", [fid]).fetchone()   # noqa: S608
    assert row is not None
    return writes.etag(fid, row[0])


def _row(dsn: str, fid: int) -> tuple[Any, ...]:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT status, standard FROM growing_areas WHERE id = %s", [fid]).fetchone()
    assert row is not None
    return tuple(row)


def _patch(dsn: str, layer: Layer, fid: int, props: dict[str, Any]) -> str:
    return writes.update(dsn, layer, fid, {"properties": props}, CRS84, "test:declared", _etag(dsn, layer, fid), "en")


def test_writes_follow_the_declared_lifecycle_field_and_transitions(sample_db: str) -> None:
    real = replace(LAYERS["growing_areas"], registration=None)   # registration: tests/test_registration.py
    test_layer = _standard_lifecycle_layer()
    body = {"type": "Feature", "geometry": BOX, "properties": {
        "code": "VN-DECL-0001", "crop": "coconut", "owner": "Declared test", "commune_code": "86001",
        "area_m2": 100, "standard": "VietGAP", "status": "active"}}
    fid, _ = writes.create(sample_db, real, body, CRS84, "test:declared")
    try:
        # the declared field is the one checked: VietGAP -> Organic is refused, nothing is written
        with pytest.raises(writes.WriteError) as err:
            _patch(sample_db, test_layer, fid, {"standard": "Organic"})
        assert err.value.status == 409
        assert err.value.en == "Status cannot change from 'VietGAP' to 'Organic'; allowed: GlobalGAP"
        assert _row(sample_db, fid) == ("active", "VietGAP")
        _patch(sample_db, test_layer, fid, {"standard": "GlobalGAP"})
        assert _row(sample_db, fid) == ("active", "GlobalGAP")
        # a final state of the declared table
        with pytest.raises(writes.WriteError) as err:
            _patch(sample_db, test_layer, fid, {"standard": "VietGAP"})
        assert err.value.en == "Status cannot change from 'GlobalGAP' to 'VietGAP'; allowed: none (final state)"
        # `status` is not this copy's lifecycle field: active -> draft goes through (the registry refuses it)
        with pytest.raises(writes.WriteError) as err:
            _patch(sample_db, real, fid, {"status": "draft"})
        assert err.value.en == ("Status cannot change from 'active' to 'draft'; allowed: suspended, revoked, "
                                "expired")
        _patch(sample_db, test_layer, fid, {"status": "draft"})
        assert _row(sample_db, fid) == ("draft", "GlobalGAP")
        # and the registry's layer has no lifecycle on `standard`: any change
        _patch(sample_db, real, fid, {"standard": "VietGAP"})
        assert _row(sample_db, fid) == ("draft", "VietGAP")
        # a layer copy without any lifecycle checks no transition at all
        free = replace(real, lifecycle=None)
        _patch(sample_db, free, fid, {"status": "expired"})
        _patch(sample_db, free, fid, {"status": "draft"})
        assert _row(sample_db, fid) == ("draft", "VietGAP")
    finally:
        writes.delete(sample_db, real, fid, "test:declared", _etag(sample_db, real, fid))


def test_reason_states_are_the_check_constraint(conn: psycopg.Connection) -> None:
    lc = LAYERS["growing_areas"].lifecycle
    assert lc is not None and lc.reason_field == "status_reason"
    row = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conname = 'ck_growing_areas_reason_required'").fetchone()
    assert row is not None
    for state in lc.reason_states:
        assert f"'{state}'" in row[0]
    assert all(f"'{s}'" not in row[0] for s in lc.codes if s not in lc.reason_states)


def test_every_lifecycle_matches_its_field_vocabulary_and_style() -> None:
    with_lifecycle = [layer for layer in LAYERS.values() if layer.lifecycle is not None]
    assert {layer.id for layer in with_lifecycle} == {"parcels", "auction_plots", "growing_areas",
                                                      "packing_facilities"}
    for layer in with_lifecycle:
        lc = layer.lifecycle
        assert lc is not None
        field = layer.get_field(lc.field)
        assert field is not None and field.enum == lc.codes
        assert layer.style["by"] == lc.field and layer.style["colours"] == lc.colours
        for state in lc.states:
            assert formats.label(state.code, "vi") == state.label_vi
            assert formats.label(state.code, "en") == state.label_en


def test_lifecycle_declarations_are_checked() -> None:
    states = (State("a", "A", "A", "#000"), State("b", "B", "B", "#111"))
    with pytest.raises(ValueError, match="transitions"):
        Lifecycle("status", states, transitions={"a": ("c",), "b": ()})
    with pytest.raises(ValueError, match="reason"):
        Lifecycle("status", states, reason_states=("a",))
    ok = Lifecycle("status", states, transitions={"a": ("b",), "b": ()})
    assert ok.allowed("a") == ("b",) and ok.allowed("b") == () and ok.allowed(None) == ()
    assert Lifecycle("status", states).allowed("a") is None
    with pytest.raises(ValueError, match="lifecycle field"):
        replace(LAYERS["parcels"], lifecycle=ok)        # parcels.status does not have the states a, b


def test_formats_follow_the_declared_format_not_the_name() -> None:
    price = LAYERS["auction_plots"].get_field("starting_price_vnd")
    assert price is not None and price.format == "vnd"
    assert formats.format_value(price, 1250000000, "vi") == "1.250.000.000 ₫"
    as_number = replace(price, format="number")
    assert formats.format_value(as_number, 1250000000, "vi") == "1.250.000.000"
    assert formats.format_value(as_number, 1250000000, "en") == "1,250,000,000"
    # any name, declared vnd / land_use / crop / label / date
    assert formats.format_value(LayerField("x", "x", "x", type="number", format="vnd"), 500) == "500 ₫"
    assert formats.format_value(LayerField("x", "x", "x", format="land_use"), "ONT") == "ONT – Đất ở tại nông thôn"
    assert formats.format_value(LayerField("x", "x", "x", type="array", format="land_use"), ["LUC", "CLN"]) == (
        "LUC – Đất chuyên trồng lúa; CLN – Đất trồng cây lâu năm")
    assert formats.format_value(LayerField("x", "x", "x", format="crop"), "durian", "vi") == "Sầu riêng"
    assert formats.format_value(LayerField("x", "x", "x", format="crop"), "durian", "en") == "durian"
    assert formats.format_value(LayerField("x", "x", "x", format="label"), "sold", "en") == "Sold"
    assert formats.format_value(LayerField("x", "x", "x", format="date"), "2026-11-06T17:30:00+00:00") == "07/11/2026"
    # a field named like a crop or a price but declared text is shown as stored
    assert formats.format_value(LayerField("crop", "c", "c", format="text"), "durian", "vi") == "durian"
    assert formats.format_value(LayerField("fee_vnd", "f", "f", format="text"), 500) == "500"


def test_every_bound_field_has_a_known_format() -> None:
    for layer in LAYERS.values():
        for f in layer.fields:
            assert f.format in formats.FORMATTERS, (layer.id, f.name)
            if f.computed is not None:
                assert f.computed in reg.Computed.__args__      # type: ignore[attr-defined]


def _growing_geojson(tmp_path: Path, code: str) -> Path:
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": BOX, "properties": {
        "code": code, "crop": "coconut", "owner": "Declared test", "commune_code": "86001", "standard": "VietGAP",
        "status": "active"}}]}
    path = tmp_path / "vung.geojson"
    path.write_text(json.dumps(fc), encoding="utf-8")
    return path


def test_importer_computes_only_declared_fields(sample_db: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    layer = LAYERS["growing_areas"]
    area = layer.get_field("area_m2")
    assert area is not None and area.computed == "area_m2_from_geometry"
    plain = replace(layer, fields=tuple(replace(f, computed=None) for f in layer.fields))
    monkeypatch.setitem(LAYERS, "growing_areas", plain)
    res = import_file(_growing_geojson(tmp_path, "VN-DECL-IMP-1"), "growing_areas", sample_db,
                      ImportOptions(crs="EPSG:4326", lang="en", bulk=True))
    assert res.rows_written == 0
    assert [(i.field, i.code) for i in res.errors] == [("area_m2", "required")]
    assert not any("computed" in en for _, en in res.notes)
    with psycopg.connect(sample_db) as c:
        assert c.execute("SELECT count(*) FROM growing_areas WHERE code = 'VN-DECL-IMP-1'").fetchone() == (0,)


def test_folium_compact_fields_and_boundaries_follow_declarations() -> None:
    from layers.maps.folium_export import build_map, display_collection

    layer = LAYERS["parcels"]
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "id": 1, "geometry": BOX, "properties": {
        "parcel_no": 5, "status": "leased", "address": "Ấp 3", "area_m2": 12.5, "managing_body": "UBND xã",
        "commune_code": "86001", "map_sheet": 3}}]}
    _, shown = display_collection(layer, fc, "vi", compact=True)
    assert "address" in shown and "area_m2" in shown and "managing_body" not in shown
    no_address = replace(layer, fields=tuple(replace(f, summary=False) if f.name == "address" else f
                                             for f in layer.fields))
    _, shown = display_collection(no_address, fc, "vi", compact=True)
    assert "address" not in shown and "area_m2" in shown
    boundaries = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": BOX,
                                                             "properties": {"level": "commune"}}]}
    assert "Administrative boundaries" in build_map(layer, fc, lang="en", boundaries=boundaries)
    assert "Administrative boundaries" not in build_map(replace(layer, boundaries_under=False), fc, lang="en",
                                                        boundaries=boundaries)
