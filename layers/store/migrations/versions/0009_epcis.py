"""EPCIS 2.0 capture and query: trace_events keeps the whole event; GLNs on areas and packing houses; producer
and packer accounts

- trace_events: event_id becomes text (an EPCIS eventID may be a long ni:/// hash URI); new columns parent_id,
  child_epcs, input_/output_quantity_list, any_ids (every EPC, parentID and quantity class: MATCH_anyEPC and
  the trace walk, GIN), biz_transaction_list, source_list, destination_list, sensor_element_list, raw (the event
  as captured), content_hash (idempotent re-capture), record_time, captured_by; B-tree indexes on biz_step,
  biz_location, read_point, parent_id, record_time and GIN on each EPC array. Existing rows get any_ids from
  their EPC lists and quantity classes.
- growing_areas, packing_facilities: gln (13 digits, unique, nullable).
- users: areas (producer) and facilities (packer); roles producer and packer (users and api_keys); a producer's
  scope is their growing-area codes, a packer's their packing-house codes.

Downgrade drops the new columns (producer/packer users and their keys first).

Revision ID: 0009
Revises: 0006 (the lead re-chains)
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON_LISTS = ("input_quantity_list", "output_quantity_list", "biz_transaction_list", "source_list",
               "destination_list", "sensor_element_list")
_GIN = ("epc_list", "child_epcs", "input_epcs", "output_epcs", "any_ids")
_BTREE = ("record_time", "biz_step", "biz_location", "read_point", "parent_id")


def upgrade() -> None:
    op.alter_column("trace_events", "event_id", type_=sa.Text(), existing_type=sa.String(length=80),
                    existing_nullable=False)
    op.add_column("trace_events", sa.Column("parent_id", sa.Text(), nullable=True))
    op.add_column("trace_events", sa.Column("child_epcs", postgresql.ARRAY(sa.Text()), server_default="{}",
                                            nullable=False))
    for c in _JSON_LISTS[:2]:
        op.add_column("trace_events", sa.Column(c, postgresql.JSONB(), server_default="[]", nullable=False))
    op.add_column("trace_events", sa.Column("any_ids", postgresql.ARRAY(sa.Text()), server_default="{}",
                                            nullable=False))
    for c in _JSON_LISTS[2:]:
        op.add_column("trace_events", sa.Column(c, postgresql.JSONB(), server_default="[]", nullable=False))
    op.add_column("trace_events", sa.Column("raw", postgresql.JSONB(), nullable=True))
    op.add_column("trace_events", sa.Column("content_hash", sa.String(length=64), nullable=True))
    op.add_column("trace_events", sa.Column("record_time", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                                            nullable=False))
    op.add_column("trace_events", sa.Column("captured_by", sa.Text(), nullable=True))
    op.execute("""
        UPDATE trace_events SET any_ids = ARRAY(SELECT DISTINCT x FROM unnest(
            epc_list || input_epcs || output_epcs
            || ARRAY(SELECT jsonb_array_elements(quantity_list) ->> 'epcClass')) AS x WHERE x IS NOT NULL)
    """)
    for c in _BTREE:
        op.create_index(op.f(f"ix_trace_events_{c}"), "trace_events", [c], unique=False)
    for c in _GIN:
        op.create_index(op.f(f"ix_trace_events_{c}"), "trace_events", [c], unique=False, postgresql_using="gin")

    for t in ("growing_areas", "packing_facilities"):
        op.add_column(t, sa.Column("gln", sa.String(length=13), nullable=True))
        op.create_unique_constraint(op.f(f"uq_{t}_gln"), t, ["gln"])
        op.create_check_constraint(op.f(f"ck_{t}_gln_digits"), t, "gln ~ '^[0-9]{13}$'")

    op.add_column("users", sa.Column("areas", sa.ARRAY(sa.String(length=40)), server_default=sa.text("'{}'"),
                                     nullable=False))
    op.add_column("users", sa.Column("facilities", sa.ARRAY(sa.String(length=40)), server_default=sa.text("'{}'"),
                                     nullable=False))
    for t in ("users", "api_keys"):
        op.drop_constraint(op.f(f"ck_{t}_role"), t, type_="check")
        op.create_check_constraint(op.f(f"ck_{t}_role"), t, "role IN ('officer', 'admin', 'producer', 'packer')")
    op.drop_constraint(op.f("ck_users_scope"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_scope"), "users",
                               "national OR cardinality(provinces) >= 1 OR (role = 'producer' AND "
                               "cardinality(areas) >= 1) OR (role = 'packer' AND cardinality(facilities) >= 1)")


def downgrade() -> None:
    op.execute("DELETE FROM users WHERE role IN ('producer', 'packer')")      # their keys go with them (cascade)
    op.drop_constraint(op.f("ck_users_scope"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_scope"), "users", "national OR cardinality(provinces) >= 1")
    for t in ("users", "api_keys"):
        op.drop_constraint(op.f(f"ck_{t}_role"), t, type_="check")
        op.create_check_constraint(op.f(f"ck_{t}_role"), t, "role IN ('officer', 'admin')")
    op.drop_column("users", "facilities")
    op.drop_column("users", "areas")
    for t in ("growing_areas", "packing_facilities"):
        op.drop_constraint(op.f(f"ck_{t}_gln_digits"), t, type_="check")
        op.drop_constraint(op.f(f"uq_{t}_gln"), t, type_="unique")
        op.drop_column(t, "gln")
    for c in _GIN + _BTREE:
        op.drop_index(op.f(f"ix_trace_events_{c}"), table_name="trace_events")
    for c in ("captured_by", "record_time", "content_hash", "raw", *_JSON_LISTS, "any_ids", "child_epcs",
              "parent_id"):
        op.drop_column("trace_events", c)
    op.alter_column("trace_events", "event_id", type_=sa.String(length=80), existing_type=sa.Text(),
                    existing_nullable=False)
