"""One selection, every face: each case of one table (bbox, bbox-crs, datetime, field=value, CQL2 text and
JSON, limits; valid and invalid) goes through every face that takes its inputs — items over HTTP, tiles over
HTTP, the Folium export route, `datso map export`, `datso export` and `read_layer` — against the sample
database. A valid case must select the same features everywhere (same ids; the Folium faces: the same
number), an invalid one must fail everywhere with the same message (English).

Faces and the inputs they take: items and the Folium route take everything; tiles take field=value and the
filter; `datso map export` everything but bbox-crs and filter-crs; `datso export` and `read_layer` take
field=value and a lon/lat bbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import morecantile
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from tiles_support import features as tile_features
from typer.testing import CliRunner

from cli.main import app as cli_app
from layers.analysis import read_layer
from layers.query.cql2 import CqlError
from layers.query.selection import parse_bbox, parse_datetime, parse_selection, parse_where
from layers.settings import get_settings

WMQ = morecantile.tms.get("WebMercatorQuad")
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
_x1, _y1 = Transformer.from_crs(4326, 3857, always_xy=True).transform(106.2, 9.9)
_x2, _y2 = Transformer.from_crs(4326, 3857, always_xy=True).transform(106.5, 10.2)
BBOX_3857 = f"{_x1},{_y1},{_x2},{_y2}"


@dataclass
class Case:
    name: str
    layer: str
    params: dict[str, str] = field(default_factory=dict)    # query parameters (field=value included)
    error: str | None = None                                  # expected in the English message of every face
    nonempty: bool = True                                     # a valid case must select something
    # items refuses a parameter it does not know before any selection is read (OGC API - Features
    # /req/core/query-param-unknown, with the list of allowed parameters): its own message
    items_error: str | None = None

    @property
    def equals(self) -> dict[str, str]:
        return {k: v for k, v in self.params.items() if k not in SELECTION_KEYS}

    def keys(self) -> set[str]:
        return {k for k in self.params if k in SELECTION_KEYS} | ({"equals"} if self.equals else set())


SELECTION_KEYS = {"bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs"}
FACE_KEYS = {
    "items": SELECTION_KEYS | {"equals"},
    "folium_route": SELECTION_KEYS | {"equals"},
    "tiles": {"filter", "filter-lang", "filter-crs", "equals"},
    "map_cli": {"bbox", "datetime", "filter", "filter-lang", "equals"},
    "export_cli": {"bbox", "equals"},
    "read_layer": {"bbox", "equals"},
}


def _values(dsn: str) -> dict[str, str]:
    """Real values of the sample for equality cases."""
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT starting_price_vnd::text, area_m2::text, viewing_start::text, "
                        "to_char(registration_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                        "FROM auction_plots WHERE viewing_start IS NOT NULL AND registration_start IS NOT NULL "
                        "ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    return {"price": row[0], "area": row[1], "viewing": row[2], "registration": row[3]}


def cases(v: dict[str, str]) -> list[Case]:
    return [
        # -- valid ------------------------------------------------------------------------------------------
        Case("everything", "auction_plots"),
        Case("bbox", "auction_plots", {"bbox": "106.2,9.9,106.5,10.2"}),
        Case("bbox 6 numbers", "auction_plots", {"bbox": "106.2,9.9,-10,106.5,10.2,100"}),
        Case("bbox-crs lat-first", "auction_plots", {"bbox": "9.9,106.2,10.2,106.5", "bbox-crs": EPSG4326}),
        Case("bbox-crs projected", "auction_plots", {"bbox": BBOX_3857, "bbox-crs": EPSG3857}),
        Case("bbox empty area", "auction_plots", {"bbox": "100,20,100.1,20.1"}, nonempty=False),
        # float() reads Unicode digits: the items API always took them in bbox, so every face does
        Case("bbox Unicode digits", "auction_plots", {"bbox": "١٠٦,٩,١٠٧,١٠"}),
        Case("datetime date = whole UTC day", "auction_plots", {"datetime": "2026-10-01"}),
        Case("datetime interval", "auction_plots", {"datetime": "2026-11-01/2026-11-30"}),
        Case("datetime open start", "auction_plots", {"datetime": "../2026-10-01"}),
        Case("datetime open end", "auction_plots", {"datetime": "2026-12-01T00:00:00Z/.."}),
        Case("datetime offset", "auction_plots", {"datetime": "2026-12-01T08:30:00+07:00/"}),
        Case("datetime interval layer", "growing_areas", {"datetime": "2026-01-01/2026-01-31"}),
        Case("string vocabulary", "auction_plots", {"status": "sold"}),
        Case("integer", "auction_plots", {"starting_price_vnd": v["price"]}),
        Case("number", "auction_plots", {"area_m2": v["area"]}),
        Case("date", "auction_plots", {"viewing_start": v["viewing"]}),
        Case("date-time", "auction_plots", {"registration_start": v["registration"]}),
        Case("array item", "growing_areas", {"markets": "CN"}),
        Case("two equalities", "growing_areas", {"crop": "durian", "standard": "VietGAP"}),
        Case("cql2-text", "auction_plots", {"filter": "status = 'sold' AND area_m2 > 500"}),
        Case("cql2-json", "auction_plots", {"filter": '{"op": ">", "args": [{"property": "area_m2"}, 500]}',
                                            "filter-lang": "cql2-json"}),
        Case("cql2 spatial + filter-crs", "auction_plots",
             {"filter": "S_INTERSECTS(geometry, BBOX(9.9, 106.2, 10.2, 106.5))", "filter-crs": EPSG4326}),
        Case("all together", "auction_plots", {"bbox": "105.8,9.5,106.8,10.4", "datetime": "2026-09-01/..",
                                               "status": "sold", "filter": "area_m2 > 100"}),
        # -- invalid ----------------------------------------------------------------------------------------
        Case("bbox 3 numbers", "auction_plots", {"bbox": "1,2,3"}, "bbox needs 4 (or 6)"),
        Case("bbox not numbers", "auction_plots", {"bbox": "a,b,c,d"}, "bbox values must be numbers"),
        Case("bbox not finite", "auction_plots", {"bbox": "1e999,1,2,3"}, "bbox values must be finite"),
        Case("bbox south > north", "auction_plots", {"bbox": "106,10,107,9"}, "lower bound exceeds the upper"),
        Case("bbox west > east", "auction_plots", {"bbox": "107,10,106,11"}, "left bound exceeds the right"),
        Case("bbox-crs without bbox", "auction_plots", {"bbox-crs": EPSG4326}, "bbox-crs needs bbox"),
        Case("bbox-crs unknown", "auction_plots", {"bbox": "1,2,3,4", "bbox-crs": "EPSG:99999"},
             "bbox-crs: CRS 'EPSG:99999' is not supported"),
        Case("datetime words", "auction_plots", {"datetime": "yesterday"}, "is not RFC 3339"),
        Case("datetime does not exist", "auction_plots", {"datetime": "2026-13-45"}, "does not exist"),
        Case("datetime ../..", "auction_plots", {"datetime": "../.."}, "'../..' is not a valid interval"),
        Case("datetime ..", "auction_plots", {"datetime": ".."}, "only valid in an interval"),
        Case("datetime reversed", "auction_plots", {"datetime": "2026-12-01/2026-11-01"}, "start is after the end"),
        Case("datetime without temporal field", "parcels", {"datetime": "2026-01-01"}, "has no temporal property"),
        Case("unknown field", "auction_plots", {"colour": "red"}, "'colour' is not a queryable",
             items_error="Unknown query parameter(s): colour"),
        Case("not in vocabulary", "auction_plots", {"status": "bogus"}, "Invalid value 'bogus' for status"),
        Case("array item not in vocabulary", "growing_areas", {"markets": "XX"}, "Invalid value 'XX' for markets"),
        Case("Unicode digits", "auction_plots", {"starting_price_vnd": "١٢٣"}, "does not fit property"),
        Case("superscript digit", "auction_plots", {"starting_price_vnd": "¹"}, "does not fit property"),
        Case("integer with a fraction", "auction_plots", {"starting_price_vnd": "12.5"}, "does not fit property"),
        Case("beyond bigint", "auction_plots", {"starting_price_vnd": "99999999999999999999"},
             "does not fit property"),
        Case("number not finite", "auction_plots", {"area_m2": "1e99999"}, "does not fit property"),
        Case("date that does not exist", "auction_plots", {"viewing_start": "2026-02-30"}, "does not fit property"),
        Case("cql2 unknown property", "auction_plots", {"filter": "nonexistent = 1"}, "nonexistent"),
        Case("cql2 syntax", "auction_plots", {"filter": "status = "}, "CQL2"),
        Case("cql2-json not json", "auction_plots", {"filter": "{", "filter-lang": "cql2-json"}, "JSON"),
        Case("filter-lang unknown", "auction_plots", {"filter": "1=1", "filter-lang": "sql"},
             "filter-lang 'sql' is not supported"),
        Case("filter-lang without filter", "auction_plots", {"filter-lang": "cql2-text"}, "need filter"),
        Case("filter too deep", "auction_plots", {"filter": "(" * 9 + "status = 'sold'" + ")" * 9}, "DATSO_FILTER_"),
        Case("filter too long", "auction_plots", {"filter": "status = '" + "x" * 17000 + "'"}, "DATSO_FILTER_"),
    ]


# -- the faces: each returns ("ok", ids or count) or ("error", English message) --------------------------------

def _norm(text: str) -> str:
    return " ".join(text.split())


def face_items(client: TestClient, case: Case, **_: Any) -> tuple[str, Any]:
    r = client.get(f"/collections/{case.layer}/items",
                   params={**case.params, "limit": "10000", "skipGeometry": "true", "lang": "en"})
    if r.status_code != 200:
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", r.text[:300]
        return "error", r.json()["detail"]
    return "ok", sorted(f["id"] for f in r.json()["features"])


def _extent(dsn: str, layer: str) -> tuple[float, float, float, float]:
    with psycopg.connect(dsn) as c:
        row = c.execute(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "  # noqa: S608 - test layer ids
                        f"(SELECT ST_Extent(geom) e FROM {layer}) s").fetchone()
    assert row is not None
    return row


def face_tiles(client: TestClient, case: Case, dsn: str, **_: Any) -> tuple[str, Any]:
    """The ids drawn in every z8 tile over the layer."""
    x1, y1, x2, y2 = _extent(dsn, case.layer)
    ids: set[int] = set()
    for t in WMQ.tiles(x1, y1, x2, y2, zooms=[8]):
        r = client.get(f"/collections/{case.layer}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}",
                       params={**case.params, "lang": "en"})
        if r.status_code == 400:
            return "error", r.json()["detail"]
        assert r.status_code in (200, 204), r.text[:300]
        ids |= set(tile_features(r.content, case.layer))
    return "ok", sorted(ids)


def n_features(page: str) -> int:
    return len(re.findall(r'"_style":', page))


def face_folium_route(client: TestClient, case: Case, **_: Any) -> tuple[str, Any]:
    r = client.get(f"/maps/{case.layer}.html", params={**case.params, "lang": "en"})
    if r.status_code != 200:
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", r.text[:300]
        return "error", r.json()["detail"]
    return "ok", n_features(r.text)


@pytest.fixture()
def cli_env(sample_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", sample_db)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _where_args(case: Case) -> list[str]:
    return [a for k, v in case.equals.items() for a in ("--where", f"{k}={v}")]


def face_map_cli(case: Case, runner: CliRunner, tmp: Path, **_: Any) -> tuple[str, Any]:
    out = tmp / f"{case.layer}.html"
    args = ["map", "export", "--layer", case.layer, "--out", str(out), "--lang", "en", *_where_args(case)]
    p = case.params
    for key, flag in (("bbox", "--bbox"), ("datetime", "--datetime"), ("filter", "--filter"),
                      ("filter-lang", "--filter-lang")):
        if key in p:
            args += [flag, p[key]]
    res = runner.invoke(cli_app, args)
    if res.exit_code != 0:
        assert res.exit_code == 2 and not out.exists(), res.output
        return "error", _norm(res.output).removeprefix("error: ")
    return "ok", n_features(out.read_text(encoding="utf-8"))


def face_export_cli(case: Case, runner: CliRunner, tmp: Path, **_: Any) -> tuple[str, Any]:
    out = tmp / f"{case.layer}.csv"
    args = ["export", "--layer", case.layer, "--format", "csv", "--out", str(out), "--lang", "en",
            *_where_args(case)]
    if "bbox" in case.params:
        args += ["--bbox", case.params["bbox"]]
    res = runner.invoke(cli_app, args)
    if res.exit_code != 0:
        assert res.exit_code == 1 and not out.exists(), res.output
        return "error", _norm(res.output).removeprefix("error: ")
    return "ok", sorted(pd.read_csv(out)["id"].tolist()) if out.stat().st_size else []


def face_read_layer(case: Case, dsn: str, **_: Any) -> tuple[str, Any]:
    try:
        gdf = read_layer(case.layer, where=[f"{k}={v}" for k, v in case.equals.items()],
                         bbox=case.params.get("bbox"), dsn=dsn)
    except CqlError as exc:     # read_layer names its argument first (issue 10), then the items API's message
        assert re.match(r"(where|bbox|bbox_crs|filter|datetime|crs|layer)[: ]", exc.en), exc.en
        return "error", re.sub(r"^(where|bbox_crs|filter|datetime|crs|layer): ", "", exc.en)
    return "ok", sorted(int(i) for i in gdf.index)


FACES = {"items": face_items, "tiles": face_tiles, "folium_route": face_folium_route, "map_cli": face_map_cli,
         "export_cli": face_export_cli, "read_layer": face_read_layer}


def test_every_case_means_the_same_on_every_face(client: TestClient, sample_db: str, cli_env: CliRunner,
                                                 tmp_path: Path) -> None:
    table = cases(_values(sample_db))
    assert len({c.name for c in table}) == len(table)
    drawn: list[int] = []
    for case in table:
        faces = [name for name, keys in FACE_KEYS.items() if case.keys() <= keys
                 and (name != "tiles" or case.layer == "auction_plots" or case.error)
                 # the CLI's --filter-lang has a default and is read only with --filter
                 and (name != "map_cli" or "filter" in case.params or "filter-lang" not in case.params)]
        assert "items" in faces
        results = {}
        for name in faces:
            tmp = tmp_path / case.name.replace(" ", "_").replace("/", "_") / name
            tmp.mkdir(parents=True)
            results[name] = FACES[name](client=client, case=case, dsn=sample_db, runner=cli_env, tmp=tmp)
        if case.items_error is not None:
            kind, msg = results.pop("items")
            assert kind == "error" and case.items_error in msg, (case.name, msg)
            results = {"items": results.pop("folium_route"), **results}
        kind, ref = results["items"]
        if case.error is not None:
            assert kind == "error" and case.error in ref, (case.name, results)
            for name, (k, msg) in results.items():
                assert (k, msg) == ("error", ref), (case.name, name, msg, ref)
            continue
        assert kind == "ok", (case.name, ref)
        assert (len(ref) > 0) == case.nonempty, (case.name, len(ref))
        for name, (k, got) in results.items():
            assert k == "ok", (case.name, name, got)
            expected = len(ref) if name in ("folium_route", "map_cli") else ref
            if name == "tiles":     # a z8 tile does not draw every plot: the drawn ones that items selects
                drawn = drawn or face_tiles(client, Case("drawn", case.layer), sample_db)[1]
                expected = sorted(set(ref) & set(drawn))
                assert set(got) <= set(drawn)
            assert got == expected, (case.name, name)


# -- the parsers as units ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, box", [
    ("1,2,3,4", (1.0, 2.0, 3.0, 4.0)),
    ("1,2,0,3,4,9", (1.0, 2.0, 3.0, 4.0)),
    ("-1.5,-2,1e1,2.5", (-1.5, -2.0, 10.0, 2.5)),
    ("1,2,1,2", (1.0, 2.0, 1.0, 2.0)),
])
def test_parse_bbox(text: str, box: tuple[float, ...]) -> None:
    assert parse_bbox(text) == box


@pytest.mark.parametrize("text, start, end", [
    ("2026-10-01", "2026-10-01T00:00:00+00:00", "2026-10-01T23:59:59.999999+00:00"),
    ("2026-10-01/..", "2026-10-01T00:00:00+00:00", None),
    ("../2026-10-01T05:00:00Z", None, "2026-10-01T05:00:00+00:00"),
    ("2026-10-01T07:00:00+07:00/", "2026-10-01T07:00:00+07:00", None),
    ("2026-10-01T07:00:00", "2026-10-01T07:00:00+00:00", "2026-10-01T07:00:00+00:00"),
])
def test_parse_datetime(text: str, start: str | None, end: str | None) -> None:
    s, e = parse_datetime(text)
    assert (s.isoformat() if s else None, e.isoformat() if e else None) == (start, end)


def test_selection_is_one_cql2_expression_and_one_translation() -> None:
    from layers.catalog.registry import get_layer

    layer = get_layer("growing_areas")
    sel = parse_selection(layer, bbox="106,9,107,10", datetime="2026-01-01/..", equals={"markets": "CN"},
                          filter="area_m2 > 5")
    tree = sel.tree()
    assert tree is not None and tree["op"] == "and"
    assert [a["op"] for a in tree["args"]] == ["s_intersects", "t_intersects", "=", ">"]
    assert tree["args"][1]["args"][0] == {"interval": [{"property": "valid_from"}, {"property": "valid_to"}]}
    sql, params = sel.sql(4, "t.")
    assert "$5::float8" in sql and f"${4 + len(params)}::" in sql and "$4" not in sql
    tr = sel.translator(0, "t.", style="psycopg")
    psql = sel.where(tr)
    assert "%(p1)s::float8" in psql and "$" not in psql and set(tr.named_params()) == {
        f"p{i + 1}" for i in range(len(params))}
    assert sel.description() == "markets=CN; bbox=106,9,107,10; datetime=2026-01-01/..; filter=area_m2 > 5"


@pytest.mark.parametrize("pairs, out, error", [
    (["status=sold"], {"status": "sold"}, None),
    (["status=sold;commune_code=86001", "crop = durian "], {"status": "sold", "commune_code": "86001",
                                                          "crop": "durian"}, None),
    (["status"], None, "expected queryable=value"),
    (["=x"], None, "expected queryable=value"),
    (["status=a", "status=b"], None, "may be given only once"),
])
def test_parse_where(pairs: list[str], out: dict[str, str] | None, error: str | None) -> None:
    if error is None:
        assert parse_where(pairs) == out
    else:
        with pytest.raises(CqlError) as err:
            parse_where(pairs)
        assert error in err.value.en


@pytest.mark.parametrize("value", ["0001-01-01/9999-12-31", "9999-12-31", "../9999-12-31",
                                   "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00/..",
                                   "9999-12-31T23:59:59-14:00/.."])
def test_datetime_at_the_ends_of_the_calendar_is_never_a_500(client: TestClient, value: str) -> None:
    """Found by `make fuzz`: the last day of year 9999 has no next day (OverflowError -> 500)."""
    r = client.get("/collections/trace_events/items", params={"datetime": value, "limit": 1})
    assert r.status_code in (200, 400), r.text[:300]
    if r.status_code == 400:
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("query", ["filter=crop%20%3D", "filter=nope%20%3D%201", "filter-lang=cql2-json&filter=%7Bbad"])
def test_a_bad_filter_names_the_parameter(client: TestClient, query: str) -> None:
    """Every selection error names its parameter; a filter's syntax or property error too, in both languages, on
    items and on tiles (which parse the same selection)."""
    for path in ("/collections/growing_areas/items", "/collections/growing_areas/tiles/WebMercatorQuad/10/800/480"):
        for lang in ("vi", "en"):
            r = client.get(f"{path}?{query}&lang={lang}")
            assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["detail"].startswith("filter: "), r.json()
