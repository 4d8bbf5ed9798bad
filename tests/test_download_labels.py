"""`labels=true` on the whole-selection CSV download (`items?f=csv&labels=true`): column titles from the registry
in the request language, values as people read them (state labels, dd/mm/yyyy, 1.250.000.000, có/không),
referenced parcels by sheet and number; resolved per batch; other formats and `datso export` keep machine
columns. Every expectation comes from SQL and the registry, not from the formatting module."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import psycopg
import pyogrio

from layers.catalog.registry import get_layer
from layers.query import download

LAYER = get_layer("auction_plots")


def _csv(client, **params: str) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    r = client.get("/collections/auction_plots/items", params={"f": "csv", "labels": "true", **params})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())            # Excel reads the Vietnamese
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))


def _vi_int(n: Decimal | int) -> str:
    return f"{int(n):,}".replace(",", ".")


def _vi_number(n: Decimal) -> str:
    text = f"{n:,.2f}".rstrip("0").rstrip(".")
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def _parcels(conn: psycopg.Connection, ids: list[int] | None, template: str) -> str:
    rows = conn.execute("SELECT map_sheet, parcel_no FROM parcels WHERE id = ANY(%s) ORDER BY map_sheet, parcel_no",
                        (ids or [],)).fetchall()
    return "; ".join(template.format(map_sheet=s, parcel_no=p) for s, p in rows)


def test_every_row_readable_in_both_languages(client, conn: psycopg.Connection) -> None:
    db = {r[0]: r for r in conn.execute(
        "SELECT id, status, auction_date, starting_price_vnd, deposit_pct, synthetic, parcel_ids, plot_code "
        "FROM auction_plots").fetchall()}
    states = {s.code: (s.label_vi, s.label_en) for s in LAYER.lifecycle.states}   # type: ignore[union-attr]
    for lang in ("vi", "en"):
        rows = _csv(client, lang=lang)
        assert len(rows) == len(db)                           # the whole selection, not a page
        t = {f.name: (f.title_vi if lang == "vi" else f.title_en) for f in LAYER.public_fields}
        assert list(rows[0])[0] == "id" and list(rows[0])[-1] == "wkt"
        assert set(t.values()) <= set(rows[0]) and "plot_code" not in rows[0]
        for row in rows:
            _, status, day, price, pct, synthetic, parcel_ids, code = db[int(row["id"])]
            assert row[t["plot_code"]] == code
            assert row[t["status"]] == states[status][0 if lang == "vi" else 1]
            if day is None:
                assert row[t["auction_date"]] == ""
            else:
                assert row[t["auction_date"]] == (day.strftime("%d/%m/%Y") if lang == "vi"
                                                  else f"{day.day} {day.strftime('%b %Y')}")
            assert row[t["starting_price_vnd"]] == (_vi_int(price) if lang == "vi" else f"{int(price):,}")
            assert "₫" not in row[t["starting_price_vnd"]] and "%" not in row[t["deposit_pct"]]   # unit in the title
            if lang == "vi":
                assert row[t["deposit_pct"]] == _vi_number(Decimal(str(pct)))
                assert row[t["synthetic"]] == ("có" if synthetic else "không")
            assert row[t["parcel_ids"]] == _parcels(conn, parcel_ids, "thửa {parcel_no}, tờ {map_sheet}" if lang == "vi"
                                                    else "parcel {parcel_no}, sheet {map_sheet}")


def test_filters_and_properties_apply(client, conn: psycopg.Connection) -> None:
    sold = conn.execute("SELECT count(*) FROM auction_plots WHERE status = 'sold'").fetchone()[0]
    rows = _csv(client, status="sold", properties="status,parcel_ids", lang="en")
    assert len(rows) == sold and sold > 0
    assert set(rows[0]) == {"id", "Status", "Linked parcels", "wkt"}


def test_batches_resolve_alike_at_any_size(sample_db: str) -> None:
    """References and values are resolved inside each batch: small batches give the very rows of one batch."""
    d = download.Download(LAYER, labels="vi")

    def rows(size: int) -> list[list[object]]:
        with psycopg.connect(sample_db) as c:
            download.prepare(c)
            out: list[list[object]] = []
            for b in download.batches(c, d, size=size):
                out += [[b.values[col.name][i] for col in download.columns(d)] for i in range(len(b))]
            return out

    small, whole = rows(3), rows(download.BATCH)
    assert small == whole and len(whole) > 3
    linked = [c.name for c in download.columns(d)].index("Thửa liên quan")
    assert any(str(r[linked]).startswith("thửa ") for r in whole)


def test_other_formats_ignore_labels(client, tmp_path: Path) -> None:
    r = client.get("/collections/auction_plots/items", params={"f": "gpkg", "labels": "true", "status": "sold"})
    assert r.status_code == 200
    path = tmp_path / "a.gpkg"
    path.write_bytes(r.content)
    cols = list(pyogrio.read_info(path)["fields"])
    assert "status" in cols and "parcel_ids" in cols and "Trạng thái" not in cols
    raw = client.get("/collections/auction_plots/items", params={"f": "csv", "labels": "false", "limit": 1})
    assert raw.text.lstrip("\ufeff").splitlines()[0].split(",")[:3] == ["id", *[f.name for f in LAYER.public_fields][:2]]
