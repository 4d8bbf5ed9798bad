"""The synthetic sample province: realistic, deterministic, labelled synthetic."""

from __future__ import annotations

import psycopg

from layers.store import vocab
from sample_data.generate import build_province


def test_sample_counts_and_labels(conn: psycopg.Connection) -> None:
    n = conn.execute("SELECT count(*), bool_and(synthetic) FROM parcels").fetchone()
    assert n is not None and n[0] >= 7500 and n[1] is True
    for table in ("auction_plots", "growing_areas", "packing_facilities", "trace_lots", "trace_events",
                  "admin_units"):
        row = conn.execute(f"SELECT count(*), bool_and(synthetic) FROM {table}").fetchone()
        assert row is not None and row[0] > 0 and row[1] is True, table


def test_every_auction_stage_and_crop_present(conn: psycopg.Connection) -> None:
    stages = {r[0] for r in conn.execute("SELECT DISTINCT status FROM auction_plots")}
    assert stages == set(vocab.AUCTION_STATUSES)
    crops = {r[0] for r in conn.execute("SELECT DISTINCT crop FROM growing_areas")}
    assert {"coconut", "durian", "pomelo", "dragon_fruit", "rice"} <= crops
    n = conn.execute("SELECT count(*) FROM auction_plots WHERE status = 'sold' AND result_price_vnd IS NULL"
                     ).fetchone()
    assert n is not None and n[0] == 0


def test_parcels_valid_disjoint_and_areas_match_geometry(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE NOT ST_IsValid(geom)), "
        "max(abs(area_m2 - ST_Area(geom::geography)) / area_m2) FROM parcels").fetchone()
    assert row is not None and row[0] == 0 and row[1] < 0.01
    overlaps = conn.execute(
        "SELECT count(*) FROM parcels a JOIN parcels b ON a.id < b.id AND a.geom && b.geom "
        "AND ST_Intersects(a.geom, b.geom)").fetchone()
    assert overlaps is not None and overlaps[0] == 0


def test_parcels_lie_in_their_commune(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT count(*) FROM parcels p JOIN admin_units a ON a.code = p.commune_code AND a.scheme = '2025' "
        "WHERE NOT ST_Intersects(a.geom, ST_PointOnSurface(p.geom))").fetchone()
    assert row is not None and row[0] < 10  # only lots whose centroid sits on a commune boundary


def test_crosswalk_shares_cover_each_old_commune(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT old_code, sum(share) FROM admin_crosswalk WHERE old_level = 'commune' GROUP BY old_code").fetchall()
    assert rows and all(0.9 <= float(s) <= 1.0001 for _, s in rows)
    split = conn.execute("SELECT count(*) FROM (SELECT old_code FROM admin_crosswalk GROUP BY old_code "
                         "HAVING count(*) > 1) s").fetchone()
    assert split is not None and split[0] > 0  # some old communes were split: many-to-many


def test_generation_is_deterministic() -> None:
    a, b = build_province(7), build_province(7)
    assert [(c[0], c[1], c[2].wkb) for c in a.communes] == [(c[0], c[1], c[2].wkb) for c in b.communes]
    c = build_province(8)
    assert [x[2].wkb for x in a.communes] != [x[2].wkb for x in c.communes]
