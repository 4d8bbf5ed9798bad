"""registration of growing areas and packing houses: codes granted at activation, decisions, counters

- `code` becomes nullable on `growing_areas` and `packing_facilities` (a draft has no code; the UNIQUE constraint
  stays, NULLs do not collide), and a CHECK says only drafts (and drafts refused, i.e. revoked) may lack one.
  Existing rows keep their codes.
- `decision_no`, `decision_date`: the decision that granted the code.
- packing houses get the lifecycle of growing areas: `status_reason` (required when suspended/revoked),
  validity dates and the `expired` state.
- `code_counters`: the last sequence number granted per code prefix; it only increases, so a code is never
  granted twice, also after revocation (never max()+1 over live rows).

Revision ID: 0007
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANTED = "code IS NOT NULL OR status IN ('draft', 'revoked')"
LOW, HIGH = "1900-01-01", "2200-12-31"


def _date_range(table: str, column: str) -> None:
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_{column}_range "
               f"CHECK ({column} BETWEEN DATE '{LOW}' AND DATE '{HIGH}')")


def upgrade() -> None:
    for table in ("growing_areas", "packing_facilities"):
        op.alter_column(table, "code", existing_type=sa.String(40), nullable=True)
        op.add_column(table, sa.Column("decision_no", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("decision_date", sa.Date(), nullable=True))
        op.create_check_constraint(op.f(f"ck_{table}_code_granted"), table, GRANTED)
        _date_range(table, "decision_date")
    op.add_column("packing_facilities", sa.Column("status_reason", sa.Text(), nullable=True))
    op.add_column("packing_facilities", sa.Column("valid_from", sa.Date(), nullable=True))
    op.add_column("packing_facilities", sa.Column("valid_to", sa.Date(), nullable=True))
    for c in ("valid_from", "valid_to"):
        _date_range("packing_facilities", c)
    op.drop_constraint(op.f("ck_packing_facilities_status"), "packing_facilities", type_="check")
    op.create_check_constraint(op.f("ck_packing_facilities_status"), "packing_facilities",
                               "status IN ('draft', 'active', 'suspended', 'revoked', 'expired')")
    op.create_check_constraint(op.f("ck_packing_facilities_validity"), "packing_facilities",
                               "valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from")
    op.create_check_constraint(op.f("ck_packing_facilities_reason_required"), "packing_facilities",
                               "status NOT IN ('suspended', 'revoked') OR status_reason IS NOT NULL")
    op.create_table(
        "code_counters",
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.CheckConstraint("last > 0", name=op.f("ck_code_counters_last_positive")),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_code_counters")),
    )


def downgrade() -> None:
    op.drop_table("code_counters")
    for name in ("reason_required", "validity", "status", "valid_from_range", "valid_to_range"):
        op.execute(f"ALTER TABLE packing_facilities DROP CONSTRAINT IF EXISTS ck_packing_facilities_{name}")
    op.execute("UPDATE packing_facilities SET status = 'revoked' WHERE status = 'expired'")
    op.create_check_constraint(op.f("ck_packing_facilities_status"), "packing_facilities",
                               "status IN ('draft', 'active', 'suspended', 'revoked')")
    for c in ("status_reason", "valid_from", "valid_to"):
        op.drop_column("packing_facilities", c)
    for table in ("growing_areas", "packing_facilities"):
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS ck_{table}_decision_date_range")
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS ck_{table}_code_granted")
        op.drop_column(table, "decision_date")
        op.drop_column(table, "decision_no")
        op.execute(f"DELETE FROM {table} WHERE code IS NULL")
        op.alter_column(table, "code", existing_type=sa.String(40), nullable=False)
