"""audit triggers, append-only history, updated_at, VN-2000 spatial_ref_sys rows

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDITED = ("admin_units", "parcels", "auction_plots", "growing_areas", "packing_facilities",
           "trace_lots", "trace_events")
WITH_UPDATED_AT = ("admin_units", "parcels", "auction_plots", "growing_areas", "packing_facilities",
                   "trace_lots")

# Frozen copy of gis.crs's VN-2000 definitions at the time of this migration (official Decision 05/2007
# parameters in position-vector +towgs84 form).
TOWGS84 = "-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278"
TM3 = {9205: 103.0, 9206: 104.0, 9207: 104.5, 9208: 104.75, 5897: 105.0, 9209: 105.5, 9210: 105.75,
       9211: 106.0, 9212: 106.25, 9213: 106.5, 9214: 107.0, 9215: 107.25, 9216: 107.5, 5899: 107.75,
       5898: 108.0, 9217: 108.25, 9218: 108.5}


def _srs_rows() -> list[tuple[int, str]]:
    rows = [(984756, f"+proj=longlat +ellps=WGS84 +towgs84={TOWGS84} +no_defs"),
            (983405, f"+proj=utm +zone=48 +ellps=WGS84 +towgs84={TOWGS84} +units=m +no_defs"),
            (983406, f"+proj=utm +zone=49 +ellps=WGS84 +towgs84={TOWGS84} +units=m +no_defs")]
    for epsg, lon0 in TM3.items():
        rows.append((980000 + epsg % 10000,
                     f"+proj=tmerc +lat_0=0 +lon_0={lon0} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
                     f"+towgs84={TOWGS84} +units=m +no_defs"))
    return rows


AUDIT_FN = """
CREATE OR REPLACE FUNCTION datso_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  who text := coalesce(nullif(current_setting('datso.actor', true), ''), session_user);
  why text := nullif(current_setting('datso.reason', true), '');
BEGIN
  IF coalesce(current_setting('datso.audit', true), '') = 'off' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO history (layer, feature_id, action, actor, reason, after)
    SELECT TG_TABLE_NAME, n.id, 'insert', who, why, to_jsonb(n) - 'geom_3857' FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO history (layer, feature_id, action, actor, reason, before, after)
    SELECT TG_TABLE_NAME, n.id, 'update', who, why, to_jsonb(o) - 'geom_3857', to_jsonb(n) - 'geom_3857'
    FROM new_rows n JOIN old_rows o USING (id);
  ELSE
    INSERT INTO history (layer, feature_id, action, actor, reason, before)
    SELECT TG_TABLE_NAME, o.id, 'delete', who, why, to_jsonb(o) - 'geom_3857' FROM old_rows o;
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION datso_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'history is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE FUNCTION datso_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := clock_timestamp();
  RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.execute(AUDIT_FN)
    for t in AUDITED:
        op.execute(f"CREATE TRIGGER {t}_audit_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_audit()")
        op.execute(f"CREATE TRIGGER {t}_audit_upd AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION datso_audit()")
        op.execute(f"CREATE TRIGGER {t}_audit_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_audit()")
    for t in WITH_UPDATED_AT:
        op.execute(f"CREATE TRIGGER {t}_touch BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION datso_touch()")
    op.execute("CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON history "
               "FOR EACH ROW EXECUTE FUNCTION datso_history_append_only()")
    op.execute("CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history "
               "FOR EACH STATEMENT EXECUTE FUNCTION datso_history_append_only()")
    for srid, proj4 in _srs_rows():
        op.execute(
            "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
            f"VALUES ({srid}, 'DATSO', {srid}, '', '{proj4}') "
            "ON CONFLICT (srid) DO UPDATE SET proj4text = EXCLUDED.proj4text, srtext = '', auth_name = 'DATSO'"
        )


def downgrade() -> None:
    for srid, _ in _srs_rows():
        op.execute(f"DELETE FROM spatial_ref_sys WHERE srid = {srid}")
    op.execute("DROP TRIGGER IF EXISTS history_no_truncate ON history")
    op.execute("DROP TRIGGER IF EXISTS history_append_only ON history")
    for t in WITH_UPDATED_AT:
        op.execute(f"DROP TRIGGER IF EXISTS {t}_touch ON {t}")
    for t in AUDITED:
        for suffix in ("ins", "upd", "del"):
            op.execute(f"DROP TRIGGER IF EXISTS {t}_audit_{suffix} ON {t}")
    op.execute("DROP FUNCTION IF EXISTS datso_touch()")
    op.execute("DROP FUNCTION IF EXISTS datso_history_append_only()")
    op.execute("DROP FUNCTION IF EXISTS datso_audit()")
