"""Migrations and constraints on a real PostGIS."""

from __future__ import annotations

import psycopg
import pytest

from layers.settings import Settings
from layers.store import db as dbmod
from layers.store import pgcluster
from layers.store.models import AUDITED_TABLES


@pytest.fixture()
def scratch(settings: Settings):  # type: ignore[no-untyped-def]
    name = settings.db_name + "_scratch"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    yield s
    pgcluster.drop_database(s, name)


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as c:
        return {r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'")}


def test_migrations_up_and_down(scratch: Settings) -> None:
    dsn = scratch.dsn()
    assert _tables(dsn) == set()
    dbmod.migrate(scratch)
    tables = _tables(dsn)
    assert set(AUDITED_TABLES) | {"history", "api_keys", "admin_crosswalk", "alembic_version"} <= tables
    with psycopg.connect(dsn) as c:
        n = c.execute("SELECT count(*) FROM spatial_ref_sys WHERE auth_name = 'DATSO'").fetchone()
        assert n is not None and n[0] == 20
    dbmod.downgrade(scratch)
    assert _tables(dsn) == {"alembic_version"}
    with psycopg.connect(dsn) as c:
        n = c.execute("SELECT count(*) FROM spatial_ref_sys WHERE auth_name = 'DATSO'").fetchone()
        assert n is not None and n[0] == 0
    dbmod.migrate(scratch)
    assert set(AUDITED_TABLES) <= _tables(dsn)


SQUARE = "ST_GeomFromText('MULTIPOLYGON(((106.3 10.2,106.301 10.2,106.301 10.201,106.3 10.201,106.3 10.2)))',4326)"
BOWTIE = "ST_GeomFromText('MULTIPOLYGON(((106.3 10.2,106.301 10.201,106.301 10.2,106.3 10.201,106.3 10.2)))',4326)"

PARCEL = ("INSERT INTO parcels (commune_code, map_sheet, parcel_no, area_m2, land_use_codes, status, geom) "
          "VALUES ({commune}, {sheet}, {no}, {area}, {codes}, {status}, {geom})")
OK = {"commune": "'86001'", "sheet": "1", "no": "1", "area": "120", "codes": "ARRAY['ONT']",
      "status": "'managed'", "geom": SQUARE}


@pytest.mark.parametrize("override, constraint", [
    ({"geom": BOWTIE}, "geom_valid"),
    ({"codes": "ARRAY['XYZ']"}, "land_use_codes"),
    ({"codes": "ARRAY[]::varchar[]"}, "land_use_nonempty"),
    ({"status": "'stolen'"}, "status"),
    ({"area": "-5"}, "area_positive"),
    ({"sheet": "0"}, "sheet_parcel_positive"),
    ({"geom": "ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))',3857)"}, "geometry SRID"),
    ({"geom": "ST_GeomFromText('POINT(106.3 10.2)',4326)"}, "Geometry type"),
])
def test_parcel_constraints_refuse_bad_rows(empty_db: str, override: dict[str, str], constraint: str) -> None:
    with psycopg.connect(empty_db) as c:
        with pytest.raises(psycopg.Error) as err:
            c.execute(PARCEL.format(**{**OK, **override}))
        assert constraint.lower() in str(err.value).lower()


def test_duplicate_parcel_key_and_codes_refused(empty_db: str) -> None:
    with psycopg.connect(empty_db) as c:
        c.execute(PARCEL.format(**{**OK, "no": "9001"}))
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute(PARCEL.format(**{**OK, "no": "9001"}))
        c.rollback()


@pytest.mark.parametrize("sql, fragment", [
    ("INSERT INTO auction_plots (plot_code, commune_code, area_m2, land_use_code, starting_price_vnd, deposit_vnd,"
     " deposit_pct, status, geom) VALUES ('X1','86001',100,'ONT',1000,100,10,'sold'," + SQUARE + ")",
     "sold_has_price"),
    ("INSERT INTO auction_plots (plot_code, commune_code, area_m2, land_use_code, starting_price_vnd, deposit_vnd,"
     " deposit_pct, status, geom) VALUES ('X2','86001',100,'ONT',1000,100,120,'planned'," + SQUARE + ")",
     "deposit_pct"),
    ("INSERT INTO growing_areas (code, crop, area_m2, owner, commune_code, status, geom) VALUES "
     "('G1','coffee',100,'A','86001','draft'," + SQUARE + ")", "crop"),
    ("INSERT INTO growing_areas (code, crop, area_m2, owner, commune_code, status, geom) VALUES "
     "('G2','durian',100,'A','86001','revoked'," + SQUARE + ")", "reason_required"),
    ("INSERT INTO trace_lots (gtin, lot_number, product, quantity) VALUES ('123','L1','x',1)", "gtin_digits"),
    ("INSERT INTO trace_events (event_id, event_type, action, event_time) VALUES "
     "('e1','ObjectEvent',NULL,now())", "action_required"),
    ("INSERT INTO admin_units (code, level, name, valid_from) VALUES ('8A','commune','x','2025-07-01')",
     "code_digits"),
    ("INSERT INTO packing_facilities (code, name, commune_code, geom) VALUES "
     "('P1','x','86001',ST_GeomFromText('LINESTRING(106 10,106.1 10.1)',4326))", "geom_kind"),
])
def test_other_constraints(empty_db: str, sql: str, fragment: str) -> None:
    with psycopg.connect(empty_db) as c:
        with pytest.raises(psycopg.Error) as err:
            c.execute(sql)
        assert fragment in str(err.value)


def test_history_is_written_and_append_only(empty_db: str) -> None:
    with psycopg.connect(empty_db) as c:
        c.execute("SET LOCAL datso.actor = 'officer:test'")
        fid = c.execute(PARCEL.format(**{**OK, "no": "9100"}) + " RETURNING id").fetchone()[0]  # type: ignore[index]
        c.execute("UPDATE parcels SET status = 'leased' WHERE id = %s", (fid,))
        rows = c.execute("SELECT action, actor, before->>'status', after->>'status' FROM history "
                         "WHERE layer = 'parcels' AND feature_id = %s ORDER BY id", (fid,)).fetchall()
        assert rows == [("insert", "officer:test", None, "managed"), ("update", "officer:test", "managed", "leased")]
        c.commit()
        with pytest.raises(psycopg.Error, match="append-only"):
            c.execute("DELETE FROM history WHERE feature_id = %s", (fid,))
        c.rollback()
        with pytest.raises(psycopg.Error, match="append-only"):
            c.execute("UPDATE history SET actor = 'x' WHERE feature_id = %s", (fid,))
        c.rollback()
        c.execute("DELETE FROM parcels WHERE id = %s", (fid,))
        c.commit()
        n = c.execute("SELECT count(*) FROM history WHERE feature_id = %s", (fid,)).fetchone()
        assert n is not None and n[0] == 3


def test_history_keeps_old_and_new_geometry(empty_db: str) -> None:
    with psycopg.connect(empty_db) as c:
        fid = c.execute(PARCEL.format(**{**OK, "no": "9200"}) + " RETURNING id").fetchone()[0]  # type: ignore[index]
        c.execute("UPDATE parcels SET geom = ST_Multi(ST_Translate(ST_GeometryN(geom, 1), 0.001, 0)) "
                  "WHERE id = %s", (fid,))
        row = c.execute("SELECT ST_Equals(geom_before, ST_Translate(geom_after, -0.001, 0)), after ? 'geom', "
                        "after ->> 'map_sheet' FROM history WHERE feature_id = %s AND layer = 'parcels' "
                        "AND action = 'update'", (fid,)).fetchone()
        assert row == (True, False, "1")
        c.rollback()


def test_models_and_migrations_agree(empty_db: str, settings: Settings) -> None:
    """Alembic autogenerate finds nothing to do: the models and the migrations describe the same schema.
    (Expression indexes are skipped: Alembic cannot compare them, it always proposes to add them.)"""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from layers.store.connect import sqlalchemy_url
    from layers.store.migrations_filter import include_object
    from layers.store.models import Base

    engine = create_engine(sqlalchemy_url(settings))
    with engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"include_object": include_object, "compare_type": True})
        diff = [d for d in compare_metadata(ctx, Base.metadata)
                if not (d[0] == "add_index" and d[1].name.endswith("_tile_box_area"))]
    engine.dispose()
    assert diff == []
