"""Values as citizens read them: no internal ids (an auction plot's parcels by sheet/number), units written once,
English pages in English formats, CSV exports with readable labels, Folium popups with the important fields
first. Checked on the real pages, exports and popups against SQL."""

from __future__ import annotations

import csv
import html
import io
import json
import re

import psycopg
import pytest

from layers.catalog import formats
from layers.catalog.registry import LAYERS, get_layer
from layers.store import vocab


def _rows(page: str) -> dict[str, str]:
    """{th: td} of an item page's property table (text, entities decoded)."""
    out = {}
    for th, td in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page, re.S):
        out[html.unescape(re.sub("<[^>]+>", "", th)).strip()] = html.unescape(re.sub("<[^>]+>", "", td)).strip()
    return out


def _plot(conn: psycopg.Connection) -> tuple[int, str, list[tuple[int, int, int]]]:
    pid, code = conn.execute("SELECT id, plot_code FROM auction_plots WHERE status = 'sold' ORDER BY id LIMIT 1"
                             ).fetchone()
    parcels = conn.execute("SELECT p.id, p.map_sheet, p.parcel_no FROM parcels p JOIN auction_plots a "
                           "ON p.id = ANY(a.parcel_ids) WHERE a.id = %s ORDER BY 2, 3", (pid,)).fetchall()
    return pid, code, parcels


def test_item_page_shows_parcels_by_sheet_and_number(client, conn: psycopg.Connection) -> None:
    pid, code, parcels = _plot(conn)
    assert parcels
    for lang, word in (("vi", "thửa {n}, tờ {s}"), ("en", "parcel {n}, sheet {s}")):
        page = client.get(f"/collections/auction_plots/items/{pid}", params={"f": "html", "lang": lang}).text
        rows = _rows(page)
        linked = rows["Thửa liên quan" if lang == "vi" else "Linked parcels"]
        assert linked == "; ".join(word.format(n=n, s=s) for _, s, n in parcels)
        for parcel_id, _, _ in parcels:                 # the internal id is nowhere in the table
            assert not re.search(rf"(?<![\d.,]){parcel_id}(?![\d.,])", linked)
        h1 = re.search(r"<h1>(.*?)</h1>", page).group(1)
        assert code in h1 and f"#{pid}" not in h1       # the plot's own code, not its row id


def test_items_page_resolves_references(client, conn: psycopg.Connection) -> None:
    page = client.get("/collections/auction_plots/items", params={"f": "html", "limit": 5}).text
    firsts = conn.execute("SELECT p.map_sheet, p.parcel_no FROM (SELECT id, parcel_ids FROM auction_plots "
                          "ORDER BY id LIMIT 5) a JOIN parcels p ON p.id = a.parcel_ids[1]").fetchall()
    for sheet, no in firsts:
        assert f"thửa {no}, tờ {sheet}" in page


def test_units_written_once(client, conn: psycopg.Connection) -> None:
    pid, _, _ = _plot(conn)
    area, price = conn.execute("SELECT area_m2, starting_price_vnd FROM auction_plots WHERE id = %s", (pid,)
                               ).fetchone()
    rows = _rows(client.get(f"/collections/auction_plots/items/{pid}", params={"f": "html"}).text)
    assert rows["Diện tích"] == formats.format_number(area) + " m²"
    assert rows["Giá khởi điểm"] == f"{price:,}".replace(",", ".") + " ₫"
    for title, text in rows.items():        # no "(m²)" / "(₫)" heading above a value that carries the unit
        unit = re.search(r"\(([^)]*)\)$", title)
        assert unit is None or not text.endswith(unit.group(1)), (title, text)
    for layer in LAYERS.values():
        for f in layer.public_fields:
            assert f.unit is None or formats.display_title(f, "vi") != f.title_vi or f"({f.unit})" not in f.title_vi


def test_english_item_page(client, conn: psycopg.Connection) -> None:
    pid, _, _ = _plot(conn)
    area, price, result, use, auction = conn.execute(
        "SELECT area_m2, starting_price_vnd, result_price_vnd, land_use_code, auction_date FROM auction_plots "
        "WHERE id = %s", (pid,)).fetchone()
    page = client.get(f"/collections/auction_plots/items/{pid}", params={"f": "html", "lang": "en"}).text
    rows = _rows(page)
    assert rows["Area"] == f"{area:,}".rstrip("0").rstrip(".") + " m²"          # 1,467.9 m²
    assert rows["Starting price"] == f"{price:,} VND" and rows["Result price"] == f"{result:,} VND"
    assert rows["Purpose"] == f"{use} – {vocab.LAND_USE_NAMES_EN[use]}"
    assert rows["Status"] == "Sold" and rows["Term"] in ("Long-term", "50 năm")
    local = auction.astimezone(formats.VN_TZ).date()
    assert rows["Auction date"] == f"{local.day} {local.strftime('%b %Y')}"
    assert not any(re.fullmatch(r"\d{1,3}(\.\d{3})+ (₫|VND)", v) for v in rows.values())   # no Vietnamese grouping


def test_english_growing_area_page(client, conn: psycopg.Connection) -> None:
    gid, crop = conn.execute("SELECT id, crop FROM growing_areas WHERE crop = 'dragon_fruit' ORDER BY id LIMIT 1"
                             ).fetchone()
    rows = _rows(client.get(f"/collections/growing_areas/items/{gid}", params={"f": "html", "lang": "en"}).text)
    assert rows["Crop"] == "dragon fruit"
    assert rows["Status"] in {s.label_en for s in get_layer("growing_areas").lifecycle.states}


def test_folium_popup_fields_and_values(client, conn: psycopg.Connection) -> None:
    page = client.get("/maps/auction_plots.html", params={"status": "sold", "lang": "en"}).text
    popups = re.findall(r"let fields = (\[.*?\]);", page)
    fields = json.loads(popups[-1])                      # the popup (the first list is the tooltip)
    assert fields[:2] == ["plot_code", "status"]         # label and status first
    assert fields.index("result_price_vnd") < 8 and fields.index("starting_price_vnd") < 8
    assert "max-height:45vh" in page                     # the popup scrolls inside a phone screen
    linked = re.findall(r'"parcel_ids": "([^"]*)"', page)
    sold = conn.execute("SELECT count(*) FROM auction_plots WHERE status = 'sold'").fetchone()[0]
    assert len(linked) == sold and all(re.fullmatch(r"parcel \d+, sheet \d+(; parcel \d+, sheet \d+)*", v)
                                       for v in linked)
    aliases = json.loads(re.findall(r"let aliases = (\[.*?\]);", page)[-1])
    assert "Area" in aliases and not any(a.endswith("(VND)") or a.endswith("(m²)") for a in aliases)


def test_csv_with_readable_labels(client, conn: psycopg.Connection) -> None:
    pid = conn.execute("SELECT id FROM parcels WHERE cardinality(land_use_codes) = 2 ORDER BY id LIMIT 1"
                       ).fetchone()[0]
    uses = conn.execute("SELECT land_use_codes, map_sheet FROM parcels WHERE id = %s", (pid,)).fetchone()
    params = {"f": "csv", "labels": "true", "map_sheet": uses[1], "limit": 1000}
    for lang, names in (("vi", vocab.LAND_USE_CODES), ("en", vocab.LAND_USE_NAMES_EN)):
        r = client.get("/collections/parcels/items", params={**params, "lang": lang})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = {int(row["id"]): row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
        row = rows[pid]
        title = "Mục đích sử dụng" if lang == "vi" else "Land use"
        assert row[title] == "; ".join(f"{c} – {names[c]}" for c in uses[0])     # a list, not JSON
        assert ("Diện tích (m²)" if lang == "vi" else "Area (m²)") in row            # unit once, in the heading
        assert "commune_code" not in row
    raw = client.get("/collections/parcels/items", params={"f": "csv", "map_sheet": uses[1], "limit": 1000})
    assert "land_use_codes" in raw.text.splitlines()[0]                          # default: machine columns
    sold = client.get("/collections/auction_plots/items", params={"f": "csv", "labels": "true", "status": "sold",
                                                                  "lang": "en", "limit": 3})
    rows = list(csv.DictReader(io.StringIO(sold.content.decode("utf-8-sig"))))
    assert rows and all(row["Status"] == "Sold" and re.fullmatch(r"parcel \d+, sheet \d+.*", row["Linked parcels"])
                        for row in rows)


@pytest.mark.parametrize("value", ["yes please", "2", "truee"])
def test_csv_labels_bad_value(client, value: str) -> None:
    r = client.get("/collections/parcels/items", params={"f": "csv", "labels": value})
    assert r.status_code == 400 and "labels" in r.json()["detail"]


def test_formats_by_language() -> None:
    area = get_layer("parcels").get_field("area_m2")
    price = get_layer("land_price_zones").get_field("price_residential_vnd")
    pct = get_layer("auction_plots").get_field("deposit_pct")
    assert area is not None and price is not None and pct is not None
    assert formats.format_value(area, 1234.5) == "1.234,5 m²"
    assert formats.format_value(area, 1234.5, "en") == "1,234.5 m²"
    assert formats.format_value(price, 15000000) == "15.000.000 ₫/m²"
    assert formats.format_value(price, 15000000, "en") == "15,000,000 VND/m²"
    assert formats.format_value(pct, 20) == "20%"
    assert formats.display_title(area, "vi") == "Diện tích" and formats.display_title(price, "en") == \
        "Residential land price"
    assert formats.format_date("2026-11-06T17:30:00+00:00", "en") == "7 Nov 2026"
    assert set(vocab.LAND_USE_NAMES_EN) == set(vocab.LAND_USE_CODES)


def test_trace_event_page_names_its_lot(client, conn: psycopg.Connection) -> None:
    """Another declared reference (trace_events.lot_id -> trace_lots): the lot's number and GTIN, not its id."""
    eid, lot_id, lot, gtin = conn.execute(
        "SELECT e.id, l.id, l.lot_number, l.gtin FROM trace_events e JOIN trace_lots l ON l.id = e.lot_id "
        "ORDER BY e.id LIMIT 1").fetchone()
    rows = _rows(client.get(f"/collections/trace_events/items/{eid}", params={"f": "html"}).text)
    assert rows["Lô"] == f"lô {lot} (GTIN {gtin})"
    rows = _rows(client.get(f"/collections/trace_events/items/{eid}", params={"f": "html", "lang": "en"}).text)
    assert rows["Lot"] == f"lot {lot} (GTIN {gtin})"
    raw = client.get(f"/collections/trace_events/items/{eid}").json()
    assert raw["properties"]["lot_id"] == lot_id          # the API itself keeps the id (links, filters)
