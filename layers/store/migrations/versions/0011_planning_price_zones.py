"""planning zones and land-price zones: two new layers (tables, audit/touch/tile triggers, date ranges)

`planning_zones`: the land-use plan class (Circular 08/2024/TT-BTNMT code) of an area for a plan period, with
the approving decision. `land_price_zones`: a road segment and position (vị trí 1-4) of the province's land-price
table, with the price per m² of each land type, the decision and its year. Both are layers like the others
(registry entries in layers/catalog/registry.py): items, tiles, exports and styles need no code of their own.

Revision ID: 0011
Revises: 0005
"""
from collections.abc import Sequence
from typing import Any

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("planning_zones", "land_price_zones")
# frozen copy of vocab.PLAN_CLASSES (the Circular 08/2024 land-use codes) at the time of this migration
PLAN_CLASSES = ("LUC", "LUK", "HNK", "CLN", "RDD", "RPH", "RSX", "NTS", "CNT", "LMU", "NKH", "ONT", "ODT", "TSC",
                "CQP", "CAN", "DVH", "DYT", "DGD", "DTT", "DKH", "DSK", "CSK", "TMD", "SKC", "SKS", "SKN", "DGT",
                "DTL", "DDT", "DRA", "DNL", "TON", "TIN", "SON", "MNC", "PNK", "BCS", "DCS", "NCS")
LOW, HIGH = "1900-01-01", "2200-12-31"


def _geom(kind: str, srid: int) -> geoalchemy2.types.Geometry:
    return geoalchemy2.types.Geometry(geometry_type=kind, srid=srid, dimension=2, spatial_index=False,
                                      from_text="ST_GeomFromEWKT", name="geometry")


def _common_tail(table: str) -> list[Any]:
    return [
        sa.Column("synthetic", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("geom", _geom("MULTIPOLYGON", 4326), nullable=False),
        sa.Column("geom_3857", _geom("MULTIPOLYGON", 3857), sa.Computed("ST_Transform(geom, 3857)", persisted=True),
                  nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f(f"ck_{table}_geom_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("zone_code", name=op.f(f"uq_{table}_zone_code")),
    ]


def upgrade() -> None:
    classes = ", ".join(f"'{c}'" for c in PLAN_CLASSES)
    op.create_table(
        "planning_zones",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("zone_code", sa.String(length=32), nullable=False),
        sa.Column("plan_class", sa.String(length=4), nullable=False),
        sa.Column("plan_period", sa.String(length=9), nullable=False),
        sa.Column("decision_no", sa.Text(), nullable=True),
        sa.Column("decision_date", sa.Date(), nullable=True),
        sa.Column("commune_code", sa.String(length=8), nullable=False),
        sa.Column("area_m2", sa.Numeric(precision=14, scale=2), nullable=False),
        *_common_tail("planning_zones"),
        sa.CheckConstraint(f"plan_class IN ({classes})", name=op.f("ck_planning_zones_plan_class")),
        sa.CheckConstraint("plan_period ~ '^[0-9]{4}-[0-9]{4}$' AND left(plan_period, 4) < right(plan_period, 4)",
                           name=op.f("ck_planning_zones_plan_period")),
        sa.CheckConstraint("area_m2 > 0", name=op.f("ck_planning_zones_area_positive")),
    )
    op.create_index("ix_planning_zones_plan_class", "planning_zones", ["plan_class"])
    op.create_table(
        "land_price_zones",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("zone_code", sa.String(length=32), nullable=False),
        sa.Column("commune_code", sa.String(length=8), nullable=False),
        sa.Column("road_name", sa.Text(), nullable=True),
        sa.Column("segment", sa.Text(), nullable=True),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("area_kind", sa.String(length=8), nullable=False),
        sa.Column("price_residential_vnd", sa.BigInteger(), nullable=False),
        sa.Column("price_commercial_vnd", sa.BigInteger(), nullable=True),
        sa.Column("price_production_vnd", sa.BigInteger(), nullable=True),
        sa.Column("price_annual_crop_vnd", sa.BigInteger(), nullable=True),
        sa.Column("price_perennial_crop_vnd", sa.BigInteger(), nullable=True),
        sa.Column("price_aquaculture_vnd", sa.BigInteger(), nullable=True),
        sa.Column("decision_no", sa.Text(), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=True),
        sa.Column("price_year", sa.SmallInteger(), nullable=False),
        *_common_tail("land_price_zones"),
        sa.CheckConstraint("position BETWEEN 1 AND 4", name=op.f("ck_land_price_zones_position")),
        sa.CheckConstraint("area_kind IN ('urban', 'rural')", name=op.f("ck_land_price_zones_area_kind")),
        sa.CheckConstraint("price_residential_vnd > 0 AND coalesce(price_commercial_vnd, 1) > 0 "
                           "AND coalesce(price_production_vnd, 1) > 0 AND coalesce(price_annual_crop_vnd, 1) > 0 "
                           "AND coalesce(price_perennial_crop_vnd, 1) > 0 AND coalesce(price_aquaculture_vnd, 1) > 0",
                           name=op.f("ck_land_price_zones_prices_positive")),
        sa.CheckConstraint("price_year BETWEEN 1993 AND 2200", name=op.f("ck_land_price_zones_price_year")),
    )
    op.create_index("ix_land_price_zones_commune_code", "land_price_zones", ["commune_code"])
    for t in TABLES:
        op.create_index(f"ix_{t}_geom", t, ["geom"], postgresql_using="gist")
        op.create_index(f"ix_{t}_geom_3857", t, ["geom_3857"], postgresql_using="gist")
        # the same triggers as every layer table (0002 audit + updated_at, 0003 tile invalidation)
        op.execute(f"CREATE TRIGGER {t}_audit_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_audit()")
        op.execute(f"CREATE TRIGGER {t}_audit_upd AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION datso_audit()")
        op.execute(f"CREATE TRIGGER {t}_audit_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_audit()")
        op.execute(f"CREATE TRIGGER {t}_touch BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION datso_touch()")
        op.execute(f"CREATE TRIGGER {t}_tiles_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_tiles_notify()")
        op.execute(f"CREATE TRIGGER {t}_tiles_upd AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION datso_tiles_notify()")
        op.execute(f"CREATE TRIGGER {t}_tiles_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_tiles_notify()")
        op.execute(f"CREATE TRIGGER {t}_tiles_trunc AFTER TRUNCATE ON {t} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_tiles_notify()")
        # the date range of 0005
        op.execute(f"ALTER TABLE {t} ADD CONSTRAINT ck_{t}_decision_date_range "
                   f"CHECK (decision_date BETWEEN DATE '{LOW}' AND DATE '{HIGH}')")


def downgrade() -> None:
    for t in TABLES:
        op.drop_table(t)     # drops its indexes, constraints and triggers
