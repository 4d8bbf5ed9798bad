"""TileJSON 3.0 (validated against the schema), OGC API – Tiles documents and MapLibre styles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from tiles_support import features, get_tile, tile_client

from layers.catalog.registry import LAYERS
from layers.settings import Settings
from tiles.mvt import tile_fields

# The TileJSON 3.0.0 schema (github.com/mapbox/tilejson-spec/blob/master/3.0.0/schema.json), the parts that
# constrain what datso emits.
TILEJSON_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["tilejson", "tiles", "vector_layers"],
    "properties": {
        "tilejson": {"type": "string", "pattern": "^[123]\\.[0-9]+\\.[0-9]+$"},
        "tiles": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "vector_layers": {"type": "array", "items": {
            "type": "object", "required": ["id", "fields"],
            "properties": {"id": {"type": "string"}, "fields": {"type": "object",
                                                                  "additionalProperties": {"type": "string"}},
                           "description": {"type": "string"},
                           "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
                           "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30}}}},
        "attribution": {"type": "string"},
        "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "center": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
        "data": {"type": "array", "items": {"type": "string"}},
        "description": {"type": "string"},
        "fillzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "grids": {"type": "array", "items": {"type": "string"}},
        "legend": {"type": "string"},
        "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "name": {"type": "string"},
        "scheme": {"type": "string", "enum": ["xyz", "tms"]},
        "template": {"type": "string"},
        "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"},
    },
}


@pytest.fixture(scope="module")
def client(sample_db: str, settings: Settings) -> Iterator[TestClient]:
    with tile_client(settings, sample_db, cache_enabled=False) as c:
        yield c


def _check_tilejson(tj: dict[str, Any], layer_ids: list[str]) -> None:
    jsonschema.validate(tj, TILEJSON_SCHEMA)
    assert [v["id"] for v in tj["vector_layers"]] == layer_ids
    w, s, e, n = tj["bounds"]
    assert -180 <= w < e <= 180 and -85.06 <= s < n <= 85.06
    assert w <= tj["center"][0] <= e and s <= tj["center"][1] <= n
    assert tj["minzoom"] <= tj["center"][2] <= tj["maxzoom"]


@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_layer_tilejson_validates_and_its_url_serves_tiles(client: TestClient, layer_id: str, sample_db: str) -> None:
    r = client.get(f"/collections/{layer_id}/tiles/WebMercatorQuad/tilejson.json")
    assert r.status_code == 200
    tj = r.json()
    _check_tilejson(tj, [layer_id])
    layer = LAYERS[layer_id]
    assert tj["minzoom"] == layer.minzoom
    assert set(tj["vector_layers"][0]["fields"]) == {f.name for f in tile_fields(layer, detail=True)}
    # the template serves the layer at the centre of the data
    import morecantile

    z = max(layer.minzoom, 12)
    t = morecantile.tms.get("WebMercatorQuad").tile(tj["center"][0], tj["center"][1], z)
    tile_url = tj["tiles"][0].replace("http://testserver", "").format(z=z, x=t.x, y=t.y)
    assert get_tile(client, tile_url).status_code in (200, 204)


def test_multi_layer_tilejson(client: TestClient, sample_db: str) -> None:
    tj = client.get("/tiles/tilejson.json?layers=parcels,auction_plots").json()
    _check_tilejson(tj, ["parcels", "auction_plots"])
    assert tj["minzoom"] == min(LAYERS["parcels"].minzoom, LAYERS["auction_plots"].minzoom)
    assert "layers=parcels,auction_plots" in tj["tiles"][0]
    full = client.get("/tiles/tilejson.json").json()
    _check_tilejson(full, list(LAYERS))
    en = client.get("/tiles/tilejson.json?layers=parcels&lang=en").json()
    assert en["name"] == LAYERS["parcels"].title_en
    assert client.get("/tiles/tilejson.json?layers=nope").status_code == 404


def test_ogc_tiles_documents(client: TestClient) -> None:
    sets = client.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]
    tms = client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) == 25
    assert client.get("/tileMatrixSets/Nope").headers["content-type"] == "application/problem+json"
    lst = client.get("/collections/parcels/tiles").json()
    assert lst["tilesets"][0]["dataType"] == "vector"
    item = next(li for li in lst["tilesets"][0]["links"] if li["rel"] == "item")
    assert item["templated"] and "{tileMatrix}/{tileCol}/{tileRow}" in item["href"]
    ts = client.get("/collections/parcels/tiles/WebMercatorQuad").json()
    limits = {int(li["tileMatrix"]): li for li in ts["tileMatrixSetLimits"]}
    assert min(limits) == LAYERS["parcels"].minzoom
    assert ts["layers"][0]["id"] == "parcels" and ts["layers"][0]["geometryDimension"] == 2
    lim = limits[14]
    assert lim["minTileCol"] <= lim["maxTileCol"] and lim["minTileRow"] <= lim["maxTileRow"]
    rels = {li["rel"] for li in ts["links"]}
    assert {"self", "item", "describedby", "stylesheet"} <= rels


def test_styles_reference_existing_source_layers(client: TestClient) -> None:
    for path, ids in [("/collections/growing_areas/style.json", ["growing_areas"]),
                      ("/styles/default.json", list(LAYERS))]:
        st = client.get(path).json()
        assert st["version"] == 8
        src = st["sources"]["datso"]
        tj = client.get(src["url"].replace("http://testserver", "")).json()
        _check_tilejson(tj, ids)
        names = {v["id"] for v in tj["vector_layers"]}
        used = {la["source-layer"] for la in st["layers"] if "source-layer" in la}
        assert used == set(ids) and used <= names
        for la in st["layers"]:
            if la["type"] == "fill":
                colour = la["paint"]["fill-color"]
                layer = LAYERS[la["source-layer"]]
                if layer.style.get("by"):
                    assert colour[0] == "match" and colour[1] == ["get", layer.style["by"]]
                    assert layer.style["by"] in tj["vector_layers"][ids.index(layer.id)]["fields"]


def test_style_colours_match_tile_values(client: TestClient, sample_db: str) -> None:
    """The values the style matches on are values the tiles carry."""
    import morecantile

    st = client.get("/collections/auction_plots/style.json").json()
    fill = next(la for la in st["layers"] if la["type"] == "fill")
    matched = set(fill["paint"]["fill-color"][2:-1:2])
    import psycopg

    with psycopg.connect(sample_db) as c:
        lon, lat = c.execute("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM auction_plots "
                             "ORDER BY id LIMIT 1").fetchone()  # type: ignore[misc]
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 14)
    feats = features(get_tile(client, f"/collections/auction_plots/tiles/WebMercatorQuad/14/{t.x}/{t.y}").content,
                     "auction_plots")
    assert feats and {p["status"] for p in feats.values()} <= matched
